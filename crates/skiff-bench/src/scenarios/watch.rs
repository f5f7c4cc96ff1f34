//! Watch delivery latency: many watchers of a namespace's ConfigMaps, each on an HTTP/1.1
//! connection of its own (as many informers in as many processes would be), while one writer
//! patches a ConfigMap at a modest rate. Every event carries a sequence number, so each
//! watcher's receipt time is matched with the write's request start and response.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::BodyExt as _;
use tokio::sync::{watch, Semaphore};

use crate::client::{expect_status, Endpoint, Proto};
use crate::pods;
use crate::stats::Samples;

/// How to watch.
#[derive(Debug, Clone)]
pub(crate) struct WatchPlan {
    pub namespace: String,
    pub watchers: usize,
    pub updates: u64,
    pub interval: Duration,
    /// TLS handshakes in flight at once while the watchers connect.
    pub connect_concurrency: usize,
    pub connect_timeout: Duration,
}

/// What happened.
#[derive(Debug, Clone)]
pub(crate) struct WatchOutcome {
    pub watchers: usize,
    pub connected: usize,
    pub connect_elapsed: Duration,
    pub updates: u64,
    pub expected: u64,
    pub delivered: u64,
    /// From the write's HTTP response to the watcher's receipt (0 when the event came first).
    pub from_response: Samples,
    /// From the write's request start to the watcher's receipt.
    pub from_request: Samples,
    /// From the first watcher's receipt of the same event to this watcher's: the cost of
    /// fanning one event out to every watcher.
    pub fan_out: Samples,
    /// Events received before the write's response.
    pub before_response: u64,
    /// The writes' own latency.
    pub write_latency: Samples,
}

const NAME: &str = "watched";
/// How long watchers may take to receive the last events after the last write.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs the plan.
pub(crate) async fn watch_latency(
    endpoint: &Endpoint,
    plan: &WatchPlan,
) -> anyhow::Result<WatchOutcome> {
    let mut writer = endpoint.connect(Proto::Http1).await?;
    let ns_body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": plan.namespace}
    }))?;
    let (status, body) = writer
        .call(
            Method::POST,
            "/api/v1/namespaces",
            Some("application/json"),
            ns_body.into(),
        )
        .await?;
    expect_status(
        "creating namespace",
        status,
        &body,
        &[StatusCode::CREATED, StatusCode::CONFLICT],
    )?;
    let cms = format!("/api/v1/namespaces/{}/configmaps", plan.namespace);
    let (status, body) = writer
        .call(
            Method::POST,
            &cms,
            Some("application/json"),
            pods::configmap_json(&plan.namespace, NAME).into(),
        )
        .await?;
    expect_status("creating configmap", status, &body, &[StatusCode::CREATED])?;
    let rv = pods::resource_version(&body).context("configmap without resourceVersion")?;

    // Watchers connect (bounded handshakes in flight), then stream until told to stop.
    let watch_path: Arc<str> =
        format!("{cms}?watch=true&resourceVersion={rv}&timeoutSeconds=600").into();
    let permits = Arc::new(Semaphore::new(plan.connect_concurrency.max(1)));
    let connected = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let connect_started = Instant::now();
    let mut tasks = Vec::with_capacity(plan.watchers);
    for _ in 0..plan.watchers {
        let (endpoint, path, permits, connected, mut stop) = (
            endpoint.clone(),
            watch_path.clone(),
            permits.clone(),
            connected.clone(),
            stop_rx.clone(),
        );
        let last = plan.updates;
        tasks.push(tokio::spawn(async move {
            let mut received: Vec<(u64, Instant)> = Vec::with_capacity(last as usize);
            let resp = {
                let _permit = permits.acquire().await?;
                let mut conn = endpoint.connect(Proto::Http1).await?;
                let resp = conn.send(Method::GET, &path, None, Bytes::new()).await?;
                anyhow::ensure!(
                    resp.status() == StatusCode::OK,
                    "watch: HTTP {}",
                    resp.status()
                );
                // The connection task keeps running after `conn` drops with the response.
                resp
            };
            connected.fetch_add(1, Ordering::SeqCst);
            let mut body = resp.into_body();
            let mut buf: Vec<u8> = Vec::with_capacity(1024);
            loop {
                let frame = tokio::select! {
                    f = body.frame() => f,
                    _ = stop.changed() => break,
                };
                let Some(frame) = frame else { break };
                let now = Instant::now();
                let Ok(data) = frame?.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                    if let Some(seq) = pods::seq_of_event(&buf[..nl]) {
                        received.push((seq, now));
                    }
                    buf.drain(..=nl);
                }
                if received.last().is_some_and(|&(s, _)| s >= last) {
                    break;
                }
            }
            Ok::<_, anyhow::Error>(received)
        }));
    }
    while connected.load(Ordering::SeqCst) < plan.watchers
        && connect_started.elapsed() < plan.connect_timeout
        && !tasks.iter().all(|t| t.is_finished())
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let connect_elapsed = connect_started.elapsed();
    let n_connected = connected.load(Ordering::SeqCst);
    anyhow::ensure!(n_connected > 0, "no watcher connected");
    // Let the server finish registering the last watches.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let cm_path = format!("{cms}/{NAME}");
    let mut writes: Vec<(Instant, Instant)> = Vec::with_capacity(plan.updates as usize);
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for seq in 1..=plan.updates {
        ticker.tick().await;
        let t0 = Instant::now();
        let (status, body) = writer
            .call(
                Method::PATCH,
                &cm_path,
                Some("application/merge-patch+json"),
                pods::seq_patch(seq).into(),
            )
            .await?;
        let t1 = Instant::now();
        expect_status("patching configmap", status, &body, &[StatusCode::OK])?;
        writes.push((t0, t1));
    }

    let drain_until = Instant::now() + DRAIN;
    while Instant::now() < drain_until && !tasks.iter().all(|t| t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);

    let mut per_watcher: Vec<Vec<Option<Instant>>> = Vec::with_capacity(tasks.len());
    let mut first_error = None;
    for t in tasks {
        match t.await? {
            Ok(received) => per_watcher.push(first_receipts(&received, writes.len())),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // The earliest receipt of each event by any watcher: when the server had it to send.
    let mut earliest: Vec<Option<Instant>> = vec![None; writes.len()];
    for w in &per_watcher {
        for (e, at) in earliest.iter_mut().zip(w) {
            if let Some(at) = *at {
                *e = Some(e.map_or(at, |e: Instant| e.min(at)));
            }
        }
    }
    let mut from_response = Vec::new();
    let mut from_request = Vec::new();
    let mut fan_out = Vec::new();
    let mut before_response = 0;
    for w in &per_watcher {
        for (idx, at) in w.iter().enumerate() {
            let Some(at) = *at else { continue };
            let (start, resp) = writes[idx];
            from_request.push(at.saturating_duration_since(start));
            if at < resp {
                before_response += 1;
            }
            from_response.push(at.saturating_duration_since(resp));
            if let Some(first) = earliest[idx] {
                fan_out.push(at.saturating_duration_since(first));
            }
        }
    }
    if n_connected < plan.watchers {
        if let Some(e) = first_error {
            return Err(e.context(format!(
                "only {n_connected} of {} watchers connected",
                plan.watchers
            )));
        }
    }
    let delivered = from_response.len() as u64;
    let write_latency = Samples::new(writes.iter().map(|(a, b)| *b - *a).collect());
    Ok(WatchOutcome {
        watchers: plan.watchers,
        connected: n_connected,
        connect_elapsed,
        updates: writes.len() as u64,
        expected: n_connected as u64 * writes.len() as u64,
        delivered,
        from_response: Samples::new(from_response),
        from_request: Samples::new(from_request),
        fan_out: Samples::new(fan_out),
        before_response,
        write_latency,
    })
}

/// For each of `writes` events (sequence numbers 1..=writes), when a watcher first received it.
fn first_receipts(received: &[(u64, Instant)], writes: usize) -> Vec<Option<Instant>> {
    let mut first = vec![None; writes];
    for &(seq, at) in received {
        if let Some(slot) = (seq as usize).checked_sub(1).and_then(|i| first.get_mut(i)) {
            slot.get_or_insert(at);
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_receipts_ignore_duplicates_and_strangers() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(1);
        let got = first_receipts(&[(0, t0), (2, t0), (2, t1), (1, t1), (9, t0)], 3);
        assert_eq!(got, vec![Some(t1), Some(t0), None]);
    }
}
