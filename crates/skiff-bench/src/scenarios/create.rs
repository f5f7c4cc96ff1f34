//! Pod create throughput: many clients, each with a connection of its own (HTTP/1.1
//! keep-alive) or sharing h2 connections, POST pre-built Pod bodies with unique names as fast
//! as the server answers, until all are created or the time is up.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::client::{expect_status, Conn, Endpoint, Proto};
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
}

/// Stop early after this many failed requests: the server is broken, not slow.
const MAX_ERRORS: u64 = 50;

/// Runs the plan.
pub(crate) async fn create_pods(
    endpoint: &Endpoint,
    plan: &CreatePlan,
) -> anyhow::Result<CreateOutcome> {
    // Bodies are built up front so the load generator spends its CPU on requests only.
    let bodies = (0..plan.total)
        .map(|i| {
            Bytes::from(pods::pod_json(
                &plan.namespace,
                &pods::pod_name(&plan.prefix, i),
            ))
        })
        .collect();
    create_bodies(endpoint, plan, bodies).await
}

/// Runs the plan with the Pod bodies given (one per pod, `plan.total` of them).
pub(crate) async fn create_bodies(
    endpoint: &Endpoint,
    plan: &CreatePlan,
    bodies: Vec<Bytes>,
) -> anyhow::Result<CreateOutcome> {
    let bodies: Arc<Vec<Bytes>> = Arc::new(bodies);
    let body_bytes = bodies.first().map_or(0, |b| b.len());
    let path: Arc<str> = format!("/api/v1/namespaces/{}/pods", plan.namespace).into();

    // Connect every client before the clock starts.
    let mut conns: Vec<Conn> = Vec::with_capacity(plan.clients);
    match plan.proto {
        Proto::Http1 => {
            for _ in 0..plan.clients {
                conns.push(endpoint.connect(Proto::Http1).await?);
            }
        }
        Proto::H2 => {
            let mut shared = Vec::new();
            for _ in 0..plan.h2_connections.max(1) {
                shared.push(endpoint.connect(Proto::H2).await?);
            }
            for i in 0..plan.clients {
                conns.push(shared[i % shared.len()].clone());
            }
        }
    }

    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + plan.max_time;
    let mut tasks = Vec::with_capacity(plan.clients);
    for mut conn in conns {
        let (next, errors, bodies, path) =
            (next.clone(), errors.clone(), bodies.clone(), path.clone());
        let total = plan.total;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity((total as usize / 16).max(16));
            let mut first_error = None;
            loop {
                if Instant::now() >= deadline || errors.load(Ordering::Relaxed) >= MAX_ERRORS {
                    break;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let body = bodies[i as usize].clone();
                let t0 = Instant::now();
                let result = conn
                    .call(Method::POST, &path, Some("application/json"), body)
                    .await
                    .and_then(|(status, body)| {
                        expect_status(&path, status, &body, &[StatusCode::CREATED])
                    });
                match result {
                    Ok(()) => latencies.push(t0.elapsed()),
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                }
            }
            (latencies, first_error)
        }));
    }
    let mut all = Vec::with_capacity(plan.total as usize);
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
        errors: errors.load(Ordering::Relaxed),
        first_error,
        elapsed,
        latency: Samples::new(all),
        body_bytes,
        cpu: None,
    })
}
