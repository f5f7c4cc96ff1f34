//! Field selectors, following k8s.io/apimachinery/pkg/fields (`a=b`, `a==b`, `a!=b`, terms
//! joined by unescaped commas, `\` escaping of `\`, `,` and `=` in values), the per-kind field
//! label conversion functions registered with `AddFieldLabelConversionFunc` in
//! pkg/apis/*/v1/conversion.go, and the per-kind `ToSelectableFields` of pkg/registry.
//!
//! A label the kind does not support is rejected with upstream's
//! `field label not supported: <label>`; a supported field the object lacks reads as "".

use crate::meta::Fields as _;
use std::fmt;

use serde_json::Value;

use crate::registry::Resource;

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Term {
    pub field: String,
    /// True for `!=`.
    pub not: bool,
    pub value: String,
}

/// A field selector: a conjunction of equality and inequality terms, sorted as upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> FieldSelector {
        FieldSelector::default()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Parses `a=b,c!=d`; the empty string matches everything.
    pub fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(&part) else {
                return Err(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                ));
            };
            let value = unescape_value(rhs)?;
            terms.push(Term {
                field: lhs.to_string(),
                not: op == "!=",
                value,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The value `field` must equal, if a term requires it (upstream `RequiresExactMatch`).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.not)
            .map(|t| t.value.as_str())
    }

    /// Whether `obj`, of kind `res`, satisfies every term. Terms naming unsupported fields
    /// read as "" (call [`check_supported`] first to reject them).
    pub fn matches(&self, res: &Resource, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let v = field_value(res, obj, &t.field).unwrap_or_default();
            (v == t.value) != t.not
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.not { "!=" } else { "=" };
            write!(f, "{}{}{}", t.field, op, escape_value(&t.value))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Convenience wrapper for [`FieldSelector::parse`].
pub fn parse(s: &str) -> Result<FieldSelector, String> {
    FieldSelector::parse(s)
}

/// Escapes `\`, `,` and `=` in a value (upstream `EscapeValue`).
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reverses [`escape_value`], rejecting unknown escapes and unescaped `,` or `=`.
pub fn unescape_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                _ => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{c}"
                    ))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ))
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

/// Splits on commas not preceded by an escaping backslash.
fn split_terms(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    terms.push(cur);
    terms
}

/// Splits a term at its first operator (`!=`, `==` or `=`); like upstream, field names are
/// not unescaped, so an escaped `=` in the name still splits there.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

fn is(res: &Resource, group: &str, kind: &str) -> bool {
    res.group == group && res.kind == kind
}

/// Maps a field label as the kind's conversion function does (`spec.host` → `spec.nodeName`,
/// `regarding.name` → `involvedObject.name`), or fails with `field label not supported`.
pub fn convert_label(res: &Resource, label: &str) -> Result<String, String> {
    let unsupported = || Err(format!("field label not supported: {label}"));
    let ok = |l: &str| Ok(l.to_string());
    // A CRD version's selectableFields.
    if res
        .custom
        .is_some_and(|c| c.selectable_fields.iter().any(|f| f == label))
    {
        return ok(label);
    }
    if is(res, "events.k8s.io", "Event") {
        return match label {
            "reason" | "source" | "type" | "metadata.namespace" | "metadata.name" => ok(label),
            "reportingController" => ok("reportingComponent"),
            _ => match label.strip_prefix("regarding.") {
                Some(
                    f @ ("kind" | "namespace" | "name" | "uid" | "apiVersion" | "resourceVersion"
                    | "fieldPath"),
                ) => Ok(format!("involvedObject.{f}")),
                _ => unsupported(),
            },
        };
    }
    let extra: &[&str] = match (res.group, res.kind) {
        ("", "Pod") => {
            if label == "spec.host" {
                return ok("spec.nodeName");
            }
            &[
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
            ]
        }
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ("", "Node") => &["spec.unschedulable"],
        ("", "Namespace") => &["status.phase"],
        ("", "Secret") => &["type"],
        ("", "Service") => &["spec.clusterIP", "spec.type"],
        ("", "ReplicationController") => &["status.replicas"],
        ("apps", "ReplicaSet") => &["status.replicas"],
        ("batch", "Job") => &["status.successful"],
        _ => &[],
    };
    // Cluster-scoped kinds with their own conversion function accept only metadata.name;
    // the generic conversion accepts metadata.namespace everywhere.
    let namespace_ok = res.namespaced || extra.is_empty();
    if label == "metadata.name" || (label == "metadata.namespace" && namespace_ok) {
        return ok(label);
    }
    if extra.contains(&label) {
        ok(label)
    } else {
        unsupported()
    }
}

/// Checks every term names a field label the kind supports.
pub fn check_supported(res: &Resource, sel: &FieldSelector) -> Result<(), String> {
    sel.terms
        .iter()
        .try_for_each(|t| convert_label(res, &t.field).map(drop))
}

/// The selector with every label converted to the name the kind's selectable fields use.
pub fn convert(res: &Resource, sel: &FieldSelector) -> Result<FieldSelector, String> {
    let mut terms = Vec::with_capacity(sel.terms.len());
    for t in &sel.terms {
        terms.push(Term {
            field: convert_label(res, &t.field)?,
            ..t.clone()
        });
    }
    Ok(FieldSelector { terms })
}

fn str_at<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn int_at(obj: &Value, ptr: &str) -> String {
    obj.pointer(ptr)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .to_string()
}

fn bool_at(obj: &Value, ptr: &str) -> String {
    obj.pointer(ptr)
        .and_then(Value::as_bool)
        .unwrap_or(false)
        .to_string()
}

/// The value of a selectable field of `obj`, as upstream's `ToSelectableFields` renders it
/// ("" when the object lacks it), or None for labels the kind does not support.
pub fn field_value(res: &Resource, obj: &Value, label: &str) -> Option<String> {
    let label = convert_label(res, label).ok()?;
    // events.k8s.io events are stored in core/v1 form; accept either form here.
    let converted;
    let obj = if res.group == "events.k8s.io" && obj.field("regarding").is_some() {
        converted = crate::events::events_v1_to_core(obj);
        &converted
    } else {
        obj
    };
    let v = match label.as_str() {
        "metadata.name" => str_at(obj, "/metadata/name").to_string(),
        "metadata.namespace" => str_at(obj, "/metadata/namespace").to_string(),
        "spec.hostNetwork" => bool_at(obj, "/spec/hostNetwork"),
        "spec.unschedulable" => bool_at(obj, "/spec/unschedulable"),
        "status.replicas" => int_at(obj, "/status/replicas"),
        "status.successful" => int_at(obj, "/status/succeeded"),
        "status.podIP" => {
            let first = obj.pointer("/status/podIPs/0/ip").and_then(Value::as_str);
            first
                .unwrap_or_else(|| str_at(obj, "/status/podIP"))
                .to_string()
        }
        // Accepted by the conversion function but not among the selectable fields.
        "status.podIPs" => String::new(),
        "source" => {
            let c = str_at(obj, "/source/component");
            if c.is_empty() {
                str_at(obj, "/reportingComponent").to_string()
            } else {
                c.to_string()
            }
        }
        other => {
            let ptr = format!("/{}", other.replace('.', "/"));
            match obj.pointer(&ptr) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => String::new(),
            }
        }
    };
    Some(v)
}
