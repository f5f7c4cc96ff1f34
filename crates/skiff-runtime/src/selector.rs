//! Label selectors on typed objects (`metav1.LabelSelector` against a label map), with
//! upstream's rules: `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist)
//! all must hold; an empty selector matches everything. Controllers treat a missing selector
//! as matching nothing, which callers decide before calling.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

/// Whether `labels` satisfy `sel`. An unknown operator matches nothing.
pub fn matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k));
    if let Some(ml) = &sel.match_labels {
        if ml.iter().any(|(k, v)| get(k) != Some(v)) {
            return false;
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let have = get(&e.key);
        let values = e.values.as_deref().unwrap_or(&[]);
        let ok = match e.operator.as_str() {
            "In" => have.is_some_and(|v| values.contains(v)),
            "NotIn" => have.is_none_or(|v| !values.contains(v)),
            "Exists" => have.is_some(),
            "DoesNotExist" => have.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `sel` selects nothing at all (no requirements): upstream's controllers refuse such
/// a selector for their pods, and Services with an empty selector select none.
pub fn is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.as_ref().is_none_or(|m| m.is_empty())
}

/// A map selector (a Service's or ReplicationController's `selector`) against labels; an
/// empty map matches everything.
pub fn matches_map(
    sel: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    sel.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// A selector made ready to test many label maps, as a controller does for each of its pods
/// on every sync: the required pairs are borrowed from the selector once, in key order, so a
/// test walks the pod's labels once and compares strings for equality only (a length check
/// first), and the operators are read once. It answers as [`matches`] (or [`matches_map`]).
#[derive(Debug, Clone)]
pub struct Matcher<'a> {
    /// `false`: matches nothing, whatever the requirements below.
    any: bool,
    /// Required key and value, in ascending key order.
    pairs: Vec<(&'a str, &'a str)>,
    exprs: Vec<Expr<'a>>,
}

#[derive(Debug, Clone, Copy)]
enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
}

#[derive(Debug, Clone)]
struct Expr<'a> {
    key: &'a str,
    op: Op,
    values: &'a [String],
}

impl<'a> Matcher<'a> {
    /// As [`matches`] with `sel` (an empty selector matches everything).
    pub fn new(sel: &'a LabelSelector) -> Self {
        let mut m = Matcher::from_map_opt(sel.match_labels.as_ref());
        for e in sel.match_expressions.iter().flatten() {
            let op = match e.operator.as_str() {
                "In" => Op::In,
                "NotIn" => Op::NotIn,
                "Exists" => Op::Exists,
                "DoesNotExist" => Op::DoesNotExist,
                // One requirement that never holds: the whole selector never holds.
                _ => return Matcher::nothing(),
            };
            m.exprs.push(Expr {
                key: &e.key,
                op,
                values: e.values.as_deref().unwrap_or(&[]),
            });
        }
        m
    }

    /// As [`matches_map`] with `sel` (an empty map matches everything).
    pub fn from_map(sel: &'a BTreeMap<String, String>) -> Self {
        Matcher::from_map_opt(Some(sel))
    }

    fn from_map_opt(sel: Option<&'a BTreeMap<String, String>>) -> Self {
        Matcher {
            any: true,
            // A BTreeMap iterates in key order, which `matches` relies on.
            pairs: sel
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
            exprs: Vec::new(),
        }
    }

    /// Matches any labels (as an empty selector does).
    pub fn everything() -> Self {
        Matcher::from_map_opt(None)
    }

    /// Matches no labels at all (a controller's missing or empty selector).
    pub fn nothing() -> Self {
        Matcher {
            any: false,
            pairs: Vec::new(),
            exprs: Vec::new(),
        }
    }

    /// Whether every label map `self` matches is matched by `other` too, as far as their
    /// pairs tell: `other` requires nothing but pairs `self` requires. (A controller whose
    /// template's labels are all in its selector knows a selected pod is fully labeled.)
    pub fn implies(&self, other: &Matcher<'_>) -> bool {
        !self.any
            || (other.any
                && other.exprs.is_empty()
                && other.pairs.iter().all(|p| self.pairs.contains(p)))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        if !self.any {
            return false;
        }
        if !self.pairs.is_empty() {
            let Some(have) = labels else {
                return false;
            };
            // Both sides are in ascending key order, so each required key, if present, lies
            // after the one before it: one walk over the labels finds them all, and a key
            // not found before the labels run out is missing.
            let mut rest = have.iter();
            for &(k, v) in &self.pairs {
                match rest.find(|(hk, _)| same(hk, k)) {
                    Some((_, hv)) if same(hv, v) => {}
                    _ => return false,
                }
            }
        }
        self.exprs.iter().all(|e| {
            let have = labels.and_then(|l| l.get(e.key));
            match e.op {
                Op::In => have.is_some_and(|v| e.values.contains(v)),
                Op::NotIn => have.is_none_or(|v| !e.values.contains(v)),
                Op::Exists => have.is_some(),
                Op::DoesNotExist => have.is_none(),
            }
        })
    }
}

/// Whether two strings are equal: lengths first, then, for strings of up to 32 bytes (labels
/// mostly are), the first and the last 4, 8 or 16 bytes as one word each (the two windows
/// overlap when the string is shorter than both), in place of the C library's `memcmp`, which
/// `==` calls: a third of a match's instructions went there.
#[inline]
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w4 = |s: &[u8]| u32::from_ne_bytes(s[..4].try_into().unwrap_or_default());
    let w8 = |s: &[u8]| u64::from_ne_bytes(s[..8].try_into().unwrap_or_default());
    let w16 = |s: &[u8]| u128::from_ne_bytes(s[..16].try_into().unwrap_or_default());
    match n {
        0 => true,
        // The first, middle and last bytes are all the bytes there are.
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => w4(a) == w4(b) && w4(&a[n - 4..]) == w4(&b[n - 4..]),
        8..=16 => w8(a) == w8(b) && w8(&a[n - 8..]) == w8(&b[n - 8..]),
        17..=32 => w16(a) == w16(b) && w16(&a[n - 16..]) == w16(&b[n - 16..]),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn l(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(l(&[("app", "web")])),
            match_expressions: Some(vec![
                req("tier", "In", &["a", "b"]),
                req("canary", "DoesNotExist", &[]),
                req("env", "NotIn", &["prod"]),
            ]),
        };
        assert!(matches(&sel, Some(&l(&[("app", "web"), ("tier", "a")]))));
        assert!(!matches(&sel, Some(&l(&[("app", "web"), ("tier", "c")]))));
        assert!(!matches(
            &sel,
            Some(&l(&[("app", "web"), ("tier", "a"), ("canary", "1")]))
        ));
        assert!(!matches(
            &sel,
            Some(&l(&[("app", "web"), ("tier", "a"), ("env", "prod")]))
        ));
        assert!(!matches(&sel, Some(&l(&[("tier", "a")]))));
        assert!(!matches(&sel, None));
        let all = LabelSelector::default();
        assert!(is_empty(&all));
        assert!(matches(&all, None));
        let exists = LabelSelector {
            match_expressions: Some(vec![req("x", "Exists", &[]), req("y", "Bogus", &[])]),
            ..Default::default()
        };
        assert!(!matches(&exists, Some(&l(&[("x", "1"), ("y", "1")]))));
        assert!(matches_map(
            &l(&[("a", "1")]),
            Some(&l(&[("a", "1"), ("b", "2")]))
        ));
        assert!(!matches_map(&l(&[("a", "1")]), Some(&l(&[("a", "2")]))));
        // No labels at all: only requirements of absence hold.
        let absent = LabelSelector {
            match_expressions: Some(vec![
                req("canary", "DoesNotExist", &[]),
                req("env", "NotIn", &["prod"]),
            ]),
            ..Default::default()
        };
        assert!(matches(&absent, None));
        assert!(matches(&absent, Some(&l(&[]))));
        assert!(matches_map(&l(&[]), None));
        assert!(!matches_map(&l(&[("a", "1")]), None));
    }

    /// The prepared matcher answers as `matches` and `matches_map` for every pair of a set of
    /// selectors and label maps.
    #[test]
    fn matcher_agrees_with_matches() {
        let expr = |reqs: Vec<LabelSelectorRequirement>| LabelSelector {
            match_expressions: Some(reqs),
            ..Default::default()
        };
        let both = |pairs: &[(&str, &str)], reqs: Vec<LabelSelectorRequirement>| LabelSelector {
            match_labels: Some(l(pairs)),
            match_expressions: Some(reqs),
        };
        let labels_only = |pairs: &[(&str, &str)]| LabelSelector {
            match_labels: Some(l(pairs)),
            ..Default::default()
        };
        let selectors = vec![
            LabelSelector::default(),
            labels_only(&[]),
            expr(vec![]),
            labels_only(&[("app", "web")]),
            labels_only(&[("app", "web"), ("pod-template-hash", "abc")]),
            labels_only(&[("a", "1"), ("m", "2"), ("z", "3")]),
            labels_only(&[("zz", "1")]),
            labels_only(&[("app", "")]),
            expr(vec![req("tier", "In", &["a", "b"])]),
            expr(vec![req("tier", "NotIn", &["a"])]),
            expr(vec![req("tier", "Exists", &[])]),
            expr(vec![req("tier", "DoesNotExist", &[])]),
            expr(vec![req("tier", "In", &[])]),
            expr(vec![req("tier", "Exists", &[]), req("tier", "Bogus", &[])]),
            both(
                &[("app", "web")],
                vec![req("tier", "In", &["a"]), req("env", "NotIn", &["prod"])],
            ),
            both(&[("app", "web")], vec![req("app", "DoesNotExist", &[])]),
        ];
        let label_sets: Vec<Option<BTreeMap<String, String>>> = vec![
            None,
            Some(l(&[])),
            Some(l(&[("app", "web")])),
            Some(l(&[("app", "api")])),
            Some(l(&[("app", "")])),
            Some(l(&[("app", "web"), ("pod-template-hash", "abc")])),
            Some(l(&[("app", "web"), ("pod-template-hash", "abd")])),
            Some(l(&[
                ("app", "web"),
                ("pod-template-hash", "abc"),
                ("x", "1"),
            ])),
            Some(l(&[("0", "0"), ("app", "web"), ("b", "1"), ("tier", "a")])),
            Some(l(&[("app", "web"), ("tier", "b"), ("env", "prod")])),
            Some(l(&[("a", "1"), ("m", "2"), ("z", "3")])),
            Some(l(&[("a", "1"), ("m", "2")])),
            Some(l(&[
                ("a", "1"),
                ("b", "9"),
                ("m", "2"),
                ("y", "0"),
                ("z", "3"),
            ])),
            Some(l(&[("m", "2"), ("z", "3")])),
            Some(l(&[("z", "1"), ("zz", "1")])),
            Some(l(&[("zz", "2")])),
            Some(l(&[("tier", "c")])),
        ];
        for sel in &selectors {
            let m = Matcher::new(sel);
            for labels in &label_sets {
                assert_eq!(
                    m.matches(labels.as_ref()),
                    matches(sel, labels.as_ref()),
                    "{sel:?} on {labels:?}"
                );
            }
            if let Some(map) = sel.match_labels.as_ref() {
                let m = Matcher::from_map(map);
                for labels in &label_sets {
                    assert_eq!(
                        m.matches(labels.as_ref()),
                        matches_map(map, labels.as_ref()),
                        "{map:?} on {labels:?}"
                    );
                }
            }
        }
        for labels in &label_sets {
            assert!(!Matcher::nothing().matches(labels.as_ref()));
            assert!(Matcher::everything().matches(labels.as_ref()));
        }
        // Where one matcher implies another, every label map the first matches, the second
        // matches too.
        let mut implied = 0;
        for a in &selectors {
            for b in &selectors {
                let (ma, mb) = (Matcher::new(a), Matcher::new(b));
                if !ma.implies(&mb) {
                    continue;
                }
                implied += 1;
                for labels in &label_sets {
                    assert!(
                        !ma.matches(labels.as_ref()) || mb.matches(labels.as_ref()),
                        "{a:?} implies {b:?}, not on {labels:?}"
                    );
                }
            }
        }
        assert!(implied > selectors.len());
        let two = l(&[("app", "web"), ("pod-template-hash", "abc")]);
        let one = l(&[("app", "web")]);
        assert!(Matcher::from_map(&two).implies(&Matcher::from_map(&one)));
        assert!(!Matcher::from_map(&one).implies(&Matcher::from_map(&two)));
        assert!(Matcher::nothing().implies(&Matcher::from_map(&two)));
        assert!(!Matcher::from_map(&two).implies(&Matcher::nothing()));
    }

    #[test]
    fn same_is_string_equality() {
        let words = [
            "",
            "a",
            "b",
            "ab",
            "app",
            "apq",
            "bench",
            "benci",
            "12345678",
            "12345679",
            "123456789",
            "123456788",
            "pod-template-hash",
            "pod-template-hasi",
            "pod-template-hash-and-more-than-32",
            "pod-template-hash-and-more-than-33",
        ];
        for a in words {
            for b in words {
                assert_eq!(same(a, b), a == b, "{a:?} {b:?}");
            }
        }
        // One byte different anywhere, at every length up to 40, is told apart.
        for n in 0..40u8 {
            let a: String = (0..n).map(|i| char::from(b'a' + i % 26)).collect();
            assert!(same(&a, &a.clone()));
            for i in 0..usize::from(n) {
                let mut b = a.clone().into_bytes();
                b[i] = b'Z';
                let b = String::from_utf8(b).unwrap();
                assert!(!same(&a, &b), "{a:?} {b:?}");
            }
        }
    }
}
