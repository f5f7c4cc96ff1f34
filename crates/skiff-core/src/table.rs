//! Server-side Table output (`application/json;as=Table;v=v1;g=meta.k8s.io`), following
//! pkg/printers/internalversion/printers.go: the column definitions of each built-in kind and
//! the cells its print function computes (always with `Wide`, as the API server's
//! `TableConvertor` does; kubectl hides `priority: 1` columns unless `-o wide`). Kinds without a
//! printer get apiserver's default `Name`/`Created At` table (rest.defaultTableConvertor), and
//! APIService the kube-aggregator's. Ages use k8s.io/apimachinery/pkg/util/duration's
//! `HumanDuration`.

use crate::meta::Fields as _;
use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::labels::{format_label_selector, format_labels, Selector};
use crate::meta::{format_time, parse_time};
use crate::registry::Resource;

/// A Table column definition (`metav1.TableColumnDefinition`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub type_: &'static str,
    pub format: &'static str,
    pub description: &'static str,
    pub priority: i32,
}

/// What each row's `object` carries (`includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata` with the object's metadata (the default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter value (`None`, `Metadata`, `Object`).
    pub fn parse(s: &str) -> Option<IncludeObject> {
        match s {
            "None" => Some(IncludeObject::None),
            "Metadata" | "" => Some(IncludeObject::Metadata),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

const fn col(name: &'static str, type_: &'static str, description: &'static str) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority: 0,
    }
}

const fn wide(c: Column) -> Column {
    Column { priority: 1, ..c }
}

const NAME: Column = Column {
    name: "Name",
    type_: "string",
    format: "name",
    description: D_META_NAME,
    priority: 0,
};
const AGE: Column = col("Age", "string", D_META_CREATED);
const CONTAINERS: Column = wide(col(
    "Containers",
    "string",
    "Names of each container in the template.",
));
const IMAGES: Column = wide(col(
    "Images",
    "string",
    "Images referenced by each container in the template.",
));

/// The Table columns of a kind, in upstream's order.
pub fn columns(res: &Resource) -> Vec<Column> {
    if let Some(info) = res.custom {
        let mut cols = vec![NAME];
        cols.extend(crate::crd::table::columns(info));
        return cols;
    }
    match (res.group, res.kind) {
        ("", "Pod") => vec![
            NAME,
            col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
            col("Status", "string", "The aggregate status of the containers in this pod."),
            col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            AGE,
            wide(col("IP", "string", D_POD_IP)),
            wide(col("Node", "string", D_POD_NODE)),
            wide(col("Nominated Node", "string", D_POD_NOMINATED)),
            wide(col("Readiness Gates", "string", D_POD_GATES)),
        ],
        ("policy", "PodDisruptionBudget") => vec![
            NAME,
            col("Min Available", "string", "The minimum number of pods that must be available."),
            col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
            col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
            AGE,
        ],
        ("", "ReplicationController") => vec![
            NAME,
            col("Desired", "integer", D_RC_SPEC_REPLICAS),
            col("Current", "integer", D_RC_STATUS_REPLICAS),
            col("Ready", "integer", D_RC_STATUS_READY),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(col("Selector", "string", D_RC_SPEC_SELECTOR)),
        ],
        ("apps", "ReplicaSet") => vec![
            NAME,
            col("Desired", "integer", D_RS_SPEC_REPLICAS),
            col("Current", "integer", D_RS_STATUS_REPLICAS),
            col("Ready", "integer", D_RS_STATUS_READY),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(col("Selector", "string", D_RS_SPEC_SELECTOR)),
        ],
        ("apps", "DaemonSet") => vec![
            NAME,
            col("Desired", "integer", D_DS_DESIRED),
            col("Current", "integer", D_DS_CURRENT),
            col("Ready", "integer", D_DS_READY),
            col("Up-to-date", "integer", D_DS_UPDATED),
            col("Available", "integer", D_DS_AVAILABLE),
            col("Node Selector", "string", D_POD_NODESELECTOR),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(col("Selector", "string", D_DS_SELECTOR)),
        ],
        ("batch", "Job") => vec![
            NAME,
            col("Status", "string", "Status of the job."),
            col("Completions", "string", D_JOB_SUCCEEDED),
            col("Duration", "string", "Time required to complete the job."),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(col("Selector", "string", D_JOB_SELECTOR)),
        ],
        ("batch", "CronJob") => vec![
            NAME,
            col("Schedule", "string", D_CJ_SCHEDULE),
            col("Timezone", "string", D_CJ_TZ),
            col("Suspend", "boolean", D_CJ_SUSPEND),
            col("Active", "integer", D_CJ_ACTIVE),
            col("Last Schedule", "string", D_CJ_LAST),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(col("Selector", "string", D_JOB_SELECTOR)),
        ],
        ("", "Service") => vec![
            NAME,
            col("Type", "string", D_SVC_TYPE),
            col("Cluster-IP", "string", D_SVC_CLUSTERIP),
            col("External-IP", "string", D_SVC_EXTERNALIPS),
            col("Port(s)", "string", D_SVC_PORTS),
            AGE,
            wide(col("Selector", "string", D_SVC_SELECTOR)),
        ],
        ("networking.k8s.io", "Ingress") => vec![
            NAME,
            col("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
            col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
            col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
            col("Ports", "string", "Ports of TLS configurations that open"),
            AGE,
        ],
        ("networking.k8s.io", "IngressClass") => vec![
            NAME,
            col("Controller", "string", "Controller that is responsible for handling this class"),
            col("Parameters", "string", "A reference to a resource with additional parameters"),
            AGE,
        ],
        ("apps", "StatefulSet") => vec![
            NAME,
            col("Ready", "string", "Number of the pod with ready state"),
            AGE,
            CONTAINERS,
            IMAGES,
        ],
        ("", "Endpoints") => vec![NAME, col("Endpoints", "string", D_EP_SUBSETS), AGE],
        ("", "Node") => vec![
            NAME,
            col("Status", "string", "The status of the node"),
            col("Roles", "string", "The roles of the node"),
            AGE,
            col("Version", "string", D_NODE_KUBELET),
            wide(col("Internal-IP", "string", D_NODE_ADDRESSES)),
            wide(col("External-IP", "string", D_NODE_ADDRESSES)),
            wide(col("OS-Image", "string", D_NODE_OSIMAGE)),
            wide(col("Kernel-Version", "string", D_NODE_KERNEL)),
            wide(col("Container-Runtime", "string", D_NODE_CRI)),
        ],
        ("", "Event") | ("events.k8s.io", "Event") => vec![
            col("Last Seen", "string", D_EV_LAST),
            col("Type", "string", D_EV_TYPE),
            col("Reason", "string", D_EV_REASON),
            col("Object", "string", D_EV_INVOLVED),
            wide(col("Subobject", "string", D_EV_FIELDPATH)),
            wide(col("Source", "string", D_EV_SOURCE)),
            col("Message", "string", D_EV_MESSAGE),
            wide(col("First Seen", "string", D_EV_FIRST)),
            wide(col("Count", "string", D_EV_COUNT)),
            wide(NAME),
        ],
        ("", "Namespace") => {
            vec![NAME, col("Status", "string", "The status of the namespace"), AGE]
        }
        ("", "Secret") => vec![
            NAME,
            col("Type", "string", D_SECRET_TYPE),
            col("Data", "string", D_SECRET_DATA),
            AGE,
        ],
        ("", "ServiceAccount") => vec![NAME, col("Secrets", "string", D_SA_SECRETS), AGE],
        ("", "PersistentVolume") => vec![
            NAME,
            col("Capacity", "string", D_PV_CAPACITY),
            col("Access Modes", "string", D_PV_ACCESS),
            col("Reclaim Policy", "string", D_PV_RECLAIM),
            col("Status", "string", D_PV_PHASE),
            col("Claim", "string", D_PV_CLAIM),
            col("StorageClass", "string", "StorageClass of the pv"),
            col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
            col("Reason", "string", D_PV_REASON),
            AGE,
            wide(col("VolumeMode", "string", D_PV_MODE)),
        ],
        ("", "PersistentVolumeClaim") => vec![
            NAME,
            col("Status", "string", D_PVC_PHASE),
            col("Volume", "string", D_PVC_VOLUME),
            col("Capacity", "string", D_PVC_CAPACITY),
            col("Access Modes", "string", D_PVC_ACCESS),
            col("StorageClass", "string", "StorageClass of the pvc"),
            col("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
            AGE,
            wide(col("VolumeMode", "string", D_PVC_MODE)),
        ],
        ("apps", "Deployment") => vec![
            NAME,
            col("Ready", "string", "Number of the pod with ready state"),
            col("Up-to-date", "string", D_DEP_UPDATED),
            col("Available", "string", D_DEP_AVAILABLE),
            AGE,
            CONTAINERS,
            IMAGES,
            wide(col("Selector", "string", D_DEP_SELECTOR)),
        ],
        ("", "ConfigMap") => vec![NAME, col("Data", "string", D_CM_DATA), AGE],
        ("networking.k8s.io", "NetworkPolicy") => {
            vec![NAME, col("Pod-Selector", "string", D_NP_PODSELECTOR), AGE]
        }
        ("rbac.authorization.k8s.io", "RoleBinding") => vec![
            NAME,
            col("Role", "string", D_RB_ROLEREF),
            AGE,
            wide(col("Users", "string", "Users in the roleBinding")),
            wide(col("Groups", "string", "Groups in the roleBinding")),
            wide(col("ServiceAccounts", "string", "ServiceAccounts in the roleBinding")),
        ],
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => vec![
            NAME,
            col("Role", "string", D_CRB_ROLEREF),
            AGE,
            wide(col("Users", "string", "Users in the clusterRoleBinding")),
            wide(col("Groups", "string", "Groups in the clusterRoleBinding")),
            wide(col("ServiceAccounts", "string", "ServiceAccounts in the clusterRoleBinding")),
        ],
        ("coordination.k8s.io", "Lease") => {
            vec![NAME, col("Holder", "string", D_LEASE_HOLDER), AGE]
        }
        ("storage.k8s.io", "StorageClass") => vec![
            NAME,
            col("Provisioner", "string", D_SC_PROVISIONER),
            col("ReclaimPolicy", "string", D_SC_RECLAIM),
            col("VolumeBindingMode", "string", D_SC_BINDING),
            col("AllowVolumeExpansion", "string", D_SC_EXPANSION),
            AGE,
        ],
        ("apps", "ControllerRevision") => vec![
            NAME,
            col("Controller", "string", "Controller of the object"),
            col("Revision", "string", D_CR_REVISION),
            AGE,
        ],
        ("", "ResourceQuota") => vec![
            NAME,
            col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
            col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
            AGE,
        ],
        ("scheduling.k8s.io", "PriorityClass") => vec![
            NAME,
            col("Value", "integer", D_PC_VALUE),
            col("Global-Default", "boolean", D_PC_DEFAULT),
            AGE,
            col("PreemptionPolicy", "string", D_PC_PREEMPT),
        ],
        ("discovery.k8s.io", "EndpointSlice") => vec![
            NAME,
            col("AddressType", "string", D_EPS_ADDRTYPE),
            col("Ports", "string", D_EPS_PORTS),
            col("Endpoints", "string", D_EPS_ENDPOINTS),
            AGE,
        ],
        ("apiregistration.k8s.io", "APIService") => vec![
            NAME,
            col("Service", "string", "The reference to the service that hosts this API endpoint."),
            col("Available", "string", "Whether this service is available."),
            AGE,
        ],
        _ => vec![NAME, col("Created At", "date", D_META_CREATED)],
    }
}

/// Upstream's `duration.HumanDuration`: a short, approximate rendering of a duration
/// (`5s`, `3m20s`, `10m`, `5h4m`, `3d4h`, `2y100d`).
pub fn human_duration(d: Duration) -> String {
    human_secs(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// [`human_duration`] of a signed number of seconds: `<invalid>` below -1s, `0s` for -1s.
pub fn human_secs(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, h)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{}d", hours / 24 / 365, dy)
        };
    }
    format!("{}y", hours / 24 / 365)
}

// ---- JSON accessors ----

fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

fn i(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn obj<'a>(v: &'a Value, ptr: &str) -> Option<&'a Map<String, Value>> {
    v.pointer(ptr).and_then(Value::as_object)
}

fn len_of(v: &Value, ptr: &str) -> usize {
    match v.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

fn present(v: &Value, ptr: &str) -> bool {
    v.pointer(ptr).is_some_and(|x| !x.is_null())
}

fn time_at(v: &Value, ptr: &str) -> Option<jiff::Timestamp> {
    v.pointer(ptr).and_then(Value::as_str).and_then(parse_time)
}

fn str_or<'a>(v: &'a str, dflt: &'a str) -> &'a str {
    if v.is_empty() {
        dflt
    } else {
        v
    }
}

/// Upstream's `translateTimestampSince`: `<unknown>` for a zero time.
fn since(t: Option<jiff::Timestamp>, now: jiff::Timestamp) -> String {
    match t {
        None => "<unknown>".into(),
        Some(t) => human_secs(now.duration_since(t).as_secs()),
    }
}

fn age(o: &Value, now: jiff::Timestamp) -> Value {
    since(time_at(o, "/metadata/creationTimestamp"), now).into()
}

/// Go's `IntOrString.String()`.
fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn layout_containers(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

fn containers_cells(containers: &[Value]) -> [Value; 2] {
    let (n, i) = layout_containers(containers);
    [n.into(), i.into()]
}

/// [`containers_cells`] of the object's pod template (`spec.template`).
fn template_containers_cells(o: &Value) -> [Value; 2] {
    containers_cells(arr(o, "/spec/template/spec/containers"))
}

fn replicas(o: &Value) -> i64 {
    o.at("spec")
        .field("replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn condition<'a>(conds: &'a [Value], type_: &str) -> Option<&'a Value> {
    conds.iter().find(|c| s(c, "/type") == type_)
}

fn condition_true(conds: &[Value], type_: &str) -> bool {
    condition(conds, type_).is_some_and(|c| s(c, "/status") == "True")
}

fn is_deleting(o: &Value) -> bool {
    present(o, "/metadata/deletionTimestamp")
}

/// The row's cells for one object of kind `res`, formatted as upstream's printers do (always
/// including the wide columns).
pub fn cells(res: &Resource, o: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name: Value = s(o, "/metadata/name").into();
    if let Some(info) = res.custom {
        let mut cells = vec![name];
        cells.extend(crate::crd::table::cells(info, o, now));
        return cells;
    }
    match (res.group, res.kind) {
        ("", "Pod") => pod_cells(o, now),
        ("policy", "PodDisruptionBudget") => {
            let fmt = |p: &str| o.pointer(p).filter(|v| !v.is_null()).map(int_or_string);
            vec![
                name,
                fmt("/spec/minAvailable")
                    .unwrap_or_else(|| "N/A".into())
                    .into(),
                fmt("/spec/maxUnavailable")
                    .unwrap_or_else(|| "N/A".into())
                    .into(),
                i(o, "/status/disruptionsAllowed").into(),
                age(o, now),
            ]
        }
        ("", "ReplicationController") => {
            replica_cells(o, now, format_labels(obj(o, "/spec/selector")))
        }
        ("apps", "ReplicaSet") => replica_cells(
            o,
            now,
            format_label_selector(o.at("spec").field("selector")),
        ),
        ("apps", "DaemonSet") => {
            let [c, im] = template_containers_cells(o);
            vec![
                name,
                i(o, "/status/desiredNumberScheduled").into(),
                i(o, "/status/currentNumberScheduled").into(),
                i(o, "/status/numberReady").into(),
                i(o, "/status/updatedNumberScheduled").into(),
                i(o, "/status/numberAvailable").into(),
                format_labels(obj(o, "/spec/template/spec/nodeSelector")).into(),
                age(o, now),
                c,
                im,
                format_label_selector(o.at("spec").field("selector")).into(),
            ]
        }
        ("batch", "Job") => job_cells(o, now),
        ("batch", "CronJob") => {
            let last = if present(o, "/status/lastScheduleTime") {
                since(time_at(o, "/status/lastScheduleTime"), now)
            } else {
                "<none>".into()
            };
            let suspend = match o.at("spec").field("suspend").and_then(Value::as_bool) {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            let tmpl = "/spec/jobTemplate/spec";
            let [c, im] = containers_cells(arr(o, &format!("{tmpl}/template/spec/containers")));
            vec![
                name,
                s(o, "/spec/schedule").into(),
                str_or(s(o, "/spec/timeZone"), "<none>").into(),
                suspend.into(),
                (len_of(o, "/status/active") as i64).into(),
                last.into(),
                age(o, now),
                c,
                im,
                format_label_selector(o.pointer(&format!("{tmpl}/selector"))).into(),
            ]
        }
        ("", "Service") => service_cells(o, now),
        ("networking.k8s.io", "Ingress") => {
            let rules = arr(o, "/spec/rules");
            let ports = if arr(o, "/spec/tls").is_empty() {
                "80"
            } else {
                "80, 443"
            };
            vec![
                name,
                str_or(s(o, "/spec/ingressClassName"), "<none>").into(),
                format_hosts(rules).into(),
                load_balancer_status(arr(o, "/status/loadBalancer/ingress")).into(),
                ports.into(),
                age(o, now),
            ]
        }
        ("networking.k8s.io", "IngressClass") => {
            let params = match o.at("spec").field("parameters").filter(|p| p.is_object()) {
                None => "<none>".to_string(),
                Some(p) => {
                    let mut out = s(p, "/kind").to_string();
                    if let Some(g) = p.get("apiGroup").and_then(Value::as_str) {
                        out = format!("{out}.{g}");
                    }
                    format!("{out}/{}", s(p, "/name"))
                }
            };
            vec![
                name,
                s(o, "/spec/controller").into(),
                params.into(),
                age(o, now),
            ]
        }
        ("apps", "StatefulSet") => {
            let [c, im] = template_containers_cells(o);
            let ready = format!("{}/{}", i(o, "/status/readyReplicas"), replicas(o));
            vec![name, ready.into(), age(o, now), c, im]
        }
        ("", "Endpoints") => vec![name, format_endpoints(o).into(), age(o, now)],
        ("", "Node") => node_cells(o, now),
        ("", "Event") => event_cells(o, now),
        ("events.k8s.io", "Event") => {
            if o.get("regarding").is_some() {
                event_cells(&crate::events::events_v1_to_core(o), now)
            } else {
                event_cells(o, now)
            }
        }
        ("", "Namespace") => vec![name, s(o, "/status/phase").into(), age(o, now)],
        ("", "Secret") => {
            let mut keys: BTreeSet<&String> = BTreeSet::new();
            for p in ["/data", "/stringData"] {
                keys.extend(obj(o, p).into_iter().flat_map(|m| m.keys()));
            }
            vec![
                name,
                s(o, "/type").into(),
                (keys.len() as i64).into(),
                age(o, now),
            ]
        }
        ("", "ServiceAccount") => {
            vec![name, (len_of(o, "/secrets") as i64).into(), age(o, now)]
        }
        ("", "PersistentVolume") => {
            let claim = match o.at("spec").field("claimRef").filter(|c| c.is_object()) {
                Some(c) => format!("{}/{}", s(c, "/namespace"), s(c, "/name")),
                None => String::new(),
            };
            vec![
                name,
                s(o, "/spec/capacity/storage").into(),
                access_modes(arr(o, "/spec/accessModes")).into(),
                s(o, "/spec/persistentVolumeReclaimPolicy").into(),
                volume_phase(o).into(),
                claim.into(),
                storage_class(o).into(),
                str_or(s(o, "/spec/volumeAttributesClassName"), "<unset>").into(),
                s(o, "/status/reason").into(),
                age(o, now),
                str_or(s(o, "/spec/volumeMode"), "<unset>").into(),
            ]
        }
        ("", "PersistentVolumeClaim") => {
            let bound = !s(o, "/spec/volumeName").is_empty();
            let (capacity, modes) = if bound {
                (
                    s(o, "/status/capacity/storage").to_string(),
                    access_modes(arr(o, "/status/accessModes")),
                )
            } else {
                (String::new(), String::new())
            };
            vec![
                name,
                volume_phase(o).into(),
                s(o, "/spec/volumeName").into(),
                capacity.into(),
                modes.into(),
                storage_class(o).into(),
                str_or(s(o, "/spec/volumeAttributesClassName"), "<unset>").into(),
                age(o, now),
                str_or(s(o, "/spec/volumeMode"), "<unset>").into(),
            ]
        }
        ("apps", "Deployment") => {
            let [c, im] = template_containers_cells(o);
            let selector = match Selector::from_label_selector(
                o.at("spec").field("selector").unwrap_or(&Value::Null),
            ) {
                Ok(sel) => sel.to_string(),
                Err(_) => "<invalid>".into(),
            };
            vec![
                name,
                format!("{}/{}", i(o, "/status/readyReplicas"), replicas(o)).into(),
                i(o, "/status/updatedReplicas").into(),
                i(o, "/status/availableReplicas").into(),
                age(o, now),
                c,
                im,
                selector.into(),
            ]
        }
        ("", "ConfigMap") => {
            let n = len_of(o, "/data") + len_of(o, "/binaryData");
            vec![name, (n as i64).into(), age(o, now)]
        }
        ("networking.k8s.io", "NetworkPolicy") => {
            let empty = json!({});
            let sel = o
                .at("spec")
                .field("podSelector")
                .filter(|v| !v.is_null())
                .unwrap_or(&empty);
            vec![name, format_label_selector(Some(sel)).into(), age(o, now)]
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            let role = format!("{}/{}", s(o, "/roleRef/kind"), s(o, "/roleRef/name"));
            let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
            for sub in arr(o, "/subjects") {
                match s(sub, "/kind") {
                    "ServiceAccount" => {
                        sas.push(format!("{}/{}", s(sub, "/namespace"), s(sub, "/name")))
                    }
                    "User" => users.push(s(sub, "/name").to_string()),
                    "Group" => groups.push(s(sub, "/name").to_string()),
                    _ => {}
                }
            }
            vec![
                name,
                role.into(),
                age(o, now),
                users.join(", ").into(),
                groups.join(", ").into(),
                sas.join(", ").into(),
            ]
        }
        ("coordination.k8s.io", "Lease") => {
            vec![name, s(o, "/spec/holderIdentity").into(), age(o, now)]
        }
        ("storage.k8s.io", "StorageClass") => {
            let ann = |k: &str| {
                o.pointer(&format!("/metadata/annotations/{k}"))
                    .and_then(Value::as_str)
                    == Some("true")
            };
            let mut n = s(o, "/metadata/name").to_string();
            if ann("storageclass.kubernetes.io~1is-default-class")
                || ann("storageclass.beta.kubernetes.io~1is-default-class")
            {
                n.push_str(" (default)");
            }
            vec![
                n.into(),
                s(o, "/provisioner").into(),
                str_or(s(o, "/reclaimPolicy"), "Delete").into(),
                str_or(s(o, "/volumeBindingMode"), "Immediate").into(),
                o.pointer("/allowVolumeExpansion")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
                    .into(),
                age(o, now),
            ]
        }
        ("apps", "ControllerRevision") => {
            let owner = arr(o, "/metadata/ownerReferences")
                .iter()
                .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true));
            let controller = match owner {
                None => "<none>".to_string(),
                Some(r) => {
                    let (group, _) = crate::registry::split_api_version(s(r, "/apiVersion"));
                    let kind = s(r, "/kind");
                    let gk = if group.is_empty() {
                        kind.to_string()
                    } else {
                        format!("{kind}.{group}")
                    };
                    if gk.is_empty() {
                        s(r, "/name").to_string()
                    } else {
                        format!("{}/{}", gk.to_lowercase(), s(r, "/name"))
                    }
                }
            };
            vec![
                name,
                controller.into(),
                i(o, "/revision").into(),
                age(o, now),
            ]
        }
        ("", "ResourceQuota") => {
            let hard = obj(o, "/status/hard");
            let mut keys: Vec<&String> = hard.map(|h| h.keys().collect()).unwrap_or_default();
            keys.sort();
            let (mut req, mut lim) = (Vec::new(), Vec::new());
            for k in keys {
                let used = o
                    .pointer(&format!(
                        "/status/used/{}",
                        k.replace('~', "~0").replace('/', "~1")
                    ))
                    .map(int_or_string)
                    .unwrap_or_else(|| "0".into());
                let h = hard
                    .and_then(|h| h.get(k))
                    .map(int_or_string)
                    .unwrap_or_default();
                let entry = format!("{k}: {used}/{h}");
                let parts: Vec<&str> = k.split('.').collect();
                if parts.len() > 1 && parts[0] == "limits" {
                    lim.push(entry);
                } else {
                    req.push(entry);
                }
            }
            vec![
                name,
                req.join(", ").into(),
                lim.join(", ").into(),
                age(o, now),
            ]
        }
        ("scheduling.k8s.io", "PriorityClass") => vec![
            name,
            i(o, "/value").into(),
            o.pointer("/globalDefault")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                .into(),
            age(o, now),
            s(o, "/preemptionPolicy").into(),
        ],
        ("discovery.k8s.io", "EndpointSlice") => {
            let ports: Vec<String> = arr(o, "/ports")
                .iter()
                .map(
                    |p| match (p.get("port").and_then(Value::as_i64), p.get("name")) {
                        (Some(n), _) => n.to_string(),
                        (None, Some(Value::String(n))) => n.clone(),
                        _ => "*".into(),
                    },
                )
                .collect();
            let addrs: Vec<String> = arr(o, "/endpoints")
                .iter()
                .flat_map(|e| arr(e, "/addresses").iter())
                .map(|a| a.as_str().unwrap_or("").to_string())
                .collect();
            vec![
                name,
                s(o, "/addressType").into(),
                list_with_more(&ports, 3).into(),
                list_with_more(&addrs, 3).into(),
                age(o, now),
            ]
        }
        ("apiregistration.k8s.io", "APIService") => {
            let service = match o.at("spec").field("service").filter(|v| v.is_object()) {
                Some(svc) => format!("{}/{}", s(svc, "/namespace"), s(svc, "/name")),
                None => "Local".into(),
            };
            let status = match condition(arr(o, "/status/conditions"), "Available") {
                None => "Unknown".to_string(),
                Some(c) => {
                    let st = s(c, "/status");
                    let reason = s(c, "/reason");
                    if st == "True" || reason.is_empty() {
                        st.to_string()
                    } else {
                        format!("{st} ({reason})")
                    }
                }
            };
            vec![name, service.into(), status.into(), age(o, now)]
        }
        _ => {
            let created = time_at(o, "/metadata/creationTimestamp")
                .map(format_time)
                .unwrap_or_else(|| "0001-01-01T00:00:00Z".into());
            vec![name, created.into()]
        }
    }
}

/// The cells of a ReplicationController or ReplicaSet, whose selectors are formatted apart.
fn replica_cells(o: &Value, now: jiff::Timestamp, selector: String) -> Vec<Value> {
    let [c, im] = template_containers_cells(o);
    vec![
        s(o, "/metadata/name").into(),
        replicas(o).into(),
        i(o, "/status/replicas").into(),
        i(o, "/status/readyReplicas").into(),
        age(o, now),
        c,
        im,
        selector.into(),
    ]
}

/// A PersistentVolume's or claim's phase, `Terminating` while it is being deleted.
fn volume_phase(o: &Value) -> &str {
    if is_deleting(o) {
        "Terminating"
    } else {
        s(o, "/status/phase")
    }
}

/// Upstream's `GetPersistentVolumeClass`/`GetPersistentVolumeClaimClass`: the beta
/// annotation, else `spec.storageClassName`.
fn storage_class(o: &Value) -> &str {
    match o.pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class") {
        Some(Value::String(c)) => c.as_str(),
        _ => s(o, "/spec/storageClassName"),
    }
}

fn list_with_more(items: &[String], max: usize) -> String {
    if items.len() > max {
        return format!("{} + {} more...", items[..max].join(","), items.len() - max);
    }
    let out = items.join(",");
    if out.is_empty() {
        "<unset>".into()
    } else {
        out
    }
}

/// `helper.GetAccessModesAsString`.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(m, _)| has(m))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

fn format_hosts(rules: &[Value]) -> String {
    let max = 3;
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for r in rules {
        if list.len() == max {
            more = true;
        }
        let host = s(r, "/host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let out = list.join(",");
    if more {
        format!("{out} + {} more...", rules.len() - max)
    } else {
        out
    }
}

/// The sorted, de-duplicated IPs (or hostnames) of a load balancer status, unclipped (wide).
fn load_balancer_status(ingress: &[Value]) -> String {
    let set: BTreeSet<&str> = ingress
        .iter()
        .filter_map(|i| {
            let ip = s(i, "/ip");
            let host = s(i, "/hostname");
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    set.into_iter().collect::<Vec<_>>().join(",")
}

fn format_endpoints(o: &Value) -> String {
    let subsets = arr(o, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    let max = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for ss in subsets {
        let addrs = arr(ss, "/addresses");
        let ports = arr(ss, "/ports");
        if ports.is_empty() {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                list.push(s(a, "/ip").to_string());
            }
            continue;
        }
        for p in ports {
            count += addrs.len();
            for a in addrs {
                if list.len() == max {
                    more = true;
                    break;
                }
                let ip = s(a, "/ip");
                let port = i(p, "/port");
                // net.JoinHostPort brackets IPv6 addresses.
                if ip.contains(':') {
                    list.push(format!("[{ip}]:{port}"));
                } else {
                    list.push(format!("{ip}:{port}"));
                }
            }
        }
    }
    let out = list.join(",");
    if more {
        format!("{out} + {} more...", count - max)
    } else {
        out
    }
}

fn service_cells(o: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let type_ = s(o, "/spec/type");
    let cluster_ip = match arr(o, "/spec/clusterIPs").first().and_then(Value::as_str) {
        Some(ip) => ip,
        None => str_or(s(o, "/spec/clusterIP"), "<none>"),
    };
    let external: Vec<&str> = arr(o, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external_ip = match type_ {
        "ClusterIP" | "NodePort" => {
            if external.is_empty() {
                "<none>".to_string()
            } else {
                external.join(",")
            }
        }
        "LoadBalancer" => {
            let lb = load_balancer_status(arr(o, "/status/loadBalancer/ingress"));
            if !external.is_empty() {
                let mut all: Vec<&str> = Vec::new();
                if !lb.is_empty() {
                    all.extend(lb.split(','));
                }
                all.extend(external.iter().copied());
                all.join(",")
            } else if !lb.is_empty() {
                lb
            } else {
                "<pending>".into()
            }
        }
        "ExternalName" => s(o, "/spec/externalName").to_string(),
        _ => "<unknown>".into(),
    };
    let ports: Vec<String> = arr(o, "/spec/ports")
        .iter()
        .map(|p| {
            let port = i(p, "/port");
            let proto = str_or(s(p, "/protocol"), "TCP");
            let node_port = i(p, "/nodePort");
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    let ports = if ports.is_empty() {
        "<none>".to_string()
    } else {
        ports.join(",")
    };
    vec![
        s(o, "/metadata/name").into(),
        type_.into(),
        cluster_ip.into(),
        external_ip.into(),
        ports.into(),
        age(o, now),
        format_labels(obj(o, "/spec/selector")).into(),
    ]
}

fn job_cells(o: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let succeeded = i(o, "/status/succeeded");
    let completions = match o.at("spec").field("completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = i(o, "/spec/parallelism");
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match (
        time_at(o, "/status/startTime"),
        time_at(o, "/status/completionTime"),
    ) {
        (None, _) => String::new(),
        (Some(start), None) => human_secs(now.duration_since(start).as_secs()),
        (Some(start), Some(end)) => human_secs(end.duration_since(start).as_secs()),
    };
    let conds = arr(o, "/status/conditions");
    let status = if condition_true(conds, "Complete") {
        "Complete"
    } else if condition_true(conds, "Failed") {
        "Failed"
    } else if is_deleting(o) {
        "Terminating"
    } else if condition_true(conds, "Suspended") {
        "Suspended"
    } else if condition_true(conds, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let [c, im] = template_containers_cells(o);
    vec![
        s(o, "/metadata/name").into(),
        status.into(),
        completions.into(),
        duration.into(),
        age(o, now),
        c,
        im,
        format_label_selector(o.at("spec").field("selector")).into(),
    ]
}

fn node_cells(o: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    // Upstream keeps the last condition of each type.
    if let Some(c) = arr(o, "/status/conditions")
        .iter()
        .rev()
        .find(|c| s(c, "/type") == "Ready")
    {
        status.push(if s(c, "/status") == "True" {
            "Ready".into()
        } else {
            "NotReady".into()
        });
    }
    if status.is_empty() {
        status.push("Unknown".into());
    }
    if o.at("spec").field("unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    let mut roles: BTreeSet<String> = BTreeSet::new();
    if let Some(labels) = obj(o, "/metadata/labels") {
        for (k, v) in labels {
            if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
                if !role.is_empty() {
                    roles.insert(role.to_string());
                }
            } else if k == "kubernetes.io/role" {
                if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                    roles.insert(v.to_string());
                }
            }
        }
    }
    let roles = if roles.is_empty() {
        "<none>".to_string()
    } else {
        roles.into_iter().collect::<Vec<_>>().join(",")
    };
    let address = |t: &str| -> Value {
        arr(o, "/status/addresses")
            .iter()
            .find(|a| s(a, "/type") == t)
            .map(|a| s(a, "/address"))
            .unwrap_or("<none>")
            .into()
    };
    let info =
        |k: &str| -> Value { str_or(s(o, &format!("/status/nodeInfo/{k}")), "<unknown>").into() };
    vec![
        s(o, "/metadata/name").into(),
        status.join(",").into(),
        roles.into(),
        age(o, now),
        s(o, "/status/nodeInfo/kubeletVersion").into(),
        address("InternalIP"),
        address("ExternalIP"),
        info("osImage"),
        info("kernelVersion"),
        info("containerRuntimeVersion"),
    ]
}

fn event_cells(o: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let first = match time_at(o, "/firstTimestamp") {
        Some(t) => since(Some(t), now),
        None => since(time_at(o, "/eventTime"), now),
    };
    let mut last = match time_at(o, "/lastTimestamp") {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = i(o, "/count");
    if present(o, "/series") {
        last = since(time_at(o, "/series/lastObservedTime"), now);
        count = i(o, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = s(o, "/involvedObject/kind").to_lowercase();
    let inv_name = s(o, "/involvedObject/name");
    let target = if inv_name.is_empty() {
        kind
    } else {
        format!("{kind}/{inv_name}")
    };
    let component = str_or(s(o, "/source/component"), s(o, "/reportingComponent"));
    let instance = str_or(s(o, "/source/host"), s(o, "/reportingInstance"));
    let source = if instance.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {instance}")
    };
    vec![
        last.into(),
        s(o, "/type").into(),
        s(o, "/reason").into(),
        target.into(),
        s(o, "/involvedObject/fieldPath").into(),
        source.into(),
        s(o, "/message").trim().into(),
        first.into(),
        count.into(),
        s(o, "/metadata/name").into(),
    ]
}

fn pod_cells(pod: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let init_specs = arr(pod, "/spec/initContainers");
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| s(c, "/name") == name && s(c, "/restartPolicy") == "Always")
    };
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let total = arr(pod, "/spec/containers").len()
        + init_specs
            .iter()
            .filter(|c| s(c, "/restartPolicy") == "Always")
            .count();
    let mut ready = 0usize;
    let mut last_restart: Option<jiff::Timestamp> = None;
    let mut last_sidecar_restart: Option<jiff::Timestamp> = None;
    let later = |cur: Option<jiff::Timestamp>, t: Option<jiff::Timestamp>| match (cur, t) {
        (Some(c), Some(t)) if t > c => Some(t),
        (None, t) => t,
        (c, _) => c,
    };

    let phase = s(pod, "/status/phase");
    let mut reason = str_or(s(pod, "/status/reason"), phase).to_string();
    let conds = arr(pod, "/status/conditions");
    if conds
        .iter()
        .any(|c| s(c, "/type") == "PodScheduled" && s(c, "/reason") == "SchedulingGated")
    {
        reason = "SchedulingGated".into();
    }

    let mut initializing = false;
    let init_statuses = arr(pod, "/status/initContainerStatuses");
    for (idx, c) in init_statuses.iter().enumerate() {
        let rc = i(c, "/restartCount");
        restarts += rc;
        let finished = if present(c, "/lastState/terminated") {
            time_at(c, "/lastState/terminated/finishedAt")
        } else {
            None
        };
        last_restart = later(last_restart, finished);
        let is_sidecar = restartable(s(c, "/name"));
        if is_sidecar {
            sidecar_restarts += rc;
            last_sidecar_restart = later(last_sidecar_restart, finished);
        }
        let terminated = present(c, "/state/terminated");
        let waiting_reason = s(c, "/state/waiting/reason");
        if terminated && i(c, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if is_sidecar && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if terminated {
            let r = s(c, "/state/terminated/reason");
            reason = if !r.is_empty() {
                format!("Init:{r}")
            } else if i(c, "/state/terminated/signal") != 0 {
                format!("Init:Signal:{}", i(c, "/state/terminated/signal"))
            } else {
                format!("Init:ExitCode:{}", i(c, "/state/terminated/exitCode"))
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{}/{}", idx, init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(conds, "Initialized") {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += i(c, "/restartCount");
            if present(c, "/lastState/terminated") {
                last_restart = later(last_restart, time_at(c, "/lastState/terminated/finishedAt"));
            }
            let waiting_reason = s(c, "/state/waiting/reason");
            let terminated = present(c, "/state/terminated");
            let term_reason = s(c, "/state/terminated/reason");
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if terminated && !term_reason.is_empty() {
                reason = term_reason.to_string();
            } else if terminated {
                let signal = i(c, "/state/terminated/signal");
                reason = if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", i(c, "/state/terminated/exitCode"))
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && present(c, "/state/running")
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(conds, "Ready") {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }

    if is_deleting(pod) && s(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".into();
    } else if is_deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".into();
    }

    let restarts_str = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let pod_ip = match arr(pod, "/status/podIPs").first() {
        Some(ip) => s(ip, "/ip"),
        None => s(pod, "/status/podIP"),
    };
    let gates = arr(pod, "/spec/readinessGates");
    let readiness = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| {
                conds
                    .iter()
                    .find(|c| s(c, "/type") == s(g, "/conditionType"))
                    .is_some_and(|c| s(c, "/status") == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        s(pod, "/metadata/name").into(),
        format!("{ready}/{total}").into(),
        reason.into(),
        restarts_str.into(),
        age(pod, now),
        str_or(pod_ip, "<none>").into(),
        str_or(s(pod, "/spec/nodeName"), "<none>").into(),
        str_or(s(pod, "/status/nominatedNodeName"), "<none>").into(),
        readiness.into(),
    ]
}

/// Row conditions upstream attaches (`Completed` for finished pods), if any.
pub fn row_conditions(res: &Resource, o: &Value) -> Option<Value> {
    if !res.group.is_empty() || res.kind != "Pod" {
        return None;
    }
    let (reason, message) = match s(o, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// One Table row: `{"cells": [...], "conditions"?: [...], "object"?: {...}}`.
pub fn row(res: &Resource, o: &Value, now: jiff::Timestamp, include: IncludeObject) -> Value {
    let mut r = Map::new();
    r.insert("cells".into(), Value::Array(cells(res, o, now)));
    if let Some(c) = row_conditions(res, o) {
        r.insert("conditions".into(), c);
    }
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            let meta = o.get("metadata").cloned().unwrap_or_else(|| json!({}));
            r.insert(
                "object".into(),
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}),
            );
        }
        IncludeObject::Object => {
            r.insert("object".into(), o.clone());
        }
    }
    Value::Object(r)
}

/// A whole Table for `objects` (a list, or one object, or one watch event), with `list_meta`
/// as its `metadata` (e.g. `{"resourceVersion": "42"}`).
pub fn table(
    res: &Resource,
    objects: &[Value],
    now: jiff::Timestamp,
    include_object: IncludeObject,
    list_meta: Value,
) -> Value {
    table_with(res, objects, now, include_object, list_meta, true)
}

/// [`table`], optionally without `columnDefinitions` (watch events after the first, as the
/// apiserver's watch encoder sets `NoHeaders`; the field is then `null`).
pub fn table_with(
    res: &Resource,
    objects: &[Value],
    now: jiff::Timestamp,
    include_object: IncludeObject,
    list_meta: Value,
    include_columns: bool,
) -> Value {
    let columns = if include_columns {
        serde_json::to_value(columns(res)).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let list_meta = if list_meta.is_null() {
        json!({})
    } else {
        list_meta
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| row(res, o, now, include_object))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

// ---- column descriptions (the API's field documentation, as upstream's SwaggerDoc) ----

const D_META_NAME: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const D_POD_IP: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
const D_POD_NODE: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
const D_POD_NOMINATED: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const D_POD_GATES: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";
const D_POD_NODESELECTOR: &str = "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/";
const D_RC_SPEC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
const D_RC_SPEC_SELECTOR: &str = "Selector is a label query over pods that should match the Replicas count. If Selector is empty, it is defaulted to the labels present on the Pod template. Label keys and values that must match in order to be controlled by this replication controller, if empty defaulted to labels on Pod template. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const D_RC_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller#what-is-a-replicationcontroller";
const D_RC_STATUS_READY: &str = "The number of ready replicas for this replication controller.";
const D_RS_SPEC_REPLICAS: &str = "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
const D_RS_STATUS_REPLICAS: &str = "Replicas is the most recently observed number of replicas. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicationcontroller/#what-is-a-replicationcontroller";
const D_RS_STATUS_READY: &str =
    "readyReplicas is the number of pods targeted by this ReplicaSet with a Ready Condition.";
const D_DS_DESIRED: &str = "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const D_DS_CURRENT: &str = "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/";
const D_DS_READY: &str = "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition.";
const D_DS_UPDATED: &str = "The total number of nodes that are running updated daemon pod";
const D_DS_AVAILABLE: &str = "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)";
const D_JOB_SUCCEEDED: &str = "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.";
const D_CJ_SCHEDULE: &str = "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.";
const D_CJ_TZ: &str = "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones";
const D_CJ_SUSPEND: &str = "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.";
const D_CJ_ACTIVE: &str = "A list of pointers to currently running jobs.";
const D_SVC_TYPE: &str = "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types";
const D_SVC_CLUSTERIP: &str = "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const D_SVC_EXTERNALIPS: &str = "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system.";
const D_SVC_PORTS: &str = "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies";
const D_SVC_SELECTOR: &str = "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/";
const D_EP_SUBSETS: &str = "The set of all endpoints is the union of all subsets. Addresses are placed into subsets according to the IPs they share. A single address with multiple ports, some of which are ready and some of which are not (because they come from different containers) will result in the address being displayed in different subsets for the different ports. No address will appear in both Addresses and NotReadyAddresses in the same subset. Sets of addresses and ports that comprise a service.";
const D_NODE_KUBELET: &str = "Kubelet Version reported by the node.";
const D_NODE_ADDRESSES: &str = "List of addresses reachable to the node. Queried from cloud provider, if available. More info: https://kubernetes.io/docs/reference/node/node-status/#addresses Note: This field is declared as mergeable, but the merge key is not sufficiently unique, which can cause data corruption when it is merged. Callers should instead use a full-replacement patch. See https://pr.k8s.io/79391 for an example. Consumers should assume that addresses can change during the lifetime of a Node. However, there are some exceptions where this may not be possible, such as Pods that inherit a Node's address in its own status or consumers of the downward API (status.hostIP).";
const D_NODE_OSIMAGE: &str =
    "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).";
const D_NODE_KERNEL: &str =
    "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).";
const D_NODE_CRI: &str = "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).";
const D_EV_TYPE: &str =
    "Type of this event (Normal, Warning), new types could be added in the future";
const D_EV_REASON: &str = "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.";
const D_EV_FIELDPATH: &str = "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" (where \"name\" refers to the name of the container that triggered the event) or if no container name is specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have some well-defined way of referencing a part of an object.";
const D_EV_MESSAGE: &str = "A human-readable description of the status of this operation.";
const D_EV_COUNT: &str = "The number of times this event has occurred.";
const D_SECRET_TYPE: &str = "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types";
const D_SECRET_DATA: &str = "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4";
const D_SA_SECRETS: &str = "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret";
const D_PV_CAPACITY: &str = "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity";
const D_PV_ACCESS: &str = "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes";
const D_PV_RECLAIM: &str = "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming";
const D_PV_PHASE: &str = "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase";
const D_PV_REASON: &str = "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI.";
const D_PV_MODE: &str = "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec.";
const D_PVC_PHASE: &str = "phase represents the current phase of PersistentVolumeClaim.";
const D_PVC_VOLUME: &str =
    "volumeName is the binding reference to the PersistentVolume backing this claim.";
const D_PVC_CAPACITY: &str = "capacity represents the actual resources of the underlying volume.";
const D_PVC_ACCESS: &str = "accessModes contains the actual access modes the volume backing the PVC has. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes-1";
const D_PVC_MODE: &str = "volumeMode defines what type of volume is required by the claim. Value of Filesystem is implied when not included in claim spec.";
const D_DEP_UPDATED: &str = "Total number of non-terminated pods targeted by this deployment that have the desired template spec.";
const D_DEP_AVAILABLE: &str = "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.";
const D_CM_DATA: &str = "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.";
const D_LEASE_HOLDER: &str = "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.";
const D_SC_PROVISIONER: &str = "provisioner indicates the type of the provisioner.";
const D_SC_RECLAIM: &str = "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete.";
const D_SC_BINDING: &str = "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature.";
const D_SC_EXPANSION: &str =
    "allowVolumeExpansion shows whether the storage class allow volume expand.";
const D_CR_REVISION: &str = "Revision indicates the revision of the state represented by Data.";
const D_PC_VALUE: &str = "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec.";
const D_PC_DEFAULT: &str = "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority.";
const D_PC_PREEMPT: &str = "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.";
const D_EPS_ADDRTYPE: &str = "addressType specifies the type of address carried by this EndpointSlice. All addresses in this slice must be the same type. This field is immutable after creation. The following address types are currently supported: * IPv4: Represents an IPv4 Address. * IPv6: Represents an IPv6 Address. * FQDN: Represents a Fully Qualified Domain Name.";
const D_EPS_PORTS: &str = "ports specifies the list of network ports exposed by each endpoint in this slice. Each port must have a unique name. When ports is empty, it indicates that there are no defined ports. When a port is defined with a nil port value, it indicates \"all ports\". Each slice may include a maximum of 100 ports.";
const D_EPS_ENDPOINTS: &str = "endpoints is a list of unique endpoints in this slice. Each slice may include a maximum of 1000 endpoints.";
const D_META_CREATED: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const D_RS_SPEC_SELECTOR: &str = "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const D_DS_SELECTOR: &str = "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const D_JOB_SELECTOR: &str = "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors";
const D_CJ_LAST: &str = "Information when was the last time the job was successfully scheduled.";
const D_EV_LAST: &str = "The time at which the most recent occurrence of this event was recorded.";
const D_EV_INVOLVED: &str = "The object that this event is about.";
const D_EV_SOURCE: &str =
    "The component reporting this event. Should be a short machine understandable string.";
const D_EV_FIRST: &str =
    "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)";
const D_PV_CLAIM: &str = "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding";
const D_DEP_SELECTOR: &str = "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.";
const D_NP_PODSELECTOR: &str = "podSelector selects the pods to which this NetworkPolicy object applies. The array of ingress rules is applied to any pods selected by this field. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is NOT optional and follows standard label selector semantics. An empty podSelector matches all pods in this namespace.";
const D_RB_ROLEREF: &str = "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.";
const D_CRB_ROLEREF: &str = "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.";
