//! API warnings: the `Warning: 299 - "text"` response headers of upstream's warning recorder
//! (k8s.io/apiserver `endpoints/filters/warning.go`), which clients print (`kubectl` as
//! `Warning: text`).
//!
//! Each request runs inside a recorder ([`scope`]); any code on the request's task adds a
//! warning with [`add`] without threading a handle through, as upstream's
//! `warning.AddWarning(ctx, …)` does. As upstream: identical warnings are recorded once; text
//! with control characters is not sent; the headers carry at most 4096 characters of text, and
//! once a warning would pass that, every warning (those already recorded too) is cut to 256
//! characters and what still does not fit is dropped. [`attach`] writes them onto the response.
//! Outside a recorder (the server's own writes) [`add`] does nothing.

use std::cell::RefCell;
use std::future::Future;

use http::{HeaderValue, Response};

/// Upstream's limits, in characters: all warnings together, and each once truncating.
const MAX_TOTAL: usize = 4 * 1024;
const MAX_ITEM: usize = 256;

/// The warnings of one request.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Every distinct warning added, in order.
    added: Vec<String>,
    /// What goes out as headers (cut to [`MAX_ITEM`] once truncating).
    sent: Vec<String>,
    /// Characters in `sent`.
    written: usize,
    truncating: bool,
}

impl Recorder {
    /// Records a warning, once.
    pub fn add(&mut self, text: &str) {
        if text.is_empty()
            || (self.truncating && self.written >= MAX_TOTAL)
            || self.added.iter().any(|w| w == text)
        {
            return;
        }
        self.added.push(text.to_string());
        if text.chars().any(char::is_control) {
            return;
        }
        let item = if self.truncating {
            cut(text)
        } else {
            text.to_string()
        };
        let len = item.chars().count();
        if self.truncating || self.written + len <= MAX_TOTAL {
            self.written += len;
            self.sent.push(item);
            return;
        }
        // Over the limit: start again with every warning cut short.
        self.truncating = true;
        self.written = 0;
        self.sent.clear();
        for w in &self.added {
            if w.chars().any(char::is_control) {
                continue;
            }
            let item = cut(w);
            self.written += item.chars().count();
            self.sent.push(item);
        }
    }

    /// The warnings to send.
    pub fn warnings(&self) -> &[String] {
        &self.sent
    }
}

fn cut(text: &str) -> String {
    text.chars().take(MAX_ITEM).collect()
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
    (out.expect("scoped future ran"), rec.sent)
}

/// Adds a warning to the response of the request being served (no-op outside a request).
pub fn add(text: &str) {
    let _ = RECORDER.try_with(|r| r.borrow_mut().add(text));
}

/// The warnings recorded so far by the request being served.
pub fn recorded() -> Vec<String> {
    RECORDER
        .try_with(|r| r.borrow().sent.clone())
        .unwrap_or_default()
}

/// The `Warning` header value of `text`: code 299, agent `-`, the text in quotes with `"` and
/// `\` escaped (upstream's `NewWarningHeader`); `None` for text with control characters.
pub fn header_value(text: &str) -> Option<HeaderValue> {
    if text.chars().any(char::is_control) {
        return None;
    }
    let mut v = String::with_capacity(text.len() + 8);
    v.push_str("299 - \"");
    for c in text.chars() {
        if c == '"' || c == '\\' {
            v.push('\\');
        }
        v.push(c);
    }
    v.push('"');
    HeaderValue::from_bytes(v.as_bytes()).ok()
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
    fn header_values_quote_like_upstream() {
        assert_eq!(
            header_value(r#"unknown field "spec.foo""#).unwrap(),
            r#"299 - "unknown field \"spec.foo\"""#
        );
        assert_eq!(header_value("a\\b é").unwrap(), "299 - \"a\\\\b é\"");
        assert!(header_value("two\nlines").is_none());
        assert_eq!(go_quote("a\\b\n\u{1}é"), "\"a\\\\b\\n\\x01é\"");
    }

    #[test]
    fn recorder_dedups_and_truncates_like_upstream() {
        let mut r = Recorder::default();
        r.add("a");
        r.add("a");
        r.add("");
        r.add("bad\ttext");
        r.add("b");
        assert_eq!(r.warnings(), ["a", "b"]);
        // Within 4096 characters everything is kept whole.
        let mut r = Recorder::default();
        r.add(&"x".repeat(4000));
        r.add("short");
        assert_eq!(r.warnings()[0].len(), 4000);
        // Past it, every warning is cut to 256 characters, the earlier ones too.
        r.add(&"é".repeat(300));
        assert_eq!(r.warnings().len(), 3);
        assert!(r.warnings().iter().all(|w| w.chars().count() <= 256));
        assert_eq!(r.warnings()[2].chars().count(), 256);
        for i in 0..100 {
            r.add(&format!("{i}{}", "y".repeat(300)));
        }
        assert!(r.written <= MAX_TOTAL + MAX_ITEM);
        let n = r.warnings().len();
        r.add("more");
        assert_eq!(r.warnings().len(), n, "dropped once the total is reached");
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
