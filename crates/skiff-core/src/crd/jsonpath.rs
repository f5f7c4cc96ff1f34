//! The JSONPath subset CRD printer columns use (client-go's `util/jsonpath` over one object):
//! fields (`.spec.replicas`, `['a.b']`), indexes (`[0]`, `[-1]`), wildcards (`[*]`) and
//! filters comparing a field with a literal (`[?(@.type=="Ready")]`).

use serde_json::Value;

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Field(String),
    Index(i64),
    Wildcard,
    /// `[?(@.a.b OP literal)]`; `literal: None` tests for presence.
    Filter {
        path: Vec<String>,
        negate: bool,
        literal: Option<Value>,
    },
}

/// A JSONPath that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

fn err<T>(m: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(m.into()))
}

/// Parses `.a.b[0]` (optionally wrapped in `{…}`, as kubectl writes them).
pub fn parse(path: &str) -> Result<Vec<Step>, ParseError> {
    let p = path.trim();
    let p = p
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(p);
    let p = p.strip_prefix('$').unwrap_or(p);
    if !p.starts_with('.') && !p.starts_with('[') {
        return err(format!("unrecognized path {path:?}: must start with ."));
    }
    let b = p.as_bytes();
    let mut i = 0;
    let mut steps = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                i += 1;
                if i < b.len() && b[i] == b'.' {
                    return err("recursive descent is not supported");
                }
                let start = i;
                while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                    i += 1;
                }
                let name = &p[start..i];
                if name.is_empty() {
                    if i == b.len() && steps.is_empty() {
                        break; // "." alone: the object itself
                    }
                    return err(format!("empty field name in {path:?}"));
                }
                if name == "*" {
                    steps.push(Step::Wildcard);
                } else if name
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '/')
                {
                    steps.push(Step::Field(name.to_string()));
                } else {
                    return err(format!("invalid field name {name:?}"));
                }
            }
            b'[' => {
                let close = find_close(p, i).ok_or_else(|| ParseError("unclosed [".into()))?;
                let inner = p[i + 1..close].trim();
                steps.push(bracket(inner)?);
                i = close + 1;
            }
            _ => return err(format!("unexpected character at {i} in {path:?}")),
        }
    }
    Ok(steps)
}

fn find_close(p: &str, open: usize) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut depth = 0;
    for (i, c) in p[open..].char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    if s.len() >= 2
        && ((s.starts_with('\'') && s.ends_with('\'')) || (s.starts_with('"') && s.ends_with('"')))
    {
        Some(&s[1..s.len() - 1])
    } else {
        None
    }
}

fn bracket(inner: &str) -> Result<Step, ParseError> {
    if inner == "*" {
        return Ok(Step::Wildcard);
    }
    if let Some(name) = unquote(inner) {
        return Ok(Step::Field(name.to_string()));
    }
    if let Ok(n) = inner.parse::<i64>() {
        return Ok(Step::Index(n));
    }
    if let Some(f) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        let f = f.trim();
        let (lhs, negate, literal) = if let Some((l, r)) = f.split_once("==") {
            (l, false, Some(r))
        } else if let Some((l, r)) = f.split_once("!=") {
            (l, true, Some(r))
        } else {
            (f, false, None)
        };
        let lhs = lhs.trim();
        let Some(rest) = lhs.strip_prefix("@.") else {
            return err(format!("unsupported filter {f:?}"));
        };
        let path: Vec<String> = rest.split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return err(format!("unsupported filter {f:?}"));
        }
        let literal = match literal {
            None => None,
            Some(r) => {
                let r = r.trim();
                Some(match unquote(r) {
                    Some(s) => Value::String(s.to_string()),
                    None => serde_json::from_str::<Value>(r)
                        .map_err(|_| ParseError(format!("unsupported literal {r:?}")))?,
                })
            }
        };
        return Ok(Step::Filter {
            path,
            negate,
            literal,
        });
    }
    err(format!("unsupported subscript [{inner}]"))
}

/// Every value `steps` reaches in `root`.
pub fn eval<'a>(steps: &[Step], root: &'a Value) -> Vec<&'a Value> {
    let mut cur = vec![root];
    for step in steps {
        let mut next = Vec::new();
        for v in cur {
            match step {
                Step::Field(f) => {
                    if let Some(x) = v.get(f) {
                        next.push(x);
                    }
                }
                Step::Index(n) => {
                    if let Some(a) = v.as_array() {
                        let i = if *n < 0 { a.len() as i64 + n } else { *n };
                        if let Some(x) = usize::try_from(i).ok().and_then(|i| a.get(i)) {
                            next.push(x);
                        }
                    }
                }
                Step::Wildcard => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(o) => next.extend(o.values()),
                    _ => {}
                },
                Step::Filter {
                    path,
                    negate,
                    literal,
                } => {
                    let items: Vec<&Value> = match v {
                        Value::Array(a) => a.iter().collect(),
                        Value::Object(o) => o.values().collect(),
                        _ => Vec::new(),
                    };
                    for item in items {
                        let mut x = Some(item);
                        for p in path {
                            x = x.and_then(|x| x.get(p));
                        }
                        let keep = match (literal, x) {
                            (None, found) => found.is_some(),
                            (Some(l), Some(x)) => literal_eq(l, x) != *negate,
                            (Some(_), None) => *negate,
                        };
                        if keep {
                            next.push(item);
                        }
                    }
                }
            }
        }
        cur = next;
    }
    cur
}

fn literal_eq(l: &Value, x: &Value) -> bool {
    match (l, x) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => l == x,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_and_filters() {
        let o = json!({"spec": {"replicas": 3, "a.b": "x"}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}});
        let get = |p: &str| {
            eval(&parse(p).unwrap(), &o)
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(get(".spec.replicas"), vec![json!(3)]);
        assert_eq!(get(".spec['a.b']"), vec![json!("x")]);
        assert_eq!(
            get(".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("True")]
        );
        assert_eq!(
            get(".status.conditions[?(@.type!='Ready')].type"),
            vec![json!("Synced")]
        );
        assert_eq!(get(".status.conditions[-1].type"), vec![json!("Synced")]);
        assert_eq!(get(".status.conditions[*].type").len(), 2);
        assert_eq!(get("{.spec.replicas}"), vec![json!(3)]);
        assert!(get(".spec.missing").is_empty());
        assert!(parse("spec.replicas").is_err());
        assert!(parse(".spec..x").is_err());
        assert!(parse(".spec[").is_err());
    }
}
