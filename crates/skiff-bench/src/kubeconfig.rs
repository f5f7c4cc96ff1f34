//! Reads the admin kubeconfig the server writes (`--write-kubeconfig`): the server URL and the
//! embedded, base64-encoded PEM of the CA, client certificate and key, following the
//! `current-context` as kubectl does.

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use serde_yaml_ng::Value;

/// What the harness needs from a kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// `https://host:port`.
    pub server: String,
    pub ca_pem: Vec<u8>,
    pub client_cert_pem: Vec<u8>,
    pub client_key_pem: Vec<u8>,
}

impl Credentials {
    /// `host:port` of the server URL.
    pub(crate) fn authority(&self) -> anyhow::Result<&str> {
        let rest = self
            .server
            .strip_prefix("https://")
            .ok_or_else(|| anyhow!("server {:?} is not an https:// URL", self.server))?;
        Ok(rest.split('/').next().unwrap_or(rest))
    }
}

/// Parses kubeconfig YAML.
pub(crate) fn parse(text: &str) -> anyhow::Result<Credentials> {
    let doc: Value = serde_yaml_ng::from_str(text).context("kubeconfig is not YAML")?;
    let context_name = doc.get("current-context").and_then(Value::as_str);
    let context = named(&doc, "contexts", context_name)?
        .get("context")
        .ok_or_else(|| anyhow!("context has no `context`"))?;
    let cluster_name = context.get("cluster").and_then(Value::as_str);
    let user_name = context.get("user").and_then(Value::as_str);
    let cluster = named(&doc, "clusters", cluster_name)?
        .get("cluster")
        .ok_or_else(|| anyhow!("cluster entry has no `cluster`"))?;
    let user = named(&doc, "users", user_name)?
        .get("user")
        .ok_or_else(|| anyhow!("user entry has no `user`"))?;
    let server = cluster
        .get("server")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("cluster has no server"))?
        .to_string();
    Ok(Credentials {
        server,
        ca_pem: b64_field(cluster, "certificate-authority-data")?,
        client_cert_pem: b64_field(user, "client-certificate-data")?,
        client_key_pem: b64_field(user, "client-key-data")?,
    })
}

/// The entry of list `list` called `name`, or the first entry when no name is given.
fn named<'a>(doc: &'a Value, list: &str, name: Option<&str>) -> anyhow::Result<&'a Value> {
    let entries = doc
        .get(list)
        .and_then(Value::as_sequence)
        .ok_or_else(|| anyhow!("kubeconfig has no {list}"))?;
    let found = match name {
        Some(name) => entries
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name)),
        None => entries.first(),
    };
    found.ok_or_else(|| anyhow!("kubeconfig {list} has no entry {name:?}"))
}

fn b64_field(map: &Value, field: &str) -> anyhow::Result<Vec<u8>> {
    let Some(text) = map.get(field).and_then(Value::as_str) else {
        bail!("kubeconfig has no {field} (file references are not supported)");
    };
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .with_context(|| format!("{field} is not base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const K3S_SHAPED: &str = "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
";

    #[test]
    fn reads_the_servers_kubeconfig() {
        let c = parse(K3S_SHAPED).unwrap();
        assert_eq!(c.server, "https://127.0.0.1:6443");
        assert_eq!(c.authority().unwrap(), "127.0.0.1:6443");
        assert_eq!(c.ca_pem, b"CA");
        assert_eq!(c.client_cert_pem, b"CERT");
        assert_eq!(c.client_key_pem, b"KEY");
    }

    #[test]
    fn follows_current_context() {
        let text = "clusters:
- name: a
  cluster: {server: 'https://10.0.0.1:1', certificate-authority-data: QQ==}
- name: b
  cluster: {server: 'https://127.0.0.1:7443/', certificate-authority-data: Qg==}
contexts:
- {name: one, context: {cluster: a, user: u1}}
- {name: two, context: {cluster: b, user: u2}}
current-context: two
users:
- {name: u1, user: {client-certificate-data: MQ==, client-key-data: MQ==}}
- {name: u2, user: {client-certificate-data: Mg==, client-key-data: Mg==}}
";
        let c = parse(text).unwrap();
        assert_eq!(c.authority().unwrap(), "127.0.0.1:7443");
        assert_eq!(c.ca_pem, b"B");
        assert_eq!(c.client_cert_pem, b"2");
    }

    #[test]
    fn names_what_is_missing() {
        let no_key = K3S_SHAPED.replace("    client-key-data: S0VZ\n", "");
        let err = parse(&no_key).unwrap_err().to_string();
        assert!(err.contains("client-key-data"), "{err}");
        let err = parse("current-context: x\ncontexts: []\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("contexts"), "{err}");
        assert!(parse(": not yaml :").is_err());
    }
}
