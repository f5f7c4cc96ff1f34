//! Property tests: the hand-written name validators against simple reference models of
//! upstream's regexes, and quantity canonical forms round-tripping.

use proptest::prelude::*;
use skiff_core::validation::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name, Quantity};

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` by character classes.
fn model_label(s: &str) -> bool {
    let ok_end = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut cs = s.chars();
    match (cs.next(), s.chars().last()) {
        (Some(a), Some(b)) => {
            ok_end(a) && ok_end(b) && s.chars().all(|c| ok_end(c) || c == '-') && s.len() <= 63
        }
        _ => false,
    }
}

proptest! {
    #[test]
    fn dns1123_label_matches_model(s in "[a-z0-9.A-Z_-]{0,70}") {
        prop_assert_eq!(is_dns1123_label(&s).is_empty(), model_label(&s));
    }

    #[test]
    fn dns1123_subdomain_matches_model(parts in proptest::collection::vec("[a-z0-9-]{0,8}", 1..5)) {
        let s = parts.join(".");
        let model = s.len() <= 253 && s.split('.').all(|p| {
            !p.is_empty() && !p.starts_with('-') && !p.ends_with('-')
        });
        prop_assert_eq!(is_dns1123_subdomain(&s).is_empty(), model);
    }

    #[test]
    fn qualified_names_with_valid_prefix(prefix in "[a-z]{1,10}(\\.[a-z]{1,5})?", name in "[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?") {
        let key = format!("{prefix}/{name}");
        prop_assert!(is_qualified_name(&key).is_empty(), "{}", key);
    }

    #[test]
    fn quantity_canonical_form_round_trips(
        mantissa in 0i64..100_000,
        suffix in prop::sample::select(vec!["", "m", "k", "M", "G", "Ki", "Mi", "Gi", "e3", "n", "u"]),
    ) {
        let q = Quantity::parse(&format!("{mantissa}{suffix}")).unwrap();
        let back = Quantity::parse(&q.to_string()).unwrap();
        prop_assert_eq!(q, back);
        prop_assert_eq!(q.to_string(), back.to_string());
    }

    #[test]
    fn quantity_order_matches_integers(a in 0i64..1_000_000, b in 0i64..1_000_000) {
        let qa = Quantity::parse(&format!("{a}m")).unwrap();
        let qb = Quantity::parse(&format!("{b}m")).unwrap();
        prop_assert_eq!(qa.cmp(&qb), a.cmp(&b));
    }
}
