//! Strategic merge patch, directive by directive, with the exact results upstream's
//! k8s.io/apimachinery strategicpatch gives, and the patches kubectl sends (apply, edit,
//! cordon, taint, rollout restart).

use serde_json::{json, Value};
use skiff_core::registry::lookup_kind;
use skiff_core::strategic::{apply, create_two_way, field_meta, PatchError, Strategy};
use skiff_core::Resource;

fn res(api_version: &str, kind: &str) -> &'static Resource {
    lookup_kind(api_version, kind).unwrap()
}

fn pod() -> &'static Resource {
    res("v1", "Pod")
}

fn deploy() -> &'static Resource {
    res("apps/v1", "Deployment")
}

fn patch(r: &Resource, orig: Value, p: Value) -> Value {
    apply(r, &orig, &p).unwrap()
}

fn pod_with(containers: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": {"containers": containers}})
}

#[test]
fn metadata_of_built_in_kinds() {
    let merge = |k| Strategy::Merge { key: Some(k) };
    let d = deploy();
    assert_eq!(
        field_meta(d, &["spec", "template", "spec", "containers"]).strategy,
        merge("name")
    );
    assert_eq!(
        field_meta(d, &["spec", "template", "spec", "containers", "ports"]).strategy,
        merge("containerPort")
    );
    assert_eq!(
        field_meta(
            d,
            &["spec", "template", "spec", "containers", "volumeMounts"]
        )
        .strategy,
        merge("mountPath")
    );
    let vols = field_meta(d, &["spec", "template", "spec", "volumes"]);
    assert_eq!(vols.strategy, merge("name"));
    assert!(vols.retain_keys);
    let strategy = field_meta(d, &["spec", "strategy"]);
    assert_eq!(strategy.strategy, Strategy::Default);
    assert!(strategy.retain_keys);
    let cj = res("batch/v1", "CronJob");
    assert_eq!(
        field_meta(
            cj,
            &[
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "spec",
                "initContainers",
                "env"
            ]
        )
        .strategy,
        merge("name")
    );
    assert_eq!(
        field_meta(pod(), &["metadata", "finalizers"]).strategy,
        Strategy::Merge { key: None }
    );
    assert!(field_meta(pod(), &["metadata", "finalizers"]).is_primitive_merge_list());
    assert_eq!(
        field_meta(res("v1", "ConfigMap"), &["metadata", "ownerReferences"]).strategy,
        merge("uid")
    );
    assert_eq!(
        field_meta(pod(), &["status", "conditions"]).strategy,
        merge("type")
    );
    assert_eq!(
        field_meta(res("v1", "Service"), &["spec", "ports"]).strategy,
        merge("port")
    );
    assert_eq!(
        field_meta(res("v1", "ServiceAccount"), &["secrets"]).strategy,
        merge("name")
    );
    assert_eq!(
        field_meta(res("v1", "Node"), &["status", "addresses"]).strategy,
        merge("type")
    );
    assert_eq!(
        field_meta(
            res("policy/v1", "PodDisruptionBudget"),
            &["spec", "selector"]
        )
        .strategy,
        Strategy::Replace
    );
    // Atomic in upstream: no patchStrategy tag.
    for path in [
        &["spec", "tolerations"][..],
        &["spec", "containers", "args"],
        &["status", "containerStatuses"],
    ] {
        assert_eq!(
            field_meta(pod(), path).strategy,
            Strategy::Default,
            "{path:?}"
        );
    }
    assert_eq!(
        field_meta(res("v1", "Node"), &["spec", "taints"]).strategy,
        Strategy::Default
    );
    assert_eq!(
        field_meta(res("v1", "Endpoints"), &["subsets"]).strategy,
        Strategy::Default
    );
}

#[test]
fn maps_merge_and_null_deletes() {
    let orig = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"x": "1"}});
    let out = patch(
        res("v1", "ConfigMap"),
        orig,
        json!({"metadata": {"labels": {"a": null, "c": "3"}}, "data": {"y": "2"}, "gone": null}),
    );
    assert_eq!(
        out,
        json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "data": {"x": "1", "y": "2"}})
    );
}

#[test]
fn merge_list_by_key_merges_items() {
    let orig = pod_with(json!([
        {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
        {"name": "b", "image": "b:1"}
    ]));
    let out = patch(
        pod(),
        orig,
        json!({"spec": {"containers": [{"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([
            {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ])
    );
}

#[test]
fn new_items_are_ordered_as_upstream_does() {
    // Without $setElementOrder, an item new to the list goes before the server-only items
    // (upstream's mergeSortedSlice): [1,2,3] patched with [3*,1*] gives [2,3,1]; a new item
    // comes first.
    let orig = pod_with(json!([{"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}]));
    let out = patch(
        pod(),
        orig.clone(),
        json!({"spec": {"containers": [{"name": "3", "image": "c"}, {"name": "1", "image": "a"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "2", "image": "b"}, {"name": "3", "image": "c"}, {"name": "1", "image": "a"}])
    );
    let out = patch(
        pod(),
        orig,
        json!({"spec": {"containers": [{"name": "new", "image": "n"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "new", "image": "n"}, {"name": "1"}, {"name": "2", "image": "b"}, {"name": "3"}])
    );
}

#[test]
fn patch_delete_removes_item() {
    let orig = pod_with(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let out = patch(
        pod(),
        orig,
        json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "a"}, {"name": "c"}])
    );
}

#[test]
fn patch_replace_on_list_and_map() {
    let orig = pod_with(json!([{"name": "a", "image": "x"}, {"name": "b"}]));
    let out = patch(
        pod(),
        orig,
        json!({"spec": {"containers": [{"name": "c", "image": "y"}, {"$patch": "replace"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "c", "image": "y"}])
    );

    let orig = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
    let out = patch(
        res("v1", "ConfigMap"),
        orig,
        json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
    );
    assert_eq!(out, json!({"metadata": {"labels": {"c": "3"}}}));
}

#[test]
fn patch_delete_and_merge_on_map() {
    let cm = res("v1", "ConfigMap");
    let orig = json!({"metadata": {"labels": {"a": "1"}}, "data": {"x": "1"}});
    let out = patch(cm, orig.clone(), json!({"data": {"$patch": "delete"}}));
    assert_eq!(out, json!({"metadata": {"labels": {"a": "1"}}, "data": {}}));
    let out = patch(cm, orig, json!({"data": {"$patch": "merge", "y": "2"}}));
    assert_eq!(out["data"], json!({"x": "1", "y": "2"}));
}

#[test]
fn set_element_order_reorders() {
    let orig = pod_with(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
    let out = patch(
        pod(),
        orig.clone(),
        json!({"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "a"}, {"name": "b"}]}}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "c"}, {"name": "a"}, {"name": "b"}])
    );
    // Items the directive does not mention are slotted in by their live position: b came
    // before c on the server, so it goes before c.
    let out = patch(
        pod(),
        orig,
        json!({"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "d"}, {"name": "a"}],
            "containers": [{"name": "d", "image": "d"}]
        }}),
    );
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "b"}, {"name": "c"}, {"name": "d", "image": "d"}, {"name": "a"}])
    );
}

#[test]
fn set_element_order_must_match_patch_list() {
    let orig = pod_with(json!([{"name": "a"}, {"name": "b"}]));
    let err = apply(
        pod(),
        &orig,
        &json!({"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b"}, {"name": "a"}]
        }}),
    )
    .unwrap_err();
    assert!(matches!(err, PatchError::SetElementOrder { .. }), "{err}");
    assert!(err.is_bad_request());
    assert!(err.to_string().contains("spec.containers"), "{err}");
}

#[test]
fn kubectl_apply_patch_from_the_wire_notes() {
    let orig = json!({
        "metadata": {"name": "web", "annotations": {"x": "1"}},
        "spec": {"replicas": 1, "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}
        }}
    });
    let out = patch(
        deploy(),
        orig,
        json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"image": "nginx:1.27", "name": "web"}]
        }}}}),
    );
    assert_eq!(
        out["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}])
    );
    assert_eq!(out["spec"]["replicas"], 1);
}

#[test]
fn cordon_uncordon_taint_and_restart() {
    let node = res("v1", "Node");
    let orig = json!({
        "metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.42.0.0/24", "taints": [{"key": "old", "effect": "NoExecute"}]}
    });
    let cordoned = patch(node, orig.clone(), json!({"spec": {"unschedulable": true}}));
    assert_eq!(cordoned["spec"]["unschedulable"], true);
    assert_eq!(cordoned["spec"]["podCIDR"], "10.42.0.0/24");
    let uncordoned = patch(node, cordoned, json!({"spec": {"unschedulable": null}}));
    assert_eq!(uncordoned, orig);

    // Taints are atomic: kubectl taint sends the whole list.
    let tainted = patch(
        node,
        orig,
        json!({"spec": {"taints": [{"effect": "NoSchedule", "key": "dedicated", "value": "gpu"}]}}),
    );
    assert_eq!(
        tainted["spec"]["taints"],
        json!([{"effect": "NoSchedule", "key": "dedicated", "value": "gpu"}])
    );

    let d = json!({"spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web"}]}}}});
    let restarted = patch(
        deploy(),
        d,
        json!({"spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"
        }}}}}),
    );
    assert_eq!(
        restarted["spec"]["template"]["metadata"],
        json!({"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-01-01T00:00:00Z"}})
    );
    assert_eq!(
        restarted["spec"]["template"]["spec"]["containers"],
        json!([{"name": "web"}])
    );
}

#[test]
fn delete_from_primitive_list_and_primitive_union() {
    let orig = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
    let out = patch(
        pod(),
        orig.clone(),
        json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "c"]));
    // A merge list of primitives is a union; new values go before the server-only ones, as
    // upstream orders them.
    let out = patch(
        pod(),
        orig.clone(),
        json!({"metadata": {"finalizers": ["b", "d"]}}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "d", "c"]));
    let out = patch(
        pod(),
        orig,
        json!({"metadata": {
            "$setElementOrder/finalizers": ["c", "d", "a"],
            "$deleteFromPrimitiveList/finalizers": ["b"],
            "finalizers": ["d"]
        }}),
    );
    assert_eq!(out["metadata"]["finalizers"], json!(["c", "d", "a"]));
    let err = apply(
        pod(),
        &json!({"metadata": {"finalizers": ["a"]}}),
        &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}}),
    )
    .unwrap_err();
    assert!(matches!(err, PatchError::PrimitiveList { .. }));
    assert!(err.is_bad_request());
}

#[test]
fn atomic_lists_are_replaced() {
    let orig = json!({"spec": {"tolerations": [{"key": "a"}], "containers": [{"name": "c", "args": ["1", "2"]}]}});
    let out = patch(
        pod(),
        orig,
        json!({"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "c", "args": ["3"]}]}}),
    );
    assert_eq!(out["spec"]["tolerations"], json!([{"key": "b"}]));
    assert_eq!(
        out["spec"]["containers"],
        json!([{"name": "c", "args": ["3"]}])
    );
}

#[test]
fn retain_keys_clears_unlisted_fields() {
    let orig =
        json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let out = patch(
        deploy(),
        orig,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
    );
    assert_eq!(out, json!({"spec": {"strategy": {"type": "Recreate"}}}));

    let orig = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}}]}});
    let out = patch(
        pod(),
        orig.clone(),
        json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["configMap", "name"], "configMap": {"name": "cm"}}]}}),
    );
    assert_eq!(
        out["spec"]["volumes"],
        json!([{"name": "v", "configMap": {"name": "cm"}}])
    );
    let err = apply(
        pod(),
        &orig,
        &json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name"], "configMap": {"name": "cm"}}]}}),
    )
    .unwrap_err();
    assert!(matches!(err, PatchError::RetainKeys { .. }), "{err}");
    let err = apply(
        pod(),
        &orig,
        &json!({"spec": {"volumes": [{"name": "v", "$retainKeys": "name"}]}}),
    )
    .unwrap_err();
    assert!(err.is_bad_request());
}

#[test]
fn replace_strategy_map() {
    let pdb = res("policy/v1", "PodDisruptionBudget");
    let orig = json!({"spec": {"selector": {"matchLabels": {"a": "1"}}, "minAvailable": 1}});
    let out = patch(
        pdb,
        orig,
        json!({"spec": {"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}}}),
    );
    assert_eq!(
        out["spec"],
        json!({"selector": {"matchExpressions": [{"key": "b", "operator": "Exists"}]}, "minAvailable": 1})
    );
}

#[test]
fn new_values_are_cleaned() {
    // A value absent from the original is taken from the patch with nulls dropped and
    // directives interpreted.
    let out = patch(
        deploy(),
        json!({"metadata": {"name": "d"}}),
        json!({"spec": {
            "replicas": 2,
            "paused": null,
            "template": {"spec": {
                "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
                "containers": [{"name": "a", "image": null}, {"name": "b"}, {"name": "x", "$patch": "delete"}]
            }}
        }}),
    );
    assert_eq!(
        out,
        json!({"metadata": {"name": "d"}, "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}})
    );
}

#[test]
fn errors_are_typed() {
    let orig = pod_with(json!([{"name": "a"}]));
    let e = |p: Value| apply(pod(), &orig, &p).unwrap_err();
    assert!(matches!(
        e(json!({"spec": {"containers": [{"image": "x"}]}})),
        PatchError::NoMergeKey { key: "name", .. }
    ));
    assert!(matches!(
        e(json!({"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}})),
        PatchError::UnknownDirective { .. }
    ));
    assert!(matches!(
        e(json!({"spec": {"$patch": "bogus"}})),
        PatchError::UnknownDirective { .. }
    ));
    assert!(matches!(
        e(json!({"spec": {"containers": [{"name": "b"}, "x"]}})),
        PatchError::MixedList { .. }
    ));
    assert!(matches!(
        e(json!({"metadata": {"finalizers": [["x"]]}})),
        PatchError::ListOfLists { .. }
    ));
    assert!(matches!(
        e(json!({"spec": {"$setElementOrderX/containers": []}})),
        PatchError::SetElementOrder { .. }
    ));
    let err = e(json!({"spec": {"containers": [{"name": "a", "$patch": "bogus"}]}}));
    assert!(!err.is_bad_request());
    assert_eq!(
        err.to_string(),
        "unknown patch type: bogus in map at spec.containers"
    );
    assert!(apply(pod(), &orig, &json!([1])).is_err());
}

#[test]
fn two_way_patch_matches_kubectl() {
    let orig = json!({
        "metadata": {"name": "web", "labels": {"app": "web", "old": "x"}, "finalizers": ["a", "b"]},
        "spec": {"replicas": 1, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1.25"},
                {"name": "side", "image": "busybox"}
            ]}}}
    });
    let modified = json!({
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["b", "c"]},
        "spec": {"replicas": 2, "strategy": {"type": "Recreate"},
            "template": {"spec": {"containers": [
                {"name": "web", "image": "nginx:1.27"}
            ]}}}
    });
    let p = create_two_way(deploy(), &orig, &modified).unwrap();
    assert_eq!(
        p,
        json!({
            "metadata": {
                "labels": {"old": null},
                "finalizers": ["c"],
                "$deleteFromPrimitiveList/finalizers": ["a"],
                "$setElementOrder/finalizers": ["b", "c"]
            },
            "spec": {
                "replicas": 2,
                "strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null},
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}],
                    "containers": [{"image": "nginx:1.27", "name": "web"}, {"$patch": "delete", "name": "side"}]
                }}
            }
        })
    );
    assert_eq!(apply(deploy(), &orig, &p).unwrap(), modified);
    assert_eq!(create_two_way(deploy(), &orig, &orig).unwrap(), json!({}));
}
