//! Defaulting of built-in kinds, as upstream's `SetDefaults_*` functions (pkg/apis/core/v1,
//! apps/v1, batch/v1, networking/v1, rbac/v1, storage/v1, discovery/v1, scheduling/v1
//! defaults.go), plus the create-time effects of admission and strategies that shape what
//! `kubectl get -o yaml` shows after a create: DefaultTolerationSeconds and Priority admission
//! for Pods, the Pod strategy's initial status and QoS class, the Job strategy's generated
//! selector and labels, the Namespace strategy's `kubernetes` finalizer, Secret `stringData`
//! folding, and `creationTimestamp: null` in embedded templates (Go's zero ObjectMeta).
//!
//! Every default fills a field only when it is absent (or null), so applying twice is
//! harmless; [`apply`] runs on create and update.

use crate::meta::Fields as _;
use serde_json::{json, Map, Value};

use crate::meta::{lookup, lookup_mut};
use crate::registry::Resource;

/// Fills in the defaults upstream sets for `res` on create and update.
pub fn apply(res: &Resource, obj: &mut Value) {
    if !obj.is_object() {
        return;
    }
    if let Some(info) = res.custom {
        crate::crd::prepare(info, obj);
        return;
    }
    match (res.group, res.kind) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crate::crd::default_crd(obj),
        ("", "Pod") => pod(obj),
        ("", "ReplicationController") => replication_controller(obj),
        ("apps", "Deployment") => deployment(obj),
        ("apps", "ReplicaSet") => {
            let spec = child(obj, "spec");
            default(spec, "replicas", json!(1));
            pod_template(child(spec, "template"));
        }
        ("apps", "StatefulSet") => stateful_set(obj),
        ("apps", "DaemonSet") => daemon_set(obj),
        ("batch", "Job") => job(obj),
        ("batch", "CronJob") => cron_job(obj),
        ("", "Service") => service(obj),
        ("", "Namespace") => namespace(obj),
        ("", "Secret") => secret(obj),
        ("", "PersistentVolume") => persistent_volume(obj),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(obj),
        ("", "Node") => node(obj),
        ("", "Endpoints") => {
            for ss in list(obj, "subsets") {
                for p in list(ss, "ports") {
                    default(p, "protocol", json!("TCP"));
                }
            }
        }
        ("", "LimitRange") => limit_range(obj),
        ("discovery.k8s.io", "EndpointSlice") => {
            for p in list(obj, "ports") {
                default(p, "name", json!(""));
                default(p, "protocol", json!("TCP"));
            }
        }
        ("networking.k8s.io", "NetworkPolicy") => network_policy(obj),
        ("networking.k8s.io", "IngressClass") => {
            let spec = child(obj, "spec");
            if let Some(p) = spec.field_mut("parameters").filter(|p| p.is_object()) {
                default(p, "scope", json!("Cluster"));
            }
        }
        ("storage.k8s.io", "StorageClass") => {
            default(obj, "reclaimPolicy", json!("Delete"));
            default(obj, "volumeBindingMode", json!("Immediate"));
        }
        ("scheduling.k8s.io", "PriorityClass") => {
            default(obj, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => role_binding(obj),
        _ => {}
    }
}

// ---- JSON helpers ----

/// True when `k` is absent or null.
fn missing(v: &Value, k: &str) -> bool {
    lookup(v, k).is_none_or(Value::is_null)
}

/// Sets `k` to `d` when absent or null. No-op on non-objects.
fn default(v: &mut Value, k: &str, d: Value) {
    if missing(v, k) {
        if let Some(m) = v.as_object_mut() {
            m.insert(k.to_string(), d);
        }
    }
}

/// The object at `k`, created (as `{}`) when absent, null or not an object.
fn child<'a>(v: &'a mut Value, k: &str) -> &'a mut Value {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    if !lookup(v, k).is_some_and(Value::is_object) {
        let m = v.as_object_mut().expect("object");
        m.insert(k.to_string(), Value::Object(Map::new()));
    }
    lookup_mut(v, k).expect("just made")
}

/// The object at `k` if present.
fn opt_child<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut Value> {
    lookup_mut(v, k).filter(|c| c.is_object())
}

/// The array elements at `k` (none when absent).
fn list<'a>(v: &'a mut Value, k: &str) -> impl Iterator<Item = &'a mut Value> {
    lookup_mut(v, k)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
}

fn str_at<'a>(v: &'a Value, k: &str) -> &'a str {
    lookup(v, k).and_then(Value::as_str).unwrap_or("")
}

/// Sets `k` to the map `m` unless it already holds a non-empty object.
fn default_map(v: &mut Value, k: &str, m: Map<String, Value>) {
    if v.get(k)
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty)
    {
        v[k] = Value::Object(m);
    }
}

// ---- pods ----

/// `SetDefaults_PodSpec` and everything nested (containers, volumes, probes).
fn pod_spec(spec: &mut Value) {
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    let host_network = spec.field("hostNetwork").and_then(Value::as_bool) == Some(true);
    for k in ["initContainers", "containers", "ephemeralContainers"] {
        for c in list(spec, k) {
            container(c, host_network);
        }
    }
    for v in list(spec, "volumes") {
        volume(v);
    }
}

/// `SetDefaults_Container` and its ports, probes, lifecycle handlers and env.
fn container(c: &mut Value, host_network: bool) {
    if !c.is_object() {
        return;
    }
    if missing(c, "imagePullPolicy") {
        let policy = pull_policy(str_at(c, "image"));
        default(c, "imagePullPolicy", json!(policy));
    }
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    default(c, "resources", json!({}));
    for p in list(c, "ports") {
        default(p, "protocol", json!("TCP"));
        if host_network && missing(p, "hostPort") {
            let cp = p.field("containerPort").cloned().unwrap_or(Value::Null);
            default(p, "hostPort", cp);
        }
    }
    for k in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = opt_child(c, k) {
            default(p, "timeoutSeconds", json!(1));
            default(p, "periodSeconds", json!(10));
            default(p, "successThreshold", json!(1));
            default(p, "failureThreshold", json!(3));
            http_get(p);
        }
    }
    if let Some(lc) = opt_child(c, "lifecycle") {
        for h in ["postStart", "preStop"] {
            if let Some(h) = opt_child(lc, h) {
                http_get(h);
            }
        }
    }
    for e in list(c, "env") {
        if let Some(fr) = e
            .field_mut("valueFrom")
            .and_then(|v| opt_child(v, "fieldRef"))
        {
            default(fr, "apiVersion", json!("v1"));
        }
    }
}

/// `SetDefaults_HTTPGetAction`.
fn http_get(handler: &mut Value) {
    if let Some(h) = opt_child(handler, "httpGet") {
        if str_at(h, "path").is_empty() {
            h["path"] = json!("/");
        }
        default(h, "scheme", json!("HTTP"));
    }
}

/// The pull policy upstream picks from the image reference: `Always` for `:latest` or no tag,
/// else `IfNotPresent` (a digest counts as pinned).
pub(crate) fn pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

use crate::validation::VOLUME_SOURCES;

/// `SetDefaults_Volume` and the volume sources' defaults.
fn volume(v: &mut Value) {
    if !v.is_object() {
        return;
    }
    if VOLUME_SOURCES.iter().all(|s| missing(v, s)) {
        v["emptyDir"] = json!({});
    }
    for s in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = opt_child(v, s) {
            default(src, "defaultMode", json!(420));
        }
    }
    if let Some(d) = opt_child(v, "downwardAPI") {
        downward_items(d);
    }
    if let Some(p) = opt_child(v, "projected") {
        for s in list(p, "sources") {
            if let Some(t) = opt_child(s, "serviceAccountToken") {
                default(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = opt_child(s, "downwardAPI") {
                downward_items(d);
            }
        }
    }
    if let Some(h) = opt_child(v, "hostPath") {
        default(h, "type", json!(""));
    }
    if let Some(i) = opt_child(v, "iscsi") {
        default(i, "iscsiInterface", json!("default"));
    }
    if let Some(r) = opt_child(v, "rbd") {
        default(r, "pool", json!("rbd"));
        default(r, "user", json!("admin"));
        default(r, "keyring", json!("/etc/ceph/keyring"));
    }
    if let Some(a) = opt_child(v, "azureDisk") {
        default(a, "cachingMode", json!("ReadWrite"));
        default(a, "fsType", json!("ext4"));
        default(a, "readOnly", json!(false));
        default(a, "kind", json!("Shared"));
    }
    if let Some(t) = v
        .field_mut("ephemeral")
        .and_then(|e| opt_child(e, "volumeClaimTemplate"))
    {
        default(child(t, "spec"), "volumeMode", json!("Filesystem"));
    }
}

fn downward_items(d: &mut Value) {
    for it in list(d, "items") {
        if let Some(fr) = opt_child(it, "fieldRef") {
            default(fr, "apiVersion", json!("v1"));
        }
    }
}

/// An embedded `PodTemplateSpec`: Go prints its zero `creationTimestamp` as null.
fn pod_template(tpl: &mut Value) {
    template_metadata(tpl);
    pod_spec(child(tpl, "spec"));
}

fn template_metadata(tpl: &mut Value) {
    let m = child(tpl, "metadata").as_object_mut().expect("object");
    m.entry("creationTimestamp").or_insert(Value::Null);
}

const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// A Pod: its spec, `SetDefaults_Pod` (enableServiceLinks, requests from limits), the
/// DefaultTolerationSeconds and Priority admission plugins, and the strategy's initial status.
fn pod(obj: &mut Value) {
    let spec = child(obj, "spec");
    pod_spec(spec);
    default(spec, "enableServiceLinks", json!(true));
    for k in ["initContainers", "containers"] {
        for c in list(spec, k) {
            let Some(r) = opt_child(c, "resources") else {
                continue;
            };
            // Requests default to the limits: only the limits not requested are copied (most
            // pods request what they limit, or set no limits at all).
            let Some(limits) = r.field("limits").and_then(Value::as_object) else {
                continue;
            };
            let requested = r.field("requests").and_then(Value::as_object);
            let add: Vec<(String, Value)> = limits
                .iter()
                .filter(|(k, _)| !requested.is_some_and(|q| q.contains_key(*k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let req = child(r, "requests").as_object_mut().expect("object");
            req.extend(add);
        }
    }
    default_tolerations(spec);
    if missing(spec, "priority") {
        let class = str_at(spec, "priorityClassName");
        let value = match class {
            "" => Some(0),
            "system-node-critical" => Some(2_000_001_000),
            "system-cluster-critical" => Some(2_000_000_000),
            _ => None,
        };
        if let Some(v) = value {
            default(spec, "priority", json!(v));
            default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
        }
    }
    pod_status(obj);
}

/// The defaults of a pod's status: the phase, and the qosClass its (defaulted) spec gives.
/// All that defaulting can change in a pod whose status alone was replaced, as the status
/// subresource does to a stored pod (whose spec was defaulted when it was written).
pub fn pod_status(obj: &mut Value) {
    let qos = obj
        .field("status")
        .is_none_or(|s| missing(s, "qosClass"))
        .then(|| qos_class(obj.at("spec")));
    let status = child(obj, "status");
    default(status, "phase", json!("Pending"));
    if let Some(qos) = qos {
        default(status, "qosClass", json!(qos));
    }
}

/// DefaultTolerationSeconds admission: tolerate not-ready and unreachable nodes for 300s
/// unless the pod already tolerates them.
fn default_tolerations(spec: &mut Value) {
    let tolerates = |spec: &Value, key: &str| {
        spec.field("tolerations")
            .and_then(Value::as_array)
            .is_some_and(|ts| {
                ts.iter().any(|t| {
                    let k = str_at(t, "key");
                    let e = str_at(t, "effect");
                    (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
                })
            })
    };
    let add: Vec<&str> = [NOT_READY, UNREACHABLE]
        .into_iter()
        .filter(|k| !tolerates(spec, k))
        .collect();
    if add.is_empty() {
        return;
    }
    let m = spec.as_object_mut().expect("object");
    let ts = m.entry("tolerations").or_insert_with(|| json!([]));
    if !ts.is_array() {
        *ts = json!([]);
    }
    let ts = ts.as_array_mut().expect("array");
    for k in add {
        // Cloned from one built once: a clone copies the map's index instead of hashing
        // its keys again.
        ts.push(default_toleration(k).clone());
    }
}

/// The toleration DefaultTolerationSeconds adds for `key` (one of the two taints).
fn default_toleration(key: &str) -> &'static Value {
    static BUILT: std::sync::LazyLock<[Value; 2]> = std::sync::LazyLock::new(|| {
        [NOT_READY, UNREACHABLE].map(|k| {
            json!({
                "effect": "NoExecute",
                "key": k,
                "operator": "Exists",
                "tolerationSeconds": 300
            })
        })
    });
    &BUILT[usize::from(key != NOT_READY)]
}

/// The pod's QoS class from its containers' cpu and memory requests and limits.
fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| {
            spec.field(k)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .collect();
    let nonzero = |m: Option<&Value>, r: &str| {
        m.and_then(|m| m.field(r))
            .and_then(|q| match q {
                Value::String(s) => crate::validation::Quantity::parse(s).ok(),
                Value::Number(n) => crate::validation::Quantity::parse(&n.to_string()).ok(),
                _ => None,
            })
            .filter(|q| !q.is_zero())
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let r = c.field("resources");
        let req = r.and_then(|r| r.field("requests"));
        let lim = r.and_then(|r| r.field("limits"));
        for res in ["cpu", "memory"] {
            let (rq, lq) = (nonzero(req, res), nonzero(lim, res));
            if rq.is_some() || lq.is_some() {
                any = true;
            }
            match (rq, lq) {
                (_, None) => guaranteed = false,
                (Some(a), Some(b)) if a != b => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed && !containers.is_empty() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

// ---- workloads ----

/// The workload's `spec.template.metadata.labels`, when a non-empty object.
fn template_labels(obj: &Value) -> Option<Map<String, Value>> {
    obj.pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .filter(|l| !l.is_empty())
        .cloned()
}

fn replication_controller(obj: &mut Value) {
    if let Some(labels) = template_labels(obj) {
        default_map(child(obj, "spec"), "selector", labels.clone());
        default_map(child(obj, "metadata"), "labels", labels);
    }
    let spec = child(obj, "spec");
    default(spec, "replicas", json!(1));
    if let Some(t) = opt_child(spec, "template") {
        pod_template(t);
    }
}

fn deployment(obj: &mut Value) {
    let spec = child(obj, "spec");
    default(spec, "replicas", json!(1));
    let strategy = child(spec, "strategy");
    default(strategy, "type", json!("RollingUpdate"));
    if str_at(strategy, "type") == "RollingUpdate" {
        let ru = child(strategy, "rollingUpdate");
        default(ru, "maxUnavailable", json!("25%"));
        default(ru, "maxSurge", json!("25%"));
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    pod_template(child(spec, "template"));
}

fn stateful_set(obj: &mut Value) {
    let spec = child(obj, "spec");
    default(spec, "podManagementPolicy", json!("OrderedReady"));
    let us = child(spec, "updateStrategy");
    default(us, "type", json!("RollingUpdate"));
    if str_at(us, "type") == "RollingUpdate" {
        default(child(us, "rollingUpdate"), "partition", json!(0));
    }
    default(spec, "replicas", json!(1));
    default(spec, "revisionHistoryLimit", json!(10));
    let pol = child(spec, "persistentVolumeClaimRetentionPolicy");
    default(pol, "whenDeleted", json!("Retain"));
    default(pol, "whenScaled", json!("Retain"));
    pod_template(child(spec, "template"));
    for c in list(spec, "volumeClaimTemplates") {
        if !c.is_object() {
            continue;
        }
        default(c, "apiVersion", json!("v1"));
        default(c, "kind", json!("PersistentVolumeClaim"));
        template_metadata(c);
        pvc_body(c);
    }
}

fn daemon_set(obj: &mut Value) {
    let spec = child(obj, "spec");
    let us = child(spec, "updateStrategy");
    default(us, "type", json!("RollingUpdate"));
    if str_at(us, "type") == "RollingUpdate" {
        let ru = child(us, "rollingUpdate");
        default(ru, "maxUnavailable", json!(1));
        default(ru, "maxSurge", json!(0));
    }
    default(spec, "revisionHistoryLimit", json!(10));
    pod_template(child(spec, "template"));
}

const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";

/// `SetDefaults_Job`, then the Job strategy's `generateSelector` (unless manualSelector).
fn job(obj: &mut Value) {
    let spec = child(obj, "spec");
    if missing(spec, "completions") && missing(spec, "parallelism") {
        spec["completions"] = json!(1);
        spec["parallelism"] = json!(1);
    }
    default(spec, "parallelism", json!(1));
    if missing(spec, "backoffLimit") {
        let limit = if missing(spec, "backoffLimitPerIndex") {
            6
        } else {
            i64::from(i32::MAX)
        };
        spec["backoffLimit"] = json!(limit);
    }
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    let replacement = if missing(spec, "podFailurePolicy") {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    default(spec, "podReplacementPolicy", json!(replacement));
    if let Some(pfp) = opt_child(spec, "podFailurePolicy") {
        for rule in list(pfp, "rules") {
            for c in list(rule, "onPodConditions") {
                default(c, "status", json!("True"));
            }
        }
    }
    pod_template(child(spec, "template"));
    if let Some(labels) = template_labels(obj) {
        default_map(child(obj, "metadata"), "labels", labels);
    }
    let manual = obj
        .at("spec")
        .field("manualSelector")
        .and_then(Value::as_bool)
        == Some(true);
    let uid = crate::meta::uid(obj).to_string();
    let name = crate::meta::name(obj).to_string();
    if manual || uid.is_empty() {
        return;
    }
    let spec = child(obj, "spec");
    let labels = child(child(child(spec, "template"), "metadata"), "labels");
    let lm = labels.as_object_mut().expect("object");
    for (k, v) in [(JOB_NAME, &name), ("job-name", &name)] {
        lm.entry(k).or_insert_with(|| json!(v));
    }
    for (k, v) in [("controller-uid", &uid), (CONTROLLER_UID, &uid)] {
        lm.entry(k).or_insert_with(|| json!(v));
    }
    let ml = child(child(spec, "selector"), "matchLabels");
    ml.as_object_mut()
        .expect("object")
        .entry(CONTROLLER_UID)
        .or_insert_with(|| json!(uid));
}

fn cron_job(obj: &mut Value) {
    let spec = child(obj, "spec");
    default(spec, "concurrencyPolicy", json!("Allow"));
    default(spec, "suspend", json!(false));
    default(spec, "successfulJobsHistoryLimit", json!(3));
    default(spec, "failedJobsHistoryLimit", json!(1));
    let jt = child(spec, "jobTemplate");
    template_metadata(jt);
    pod_template(child(child(jt, "spec"), "template"));
}

// ---- services and networking ----

fn service(obj: &mut Value) {
    let spec = child(obj, "spec");
    default(spec, "sessionAffinity", json!("None"));
    match str_at(spec, "sessionAffinity") {
        "None" => {
            if let Some(m) = spec.as_object_mut() {
                m.remove("sessionAffinityConfig");
            }
        }
        "ClientIP" => {
            let c = child(child(spec, "sessionAffinityConfig"), "clientIP");
            default(c, "timeoutSeconds", json!(10800));
        }
        _ => {}
    }
    default(spec, "type", json!("ClusterIP"));
    let ty = str_at(spec, "type").to_string();
    for p in list(spec, "ports") {
        default(p, "protocol", json!("TCP"));
        let unset = match p.field("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if unset {
            let port = p.field("port").cloned().unwrap_or(Value::Null);
            p["targetPort"] = port;
        }
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(ty.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    // What the registry's IP-family initialization adds once a clusterIP is allocated.
    let ip = str_at(spec, "clusterIP").to_string();
    if ty != "ExternalName" && !ip.is_empty() {
        if spec
            .field("clusterIPs")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            spec["clusterIPs"] = json!([ip]);
        }
        let headless_no_selector = ip == "None"
            && spec
                .field("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty);
        let family = if ip.contains(':') { "IPv6" } else { "IPv4" };
        let policy = if headless_no_selector {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        default(spec, "ipFamilyPolicy", json!(policy));
        if spec
            .field("ipFamilies")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty)
        {
            spec["ipFamilies"] = json!([family]);
        }
    }
    default(child(obj, "status"), "loadBalancer", json!({}));
}

fn network_policy(obj: &mut Value) {
    let spec = child(obj, "spec");
    for dir in ["ingress", "egress"] {
        for rule in list(spec, dir) {
            for p in list(rule, "ports") {
                default(p, "protocol", json!("TCP"));
            }
        }
    }
    if spec
        .field("policyTypes")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        let mut types = vec![json!("Ingress")];
        if spec
            .field("egress")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty())
        {
            types.push(json!("Egress"));
        }
        spec["policyTypes"] = Value::Array(types);
    }
}

fn role_binding(obj: &mut Value) {
    default(
        child(obj, "roleRef"),
        "apiGroup",
        json!("rbac.authorization.k8s.io"),
    );
    for s in list(obj, "subjects") {
        if str_at(s, "apiGroup").is_empty() {
            match str_at(s, "kind") {
                "User" | "Group" => s["apiGroup"] = json!("rbac.authorization.k8s.io"),
                "ServiceAccount" => s["apiGroup"] = json!(""),
                _ => {}
            }
        }
    }
}

// ---- core config and storage ----

/// `SetDefaults_Namespace` (the `kubernetes.io/metadata.name` label) and
/// `SetDefaults_NamespaceStatus`. The `kubernetes` finalizer is the namespace strategy's, set
/// on create only (the API server does it), so that it stays removable.
fn namespace(obj: &mut Value) {
    let name = crate::meta::name(obj).to_string();
    if !name.is_empty() {
        child(child(obj, "metadata"), "labels")["kubernetes.io/metadata.name"] = json!(name);
    }
    default(child(obj, "status"), "phase", json!("Active"));
}

/// `SetDefaults_Secret` and the v1 conversion folding `stringData` into `data`.
fn secret(obj: &mut Value) {
    default(obj, "type", json!("Opaque"));
    let Some(sd) = obj.as_object_mut().and_then(|m| m.remove("stringData")) else {
        return;
    };
    let Some(sd) = sd.as_object().cloned() else {
        return;
    };
    if sd.is_empty() {
        return;
    }
    let data = child(obj, "data").as_object_mut().expect("object");
    for (k, v) in sd {
        let s = v.as_str().unwrap_or("");
        data.insert(
            k,
            json!(crate::validation::core::base64_encode(s.as_bytes())),
        );
    }
}

fn persistent_volume(obj: &mut Value) {
    let spec = child(obj, "spec");
    default(spec, "persistentVolumeReclaimPolicy", json!("Retain"));
    default(spec, "volumeMode", json!("Filesystem"));
    if let Some(h) = opt_child(spec, "hostPath") {
        default(h, "type", json!(""));
    }
    default(child(obj, "status"), "phase", json!("Pending"));
}

fn pvc_body(pvc: &mut Value) {
    default(child(pvc, "spec"), "volumeMode", json!("Filesystem"));
    default(child(pvc, "status"), "phase", json!("Pending"));
}

fn persistent_volume_claim(obj: &mut Value) {
    pvc_body(obj);
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
fn node(obj: &mut Value) {
    let Some(status) = opt_child(obj, "status") else {
        return;
    };
    if missing(status, "allocatable") {
        if let Some(cap) = status.field("capacity").filter(|c| c.is_object()).cloned() {
            status["allocatable"] = cap;
        }
    }
}

/// `SetDefaults_LimitRangeItem`: container default limits from max, default requests from
/// the default limits, then from min.
fn limit_range(obj: &mut Value) {
    let spec = child(obj, "spec");
    for item in list(spec, "limits") {
        if str_at(item, "type") != "Container" {
            continue;
        }
        let get_map = |item: &Value, k: &str| {
            item.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let max = get_map(item, "max");
        let min = get_map(item, "min");
        let mut def = get_map(item, "default");
        let mut req = get_map(item, "defaultRequest");
        for (k, v) in max {
            def.entry(k).or_insert(v);
        }
        for (k, v) in &def {
            req.entry(k.clone()).or_insert(v.clone());
        }
        for (k, v) in min {
            req.entry(k).or_insert(v);
        }
        if !def.is_empty() {
            item["default"] = Value::Object(def);
        }
        if !req.is_empty() {
            item["defaultRequest"] = Value::Object(req);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{default_tolerations, pull_policy, qos_class};
    use serde_json::json;

    #[test]
    fn pods_tolerate_not_ready_and_unreachable_nodes_for_300_seconds() {
        let mut spec = json!({"containers": [{"name": "c", "image": "i"}]});
        default_tolerations(&mut spec);
        let added = |key: &str| json!({"effect": "NoExecute", "key": key, "operator": "Exists", "tolerationSeconds": 300});
        assert_eq!(
            spec["tolerations"],
            json!([
                added("node.kubernetes.io/not-ready"),
                added("node.kubernetes.io/unreachable")
            ])
        );
        // Already tolerated taints are left alone; the rest come after the pod's own.
        let own = json!({"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"});
        let mut spec = json!({"tolerations": [own.clone()]});
        default_tolerations(&mut spec);
        assert_eq!(
            spec["tolerations"],
            json!([own, added("node.kubernetes.io/unreachable")])
        );
        // A toleration of every NoExecute taint needs nothing more.
        let mut spec = json!({"tolerations": [{"operator": "Exists", "effect": "NoExecute"}]});
        default_tolerations(&mut spec);
        assert_eq!(spec["tolerations"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn requests_default_to_limits_not_requested() {
        let mut pod = json!({"spec": {"containers": [
            {"name": "a", "image": "i", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}},
            {"name": "b", "image": "i", "resources": {"limits": {"cpu": "2"}, "requests": null}},
            {"name": "c", "image": "i", "resources": {"requests": {"cpu": "1"}}}
        ]}});
        super::pod(&mut pod);
        let r = |i: usize| pod["spec"]["containers"][i]["resources"].clone();
        assert_eq!(r(0)["requests"], json!({"cpu": "500m", "memory": "1Gi"}));
        assert_eq!(r(1)["requests"], json!({"cpu": "2"}));
        assert_eq!(r(2), json!({"requests": {"cpu": "1"}}));
        assert_eq!(pod["status"]["qosClass"], "Burstable");
    }

    #[test]
    fn qos_class_follows_requests_and_limits() {
        let spec = |resources: serde_json::Value| json!({"containers": [{"name": "c", "image": "i", "resources": resources}]});
        assert_eq!(qos_class(&spec(json!({}))), "BestEffort");
        assert_eq!(
            qos_class(&spec(json!({"requests": {"cpu": "100m"}}))),
            "Burstable"
        );
        assert_eq!(
            qos_class(&spec(json!({
                "requests": {"cpu": "100m", "memory": "64Mi"},
                "limits": {"cpu": "0.1", "memory": "64Mi"}
            }))),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(&spec(
                json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}})
            )),
            "Burstable"
        );
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(pull_policy("nginx"), "Always");
        assert_eq!(pull_policy("nginx:latest"), "Always");
        assert_eq!(pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(pull_policy("localhost:5000/app"), "Always");
        assert_eq!(pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(pull_policy("nginx@sha256:abcd"), "IfNotPresent");
    }
}
