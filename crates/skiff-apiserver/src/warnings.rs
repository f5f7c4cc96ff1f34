//! API warnings: the `Warning: 299 - "text"` response headers of upstream's warning recorder
//! (k8s.io/apiserver `endpoints/filters/warning.go`), which clients print (`kubectl` as
//! `Warning: text`).
//!
//! Each request runs inside a recorder ([`scope`]); any code on the request's task adds a
//! warning with [`add`] without threading a handle through, as upstream's
//! `warning.AddWarning(ctx, …)` does. Identical warnings are recorded once; when the total
//! grows past 256 KiB each warning is cut to 1 KiB, and warnings that still do not fit are
//! dropped. [`attach`] writes the recorded warnings onto the response. Outside a recorder
//! (the server's own writes) [`add`] does nothing.

use std::cell::RefCell;
use std::future::Future;

use http::{HeaderValue, Response};

/// Upstream's limits: the total size of all warnings, and the size each is cut to once the
/// total is exceeded.
const MAX_TOTAL: usize = 256 * 1024;
const MAX_ITEM: usize = 1024;

/// The warnings of one request.
#[derive(Debug, Default)]
pub struct Recorder {
    warnings: Vec<String>,
    total: usize,
    truncating: bool,
}

impl Recorder {
    /// Records a warning, once.
    pub fn add(&mut self, text: &str) {
        if text.is_empty() || self.warnings.iter().any(|w| w == text) {
            return;
        }
        let mut text = text.to_string();
        if !self.truncating && self.total + text.len() > MAX_TOTAL {
            self.truncating = true;
            for w in &mut self.warnings {
                truncate(w, MAX_ITEM);
            }
            self.total = self.warnings.iter().map(String::len).sum();
        }
        if self.truncating {
            truncate(&mut text, MAX_ITEM);
            if self.total + text.len() > MAX_TOTAL {
                return;
            }
        }
        self.total += text.len();
        self.warnings.push(text);
    }

    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

tokio::task_local! {
    static RECORDER: RefCell<Recorder>;
}

/// Runs `fut` with a fresh recorder and returns its output with the warnings it recorded.
pub async fn scope<F: Future>(fut: F) -> (F::Output, Vec<String>) {
    let mut out = None;
    let rec = RECORDER
        .scope(RefCell::new(Recorder::default()), async {
            out = Some(fut.await);
            RECORDER.with(|r| std::mem::take(&mut *r.borrow_mut()))
        })
        .await;
    (out.expect("scoped future ran"), rec.warnings)
}

/// Adds a warning to the response of the request being served (no-op outside a request).
pub fn add(text: &str) {
    let _ = RECORDER.try_with(|r| r.borrow_mut().add(text));
}

/// The warnings recorded so far by the request being served.
pub fn recorded() -> Vec<String> {
    RECORDER
        .try_with(|r| r.borrow().warnings.clone())
        .unwrap_or_default()
}

/// The `Warning` header value of `text`: code 299, agent `-`, the text quoted as Go's
/// `strconv.Quote` does.
pub fn header_value(text: &str) -> Option<HeaderValue> {
    HeaderValue::from_bytes(format!("299 - {}", go_quote(text)).as_bytes()).ok()
}

/// Appends one `Warning` header per warning to `resp`.
pub fn attach<B>(resp: &mut Response<B>, warnings: &[String]) {
    for w in warnings {
        if let Some(v) = header_value(w) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
}

/// A string quoted as Go's `strconv.Quote`: `"` and `\` escaped, control characters as
/// escapes, printable Unicode kept.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values_quote_like_go() {
        assert_eq!(
            header_value(r#"unknown field "spec.foo""#).unwrap(),
            r#"299 - "unknown field \"spec.foo\"""#
        );
        assert_eq!(go_quote("a\\b\n\u{1}é"), "\"a\\\\b\\n\\x01é\"");
    }

    #[test]
    fn recorder_dedups_and_bounds() {
        let mut r = Recorder::default();
        r.add("a");
        r.add("a");
        r.add("");
        r.add("b");
        assert_eq!(r.warnings(), ["a", "b"]);
        let mut r = Recorder::default();
        let big = "x".repeat(100 * 1024);
        for i in 0..10 {
            r.add(&format!("{i}{big}"));
        }
        assert!(r.total <= MAX_TOTAL);
        assert!(r.warnings().iter().all(|w| w.len() <= MAX_ITEM));
        assert!(r.warnings().len() == 10);
    }

    #[tokio::test]
    async fn scope_collects_what_the_task_adds() {
        let (v, w) = scope(async {
            add("one");
            tokio::task::yield_now().await;
            add("two");
            add("one");
            7
        })
        .await;
        assert_eq!((v, w), (7, vec!["one".to_string(), "two".to_string()]));
        add("outside a scope is dropped");
        assert!(recorded().is_empty());
    }
}
