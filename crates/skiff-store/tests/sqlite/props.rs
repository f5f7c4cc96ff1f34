//! Property tests: random operation sequences against a simple in-memory model.
//!
//! Sequential: every result, revision and every historical snapshot (list at each exact
//! revision) matches the model, and a watch from 0 replays exactly the model's events.
//! Concurrent: whatever order the writer picked, the log (seen through a watch) is a gapless
//! sequence that is valid when replayed on the model, agrees with each caller's answer, and
//! ends in the listed state.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use skiff_store::conformance::next_events;
use skiff_store::{EventKind, KeyValue, ListOptions, ReadAt, Revision, Store, StoreError};

#[derive(Debug, Clone)]
enum Cmd {
    Create(u8),
    /// Update with the current revision, or a stale one.
    Update(u8, bool),
    /// Delete unconditionally, with the current revision, or a stale one.
    Delete(u8, Option<bool>),
}

fn cmd() -> impl Strategy<Value = Cmd> {
    prop_oneof![
        (0u8..6).prop_map(Cmd::Create),
        (0u8..6, any::<bool>()).prop_map(|(k, s)| Cmd::Update(k, s)),
        (0u8..6, proptest::option::of(any::<bool>())).prop_map(|(k, s)| Cmd::Delete(k, s)),
    ]
}

fn key(k: u8) -> String {
    format!("/m/{k}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// The model's outcome of one command: the new revision or the expected error kind.
fn model_apply(
    model: &mut BTreeMap<String, KeyValue>,
    rev: &mut Revision,
    cmd: &Cmd,
    value: &Bytes,
) -> Result<(EventKind, KeyValue), &'static str> {
    let next = *rev + 1;
    let out = match cmd {
        Cmd::Create(k) => match model.get(&key(*k)) {
            Some(_) => return Err("exists"),
            None => {
                let kv = KeyValue {
                    key: key(*k),
                    value: value.clone(),
                    create_revision: next,
                    mod_revision: next,
                };
                model.insert(kv.key.clone(), kv.clone());
                (EventKind::Put, kv)
            }
        },
        Cmd::Update(k, stale) => match model.get(&key(*k)).cloned() {
            None => return Err("missing"),
            Some(_) if *stale => return Err("conflict"),
            Some(cur) => {
                let kv = KeyValue {
                    value: value.clone(),
                    mod_revision: next,
                    ..cur
                };
                model.insert(kv.key.clone(), kv.clone());
                (EventKind::Put, kv)
            }
        },
        Cmd::Delete(k, stale) => match model.get(&key(*k)).cloned() {
            None => return Err("missing"),
            Some(_) if *stale == Some(true) => return Err("conflict"),
            Some(cur) => {
                model.remove(&cur.key);
                (
                    EventKind::Delete,
                    KeyValue {
                        mod_revision: next,
                        ..cur
                    },
                )
            }
        },
    };
    *rev = next;
    Ok(out)
}

fn kind_of(e: &StoreError) -> &'static str {
    match e {
        StoreError::AlreadyExists(_) => "exists",
        StoreError::NotFound(_) => "missing",
        StoreError::Conflict { .. } => "conflict",
        _ => "other",
    }
}

/// Runs one command against the store, reading the current revision for CAS first.
async fn store_apply<S: Store + ?Sized>(
    s: &S,
    cmd: &Cmd,
    value: Bytes,
) -> Result<Revision, StoreError> {
    let cur = |k: u8| async move {
        s.get(&key(k), ReadAt::Latest)
            .await
            .unwrap()
            .0
            .map(|kv| kv.mod_revision)
    };
    match cmd {
        Cmd::Create(k) => s.create(&key(*k), value).await,
        Cmd::Update(k, stale) => {
            let r = cur(*k).await.unwrap_or(1);
            s.update(&key(*k), if *stale { r - 1 } else { r }, value)
                .await
        }
        Cmd::Delete(k, stale) => {
            let r = cur(*k).await.unwrap_or(1);
            let expected = stale.map(|st| if st { r - 1 } else { r });
            s.delete(&key(*k), expected).await.map(|kv| kv.mod_revision)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn sequential_ops_match_the_model(cmds in proptest::collection::vec(cmd(), 1..40)) {
        let dir = super::tempdir();
        runtime().block_on(async {
            let s = super::open(dir.path());
            let mut model = BTreeMap::new();
            let mut rev = 0;
            let mut history = vec![BTreeMap::new()];
            let mut events = Vec::new();
            for (i, c) in cmds.iter().enumerate() {
                let value = Bytes::from(format!("v{i}"));
                let want = model_apply(&mut model, &mut rev, c, &value);
                let got = store_apply(&*s, c, value).await;
                match (&want, &got) {
                    (Ok((_, kv)), Ok(r)) => assert_eq!(kv.mod_revision, *r, "{c:?}"),
                    (Err(w), Err(g)) => assert_eq!(*w, kind_of(g), "{c:?}"),
                    _ => panic!("{c:?}: model {want:?}, store {got:?}"),
                }
                if let Ok(e) = want {
                    events.push(e);
                    history.push(model.clone());
                }
                assert_eq!(s.current_revision(), rev);
            }
            for (r, snapshot) in history.iter().enumerate().skip(1) {
                let l = s.list(ListOptions { at: ReadAt::Exact(r as i64), ..ListOptions::default() }).await.unwrap();
                assert_eq!(l.items, snapshot.values().cloned().collect::<Vec<_>>(), "at {r}");
            }
            if rev > 0 {
                let mut w = s.watch("/m/", 0).await.unwrap();
                let got = next_events(&mut w, rev as usize).await;
                let got: Vec<_> = got.iter().map(|e| (e.kind, e.kv.clone())).collect();
                assert_eq!(got, events);
            }
        });
    }

    /// Reads at old revisions go by the store's in-memory history of each key's revisions:
    /// every key read alone and every list, at every revision, match the model, also after
    /// compacting at a point inside the history and after reopening (which rebuilds the
    /// history from the log); revisions below the point answer `Compacted`.
    #[test]
    fn reads_at_old_revisions_survive_compaction_and_reopening(
        cmds in proptest::collection::vec(cmd(), 1..40),
        at in 0.0f64..1.0,
    ) {
        let dir = super::tempdir();
        runtime().block_on(async {
            let mut model = BTreeMap::new();
            let mut rev = 0;
            let mut history = vec![BTreeMap::new()];
            {
                let s = super::open(dir.path());
                for (i, c) in cmds.iter().enumerate() {
                    let value = Bytes::from(format!("v{i}"));
                    if model_apply(&mut model, &mut rev, c, &value).is_ok() {
                        history.push(model.clone());
                    }
                    let _ = store_apply(&*s, c, value).await;
                }
            }
            let point = ((rev as f64) * at) as Revision;
            for round in 0..3 {
                let s = super::open(dir.path());
                assert_eq!(s.current_revision(), rev);
                if round == 1 && point > 0 {
                    s.compact(point).await.unwrap();
                }
                let from = if round == 0 { 1 } else { point.max(1) };
                for (r, snapshot) in history.iter().enumerate().skip(from as usize) {
                    let r = r as Revision;
                    let l = s.list(ListOptions { at: ReadAt::Exact(r), ..ListOptions::default() }).await.unwrap();
                    assert_eq!(l.items, snapshot.values().cloned().collect::<Vec<_>>(), "list at {r}, round {round}");
                    for k in 0..6u8 {
                        let (got, at_rev) = s.get(&key(k), ReadAt::Exact(r)).await.unwrap();
                        assert_eq!(at_rev, r);
                        assert_eq!(got.as_ref(), snapshot.get(&key(k)), "{} at {r}, round {round}", key(k));
                    }
                    // One key a page, following `start_after`: the same keys in order.
                    let mut after = None;
                    let mut paged = Vec::new();
                    loop {
                        let page = s.list(ListOptions {
                            at: ReadAt::Exact(r),
                            limit: 1,
                            start_after: after.clone(),
                            ..ListOptions::default()
                        }).await.unwrap();
                        paged.extend(page.items.iter().cloned());
                        if !page.more {
                            break;
                        }
                        after = page.items.last().map(|kv| kv.key.clone());
                    }
                    assert_eq!(paged, l.items, "paged list at {r}, round {round}");
                }
                if round > 0 && point > 1 {
                    let e = s.get(&key(0), ReadAt::Exact(point - 1)).await.unwrap_err();
                    assert!(matches!(e, StoreError::Compacted { .. }), "{e:?}");
                }
            }
        });
    }

    #[test]
    fn concurrent_ops_form_a_valid_history(cmds in proptest::collection::vec(cmd(), 1..48)) {
        let dir = super::tempdir();
        runtime().block_on(async {
            let s = super::open(dir.path());
            // Seed a few keys so updates and deletes have something to race on.
            for k in 0..3 {
                s.create(&key(k), Bytes::from_static(b"seed")).await.unwrap();
            }
            let base = s.current_revision();
            let results = futures::future::join_all(cmds.iter().enumerate().map(|(i, c)| {
                let s = s.clone();
                async move { store_apply(&*s, c, Bytes::from(format!("v{i}"))).await }
            }))
            .await;
            let ok: Vec<Revision> = results.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
            let current = s.current_revision();
            assert_eq!(current - base, ok.len() as i64, "one revision per successful write");
            let mut sorted = ok.clone();
            sorted.sort();
            assert_eq!(sorted, (base + 1..=current).collect::<Vec<_>>(), "answers are the revisions");

            let mut w = s.watch("/m/", 0).await.unwrap();
            let events = next_events(&mut w, current as usize).await;
            let mut model: BTreeMap<String, KeyValue> = BTreeMap::new();
            for (i, e) in events.iter().enumerate() {
                assert_eq!(e.revision(), i as i64 + 1);
                let before = model.get(&e.kv.key).cloned();
                assert_eq!(e.prev, before, "prev value at {}", e.revision());
                match e.kind {
                    EventKind::Put => {
                        match &before {
                            None => assert_eq!(e.kv.create_revision, e.revision()),
                            Some(b) => assert_eq!(e.kv.create_revision, b.create_revision),
                        }
                        model.insert(e.kv.key.clone(), e.kv.clone());
                    }
                    EventKind::Delete => {
                        assert!(before.is_some(), "delete of an absent key");
                        model.remove(&e.kv.key);
                    }
                }
            }
            let listed = s.list(ListOptions::default()).await.unwrap().items;
            assert_eq!(listed, model.into_values().collect::<Vec<_>>());
        });
    }
}
