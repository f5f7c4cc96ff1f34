//! Events as upstream's event recorder writes them (core/v1 `Event`).
//!
//! A recorder never blocks its caller: events go through a channel to a writer task, which
//! keeps up to 32 writes in flight so that a burst shares the store's commits. The same
//! event (same object, type, reason and message from the same component) seen again updates
//! the existing Event's `count` and `lastTimestamp` instead of creating another, as client-go's
//! event correlator does, so `kubectl describe` shows `(x5 over 2m)`. Names are
//! `<object name>.<hex nanoseconds>` like upstream's.
//!
//! Like client-go's spam filter, each object may get a burst of 25 events from one component,
//! then one more every 5 minutes; the rest are dropped. A ReplicaSet creating 10,000 pods so
//! records its first 25 `SuccessfulCreate` events, not 10,000 writes.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The correlation maps' hasher: keys are a few strings per event (names, reason, message),
/// hashed several times per event; SipHash cost more than the rest of the bookkeeping.
type Hasher = foldhash::fast::RandomState;

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use crate::cache::Object;
use crate::client::Client;
use crate::clock::Clock;

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

struct Pending {
    involved: ObjectReference,
    kind: EventType,
    reason: String,
    message: String,
}

/// Correlation key → (event namespace, event name, count).
type Seen = HashMap<Key, (String, String, i32), Hasher>;

/// Bounds the correlation memory.
const MAX_SEEN: usize = 4096;

/// client-go's spam filter: events per object in a burst, and the time to earn one more.
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL: std::time::Duration = std::time::Duration::from_secs(300);

/// A token bucket per involved object (upstream's `EventSourceObjectSpamFilter`).
#[derive(Default)]
pub(crate) struct SpamFilter {
    /// Keyed by the involved object's kind, namespace, name and uid ([`push_parts`]).
    buckets: HashMap<Box<[u8]>, (f64, jiff::Timestamp), Hasher>,
    /// The key being looked up, kept so that an object seen before costs no allocation.
    scratch: Vec<u8>,
}

impl SpamFilter {
    /// Whether an event about `involved` may be written at `now`.
    pub(crate) fn allow(&mut self, involved: &ObjectReference, now: jiff::Timestamp) -> bool {
        fn field(f: &Option<String>) -> &str {
            f.as_deref().unwrap_or_default()
        }
        self.scratch.clear();
        push_parts(
            &mut self.scratch,
            &[
                field(&involved.kind),
                field(&involved.namespace),
                field(&involved.name),
                field(&involved.uid),
            ],
        );
        let bucket = match self.buckets.get_mut(self.scratch.as_slice()) {
            Some(b) => b,
            None => {
                if self.buckets.len() >= MAX_SEEN {
                    self.buckets.clear();
                }
                self.buckets
                    .entry(self.scratch.as_slice().into())
                    .or_insert((SPAM_BURST, now))
            }
        };
        let (tokens, last) = bucket;
        let earned = now.duration_since(*last).as_secs_f64().max(0.0) / SPAM_REFILL.as_secs_f64();
        *tokens = (*tokens + earned).min(SPAM_BURST);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Appends `parts` to `out`, each after its length, so that distinct lists of parts never
/// give the same bytes (a key of several strings without a copy of each).
fn push_parts(out: &mut Vec<u8>, parts: &[&str]) {
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p.as_bytes());
    }
}

/// Records events for one component. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::UnboundedSender<Pending>,
    component: &'static str,
}

impl Recorder {
    pub(crate) fn new(
        client: Client,
        component: &'static str,
        clock: Clock,
        tasks: &crate::Tasks,
    ) -> Recorder {
        let (tx, rx) = mpsc::unbounded_channel();
        tasks.spawn(write_loop(client, component, clock, rx));
        Recorder { tx, component }
    }

    pub fn component(&self) -> &'static str {
        self.component
    }

    /// Records an event about `obj`.
    pub fn event<K: Object>(
        &self,
        obj: &K,
        kind: EventType,
        reason: &str,
        message: impl Into<String>,
    ) {
        self.event_ref(reference(obj), kind, reason, message);
    }

    /// Records an event about the object `involved` refers to.
    pub fn event_ref(
        &self,
        involved: ObjectReference,
        kind: EventType,
        reason: &str,
        message: impl Into<String>,
    ) {
        let _ = self.tx.send(Pending {
            involved,
            kind,
            reason: reason.to_string(),
            message: message.into(),
        });
    }

    pub fn normal<K: Object>(&self, obj: &K, reason: &str, message: impl Into<String>) {
        self.event(obj, EventType::Normal, reason, message);
    }

    pub fn warning<K: Object>(&self, obj: &K, reason: &str, message: impl Into<String>) {
        self.event(obj, EventType::Warning, reason, message);
    }
}

/// An object reference to `obj` as events carry it.
pub fn reference<K: Object>(obj: &K) -> ObjectReference {
    let m = obj.metadata();
    ObjectReference {
        api_version: Some(K::API_VERSION.to_string()),
        kind: Some(K::KIND.to_string()),
        name: m.name.clone(),
        namespace: m.namespace.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        field_path: None,
    }
}

/// The time part of an event's name: now, or just after the previous name's if the clock has
/// not moved on since.
fn unique_nanos(now: i128, last: i128) -> i128 {
    now.max(last + 1)
}

/// Most event writes in flight per recorder. Writes share the store's group commits, so a
/// burst of events (a `Scheduled` event per pod) costs a few commits rather than one each;
/// events with the same correlation key still go one at a time, so a repeat always finds the
/// Event it counts on.
const MAX_IN_FLIGHT: usize = 32;

/// The correlation key: the event's namespace, the involved object's uid and name, the type,
/// reason and message ([`push_parts`]). Shared by the correlation map, the writes in flight
/// and the write that carries it, without a copy each.
type Key = Arc<[u8]>;

/// What a finished write leaves for correlation: the key and, if the write succeeded, the
/// Event's namespace, name and count.
type Written = (Key, Option<(String, String, i32)>);

/// A Kubernetes time (`now_k8s`) as its JSON text, formatted once per second of the clock
/// rather than once per event.
#[derive(Default)]
struct TimeText {
    second: Option<i64>,
    text: String,
}

impl TimeText {
    fn of(&mut self, t: &Time) -> &str {
        let second = t.0.as_second();
        if self.second != Some(second) {
            self.text = match serde_json::to_value(t) {
                Ok(Value::String(s)) => s,
                _ => String::new(),
            };
            self.second = Some(second);
        }
        &self.text
    }
}

/// What one Event says: its name and namespace, what it is about, and what happened.
struct EventFields {
    name: String,
    ns: String,
    involved: ObjectReference,
    kind: EventType,
    reason: String,
    message: String,
}

/// The Event a recorder creates, as the JSON `serde_json::to_value` gives for the typed
/// [`Event`] (the same members in the same order), built without the typed value.
fn event_value(f: EventFields, time: &str, component: &str) -> Value {
    let s = |v: String| Value::String(v);
    let mut r = Map::with_capacity(7);
    for (k, v) in reference_fields(f.involved) {
        if let Some(v) = v {
            r.insert(k.into(), s(v));
        }
    }
    let mut m = Map::with_capacity(2);
    m.insert("name".into(), s(f.name));
    m.insert("namespace".into(), s(f.ns));
    let mut source = Map::with_capacity(1);
    source.insert("component".into(), s(component.into()));
    let mut e = Map::with_capacity(14);
    e.insert("apiVersion".into(), s("v1".into()));
    e.insert("kind".into(), s("Event".into()));
    e.insert("count".into(), Value::from(1));
    e.insert("firstTimestamp".into(), s(time.into()));
    e.insert("involvedObject".into(), Value::Object(r));
    e.insert("lastTimestamp".into(), s(time.into()));
    e.insert("message".into(), s(f.message));
    e.insert("metadata".into(), Value::Object(m));
    e.insert("reason".into(), s(f.reason));
    e.insert("reportingComponent".into(), s(component.into()));
    e.insert("reportingInstance".into(), s(component.into()));
    e.insert("source".into(), Value::Object(source));
    e.insert("type".into(), s(f.kind.as_str().into()));
    Value::Object(e)
}

/// An involved object's members as the typed [`ObjectReference`] serializes them, in order.
fn reference_fields(r: ObjectReference) -> [(&'static str, Option<String>); 7] {
    [
        ("apiVersion", r.api_version),
        ("fieldPath", r.field_path),
        ("kind", r.kind),
        ("name", r.name),
        ("namespace", r.namespace),
        ("resourceVersion", r.resource_version),
        ("uid", r.uid),
    ]
}

/// Builds the recorder's Events as JSON by filling in a copy of a template: cloning a map
/// copies its members' hashes, where inserting each member hashes its name again. One
/// template per set of members the involved object has (an event's shape), for one component.
struct EventJson {
    component: &'static str,
    templates: Vec<(u8, Value)>,
}

impl EventJson {
    fn new(component: &'static str) -> EventJson {
        EventJson {
            component,
            templates: Vec::new(),
        }
    }

    /// What [`event_value`] gives for these fields and the recorder's component.
    fn build(&mut self, f: EventFields, time: &str) -> Value {
        let EventFields {
            name,
            ns,
            involved,
            kind,
            reason,
            message,
        } = f;
        let mut fields = reference_fields(involved);
        let shape = fields
            .iter()
            .enumerate()
            .fold(0u8, |m, (i, (_, f))| m | (u8::from(f.is_some()) << i));
        let at = match self.templates.iter().position(|(s, _)| *s == shape) {
            Some(at) => at,
            None => {
                let empty = |i: usize| (shape & (1 << i) != 0).then(String::new);
                let involved = ObjectReference {
                    api_version: empty(0),
                    field_path: empty(1),
                    kind: empty(2),
                    name: empty(3),
                    namespace: empty(4),
                    resource_version: empty(5),
                    uid: empty(6),
                };
                let blank = EventFields {
                    name: String::new(),
                    ns: String::new(),
                    involved,
                    kind,
                    reason: String::new(),
                    message: String::new(),
                };
                let t = event_value(blank, "", self.component);
                self.templates.push((shape, t));
                self.templates.len() - 1
            }
        };
        let mut v = self.templates[at].1.clone();
        let (mut name, mut ns, mut reason, mut message) = (name, ns, reason, message);
        let Value::Object(e) = &mut v else {
            return v;
        };
        let set = |x: &mut Value, s: &mut String| *x = Value::String(std::mem::take(s));
        for (k, x) in e.iter_mut() {
            match k.as_str() {
                "firstTimestamp" | "lastTimestamp" => *x = Value::String(time.to_string()),
                "message" => set(x, &mut message),
                "reason" => set(x, &mut reason),
                "type" => *x = Value::String(kind.as_str().to_string()),
                "metadata" => {
                    for (k, x) in x.as_object_mut().into_iter().flat_map(|m| m.iter_mut()) {
                        match k.as_str() {
                            "name" => set(x, &mut name),
                            "namespace" => set(x, &mut ns),
                            _ => {}
                        }
                    }
                }
                "involvedObject" => {
                    for (k, x) in x.as_object_mut().into_iter().flat_map(|m| m.iter_mut()) {
                        if let Some(f) = fields
                            .iter_mut()
                            .find(|(n, _)| *n == k.as_str())
                            .and_then(|(_, f)| f.take())
                        {
                            *x = Value::String(f);
                        }
                    }
                }
                _ => {}
            }
        }
        v
    }
}

async fn write_loop(
    client: Client,
    component: &'static str,
    clock: Clock,
    mut rx: mpsc::UnboundedReceiver<Pending>,
) {
    let mut seen: Seen = HashMap::default();
    let mut spam = SpamFilter::default();
    let mut last_nanos: i128 = 0;
    let mut writes: tokio::task::JoinSet<Written> = tokio::task::JoinSet::new();
    let mut in_flight: HashSet<Key, Hasher> = HashSet::default();
    let mut times = TimeText::default();
    let mut events = EventJson::new(component);
    let mut scratch = Vec::new();
    let note = |seen: &mut Seen, in_flight: &mut HashSet<Key, Hasher>, done| {
        if let Ok((key, result)) = done {
            in_flight.remove(&key);
            match result {
                Some(v) => {
                    if seen.len() >= MAX_SEEN && !seen.contains_key(&key) {
                        seen.clear();
                    }
                    seen.insert(key, v);
                }
                None => {
                    seen.remove(&key);
                }
            }
        }
    };
    loop {
        let p = tokio::select! {
            p = rx.recv(), if writes.len() < MAX_IN_FLIGHT => match p {
                Some(p) => p,
                None => break,
            },
            Some(done) = writes.join_next() => {
                note(&mut seen, &mut in_flight, done);
                continue;
            }
        };
        if !spam.allow(&p.involved, clock.now()) {
            continue;
        }
        let ns = match p.involved.namespace.as_deref() {
            Some(n) if !n.is_empty() => n,
            _ => "default",
        };
        scratch.clear();
        push_parts(
            &mut scratch,
            &[
                ns,
                p.involved.uid.as_deref().unwrap_or_default(),
                p.involved.name.as_deref().unwrap_or_default(),
                p.kind.as_str(),
                &p.reason,
                &p.message,
            ],
        );
        // The same event is being written: wait for it, so this one counts on it.
        while in_flight.contains(scratch.as_slice()) {
            match writes.join_next().await {
                Some(done) => note(&mut seen, &mut in_flight, done),
                None => break,
            }
        }
        let key: Key = scratch.as_slice().into();
        let ns = ns.to_string();
        let now = clock.now();
        let time = crate::clock::k8s_time(now);
        // Names stay unique even when the clock stands still (paused in tests) or repeats,
        // and follow the order events were recorded in.
        last_nanos = unique_nanos(now.as_nanosecond(), last_nanos);
        let name = format!(
            "{}.{:x}",
            p.involved.name.as_deref().unwrap_or("event"),
            last_nanos
        );
        let existing = seen.get(&key).cloned();
        let time = times.of(&time);
        let patch = existing
            .as_ref()
            .map(|(_, _, count)| serde_json::json!({"count": count + 1, "lastTimestamp": time}));
        let ev = events.build(
            EventFields {
                name: name.clone(),
                ns: ns.clone(),
                involved: p.involved,
                kind: p.kind,
                reason: p.reason,
                message: p.message,
            },
            time,
        );
        in_flight.insert(key.clone());
        let client = client.clone();
        writes.spawn(async move {
            // A repeat counts on the Event already written; if that is gone, a new one.
            if let (Some((ens, ename, count)), Some(patch)) = (existing, patch) {
                if client
                    .merge_patch::<Event>(Some(&ens), &ename, &patch)
                    .await
                    .is_ok()
                {
                    return (key, Some((ens, ename, count + 1)));
                }
            }
            let done = match client.create_value::<Event>(Some(&ns), ev).await {
                Ok(_) => Some((ns, name, 1)),
                Err(e) => {
                    tracing::debug!(error = %e, "event not recorded");
                    None
                }
            };
            (key, done)
        });
    }
    while let Some(done) = writes.join_next().await {
        note(&mut seen, &mut in_flight, done);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EventSource, Pod};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use skiff_apiserver::{ApiOptions, ApiServer};
    use skiff_store::sqlite::{SqliteOptions, SqliteStore};
    use std::sync::Arc;

    fn pod(name: &str) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Writes in flight side by side still correlate: repeats of one event count on the one
    /// Event, every distinct event is written once, names follow the recording order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_keep_correlation_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("db"), SqliteOptions::default()).unwrap();
        let api = ApiServer::new(store, ApiOptions::default());
        api.bootstrap().await.unwrap();
        let rt = crate::Runtime::new(api);
        let rec = rt.recorder("default-scheduler");
        let pods: Vec<Pod> = (0..100).map(|i| pod(&format!("p{i}"))).collect();
        for (i, p) in pods.iter().enumerate() {
            rec.normal(
                p,
                "Scheduled",
                format!("Successfully assigned default/p{i}"),
            );
            if i % 10 == 0 {
                rec.warning(&pods[0], "BackOff", "Back-off restarting failed container");
            }
        }
        let events = rt.cache.synced::<Event>().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let backoff_count = || {
            events
                .list()
                .iter()
                .filter(|e| e.reason.as_deref() == Some("BackOff"))
                .map(|e| e.count.unwrap_or(0))
                .collect::<Vec<_>>()
        };
        while events.len() < 101 || backoff_count() != vec![10] {
            assert!(
                std::time::Instant::now() < deadline,
                "{} events, BackOff counts {:?}",
                events.len(),
                backoff_count()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(events.len(), 101);
        let mut scheduled: Vec<Arc<Event>> = events
            .list()
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("Scheduled"))
            .collect();
        assert_eq!(scheduled.len(), 100);
        // Names carry increasing nanoseconds in the order the events were recorded.
        scheduled.sort_by_key(|e| {
            let n = e.metadata.name.clone().unwrap();
            i128::from_str_radix(n.rsplit_once('.').unwrap().1, 16).unwrap()
        });
        let order: Vec<String> = scheduled
            .iter()
            .map(|e| e.involved_object.name.clone().unwrap())
            .collect();
        let want: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
        assert_eq!(order, want);
        rt.shutdown().await;
    }

    /// The Event built as JSON is, byte for byte, what serializing the typed Event gives
    /// (with and without the optional members of the involved object).
    #[test]
    fn event_json_is_the_typed_events() {
        let t: jiff::Timestamp = "2026-01-01T10:20:30.6Z".parse().unwrap();
        let time = crate::clock::k8s_time(t);
        let mut times = TimeText::default();
        let text = times.of(&time).to_string();
        let mut events = EventJson::new("default-scheduler");
        assert_eq!(text, "2026-01-01T10:20:31Z");
        let full = reference(&pod("p1"));
        let sparse = ObjectReference {
            name: Some("n1".into()),
            field_path: Some("spec.containers{c}".into()),
            namespace: Some(String::new()),
            ..Default::default()
        };
        for (involved, kind) in [(full, EventType::Normal), (sparse, EventType::Warning)] {
            let typed = Event {
                metadata: ObjectMeta {
                    name: Some("p1.17".into()),
                    namespace: Some("default".into()),
                    ..Default::default()
                },
                involved_object: involved.clone(),
                reason: Some("Scheduled".into()),
                message: Some("Successfully assigned \"x\"".into()),
                type_: Some(kind.as_str().to_string()),
                count: Some(1),
                first_timestamp: Some(time.clone()),
                last_timestamp: Some(time.clone()),
                source: Some(EventSource {
                    component: Some("default-scheduler".into()),
                    host: None,
                }),
                reporting_component: Some("default-scheduler".into()),
                reporting_instance: Some("default-scheduler".into()),
                ..Default::default()
            };
            let want = serde_json::to_string(&serde_json::to_value(&typed).unwrap()).unwrap();
            let fields = || EventFields {
                name: "p1.17".into(),
                ns: "default".into(),
                involved: involved.clone(),
                kind,
                reason: "Scheduled".into(),
                message: "Successfully assigned \"x\"".into(),
            };
            let built = event_value(fields(), &text, "default-scheduler");
            assert_eq!(serde_json::to_string(&built).unwrap(), want);
            // From the template: built the first time, copied the second.
            for _ in 0..2 {
                let filled = events.build(fields(), &text);
                assert_eq!(serde_json::to_string(&filled).unwrap(), want);
            }
        }
    }

    /// Correlation and spam keys of different fields never coincide.
    #[test]
    fn keys_keep_their_parts_apart() {
        let key = |parts: &[&str]| {
            let mut k = Vec::new();
            push_parts(&mut k, parts);
            k
        };
        assert_ne!(key(&["ab", "c"]), key(&["a", "bc"]));
        assert_ne!(key(&["a\0", ""]), key(&["a", "\0"]));
        assert_eq!(key(&["a", "b"]), key(&["a", "b"]));
    }

    #[test]
    fn event_names_stay_unique_when_the_clock_stands_still() {
        let a = unique_nanos(1_000, 0);
        let b = unique_nanos(1_000, a);
        let c = unique_nanos(999, b);
        assert_eq!((a, b, c), (1_000, 1_001, 1_002));
        assert_eq!(unique_nanos(5_000, c), 5_000);
    }

    #[test]
    fn spam_filter_allows_a_burst_then_one_per_five_minutes_per_object() {
        let t0: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let rs = ObjectReference {
            kind: Some("ReplicaSet".into()),
            name: Some("web".into()),
            uid: Some("u1".into()),
            ..Default::default()
        };
        let other = ObjectReference {
            name: Some("db".into()),
            ..rs.clone()
        };
        let mut f = SpamFilter::default();
        let allowed = (0..100).filter(|_| f.allow(&rs, t0)).count();
        assert_eq!(allowed, 25);
        assert!(f.allow(&other, t0), "another object has its own bucket");
        assert!(!f.allow(&rs, t0 + jiff::SignedDuration::from_secs(299)));
        assert!(f.allow(&rs, t0 + jiff::SignedDuration::from_secs(301)));
        assert!(!f.allow(&rs, t0 + jiff::SignedDuration::from_secs(302)));
    }
}
