//! Label selector parsing, printing and matching against upstream's behaviour.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use skiff_core::labels::{format_label_selector, format_labels, Operator, Requirement, Selector};

fn labels(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

#[test]
fn parses_every_operator_and_prints_canonically() {
    let cases = [
        ("", ""),
        ("  ", ""),
        ("x=a", "x=a"),
        ("x==a", "x==a"),
        ("x!=a", "x!=a"),
        ("x = a , y", "x=a,y"),
        ("x in (b,a,a)", "x in (a,b)"),
        ("x notin (a)", "x notin (a)"),
        ("!x", "!x"),
        ("x", "x"),
        ("x>1", "x>1"),
        ("x<10", "x<10"),
        ("z=c,a=b", "a=b,z=c"),
        ("x=", "x="),
        ("x in ()", "x in ()"),
        ("x in (,a)", "x in (,a)"),
        ("example.com/app=web", "example.com/app=web"),
        ("a in (in,notin)", "a in (in,notin)"),
        ("x=a,x!=b", "x=a,x!=b"),
    ];
    for (input, want) in cases {
        let sel = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), want, "{input:?}");
    }
}

#[test]
fn rejects_bad_syntax_with_upstream_messages() {
    let err = |s: &str| Selector::parse(s).unwrap_err();
    assert_eq!(err("x=a,"), "found '', expected: identifier after ','");
    assert_eq!(err("x=a b"), "found 'b', expected: ',' or 'end of string'");
    assert_eq!(
        err("x y"),
        "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        err(",x"),
        "found ',', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        err("x in a"),
        "unable to parse requirement: found 'a' expected: '('"
    );
    assert_eq!(
        err("x in (a"),
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
    assert_eq!(
        err("x=(a)"),
        "unable to parse requirement: found '(', expected: identifier"
    );
    assert!(err("x>a").contains("the value must be an integer"));
    let e = err("-x=a");
    assert!(
        e.starts_with(
            "unable to parse requirement: <nil>: Invalid value: \"-x\": name part must consist of"
        ),
        "{e}"
    );
    let e = err("x=-a");
    assert!(
        e.contains("Invalid value: \"-a\": a valid label must be an empty string"),
        "{e}"
    );
    let e = err(&format!("x={}", "a".repeat(64)));
    assert!(e.contains("must be no more than 63 characters"), "{e}");
    let e = err("a/b/c=d");
    assert!(e.contains("a qualified name must consist of"), "{e}");
    let e = err("Example.com/a=b");
    assert!(
        e.contains("prefix part a lowercase RFC 1123 subdomain"),
        "{e}"
    );
}

#[test]
fn matching_semantics() {
    let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
    let m = |s: &str| Selector::parse(s).unwrap().matches(&l);
    assert!(m(""));
    assert!(m("app=web"));
    assert!(m("app==web"));
    assert!(!m("app=db"));
    assert!(m("app!=db"));
    assert!(m("missing!=x"), "!= matches objects without the key");
    assert!(m("missing notin (x)"));
    assert!(!m("app notin (web,db)"));
    assert!(m("app in (db,web)"));
    assert!(!m("missing in (x)"));
    assert!(m("app"));
    assert!(!m("missing"));
    assert!(m("!missing"));
    assert!(!m("!app"));
    assert!(m("n>4"));
    assert!(!m("n>5"));
    assert!(m("n<6"));
    assert!(!m("app>1"), "non-integer label never satisfies gt");
    assert!(m("app=web,tier=front"));
    assert!(!m("app=web,tier=back"));
    assert!(
        !m("missing="),
        "x= needs the key present with an empty value"
    );
    assert!(Selector::parse("e=")
        .unwrap()
        .matches(&labels(json!({"e": ""}))));
}

#[test]
fn matches_object_reads_metadata_labels() {
    let sel = Selector::parse("app=web").unwrap();
    assert!(sel.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
    assert!(!sel.matches_object(&json!({"metadata": {}})));
    assert!(Selector::everything().matches_object(&json!({})));
    assert!(Selector::parse("!app")
        .unwrap()
        .matches_object(&json!({"metadata": {}})));
}

#[test]
fn label_selector_json() {
    let sel = Selector::from_label_selector(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "env", "operator": "NotIn", "values": ["prod"]},
            {"key": "gpu", "operator": "Exists"},
            {"key": "old", "operator": "DoesNotExist"}
        ]
    }))
    .unwrap();
    assert_eq!(
        sel.to_string(),
        "app=web,env notin (prod),gpu,!old,tier in (a,b)"
    );
    let l = labels(json!({"app": "web", "tier": "a", "gpu": ""}));
    assert!(sel.matches(&l));

    let empty = Selector::from_label_selector(&json!({})).unwrap();
    assert!(empty.is_empty());
    assert!(empty.matches(&Map::new()));
    let null = Selector::from_label_selector(&Value::Null).unwrap();
    assert!(null.is_nothing() && !null.is_empty());
    assert!(!null.matches(&Map::new()));
    assert_eq!(null.to_string(), "");

    let bad = Selector::from_label_selector(
        &json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
    );
    assert_eq!(
        bad.unwrap_err(),
        "\"Gt\" is not a valid label selector operator"
    );
    let bad = Selector::from_label_selector(
        &json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
    );
    assert!(bad.unwrap_err().contains("values set can't be empty"));
    let bad = Selector::from_label_selector(
        &json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
    );
    assert!(bad.unwrap_err().contains("values set must be empty"));
}

#[test]
fn formatting_helpers() {
    assert_eq!(format_labels(None), "<none>");
    assert_eq!(
        format_labels(Some(&labels(json!({"b": "2", "a": "1"})))),
        "a=1,b=2"
    );
    assert_eq!(format_label_selector(None), "<none>");
    assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
    assert_eq!(
        format_label_selector(Some(&json!({"matchLabels": {"app": "x"}}))),
        "app=x"
    );
    assert_eq!(
        format_label_selector(Some(
            &json!({"matchExpressions": [{"key": "a", "operator": "Bad"}]})
        )),
        "<error>"
    );
}

#[test]
fn exact_match_and_requirements() {
    let sel = Selector::parse("a in (x),b=y,c!=z").unwrap();
    assert_eq!(sel.requires_exact_match("a"), Some("x"));
    assert_eq!(sel.requires_exact_match("b"), Some("y"));
    assert_eq!(sel.requires_exact_match("c"), None);
    let r = Requirement::new("a", Operator::In, vec!["y".into(), "x".into()]).unwrap();
    assert_eq!(r.values(), ["x", "y"]);
    assert_eq!(r.to_string(), "a in (x,y)");
}

// ---- properties ----

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]([a-z0-9._-]{0,6}[a-z0-9])?",
        "[a-z]{1,4}\\.[a-z]{2,3}/[A-Za-z]([A-Za-z0-9_.-]{0,5}[A-Za-z0-9])?",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z0-9]([A-Za-z0-9_.-]{0,6}[A-Za-z0-9])?"
    ]
}

fn requirement() -> impl Strategy<Value = Requirement> {
    let op = prop_oneof![
        Just(Operator::Equals),
        Just(Operator::DoubleEquals),
        Just(Operator::NotEquals),
        Just(Operator::In),
        Just(Operator::NotIn),
        Just(Operator::Exists),
        Just(Operator::DoesNotExist),
        Just(Operator::GreaterThan),
        Just(Operator::LessThan),
    ];
    (
        key(),
        op,
        proptest::collection::vec(value(), 1..4),
        0i64..50,
    )
        .prop_map(|(k, op, vals, n)| {
            let values = match op {
                Operator::In | Operator::NotIn => vals,
                Operator::Exists | Operator::DoesNotExist => vec![],
                Operator::GreaterThan | Operator::LessThan => vec![n.to_string()],
                _ => vec![vals[0].clone()],
            };
            Requirement::new(&k, op, values).unwrap()
        })
}

fn label_map() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(
        key(),
        prop_oneof![value(), (0i64..50).prop_map(|n| n.to_string())],
        0..6,
    )
    .prop_map(|m| m.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

proptest! {
    #[test]
    fn display_parses_back_to_the_same_selector(reqs in proptest::collection::vec(requirement(), 0..5)) {
        let sel = Selector::from_requirements(reqs);
        let text = sel.to_string();
        let back = Selector::parse(&text).unwrap();
        prop_assert_eq!(back.to_string(), text);
        prop_assert_eq!(back.requirements().len(), sel.requirements().len());
        for (a, b) in back.requirements().iter().zip(sel.requirements()) {
            prop_assert_eq!(a.key(), b.key());
            prop_assert_eq!(a.values(), b.values());
        }
    }

    #[test]
    fn reparsed_selector_matches_the_same_labels(
        reqs in proptest::collection::vec(requirement(), 0..4),
        l in label_map(),
    ) {
        let sel = Selector::from_requirements(reqs);
        let back = Selector::parse(&sel.to_string()).unwrap();
        prop_assert_eq!(sel.matches(&l), back.matches(&l));
    }

    #[test]
    fn equality_matches_iff_label_equals(k in key(), v in value(), l in label_map()) {
        let sel = Selector::parse(&format!("{k}={v}")).unwrap();
        let want = l.get(&k).and_then(Value::as_str) == Some(v.as_str());
        prop_assert_eq!(sel.matches(&l), want);
        let neg = Selector::parse(&format!("{k}!={v}")).unwrap();
        prop_assert_eq!(neg.matches(&l), !want);
    }

    #[test]
    fn exists_matches_iff_key_present(k in key(), l in label_map()) {
        prop_assert_eq!(Selector::parse(&k).unwrap().matches(&l), l.contains_key(&k));
        prop_assert_eq!(Selector::parse(&format!("!{k}")).unwrap().matches(&l), !l.contains_key(&k));
    }

    #[test]
    fn parse_never_panics(s in "[a-z!=(), <>in]{0,20}") {
        let _ = Selector::parse(&s);
    }
}
