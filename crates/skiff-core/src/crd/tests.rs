use serde_json::{json, Value};

use super::*;
use crate::status::FieldErrorKind;

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [
                {"name": "v1beta1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                {"name": "v1", "served": true, "storage": true,
                 "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
                 "additionalPrinterColumns": [
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
                    {"name": "Size", "type": "string", "jsonPath": ".spec.size", "priority": 1}],
                 "schema": {"openAPIV3Schema": spec_schema()}}
            ]
        }
    })
}

fn spec_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "replicas": {"type": "integer", "minimum": 0, "maximum": 10, "default": 1},
                    "size": {"type": "string", "enum": ["small", "large"]},
                    "name": {"type": "string", "maxLength": 5, "minLength": 2, "pattern": "^[a-z]+$"},
                    "ratio": {"type": "number", "exclusiveMinimum": true, "minimum": 0},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "minItems": 1},
                    "port": {"x-kubernetes-int-or-string": true},
                    "when": {"type": "string", "format": "date-time"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 2},
                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "nested": {"type": "object", "default": {}, "properties": {"mode": {"type": "string", "default": "auto"}}},
                    "opt": {"type": "string", "nullable": true},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}
                }
            },
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    })
}

fn errs_of(obj: Value) -> Vec<String> {
    crate::schema::validate(&spec_schema(), &obj)
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn type_errors_read_like_upstream() {
    let e = errs_of(json!({"spec": {"size": "small", "replicas": "three"}}));
    assert_eq!(
        e,
        vec![
            "spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""
        ]
    );
    let e = errs_of(json!({"spec": {"size": "small", "port": true}}));
    assert_eq!(e, vec!["spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""]);
    assert!(errs_of(json!({"spec": {"size": "small", "port": 80}})).is_empty());
    assert!(errs_of(json!({"spec": {"size": "small", "port": "http"}})).is_empty());
}

#[test]
fn value_constraints() {
    let e = errs_of(json!({"spec": {}}));
    assert_eq!(e, vec!["spec.size: Required value"]);
    let e = errs_of(json!({"spec": {"size": "huge"}}));
    assert_eq!(
        e,
        vec!["spec.size: Unsupported value: \"huge\": supported values: \"small\", \"large\""]
    );
    let e = errs_of(json!({"spec": {"size": "small", "replicas": 11}}));
    assert_eq!(e, vec!["spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"]);
    let e = errs_of(json!({"spec": {"size": "small", "replicas": -1}}));
    assert_eq!(e, vec!["spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"]);
    let e = errs_of(json!({"spec": {"size": "small", "ratio": 0}}));
    assert_eq!(
        e,
        vec!["spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"]
    );
    let e = errs_of(json!({"spec": {"size": "small", "name": "abcdef"}}));
    assert_eq!(e, vec!["spec.name: Too long: may not be more than 5 bytes"]);
    let e = errs_of(json!({"spec": {"size": "small", "name": "a"}}));
    assert_eq!(
        e,
        vec!["spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long"]
    );
    let e = errs_of(json!({"spec": {"size": "small", "name": "AB"}}));
    assert_eq!(
        e,
        vec!["spec.name: Invalid value: \"AB\": spec.name in body should match '^[a-z]+$'"]
    );
    let e = errs_of(json!({"spec": {"size": "small", "tags": ["a", "b", "c"]}}));
    assert_eq!(e, vec!["spec.tags: Too many: must have at most 2 items"]);
    let e = errs_of(json!({"spec": {"size": "small", "tags": [1]}}));
    assert_eq!(e, vec!["spec.tags[0]: Invalid value: \"integer\": spec.tags[0] in body must be of type string: \"integer\""]);
    let e = errs_of(json!({"spec": {"size": "small", "when": "yesterday"}}));
    assert_eq!(e, vec!["spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\""]);
    assert!(errs_of(json!({"spec": {"size": "small", "when": "2024-01-02T03:04:05Z"}})).is_empty());
    let e = errs_of(json!({"spec": {"size": "small", "labels": {"a": "1", "b": "2", "c": "3"}}}));
    assert_eq!(e, vec!["spec.labels: Too many: must have at most 2 items"]);
    let e = errs_of(json!({"spec": {"size": "small", "labels": {"a": 1}}}));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("spec.labels.a: Invalid value: \"integer\""));
    let e = errs_of(json!({"spec": {"size": "small", "template": {"spec": {}}}}));
    assert_eq!(
        e,
        vec![
            "spec.template.apiVersion: Required value: must not be empty",
            "spec.template.kind: Required value: must not be empty"
        ]
    );
    assert!(errs_of(json!({"spec": {"size": "small", "opt": null}})).is_empty());
}

#[test]
fn pruning_and_defaulting() {
    let s = spec_schema();
    let mut obj = json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"x": "y"}},
        "spec": {"size": "small", "bogus": 1, "extra": {"anything": {"goes": true}}, "opt": null,
                 "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "whatever": 1}},
        "status": {"free": "form"},
        "topLevel": true
    });
    let pruned = crate::schema::prune(&s, &mut obj);
    assert_eq!(pruned, vec!["spec.bogus", "topLevel"]);
    assert_eq!(obj["spec"]["extra"]["anything"]["goes"], true);
    assert_eq!(obj["metadata"]["labels"]["x"], "y");
    assert_eq!(obj["template"], Value::Null);
    assert_eq!(obj["spec"]["template"]["whatever"], 1);
    crate::schema::default(&s, &mut obj);
    assert_eq!(obj["spec"]["replicas"], 1);
    assert_eq!(obj["spec"]["nested"], json!({"mode": "auto"}));
    assert!(
        obj["spec"].as_object().unwrap().contains_key("opt"),
        "nullable null stays"
    );
    // A non-nullable null without default is dropped; with a default it is defaulted.
    let mut o2 = json!({"spec": {"size": "small", "name": null, "replicas": null}});
    crate::schema::default(&s, &mut o2);
    assert!(!o2["spec"].as_object().unwrap().contains_key("name"));
    assert_eq!(o2["spec"]["replicas"], 1);
}

#[test]
fn structural_schema_rules() {
    let check = |s: Value| -> Vec<String> {
        crate::schema::structural::check(&s, "spec.versions[0].schema.openAPIV3Schema")
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    assert!(
        check(spec_schema()).is_empty(),
        "{:?}",
        check(spec_schema())
    );
    assert_eq!(
        check(json!({"type": "object", "properties": {"spec": {"properties": {}}}})),
        vec!["spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"]
    );
    assert_eq!(
        check(json!({"type": "string"})),
        vec!["spec.versions[0].schema.openAPIV3Schema.type: Invalid value: \"string\": must be object at the root"]
    );
    assert_eq!(
        check(json!({"type": "object", "properties": {"l": {"type": "array"}}})),
        vec!["spec.versions[0].schema.openAPIV3Schema.properties[l].items: Required value: must be specified"]
    );
    let e = check(
        json!({"type": "object", "properties": {"m": {"type": "object",
        "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}}}}),
    );
    assert_eq!(e, vec!["spec.versions[0].schema.openAPIV3Schema.properties[m].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"]);
    let e = check(
        json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}}),
    );
    assert_eq!(e.len(), 1);
    assert!(e[0].contains("properties[metadata]: Forbidden"));
    let e =
        check(json!({"type": "object", "properties": {"n": {"type": "integer", "default": "x"}}}));
    assert_eq!(e, vec!["spec.versions[0].schema.openAPIV3Schema.properties[n].default: Invalid value: \"string\": . in body must be of type integer: \"string\""]);
    let e = check(json!({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}]}}}));
    assert_eq!(e.len(), 2, "{e:?}");
    // CEL rules are accepted (not evaluated).
    assert!(
        check(json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.a > 0"}]}))
            .is_empty()
    );
}

#[test]
fn crd_defaults_and_validation() {
    let mut crd = widget_crd();
    default_crd(&mut crd);
    assert_eq!(crd["spec"]["names"]["singular"], "widget");
    assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
    assert_eq!(crd["spec"]["conversion"]["strategy"], "None");
    assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    assert!(validate_crd(&crd).is_empty(), "{:?}", validate_crd(&crd));

    let mut bad = crd.clone();
    bad["metadata"]["name"] = json!("gadgets.example.com");
    bad["spec"]["group"] = json!("example");
    bad["spec"]["scope"] = json!("Global");
    bad["spec"]["versions"][0]["storage"] = json!(true);
    bad["spec"]["versions"][0]["schema"] = Value::Null;
    bad["spec"]["versions"][1]["additionalPrinterColumns"][0]["type"] = json!("float");
    let msgs: Vec<String> = validate_crd(&bad).iter().map(|e| e.to_string()).collect();
    let want = [
        "metadata.name: Invalid value: \"gadgets.example.com\": must be spec.names.plural+\".\"+spec.group",
        "spec.group: Invalid value: \"example\": should be a domain with at least one dot",
        "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\"",
        "spec.versions: Invalid value: \"v1beta1,v1\": must have exactly one version marked as storage version",
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
        "spec.versions[1].additionalPrinterColumns[0].type: Unsupported value: \"float\"",
    ];
    for w in want {
        assert!(
            msgs.iter().any(|m| m.starts_with(w)),
            "missing {w:?} in {msgs:#?}"
        );
    }
    let mut no_served = crd.clone();
    no_served["spec"]["versions"][0]["served"] = json!(false);
    no_served["spec"]["versions"][1]["served"] = json!(false);
    assert!(validate_crd(&no_served)
        .iter()
        .any(|e| e.detail == "must have at least one version marked as served"));
    let mut protected = crd.clone();
    protected["metadata"]["name"] = json!("widgets.x.k8s.io");
    protected["spec"]["group"] = json!("x.k8s.io");
    assert_eq!(
        validate_crd(&protected)[0].to_string(),
        "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111"
    );
    protected["metadata"]["annotations"] = json!({"api-approved.kubernetes.io": "https://github.com/kubernetes/enhancements/pull/1111"});
    assert!(validate_crd(&protected).is_empty());
    let mut moved = crd.clone();
    moved["spec"]["scope"] = json!("Cluster");
    let e = validate_crd_update(&moved, &crd);
    assert_eq!(
        e[0].to_string(),
        "spec.scope: Invalid value: \"Cluster\": field is immutable"
    );
}

#[test]
fn served_resources_are_interned_and_ordered() {
    let mut crd = widget_crd();
    default_crd(&mut crd);
    let rs = intern(&crd);
    assert_eq!(rs.len(), 2);
    assert_eq!(rs[0].version, "v1");
    assert_eq!(rs[1].version, "v1beta1");
    let v1 = rs[0];
    assert_eq!(v1.kind, "Widget");
    assert_eq!(v1.plural, "widgets");
    assert_eq!(v1.singular, "widget");
    assert_eq!(v1.short_names, &["wd"]);
    assert!(v1.namespaced);
    assert!(v1.traits.status && v1.traits.scale && v1.traits.generation);
    assert_eq!(v1.subresources.len(), 2);
    assert_eq!(
        v1.key(Some("ns"), "a"),
        "/registry/example.com/widgets/ns/a"
    );
    assert_eq!(v1.list_kind(), "WidgetList");
    let beta = rs[1];
    assert!(!beta.traits.status);
    assert_eq!(beta.custom.unwrap().storage_version, "v1");
    // Interned: the same definition gives the same resources.
    let again = intern(&crd);
    assert!(std::ptr::eq(rs[0], again[0]));
    // A served object is rewritten to its version and defaulted on read.
    let stored = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"}, "spec": {"size": "small"}});
    let served = to_served(beta, beta.custom.unwrap(), stored.clone());
    assert_eq!(served["apiVersion"], "example.com/v1beta1");
    let served = to_served(v1, v1.custom.unwrap(), stored);
    assert_eq!(served["spec"]["replicas"], 1);
    let back = to_storage(
        beta,
        beta.custom.unwrap(),
        json!({"apiVersion": "example.com/v1beta1"}),
    );
    assert_eq!(back["apiVersion"], "example.com/v1");
}

#[test]
fn version_priority() {
    let mut v = vec![
        "v1alpha1", "foo", "v2", "v1beta2", "v1", "v1beta1", "v10", "bar",
    ];
    v.sort_by(|a, b| compare_versions(a, b));
    assert_eq!(
        v,
        vec!["v10", "v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "bar", "foo"]
    );
}

#[test]
fn scale_and_table() {
    let mut crd = widget_crd();
    default_crd(&mut crd);
    let v1 = intern(&crd)[0];
    let info = v1.custom.unwrap();
    let paths = info.scale.as_ref().unwrap();
    let mut obj = json!({"metadata": {"name": "a", "namespace": "n", "resourceVersion": "7", "creationTimestamp": "2024-01-01T00:00:00Z"},
        "spec": {"replicas": 2, "size": "small"},
        "status": {"replicas": 1, "selector": "app=a", "conditions": [{"type": "Ready", "status": "True"}]}});
    let sc = scale_of(paths, &obj);
    assert_eq!(sc["spec"]["replicas"], 2);
    assert_eq!(sc["status"], json!({"replicas": 1, "selector": "app=a"}));
    assert_eq!(sc["metadata"]["resourceVersion"], "7");
    set_replicas(paths, &mut obj, 5);
    assert_eq!(obj["spec"]["replicas"], 5);

    let cols = crate::table::columns(v1);
    let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
    assert_eq!(names, vec!["Name", "Replicas", "Ready", "Size"]);
    assert_eq!(cols[3].priority, 1);
    let now: jiff::Timestamp = "2024-01-01T00:05:00Z".parse().unwrap();
    let cells = crate::table::cells(v1, &obj, now);
    assert_eq!(
        cells,
        vec![json!("a"), json!(5), json!("True"), json!("small")]
    );
    obj["spec"].as_object_mut().unwrap().remove("size");
    assert_eq!(crate::table::cells(v1, &obj, now)[3], Value::Null);
    // Without printer columns: Name and Age.
    let beta = intern(&crd)[1];
    let names: Vec<&str> = crate::table::columns(beta).iter().map(|c| c.name).collect();
    assert_eq!(names, vec!["Name", "Age"]);
    assert_eq!(
        crate::table::cells(beta, &obj, now),
        vec![json!("a"), json!("5m")]
    );
}

#[test]
fn unknown_fields_for_strict_validation() {
    let s = spec_schema();
    let obj = json!({"spec": {"size": "small", "sise": "x", "tags": ["a"]}, "other": 1});
    assert_eq!(
        crate::schema::unknown_fields(&s, &obj),
        vec!["spec.sise", "other"]
    );
    let e = FieldErrorKind::TooMany;
    assert_eq!(e.reason(), "FieldValueTooMany");
}

#[test]
fn deprecated_versions_warn() {
    let mut crd = widget_crd();
    crd["spec"]["versions"][0]["deprecated"] = json!(true);
    default_crd(&mut crd);
    let rs = intern(&crd);
    assert_eq!(
        rs[1].custom.unwrap().deprecation_warning.as_deref(),
        Some("example.com/v1beta1 Widget is deprecated; use example.com/v1 Widget")
    );
    assert!(rs[0].custom.unwrap().deprecation_warning.is_none());
    crd["spec"]["versions"][0]["deprecationWarning"] = json!("v1beta1 goes away in 2027");
    let rs = intern(&crd);
    assert_eq!(
        rs[1].custom.unwrap().deprecation_warning.as_deref(),
        Some("v1beta1 goes away in 2027")
    );
}

#[test]
fn selectable_fields() {
    let mut crd = widget_crd();
    crd["spec"]["versions"][1]["selectableFields"] =
        json!([{"jsonPath": ".spec.size"}, {"jsonPath": ".spec.replicas"}]);
    default_crd(&mut crd);
    assert!(validate_crd(&crd).is_empty(), "{:?}", validate_crd(&crd));
    let v1 = intern(&crd)[0];
    assert_eq!(
        v1.custom.unwrap().selectable_fields,
        vec!["spec.size", "spec.replicas"]
    );
    assert_eq!(
        crate::fields::convert_label(v1, "spec.size").unwrap(),
        "spec.size"
    );
    assert!(crate::fields::convert_label(v1, "spec.name").is_err());
    let obj = json!({"metadata": {"name": "a"}, "spec": {"size": "small", "replicas": 3}});
    assert_eq!(
        crate::fields::field_value(v1, &obj, "spec.replicas").as_deref(),
        Some("3")
    );
    crd["spec"]["versions"][1]["selectableFields"] =
        json!([{"jsonPath": ".spec.tags"}, {"jsonPath": ".spec.nope"}, {"jsonPath": "spec.size"}]);
    let msgs: Vec<String> = validate_crd(&crd).iter().map(|e| e.to_string()).collect();
    assert_eq!(msgs.len(), 3, "{msgs:?}");
    assert!(msgs[0].contains("selectable field type must be one of"));
    assert!(msgs[1].contains("does not refer to a field in the schema"));
    assert!(msgs[2].contains("must be a simple json path"));
}

#[test]
fn metadata_name_restrictions() {
    let s = json!({"type": "object", "properties": {"metadata": {"type": "object",
        "properties": {"name": {"type": "string", "maxLength": 5}}}}});
    let e: Vec<String> = crate::schema::validate(&s, &json!({"metadata": {"name": "toolong"}}))
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        e,
        vec!["metadata.name: Too long: may not be more than 5 bytes"]
    );
    assert!(crate::schema::validate(&s, &json!({"metadata": {"name": "ok"}})).is_empty());
    assert!(crate::schema::structural::check(&s, "x").is_empty());
}
