//! OpenAPI v2 (`GET /openapi/v2`), which kubectl 1.27 and 1.28 read before `apply`, `create
//! -f`, `edit` and `replace` (to learn that the server validates fields) and which `explain`
//! falls back to. kubectl asks for gnostic's protobuf form
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, the `openapi.v2.Document`
//! message of google/gnostic-models) and accepts nothing else there; other clients get the
//! Swagger 2.0 JSON.
//!
//! The document is derived from the built-in OpenAPI v3 documents ([`crate::openapi`]): the
//! same paths and operations (each PATCH tagged with its kind's
//! `x-kubernetes-group-version-kind` and declaring `fieldValidation`, which is what kubectl's
//! `QueryParamVerifier` looks for) and the same k8s-openapi schemas as `definitions`, with
//! `$ref`s pointing at `#/definitions/`. Vendor extension values travel as YAML text in
//! gnostic's `Any`, as gnostic writes them. Both forms are built once, on first request.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use http::{HeaderMap, Response, StatusCode};
use serde_json::{json, Map, Value};
use skiff_proto::wire::Writer;

use crate::codec;
use crate::Body;

/// The media type kubectl asks for.
pub const PROTOBUF_MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The Content-Type of the protobuf answer. `@` is not a token character, so Go's
/// `mime.ParseMediaType` (which client-go runs on every response) refuses the requested
/// spelling; upstream's kube-openapi handler answers with this one.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

struct Doc {
    json: Vec<u8>,
    protobuf: Vec<u8>,
}

fn doc() -> &'static Doc {
    static DOC: OnceLock<Doc> = OnceLock::new();
    DOC.get_or_init(|| {
        let started = std::time::Instant::now();
        let v = swagger();
        let doc = Doc {
            json: serde_json::to_vec(&v).expect("json"),
            protobuf: encode_document(&v),
        };
        tracing::info!(
            json_bytes = doc.json.len(),
            protobuf_bytes = doc.protobuf.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "generated the OpenAPI v2 document"
        );
        doc
    })
}

/// Whether the client wants the protobuf form: kubectl names gnostic's media type (older
/// clients spell it `...spec.v2.v1.0+protobuf`).
pub fn wants_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|m| m.split(';').next().unwrap_or("").trim())
        .find(|m| {
            m.starts_with("application/com.github.proto-openapi.spec.v2")
                || *m == "application/json"
                || *m == "*/*"
        })
        .is_some_and(|m| m.ends_with("+protobuf"))
}

/// `GET /openapi/v2`.
pub fn response(headers: &HeaderMap) -> Response<Body> {
    let d = doc();
    let (ct, body) = if wants_protobuf(headers) {
        (PROTOBUF_CONTENT_TYPE, d.protobuf.clone())
    } else {
        ("application/json", d.json.clone())
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, ct)
        .body(codec::full(body))
        .expect("response")
}

const V3_PREFIX: &str = "#/components/schemas/";

/// Rewrites a v3 schema for Swagger 2.0: `$ref`s into `#/definitions/`, a lone
/// `allOf: [{$ref}]` (how v3 gives a reference siblings) back into `$ref`, no `nullable`.
fn v2_schema(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            let mut out = Map::new();
            for (k, x) in o {
                match k.as_str() {
                    "$ref" => {
                        let r = x.as_str().unwrap_or_default();
                        let name = r.strip_prefix(V3_PREFIX).unwrap_or(r);
                        out.insert(k.clone(), json!(format!("#/definitions/{name}")));
                    }
                    "allOf" if x.as_array().is_some_and(|a| a.len() == 1) => {
                        if let Value::Object(inner) = v2_schema(&x[0]) {
                            out.extend(inner);
                        }
                    }
                    "nullable" => {}
                    // Maps of schemas by name, or values that are data, not schemas.
                    "properties" => {
                        let props = x
                            .as_object()
                            .map(|p| p.iter().map(|(n, s)| (n.clone(), v2_schema(s))).collect())
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    "enum" | "default" | "example" | "required" => {
                        out.insert(k.clone(), x.clone());
                    }
                    _ if k.starts_with("x-") => {
                        out.insert(k.clone(), x.clone());
                    }
                    _ => {
                        out.insert(k.clone(), v2_schema(x));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(v2_schema).collect()),
        other => other.clone(),
    }
}

/// A v3 parameter as a Swagger 2.0 one (the schema's type moves up).
fn v2_parameter(p: &Value) -> Value {
    let mut out = Map::new();
    for k in ["name", "in", "description", "required"] {
        if let Some(x) = p.get(k) {
            out.insert(k.into(), x.clone());
        }
    }
    if let Some(Value::Object(s)) = p.get("schema") {
        for (k, x) in s {
            out.insert(k.clone(), x.clone());
        }
    }
    Value::Object(out)
}

fn v2_operation(op: &Value) -> Value {
    let mut out = Map::new();
    if let Some(id) = op.get("operationId") {
        out.insert("operationId".into(), id.clone());
    }
    let mut params = Vec::new();
    if let Some(body) = op.get("requestBody") {
        let content = body.get("content").and_then(Value::as_object);
        let consumes: Vec<&String> = content.map(|c| c.keys().collect()).unwrap_or_default();
        let schema = content
            .and_then(|c| c.values().next())
            .and_then(|m| m.get("schema"))
            .map(v2_schema)
            .unwrap_or_else(|| json!({"type": "object"}));
        out.insert("consumes".into(), json!(consumes));
        params.push(json!({"name": "body", "in": "body", "required": true, "schema": schema}));
    }
    out.insert(
        "produces".into(),
        json!([
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf"
        ]),
    );
    out.insert("schemes".into(), json!(["https"]));
    if let Some(Value::Array(ps)) = op.get("parameters") {
        params.extend(ps.iter().map(v2_parameter));
    }
    out.insert("parameters".into(), Value::Array(params));
    let mut responses = Map::new();
    if let Some(Value::Object(rs)) = op.get("responses") {
        for (code, r) in rs {
            responses.insert(
                code.clone(),
                json!({"description": r.get("description").cloned().unwrap_or(json!(""))}),
            );
        }
    }
    out.insert("responses".into(), Value::Object(responses));
    if let Value::Object(o) = op {
        for (k, x) in o {
            if k.starts_with("x-") {
                out.insert(k.clone(), x.clone());
            }
        }
    }
    Value::Object(out)
}

/// The Swagger 2.0 document of every built-in group-version.
fn swagger() -> Value {
    let index = crate::openapi::index();
    let mut paths: BTreeMap<String, Value> = BTreeMap::new();
    let mut definitions: BTreeMap<String, Value> = BTreeMap::new();
    let gvs: Vec<&String> = index
        .get("paths")
        .and_then(Value::as_object)
        .map(|p| p.keys().collect())
        .unwrap_or_default();
    for gv in gvs {
        let Some(bytes) = crate::openapi::document(gv) else {
            continue;
        };
        let Ok(v3) = serde_json::from_slice::<Value>(bytes) else {
            continue;
        };
        if let Some(Value::Object(ps)) = v3.get("paths") {
            for (path, item) in ps {
                let mut out = Map::new();
                if let Value::Object(item) = item {
                    for (k, x) in item {
                        if k == "parameters" {
                            let ps = x.as_array().map(|a| a.iter().map(v2_parameter).collect());
                            out.insert(k.clone(), Value::Array(ps.unwrap_or_default()));
                        } else {
                            out.insert(k.clone(), v2_operation(x));
                        }
                    }
                }
                paths.insert(path.clone(), Value::Object(out));
            }
        }
        if let Some(Value::Object(schemas)) = v3.pointer("/components/schemas") {
            for (name, s) in schemas {
                definitions
                    .entry(name.clone())
                    .or_insert_with(|| v2_schema(s));
            }
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::KUBERNETES_VERSION},
        "paths": paths,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {"description": "Bearer Token authentication", "type": "apiKey", "name": "authorization", "in": "header"}
        },
        "security": [{"BearerToken": []}]
    })
}

// Field numbers of gnostic's openapi.v2 messages (OpenAPIv2.proto).

/// `Any { yaml = 2 }`: a JSON value as YAML text.
fn any(v: &Value) -> Writer {
    let mut w = Writer::new();
    w.string(2, &serde_yaml_ng::to_string(v).unwrap_or_default());
    w
}

/// `NamedAny { name = 1, value = 2 }` for every `x-` key of `o`, added as field `number`.
fn vendor_extensions(w: &mut Writer, number: u32, o: &Map<String, Value>) {
    for (k, v) in o {
        if k.starts_with("x-") {
            let mut named = Writer::new();
            named.string(1, k).message(2, &any(v));
            w.message(number, &named);
        }
    }
}

fn strings(w: &mut Writer, number: u32, v: Option<&Value>) {
    for s in v.and_then(Value::as_array).into_iter().flatten() {
        if let Some(s) = s.as_str() {
            w.string(number, s);
        }
    }
}

fn opt_str(w: &mut Writer, number: u32, v: Option<&Value>) {
    if let Some(s) = v.and_then(Value::as_str) {
        w.string(number, s);
    }
}

fn opt_bool(w: &mut Writer, number: u32, v: Option<&Value>) {
    if let Some(true) = v.and_then(Value::as_bool) {
        w.bool(number, true);
    }
}

fn opt_int(w: &mut Writer, number: u32, v: Option<&Value>) {
    if let Some(n) = v.and_then(Value::as_i64) {
        w.int64(number, n);
    }
}

fn opt_double(w: &mut Writer, number: u32, v: Option<&Value>) {
    if let Some(n) = v.and_then(Value::as_f64) {
        w.double(number, n);
    }
}

/// `openapi.v2.Schema`.
fn schema(v: &Value) -> Writer {
    let mut w = Writer::new();
    let Some(o) = v.as_object() else {
        return w;
    };
    opt_str(&mut w, 1, o.get("$ref"));
    opt_str(&mut w, 2, o.get("format"));
    opt_str(&mut w, 3, o.get("title"));
    opt_str(&mut w, 4, o.get("description"));
    if let Some(d) = o.get("default") {
        w.message(5, &any(d));
    }
    opt_double(&mut w, 6, o.get("multipleOf"));
    opt_double(&mut w, 7, o.get("maximum"));
    opt_bool(&mut w, 8, o.get("exclusiveMaximum"));
    opt_double(&mut w, 9, o.get("minimum"));
    opt_bool(&mut w, 10, o.get("exclusiveMinimum"));
    opt_int(&mut w, 11, o.get("maxLength"));
    opt_int(&mut w, 12, o.get("minLength"));
    opt_str(&mut w, 13, o.get("pattern"));
    opt_int(&mut w, 14, o.get("maxItems"));
    opt_int(&mut w, 15, o.get("minItems"));
    opt_bool(&mut w, 16, o.get("uniqueItems"));
    opt_int(&mut w, 17, o.get("maxProperties"));
    opt_int(&mut w, 18, o.get("minProperties"));
    strings(&mut w, 19, o.get("required"));
    for e in o
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(20, &any(e));
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut ap = Writer::new();
            ap.bool(2, *b);
            w.message(21, &ap);
        }
        Some(s @ Value::Object(_)) => {
            let mut ap = Writer::new();
            ap.message(1, &schema(s));
            w.message(21, &ap);
        }
        _ => {}
    }
    match o.get("type") {
        Some(Value::String(t)) => {
            let mut ti = Writer::new();
            ti.string(1, t);
            w.message(22, &ti);
        }
        Some(Value::Array(ts)) => {
            let mut ti = Writer::new();
            for t in ts.iter().filter_map(Value::as_str).filter(|t| *t != "null") {
                ti.string(1, t);
            }
            w.message(22, &ti);
        }
        _ => {}
    }
    if let Some(items) = o.get("items") {
        let mut ii = Writer::new();
        match items {
            Value::Array(a) => {
                for s in a {
                    ii.message(1, &schema(s));
                }
            }
            s => {
                ii.message(1, &schema(s));
            }
        }
        w.message(23, &ii);
    }
    for s in o
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(24, &schema(s));
    }
    if let Some(Value::Object(props)) = o.get("properties") {
        let mut p = Writer::new();
        for (name, s) in props {
            let mut named = Writer::new();
            named.string(1, name).message(2, &schema(s));
            p.message(1, &named);
        }
        w.message(25, &p);
    }
    opt_bool(&mut w, 27, o.get("readOnly"));
    if let Some(e) = o.get("example") {
        w.message(30, &any(e));
    }
    vendor_extensions(&mut w, 31, o);
    w
}

/// `openapi.v2.ParametersItem { parameter = 1 }`, body or non-body.
fn parameter(p: &Value) -> Writer {
    let mut param = Writer::new();
    match p.get("in").and_then(Value::as_str).unwrap_or("") {
        "body" => {
            let mut b = Writer::new();
            opt_str(&mut b, 1, p.get("description"));
            opt_str(&mut b, 2, p.get("name"));
            b.string(3, "body");
            opt_bool(&mut b, 4, p.get("required"));
            if let Some(s) = p.get("schema") {
                b.message(5, &schema(s));
            }
            param.message(1, &b);
        }
        location => {
            // Query and path sub-schemas share the leading fields; their `type` and later
            // fields are numbered one apart (query has allow_empty_value = 5).
            let (sub_field, type_field) = match location {
                "path" => (4, 5),
                "header" => (1, 5),
                _ => (3, 6),
            };
            let mut s = Writer::new();
            opt_bool(&mut s, 1, p.get("required"));
            s.string(2, location);
            opt_str(&mut s, 3, p.get("description"));
            opt_str(&mut s, 4, p.get("name"));
            opt_str(&mut s, type_field, p.get("type"));
            opt_bool(&mut s, type_field + 14, p.get("uniqueItems"));
            let mut nb = Writer::new();
            nb.message(sub_field, &s);
            param.message(2, &nb);
        }
    }
    let mut item = Writer::new();
    item.message(1, &param);
    item
}

/// `openapi.v2.Operation`.
fn operation(op: &Value) -> Writer {
    let mut w = Writer::new();
    strings(&mut w, 1, op.get("tags"));
    opt_str(&mut w, 3, op.get("description"));
    opt_str(&mut w, 5, op.get("operationId"));
    strings(&mut w, 6, op.get("produces"));
    strings(&mut w, 7, op.get("consumes"));
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        w.message(8, &parameter(p));
    }
    let mut responses = Writer::new();
    for (code, r) in op
        .get("responses")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let mut resp = Writer::new();
        opt_str(&mut resp, 1, r.get("description"));
        if let Some(s) = r.get("schema") {
            let mut si = Writer::new();
            si.message(1, &schema(s));
            resp.message(2, &si);
        }
        let mut rv = Writer::new();
        rv.message(1, &resp);
        let mut named = Writer::new();
        named.string(1, code).message(2, &rv);
        responses.message(1, &named);
    }
    w.message(9, &responses);
    strings(&mut w, 10, op.get("schemes"));
    if let Some(o) = op.as_object() {
        vendor_extensions(&mut w, 13, o);
    }
    w
}

/// `openapi.v2.Document` of a Swagger 2.0 JSON document.
pub fn encode_document(v: &Value) -> Vec<u8> {
    let mut w = Writer::new();
    opt_str(&mut w, 1, v.get("swagger"));
    if let Some(info) = v.get("info") {
        let mut i = Writer::new();
        opt_str(&mut i, 1, info.get("title"));
        opt_str(&mut i, 2, info.get("version"));
        w.message(2, &i);
    }
    let mut paths = Writer::new();
    for (path, item) in v
        .get("paths")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let mut pi = Writer::new();
        for (method, number) in [
            ("get", 2),
            ("put", 3),
            ("post", 4),
            ("delete", 5),
            ("options", 6),
            ("head", 7),
            ("patch", 8),
        ] {
            if let Some(op) = item.get(method) {
                pi.message(number, &operation(op));
            }
        }
        for p in item
            .get("parameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            pi.message(9, &parameter(p));
        }
        let mut named = Writer::new();
        named.string(1, path).message(2, &pi);
        paths.message(2, &named);
    }
    w.message(8, &paths);
    let mut defs = Writer::new();
    for (name, s) in v
        .get("definitions")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let mut named = Writer::new();
        named.string(1, name).message(2, &schema(s));
        defs.message(1, &named);
    }
    w.message(9, &defs);
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_proto::wire::{Reader, Value as W};

    /// Every length-delimited field numbered `n` of a message.
    fn all(buf: &[u8], n: u32) -> Vec<&[u8]> {
        let mut r = Reader::new(buf);
        let mut out = Vec::new();
        while let Some((num, v)) = r.field().unwrap() {
            if let (true, W::Len(b)) = (num == n, v) {
                out.push(b);
            }
        }
        out
    }

    fn one(buf: &[u8], n: u32) -> &[u8] {
        all(buf, n).into_iter().next().unwrap_or_default()
    }

    fn string(buf: &[u8], n: u32) -> String {
        String::from_utf8(one(buf, n).to_vec()).unwrap()
    }

    #[test]
    fn json_document_has_paths_and_definitions_for_every_kind() {
        let v = swagger();
        assert_eq!(v["swagger"], "2.0");
        let defs = v["definitions"].as_object().unwrap();
        for r in skiff_core::registry::RESOURCES
            .iter()
            .filter(|r| r.custom.is_none())
        {
            let tagged = defs.values().any(|d| {
                d["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|a| {
                        a.iter()
                            .any(|g| g["kind"] == r.kind && g["group"] == r.group)
                    })
            });
            assert!(tagged, "no definition tagged with {}", r.kind);
        }
        let patch = &v["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        assert!(patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"
                && p["in"] == "query"
                && p["type"] == "string"));
        // Every reference resolves (kube-openapi refuses a document where one does not).
        let text = serde_json::to_string(&v).unwrap();
        assert!(!text.contains("#/components/schemas/"));
        for part in text.split("\"$ref\":\"#/definitions/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            assert!(defs.contains_key(name), "dangling reference {name}");
        }
        let post = &v["paths"]["/api/v1/namespaces/{namespace}/pods"]["post"];
        assert_eq!(
            post["parameters"][0]["schema"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.Pod"
        );
    }

    #[test]
    fn protobuf_document_carries_what_kubectl_reads() {
        let v = swagger();
        let pb = encode_document(&v);
        assert_eq!(string(&pb, 1), "2.0");
        // paths (8) → NamedPathItem (2) → PathItem.patch (8) → vendor extension (13) with the
        // GVK as YAML, and the fieldValidation query parameter (8 → 1 → 2 → 3 → name 4).
        let paths = one(&pb, 8);
        let item = all(paths, 2)
            .into_iter()
            .find(|np| string(np, 1) == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
            .expect("deployment path");
        let patch = one(one(item, 2), 8);
        let gvk = all(patch, 13)
            .into_iter()
            .find(|na| string(na, 1) == "x-kubernetes-group-version-kind")
            .expect("gvk extension");
        let yaml = string(one(gvk, 2), 2);
        let parsed: Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(
            parsed,
            json!({"group": "apps", "version": "v1", "kind": "Deployment"})
        );
        let names: Vec<String> = all(patch, 8)
            .into_iter()
            .filter_map(|pi| {
                let nb = one(one(pi, 1), 2);
                let q = one(nb, 3);
                (!q.is_empty()).then(|| string(q, 4))
            })
            .collect();
        assert!(names.contains(&"fieldValidation".to_string()), "{names:?}");
        // definitions (9) → NamedSchema (1) for Deployment, with properties (25) and its GVK.
        let defs = one(&pb, 9);
        let dep = all(defs, 1)
            .into_iter()
            .find(|ns| string(ns, 1) == "io.k8s.api.apps.v1.Deployment")
            .expect("deployment definition");
        let s = one(dep, 2);
        let props: Vec<String> = all(one(s, 25), 1)
            .into_iter()
            .map(|np| string(np, 1))
            .collect();
        assert!(props.contains(&"spec".to_string()) && props.contains(&"metadata".to_string()));
        let meta = all(one(s, 25), 1)
            .into_iter()
            .find(|np| string(np, 1) == "metadata")
            .unwrap();
        assert_eq!(
            string(one(meta, 2), 1),
            "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(all(s, 31)
            .into_iter()
            .any(|na| string(na, 1) == "x-kubernetes-group-version-kind"));
    }

    #[test]
    fn negotiation() {
        let h = |a: &str| {
            let mut m = HeaderMap::new();
            m.insert(http::header::ACCEPT, a.parse().unwrap());
            m
        };
        assert!(wants_protobuf(&h(PROTOBUF_MEDIA_TYPE)));
        assert!(wants_protobuf(&h(
            "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
        )));
        assert!(!wants_protobuf(&h("application/json")));
        assert!(!wants_protobuf(&h(
            "application/json, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        )));
        assert!(!wants_protobuf(&HeaderMap::new()));
    }
}
