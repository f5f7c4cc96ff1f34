//! Restart: reopening keeps every object, the revision counter and the compaction point.

use bytes::Bytes;
use skiff_store::conformance::next_events;
use skiff_store::{ListOptions, ReadAt, Store, StoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_data_and_revision() {
    let dir = super::tempdir();
    let (before, current) = {
        let s = super::open(dir.path());
        let mut rev = 0;
        for i in 0..50 {
            rev = s
                .create(&format!("/r/{i:02}"), Bytes::from(format!("v{i}")))
                .await
                .unwrap();
        }
        let kv = s.get("/r/07", ReadAt::Latest).await.unwrap().0.unwrap();
        s.update("/r/07", kv.mod_revision, Bytes::from_static(b"changed"))
            .await
            .unwrap();
        s.delete("/r/08", None).await.unwrap();
        assert_eq!(s.current_revision(), rev + 2);
        (
            s.list(ListOptions::default()).await.unwrap(),
            s.current_revision(),
        )
    };
    let s = super::open(dir.path());
    assert_eq!(s.current_revision(), current);
    let after = s.list(ListOptions::default()).await.unwrap();
    assert_eq!(after, before);
    assert_eq!(s.get("/r/08", ReadAt::Latest).await.unwrap().0, None);
    // History is still there, and watches from before the restart replay it from the log.
    let old = s.get("/r/07", ReadAt::Exact(10)).await.unwrap().0.unwrap();
    assert_eq!(old.value.as_ref(), b"v7");
    let mut w = s.watch("/r/", 48).await.unwrap();
    let ev = next_events(&mut w, 4).await;
    assert_eq!(
        ev.iter().map(|e| e.revision()).collect::<Vec<_>>(),
        [49, 50, 51, 52]
    );
    assert_eq!(ev[3].kv.value.as_ref(), b"v8");
    assert_eq!(s.create("/r/new", Bytes::new()).await.unwrap(), current + 1);
    assert_eq!(next_events(&mut w, 1).await[0].revision(), current + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revision_never_goes_backwards_after_compaction() {
    let dir = super::tempdir();
    let current = {
        let s = super::open(dir.path());
        let mut rev = s.create("/a", Bytes::from_static(b"0")).await.unwrap();
        for _ in 0..20 {
            rev = s.update("/a", rev, Bytes::from_static(b"x")).await.unwrap();
        }
        s.delete("/a", None).await.unwrap();
        let current = s.current_revision();
        s.compact(current).await.unwrap();
        assert!(
            s.log_rows().await.unwrap() <= 1,
            "compaction left only the last tombstone"
        );
        current
    };
    let s = super::open(dir.path());
    assert_eq!(s.current_revision(), current);
    assert_eq!(s.compacted_revision(), current);
    assert!(matches!(
        s.get("/a", ReadAt::Exact(current - 1)).await,
        Err(StoreError::Compacted { .. })
    ));
    assert_eq!(s.count("").await.unwrap(), 0);
    assert_eq!(s.create("/a", Bytes::new()).await.unwrap(), current + 1);
}

/// A database made by a version that indexed the log by key has the index dropped at open
/// (reads at old revisions go by the history kept in memory), and reads the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_key_index_is_dropped_at_open() {
    let dir = super::tempdir();
    let first = {
        let s = super::open(dir.path());
        let r = s.create("/k/a", Bytes::from_static(b"1")).await.unwrap();
        s.update("/k/a", r, Bytes::from_static(b"2")).await.unwrap();
        r
    };
    let indexes = || {
        let conn = rusqlite::Connection::open(dir.path().join("store.db")).unwrap();
        conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = 'log'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
    };
    assert_eq!(indexes(), 0);
    rusqlite::Connection::open(dir.path().join("store.db"))
        .unwrap()
        .execute_batch("CREATE INDEX log_key_rev ON log(key, rev)")
        .unwrap();
    assert_eq!(indexes(), 1);
    let s = super::open(dir.path());
    assert_eq!(indexes(), 0);
    let (old, _) = s.get("/k/a", ReadAt::Exact(first)).await.unwrap();
    assert_eq!(old.unwrap().value, Bytes::from_static(b"1"));
}
