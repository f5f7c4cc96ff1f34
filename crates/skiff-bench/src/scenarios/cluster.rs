//! Control-plane benchmarks on simulated nodes: how fast a big Deployment becomes Ready
//! (controllers, scheduler and simulated kubelets together), how fast the scheduler binds a
//! burst of pending pods (plain, and with pod anti-affinity or topology spread as upstream's
//! scheduler_perf workloads) with its per-pod decision latency read from the scheduler's
//! `/metrics` histogram, and what simulated nodes cost in memory. Progress is read with
//! cheap requests (one Deployment, or a one-item page of unscheduled pods), so polling does
//! not load the server being measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::client::{expect_status, Conn, Endpoint, Proto};
use crate::pods::pod_name;
use crate::scenarios::create::{create_bodies, CreateOutcome, CreatePlan};

/// How often progress is read.
const POLL: Duration = Duration::from_millis(100);
/// How often a rollout's Deployment is read: each of its two times is known to within this
/// (±1 % of a rollout of a second); one GET of one object, so the reads cost the server
/// little.
pub(crate) const ROLLOUT_POLL: Duration = Duration::from_millis(10);
/// How often the scheduler's count of persisted bindings is read during a burst: each end of
/// the binding window is known to within this (plus one `/metrics` round trip), so it bounds
/// how finely the binding ÷ create ratio can be read (5 ms of a 3 s window: ±0.2 %).
pub(crate) const BIND_SAMPLE: Duration = Duration::from_millis(5);

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
        tokio::time::sleep(ROLLOUT_POLL).await;
    }
}

/// What the pods of a scheduler burst ask for, after upstream's scheduler_perf workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// The plain benchmark pod (default plugins, nothing between pods).
    Plain,
    /// SchedulingPodAntiAffinity: required anti-affinity on `kubernetes.io/hostname` among
    /// the pods of the same group of `group` pods (see [`anti_affinity_group`]).
    AntiAffinity { group: u64 },
    /// TopologySpreading: `maxSkew` 1 on `topology.kubernetes.io/zone`, `DoNotSchedule`,
    /// among all pods of the burst.
    TopologySpread,
}

/// Pods per anti-affinity group on `nodes` nodes: two fifths of the nodes, as upstream's
/// 5,000-node workload, whose 2,000 pods share one group (each group must fit, one pod per
/// node).
pub(crate) fn anti_affinity_group(nodes: u64) -> u64 {
    (nodes * 2 / 5).max(1)
}
/// Zones the nodes of the variant runs are spread across (labelled round-robin).
pub(crate) const ZONES: u64 = 3;
pub(crate) const ZONE_KEY: &str = "topology.kubernetes.io/zone";

impl Shape {
    /// How the report names the shape.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Shape::Plain => "plain pods",
            Shape::AntiAffinity { .. } => "hostname anti-affinity",
            Shape::TopologySpread => "zone spread",
        }
    }

    /// The body of the `i`th pod.
    pub(crate) fn pod_json(self, namespace: &str, name: &str, i: u64) -> Vec<u8> {
        let plain = crate::pods::pod_json(namespace, name);
        if self == Shape::Plain {
            return plain;
        }
        let mut pod: serde_json::Value = serde_json::from_slice(&plain).expect("pod json");
        let labels = pod["metadata"]["labels"]
            .as_object_mut()
            .expect("the benchmark pod has labels");
        match self {
            Shape::Plain => {}
            Shape::AntiAffinity { group } => {
                let group = format!("g{}", i / group);
                labels.insert("anti-group".into(), group.clone().into());
                pod["spec"]["affinity"] = serde_json::json!({
                    "podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                        "labelSelector": {"matchLabels": {"anti-group": group}},
                        "topologyKey": "kubernetes.io/hostname"
                    }]}
                });
            }
            Shape::TopologySpread => {
                labels.insert("spread".into(), "zone".into());
                pod["spec"]["topologySpreadConstraints"] = serde_json::json!([{
                    "maxSkew": 1,
                    "topologyKey": ZONE_KEY,
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"spread": "zone"}}
                }]);
            }
        }
        serde_json::to_vec(&pod).expect("a json value always serializes")
    }
}

/// Pending pods created in a burst, then bound by the scheduler.
#[derive(Debug, Clone)]
pub(crate) struct ScheduleOutcome {
    pub shape: Shape,
    pub pods: u64,
    pub create: CreateOutcome,
    /// From the first create until the last binding was persisted (the scheduler's counter
    /// reached the burst; else no pod was left unscheduled).
    pub all_bound_after: Duration,
    /// When the first and the last binding of the burst were persisted, from the scheduler's
    /// counter read every [`BIND_SAMPLE`].
    pub bindings: Result<BindWindow, String>,
    /// The scheduler's decisions during the burst, from its `/metrics` histogram.
    pub decisions: Result<Decisions, String>,
}

/// When a burst's bindings were persisted, counted from the first create (each to within
/// one reading of the counter), and how far they trailed the creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BindWindow {
    pub first: Duration,
    pub last: Duration,
    pub behind: Behind,
    /// How far the pods' arrivals in the scheduler's queue trailed the creates (the
    /// watch's part of `behind`), when the scheduler counts them.
    pub queued: Option<Behind>,
}

/// How long the bindings trailed the creates over a burst: at each reading of the binding
/// counter, the time since the creates answered had reached that count (read by the load
/// generator at the same instants). A scheduler that falls behind trails more and more; one
/// that keeps pace trails by the pipeline's latency (watch, decision, binding commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Behind {
    pub mean: Duration,
    pub max: Duration,
}

/// One reading: when, creates answered, bindings persisted.
type Reading = (Duration, u64, u64);

/// [`Behind`] from readings in time order. A binding counted before its create's answer was
/// read trails by zero.
pub(crate) fn behind(readings: &[Reading]) -> Behind {
    let (mut sum, mut n, mut max) = (Duration::ZERO, 0u32, Duration::ZERO);
    let mut reached = 0; // the first reading whose creates reach the current binding count
    for &(at, _, bound) in readings.iter().filter(|r| r.2 > 0) {
        while reached < readings.len() && readings[reached].1 < bound {
            reached += 1;
        }
        let lag = readings
            .get(reached)
            .map_or(Duration::ZERO, |r| at.saturating_sub(r.0));
        sum += lag;
        n += 1;
        max = max.max(lag);
    }
    Behind {
        mean: if n == 0 { Duration::ZERO } else { sum / n },
        max,
    }
}

impl BindWindow {
    /// From the first binding to the last.
    pub(crate) fn span(&self) -> Duration {
        self.last.saturating_sub(self.first)
    }
}

/// Per-pod decision latency over a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Decisions {
    pub count: u64,
    pub p50: Duration,
    pub p99: Duration,
}

/// The scheduler's decision latency histogram on `/metrics`.
pub(crate) const DECISION_METRIC: &str = "scheduler_scheduling_algorithm_duration_seconds";
/// The scheduler's count of pods whose binding was persisted, on `/metrics` (upstream's
/// attempts counter, `result="scheduled"`).
pub(crate) const SCHEDULED_METRIC: &str =
    "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"}";

/// The value of the sample named exactly `series` (name and labels) in a Prometheus text
/// exposition.
pub(crate) fn sample_value(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

/// The scheduler's count of pending pods its informer delivered to the queue, on `/metrics`
/// (upstream's counter).
pub(crate) const QUEUED_METRIC: &str =
    "scheduler_queue_incoming_pods_total{event=\"PodAdd\",queue=\"active\"}";

/// The scheduler's counts of persisted bindings and, if it has the counter, of pods queued.
async fn scheduler_counts(conn: &mut Conn) -> anyhow::Result<(u64, Option<u64>)> {
    let body = conn.get_ok("/metrics").await?;
    let text = String::from_utf8_lossy(&body);
    let scheduled = sample_value(&text, SCHEDULED_METRIC)
        .ok_or_else(|| anyhow::anyhow!("no {SCHEDULED_METRIC} on /metrics"))?;
    Ok((scheduled, sample_value(&text, QUEUED_METRIC)))
}

/// Reads the scheduler's count of persisted bindings every [`BIND_SAMPLE`] from `started`
/// until it has grown by `pods` (or `limit` passes), beside the count of creates `answered`
/// (and its count of pods queued), and says when it first grew, when it got there, and how
/// far it (and the queue) trailed the creates.
async fn watch_bindings(
    mut conn: Conn,
    (base, queued_base): (u64, Option<u64>),
    pods: u64,
    answered: Arc<AtomicU64>,
    started: Instant,
    limit: Duration,
) -> anyhow::Result<BindWindow> {
    let mut first = None;
    let mut next = started;
    let mut readings: Vec<Reading> = Vec::with_capacity(4096);
    let mut queued: Vec<Reading> = Vec::with_capacity(4096);
    loop {
        let (count, queued_now) = scheduler_counts(&mut conn).await?;
        let at = started.elapsed();
        let creates = answered.load(Ordering::Relaxed);
        readings.push((at, creates, count.saturating_sub(base)));
        if let (Some(now), Some(base)) = (queued_now, queued_base) {
            queued.push((at, creates, now.saturating_sub(base)));
        }
        if count > base && first.is_none() {
            first = Some(at);
        }
        if count >= base + pods {
            return Ok(BindWindow {
                first: first.unwrap_or(at),
                last: at,
                behind: behind(&readings),
                queued: (queued.len() == readings.len()).then(|| behind(&queued)),
            });
        }
        anyhow::ensure!(
            at < limit,
            "{} of {pods} pods bound after {limit:?}",
            count.saturating_sub(base)
        );
        next += BIND_SAMPLE;
        tokio::time::sleep_until(tokio::time::Instant::from_std(next.max(Instant::now()))).await;
    }
}

/// Cumulative buckets `(upper bound in seconds, count)` of `family` in a Prometheus text
/// exposition, in order (`+Inf` as infinity).
pub(crate) fn histogram_buckets(text: &str, family: &str) -> Vec<(f64, u64)> {
    let prefix = format!("{family}_bucket{{le=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// Percentiles of the observations between two readings of a cumulative histogram, each
/// interpolated linearly within its bucket (as Prometheus' `histogram_quantile`).
pub(crate) fn decisions_between(before: &[(f64, u64)], after: &[(f64, u64)]) -> Option<Decisions> {
    let delta: Vec<(f64, u64)> = after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|(b, _)| *b == le).map_or(0, |&(_, c)| c);
            (le, n.saturating_sub(was))
        })
        .collect();
    let total = delta.last()?.1;
    if total == 0 {
        return None;
    }
    let quantile = |q: f64| {
        let rank = q * total as f64;
        let mut lower = (0.0, 0u64);
        for &(le, cum) in &delta {
            if cum as f64 >= rank {
                if le.is_infinite() {
                    return lower.0;
                }
                let inside = (cum - lower.1) as f64;
                let frac = if inside > 0.0 {
                    (rank - lower.1 as f64) / inside
                } else {
                    1.0
                };
                return lower.0 + (le - lower.0) * frac;
            }
            lower = (le, cum);
        }
        lower.0
    };
    Some(Decisions {
        count: total,
        p50: Duration::from_secs_f64(quantile(0.5)),
        p99: Duration::from_secs_f64(quantile(0.99)),
    })
}

async fn decision_buckets(conn: &mut Conn) -> anyhow::Result<Vec<(f64, u64)>> {
    let body = conn.get_ok("/metrics").await?;
    let buckets = histogram_buckets(&String::from_utf8_lossy(&body), DECISION_METRIC);
    anyhow::ensure!(!buckets.is_empty(), "no {DECISION_METRIC} on /metrics");
    Ok(buckets)
}

/// Whether any pod in `namespace` has no node yet (one-item page of a field selector).
async fn any_unscheduled(conn: &mut Conn, namespace: &str) -> anyhow::Result<bool> {
    let path =
        format!("/api/v1/namespaces/{namespace}/pods?fieldSelector=spec.nodeName%3D&limit=1");
    let body = conn.get_ok(&path).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)?;
    Ok(v["items"].as_array().is_some_and(|a| !a.is_empty()))
}

/// Creates `pods` pending pods of `shape` in a new `namespace` with `clients` clients and
/// waits until all are bound.
pub(crate) async fn schedule_burst(
    endpoint: &Endpoint,
    namespace: &str,
    shape: Shape,
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
    let answered = Arc::new(AtomicU64::new(0));
    let plan = CreatePlan {
        namespace: namespace.into(),
        prefix: "sched".into(),
        total: pods,
        clients,
        proto: Proto::Http1,
        h2_connections: 1,
        max_time: limit,
        answered: Some(answered.clone()),
    };
    let bodies = (0..pods)
        .map(|i| Bytes::from(shape.pod_json(namespace, &pod_name(&plan.prefix, i), i)))
        .collect();
    let before = decision_buckets(&mut conn).await;
    // The bindings are timed by the scheduler's own counter, read on a connection of its own
    // while the pods are created.
    let mut sampler_conn = endpoint.connect(Proto::Http1).await?;
    let base = scheduler_counts(&mut sampler_conn).await;
    let started = Instant::now();
    let sampler = base.map(|base| {
        tokio::spawn(watch_bindings(
            sampler_conn,
            base,
            pods,
            answered,
            started,
            limit,
        ))
    });
    let create = create_bodies(endpoint, &plan, bodies).await?;
    anyhow::ensure!(
        create.created == pods,
        "created {} of {pods} pods: {}",
        create.created,
        create.first_error.clone().unwrap_or_default()
    );
    let bindings = match sampler {
        Ok(task) => match task.await {
            Ok(Ok(w)) => Ok(w),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(format!("{e:#}")),
    };
    // A fresh connection: the server closes keep-alive connections idle for 30 s, as long as
    // a big burst's creates may take.
    let mut conn = endpoint.connect(Proto::Http1).await?;
    loop {
        // With the counter, this only confirms every pod has its node persisted.
        if !any_unscheduled(&mut conn, namespace).await? {
            let all_bound_after = match &bindings {
                Ok(w) => w.last,
                Err(_) => started.elapsed(),
            };
            let after = decision_buckets(&mut conn).await;
            let decisions = match (before, after) {
                (Ok(b), Ok(a)) => decisions_between(&b, &a)
                    .ok_or_else(|| "no decisions recorded during the burst".to_string()),
                (Err(e), _) | (_, Err(e)) => Err(format!("{e:#}")),
            };
            return Ok(ScheduleOutcome {
                shape,
                pods,
                create,
                all_bound_after,
                bindings,
                decisions,
            });
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "pods still unscheduled after {limit:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Labels simulated node `fake-node-i` with zone `zone-(i mod zones)`, as a cloud provider
/// would (the simulated kubelet keeps labels set through the API).
pub(crate) async fn label_zones(endpoint: &Endpoint, nodes: u64, zones: u64) -> anyhow::Result<()> {
    const CONNS: u64 = 16;
    let mut tasks = Vec::new();
    for c in 0..CONNS {
        let mut conn = endpoint.connect(Proto::Http1).await?;
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < nodes {
                let path = format!("/api/v1/nodes/fake-node-{i}");
                let body = serde_json::to_vec(&serde_json::json!({
                    "metadata": {"labels": {ZONE_KEY: format!("zone-{}", i % zones)}}
                }))?;
                let (status, resp) = conn
                    .call(
                        Method::PATCH,
                        &path,
                        Some("application/merge-patch+json"),
                        body.into(),
                    )
                    .await?;
                expect_status(&path, status, &resp, &[StatusCode::OK])?;
                i += CONNS;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE scheduler_scheduling_algorithm_duration_seconds histogram
scheduler_scheduling_algorithm_duration_seconds_bucket{le=\"0.0001\"} 10
scheduler_scheduling_algorithm_duration_seconds_bucket{le=\"0.001\"} 110
scheduler_scheduling_algorithm_duration_seconds_bucket{le=\"0.01\"} 120
scheduler_scheduling_algorithm_duration_seconds_bucket{le=\"+Inf\"} 120
scheduler_scheduling_algorithm_duration_seconds_count 120
";

    #[test]
    fn decision_percentiles_from_histogram_deltas() {
        let after = histogram_buckets(TEXT, DECISION_METRIC);
        assert_eq!(after.len(), 4);
        assert!(after[3].0.is_infinite());
        let before = vec![(0.0001, 10), (0.001, 10), (0.01, 10), (f64::INFINITY, 10)];
        // 110 new decisions: 100 in (0.1 ms, 1 ms], 10 in (1 ms, 10 ms].
        let d = decisions_between(&before, &after).unwrap();
        assert_eq!(d.count, 110);
        // Rank 55 of the 100 in the second bucket: 0.1 + 0.9 * 55 / 100 ms.
        assert!(d.p50.as_micros().abs_diff(595) <= 1, "{d:?}");
        // Rank 108.9: 8.9 of the 10 in (1, 10] ms.
        assert!(d.p99.as_micros().abs_diff(9010) <= 1, "{d:?}");
        assert!(decisions_between(&after, &after).is_none());
    }

    #[test]
    fn scheduled_count_is_read_from_its_exact_series() {
        let text =
            "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"error\"} 2
scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 1234
scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"unschedulable\"} 7
";
        assert_eq!(sample_value(text, SCHEDULED_METRIC), Some(1234));
        assert_eq!(sample_value(TEXT, SCHEDULED_METRIC), None);
        let queued = "scheduler_queue_incoming_pods_total{event=\"PodAdd\",queue=\"active\"} 99\n";
        assert_eq!(sample_value(queued, QUEUED_METRIC), Some(99));
        let w = BindWindow {
            first: Duration::from_millis(30),
            last: Duration::from_millis(4_030),
            behind: Behind::default(),
            queued: None,
        };
        assert_eq!(w.span(), Duration::from_secs(4));
    }

    #[test]
    fn bindings_trail_creates_by_the_time_since_the_creates_reached_their_count() {
        let ms = Duration::from_millis;
        let readings = [
            (ms(0), 0, 0),
            (ms(5), 100, 0),
            // 60 bound: the creates reached 60 at 5 ms, 5 ms ago.
            (ms(10), 200, 60),
            // 150 bound: reached at 10 ms, 10 ms ago.
            (ms(20), 300, 150),
            // Bound before the last answers were read: trails by nothing.
            (ms(25), 300, 320),
            // All bound as the creates reach 400: trails by nothing.
            (ms(40), 400, 400),
        ];
        let b = behind(&readings);
        // Over the four readings with bindings: 5, 10, 0 and 0 ms.
        assert_eq!(b.max, ms(10));
        assert_eq!(b.mean, (ms(5) + ms(10)) / 4);
        // A scheduler that falls ever further behind shows it.
        let falling: Vec<Reading> = (0..100u64)
            .map(|i| (ms(i * 5), i * 100, (i * 50).saturating_sub(100)))
            .collect();
        let f = behind(&falling);
        assert!(f.max >= ms(240), "{f:?}");
        assert!(f.mean > ms(100), "{f:?}");
        assert_eq!(behind(&[]), Behind::default());
    }

    #[test]
    fn variant_pods_carry_their_constraints() {
        let v: serde_json::Value = serde_json::from_slice(
            &Shape::AntiAffinity { group: 2_000 }.pod_json("ns", "p", 2_500),
        )
        .unwrap();
        assert_eq!(v["metadata"]["labels"]["anti-group"], "g1");
        let term = &v["spec"]["affinity"]["podAntiAffinity"]
            ["requiredDuringSchedulingIgnoredDuringExecution"][0];
        assert_eq!(term["labelSelector"]["matchLabels"]["anti-group"], "g1");
        assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
        let v: serde_json::Value =
            serde_json::from_slice(&Shape::TopologySpread.pod_json("ns", "p", 0)).unwrap();
        assert_eq!(v["spec"]["topologySpreadConstraints"][0]["maxSkew"], 1);
        assert_eq!(v["metadata"]["labels"]["spread"], "zone");
        assert_eq!(anti_affinity_group(5_000), 2_000);
        assert_eq!(
            Shape::Plain.pod_json("ns", "p", 0),
            crate::pods::pod_json("ns", "p")
        );
    }
}
