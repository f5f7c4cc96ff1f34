//! core/v1 ↔ events.k8s.io/v1 Event conversion.

use serde_json::{json, Value};
use skiff_core::events::{core_to_events_v1, events_v1_to_core, to_core};

fn full_core() -> Value {
    json!({
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web", "uid": "u1", "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
        "reason": "Pulled",
        "message": "Pulled image",
        "source": {"component": "kubelet", "host": "node1"},
        "firstTimestamp": "2024-01-01T00:00:00Z",
        "lastTimestamp": "2024-01-01T00:05:00Z",
        "count": 3,
        "type": "Normal",
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "series": {"count": 2, "lastObservedTime": "2024-01-01T00:05:00.000000Z"},
        "action": "Pulling",
        "related": {"kind": "Node", "name": "node1"},
        "reportingComponent": "kubelet",
        "reportingInstance": "node1"
    })
}

#[test]
fn core_to_v1_maps_every_field() {
    let v1 = core_to_events_v1(&full_core());
    assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1["regarding"]["name"], "web");
    assert_eq!(v1["note"], "Pulled image");
    assert_eq!(v1["deprecatedSource"]["component"], "kubelet");
    assert_eq!(v1["deprecatedFirstTimestamp"], "2024-01-01T00:00:00Z");
    assert_eq!(v1["deprecatedLastTimestamp"], "2024-01-01T00:05:00Z");
    assert_eq!(v1["deprecatedCount"], 3);
    assert_eq!(v1["reportingController"], "kubelet");
    assert_eq!(v1["reportingInstance"], "node1");
    assert_eq!(v1["series"]["count"], 2);
    assert_eq!(v1["related"]["kind"], "Node");
    assert_eq!(v1["action"], "Pulling");
    let keys: Vec<&str> = v1.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "kind",
            "apiVersion",
            "metadata",
            "eventTime",
            "series",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "regarding",
            "related",
            "note",
            "type",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
            "deprecatedCount"
        ]
    );
}

#[test]
fn round_trips() {
    let core = full_core();
    assert_eq!(events_v1_to_core(&core_to_events_v1(&core)), core);
    let v1 = core_to_events_v1(&core);
    assert_eq!(core_to_events_v1(&events_v1_to_core(&v1)), v1);
}

#[test]
fn sparse_events_encode_zero_values_like_go() {
    let v1 = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "x", "namespace": "d"},
        "eventTime": "2024-01-01T00:00:00.000000Z",
        "reportingController": "ctl", "reportingInstance": "i",
        "action": "Do", "reason": "Did", "regarding": {"kind": "Pod", "name": "p"},
        "note": "hello", "type": "Normal"
    });
    let core = events_v1_to_core(&v1);
    assert_eq!(core["firstTimestamp"], Value::Null);
    assert_eq!(core["lastTimestamp"], Value::Null);
    assert_eq!(core["source"], json!({}));
    assert!(core.get("count").is_none());
    assert_eq!(core["reportingComponent"], "ctl");
    assert_eq!(core["message"], "hello");
    assert_eq!(core_to_events_v1(&core), {
        let mut want = v1.clone();
        let o = want.as_object_mut().unwrap();
        o.insert("deprecatedSource".into(), json!({}));
        o.insert("deprecatedFirstTimestamp".into(), Value::Null);
        o.insert("deprecatedLastTimestamp".into(), Value::Null);
        let mut sorted = serde_json::Map::new();
        for k in [
            "kind",
            "apiVersion",
            "metadata",
            "eventTime",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "regarding",
            "note",
            "type",
            "deprecatedSource",
            "deprecatedFirstTimestamp",
            "deprecatedLastTimestamp",
        ] {
            sorted.insert(k.into(), o[k].clone());
        }
        Value::Object(sorted)
    });

    let old = json!({"metadata": {"name": "o"}, "involvedObject": {"name": "p"}, "message": "m", "count": 1});
    let normal = to_core(&old);
    assert_eq!(normal["eventTime"], Value::Null);
    assert_eq!(normal["reportingComponent"], "");
    assert_eq!(normal["reportingInstance"], "");
    assert_eq!(normal["count"], 1);
    assert_eq!(to_core(&normal), normal);
}
