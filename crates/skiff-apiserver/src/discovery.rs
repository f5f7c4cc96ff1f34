//! API discovery: the legacy documents (`APIVersions`, `APIGroupList`, `APIGroup`,
//! `APIResourceList`) and aggregated discovery v2 (`APIGroupDiscoveryList`), which kubectl uses
//! only when the response carries its exact media type. Built-in groups come first, then the
//! groups of CustomResourceDefinitions (each version listed, the highest-priority one
//! preferred), as upstream's aggregator lists them. The aggregated document carries an ETag
//! (a hash of its bytes) that changes whenever a CRD changes what is served.

use serde_json::{json, Value};
use skiff_core::registry::{self, Resource};

use crate::crds::Catalog;

/// The aggregated discovery media type, v2 and v2beta1.
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
pub const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which aggregated discovery version the Accept header asks for first, if any.
pub fn wants_aggregated(accept: Option<&str>) -> Option<&'static str> {
    let accept = accept?;
    for item in accept.split(',') {
        let params: Vec<&str> = item.split(';').map(str::trim).collect();
        let has = |p: &str| params.iter().any(|x| x.replace(' ', "") == p);
        if params.first() == Some(&"application/json")
            && has("g=apidiscovery.k8s.io")
            && has("as=APIGroupDiscoveryList")
        {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
        if params.first() == Some(&"application/json") && params.len() == 1 {
            return None;
        }
    }
    None
}

/// `GET /api`.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]
    })
}

/// An `APIGroup` entry: its versions in priority order, the first preferred.
fn group_json(group: &str, versions: &[&str]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = entries.first().cloned().unwrap_or(Value::Null);
    json!({
        "name": group,
        "versions": entries,
        "preferredVersion": preferred
    })
}

/// Every named group with its versions: built-in groups, then custom ones.
fn all_groups(custom: &Catalog) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&'static str, Vec<&'static str>)> = registry::groups()
        .into_iter()
        .map(|(g, v)| (g, vec![v]))
        .collect();
    for (g, vs) in custom.group_versions() {
        if !out.iter().any(|(b, _)| *b == g) {
            out.push((g, vs));
        }
    }
    out
}

/// `GET /apis`.
pub fn api_group_list(custom: &Catalog) -> Value {
    let groups: Vec<Value> = all_groups(custom)
        .into_iter()
        .map(|(g, vs)| group_json(g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/G`.
pub fn api_group(group: &str, custom: &Catalog) -> Option<Value> {
    let (g, vs) = all_groups(custom).into_iter().find(|(g, _)| *g == group)?;
    let mut doc = group_json(g, &vs);
    let o = doc.as_object_mut()?;
    let mut out = serde_json::Map::new();
    out.insert("kind".into(), json!("APIGroup"));
    out.insert("apiVersion".into(), json!("v1"));
    for (k, v) in std::mem::take(o) {
        out.insert(k, v);
    }
    Some(Value::Object(out))
}

/// The resources of a group-version, built-in or custom.
fn served_in(group: &str, version: &str, custom: &Catalog) -> Vec<&'static Resource> {
    let builtin: Vec<&'static Resource> = registry::resources_in(group, version).collect();
    if !builtin.is_empty() {
        return builtin;
    }
    custom.resources_in(group, version).collect()
}

/// `GET /api/v1` or `/apis/G/V`.
pub fn api_resource_list(group: &str, version: &str, custom: &Catalog) -> Option<Value> {
    let mut resources = Vec::new();
    for r in served_in(group, version, custom) {
        let mut o = serde_json::Map::new();
        o.insert("name".into(), json!(r.plural));
        o.insert("singularName".into(), json!(r.singular));
        o.insert("namespaced".into(), json!(r.namespaced));
        o.insert("kind".into(), json!(r.kind));
        o.insert("verbs".into(), json!(r.verbs));
        if !r.short_names.is_empty() {
            o.insert("shortNames".into(), json!(r.short_names));
        }
        if !r.categories.is_empty() {
            o.insert("categories".into(), json!(r.categories));
        }
        o.insert("storageVersionHash".into(), json!(storage_version_hash(r)));
        resources.push(Value::Object(o));
        for s in r.subresources {
            let mut o = serde_json::Map::new();
            o.insert("name".into(), json!(format!("{}/{}", r.plural, s.name)));
            o.insert("singularName".into(), json!(""));
            o.insert("namespaced".into(), json!(r.namespaced));
            if !s.group.is_empty() {
                o.insert("group".into(), json!(s.group));
                o.insert("version".into(), json!(s.version));
            }
            o.insert("kind".into(), json!(s.kind));
            o.insert("verbs".into(), json!(s.verbs));
            resources.push(Value::Object(o));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// A stable short hash of the storage identity, like upstream's storageVersionHash.
fn storage_version_hash(r: &Resource) -> String {
    // FNV-1a over group/version/kind, rendered as 11 base64-ish characters.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in format!("{}/{}/{}", r.group, r.version, r.kind).bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(h.to_be_bytes())[..11].to_string()
}

fn aggregated_resource(r: &Resource) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("resource".into(), json!(r.plural));
    o.insert(
        "responseKind".into(),
        json!({"group": r.group, "version": r.version, "kind": r.kind}),
    );
    o.insert(
        "scope".into(),
        json!(if r.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }),
    );
    o.insert("singularResource".into(), json!(r.singular));
    o.insert("verbs".into(), json!(r.verbs));
    if !r.short_names.is_empty() {
        o.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        o.insert("categories".into(), json!(r.categories));
    }
    if !r.subresources.is_empty() {
        let subs: Vec<Value> = r
            .subresources
            .iter()
            .map(|s| {
                let (g, v) = if s.group.is_empty() { (r.group, r.version) } else { (s.group, s.version) };
                json!({"subresource": s.name, "responseKind": {"group": g, "version": v, "kind": s.kind}, "verbs": s.verbs})
            })
            .collect();
        o.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(o)
}

/// The aggregated document for `/api` (core only) or `/apis` (every named group).
pub fn aggregated(core: bool, version: &str, custom: &Catalog) -> Value {
    let mut items = Vec::new();
    let groups: Vec<(&str, Vec<&str>)> = if core {
        vec![("", vec!["v1"])]
    } else {
        all_groups(custom)
    };
    for (g, vs) in groups {
        let versions: Vec<Value> = vs
            .iter()
            .map(|v| {
                let resources: Vec<Value> = served_in(g, v, custom)
                    .into_iter()
                    .map(aggregated_resource)
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(json!({
            "metadata": {"name": g, "creationTimestamp": null},
            "versions": versions
        }));
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items
    })
}

/// The ETag of a discovery document: a quoted hash of its bytes.
pub fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in body {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("\"{h:016X}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_accept() {
        assert_eq!(
            wants_aggregated(Some("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")),
            Some("v2")
        );
        assert_eq!(wants_aggregated(Some("application/json")), None);
        assert_eq!(wants_aggregated(None), None);
    }

    #[test]
    fn legacy_lists_subresources_with_kinds() {
        let v1 = api_resource_list("", "v1", &Catalog::default()).unwrap();
        let res = v1["resources"].as_array().unwrap();
        let ev = res.iter().find(|r| r["name"] == "pods/eviction").unwrap();
        assert_eq!(ev["group"], "policy");
        assert_eq!(ev["kind"], "Eviction");
        let apps = api_resource_list("apps", "v1", &Catalog::default()).unwrap();
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap()
            .clone();
        assert_eq!(scale["group"], "autoscaling");
        assert_eq!(scale["kind"], "Scale");
        assert!(api_resource_list("nope", "v1", &Catalog::default()).is_none());
    }

    #[test]
    fn aggregated_has_categories() {
        let agg = aggregated(false, "v2", &Catalog::default());
        let apps = agg["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap()
            .clone();
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap()
            .clone();
        assert_eq!(deploy["categories"][0], "all");
        assert_eq!(deploy["shortNames"][0], "deploy");
        assert_eq!(deploy["scope"], "Namespaced");
    }

    #[test]
    fn custom_groups_follow_the_built_in_ones() {
        let c = crate::openapi::tests::widget_catalog();
        let list = api_group_list(&c);
        let groups = list["groups"].as_array().unwrap();
        let last = groups.last().unwrap();
        assert_eq!(last["name"], "example.com");
        assert_eq!(last["preferredVersion"]["version"], "v1");
        assert_eq!(last["versions"][1]["groupVersion"], "example.com/v1beta1");
        assert_eq!(api_group("example.com", &c).unwrap()["kind"], "APIGroup");
        let l = api_resource_list("example.com", "v1", &c).unwrap();
        let names: Vec<&str> = l["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["widgets", "widgets/scale", "widgets/status"]);
        let agg = aggregated(false, "v2", &c);
        let item = agg["items"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(item["versions"][0]["version"], "v1");
        assert_eq!(item["versions"][1]["resources"][0]["resource"], "widgets");
        // The ETag follows the document.
        let a = serde_json::to_vec(&agg).unwrap();
        let b = serde_json::to_vec(&aggregated(false, "v2", &Catalog::default())).unwrap();
        assert_ne!(etag(&a), etag(&b));
        assert_eq!(etag(&a), etag(&a.clone()));
    }
}
