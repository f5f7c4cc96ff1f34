//! Kubeconfig files, in the shape k3s writes to `/etc/rancher/k3s/k3s.yaml`: one cluster, user
//! and context, all named `default`, with the CA and the client certificate embedded as base64.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use base64::Engine as _;

use crate::files;

/// What a kubeconfig says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kubeconfig {
    /// `https://host:port`.
    pub server: String,
    pub ca_cert_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// The URL clients on this machine use to reach a server listening on `bind`: loopback when
/// it listens on every address, the address itself otherwise.
pub fn server_url(bind: SocketAddr) -> String {
    let ip = match bind.ip() {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    // SocketAddr's Display puts IPv6 addresses in brackets.
    format!("https://{}", SocketAddr::new(ip, bind.port()))
}

impl Kubeconfig {
    /// The YAML text.
    pub fn render(&self) -> String {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!(
            "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: {server}
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
",
            ca = b64(&self.ca_cert_pem),
            server = self.server,
            cert = b64(&self.client_cert_pem),
            key = b64(&self.client_key_pem),
        )
    }

    /// Writes the file with `mode`, creating parent directories.
    pub fn write(&self, path: &Path, mode: u32) -> std::io::Result<()> {
        files::write_atomic(path, self.render().as_bytes(), mode)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn sample() -> Kubeconfig {
        Kubeconfig {
            server: "https://127.0.0.1:6443".into(),
            ca_cert_pem: "CA".into(),
            client_cert_pem: "CERT".into(),
            client_key_pem: "KEY".into(),
        }
    }

    #[test]
    fn server_url_uses_loopback_for_wildcard_binds() {
        assert_eq!(
            server_url("0.0.0.0:6443".parse().unwrap()),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            server_url("[::]:6443".parse().unwrap()),
            "https://127.0.0.1:6443"
        );
        assert_eq!(
            server_url("192.0.2.1:7443".parse().unwrap()),
            "https://192.0.2.1:7443"
        );
        assert_eq!(
            server_url("[::1]:6443".parse().unwrap()),
            "https://[::1]:6443"
        );
    }

    #[test]
    fn render_is_a_kubeconfig() {
        let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&sample().render()).unwrap();
        assert_eq!(doc["apiVersion"], "v1");
        assert_eq!(doc["kind"], "Config");
        assert_eq!(doc["current-context"], "default");
        let cluster = &doc["clusters"][0];
        assert_eq!(cluster["name"], "default");
        assert_eq!(cluster["cluster"]["server"], "https://127.0.0.1:6443");
        assert_eq!(cluster["cluster"]["certificate-authority-data"], "Q0E=");
        let ctx = &doc["contexts"][0];
        assert_eq!(ctx["name"], "default");
        assert_eq!(ctx["context"]["cluster"], "default");
        assert_eq!(ctx["context"]["user"], "default");
        let user = &doc["users"][0];
        assert_eq!(user["name"], "default");
        assert_eq!(user["user"]["client-certificate-data"], "Q0VSVA==");
        assert_eq!(user["user"]["client-key-data"], "S0VZ");
    }

    #[test]
    fn write_creates_parents_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/kubeconfig.yaml");
        sample().write(&path, 0o640).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), sample().render());
    }
}
