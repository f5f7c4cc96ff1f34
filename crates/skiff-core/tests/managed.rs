//! Field management and server-side apply (`skiff_core::managed`): FieldsV1 encoding, the sets
//! writes record, conflicts, force, and removal of fields an applier stops applying; with
//! property tests over generated objects.

use proptest::prelude::*;
use serde_json::{json, Value};
use skiff_core::managed::{
    self, DisplayPath, FieldSet, ManagedError, Manager, PathElement, Requested, Scope,
};
use skiff_core::registry::{self, Resource};

const NOW: &str = "2025-01-01T00:00:00Z";

fn deployments() -> &'static Resource {
    registry::lookup("apps", "v1", "deployments").unwrap()
}

fn configmaps() -> &'static Resource {
    registry::lookup("", "v1", "configmaps").unwrap()
}

fn mgr(name: &str) -> Manager<'_> {
    Manager {
        name,
        api_version: "apps/v1",
        subresource: "",
    }
}

fn deployment(replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"replicas": replicas,
                 "template": {"spec": {"containers": [{"name": "web", "image": image,
                                                        "args": ["a", "b"]}]}}}
    })
}

fn fields(obj: &Value, i: usize) -> Value {
    obj["metadata"]["managedFields"][i]["fieldsV1"].clone()
}

#[test]
fn fields_v1_round_trip_and_members() {
    let v = json!({
        "f:metadata": {"f:finalizers": {".": {}, "v:\"a\"": {}}},
        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}
    });
    let s = FieldSet::from_fields_v1(&v).unwrap();
    assert_eq!(s.to_fields_v1(), v);
    let members: Vec<String> = s
        .members()
        .iter()
        .map(|p| DisplayPath(p).to_string())
        .collect();
    assert_eq!(
        members,
        [
            ".metadata.finalizers",
            ".metadata.finalizers[=\"a\"]",
            ".spec.containers[name=\"web\"]",
            ".spec.containers[name=\"web\"].image",
        ]
    );
    assert!(FieldSet::from_fields_v1(&json!({"x:y": {}})).is_err());
    assert!(FieldSet::from_fields_v1(&json!([])).is_err());
}

#[test]
fn set_operations() {
    let f = |s: &str| PathElement::Field(s.into());
    let mut a = FieldSet::new();
    a.insert(&[f("spec"), f("replicas")]);
    a.insert(&[f("spec"), f("paused")]);
    let mut b = FieldSet::new();
    b.insert(&[f("spec"), f("replicas")]);
    assert_eq!(a.intersection(&b), b);
    let d = a.difference(&b);
    assert!(d.contains(&[f("spec"), f("paused")]));
    assert!(!d.contains(&[f("spec"), f("replicas")]));
    let mut spec = FieldSet::new();
    spec.insert(&[f("spec")]);
    let mut c = a.clone();
    c.remove_subtrees(&spec);
    assert!(c.is_empty());
    let mut c = a.clone();
    c.remove_members(&spec);
    assert_eq!(c, a);
    assert!(a.has_at_or_below(&[f("spec")]));
}

#[test]
fn create_records_an_update_owning_everything_but_server_fields() {
    let obj = deployment(1, "nginx");
    let mf = managed::created(deployments(), &obj, Scope::Main, &mgr("kubectl"), NOW);
    assert_eq!(
        mf,
        json!([{
            "manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1", "time": NOW,
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:replicas": {}, "f:template": {".": {}, "f:spec": {".": {},
                    "f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {}}}}}}
            }
        }])
    );
}

#[test]
fn apply_create_conflict_force_and_drop() {
    let res = deployments();
    let created = managed::apply(
        res,
        None,
        &deployment(1, "nginx"),
        Scope::Main,
        &mgr("a"),
        false,
        NOW,
    )
    .unwrap();
    assert_eq!(
        created["metadata"]["managedFields"][0]["operation"],
        "Apply"
    );
    assert_eq!(
        fields(&created, 0)["f:spec"]["f:template"]["f:spec"]["f:containers"],
        json!({"k:{\"name\":\"web\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {}}})
    );
    // Same values by another applier: shared, no conflict.
    let shared = managed::apply(
        res,
        Some(&created),
        &deployment(1, "nginx"),
        Scope::Main,
        &mgr("b"),
        false,
        NOW,
    )
    .unwrap();
    assert_eq!(
        shared["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // A changed value: conflict with both owners' identities.
    let err = managed::apply(
        res,
        Some(&created),
        &deployment(2, "nginx"),
        Scope::Main,
        &mgr("b"),
        false,
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas"
    );
    let status = skiff_core::ApiError::from(err);
    assert_eq!((status.code, status.reason), (409, "Conflict"));
    assert_eq!(status.details.causes[0].reason, "FieldManagerConflict");
    assert_eq!(status.details.causes[0].field, ".spec.replicas");
    // Forced: "b" owns replicas, "a" no longer does.
    let forced = managed::apply(
        res,
        Some(&created),
        &deployment(2, "nginx"),
        Scope::Main,
        &mgr("b"),
        true,
        NOW,
    )
    .unwrap();
    assert_eq!(forced["spec"]["replicas"], 2);
    assert!(fields(&forced, 0)["f:spec"].get("f:replicas").is_none());
    assert_eq!(fields(&forced, 1)["f:spec"]["f:replicas"], json!({}));
    // "a" stops applying labels and replicas: both stay, "b" owns them too; "a" no longer does.
    let mut cfg = deployment(2, "nginx");
    cfg["metadata"].as_object_mut().unwrap().remove("labels");
    cfg["spec"].as_object_mut().unwrap().remove("replicas");
    let dropped =
        managed::apply(res, Some(&forced), &cfg, Scope::Main, &mgr("a"), false, NOW).unwrap();
    assert_eq!(dropped["spec"]["replicas"], 2);
    assert_eq!(dropped["metadata"]["labels"], json!({"app": "web"}));
    assert!(fields(&dropped, 0)["f:metadata"].is_null());
    // Dropped by its only owner, a field goes.
    let mut cfg = deployment(2, "nginx");
    cfg["metadata"].as_object_mut().unwrap().remove("labels");
    let dropped =
        managed::apply(res, Some(&forced), &cfg, Scope::Main, &mgr("b"), false, NOW).unwrap();
    assert_eq!(dropped["metadata"]["labels"], json!({"app": "web"}));
    let mut cfg_a = deployment(1, "nginx");
    cfg_a["metadata"]["labels"]["only-a"] = json!("1");
    let with_a = managed::apply(
        res,
        Some(&created),
        &cfg_a,
        Scope::Main,
        &mgr("a"),
        false,
        NOW,
    )
    .unwrap();
    assert_eq!(with_a["metadata"]["labels"]["only-a"], "1");
    let without = managed::apply(
        res,
        Some(&with_a),
        &deployment(1, "nginx"),
        Scope::Main,
        &mgr("a"),
        false,
        NOW,
    )
    .unwrap();
    assert_eq!(without["metadata"]["labels"], json!({"app": "web"}));
}

#[test]
fn apply_merges_keyed_lists_and_sets() {
    let res = deployments();
    let mut live = deployment(1, "nginx");
    live["metadata"]["finalizers"] = json!(["x"]);
    live["spec"]["template"]["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "side", "image": "busybox"}));
    let cfg = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "finalizers": ["y"]},
        "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}
    });
    let out = managed::apply(res, Some(&live), &cfg, Scope::Main, &mgr("m"), true, NOW).unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["x", "y"]));
    let cs = &out["spec"]["template"]["spec"]["containers"];
    assert_eq!(cs[0]["image"], "nginx:2");
    assert_eq!(cs[0]["args"], json!(["a", "b"]));
    assert_eq!(cs[1]["name"], "side");
    assert_eq!(
        fields(&out, 0)["f:metadata"]["f:finalizers"],
        json!({"v:\"y\"": {}})
    );
}

#[test]
fn status_writes_are_scoped() {
    let res = deployments();
    let mut cfg = deployment(1, "nginx");
    cfg["status"] = json!({"replicas": 1});
    let main = managed::created(res, &cfg, Scope::Main, &mgr("m"), NOW);
    assert!(main[0]["fieldsV1"].get("f:status").is_none());
    let status = managed::created(res, &cfg, Scope::Status, &mgr("m"), NOW);
    assert_eq!(
        status[0]["fieldsV1"],
        json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:status": {"f:replicas": {}}})
    );
}

#[test]
fn updates_take_ownership_and_removals_leave_every_set() {
    let res = configmaps();
    let m = |n| Manager {
        name: n,
        api_version: "v1",
        subresource: "",
    };
    let mut old = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
    let mf = managed::created(res, &old, Scope::All, &m("creator"), NOW);
    old["metadata"]["managedFields"] = mf;
    // "editor" changes a, removes b, adds c; managedFields absent: the stored ones are kept.
    let mut new = json!({"metadata": {"name": "c"}, "data": {"a": "9", "c": "3"}});
    managed::record_update(res, &old, &mut new, Scope::All, Some(&m("editor")), NOW).unwrap();
    let entries = managed::entries(&new).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].fields.to_fields_v1(), json!({"f:data": {}}));
    assert_eq!(
        entries[1].fields.to_fields_v1(),
        json!({"f:data": {"f:a": {}, "f:c": {}}})
    );
    // No change: managedFields untouched (no new time, no write).
    let mut same = new.clone();
    managed::record_update(res, &new, &mut same, Scope::All, Some(&m("other")), "later").unwrap();
    assert_eq!(same, new);
    // `[{}]` clears, `[]` keeps.
    let mut cleared = new.clone();
    cleared["metadata"]["managedFields"] = json!([{}]);
    assert_eq!(managed::requested(&cleared), Requested::Clear);
    managed::record_update(res, &new, &mut cleared, Scope::All, Some(&m("x")), NOW).unwrap();
    assert!(cleared["metadata"].get("managedFields").is_none());
    let mut kept = new.clone();
    kept["metadata"]["managedFields"] = json!([]);
    managed::record_update(res, &new, &mut kept, Scope::All, Some(&m("x")), NOW).unwrap();
    assert_eq!(kept, new);
    // Garbage in a request's managedFields is an error.
    let mut bad = new.clone();
    bad["metadata"]["managedFields"] = json!([{"operation": "Nope"}]);
    bad["data"]["z"] = json!("1");
    assert!(matches!(
        managed::record_update(res, &new, &mut bad, Scope::All, Some(&m("x")), NOW),
        Err(ManagedError::BadFieldsV1(_))
    ));
}

#[test]
fn multiple_conflicts_message() {
    let res = deployments();
    let mut live = deployment(1, "nginx");
    live["metadata"]["managedFields"] = managed::created(res, &live, Scope::Main, &mgr("c"), NOW);
    let err = managed::apply(
        res,
        Some(&live),
        &deployment(2, "nginx:2"),
        Scope::Main,
        &mgr("ssa"),
        false,
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 2 conflicts: conflicts with \"c\" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name=\"web\"].image"
    );
}

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z]{1,4}".prop_map(Value::from),
        (0i64..5).prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
    ]
}

/// Pods with keyed containers, env and ports, finalizers (a set), atomic args, and labels.
fn arb_pod() -> impl Strategy<Value = Value> {
    let container = (
        prop::option::of("[a-z]{1,3}"),
        prop::collection::btree_map("[A-C]", "[a-z]{0,2}", 0..3),
        prop::collection::vec("[a-z]{1,2}", 0..3),
        prop::option::of(arb_scalar()),
    );
    (
        prop::collection::btree_map("[a-d]", "[a-z]{1,3}", 0..3),
        prop::collection::btree_set("[a-c]", 0..3),
        prop::collection::btree_map("[a-d]", container, 0..3),
    )
        .prop_map(|(labels, finalizers, containers)| {
            let containers: Vec<Value> = containers
                .into_iter()
                .map(|(name, (image, env, args, extra))| {
                    let mut c = json!({"name": name});
                    if let Some(i) = image {
                        c["image"] = json!(i);
                    }
                    if !env.is_empty() {
                        c["env"] = Value::Array(
                            env.into_iter()
                                .map(|(n, v)| json!({"name": n, "value": v}))
                                .collect(),
                        );
                    }
                    if !args.is_empty() {
                        c["args"] = json!(args);
                    }
                    if let Some(x) = extra {
                        c["x"] = x;
                    }
                    c
                })
                .collect();
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "p", "labels": labels, "finalizers": finalizers},
                "spec": {"containers": containers}
            })
        })
}

fn pods() -> &'static Resource {
    registry::lookup("", "v1", "pods").unwrap()
}

fn pm(name: &str) -> Manager<'_> {
    Manager {
        name,
        api_version: "v1",
        subresource: "",
    }
}

proptest! {
    #[test]
    fn direct_fields_v1_matches_the_set(obj in arb_pod()) {
        let direct = managed::created(pods(), &obj, Scope::Main, &pm("m"), NOW);
        let direct = FieldSet::from_fields_v1(&direct[0]["fieldsV1"]).unwrap();
        let mut via = obj.clone();
        managed::record_update(pods(), &Value::Null, &mut via, Scope::Main, Some(&pm("m")), NOW).unwrap();
        let via = managed::entries(&via).unwrap();
        prop_assert_eq!(&via[0].fields, &direct);
        // And FieldsV1 round-trips.
        prop_assert_eq!(FieldSet::from_fields_v1(&direct.to_fields_v1()).unwrap(), direct);
    }

    #[test]
    fn apply_is_idempotent_and_shared_values_never_conflict(a in arb_pod(), b in arb_pod()) {
        let live = managed::apply(pods(), None, &a, Scope::Main, &pm("x"), false, NOW).unwrap();
        let again = managed::apply(pods(), Some(&live), &a, Scope::Main, &pm("x"), false, "later").unwrap();
        prop_assert_eq!(&again, &live);
        // Another manager applying exactly what is there conflicts with nobody.
        let shared = managed::apply(pods(), Some(&live), &a, Scope::Main, &pm("y"), false, NOW);
        prop_assert!(shared.is_ok());
        // Forcing b then re-applying b without force succeeds, and the result holds b's leaves.
        let forced = managed::apply(pods(), Some(&live), &b, Scope::Main, &pm("y"), true, NOW).unwrap();
        let again = managed::apply(pods(), Some(&forced), &b, Scope::Main, &pm("y"), false, NOW).unwrap();
        prop_assert_eq!(&again["spec"], &forced["spec"]);
    }

    #[test]
    fn a_sole_applier_converges_to_its_configuration(a in arb_pod(), b in arb_pod()) {
        // One manager owning everything: re-applying b after a leaves exactly b's fields.
        let live = managed::apply(pods(), None, &a, Scope::Main, &pm("x"), false, NOW).unwrap();
        let out = managed::apply(pods(), Some(&live), &b, Scope::Main, &pm("x"), false, NOW).unwrap();
        let fresh = managed::apply(pods(), None, &b, Scope::Main, &pm("x"), false, NOW).unwrap();
        let entries = managed::entries(&out).unwrap();
        let fresh_entries = managed::entries(&fresh).unwrap();
        prop_assert_eq!(entries.len(), fresh_entries.len());
        if let (Some(e), Some(f)) = (entries.first(), fresh_entries.first()) {
            prop_assert_eq!(&e.fields, &f.fields);
        }
        let mut set = FieldSet::new();
        for e in &entries { set.union_with(&e.fields); }
        prop_assert_eq!(set, fresh_entries.first().map(|e| e.fields.clone()).unwrap_or_default());
    }
}
