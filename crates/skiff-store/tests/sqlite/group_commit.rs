//! Group commit: concurrent writes share transactions (and fsyncs).

use bytes::Bytes;
use skiff_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_share_commits() {
    let dir = super::tempdir();
    let s = super::open(dir.path());
    let before = s.stats().commits;
    let tasks: Vec<_> = (0..256)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(
                async move { s.create(&format!("/g/{i}"), Bytes::from_static(b"v")).await },
            )
        })
        .collect();
    let mut revs = Vec::new();
    for t in tasks {
        revs.push(t.await.unwrap().unwrap());
    }
    revs.sort();
    assert_eq!(revs, (1..=256).collect::<Vec<_>>());
    let stats = s.stats();
    let commits = stats.commits - before;
    assert!(
        commits < 64,
        "256 concurrent creates took {commits} commits"
    );
    assert!(stats.largest_batch > 1, "no batch had more than one write");
    assert_eq!(stats.writes, 256);
}

/// One failing request in a batch does not affect the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_in_a_batch_are_isolated() {
    let dir = super::tempdir();
    let s = super::open(dir.path());
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let s = s.clone();
            // Every key twice: exactly one of each pair wins.
            tokio::spawn(async move { s.create(&format!("/i/{}", i / 2), Bytes::new()).await })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(skiff_store::StoreError::AlreadyExists(_)) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 32);
    assert_eq!(s.current_revision(), 32);
    assert_eq!(s.count("/i/").await.unwrap(), 32);
}

/// Throughput numbers (run with `--ignored --nocapture`): sequential creates, one at a time,
/// against 64 concurrent writers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a check"]
async fn measure_create_throughput() {
    let dir = super::tempdir();
    let s = super::open(dir.path());
    let value = Bytes::from(vec![b'x'; 1024]);
    let n = 2000;
    let t = std::time::Instant::now();
    for i in 0..n {
        s.create(&format!("/seq/{i}"), value.clone()).await.unwrap();
    }
    let seq = n as f64 / t.elapsed().as_secs_f64();
    let before = s.stats().commits;
    let t = std::time::Instant::now();
    let tasks: Vec<_> = (0..64)
        .map(|w| {
            let s = s.clone();
            let value = value.clone();
            tokio::spawn(async move {
                for i in 0..(n * 5 / 64) {
                    s.create(&format!("/par/{w}/{i}"), value.clone())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let done = (n * 5 / 64) * 64;
    let par = done as f64 / t.elapsed().as_secs_f64();
    let commits = s.stats().commits - before;
    eprintln!(
        "creates/s: sequential {seq:.0}, 64 concurrent {par:.0} ({done} writes in {commits} commits)"
    );
}
