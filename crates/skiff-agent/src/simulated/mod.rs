//! Simulated nodes (being written).

use std::collections::BTreeMap;

use skiff_runtime::Runtime;

/// How simulated nodes are made (`--fake-nodes`, `--fake-node-capacity`, …).
#[derive(Debug, Clone)]
pub struct Options {
    /// How many nodes: `fake-node-0` … `fake-node-(count-1)`.
    pub count: usize,
    /// Capacity (and allocatable) of each node, as quantities: `cpu=4,memory=16Gi,pods=110`.
    pub capacity: BTreeMap<String, String>,
    /// Extra labels on every node.
    pub labels: BTreeMap<String, String>,
    /// Taints on every node: `key=value:Effect`.
    pub taints: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            count: 0,
            capacity: [("cpu", "4"), ("memory", "16Gi"), ("pods", "110")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            labels: BTreeMap::new(),
            taints: Vec::new(),
        }
    }
}

/// Starts the simulated nodes; they run until the runtime's store closes.
pub fn start(_rt: &Runtime, _opts: &Options) {}
