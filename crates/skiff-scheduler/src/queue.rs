//! The scheduling queue, after upstream's `PriorityQueue`: an active queue ordered by
//! priority, then by when the pod entered the queue (`PrioritySort`); a back-off queue where
//! a pod that failed waits `1s * 2^(attempts-1)`, at most 10 s; and an unschedulable set whose
//! pods go back (to back-off or active) on cluster events that may make them fit, or after
//! 5 minutes regardless. Only pods for `default-scheduler` without scheduling gates enter.
//! Time is passed in (`tokio::time::Instant`), so tests run on paused time.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::{Mutex, Notify};
use tokio::time::{Duration, Instant};

use crate::snapshot::{pod_key, PodKey};

pub const SCHEDULER_NAME: &str = "default-scheduler";
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Upstream's `podMaxInUnschedulablePodsDuration`.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(5 * 60);

/// Whether this scheduler takes the pod: its scheduler, not yet bound, not finished.
pub fn responsible(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let name = spec
        .and_then(|s| s.scheduler_name.as_deref())
        .filter(|n| !n.is_empty())
        .unwrap_or(SCHEDULER_NAME);
    let bound = spec
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty());
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    name == SCHEDULER_NAME
        && !bound
        && !matches!(phase, Some("Succeeded") | Some("Failed"))
        && pod.metadata.deletion_timestamp.is_none()
}

fn gated(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty())
}

/// A pod in the queue.
#[derive(Debug, Clone)]
pub struct QueuedPod {
    pub pod: Arc<Pod>,
    pub key: PodKey,
    /// Scheduling attempts so far.
    pub attempts: u32,
    /// When it last entered the queue.
    pub timestamp: Instant,
    /// The scheduling cycle it was popped in.
    pub cycle: u64,
    /// Its last failure depends on other pods (affinity, spreading): a newly placed pod may
    /// make it fit.
    pub waits_for_pods: bool,
}

impl QueuedPod {
    fn priority(&self) -> i32 {
        self.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
    }

    /// When its back-off ends.
    pub fn backoff_expiry(&self) -> Instant {
        let mut d = INITIAL_BACKOFF;
        for _ in 1..self.attempts {
            d *= 2;
            if d >= MAX_BACKOFF {
                d = MAX_BACKOFF;
                break;
            }
        }
        if self.attempts == 0 {
            d = Duration::ZERO;
        }
        self.timestamp + d
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active(u64),
    Backoff(u64),
    /// Since when, and the key of its entry in `Queue::unschedulable`.
    Unschedulable(Instant, u64),
    Gated,
    InFlight,
}

#[derive(Debug, PartialEq, Eq)]
struct ActiveKey {
    priority: i32,
    timestamp: Instant,
    seq: u64,
    key: PodKey,
}

impl Ord for ActiveKey {
    fn cmp(&self, o: &Self) -> Ordering {
        // BinaryHeap pops the greatest: higher priority, then earlier, then first added.
        self.priority
            .cmp(&o.priority)
            .then_with(|| o.timestamp.cmp(&self.timestamp))
            .then_with(|| o.seq.cmp(&self.seq))
    }
}

impl PartialOrd for ActiveKey {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

/// The queue itself, without locking or waiting.
#[derive(Debug, Default)]
pub struct Queue {
    pods: crate::fasthash::Map<PodKey, (QueuedPod, Place)>,
    active: BinaryHeap<ActiveKey>,
    backoff: BinaryHeap<Reverse<(Instant, u64, PodKey)>>,
    /// Unschedulable pods by when they became so.
    unschedulable_set: std::collections::BTreeMap<(Instant, u64), PodKey>,
    seq: u64,
    cycle: u64,
    move_request_cycle: u64,
    /// How many unschedulable pods wait for pods (an upper bound; 0 skips the scan).
    waiting_for_pods: usize,
}

impl Queue {
    pub fn new() -> Queue {
        Queue::default()
    }

    fn push_active(&mut self, key: &str) {
        self.seq += 1;
        let seq = self.seq;
        let Some((qp, place)) = self.pods.get_mut(key) else {
            return;
        };
        *place = Place::Active(seq);
        self.active.push(ActiveKey {
            priority: qp.priority(),
            timestamp: qp.timestamp,
            seq,
            key: key.to_string(),
        });
    }

    fn push_backoff(&mut self, key: &str) {
        self.seq += 1;
        let seq = self.seq;
        let Some((qp, place)) = self.pods.get_mut(key) else {
            return;
        };
        *place = Place::Backoff(seq);
        self.backoff
            .push(Reverse((qp.backoff_expiry(), seq, key.to_string())));
    }

    /// Adds a new pending pod, or updates one already queued (a changed pod waiting as
    /// unschedulable gets another try). True when a pod new to the queue went to the active
    /// queue.
    pub fn add(&mut self, pod: Arc<Pod>, now: Instant) -> bool {
        let key = pod_key(&pod);
        if !responsible(&pod) {
            self.delete(&key);
            return false;
        }
        if let Some((qp, place)) = self.pods.get_mut(&key) {
            let changed = qp.pod.spec != pod.spec || qp.pod.metadata.labels != pod.metadata.labels;
            qp.pod = pod.clone();
            let place = *place;
            match place {
                Place::Gated if !gated(&pod) => {
                    qp.timestamp = now;
                    self.push_active(&key);
                }
                Place::Unschedulable(..) if changed => {
                    self.move_one(&key, now);
                }
                _ => {}
            }
            return false;
        }
        let g = gated(&pod);
        let qp = QueuedPod {
            pod,
            key: key.clone(),
            attempts: 0,
            timestamp: now,
            cycle: 0,
            waits_for_pods: false,
        };
        self.pods.insert(key.clone(), (qp, Place::Gated));
        if !g {
            self.push_active(&key);
        }
        !g
    }

    /// Forgets a pod (deleted, or bound by someone else).
    pub fn delete(&mut self, key: &str) {
        if let Some((_, Place::Unschedulable(since, seq))) = self.pods.remove(key) {
            self.unschedulable_set.remove(&(since, seq));
        }
    }

    /// Moves back-off pods whose time has come to the active queue, and pods unschedulable
    /// for longer than 5 minutes back into play.
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((at, seq, key))) = self.backoff.peek().cloned() {
            if at > now {
                break;
            }
            self.backoff.pop();
            if matches!(self.pods.get(&key), Some((_, Place::Backoff(s))) if *s == seq) {
                self.push_active(&key);
            }
        }
        while let Some((&(since, seq), _)) = self.unschedulable_set.first_key_value() {
            if now.duration_since(since) < MAX_UNSCHEDULABLE {
                break;
            }
            let key = self.unschedulable_set.remove(&(since, seq)).expect("entry");
            self.move_one(&key, now);
        }
    }

    /// The next pod to schedule, if any is ready.
    pub fn pop(&mut self, now: Instant) -> Option<QueuedPod> {
        self.flush(now);
        while let Some(top) = self.active.pop() {
            let Some((qp, place)) = self.pods.get_mut(&top.key) else {
                continue;
            };
            if *place != Place::Active(top.seq) {
                continue;
            }
            *place = Place::InFlight;
            self.cycle += 1;
            qp.attempts += 1;
            qp.cycle = self.cycle;
            return Some(qp.clone());
        }
        None
    }

    /// The pod was scheduled (or needs no more attempts).
    pub fn done(&mut self, key: &str) {
        self.delete(key);
    }

    /// The attempt failed because nothing fits: the pod waits as unschedulable, or in
    /// back-off if a cluster event arrived while it was being scheduled.
    pub fn unschedulable(&mut self, qp: &QueuedPod, now: Instant, waits_for_pods: bool) {
        let Some((cur, place)) = self.pods.get_mut(&qp.key) else {
            return;
        };
        if *place != Place::InFlight {
            return;
        }
        cur.timestamp = now;
        cur.waits_for_pods = waits_for_pods;
        if self.move_request_cycle >= qp.cycle {
            self.push_backoff(&qp.key);
        } else {
            self.seq += 1;
            *place = Place::Unschedulable(now, self.seq);
            self.unschedulable_set
                .insert((now, self.seq), qp.key.clone());
            if waits_for_pods {
                self.waiting_for_pods += 1;
            }
        }
    }

    /// The attempt failed for another reason (binding error): back-off.
    pub fn error(&mut self, qp: &QueuedPod, now: Instant) {
        let Some((cur, place)) = self.pods.get_mut(&qp.key) else {
            return;
        };
        if *place != Place::InFlight {
            return;
        }
        cur.timestamp = now;
        self.push_backoff(&qp.key);
    }

    fn move_one(&mut self, key: &str, now: Instant) {
        let Some((qp, place)) = self.pods.get(key) else {
            return;
        };
        if let Place::Unschedulable(since, seq) = *place {
            self.unschedulable_set.remove(&(since, seq));
        }
        if qp.backoff_expiry() > now {
            self.push_backoff(key);
        } else {
            self.push_active(key);
        }
    }

    /// A cluster event that may make pods fit (node added or changed, pod deleted, ...):
    /// every unschedulable pod goes back, to back-off if its back-off has not ended.
    pub fn move_all(&mut self, now: Instant) {
        let keys: Vec<PodKey> = std::mem::take(&mut self.unschedulable_set)
            .into_values()
            .collect();
        for k in keys {
            self.move_one(&k, now);
        }
        self.waiting_for_pods = 0;
        self.move_request_cycle = self.cycle;
    }

    /// A pod was placed: unschedulable pods whose failure depended on other pods go back.
    pub fn move_waiting_for_pods(&mut self, now: Instant) {
        if self.waiting_for_pods == 0 {
            return;
        }
        let keys: Vec<PodKey> = self
            .unschedulable_set
            .values()
            .filter(|k| self.pods.get(*k).is_some_and(|(qp, _)| qp.waits_for_pods))
            .cloned()
            .collect();
        for k in keys {
            self.move_one(&k, now);
        }
        self.waiting_for_pods = 0;
    }

    /// Whether a pod is ready to pop now.
    pub fn has_ready(&mut self, now: Instant) -> bool {
        self.flush(now);
        while let Some(top) = self.active.peek() {
            if matches!(self.pods.get(&top.key), Some((_, Place::Active(s))) if *s == top.seq) {
                return true;
            }
            self.active.pop();
        }
        false
    }

    /// When something will next become ready without any event.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let b = self.backoff.peek().map(|Reverse((at, _, _))| *at);
        let u = self
            .unschedulable_set
            .first_key_value()
            .map(|((since, _), _)| *since + MAX_UNSCHEDULABLE);
        match (b, u) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// (active, backoff, unschedulable, gated) counts.
    pub fn lens(&self) -> (usize, usize, usize, usize) {
        let mut c = (0, 0, 0, 0);
        for (_, p) in self.pods.values() {
            match p {
                Place::Active(_) => c.0 += 1,
                Place::Backoff(_) => c.1 += 1,
                Place::Unschedulable(..) => c.2 += 1,
                Place::Gated => c.3 += 1,
                Place::InFlight => {}
            }
        }
        c
    }

    pub fn contains(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }
}

/// The queue shared between the event side and the scheduling loop.
#[derive(Debug, Default)]
pub struct SharedQueue {
    inner: Mutex<Queue>,
    notify: Notify,
}

impl SharedQueue {
    pub fn new() -> SharedQueue {
        SharedQueue::default()
    }

    /// Runs `f` on the queue and wakes the scheduling loop.
    pub async fn with<R>(&self, f: impl FnOnce(&mut Queue, Instant) -> R) -> R {
        let r = f(&mut *self.inner.lock().await, Instant::now());
        self.notify.notify_one();
        r
    }

    /// Waits for the next pod to schedule.
    pub async fn pop(&self) -> QueuedPod {
        loop {
            let wake = {
                let mut q = self.inner.lock().await;
                if let Some(p) = q.pop(Instant::now()) {
                    return p;
                }
                q.next_wakeup()
            };
            match wake {
                Some(at) => {
                    tokio::select! {
                        _ = self.notify.notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => self.notify.notified().await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::testing::*;
    use k8s_openapi::api::core::v1::PodSchedulingGate;

    fn p(name: &str, prio: i32) -> Arc<Pod> {
        Arc::new(priority(pod(name, "", ""), prio))
    }

    #[tokio::test(start_paused = true)]
    async fn priority_then_age() {
        let mut q = Queue::new();
        let t0 = Instant::now();
        q.add(p("old-low", 0), t0);
        q.add(p("high", 100), t0 + Duration::from_millis(5));
        q.add(p("young-low", 0), t0 + Duration::from_millis(10));
        let order: Vec<String> = std::iter::from_fn(|| q.pop(t0 + Duration::from_secs(1)))
            .map(|x| x.key)
            .collect();
        assert_eq!(
            order,
            vec!["default/high", "default/old-low", "default/young-low"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn only_default_scheduler_and_ungated() {
        let mut q = Queue::new();
        let now = Instant::now();
        let mut other = priority(pod("other", "", ""), 0);
        other.spec.as_mut().unwrap().scheduler_name = Some("my-scheduler".into());
        assert!(!q.add(Arc::new(other), now));
        let mut g = priority(pod("gated", "", ""), 0);
        g.spec.as_mut().unwrap().scheduling_gates =
            Some(vec![PodSchedulingGate { name: "x".into() }]);
        assert!(!q.add(Arc::new(g.clone()), now));
        assert!(q.pop(now).is_none());
        assert_eq!(q.lens(), (0, 0, 0, 1));
        g.spec.as_mut().unwrap().scheduling_gates = None;
        // Ungated: it goes to the active queue, but it was not new to the queue.
        assert!(!q.add(Arc::new(g), now));
        assert_eq!(q.pop(now).unwrap().key, "default/gated");
        assert!(
            q.add(p("fresh", 0), now),
            "a new pending pod goes to the active queue"
        );
        assert!(!q.add(p("fresh", 0), now), "a repeat is not counted again");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_up_to_ten_seconds() {
        let mut q = Queue::new();
        let mut now = Instant::now();
        q.add(p("a", 0), now);
        let mut qp = q.pop(now).expect("ready");
        let mut waits = Vec::new();
        for _ in 0..6 {
            q.error(&qp, now);
            let start = now;
            loop {
                if let Some(x) = q.pop(now) {
                    qp = x;
                    break;
                }
                now += Duration::from_millis(500);
            }
            waits.push((now - start).as_millis());
        }
        assert_eq!(waits, vec![1000, 2000, 4000, 8000, 10000, 10000]);
    }

    #[tokio::test(start_paused = true)]
    async fn unschedulable_waits_for_an_event_or_five_minutes() {
        let mut q = Queue::new();
        let t0 = Instant::now();
        q.add(p("a", 0), t0);
        let qp = q.pop(t0).unwrap();
        q.unschedulable(&qp, t0, false);
        assert_eq!(q.lens(), (0, 0, 1, 0));
        assert!(q.pop(t0 + Duration::from_secs(60)).is_none());
        assert_eq!(q.next_wakeup(), Some(t0 + MAX_UNSCHEDULABLE));
        assert!(q.pop(t0 + MAX_UNSCHEDULABLE).is_some());

        // An event moves it back; within its back-off it waits there first.
        let t1 = t0 + MAX_UNSCHEDULABLE;
        let qp = QueuedPod {
            ..q.pods["default/a"].0.clone()
        };
        q.unschedulable(&qp, t1, false);
        q.move_all(t1 + Duration::from_millis(100));
        assert_eq!(q.lens(), (0, 1, 0, 0));
        assert!(q.pop(t1 + Duration::from_secs(5)).is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn event_during_attempt_sends_failure_to_backoff() {
        let mut q = Queue::new();
        let t0 = Instant::now();
        q.add(p("a", 0), t0);
        let qp = q.pop(t0).unwrap();
        q.move_all(t0); // a node was added while the pod was being scheduled
        q.unschedulable(&qp, t0, false);
        assert_eq!(q.lens(), (0, 1, 0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn placed_pods_wake_only_pods_waiting_for_pods() {
        let mut q = Queue::new();
        let t0 = Instant::now();
        q.add(p("affine", 0), t0);
        q.add(p("big", 0), t0);
        let a = q.pop(t0).unwrap();
        let b = q.pop(t0).unwrap();
        q.unschedulable(&a, t0, true);
        q.unschedulable(&b, t0, false);
        q.move_waiting_for_pods(t0 + Duration::from_secs(2));
        assert_eq!(q.lens(), (1, 0, 1, 0));
        assert!(q.has_ready(t0 + Duration::from_secs(2)));
        assert_eq!(
            q.pop(t0 + Duration::from_secs(2)).unwrap().key,
            "default/affine"
        );
        // Deleting the other forgets its unschedulable entry too.
        q.delete("default/big");
        assert_eq!(q.next_wakeup(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn shared_queue_wakes_after_backoff() {
        let q = Arc::new(SharedQueue::new());
        q.with(|q, now| {
            q.add(p("a", 0), now);
        })
        .await;
        let first = q.pop().await;
        q.with(|q, now| q.error(&first, now)).await;
        let start = Instant::now();
        let again = q.pop().await;
        assert_eq!(again.key, "default/a");
        assert_eq!(again.attempts, 2);
        assert_eq!(Instant::now() - start, INITIAL_BACKOFF);
    }
}
