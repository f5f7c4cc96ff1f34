//! Consistency proofs: optimistic concurrency loses no update, resourceVersions never go
//! backwards, concurrent watchers agree on one ordered history, and a restart keeps
//! everything. Each test has a server of its own: they write a lot.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use skiff_testkit::TestServer;

use crate::{from_json, namespace, rv_num};

fn cm(name: &str, data: serde_json::Value) -> ConfigMap {
    from_json(json!({"metadata": {"name": name}, "data": data}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_read_modify_write_loses_nothing() {
    const WRITERS: usize = 32;
    const EACH: usize = 5;
    let server = TestServer::start().await.unwrap();
    let c = server.client().await.unwrap();
    let ns = namespace(&c, "cons-counter").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    api.create(&PostParams::default(), &cm("counter", json!({"n": "0"})))
        .await
        .unwrap();

    // every successful write records the resourceVersion it was based on
    let based_on = Arc::new(Mutex::new(Vec::<String>::new()));
    let conflicts = Arc::new(Mutex::new(0usize));
    let mut tasks = vec![];
    for _ in 0..WRITERS {
        let api = api.clone();
        let based_on = based_on.clone();
        let conflicts = conflicts.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..EACH {
                loop {
                    let mut cur = api.get("counter").await.unwrap();
                    let read_rv = cur.metadata.resource_version.clone().unwrap();
                    let n: usize = cur.data.as_ref().unwrap()["n"].parse().unwrap();
                    cur.data = Some([("n".to_string(), (n + 1).to_string())].into());
                    match api.replace("counter", &PostParams::default(), &cur).await {
                        Ok(_) => {
                            based_on.lock().unwrap().push(read_rv);
                            break;
                        }
                        Err(kube::Error::Api(s)) if s.code == 409 => {
                            assert_eq!(s.reason, "Conflict");
                            *conflicts.lock().unwrap() += 1;
                        }
                        Err(e) => panic!("replace: {e:?}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = WRITERS * EACH;
    let n: usize = api.get("counter").await.unwrap().data.unwrap()["n"]
        .parse()
        .unwrap();
    assert_eq!(n, total, "no lost update");
    let based_on = based_on.lock().unwrap();
    assert_eq!(based_on.len(), total);
    let distinct: HashSet<&String> = based_on.iter().collect();
    assert_eq!(
        distinct.len(),
        total,
        "no two writes succeeded from the same read: every stale one got 409"
    );
    assert!(
        *conflicts.lock().unwrap() > 0,
        "32 writers on one key must have conflicted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn resource_versions_never_go_backwards_and_watchers_agree() {
    const WATCHERS: usize = 6;
    const WRITERS: usize = 4;
    const EACH: usize = 15;
    let server = TestServer::start().await.unwrap();
    let c = server.client().await.unwrap();
    let ns = namespace(&c, "cons-watch").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let start = crate::list_rv(&api).await;

    let mut watchers = vec![];
    for _ in 0..WATCHERS {
        let mut stream = api
            .watch(&WatchParams::default().timeout(30), &start)
            .await
            .unwrap()
            .boxed();
        watchers.push(tokio::spawn(async move {
            let mut seen = vec![];
            // each writer makes one create and EACH-1 updates
            while seen.len() < WRITERS * EACH {
                let e = tokio::time::timeout(Duration::from_secs(20), stream.next())
                    .await
                    .expect("event in time")
                    .expect("stream open")
                    .expect("event");
                let (t, o) = match e {
                    WatchEvent::Added(o) => ("ADDED", o),
                    WatchEvent::Modified(o) => ("MODIFIED", o),
                    WatchEvent::Bookmark(_) => continue,
                    other => panic!("unexpected {other:?}"),
                };
                seen.push((
                    t,
                    o.metadata.name.unwrap(),
                    rv_num(o.metadata.resource_version.as_ref()),
                    o.data.unwrap()["i"].clone(),
                ));
            }
            seen
        }));
    }

    let mut writers = vec![];
    for w in 0..WRITERS {
        let api = api.clone();
        writers.push(tokio::spawn(async move {
            let name = format!("w{w}");
            let mut rvs = vec![];
            let o = api
                .create(&PostParams::default(), &cm(&name, json!({"i": "0"})))
                .await
                .unwrap();
            rvs.push(rv_num(o.metadata.resource_version.as_ref()));
            let mut cur = o;
            for i in 1..EACH {
                cur.data = Some([("i".to_string(), i.to_string())].into());
                cur = api
                    .replace(&name, &PostParams::default(), &cur)
                    .await
                    .unwrap();
                let rv = rv_num(cur.metadata.resource_version.as_ref());
                // reads by the same client see at least its own writes
                let read = api.get(&name).await.unwrap();
                assert!(rv_num(read.metadata.resource_version.as_ref()) >= rv);
                let list_rv = rv_num(
                    api.list(&ListParams::default().limit(1))
                        .await
                        .unwrap()
                        .metadata
                        .resource_version
                        .as_ref(),
                );
                assert!(
                    list_rv >= rv,
                    "a later list is not older than an earlier write"
                );
                rvs.push(rv);
            }
            assert!(
                rvs.windows(2).all(|p| p[0] < p[1]),
                "one client's writes increase: {rvs:?}"
            );
            rvs
        }));
    }
    let mut written: Vec<u64> = vec![];
    for w in writers {
        written.extend(w.await.unwrap());
    }
    written.sort();

    let mut histories = vec![];
    for w in watchers {
        histories.push(w.await.unwrap());
    }
    let first = &histories[0];
    let rvs: Vec<u64> = first.iter().map(|e| e.2).collect();
    assert!(
        rvs.windows(2).all(|p| p[0] < p[1]),
        "in revision order, each once"
    );
    assert_eq!(rvs, written, "exactly the writes, nothing missing or extra");
    for (i, h) in histories.iter().enumerate() {
        assert_eq!(h, first, "watcher {i} saw the same history");
    }
    // per object: ADDED first, then MODIFIED with i counting up
    for w in 0..WRITERS {
        let name = format!("w{w}");
        let mine: Vec<_> = first.iter().filter(|e| e.1 == name).collect();
        assert_eq!(mine[0].0, "ADDED");
        for (i, e) in mine.iter().enumerate() {
            assert_eq!(e.3, i.to_string());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_keeps_objects_and_revisions_continue() {
    let server = TestServer::start().await.unwrap();
    let c = server.client().await.unwrap();
    let ns = namespace(&c, "cons-restart").await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    let mut before = vec![];
    for i in 0..10 {
        before.push(
            api.create(
                &PostParams::default(),
                &cm(&format!("cm-{i}"), json!({"i": i.to_string()})),
            )
            .await
            .unwrap(),
        );
    }
    let list_rv = rv_num(Some(&crate::list_rv(&api).await));
    drop(api);
    drop(c);

    let server = server.restart().await.unwrap();
    let c = server.client().await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
    for o in &before {
        let got = api.get(o.metadata.name.as_deref().unwrap()).await.unwrap();
        assert_eq!(got.metadata.uid, o.metadata.uid);
        assert_eq!(got.metadata.resource_version, o.metadata.resource_version);
        assert_eq!(got.data, o.data);
    }
    let after_rv = rv_num(Some(&crate::list_rv(&api).await));
    assert!(after_rv >= list_rv);
    let new = api
        .create(&PostParams::default(), &cm("after", json!({})))
        .await
        .unwrap();
    assert!(
        rv_num(new.metadata.resource_version.as_ref()) > list_rv,
        "revisions continue upward"
    );
    // a stale write from before the restart still conflicts
    let mut fresh = before[0].clone();
    fresh.data = Some([("i".to_string(), "changed".to_string())].into());
    api.replace("cm-0", &PostParams::default(), &fresh)
        .await
        .unwrap();
    let mut stale = before[0].clone();
    stale.data = Some([("i".to_string(), "x".to_string())].into());
    let r = api.replace("cm-0", &PostParams::default(), &stale).await;
    crate::expect_status(r, 409, "Conflict");
}
