//! Name and key validators, following k8s.io/apimachinery/pkg/util/validation (`IsDNS1123Label`,
//! `IsDNS1123Subdomain`, `IsDNS1035Label`, `IsQualifiedName`, `IsValidLabelValue`,
//! `IsConfigMapKey`, `IsValidPortName`, ...) and apimachinery's `NameIsDNS*` name functions.
//! Each returns upstream's error messages, empty when the value is valid. No regex engine: each
//! pattern is checked by hand, and the regex text appears only in the messages.

/// Longest DNS-1123 label.
pub const DNS1123_LABEL_MAX_LEN: usize = 63;
/// Longest DNS-1123 subdomain.
pub const DNS1123_SUBDOMAIN_MAX_LEN: usize = 253;
/// Longest DNS-1035 label.
pub const DNS1035_LABEL_MAX_LEN: usize = 63;
/// Longest name part of a qualified name.
pub const QUALIFIED_NAME_MAX_LEN: usize = 63;
/// Longest label value.
pub const LABEL_VALUE_MAX_LEN: usize = 63;
/// Largest total size of a `metadata.annotations` map, in bytes.
pub const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_KEY_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const WILDCARD_DNS1123_SUBDOMAIN_FMT: &str =
    "\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const WILDCARD_DNS1123_SUBDOMAIN_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character";

/// Upstream's `RegexError`: the message, examples and the regex it stands for.
pub fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(e);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(fmt);
    s.push_str("')");
    s
}

/// Upstream's `MaxLenError`.
pub fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// Upstream's `EmptyError`.
pub fn empty_error() -> String {
    "must be non-empty".to_string()
}

fn lower_alnum(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && lower_alnum(b[0])
        && lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| lower_alnum(c) || c == b'-')
}

/// DNS-1123 labels joined by dots, in one pass: each label starts and ends with `[a-z0-9]`
/// and holds `[-a-z0-9]`.
fn matches_dns1123_subdomain(b: &[u8]) -> bool {
    // The byte before, a dot at the start of each label.
    let mut prev = b'.';
    for &c in b {
        let ok = match c {
            b'.' => lower_alnum(prev),
            b'-' => prev != b'.',
            c => lower_alnum(c),
        };
        if !ok {
            return false;
        }
        prev = c;
    }
    lower_alnum(prev)
}

/// `[A-Za-z0-9]` at both ends and `[-A-Za-z0-9_.]` inside.
fn matches_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Upstream's `IsDNS1123Label`.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_LABEL_MAX_LEN {
        errs.push(max_len_error(DNS1123_LABEL_MAX_LEN));
    }
    if !matches_dns1123_label(value) {
        errs.push(regex_error(
            DNS1123_LABEL_MSG,
            DNS1123_LABEL_FMT,
            &["my-name", "123-abc"],
        ));
    }
    errs
}

/// Upstream's `IsDNS1123Subdomain`.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LEN));
    }
    if !matches_dns1123_subdomain(value.as_bytes()) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Upstream's `IsDNS1035Label`.
pub fn is_dns1035_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1035_LABEL_MAX_LEN {
        errs.push(max_len_error(DNS1035_LABEL_MAX_LEN));
    }
    if !(matches_dns1123_label(value) && value.as_bytes()[0].is_ascii_lowercase()) {
        errs.push(regex_error(
            DNS1035_LABEL_MSG,
            DNS1035_LABEL_FMT,
            &["my-name", "abc-123"],
        ));
    }
    errs
}

/// Upstream's `IsWildcardDNS1123Subdomain` (`*.example.com`).
pub fn is_wildcard_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LEN));
    }
    let ok = value
        .strip_prefix("*.")
        .is_some_and(|rest| rest.split('.').all(matches_dns1123_label));
    if !ok {
        errs.push(regex_error(
            WILDCARD_DNS1123_SUBDOMAIN_MSG,
            WILDCARD_DNS1123_SUBDOMAIN_FMT,
            &["*.example.com"],
        ));
    }
    errs
}

/// Upstream's `IsQualifiedName`: an optional DNS subdomain prefix and `/`, then a name part.
pub fn is_qualified_name(value: &str) -> Vec<String> {
    qualified_name_errors(value, true)
}

/// [`is_qualified_name`]; with `regex_on_empty_name` false, an empty name part gets only the
/// "must be non-empty" message and not the regex one (as the label selector parser,
/// `labels::qualified_name_errors`, has it).
pub(crate) fn qualified_name_errors(value: &str, regex_on_empty_name: bool) -> Vec<String> {
    let mut errs = Vec::new();
    let (prefix, name) = match value.split_once('/') {
        None => (None, value),
        Some((prefix, name)) if !name.contains('/') => (Some(prefix), name),
        Some(_) => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            errs.push(format!("prefix part {}", empty_error()));
        } else {
            for m in is_dns1123_subdomain(prefix) {
                errs.push(format!("prefix part {m}"));
            }
        }
    }
    if name.is_empty() {
        errs.push(format!("name part {}", empty_error()));
    } else if name.len() > QUALIFIED_NAME_MAX_LEN {
        errs.push(format!(
            "name part {}",
            max_len_error(QUALIFIED_NAME_MAX_LEN)
        ));
    }
    if (regex_on_empty_name || !name.is_empty()) && !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Upstream's `IsValidLabelValue`.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > LABEL_VALUE_MAX_LEN {
        errs.push(max_len_error(LABEL_VALUE_MAX_LEN));
    }
    if !value.is_empty() && !matches_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Upstream's `IsConfigMapKey`: keys of ConfigMap and Secret data.
pub fn is_config_map_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > DNS1123_SUBDOMAIN_MAX_LEN {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX_LEN));
    }
    let charset_ok = !value.is_empty()
        && value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'));
    if !charset_ok {
        errs.push(regex_error(
            CONFIG_KEY_MSG,
            CONFIG_KEY_FMT,
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_string());
    } else if value == ".." {
        errs.push("must not be '..'".to_string());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

/// Upstream's `IsValidPortName` (IANA_SVC_NAME).
pub fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if !port
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        || port.is_empty()
    {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

/// Upstream's `IsValidPortNum`.
pub fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) {
        Vec::new()
    } else {
        vec![inclusive_range_error(1, 65535)]
    }
}

/// Upstream's `InclusiveRangeError`.
pub fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

/// Upstream's `IsEnvVarName` relaxed form (RelaxedEnvironmentVariableValidation, on in 1.32):
/// any printable ASCII but `=`.
pub fn is_env_var_name(value: &str) -> Vec<String> {
    if !value.is_empty() && value.bytes().all(|c| (32..=126).contains(&c) && c != b'=') {
        Vec::new()
    } else {
        vec!["a valid environment variable name must consist only of printable ASCII characters other than '='".to_string()]
    }
}

/// Upstream's `IsValidPathSegmentName`: names used as one URL path segment (RBAC names).
pub fn is_valid_path_segment_name(name: &str) -> Vec<String> {
    if name == "." || name == ".." {
        return vec![format!("may not be '{name}'")];
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if name.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

/// Upstream's `maskTrailingDash`: a generateName prefix may end with `-`.
fn mask_trailing_dash(name: &str) -> String {
    if name.len() > 1 && name.ends_with('-') {
        format!("{}a", &name[..name.len() - 2])
    } else {
        name.to_string()
    }
}

/// Upstream's `NameIsDNSSubdomain`: the name function of most kinds.
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_subdomain(&mask_trailing_dash(name))
    } else {
        is_dns1123_subdomain(name)
    }
}

/// Upstream's `NameIsDNSLabel`: Namespace names.
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1123_label(&mask_trailing_dash(name))
    } else {
        is_dns1123_label(name)
    }
}

/// Upstream's `NameIsDNS1035Label`: Service names.
pub fn name_is_dns1035_label(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        is_dns1035_label(&mask_trailing_dash(name))
    } else {
        is_dns1035_label(name)
    }
}

/// Upstream's `ValidatePathSegmentName`: RBAC object names.
pub fn name_is_path_segment(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        // A prefix may end in anything a full name may contain.
        let mut errs = Vec::new();
        for bad in ["/", "%"] {
            if name.contains(bad) {
                errs.push(format!("may not contain '{bad}'"));
            }
        }
        errs
    } else {
        is_valid_path_segment_name(name)
    }
}

/// Upstream's `IsDomainPrefixedPath` (IngressClass controller names): `example.com/path`.
pub fn is_domain_prefixed_path(value: &str) -> Vec<String> {
    match value.split_once('/') {
        None => vec!["must be a domain-prefixed path (such as \"acme.io/foo\")".to_string()],
        Some((host, path)) => {
            let mut errs = is_dns1123_subdomain(host);
            let ok = path
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&c));
            if !ok {
                errs.push(regex_error(
                    "segment of a domain-prefixed path must consist of alphanumeric characters, '-', '_', '.', '/', '~', '%', '!', '$', '&', ''', '(', ')', '*', '+', ',', ';', '=' or ':'",
                    "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+",
                    &[],
                ));
            }
            errs
        }
    }
}

/// True for a dotted-quad IPv4 address.
pub fn is_ipv4(s: &str) -> bool {
    s.parse::<std::net::Ipv4Addr>().is_ok()
}

/// True for an IPv4 or IPv6 address.
pub fn is_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

/// Upstream's `IsValidIP` message.
pub fn is_valid_ip(s: &str) -> Vec<String> {
    if is_ip(s) {
        Vec::new()
    } else {
        vec!["must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string()]
    }
}

/// Upstream's `IsValidCIDR` message.
pub fn is_valid_cidr(s: &str) -> Vec<String> {
    let ok = s
        .split_once('/')
        .is_some_and(|(ip, bits)| match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => bits.parse::<u8>().is_ok_and(|b| b <= 32),
            Ok(std::net::IpAddr::V6(_)) => bits.parse::<u8>().is_ok_and(|b| b <= 128),
            Err(_) => false,
        });
    if ok {
        Vec::new()
    } else {
        vec!["must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)".to_string()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-pass subdomain test agrees with testing each dot-separated label.
    #[test]
    fn subdomains_match_label_by_label() {
        let pool = [b'a', b'z', b'0', b'9', b'-', b'.', b'A', b'_', b'/', 0xc3];
        let mut cases = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = cases
                .iter()
                .flat_map(|s| pool.iter().map(move |&c| format!("{s}{}", c as char)))
                .collect();
            cases.extend(longer);
        }
        for s in &cases {
            let by_labels = s.split('.').all(matches_dns1123_label);
            assert_eq!(matches_dns1123_subdomain(s.as_bytes()), by_labels, "{s:?}");
        }
    }

    #[test]
    fn subdomain_message_is_upstreams() {
        assert_eq!(
            is_dns1123_subdomain("Web"),
            vec!["a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]
        );
        assert!(is_dns1123_subdomain("a.b-c.d").is_empty());
        assert_eq!(is_dns1123_subdomain("a..b").len(), 1);
        assert_eq!(is_dns1123_subdomain("").len(), 1);
    }

    #[test]
    fn label_message_has_upstreams_double_space() {
        assert!(is_dns1123_label("a.b")[0]
            .ends_with("(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
        assert_eq!(is_dns1123_label(&"a".repeat(64)), vec![max_len_error(63)]);
        assert!(is_dns1035_label("1abc")[0].starts_with("a DNS-1035 label"));
        assert!(is_dns1035_label("abc-1").is_empty());
    }

    #[test]
    fn qualified_names() {
        assert!(is_qualified_name("app.kubernetes.io/name").is_empty());
        assert!(is_qualified_name("MyName").is_empty());
        assert_eq!(
            is_qualified_name("/a"),
            vec!["prefix part must be non-empty"]
        );
        assert!(is_qualified_name("a/b/c")[0].starts_with("a qualified name must consist"));
        assert!(is_qualified_name("a/-b")[0].starts_with("name part must consist"));
        assert_eq!(is_qualified_name("a/"), {
            let mut v = vec!["name part must be non-empty".to_string()];
            v.push(format!(
                "name part {}",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            v
        });
    }

    #[test]
    fn generate_name_prefix_may_end_in_dash() {
        assert!(name_is_dns_subdomain("web-", true).is_empty());
        assert!(!name_is_dns_subdomain("web-", false).is_empty());
        assert!(name_is_dns1035_label("web-", true).is_empty());
    }

    #[test]
    fn port_names_and_config_keys() {
        assert!(is_valid_port_name("http").is_empty());
        assert_eq!(
            is_valid_port_name("80"),
            vec!["must contain at least one letter (a-z)"]
        );
        assert!(is_config_map_key("a.b_C-1").is_empty());
        assert_eq!(is_config_map_key("..a"), vec!["must not start with '..'"]);
        assert_eq!(is_config_map_key("a b").len(), 1);
    }
}
