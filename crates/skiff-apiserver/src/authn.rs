//! Authentication: client certificates and bearer tokens.

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// Maps credentials to users.
#[derive(Debug, Default)]
pub struct Authenticator {}
