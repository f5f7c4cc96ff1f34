//! Pod create throughput: many clients, each with a connection of its own (HTTP/1.1
//! keep-alive) or sharing h2 connections, POST pre-built Pod bodies with unique names as fast
//! as the server answers, until all are created or the time is up. The clients are the lean
//! connections of [`crate::client::lean`] on a thread of their own, so the load generator,
//! which shares the CPUs with the server, costs as little as a purpose-built one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use bytes::Bytes;
use http::{Method, StatusCode};

use crate::client::lean::{self, H1Conn, H2Conn};
use crate::client::{expect_status, Endpoint, Proto};
use crate::pods;
use crate::stats::Samples;

/// How to create.
#[derive(Debug, Clone)]
pub(crate) struct CreatePlan {
    pub namespace: String,
    pub prefix: String,
    pub total: u64,
    pub clients: usize,
    pub proto: Proto,
    /// For h2: how many connections the clients share (round-robin).
    pub h2_connections: usize,
    pub max_time: Duration,
    /// When set, counts each create answered 201 as it is answered, so that another task can
    /// sample the progress of the run.
    pub answered: Option<Arc<AtomicU64>>,
}

/// What happened.
#[derive(Debug, Clone)]
pub(crate) struct CreateOutcome {
    pub created: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub latency: Samples,
    pub body_bytes: usize,
    /// CPU time the server and the load generator used while creating, when known.
    pub cpu: Option<CpuUse>,
}

/// CPU time used during a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuUse {
    pub server: Duration,
    pub client: Duration,
    /// The share of the whole machine's CPU time that was idle (I/O wait included): near
    /// zero, the run was bound by CPU.
    pub machine_idle: Option<f64>,
}

/// Stop early after this many failed requests: the server is broken, not slow.
const MAX_ERRORS: u64 = 50;

/// Runs the plan.
pub(crate) async fn create_pods(
    endpoint: &Endpoint,
    plan: &CreatePlan,
) -> anyhow::Result<CreateOutcome> {
    // Bodies are built up front so the load generator spends its CPU on requests only.
    let template = pods::PodBodies::new(&plan.namespace);
    let bodies = (0..plan.total)
        .map(|i| Bytes::from(template.body(&pods::pod_name(&plan.prefix, i))))
        .collect();
    create_bodies(endpoint, plan, bodies).await
}

/// Runs the plan with the Pod bodies given (one per pod, `plan.total` of them), on the lean
/// load generator ([`create_all`]).
pub(crate) async fn create_bodies(
    endpoint: &Endpoint,
    plan: &CreatePlan,
    mut bodies: Vec<Bytes>,
) -> anyhow::Result<CreateOutcome> {
    bodies.truncate(plan.total as usize);
    create_all(endpoint, plan, bodies).await
}

/// POSTs each of `bodies` (Pod JSON) to the plan's namespace's pods from `plan.clients`
/// concurrent clients, one request in flight per client, until all are sent, `max_time` has
/// passed, or [`MAX_ERRORS`] requests failed. Over HTTP/1.1 each client has a connection of
/// its own; over h2 the clients share `h2_connections` connections round-robin. Every response
/// must be 201 Created and is read to its end; latency is per request, from writing it to the
/// end of the response.
///
/// The load runs on a thread of its own with a single-threaded runtime and the lean connections
/// of [`crate::client::lean`], so the load generator costs the shared CPUs as little as it can
/// (no connection tasks, channels or cross-thread wake-ups per request). Connecting, and
/// building the HTTP/1.1 messages, happen before the clock starts.
pub(crate) async fn create_all(
    endpoint: &Endpoint,
    plan: &CreatePlan,
    bodies: Vec<Bytes>,
) -> anyhow::Result<CreateOutcome> {
    let endpoint = endpoint.clone();
    let plan = plan.clone();
    let path = format!("/api/v1/namespaces/{}/pods", plan.namespace);
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-load".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(lean_run(&endpoint, &plan, &path, bodies)));
            let _ = tx.send(result);
        })
        .context("starting the load thread")?;
    rx.await.context("the load thread ended without a result")?
}

/// What the clients share: the next body to send and the error count.
struct Shared {
    next: AtomicU64,
    errors: AtomicU64,
    total: usize,
    deadline: Instant,
    answered: Option<Arc<AtomicU64>>,
}

impl Shared {
    /// The index of the next body to send, or `None` when the run is over at `now`.
    fn take(&self, now: Instant) -> Option<usize> {
        if now >= self.deadline || self.errors.load(Ordering::Relaxed) >= MAX_ERRORS {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        (i < self.total).then_some(i)
    }

    /// Counts the result of a request sent at `t0`, and returns the time now.
    fn record(
        &self,
        result: anyhow::Result<()>,
        t0: Instant,
        latencies: &mut Vec<Duration>,
        first_error: &mut Option<String>,
    ) -> Instant {
        let now = Instant::now();
        match result {
            Ok(()) => {
                latencies.push(now - t0);
                if let Some(a) = &self.answered {
                    a.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
        now
    }
}

/// One client's record: latencies of its successful requests and its first error.
type ClientRecord = (Vec<Duration>, Option<String>);

async fn lean_run(
    endpoint: &Endpoint,
    plan: &CreatePlan,
    path: &str,
    bodies: Vec<Bytes>,
) -> anyhow::Result<CreateOutcome> {
    let (proto, clients, h2_connections) =
        (plan.proto, plan.clients.max(1), plan.h2_connections.max(1));
    let total = bodies.len();
    let body_bytes = bodies.first().map_or(0, |b| b.len());
    let per_client = (total / clients + 1).max(16);
    let mut tasks: Vec<tokio::task::JoinHandle<ClientRecord>> = Vec::with_capacity(clients);
    let shared = |started: Instant| {
        Arc::new(Shared {
            next: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            total,
            deadline: started + plan.max_time,
            answered: plan.answered.clone(),
        })
    };
    let (started, shared) = match proto {
        Proto::Http1 => {
            let requests: Arc<Vec<Vec<u8>>> = Arc::new(
                bodies
                    .iter()
                    .map(|b| {
                        lean::h1_request(
                            &Method::POST,
                            path,
                            endpoint.authority(),
                            "application/json",
                            b,
                        )
                    })
                    .collect(),
            );
            drop(bodies);
            let mut conns = Vec::with_capacity(clients);
            for _ in 0..clients {
                conns.push(H1Conn::new(endpoint.connect_tls(Proto::Http1).await?));
            }
            let started = Instant::now();
            let shared = shared(started);
            for mut conn in conns {
                let (shared, requests, endpoint, path) = (
                    shared.clone(),
                    requests.clone(),
                    endpoint.clone(),
                    path.to_string(),
                );
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(per_client);
                    let mut first_error = None;
                    let mut broken = false;
                    let mut now = Instant::now();
                    while let Some(i) = shared.take(now) {
                        let t0 = now;
                        if broken {
                            // A failed exchange leaves the connection unusable: open another.
                            match endpoint.connect_tls(Proto::Http1).await {
                                Ok(tls) => {
                                    conn = H1Conn::new(tls);
                                    broken = false;
                                }
                                Err(e) => {
                                    now =
                                        shared.record(Err(e), t0, &mut latencies, &mut first_error);
                                    continue;
                                }
                            }
                        }
                        let result = match conn.exchange(&requests[i]).await {
                            Ok((status, body)) => created(&path, status, body),
                            Err(e) => {
                                broken = true;
                                Err(anyhow!("{path}: {e}"))
                            }
                        };
                        now = shared.record(result, t0, &mut latencies, &mut first_error);
                    }
                    (latencies, first_error)
                }));
            }
            (started, shared)
        }
        Proto::H2 => {
            let bodies = Arc::new(bodies);
            let mut connections = Vec::with_capacity(h2_connections);
            for _ in 0..h2_connections {
                let tls = endpoint.connect_tls(Proto::H2).await?;
                connections.push(lean::h2_handshake(tls).await.context("h2 handshake")?);
            }
            let mut conns = Vec::with_capacity(clients);
            for i in 0..clients {
                conns.push(H2Conn::new(
                    connections[i % connections.len()].clone(),
                    endpoint.authority(),
                    path,
                    "application/json",
                )?);
            }
            drop(connections);
            let started = Instant::now();
            let shared = shared(started);
            for mut conn in conns {
                let (shared, bodies, path) = (shared.clone(), bodies.clone(), path.to_string());
                tasks.push(tokio::spawn(async move {
                    let mut latencies = Vec::with_capacity(per_client);
                    let mut first_error = None;
                    let mut now = Instant::now();
                    while let Some(i) = shared.take(now) {
                        let t0 = now;
                        let result = match conn.post(bodies[i].clone()).await {
                            Ok((status, body)) => created(&path, status, &body),
                            Err(e) => Err(anyhow!("{path}: {e}")),
                        };
                        now = shared.record(result, t0, &mut latencies, &mut first_error);
                    }
                    (latencies, first_error)
                }));
            }
            (started, shared)
        }
    };
    let mut all = Vec::with_capacity(total);
    let mut first_error = None;
    for t in tasks {
        let (lat, err) = t.await?;
        all.extend(lat);
        if first_error.is_none() {
            first_error = err;
        }
    }
    let elapsed = started.elapsed();
    Ok(CreateOutcome {
        created: all.len() as u64,
        errors: shared.errors.load(Ordering::Relaxed),
        first_error,
        elapsed,
        latency: Samples::new(all),
        body_bytes,
        cpu: None,
    })
}

/// An error naming the request unless `status` is 201 Created.
fn created(path: &str, status: u16, body: &[u8]) -> anyhow::Result<()> {
    let status = StatusCode::from_u16(status).map_err(|e| anyhow!("{path}: {e}"))?;
    expect_status(path, status, body, &[StatusCode::CREATED])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_created_counts_as_success() {
        assert!(created("/p", 201, b"{}").is_ok());
        let err = created("/p", 409, b"{\"reason\":\"AlreadyExists\"}").unwrap_err();
        assert!(err.to_string().contains("409"), "{err}");
        assert!(err.to_string().contains("AlreadyExists"), "{err}");
        assert!(created("/p", 200, b"").is_err());
        assert!(created("/p", 1000, b"").is_err());
    }

    #[test]
    fn clients_stop_at_the_total_the_deadline_or_too_many_errors() {
        let now = Instant::now();
        let shared = Shared {
            next: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            total: 2,
            deadline: now + Duration::from_secs(60),
            answered: Some(Arc::new(AtomicU64::new(0))),
        };
        // Only successes count as answered.
        let mut latencies = Vec::new();
        let mut first_error = None;
        shared.record(Ok(()), now, &mut latencies, &mut first_error);
        shared.record(Err(anyhow!("x")), now, &mut latencies, &mut first_error);
        let answered = shared.answered.as_ref().unwrap();
        assert_eq!(answered.load(Ordering::Relaxed), 1);
        shared.errors.store(0, Ordering::Relaxed);
        assert_eq!(shared.take(now), Some(0));
        assert_eq!(shared.take(now), Some(1));
        assert_eq!(shared.take(now), None);
        shared.next.store(0, Ordering::Relaxed);
        assert_eq!(shared.take(now + Duration::from_secs(60)), None);
        shared.errors.store(MAX_ERRORS, Ordering::Relaxed);
        assert_eq!(shared.take(now), None);
    }
}
