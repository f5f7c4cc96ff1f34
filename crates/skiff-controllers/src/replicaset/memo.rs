//! What each pod adds to its owner's status counts, remembered between syncs.
//!
//! While a ReplicaSet's pods become Ready one after another, every change to one of them
//! enqueues the ReplicaSet, and each sync used to walk all of its pods again to count them: a
//! Deployment of 10,000 replicas walked 10,000 pods for every few pods that changed. A memo
//! keeps each counted pod's contribution (active, fully labeled, ready, available) by pod key
//! with their sums; the pod informer marks each pod that changes as it applies the change
//! ([`skiff_runtime::Informer::on_apply`]), and a sync that needs only the counts judges the
//! marked pods again instead of walking all: its counts are those of the cache as it reads it,
//! as a walk's are, also right after the sync's own writes.
//!
//! A memo begins empty and marking before the walk that fills it, so that a change the walk
//! did not see is marked; a change it did see and that is marked as well is judged again,
//! which changes nothing (a pod's contribution replaces the one remembered).
//!
//! Contributions depend only on the pod when the owner's minReadySeconds is 0 (availability
//! then needs no clock) and the owner is not being deleted; its selector and template labels
//! are part of its spec, so a memo holds for one generation. Otherwise, and whenever a pod it
//! controls no longer matches its selector (to be released by a full walk), the sync walks.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use parking_lot::Mutex;
use skiff_runtime::cache::controller_uid;

use super::{Look, Tally};

type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type Set<K> = HashSet<K, foldhash::fast::RandomState>;

/// A pod's contribution to the counts, as bits.
pub(crate) const ACTIVE: u8 = 1;
pub(crate) const FULLY_LABELED: u8 = 2;
pub(crate) const READY: u8 = 4;
pub(crate) const AVAILABLE: u8 = 8;

impl Tally {
    /// Adds one pod's contribution and when it becomes available, if later.
    pub(crate) fn add(&mut self, bits: u8, next_available: Option<jiff::Timestamp>) {
        self.apply(bits, 1);
        if let Some(at) = next_available {
            self.next_available = Some(self.next_available.map_or(at, |n| n.min(at)));
        }
    }

    /// Adds (`sign` 1) or takes away (`sign` -1) one pod's contribution.
    pub(crate) fn apply(&mut self, bits: u8, sign: i32) {
        if bits & ACTIVE != 0 {
            self.active = (self.active as i64 + i64::from(sign)) as usize;
        }
        if bits & FULLY_LABELED != 0 {
            self.fully_labeled += sign;
        }
        if bits & READY != 0 {
            self.ready += sign;
        }
        if bits & AVAILABLE != 0 {
            self.available += sign;
        }
    }
}

/// One owner's memo.
#[derive(Default)]
struct Memo {
    /// The owner's generation its pods were judged for.
    generation: i64,
    /// Whether `pods` and `tally` hold: false from [`Memos::begin`] until [`Memos::finish`].
    complete: bool,
    /// Each counted pod's contribution, by pod key (pods that add nothing are left out).
    pods: Map<String, u8>,
    tally: Tally,
    /// Pods changed since they were last judged, by key.
    changed: Set<String>,
}

/// The memos of one controller's owners, by owner uid.
#[derive(Default)]
pub(crate) struct Memos {
    by_owner: Mutex<Map<String, Memo>>,
}

/// Whether a memo can serve `look`: contributions that need no clock and no release.
pub(crate) fn serves(look: &Look<'_>) -> bool {
    !look.deleting && look.min_ready <= 0
}

impl Memos {
    /// Marks a pod controlled by `owner_uid` as changed (the pod informer, as it applies each
    /// change: [`skiff_runtime::Informer::on_apply`]).
    pub(crate) fn mark(&self, owner_uid: &str, pod_key: &str) {
        let mut by_owner = self.by_owner.lock();
        if let Some(m) = by_owner.get_mut(owner_uid) {
            if !m.changed.contains(pod_key) {
                m.changed.insert(pod_key.to_owned());
            }
        }
    }

    /// Forgets one owner's memo (the owner is gone).
    pub(crate) fn forget(&self, owner_uid: &str) {
        self.by_owner.lock().remove(owner_uid);
    }

    /// The counts of the pods `owner_uid` controls, from its memo with the changed pods
    /// judged again (read through `get`), when the memo holds for `generation`; `None` when the
    /// sync must walk: no memo, another generation, or a pod the owner controls that its
    /// selector no longer matches (the memo is then left incomplete).
    pub(crate) fn tally(
        &self,
        owner_uid: &str,
        generation: i64,
        look: &Look<'_>,
        get: impl Fn(&str) -> Option<Arc<Pod>>,
    ) -> Option<Tally> {
        let mut by_owner = self.by_owner.lock();
        let m = by_owner.get_mut(owner_uid)?;
        if !m.complete || m.generation != generation {
            return None;
        }
        let changed = std::mem::take(&mut m.changed);
        for key in changed {
            let now = get(&key);
            let bits = match now.as_deref() {
                Some(p) if controller_uid(&p.metadata) == Some(owner_uid) => {
                    if !look.keeps(p) {
                        m.complete = false;
                        return None;
                    }
                    look.judge(p, true).0
                }
                _ => 0,
            };
            let was = if bits == 0 {
                m.pods.remove(&key).unwrap_or(0)
            } else {
                m.pods.insert(key, bits).unwrap_or(0)
            };
            m.tally.apply(was, -1);
            m.tally.apply(bits, 1);
        }
        Some(m.tally.clone())
    }

    /// Starts a memo for `owner_uid` before a walk fills it: from now on its pods' changes are
    /// marked.
    pub(crate) fn begin(&self, owner_uid: &str, generation: i64) {
        self.by_owner.lock().insert(
            owner_uid.to_owned(),
            Memo {
                generation,
                ..Memo::default()
            },
        );
    }

    /// Fills the memo [`Memos::begin`] started with what the walk judged, unless it was
    /// forgotten or begun again since.
    pub(crate) fn finish(&self, owner_uid: &str, generation: i64, pods: Judged) {
        let mut by_owner = self.by_owner.lock();
        if let Some(m) = by_owner.get_mut(owner_uid) {
            if !m.complete && m.generation == generation {
                m.pods = pods.pods;
                m.tally = pods.tally;
                m.complete = true;
            }
        }
    }
}

/// The contributions a walk judged, for [`Memos::finish`].
#[derive(Default)]
pub(crate) struct Judged {
    pods: Map<String, u8>,
    tally: Tally,
}

impl Judged {
    pub(crate) fn add(&mut self, pod: &Pod, bits: u8) {
        self.tally.apply(bits, 1);
        if bits != 0 {
            let key = skiff_runtime::cache::key(
                pod.metadata.namespace.as_deref(),
                pod.metadata.name.as_deref().unwrap_or(""),
            );
            self.pods.insert(key, bits);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::apps::v1::ReplicaSet;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
    use proptest::prelude::*;

    use super::*;
    use crate::pods::tests::{pod, ts};
    use crate::replicaset::Walk;

    const UID: &str = "rs-uid";

    fn owner(selector: serde_json::Value) -> ReplicaSet {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "rs", "namespace": "ns", "uid": UID, "generation": 1},
            "spec": {"replicas": 3, "selector": selector,
                      "template": {"metadata": {"labels": {"app": "a", "tier": "x"}}}}
        }))
        .unwrap()
    }

    /// One pod as a test step makes it: which of a few names, its controller (ours, another's,
    /// none), labels (full, partial, other), phase, readiness and deletion.
    #[derive(Debug, Clone)]
    struct Shape {
        name: u8,
        controller: u8,
        labels: u8,
        phase: u8,
        ready: bool,
        deleting: bool,
    }

    fn shape() -> impl Strategy<Value = Shape> {
        (
            0u8..12,
            0u8..4,
            0u8..3,
            0u8..3,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(name, controller, labels, phase, ready, deleting)| Shape {
                name,
                controller,
                labels,
                phase,
                ready,
                deleting,
            })
    }

    fn make(rs: &ReplicaSet, s: &Shape) -> Pod {
        let t0 = "2026-01-01T00:00:00Z";
        let phase = ["Running", "Pending", "Succeeded"][s.phase as usize];
        let mut p = pod(&format!("p{}", s.name), "n", phase, Some(t0), t0);
        if !s.ready {
            p.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].status = "False".into();
        }
        let pairs: &[(&str, &str)] = match s.labels {
            0 => &[("app", "a"), ("tier", "x")],
            1 => &[("app", "a")],
            _ => &[("app", "b")],
        };
        p.metadata.labels = Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let mine = crate::pods::controller_ref(rs);
        p.metadata.owner_references = match s.controller {
            0 | 1 => Some(vec![mine]),
            2 => Some(vec![OwnerReference {
                uid: "other".into(),
                ..mine
            }]),
            _ => None,
        };
        if s.deleting {
            p.metadata.deletion_timestamp = Some(Time(ts("2026-01-01T00:00:05Z")));
        }
        p
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// A pod is created or replaced; its change is marked as the handler marks it.
        Put(Shape),
        Delete(u8),
        /// A sync: the memo's counts (or a walk) against a walk from scratch.
        Sync,
        /// A sync whose walk runs before a change that is applied and marked while the walk's
        /// results are not yet in the memo.
        SyncAround(Shape),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => shape().prop_map(Step::Put),
            1 => (0u8..12).prop_map(Step::Delete),
            2 => Just(Step::Sync),
            1 => shape().prop_map(Step::SyncAround),
        ]
    }

    struct World {
        rs: ReplicaSet,
        pods: BTreeMap<String, Arc<Pod>>,
        memos: Memos,
    }

    impl World {
        fn key(name: u8) -> String {
            format!("ns/p{name}")
        }

        /// Applies a change and marks it for the controllers of the old and new pod.
        fn apply(&mut self, key: String, new: Option<Pod>) {
            let old = match new {
                Some(p) => self.pods.insert(key.clone(), Arc::new(p)),
                None => self.pods.remove(&key),
            };
            let new = self.pods.get(&key).cloned();
            for p in [old, new].into_iter().flatten() {
                if let Some(uid) = controller_uid(&p.metadata) {
                    self.memos.mark(uid, &key);
                }
            }
        }

        fn owned(&self) -> Vec<Arc<Pod>> {
            self.pods
                .values()
                .filter(|p| controller_uid(&p.metadata) == Some(UID))
                .cloned()
                .collect()
        }

        /// The counts a walk over every pod the owner controls gives.
        fn walked(&self, look: &Look<'_>) -> Tally {
            let mut walk = Walk::default();
            for p in self.owned() {
                look.owned(&p, &mut walk, None);
            }
            walk.tally
        }

        /// A sync as `reconcile` makes it; `between` runs after the walk, before the memo is
        /// filled.
        fn sync(&mut self, between: impl FnOnce(&mut World)) -> Tally {
            let now = ts("2026-01-01T00:00:10Z");
            let rs = self.rs.clone();
            let look = Look::new(&rs, now);
            let pods = self.pods.clone();
            if let Some(t) = self.memos.tally(UID, 1, &look, |k| pods.get(k).cloned()) {
                return t;
            }
            self.memos.begin(UID, 1);
            let mut walk = Walk::default();
            let mut judged = Judged::default();
            for p in self.owned() {
                look.owned(&p, &mut walk, Some(&mut judged));
            }
            between(self);
            if walk.release.is_empty() {
                self.memos.finish(UID, 1, judged);
            }
            walk.tally
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// After any sequence of changes, a sync's counts from the memo are the counts a walk
        /// over every pod gives, for selectors that imply the template's labels and one that
        /// does not, with changes landing while a walk fills the memo.
        #[test]
        fn remembered_counts_are_the_walked_counts(
            steps in proptest::collection::vec(step(), 1..60),
            narrow in any::<bool>(),
        ) {
            let selector = if narrow {
                serde_json::json!({"matchLabels": {"app": "a"}})
            } else {
                serde_json::json!({"matchLabels": {"app": "a", "tier": "x"}})
            };
            let mut w = World { rs: owner(selector), pods: BTreeMap::new(), memos: Memos::default() };
            let now = ts("2026-01-01T00:00:10Z");
            for s in steps {
                match s {
                    Step::Put(shape) => {
                        let p = make(&w.rs, &shape);
                        w.apply(World::key(shape.name), Some(p));
                    }
                    Step::Delete(name) => w.apply(World::key(name), None),
                    Step::Sync => {
                        let got = w.sync(|_| {});
                        let rs = w.rs.clone();
                        prop_assert_eq!(got, w.walked(&Look::new(&rs, now)));
                    }
                    Step::SyncAround(shape) => {
                        let p = make(&w.rs, &shape);
                        let got = w.sync(|w| w.apply(World::key(shape.name), Some(p)));
                        // The sync counted the pods as they were when it walked them; the
                        // next one must count the change made meanwhile.
                        let _ = got;
                        let next = w.sync(|_| {});
                        let rs = w.rs.clone();
                        prop_assert_eq!(next, w.walked(&Look::new(&rs, now)));
                    }
                }
            }
            let last = w.sync(|_| {});
            let rs = w.rs.clone();
            prop_assert_eq!(last, w.walked(&Look::new(&rs, now)));
        }
    }

    /// A memo serves only the generation it was made for, and only once a walk filled it;
    /// a forgotten one (its owner gone) serves no more.
    #[test]
    fn another_generation_or_a_forgotten_memo_walks_again() {
        let rs = owner(serde_json::json!({"matchLabels": {"app": "a"}}));
        let look = Look::new(&rs, ts("2026-01-01T00:00:10Z"));
        let memos = Memos::default();
        let none = |_: &str| None;
        assert!(memos.tally(UID, 1, &look, none).is_none(), "no memo yet");
        memos.begin(UID, 1);
        assert!(memos.tally(UID, 1, &look, none).is_none(), "not filled yet");
        memos.finish(UID, 1, Judged::default());
        assert_eq!(memos.tally(UID, 1, &look, none), Some(Tally::default()));
        assert!(
            memos.tally(UID, 2, &look, none).is_none(),
            "another generation"
        );
        memos.forget(UID);
        assert!(memos.tally(UID, 1, &look, none).is_none(), "forgotten");
        // A memo begun again is not filled by a walk that started before.
        memos.begin(UID, 1);
        memos.begin(UID, 2);
        memos.finish(UID, 1, Judged::default());
        assert!(memos.tally(UID, 2, &look, none).is_none());
    }
}
