//! Compaction in steps, its effect on the log, and background compaction.

use std::time::Duration;

use bytes::Bytes;
use skiff_store::sqlite::{AutoCompact, SqliteOptions};
use skiff_store::{ListOptions, ReadAt, Store};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_removes_superseded_rows_in_steps() {
    let dir = super::tempdir();
    let s = super::open_with(
        dir.path(),
        SqliteOptions {
            compact_step: 7,
            ..SqliteOptions::default()
        },
    );
    let mut a = s.create("/a", Bytes::from_static(b"0")).await.unwrap();
    s.create("/keep", Bytes::from_static(b"k")).await.unwrap();
    for i in 0..100 {
        a = s.update("/a", a, Bytes::from(i.to_string())).await.unwrap();
        let k = format!("/tmp/{i}");
        s.create(&k, Bytes::new()).await.unwrap();
        s.delete(&k, None).await.unwrap();
    }
    let current = s.current_revision();
    assert_eq!(s.log_rows().await.unwrap(), current);
    // Just after a delete of a /tmp key, so only /a and /keep are live there.
    let point = current - 9;
    // Writers keep going while compaction runs.
    let writer = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..50 {
                s.create(&format!("/during/{i}"), Bytes::new())
                    .await
                    .unwrap();
            }
        })
    };
    s.compact(point).await.unwrap();
    writer.await.unwrap();
    assert!(s.stats().compacted_rows > 250);
    let rows = s.log_rows().await.unwrap();
    assert!(rows < 70, "{rows} rows left");
    let at_point = s
        .list(ListOptions {
            at: ReadAt::Exact(point),
            ..ListOptions::default()
        })
        .await
        .unwrap();
    let keys: Vec<_> = at_point.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/a", "/keep"]);
    let latest = s
        .list(ListOptions {
            prefix: "/a".into(),
            ..ListOptions::default()
        })
        .await
        .unwrap();
    assert_eq!(latest.items[0].mod_revision, a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compaction_keeps_recent_revisions() {
    let dir = super::tempdir();
    let opts = SqliteOptions {
        auto_compact: Some(AutoCompact {
            interval: Duration::from_millis(50),
            keep_revisions: 10,
        }),
        checkpoint_interval: Duration::from_millis(20),
        ..SqliteOptions::default()
    };
    let s = super::open_with(dir.path(), opts);
    let mut rev = s.create("/a", Bytes::new()).await.unwrap();
    for _ in 0..100 {
        rev = s.update("/a", rev, Bytes::new()).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while s.compacted_revision() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no background compaction"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(s.compacted_revision() <= rev - 10);
    assert!(s.stats().checkpoints > 0);
    assert_eq!(
        s.get("/a", ReadAt::Latest)
            .await
            .unwrap()
            .0
            .unwrap()
            .mod_revision,
        rev
    );
}
