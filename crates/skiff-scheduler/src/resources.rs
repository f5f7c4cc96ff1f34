//! Resource arithmetic as the scheduler sees it, following upstream's `framework.Resource`
//! and `resourcehelper.PodRequests` (Kubernetes 1.32): a pod requests the larger of the sum of
//! its containers (plus restartable init containers, "sidecars") and the largest init
//! container (plus the sidecars started before it), plus `spec.overhead`. CPU is counted in
//! milli-cores rounded up, everything else in whole units rounded up. Scoring uses "non-zero"
//! requests, where a container that names no cpu or memory request counts as 100m and 200Mi.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use skiff_core::validation::Quantity as Parsed;

/// Upstream's `DefaultMilliCPURequest`.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream's `DefaultMemoryRequest` (200 MiB).
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// Amounts of every resource the scheduler accounts for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// For allocatable: the number of pods allowed; unused in requests.
    pub pods: i64,
    /// Extended, hugepages and other scalar resources, sorted by name.
    pub scalar: Vec<(String, i64)>,
}

fn nanos(q: &Quantity) -> i128 {
    Parsed::parse(&q.0).map(|p| p.nanos()).unwrap_or(0)
}

fn clamp(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A quantity in milli-units, rounded up (`MilliValue`).
pub fn milli_value(q: &Quantity) -> i64 {
    let n = nanos(q);
    clamp(n.div_euclid(1_000_000) + i128::from(n.rem_euclid(1_000_000) != 0))
}

/// A quantity in units, rounded up (`Value`).
pub fn value(q: &Quantity) -> i64 {
    let n = nanos(q);
    clamp(n.div_euclid(1_000_000_000) + i128::from(n.rem_euclid(1_000_000_000) != 0))
}

/// Upstream's `IsScalarResourceName`: extended resources (a domain-prefixed name),
/// prefixed native resources, hugepages and attachable volumes.
pub fn is_scalar_resource(name: &str) -> bool {
    name.contains('/') || name.starts_with("hugepages-") || name.starts_with("attachable-volumes-")
}

impl Resources {
    /// Sums a resource list (`Resource.Add`).
    pub fn from_list(list: Option<&BTreeMap<String, Quantity>>) -> Resources {
        let mut r = Resources::default();
        r.add_list(list);
        r
    }

    pub fn add_list(&mut self, list: Option<&BTreeMap<String, Quantity>>) {
        for (name, q) in list.into_iter().flatten() {
            match name.as_str() {
                "cpu" => self.milli_cpu += milli_value(q),
                "memory" => self.memory += value(q),
                "ephemeral-storage" => self.ephemeral_storage += value(q),
                "pods" => self.pods += value(q),
                n if is_scalar_resource(n) => self.add_scalar(n, value(q)),
                _ => {}
            }
        }
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .map(|i| self.scalar[i].1)
            .unwrap_or(0)
    }

    pub fn add_scalar(&mut self, name: &str, v: i64) {
        match self.scalar.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalar[i].1 += v,
            Err(i) => self.scalar.insert(i, (name.to_string(), v)),
        }
    }

    fn set_scalar(&mut self, name: &str, v: i64) {
        match self.scalar.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => self.scalar[i].1 = v,
            Err(i) => self.scalar.insert(i, (name.to_string(), v)),
        }
    }

    /// Adds another amount.
    pub fn add(&mut self, o: &Resources) {
        self.milli_cpu += o.milli_cpu;
        self.memory += o.memory;
        self.ephemeral_storage += o.ephemeral_storage;
        self.pods += o.pods;
        for (n, v) in &o.scalar {
            self.add_scalar(n, *v);
        }
    }

    /// Subtracts another amount.
    pub fn sub(&mut self, o: &Resources) {
        self.milli_cpu -= o.milli_cpu;
        self.memory -= o.memory;
        self.ephemeral_storage -= o.ephemeral_storage;
        self.pods -= o.pods;
        for (n, v) in &o.scalar {
            self.add_scalar(n, -*v);
        }
    }

    /// Takes the larger amount of each resource (`SetMaxResource`).
    pub fn max_with(&mut self, o: &Resources) {
        self.milli_cpu = self.milli_cpu.max(o.milli_cpu);
        self.memory = self.memory.max(o.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(o.ephemeral_storage);
        for (n, v) in &o.scalar {
            let cur = self.scalar(n);
            self.set_scalar(n, cur.max(*v));
        }
    }

    /// Whether nothing at all is requested.
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.iter().all(|(_, v)| *v == 0)
    }
}

fn container_requests(c: &Container, non_zero: bool) -> Resources {
    let reqs = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    let mut r = Resources::from_list(reqs);
    if non_zero {
        if !reqs.is_some_and(|m| m.contains_key("cpu")) {
            r.milli_cpu = DEFAULT_MILLI_CPU_REQUEST;
        }
        if !reqs.is_some_and(|m| m.contains_key("memory")) {
            r.memory = DEFAULT_MEMORY_REQUEST;
        }
    }
    r
}

fn is_sidecar(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

/// What a pod requests (`PodRequests`); with `non_zero`, missing container cpu and memory
/// requests count as the scheduler's defaults (used for scoring only).
pub fn pod_requests(pod: &Pod, non_zero: bool) -> Resources {
    let Some(spec) = pod.spec.as_ref() else {
        return Resources::default();
    };
    let mut reqs = Resources::default();
    for c in &spec.containers {
        reqs.add(&container_requests(c, non_zero));
    }
    let mut sidecars = Resources::default();
    let mut init_max = Resources::default();
    for c in spec.init_containers.iter().flatten() {
        let mut r = container_requests(c, non_zero);
        if is_sidecar(c) {
            reqs.add(&r);
            sidecars.add(&r);
            r = sidecars.clone();
        } else {
            r.add(&sidecars);
        }
        init_max.max_with(&r);
    }
    reqs.max_with(&init_max);
    reqs.add(&Resources::from_list(spec.overhead.as_ref()));
    reqs.pods = 0;
    reqs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    pub(crate) fn container(name: &str, cpu: &str, mem: &str) -> Container {
        let mut req = BTreeMap::new();
        if !cpu.is_empty() {
            req.insert("cpu".to_string(), Quantity(cpu.into()));
        }
        if !mem.is_empty() {
            req.insert("memory".to_string(), Quantity(mem.into()));
        }
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements {
                requests: Some(req),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn quantities_round_up() {
        assert_eq!(milli_value(&Quantity("0.5".into())), 500);
        assert_eq!(milli_value(&Quantity("1m".into())), 1);
        assert_eq!(milli_value(&Quantity("100n".into())), 1);
        assert_eq!(value(&Quantity("1Gi".into())), 1 << 30);
        assert_eq!(value(&Quantity("1500m".into())), 2);
    }

    #[test]
    fn init_containers_sidecars_and_overhead() {
        let mut sidecar = container("sc", "200m", "");
        sidecar.restart_policy = Some("Always".into());
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![container("a", "100m", "1Gi"), container("b", "300m", "")],
                init_containers: Some(vec![
                    container("i1", "1", "512Mi"),
                    sidecar,
                    container("i2", "500m", "3Gi"),
                ]),
                overhead: Some(BTreeMap::from([(
                    "cpu".to_string(),
                    Quantity("10m".into()),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = pod_requests(&pod, false);
        // containers 400m + sidecar 200m = 600m; init max(1000m, 500m + 200m) = 1000m.
        assert_eq!(r.milli_cpu, 1010);
        // memory: containers 1Gi; init max(512Mi, 3Gi + 0) = 3Gi.
        assert_eq!(r.memory, 3 << 30);
        let nz = pod_requests(&pod, true);
        // b and the sidecar have no memory request: 1Gi + 200Mi + 200Mi vs 3Gi + 200Mi.
        assert_eq!(nz.memory, (3 << 30) + DEFAULT_MEMORY_REQUEST);
    }

    #[test]
    fn extended_resources_are_scalar() {
        let mut c = container("a", "", "");
        c.resources
            .as_mut()
            .unwrap()
            .requests
            .as_mut()
            .unwrap()
            .insert("example.com/gpu".into(), Quantity("2".into()));
        let pod = Pod {
            spec: Some(PodSpec {
                containers: vec![c],
                ..Default::default()
            }),
            ..Default::default()
        };
        let r = pod_requests(&pod, false);
        assert_eq!(r.scalar("example.com/gpu"), 2);
        assert!(!r.is_zero());
        assert!(!is_scalar_resource("cpu"));
        assert!(is_scalar_resource("hugepages-2Mi"));
    }
}
