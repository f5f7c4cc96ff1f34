//! The objects the benchmarks write: a small, realistic Pod (one container with an image,
//! ports, resources, probes, labels: about 1 KB of JSON, like a Deployment's pod template) and
//! a ConfigMap for watches.

use serde_json::json;

/// The JSON body of a Pod called `name` in `namespace`.
pub(crate) fn pod_json(namespace: &str, name: &str) -> Vec<u8> {
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "web",
                "app.kubernetes.io/instance": "web-bench",
                "app.kubernetes.io/component": "frontend",
                "pod-template-hash": "7d4b9c8f6d",
                "tier": "frontend"
            },
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9113"
            }
        },
        "spec": {
            "containers": [{
                "name": "web",
                "image": "docker.io/library/nginx:1.27.3-alpine",
                "imagePullPolicy": "IfNotPresent",
                "args": ["nginx", "-g", "daemon off;"],
                "ports": [
                    {"name": "http", "containerPort": 80, "protocol": "TCP"},
                    {"name": "metrics", "containerPort": 9113, "protocol": "TCP"}
                ],
                "env": [
                    {"name": "NGINX_ENTRYPOINT_QUIET_LOGS", "value": "1"},
                    {"name": "TZ", "value": "UTC"}
                ],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "64Mi"},
                    "limits": {"cpu": "500m", "memory": "128Mi"}
                },
                "readinessProbe": {
                    "httpGet": {"path": "/", "port": "http"},
                    "periodSeconds": 10
                }
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst"
        }
    });
    serde_json::to_vec(&pod).expect("a json! value always serializes")
}

/// [`pod_json`] for many names in one namespace, without building the JSON each time: the body
/// is serialized once with a placeholder name and each body splices the real name in, so that
/// making 20,000 bodies costs the load generator little.
pub(crate) struct PodBodies {
    before: Vec<u8>,
    after: Vec<u8>,
}

impl PodBodies {
    const PLACEHOLDER: &'static str = "\u{1}name\u{1}";

    pub(crate) fn new(namespace: &str) -> Self {
        let whole = pod_json(namespace, Self::PLACEHOLDER);
        let quoted = serde_json::to_vec(Self::PLACEHOLDER).expect("a string always serializes");
        let at = whole
            .windows(quoted.len())
            .position(|w| w == quoted.as_slice())
            .expect("the placeholder name is in the body");
        PodBodies {
            before: whole[..at].to_vec(),
            after: whole[at + quoted.len()..].to_vec(),
        }
    }

    /// The same bytes as `pod_json(namespace, name)`.
    pub(crate) fn body(&self, name: &str) -> Vec<u8> {
        let quoted = serde_json::to_string(name).expect("a string always serializes");
        let mut body = Vec::with_capacity(self.before.len() + quoted.len() + self.after.len());
        body.extend_from_slice(&self.before);
        body.extend_from_slice(quoted.as_bytes());
        body.extend_from_slice(&self.after);
        body
    }
}

/// The name of the `i`th benchmark pod.
pub(crate) fn pod_name(prefix: &str, i: u64) -> String {
    format!("{prefix}-{i:06}")
}

/// The JSON body of the ConfigMap the watch benchmark updates.
pub(crate) fn configmap_json(namespace: &str, name: &str) -> Vec<u8> {
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"seq": "0"}
    });
    serde_json::to_vec(&cm).expect("a json! value always serializes")
}

/// The merge patch that sets the ConfigMap's `seq` to `seq`.
pub(crate) fn seq_patch(seq: u64) -> Vec<u8> {
    format!(r#"{{"data":{{"seq":"{seq}"}}}}"#).into_bytes()
}

/// The `seq` of a watch event line carrying the ConfigMap (a cheap scan rather than a JSON
/// parse, so a thousand watchers in the load generator cost little CPU).
pub(crate) fn seq_of_event(line: &[u8]) -> Option<u64> {
    const KEY: &[u8] = br#""seq":""#;
    let at = line.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits = &line[at..];
    let end = digits.iter().position(|b| !b.is_ascii_digit())?;
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

/// A JSON object of a Kubernetes API response's `metadata.resourceVersion`.
pub(crate) fn resource_version(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some(v["metadata"]["resourceVersion"].as_str()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_is_about_a_kilobyte_and_valid_json() {
        let body = pod_json("default", &pod_name("bench", 42));
        assert!((800..=1400).contains(&body.len()), "{} bytes", body.len());
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["metadata"]["name"], "bench-000042");
        assert_eq!(v["spec"]["containers"][0]["ports"][0]["containerPort"], 80);
    }

    #[test]
    fn spliced_bodies_are_the_built_ones() {
        let bodies = PodBodies::new("team-a");
        for name in ["bench-000000", "bench-019999", "odd\"name\\"] {
            assert_eq!(bodies.body(name), pod_json("team-a", name), "{name}");
        }
    }

    #[test]
    fn seq_round_trips_through_an_event_line() {
        let line = br#"{"type":"MODIFIED","object":{"kind":"ConfigMap","data":{"seq":"137"},"metadata":{}}}"#;
        assert_eq!(seq_of_event(line), Some(137));
        assert_eq!(seq_of_event(br#"{"type":"BOOKMARK"}"#), None);
        let patch: serde_json::Value = serde_json::from_slice(&seq_patch(9)).unwrap();
        assert_eq!(patch["data"]["seq"], "9");
        let cm: serde_json::Value =
            serde_json::from_slice(&configmap_json("bench", "watched")).unwrap();
        assert_eq!(cm["data"]["seq"], "0");
    }

    #[test]
    fn resource_version_of_a_response() {
        assert_eq!(
            resource_version(br#"{"metadata":{"resourceVersion":"12"}}"#).as_deref(),
            Some("12")
        );
        assert_eq!(resource_version(b"{}"), None);
    }
}
