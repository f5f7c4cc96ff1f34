//! Read latency: a single Pod GET repeated on one keep-alive connection, and a full JSON list
//! of a namespace's Pods (what `kubectl get pods -o json` and informers' initial list ask).

use std::time::{Duration, Instant};

use crate::client::{Endpoint, Proto};
use crate::stats::Samples;

/// Sequential GETs of `path` on one HTTP/1.1 connection, up to `count` or `max_time`.
pub(crate) async fn get_latency(
    endpoint: &Endpoint,
    path: &str,
    count: usize,
    max_time: Duration,
) -> anyhow::Result<Samples> {
    let mut conn = endpoint.connect(Proto::Http1).await?;
    // One untimed request warms the connection and the server's caches.
    conn.get_ok(path).await?;
    let started = Instant::now();
    let mut samples = Vec::with_capacity(count);
    while samples.len() < count && started.elapsed() < max_time {
        let t0 = Instant::now();
        conn.get_ok(path).await?;
        samples.push(t0.elapsed());
    }
    Ok(Samples::new(samples))
}

/// What a list run found.
#[derive(Debug, Clone)]
pub(crate) struct ListOutcome {
    pub latency: Samples,
    pub items: usize,
    pub body_bytes: usize,
}

/// `runs` lists of `path` (each reading the whole body) on one HTTP/1.1 connection.
pub(crate) async fn list_latency(
    endpoint: &Endpoint,
    path: &str,
    runs: usize,
    max_time: Duration,
) -> anyhow::Result<ListOutcome> {
    let mut conn = endpoint.connect(Proto::Http1).await?;
    let first = conn.get_ok(path).await?;
    let doc: serde_json::Value = serde_json::from_slice(&first)?;
    let items = doc["items"].as_array().map_or(0, Vec::len);
    let body_bytes = first.len();
    drop(doc);
    let started = Instant::now();
    let mut samples = Vec::with_capacity(runs);
    while samples.len() < runs && started.elapsed() < max_time {
        let t0 = Instant::now();
        conn.get_ok(path).await?;
        samples.push(t0.elapsed());
    }
    Ok(ListOutcome {
        latency: Samples::new(samples),
        items,
        body_bytes,
    })
}
