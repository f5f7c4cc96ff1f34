//! The version Skiff reports: the Kubernetes release whose API it serves, in the shape of
//! kube-apiserver's `/version` (`k8s.io/apimachinery/pkg/version.Info`). kubectl's dispatcher
//! picks its client from `major`/`minor`, so these must say 1.32.

/// The Kubernetes release Skiff serves.
pub const KUBERNETES_VERSION: &str = "v1.32.4";
/// Skiff's own version: the Kubernetes version with a `+skiff` build suffix, as k3s does.
pub const SKIFF_VERSION: &str = "v1.32.4+skiff";
pub const MAJOR: &str = "1";
pub const MINOR: &str = "32";

/// The line `skiff version` prints.
pub fn version_line() -> String {
    format!("skiff version {SKIFF_VERSION} (kubernetes {KUBERNETES_VERSION})")
}

/// The body of `GET /version`.
pub fn version_info() -> serde_json::Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    serde_json::json!({
        "major": MAJOR,
        "minor": MINOR,
        "gitVersion": SKIFF_VERSION,
        "gitCommit": option_env!("SKIFF_GIT_COMMIT").unwrap_or(""),
        "gitTreeState": "clean",
        "buildDate": option_env!("SKIFF_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{arch}", std::env::consts::OS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_kubernetes_1_32() {
        let v = version_info();
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "32");
        assert!(SKIFF_VERSION.starts_with(KUBERNETES_VERSION));
        assert_eq!(
            version_line(),
            "skiff version v1.32.4+skiff (kubernetes v1.32.4)"
        );
    }
}
