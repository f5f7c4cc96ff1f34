//! Defaults of built-in kinds as `kubectl get -o yaml` shows them after a create upstream.

use serde_json::{json, Value};
use skiff_core::defaults;
use skiff_core::registry::lookup;

fn defaulted(group: &str, plural: &str, mut obj: Value) -> Value {
    defaults::apply(lookup(group, "v1", plural).unwrap(), &mut obj);
    obj
}

#[test]
fn deployment_defaults() {
    let d = defaulted(
        "apps",
        "deployments",
        json!({"metadata": {"name": "web"}, "spec": {
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
            {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
             "readinessProbe": {"httpGet": {"port": 80}}}]}}}}),
    );
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    let t = &spec["template"];
    assert_eq!(t["metadata"]["creationTimestamp"], Value::Null);
    assert!(t["metadata"]
        .as_object()
        .unwrap()
        .contains_key("creationTimestamp"));
    let ps = &t["spec"];
    assert_eq!(ps["restartPolicy"], "Always");
    assert_eq!(ps["dnsPolicy"], "ClusterFirst");
    assert_eq!(ps["terminationGracePeriodSeconds"], 30);
    assert_eq!(ps["schedulerName"], "default-scheduler");
    assert_eq!(ps["securityContext"], json!({}));
    assert!(
        ps.get("enableServiceLinks").is_none(),
        "only pods get enableServiceLinks"
    );
    let c = &ps["containers"][0];
    assert_eq!(c["imagePullPolicy"], "IfNotPresent");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["resources"], json!({}));
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(
        c["readinessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
}

#[test]
fn pod_defaults_include_admission_effects() {
    let p = defaulted(
        "",
        "pods",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "busybox", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}],
        "volumes": [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "scratch"}]}}),
    );
    let s = &p["spec"];
    assert_eq!(s["enableServiceLinks"], true);
    assert_eq!(s["priority"], 0);
    assert_eq!(s["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(s["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(
        s["containers"][0]["resources"]["requests"],
        json!({"cpu": "1", "memory": "1Gi"})
    );
    assert_eq!(s["volumes"][0]["configMap"]["defaultMode"], 420);
    assert_eq!(s["volumes"][1]["emptyDir"], json!({}));
    assert_eq!(
        s["tolerations"],
        json!([
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
        ])
    );
    assert_eq!(
        p["status"],
        json!({"phase": "Pending", "qosClass": "Guaranteed"})
    );
    let again = defaulted("", "pods", p.clone());
    assert_eq!(again, p, "defaulting is idempotent");
}

#[test]
fn job_gets_generated_selector() {
    let j = defaulted(
        "batch",
        "jobs",
        json!({"metadata": {"name": "pi", "namespace": "default", "uid": "abc"}, "spec": {"template": {"spec": {
        "restartPolicy": "Never", "containers": [{"name": "c", "image": "perl"}]}}}}),
    );
    let s = &j["spec"];
    assert_eq!(s["completions"], 1);
    assert_eq!(s["parallelism"], 1);
    assert_eq!(s["backoffLimit"], 6);
    assert_eq!(s["completionMode"], "NonIndexed");
    assert_eq!(s["suspend"], false);
    assert_eq!(s["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(
        s["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}})
    );
    assert_eq!(
        s["template"]["metadata"]["labels"],
        json!({"batch.kubernetes.io/job-name": "pi", "job-name": "pi", "controller-uid": "abc", "batch.kubernetes.io/controller-uid": "abc"})
    );
    let r = lookup("batch", "v1", "jobs").unwrap();
    assert_eq!(skiff_core::validation::validate_create(r, &j), vec![]);
}

#[test]
fn other_workloads() {
    let sts = defaulted(
        "apps",
        "statefulsets",
        json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "d"}, "spec": {}}]}}),
    );
    assert_eq!(sts["spec"]["podManagementPolicy"], "OrderedReady");
    assert_eq!(
        sts["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    );
    assert_eq!(
        sts["spec"]["persistentVolumeClaimRetentionPolicy"],
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
    );
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["volumeMode"],
        "Filesystem"
    );
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["status"]["phase"],
        "Pending"
    );
    let ds = defaulted("apps", "daemonsets", json!({"spec": {}}));
    assert_eq!(
        ds["spec"]["updateStrategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
    );
    let rc = defaulted(
        "",
        "replicationcontrollers",
        json!({"metadata": {"name": "r"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}}}}}),
    );
    assert_eq!(rc["spec"]["selector"], json!({"a": "b"}));
    assert_eq!(rc["metadata"]["labels"], json!({"a": "b"}));
    let cj = defaulted("batch", "cronjobs", json!({"spec": {"schedule": "@daily"}}));
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(
        cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"],
        "Always"
    );
}

#[test]
fn service_and_core_defaults() {
    let s = defaulted(
        "",
        "services",
        json!({"spec": {"type": "LoadBalancer", "clusterIP": "10.43.0.5", "selector": {"a": "b"}, "ports": [{"port": 80}]}}),
    );
    let spec = &s["spec"];
    assert_eq!(
        spec["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(spec["sessionAffinity"], "None");
    assert_eq!(spec["externalTrafficPolicy"], "Cluster");
    assert_eq!(spec["internalTrafficPolicy"], "Cluster");
    assert_eq!(spec["allocateLoadBalancerNodePorts"], true);
    assert_eq!(spec["clusterIPs"], json!(["10.43.0.5"]));
    assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
    assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
    let ns = defaulted("", "namespaces", json!({"metadata": {"name": "team"}}));
    assert!(
        ns["spec"].get("finalizers").is_none(),
        "the finalizer is the create strategy's, not a default"
    );
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );
    let sec = defaulted("", "secrets", json!({"stringData": {"a": "hello"}}));
    assert_eq!(sec, json!({"type": "Opaque", "data": {"a": "aGVsbG8="}}));
    let pv = defaulted(
        "",
        "persistentvolumes",
        json!({"spec": {"hostPath": {"path": "/x"}}}),
    );
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["spec"]["hostPath"]["type"], "");
    assert_eq!(pv["status"]["phase"], "Pending");
    let lr = defaulted(
        "",
        "limitranges",
        json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}}]}}),
    );
    assert_eq!(lr["spec"]["limits"][0]["default"], json!({"cpu": "2"}));
    assert_eq!(
        lr["spec"]["limits"][0]["defaultRequest"],
        json!({"cpu": "2", "memory": "1Mi"})
    );
    let np = defaulted(
        "networking.k8s.io",
        "networkpolicies",
        json!({"spec": {"egress": [{"ports": [{"port": 53}]}]}}),
    );
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
    let sc = defaulted(
        "storage.k8s.io",
        "storageclasses",
        json!({"provisioner": "x"}),
    );
    assert_eq!(sc["reclaimPolicy"], "Delete");
    assert_eq!(sc["volumeBindingMode"], "Immediate");
}
