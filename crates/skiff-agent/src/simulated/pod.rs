//! A pod's life on a simulated node, as a kubelet would report it, without containers. Pure:
//! times are passed in.
//!
//! A pod is [`Stage::Starting`] when first seen bound to the node, [`Stage::Running`] after its
//! start delay, and then, if its containers are scripted to exit (by default: pods whose
//! restartPolicy is Never or OnFailure run 1 s and exit 0, as KWOK's default stages complete
//! Job pods), either finishes ([`Stage::Exited`]: phase Succeeded, or Failed for a nonzero exit
//! under restartPolicy Never) or restarts its containers after the kubelet's crash back-off
//! (10 s doubling to 5 min, [`Stage::BackOff`], waiting reason `CrashLoopBackOff`).
//!
//! [`status`] renders a stage as the pod status a kubelet writes: phase, host and pod IPs,
//! container and init container statuses, and the conditions PodReadyToStartContainers,
//! Initialized, ContainersReady, Ready (with readiness gates) and PodScheduled. Transition times
//! of conditions whose status did not change are kept, and conditions other writers own (gates,
//! DisruptionTarget) are left alone, so rendering an unchanged pod gives back the same status.
//!
//! Annotations script a pod (see docs/simulated-nodes.md): [`START_DELAY`], [`RUN_SECONDS`],
//! [`EXIT_CODE`], [`READY`].

use std::net::Ipv4Addr;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodSpec, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// How long after it is first seen a pod's containers start (a duration: `500ms`, `2s`, `1m`).
pub const START_DELAY: &str = "sim.skiff.dev/start-delay";
/// How long containers run before they exit (seconds, may be fractional).
pub const RUN_SECONDS: &str = "sim.skiff.dev/run-seconds";
/// The exit code containers end with (0-255).
pub const EXIT_CODE: &str = "sim.skiff.dev/exit-code";
/// `"false"`: readiness never passes (Running, not Ready).
pub const READY: &str = "sim.skiff.dev/ready";

/// The status reason and message of a pod failed at its activeDeadlineSeconds (the kubelet's).
pub const DEADLINE_REASON: &str = "DeadlineExceeded";
pub const DEADLINE_MESSAGE: &str = "Pod was active on the node longer than the specified deadline";

/// First crash back-off and its cap (the kubelet's).
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);

/// How long containers of pods that should finish run when no annotation says.
pub const DEFAULT_JOB_RUN: Duration = Duration::from_secs(1);

/// The kubelet's wait before restarting a container that exited for the `restarts`-th time.
pub fn crash_backoff(restarts: i32) -> Duration {
    let exp = (restarts.max(1) - 1).min(16) as u32;
    BACKOFF_INITIAL.saturating_mul(1u32 << exp).min(BACKOFF_MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    pub fn of(pod: &Pod) -> RestartPolicy {
        match pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) {
            Some("Never") => RestartPolicy::Never,
            Some("OnFailure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::Always,
        }
    }
}

/// How a pod behaves on a simulated node.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub start_delay: Duration,
    /// How long containers run before they exit; `None`: until the pod is deleted.
    pub run: Option<Duration>,
    pub exit_code: i32,
    /// Whether readiness passes.
    pub ready: bool,
    /// `spec.activeDeadlineSeconds`: the pod is failed this long after it started.
    pub active_deadline: Option<Duration>,
}

/// An annotation the simulator could not read (it falls back to the default).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("annotation {annotation}={value:?} is invalid: {reason}")]
pub struct ScriptError {
    pub annotation: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// Parses a duration: a Go-style `1m30s`, `500ms`, `2.5s`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += Duration::try_from_secs_f64(n * scale).ok()?;
    }
    Some(total)
}

/// The pod's script: its annotations over the defaults (`start_delay` from the simulator's
/// options). Unreadable annotations are reported and replaced by the default.
pub fn script(pod: &Pod, start_delay: Duration) -> (Script, Vec<ScriptError>) {
    let ann = pod.metadata.annotations.as_ref();
    let get = |k: &str| ann.and_then(|a| a.get(k)).map(String::as_str);
    let mut errors = Vec::new();
    let mut s = Script {
        start_delay,
        run: match RestartPolicy::of(pod) {
            RestartPolicy::Always => None,
            _ => Some(DEFAULT_JOB_RUN),
        },
        exit_code: 0,
        ready: true,
        active_deadline: pod
            .spec
            .as_ref()
            .and_then(|s| s.active_deadline_seconds)
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64)),
    };
    if let Some(v) = get(START_DELAY) {
        match parse_duration(v) {
            Some(d) => s.start_delay = d,
            None => errors.push(ScriptError {
                annotation: START_DELAY,
                value: v.to_string(),
                reason: "expected a duration such as 500ms, 2s or 1m",
            }),
        }
    }
    if let Some(v) = get(RUN_SECONDS) {
        match v
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|x| Duration::try_from_secs_f64(x).ok())
        {
            Some(d) => s.run = Some(d),
            None => errors.push(ScriptError {
                annotation: RUN_SECONDS,
                value: v.to_string(),
                reason: "expected a non-negative number of seconds",
            }),
        }
    }
    if let Some(v) = get(EXIT_CODE) {
        match v.trim().parse::<i32>() {
            Ok(c) if (0..=255).contains(&c) => s.exit_code = c,
            _ => errors.push(ScriptError {
                annotation: EXIT_CODE,
                value: v.to_string(),
                reason: "expected an integer from 0 to 255",
            }),
        }
    }
    if let Some(v) = get(READY) {
        match v.trim() {
            "false" | "False" => s.ready = false,
            "true" | "True" => s.ready = true,
            _ => errors.push(ScriptError {
                annotation: READY,
                value: v.to_string(),
                reason: "expected true or false",
            }),
        }
    }
    (s, errors)
}

/// Where a pod's containers are in their life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Seen on the node; containers start at `since` + start delay.
    Starting { since: Timestamp },
    /// Containers running since `since`.
    Running { since: Timestamp },
    /// Containers exited and wait to be restarted at `until` (CrashLoopBackOff).
    BackOff { until: Timestamp },
    /// Finished for good (phase Succeeded or Failed).
    Exited { failed: bool },
}

/// One exit of the containers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    pub code: i32,
    pub started: Timestamp,
    pub finished: Timestamp,
}

/// What the simulator remembers of a pod (besides its IP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Life {
    pub stage: Stage,
    pub restarts: i32,
    pub last: Option<Exit>,
    /// When the kubelet took the pod on (its startTime).
    pub started: Timestamp,
    /// Failed for running past `activeDeadlineSeconds`.
    pub deadline_exceeded: bool,
}

fn time_of(t: &Option<Time>) -> Option<Timestamp> {
    t.as_ref().map(|t| t.0)
}

fn secs(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

impl Life {
    /// A pod seen for the first time at `now`.
    pub fn new(now: Timestamp) -> Life {
        Life {
            stage: Stage::Starting { since: now },
            restarts: 0,
            last: None,
            started: now,
            deadline_exceeded: false,
        }
    }

    /// Picks up where a pod's status says it is (a pod written before the simulator
    /// restarted): finished, running since its containers' startedAt, backing off, or starting.
    pub fn from_status(pod: &Pod, now: Timestamp) -> Life {
        let Some(st) = pod.status.as_ref() else {
            return Life::new(now);
        };
        let first = st.container_statuses.as_ref().and_then(|c| c.first());
        let restarts = first.map(|c| c.restart_count).unwrap_or(0);
        let last = first
            .and_then(|c| c.last_state.as_ref())
            .and_then(|s| s.terminated.as_ref())
            .map(|t| Exit {
                code: t.exit_code,
                started: time_of(&t.started_at).unwrap_or(now),
                finished: time_of(&t.finished_at).unwrap_or(now),
            });
        let stage = match st.phase.as_deref() {
            Some("Succeeded") => Stage::Exited { failed: false },
            Some("Failed") => Stage::Exited { failed: true },
            Some("Running") => {
                let state = first.and_then(|c| c.state.as_ref());
                if let Some(r) = state.and_then(|s| s.running.as_ref()) {
                    Stage::Running {
                        since: time_of(&r.started_at).unwrap_or(now),
                    }
                } else if state
                    .and_then(|s| s.waiting.as_ref())
                    .is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff"))
                {
                    Stage::BackOff {
                        until: now + secs(crash_backoff(restarts)),
                    }
                } else {
                    Stage::Running { since: now }
                }
            }
            _ => Stage::Starting { since: now },
        };
        Life {
            stage,
            restarts,
            last,
            started: time_of(&st.start_time).unwrap_or(now),
            deadline_exceeded: st.reason.as_deref() == Some(DEADLINE_REASON),
        }
    }

    /// Moves through every transition due by `now`, failing the pod at its active deadline;
    /// returns when the next one is due.
    pub fn advance(
        &mut self,
        script: &Script,
        policy: RestartPolicy,
        now: Timestamp,
    ) -> Option<Timestamp> {
        let deadline = script.active_deadline.map(|d| self.started + secs(d));
        let until = deadline.map_or(now, |d| d.min(now));
        let next = self.step(script, policy, until);
        if self.is_finished() {
            return None;
        }
        match deadline {
            Some(d) if d <= now => {
                // The kubelet kills the containers (SIGKILL: 137) and fails the pod.
                let started = match self.stage {
                    Stage::Running { since } => since,
                    _ => d,
                };
                self.last = Some(Exit {
                    code: 137,
                    started,
                    finished: d,
                });
                self.stage = Stage::Exited { failed: true };
                self.deadline_exceeded = true;
                None
            }
            Some(d) => Some(next.map_or(d, |n| n.min(d))),
            None => next,
        }
    }

    fn step(
        &mut self,
        script: &Script,
        policy: RestartPolicy,
        now: Timestamp,
    ) -> Option<Timestamp> {
        loop {
            match self.stage.clone() {
                Stage::Starting { since } => {
                    let at = since + secs(script.start_delay);
                    if at > now {
                        return Some(at);
                    }
                    self.stage = Stage::Running { since: at };
                }
                Stage::Running { since } => {
                    let run = script.run?;
                    let at = since + secs(run);
                    if at > now {
                        return Some(at);
                    }
                    let code = script.exit_code;
                    let restart = match policy {
                        RestartPolicy::Always => true,
                        RestartPolicy::OnFailure => code != 0,
                        RestartPolicy::Never => false,
                    };
                    self.last = Some(Exit {
                        code,
                        started: since,
                        finished: at,
                    });
                    if restart {
                        self.restarts += 1;
                        self.stage = Stage::BackOff {
                            until: at + secs(crash_backoff(self.restarts)),
                        };
                    } else {
                        self.stage = Stage::Exited { failed: code != 0 };
                        return None;
                    }
                }
                Stage::BackOff { until } => {
                    if until > now {
                        return Some(until);
                    }
                    self.stage = Stage::Running { since: until };
                }
                Stage::Exited { .. } => return None,
            }
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.stage, Stage::Exited { .. })
    }

    /// The life of a pod whose containers were stopped at `now` because it is being deleted
    /// (the kubelet reports such pods terminal before deleting them). Servers (restartPolicy
    /// Always) are taken to exit 0 on SIGTERM; run-to-completion containers stopped before
    /// they finished exit 143 (128 + SIGTERM), so their pods end Failed.
    pub fn killed(&self, policy: RestartPolicy, now: Timestamp) -> Life {
        let code = match policy {
            RestartPolicy::Always => 0,
            _ => 143,
        };
        let started = match self.stage {
            Stage::Running { since } => since,
            _ => now,
        };
        Life {
            stage: Stage::Exited { failed: code != 0 },
            restarts: self.restarts,
            last: Some(Exit {
                code,
                started,
                finished: now,
            }),
            started: self.started,
            deadline_exceeded: false,
        }
    }
}

/// The node facts a status carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub host_ip: Ipv4Addr,
    /// `None` while no address could be allocated (the node's range is full).
    pub pod_ip: Option<Ipv4Addr>,
}

/// Kubernetes writes times with seconds precision.
fn k8s_time(t: Timestamp) -> Time {
    Time(
        t.round(jiff::TimestampRound::new().smallest(jiff::Unit::Second))
            .unwrap_or(t),
    )
}

/// A 64-hex-digit stand-in for a digest, stable for `seed`.
pub fn fake_digest(seed: &str) -> String {
    let mut out = String::with_capacity(64);
    push_digest(&mut out, seed);
    out
}

/// Appends [`fake_digest`] of `seed` to `out`.
fn push_digest(out: &mut String, seed: &str) {
    // FNV-1a four times with different offsets, one per 16 hex digits; the four run side by
    // side in one pass over the seed.
    let mut h: [u64; 4] = [0, 1, 2, 3]
        .map(|round: u64| 0xcbf2_9ce4_8422_2325 ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for b in seed.bytes() {
        for x in &mut h {
            *x = (*x ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 64];
    for (x, d16) in h.iter().zip(digits.chunks_exact_mut(16)) {
        for (i, d) in d16.iter_mut().enumerate() {
            *d = HEX[((x >> (60 - 4 * i)) & 0xf) as usize];
        }
    }
    out.push_str(std::str::from_utf8(&digits).expect("hex digits"));
}

/// An image reference as a container runtime reports it: `docker.io/library/nginx:latest`.
pub fn full_image(image: &str) -> String {
    let (name, has_tag) = match image.rsplit_once('/') {
        _ if image.contains('@') => (image.to_string(), true),
        Some((_, last)) => (image.to_string(), last.contains(':')),
        None => (image.to_string(), image.contains(':')),
    };
    let first = name.split('/').next().unwrap_or("");
    let qualified = if !name.contains('/') {
        format!("docker.io/library/{name}")
    } else if first.contains('.') || first.contains(':') || first == "localhost" {
        name
    } else {
        format!("docker.io/{name}")
    };
    if has_tag {
        qualified
    } else {
        format!("{qualified}:latest")
    }
}

/// [`full_image`] and [`image_id`] of `image`, remembered per thread for the last image (the
/// pods of one workload run the same one).
fn image_names(image: &str) -> (String, String) {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(String, String, String)>> =
            const { std::cell::RefCell::new(None) };
    }
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match &*last {
            Some((i, full, id)) if i == image => (full.clone(), id.clone()),
            _ => {
                let names = (full_image(image), image_id(image));
                *last = Some((image.to_string(), names.0.clone(), names.1.clone()));
                names
            }
        }
    })
}

/// `ip` in dotted decimal, as its `Display` writes it, without the formatting machinery.
fn ip_text(ip: Ipv4Addr) -> String {
    let mut out = String::with_capacity(15);
    for (i, o) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(itoa::Buffer::new().format(o));
    }
    out
}

/// The image ID a runtime reports: the repository with a digest.
pub fn image_id(image: &str) -> String {
    let full = full_image(image);
    let repo = match full.split_once('@') {
        Some((r, _)) => r.to_string(),
        None => match full.rsplit_once(':') {
            Some((r, tag)) if !tag.contains('/') => r.to_string(),
            _ => full.clone(),
        },
    };
    format!("{repo}@sha256:{}", fake_digest(&full))
}

fn condition(
    old: Option<&PodStatus>,
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = old
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_probe_time: None,
        last_transition_time: Some(since),
    }
}

/// The condition types the kubelet owns.
const OWN_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "ContainersReady",
    "Ready",
    "PodScheduled",
];

fn container_id(pod_uid: &str, container: &str, restarts: i32) -> String {
    let mut seed = String::with_capacity(pod_uid.len() + container.len() + 14);
    seed.push_str(pod_uid);
    seed.push('/');
    seed.push_str(container);
    seed.push('/');
    seed.push_str(itoa::Buffer::new().format(restarts));
    let mut id = String::with_capacity(SIM_SCHEME.len() + 64);
    id.push_str(SIM_SCHEME);
    push_digest(&mut id, &seed);
    id
}

/// The scheme of the container IDs the simulator reports.
const SIM_SCHEME: &str = "skiff-sim://";

/// Whether an init container keeps running beside the others (a sidecar).
fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// The status a kubelet writes for `pod` in `life` at `now`, built on its current status.
pub fn status(
    pod: &Pod,
    life: &Life,
    script: &Script,
    place: &Placement,
    now: Timestamp,
) -> PodStatus {
    let old = pod.status.as_ref();
    let no_spec;
    let spec = match pod.spec.as_ref() {
        Some(s) => s,
        None => {
            no_spec = PodSpec::default();
            &no_spec
        }
    };
    let uid = pod.metadata.uid.as_deref().unwrap_or("");
    let restarts = life.restarts;
    let now_k8s = k8s_time(now);

    let terminated =
        |code: i32, started: Timestamp, finished: Timestamp, id: String| ContainerStateTerminated {
            exit_code: code,
            reason: Some(if code == 0 { "Completed" } else { "Error" }.to_string()),
            started_at: Some(k8s_time(started)),
            finished_at: Some(k8s_time(finished)),
            container_id: Some(id),
            message: None,
            signal: None,
        };
    let waiting = |reason: &str, message: Option<String>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.to_string()),
            message,
        }),
        ..Default::default()
    };

    let has_init = spec
        .init_containers
        .as_ref()
        .is_some_and(|i| i.iter().any(|c| !is_sidecar(c)));
    let main_ready = matches!(life.stage, Stage::Running { .. }) && script.ready;
    let main_status = |c: &Container| -> ContainerStatus {
        let last_state = life
            .last
            .as_ref()
            .filter(|_| restarts > 0)
            .map(|e| ContainerState {
                terminated: Some(terminated(
                    e.code,
                    e.started,
                    e.finished,
                    container_id(uid, &c.name, restarts - 1),
                )),
                ..Default::default()
            });
        let (state, started, id) = match &life.stage {
            Stage::Starting { .. } => (
                waiting(
                    if has_init {
                        "PodInitializing"
                    } else {
                        "ContainerCreating"
                    },
                    None,
                ),
                false,
                None,
            ),
            Stage::Running { since } => {
                let id = container_id(uid, &c.name, restarts);
                (
                    ContainerState {
                        running: Some(ContainerStateRunning {
                            started_at: Some(k8s_time(*since)),
                        }),
                        ..Default::default()
                    },
                    true,
                    Some(id),
                )
            }
            Stage::BackOff { .. } => (
                waiting(
                    "CrashLoopBackOff",
                    Some(format!(
                        "back-off {}s restarting failed container={} pod={}_{}({uid})",
                        crash_backoff(restarts).as_secs(),
                        c.name,
                        pod.metadata.name.as_deref().unwrap_or(""),
                        pod.metadata.namespace.as_deref().unwrap_or(""),
                    )),
                ),
                false,
                Some(container_id(uid, &c.name, restarts - 1)),
            ),
            Stage::Exited { .. } => {
                let id = container_id(uid, &c.name, restarts);
                let e = life.last.clone().unwrap_or(Exit {
                    code: 0,
                    started: now,
                    finished: now,
                });
                (
                    ContainerState {
                        terminated: Some(terminated(e.code, e.started, e.finished, id.clone())),
                        ..Default::default()
                    },
                    false,
                    Some(id),
                )
            }
        };
        let ran = !matches!(life.stage, Stage::Starting { .. });
        let (image, image_id) = image_names(c.image.as_deref().unwrap_or(""));
        ContainerStatus {
            name: c.name.clone(),
            image,
            image_id: if ran { image_id } else { String::new() },
            container_id: id,
            ready: main_ready,
            started: Some(started),
            restart_count: restarts,
            state: Some(state),
            last_state: Some(last_state.unwrap_or_default()),
            ..Default::default()
        }
    };

    let containers: Vec<ContainerStatus> = spec.containers.iter().map(main_status).collect();
    let init_statuses: Vec<ContainerStatus> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            if is_sidecar(c) {
                return main_status(c);
            }
            let ran = !matches!(life.stage, Stage::Starting { .. });
            let id = container_id(uid, &c.name, 0);
            let start = match &life.stage {
                Stage::Starting { since } => *since,
                _ => old
                    .and_then(|s| s.start_time.as_ref())
                    .map(|t| t.0)
                    .unwrap_or(now),
            };
            let (image, image_id) = image_names(c.image.as_deref().unwrap_or(""));
            ContainerStatus {
                name: c.name.clone(),
                image,
                image_id: if ran { image_id } else { String::new() },
                container_id: ran.then(|| id.clone()),
                ready: ran,
                started: Some(false),
                restart_count: 0,
                state: Some(if ran {
                    ContainerState {
                        terminated: Some(terminated(0, start, start, id)),
                        ..Default::default()
                    }
                } else {
                    waiting("PodInitializing", None)
                }),
                last_state: Some(ContainerState::default()),
                ..Default::default()
            }
        })
        .collect();

    let (phase, finished, failed) = match life.stage {
        Stage::Starting { .. } => ("Pending", false, false),
        Stage::Running { .. } | Stage::BackOff { .. } => ("Running", false, false),
        Stage::Exited { failed } => (if failed { "Failed" } else { "Succeeded" }, true, failed),
    };

    let unready: Vec<&str> = containers
        .iter()
        .chain(init_statuses.iter().filter(|_| false))
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let containers_ready = unready.is_empty() && !finished;
    let (cr_reason, cr_message) = if containers_ready {
        (None, None)
    } else if finished && !failed {
        (Some("PodCompleted"), None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };

    // Readiness gates: every gate's condition must be True.
    let conds_old = old.and_then(|s| s.conditions.as_ref());
    let mut gate_problem: Option<String> = None;
    for g in spec.readiness_gates.iter().flatten() {
        let t = &g.condition_type;
        match conds_old.and_then(|cs| cs.iter().find(|c| &c.type_ == t)) {
            None => {
                gate_problem = Some(format!(
                    "corresponding condition of pod readiness gate \"{t}\" does not exist."
                ));
                break;
            }
            Some(c) if c.status != "True" => {
                gate_problem = Some(format!(
                    "the status of pod readiness gate \"{t}\" is not \"True\", but {}",
                    c.status
                ));
                break;
            }
            _ => {}
        }
    }
    let (ready, ready_reason, ready_message) = if !containers_ready {
        (false, cr_reason, cr_message.clone())
    } else if let Some(p) = gate_problem {
        (false, Some("ReadinessGatesNotReady"), Some(p))
    } else {
        (true, None, None)
    };

    let starting = matches!(life.stage, Stage::Starting { .. });
    let initialized = !(starting && has_init);
    let init_pending: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| !is_sidecar(c))
        .map(|c| c.name.as_str())
        .collect();
    let mut conditions = vec![
        condition(
            old,
            "PodReadyToStartContainers",
            !starting && !finished,
            None,
            None,
            &now_k8s,
        ),
        condition(
            old,
            "Initialized",
            initialized,
            if finished && !failed {
                Some("PodCompleted")
            } else if !initialized {
                Some("ContainersNotInitialized")
            } else {
                None
            },
            (!initialized).then(|| {
                format!(
                    "containers with incomplete status: [{}]",
                    init_pending.join(" ")
                )
            }),
            &now_k8s,
        ),
        condition(
            old,
            "ContainersReady",
            containers_ready,
            cr_reason,
            cr_message,
            &now_k8s,
        ),
        condition(old, "Ready", ready, ready_reason, ready_message, &now_k8s),
        condition(old, "PodScheduled", true, None, None, &now_k8s),
    ];
    // Conditions other writers own (readiness gates, DisruptionTarget, …) stay as they are.
    for c in conds_old.into_iter().flatten() {
        if !OWN_CONDITIONS.contains(&c.type_.as_str()) {
            conditions.push(c.clone());
        }
    }

    let host_ip = ip_text(place.host_ip);
    let host_network = spec.host_network == Some(true);
    let pod_ip = if host_network {
        Some(host_ip.clone())
    } else {
        place.pod_ip.map(ip_text)
    };
    let start_time = old
        .and_then(|s| s.start_time.clone())
        .or_else(|| match &life.stage {
            Stage::Starting { since } => Some(k8s_time(*since)),
            _ => Some(now_k8s.clone()),
        });

    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: Some(host_ip.clone()),
        host_ips: Some(vec![HostIP { ip: host_ip }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time,
        container_statuses: Some(containers),
        init_container_statuses: (!init_statuses.is_empty()).then_some(init_statuses),
        qos_class: old.and_then(|s| s.qos_class.clone()),
        message: life.deadline_exceeded.then(|| DEADLINE_MESSAGE.to_string()),
        reason: life.deadline_exceeded.then(|| DEADLINE_REASON.to_string()),
        nominated_node_name: old.and_then(|s| s.nominated_node_name.clone()),
        // The rest as it was, copied field by field (not the whole old status, most of which
        // is replaced): naming every field keeps this whole should the type gain one.
        ephemeral_container_statuses: old.and_then(|s| s.ephemeral_container_statuses.clone()),
        resize: old.and_then(|s| s.resize.clone()),
        resource_claim_statuses: old.and_then(|s| s.resource_claim_statuses.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        format!("2026-01-01T00:{s}Z").parse().unwrap()
    }

    fn pod(restart: &str, ann: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1", "annotations": ann},
            "spec": {
                "restartPolicy": restart,
                "containers": [{"name": "c", "image": "nginx"}, {"name": "d", "image": "quay.io/x/y:1"}]
            },
            "status": {"phase": "Pending", "qosClass": "BestEffort"}
        }))
        .unwrap()
    }

    fn place() -> Placement {
        Placement {
            host_ip: Ipv4Addr::new(198, 18, 0, 1),
            pod_ip: Some(Ipv4Addr::new(10, 42, 0, 2)),
        }
    }

    fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("3x"), None);
        assert_eq!(parse_duration("-1"), None);
    }

    #[test]
    fn scripts_come_from_annotations_and_restart_policy() {
        let (s, e) = script(&pod("Always", json!({})), Duration::ZERO);
        assert!(e.is_empty());
        assert_eq!(s.run, None, "services run forever");
        let (s, _) = script(&pod("Never", json!({})), Duration::ZERO);
        assert_eq!(s.run, Some(DEFAULT_JOB_RUN));
        assert_eq!(s.exit_code, 0);
        let (s, e) = script(
            &pod(
                "Always",
                json!({START_DELAY: "2s", RUN_SECONDS: "0.5", EXIT_CODE: "3", READY: "false"}),
            ),
            Duration::ZERO,
        );
        assert!(e.is_empty());
        assert_eq!(
            s,
            Script {
                start_delay: Duration::from_secs(2),
                run: Some(Duration::from_millis(500)),
                exit_code: 3,
                ready: false,
                active_deadline: None,
            }
        );
        let (s, e) = script(
            &pod("Never", json!({EXIT_CODE: "300", RUN_SECONDS: "x"})),
            Duration::ZERO,
        );
        assert_eq!(e.len(), 2);
        assert_eq!(s.exit_code, 0);
        assert_eq!(s.run, Some(DEFAULT_JOB_RUN));
        assert!(e[0].to_string().contains(RUN_SECONDS));
    }

    #[test]
    fn back_off_doubles_from_ten_seconds_to_five_minutes() {
        assert_eq!(crash_backoff(1), Duration::from_secs(10));
        assert_eq!(crash_backoff(2), Duration::from_secs(20));
        assert_eq!(crash_backoff(5), Duration::from_secs(160));
        assert_eq!(crash_backoff(6), BACKOFF_MAX);
        assert_eq!(crash_backoff(100), BACKOFF_MAX);
    }

    #[test]
    fn a_service_pod_starts_after_its_delay_and_runs_forever() {
        let p = pod("Always", json!({START_DELAY: "2s"}));
        let (s, _) = script(&p, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        assert_eq!(
            life.advance(&s, RestartPolicy::Always, t("00:01")),
            Some(t("00:02"))
        );
        let st = status(&p, &life, &s, &place(), t("00:01"));
        assert_eq!(st.phase.as_deref(), Some("Pending"));
        let c = &st.container_statuses.as_ref().unwrap()[0];
        assert_eq!(
            c.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("ContainerCreating")
        );
        assert_eq!(cond(&st, "Ready").status, "False");

        assert_eq!(life.advance(&s, RestartPolicy::Always, t("00:03")), None);
        assert_eq!(life.stage, Stage::Running { since: t("00:02") });
        let st = status(&p, &life, &s, &place(), t("00:03"));
        assert_eq!(st.phase.as_deref(), Some("Running"));
        assert_eq!(st.pod_ip.as_deref(), Some("10.42.0.2"));
        assert_eq!(st.host_ip.as_deref(), Some("198.18.0.1"));
        assert_eq!(st.qos_class.as_deref(), Some("BestEffort"));
        for t_ in OWN_CONDITIONS {
            assert_eq!(cond(&st, t_).status, "True", "{t_}");
        }
        let c = &st.container_statuses.as_ref().unwrap()[0];
        assert!(c.ready);
        assert_eq!(c.image, "docker.io/library/nginx:latest");
        assert!(c.image_id.starts_with("docker.io/library/nginx@sha256:"));
        assert!(c
            .container_id
            .as_deref()
            .unwrap()
            .starts_with("skiff-sim://"));
        assert_eq!(
            c.state
                .as_ref()
                .unwrap()
                .running
                .as_ref()
                .unwrap()
                .started_at,
            Some(k8s_time(t("00:02")))
        );
        assert_eq!(
            st.container_statuses.as_ref().unwrap()[1].image,
            "quay.io/x/y:1"
        );

        // Rendering the stored status again changes nothing (no write loops).
        let mut stored = p.clone();
        stored.status = Some(st.clone());
        assert_eq!(status(&stored, &life, &s, &place(), t("00:09")), st);
    }

    #[test]
    fn active_deadline_fails_the_pod() {
        let mut p = pod("Always", json!({}));
        p.spec.as_mut().unwrap().active_deadline_seconds = Some(30);
        let (s, _) = script(&p, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        assert_eq!(
            life.advance(&s, RestartPolicy::Always, t("00:00")),
            Some(t("00:30"))
        );
        assert_eq!(life.advance(&s, RestartPolicy::Always, t("00:45")), None);
        assert!(life.deadline_exceeded);
        let st = status(&p, &life, &s, &place(), t("00:45"));
        assert_eq!(st.phase.as_deref(), Some("Failed"));
        assert_eq!(st.reason.as_deref(), Some(DEADLINE_REASON));
        assert_eq!(st.message.as_deref(), Some(DEADLINE_MESSAGE));
        let term = st.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!(term.exit_code, 137);
        assert_eq!(term.finished_at, Some(k8s_time(t("00:30"))));
        // A Job pod that finishes first is not touched; the deadline wakes before the exit.
        let mut p = pod("Never", json!({RUN_SECONDS: "10"}));
        p.spec.as_mut().unwrap().active_deadline_seconds = Some(5);
        let (s, _) = script(&p, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        assert_eq!(
            life.advance(&s, RestartPolicy::Never, t("00:00")),
            Some(t("00:05"))
        );
        let mut stored = p.clone();
        stored.status = Some(status(&p, &life, &s, &place(), t("00:00")));
        life.advance(&s, RestartPolicy::Never, t("00:20"));
        assert!(life.deadline_exceeded);
        stored.status = Some(status(&stored, &life, &s, &place(), t("00:20")));
        assert!(Life::from_status(&stored, t("00:30")).deadline_exceeded);
    }

    #[test]
    fn host_network_pods_have_the_node_address() {
        let mut p = pod("Always", json!({}));
        p.spec.as_mut().unwrap().host_network = Some(true);
        let (s, _) = script(&p, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        life.advance(&s, RestartPolicy::Always, t("00:00"));
        let place = Placement {
            host_ip: Ipv4Addr::new(198, 18, 0, 1),
            pod_ip: None,
        };
        let st = status(&p, &life, &s, &place, t("00:00"));
        assert_eq!(st.pod_ip.as_deref(), Some("198.18.0.1"));
        assert_eq!(st.pod_ips.unwrap()[0].ip, "198.18.0.1");
    }

    #[test]
    fn job_pods_succeed_after_a_second() {
        let p = pod("Never", json!({}));
        let (s, _) = script(&p, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        assert_eq!(
            life.advance(&s, RestartPolicy::Never, t("00:00")),
            Some(t("00:01"))
        );
        assert_eq!(life.advance(&s, RestartPolicy::Never, t("00:01")), None);
        assert_eq!(life.stage, Stage::Exited { failed: false });
        let st = status(&p, &life, &s, &place(), t("00:01"));
        assert_eq!(st.phase.as_deref(), Some("Succeeded"));
        let term = st.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!(term.exit_code, 0);
        assert_eq!(term.reason.as_deref(), Some("Completed"));
        assert_eq!(cond(&st, "Ready").reason.as_deref(), Some("PodCompleted"));
        assert_eq!(cond(&st, "Ready").status, "False");
    }

    #[test]
    fn deleted_pods_are_reported_terminal() {
        let p = pod("Always", json!({}));
        let (s, _) = script(&p, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        life.advance(&s, RestartPolicy::Always, t("00:00"));
        let killed = life.killed(RestartPolicy::Always, t("00:30"));
        let st = status(&p, &killed, &s, &place(), t("00:30"));
        assert_eq!(st.phase.as_deref(), Some("Succeeded"));
        let term = st.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!(term.started_at, Some(k8s_time(t("00:00"))));
        assert_eq!(term.finished_at, Some(k8s_time(t("00:30"))));
        assert_eq!(
            st.pod_ip.as_deref(),
            Some("10.42.0.2"),
            "the IP stays in the status"
        );
        // A Job pod stopped before it finished fails.
        let killed = Life::new(t("00:00")).killed(RestartPolicy::Never, t("00:01"));
        let st = status(&p, &killed, &s, &place(), t("00:01"));
        assert_eq!(st.phase.as_deref(), Some("Failed"));
    }

    #[test]
    fn a_nonzero_exit_fails_under_never() {
        let p = pod("Never", json!({EXIT_CODE: "2"}));
        let (s, _) = script(&p, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        life.advance(&s, RestartPolicy::Never, t("00:05"));
        assert_eq!(life.stage, Stage::Exited { failed: true });
        let st = status(&p, &life, &s, &place(), t("00:05"));
        assert_eq!(st.phase.as_deref(), Some("Failed"));
        let term = st.container_statuses.as_ref().unwrap()[0]
            .state
            .as_ref()
            .unwrap()
            .terminated
            .clone()
            .unwrap();
        assert_eq!((term.exit_code, term.reason.as_deref()), (2, Some("Error")));
    }

    #[test]
    fn a_failing_container_crash_loops_with_growing_back_off() {
        let p = pod("OnFailure", json!({EXIT_CODE: "1"}));
        let (s, _) = script(&p, Duration::ZERO);
        let policy = RestartPolicy::OnFailure;
        let mut life = Life::new(t("00:00"));
        // Runs 1 s, exits 1, backs off 10 s.
        assert_eq!(life.advance(&s, policy, t("00:01")), Some(t("00:11")));
        assert_eq!(life.restarts, 1);
        let st = status(&p, &life, &s, &place(), t("00:01"));
        assert_eq!(st.phase.as_deref(), Some("Running"));
        let c = &st.container_statuses.as_ref().unwrap()[0];
        let w = c.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
        assert!(w
            .message
            .as_deref()
            .unwrap()
            .starts_with("back-off 10s restarting failed container=c pod=p_ns(u1)"));
        assert_eq!(c.restart_count, 1);
        let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(last.exit_code, 1);
        assert_eq!(cond(&st, "Ready").status, "False");
        // Restarts at 11 s, exits at 12 s, backs off 20 s.
        assert_eq!(life.advance(&s, policy, t("00:11")), Some(t("00:12")));
        assert_eq!(life.stage, Stage::Running { since: t("00:11") });
        assert_eq!(life.advance(&s, policy, t("00:12")), Some(t("00:32")));
        assert_eq!(life.restarts, 2);
        // Far later: the back-off is capped and the count keeps climbing.
        life.advance(&s, policy, t("59:00"));
        assert!(life.restarts > 5);
        // Exit 0 under OnFailure finishes instead.
        let ok = pod("OnFailure", json!({}));
        let (s, _) = script(&ok, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        life.advance(&s, policy, t("00:02"));
        assert_eq!(life.stage, Stage::Exited { failed: false });
    }

    #[test]
    fn readiness_annotation_and_gates_hold_ready_back() {
        let p = pod("Always", json!({READY: "false"}));
        let (s, _) = script(&p, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        life.advance(&s, RestartPolicy::Always, t("00:00"));
        let st = status(&p, &life, &s, &place(), t("00:00"));
        assert_eq!(st.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&st, "Ready").status, "False");
        assert_eq!(
            cond(&st, "ContainersReady").message.as_deref(),
            Some("containers with unready status: [c d]")
        );

        let mut p: Pod = pod("Always", json!({}));
        p.spec.as_mut().unwrap().readiness_gates =
            Some(vec![k8s_openapi::api::core::v1::PodReadinessGate {
                condition_type: "example.com/lb".into(),
            }]);
        let (s, _) = script(&p, Duration::ZERO);
        let st = status(&p, &life, &s, &place(), t("00:00"));
        assert_eq!(cond(&st, "ContainersReady").status, "True");
        assert_eq!(cond(&st, "Ready").status, "False");
        assert_eq!(
            cond(&st, "Ready").reason.as_deref(),
            Some("ReadinessGatesNotReady")
        );
        // Another writer sets the gate: Ready follows, and the gate condition is kept.
        let mut gated = st.clone();
        gated.conditions.as_mut().unwrap().push(PodCondition {
            type_: "example.com/lb".into(),
            status: "True".into(),
            ..Default::default()
        });
        p.status = Some(gated);
        let st = status(&p, &life, &s, &place(), t("00:05"));
        assert_eq!(cond(&st, "Ready").status, "True");
        assert_eq!(cond(&st, "example.com/lb").status, "True");
        assert_eq!(
            cond(&st, "Ready").last_transition_time,
            Some(k8s_time(t("00:05")))
        );
    }

    #[test]
    fn init_containers_complete_before_the_pod_runs() {
        let mut p = pod("Always", json!({START_DELAY: "1s"}));
        p.spec.as_mut().unwrap().init_containers = Some(vec![
            Container {
                name: "setup".into(),
                image: Some("busybox".into()),
                ..Default::default()
            },
            Container {
                name: "proxy".into(),
                image: Some("envoy".into()),
                restart_policy: Some("Always".into()),
                ..Default::default()
            },
        ]);
        let (s, _) = script(&p, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        life.advance(&s, RestartPolicy::Always, t("00:00"));
        let st = status(&p, &life, &s, &place(), t("00:00"));
        assert_eq!(cond(&st, "Initialized").status, "False");
        assert_eq!(
            cond(&st, "Initialized").message.as_deref(),
            Some("containers with incomplete status: [setup]")
        );
        life.advance(&s, RestartPolicy::Always, t("00:01"));
        let st = status(&p, &life, &s, &place(), t("00:01"));
        let init = st.init_container_statuses.as_ref().unwrap();
        let setup = init[0].state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(setup.reason.as_deref(), Some("Completed"));
        assert!(
            init[1].state.as_ref().unwrap().running.is_some(),
            "sidecar runs"
        );
        assert_eq!(cond(&st, "Ready").status, "True");
    }

    #[test]
    fn a_restarted_simulator_picks_up_from_the_status() {
        let p = pod("OnFailure", json!({EXIT_CODE: "1"}));
        let (s, _) = script(&p, Duration::ZERO);
        let mut life = Life::new(t("00:00"));
        life.advance(&s, RestartPolicy::OnFailure, t("00:01"));
        let mut stored = p.clone();
        stored.status = Some(status(&p, &life, &s, &place(), t("00:01")));
        let again = Life::from_status(&stored, t("00:05"));
        assert_eq!(again.restarts, 1);
        assert!(matches!(again.stage, Stage::BackOff { .. }));
        assert_eq!(again.last.as_ref().unwrap().code, 1);

        let mut life = Life::new(t("00:00"));
        life.advance(&s, RestartPolicy::OnFailure, t("00:00"));
        stored.status = Some(status(&p, &life, &s, &place(), t("00:00")));
        assert_eq!(
            Life::from_status(&stored, t("00:05")).stage,
            Stage::Running { since: t("00:00") }
        );
        assert_eq!(
            Life::from_status(&p, t("00:05")).stage,
            Stage::Starting { since: t("00:05") }
        );
    }

    /// The digest as first written (FNV-1a per round, formatted): the one-pass version must
    /// give the same text for any seed, or pods' image and container IDs would change.
    fn fake_digest_by_rounds(seed: &str) -> String {
        let mut out = String::new();
        for round in 0u64..4 {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for b in seed.bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            out.push_str(&format!("{h:016x}"));
        }
        out
    }

    #[test]
    fn digests_match_the_round_by_round_definition() {
        let mut seeds: Vec<String> = vec![
            String::new(),
            "docker.io/library/nginx:1.27.3-alpine".into(),
            "3f1c2b9e-0d7a-4c55-9a0e-5b6f7d8e9a01/web/0".into(),
            "é\u{0}\"".into(),
        ];
        let mut x: u64 = 7;
        for len in 0..200 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seeds.push(
                (0..len)
                    .map(|i| char::from(b' ' + ((x >> (i % 56)) as u8 % 95)))
                    .collect(),
            );
        }
        for s in &seeds {
            assert_eq!(fake_digest(s), fake_digest_by_rounds(s), "{s:?}");
            assert_eq!(fake_digest(s).len(), 64);
        }
        assert_eq!(
            fake_digest("docker.io/library/nginx:1.27.3-alpine"),
            fake_digest_by_rounds("docker.io/library/nginx:1.27.3-alpine")
        );
    }

    #[test]
    fn images_are_reported_fully_qualified() {
        assert_eq!(full_image("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(full_image("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(
            full_image("bitnami/redis"),
            "docker.io/bitnami/redis:latest"
        );
        assert_eq!(full_image("localhost:5000/x"), "localhost:5000/x:latest");
        assert_eq!(
            image_id("nginx:1.27").split('@').next(),
            Some("docker.io/library/nginx")
        );
        assert_eq!(fake_digest("a").len(), 64);
        assert_ne!(fake_digest("a"), fake_digest("b"));
    }
}
