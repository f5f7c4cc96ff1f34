//! `/metrics` in the Prometheus text format: request counts and latencies by verb and resource,
//! open watches, object writes; components running in the same process (the scheduler) add
//! their own families through [`Metrics::add_source`].

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
    pub code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    pub verb: &'static str,
    pub resource: &'static str,
    pub subresource: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    pub resource: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<VerbLabels, Histogram>,
    pub watchers: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub writes: Family<ResourceLabels, Counter<u64, AtomicU64>>,
    /// Renderers of other components' metrics, appended in the text format.
    sources: RwLock<Vec<MetricsSource>>,
}

/// Appends metric families, in the Prometheus text format, to `/metrics`.
pub type MetricsSource = Arc<dyn Fn(&mut String) + Send + Sync>;

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<VerbLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
            ])
        });
        let watchers = Gauge::default();
        let writes = Family::<ResourceLabels, Counter>::default();
        registry.register(
            "apiserver_request",
            "API requests by verb, resource and code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "API request latency by verb and resource (watches excluded)",
            latency.clone(),
        );
        registry.register(
            "apiserver_registered_watchers",
            "Open watch streams",
            watchers.clone(),
        );
        registry.register(
            "apiserver_storage_writes",
            "Objects written to the datastore",
            writes.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            watchers,
            writes,
            sources: RwLock::new(Vec::new()),
        }
    }
}

impl Metrics {
    pub fn object_written(&self, resource: &'static str) {
        self.writes
            .get_or_create(&ResourceLabels { resource })
            .inc();
    }

    /// Adds a component's metrics to `/metrics`.
    pub fn add_source(&self, source: MetricsSource) {
        self.sources
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(source);
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("metrics encode");
        let sources = self.sources.read().unwrap_or_else(|e| e.into_inner());
        if !sources.is_empty() {
            // The registry ends the exposition with `# EOF`; other families go before it.
            let eof = out.rfind("# EOF").unwrap_or(out.len());
            let tail = out.split_off(eof);
            for s in sources.iter() {
                s(&mut out);
            }
            out.push_str(&tail);
        }
        out
    }
}

impl crate::server::ApiServer {
    /// The server's metrics (for components that add their own, see [`Metrics::add_source`]).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }
}
