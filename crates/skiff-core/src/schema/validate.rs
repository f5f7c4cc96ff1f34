//! Validation of a custom object against its structural schema, with kube-openapi's checks and
//! messages (`<path> in body must be of type integer: "string"`, `<path> in body should be
//! greater than or equal to 1`, …) reported as upstream's apiextensions-apiserver reports them:
//! required fields as `Required value`, enums as `Unsupported value`, `maxLength` as
//! `Too long`, `maxItems`/`maxProperties` as `Too many`, wrong types with the JSON type name as
//! the value, everything else as `Invalid value`.
//!
//! `metadata`, `apiVersion` and `kind` at the root (and in embedded resources) are checked by
//! the generic object-meta validation, not here. Formats are checked for the ones upstream's
//! CRD validation knows; `int32`, `int64`, `float` and `double` are not range-checked, as
//! upstream does not.

use serde_json::Value;

use super::{child, flag, index, type_of};
use crate::status::{FieldError, FieldErrorKind};

/// Every field error of `obj` against `schema` (the CRD version's `openAPIV3Schema`).
pub fn validate(schema: &Value, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    check(schema, obj, "", true, &mut errs);
    // The one part of metadata a CRD may restrict: the name (and generateName) as strings.
    for field in ["name", "generateName"] {
        let sub = schema.pointer(&format!("/properties/metadata/properties/{field}"));
        let value = obj
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str);
        if let (Some(sub), Some(v)) = (sub, value) {
            let path = format!("metadata.{field}");
            check_string(sub, v, &path, &path, &mut errs);
        }
    }
    errs
}

/// The JSON type name kube-openapi reports for a value.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

fn subject(path: &str) -> String {
    if path.is_empty() {
        ".".to_string()
    } else {
        path.to_string()
    }
}

fn invalid(errs: &mut Vec<FieldError>, path: &str, value: Value, detail: String) {
    errs.push(FieldError::invalid(path, value, detail));
}

fn type_error(errs: &mut Vec<FieldError>, path: &str, want: &str, v: &Value) {
    let got = json_type(v);
    errs.push(FieldError {
        kind: FieldErrorKind::Invalid(Value::String(got.into())),
        field: path.to_string(),
        detail: format!(
            "{} in body must be of type {want}: \"{got}\"",
            subject(path)
        ),
    });
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// Renders a schema number as Go's `%v` does for a float64.
fn go_number(v: &Value) -> String {
    match v {
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 && f.abs() < 1e21 {
                format!("{}", f as i64)
            } else {
                format!("{f}")
            }
        }
        other => other.to_string(),
    }
}

fn check(s: &Value, v: &Value, path: &str, root: bool, errs: &mut Vec<FieldError>) {
    if !s.is_object() {
        return;
    }
    if v.is_null() {
        if flag(s, "nullable") {
            return;
        }
        let t = type_of(s);
        if !t.is_empty() {
            type_error(errs, path, t, v);
        } else if flag(s, "x-kubernetes-int-or-string") {
            type_error(errs, path, "integer,string", v);
        }
        return;
    }
    if flag(s, "x-kubernetes-int-or-string") {
        if !(is_integer(v) || v.is_string()) {
            type_error(errs, path, "integer,string", v);
            return;
        }
    } else {
        let t = type_of(s);
        if !t.is_empty() && !type_matches(t, v) {
            type_error(errs, path, t, v);
            return;
        }
    }
    if let Some(Value::Array(allowed)) = s.get("enum") {
        if !allowed.iter().any(|a| json_eq(a, v)) {
            let values: Vec<String> = allowed
                .iter()
                .map(|a| match a {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            let detail = format!(
                "supported values: {}",
                values
                    .iter()
                    .map(|s| format!("\"{s}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            errs.push(FieldError {
                kind: FieldErrorKind::NotSupported(v.clone(), values),
                field: path.to_string(),
                detail,
            });
        }
    }
    let p = subject(path);
    match v {
        Value::String(st) => check_string(s, st, path, &p, errs),
        Value::Number(_) => check_number(s, v, path, &p, errs),
        Value::Array(items) => {
            let n = items.len() as u64;
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64) {
                if n > max {
                    errs.push(FieldError {
                        kind: FieldErrorKind::TooMany,
                        field: path.to_string(),
                        detail: format!("must have at most {max} items"),
                    });
                }
            }
            if let Some(min) = s.get("minItems").and_then(Value::as_u64) {
                if n < min {
                    invalid(
                        errs,
                        path,
                        v.clone(),
                        format!("{p} in body should have at least {min} items"),
                    );
                }
            }
            if flag(s, "uniqueItems") {
                let dup = items
                    .iter()
                    .enumerate()
                    .any(|(i, a)| items[..i].iter().any(|b| json_eq(a, b)));
                if dup {
                    invalid(
                        errs,
                        path,
                        v.clone(),
                        format!("{p} in body shouldn't contain duplicates"),
                    );
                }
            }
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    check(item_schema, item, &index(path, i), false, errs);
                }
            }
        }
        Value::Object(m) => {
            if let Some(Value::Array(required)) = s.get("required") {
                for r in required.iter().filter_map(Value::as_str) {
                    if !m.contains_key(r) {
                        errs.push(FieldError::required(child(path, r), ""));
                    }
                }
            }
            let n = m.len() as u64;
            if let Some(max) = s.get("maxProperties").and_then(Value::as_u64) {
                if n > max {
                    errs.push(FieldError {
                        kind: FieldErrorKind::TooMany,
                        field: path.to_string(),
                        detail: format!("must have at most {max} items"),
                    });
                }
            }
            if let Some(min) = s.get("minProperties").and_then(Value::as_u64) {
                if n < min {
                    invalid(
                        errs,
                        path,
                        v.clone(),
                        format!("{p} in body should have at least {min} properties"),
                    );
                }
            }
            let embedded = flag(s, "x-kubernetes-embedded-resource");
            for (k, val) in m {
                // Object metadata is validated as ObjectMeta by the generic path.
                if (root || embedded) && matches!(k.as_str(), "metadata" | "apiVersion" | "kind") {
                    continue;
                }
                let sub = s
                    .get("properties")
                    .and_then(|p| p.get(k))
                    .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(sub) = sub {
                    check(sub, val, &child(path, k), false, errs);
                }
            }
            if embedded {
                for k in ["apiVersion", "kind"] {
                    match m.get(k) {
                        Some(Value::String(x)) if !x.is_empty() => {}
                        _ => errs.push(FieldError::required(child(path, k), "must not be empty")),
                    }
                }
            }
        }
        _ => {}
    }
    combinators(s, v, path, &p, errs);
}

fn check_string(s: &Value, st: &str, path: &str, p: &str, errs: &mut Vec<FieldError>) {
    let chars = st.chars().count() as u64;
    if let Some(max) = s.get("maxLength").and_then(Value::as_u64) {
        if chars > max {
            errs.push(FieldError {
                kind: FieldErrorKind::TooLong,
                field: path.to_string(),
                detail: format!(
                    "may not be more than {max} {}",
                    if max == 1 { "byte" } else { "bytes" }
                ),
            });
        }
    }
    if let Some(min) = s.get("minLength").and_then(Value::as_u64) {
        if chars < min {
            invalid(
                errs,
                path,
                Value::String(st.into()),
                format!("{p} in body should be at least {min} chars long"),
            );
        }
    }
    if let Some(pat) = s.get("pattern").and_then(Value::as_str) {
        if let Ok(re) = regex::Regex::new(pat) {
            if !re.is_match(st) {
                invalid(
                    errs,
                    path,
                    Value::String(st.into()),
                    format!("{p} in body should match '{pat}'"),
                );
            }
        }
    }
    if let Some(fmt) = s.get("format").and_then(Value::as_str) {
        if !super::structural::format_ok(fmt, st) {
            invalid(
                errs,
                path,
                Value::String(st.into()),
                format!("{p} in body must be of type {fmt}: \"{st}\""),
            );
        }
    }
}

fn check_number(s: &Value, v: &Value, path: &str, p: &str, errs: &mut Vec<FieldError>) {
    let Some(x) = num(v) else { return };
    if let Some(max) = s.get("maximum") {
        if let Some(m) = num(max) {
            let excl = flag(s, "exclusiveMaximum");
            if (excl && x >= m) || (!excl && x > m) {
                let rel = if excl {
                    "less than"
                } else {
                    "less than or equal to"
                };
                invalid(
                    errs,
                    path,
                    v.clone(),
                    format!("{p} in body should be {rel} {}", go_number(max)),
                );
            }
        }
    }
    if let Some(min) = s.get("minimum") {
        if let Some(m) = num(min) {
            let excl = flag(s, "exclusiveMinimum");
            if (excl && x <= m) || (!excl && x < m) {
                let rel = if excl {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                invalid(
                    errs,
                    path,
                    v.clone(),
                    format!("{p} in body should be {rel} {}", go_number(min)),
                );
            }
        }
    }
    if let Some(mo) = s.get("multipleOf") {
        if let Some(m) = num(mo).filter(|m| *m > 0.0) {
            let q = x / m;
            if (q - q.round()).abs() > 1e-9 {
                invalid(
                    errs,
                    path,
                    v.clone(),
                    format!("{p} in body should be a multiple of {}", go_number(mo)),
                );
            }
        }
    }
}

/// `allOf`, `anyOf`, `oneOf` and `not` (value validations only, in structural schemas).
fn combinators(s: &Value, v: &Value, path: &str, p: &str, errs: &mut Vec<FieldError>) {
    if let Some(Value::Array(all)) = s.get("allOf") {
        for sub in all {
            check(sub, v, path, false, errs);
        }
    }
    let passes = |sub: &Value| {
        let mut e = Vec::new();
        check(sub, v, path, false, &mut e);
        e.is_empty()
    };
    if let Some(Value::Array(any)) = s.get("anyOf") {
        if !any.is_empty() && !any.iter().any(passes) {
            invalid(
                errs,
                path,
                v.clone(),
                format!("{p} in body must validate at least one schema (anyOf)"),
            );
        }
    }
    if let Some(Value::Array(one)) = s.get("oneOf") {
        if !one.is_empty() && one.iter().filter(|s| passes(s)).count() != 1 {
            invalid(
                errs,
                path,
                v.clone(),
                format!("{p} in body must validate one and only one schema (oneOf)"),
            );
        }
    }
    if let Some(not) = s.get("not").filter(|n| n.is_object()) {
        if passes(not) {
            invalid(
                errs,
                path,
                v.clone(),
                format!("{p} in body must not validate the schema (not)"),
            );
        }
    }
}

/// JSON equality with numbers compared by value (`1` equals `1.0`).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, a)| y.get(k).is_some_and(|b| json_eq(a, b)))
        }
        _ => a == b,
    }
}
