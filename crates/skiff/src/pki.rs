//! The cluster's certificates, made at first start like k3s does.
//!
//! In `<data-dir>/tls/`: the cluster CA (ECDSA P-256, 10 years) that signs both the API serving
//! certificate and client certificates; the serving certificate for the API server (1 year,
//! SANs for loopback, the host name, the in-cluster `kubernetes` Service names and its ClusterIP
//! `10.43.0.1`, plus every `--tls-san`); the admin client certificate (`CN=system:admin`,
//! `O=system:masters`, 1 year). On restart everything is reused; a leaf is made again when it is
//! missing, not signed by the current CA, does not match its key, expires within 90 days (as
//! k3s renews at start), or — for the serving certificate — its SANs differ from those wanted.
//! The CA itself is never replaced silently: a CA certificate without its key is an error.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

use crate::files;

pub const CA_CERT: &str = "server-ca.crt";
pub const CA_KEY: &str = "server-ca.key";
pub const SERVING_CERT: &str = "serving-kube-apiserver.crt";
pub const SERVING_KEY: &str = "serving-kube-apiserver.key";
pub const ADMIN_CERT: &str = "client-admin.crt";
pub const ADMIN_KEY: &str = "client-admin.key";

/// The first address of the Service range: the `kubernetes` Service's ClusterIP.
pub const KUBERNETES_SERVICE_IP: &str = "10.43.0.1";

const CA_VALIDITY: Duration = Duration::days(3650);
const LEAF_VALIDITY: Duration = Duration::days(365);
/// Leaves expiring sooner than this are made again at start.
const RENEW_BEFORE: Duration = Duration::days(90);
/// Tolerance for clocks that are a little behind ours.
const BACKDATE: Duration = Duration::minutes(5);

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("invalid subject alternative name {name:?}: {message}")]
    InvalidSan { name: String, message: String },
    #[error("a client certificate carries at most {MAX_CERT_GROUPS} groups, not {0}")]
    TooManyGroups(usize),
    #[error("generating {what}: {source}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
}

/// The certificates and keys the server needs, as PEM.
#[derive(Debug, Clone)]
pub struct Pki {
    pub ca_cert_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub admin_cert_pem: String,
    pub admin_key_pem: String,
}

/// The SANs of the serving certificate: the fixed ones, the host name (if any), then `extra`
/// (`--tls-san` and a specific bind address), without duplicates, in that order.
pub fn serving_sans(hostname: Option<&str>, extra: &[String]) -> Vec<String> {
    let fixed = [
        "127.0.0.1",
        "::1",
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        KUBERNETES_SERVICE_IP,
    ];
    let mut seen = BTreeSet::new();
    fixed
        .iter()
        .map(|s| s.to_string())
        .chain(hostname.map(str::to_string))
        .chain(extra.iter().cloned())
        .filter(|s| !s.is_empty() && seen.insert(normalize_san(s)))
        .collect()
}

/// This machine's host name, lowercased, if it has one.
pub fn hostname() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .ok()?;
    let name = name.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// Loads the certificates in `dir`, making whatever is missing or stale.
pub fn ensure(dir: &Path, sans: &[String]) -> Result<Pki, PkiError> {
    files::create_dir_with_mode(dir, 0o700).map_err(|source| io_err(dir, source))?;
    let now = OffsetDateTime::now_utc();
    let (ca_cert_pem, issuer) = load_or_create_ca(dir, now)?;
    let ca_der = pem_to_der(&ca_cert_pem, &dir.join(CA_CERT))?;

    let want: BTreeSet<String> = sans.iter().map(|s| normalize_san(s)).collect();
    let serving = load_or_create_leaf(
        dir,
        (SERVING_CERT, SERVING_KEY),
        &ca_der,
        Some(&want),
        now,
        || serving_params(sans, now),
        &issuer,
    )?;
    let admin = load_or_create_leaf(
        dir,
        (ADMIN_CERT, ADMIN_KEY),
        &ca_der,
        None,
        now,
        || client_params("system:admin", &["system:masters"], now),
        &issuer,
    )?;
    Ok(Pki {
        ca_cert_pem,
        serving_cert_pem: serving.0,
        serving_key_pem: serving.1,
        admin_cert_pem: admin.0,
        admin_key_pem: admin.1,
    })
}

/// Issues a client certificate for `user` in `groups`, signed by the CA in `dir` (for
/// `skiff kubeconfig user` and tests). Returns (certificate PEM, key PEM).
pub fn issue_client_cert(
    dir: &Path,
    user: &str,
    groups: &[&str],
) -> Result<(String, String), PkiError> {
    let now = OffsetDateTime::now_utc();
    let (_, issuer) = load_ca(dir)?.ok_or_else(|| PkiError::Invalid {
        path: dir.join(CA_CERT),
        message: "no cluster CA".to_string(),
    })?;
    issue(
        client_params(user, groups, now)?,
        &issuer,
        "client certificate",
    )
}

fn io_err(path: &Path, source: std::io::Error) -> PkiError {
    PkiError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn invalid(path: &Path, message: impl std::fmt::Display) -> PkiError {
    PkiError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    files::read_optional(path).map_err(|source| io_err(path, source))
}

fn write(path: &Path, contents: &str, mode: u32) -> Result<(), PkiError> {
    files::write_atomic(path, contents.as_bytes(), mode).map_err(|source| io_err(path, source))
}

fn load_ca(dir: &Path) -> Result<Option<(String, Issuer<'static, KeyPair>)>, PkiError> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    match (read(&cert_path)?, read(&key_path)?) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            let key = KeyPair::from_pem(&key).map_err(|e| invalid(&key_path, e))?;
            let issuer =
                Issuer::from_ca_cert_pem(&cert, key).map_err(|e| invalid(&cert_path, e))?;
            Ok(Some((cert, issuer)))
        }
        (Some(_), None) => Err(invalid(&key_path, "missing (the CA certificate exists)")),
        (None, Some(_)) => Err(invalid(&cert_path, "missing (the CA key exists)")),
    }
}

fn load_or_create_ca(
    dir: &Path,
    now: OffsetDateTime,
) -> Result<(String, Issuer<'static, KeyPair>), PkiError> {
    if let Some(ca) = load_ca(dir)? {
        return Ok(ca);
    }
    let key = generate_key("cluster CA key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("skiff-server-ca@{}", now.unix_timestamp()),
    );
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    let cert = params
        .self_signed(&key)
        .map_err(|source| PkiError::Generate {
            what: "cluster CA",
            source,
        })?;
    let cert_pem = cert.pem();
    // Key first: a CA certificate without its key is refused at the next start.
    write(&dir.join(CA_KEY), &key.serialize_pem(), files::PRIVATE)?;
    write(&dir.join(CA_CERT), &cert_pem, files::PUBLIC)?;
    tracing::info!(dir = %dir.display(), "created cluster CA");
    Ok((cert_pem, Issuer::new(params, key)))
}

fn generate_key(what: &'static str) -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|source| PkiError::Generate { what, source })
}

fn san_type(name: &str) -> Result<SanType, PkiError> {
    match name.parse::<IpAddr>() {
        Ok(ip) => Ok(SanType::IpAddress(ip)),
        Err(_) => name
            .to_ascii_lowercase()
            .try_into()
            .map(SanType::DnsName)
            .map_err(|e| PkiError::InvalidSan {
                name: name.to_string(),
                message: e.to_string(),
            }),
    }
}

/// A SAN as compared: IPs in canonical form, DNS names lowercased.
fn normalize_san(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.to_ascii_lowercase(),
    }
}

fn leaf_params(cn: &str, now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + LEAF_VALIDITY;
    params
}

fn serving_params(sans: &[String], now: OffsetDateTime) -> Result<CertificateParams, PkiError> {
    let mut params = leaf_params("kube-apiserver", now);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.subject_alt_names = sans.iter().map(|s| san_type(s)).collect::<Result<_, _>>()?;
    Ok(params)
}

/// Most groups a client certificate can carry (see `client_params`).
pub const MAX_CERT_GROUPS: usize = 2;

fn client_params(
    user: &str,
    groups: &[&str],
    now: OffsetDateTime,
) -> Result<CertificateParams, PkiError> {
    if groups.len() > MAX_CERT_GROUPS {
        return Err(PkiError::TooManyGroups(groups.len()));
    }
    let mut params = leaf_params(user, now);
    // rcgen keeps one value per attribute type, so a second Organization is written under the
    // same OID (2.5.4.10) spelled as a custom type; both parse as O.
    let types = [
        DnType::OrganizationName,
        DnType::CustomDnType(vec![2, 5, 4, 10]),
    ];
    for (ty, g) in types.into_iter().zip(groups) {
        params.distinguished_name.push(ty, *g);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    Ok(params)
}

fn issue(
    params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
    what: &'static str,
) -> Result<(String, String), PkiError> {
    let key = generate_key(what)?;
    let cert = params
        .signed_by(&key, issuer)
        .map_err(|source| PkiError::Generate { what, source })?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn load_or_create_leaf(
    dir: &Path,
    (cert_file, key_file): (&'static str, &'static str),
    ca_der: &[u8],
    want_sans: Option<&BTreeSet<String>>,
    now: OffsetDateTime,
    params: impl FnOnce() -> Result<CertificateParams, PkiError>,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, String), PkiError> {
    let (cert_path, key_path) = (dir.join(cert_file), dir.join(key_file));
    if let (Some(cert), Some(key)) = (read(&cert_path)?, read(&key_path)?) {
        match stale_reason(&cert, &key, ca_der, want_sans, now) {
            None => return Ok((cert, key)),
            Some(why) => tracing::info!(cert = %cert_path.display(), why, "renewing certificate"),
        }
    }
    let (cert, key) = issue(params()?, issuer, cert_file)?;
    write(&key_path, &key, files::PRIVATE)?;
    write(&cert_path, &cert, files::PUBLIC)?;
    Ok((cert, key))
}

/// Why an existing leaf must be made again, or `None` if it is good.
fn stale_reason(
    cert_pem: &str,
    key_pem: &str,
    ca_der: &[u8],
    want_sans: Option<&BTreeSet<String>>,
    now: OffsetDateTime,
) -> Option<&'static str> {
    let Ok((_, pem)) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()) else {
        return Some("unreadable certificate");
    };
    let Ok(cert) = pem.parse_x509() else {
        return Some("unreadable certificate");
    };
    let Ok((_, ca)) = x509_parser::parse_x509_certificate(ca_der) else {
        return Some("unreadable CA");
    };
    if cert.verify_signature(Some(ca.public_key())).is_err() {
        return Some("not signed by the cluster CA");
    }
    let Ok(key) = KeyPair::from_pem(key_pem) else {
        return Some("unreadable key");
    };
    if cert.public_key().subject_public_key.data.as_ref() != key.public_key_raw() {
        return Some("key does not match");
    }
    if cert.validity().not_after.timestamp() < (now + RENEW_BEFORE).unix_timestamp() {
        return Some("expires soon");
    }
    if let Some(want) = want_sans {
        if cert_sans(&cert) != *want {
            return Some("subject alternative names changed");
        }
    }
    None
}

fn cert_sans(cert: &x509_parser::certificate::X509Certificate<'_>) -> BTreeSet<String> {
    use x509_parser::extensions::GeneralName;
    let mut out = BTreeSet::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    out.insert(d.to_ascii_lowercase());
                }
                GeneralName::IPAddress(b) => {
                    let ip = match b.len() {
                        4 => IpAddr::from(<[u8; 4]>::try_from(*b).expect("length checked")),
                        16 => IpAddr::from(<[u8; 16]>::try_from(*b).expect("length checked")),
                        _ => continue,
                    };
                    out.insert(ip.to_string());
                }
                _ => {}
            }
        }
    }
    out
}

fn pem_to_der(pem: &str, path: &Path) -> Result<Vec<u8>, PkiError> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| invalid(path, e))?;
    Ok(pem.contents)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use skiff_apiserver::Authenticator;

    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from(pem_to_der(pem, Path::new("test")).unwrap())
    }

    fn roots(pki: &Pki) -> Arc<rustls::RootCertStore> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der(&pki.ca_cert_pem)).unwrap();
        Arc::new(roots)
    }

    fn sans(extra: &[&str]) -> Vec<String> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        serving_sans(Some("node-a"), &extra)
    }

    #[test]
    fn serving_sans_are_complete_and_deduplicated() {
        let got = serving_sans(
            Some("node-a"),
            &["LOCALHOST".into(), "skiff.example".into()],
        );
        for want in [
            "127.0.0.1",
            "::1",
            "localhost",
            "node-a",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
            "10.43.0.1",
            "skiff.example",
        ] {
            assert!(got.iter().any(|s| s == want), "{want} missing from {got:?}");
        }
        assert_eq!(got.len(), 10);
    }

    #[test]
    fn serving_cert_chains_to_ca_for_every_san() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure(dir.path(), &sans(&["skiff.example", "192.0.2.7"])).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots(&pki), provider)
                .build()
                .unwrap();
        let leaf = der(&pki.serving_cert_pem);
        for name in [
            "localhost",
            "kubernetes.default.svc",
            "node-a",
            "skiff.example",
        ] {
            let name = ServerName::try_from(name).unwrap();
            verifier
                .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
                .unwrap();
        }
        for ip in ["127.0.0.1", "::1", "10.43.0.1", "192.0.2.7"] {
            let name = ServerName::from(ip.parse::<IpAddr>().unwrap());
            verifier
                .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
                .unwrap();
        }
        let other = ServerName::try_from("evil.example").unwrap();
        assert!(verifier
            .verify_server_cert(&leaf, &[], &other, &[], UnixTime::now())
            .is_err());
    }

    #[test]
    fn admin_cert_is_a_client_cert_for_system_masters() {
        let dir = tempfile::tempdir().unwrap();
        let pki = ensure(dir.path(), &sans(&[])).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots(&pki), provider)
                .build()
                .unwrap();
        let leaf = der(&pki.admin_cert_pem);
        verifier
            .verify_client_cert(&leaf, &[], UnixTime::now())
            .unwrap();
        let user = Authenticator::from_client_cert(&leaf).unwrap();
        assert_eq!(user.name, "system:admin");
        assert_eq!(user.groups, vec!["system:masters", "system:authenticated"]);
        // The serving certificate is not good for client auth.
        assert!(verifier
            .verify_client_cert(&der(&pki.serving_cert_pem), &[], UnixTime::now())
            .is_err());
    }

    #[test]
    fn issued_client_cert_maps_to_user_and_groups() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &sans(&[])).unwrap();
        let (cert, _key) = issue_client_cert(dir.path(), "jane", &["dev", "ops"]).unwrap();
        let user = Authenticator::from_client_cert(&der(&cert)).unwrap();
        assert_eq!(user.name, "jane");
        assert_eq!(user.groups, vec!["dev", "ops", "system:authenticated"]);
        // A valid certificate wins over a bad bearer token.
        let a = Authenticator::new();
        let u = a
            .authenticate(Some(&der(&cert)), Some("Bearer wrong"))
            .unwrap();
        assert_eq!(u, Some(user));
        let three = issue_client_cert(dir.path(), "x", &["a", "b", "c"]);
        assert!(matches!(three, Err(PkiError::TooManyGroups(3))));
    }

    #[test]
    fn keys_are_private() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &sans(&[])).unwrap();
        for (file, mode) in [
            (CA_KEY, 0o600),
            (SERVING_KEY, 0o600),
            (ADMIN_KEY, 0o600),
            (CA_CERT, 0o644),
            (SERVING_CERT, 0o644),
        ] {
            let m = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(m & 0o777, mode, "{file}");
        }
    }

    #[test]
    fn restart_reuses_everything() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path(), &sans(&["a.example"])).unwrap();
        let second = ensure(dir.path(), &sans(&["a.example"])).unwrap();
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
        assert_eq!(first.serving_key_pem, second.serving_key_pem);
        assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
    }

    #[test]
    fn changed_sans_renew_only_the_serving_cert() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path(), &sans(&["a.example"])).unwrap();
        let second = ensure(dir.path(), &sans(&["b.example"])).unwrap();
        assert_eq!(first.ca_cert_pem, second.ca_cert_pem);
        assert_eq!(first.admin_cert_pem, second.admin_cert_pem);
        assert_ne!(first.serving_cert_pem, second.serving_cert_pem);
        let cert = der(&second.serving_cert_pem);
        let (_, parsed) = x509_parser::parse_x509_certificate(&cert).unwrap();
        let got = cert_sans(&parsed);
        assert!(got.contains("b.example") && !got.contains("a.example"));
    }

    #[test]
    fn leaves_from_another_ca_or_with_a_lost_key_are_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path(), &sans(&[])).unwrap();
        std::fs::remove_file(dir.path().join(ADMIN_KEY)).unwrap();
        let second = ensure(dir.path(), &sans(&[])).unwrap();
        assert_ne!(first.admin_cert_pem, second.admin_cert_pem);
        // A new CA (both files removed) invalidates the leaves.
        std::fs::remove_file(dir.path().join(CA_KEY)).unwrap();
        std::fs::remove_file(dir.path().join(CA_CERT)).unwrap();
        let third = ensure(dir.path(), &sans(&[])).unwrap();
        assert_ne!(second.ca_cert_pem, third.ca_cert_pem);
        assert_ne!(second.serving_cert_pem, third.serving_cert_pem);
        assert_ne!(second.admin_cert_pem, third.admin_cert_pem);
    }

    #[test]
    fn ca_without_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        ensure(dir.path(), &sans(&[])).unwrap();
        std::fs::remove_file(dir.path().join(CA_KEY)).unwrap();
        assert!(matches!(
            ensure(dir.path(), &sans(&[])),
            Err(PkiError::Invalid { .. })
        ));
    }

    #[test]
    fn invalid_tls_san_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = ensure(dir.path(), &sans(&["bad name with spaces\u{7f}é"])).unwrap_err();
        assert!(matches!(err, PkiError::InvalidSan { .. }), "{err}");
    }
}
