//! Chunked lists (`limit` + `continue`) read one consistent snapshot and report
//! `remainingItemCount`; `resourceVersion` with `resourceVersionMatch` reads the current or an
//! old state; a continue token or an Exact revision below the compacted history is 410 Expired.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, VersionMatch};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{client, eventually, expect_status, from_json, namespace, rv_num};

const M: &str = "pagination";

async fn make(api: &Api<ConfigMap>, name: &str, v: &str) -> ConfigMap {
    let cm: ConfigMap = from_json(json!({"metadata": {"name": name}, "data": {"v": v}}));
    api.create(&PostParams::default(), &cm).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn limit_and_continue_read_one_snapshot() {
    let c = client(M).await;
    let ns = namespace(&c, "page-snapshot").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    for i in 0..7 {
        make(&api, &format!("cm-{i}"), "x").await;
    }
    let first = api.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(first.items.len(), 3);
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let snapshot_rv = first.metadata.resource_version.clone();
    let mut token = first.metadata.continue_.clone().expect("continue token");
    let mut seen: Vec<String> = first
        .items
        .iter()
        .map(|o| o.metadata.name.clone().unwrap())
        .collect();

    // written between pages: not part of the snapshot, and changes not visible either
    make(&api, "cm-00-late", "x").await;
    make(&api, "cm-9-late", "x").await;
    api.patch(
        "cm-6",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "changed"}})),
    )
    .await
    .unwrap();
    api.delete("cm-5", &Default::default()).await.unwrap();

    let mut pages = 1;
    loop {
        let page = api
            .list(&ListParams::default().limit(3).continue_token(&token))
            .await
            .unwrap();
        pages += 1;
        assert_eq!(
            page.metadata.resource_version, snapshot_rv,
            "every page is at the snapshot"
        );
        for o in &page.items {
            if o.metadata.name.as_deref() == Some("cm-6") {
                assert_eq!(
                    o.data.as_ref().unwrap()["v"],
                    "x",
                    "the snapshot's state of cm-6"
                );
            }
        }
        seen.extend(page.items.iter().map(|o| o.metadata.name.clone().unwrap()));
        match page.metadata.continue_.clone().filter(|t| !t.is_empty()) {
            Some(t) => {
                // optional on later pages (upstream leaves it unset when unknown); right if set
                if let Some(n) = page.metadata.remaining_item_count {
                    assert_eq!(
                        n,
                        7 - seen.len() as i64,
                        "remainingItemCount of the snapshot"
                    );
                }
                token = t;
            }
            None => {
                assert_eq!(page.metadata.remaining_item_count, None);
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    let want: Vec<String> = (0..7).map(|i| format!("cm-{i}")).collect();
    assert_eq!(seen, want, "the snapshot, in name order, exactly once");

    // a list without limit sees the present
    let now = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(now.items.len(), 8);
    assert!(now.metadata.continue_.is_none_or(|c| c.is_empty()));

    // a bad token is a 400
    let r = api
        .list(&ListParams::default().limit(3).continue_token("garbage!"))
        .await;
    expect_status(r, 400, "BadRequest");
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_version_match_semantics() {
    let c = client(M).await;
    let ns = namespace(&c, "page-rv").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let v1 = make(&api, "x", "1").await;
    let rv1 = v1.metadata.resource_version.clone().unwrap();
    let v2 = api
        .patch(
            "x",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": "2"}})),
        )
        .await
        .unwrap();
    let rv2 = v2.metadata.resource_version.clone().unwrap();
    make(&api, "y", "1").await;

    // resourceVersion=0: any state, served from the present here
    let any = api.list(&ListParams::default().match_any()).await.unwrap();
    assert!(any
        .items
        .iter()
        .any(|o| o.metadata.name.as_deref() == Some("x")));

    // NotOlderThan an old revision: at least as new, here the latest
    let lp = ListParams::default()
        .at(&rv1)
        .matching(VersionMatch::NotOlderThan);
    let l = api.list(&lp).await.unwrap();
    assert!(rv_num(l.metadata.resource_version.as_ref()) >= rv_num(Some(&rv2)));
    let x = l
        .items
        .iter()
        .find(|o| o.metadata.name.as_deref() == Some("x"))
        .unwrap();
    assert_eq!(x.data.as_ref().unwrap()["v"], "2");
    assert_eq!(l.items.len(), 2);

    // Exact at rv1: the state then (x at v=1, y not yet there)
    let lp = ListParams::default().at(&rv1).matching(VersionMatch::Exact);
    let l = api.list(&lp).await.unwrap();
    assert_eq!(l.metadata.resource_version.as_deref(), Some(rv1.as_str()));
    assert_eq!(l.items.len(), 1);
    assert_eq!(l.items[0].data.as_ref().unwrap()["v"], "1");
    assert_eq!(
        l.items[0].metadata.resource_version.as_deref(),
        Some(rv1.as_str())
    );

    // Exact with paging keeps the old snapshot across pages
    let first = api
        .list(
            &ListParams::default()
                .at(&rv2)
                .matching(VersionMatch::Exact)
                .limit(1),
        )
        .await
        .unwrap();
    assert_eq!(first.items.len(), 1);
    assert!(
        first.metadata.continue_.is_none_or(|c| c.is_empty()),
        "only x existed at rv2"
    );

    // a match without a resourceVersion is a 400
    let r = crate::raw(
        &c,
        "GET",
        &format!("/api/v1/namespaces/{ns}/configmaps?resourceVersionMatch=Exact"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["reason"], "BadRequest");
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_continue_and_exact_below_compaction() {
    let server = TestServer::start().await.unwrap();
    let c = server.client().await.unwrap();
    let ns = namespace(&c, "page-expired").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    for i in 0..5 {
        make(&api, &format!("cm-{i}"), "x").await;
    }
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    let token = first.metadata.continue_.clone().unwrap();
    let old_rv = first.metadata.resource_version.clone().unwrap();

    // more than the 100 retained revisions, then wait for the once-a-second compaction
    make(&api, "churn", "0").await;
    for i in 0..120 {
        api.patch(
            "churn",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    let exact = ListParams::default()
        .at(&old_rv)
        .matching(VersionMatch::Exact);
    let s = eventually(10, "compaction to pass the old revision", || {
        let api = api.clone();
        let exact = exact.clone();
        async move {
            match api.list(&exact).await {
                Err(kube::Error::Api(s)) => Some(*s),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!((s.code, s.reason.as_str()), (410, "Expired"), "{s:?}");

    let r = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await;
    let s = expect_status(r, 410, "Expired");
    assert!(s.message.contains("continue"), "{}", s.message);

    // the present still lists
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        6
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn later_pages_count_what_remains() {
    let c = client(M).await;
    let ns = namespace(&c, "page-remaining").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    for i in 0..7 {
        make(&api, &format!("cm-{i}"), "x").await;
    }
    let first = api.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(first.metadata.remaining_item_count, Some(4));
    let token = first.metadata.continue_.clone().expect("continue token");
    let second = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.items.len(), 3);
    assert_eq!(second.metadata.remaining_item_count, Some(1));
    let token = second.metadata.continue_.clone().expect("continue token");
    let last = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(last.metadata.remaining_item_count, None);
    assert!(last.metadata.continue_.is_none());
}
