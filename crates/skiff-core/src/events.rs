//! Conversion between core/v1 Event and events.k8s.io/v1 Event, which share one storage (the
//! server stores the core/v1 form), following pkg/apis/events/v1/conversion.go:
//! `regarding`↔`involvedObject`, `note`↔`message`, `deprecatedSource`↔`source`,
//! `deprecatedFirstTimestamp`/`deprecatedLastTimestamp`/`deprecatedCount` ↔
//! `firstTimestamp`/`lastTimestamp`/`count`, `reportingController`↔`reportingComponent`; the
//! rest (`eventTime`, `series`, `related`, `reportingInstance`, `action`, `reason`, `type`)
//! copied as is.
//!
//! Output keys follow the Go struct order and its JSON encoding: zero times are `null`,
//! `omitempty` fields are dropped when empty, and fields without `omitempty` (core's
//! `reportingComponent`/`reportingInstance`, both versions' `eventTime`) are always present.

use serde_json::{Map, Value};

fn get<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn non_empty_str(obj: &Value, key: &str) -> Option<Value> {
    get(obj, key)
        .filter(|v| v.as_str().is_none_or(|s| !s.is_empty()))
        .cloned()
}

fn non_zero_int(obj: &Value, key: &str) -> Option<Value> {
    get(obj, key).filter(|v| v.as_i64() != Some(0)).cloned()
}

fn time_or_null(obj: &Value, key: &str) -> Value {
    non_empty_str(obj, key).unwrap_or(Value::Null)
}

fn object_or_empty(obj: &Value, key: &str) -> Value {
    get(obj, key)
        .filter(|v| v.is_object())
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()))
}

fn put(out: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        out.insert(key.to_string(), v);
    }
}

/// A core/v1 Event in events.k8s.io/v1 form.
pub fn core_to_events_v1(ev: &Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), "Event".into());
    out.insert("apiVersion".into(), "events.k8s.io/v1".into());
    out.insert("metadata".into(), object_or_empty(ev, "metadata"));
    out.insert("eventTime".into(), time_or_null(ev, "eventTime"));
    put(&mut out, "series", get(ev, "series").cloned());
    put(
        &mut out,
        "reportingController",
        non_empty_str(ev, "reportingComponent"),
    );
    put(
        &mut out,
        "reportingInstance",
        non_empty_str(ev, "reportingInstance"),
    );
    put(&mut out, "action", non_empty_str(ev, "action"));
    put(&mut out, "reason", non_empty_str(ev, "reason"));
    out.insert("regarding".into(), object_or_empty(ev, "involvedObject"));
    put(&mut out, "related", get(ev, "related").cloned());
    put(&mut out, "note", non_empty_str(ev, "message"));
    put(&mut out, "type", non_empty_str(ev, "type"));
    out.insert("deprecatedSource".into(), object_or_empty(ev, "source"));
    out.insert(
        "deprecatedFirstTimestamp".into(),
        time_or_null(ev, "firstTimestamp"),
    );
    out.insert(
        "deprecatedLastTimestamp".into(),
        time_or_null(ev, "lastTimestamp"),
    );
    put(&mut out, "deprecatedCount", non_zero_int(ev, "count"));
    Value::Object(out)
}

/// An events.k8s.io/v1 Event in core/v1 (storage) form.
pub fn events_v1_to_core(ev: &Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), "Event".into());
    out.insert("apiVersion".into(), "v1".into());
    out.insert("metadata".into(), object_or_empty(ev, "metadata"));
    out.insert("involvedObject".into(), object_or_empty(ev, "regarding"));
    put(&mut out, "reason", non_empty_str(ev, "reason"));
    put(&mut out, "message", non_empty_str(ev, "note"));
    out.insert("source".into(), object_or_empty(ev, "deprecatedSource"));
    out.insert(
        "firstTimestamp".into(),
        time_or_null(ev, "deprecatedFirstTimestamp"),
    );
    out.insert(
        "lastTimestamp".into(),
        time_or_null(ev, "deprecatedLastTimestamp"),
    );
    put(&mut out, "count", non_zero_int(ev, "deprecatedCount"));
    put(&mut out, "type", non_empty_str(ev, "type"));
    out.insert("eventTime".into(), time_or_null(ev, "eventTime"));
    put(&mut out, "series", get(ev, "series").cloned());
    put(&mut out, "action", non_empty_str(ev, "action"));
    put(&mut out, "related", get(ev, "related").cloned());
    let s = |k: &str| {
        get(ev, k)
            .cloned()
            .unwrap_or_else(|| Value::String(String::new()))
    };
    out.insert("reportingComponent".into(), s("reportingController"));
    out.insert("reportingInstance".into(), s("reportingInstance"));
    Value::Object(out)
}

/// Converts an Event from whichever version it is in to the core/v1 storage form, normalized
/// as the upstream JSON encoding would write it.
pub fn to_core(ev: &Value) -> Value {
    if ev.get("apiVersion").and_then(Value::as_str) == Some("events.k8s.io/v1")
        || ev.get("regarding").is_some()
    {
        events_v1_to_core(ev)
    } else {
        events_v1_to_core(&core_to_events_v1(ev))
    }
}
