//! Server-side field validation (upstream's `fieldValidation` query parameter, KEP-2885):
//! what happens to fields of a request that the kind does not declare, and to keys given twice.
//!
//! - `Strict`: the request fails. A create or update body answers 400 BadRequest,
//!   `Deployment in version "v1" cannot be handled as a Deployment: strict decoding error:
//!   unknown field "spec.foo", duplicate field "spec.replicas"` (rest.go's
//!   `transformDecodeError`); a JSON, merge or strategic merge patch answers 422 Invalid on the
//!   field `patch` (patch.go), with the patched object (JSON and merge patches) or Go's `%+v` of
//!   the patch (strategic merge patches) as the invalid value. Nothing is stored.
//! - `Warn` (the default when the parameter is absent): the request succeeds without the
//!   unknown fields and each finding comes back as a `Warning: 299 - "unknown field
//!   \"spec.foo\""` header (see [`crate::warnings`]).
//! - `Ignore`: the unknown fields are dropped silently.
//! - Anything else is 422 `CreateOptions.meta.k8s.io "" is invalid: fieldValidation:
//!   Unsupported value: …` (`UpdateOptions`, `PatchOptions` for those verbs).
//!
//! Unknown fields are never stored, whatever the mode: upstream decodes every built-in kind
//! into its Go type, which has nowhere to keep them ([`shape`] finds and removes them, from the
//! schemas `/openapi/v3` serves). Paths are named as sigs.k8s.io/json names them:
//! `spec.template.spec.containers[0].bar`, map keys as fields (`metadata.labels.x`).
//! Duplicate keys are noticed while decoding ([`decode`]); JSON bodies report their paths
//! (`duplicate field "spec.replicas"`), YAML bodies go-yaml's lines (`yaml: unmarshal errors:\n
//! line 4: key "replicas" already set in map`; only the first duplicate of a YAML document that
//! is not JSON is found).
//!
//! Server-side apply is different upstream and here: a field the kind does not declare fails
//! the apply in every mode, with structured-merge-diff's message (`failed to create typed patch
//! object (default/web; apps/v1, Kind=Deployment): .spec.foo: field not declared in schema`,
//! a 500 without a reason, as upstream answers); duplicate keys of the configuration are
//! refused under `Strict` (400 `error strict decoding YAML: …`) and warned about under `Warn`.
//!
//! Request handlers call [`check_request_body`] on create and update bodies, a [`PatchCheck`]
//! on each patched object (worked out once per patch), and [`check_apply`] on apply
//! configurations.
//! For other code (custom resources prune with their own schemas): build [`Finding`]s, e.g.
//! `Finding::Unknown(path)`, and pass them with the request's [`Directive`] to [`report`] with
//! [`body_error`] (create/update) or [`patch_error`] (patches) as the error to give under
//! `Strict`; under `Warn` they become warnings on the response, under `Ignore` nothing.
//!
//! Findings come in upstream's order: a JSON body's in document order; go-yaml's duplicates
//! before a YAML body's unknown fields; a patch body's duplicates before the patched object's
//! unknown fields. Known difference: the invalid value of a JSON or merge patch error is Skiff's
//! JSON of the patched object, not Go's.

pub(crate) mod decode;
mod fastjson;
pub mod shape;

use serde_json::Value;
use skiff_core::meta::Fields as _;
use skiff_core::registry::Resource;
use skiff_core::status::Cause;
use skiff_core::ApiError;

use crate::request::Query;
use crate::warnings::{self, go_quote};
pub use shape::{FieldPath, Segment};

/// The kind whose schema a document is checked against: the URL's kind, or the kind of a
/// subresource's body (`autoscaling/v1` `Scale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaKind<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
}

impl<'a> From<&'a Resource> for SchemaKind<'a> {
    fn from(r: &'a Resource) -> Self {
        SchemaKind {
            group: r.group,
            version: r.version,
            kind: r.kind,
        }
    }
}

/// What to do with unknown and duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    Ignore,
    Warn,
    Strict,
}

impl Directive {
    /// Parses the parameter's value; `options_kind` (`CreateOptions`, `UpdateOptions`,
    /// `PatchOptions`) names the options in the error for a bad value. Absent or empty is Warn.
    pub fn parse(value: Option<&str>, options_kind: &str) -> Result<Directive, ApiError> {
        match value.unwrap_or("") {
            "" | "Warn" => Ok(Directive::Warn),
            "Strict" => Ok(Directive::Strict),
            "Ignore" => Ok(Directive::Ignore),
            other => {
                let body = format!(
                    "Unsupported value: {}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\"",
                    go_quote(other)
                );
                let mut e = ApiError::new(
                    422,
                    "Invalid",
                    format!("{options_kind}.meta.k8s.io \"\" is invalid: fieldValidation: {body}"),
                );
                e.details.group = "meta.k8s.io".into();
                e.details.kind = options_kind.to_string();
                e.details.causes.push(Cause {
                    reason: "FieldValueNotSupported".into(),
                    message: body,
                    field: "fieldValidation".into(),
                });
                Err(e)
            }
        }
    }

    /// The directive of a request's query.
    pub fn from_query(q: &Query, options_kind: &str) -> Result<Directive, ApiError> {
        Directive::parse(q.get("fieldValidation"), options_kind)
    }
}

/// One strict decoding finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// A field the type does not declare, by path (`spec.foo`).
    Unknown(String),
    /// A key given twice in a JSON object, by path (`spec.replicas`).
    Duplicate(String),
    /// go-yaml's strict errors, one per line: `line 4: key "replicas" already set in map`.
    Yaml(Vec<String>),
    /// Any other strict error, as its full text (`json patch unknown field "[0].foo"`).
    Other(String),
}

impl Finding {
    /// The error's text inside a strict decoding error.
    pub fn error_text(&self) -> String {
        match self {
            Finding::Unknown(p) => format!("unknown field {}", go_quote(p)),
            Finding::Duplicate(p) => format!("duplicate field {}", go_quote(p)),
            Finding::Yaml(lines) => yaml_error(lines),
            Finding::Other(t) => t.clone(),
        }
    }

    /// The warnings it gives under `Warn` (go-yaml's block split into its lines, as upstream's
    /// `parseYAMLWarnings`).
    pub fn warnings(&self) -> Vec<String> {
        match self {
            Finding::Yaml(lines) => lines.clone(),
            other => vec![other.error_text()],
        }
    }
}

fn yaml_error(lines: &[String]) -> String {
    let mut s = String::from("yaml: unmarshal errors:");
    for l in lines {
        s.push_str("\n  ");
        s.push_str(l);
    }
    s
}

/// `strict decoding error: a, b` (apimachinery's `StrictDecodingError`).
pub fn strict_message(findings: &[Finding]) -> String {
    let parts: Vec<String> = findings.iter().map(Finding::error_text).collect();
    format!("strict decoding error: {}", parts.join(", "))
}

/// Applies `directive` to `findings`: under `Strict` (and with findings) the error
/// `make_error` builds from the strict decoding message; under `Warn` one warning each on the
/// response; under `Ignore` nothing.
pub fn report(
    directive: Directive,
    findings: &[Finding],
    make_error: impl FnOnce(String) -> ApiError,
) -> Result<(), ApiError> {
    if findings.is_empty() {
        return Ok(());
    }
    match directive {
        Directive::Strict => Err(make_error(strict_message(findings))),
        Directive::Warn => {
            for f in findings {
                for w in f.warnings() {
                    warnings::add(&w);
                }
            }
            Ok(())
        }
        Directive::Ignore => Ok(()),
    }
}

/// The 400 of a create or update body that failed strict decoding:
/// `Deployment in version "v1" cannot be handled as a Deployment: <message>`.
pub fn body_error(kind: &str, version: &str, target_kind: &str, message: String) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a {target_kind}: {message}"
    ))
}

/// The 422 of a patch whose result failed strict decoding: `"" is invalid: patch: Invalid
/// value: "<value>": <message>`, with the kind and name left empty as upstream does.
pub fn patch_error(value: &str, message: String) -> ApiError {
    let body = format!("Invalid value: {}: {message}", go_quote(value));
    let mut e = ApiError::new(422, "Invalid", format!(" \"\" is invalid: patch: {body}"));
    e.details.causes.push(Cause {
        reason: "FieldValueInvalid".into(),
        message: body,
        field: "patch".into(),
    });
    e
}

/// Duplicate-key findings of a decoded document whose decoder saw duplicates: JSON paths
/// (`yaml_style` false), or go-yaml's lines (`yaml_style`, for YAML bodies and apply
/// configurations).
pub(crate) fn duplicate_findings(body: &[u8], yaml_style: bool) -> Vec<Finding> {
    let is_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{' || *b == b'[')
        && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok();
    if is_json {
        let dups = decode::json_duplicates(body);
        if dups.is_empty() {
            return Vec::new();
        }
        if yaml_style {
            return vec![Finding::Yaml(
                dups.iter()
                    .map(|d| {
                        format!(
                            "line {}: key {} already set in map",
                            d.line,
                            go_quote(&d.key)
                        )
                    })
                    .collect(),
            )];
        }
        return dups
            .into_iter()
            .map(|d| Finding::Duplicate(d.path))
            .collect();
    }
    std::str::from_utf8(body)
        .ok()
        .and_then(decode::yaml_first_duplicate)
        .map(|l| vec![Finding::Yaml(vec![l])])
        .unwrap_or_default()
}

/// The kind and version a body names (`kind`, the version of `apiVersion`), or the target's.
fn body_gvk<'a>(obj: &'a Value, target: SchemaKind<'a>) -> (&'a str, &'a str) {
    let kind = obj
        .field("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .unwrap_or(target.kind);
    let version = obj
        .field("apiVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .map(|av| av.rsplit('/').next().unwrap_or(av))
        .unwrap_or(target.version);
    (kind, version)
}

/// Whether `kind` is a built-in kind whose unknown fields this module finds (custom resources
/// are not: their CRD's schema prunes them).
pub fn has_schema(kind: SchemaKind<'_>) -> bool {
    shape::Shapes::get().has(kind.group, kind.version, kind.kind)
}

/// Removes the fields of `obj` that kind `group/version, kind` does not declare and returns
/// them as findings (none for a kind without a schema).
pub fn prune_unknown(group: &str, version: &str, kind: &str, obj: &mut Value) -> Vec<Finding> {
    let shapes = shape::Shapes::get();
    let Some(found) = shapes.unknown_fields(group, version, kind, obj) else {
        return Vec::new();
    };
    // Removed innermost-last is fine: no found path is a prefix of another.
    for p in &found {
        shape::remove(obj, p);
    }
    found
        .into_iter()
        .map(|p| Finding::Unknown(p.to_string()))
        .collect()
}

/// Field validation of a create or update body of `schema` (the URL's kind, or the kind of a
/// subresource such as `Scale`): `duplicates` are the decoder's findings. Unknown fields are
/// removed from `obj` in every mode; under `Strict` any finding fails the request.
pub fn check_body(
    schema: SchemaKind<'_>,
    obj: &mut Value,
    duplicates: Vec<Finding>,
    directive: Directive,
) -> Result<(), ApiError> {
    let unknown = prune_unknown(schema.group, schema.version, schema.kind, obj);
    let mut findings: Vec<Finding> = duplicates
        .into_iter()
        .filter(|d| !inside_unknown(d, &unknown))
        .collect();
    findings.extend(unknown);
    finish_body(schema, obj, &findings, directive)
}

/// Typed decoding skips an unknown field's value: keys repeated at or below it are not
/// reported as duplicates.
fn inside_unknown(d: &Finding, unknown: &[Finding]) -> bool {
    let Finding::Duplicate(p) = d else {
        return false;
    };
    unknown.iter().any(|u| match u {
        Finding::Unknown(u) => {
            p == u
                || p.strip_prefix(u.as_str())
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        }
        _ => false,
    })
}

/// Field validation of a create or update request body of `schema`, decoded from `body`
/// (`content_type`) by [`crate::codec::decode_checked`], which said whether it saw
/// `duplicates`. As [`check_body`], with the findings of a JSON body in document order, as
/// upstream's single decoding pass meets them (go-yaml's duplicates come first for YAML).
pub fn check_request_body(
    schema: SchemaKind<'_>,
    obj: &mut Value,
    body: &[u8],
    content_type: &str,
    duplicates: bool,
    directive: Directive,
) -> Result<(), ApiError> {
    if !duplicates || directive == Directive::Ignore {
        return check_body(schema, obj, Vec::new(), directive);
    }
    let yaml = !matches!(content_type, "application/json" | "*/*");
    if yaml {
        return check_body(schema, obj, duplicate_findings(body, true), directive);
    }
    let unknown = prune_unknown(schema.group, schema.version, schema.kind, obj);
    let offsets = if unknown.is_empty() {
        Default::default()
    } else {
        decode::key_offsets(body)
    };
    let mut ordered: Vec<(usize, Finding)> = decode::json_duplicates(body)
        .into_iter()
        .map(|d| (d.offset, Finding::Duplicate(d.path)))
        .filter(|(_, d)| !inside_unknown(d, &unknown))
        .collect();
    for u in unknown {
        let at = match &u {
            Finding::Unknown(p) => offsets.get(p).copied().unwrap_or(usize::MAX),
            _ => usize::MAX,
        };
        ordered.push((at, u));
    }
    ordered.sort_by_key(|(at, _)| *at);
    let findings: Vec<Finding> = ordered.into_iter().map(|(_, f)| f).collect();
    finish_body(schema, obj, &findings, directive)
}

fn finish_body(
    schema: SchemaKind<'_>,
    obj: &Value,
    findings: &[Finding],
    directive: Directive,
) -> Result<(), ApiError> {
    let (kind, version) = body_gvk(obj, schema);
    report(directive, findings, |m| {
        body_error(kind, version, schema.kind, m)
    })
}

/// Which kind of patch a result came from: it decides the invalid value of a strict error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
}

/// Strict findings of a patch body itself, checked once before it is applied: duplicate keys
/// (`duplicate field "spec.replicas"`; `json patch duplicate field "[0].op"` in a JSON patch)
/// and, in a JSON patch, operation fields other than op, path, from and value.
pub fn patch_body_findings(kind: PatchKind, body: &[u8], directive: Directive) -> Vec<Finding> {
    if directive == Directive::Ignore {
        return Vec::new();
    }
    let mut out: Vec<Finding> = decode::json_duplicates(body)
        .into_iter()
        .map(|d| match kind {
            PatchKind::Json => {
                Finding::Other(format!("json patch duplicate field {}", go_quote(&d.path)))
            }
            _ => Finding::Duplicate(d.path),
        })
        .collect();
    if kind == PatchKind::Json {
        if let Ok(Value::Array(ops)) = serde_json::from_slice::<Value>(body) {
            for (i, op) in ops.iter().enumerate() {
                for k in op.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !matches!(k.as_str(), "op" | "path" | "from" | "value") {
                        out.push(Finding::Other(format!(
                            "json patch unknown field {}",
                            go_quote(&format!("[{i}].{k}"))
                        )));
                    }
                }
            }
        }
    }
    out
}

/// Field validation of a patched object of `schema`: its unknown fields are removed; with the
/// patch body's own findings (`body_findings`) they fail the patch under `Strict` (422 on
/// `patch`), or become warnings under `Warn`. `patch` is the decoded patch, shown (as Go's
/// `%+v`) in the error of a strategic merge patch.
pub fn check_patched(
    schema: SchemaKind<'_>,
    obj: &mut Value,
    kind: PatchKind,
    patch: &Value,
    body_findings: &[Finding],
    directive: Directive,
) -> Result<(), ApiError> {
    let before =
        (directive == Directive::Strict && kind != PatchKind::Strategic).then(|| obj.to_string());
    let mut findings = body_findings.to_vec();
    findings.extend(prune_unknown(
        schema.group,
        schema.version,
        schema.kind,
        obj,
    ));
    report(directive, &findings, |m| {
        let value = match kind {
            PatchKind::Strategic => go_format(patch),
            _ => before.unwrap_or_default(),
        };
        patch_error(&value, m)
    })
}

/// Everything [`check_patched`] needs about one patch, worked out once before it is applied
/// (the patch may be applied again when a write loses a race).
pub struct PatchCheck {
    kind: PatchKind,
    patch: Value,
    body_findings: Vec<Finding>,
    directive: Directive,
}

impl PatchCheck {
    /// The check of a JSON, merge or strategic merge patch (`None` for an apply patch, which
    /// [`check_apply`] judges). `body` is the request body `patch` was decoded from.
    pub fn new(
        patch: &crate::server::Patch,
        body: &[u8],
        directive: Directive,
    ) -> Option<PatchCheck> {
        use crate::server::Patch;
        let (kind, patch) = match patch {
            Patch::Json(_) => (PatchKind::Json, Value::Null),
            Patch::Merge(v) => (PatchKind::Merge, v.clone()),
            Patch::Strategic(v) => (PatchKind::Strategic, v.clone()),
            Patch::Apply(_) => return None,
        };
        Some(PatchCheck {
            kind,
            body_findings: patch_body_findings(kind, body, directive),
            patch,
            directive,
        })
    }

    /// Checks (and prunes) a patched object of `schema`; see [`check_patched`].
    pub fn check(&self, schema: SchemaKind<'_>, obj: &mut Value) -> Result<(), ApiError> {
        check_patched(
            schema,
            obj,
            self.kind,
            &self.patch,
            &self.body_findings,
            self.directive,
        )
    }
}

/// Field validation of a server-side apply configuration (`body` is the request body):
/// undeclared fields fail in every mode with structured-merge-diff's message; duplicate keys
/// fail under `Strict` and warn under `Warn`.
pub fn check_apply(
    res: &Resource,
    config: &Value,
    body: &[u8],
    directive: Directive,
) -> Result<(), ApiError> {
    let shapes = shape::Shapes::get();
    if let Some(found) = shapes.unknown_fields(res.group, res.version, res.kind, config) {
        if !found.is_empty() {
            let errs: Vec<String> = found
                .iter()
                .map(|p| format!("{}: field not declared in schema", smd_path(res, config, p)))
                .collect();
            let detail = if errs.len() == 1 {
                errs[0].clone()
            } else {
                format!("errors:\n  {}", errs.join("\n  "))
            };
            let meta = config.field("metadata");
            let field = |k: &str| {
                meta.and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            return Err(ApiError::new(
                500,
                "",
                format!(
                    "failed to create typed patch object ({}/{}; {}/{}, Kind={}): {detail}",
                    field("namespace"),
                    field("name"),
                    res.group,
                    res.version,
                    res.kind
                ),
            ));
        }
    }
    if directive == Directive::Ignore {
        return Ok(());
    }
    let dups = duplicate_findings(body, true);
    match (directive, dups.first()) {
        (_, None) => Ok(()),
        (Directive::Strict, Some(f)) => Err(ApiError::bad_request(format!(
            "error strict decoding YAML: error converting YAML to JSON: {}",
            f.error_text()
        ))),
        _ => report(Directive::Warn, &dups, ApiError::bad_request),
    }
}

/// A path as structured-merge-diff prints it: `.spec.containers[name="web"].foo`, list items
/// by their merge key where the list has one.
fn smd_path(res: &Resource, obj: &Value, path: &FieldPath) -> String {
    use skiff_core::managed::{fieldset, DisplayPath, PathElement};
    let mut names: Vec<&str> = Vec::new();
    let mut elems = Vec::new();
    let mut cur = Some(obj);
    for s in &path.0 {
        match s {
            Segment::Key(k) => {
                names.push(k);
                elems.push(PathElement::Field(k.clone()));
                cur = cur.and_then(|v| v.get(k.as_str()));
            }
            Segment::Index(i) => {
                let item = cur.and_then(|v| v.get(*i));
                let meta = skiff_core::strategic::field_meta(res, &names);
                let el = match (meta.merge_key(), item) {
                    (Some(key), Some(item)) => fieldset::key_element(key, item),
                    (None, Some(item)) if meta.is_primitive_merge_list() => {
                        Some(fieldset::value_element(item))
                    }
                    _ => None,
                };
                elems.push(el.unwrap_or(PathElement::Index(*i)));
                cur = item;
            }
        }
    }
    DisplayPath(&elems).to_string()
}

/// A decoded JSON value as Go's `fmt` prints the `map[string]interface{}` it would decode to
/// (`%v`/`%+v`): `map[a:1 b:[x y]]`, keys sorted, `<nil>` for null.
pub fn go_format(v: &Value) -> String {
    let mut s = String::new();
    go_format_into(v, &mut s);
    s
}

fn go_format_into(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (_, _, Some(f)) => out.push_str(&go_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                go_format_into(x, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            out.push_str("map[");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                go_format_into(&o[k], out);
            }
            out.push(']');
        }
    }
}

/// A float64 as Go's `%v` prints it: the shortest representation, in exponent form when the
/// exponent is below -4 or at least 21 (`1e+21`, `1e-05`).
fn go_float(f: f64) -> String {
    if f == 0.0 || !f.is_finite() {
        return format!("{f}");
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..21).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use skiff_core::registry;

    fn deployments() -> &'static Resource {
        registry::lookup("apps", "v1", "deployments").unwrap()
    }

    #[test]
    fn directives() {
        assert_eq!(
            Directive::parse(None, "CreateOptions").unwrap(),
            Directive::Warn
        );
        assert_eq!(
            Directive::parse(Some(""), "CreateOptions").unwrap(),
            Directive::Warn
        );
        assert_eq!(
            Directive::parse(Some("Strict"), "CreateOptions").unwrap(),
            Directive::Strict
        );
        assert_eq!(
            Directive::parse(Some("Ignore"), "PatchOptions").unwrap(),
            Directive::Ignore
        );
        let e = Directive::parse(Some("strict"), "UpdateOptions").unwrap_err();
        assert_eq!((e.code, e.reason), (422, "Invalid"));
        assert_eq!(
            e.message,
            r#"UpdateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "strict": supported values: "", "Ignore", "Strict", "Warn""#
        );
    }

    #[test]
    fn strict_body_error_is_upstreams() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
                           "spec": {"replicass": 2, "template": {"spec": {"containers": [{"name": "a", "bar": 1}]}}}});
        let e = check_body(
            deployments().into(),
            &mut d,
            vec![Finding::Duplicate("spec.replicas".into())],
            Directive::Strict,
        )
        .unwrap_err();
        assert_eq!((e.code, e.reason), (400, "BadRequest"));
        assert_eq!(
            e.message,
            r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: duplicate field "spec.replicas", unknown field "spec.replicass", unknown field "spec.template.spec.containers[0].bar""#
        );
        // Pruned whatever the answer.
        assert!(d["spec"].get("replicass").is_none());
        assert!(d["spec"]["template"]["spec"]["containers"][0]
            .get("bar")
            .is_none());
        // Keys repeated inside an unknown field are not duplicates.
        let mut d = json!({"kind": "Deployment", "spec": {"foo": {"a": 1}}});
        let e = check_body(
            deployments().into(),
            &mut d,
            vec![
                Finding::Duplicate("spec.foo".into()),
                Finding::Duplicate("spec.foo.a".into()),
                Finding::Duplicate("spec.fooa".into()),
            ],
            Directive::Strict,
        )
        .unwrap_err();
        assert!(
            e.message.ends_with(
                r#"strict decoding error: duplicate field "spec.fooa", unknown field "spec.foo""#
            ),
            "{}",
            e.message
        );
        let mut d = json!({"kind": "Deployment", "spec": {"foo": 1}});
        check_body(deployments().into(), &mut d, vec![], Directive::Ignore).unwrap();
        assert_eq!(d, json!({"kind": "Deployment", "spec": {}}));
    }

    #[test]
    fn json_findings_come_in_document_order() {
        let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","bogus":1,"name":"y"},"data":{"a":"1","a":"2"},"zz":1}"#;
        let (mut obj, dups) = crate::codec::decode_checked(body, "application/json").unwrap();
        assert!(dups);
        let cm = SchemaKind {
            group: "",
            version: "v1",
            kind: "ConfigMap",
        };
        let e = check_request_body(
            cm,
            &mut obj,
            body,
            "application/json",
            true,
            Directive::Strict,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field "metadata.bogus", duplicate field "metadata.name", duplicate field "data.a", unknown field "zz""#
        );
        assert_eq!(obj["metadata"], json!({"name": "y"}));
    }

    #[test]
    fn patch_errors() {
        let e = patch_error(
            r#"{"a":1}"#,
            strict_message(&[Finding::Unknown("spec.foo".into())]),
        );
        assert_eq!(
            e.message,
            r#" "" is invalid: patch: Invalid value: "{\"a\":1}": strict decoding error: unknown field "spec.foo""#
        );
        assert_eq!(e.details.causes[0].field, "patch");
        let p = json!({"spec": {"foo": 1, "template": {"x": [1, "a", null, 1.5, true]}}, "a": {}});
        assert_eq!(
            go_format(&p),
            "map[a:map[] spec:map[foo:1 template:map[x:[1 a <nil> 1.5 true]]]]"
        );
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(123456.5), "123456.5");
        let f = patch_body_findings(
            PatchKind::Json,
            br#"[{"op":"add","path":"/a","value":1,"valeu":2,"op":"add"}]"#,
            Directive::Strict,
        );
        assert_eq!(
            strict_message(&f),
            r#"strict decoding error: json patch duplicate field "[0].op", json patch unknown field "[0].valeu""#
        );
    }

    #[test]
    fn apply_unknown_fields_use_structured_merge_diff_paths() {
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment",
                         "metadata": {"name": "web", "namespace": "d"},
                         "spec": {"template": {"spec": {"containers": [{"name": "web", "imagee": "x"}]}}}});
        let e = check_apply(deployments(), &cfg, b"{}", Directive::Ignore).unwrap_err();
        assert_eq!((e.code, e.reason), (500, ""));
        assert_eq!(
            e.message,
            r#"failed to create typed patch object (d/web; apps/v1, Kind=Deployment): .spec.template.spec.containers[name="web"].imagee: field not declared in schema"#
        );
        let body = b"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\"},\"spec\":{\"replicas\":1,\"replicas\":2}}";
        let cfg: Value = serde_json::from_slice(body).unwrap();
        let e = check_apply(deployments(), &cfg, body, Directive::Strict).unwrap_err();
        assert_eq!(
            e.message,
            "error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:\n  line 1: key \"replicas\" already set in map"
        );
        check_apply(deployments(), &cfg, body, Directive::Warn).unwrap();
    }

    #[test]
    fn yaml_duplicates() {
        let f = duplicate_findings(
            b"kind: Deployment\nspec:\n  replicas: 1\n  replicas: 2\n",
            true,
        );
        assert_eq!(
            f,
            vec![Finding::Yaml(vec![
                "line 4: key \"replicas\" already set in map".into()
            ])]
        );
        assert_eq!(
            strict_message(&f),
            "strict decoding error: yaml: unmarshal errors:\n  line 4: key \"replicas\" already set in map"
        );
        let f = duplicate_findings(br#"{"a":{"b":1,"b":2}}"#, false);
        assert_eq!(f, vec![Finding::Duplicate("a.b".into())]);
    }
}
