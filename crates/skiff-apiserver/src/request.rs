//! What a request asks for: upstream's `RequestInfo` (API prefix, group, version, namespace,
//! resource, name, subresource and verb) parsed from the path, method and query.

use std::collections::HashMap;

use skiff_core::registry::{self, Resource};
use skiff_core::ApiError;

/// The verb of a resource request, as RBAC names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    /// The verb as upstream's request metrics label it.
    pub fn upper(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::List => "LIST",
            Verb::Watch => "WATCH",
            Verb::Create => "POST",
            Verb::Update => "PUT",
            Verb::Patch => "PATCH",
            Verb::Delete => "DELETE",
            Verb::DeleteCollection => "DELETECOLLECTION",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// A request for a resource.
#[derive(Debug, Clone)]
pub struct ResourceRequest {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub verb: Verb,
}

/// What a path names.
#[derive(Debug, Clone)]
pub enum Target {
    Resource(ResourceRequest),
    /// `/api`, `/apis`, `/api/v1`, `/apis/G`, `/apis/G/V`.
    Discovery(DiscoveryPath),
    /// `/version`, `/healthz`, … handled by name.
    Other(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryPath {
    Api,
    Apis,
    Group(String),
    GroupVersion(String, String),
}

/// Parsed query parameters (repeated keys keep the last value, except `all`).
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        let mut pairs = Vec::new();
        if let Some(q) = q {
            for part in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = part.split_once('=').unwrap_or((part, ""));
                pairs.push((percent_decode(k), percent_decode(v)));
            }
        }
        Query { pairs }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn bool(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") | Some("false") | Some("0") | Some("False") => Ok(false),
            Some("true") | Some("1") | Some("True") => Ok(true),
            Some(v) => Err(ApiError::bad_request(format!(
                "invalid value {v:?} for {key}: must be a boolean"
            ))),
        }
    }

    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value {v:?} for {key}: must be an integer"))
            }),
        }
    }

    pub fn to_map(&self) -> HashMap<&str, &str> {
        self.pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Decodes `%XX` escapes and `+` (as space) of a query component.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Subresources of a namespace that are addressed as `/namespaces/NAME/SUB`.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parses a path and method into a target (built-in resources only).
pub fn parse(method: &http::Method, path: &str, query: &Query) -> Result<Target, ApiError> {
    parse_with(method, path, query, &|_, _, _| None)
}

/// Looks up a resource that is not built in (a custom resource) by group, version and plural.
pub type ExtraLookup<'a> = &'a dyn Fn(&str, &str, &str) -> Option<&'static Resource>;

/// [`parse`], looking up resources that are not built in with `extra`.
pub fn parse_with(
    method: &http::Method,
    path: &str,
    query: &Query,
    extra: ExtraLookup<'_>,
) -> Result<Target, ApiError> {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => return Ok(Target::Discovery(DiscoveryPath::Api)),
        ["apis"] => return Ok(Target::Discovery(DiscoveryPath::Apis)),
        ["api", v] => {
            return Ok(Target::Discovery(DiscoveryPath::GroupVersion(
                String::new(),
                v.to_string(),
            )))
        }
        ["apis", g] => return Ok(Target::Discovery(DiscoveryPath::Group(g.to_string()))),
        ["apis", g, v] => {
            return Ok(Target::Discovery(DiscoveryPath::GroupVersion(
                g.to_string(),
                v.to_string(),
            )))
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(Target::Other(path.to_string())),
    };
    let mut rest: Vec<&str> = rest.to_vec();
    let mut watch_prefix = false;
    if rest.first() == Some(&"watch") {
        watch_prefix = true;
        rest.remove(0);
    }
    let mut namespace = None;
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        namespace = Some(rest[1].to_string());
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest.drain(..2);
        }
    }
    let Some(plural) = rest.first() else {
        return Err(not_found_path(path));
    };
    let resource = registry::lookup(group, version, plural)
        .or_else(|| extra(group, version, plural))
        .ok_or_else(|| not_found_path(path))?;
    let name = rest.get(1).map(|s| s.to_string());
    let subresource = rest.get(2).map(|s| s.to_string());
    if rest.len() > 3 {
        return Err(not_found_path(path));
    }
    // For /namespaces/NAME the "namespace" is the object's name.
    let namespace = if resource.namespaced { namespace } else { None };
    if resource.namespaced && namespace.is_none() && name.is_some() {
        return Err(not_found_path(path));
    }
    if let Some(sub) = &subresource {
        if resource.subresource(sub).is_none() {
            return Err(not_found_path(path));
        }
    }
    let verb = match *method {
        http::Method::GET | http::Method::HEAD => {
            if watch_prefix || (name.is_none() && query.bool("watch")?) {
                Verb::Watch
            } else if name.is_none() {
                Verb::List
            } else {
                Verb::Get
            }
        }
        http::Method::POST => Verb::Create,
        http::Method::PUT => Verb::Update,
        http::Method::PATCH => Verb::Patch,
        http::Method::DELETE => {
            if name.is_none() {
                Verb::DeleteCollection
            } else {
                Verb::Delete
            }
        }
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ))
        }
    };
    Ok(Target::Resource(ResourceRequest {
        resource,
        namespace,
        name,
        subresource,
        verb,
    }))
}

fn not_found_path(_path: &str) -> ApiError {
    ApiError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(m: http::Method, path: &str) -> ResourceRequest {
        let q = Query::parse(path.split_once('?').map(|x| x.1));
        match parse(&m, path.split('?').next().unwrap(), &q).unwrap() {
            Target::Resource(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn paths() {
        let r = p(
            http::Method::GET,
            "/api/v1/namespaces/default/pods/web/status",
        );
        assert_eq!(r.resource.plural, "pods");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
        assert_eq!(r.verb, Verb::Get);
        let r = p(http::Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!(r.resource.plural, "namespaces");
        assert_eq!(r.name.as_deref(), Some("kube-system"));
        let r = p(http::Method::PUT, "/api/v1/namespaces/foo/finalize");
        assert_eq!(r.subresource.as_deref(), Some("finalize"));
        assert_eq!(r.verb, Verb::Update);
        let r = p(http::Method::GET, "/apis/apps/v1/deployments?watch=true");
        assert_eq!(r.verb, Verb::Watch);
        assert!(r.namespace.is_none());
        let r = p(http::Method::GET, "/api/v1/watch/namespaces/x/pods");
        assert_eq!(r.verb, Verb::Watch);
        let r = p(http::Method::DELETE, "/api/v1/namespaces/x/pods");
        assert_eq!(r.verb, Verb::DeleteCollection);
        assert!(parse(&http::Method::GET, "/api/v1/foos", &Query::default()).is_err());
        assert!(parse(
            &http::Method::GET,
            "/api/v1/namespaces/x/pods/a/bogus",
            &Query::default()
        )
        .is_err());
    }

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&limit=5"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert_eq!(q.int("limit").unwrap(), Some(5));
    }
}
