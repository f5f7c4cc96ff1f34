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
}
