//! Field selector parsing and per-kind field support against upstream's behaviour.

use serde_json::json;
use skiff_core::fields::{check_supported, convert, field_value, FieldSelector};
use skiff_core::registry::lookup;
use skiff_core::Resource;

fn res(group: &str, plural: &str) -> &'static Resource {
    lookup(group, "v1", plural).unwrap()
}

#[test]
fn parses_and_prints() {
    let sel = FieldSelector::parse("spec.nodeName=n1,metadata.name!=a").unwrap();
    assert_eq!(sel.to_string(), "metadata.name!=a,spec.nodeName=n1");
    assert_eq!(FieldSelector::parse("a==b").unwrap().to_string(), "a=b");
    assert!(FieldSelector::parse("").unwrap().is_empty());
    assert_eq!(FieldSelector::parse("a=").unwrap().terms()[0].value, "");
    let esc = FieldSelector::parse(r"a=x\,y\=z\\w").unwrap();
    assert_eq!(esc.terms()[0].value, r"x,y=z\w");
    assert_eq!(esc.to_string(), r"a=x\,y\=z\\w");
    assert_eq!(esc.requires_exact_match("a"), Some(r"x,y=z\w"));
}

#[test]
fn rejects_bad_syntax() {
    assert_eq!(
        FieldSelector::parse("abc").unwrap_err(),
        "invalid selector: 'abc'; can't understand 'abc'"
    );
    assert_eq!(
        FieldSelector::parse(r"a=b\c").unwrap_err(),
        r"invalid field selector: invalid escape sequence: \c"
    );
    assert_eq!(
        FieldSelector::parse("a=b=c").unwrap_err(),
        "invalid field selector: unescaped character in value: 61"
    );
}

#[test]
fn supported_labels_per_kind() {
    let pods = res("", "pods");
    let ok = |r: &Resource, s: &str| check_supported(r, &FieldSelector::parse(s).unwrap());
    assert!(ok(
        pods,
        "metadata.name=a,metadata.namespace=b,spec.nodeName=n,status.phase=Running"
    )
    .is_ok());
    assert!(ok(
        pods,
        "spec.hostNetwork=true,status.podIPs=1,spec.restartPolicy=Always"
    )
    .is_ok());
    assert_eq!(
        ok(pods, "spec.foo=x").unwrap_err(),
        "field label not supported: spec.foo"
    );
    assert!(ok(res("", "nodes"), "spec.unschedulable=true,metadata.name=a").is_ok());
    assert_eq!(
        ok(res("", "nodes"), "metadata.namespace=").unwrap_err(),
        "field label not supported: metadata.namespace"
    );
    assert!(ok(res("", "secrets"), "type=Opaque").is_ok());
    assert!(ok(
        res("", "services"),
        "spec.clusterIP=None,spec.type=ClusterIP"
    )
    .is_ok());
    assert!(ok(res("", "namespaces"), "status.phase=Active").is_ok());
    assert!(ok(res("", "configmaps"), "metadata.namespace=x").is_ok());
    assert!(ok(res("", "configmaps"), "data.x=y").is_err());
    assert!(ok(
        res("rbac.authorization.k8s.io", "clusterroles"),
        "metadata.namespace="
    )
    .is_ok());
    assert!(ok(res("batch", "jobs"), "status.successful=1").is_ok());
    assert!(ok(res("apps", "replicasets"), "status.replicas=1").is_ok());
    assert!(ok(
        res("", "events"),
        "involvedObject.name=a,reason=x,source=k,type=Normal"
    )
    .is_ok());
    assert!(ok(
        res("events.k8s.io", "events"),
        "regarding.name=a,reportingController=k"
    )
    .is_ok());
    assert!(ok(res("events.k8s.io", "events"), "involvedObject.name=a").is_err());
}

#[test]
fn pod_fields_and_missing_values() {
    let pods = res("", "pods");
    let pod = json!({
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {"restartPolicy": "Always"},
        "status": {"phase": "Pending", "podIPs": [{"ip": "10.0.0.1"}]}
    });
    assert_eq!(
        field_value(pods, &pod, "spec.nodeName").as_deref(),
        Some("")
    );
    assert_eq!(
        field_value(pods, &pod, "spec.hostNetwork").as_deref(),
        Some("false")
    );
    assert_eq!(
        field_value(pods, &pod, "status.podIP").as_deref(),
        Some("10.0.0.1")
    );
    assert_eq!(field_value(pods, &pod, "spec.host").as_deref(), Some(""));
    assert_eq!(field_value(pods, &pod, "spec.bogus"), None);
    let m = |s: &str| FieldSelector::parse(s).unwrap().matches(pods, &pod);
    assert!(m("spec.nodeName="));
    assert!(!m("spec.nodeName!="));
    assert!(m(
        "metadata.name=p,metadata.namespace=default,status.phase!=Running"
    ));
    assert!(!m("metadata.name=q"));
    let conv = convert(pods, &FieldSelector::parse("spec.host=n").unwrap()).unwrap();
    assert_eq!(conv.to_string(), "spec.nodeName=n");
}

#[test]
fn event_fields_in_both_versions() {
    let core = res("", "events");
    let v1 = res("events.k8s.io", "events");
    let ev = json!({
        "metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "ns"},
        "reason": "Started",
        "source": {},
        "reportingComponent": "kubelet",
        "type": "Normal"
    });
    assert_eq!(
        field_value(core, &ev, "involvedObject.name").as_deref(),
        Some("web")
    );
    assert_eq!(field_value(core, &ev, "source").as_deref(), Some("kubelet"));
    assert_eq!(
        field_value(v1, &ev, "regarding.kind").as_deref(),
        Some("Pod")
    );
    assert_eq!(
        field_value(v1, &ev, "reportingController").as_deref(),
        Some("kubelet")
    );
    let v1_form = skiff_core::events::core_to_events_v1(&ev);
    assert_eq!(
        field_value(v1, &v1_form, "regarding.name").as_deref(),
        Some("web")
    );
    assert!(FieldSelector::parse("regarding.name=web,type=Normal")
        .unwrap()
        .matches(v1, &v1_form));
}

#[test]
fn numeric_and_bool_fields() {
    let rc = res("", "replicationcontrollers");
    assert_eq!(
        field_value(rc, &json!({"status": {"replicas": 3}}), "status.replicas").as_deref(),
        Some("3")
    );
    assert_eq!(
        field_value(rc, &json!({}), "status.replicas").as_deref(),
        Some("0")
    );
    let jobs = res("batch", "jobs");
    assert_eq!(
        field_value(
            jobs,
            &json!({"status": {"succeeded": 2}}),
            "status.successful"
        )
        .as_deref(),
        Some("2")
    );
    let nodes = res("", "nodes");
    assert_eq!(
        field_value(
            nodes,
            &json!({"spec": {"unschedulable": true}}),
            "spec.unschedulable"
        )
        .as_deref(),
        Some("true")
    );
    let ns = res("", "namespaces");
    assert_eq!(
        field_value(
            ns,
            &json!({"metadata": {"name": "x"}}),
            "metadata.namespace"
        ),
        None
    );
}
