//! Property tests of structural-schema pruning, defaulting and validation over arbitrary JSON:
//! pruning leaves nothing unknown and is idempotent, defaulting is idempotent, an object built
//! only from valid values validates, and validation never panics.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use skiff_core::schema;

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "replicas": {"type": "integer", "minimum": 0, "default": 1},
                    "name": {"type": "string", "maxLength": 8},
                    "mode": {"type": "string", "enum": ["a", "b"], "default": "a"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "limits": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "nested": {"type": "object", "default": {}, "properties": {
                        "flag": {"type": "boolean", "default": false},
                        "deep": {"type": "object", "properties": {"x": {"type": "number"}}}}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "port": {"x-kubernetes-int-or-string": true},
                    "items": {"type": "array", "items": {"type": "object", "properties": {
                        "k": {"type": "string"}, "v": {"type": "integer", "default": 0}}}}
                }
            }
        }
    })
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..20).prop_map(|n| json!(n)),
        "[a-z]{0,10}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("replicas".to_string()),
                    Just("name".to_string()),
                    Just("mode".to_string()),
                    Just("tags".to_string()),
                    Just("limits".to_string()),
                    Just("nested".to_string()),
                    Just("deep".to_string()),
                    Just("x".to_string()),
                    Just("free".to_string()),
                    Just("items".to_string()),
                    Just("k".to_string()),
                    Just("v".to_string()),
                    "[a-z]{1,4}",
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Objects built only from values the schema accepts.
fn valid_spec() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(0i64..100),
        proptest::option::of("[a-z]{0,8}"),
        proptest::option::of(prop_oneof![Just("a"), Just("b")]),
        proptest::collection::vec("[a-z]{0,5}", 0..3),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![
            (0i64..70000).prop_map(|n| json!(n)),
            "[a-z]{1,6}".prop_map(Value::String)
        ]),
    )
        .prop_map(|(replicas, name, mode, tags, flag, port)| {
            let mut spec = Map::new();
            if let Some(r) = replicas {
                spec.insert("replicas".into(), json!(r));
            }
            if let Some(n) = name {
                spec.insert("name".into(), json!(n));
            }
            if let Some(m) = mode {
                spec.insert("mode".into(), json!(m));
            }
            spec.insert("tags".into(), json!(tags));
            if let Some(f) = flag {
                spec.insert("nested".into(), json!({"flag": f}));
            }
            if let Some(p) = port {
                spec.insert("port".into(), p);
            }
            json!({"spec": spec})
        })
}

proptest! {
    #[test]
    fn pruning_leaves_nothing_unknown_and_is_idempotent(spec in any_json(), extra in any_json()) {
        let s = schema();
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "spec": spec, "extra": extra});
        schema::prune(&s, &mut obj);
        prop_assert!(schema::unknown_fields(&s, &obj).is_empty());
        prop_assert!(obj.get("extra").is_none());
        prop_assert_eq!(&obj["metadata"], &json!({"name": "n"}));
        let once = obj.clone();
        prop_assert!(schema::prune(&s, &mut obj).is_empty());
        prop_assert_eq!(obj, once);
    }

    #[test]
    fn defaulting_is_idempotent_and_validation_total(spec in any_json()) {
        let s = schema();
        let mut obj = json!({"spec": spec});
        schema::prune(&s, &mut obj);
        schema::default(&s, &mut obj);
        let once = obj.clone();
        schema::default(&s, &mut obj);
        prop_assert_eq!(&obj, &once);
        // Never panics, whatever it finds.
        let _ = schema::validate(&s, &obj);
    }

    #[test]
    fn valid_objects_validate_after_defaulting(obj in valid_spec()) {
        let s = schema();
        let mut obj = obj;
        prop_assert!(schema::prune(&s, &mut obj).is_empty());
        schema::default(&s, &mut obj);
        let errs = schema::validate(&s, &obj);
        prop_assert!(errs.is_empty(), "{:?} for {}", errs, obj);
        prop_assert!(obj["spec"]["replicas"].is_i64());
        prop_assert!(obj["spec"]["nested"]["flag"].is_boolean(), "nested defaults: {}", obj);
        prop_assert_eq!(&obj["spec"]["items"], &Value::Null);
    }
}
