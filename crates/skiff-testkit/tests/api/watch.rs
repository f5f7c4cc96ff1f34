//! Watches: replay from a resourceVersion, label-filtered watches that turn MODIFIED into
//! ADDED/DELETED as objects start or stop matching, bookmarks, timeoutSeconds, 410 Expired as
//! an ERROR event, and kube-runtime's watcher against the server.

use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{client, from_json, namespace};

const M: &str = "watch";

type Events = std::pin::Pin<Box<dyn Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Send>>;

async fn watch(api: &Api<ConfigMap>, wp: &WatchParams, rv: &str) -> Events {
    api.watch(wp, rv).await.expect("watch").boxed()
}

/// The next event, or None when the stream ended; panics after `secs`.
async fn next(events: &mut Events, secs: u64) -> Option<WatchEvent<ConfigMap>> {
    tokio::time::timeout(Duration::from_secs(secs), events.next())
        .await
        .expect("watch event in time")
        .map(|r| r.expect("watch event"))
}

fn describe(e: &WatchEvent<ConfigMap>) -> (String, String) {
    match e {
        WatchEvent::Added(o) => ("ADDED".into(), o.metadata.name.clone().unwrap()),
        WatchEvent::Modified(o) => ("MODIFIED".into(), o.metadata.name.clone().unwrap()),
        WatchEvent::Deleted(o) => ("DELETED".into(), o.metadata.name.clone().unwrap()),
        WatchEvent::Bookmark(_) => ("BOOKMARK".into(), String::new()),
        WatchEvent::Error(s) => ("ERROR".into(), format!("{} {}", s.code, s.reason)),
    }
}

/// Drains the stream until the server ends it, allowing nothing but bookmarks.
async fn only_bookmarks_until_the_end(events: &mut Events) {
    while let Some(e) = next(events, 10).await {
        assert!(
            matches!(e, WatchEvent::Bookmark(_)),
            "unexpected {:?}",
            describe(&e)
        );
    }
}

/// Non-bookmark events until `n` were seen.
async fn take(events: &mut Events, n: usize) -> Vec<(String, String)> {
    let mut out = vec![];
    while out.len() < n {
        match next(events, 10).await {
            Some(WatchEvent::Bookmark(_)) => {}
            Some(e) => out.push(describe(&e)),
            None => panic!("stream ended after {out:?}"),
        }
    }
    out
}

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    from_json(json!({"metadata": {"name": name, "labels": labels}, "data": {"v": "0"}}))
}

fn ev(t: &str, n: &str) -> (String, String) {
    (t.to_string(), n.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_from_resource_version_in_order() {
    let c = client(M).await;
    let ns = namespace(&c, "watch-replay").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let a = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let from = a.metadata.resource_version.clone().unwrap();
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    let mut last_rv = 0u64;
    for i in 1..=3 {
        let o = api
            .patch(
                "b",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"v": i.to_string()}})),
            )
            .await
            .unwrap();
        last_rv = crate::rv_num(o.metadata.resource_version.as_ref());
    }
    api.delete("a", &DeleteParams::default()).await.unwrap();

    let mut events = watch(&api, &WatchParams::default().timeout(3), &from).await;
    let mut got = vec![];
    let mut rvs = vec![];
    while got.len() < 5 {
        match next(&mut events, 10).await.expect("event") {
            WatchEvent::Bookmark(_) => {}
            e => {
                if let WatchEvent::Modified(o) = &e {
                    assert_eq!(
                        o.data.as_ref().unwrap()["v"],
                        rvs.len().to_string(),
                        "each MODIFIED carries the state at its revision"
                    );
                }
                let o = match &e {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => o,
                    _ => panic!("{e:?}"),
                };
                rvs.push(crate::rv_num(o.metadata.resource_version.as_ref()));
                got.push(describe(&e));
            }
        }
    }
    assert_eq!(
        got,
        [
            ev("ADDED", "b"),
            ev("MODIFIED", "b"),
            ev("MODIFIED", "b"),
            ev("MODIFIED", "b"),
            ev("DELETED", "a")
        ]
    );
    assert!(
        rvs.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {rvs:?}"
    );
    assert!(rvs[3] == last_rv);
    // nothing else: only a bookmark may come before the stream ends at its timeout
    only_bookmarks_until_the_end(&mut events).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn label_filtered_watch_follows_matching() {
    let c = client(M).await;
    let ns = namespace(&c, "watch-labels").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let start = crate::list_rv(&api).await;
    let mut events = watch(
        &api,
        &WatchParams::default().labels("app=x").timeout(5),
        &start,
    )
    .await;

    api.create(&PostParams::default(), &cm("o", json!({"app": "y"})))
        .await
        .unwrap();
    let pp = PatchParams::default();
    api.patch(
        "o",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
    )
    .await
    .unwrap();
    api.patch("o", &pp, &Patch::Merge(json!({"data": {"v": "1"}})))
        .await
        .unwrap();
    api.patch(
        "o",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"app": "z"}}})),
    )
    .await
    .unwrap();
    api.patch("o", &pp, &Patch::Merge(json!({"data": {"v": "2"}})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("m", json!({"app": "x"})))
        .await
        .unwrap();
    api.delete("m", &DeleteParams::default()).await.unwrap();
    api.delete("o", &DeleteParams::default()).await.unwrap();

    let got = take(&mut events, 5).await;
    assert_eq!(
        got,
        [
            ev("ADDED", "o"),
            ev("MODIFIED", "o"),
            ev("DELETED", "o"),
            ev("ADDED", "m"),
            ev("DELETED", "m")
        ]
    );
    only_bookmarks_until_the_end(&mut events).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bookmark_at_timeout_and_stream_ends() {
    let c = client(M).await;
    let ns = namespace(&c, "watch-bookmark").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let o = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let rv = o.metadata.resource_version.clone().unwrap();
    let started = std::time::Instant::now();
    let mut events = watch(&api, &WatchParams::default().timeout(1), &rv).await;
    let mut bookmark = None;
    while let Some(e) = next(&mut events, 10).await {
        match e {
            WatchEvent::Bookmark(b) => bookmark = Some(b),
            other => panic!("unexpected {:?}", describe(&other)),
        }
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "ended after {took:?}"
    );
    let b = bookmark.expect("a bookmark before the timeout ends the watch");
    assert!(crate::rv_num(Some(&b.metadata.resource_version)) >= crate::rv_num(Some(&rv)));
    assert_eq!(b.types.kind, "ConfigMap");

    // without bookmarks: nothing, and the stream still ends at the timeout
    let mut events = watch(
        &api,
        &WatchParams::default().disable_bookmarks().timeout(1),
        &rv,
    )
    .await;
    assert!(next(&mut events, 5).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn compacted_resource_version_is_an_expired_error_event() {
    let server = TestServer::start().await.unwrap();
    let c = server.client().await.unwrap();
    let ns = namespace(&c, "watch-expired").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let o = api
        .create(&PostParams::default(), &cm("churn", json!({})))
        .await
        .unwrap();
    let old = o.metadata.resource_version.clone().unwrap();
    for i in 0..120 {
        api.patch(
            "churn",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    // compaction runs every second
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut events = watch(&api, &WatchParams::default().timeout(5), &old).await;
    match next(&mut events, 10).await {
        Some(WatchEvent::Error(s)) => {
            assert_eq!((s.code, s.reason.as_str()), (410, "Expired"), "{s:?}");
            assert!(
                s.message.contains("too old resource version"),
                "{}",
                s.message
            );
        }
        other => panic!(
            "expected an ERROR event, got {:?}",
            other.as_ref().map(describe)
        ),
    }
    assert!(
        next(&mut events, 5).await.is_none(),
        "the stream ends after the error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_watcher_lists_then_follows() {
    let c = client(M).await;
    let ns = namespace(&c, "watch-runtime").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    for n in ["a", "b"] {
        api.create(&PostParams::default(), &cm(n, json!({})))
            .await
            .unwrap();
    }
    let mut stream = watcher(api.clone(), watcher::Config::default().timeout(2)).boxed();
    let mut initial = vec![];
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("watcher event in time")
            .expect("watcher ok")
            .expect("stream open");
        match e {
            watcher::Event::Init => {}
            watcher::Event::InitApply(o) => initial.push(o.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            other => panic!("unexpected before InitDone: {other:?}"),
        }
    }
    initial.sort();
    assert_eq!(initial, ["a", "b"]);

    api.create(&PostParams::default(), &cm("c", json!({})))
        .await
        .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = vec![];
    // the watch times out after 2 s and the watcher goes on from its last revision: still
    // exactly the two changes, whichever side of the reconnect they fall on
    while seen.len() < 2 {
        let e = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("watcher event in time")
            .expect("watcher ok")
            .expect("stream open");
        match e {
            watcher::Event::Apply(o) => seen.push(ev("APPLY", &o.metadata.name.unwrap())),
            watcher::Event::Delete(o) => seen.push(ev("DELETE", &o.metadata.name.unwrap())),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, [ev("APPLY", "c"), ev("DELETE", "a")]);
}
