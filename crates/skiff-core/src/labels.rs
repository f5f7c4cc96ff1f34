//! Label selectors, following k8s.io/apimachinery/pkg/labels (the string syntax, its lexer and
//! parser, requirement validation and matching) and `metav1.LabelSelectorAsSelector` for the
//! structured `LabelSelector` of workload specs.
//!
//! Upstream semantics kept here: requirements are sorted by key and their value sets sorted and
//! de-duplicated; `a=` and `a in ()` select the empty value; `!=` and `notin` match objects that
//! lack the key; a null `LabelSelector` selects nothing while an empty one selects everything.

use crate::meta::Fields as _;
use std::fmt;

use serde_json::{Map, Value};

/// A selection operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `a=b`
    Equals,
    /// `a==b`
    DoubleEquals,
    /// `a!=b`
    NotEquals,
    /// `a in (b,c)`
    In,
    /// `a notin (b,c)`
    NotIn,
    /// `a`
    Exists,
    /// `!a`
    DoesNotExist,
    /// `a>5`
    GreaterThan,
    /// `a<5`
    LessThan,
}

/// One requirement of a selector: a key, an operator and a sorted set of values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    op: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, validating key, values and their count as upstream's
    /// `NewRequirement` does.
    pub fn new(key: &str, op: Operator, values: Vec<String>) -> Result<Requirement, String> {
        validate_label_key(key)?;
        match op {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    return Err("values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty".into());
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    return Err(format!(
                        "values: Invalid value: {}: exact-match compatibility requires one single value",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    return Err(format!(
                        "values: Invalid value: {}: values set must be empty for exists and does not exist",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    return Err(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        go_string_slice(&values)
                    ));
                }
                if values[0].parse::<i64>().is_err() {
                    return Err(format!(
                        "values[0]: Invalid value: {:?}: for 'Gt', 'Lt' operators, the value must be an integer",
                        values[0]
                    ));
                }
            }
        }
        for v in &values {
            validate_label_value(key, v)?;
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Requirement {
            key: key.to_string(),
            op,
            values,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.op
    }

    /// The sorted, de-duplicated values.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether a label set satisfies this requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let got = labels.get(&self.key).map(|v| v.as_str().unwrap_or(""));
        match self.op {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                got.is_some_and(|g| self.values.iter().any(|v| v == g))
            }
            Operator::NotIn | Operator::NotEquals => {
                got.is_none_or(|g| !self.values.iter().any(|v| v == g))
            }
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(have)) = got.map(str::parse::<i64>) else {
                    return false;
                };
                let Some(Ok(want)) = self.values.first().map(|v| v.parse::<i64>()) else {
                    return false;
                };
                if self.op == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.op {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let joined = self.values.join(",");
        if matches!(self.op, Operator::In | Operator::NotIn) {
            write!(f, "({joined})")
        } else {
            f.write_str(&joined)
        }
    }
}

/// A label selector: a conjunction of requirements, or the selector that matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    /// The selector that matches every object.
    pub fn everything() -> Selector {
        Selector::default()
    }

    /// The selector that matches no object (a null `LabelSelector`).
    pub fn nothing() -> Selector {
        Selector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// A selector from requirements, sorted by key as upstream does.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Selector {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Selector {
            requirements,
            nothing: false,
        }
    }

    /// `matchLabels`-style equality selector from a label map (upstream `SelectorFromSet`,
    /// validated).
    pub fn from_map(labels: &Map<String, Value>) -> Result<Selector, String> {
        let mut reqs = Vec::with_capacity(labels.len());
        for (k, v) in labels {
            let v = v.as_str().unwrap_or("").to_string();
            reqs.push(Requirement::new(k, Operator::Equals, vec![v])?);
        }
        Ok(Selector::from_requirements(reqs))
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches nothing.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The value `key` is required to equal, if one requirement pins it (`a=b`, `a==b`, or
    /// `a in (b)`), as upstream's `RequiresExactMatch`.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        self.requirements.iter().find_map(|r| {
            let exact = matches!(
                r.op,
                Operator::Equals | Operator::DoubleEquals | Operator::In
            );
            (r.key == key && exact && r.values.len() == 1).then(|| r.values[0].as_str())
        })
    }

    /// Whether a label set satisfies every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether an object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, obj: &Value) -> bool {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let labels = obj
            .at("metadata")
            .field("labels")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
        self.matches(labels)
    }

    /// Parses the string syntax (`a=b,c!=d,e in (f,g),!h,i`). The empty string selects
    /// everything.
    pub fn parse(s: &str) -> Result<Selector, String> {
        let mut p = Parser {
            toks: lex(s)?,
            pos: 0,
        };
        let reqs = p.parse()?;
        Ok(Selector::from_requirements(reqs))
    }

    /// Converts a `metav1.LabelSelector` (JSON): null selects nothing, `{}` everything.
    pub fn from_label_selector(sel: &Value) -> Result<Selector, String> {
        let obj = match sel {
            Value::Null => return Ok(Selector::nothing()),
            Value::Object(o) => o,
            _ => return Err("label selector must be an object".into()),
        };
        let mut reqs = Vec::new();
        if let Some(ml) = obj.get("matchLabels").and_then(Value::as_object) {
            for (k, v) in ml {
                let v = v.as_str().unwrap_or("").to_string();
                reqs.push(Requirement::new(k, Operator::Equals, vec![v])?);
            }
        }
        if let Some(exprs) = obj.get("matchExpressions").and_then(Value::as_array) {
            for e in exprs {
                let key = e.get("key").and_then(Value::as_str).unwrap_or("");
                let op_s = e.get("operator").and_then(Value::as_str).unwrap_or("");
                let op = match op_s {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => {
                        return Err(format!("{other:?} is not a valid label selector operator"))
                    }
                };
                let values: Vec<String> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| v.as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                reqs.push(Requirement::new(key, op, values)?);
            }
        }
        Ok(Selector::from_requirements(reqs))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Selector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Selector::parse(s)
    }
}

/// Upstream's `labels.FormatLabels`: `a=b,c=d` sorted by key, or `<none>`.
pub fn format_labels(labels: Option<&Map<String, Value>>) -> String {
    let Some(m) = labels.filter(|m| !m.is_empty()) else {
        return "<none>".into();
    };
    let mut pairs: Vec<(&String, &str)> = m
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Upstream's `metav1.FormatLabelSelector`: the selector string, `<none>` when empty (or null),
/// `<error>` when invalid.
pub fn format_label_selector(sel: Option<&Value>) -> String {
    match Selector::from_label_selector(sel.unwrap_or(&Value::Null)) {
        Err(_) => "<error>".into(),
        Ok(s) => {
            let out = s.to_string();
            if out.is_empty() {
                "<none>".into()
            } else {
                out
            }
        }
    }
}

// ---- validation (k8s.io/apimachinery/pkg/util/validation) ----

/// Upstream's `IsQualifiedName`: the list of problems with `value`. Unlike
/// [`is_qualified_name`](crate::validation::is_qualified_name), an empty name part gets only
/// the "must be non-empty" message.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    crate::validation::names::qualified_name_errors(value, false)
}

/// Upstream's `IsValidLabelValue`: the list of problems with `value`.
pub fn label_value_errors(value: &str) -> Vec<String> {
    crate::validation::is_valid_label_value(value)
}

fn validate_label_key(k: &str) -> Result<(), String> {
    let errs = qualified_name_errors(k);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!("key: Invalid value: {:?}: {}", k, errs.join("; ")))
    }
}

fn validate_label_value(k: &str, v: &str) -> Result<(), String> {
    let errs = label_value_errors(v);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "values[{k}]: Invalid value: {:?}: {}",
            v,
            errs.join("; ")
        ))
    }
}

fn go_string_slice(v: &[String]) -> String {
    format!(
        "[]string{{{}}}",
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

// ---- lexer and parser (labels/selector.go) ----

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier(String),
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

impl Tok {
    fn literal(&self) -> &str {
        match self {
            Tok::End => "",
            Tok::ClosedPar => ")",
            Tok::Comma => ",",
            Tok::DoesNotExist => "!",
            Tok::DoubleEquals => "==",
            Tok::Equals => "=",
            Tok::GreaterThan => ">",
            Tok::Identifier(s) => s,
            Tok::In => "in",
            Tok::LessThan => "<",
            Tok::NotEquals => "!=",
            Tok::NotIn => "notin",
            Tok::OpenPar => "(",
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if is_ws(c) {
            i += 1;
            continue;
        }
        if is_special(c) {
            let next = chars.get(i + 1).copied();
            let (tok, len) = match (c, next) {
                ('!', Some('=')) => (Tok::NotEquals, 2),
                ('=', Some('=')) => (Tok::DoubleEquals, 2),
                ('!', _) => (Tok::DoesNotExist, 1),
                ('=', _) => (Tok::Equals, 1),
                ('(', _) => (Tok::OpenPar, 1),
                (')', _) => (Tok::ClosedPar, 1),
                (',', _) => (Tok::Comma, 1),
                ('>', _) => (Tok::GreaterThan, 1),
                _ => (Tok::LessThan, 1),
            };
            out.push(tok);
            i += len;
            continue;
        }
        let start = i;
        while i < chars.len() && !is_ws(chars[i]) && !is_special(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        out.push(match word.as_str() {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            _ => Tok::Identifier(word),
        });
    }
    out.push(Tok::End);
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

/// In the "values" context the keywords `in` and `notin` are plain identifiers.
fn as_value(t: Tok) -> Tok {
    match t {
        Tok::In => Tok::Identifier("in".into()),
        Tok::NotIn => Tok::Identifier("notin".into()),
        t => t,
    }
}

impl Parser {
    fn lookahead_value(&self) -> Tok {
        as_value(self.toks[self.pos].clone())
    }

    fn consume_value(&mut self) -> Tok {
        let t = self.lookahead_value();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn consume_key_op(&mut self) -> Tok {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            match self.lookahead_value() {
                Tok::Identifier(_) | Tok::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    match self.consume_value() {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let t = self.lookahead_value();
                            if !matches!(t, Tok::Identifier(_) | Tok::DoesNotExist) {
                                return Err(format!(
                                    "found '{}', expected: identifier after ','",
                                    t.literal()
                                ));
                            }
                        }
                        t => {
                            return Err(format!(
                                "found '{}', expected: ',' or 'end of string'",
                                t.literal()
                            ))
                        }
                    }
                }
                Tok::End => return Ok(reqs),
                t => {
                    return Err(format!(
                        "found '{}', expected: !, identifier, or 'end of string'",
                        t.literal()
                    ))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, op) = self.parse_key_and_infer_operator()?;
        if let Some(op) = op {
            return Requirement::new(&key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut op = None;
        let mut t = self.consume_value();
        if t == Tok::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            t = self.consume_value();
        }
        let Tok::Identifier(key) = t else {
            return Err(format!("found '{}', expected: identifier", t.literal()));
        };
        let errs = qualified_name_errors(&key);
        if !errs.is_empty() {
            return Err(format!(
                "<nil>: Invalid value: {:?}: {}",
                key,
                errs.join("; ")
            ));
        }
        if matches!(self.lookahead_value(), Tok::End | Tok::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((key, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        Ok(match self.consume_key_op() {
            Tok::In => Operator::In,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::GreaterThan => Operator::GreaterThan,
            Tok::LessThan => Operator::LessThan,
            Tok::NotIn => Operator::NotIn,
            Tok::NotEquals => Operator::NotEquals,
            t => {
                return Err(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.literal()
                ))
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let t = self.consume_value();
        if t != Tok::OpenPar {
            return Err(format!("found '{}' expected: '('", t.literal()));
        }
        match self.lookahead_value() {
            Tok::Identifier(_) | Tok::Comma => {
                let vals = self.parse_identifiers_list()?;
                let t = self.consume_value();
                if t != Tok::ClosedPar {
                    return Err(format!("found '{}', expected: ')'", t.literal()));
                }
                Ok(vals)
            }
            Tok::ClosedPar => {
                self.consume_value();
                Ok(vec![String::new()])
            }
            t => Err(format!(
                "found '{}', expected: ',', ')' or identifier",
                t.literal()
            )),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut out = Vec::new();
        loop {
            match self.consume_value() {
                Tok::Identifier(v) => {
                    out.push(v);
                    match self.lookahead_value() {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(out),
                        t => return Err(format!("found '{}', expected: ',' or ')'", t.literal())),
                    }
                }
                Tok::Comma => {
                    if out.is_empty() {
                        out.push(String::new());
                    }
                    match self.lookahead_value() {
                        Tok::ClosedPar => {
                            out.push(String::new());
                            return Ok(out);
                        }
                        Tok::Comma => {
                            self.consume_value();
                            out.push(String::new());
                        }
                        _ => {}
                    }
                }
                t => {
                    return Err(format!(
                        "found '{}', expected: ',', or identifier",
                        t.literal()
                    ))
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        if matches!(self.lookahead_value(), Tok::End | Tok::Comma) {
            return Ok(vec![String::new()]);
        }
        match self.consume_value() {
            Tok::Identifier(v) => Ok(vec![v]),
            t => Err(format!("found '{}', expected: identifier", t.literal())),
        }
    }
}
