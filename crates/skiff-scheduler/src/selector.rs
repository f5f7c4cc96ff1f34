//! Label and node selectors compiled once per pod, following upstream's
//! `metav1.LabelSelectorAsSelector` (a null selector selects nothing, an empty one everything)
//! and `corev1.NodeSelector` matching (terms are ORed, the requirements of a term ANDed, an
//! empty term matches no node; `Gt`/`Lt` compare integers; `matchFields` knows
//! `metadata.name`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// The empty label map used where an object has none.
pub(crate) static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

/// A selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl Op {
    fn parse(s: &str, numeric: bool) -> Option<Op> {
        Some(match s {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" if numeric => Op::Gt,
            "Lt" if numeric => Op::Lt,
            _ => return None,
        })
    }
}

/// One requirement: `key op values`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    /// Whether a label value (absent: `None`) satisfies the requirement.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        match self.op {
            Op::In => value.is_some_and(|v| self.values.iter().any(|x| x == v)),
            Op::NotIn => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (value, self.values.first()) else {
                    return false;
                };
                let (Ok(v), Ok(bound)) = (v.parse::<i64>(), bound.parse::<i64>()) else {
                    return false;
                };
                if self.op == Op::Gt {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.key).map(String::as_str))
    }
}

/// A compiled label selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Selector {
    nothing: bool,
    reqs: Vec<Requirement>,
}

impl Selector {
    pub fn everything() -> Selector {
        Selector {
            nothing: false,
            reqs: Vec::new(),
        }
    }

    pub fn nothing() -> Selector {
        Selector {
            nothing: true,
            reqs: Vec::new(),
        }
    }

    /// Compiles a `LabelSelector`; `None` selects nothing. An invalid operator makes a
    /// selector that selects nothing (upstream refuses such a pod at validation).
    pub fn from_label_selector(sel: Option<&LabelSelector>) -> Selector {
        let Some(sel) = sel else {
            return Selector::nothing();
        };
        let mut reqs = Vec::new();
        for (k, v) in sel.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::In,
                values: vec![v.clone()],
            });
        }
        for e in sel.match_expressions.iter().flatten() {
            let Some(op) = Op::parse(&e.operator, false) else {
                return Selector::nothing();
            };
            reqs.push(Requirement {
                key: e.key.clone(),
                op,
                values: e.values.clone().unwrap_or_default(),
            });
        }
        Selector {
            nothing: false,
            reqs,
        }
    }

    /// A selector requiring every label of `labels` (a `nodeSelector` map).
    pub fn from_map(labels: &BTreeMap<String, String>) -> Selector {
        Selector {
            nothing: false,
            reqs: labels
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Op::In,
                    values: vec![v.clone()],
                })
                .collect(),
        }
    }

    /// Adds a requirement (`matchLabelKeys` merging).
    pub fn push(&mut self, r: Requirement) {
        self.reqs.push(r);
    }

    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    pub fn is_everything(&self) -> bool {
        !self.nothing && self.reqs.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing && self.reqs.iter().all(|r| r.matches(labels))
    }

    /// A `key=value` every selected object must carry, if the selector has one: lets callers
    /// look selected pods up in an index instead of scanning.
    pub fn equality_hint(&self) -> Option<(&str, &str)> {
        self.reqs
            .iter()
            .find(|r| r.op == Op::In && r.values.len() == 1)
            .map(|r| (r.key.as_str(), r.values[0].as_str()))
    }

    /// The `key=value` when that is the selector's only requirement: the pods it selects are
    /// exactly the pods with that label.
    pub fn single_equality(&self) -> Option<(&str, &str)> {
        match self.reqs.as_slice() {
            [r] if !self.nothing && r.op == Op::In && r.values.len() == 1 => {
                Some((r.key.as_str(), r.values[0].as_str()))
            }
            _ => None,
        }
    }
}

/// One compiled `NodeSelectorTerm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeTerm {
    exprs: Vec<Requirement>,
    fields: Vec<Requirement>,
    /// A term with an unparseable requirement (or none at all) matches no node.
    never: bool,
}

fn compile_reqs(reqs: Option<&Vec<NodeSelectorRequirement>>) -> Option<Vec<Requirement>> {
    let mut out = Vec::new();
    for r in reqs.into_iter().flatten() {
        let op = Op::parse(&r.operator, true)?;
        out.push(Requirement {
            key: r.key.clone(),
            op,
            values: r.values.clone().unwrap_or_default(),
        });
    }
    Some(out)
}

impl NodeTerm {
    pub fn compile(t: &NodeSelectorTerm) -> NodeTerm {
        let exprs = compile_reqs(t.match_expressions.as_ref());
        let fields = compile_reqs(t.match_fields.as_ref());
        let fields_ok = fields
            .as_ref()
            .is_some_and(|f| f.iter().all(|r| r.key == "metadata.name"));
        match (exprs, fields) {
            (Some(exprs), Some(fields)) if fields_ok => NodeTerm {
                never: exprs.is_empty() && fields.is_empty(),
                exprs,
                fields,
            },
            _ => NodeTerm {
                exprs: Vec::new(),
                fields: Vec::new(),
                never: true,
            },
        }
    }

    pub fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        !self.never
            && self.exprs.iter().all(|r| r.matches(labels))
            && self.fields.iter().all(|r| r.matches_value(Some(node_name)))
    }
}

/// A compiled required `NodeSelector`: any term matching is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSelectorTerms(Vec<NodeTerm>);

impl NodeSelectorTerms {
    pub fn compile(s: &NodeSelector) -> NodeSelectorTerms {
        NodeSelectorTerms(
            s.node_selector_terms
                .iter()
                .map(NodeTerm::compile)
                .collect(),
        )
    }

    pub fn matches(&self, node_name: &str, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().any(|t| t.matches(node_name, labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn null_selects_nothing_and_empty_everything() {
        let l = labels(&[("app", "web")]);
        assert!(!Selector::from_label_selector(None).matches(&l));
        assert!(Selector::from_label_selector(Some(&LabelSelector::default())).matches(&l));
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "DoesNotExist".into(),
                values: None,
            }]),
        };
        let s = Selector::from_label_selector(Some(&sel));
        assert!(s.matches(&l));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "x")])));
        assert!(!s.matches(&labels(&[("app", "db")])));
    }

    #[test]
    fn node_operators() {
        let l = labels(&[("zone", "a"), ("cores", "8")]);
        let m = |r: NodeSelectorRequirement| {
            NodeTerm::compile(&NodeSelectorTerm {
                match_expressions: Some(vec![r]),
                match_fields: None,
            })
            .matches("n1", &l)
        };
        assert!(m(req("zone", "In", &["a", "b"])));
        assert!(!m(req("zone", "NotIn", &["a"])));
        assert!(m(req("missing", "NotIn", &["a"])));
        assert!(m(req("zone", "Exists", &[])));
        assert!(m(req("missing", "DoesNotExist", &[])));
        assert!(m(req("cores", "Gt", &["4"])));
        assert!(!m(req("cores", "Lt", &["4"])));
        assert!(
            !m(req("zone", "Gt", &["4"])),
            "non-integer label never matches"
        );
        assert!(!m(req("zone", "Bogus", &["a"])));
    }

    #[test]
    fn match_fields_name_and_empty_term() {
        let l = BTreeMap::new();
        let t = NodeTerm::compile(&NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
        });
        assert!(t.matches("n1", &l));
        assert!(!t.matches("n2", &l));
        assert!(!NodeTerm::compile(&NodeSelectorTerm::default()).matches("n1", &l));
    }
}
