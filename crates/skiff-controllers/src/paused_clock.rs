//! What the controllers' tests on tokio's paused clock share: an in-process API server, a fake
//! kubelet, and ways to let paused time pass.
//!
//! The store commits on its own threads in real time, which tokio's clock does not see: when
//! every task waits on the store, paused time jumps to the next timer. Time therefore moves in
//! small steps with a moment of real time between them, yet on a loaded machine it still runs
//! ahead of the store, so an answer reaches the cache seconds of paused time late. The tests
//! hold to that: a "not yet" is checked against the clock and the stamps the controllers read
//! (exact, since load only delays), and a "by then" is a generous bound that still fails when
//! a controller misses its own requeue (nothing else would wake it).

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use skiff_runtime::Runtime;

/// An API server on SQLite in a temporary directory, bootstrapped, with a runtime over it, for
/// `start` to start controllers on.
pub async fn runtime(
    start: impl FnOnce(&Runtime, &crate::Options),
) -> (Runtime, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        skiff_store::sqlite::SqliteStore::open(&dir.path().join("state.db"), Default::default())
            .unwrap();
    let api = skiff_apiserver::ApiServer::new(store, Default::default());
    api.bootstrap().await.unwrap();
    let rt = Runtime::new(api);
    start(&rt, &crate::Options::default());
    (rt, dir)
}

/// Plays the kubelet: every pod in `default` becomes Running and Ready at once, stamped with
/// the runtime's clock.
pub fn kubelet(rt: &Runtime) {
    let client = rt.client("kubelet");
    let pods = rt.cache.informer::<Pod>();
    let clock = rt.clock;
    rt.spawn(async move {
        loop {
            for p in pods.list() {
                if crate::pods::is_ready(&p) || p.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let now = clock.now_k8s();
                let name = p.metadata.name.clone().unwrap_or_default();
                let _ = client
                    .modify_status::<Pod>(Some("default"), &name, |p| {
                        let st = p.status.get_or_insert_with(Default::default);
                        st.phase = Some("Running".into());
                        st.conditions = Some(vec![serde_json::from_value(json!({
                            "type": "Ready", "status": "True", "lastTransitionTime": now
                        }))
                        .unwrap()]);
                        true
                    })
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Lets the store's threads catch up (2 ms of real time), then advances paused time by `d`.
pub async fn step(d: Duration) {
    std::thread::sleep(Duration::from_millis(2));
    tokio::task::yield_now().await;
    tokio::time::sleep(d).await;
}

/// Advances paused time in 100 ms steps until the runtime's clock reads `t` or later.
pub async fn until_clock(rt: &Runtime, t: Timestamp) {
    while rt.clock.now() < t {
        step(Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 100 ms of paused time until it answers, for at most `max`.
pub async fn within<T>(what: &str, max: Duration, check: impl FnMut() -> Option<T>) -> T {
    let polls = (max.as_millis() / 100) as usize + 1;
    poll(what, Duration::from_millis(100), polls, check).await
}

/// Polls `check` every `every` of paused time until it answers, at most `polls` times.
pub async fn poll<T>(
    what: &str,
    every: Duration,
    polls: usize,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    for _ in 0..polls {
        if let Some(v) = check() {
            return v;
        }
        step(every).await;
    }
    panic!("not within {polls} polls {every:?} apart: {what}")
}

/// When `pod` became Ready (its Ready condition's lastTransitionTime), if it is ready.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    match crate::pods::ready_condition(pod)? {
        (true, since) => since,
        (false, _) => None,
    }
}
