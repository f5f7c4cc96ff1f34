//! Authentication: client certificates and bearer tokens.
//!
//! Follows kube-apiserver's authenticator chain: an X.509 client certificate verified against the
//! cluster CA (CN is the user name, O the groups), then a bearer token (the static
//! `--token-auth-file` CSV, tokens added at run time, and pluggable [`TokenAuthenticator`]s such
//! as ServiceAccount JWTs). The first authenticator that recognises the request wins. A bearer
//! token that nobody recognises is an error (401), exactly as upstream's `FailOnError` union with
//! the anonymous authenticator: credentials that are present but wrong never fall back to
//! anonymous. A request with no credentials at all is anonymous (`Ok(None)`); what anonymous
//! may do is the handler's policy. Every authenticated user gets the group
//! `system:authenticated` (upstream's `AuthenticatedGroupAdder`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

/// The group every authenticated user belongs to.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// A user with a name, a uid and groups.
    pub fn new(name: impl Into<String>, uid: impl Into<String>, groups: Vec<String>) -> Self {
        UserInfo {
            name: name.into(),
            uid: uid.into(),
            groups,
        }
    }

    /// Adds `system:authenticated` unless it is there already.
    fn with_authenticated_group(mut self) -> Self {
        if !self.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            self.groups.push(AUTHENTICATED_GROUP.to_string());
        }
        self
    }
}

/// Why a request's credentials were refused; the server answers 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A bearer token that no authenticator recognises.
    #[error("invalid bearer token")]
    InvalidToken,
    /// An `Authorization` header that is not valid text.
    #[error("invalid authorization header")]
    InvalidHeader,
    /// A client certificate that cannot be read (the TLS layer has verified its signature).
    #[error("invalid client certificate: {0}")]
    InvalidCertificate(String),
}

/// Why a token file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading token file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {path}, line {line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Recognises bearer tokens of one kind (for example ServiceAccount JWTs).
pub trait TokenAuthenticator: Send + Sync + 'static {
    /// `Some(user)` if the token is this authenticator's and valid, `None` otherwise.
    fn authenticate_token(&self, token: &str) -> Option<UserInfo>;
}

/// Maps credentials to users.
#[derive(Default)]
pub struct Authenticator {
    tokens: RwLock<HashMap<String, UserInfo>>,
    token_authenticators: RwLock<Vec<Arc<dyn TokenAuthenticator>>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the tokens themselves.
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.read().len())
            .field(
                "token_authenticators",
                &self.token_authenticators.read().len(),
            )
            .finish()
    }
}

impl Authenticator {
    /// An authenticator that knows only client certificates (tokens can be added).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the user from a client certificate (DER) that the TLS layer has verified against
    /// the cluster CA: the subject's CommonName is the user name, its Organizations the groups.
    /// `None` if the certificate cannot be parsed or has no CommonName.
    pub fn from_client_cert(der: &[u8]) -> Option<UserInfo> {
        Self::user_from_cert(der).ok()
    }

    fn user_from_cert(der: &[u8]) -> Result<UserInfo, AuthError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| AuthError::InvalidCertificate(e.to_string()))?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .filter(|cn| !cn.is_empty())
            .ok_or_else(|| AuthError::InvalidCertificate("no common name".to_string()))?;
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .map(str::to_string)
            .collect();
        Ok(UserInfo::new(name, "", groups).with_authenticated_group())
    }

    /// Loads a kube-apiserver `--token-auth-file`: CSV lines `token,user,uid[,"group1,group2"]`.
    pub fn load_token_file(&self, path: &Path) -> Result<usize, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let entries = parse_token_file(&text).map_err(|(line, message)| TokenFileError::Parse {
            path: path.to_path_buf(),
            line,
            message,
        })?;
        let n = entries.len();
        let mut tokens = self.tokens.write();
        for (token, user) in entries {
            tokens.insert(token, user);
        }
        Ok(n)
    }

    /// Makes `token` authenticate as `user`.
    pub fn add_token(&self, token: impl Into<String>, user: UserInfo) {
        self.tokens.write().insert(token.into(), user);
    }

    /// Removes a token added by [`Authenticator::add_token`] or a token file.
    pub fn remove_token(&self, token: &str) -> bool {
        self.tokens.write().remove(token).is_some()
    }

    /// Consults `a` for bearer tokens that are not static tokens, after those added before it.
    pub fn add_token_authenticator(&self, a: Arc<dyn TokenAuthenticator>) {
        self.token_authenticators.write().push(a);
    }

    /// Authenticates a request from its verified peer certificate (the leaf, DER) and its
    /// `Authorization` header. A valid client certificate wins, as upstream's x509 authenticator
    /// comes before token authenticators. `Ok(None)` means anonymous.
    pub fn authenticate(
        &self,
        peer_cert: Option<&[u8]>,
        authorization_header: Option<&str>,
    ) -> Result<Option<UserInfo>, AuthError> {
        let cert_user = peer_cert.and_then(Self::from_client_cert);
        self.authenticate_request(cert_user.as_ref(), authorization_header)
    }

    /// Like [`Authenticator::authenticate`] with the certificate already read (once per
    /// connection, as the TLS layer does).
    pub fn authenticate_request(
        &self,
        cert_user: Option<&UserInfo>,
        authorization_header: Option<&str>,
    ) -> Result<Option<UserInfo>, AuthError> {
        if let Some(user) = cert_user {
            return Ok(Some(user.clone()));
        }
        let Some(token) = authorization_header.and_then(bearer_token) else {
            return Ok(None);
        };
        self.authenticate_token(token).map(Some)
    }

    /// Authenticates a bearer token alone.
    pub fn authenticate_token(&self, token: &str) -> Result<UserInfo, AuthError> {
        if let Some(user) = self.tokens.read().get(token) {
            return Ok(user.clone().with_authenticated_group());
        }
        for a in self.token_authenticators.read().iter() {
            if let Some(user) = a.authenticate_token(token) {
                return Ok(user.with_authenticated_group());
            }
        }
        Err(AuthError::InvalidToken)
    }
}

/// The token of an `Authorization: Bearer <token>` header, as upstream's bearertoken
/// authenticator reads it: other schemes and an empty token are no bearer token at all.
pub fn bearer_token(header: &str) -> Option<&str> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    // Upstream splits on single spaces: "Bearer  tok" has an empty token.
    let token = rest.split(' ').next().unwrap_or("");
    (!token.is_empty()).then_some(token)
}

/// Parses a token file; an error carries the (1-based) line where it was found.
fn parse_token_file(text: &str) -> Result<Vec<(String, UserInfo)>, CsvError> {
    let mut out = Vec::new();
    for (line, record) in csv_records(text)? {
        if record.len() < 3 {
            return Err((
                line,
                format!(
                    "must have at least 3 columns (token, user name, user uid), found {}",
                    record.len()
                ),
            ));
        }
        let mut fields = record.into_iter();
        let token = fields.next().unwrap_or_default();
        let name = fields.next().unwrap_or_default();
        let uid = fields.next().unwrap_or_default();
        if token.is_empty() {
            tracing::warn!(line, "empty token in token file, skipped");
            continue;
        }
        let groups = match fields.next() {
            Some(g) => g.split(',').map(str::to_string).collect(),
            None => Vec::new(),
        };
        if out.iter().any(|(t, _)| *t == token) {
            tracing::warn!(line, "duplicate token in token file, the last one wins");
        }
        out.push((token, UserInfo::new(name, uid, groups)));
    }
    Ok(out)
}

/// A CSV record and the (1-based) line it starts on.
type Record = (usize, Vec<String>);
/// A CSV syntax error: the line and what is wrong.
type CsvError = (usize, String);

/// Splits CSV text the way Go's `encoding/csv` reader does with `TrimLeadingSpace`: quoted
/// fields with `""` escapes (and line breaks) inside, blank lines skipped. Returns each record
/// with the line it starts on.
fn csv_records(text: &str) -> Result<Vec<Record>, CsvError> {
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut record = Vec::new();
        let mut field = String::new();
        let mut at_field_start = true;
        loop {
            match chars.next() {
                None => {
                    record.push(std::mem::take(&mut field));
                    break;
                }
                Some('\n') => {
                    line += 1;
                    record.push(std::mem::take(&mut field));
                    break;
                }
                Some('\r') if chars.peek() == Some(&'\n') => {}
                Some(c) if at_field_start && (c == ' ' || c == '\t') => {}
                Some('"') if at_field_start => {
                    at_field_start = false;
                    loop {
                        match chars.next() {
                            None => return Err((start, "unterminated quoted field".to_string())),
                            Some('"') if chars.peek() == Some(&'"') => {
                                chars.next();
                                field.push('"');
                            }
                            Some('"') => break,
                            Some(c) => {
                                if c == '\n' {
                                    line += 1;
                                }
                                field.push(c);
                            }
                        }
                    }
                    match chars.peek() {
                        None | Some(',') | Some('\n') | Some('\r') => {}
                        Some(_) => {
                            return Err((line, "extraneous text after quoted field".to_string()))
                        }
                    }
                }
                Some(',') => {
                    record.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                Some('"') => return Err((line, "bare \" in non-quoted field".to_string())),
                Some(c) => {
                    at_field_start = false;
                    field.push(c);
                }
            }
        }
        let blank = record.len() == 1 && record[0].is_empty();
        if !blank {
            records.push((start, record));
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, uid: &str, groups: &[&str]) -> UserInfo {
        UserInfo::new(name, uid, groups.iter().map(|g| g.to_string()).collect())
    }

    #[test]
    fn token_file_upstream_format() {
        let text = "tok1,alice,uid-1,\"dev,ops\"\n\
                    tok2,bob,uid-2\n\
                    \n\
                    tok3, carol ,uid-3,admins\r\n\
                    \"to\"\"k4\",dave,uid-4,\"\"\n";
        let got = parse_token_file(text).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(
            got[0],
            ("tok1".into(), user("alice", "uid-1", &["dev", "ops"]))
        );
        assert_eq!(got[1], ("tok2".into(), user("bob", "uid-2", &[])));
        // Leading spaces are trimmed, trailing ones kept, as Go's csv reader does.
        assert_eq!(
            got[2],
            ("tok3".into(), user("carol ", "uid-3", &["admins"]))
        );
        assert_eq!(got[3], ("to\"k4".into(), user("dave", "uid-4", &[""])));
    }

    #[test]
    fn token_file_errors_name_the_line() {
        assert_eq!(parse_token_file("a,b,c\nshort,row\n").unwrap_err().0, 2);
        assert!(parse_token_file("a,b,\"c").is_err());
        assert!(parse_token_file("a,b\"x,c").is_err());
        // Empty tokens are skipped, not fatal.
        assert!(parse_token_file(",b,c\n").unwrap().is_empty());
        // A quoted field may span lines.
        let got = parse_token_file("t,u,i,\"a,\nb\"\nt2,u2,i2\n").unwrap();
        assert_eq!(got[0].1.groups, vec!["a", "\nb"]);
        assert_eq!(got[1].0, "t2");
    }

    #[test]
    fn load_token_file_and_authenticate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "secret,alice,42,\"dev,ops\"\n").unwrap();
        let a = Authenticator::new();
        assert_eq!(a.load_token_file(&path).unwrap(), 1);
        let u = a
            .authenticate(None, Some("Bearer secret"))
            .unwrap()
            .unwrap();
        assert_eq!(u, user("alice", "42", &["dev", "ops", AUTHENTICATED_GROUP]));
        assert!(matches!(
            a.load_token_file(&dir.path().join("missing")),
            Err(TokenFileError::Io { .. })
        ));
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer abc"), Some("abc"));
        assert_eq!(bearer_token("  Bearer abc  "), Some("abc"));
        assert_eq!(bearer_token("Bearer abc def"), Some("abc"));
        assert_eq!(bearer_token("Bearer  abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Basic YWxpY2U6cHc="), None);
        assert_eq!(bearer_token(""), None);
    }

    #[test]
    fn tokens_anonymous_and_errors() {
        let a = Authenticator::new();
        a.add_token("t", user("bob", "7", &["g"]));
        assert_eq!(a.authenticate(None, None), Ok(None));
        assert_eq!(a.authenticate(None, Some("Basic eDp5")), Ok(None));
        assert_eq!(
            a.authenticate(None, Some("Bearer nope")),
            Err(AuthError::InvalidToken)
        );
        let u = a.authenticate(None, Some("Bearer t")).unwrap().unwrap();
        assert_eq!(u.groups, vec!["g", AUTHENTICATED_GROUP]);
        assert!(a.remove_token("t"));
        assert_eq!(
            a.authenticate(None, Some("Bearer t")),
            Err(AuthError::InvalidToken)
        );
    }

    #[test]
    fn pluggable_token_authenticator() {
        struct Prefix;
        impl TokenAuthenticator for Prefix {
            fn authenticate_token(&self, token: &str) -> Option<UserInfo> {
                token.strip_prefix("sa.").map(|n| user(n, "", &[]))
            }
        }
        let a = Authenticator::new();
        a.add_token_authenticator(Arc::new(Prefix));
        let u = a
            .authenticate(None, Some("Bearer sa.builder"))
            .unwrap()
            .unwrap();
        assert_eq!(u, user("builder", "", &[AUTHENTICATED_GROUP]));
        assert_eq!(
            a.authenticate(None, Some("Bearer x")),
            Err(AuthError::InvalidToken)
        );
    }

    // Client certificates are tested in the `skiff` crate's PKI tests, where certificates are
    // made with rcgen at test time.

    #[test]
    fn unreadable_client_cert_is_no_user() {
        assert_eq!(Authenticator::from_client_cert(b"not a certificate"), None);
        let a = Authenticator::new();
        assert_eq!(a.authenticate(Some(b"junk"), None), Ok(None));
    }
}
