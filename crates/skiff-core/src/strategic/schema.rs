//! Strategic-merge-patch metadata of the built-in kinds: the `patchStrategy` and `patchMergeKey`
//! Go struct tags of k8s.io/api (and `metav1.ObjectMeta`), which is what upstream's
//! `strategicpatch.NewPatchMetaFromStruct` reads for native objects on both sides of the wire
//! (kubectl computing a patch, the API server applying it).
//!
//! Only struct tags count: `+listType=map` without a `patchStrategy` tag (tolerations, taints,
//! container statuses, endpoint subsets…) is atomic for strategic merge patch. Fields absent
//! from these tables have no strategy: maps merge key by key, lists are replaced whole.

use crate::Resource;

/// How a field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// No tag: maps are merged key by key, lists are replaced atomically.
    Default,
    /// `patchStrategy:"merge"`: a list merged item by item, by `key` for lists of maps
    /// (`patchMergeKey`), by value for lists of primitives (`key` is `None`).
    Merge { key: Option<&'static str> },
    /// `patchStrategy:"replace"`: the field (a map) is replaced whole.
    Replace,
}

/// The patch metadata of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldMeta {
    pub strategy: Strategy,
    /// `retainKeys` is among the field's strategies: a two-way patch carries `$retainKeys` for
    /// the map (or for each item of the list), so that fields of a union not set in the
    /// modified object are cleared.
    pub retain_keys: bool,
}

impl FieldMeta {
    pub const DEFAULT: FieldMeta = FieldMeta {
        strategy: Strategy::Default,
        retain_keys: false,
    };

    /// The merge key when this is a merge list of maps.
    pub fn merge_key(&self) -> Option<&'static str> {
        match self.strategy {
            Strategy::Merge { key } => key,
            _ => None,
        }
    }

    pub fn is_merge(&self) -> bool {
        matches!(self.strategy, Strategy::Merge { .. })
    }

    /// A merge list of primitives (`finalizers`, `podCIDRs`).
    pub fn is_primitive_merge_list(&self) -> bool {
        matches!(self.strategy, Strategy::Merge { key: None })
    }
}

/// A struct type: its fields that carry metadata or lead to ones that do.
#[derive(Debug)]
pub(crate) struct Ty {
    fields: &'static [Field],
}

#[derive(Debug)]
struct Field {
    name: &'static str,
    meta: FieldMeta,
    /// The type of the field's value (of its items, for a list).
    ty: Option<&'static Ty>,
}

/// A position in the schema: the struct type at this point of the object, if known.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema(Option<&'static Ty>);

/// Two positions are the same when they are at the same struct type (or both unknown).
impl PartialEq for Schema {
    fn eq(&self, other: &Schema) -> bool {
        match (self.0, other.0) {
            (Some(a), Some(b)) => std::ptr::eq(a, b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl Schema {
    pub(crate) const NONE: Schema = Schema(None);

    /// The metadata of field `name` of this struct and the schema of its value (of its items,
    /// for a list).
    pub(crate) fn field(self, name: &str) -> (FieldMeta, Schema) {
        match self
            .0
            .and_then(|t| t.fields.iter().find(|f| f.name == name))
        {
            Some(f) => (f.meta, Schema(f.ty)),
            None => (FieldMeta::DEFAULT, Schema::NONE),
        }
    }

    /// The schema of the top level of an object of kind `res`.
    pub(crate) fn of(res: &Resource) -> Schema {
        Schema(Some(top_level(res.group, res.kind)))
    }
}

/// The patch metadata of the field at `path` (field names from the top of the object, list
/// indices left out) of an object of kind `res`, e.g. `["spec", "template", "spec",
/// "containers", "env"]` for a Deployment is a merge list keyed by `name`.
pub fn field_meta(res: &Resource, path: &[&str]) -> FieldMeta {
    let mut schema = Schema::of(res);
    let mut meta = FieldMeta::DEFAULT;
    for name in path {
        (meta, schema) = schema.field(name);
    }
    meta
}

const fn plain(name: &'static str, ty: &'static Ty) -> Field {
    Field {
        name,
        meta: FieldMeta::DEFAULT,
        ty: Some(ty),
    }
}

const fn merge(name: &'static str, key: &'static str, ty: Option<&'static Ty>) -> Field {
    Field {
        name,
        meta: FieldMeta {
            strategy: Strategy::Merge { key: Some(key) },
            retain_keys: false,
        },
        ty,
    }
}

const fn merge_retain(name: &'static str, key: &'static str) -> Field {
    Field {
        name,
        meta: FieldMeta {
            strategy: Strategy::Merge { key: Some(key) },
            retain_keys: true,
        },
        ty: None,
    }
}

const fn merge_primitive(name: &'static str) -> Field {
    Field {
        name,
        meta: FieldMeta {
            strategy: Strategy::Merge { key: None },
            retain_keys: false,
        },
        ty: None,
    }
}

const fn conditions() -> Field {
    merge("conditions", "type", None)
}

// metav1.ObjectMeta.
static OBJECT_META: Ty = Ty {
    fields: &[
        merge_primitive("finalizers"),
        merge("ownerReferences", "uid", None),
    ],
};

// core/v1 Container and EphemeralContainer (EphemeralContainerCommon has the same tags).
static CONTAINER: Ty = Ty {
    fields: &[
        merge("ports", "containerPort", None),
        merge("env", "name", None),
        merge("volumeMounts", "mountPath", None),
        merge("volumeDevices", "devicePath", None),
    ],
};

static POD_SPEC: Ty = Ty {
    fields: &[
        merge_retain("volumes", "name"),
        merge("initContainers", "name", Some(&CONTAINER)),
        merge("containers", "name", Some(&CONTAINER)),
        merge("ephemeralContainers", "name", Some(&CONTAINER)),
        merge("imagePullSecrets", "name", None),
        merge("hostAliases", "ip", None),
        merge("topologySpreadConstraints", "topologyKey", None),
        merge("schedulingGates", "name", None),
        merge_retain("resourceClaims", "name"),
    ],
};

static POD_STATUS: Ty = Ty {
    fields: &[
        conditions(),
        merge("podIPs", "ip", None),
        merge("hostIPs", "ip", None),
        // containerStatuses are atomic, so the merge lists inside ContainerStatus never apply.
        merge_retain("resourceClaimStatuses", "name"),
    ],
};

static POD_TEMPLATE_SPEC: Ty = Ty {
    fields: &[plain("metadata", &OBJECT_META), plain("spec", &POD_SPEC)],
};

/// Specs whose only metadata is their pod template (ReplicaSet, StatefulSet, DaemonSet, Job,
/// ReplicationController).
static TEMPLATE_SPEC: Ty = Ty {
    fields: &[plain("template", &POD_TEMPLATE_SPEC)],
};

static DEPLOYMENT_SPEC: Ty = Ty {
    fields: &[
        plain("template", &POD_TEMPLATE_SPEC),
        Field {
            name: "strategy",
            meta: FieldMeta {
                strategy: Strategy::Default,
                retain_keys: true,
            },
            ty: None,
        },
    ],
};

static JOB_TEMPLATE_SPEC: Ty = Ty {
    fields: &[
        plain("metadata", &OBJECT_META),
        plain("spec", &TEMPLATE_SPEC),
    ],
};

static CRON_JOB_SPEC: Ty = Ty {
    fields: &[plain("jobTemplate", &JOB_TEMPLATE_SPEC)],
};

/// Statuses whose only metadata is `conditions` merged by `type`.
static CONDITIONS_STATUS: Ty = Ty {
    fields: &[conditions()],
};

static SERVICE_SPEC: Ty = Ty {
    fields: &[merge("ports", "port", None)],
};

static NODE_SPEC: Ty = Ty {
    fields: &[merge_primitive("podCIDRs")],
};

static NODE_STATUS: Ty = Ty {
    fields: &[conditions(), merge("addresses", "type", None)],
};

static PDB_SPEC: Ty = Ty {
    fields: &[Field {
        name: "selector",
        meta: FieldMeta {
            strategy: Strategy::Replace,
            retain_keys: false,
        },
        ty: None,
    }],
};

/// The top level of an object: metadata, and the kind's spec and status types.
macro_rules! object {
    ($name:ident $(, $field:expr)*) => {
        static $name: Ty = Ty {
            fields: &[plain("metadata", &OBJECT_META), $($field),*],
        };
    };
}

object!(OBJECT);
object!(POD, plain("spec", &POD_SPEC), plain("status", &POD_STATUS));
object!(POD_TEMPLATE, plain("template", &POD_TEMPLATE_SPEC));
object!(
    DEPLOYMENT,
    plain("spec", &DEPLOYMENT_SPEC),
    plain("status", &CONDITIONS_STATUS)
);
object!(
    WORKLOAD,
    plain("spec", &TEMPLATE_SPEC),
    plain("status", &CONDITIONS_STATUS)
);
object!(CRON_JOB, plain("spec", &CRON_JOB_SPEC));
object!(
    SERVICE,
    plain("spec", &SERVICE_SPEC),
    plain("status", &CONDITIONS_STATUS)
);
object!(SERVICE_ACCOUNT, merge("secrets", "name", None));
object!(
    NODE,
    plain("spec", &NODE_SPEC),
    plain("status", &NODE_STATUS)
);
object!(CONDITIONS_ONLY, plain("status", &CONDITIONS_STATUS));
object!(
    PDB,
    plain("spec", &PDB_SPEC),
    plain("status", &CONDITIONS_STATUS)
);

fn top_level(group: &str, kind: &str) -> &'static Ty {
    match (group, kind) {
        ("", "Pod") => &POD,
        ("", "PodTemplate") => &POD_TEMPLATE,
        ("apps", "Deployment") => &DEPLOYMENT,
        ("apps", "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => &WORKLOAD,
        ("batch", "CronJob") => &CRON_JOB,
        ("", "Service") => &SERVICE,
        ("", "ServiceAccount") => &SERVICE_ACCOUNT,
        ("", "Node") => &NODE,
        ("", "Namespace" | "PersistentVolumeClaim")
        | ("apiregistration.k8s.io", "APIService")
        | ("networking.k8s.io", "ServiceCIDR")
        | ("flowcontrol.apiserver.k8s.io", "FlowSchema" | "PriorityLevelConfiguration") => {
            &CONDITIONS_ONLY
        }
        ("policy", "PodDisruptionBudget") => &PDB,
        _ => &OBJECT,
    }
}
