//! LIST: label and field selectors, `limit` and `continue` (a consistent snapshot across
//! pages, 410 once compacted), `resourceVersion` and `resourceVersionMatch` semantics, and the
//! fast path that writes stored bytes straight into the response.

use base64::Engine;
use serde_json::{json, Value};
use skiff_core::fields::FieldSelector;
use skiff_core::labels::Selector;
use skiff_core::registry::Resource;
use skiff_core::{meta, ApiError};
use skiff_store::{KeyValue, ListOptions, ReadAt};

use crate::objects::{
    decode_kv, parse_resource_version, storage_resource, store_error, to_external,
};
use crate::request::Query;
use crate::server::ApiServer;

/// Selectors of a list or watch.
pub struct Filter {
    pub labels: Option<Selector>,
    pub fields: Option<FieldSelector>,
}

impl Filter {
    pub fn from_query(res: &Resource, q: &Query) -> Result<Filter, ApiError> {
        let labels =
            match q.get("labelSelector").filter(|s| !s.trim().is_empty()) {
                Some(s) => Some(Selector::parse(s).map_err(|e| {
                    ApiError::bad_request(format!("unable to parse requirement: {e}"))
                })?),
                None => None,
            };
        let fields = match q.get("fieldSelector").filter(|s| !s.trim().is_empty()) {
            Some(s) => {
                let f = FieldSelector::parse(s).map_err(ApiError::bad_request)?;
                skiff_core::fields::check_supported(res, &f).map_err(ApiError::bad_request)?;
                Some(f)
            }
            None => None,
        };
        Ok(Filter { labels, fields })
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_none() && self.fields.is_none()
    }

    /// Does an object (external form) pass?
    pub fn matches(&self, res: &Resource, obj: &Value) -> bool {
        self.labels.as_ref().is_none_or(|l| l.matches_object(obj))
            && self.fields.as_ref().is_none_or(|f| f.matches(res, obj))
    }
}

/// A continue token: the revision of the first page and the last key returned (relative to
/// the list's prefix), as upstream's `{"v":"meta.k8s.io/v1","rv":N,"start":"…"}`.
pub fn encode_continue(rev: i64, start: &str) -> String {
    let t = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": start});
    base64::engine::general_purpose::URL_SAFE.encode(serde_json::to_vec(&t).expect("json"))
}

pub fn decode_continue(token: &str) -> Result<(i64, String), ApiError> {
    let bad =
        || ApiError::bad_request("continue key is not valid: the continue token is malformed");
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    if v.get("v").and_then(Value::as_str) != Some("meta.k8s.io/v1") {
        return Err(bad());
    }
    let rev = v
        .get("rv")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0)
        .ok_or_else(bad)?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    if start.contains("..") || start.starts_with('/') {
        return Err(bad());
    }
    Ok((rev, start))
}

/// The rows of a list: either raw stored values (fast path) or decoded objects.
pub struct Listed {
    pub items: Vec<KeyValue>,
    pub decoded: Option<Vec<Value>>,
    pub revision: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

impl ApiServer {
    /// Lists objects; `decode` forces decoded objects even without selectors.
    pub async fn list_objects(
        &self,
        res: &'static Resource,
        namespace: Option<&str>,
        q: &Query,
        decode: bool,
    ) -> Result<Listed, ApiError> {
        let filter = Filter::from_query(res, q)?;
        let limit = q.int("limit")?.unwrap_or(0).max(0) as usize;
        let rv = q.get("resourceVersion").unwrap_or("");
        let rv_match = q.get("resourceVersionMatch").unwrap_or("");
        let cont = q.get("continue").unwrap_or("");
        let sres = storage_resource(res);
        let prefix = match namespace {
            Some(ns) if res.namespaced => sres.namespace_prefix(ns),
            _ => sres.key_prefix(),
        };
        if !rv_match.is_empty() && rv.is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if !cont.is_empty() && !rv.is_empty() && rv != "0" {
            return Err(ApiError::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        if !rv_match.is_empty() && !cont.is_empty() {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        let (mut at, mut start_after) = (ReadAt::Latest, None);
        if !cont.is_empty() {
            let (rev, start) = decode_continue(cont)?;
            if rev < self.store.compacted_revision() {
                return Err(ApiError::expired(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                ));
            }
            at = ReadAt::Exact(rev);
            start_after = Some(format!("{prefix}{start}"));
        } else {
            let n = parse_resource_version(rv)?;
            match (rv_match, n) {
                ("Exact", Some(0)) => {
                    return Err(ApiError::bad_request(
                        "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
                    ))
                }
                ("Exact", Some(n)) => at = ReadAt::Exact(n),
                ("NotOlderThan", _) | ("", _) => {
                    if let Some(n) = n.filter(|n| *n > 0) {
                        if rv_match.is_empty() && limit > 0 {
                            at = ReadAt::Exact(n);
                        } else {
                            self.wait_for_revision(n).await.map_err(|e| store_error(res, "", e))?;
                        }
                    }
                }
                (other, _) => {
                    return Err(ApiError::bad_request(format!(
                        "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
                    )))
                }
            }
        }
        let decode = decode
            || !filter.is_empty()
            || sres.plural != res.plural
            || res.group != sres.group
            || res.custom.is_some();
        let mut items = Vec::new();
        let mut decoded = Vec::new();
        let mut revision;
        let mut more;
        let mut last_key: Option<String>;
        loop {
            let want = if limit == 0 {
                0
            } else if filter.is_empty() {
                limit - items.len()
            } else {
                (limit - decoded.len()).max(256)
            };
            let page = self
                .store
                .list(ListOptions { prefix: prefix.clone(), at, start_after: start_after.clone(), limit: want })
                .await
                .map_err(|e| match e {
                    skiff_store::StoreError::Compacted { .. } if !cont.is_empty() => ApiError::expired(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
                    ),
                    e => store_error(res, "", e),
                })?;
            revision = page.revision;
            // Later pages read the same snapshot.
            at = ReadAt::Exact(page.revision);
            more = page.more;
            last_key = page.items.last().map(|kv| kv.key.clone());
            let mut cut = None;
            for kv in page.items {
                if decode {
                    let obj = to_external(res, decode_kv(&kv)?);
                    if !filter.matches(res, &obj) {
                        continue;
                    }
                    decoded.push(obj);
                    if limit > 0 && decoded.len() == limit {
                        cut = Some(kv.key.clone());
                        break;
                    }
                } else {
                    items.push(kv);
                }
            }
            if let Some(k) = cut {
                // Stopped inside the page: more may follow this key.
                more = more || last_key.as_deref() != Some(k.as_str());
                last_key = Some(k);
                break;
            }
            if !more || limit == 0 || (!decode && items.len() >= limit) {
                break;
            }
            start_after = last_key.clone();
        }
        let continue_token = if more && limit > 0 {
            last_key
                .as_deref()
                .map(|k| encode_continue(revision, k.strip_prefix(&prefix).unwrap_or(k)))
        } else {
            None
        };
        // Upstream counts what follows the page when no selector filters it. Counted only
        // while the snapshot is still the newest state, which the store holds in memory.
        let remaining = match (&continue_token, &last_key) {
            (Some(_), Some(last))
                if filter.is_empty() && revision == self.store.current_revision() =>
            {
                self.store
                    .list(ListOptions {
                        prefix: prefix.clone(),
                        at: ReadAt::Exact(revision),
                        start_after: Some(last.clone()),
                        limit: 0,
                    })
                    .await
                    .ok()
                    .filter(|rest| rest.revision == revision)
                    .map(|rest| rest.items.len() as i64)
            }
            _ => None,
        };
        Ok(Listed {
            items,
            decoded: decode.then_some(decoded),
            revision,
            continue_token,
            remaining,
        })
    }

    /// Waits (briefly) until the store reached revision `n`.
    async fn wait_for_revision(&self, n: i64) -> Result<(), skiff_store::StoreError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let cur = self.store.current_revision();
            if cur >= n {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(skiff_store::StoreError::FutureRevision {
                    requested: n,
                    current: cur,
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// List metadata as upstream writes it.
pub fn list_meta(l: &Listed) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("resourceVersion".into(), json!(l.revision.to_string()));
    if let Some(c) = &l.continue_token {
        m.insert("continue".into(), json!(c));
    }
    if let Some(r) = l.remaining {
        m.insert("remainingItemCount".into(), json!(r));
    }
    Value::Object(m)
}

/// Writes a `…List` document: stored bytes are spliced in with their resourceVersion set,
/// without being parsed.
pub fn write_list(res: &Resource, l: &Listed) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(128 + l.items.iter().map(|kv| kv.value.len() + 16).sum::<usize>());
    out.extend_from_slice(b"{\"kind\":");
    out.extend_from_slice(
        serde_json::to_string(&res.list_kind())
            .expect("json")
            .as_bytes(),
    );
    out.extend_from_slice(b",\"apiVersion\":");
    out.extend_from_slice(
        serde_json::to_string(&res.api_version())
            .expect("json")
            .as_bytes(),
    );
    out.extend_from_slice(b",\"metadata\":");
    out.extend_from_slice(&serde_json::to_vec(&list_meta(l)).expect("json"));
    out.extend_from_slice(b",\"items\":[");
    match &l.decoded {
        Some(objs) => {
            for (i, o) in objs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, o).expect("json");
            }
        }
        None => {
            for (i, kv) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                meta::inject_resource_version_into(&kv.value, kv.mod_revision, &mut out);
            }
        }
    }
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_round_trip() {
        let t = encode_continue(42, "default/web-1");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "default/web-1".to_string())
        );
        assert!(decode_continue("garbage!").is_err());
        assert!(decode_continue(&encode_continue(5, "../etc")).is_err());
    }
}
