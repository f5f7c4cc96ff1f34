//! WATCH: newline-delimited JSON events over a chunked response. Starts with the current state
//! as ADDED events (no resourceVersion, or "0") or replays from a resourceVersion; selector
//! transitions become ADDED/DELETED as in upstream's cacher; BOOKMARK events when asked;
//! `timeoutSeconds`; an ERROR event with a 410 Expired Status for a compacted resourceVersion.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{json, Value};
use skiff_core::registry::Resource;
use skiff_core::ApiError;
use skiff_store::{EventKind, ListOptions, ReadAt, StoreError};

use crate::codec::Accept;
use crate::list::Filter;
use crate::objects::{
    decode_kv, parse_resource_version, storage_resource, store_error, to_external,
};
use crate::request::Query;
use crate::server::ApiServer;
use crate::Body;

type Tx = tokio::sync::mpsc::Sender<Result<Frame<Bytes>, std::io::Error>>;

/// How each event's object is written.
struct Encoder {
    res: &'static Resource,
    table: bool,
    sent_columns: bool,
}

impl Encoder {
    fn event(&mut self, kind: &str, obj: &Value) -> Bytes {
        let object = if self.table {
            let first = !self.sent_columns;
            self.sent_columns = true;
            skiff_core::table::table_with(
                self.res,
                std::slice::from_ref(obj),
                jiff::Timestamp::now(),
                skiff_core::table::IncludeObject::Metadata,
                json!({"resourceVersion": skiff_core::meta::resource_version(obj)}),
                first,
            )
        } else {
            obj.clone()
        };
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).expect("json");
        line.push(b'\n');
        Bytes::from(line)
    }
}

async fn send(tx: &Tx, b: Bytes) -> bool {
    tx.send(Ok(Frame::data(b))).await.is_ok()
}

impl ApiServer {
    pub async fn watch(
        self: &Arc<Self>,
        res: &'static Resource,
        namespace: Option<String>,
        q: &Query,
        accept: Accept,
    ) -> Result<Response<Body>, ApiError> {
        let filter = Filter::from_query(res, q)?;
        let rv = parse_resource_version(q.get("resourceVersion").unwrap_or(""))?;
        let bookmarks = q.bool("allowWatchBookmarks")?;
        let timeout = match q.int("timeoutSeconds")? {
            Some(t) if t > 0 => Duration::from_secs(t as u64),
            _ => {
                // Upstream picks a random timeout between the minimum request timeout and
                // twice that, so watchers do not all reconnect at once.
                let base = self.opts.min_request_timeout.as_secs().max(1);
                Duration::from_secs(base + (uuid::Uuid::new_v4().as_u128() % base as u128) as u64)
            }
        };
        let sres = storage_resource(res);
        let prefix = match &namespace {
            Some(ns) if res.namespaced => sres.namespace_prefix(ns),
            _ => sres.key_prefix(),
        };
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(64);
        let mut enc = Encoder {
            res,
            table: matches!(accept, Accept::Table(_)),
            sent_columns: false,
        };
        // Initial state, or the replay start.
        let (initial, start) = match rv {
            None | Some(0) => {
                let page = self
                    .store
                    .list(ListOptions {
                        prefix: prefix.clone(),
                        at: ReadAt::Latest,
                        start_after: None,
                        limit: 0,
                    })
                    .await
                    .map_err(|e| store_error(res, "", e))?;
                (Some(page.items), page.revision)
            }
            Some(n) => (None, n),
        };
        let watch = match self.store.watch(&prefix, start).await {
            Ok(w) => Some(w),
            Err(StoreError::Compacted {
                requested,
                compacted,
            }) => {
                let status = ApiError::expired(format!(
                    "too old resource version: {requested} ({compacted})"
                ));
                let mut line =
                    serde_json::to_vec(&json!({"type": "ERROR", "object": status.to_value()}))
                        .expect("json");
                line.push(b'\n');
                let _ = tx.send(Ok(Frame::data(Bytes::from(line)))).await;
                None
            }
            Err(e) => return Err(store_error(res, "", e)),
        };
        let srv = self.clone();
        let interval = self.opts.bookmark_interval;
        tokio::spawn(async move {
            srv.metrics.watchers.inc();
            let _guard = scopeguard(srv.clone());
            let Some(mut watch) = watch else { return };
            let deadline = tokio::time::sleep(timeout);
            tokio::pin!(deadline);
            if let Some(items) = initial {
                for kv in items {
                    let Ok(obj) = decode_kv(&kv) else { continue };
                    let obj = to_external(res, obj);
                    if filter.matches(res, &obj) && !send(&tx, enc.event("ADDED", &obj)).await {
                        return;
                    }
                }
            }
            let mut last = start;
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = &mut deadline => {
                        if bookmarks {
                            let _ = send(&tx, bookmark(res, last)).await;
                        }
                        return;
                    }
                    _ = tick.tick(), if bookmarks => {
                        if !send(&tx, bookmark(res, last)).await { return; }
                    }
                    _ = tx.closed() => return,
                    batch = watch.next() => {
                        let batch = match batch {
                            None => return,
                            Some(Err(StoreError::Compacted { requested, compacted })) => {
                                let status = ApiError::expired(format!("too old resource version: {requested} ({compacted})"));
                                let mut line = serde_json::to_vec(&json!({"type": "ERROR", "object": status.to_value()})).expect("json");
                                line.push(b'\n');
                                let _ = send(&tx, Bytes::from(line)).await;
                                return;
                            }
                            Some(Err(_)) => return,
                            Some(Ok(b)) => b,
                        };
                        for ev in batch {
                            last = ev.revision();
                            let Some((kind, obj)) = translate(res, &filter, &ev) else { continue };
                            if !send(&tx, enc.event(kind, &obj)).await { return; }
                        }
                    }
                }
            }
        });
        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed_unsync();
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CACHE_CONTROL, "no-cache, private")
            .body(body)
            .expect("response"))
    }
}

/// Counts the watcher down when its task ends.
struct WatcherGuard(Arc<ApiServer>);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.metrics.watchers.dec();
    }
}

fn scopeguard(srv: Arc<ApiServer>) -> WatcherGuard {
    WatcherGuard(srv)
}

fn bookmark(res: &Resource, rev: i64) -> Bytes {
    let mut line = serde_json::to_vec(&json!({
        "type": "BOOKMARK",
        "object": {"kind": res.kind, "apiVersion": res.api_version(), "metadata": {"resourceVersion": rev.to_string(), "creationTimestamp": null}}
    }))
    .expect("json");
    line.push(b'\n');
    Bytes::from(line)
}

/// Maps a store event to a watch event for this watcher, applying the selector transitions:
/// an object that starts matching is ADDED, one that stops matching is DELETED.
fn translate(
    res: &'static Resource,
    filter: &Filter,
    ev: &skiff_store::Event,
) -> Option<(&'static str, Value)> {
    let cur = to_external(res, decode_kv(&ev.kv).ok()?);
    let prev_matches = ev
        .prev
        .as_ref()
        .and_then(|p| decode_kv(p).ok())
        .map(|p| filter.is_empty() || filter.matches(res, &to_external(res, p)))
        .unwrap_or(false);
    match ev.kind {
        EventKind::Delete => {
            if filter.is_empty() || filter.matches(res, &cur) || prev_matches {
                Some(("DELETED", cur))
            } else {
                None
            }
        }
        EventKind::Put => {
            let now = filter.is_empty() || filter.matches(res, &cur);
            match (ev.prev.is_some(), prev_matches, now) {
                (false, _, true) => Some(("ADDED", cur)),
                (true, true, true) => Some(("MODIFIED", cur)),
                (true, false, true) => Some(("ADDED", cur)),
                (true, true, false) => {
                    // The previous state, at this event's revision.
                    let mut prev = decode_kv(ev.prev.as_ref()?).ok()?;
                    crate::objects::set_revision(&mut prev, ev.revision());
                    Some(("DELETED", to_external(res, prev)))
                }
                _ => None,
            }
        }
    }
}
