//! Filter and score plugins, one module per upstream plugin of the default profile, as pure
//! functions over a [`PodCtx`] (the incoming pod, compiled once) and a
//! [`NodeInfo`](crate::snapshot::NodeInfo).
//!
//! Filters answer `Ok(())` or a [`Failure`] whose code says whether removing pods (preemption)
//! could help (`Unschedulable`) or not (`UnschedulableAndUnresolvable`), with upstream's
//! reason strings, which the [`FitError`](crate::framework::FitError) counts per node.
//! Scores are 0..=100 after each plugin's normalization, then weighted as upstream's default
//! profile weighs them.

use crate::fasthash::Map;
use std::borrow::Cow;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::selector::{NodeSelectorTerms, NodeTerm, Selector};
use crate::snapshot::{Effect, PairCounts, PodInfo, Taint};

pub mod balanced_allocation;
pub mod inter_pod_affinity;
pub mod node_affinity;
pub mod node_name;
pub mod node_ports;
pub mod node_resources_fit;
pub mod node_unschedulable;
pub mod pod_topology_spread;
pub mod taint_toleration;

/// Upstream's `MaxNodeScore`.
pub const MAX_NODE_SCORE: i64 = 100;

/// Whether preemption could make a failing node fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Removing pods might help.
    Unschedulable,
    /// Removing pods cannot help.
    UnschedulableAndUnresolvable,
}

/// Why a node does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub code: Code,
    pub reasons: Reasons,
}

/// A failure's reasons: nearly always one, held without an allocation (a filter fails on
/// most nodes it sees in a busy cluster, and the reasons are read only if no node fits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reasons {
    One(Cow<'static, str>),
    Many(Vec<Cow<'static, str>>),
}

impl std::ops::Deref for Reasons {
    type Target = [Cow<'static, str>];

    fn deref(&self) -> &Self::Target {
        match self {
            Reasons::One(r) => std::slice::from_ref(r),
            Reasons::Many(v) => v,
        }
    }
}

impl<'a> IntoIterator for &'a Reasons {
    type Item = &'a Cow<'static, str>;
    type IntoIter = std::slice::Iter<'a, Cow<'static, str>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl From<Vec<Cow<'static, str>>> for Reasons {
    fn from(mut v: Vec<Cow<'static, str>>) -> Reasons {
        if v.len() == 1 {
            Reasons::One(v.pop().expect("one"))
        } else {
            Reasons::Many(v)
        }
    }
}

impl PartialEq<Vec<&str>> for Reasons {
    fn eq(&self, other: &Vec<&str>) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a == b)
    }
}

impl Failure {
    pub fn unschedulable(reason: impl Into<Cow<'static, str>>) -> Failure {
        Failure {
            code: Code::Unschedulable,
            reasons: Reasons::One(reason.into()),
        }
    }

    pub fn unresolvable(reason: impl Into<Cow<'static, str>>) -> Failure {
        Failure {
            code: Code::UnschedulableAndUnresolvable,
            reasons: Reasons::One(reason.into()),
        }
    }
}

pub type FilterResult = Result<(), Failure>;

/// A compiled toleration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toleration {
    /// Empty with `exists`: every key.
    pub key: String,
    pub exists: bool,
    pub value: String,
    /// `None`: every effect.
    pub effect: Option<Effect>,
}

impl Toleration {
    /// Upstream's `Toleration.ToleratesTaint`.
    pub fn tolerates(&self, t: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != t.effect) {
            return false;
        }
        if !self.key.is_empty() && self.key != t.key {
            return false;
        }
        if self.key.is_empty() && !self.exists {
            return false;
        }
        self.exists || self.value == t.value
    }
}

/// The incoming pod, compiled once per scheduling attempt.
#[derive(Debug, Clone)]
pub struct PodCtx {
    pub info: Arc<PodInfo>,
    pub tolerations: Vec<Toleration>,
    pub node_selector: Option<Selector>,
    pub required_node_affinity: Option<NodeSelectorTerms>,
    pub preferred_node_affinity: Vec<(i64, NodeTerm)>,
    pub node_name: Option<String>,
    pub preemption_never: bool,
}

impl PodCtx {
    pub fn new(pod: Arc<Pod>) -> PodCtx {
        let info = Arc::new(PodInfo::new(pod));
        let spec = info.pod.spec.as_ref();
        let tolerations = spec
            .and_then(|s| s.tolerations.as_ref())
            .into_iter()
            .flatten()
            .map(|t| Toleration {
                key: t.key.clone().unwrap_or_default(),
                exists: t.operator.as_deref() == Some("Exists"),
                value: t.value.clone().unwrap_or_default(),
                effect: t
                    .effect
                    .as_deref()
                    .filter(|e| !e.is_empty())
                    .map(Effect::parse),
            })
            .collect();
        let node_selector = spec
            .and_then(|s| s.node_selector.as_ref())
            .filter(|m| !m.is_empty())
            .map(Selector::from_map);
        let na = spec
            .and_then(|s| s.affinity.as_ref())
            .and_then(|a| a.node_affinity.as_ref());
        let required_node_affinity = na
            .and_then(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(NodeSelectorTerms::compile);
        let preferred_node_affinity = na
            .and_then(|n| {
                n.preferred_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .into_iter()
            .flatten()
            .filter(|p| p.weight != 0)
            .map(|p| (i64::from(p.weight), NodeTerm::compile(&p.preference)))
            .collect();
        let node_name = spec
            .and_then(|s| s.node_name.clone())
            .filter(|n| !n.is_empty());
        let preemption_never = spec.and_then(|s| s.preemption_policy.as_deref()) == Some("Never");
        PodCtx {
            info,
            tolerations,
            node_selector,
            required_node_affinity,
            preferred_node_affinity,
            node_name,
            preemption_never,
        }
    }

    /// Whether some toleration tolerates the taint.
    pub fn tolerates(&self, t: &Taint) -> bool {
        self.tolerations.iter().any(|tol| tol.tolerates(t))
    }
}

/// Upstream's `DefaultNormalizeScore`: scales to 0..=100 by the maximum; `reverse` turns
/// high raw scores into low ones.
pub fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().max().unwrap_or(0);
    if max == 0 {
        if reverse {
            scores.iter_mut().for_each(|s| *s = MAX_NODE_SCORE);
        }
        return;
    }
    for s in scores.iter_mut() {
        *s = MAX_NODE_SCORE * *s / max;
        if reverse {
            *s = MAX_NODE_SCORE - *s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(k: &str, v: &str, e: Effect) -> Taint {
        Taint {
            key: k.into(),
            value: v.into(),
            effect: e,
        }
    }

    #[test]
    fn toleration_matching() {
        let t = taint("dedicated", "gpu", Effect::NoSchedule);
        let eq = Toleration {
            key: "dedicated".into(),
            exists: false,
            value: "gpu".into(),
            effect: Some(Effect::NoSchedule),
        };
        assert!(eq.tolerates(&t));
        assert!(!eq.tolerates(&taint("dedicated", "cpu", Effect::NoSchedule)));
        assert!(!eq.tolerates(&taint("dedicated", "gpu", Effect::NoExecute)));
        let exists_any_effect = Toleration {
            key: "dedicated".into(),
            exists: true,
            value: String::new(),
            effect: None,
        };
        assert!(exists_any_effect.tolerates(&taint("dedicated", "x", Effect::NoExecute)));
        let everything = Toleration {
            key: String::new(),
            exists: true,
            value: String::new(),
            effect: None,
        };
        assert!(everything.tolerates(&taint("anything", "x", Effect::NoSchedule)));
        let empty_key_equal = Toleration {
            key: String::new(),
            exists: false,
            value: String::new(),
            effect: None,
        };
        assert!(!empty_key_equal.tolerates(&taint("k", "", Effect::NoSchedule)));
    }

    #[test]
    fn normalize() {
        let mut s = vec![0, 5, 10];
        default_normalize(&mut s, false);
        assert_eq!(s, vec![0, 50, 100]);
        let mut s = vec![0, 1, 2];
        default_normalize(&mut s, true);
        assert_eq!(s, vec![100, 50, 0]);
        let mut s = vec![0, 0];
        default_normalize(&mut s, true);
        assert_eq!(s, vec![100, 100]);
    }
}

/// Counts per topology pair: shared layers straight from the snapshot (per topology key, maps
/// of value → pods), plus this attempt's own adjustments (key → value → count).
#[derive(Debug, Clone, Default)]
pub struct TopoCounts {
    base: Vec<(String, Vec<Arc<PairCounts>>)>,
    delta: Map<String, Map<String, i64>>,
}

impl TopoCounts {
    /// Adds a layer of counts kept by the snapshot.
    pub fn add_base(&mut self, key: &str, counts: Arc<PairCounts>) {
        if counts.is_empty() {
            return;
        }
        match self.base.iter_mut().find(|(k, _)| k == key) {
            Some((_, layers)) => layers.push(counts),
            None => self.base.push((key.to_string(), vec![counts])),
        }
    }

    pub fn add(&mut self, key: &str, value: &str, delta: i64) {
        let m = match self.delta.get_mut(key) {
            Some(m) => m,
            None => self.delta.entry(key.to_string()).or_default(),
        };
        match m.get_mut(value) {
            Some(c) => *c += delta,
            None => {
                m.insert(value.to_string(), delta);
            }
        }
    }

    fn layers_sum(layers: &[Arc<PairCounts>], value: &str) -> i64 {
        layers
            .iter()
            .filter_map(|m| m.get(value))
            .map(|c| i64::from(c.all))
            .sum()
    }

    fn delta_of(&self, key: &str, value: &str) -> i64 {
        self.delta
            .get(key)
            .and_then(|m| m.get(value))
            .copied()
            .unwrap_or(0)
    }

    pub fn get(&self, key: &str, value: &str) -> i64 {
        let base = self
            .base
            .iter()
            .find(|(k, _)| k == key)
            .map_or(0, |(_, layers)| Self::layers_sum(layers, value));
        base + self.delta_of(key, value)
    }

    pub fn contains(&self, key: &str, value: &str) -> bool {
        self.delta.get(key).is_some_and(|m| m.contains_key(value))
            || self
                .base
                .iter()
                .any(|(k, ls)| k == key && ls.iter().any(|m| m.contains_key(value)))
    }

    /// The snapshot's layers, when they are all of `key` and this attempt adjusted nothing.
    pub fn only_layers(&self, key: &str) -> Option<&[Arc<PairCounts>]> {
        if !self.delta.is_empty() {
            return None;
        }
        match self.base.as_slice() {
            [] => Some(&[]),
            [(k, layers)] if k == key => Some(layers),
            _ => None,
        }
    }

    /// Whether any pair has a positive count.
    pub fn any_positive(&self) -> bool {
        let delta = self
            .delta
            .iter()
            .any(|(k, m)| m.iter().any(|(v, c)| *c > 0 && self.get(k, v) > 0));
        delta
            || self
                .base
                .iter()
                .any(|(k, layers)| layers.iter().any(|m| m.keys().any(|v| self.get(k, v) > 0)))
    }

    /// The count of each topology key with counts at the node's value of that key.
    fn node_counts<'a>(
        &'a self,
        node: &'a crate::snapshot::NodeInfo,
    ) -> impl Iterator<Item = i64> + 'a {
        let base = self.base.iter().filter_map(move |(k, layers)| {
            let v = node.label(k)?;
            Some(Self::layers_sum(layers, v) + self.delta_of(k, v))
        });
        let delta = self
            .delta
            .iter()
            .filter(|(k, _)| !self.base.iter().any(|(o, _)| o == *k))
            .filter_map(move |(k, m)| node.label(k).and_then(|v| m.get(v)).copied());
        base.chain(delta)
    }

    /// Whether any of the node's labels names a pair with a positive count.
    pub fn node_hits(&self, node: &crate::snapshot::NodeInfo) -> bool {
        self.node_counts(node).any(|c| c > 0)
    }

    /// The sum of the counts of the pairs the node's labels name.
    pub fn node_sum(&self, node: &crate::snapshot::NodeInfo) -> i64 {
        self.node_counts(node).sum()
    }
}
