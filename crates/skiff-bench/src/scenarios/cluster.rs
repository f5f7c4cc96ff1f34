//! Control-plane benchmarks on simulated nodes: how fast a big Deployment becomes Ready
//! (controllers, scheduler and simulated kubelets together), how fast the scheduler binds a
//! burst of pending pods, and what simulated nodes cost in memory. Progress is read with
//! cheap requests (one Deployment, or a one-item page of unscheduled pods), so polling does
//! not load the server being measured.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::client::{expect_status, Conn, Endpoint, Proto};
use crate::scenarios::create::{create_pods, CreateOutcome, CreatePlan};

/// How often progress is read.
const POLL: Duration = Duration::from_millis(100);

/// A Deployment rollout from zero.
#[derive(Debug, Clone)]
pub(crate) struct RolloutOutcome {
    pub replicas: u64,
    /// From the create until the Deployment reports every replica created.
    pub created_after: Duration,
    /// From the create until every replica is Ready.
    pub ready_after: Duration,
}

fn deployment_json(name: &str, replicas: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
            }
        }
    }))
    .expect("json")
}

fn count_at(v: &serde_json::Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(|x| x.as_u64()).unwrap_or(0)
}

/// Creates a Deployment of `replicas` and waits until all of them are Ready.
pub(crate) async fn rollout(
    endpoint: &Endpoint,
    replicas: u64,
    limit: Duration,
) -> anyhow::Result<RolloutOutcome> {
    let mut conn = endpoint.connect(Proto::Http1).await?;
    let path = "/apis/apps/v1/namespaces/default/deployments";
    let started = Instant::now();
    let (status, body) = conn
        .call(
            Method::POST,
            path,
            Some("application/json"),
            Bytes::from(deployment_json("bench", replicas)),
        )
        .await?;
    expect_status(path, status, &body, &[StatusCode::CREATED])?;
    let get = format!("{path}/bench");
    let mut created_after = None;
    loop {
        let body = conn.get_ok(&get).await?;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        if created_after.is_none() && count_at(&v, "/status/replicas") >= replicas {
            created_after = Some(started.elapsed());
        }
        if count_at(&v, "/status/readyReplicas") >= replicas {
            return Ok(RolloutOutcome {
                replicas,
                created_after: created_after.unwrap_or_else(|| started.elapsed()),
                ready_after: started.elapsed(),
            });
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{} of {replicas} replicas ready after {limit:?}",
            count_at(&v, "/status/readyReplicas")
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Pending pods created in a burst, then bound by the scheduler.
#[derive(Debug, Clone)]
pub(crate) struct ScheduleOutcome {
    pub pods: u64,
    pub create: CreateOutcome,
    /// From the first create until no pod is left unscheduled.
    pub all_bound_after: Duration,
}

/// Whether any pod in `namespace` has no node yet (one-item page of a field selector).
async fn any_unscheduled(conn: &mut Conn, namespace: &str) -> anyhow::Result<bool> {
    let path =
        format!("/api/v1/namespaces/{namespace}/pods?fieldSelector=spec.nodeName%3D&limit=1");
    let body = conn.get_ok(&path).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["items"].as_array().is_some_and(|a| !a.is_empty()))
}

/// Creates `pods` pending pods with `clients` clients and waits until all are bound.
pub(crate) async fn schedule_burst(
    endpoint: &Endpoint,
    namespace: &str,
    pods: u64,
    clients: usize,
    limit: Duration,
) -> anyhow::Result<ScheduleOutcome> {
    let mut conn = endpoint.connect(Proto::Http1).await?;
    let ns_body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}
    }))?;
    let (status, body) = conn
        .call(
            Method::POST,
            "/api/v1/namespaces",
            Some("application/json"),
            ns_body.into(),
        )
        .await?;
    expect_status("namespace", status, &body, &[StatusCode::CREATED])?;
    let plan = CreatePlan {
        namespace: namespace.into(),
        prefix: "sched".into(),
        total: pods,
        clients,
        proto: Proto::Http1,
        h2_connections: 1,
        max_time: limit,
    };
    let started = Instant::now();
    let create = create_pods(endpoint, &plan).await?;
    anyhow::ensure!(
        create.created == pods,
        "created {} of {pods} pods: {}",
        create.created,
        create.first_error.clone().unwrap_or_default()
    );
    // A fresh connection: the server closes keep-alive connections idle for 30 s, as long as
    // a big burst's creates may take.
    let mut conn = endpoint.connect(Proto::Http1).await?;
    loop {
        if !any_unscheduled(&mut conn, namespace).await? {
            return Ok(ScheduleOutcome {
                pods,
                create,
                all_bound_after: started.elapsed(),
            });
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "pods still unscheduled after {limit:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until `count` nodes are registered and Ready.
pub(crate) async fn wait_nodes_ready(
    endpoint: &Endpoint,
    count: u64,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let mut conn = endpoint.connect(Proto::Http1).await?;
    let started = Instant::now();
    loop {
        let body = conn.get_ok("/api/v1/nodes").await?;
        let v: serde_json::Value = serde_json::from_slice(&body)?;
        let ready = v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|n| {
                        n.pointer("/status/conditions")
                            .and_then(|c| c.as_array())
                            .is_some_and(|c| {
                                c.iter()
                                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
                            })
                    })
                    .count() as u64
            })
            .unwrap_or(0);
        if ready >= count {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{ready} of {count} nodes Ready after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
