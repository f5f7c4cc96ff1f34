//! Pod priority, after upstream's `Priority` admission plugin and the scheduling registry's
//! bootstrap: the two system PriorityClasses exist from the start, and a pod being created
//! gets `spec.priority` and `spec.preemptionPolicy` from its `priorityClassName` (or from
//! the `globalDefault` class, else priority 0). An unknown class, or a priority or policy set
//! by the client that disagrees with the class, is refused with 403 Forbidden.

use serde_json::{json, Value};
use skiff_core::meta::Fields as _;
use skiff_core::registry::{self, Resource};
use skiff_core::ApiError;
use skiff_store::{ListOptions, ReadAt};

use crate::server::ApiServer;

/// The system classes: name, value, description (as upstream registers them).
pub const SYSTEM_CLASSES: &[(&str, i64, &str)] = &[
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

const PREEMPT_LOWER: &str = "PreemptLowerPriority";

fn classes() -> &'static Resource {
    registry::lookup("scheduling.k8s.io", "v1", "priorityclasses").expect("priorityclasses")
}

/// Creates the system PriorityClasses that do not exist yet.
pub(crate) async fn ensure_system_classes(api: &ApiServer) -> Result<(), ApiError> {
    let res = classes();
    for (name, value, description) in SYSTEM_CLASSES {
        let obj = json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
        });
        match api.create_object(res, None, obj, false).await {
            Ok(_) => {}
            Err(e) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What a class gives a pod.
struct Class {
    name: String,
    value: i64,
    policy: String,
}

fn class_of(v: &Value) -> Class {
    Class {
        name: v
            .at("metadata")
            .field("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        value: v.field("value").and_then(Value::as_i64).unwrap_or(0),
        policy: v
            .field("preemptionPolicy")
            .and_then(Value::as_str)
            .unwrap_or(PREEMPT_LOWER)
            .to_string(),
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        500,
        "InternalError",
        format!("reading priority classes: {e}"),
    )
}

async fn named(api: &ApiServer, name: &str) -> Result<Option<Class>, ApiError> {
    let (kv, _) = api
        .store()
        .get(&classes().key(None, name), ReadAt::Latest)
        .await
        .map_err(internal)?;
    let Some(kv) = kv else {
        return Ok(None);
    };
    let v: Value = serde_json::from_slice(&kv.value).map_err(internal)?;
    Ok(Some(class_of(&v)))
}

/// The global default class (the lowest value if several claim it).
async fn global_default(api: &ApiServer) -> Result<Option<Class>, ApiError> {
    let list = api
        .store()
        .list(ListOptions {
            prefix: classes().key_prefix(),
            ..Default::default()
        })
        .await
        .map_err(internal)?;
    // Stored objects are compact JSON: most classes are not the default, and a byte scan
    // says so without parsing them (the searcher is built once: every pod create asks).
    static DEFAULT: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"globalDefault\":true"));
    let mut best: Option<Class> = None;
    for kv in list.items {
        if DEFAULT.find(&kv.value).is_none() {
            continue;
        }
        let v: Value = serde_json::from_slice(&kv.value).map_err(internal)?;
        if v.field("globalDefault").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let c = class_of(&v);
        if best.as_ref().is_none_or(|b| c.value < b.value) {
            best = Some(c);
        }
    }
    Ok(best)
}

/// Resolves a new pod's priority (`res` is the pods resource, `pod` the object in its wire
/// shape, before defaulting).
pub(crate) async fn admit_pod(
    api: &ApiServer,
    res: &Resource,
    pod: &mut Value,
) -> Result<(), ApiError> {
    let name = pod
        .at("metadata")
        .field("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(spec) = pod.field_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let class_name = spec
        .field("priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let class = if class_name.is_empty() {
        global_default(api).await?
    } else {
        match named(api, &class_name).await? {
            Some(c) => Some(c),
            None => {
                return Err(ApiError::forbidden(
                    res,
                    &name,
                    &format!("no PriorityClass with name {class_name} was found"),
                ))
            }
        }
    };
    let (value, policy) = match &class {
        Some(c) => (c.value, c.policy.clone()),
        None => (0, PREEMPT_LOWER.to_string()),
    };
    if let Some(given) = spec.field("priority").and_then(Value::as_i64) {
        if given != value {
            return Err(ApiError::forbidden(
                res,
                &name,
                &format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"),
            ));
        }
    }
    if let Some(given) = spec.field("preemptionPolicy").and_then(Value::as_str) {
        if given != policy {
            return Err(ApiError::forbidden(
                res,
                &name,
                &format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"),
            ));
        }
    }
    if let Some(c) = &class {
        spec.insert("priorityClassName".into(), json!(c.name));
    }
    spec.insert("priority".into(), json!(value));
    spec.insert("preemptionPolicy".into(), json!(policy));
    Ok(())
}
