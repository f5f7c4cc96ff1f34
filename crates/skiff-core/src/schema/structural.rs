//! Whether a CRD version's `openAPIV3Schema` is structural, as apiextensions.k8s.io/v1
//! requires (upstream's `apiextensions-apiserver/pkg/apiserver/schema` validation): every
//! specified field has a type (unless `x-kubernetes-int-or-string` or
//! `x-kubernetes-preserve-unknown-fields` says otherwise), arrays have `items`, `properties` and
//! `additionalProperties` exclude each other, the root is an object whose `metadata` restricts
//! at most `name` and `generateName`, value validations (`allOf`, `anyOf`, `oneOf`, `not`)
//! carry no types or defaults, the JSON-Schema features Kubernetes forbids are absent, and every
//! `default` validates against its own schema. Also the string formats upstream checks.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::{flag, type_of};
use crate::status::FieldError;

const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];

/// Field errors of a version's schema; `path` is where it sits
/// (`spec.versions[0].schema.openAPIV3Schema`).
pub fn check(schema: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !schema.is_object() {
        errs.push(FieldError::invalid(
            path,
            schema.clone(),
            "must be an object",
        ));
        return errs;
    }
    let t = type_of(schema);
    if t != "object" {
        if t.is_empty() {
            errs.push(FieldError::required(
                format!("{path}.type"),
                "must not be empty at the root",
            ));
        } else {
            errs.push(FieldError::invalid(
                format!("{path}.type"),
                t,
                "must be object at the root",
            ));
        }
    }
    if let Some(m) = schema.get("properties").and_then(|p| p.get("metadata")) {
        let mp = format!("{path}.properties[metadata]");
        let only_names = m
            .as_object()
            .map(|o| {
                o.iter().all(|(k, v)| match k.as_str() {
                    "type" => v == "object",
                    "properties" => v.as_object().is_some_and(|p| {
                        p.iter().all(|(n, s)| {
                            matches!(n.as_str(), "name" | "generateName")
                                && s.as_object()
                                    .is_some_and(|s| s.keys().all(|k| k != "default"))
                        })
                    }),
                    "description" => true,
                    _ => false,
                })
            })
            .unwrap_or(false);
        if !only_names {
            errs.push(FieldError::forbidden(
                mp,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    node(schema, path, Place::Root, &mut errs);
    errs
}

#[derive(Clone, Copy, PartialEq)]
enum Place {
    Root,
    Property,
    Item,
    /// Inside allOf/anyOf/oneOf/not: value validation only.
    Validation,
}

fn node(s: &Value, path: &str, place: Place, errs: &mut Vec<FieldError>) {
    let Some(o) = s.as_object() else {
        errs.push(FieldError::invalid(path, s.clone(), "must be an object"));
        return;
    };
    let t = type_of(s);
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let preserve = o.get("x-kubernetes-preserve-unknown-fields");
    if let Some(p) = preserve {
        if p != &Value::Bool(true) {
            errs.push(FieldError::invalid(
                format!("{path}.x-kubernetes-preserve-unknown-fields"),
                p.clone(),
                "must be true or undefined",
            ));
        }
    }
    let preserve = preserve == Some(&Value::Bool(true));
    if place == Place::Validation {
        for k in [
            "type",
            "default",
            "nullable",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-embedded-resource",
            "x-kubernetes-int-or-string",
        ] {
            if o.contains_key(k) {
                errs.push(FieldError::forbidden(
                    format!("{path}.{k}"),
                    "must be undefined to be structural",
                ));
            }
        }
    } else {
        if !t.is_empty() && !TYPES.contains(&t) {
            errs.push(FieldError::not_supported(format!("{path}.type"), t, TYPES));
        }
        if int_or_string {
            if !t.is_empty() {
                errs.push(FieldError::invalid(
                    format!("{path}.type"),
                    t,
                    "must be empty if x-kubernetes-int-or-string is true",
                ));
            }
        } else if t.is_empty() && !preserve && place != Place::Root {
            let what = if place == Place::Item {
                "must not be empty for specified array items"
            } else {
                "must not be empty for specified object fields"
            };
            errs.push(FieldError::required(format!("{path}.type"), what));
        }
        if flag(s, "x-kubernetes-embedded-resource") && t != "object" {
            errs.push(FieldError::required(
                format!("{path}.type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
        if t == "array" && !o.contains_key("items") {
            errs.push(FieldError::required(
                format!("{path}.items"),
                "must be specified",
            ));
        }
    }
    for k in [
        "$ref",
        "definitions",
        "id",
        "dependencies",
        "additionalItems",
        "patternProperties",
    ] {
        if o.contains_key(k) {
            errs.push(FieldError::forbidden(
                format!("{path}.{k}"),
                format!("{k} is not supported"),
            ));
        }
    }
    if flag(s, "uniqueItems") {
        errs.push(FieldError::forbidden(
            format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(false)) => errs.push(FieldError::forbidden(
            format!("{path}.additionalProperties"),
            "additionalProperties cannot be set to false",
        )),
        Some(a @ Value::Object(_)) => {
            if o.contains_key("properties") {
                errs.push(FieldError::forbidden(
                    format!("{path}.additionalProperties"),
                    "additionalProperties and properties are mutual exclusive",
                ));
            }
            let next = if place == Place::Validation {
                Place::Validation
            } else {
                Place::Property
            };
            node(a, &format!("{path}.additionalProperties"), next, errs);
        }
        _ => {}
    }
    if let Some(props) = o.get("properties") {
        match props.as_object() {
            Some(props) => {
                for (k, p) in props {
                    if place == Place::Root && k == "metadata" {
                        continue;
                    }
                    let next = if place == Place::Validation {
                        Place::Validation
                    } else {
                        Place::Property
                    };
                    node(p, &format!("{path}.properties[{k}]"), next, errs);
                }
            }
            None => errs.push(FieldError::invalid(
                format!("{path}.properties"),
                props.clone(),
                "must be an object",
            )),
        }
    }
    if let Some(items) = o.get("items") {
        if items.is_array() {
            errs.push(FieldError::forbidden(
                format!("{path}.items"),
                "items must be a schema object and not an array",
            ));
        } else {
            let next = if place == Place::Validation {
                Place::Validation
            } else {
                Place::Item
            };
            node(items, &format!("{path}.items"), next, errs);
        }
    }
    for k in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(subs)) = o.get(k) {
            for (i, sub) in subs.iter().enumerate() {
                node(sub, &format!("{path}.{k}[{i}]"), Place::Validation, errs);
            }
        }
    }
    if let Some(not) = o.get("not") {
        node(not, &format!("{path}.not"), Place::Validation, errs);
    }
    if place != Place::Validation {
        if let Some(d) = o.get("default") {
            if place == Place::Root {
                errs.push(FieldError::forbidden(
                    format!("{path}.default"),
                    "must not be set at the root",
                ));
            } else if !(d.is_null() && flag(s, "nullable")) {
                let mut dv = d.clone();
                let pruned = super::prune(&strip_root(s), &mut dv);
                if !pruned.is_empty() || dv != *d {
                    errs.push(FieldError::invalid(
                        format!("{path}.default"),
                        d.clone(),
                        "must not have unknown fields",
                    ));
                }
                for e in super::validate(&strip_root(s), d) {
                    let field = if e.field.is_empty() {
                        format!("{path}.default")
                    } else {
                        format!("{path}.default.{}", e.field)
                    };
                    errs.push(FieldError { field, ..e });
                }
            }
        }
    }
}

/// A sub-schema checked as a value of its own (its `default` not applied to itself).
fn strip_root(s: &Value) -> Value {
    let mut s = s.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("default");
    }
    s
}

/// Whether `s` is a valid value of string format `format`, for the formats upstream's CRD
/// validation checks; other formats (`int32`, `int64`, `float`, `double`, `password`, …)
/// accept any string.
pub fn format_ok(format: &str, s: &str) -> bool {
    match format {
        "date-time" | "datetime" => s.parse::<jiff::Timestamp>().is_ok(),
        "date" => s.parse::<jiff::civil::Date>().is_ok() && s.len() == 10,
        "byte" => base64_ok(s),
        "uuid" | "uuid3" | "uuid4" | "uuid5" => uuid::Uuid::parse_str(s).is_ok() && s.len() == 36,
        "ipv4" => s.parse::<Ipv4Addr>().is_ok(),
        "ipv6" => s.parse::<Ipv6Addr>().is_ok(),
        "cidr" => s.split_once('/').is_some_and(|(ip, bits)| {
            let max = if ip.parse::<Ipv4Addr>().is_ok() {
                32
            } else if ip.parse::<Ipv6Addr>().is_ok() {
                128
            } else {
                return false;
            };
            bits.parse::<u8>().is_ok_and(|b| b <= max)
        }),
        "email" => s
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.contains('@')),
        "hostname" => {
            !s.is_empty()
                && s.len() <= 255
                && s.split('.').all(|l| {
                    !l.is_empty()
                        && l.len() <= 63
                        && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !l.starts_with('-')
                        && !l.ends_with('-')
                })
        }
        "mac" => {
            let parts: Vec<&str> = s.split([':', '-']).collect();
            matches!(parts.len(), 6 | 8 | 20)
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
        }
        "hexcolor" => {
            s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
        }
        "bsonobjectid" => s.len() == 24 && s.chars().all(|c| c.is_ascii_hexdigit()),
        "duration" => duration_ok(s),
        _ => true,
    }
}

fn base64_ok(s: &str) -> bool {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(4) {
        return false;
    }
    let pad = b.iter().rev().take_while(|c| **c == b'=').count();
    pad <= 2
        && b[..b.len() - pad]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// Go `time.ParseDuration` syntax (`1h30m`, `300ms`, `-1.5s`).
fn duration_ok(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return false;
        }
        rest = &rest[n..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len());
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}
