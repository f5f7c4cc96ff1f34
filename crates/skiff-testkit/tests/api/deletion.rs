//! Deletion: finalizers, preconditions, the three propagation policies of the garbage
//! collector, deletecollection, and namespace deletion.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::{json, Value};

use crate::{client, eventually, expect_status, from_json, namespace};

const M: &str = "deletion";

fn cm(name: &str) -> ConfigMap {
    from_json(json!({"metadata": {"name": name}}))
}

/// A dependent of `owner` (a ConfigMap), optionally with a finalizer of its own.
fn dependent(name: &str, owner: &ConfigMap, finalizer: Option<&str>) -> ConfigMap {
    let mut m = json!({
        "name": name,
        "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap",
            "name": owner.metadata.name, "uid": owner.metadata.uid,
            "blockOwnerDeletion": true
        }]
    });
    if let Some(f) = finalizer {
        m["finalizers"] = json!([f]);
    }
    from_json(json!({"metadata": m}))
}

async fn gone(api: &Api<ConfigMap>, name: &str) {
    eventually(10, &format!("{name} to be gone"), || {
        let api = api.clone();
        let name = name.to_string();
        async move {
            match api.get(&name).await {
                Err(kube::Error::Api(s)) if s.code == 404 => Some(()),
                _ => None,
            }
        }
    })
    .await
}

async fn clear_finalizers(api: &Api<ConfigMap>, name: &str) {
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn finalizers_hold_deletion() {
    let c = client(M).await;
    let ns = namespace(&c, "del-finalizers").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let held: ConfigMap =
        from_json(json!({"metadata": {"name": "held", "finalizers": ["skiff.test/a"]}}));
    api.create(&PostParams::default(), &held).await.unwrap();
    let r = api.delete("held", &DeleteParams::default()).await.unwrap();
    let obj = r
        .left()
        .expect("the object stays while a finalizer is on it");
    assert!(obj.metadata.deletion_timestamp.is_some());
    let got = api.get("held").await.unwrap();
    assert!(got.metadata.deletion_timestamp.is_some());
    assert_eq!(got.metadata.deletion_grace_period_seconds, Some(0));

    // no new finalizers on a deleting object
    let r = api
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["skiff.test/a", "skiff.test/b"]}})),
        )
        .await;
    let s = expect_status(r, 422, "Invalid");
    assert!(format!("{s:?}").contains("metadata.finalizers"), "{s:?}");
    // other changes to a deleting object are still fine, and deleting again changes nothing
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        api.get("held").await.unwrap().metadata.deletion_timestamp,
        got.metadata.deletion_timestamp
    );

    clear_finalizers(&api, "held").await;
    gone(&api, "held").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn preconditions() {
    let c = client(M).await;
    let ns = namespace(&c, "del-preconditions").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let o = api.create(&PostParams::default(), &cm("x")).await.unwrap();
    let pre = |uid: Option<&str>, rv: Option<&str>| {
        DeleteParams::default().preconditions(Preconditions {
            uid: uid.map(String::from),
            resource_version: rv.map(String::from),
        })
    };
    let r = api
        .delete(
            "x",
            &pre(Some("00000000-0000-0000-0000-000000000000"), None),
        )
        .await;
    let s = expect_status(r, 409, "Conflict");
    assert!(s.message.contains("Precondition failed"), "{}", s.message);
    let r = api.delete("x", &pre(None, Some("1"))).await;
    expect_status(r, 409, "Conflict");
    assert!(api.get("x").await.is_ok());
    api.delete(
        "x",
        &pre(
            o.metadata.uid.as_deref(),
            o.metadata.resource_version.as_deref(),
        ),
    )
    .await
    .unwrap();
    gone(&api, "x").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn foreground_waits_for_dependents() {
    let c = client(M).await;
    let ns = namespace(&c, "del-foreground").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let owner = api
        .create(&PostParams::default(), &cm("owner"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &dependent("free", &owner, None))
        .await
        .unwrap();
    api.create(
        &PostParams::default(),
        &dependent("held", &owner, Some("skiff.test/hold")),
    )
    .await
    .unwrap();

    api.delete("owner", &DeleteParams::foreground())
        .await
        .unwrap();
    let o = api.get("owner").await.unwrap();
    assert!(o.metadata.deletion_timestamp.is_some());
    assert!(o
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"foregroundDeletion".to_string()));

    gone(&api, "free").await;
    eventually(10, "the held dependent to be marked for deletion", || {
        let api = api.clone();
        async move { api.get("held").await.ok()?.metadata.deletion_timestamp }
    })
    .await;
    // the owner stays while a dependent does
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let o = api
        .get("owner")
        .await
        .expect("owner still there while a dependent is");
    assert!(o
        .metadata
        .finalizers
        .unwrap_or_default()
        .contains(&"foregroundDeletion".to_string()));

    clear_finalizers(&api, "held").await;
    gone(&api, "held").await;
    gone(&api, "owner").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn background_collects_dependents_after_the_owner() {
    let c = client(M).await;
    let ns = namespace(&c, "del-background").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let owner = api
        .create(&PostParams::default(), &cm("owner"))
        .await
        .unwrap();
    let other = api
        .create(&PostParams::default(), &cm("other"))
        .await
        .unwrap();
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &dependent(&format!("dep-{i}"), &owner, None),
        )
        .await
        .unwrap();
    }
    // one dependent with a second, living owner survives
    let mut two: Value = serde_json::to_value(dependent("two-owners", &owner, None)).unwrap();
    two["metadata"]["ownerReferences"]
        .as_array_mut()
        .unwrap()
        .push(json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": other.metadata.uid}));
    api.create(&PostParams::default(), &from_json(two))
        .await
        .unwrap();

    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    expect_status(api.get("owner").await, 404, "NotFound");
    for i in 0..3 {
        gone(&api, &format!("dep-{i}")).await;
    }
    let survivor = api.get("two-owners").await.unwrap();
    let refs = survivor.metadata.owner_references.unwrap_or_default();
    assert!(refs.iter().any(|r| r.name == "other"));
}

#[tokio::test(flavor = "multi_thread")]
async fn orphan_strips_owner_references() {
    let c = client(M).await;
    let ns = namespace(&c, "del-orphan").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let owner = api
        .create(&PostParams::default(), &cm("owner"))
        .await
        .unwrap();
    for i in 0..2 {
        api.create(
            &PostParams::default(),
            &dependent(&format!("dep-{i}"), &owner, None),
        )
        .await
        .unwrap();
    }
    api.delete("owner", &DeleteParams::orphan()).await.unwrap();
    gone(&api, "owner").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for i in 0..2 {
        let d = api
            .get(&format!("dep-{i}"))
            .await
            .expect("orphaned dependent lives");
        assert!(
            d.metadata.owner_references.unwrap_or_default().is_empty(),
            "owner reference removed"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deletecollection_by_label() {
    let c = client(M).await;
    let ns = namespace(&c, "del-collection").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    for (name, tier) in [("a", "x"), ("b", "x"), ("c", "y")] {
        let o: ConfigMap = from_json(json!({"metadata": {"name": name, "labels": {"tier": tier}}}));
        api.create(&PostParams::default(), &o).await.unwrap();
    }
    let r = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("tier=x"),
        )
        .await
        .unwrap();
    let list = r.left().expect("the deleted items");
    let mut names: Vec<String> = list
        .items
        .iter()
        .map(|o| o.metadata.name.clone().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    let left = crate::list_names(&api).await;
    assert_eq!(left, ["c"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn namespace_deletion_removes_content_then_itself() {
    let c = client(M).await;
    let ns = namespace(&c, "del-namespace").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("cm-{i}")))
            .await
            .unwrap();
    }
    let keep = namespace(&c, "del-namespace-keep").await;
    let kept: Api<ConfigMap> = Api::namespaced(c.clone(), &keep);
    kept.create(&PostParams::default(), &cm("cm-0"))
        .await
        .unwrap();

    let nss: Api<Namespace> = Api::all(c.clone());
    let n = nss.get(&ns).await.unwrap();
    assert_eq!(n.spec.unwrap().finalizers.unwrap(), ["kubernetes"]);
    assert_eq!(n.status.unwrap().phase.as_deref(), Some("Active"));
    nss.delete(&ns, &DeleteParams::default()).await.unwrap();
    eventually(10, "the namespace to be gone", || {
        let nss = nss.clone();
        let ns = ns.clone();
        async move { nss.get(&ns).await.err() }
    })
    .await;
    let all: Api<ConfigMap> = Api::all(c.clone());
    let left = all
        .list(&ListParams::default().fields(&format!("metadata.namespace={ns}")))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "content removed");
    assert!(kept.get("cm-0").await.is_ok(), "other namespaces untouched");
}
