//! A simulated kubelet's pod status as the JSON value its status write carries: the value
//! `serde_json::to_value` gives, with the parts that repeat from pod to pod reused.
//!
//! Serializing a `PodStatus` formats each of its times with `jiff::fmt::strtime` and builds
//! each map key by key, hashing every key; a first Running status has seven times, five of
//! them in its conditions. Those conditions are the same for every pod made Running in the
//! same second (types, statuses, transition times), and so are its containers' states (running
//! since that second). Each thread remembers the last few conditions and container states it
//! encoded, typed and as values, and a status whose condition or state equals a remembered one
//! takes a clone of its value (a map's clone copies its table without hashing, and formats no
//! time); so does its start time. The rest of the status is serialized by serde, with empty
//! conditions and states in the place of the real ones, which then go where serde wrote the
//! empty ones, and without the start time, which then goes last, where serde writes it: the
//! same entries in the same order as serializing the whole status.

use std::cell::RefCell;

use k8s_openapi::api::core::v1::{ContainerState, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::Serialize;
use serde_json::Value;
use skiff_core::meta::Fields as _;

/// Conditions and states remembered per thread (a pod has five conditions of its own).
const REMEMBERED: usize = 8;

#[derive(Default)]
struct Memo {
    conditions: Vec<(PodCondition, Value)>,
    states: Vec<(ContainerState, Value)>,
    start_times: Vec<(Time, Value)>,
}

thread_local! {
    static MEMO: RefCell<Memo> = RefCell::default();
}

/// `serde_json::to_value(status)`, with the values of conditions, container states and the
/// start time equal to recently encoded ones cloned. `status` is as it was when this returns:
/// those parts are moved out while the rest is serialized and moved back after.
pub(crate) fn status_value(status: &mut PodStatus) -> serde_json::Result<Value> {
    // The start time is the last member serde writes (the type's fields in order, `startTime`
    // last; `start_time_is_the_last_member` holds the type to that): left out, then appended.
    let start_time = status.start_time.take();
    let conditions = status.conditions.as_mut().map(std::mem::take);
    let states: Vec<Option<ContainerState>> = status
        .container_statuses
        .iter_mut()
        .flatten()
        .map(|c| c.state.as_mut().map(std::mem::take))
        .collect();
    let encoded = serde_json::to_value(&*status).map(|mut v| {
        let placed = MEMO.with(|memo| {
            let mut memo = memo.try_borrow_mut().ok()?;
            if let Some(cs) = &conditions {
                let values = cs
                    .iter()
                    .map(|c| remembered(&mut memo.conditions, c))
                    .collect::<Option<Vec<_>>>()?;
                put(&mut v, "conditions", Value::Array(values))?;
            }
            if states.iter().any(Option::is_some) {
                let items = v.field_mut("containerStatuses")?.as_array_mut()?;
                if items.len() != states.len() {
                    return None;
                }
                for (item, state) in items.iter_mut().zip(&states) {
                    if let Some(s) = state {
                        put(item, "state", remembered(&mut memo.states, s)?)?;
                    }
                }
            }
            if let Some(t) = &start_time {
                let t = remembered(&mut memo.start_times, t)?;
                let m = v.as_object_mut()?;
                if m.contains_key("startTime") {
                    return None;
                }
                m.insert("startTime".into(), t);
            }
            Some(())
        });
        (v, placed.is_some())
    });
    // The parts go back where they were taken from, whatever came of the encoding.
    status.start_time = start_time;
    if let (Some(cs), Some(slot)) = (conditions, status.conditions.as_mut()) {
        *slot = cs;
    }
    for (c, state) in status.container_statuses.iter_mut().flatten().zip(states) {
        if let (Some(s), Some(slot)) = (state, c.state.as_mut()) {
            *slot = s;
        }
    }
    match encoded? {
        (v, true) => Ok(v),
        // Not where serde should have put them (or the memo is busy): serde's whole value.
        (_, false) => serde_json::to_value(&*status),
    }
}

/// The value of `x`: a clone of the remembered one if an equal `x` was encoded lately, else
/// serialized (and remembered, the oldest forgotten). `None` if it does not serialize.
fn remembered<T: PartialEq + Clone + Serialize>(
    list: &mut Vec<(T, Value)>,
    x: &T,
) -> Option<Value> {
    if let Some((_, v)) = list.iter().find(|(t, _)| t == x) {
        return Some(v.clone());
    }
    let v = serde_json::to_value(x).ok()?;
    if list.len() >= REMEMBERED {
        list.remove(0);
    }
    list.push((x.clone(), v.clone()));
    Some(v)
}

/// Replaces the value of member `key` of object `obj` in place (found without hashing: a
/// status has a dozen members); `None` if it has no such member.
fn put(obj: &mut Value, key: &str, value: Value) -> Option<()> {
    *obj.field_mut(key)? = value;
    Some(())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::Duration;

    use jiff::Timestamp;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;
    use crate::simulated::pod::{self, Exit, Life, Placement, Script, Stage};

    fn t(s: u32) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + i64::from(s)).unwrap()
    }

    fn pod(status: Value, init: bool) -> Pod {
        let mut spec = json!({"containers": [{"name": "web", "image": "nginx"},
            {"name": "side", "image": "quay.io/x/y:1"}],
            "readinessGates": [{"conditionType": "example.com/gate"}]});
        if init {
            spec["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
        }
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": spec, "status": status
        }))
        .unwrap()
    }

    fn script(ready: bool) -> Script {
        Script {
            start_delay: Duration::ZERO,
            run: None,
            exit_code: 0,
            ready,
            active_deadline: None,
        }
    }

    fn life(stage: Stage, restarts: i32) -> Life {
        Life {
            stage,
            restarts,
            last: (restarts > 0).then_some(Exit {
                code: 1,
                started: t(1),
                finished: t(2),
            }),
            started: t(0),
            deadline_exceeded: false,
        }
    }

    /// Statuses the simulator writes over a pod's life, pods of several shapes, some with
    /// conditions another writer owns.
    fn statuses() -> Vec<PodStatus> {
        let place = Placement {
            host_ip: Ipv4Addr::new(198, 18, 0, 1),
            pod_ip: Some(Ipv4Addr::new(10, 42, 0, 2)),
        };
        let olds = [
            json!({"phase": "Pending", "qosClass": "BestEffort"}),
            json!({"phase": "Pending", "qosClass": "Burstable", "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
                {"type": "example.com/gate", "status": "True", "lastProbeTime": null,
                    "message": "a \"quoted\" message"}]}),
            json!(null),
        ];
        let stages = [
            Stage::Starting { since: t(0) },
            Stage::Running { since: t(3) },
            Stage::Running { since: t(4) },
            Stage::BackOff { until: t(20) },
            Stage::Exited { failed: true },
        ];
        let mut out = Vec::new();
        for (i, old) in olds.iter().enumerate() {
            for init in [false, true] {
                let p = pod(old.clone(), init);
                for (j, stage) in stages.iter().enumerate() {
                    let l = life(stage.clone(), (j % 3) as i32);
                    let now = t(5 + (i * j) as u32 % 3);
                    out.push(pod::status(&p, &l, &script(j % 2 == 0), &place, now));
                }
            }
        }
        // No conditions nor container statuses, and states left out.
        let mut bare = out[1].clone();
        bare.conditions = None;
        bare.container_statuses = None;
        out.push(bare);
        let mut stateless = out[2].clone();
        for c in stateless.container_statuses.iter_mut().flatten() {
            c.state = None;
        }
        out.push(stateless);
        out
    }

    /// Whatever this thread encoded before, a status encodes to serde's text, byte for byte
    /// (key order included), and is left as it was.
    #[test]
    fn values_are_serdes() {
        let all = statuses();
        for round in 0..3 {
            for (i, s) in all.iter().enumerate() {
                let mut encoded = s.clone();
                let v = status_value(&mut encoded).unwrap();
                assert_eq!(
                    v.to_string(),
                    serde_json::to_string(s).unwrap(),
                    "status {i}, round {round}"
                );
                assert_eq!(&encoded, s, "status {i} is put back");
            }
        }
    }

    /// With every field of the status set (named one by one, so that a field the type gains
    /// stops this from compiling until it is set here too), the value is serde's: the start
    /// time, appended, is where serde writes it.
    #[test]
    fn start_time_is_the_last_member() {
        let base = statuses().remove(3);
        let full = PodStatus {
            conditions: base.conditions.clone(),
            container_statuses: base.container_statuses.clone(),
            ephemeral_container_statuses: base.container_statuses.clone(),
            host_ip: Some("198.18.0.1".into()),
            host_ips: base.host_ips.clone(),
            init_container_statuses: base.container_statuses.clone(),
            message: Some("m".into()),
            nominated_node_name: Some("n".into()),
            phase: Some("Running".into()),
            pod_ip: Some("10.42.0.2".into()),
            pod_ips: base.pod_ips.clone(),
            qos_class: Some("Burstable".into()),
            reason: Some("r".into()),
            resize: Some("InProgress".into()),
            resource_claim_statuses: Some(vec![Default::default()]),
            start_time: base.start_time.clone(),
        };
        assert!(full.start_time.is_some());
        for _ in 0..2 {
            let mut encoded = full.clone();
            let v = status_value(&mut encoded).unwrap();
            assert_eq!(v.to_string(), serde_json::to_string(&full).unwrap());
            assert_eq!(encoded, full);
        }
    }

    /// The second pod made Running in the same second reuses the first one's conditions and
    /// container state.
    #[test]
    fn equal_conditions_are_remembered() {
        let all = statuses();
        let mut s = all[1].clone();
        status_value(&mut s).unwrap();
        let remembered = |s: &PodStatus| {
            MEMO.with(|m| {
                let m = m.borrow();
                s.conditions
                    .iter()
                    .flatten()
                    .all(|c| m.conditions.iter().any(|(r, _)| r == c))
                    && s.container_statuses
                        .iter()
                        .flatten()
                        .filter_map(|c| c.state.as_ref())
                        .all(|st| m.states.iter().any(|(r, _)| r == st))
            })
        };
        assert!(remembered(&s));
        let mut later = s.clone();
        for c in later.conditions.iter_mut().flatten() {
            c.last_transition_time =
                Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t(99)));
        }
        assert!(!remembered(&later));
        let v = status_value(&mut later).unwrap();
        assert_eq!(v.to_string(), serde_json::to_string(&later).unwrap());
        assert!(remembered(&later));
    }
}
