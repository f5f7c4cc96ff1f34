//! Watch delivery beyond the conformance suite: slow watchers that fall out of the in-memory
//! window, and delivery latency with 1,000 watchers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use skiff_store::conformance::next_events;
use skiff_store::sqlite::SqliteOptions;
use skiff_store::Store;

/// A watcher that does not read while 500 events go by, with a window of 16 events and a
/// channel of one batch, still gets every event once and in order (from the log).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_watcher_catches_up_from_the_log() {
    let dir = super::tempdir();
    let opts = SqliteOptions {
        watch_window: 16,
        watch_channel_capacity: 1,
        watch_batch_limit: 8,
        ..SqliteOptions::default()
    };
    let s = super::open_with(dir.path(), opts);
    let mut w = s.watch("/slow/", 0).await.unwrap();
    let mut fast = s.watch("/slow/", 0).await.unwrap();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 0..125 {
                    let key = format!("/slow/{t}/{i}");
                    let rev = s.create(&key, Bytes::from_static(b"v")).await.unwrap();
                    if i % 2 == 0 {
                        s.update(&key, rev, Bytes::from_static(b"w")).await.unwrap();
                    }
                }
            })
        })
        .collect();
    let fast_events = next_events(&mut fast, 752).await;
    for t in writers {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let slow_events = next_events(&mut w, 752).await;
    let revs: Vec<_> = slow_events.iter().map(|e| e.revision()).collect();
    assert_eq!(revs, (1..=752).collect::<Vec<_>>());
    assert_eq!(
        slow_events, fast_events,
        "log replay equals the live stream, prev values too"
    );
    assert!(
        s.stats().watch_log_reads > 0,
        "the slow watcher never read the log"
    );
}

/// 1,000 watchers on one prefix; every event reaches every watcher, in order. The latency from
/// write to delivery is reported; `make bench` measures it. Asserted here is only that the
/// median delivery does not wait on a timer or a stall: a few slow fsyncs on a loaded machine
/// (one write in a hundred is one percent of the samples) must not fail the test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_watchers_low_latency() {
    const WATCHERS: usize = 1000;
    const EVENTS: usize = 100;
    let dir = super::tempdir();
    let s = super::open(dir.path());
    let sent: Arc<parking_lot::Mutex<Vec<Option<Instant>>>> =
        Arc::new(parking_lot::Mutex::new(vec![None; EVENTS + 1]));
    let mut tasks = Vec::new();
    for _ in 0..WATCHERS {
        let mut w = s.watch("/lat/", 0).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::with_capacity(EVENTS);
            while got.len() < EVENTS {
                let batch = w.next().await.expect("watch ended").expect("watch error");
                let now = Instant::now();
                got.extend(batch.iter().map(|e| (e.revision(), now)));
            }
            got
        }));
    }
    for i in 0..EVENTS {
        sent.lock()[i + 1] = Some(Instant::now());
        let rev = s
            .create(&format!("/lat/{i}"), Bytes::from_static(b"v"))
            .await
            .unwrap();
        assert_eq!(rev, i as i64 + 1);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let sent = sent.lock().clone();
    let mut lat = Vec::with_capacity(WATCHERS * EVENTS);
    for t in tasks {
        let got = t.await.unwrap();
        assert_eq!(
            got.iter().map(|g| g.0).collect::<Vec<_>>(),
            (1..=EVENTS as i64).collect::<Vec<_>>()
        );
        for (rev, at) in got {
            lat.push(at.duration_since(sent[rev as usize].unwrap()));
        }
    }
    lat.sort();
    let p50 = lat[lat.len() / 2];
    let p99 = lat[lat.len() * 99 / 100];
    eprintln!(
        "1000 watchers: write+delivery latency p50 {p50:?} p99 {p99:?} max {:?}",
        lat.last().unwrap()
    );
    assert!(p50 < Duration::from_millis(250), "p50 {p50:?}");
}
