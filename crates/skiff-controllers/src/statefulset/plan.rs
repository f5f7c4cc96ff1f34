//! The StatefulSet controller's decisions for one sync, as a pure function of a snapshot
//! (upstream's `updateStatefulSet`, `processReplica`, `processCondemned`, the rolling update
//! and `updateWithMaxUnavailable`), and the status counts.
//!
//! Ordinals in range are visited in increasing order: a failed or succeeded pod is deleted
//! (its replacement comes once it is gone, so two pods never share an ordinal), a missing pod
//! is created (after its claims; not while a claim still belongs to a previous pod). With
//! OrderedReady the sync stops at the first pod it created, or that is terminating, not
//! Running and Ready, or not yet available; scale-down then deletes the highest ordinal first,
//! one at a time, and only while every lower pod is healthy. Parallel does all of it at once.
//! RollingUpdate replaces pods at or above the partition from the highest ordinal down: one
//! at a time, each only after the ones above it are healthy, or with maxUnavailable as many
//! at a time as the unavailable budget allows. OnDelete replaces nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;

use crate::history::REVISION_HASH_LABEL;
use crate::pods;

/// Which revision a new pod is created at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Current,
    Update,
}

/// Why a pod is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// It failed or succeeded: it is replaced.
    Finished,
    /// Its ordinal is beyond the replicas.
    ScaleDown,
    /// It runs an old revision.
    Update,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Create {
        ordinal: i32,
        at: At,
    },
    Delete {
        ordinal: i32,
        name: String,
        why: Why,
    },
}

/// The update strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    OnDelete,
    RollingUpdate {
        partition: i32,
        /// Scaled already; `None`: upstream's default one-at-a-time path.
        max_unavailable: Option<i32>,
    },
}

/// A snapshot of one StatefulSet.
pub struct Input<'a> {
    pub start: i32,
    pub replicas: i32,
    /// OrderedReady (not Parallel).
    pub monotonic: bool,
    pub strategy: Strategy,
    /// The set's pods by ordinal.
    pub pods: &'a BTreeMap<i32, Arc<Pod>>,
    /// Ordinals whose claims still belong to an earlier pod.
    pub stale_claims: &'a HashSet<i32>,
    pub update_revision: &'a str,
    pub min_ready_seconds: i32,
    pub now: Timestamp,
}

pub fn revision_of(p: &Pod) -> &str {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_HASH_LABEL))
        .map(String::as_str)
        .unwrap_or("")
}

fn terminating(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_some()
}

fn running_and_ready(p: &Pod) -> bool {
    pods::phase(p) == "Running" && pods::is_ready(p)
}

fn healthy(p: &Pod) -> bool {
    running_and_ready(p) && !terminating(p)
}

impl Input<'_> {
    fn available(&self, p: &Pod) -> bool {
        running_and_ready(p) && pods::is_available(p, self.min_ready_seconds, self.now)
    }

    fn end(&self) -> i32 {
        self.start + self.replicas
    }

    fn name(p: &Pod) -> String {
        p.metadata.name.clone().unwrap_or_default()
    }
}

/// The steps of one sync, in order; the caller stops at the first that fails.
pub fn plan(i: &Input) -> Vec<Step> {
    let mut steps = Vec::new();
    let condemned: Vec<(i32, &Arc<Pod>)> = i
        .pods
        .iter()
        .rev()
        .filter(|(o, _)| **o < i.start || **o >= i.end())
        .map(|(o, p)| (*o, p))
        .collect();
    // The first unhealthy pod: lowest ordinal in range, then lowest condemned.
    let first_unhealthy = (i.start..i.end())
        .find(|o| i.pods.get(o).is_some_and(|p| !healthy(p)))
        .or_else(|| {
            condemned
                .iter()
                .rev()
                .find(|(_, p)| !healthy(p))
                .map(|(o, _)| *o)
        });

    for ord in i.start..i.end() {
        match i.pods.get(&ord) {
            None => {
                if i.stale_claims.contains(&ord) {
                    if i.monotonic {
                        return steps;
                    }
                    continue;
                }
                let at = match i.strategy {
                    Strategy::RollingUpdate { partition, .. } if ord < i.start + partition => {
                        At::Current
                    }
                    _ => At::Update,
                };
                steps.push(Step::Create { ordinal: ord, at });
                if i.monotonic {
                    return steps;
                }
            }
            Some(p) => {
                if matches!(pods::phase(p), "Failed" | "Succeeded") {
                    if !terminating(p) {
                        steps.push(Step::Delete {
                            ordinal: ord,
                            name: Input::name(p),
                            why: Why::Finished,
                        });
                    }
                    if i.monotonic {
                        return steps;
                    }
                    continue;
                }
                if i.monotonic && (terminating(p) || !running_and_ready(p) || !i.available(p)) {
                    return steps;
                }
            }
        }
    }

    for (ord, p) in &condemned {
        if terminating(p) {
            if i.monotonic {
                return steps;
            }
            continue;
        }
        if i.monotonic && Some(*ord) != first_unhealthy && !(healthy(p) && i.available(p)) {
            return steps;
        }
        steps.push(Step::Delete {
            ordinal: *ord,
            name: Input::name(p),
            why: Why::ScaleDown,
        });
        if i.monotonic {
            return steps;
        }
    }

    let Strategy::RollingUpdate {
        partition,
        max_unavailable,
    } = i.strategy
    else {
        return steps;
    };
    let update_min = i.start + partition.max(0);
    let outdated = |p: &Pod| revision_of(p) != i.update_revision && !terminating(p);
    match max_unavailable {
        None => {
            for target in (update_min..i.end()).rev() {
                let Some(p) = i.pods.get(&target) else {
                    return steps;
                };
                if outdated(p) {
                    steps.push(Step::Delete {
                        ordinal: target,
                        name: Input::name(p),
                        why: Why::Update,
                    });
                    return steps;
                }
                if !healthy(p) {
                    return steps;
                }
            }
        }
        Some(max) => {
            let max = max.max(1);
            let unavailable = (i.start..i.end())
                .filter(|o| {
                    i.pods
                        .get(o)
                        .is_none_or(|p| terminating(p) || !i.available(p))
                })
                .count() as i32;
            let mut room = max - unavailable;
            for target in (update_min..i.end()).rev() {
                if room <= 0 {
                    break;
                }
                if let Some(p) = i.pods.get(&target) {
                    if outdated(p) {
                        steps.push(Step::Delete {
                            ordinal: target,
                            name: Input::name(p),
                            why: Why::Update,
                        });
                        room -= 1;
                    }
                }
            }
        }
    }
    steps
}

/// Status counts (upstream's `computeReplicaStatus` and `completeRollingUpdate`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub replicas: i32,
    pub ready: i32,
    pub available: i32,
    pub current: i32,
    pub updated: i32,
    pub current_revision: String,
}

pub fn counts(
    pods: &BTreeMap<i32, Arc<Pod>>,
    current_revision: &str,
    update_revision: &str,
    rolling: bool,
    min_ready_seconds: i32,
    now: Timestamp,
) -> Counts {
    let mut c = Counts {
        current_revision: current_revision.to_string(),
        ..Default::default()
    };
    for p in pods.values() {
        let created = !pods::phase(p).is_empty();
        if created {
            c.replicas += 1;
        }
        if running_and_ready(p) {
            c.ready += 1;
            if pods::is_available(p, min_ready_seconds, now) {
                c.available += 1;
            }
        }
        if created && !terminating(p) {
            let r = revision_of(p);
            if r == current_revision {
                c.current += 1;
            }
            if r == update_revision {
                c.updated += 1;
            }
        }
    }
    if rolling && c.updated == c.replicas && c.ready == c.replicas {
        c.current = c.updated;
        c.current_revision = update_revision.to_string();
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::tests::{pod, ts};

    const T0: &str = "2026-01-01T00:00:00Z";

    /// Pod `web-<ord>` at `rev`: "ready", "pending", "terminating" or "failed".
    fn p(ord: i32, rev: &str, state: &str) -> (i32, Arc<Pod>) {
        let mut x = match state {
            "ready" | "terminating" => pod(&format!("web-{ord}"), "n", "Running", Some(T0), T0),
            "failed" => pod(&format!("web-{ord}"), "n", "Failed", None, T0),
            _ => pod(&format!("web-{ord}"), "n", "Pending", None, T0),
        };
        if state == "terminating" {
            x.metadata.deletion_timestamp =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts(T0)));
        }
        x.metadata.labels = Some([(REVISION_HASH_LABEL.to_string(), rev.to_string())].into());
        (ord, Arc::new(x))
    }

    fn run(
        replicas: i32,
        monotonic: bool,
        strategy: Strategy,
        pods: Vec<(i32, Arc<Pod>)>,
    ) -> Vec<Step> {
        let pods: BTreeMap<i32, Arc<Pod>> = pods.into_iter().collect();
        plan(&Input {
            start: 0,
            replicas,
            monotonic,
            strategy,
            pods: &pods,
            stale_claims: &HashSet::new(),
            update_revision: "u",
            min_ready_seconds: 0,
            now: ts("2026-01-01T00:01:00Z"),
        })
    }

    const RU: Strategy = Strategy::RollingUpdate {
        partition: 0,
        max_unavailable: None,
    };

    fn create(ordinal: i32) -> Step {
        Step::Create {
            ordinal,
            at: At::Update,
        }
    }

    fn delete(ordinal: i32, why: Why) -> Step {
        Step::Delete {
            ordinal,
            name: format!("web-{ordinal}"),
            why,
        }
    }

    #[test]
    fn ordered_ready_creates_one_at_a_time() {
        assert_eq!(run(3, true, RU, vec![]), vec![create(0)]);
        // web-0 pending: wait.
        assert!(run(3, true, RU, vec![p(0, "u", "pending")]).is_empty());
        // web-0 ready: web-1 next.
        assert_eq!(run(3, true, RU, vec![p(0, "u", "ready")]), vec![create(1)]);
        // A gap at web-0 (deleted) is filled first.
        assert_eq!(run(3, true, RU, vec![p(1, "u", "ready")]), vec![create(0)]);
        // Parallel creates everything missing at once.
        assert_eq!(
            run(3, false, RU, vec![p(1, "u", "pending")]),
            vec![create(0), create(2)]
        );
    }

    #[test]
    fn a_terminating_pod_is_never_doubled() {
        // web-1 is terminating: no new web-1 (it is still there), and OrderedReady waits.
        assert!(run(
            3,
            true,
            RU,
            vec![p(0, "u", "ready"), p(1, "u", "terminating")]
        )
        .is_empty());
        assert_eq!(
            run(
                3,
                false,
                RU,
                vec![p(0, "u", "ready"), p(1, "u", "terminating")]
            ),
            vec![create(2)]
        );
        // A failed pod is deleted first; its replacement comes once it is gone.
        assert_eq!(
            run(2, true, RU, vec![p(0, "u", "failed"), p(1, "u", "ready")]),
            vec![delete(0, Why::Finished)]
        );
    }

    #[test]
    fn scale_down_goes_from_the_top_one_at_a_time() {
        let all = || vec![p(0, "u", "ready"), p(1, "u", "ready"), p(2, "u", "ready")];
        assert_eq!(run(1, true, RU, all()), vec![delete(2, Why::ScaleDown)]);
        assert_eq!(
            run(1, false, RU, all()),
            vec![delete(2, Why::ScaleDown), delete(1, Why::ScaleDown)]
        );
        // While web-2 terminates, web-1 waits.
        assert!(run(
            1,
            true,
            RU,
            vec![
                p(0, "u", "ready"),
                p(1, "u", "ready"),
                p(2, "u", "terminating")
            ]
        )
        .is_empty());
        // An unhealthy pod in range blocks OrderedReady scale-down.
        assert!(run(1, true, RU, vec![p(0, "u", "pending"), p(1, "u", "ready")]).is_empty());
        // The first unhealthy pod itself may go.
        assert_eq!(
            run(1, true, RU, vec![p(0, "u", "ready"), p(1, "u", "pending")]),
            vec![delete(1, Why::ScaleDown)]
        );
    }

    #[test]
    fn rolling_update_from_the_top_down_to_the_partition() {
        let old = || vec![p(0, "c", "ready"), p(1, "c", "ready"), p(2, "c", "ready")];
        assert_eq!(run(3, true, RU, old()), vec![delete(2, Why::Update)]);
        // web-2 updated but not ready yet: wait.
        assert!(run(
            3,
            true,
            RU,
            vec![p(0, "c", "ready"), p(1, "c", "ready"), p(2, "u", "pending")]
        )
        .is_empty());
        assert_eq!(
            run(
                3,
                true,
                RU,
                vec![p(0, "c", "ready"), p(1, "c", "ready"), p(2, "u", "ready")]
            ),
            vec![delete(1, Why::Update)]
        );
        // Partition 2: web-0 and web-1 stay at the current revision.
        let part = Strategy::RollingUpdate {
            partition: 2,
            max_unavailable: None,
        };
        assert!(run(
            3,
            true,
            part,
            vec![p(0, "c", "ready"), p(1, "c", "ready"), p(2, "u", "ready")]
        )
        .is_empty());
        // A missing pod below the partition is recreated at the current revision.
        assert_eq!(
            run(3, true, part, vec![p(1, "c", "ready"), p(2, "u", "ready")]),
            vec![Step::Create {
                ordinal: 0,
                at: At::Current
            }]
        );
        // OnDelete replaces nothing.
        assert!(run(3, true, Strategy::OnDelete, old()).is_empty());
    }

    #[test]
    fn max_unavailable_replaces_several_at_once() {
        let mu = |n| Strategy::RollingUpdate {
            partition: 0,
            max_unavailable: Some(n),
        };
        let old = || {
            vec![
                p(0, "c", "ready"),
                p(1, "c", "ready"),
                p(2, "c", "ready"),
                p(3, "c", "ready"),
            ]
        };
        assert_eq!(
            run(4, false, mu(2), old()),
            vec![delete(3, Why::Update), delete(2, Why::Update)]
        );
        // One already unavailable: one more may go.
        assert_eq!(
            run(
                4,
                false,
                mu(2),
                vec![
                    p(0, "c", "ready"),
                    p(1, "c", "ready"),
                    p(2, "c", "ready"),
                    p(3, "u", "pending")
                ]
            ),
            vec![delete(2, Why::Update)]
        );
    }

    #[test]
    fn status_counts_and_rollout_completion() {
        let pods: BTreeMap<i32, Arc<Pod>> =
            [p(0, "c", "ready"), p(1, "u", "ready"), p(2, "u", "pending")]
                .into_iter()
                .collect();
        let now = ts("2026-01-01T00:01:00Z");
        let c = counts(&pods, "c", "u", true, 0, now);
        assert_eq!(
            c,
            Counts {
                replicas: 3,
                ready: 2,
                available: 2,
                current: 1,
                updated: 2,
                current_revision: "c".into()
            }
        );
        let done: BTreeMap<i32, Arc<Pod>> = [p(0, "u", "ready"), p(1, "u", "ready")]
            .into_iter()
            .collect();
        let c = counts(&done, "c", "u", true, 0, now);
        assert_eq!((c.current, c.current_revision.as_str()), (2, "u"));
        let c = counts(&done, "c", "u", false, 0, now);
        assert_eq!(
            c.current_revision, "c",
            "OnDelete keeps the current revision"
        );
    }
}
