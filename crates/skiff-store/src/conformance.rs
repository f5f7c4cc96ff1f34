//! The backend conformance suite: what every [`Store`] must do, checked through the trait only.
//!
//! The checks follow the etcd MVCC contract the Kubernetes API server relies on: revisions are
//! global, gapless and increasing; reads at an exact revision see that revision; a watch from a
//! revision replays every later event exactly once, in order, then follows new writes; anything
//! below the compaction point answers "compacted". Each check takes a fresh, empty store and
//! panics (with a message naming the check) on a violation. Call [`run_all`] from a backend's
//! tests with a constructor, or the single checks to see them as separate tests.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{Event, EventKind, ListOptions, ReadAt, Revision, Store, StoreError, Watch};

/// How long a check waits for a watch event before failing.
const WAIT: Duration = Duration::from_secs(10);

/// Runs every check, each on a new store from `make`.
pub async fn run_all<S, F, Fut>(make: F)
where
    S: Store + ?Sized,
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<S>>,
{
    create_get_update_delete(make().await).await;
    revisions_are_contiguous(make().await).await;
    list_prefix_limit_start_after(make().await).await;
    count_prefix(make().await).await;
    read_at_exact_revision(make().await).await;
    read_at_compacted_or_future_revision(make().await).await;
    watch_replays_then_follows(make().await).await;
    watch_filters_by_prefix(make().await).await;
    concurrent_watchers_see_same_sequence(make().await).await;
    watch_from_compacted_revision(make().await).await;
    watch_drop_is_clean(make().await).await;
    concurrent_compare_and_swap(make().await).await;
    large_values_rejected(make().await).await;
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// Reads exactly `n` events from a watch, failing on error, end or timeout.
pub async fn next_events(w: &mut Watch, n: usize) -> Vec<Arc<Event>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout(WAIT, w.next()).await {
            Err(_) => panic!("watch: timed out after {} of {n} events", out.len()),
            Ok(None) => panic!("watch: ended after {} of {n} events", out.len()),
            Ok(Some(Err(e))) => panic!("watch: error after {} of {n} events: {e}", out.len()),
            Ok(Some(Ok(batch))) => {
                assert!(!batch.is_empty(), "watch: empty batch");
                out.extend(batch);
            }
        }
    }
    assert_eq!(out.len(), n, "watch: more events than expected");
    out
}

/// Fails if the watch delivers anything within `quiet`.
pub async fn assert_quiet(w: &mut Watch, quiet: Duration) {
    if let Ok(Some(got)) = tokio::time::timeout(quiet, w.next()).await {
        panic!("watch: unexpected delivery {got:?}");
    }
}

fn assert_in_order(events: &[Arc<Event>], after: Revision) {
    let mut last = after;
    for e in events {
        assert!(
            e.revision() > last,
            "watch: revision {} after {last}",
            e.revision()
        );
        last = e.revision();
    }
}

/// Create, get, update (compare-and-swap) and delete, with their errors.
pub async fn create_get_update_delete<S: Store + ?Sized>(s: Arc<S>) {
    let r1 = s.create("/a", b("1")).await.expect("create");
    assert!(matches!(s.create("/a", b("x")).await, Err(StoreError::AlreadyExists(k)) if k == "/a"));
    let (kv, at) = s.get("/a", ReadAt::Latest).await.expect("get");
    let kv = kv.expect("created key present");
    assert_eq!(
        (kv.value.as_ref(), kv.create_revision, kv.mod_revision),
        (&b"1"[..], r1, r1)
    );
    assert_eq!(at, r1);
    assert_eq!(
        s.get("/missing", ReadAt::Latest)
            .await
            .expect("get missing")
            .0,
        None
    );

    let r2 = s.update("/a", r1, b("2")).await.expect("update");
    assert_eq!(r2, r1 + 1);
    match s.update("/a", r1, b("3")).await {
        Err(StoreError::Conflict {
            key,
            expected,
            current,
        }) => {
            assert_eq!((key.as_str(), expected), ("/a", r1));
            let cur = current.expect("conflict carries the current value");
            assert_eq!(
                (cur.value.as_ref(), cur.mod_revision, cur.create_revision),
                (&b"2"[..], r2, r1)
            );
        }
        other => panic!("stale update: expected conflict, got {other:?}"),
    }
    assert!(
        matches!(s.update("/nope", 1, b("x")).await, Err(StoreError::NotFound(k)) if k == "/nope")
    );
    assert!(matches!(
        s.delete("/nope", None).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.delete("/a", Some(r1)).await,
        Err(StoreError::Conflict { current: Some(c), .. }) if c.mod_revision == r2
    ));
    let del = s.delete("/a", Some(r2)).await.expect("delete");
    assert_eq!(del.value.as_ref(), b"2");
    assert_eq!(del.create_revision, r1);
    assert_eq!(del.mod_revision, r2 + 1, "delete reports its own revision");
    assert_eq!(s.current_revision(), r2 + 1);
    assert_eq!(
        s.get("/a", ReadAt::Latest).await.expect("get deleted").0,
        None
    );
    assert!(matches!(
        s.update("/a", r2, b("x")).await,
        Err(StoreError::NotFound(_))
    ));

    // Re-creation starts a new life with a new create revision.
    let r4 = s.create("/a", b("again")).await.expect("re-create");
    assert_eq!(r4, r2 + 2);
    let kv = s
        .get("/a", ReadAt::Latest)
        .await
        .expect("get")
        .0
        .expect("present");
    assert_eq!(kv.create_revision, r4);
    let del = s.delete("/a", None).await.expect("unconditional delete");
    assert_eq!(del.mod_revision, r4 + 1);
}

/// Every successful write takes the next revision; failed writes take none.
pub async fn revisions_are_contiguous<S: Store + ?Sized>(s: Arc<S>) {
    let fixed = s.create("/rev/fixed", b("f")).await.expect("create");
    let mut expect = fixed;
    for i in 0..20 {
        let key = format!("/rev/{}", i % 5);
        let r = match s.get(&key, ReadAt::Latest).await.expect("get").0 {
            None => s.create(&key, b("v")).await.expect("create"),
            Some(kv) if i % 3 == 0 => {
                s.delete(&key, Some(kv.mod_revision))
                    .await
                    .expect("delete")
                    .mod_revision
            }
            Some(kv) => s
                .update(&key, kv.mod_revision, b("w"))
                .await
                .expect("update"),
        };
        expect += 1;
        assert_eq!(r, expect, "write {i} got revision {r}, want {expect}");
        assert_eq!(s.current_revision(), expect);
        // Failures do not consume revisions.
        assert!(s.create("/rev/fixed", b("dup")).await.is_err());
        assert!(s.update("/rev/none", 1, b("x")).await.is_err());
        assert!(s.update("/rev/fixed", fixed - 1, b("x")).await.is_err());
        assert!(s.delete("/rev/none", None).await.is_err());
        assert_eq!(
            s.current_revision(),
            expect,
            "a failed write moved the revision"
        );
    }
}

/// Prefix, limit, start_after and `more`.
pub async fn list_prefix_limit_start_after<S: Store + ?Sized>(s: Arc<S>) {
    for k in ["/p/a", "/p/b", "/p/c", "/p/d", "/pz", "/q/a", "/o"] {
        s.create(k, b(k)).await.expect("create");
    }
    let all = s
        .list(ListOptions {
            prefix: "/p/".into(),
            ..Default::default()
        })
        .await
        .expect("list");
    let keys: Vec<_> = all.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/p/a", "/p/b", "/p/c", "/p/d"]);
    assert!(!all.more);
    assert_eq!(all.revision, s.current_revision());

    let page = s
        .list(ListOptions {
            prefix: "/p/".into(),
            limit: 2,
            ..Default::default()
        })
        .await
        .expect("page 1");
    assert_eq!(
        page.items
            .iter()
            .map(|kv| kv.key.as_str())
            .collect::<Vec<_>>(),
        ["/p/a", "/p/b"]
    );
    assert!(page.more);
    let page2 = s
        .list(ListOptions {
            prefix: "/p/".into(),
            limit: 2,
            start_after: Some("/p/b".into()),
            at: ReadAt::Exact(page.revision),
        })
        .await
        .expect("page 2");
    assert_eq!(
        page2
            .items
            .iter()
            .map(|kv| kv.key.as_str())
            .collect::<Vec<_>>(),
        ["/p/c", "/p/d"]
    );
    assert!(!page2.more, "exactly the last page has no more");
    assert_eq!(page2.revision, page.revision);

    let none = s
        .list(ListOptions {
            prefix: "/p/".into(),
            start_after: Some("/p/d".into()),
            ..Default::default()
        })
        .await
        .expect("after end");
    assert!(none.items.is_empty() && !none.more);
    let everything = s.list(ListOptions::default()).await.expect("list all");
    assert_eq!(everything.items.len(), 7);
    let keys: Vec<_> = everything.items.iter().map(|kv| kv.key.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "list is in key order");
}

/// `count` of a prefix at the newest revision.
pub async fn count_prefix<S: Store + ?Sized>(s: Arc<S>) {
    for i in 0..5 {
        s.create(&format!("/c/x/{i}"), b("v"))
            .await
            .expect("create");
    }
    s.create("/c/y/0", b("v")).await.expect("create");
    assert_eq!(s.count("/c/x/").await.expect("count"), 5);
    assert_eq!(s.count("/c/").await.expect("count"), 6);
    s.delete("/c/x/0", None).await.expect("delete");
    assert_eq!(s.count("/c/x/").await.expect("count"), 4);
    assert_eq!(s.count("/none/").await.expect("count"), 0);
}

/// Get and list at an older revision see exactly that revision.
pub async fn read_at_exact_revision<S: Store + ?Sized>(s: Arc<S>) {
    let r1 = s.create("/x/a", b("a1")).await.expect("create");
    let r2 = s.create("/x/b", b("b1")).await.expect("create");
    let r3 = s.update("/x/a", r1, b("a2")).await.expect("update");
    let r4 = s
        .delete("/x/b", Some(r2))
        .await
        .expect("delete")
        .mod_revision;
    let _r5 = s.create("/x/c", b("c1")).await.expect("create");

    let at = |rev| ListOptions {
        prefix: "/x/".into(),
        at: ReadAt::Exact(rev),
        ..Default::default()
    };
    let snap = |items: Vec<crate::KeyValue>| -> Vec<(String, String, Revision)> {
        items
            .into_iter()
            .map(|kv| {
                (
                    kv.key,
                    String::from_utf8_lossy(&kv.value).into_owned(),
                    kv.mod_revision,
                )
            })
            .collect()
    };
    let l = s.list(at(r2)).await.expect("list at r2");
    assert_eq!(l.revision, r2);
    assert_eq!(
        snap(l.items),
        [
            ("/x/a".into(), "a1".into(), r1),
            ("/x/b".into(), "b1".into(), r2)
        ]
    );
    let l = s.list(at(r3)).await.expect("list at r3");
    assert_eq!(
        snap(l.items),
        [
            ("/x/a".into(), "a2".into(), r3),
            ("/x/b".into(), "b1".into(), r2)
        ]
    );
    let l = s.list(at(r4)).await.expect("list at r4");
    assert_eq!(snap(l.items), [("/x/a".into(), "a2".into(), r3)]);
    let l = s
        .list(ListOptions { limit: 1, ..at(r3) })
        .await
        .expect("limited list at r3");
    assert_eq!(l.items.len(), 1);
    assert!(l.more);

    let (kv, rev) = s.get("/x/a", ReadAt::Exact(r1)).await.expect("get at r1");
    assert_eq!(rev, r1);
    assert_eq!(kv.expect("present at r1").value.as_ref(), b"a1");
    let (kv, _) = s.get("/x/b", ReadAt::Exact(r3)).await.expect("get at r3");
    assert_eq!(kv.expect("present at r3").mod_revision, r2);
    assert_eq!(
        s.get("/x/b", ReadAt::Exact(r4)).await.expect("get at r4").0,
        None
    );
    assert_eq!(
        s.get("/x/c", ReadAt::Exact(r4))
            .await
            .expect("get before create")
            .0,
        None
    );
}

/// Reads below the compaction point answer `Compacted`, above the current revision
/// `FutureRevision`; the newest value of each live key survives compaction.
pub async fn read_at_compacted_or_future_revision<S: Store + ?Sized>(s: Arc<S>) {
    let mut rev = s.create("/k/a", b("0")).await.expect("create");
    let b_rev = s.create("/k/b", b("b")).await.expect("create");
    let gone = s.create("/k/gone", b("g")).await.expect("create");
    s.delete("/k/gone", Some(gone)).await.expect("delete");
    for i in 1..10 {
        rev = s
            .update("/k/a", rev, b(&i.to_string()))
            .await
            .expect("update");
    }
    let point = rev - 2;
    s.compact(point).await.expect("compact");
    assert_eq!(s.compacted_revision(), point);
    assert!(matches!(
        s.get("/k/a", ReadAt::Exact(point - 1)).await,
        Err(StoreError::Compacted { requested, compacted }) if requested == point - 1 && compacted == point
    ));
    let at = |r| ListOptions {
        prefix: "/k/".into(),
        at: ReadAt::Exact(r),
        ..Default::default()
    };
    assert!(matches!(
        s.list(at(1)).await,
        Err(StoreError::Compacted { .. })
    ));
    let future = s.current_revision() + 5;
    assert!(matches!(
        s.get("/k/a", ReadAt::Exact(future)).await,
        Err(StoreError::FutureRevision { .. })
    ));
    assert!(matches!(
        s.list(at(future)).await,
        Err(StoreError::FutureRevision { .. })
    ));

    // At the compaction point everything is still readable.
    let l = s
        .list(at(point))
        .await
        .expect("list at the compaction point");
    let items: Vec<_> = l
        .items
        .iter()
        .map(|kv| (kv.key.as_str(), kv.mod_revision))
        .collect();
    assert_eq!(items, [("/k/a", point), ("/k/b", b_rev)]);
    let l = s.list(at(rev)).await.expect("list at current");
    assert_eq!(l.items.len(), 2);
    let (kv, _) = s
        .get("/k/b", ReadAt::Exact(point))
        .await
        .expect("get old live key");
    assert_eq!(kv.expect("survives compaction").mod_revision, b_rev);
    // Compacting again at or below the point is harmless; the future is not allowed.
    s.compact(point).await.expect("compact again");
    assert!(matches!(
        s.compact(s.current_revision() + 1).await,
        Err(StoreError::FutureRevision { .. })
    ));
    // Writes continue after compaction with the next revision.
    let next = s
        .update("/k/a", rev, b("after"))
        .await
        .expect("update after compact");
    assert_eq!(next, rev + 1);
}

/// A watch from a revision replays history exactly once, in order, then follows live writes;
/// events carry previous values and deletions carry the deleted value.
pub async fn watch_replays_then_follows<S: Store + ?Sized>(s: Arc<S>) {
    let r1 = s.create("/w/a", b("1")).await.expect("create");
    let r2 = s.update("/w/a", r1, b("2")).await.expect("update");
    let r3 = s
        .delete("/w/a", Some(r2))
        .await
        .expect("delete")
        .mod_revision;
    let r4 = s.create("/w/b", b("b")).await.expect("create");

    let mut w = s.watch("/w/", 0).await.expect("watch from 0");
    let ev = next_events(&mut w, 4).await;
    assert_eq!(
        ev.iter().map(|e| e.revision()).collect::<Vec<_>>(),
        [r1, r2, r3, r4]
    );
    assert_eq!(ev[0].kind, EventKind::Put);
    assert_eq!(ev[0].prev, None);
    assert_eq!(
        ev[1]
            .prev
            .as_ref()
            .map(|p| (p.value.as_ref(), p.mod_revision)),
        Some((&b"1"[..], r1))
    );
    assert_eq!(ev[2].kind, EventKind::Delete);
    assert_eq!(
        ev[2].kv.value.as_ref(),
        b"2",
        "a delete event carries the deleted value"
    );
    assert_eq!(ev[2].kv.create_revision, r1);
    assert_eq!(ev[2].prev.as_ref().map(|p| p.mod_revision), Some(r2));
    assert_eq!(ev[3].kv.key, "/w/b");

    let r5 = s.update("/w/b", r4, b("b2")).await.expect("update");
    let live = next_events(&mut w, 1).await;
    assert_eq!(live[0].revision(), r5);
    assert_eq!(
        live[0].prev.as_ref().map(|p| p.value.as_ref()),
        Some(&b"b"[..])
    );
    assert_quiet(&mut w, Duration::from_millis(100)).await;

    // From the middle: only later events.
    let mut w2 = s.watch("/w/", r2).await.expect("watch from r2");
    let ev = next_events(&mut w2, 3).await;
    assert_eq!(
        ev.iter().map(|e| e.revision()).collect::<Vec<_>>(),
        [r3, r4, r5]
    );
    // From the current revision: nothing until the next write.
    let mut w3 = s.watch("/w/", r5).await.expect("watch from current");
    assert_quiet(&mut w3, Duration::from_millis(50)).await;
    let r6 = s.create("/w/c", b("c")).await.expect("create");
    assert_eq!(next_events(&mut w3, 1).await[0].revision(), r6);
    assert_eq!(next_events(&mut w, 1).await[0].revision(), r6);
}

/// A watch sees only keys under its prefix.
pub async fn watch_filters_by_prefix<S: Store + ?Sized>(s: Arc<S>) {
    let start = s.current_revision();
    let mut w = s.watch("/pods/", start).await.expect("watch");
    let mut want = Vec::new();
    for i in 0..30 {
        let key = if i % 3 == 0 {
            format!("/pods/{i}")
        } else {
            format!("/nodes/{i}")
        };
        let r = s.create(&key, b("v")).await.expect("create");
        if i % 3 == 0 {
            want.push(r);
        }
    }
    let ev = next_events(&mut w, want.len()).await;
    assert!(ev.iter().all(|e| e.kv.key.starts_with("/pods/")));
    assert_eq!(ev.iter().map(|e| e.revision()).collect::<Vec<_>>(), want);
    assert_quiet(&mut w, Duration::from_millis(100)).await;
    let mut replay = s.watch("/pods/", start).await.expect("replay");
    let ev = next_events(&mut replay, want.len()).await;
    assert_eq!(ev.iter().map(|e| e.revision()).collect::<Vec<_>>(), want);
}

/// Several watchers started at different times see the same sequence.
pub async fn concurrent_watchers_see_same_sequence<S: Store + ?Sized>(s: Arc<S>) {
    let start = s.current_revision();
    let mut watches = Vec::new();
    for _ in 0..4 {
        watches.push(s.watch("/s/", start).await.expect("watch"));
    }
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            async move {
                for i in 0..25 {
                    s.create(&format!("/s/{t}/{i}"), b("v"))
                        .await
                        .expect("create");
                }
            }
        })
        .collect();
    let late = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        s.watch("/s/", start).await.expect("late watch")
    };
    let (_, late) = tokio::join!(futures::future::join_all(writers), late);
    watches.push(late);
    let total = 200;
    let mut first: Option<Vec<Revision>> = None;
    for w in &mut watches {
        let ev = next_events(w, total).await;
        assert_in_order(&ev, start);
        let revs: Vec<_> = ev.iter().map(|e| e.revision()).collect();
        assert_eq!(
            revs,
            (start + 1..=start + total as i64).collect::<Vec<_>>(),
            "gapless"
        );
        match &first {
            None => first = Some(revs),
            Some(f) => assert_eq!(&revs, f, "watchers disagree"),
        }
    }
}

/// A watch from below the compaction point fails with `Compacted`; at the point it works.
pub async fn watch_from_compacted_revision<S: Store + ?Sized>(s: Arc<S>) {
    let mut rev = s.create("/c/a", b("0")).await.expect("create");
    for i in 0..10 {
        rev = s
            .update("/c/a", rev, b(&i.to_string()))
            .await
            .expect("update");
    }
    let point = rev - 3;
    s.compact(point).await.expect("compact");
    match s.watch("/c/", point - 2).await {
        Err(StoreError::Compacted { compacted, .. }) => assert_eq!(compacted, point),
        Err(e) => panic!("watch below compaction: expected compacted, got {e}"),
        Ok(_) => panic!("watch below compaction: expected compacted, got a watch"),
    }
    let mut w = s
        .watch("/c/", point)
        .await
        .expect("watch at the compaction point");
    let ev = next_events(&mut w, 3).await;
    assert_eq!(
        ev.iter().map(|e| e.revision()).collect::<Vec<_>>(),
        [point + 1, point + 2, point + 3]
    );
    assert!(ev.iter().all(|e| e.prev.is_some()));
}

/// Dropping a watch and writing afterwards is harmless; other watches keep working.
pub async fn watch_drop_is_clean<S: Store + ?Sized>(s: Arc<S>) {
    let mut keep = s.watch("/d/", 0).await.expect("watch");
    for _ in 0..20 {
        let w = s.watch("/d/", 0).await.expect("watch");
        drop(w);
    }
    for i in 0..10 {
        s.create(&format!("/d/{i}"), b("v")).await.expect("create");
    }
    assert_eq!(next_events(&mut keep, 10).await.len(), 10);
}

/// Many tasks incrementing one counter with get + compare-and-swap lose no update.
pub async fn concurrent_compare_and_swap<S: Store + ?Sized>(s: Arc<S>) {
    const TASKS: usize = 32;
    const EACH: usize = 10;
    let r0 = s.create("/counter", b("0")).await.expect("create");
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let s = s.clone();
            async move {
                for _ in 0..EACH {
                    loop {
                        let kv = s
                            .get("/counter", ReadAt::Latest)
                            .await
                            .expect("get")
                            .0
                            .expect("present");
                        let n: u64 = std::str::from_utf8(&kv.value)
                            .expect("utf-8")
                            .parse()
                            .expect("number");
                        match s
                            .update("/counter", kv.mod_revision, b(&(n + 1).to_string()))
                            .await
                        {
                            Ok(_) => break,
                            Err(StoreError::Conflict { .. }) => continue,
                            Err(e) => panic!("update: {e}"),
                        }
                    }
                }
            }
        })
        .collect();
    futures::future::join_all(tasks).await;
    let kv = s
        .get("/counter", ReadAt::Latest)
        .await
        .expect("get")
        .0
        .expect("present");
    assert_eq!(
        kv.value.as_ref(),
        (TASKS * EACH).to_string().as_bytes(),
        "lost updates"
    );
    assert_eq!(
        kv.mod_revision,
        r0 + (TASKS * EACH) as i64,
        "one revision per successful update"
    );
}

/// Values over the backend's limit are refused without taking a revision; 1 MiB is fine.
pub async fn large_values_rejected<S: Store + ?Sized>(s: Arc<S>) {
    let big = Bytes::from(vec![7u8; 16 * 1024 * 1024]);
    let before = s.current_revision();
    assert!(
        matches!(s.create("/big", big.clone()).await, Err(StoreError::TooLarge { key, .. }) if key == "/big")
    );
    let ok = Bytes::from(vec![1u8; 1024 * 1024]);
    let r = s.create("/ok", ok.clone()).await.expect("1 MiB value");
    assert_eq!(r, before + 1);
    assert!(matches!(
        s.update("/ok", r, big).await,
        Err(StoreError::TooLarge { .. })
    ));
    assert_eq!(
        s.get("/ok", ReadAt::Latest)
            .await
            .expect("get")
            .0
            .expect("present")
            .value,
        ok
    );
    assert_eq!(s.current_revision(), r);
}
