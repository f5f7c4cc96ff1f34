//! Property tests of strategic merge patch: for random Pods, Deployments and ConfigMaps,
//! applying the two-way patch kubectl would compute (upstream's `CreateTwoWayMergePatch`)
//! to the original yields the modified object, and an unchanged object gives an empty patch.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use skiff_core::registry::lookup_kind;
use skiff_core::strategic::{apply, create_two_way};
use skiff_core::Resource;

/// Inserts the present values into a map.
fn obj(fields: Vec<(&str, Option<Value>)>) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    }
    Value::Object(m)
}

fn small() -> BoxedStrategy<String> {
    prop::sample::select(vec!["a", "b", "c", "d"])
        .prop_map(str::to_string)
        .boxed()
}

fn string_map() -> BoxedStrategy<Value> {
    prop::collection::btree_map(small(), small(), 0..4)
        .prop_map(|m| json!(m))
        .boxed()
}

/// A list of items unique by `key`, in random order.
fn keyed_list<K: Strategy<Value = String> + 'static>(
    keys: K,
    item: impl Fn(String) -> BoxedStrategy<Value> + Copy + 'static,
    max: usize,
) -> BoxedStrategy<Value> {
    prop::collection::btree_set(keys, 0..max)
        .prop_flat_map(move |names| {
            names
                .into_iter()
                .map(item)
                .collect::<Vec<_>>()
                .prop_shuffle()
        })
        .prop_map(Value::Array)
        .boxed()
}

fn primitive_list() -> BoxedStrategy<Value> {
    prop::sample::subsequence(vec!["f1", "f2", "f3", "f4"], 0..4)
        .prop_shuffle()
        .prop_map(|v| json!(v))
        .boxed()
}

fn metadata() -> BoxedStrategy<Value> {
    (
        prop::option::of(string_map()),
        prop::option::of(string_map()),
        prop::option::of(primitive_list()),
        prop::option::of(keyed_list(
            small(),
            |uid| {
                small()
                    .prop_map(move |n| json!({"uid": uid, "kind": "ReplicaSet", "name": n}))
                    .boxed()
            },
            3,
        )),
    )
        .prop_map(|(labels, annotations, finalizers, owners)| {
            obj(vec![
                ("name", Some(json!("x"))),
                ("labels", labels),
                ("annotations", annotations),
                ("finalizers", finalizers),
                ("ownerReferences", owners),
            ])
        })
        .boxed()
}

fn container(name: String) -> BoxedStrategy<Value> {
    (
        prop::option::of(small()),
        prop::option::of(keyed_list(
            small(),
            |n| {
                small()
                    .prop_map(move |v| json!({"name": n, "value": v}))
                    .boxed()
            },
            4,
        )),
        prop::option::of(keyed_list(
            prop::sample::select(vec!["80", "443", "8080"]).prop_map(str::to_string),
            |p| {
                prop::option::of(small())
                    .prop_map(move |n| {
                        obj(vec![
                            ("containerPort", Some(json!(p.parse::<u16>().unwrap()))),
                            ("name", n.map(Value::String)),
                        ])
                    })
                    .boxed()
            },
            3,
        )),
        prop::option::of(prop::collection::vec(small(), 0..3)),
        prop::option::of(keyed_list(
            prop::sample::select(vec!["/a", "/b", "/c"]).prop_map(str::to_string),
            |m| {
                small()
                    .prop_map(move |n| json!({"mountPath": m, "name": n}))
                    .boxed()
            },
            3,
        )),
    )
        .prop_map(move |(image, env, ports, args, mounts)| {
            obj(vec![
                ("name", Some(json!(name))),
                ("image", image.map(Value::String)),
                ("env", env),
                ("ports", ports),
                ("args", args.map(|a| json!(a))),
                ("volumeMounts", mounts),
            ])
        })
        .boxed()
}

fn volume(name: String) -> BoxedStrategy<Value> {
    prop_oneof![
        Just(json!({"emptyDir": {}})),
        small().prop_map(|n| json!({"configMap": {"name": n}})),
        small().prop_map(|n| json!({"secret": {"secretName": n}})),
    ]
    .prop_map(move |mut v| {
        v["name"] = json!(name);
        v
    })
    .boxed()
}

fn pod_spec() -> BoxedStrategy<Value> {
    (
        keyed_list(small(), container, 4),
        prop::option::of(keyed_list(small(), container, 3)),
        prop::option::of(keyed_list(small(), volume, 4)),
        prop::option::of(prop::collection::vec(
            small().prop_map(|k| json!({"key": k, "operator": "Exists"})),
            0..3,
        )),
        prop::option::of(small()),
        prop::option::of(string_map()),
    )
        .prop_map(|(containers, init, volumes, tolerations, node, selector)| {
            obj(vec![
                ("containers", Some(containers)),
                ("initContainers", init),
                ("volumes", volumes),
                ("tolerations", tolerations.map(Value::Array)),
                ("nodeName", node.map(Value::String)),
                ("nodeSelector", selector),
            ])
        })
        .boxed()
}

fn pod() -> BoxedStrategy<Value> {
    (metadata(), pod_spec())
        .prop_map(|(m, s)| json!({"apiVersion": "v1", "kind": "Pod", "metadata": m, "spec": s}))
        .boxed()
}

fn deployment() -> BoxedStrategy<Value> {
    let strategy = prop_oneof![
        Just(json!({"type": "Recreate"})),
        (0u8..3).prop_map(|n| json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": n}})),
        (0u8..3, 0u8..3).prop_map(|(a, b)| {
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": a, "maxUnavailable": b}})
        }),
    ];
    (
        metadata(),
        prop::option::of(0u8..5),
        prop::option::of(strategy),
        prop::option::of(string_map()),
        pod_spec(),
    )
        .prop_map(|(m, replicas, strategy, tlabels, spec)| {
            let template = obj(vec![
                ("metadata", tlabels.map(|l| json!({"labels": l}))),
                ("spec", Some(spec)),
            ]);
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": m,
                "spec": obj(vec![
                    ("replicas", replicas.map(|r| json!(r))),
                    ("strategy", strategy),
                    ("template", Some(template)),
                ]),
            })
        })
        .boxed()
}

fn config_map() -> BoxedStrategy<Value> {
    (
        metadata(),
        prop::option::of(string_map()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(|(m, data, immutable)| {
            obj(vec![
                ("apiVersion", Some(json!("v1"))),
                ("kind", Some(json!("ConfigMap"))),
                ("metadata", Some(m)),
                ("data", data),
                ("immutable", immutable.map(Value::Bool)),
            ])
        })
        .boxed()
}

fn round_trip(res: &Resource, original: &Value, modified: &Value) -> Result<(), TestCaseError> {
    let p = create_two_way(res, original, modified).unwrap();
    let out = apply(res, original, &p).unwrap();
    prop_assert_eq!(&out, modified, "patch: {}", p);
    let same = create_two_way(res, original, original).unwrap();
    prop_assert_eq!(same, json!({}));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn pods_round_trip(original in pod(), modified in pod()) {
        round_trip(lookup_kind("v1", "Pod").unwrap(), &original, &modified)?;
    }

    #[test]
    fn deployments_round_trip(original in deployment(), modified in deployment()) {
        round_trip(lookup_kind("apps/v1", "Deployment").unwrap(), &original, &modified)?;
    }

    #[test]
    fn config_maps_round_trip(original in config_map(), modified in config_map()) {
        round_trip(lookup_kind("v1", "ConfigMap").unwrap(), &original, &modified)?;
    }

    /// A patch applied twice gives the same object as applied once (kubectl retries patches
    /// on conflicts).
    #[test]
    fn two_way_patches_are_idempotent(original in deployment(), modified in deployment()) {
        let res = lookup_kind("apps/v1", "Deployment").unwrap();
        let p = create_two_way(res, &original, &modified).unwrap();
        let once = apply(res, &original, &p).unwrap();
        prop_assert_eq!(apply(res, &once, &p).unwrap(), once);
    }
}
