//! The built-in resources Skiff serves: group, version, kind, plural and singular names, scope,
//! short names, categories, verbs and subresources, as the upstream API server reports them in
//! discovery. Everything that routes, stores or prints an object starts from a [`Resource`].

/// The verbs of an ordinary read-write resource, in upstream's discovery order.
pub const RW_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// A subresource as discovery reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subresource {
    pub name: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// Behaviour switches of a resource that the generic storage path needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Traits {
    /// `metadata.generation` is kept and bumped when the spec changes.
    pub generation: bool,
    /// A `status` subresource exists: the main resource ignores status writes and the
    /// subresource ignores everything else.
    pub status: bool,
    /// A `scale` subresource (autoscaling/v1 Scale) over `spec.replicas`.
    pub scale: bool,
}

/// A served resource: a built-in one from [`RESOURCES`], or one version of a
/// CustomResourceDefinition (built by [`crate::crd::intern`], with `custom` set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    pub traits: Traits,
    /// What a custom resource adds (schema, printer columns, scale paths, storage version);
    /// `None` for built-in kinds.
    pub custom: Option<&'static crate::crd::CustomInfo>,
}

impl Resource {
    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `DeploymentList` (a CRD's `spec.names.listKind`).
    pub fn list_kind(&self) -> String {
        match self.custom {
            Some(c) => c.list_kind.clone(),
            None => format!("{}List", self.kind),
        }
    }

    /// `deployments.apps`, or `pods` for the core group: how upstream names the resource in
    /// error messages.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Deployment.apps`, or `Pod` for the core group: the kind as named in 422 messages.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_string()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The group used for storage keys: events.k8s.io events share core events' storage.
    pub fn storage_group(&self) -> &'static str {
        if self.group == "events.k8s.io" && self.plural == "events" {
            ""
        } else {
            self.group
        }
    }

    /// The store key prefix of every object of this resource: `/registry/<group>/<plural>/`.
    pub fn key_prefix(&self) -> String {
        crate::concat(&["/registry/", self.group_dir(), "/", self.plural, "/"])
    }

    /// The store key prefix of the objects in one namespace.
    pub fn namespace_prefix(&self, namespace: &str) -> String {
        let g = self.group_dir();
        crate::concat(&["/registry/", g, "/", self.plural, "/", namespace, "/"])
    }

    /// The store key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        let g = self.group_dir();
        match (self.namespaced, namespace) {
            (true, Some(ns)) => {
                crate::concat(&["/registry/", g, "/", self.plural, "/", ns, "/", name])
            }
            _ => crate::concat(&["/registry/", g, "/", self.plural, "/", name]),
        }
    }

    /// The group's part of store keys: `core` for the core group.
    fn group_dir(&self) -> &'static str {
        match self.storage_group() {
            "" => "core",
            g => g,
        }
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// The resource with the same storage as this one (core events for events.k8s.io events).
    pub fn is_same_storage(&self, other: &Resource) -> bool {
        self.storage_group() == other.storage_group() && self.plural == other.plural
    }
}

const fn sub(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> Subresource {
    Subresource {
        name,
        group: "",
        version: "",
        kind,
        verbs,
    }
}

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];
const SCALE: Subresource = Subresource {
    name: "scale",
    group: "autoscaling",
    version: "v1",
    kind: "Scale",
    verbs: &["get", "patch", "update"],
};

macro_rules! status_sub {
    ($kind:literal) => {
        sub("status", $kind, STATUS_VERBS)
    };
}

const NONE: Traits = Traits {
    generation: false,
    status: false,
    scale: false,
};
const GEN: Traits = Traits {
    generation: true,
    status: false,
    scale: false,
};
const STATUS: Traits = Traits {
    generation: false,
    status: true,
    scale: false,
};
const GEN_STATUS: Traits = Traits {
    generation: true,
    status: true,
    scale: false,
};
const GEN_STATUS_SCALE: Traits = Traits {
    generation: true,
    status: true,
    scale: true,
};

#[allow(clippy::too_many_arguments)]
const fn res(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
    categories: &'static [&'static str],
    subresources: &'static [Subresource],
    traits: Traits,
) -> Resource {
    Resource {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names,
        categories,
        verbs: RW_VERBS,
        subresources,
        traits,
        custom: None,
    }
}

const ALL: &[&str] = &["all"];
const NS: bool = true;
const CLUSTER: bool = false;

/// Every built-in resource, grouped as discovery lists them.
pub static RESOURCES: &[Resource] = &[
    // core/v1
    res(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        "configmap",
        NS,
        &["cm"],
        &[],
        &[],
        NONE,
    ),
    res(
        "",
        "v1",
        "Endpoints",
        "endpoints",
        "endpoints",
        NS,
        &["ep"],
        &[],
        &[],
        NONE,
    ),
    res(
        "",
        "v1",
        "Event",
        "events",
        "event",
        NS,
        &["ev"],
        &[],
        &[],
        NONE,
    ),
    res(
        "",
        "v1",
        "LimitRange",
        "limitranges",
        "limitrange",
        NS,
        &["limits"],
        &[],
        &[],
        NONE,
    ),
    res(
        "",
        "v1",
        "Namespace",
        "namespaces",
        "namespace",
        CLUSTER,
        &["ns"],
        &[],
        &[
            status_sub!("Namespace"),
            sub("finalize", "Namespace", &["update"]),
        ],
        STATUS,
    ),
    res(
        "",
        "v1",
        "Node",
        "nodes",
        "node",
        CLUSTER,
        &["no"],
        &[],
        &[status_sub!("Node")],
        STATUS,
    ),
    res(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        NS,
        &["pvc"],
        &[],
        &[status_sub!("PersistentVolumeClaim")],
        STATUS,
    ),
    res(
        "",
        "v1",
        "PersistentVolume",
        "persistentvolumes",
        "persistentvolume",
        CLUSTER,
        &["pv"],
        &[],
        &[status_sub!("PersistentVolume")],
        STATUS,
    ),
    res(
        "",
        "v1",
        "Pod",
        "pods",
        "pod",
        NS,
        &["po"],
        ALL,
        &[
            sub("binding", "Binding", &["create"]),
            Subresource {
                name: "eviction",
                group: "policy",
                version: "v1",
                kind: "Eviction",
                verbs: &["create"],
            },
            status_sub!("Pod"),
        ],
        STATUS,
    ),
    res(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        "replicationcontroller",
        NS,
        &["rc"],
        ALL,
        &[SCALE, status_sub!("ReplicationController")],
        GEN_STATUS_SCALE,
    ),
    res(
        "",
        "v1",
        "ResourceQuota",
        "resourcequotas",
        "resourcequota",
        NS,
        &["quota"],
        &[],
        &[status_sub!("ResourceQuota")],
        STATUS,
    ),
    res(
        "",
        "v1",
        "Secret",
        "secrets",
        "secret",
        NS,
        &[],
        &[],
        &[],
        NONE,
    ),
    res(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        "serviceaccount",
        NS,
        &["sa"],
        &[],
        &[],
        NONE,
    ),
    res(
        "",
        "v1",
        "Service",
        "services",
        "service",
        NS,
        &["svc"],
        ALL,
        &[status_sub!("Service")],
        STATUS,
    ),
    // apiregistration.k8s.io/v1
    res(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        "apiservice",
        CLUSTER,
        &[],
        &["api-extensions"],
        &[status_sub!("APIService")],
        STATUS,
    ),
    // apps/v1
    res(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        "controllerrevision",
        NS,
        &[],
        &[],
        &[],
        NONE,
    ),
    res(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        "daemonset",
        NS,
        &["ds"],
        ALL,
        &[status_sub!("DaemonSet")],
        GEN_STATUS,
    ),
    res(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        "deployment",
        NS,
        &["deploy"],
        ALL,
        &[SCALE, status_sub!("Deployment")],
        GEN_STATUS_SCALE,
    ),
    res(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        "replicaset",
        NS,
        &["rs"],
        ALL,
        &[SCALE, status_sub!("ReplicaSet")],
        GEN_STATUS_SCALE,
    ),
    res(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        "statefulset",
        NS,
        &["sts"],
        ALL,
        &[SCALE, status_sub!("StatefulSet")],
        GEN_STATUS_SCALE,
    ),
    // batch/v1
    res(
        "batch",
        "v1",
        "CronJob",
        "cronjobs",
        "cronjob",
        NS,
        &["cj"],
        ALL,
        &[status_sub!("CronJob")],
        GEN_STATUS,
    ),
    res(
        "batch",
        "v1",
        "Job",
        "jobs",
        "job",
        NS,
        &[],
        ALL,
        &[status_sub!("Job")],
        GEN_STATUS,
    ),
    // coordination.k8s.io/v1
    res(
        "coordination.k8s.io",
        "v1",
        "Lease",
        "leases",
        "lease",
        NS,
        &[],
        &[],
        &[],
        NONE,
    ),
    // discovery.k8s.io/v1
    res(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        "endpointslice",
        NS,
        &[],
        &[],
        &[],
        NONE,
    ),
    // events.k8s.io/v1
    res(
        "events.k8s.io",
        "v1",
        "Event",
        "events",
        "event",
        NS,
        &["ev"],
        &[],
        &[],
        NONE,
    ),
    // networking.k8s.io/v1
    res(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        "ingressclass",
        CLUSTER,
        &[],
        &[],
        &[],
        GEN,
    ),
    res(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        "ingress",
        NS,
        &["ing"],
        &[],
        &[status_sub!("Ingress")],
        GEN_STATUS,
    ),
    res(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        "networkpolicy",
        NS,
        &["netpol"],
        &[],
        &[],
        GEN,
    ),
    // policy/v1
    res(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "poddisruptionbudget",
        NS,
        &["pdb"],
        &[],
        &[status_sub!("PodDisruptionBudget")],
        GEN_STATUS,
    ),
    // rbac.authorization.k8s.io/v1
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        "clusterrolebinding",
        CLUSTER,
        &[],
        &[],
        &[],
        NONE,
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        "clusterrole",
        CLUSTER,
        &[],
        &[],
        &[],
        NONE,
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        "rolebinding",
        NS,
        &[],
        &[],
        &[],
        NONE,
    ),
    res(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        "role",
        NS,
        &[],
        &[],
        &[],
        NONE,
    ),
    // apiextensions.k8s.io/v1
    res(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        "customresourcedefinition",
        CLUSTER,
        &["crd", "crds"],
        &["api-extensions"],
        &[status_sub!("CustomResourceDefinition")],
        GEN_STATUS,
    ),
    // scheduling.k8s.io/v1
    res(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        CLUSTER,
        &["pc"],
        &[],
        &[],
        NONE,
    ),
    // storage.k8s.io/v1
    res(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        CLUSTER,
        &["sc"],
        &[],
        &[],
        NONE,
    ),
];

/// The preferred version of each group, in the order upstream lists groups in `/apis`.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !out.iter().any(|(g, _)| *g == r.group) {
            out.push((r.group, r.version));
        }
    }
    out
}

/// The resources of one group-version, in discovery order.
pub fn resources_in<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static Resource> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

/// Looks a resource up by group, version and plural name.
pub fn lookup(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| {
        crate::meta::same_name(r.plural, plural) && r.group == group && r.version == version
    })
}

/// Looks a resource up by its apiVersion (`apps/v1`, `v1`) and kind.
pub fn lookup_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    let (group, version) = split_api_version(api_version);
    RESOURCES
        .iter()
        .find(|r| crate::meta::same_name(r.kind, kind) && r.group == group && r.version == version)
}

/// `apps/v1` → (`apps`, `v1`); `v1` → (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// Every resource that shares the storage of `r` (itself included).
pub fn same_storage(r: &Resource) -> impl Iterator<Item = &'static Resource> + '_ {
    RESOURCES.iter().filter(move |o| o.is_same_storage(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_per_group_version() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert!(
                    !(a.group == b.group && a.version == b.version && a.plural == b.plural),
                    "duplicate {}",
                    a.plural
                );
            }
        }
    }

    #[test]
    fn keys_and_names() {
        let d = lookup("apps", "v1", "deployments").unwrap();
        assert_eq!(
            d.key(Some("default"), "web"),
            "/registry/apps/deployments/default/web"
        );
        assert_eq!(d.qualified_plural(), "deployments.apps");
        assert_eq!(d.qualified_kind(), "Deployment.apps");
        let n = lookup("", "v1", "nodes").unwrap();
        assert_eq!(n.key(None, "n1"), "/registry/core/nodes/n1");
        assert_eq!(n.api_version(), "v1");
        let ev = lookup("events.k8s.io", "v1", "events").unwrap();
        assert!(ev.is_same_storage(lookup("", "v1", "events").unwrap()));
        assert_eq!(ev.key_prefix(), "/registry/core/events/");
        assert_eq!(ev.key(Some("ns"), "e"), "/registry/core/events/ns/e");
        assert_eq!(
            d.namespace_prefix("prod"),
            "/registry/apps/deployments/prod/"
        );
        assert_eq!(d.key(None, "web"), "/registry/apps/deployments/web");
        assert_eq!(
            lookup_kind("apps/v1", "ReplicaSet").unwrap().plural,
            "replicasets"
        );
        assert_eq!(
            lookup("", "v1", "pods")
                .unwrap()
                .subresource("eviction")
                .unwrap()
                .group,
            "policy"
        );
    }

    #[test]
    fn all_category_matches_upstream() {
        let mut all: Vec<_> = RESOURCES
            .iter()
            .filter(|r| r.categories.contains(&"all"))
            .map(|r| r.plural)
            .collect();
        all.sort();
        assert_eq!(
            all,
            vec![
                "cronjobs",
                "daemonsets",
                "deployments",
                "jobs",
                "pods",
                "replicasets",
                "replicationcontrollers",
                "services",
                "statefulsets"
            ]
        );
    }
}
