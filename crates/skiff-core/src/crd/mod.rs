//! CustomResourceDefinitions (apiextensions.k8s.io/v1), the pure part: the CRD kind's
//! defaulting and validation (upstream's `apiextensions/validation`), the served resources a
//! CRD yields (one [`Resource`] per served version, each pointing at its [`CustomInfo`]), and
//! the custom-object strategy: pruning, defaulting and schema validation on write, defaulting
//! and apiVersion rewriting on read (the `None` conversion strategy), the scale subresource over
//! the CRD's JSON paths, and Table columns from `additionalPrinterColumns` ([`table`]).
//!
//! A served resource is interned once per distinct definition and lives for the rest of the
//! process (`Box::leak`), so the generic storage path keeps taking `&'static Resource` and the
//! built-in path pays nothing. Re-applying an unchanged CRD reuses the interned copy; memory
//! grows only with the number of distinct CRD versions ever served.

pub mod jsonpath;
pub mod table;

use crate::meta::Fields as _;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::{json, Value};

use crate::registry::{Resource, Subresource, Traits, RW_VERBS};
use crate::schema;
use crate::status::FieldError;
use crate::validation::{is_dns1035_label, is_dns1123_subdomain};

/// The group, version and plural of the CRD kind itself.
pub const GROUP: &str = "apiextensions.k8s.io";
pub const PLURAL: &str = "customresourcedefinitions";
/// The finalizer that makes deleting a CRD delete its objects first.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// What one served version of a CRD adds to its [`Resource`].
#[derive(Debug, PartialEq, Eq)]
pub struct CustomInfo {
    /// `<plural>.<group>`.
    pub crd_name: String,
    /// The version objects are stored in.
    pub storage_version: String,
    pub list_kind: String,
    /// `schema.openAPIV3Schema` of this version (`null` when absent).
    pub schema: Value,
    /// `additionalPrinterColumns` of this version (upstream's default `Age` column when none).
    pub columns: Vec<PrinterColumn>,
    /// The status subresource is enabled.
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// Whether the version is deprecated, and the warning to send.
    pub deprecation_warning: Option<String>,
    /// `selectableFields`: field selector labels beyond `metadata.name`/`metadata.namespace`
    /// (`spec.color` for the JSONPath `.spec.color`).
    pub selectable_fields: Vec<String>,
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i64,
    pub json_path: String,
}

/// `subresources.scale` of a CRD version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn leak_list(v: Option<&Value>) -> &'static [&'static str] {
    let items: Vec<&'static str> = v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(leak)
        .collect();
    Box::leak(items.into_boxed_slice())
}

/// The storage version of a CRD (the version with `storage: true`).
pub fn storage_version(crd: &Value) -> Option<&str> {
    crd.at("spec")
        .field("versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name"))
        .and_then(Value::as_str)
}

/// The served resources of a CRD, one per served version in upstream's version priority
/// order (`v2` before `v1` before `v1beta1` before `v1alpha1`). Interned: the same definition
/// always yields the same `&'static Resource`s.
pub fn intern(crd: &Value) -> Vec<&'static Resource> {
    let Some(storage) = storage_version(crd) else {
        return Vec::new();
    };
    let mut versions: Vec<&Value> = crd
        .at("spec")
        .field("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("served").and_then(Value::as_bool) == Some(true))
        .collect();
    versions.sort_by(|a, b| compare_versions(s(a, "/name"), s(b, "/name")));
    versions
        .into_iter()
        .map(|v| intern_version(crd, v, storage))
        .collect()
}

fn intern_version(crd: &Value, version: &Value, storage: &str) -> &'static Resource {
    static TABLE: OnceLock<Mutex<HashMap<String, &'static Resource>>> = OnceLock::new();
    let key = json!({
        "group": crd.at("spec").field("group"),
        "names": crd.at("spec").field("names"),
        "scope": crd.at("spec").field("scope"),
        "storage": storage,
        "version": version,
    })
    .to_string();
    let mut table = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if let Some(r) = table.get(&key) {
        return r;
    }
    let r: &'static Resource = Box::leak(Box::new(build(crd, version, storage)));
    table.insert(key, r);
    r
}

fn build(crd: &Value, version: &Value, storage: &str) -> Resource {
    let kind = s(crd, "/spec/names/kind");
    let plural = s(crd, "/spec/names/plural");
    let singular = match s(crd, "/spec/names/singular") {
        "" => kind.to_lowercase(),
        x => x.to_string(),
    };
    let list_kind = match s(crd, "/spec/names/listKind") {
        "" => format!("{kind}List"),
        x => x.to_string(),
    };
    let status = version.at("subresources").field("status").is_some();
    let scale = version
        .at("subresources")
        .field("scale")
        .map(|sc| ScalePaths {
            spec_replicas: s(sc, "/specReplicasPath").to_string(),
            status_replicas: s(sc, "/statusReplicasPath").to_string(),
            label_selector: sc
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        });
    let mut columns: Vec<PrinterColumn> = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| PrinterColumn {
            name: s(c, "/name").to_string(),
            type_: s(c, "/type").to_string(),
            format: s(c, "/format").to_string(),
            description: s(c, "/description").to_string(),
            priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
            json_path: s(c, "/jsonPath").to_string(),
        })
        .collect();
    if columns.is_empty() {
        columns.push(PrinterColumn {
            name: "Age".into(),
            type_: "date".into(),
            format: String::new(),
            description: table::D_CREATED.into(),
            priority: 0,
            json_path: ".metadata.creationTimestamp".into(),
        });
    }
    let deprecation_warning = (version.get("deprecated").and_then(Value::as_bool) == Some(true))
        .then(
            || match version.get("deprecationWarning").and_then(Value::as_str) {
                Some(w) => w.to_string(),
                None => default_deprecation_warning(crd, s(version, "/name"), kind),
            },
        );
    let info: &'static CustomInfo = Box::leak(Box::new(CustomInfo {
        crd_name: s(crd, "/metadata/name").to_string(),
        storage_version: storage.to_string(),
        list_kind,
        schema: version
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .unwrap_or(Value::Null),
        columns,
        status,
        scale: scale.clone(),
        deprecation_warning,
        selectable_fields: version
            .get("selectableFields")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
            .map(|p| p.trim_start_matches('.').to_string())
            .collect(),
    }));
    let kind: &'static str = leak(kind);
    let mut subresources = Vec::new();
    if scale.is_some() {
        subresources.push(Subresource {
            name: "scale",
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
            verbs: &["get", "patch", "update"],
        });
    }
    if status {
        subresources.push(Subresource {
            name: "status",
            group: "",
            version: "",
            kind,
            verbs: &["get", "patch", "update"],
        });
    }
    Resource {
        group: leak(s(crd, "/spec/group")),
        version: leak(s(version, "/name")),
        kind,
        plural: leak(plural),
        singular: leak(&singular),
        namespaced: s(crd, "/spec/scope") == "Namespaced",
        short_names: leak_list(crd.at("spec").at("names").field("shortNames")),
        categories: leak_list(crd.at("spec").at("names").field("categories")),
        verbs: RW_VERBS,
        subresources: Box::leak(subresources.into_boxed_slice()),
        traits: Traits {
            generation: true,
            status,
            scale: scale.is_some(),
        },
        custom: Some(info),
    }
}

/// Upstream's default warning for a deprecated version: `<group>/<version> <Kind> is
/// deprecated`, naming the highest-priority served version that is not deprecated.
fn default_deprecation_warning(crd: &Value, version: &str, kind: &str) -> String {
    let group = s(crd, "/spec/group");
    let mut w = format!("{group}/{version} {kind} is deprecated");
    let mut better: Vec<&str> = crd
        .at("spec")
        .field("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| {
            v.get("served").and_then(Value::as_bool) == Some(true)
                && v.get("deprecated").and_then(Value::as_bool) != Some(true)
        })
        .map(|v| s(v, "/name"))
        .collect();
    better.sort_by(|a, b| compare_versions(a, b));
    if let Some(v) = better.first() {
        w.push_str(&format!("; use {group}/{v} {kind}"));
    }
    w
}

/// Upstream's kube-aware version order: GA before beta before alpha, higher numbers first,
/// anything else last in lexical order.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u8, u64, u64)> {
        let rest = v.strip_prefix('v')?;
        let n = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..n].parse().ok()?;
        if major == 0 {
            return None;
        }
        let tail = &rest[n..];
        if tail.is_empty() {
            return Some((3, major, 0));
        }
        for (tag, rank) in [("beta", 2u8), ("alpha", 1u8)] {
            if let Some(m) = tail.strip_prefix(tag) {
                if !m.is_empty() && m.chars().all(|c| c.is_ascii_digit()) {
                    let minor: u64 = m.parse().ok()?;
                    if minor == 0 {
                        return None;
                    }
                    return Some((rank, major, minor));
                }
            }
        }
        None
    }
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => y.cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

// ---- the CRD kind: defaulting and validation ----

/// Upstream's v1 defaults for a CRD: `singular` and `listKind` from the kind, the `None`
/// conversion strategy, and `status.storedVersions` starting at the storage version.
pub fn default_crd(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if names
            .get("singular")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if names
            .get("listKind")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
            && !kind.is_empty()
        {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    let conv = spec.entry("conversion").or_insert_with(|| json!({}));
    if let Some(c) = conv.as_object_mut() {
        c.entry("strategy").or_insert_with(|| json!("None"));
    }
    let storage = storage_version(obj).map(str::to_string);
    let o = obj.as_object_mut().expect("object");
    let status = o.entry("status").or_insert_with(|| json!({}));
    if let (Some(st), Some(storage)) = (status.as_object_mut(), storage) {
        let stored = st.entry("storedVersions").or_insert_with(|| json!([]));
        if let Some(a) = stored.as_array_mut() {
            if !a.iter().any(|v| v == storage.as_str()) {
                a.push(json!(storage));
            }
        }
        st.entry("acceptedNames")
            .or_insert_with(|| json!({"kind": "", "plural": ""}));
    }
}

fn label_errors(errs: &mut Vec<FieldError>, path: &str, value: &str, msgs: Vec<String>) {
    for m in msgs {
        errs.push(FieldError::invalid(path, value, m));
    }
}

const COLUMN_TYPES: &[&str] = &["boolean", "date", "integer", "number", "string"];
const COLUMN_FORMATS: &[&str] = &[
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
];

/// Upstream's `ValidateCustomResourceDefinition` (the rules that matter to a server without
/// conversion webhooks), with upstream's field paths.
pub fn validate_crd(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let group = s(obj, "/spec/group");
    let plural = s(obj, "/spec/names/plural");
    let name = s(obj, "/metadata/name");
    if name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        label_errors(&mut errs, "spec.group", group, is_dns1123_subdomain(group));
        if group.split('.').count() < 2 {
            errs.push(FieldError::invalid(
                "spec.group",
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    // Kubernetes' own groups need an approved API review (upstream's KEP-1111 rule).
    let protected = ["k8s.io", "kubernetes.io"]
        .iter()
        .any(|d| group == *d || group.ends_with(&format!(".{d}")));
    let approval = obj
        .pointer("/metadata/annotations/api-approved.kubernetes.io")
        .and_then(Value::as_str)
        .unwrap_or("");
    if protected && approval.is_empty() {
        errs.push(FieldError::required(
            "metadata.annotations[api-approved.kubernetes.io]",
            "protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111",
        ));
    }
    match s(obj, "/spec/scope") {
        "Namespaced" | "Cluster" => {}
        "" => errs.push(FieldError::required("spec.scope", "")),
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    validate_names(obj, &mut errs);
    if obj
        .at("spec")
        .field("preserveUnknownFields")
        .and_then(Value::as_bool)
        == Some(true)
    {
        errs.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            true,
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    match s(obj, "/spec/conversion/strategy") {
        "" | "None" => {}
        "Webhook" => {
            if obj
                .pointer("/spec/conversion/webhook/clientConfig")
                .is_none()
            {
                errs.push(FieldError::required(
                    "spec.conversion.webhook.clientConfig",
                    "required when strategy is set to Webhook",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            "spec.conversion.strategy",
            other,
            &["None", "Webhook"],
        )),
    }
    let versions = obj
        .at("spec")
        .field("versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        errs.push(FieldError::invalid(
            "spec.versions",
            Value::Array(vec![]),
            "must have exactly one version marked as storage version",
        ));
        return errs;
    }
    let storage_count = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .count();
    if storage_count != 1 {
        errs.push(FieldError::invalid(
            "spec.versions",
            version_names(&versions),
            "must have exactly one version marked as storage version",
        ));
    }
    if !versions
        .iter()
        .any(|v| v.get("served").and_then(Value::as_bool) == Some(true))
    {
        errs.push(FieldError::invalid(
            "spec.versions",
            version_names(&versions),
            "must have at least one version marked as served",
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let p = format!("spec.versions[{i}]");
        let vname = s(v, "/name");
        if vname.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        } else {
            label_errors(
                &mut errs,
                &format!("{p}.name"),
                vname,
                is_dns1035_label(vname),
            );
            if seen.contains(&vname) {
                errs.push(FieldError::duplicate(format!("{p}.name"), vname));
            }
            seen.push(vname);
        }
        for f in ["served", "storage"] {
            if !v.get(f).is_some_and(Value::is_boolean) {
                errs.push(FieldError::required(format!("{p}.{f}"), ""));
            }
        }
        match v.pointer("/schema/openAPIV3Schema") {
            None | Some(Value::Null) => {
                errs.push(FieldError::required(
                    format!("{p}.schema.openAPIV3Schema"),
                    "schemas are required",
                ));
            }
            Some(sch) => {
                errs.extend(schema::structural::check(
                    sch,
                    &format!("{p}.schema.openAPIV3Schema"),
                ));
            }
        }
        validate_subresources(v, &p, &mut errs);
        validate_columns(v, &p, &mut errs);
        validate_selectable_fields(v, &p, &mut errs);
    }
    errs
}

fn version_names(versions: &[Value]) -> Value {
    Value::String(
        versions
            .iter()
            .map(|v| s(v, "/name"))
            .collect::<Vec<_>>()
            .join(","),
    )
}

fn validate_names(obj: &Value, errs: &mut Vec<FieldError>) {
    let names = obj.at("spec").field("names").cloned().unwrap_or(json!({}));
    let plural = s(&names, "/plural");
    if plural.is_empty() {
        errs.push(FieldError::required("spec.names.plural", ""));
    } else {
        label_errors(errs, "spec.names.plural", plural, is_dns1035_label(plural));
    }
    let singular = s(&names, "/singular");
    if !singular.is_empty() {
        label_errors(
            errs,
            "spec.names.singular",
            singular,
            is_dns1035_label(singular),
        );
    }
    let kind = s(&names, "/kind");
    if kind.is_empty() {
        errs.push(FieldError::required("spec.names.kind", ""));
    } else {
        for m in is_dns1035_label(&kind.to_lowercase()) {
            errs.push(FieldError::invalid(
                "spec.names.kind",
                kind,
                format!("may have mixed case, but should otherwise match: {m}"),
            ));
        }
    }
    let list_kind = s(&names, "/listKind");
    if list_kind.is_empty() {
        errs.push(FieldError::required("spec.names.listKind", ""));
    } else {
        for m in is_dns1035_label(&list_kind.to_lowercase()) {
            errs.push(FieldError::invalid(
                "spec.names.listKind",
                list_kind,
                format!("may have mixed case, but should otherwise match: {m}"),
            ));
        }
        if list_kind == kind {
            errs.push(FieldError::invalid(
                "spec.names.listKind",
                list_kind,
                "kind and listKind may not be the same",
            ));
        }
    }
    for (field, list) in [("shortNames", "/shortNames"), ("categories", "/categories")] {
        for (i, item) in names
            .pointer(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let v = item.as_str().unwrap_or("");
            label_errors(
                errs,
                &format!("spec.names.{field}[{i}]"),
                v,
                is_dns1035_label(v),
            );
        }
    }
}

fn path_ok(p: &str, under: &[&str]) -> bool {
    under.iter().any(|u| p.starts_with(u))
        && p.split('.')
            .skip(1)
            .all(|seg| !seg.is_empty() && !seg.contains(['[', ']', ' ', '*', '?', '@', '(', ')']))
}

fn validate_subresources(v: &Value, p: &str, errs: &mut Vec<FieldError>) {
    let Some(sc) = v.at("subresources").field("scale") else {
        return;
    };
    let sp = format!("{p}.subresources.scale");
    let spec = s(sc, "/specReplicasPath");
    if spec.is_empty() {
        errs.push(FieldError::required(format!("{sp}.specReplicasPath"), ""));
    } else if !path_ok(spec, &[".spec."]) {
        errs.push(FieldError::invalid(
            format!("{sp}.specReplicasPath"),
            spec,
            "should be a json path under .spec",
        ));
    }
    let status = s(sc, "/statusReplicasPath");
    if status.is_empty() {
        errs.push(FieldError::required(format!("{sp}.statusReplicasPath"), ""));
    } else if !path_ok(status, &[".status."]) {
        errs.push(FieldError::invalid(
            format!("{sp}.statusReplicasPath"),
            status,
            "should be a json path under .status",
        ));
    }
    let sel = s(sc, "/labelSelectorPath");
    if !sel.is_empty() && !path_ok(sel, &[".spec.", ".status."]) {
        errs.push(FieldError::invalid(
            format!("{sp}.labelSelectorPath"),
            sel,
            "should be a json path under either .spec or .status",
        ));
    }
}

/// `selectableFields`: at most 8, each a simple path to a string, integer or boolean field of
/// the schema, no two the same.
fn validate_selectable_fields(v: &Value, p: &str, errs: &mut Vec<FieldError>) {
    let Some(fields) = v.get("selectableFields").and_then(Value::as_array) else {
        return;
    };
    if fields.len() > 8 {
        errs.push(FieldError {
            kind: crate::status::FieldErrorKind::TooMany,
            field: format!("{p}.selectableFields"),
            detail: "must have at most 8 items".into(),
        });
    }
    let schema = v.pointer("/schema/openAPIV3Schema");
    let mut seen = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let fp = format!("{p}.selectableFields[{i}].jsonPath");
        let jp = s(f, "/jsonPath");
        if jp.is_empty() {
            errs.push(FieldError::required(fp, ""));
            continue;
        }
        if !jp.starts_with('.')
            || jp[1..]
                .split('.')
                .any(|seg| seg.is_empty() || seg.contains(['[', ']', ' ', '*', '?', '@', '(', ')']))
        {
            errs.push(FieldError::invalid(fp, jp, "must be a simple json path"));
            continue;
        }
        if seen.contains(&jp) {
            errs.push(FieldError::duplicate(fp, jp));
            continue;
        }
        seen.push(jp);
        let mut node = schema;
        for seg in jp[1..].split('.') {
            node = node.and_then(|n| n.pointer(&format!("/properties/{seg}")));
        }
        match node.map(|n| s(n, "/type")) {
            Some("string" | "integer" | "boolean") => {}
            Some(_) if node.is_some_and(|n| n.get("x-kubernetes-int-or-string").is_some()) => {}
            Some(t) => errs.push(FieldError::invalid(
                fp,
                jp,
                format!(
                    "selectable field type must be one of: string, integer, boolean, not {t:?}"
                ),
            )),
            None => errs.push(FieldError::invalid(
                fp,
                jp,
                "is an invalid path: does not refer to a field in the schema",
            )),
        }
    }
}

fn validate_columns(v: &Value, p: &str, errs: &mut Vec<FieldError>) {
    for (i, c) in v
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let cp = format!("{p}.additionalPrinterColumns[{i}]");
        if s(c, "/name").is_empty() {
            errs.push(FieldError::required(format!("{cp}.name"), ""));
        }
        let t = s(c, "/type");
        if t.is_empty() {
            errs.push(FieldError::required(format!("{cp}.type"), ""));
        } else if !COLUMN_TYPES.contains(&t) {
            errs.push(FieldError::not_supported(
                format!("{cp}.type"),
                t,
                COLUMN_TYPES,
            ));
        }
        let f = s(c, "/format");
        if !f.is_empty() && !COLUMN_FORMATS.contains(&f) {
            errs.push(FieldError::not_supported(
                format!("{cp}.format"),
                f,
                COLUMN_FORMATS,
            ));
        }
        let jp = s(c, "/jsonPath");
        if jp.is_empty() {
            errs.push(FieldError::required(format!("{cp}.jsonPath"), ""));
        } else if let Err(e) = jsonpath::parse(jp) {
            errs.push(FieldError::invalid(
                format!("{cp}.jsonPath"),
                jp,
                format!("must be a simple json path: {e}"),
            ));
        }
        if c.get("priority")
            .and_then(Value::as_i64)
            .is_some_and(|n| n < 0)
        {
            errs.push(FieldError::invalid(
                format!("{cp}.priority"),
                c["priority"].clone(),
                "must be greater than or equal to 0",
            ));
        }
    }
}

/// Upstream's update rules for a CRD: the group and scope stay, and the names may change only
/// where the generic rules allow (the plural is fixed by `metadata.name`).
pub fn validate_crd_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (ptr, field) in [("/spec/group", "spec.group"), ("/spec/scope", "spec.scope")] {
        let n = s(new, ptr);
        if n != s(old, ptr) {
            errs.push(FieldError::invalid(field, n, "field is immutable"));
        }
    }
    if let Some(storage) = storage_version(new) {
        // A version objects may be stored in cannot be dropped from spec.versions.
        for (i, sv) in new
            .at("status")
            .field("storedVersions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let sv = sv.as_str().unwrap_or("");
            let present = new
                .at("spec")
                .field("versions")
                .and_then(Value::as_array)
                .is_some_and(|vs| vs.iter().any(|v| s(v, "/name") == sv));
            if !present && sv != storage {
                errs.push(FieldError::invalid(
                    format!("status.storedVersions[{i}]"),
                    sv,
                    "must appear in spec.versions",
                ));
            }
        }
    }
    errs
}

// ---- the custom-object strategy ----

/// Pruning and defaulting of a custom object before validation (every write).
pub fn prepare(info: &CustomInfo, obj: &mut Value) {
    if info.schema.is_object() {
        schema::prune(&info.schema, obj);
        schema::default(&info.schema, obj);
    }
}

/// Schema validation of a custom object.
pub fn validate_object(info: &CustomInfo, obj: &Value) -> Vec<FieldError> {
    if info.schema.is_object() {
        schema::validate(&info.schema, obj)
    } else {
        Vec::new()
    }
}

/// The stored form of a custom object served as `res`: the storage version's apiVersion.
pub fn to_storage(res: &Resource, info: &CustomInfo, mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        if o.get("apiVersion").and_then(Value::as_str).is_some() {
            o.insert(
                "apiVersion".into(),
                json!(format!("{}/{}", res.group, info.storage_version)),
            );
        }
    }
    obj
}

/// A stored custom object as `res` serves it: apiVersion rewritten (the `None` conversion
/// strategy) and the served version's defaults applied, as upstream defaults on read.
pub fn to_served(res: &Resource, info: &CustomInfo, mut obj: Value) -> Value {
    if let Some(o) = obj.as_object_mut() {
        if o.contains_key("apiVersion") {
            o.insert("apiVersion".into(), json!(res.api_version()));
        }
    }
    if info.schema.is_object() {
        schema::default(&info.schema, &mut obj);
    }
    obj
}

fn pointer_of(path: &str) -> String {
    path.replace('.', "/")
}

/// The autoscaling/v1 Scale of a custom object.
pub fn scale_of(paths: &ScalePaths, obj: &Value) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or(json!({}));
    let mut md = serde_json::Map::new();
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(k) {
            md.insert(k.into(), v.clone());
        }
    }
    let int = |p: &str| {
        obj.pointer(&pointer_of(p))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    let mut status = serde_json::Map::new();
    status.insert("replicas".into(), json!(int(&paths.status_replicas)));
    if let Some(sel) = &paths.label_selector {
        if let Some(v) = obj.pointer(&pointer_of(sel)).and_then(Value::as_str) {
            status.insert("selector".into(), json!(v));
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": md,
        "spec": {"replicas": int(&paths.spec_replicas)},
        "status": status,
    })
}

/// Sets the object's replicas at `specReplicasPath`, creating the objects on the way.
pub fn set_replicas(paths: &ScalePaths, obj: &mut Value, n: i64) {
    let parts: Vec<&str> = paths.spec_replicas.split('.').skip(1).collect();
    let mut cur = obj;
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            *cur = json!({});
        }
        let o = cur.as_object_mut().expect("object");
        if i + 1 == parts.len() {
            o.insert((*p).to_string(), json!(n));
            return;
        }
        cur = o.entry((*p).to_string()).or_insert_with(|| json!({}));
    }
}

#[cfg(test)]
mod tests;
