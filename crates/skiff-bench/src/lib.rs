//! `skiff bench`: the benchmark harness. It starts the real `skiff server` as a child process
//! on loopback, drives it over HTTPS with the admin client certificate, measures baselines in
//! the same run (raw SQLite inserts with the server's durability), and writes a markdown report
//! (`docs/benchmarks.md`) that names the machine and the command that reproduces it.
//!
//! Every phase is bounded in count and time, and every child server is killed by its PID when
//! its guard drops, so a broken server makes a report that says what failed, not a hang.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;

mod client;
mod cluster_sections;
mod kubeconfig;
mod machine;
mod nginx;
mod pods;
mod process;
mod report;
mod scenarios;
mod sections;
mod sqlite;
mod stats;

use client::Proto;
use process::{Launch, ServerProcess};
use report::Report;
use scenarios::create::{create_pods, CreateOutcome, CreatePlan};
use scenarios::watch::WatchPlan;
use sections::CreateRow;

/// Options of `skiff bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Where to write the markdown report.
    #[arg(long, value_name = "PATH", default_value = "docs/benchmarks.md")]
    pub out: PathBuf,
    /// The skiff binary to benchmark [default: this executable].
    #[arg(long, value_name = "PATH")]
    pub skiff_bin: Option<PathBuf>,
    /// A shorter run (fewer requests, watchers and restarts), to try the harness.
    #[arg(long)]
    pub quick: bool,
    /// Folder for the servers' data directories and the SQLite baseline [default: the system
    /// temporary folder]. Put it on the disk you want measured.
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Run only the API server's benchmarks (sections 1-5), only its create throughput
    /// (section 1), only the control plane's on simulated nodes (sections 6-8), or only one
    /// of those (6: rollout, 7: scheduler) [default: all].
    #[arg(long, value_enum, value_name = "PART")]
    pub only: Option<Part>,
}

/// A part of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    Api,
    Create,
    Cluster,
    Rollout,
    Scheduler,
}

/// How much each benchmark does.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sizes {
    creates: u64,
    clients: usize,
    sqlite_rows: u64,
    sqlite_time: Duration,
    list_pods: u64,
    gets: usize,
    lists: usize,
    watchers: usize,
    watch_updates: u64,
    watch_interval: Duration,
    fresh_starts: usize,
    restarts: usize,
    /// Simulated nodes and replicas of the Deployment benchmark.
    rollout_nodes: u64,
    rollout_replicas: u64,
    /// Simulated nodes and pod bursts of the scheduler benchmark.
    sched_nodes: u64,
    sched_bursts: Vec<u64>,
    /// Pods of each burst with anti-affinity or topology spread (one server for both).
    sched_variant_pods: u64,
    /// Simulated nodes of the memory benchmark.
    memory_nodes: u64,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                creates: 3_000,
                clients: 64,
                sqlite_rows: 3_000,
                sqlite_time: Duration::from_secs(5),
                list_pods: 2_000,
                gets: 500,
                lists: 5,
                watchers: 200,
                watch_updates: 50,
                watch_interval: Duration::from_millis(50),
                fresh_starts: 3,
                restarts: 1,
                rollout_nodes: 100,
                rollout_replicas: 1_000,
                sched_nodes: 500,
                sched_bursts: vec![2_000],
                sched_variant_pods: 1_000,
                memory_nodes: 500,
            }
        } else {
            Sizes {
                creates: 20_000,
                clients: 64,
                sqlite_rows: 20_000,
                sqlite_time: Duration::from_secs(10),
                list_pods: 10_000,
                gets: 2_000,
                lists: 20,
                watchers: 1_000,
                watch_updates: 200,
                watch_interval: Duration::from_millis(50),
                fresh_starts: 5,
                restarts: 3,
                rollout_nodes: 1_000,
                rollout_replicas: 10_000,
                sched_nodes: 5_000,
                sched_bursts: vec![10_000, 50_000],
                sched_variant_pods: 10_000,
                memory_nodes: 5_000,
            }
        }
    }
}

/// Runs every benchmark and writes the report to `opts.out`.
pub async fn run(opts: BenchOptions) -> anyhow::Result<()> {
    let bin = match &opts.skiff_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("finding the current executable")?,
    };
    let bin = bin
        .canonicalize()
        .with_context(|| format!("skiff binary {}", bin.display()))?;
    let sizes = Sizes::new(opts.quick);
    let parent = opts.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("skiff-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a work folder in {}", parent.display()))?;
    let bench = Bench {
        bin,
        work: work.path().to_path_buf(),
        sizes,
    };
    progress(format!(
        "benchmarking {} in {}",
        bench.bin.display(),
        bench.work.display()
    ));

    let machine = machine::describe(&bench.bin, &bench.work);
    let api = matches!(opts.only, None | Some(Part::Api | Part::Create));
    let mut sections = Vec::new();
    let mut api_rate = None;
    if api {
        let mut sqlite = bench.sqlite_baselines("before the Skiff runs").await;
        let creates = bench.create_runs().await;
        sqlite.extend(bench.sqlite_baselines("after the Skiff runs").await);
        api_rate = creates.iter().find_map(|r| {
            r.outcome
                .as_ref()
                .ok()
                .map(|o| stats::rate(o.created, o.elapsed))
        });
        let s = &bench.sizes;
        sections.push(sections::create_section(
            s.creates, s.clients, &creates, &sqlite,
        ));
    }
    if api && opts.only != Some(Part::Create) {
        let fresh = bench.fresh_starts().await;
        let loaded = bench.loaded_server().await;
        let s = &bench.sizes;
        sections.extend([
            sections::reads_section(s.list_pods, loaded.get, loaded.list),
            sections::watch_section(s.watch_interval, loaded.watch),
            sections::memory_section(&loaded.memory),
            sections::startup_section(fresh, loaded.restarts, s.list_pods),
        ]);
    }
    let all_cluster = matches!(opts.only, None | Some(Part::Cluster));
    let wanted = ClusterParts {
        rollout: all_cluster || opts.only == Some(Part::Rollout),
        scheduler: all_cluster || opts.only == Some(Part::Scheduler),
        memory: all_cluster,
    };
    if wanted.rollout || wanted.scheduler || wanted.memory {
        let cluster = bench.cluster_runs(&wanted).await;
        if wanted.rollout {
            sections.push(cluster_sections::rollout_section(&cluster, api_rate));
        }
        if wanted.scheduler {
            sections.push(cluster_sections::scheduler_section(&cluster));
        }
        if wanted.memory {
            sections.push(cluster_sections::nodes_memory_section(&cluster));
        }
    }

    let report = Report {
        commands: commands(&opts),
        machine,
        notes: vec![format!(
            "The load generator and the server share the machine's CPUs, so every Skiff figure \
             includes the client's own cost (TLS, HTTP, JSON). Servers run with `--disable-agent` \
             on 127.0.0.1; each scenario that writes starts from a fresh data directory. Sections \
             1 to 5 measure the API server alone (`--disable-controller-manager \
             --disable-scheduler`); sections 6 to 8 run the whole control plane on simulated \
             nodes.{}",
            if opts.quick {
                " **This is a `--quick` run: smaller counts than the full benchmark.**"
            } else {
                ""
            }
        )],
        sections,
    };
    write_report(&opts.out, &report.render())?;
    progress(format!("wrote {}", opts.out.display()));
    if FAILED.load(Ordering::Relaxed) {
        // Keep the servers' logs and data for whoever looks into the failure.
        let kept = work.keep();
        progress(format!(
            "some benchmarks failed; logs kept in {}",
            kept.display()
        ));
    }
    Ok(())
}

/// The commands that reproduce a report written with `opts`.
fn commands(opts: &BenchOptions) -> Vec<String> {
    let mut cmd = format!("skiff bench --out {}", opts.out.display());
    if opts.quick {
        cmd.push_str(" --quick");
    }
    match opts.only {
        Some(Part::Api) => cmd.push_str(" --only api"),
        Some(Part::Create) => cmd.push_str(" --only create"),
        Some(Part::Cluster) => cmd.push_str(" --only cluster"),
        Some(Part::Rollout) => cmd.push_str(" --only rollout"),
        Some(Part::Scheduler) => cmd.push_str(" --only scheduler"),
        None => {}
    }
    vec![
        "make bench".into(),
        format!("# or, with a release build of skiff on the PATH:\n{cmd}"),
    ]
}

fn write_report(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, format!("{text}\n")).with_context(|| format!("writing {}", path.display()))
}

/// Runs `creates` and records in its outcome the CPU time the server (`server_cpu`) and this
/// process (the load generator) used meanwhile, and the machine's idle share, when every
/// reading succeeds.
async fn measured(
    server_cpu: impl Fn() -> anyhow::Result<Duration>,
    creates: impl Future<Output = anyhow::Result<CreateOutcome>>,
) -> anyhow::Result<CreateOutcome> {
    let machine_before = process::MachineTicks::now();
    let before = (server_cpu(), process::cpu_time_of("/proc/self/stat"));
    let mut outcome = creates.await?;
    let after = (server_cpu(), process::cpu_time_of("/proc/self/stat"));
    let machine_after = process::MachineTicks::now();
    if let ((Ok(s0), Ok(c0)), (Ok(s1), Ok(c1))) = (before, after) {
        let machine_idle = match (machine_before, machine_after) {
            (Ok(m0), Ok(m1)) => m0.idle_share(m1),
            _ => None,
        };
        outcome.cpu = Some(scenarios::create::CpuUse {
            server: s1.saturating_sub(s0),
            client: c1.saturating_sub(c0),
            machine_idle,
        });
    }
    Ok(outcome)
}

fn progress(msg: impl std::fmt::Display) {
    eprintln!("skiff bench: {msg}");
}

/// Set when a benchmark failed, so the work folder (with the servers' logs) is kept.
static FAILED: AtomicBool = AtomicBool::new(false);

/// Runs `fut` for at most `limit`; errors become one-line strings for the report.
async fn bounded<T>(
    what: &str,
    limit: Duration,
    fut: impl Future<Output = anyhow::Result<T>>,
) -> Result<T, String> {
    let result = match tokio::time::timeout(limit, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err(format!("timed out after {limit:?}")),
    };
    if let Err(e) = &result {
        FAILED.store(true, Ordering::Relaxed);
        progress(format!("{what}: {e}"));
    }
    result
}

/// Which control-plane benchmarks run.
struct ClusterParts {
    rollout: bool,
    scheduler: bool,
    memory: bool,
}

/// The result of a benchmark this run left out.
fn not_run<T>() -> Result<T, String> {
    Err("not run".into())
}

/// What the loaded server measured.
struct Loaded {
    get: Result<stats::Samples, String>,
    list: Result<scenarios::reads::ListOutcome, String>,
    watch: Result<scenarios::watch::WatchOutcome, String>,
    memory: sections::MemoryFigures,
    restarts: Result<Vec<Duration>, String>,
}

struct Bench {
    bin: PathBuf,
    work: PathBuf,
    sizes: Sizes,
}

impl Bench {
    /// The API server alone.
    fn launch(&self, name: &str) -> Launch {
        Launch {
            bin: self.bin.clone(),
            data_dir: self.work.join(name),
            log_path: self.work.join(format!("{name}.log")),
            args: vec![
                "--disable-controller-manager".into(),
                "--disable-scheduler".into(),
            ],
        }
    }

    /// The whole control plane with `nodes` simulated nodes (room for many small pods each).
    fn launch_cluster(&self, name: &str, nodes: u64) -> Launch {
        Launch {
            bin: self.bin.clone(),
            data_dir: self.work.join(name),
            log_path: self.work.join(format!("{name}.log")),
            args: vec![
                "--fake-nodes".into(),
                nodes.to_string(),
                "--fake-node-capacity".into(),
                "cpu=64,memory=256Gi,pods=110".into(),
            ],
        }
    }

    /// Sections 6 to 8: a Deployment rollout, scheduler bursts and node memory, each on a
    /// fresh server with simulated nodes.
    async fn cluster_runs(&self, wanted: &ClusterParts) -> cluster_sections::ClusterFigures {
        let s = &self.sizes;
        let rollout = if wanted.rollout {
            self.rollout_run().await
        } else {
            not_run()
        };
        let mut schedule = Vec::new();
        if wanted.scheduler {
            schedule = self.scheduler_runs().await;
        }
        let memory = if wanted.memory {
            self.node_memory_run().await
        } else {
            not_run()
        };
        cluster_sections::ClusterFigures {
            nodes: s.rollout_nodes,
            rollout,
            sched_nodes: s.sched_nodes,
            schedule,
            memory_nodes: s.memory_nodes,
            memory,
        }
    }

    /// Section 6: a big Deployment from zero to Ready.
    async fn rollout_run(&self) -> Result<scenarios::cluster::RolloutOutcome, String> {
        use scenarios::cluster;
        let s = &self.sizes;
        progress(format!(
            "Deployment of {} replicas on {} simulated nodes",
            s.rollout_replicas, s.rollout_nodes
        ));
        let launch = self.launch_cluster("rollout", s.rollout_nodes);
        let (replicas, nodes) = (s.rollout_replicas, s.rollout_nodes);
        bounded("rollout", Duration::from_secs(900), async {
            let (server, _) = ServerProcess::start(&launch).await?;
            cluster::wait_nodes_ready(&server.endpoint, nodes, Duration::from_secs(120)).await?;
            let out = cluster::rollout(&server.endpoint, replicas, Duration::from_secs(600)).await;
            if let Err(e) = server.stop().await {
                progress(e);
            }
            out
        })
        .await
    }

    /// Section 7: bursts of pending pods bound by the scheduler: plain pods on a fresh server
    /// per burst, then, on one more server whose nodes are labelled with zones, a burst with
    /// hostname anti-affinity followed by one with zone spreading.
    async fn scheduler_runs(&self) -> Vec<Result<scenarios::cluster::ScheduleOutcome, String>> {
        use scenarios::cluster::{self, Shape};
        let s = &self.sizes;
        let mut schedule = Vec::new();
        let (nodes, clients) = (s.sched_nodes, s.clients);
        for (i, pods) in s.sched_bursts.iter().copied().enumerate() {
            progress(format!(
                "scheduling {pods} pending pods on {} simulated nodes",
                s.sched_nodes
            ));
            let launch = self.launch_cluster(&format!("sched-{i}"), s.sched_nodes);
            schedule.push(
                bounded("scheduler burst", Duration::from_secs(900), async {
                    let (server, _) = ServerProcess::start(&launch).await?;
                    cluster::wait_nodes_ready(&server.endpoint, nodes, Duration::from_secs(300))
                        .await?;
                    let out = cluster::schedule_burst(
                        &server.endpoint,
                        "bench-sched",
                        Shape::Plain,
                        pods,
                        clients,
                        Duration::from_secs(600),
                    )
                    .await;
                    if let Err(e) = server.stop().await {
                        progress(e);
                    }
                    out
                })
                .await,
            );
        }
        let pods = s.sched_variant_pods;
        progress(format!(
            "scheduling {pods} pods with anti-affinity, then {pods} with topology spread, on {nodes} simulated nodes in {} zones",
            cluster::ZONES
        ));
        let launch = self.launch_cluster("sched-variants", nodes);
        let variants = bounded("scheduler variants", Duration::from_secs(900), async {
            let (server, _) = ServerProcess::start(&launch).await?;
            cluster::wait_nodes_ready(&server.endpoint, nodes, Duration::from_secs(300)).await?;
            cluster::label_zones(&server.endpoint, nodes, cluster::ZONES).await?;
            let mut out = Vec::new();
            for (ns, shape) in [
                (
                    "bench-anti",
                    Shape::AntiAffinity {
                        group: cluster::anti_affinity_group(nodes),
                    },
                ),
                ("bench-spread", Shape::TopologySpread),
            ] {
                out.push(
                    cluster::schedule_burst(
                        &server.endpoint,
                        ns,
                        shape,
                        pods,
                        clients,
                        Duration::from_secs(600),
                    )
                    .await
                    .map_err(|e| format!("{}: {e:#}", shape.describe())),
                );
            }
            if let Err(e) = server.stop().await {
                progress(e);
            }
            anyhow::Ok(out)
        })
        .await;
        match variants {
            Ok(out) => schedule.extend(out),
            Err(e) => schedule.push(Err(e)),
        }
        schedule
    }

    /// Section 8: what simulated nodes cost in memory.
    async fn node_memory_run(&self) -> Result<(process::Memory, process::Memory), String> {
        use scenarios::cluster;
        let s = &self.sizes;
        progress(format!("memory of {} simulated nodes", s.memory_nodes));
        let (base_launch, nodes_launch) = (
            self.launch_cluster("memory-0", 0),
            self.launch_cluster("memory-n", s.memory_nodes),
        );
        let memory_nodes = s.memory_nodes;
        bounded("node memory", Duration::from_secs(600), async {
            let (base, _) = ServerProcess::start(&base_launch).await?;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let base_mem = base.memory()?;
            base.stop().await?;
            let (server, _) = ServerProcess::start(&nodes_launch).await?;
            cluster::wait_nodes_ready(&server.endpoint, memory_nodes, Duration::from_secs(300))
                .await?;
            // Let heartbeats settle into their steady state.
            tokio::time::sleep(Duration::from_secs(5)).await;
            let with = server.memory()?;
            server.stop().await?;
            Ok((base_mem, with))
        })
        .await
    }

    /// Start to ready on fresh data directories.
    async fn fresh_starts(&self) -> Result<Vec<Duration>, String> {
        progress("start to ready, fresh data directories");
        bounded("start to ready", Duration::from_secs(300), async {
            let mut times = Vec::new();
            for i in 0..self.sizes.fresh_starts {
                let (server, ready) =
                    ServerProcess::start(&self.launch(&format!("fresh-{i}"))).await?;
                times.push(ready);
                server.stop().await?;
            }
            Ok(times)
        })
        .await
    }

    /// SQLite inserts of the pod bodies, one row and 64 rows per transaction.
    async fn sqlite_baselines(
        &self,
        when: &str,
    ) -> Vec<(String, Result<sqlite::InsertRun, String>)> {
        progress(format!("SQLite baselines, {when}"));
        let bodies: Vec<Bytes> = (0..256)
            .map(|i| Bytes::from(pods::pod_json("default", &pods::pod_name("bench", i))))
            .collect();
        let mut out = Vec::new();
        for rows_per_txn in [1, 64] {
            let path = self.work.join(format!("sqlite-{rows_per_txn}.db"));
            let bodies = bodies.clone();
            let (rows, time) = (self.sizes.sqlite_rows, self.sizes.sqlite_time);
            let limit = time + Duration::from_secs(60);
            out.push((
                when.to_string(),
                bounded("SQLite baseline", limit, async move {
                    tokio::task::spawn_blocking(move || {
                        sqlite::insert_run(&path, &bodies, rows_per_txn, rows, time)
                    })
                    .await?
                })
                .await,
            ));
        }
        out
    }

    /// Section 1's load: the sized number of pods from the sized number of clients, over
    /// `proto` (h2 clients sharing `h2_connections` connections).
    fn create_plan(&self, proto: Proto, h2_connections: usize) -> CreatePlan {
        CreatePlan {
            namespace: "default".into(),
            prefix: "bench".into(),
            total: self.sizes.creates,
            clients: self.sizes.clients,
            proto,
            h2_connections,
            max_time: Duration::from_secs(120),
            answered: None,
        }
    }

    /// Pod creates on fresh servers, over HTTP/1.1 and h2.
    async fn create_runs(&self) -> Vec<CreateRow> {
        let s = &self.sizes;
        let variants = [
            (
                Proto::Http1,
                1,
                format!("Skiff: {} clients, HTTP/1.1, a connection each", s.clients),
            ),
            (
                Proto::H2,
                1,
                format!(
                    "Skiff: {} clients, h2, streams of one connection",
                    s.clients
                ),
            ),
        ];
        let mut rows = Vec::new();
        // What the first run's server answered for its first pod, its endpoint and its
        // certificates: the do-nothing baseline serves the same bytes with the same TLS.
        let mut sample: Option<(Bytes, client::Endpoint, PathBuf)> = None;
        for (i, (proto, h2_connections, label)) in variants.into_iter().enumerate() {
            progress(format!("pod creates: {label}"));
            let plan = self.create_plan(proto, h2_connections);
            let launch = self.launch(&format!("create-{i}"));
            let outcome = bounded("pod creates", Duration::from_secs(180), async {
                let (server, _) = ServerProcess::start(&launch).await?;
                let outcome =
                    measured(|| server.cpu_time(), create_pods(&server.endpoint, &plan)).await?;
                if sample.is_none() {
                    let path = format!(
                        "/api/v1/namespaces/{}/pods/{}",
                        plan.namespace,
                        pods::pod_name(&plan.prefix, 0)
                    );
                    let mut conn = server.endpoint.connect(Proto::Http1).await?;
                    let body = conn.get_ok(&path).await?;
                    sample = Some((body, server.endpoint.clone(), launch.data_dir.join("tls")));
                }
                if let Err(e) = server.stop().await {
                    progress(e);
                }
                Ok(outcome)
            })
            .await;
            rows.push(CreateRow {
                label,
                baseline: false,
                outcome,
            });
        }
        match sample {
            Some((body, endpoint, tls)) => {
                rows.extend(self.nginx_runs(&endpoint, &tls, body).await)
            }
            None => rows.push(CreateRow {
                label: "baseline: nginx".into(),
                baseline: true,
                outcome: Err("no Skiff run created a pod to serve".into()),
            }),
        }
        rows
    }

    /// The do-nothing baseline: nginx on loopback with the Skiff server's certificate (in
    /// `tls`), answering every request with 201 and `body`, under the same load as Skiff, over
    /// HTTP/1.1 and h2 (see [`nginx`]).
    async fn nginx_runs(
        &self,
        endpoint: &client::Endpoint,
        tls: &Path,
        body: Bytes,
    ) -> Vec<CreateRow> {
        let s = &self.sizes;
        let labels = [
            (
                Proto::Http1,
                format!(
                    "baseline: nginx, 201 and a stored pod, no work: {} clients, HTTP/1.1",
                    s.clients
                ),
            ),
            (
                Proto::H2,
                format!(
                    "baseline: nginx, 201 and a stored pod, no work: {} clients, h2",
                    s.clients
                ),
            ),
        ];
        let dir = self.work.join("nginx");
        let started = match nginx::binary() {
            None => Err("nginx not found (`make bench` installs it; or set NGINX)".to_string()),
            Some(bin) => {
                progress("pod creates: baseline nginx");
                bounded("nginx", Duration::from_secs(30), async {
                    std::fs::create_dir_all(&dir)?;
                    let port = process::free_port()?;
                    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
                    let site = nginx::Site {
                        dir: &dir,
                        port,
                        cert: &tls.join("serving-kube-apiserver.crt"),
                        key: &tls.join("serving-kube-apiserver.key"),
                        body: &body,
                        workers,
                    };
                    Ok((nginx::Nginx::start(&bin, &site).await?, port))
                })
                .await
            }
        };
        let (server, port) = match started {
            Ok(v) => v,
            Err(e) => {
                return labels
                    .into_iter()
                    .map(|(_, label)| CreateRow {
                        label,
                        baseline: true,
                        outcome: Err(e.clone()),
                    })
                    .collect()
            }
        };
        progress(format!("nginx: {}", server.version));
        let endpoint = endpoint.with_port(port);
        let mut rows = Vec::new();
        for (proto, label) in labels {
            let plan = self.create_plan(proto, 1);
            let outcome = bounded(
                "nginx baseline",
                Duration::from_secs(180),
                measured(|| server.cpu_time(), create_pods(&endpoint, &plan)),
            )
            .await;
            rows.push(CreateRow {
                label: format!("{label} ({})", server.version),
                baseline: true,
                outcome,
            });
        }
        if let Err(e) = server.stop().await {
            progress(e);
        }
        rows
    }

    /// One server filled with pods: memory, reads, watch, then restarts on its data.
    async fn loaded_server(&self) -> Loaded {
        let s = &self.sizes;
        let launch = self.launch("loaded");
        let mut loaded = Loaded {
            get: Err("server did not start".into()),
            list: Err("server did not start".into()),
            watch: Err("server did not start".into()),
            memory: sections::MemoryFigures {
                idle: Err("server did not start".into()),
                loaded: Err("server did not start".into()),
                pods: s.list_pods,
            },
            restarts: Err("server did not start".into()),
        };
        let server = match bounded(
            "start",
            Duration::from_secs(120),
            ServerProcess::start(&launch),
        )
        .await
        {
            Ok((server, _)) => server,
            Err(e) => {
                let e = format!("server did not start: {e}");
                loaded.get = Err(e.clone());
                loaded.list = Err(e.clone());
                loaded.watch = Err(e.clone());
                loaded.memory.idle = Err(e.clone());
                loaded.memory.loaded = Err(e.clone());
                loaded.restarts = Err(e);
                return loaded;
            }
        };
        tokio::time::sleep(Duration::from_secs(2)).await;
        loaded.memory.idle = server.memory().map_err(|e| format!("{e:#}"));

        progress(format!("filling the server with {} pods", s.list_pods));
        let fill = CreatePlan {
            namespace: "default".into(),
            prefix: "pod".into(),
            total: s.list_pods,
            clients: s.clients,
            proto: Proto::Http1,
            h2_connections: 1,
            max_time: Duration::from_secs(300),
            answered: None,
        };
        let filled = bounded("fill", Duration::from_secs(360), async {
            let o = create_pods(&server.endpoint, &fill).await?;
            anyhow::ensure!(
                o.created == fill.total,
                "created {} of {} pods: {}",
                o.created,
                fill.total,
                o.first_error.unwrap_or_default()
            );
            Ok(())
        })
        .await;
        let filled_ok = filled.is_ok();
        if let Err(e) = filled {
            let e = format!("filling the server failed: {e}");
            loaded.get = Err(e.clone());
            loaded.list = Err(e.clone());
            loaded.memory.loaded = Err(e.clone());
            loaded.restarts = Err(e);
        } else {
            progress("get and list latency");
            let get_path = format!(
                "/api/v1/namespaces/default/pods/{}",
                pods::pod_name("pod", 0)
            );
            loaded.get = bounded(
                "get",
                Duration::from_secs(120),
                scenarios::reads::get_latency(
                    &server.endpoint,
                    &get_path,
                    s.gets,
                    Duration::from_secs(60),
                ),
            )
            .await;
            loaded.list = bounded(
                "list",
                Duration::from_secs(180),
                scenarios::reads::list_latency(
                    &server.endpoint,
                    "/api/v1/namespaces/default/pods",
                    s.lists,
                    Duration::from_secs(120),
                ),
            )
            .await;
        }

        progress(format!("watch latency, {} watchers", s.watchers));
        let plan = WatchPlan {
            namespace: "bench-watch".into(),
            watchers: s.watchers,
            updates: s.watch_updates,
            interval: s.watch_interval,
            connect_concurrency: 16,
            connect_timeout: Duration::from_secs(60),
        };
        let watch_limit = Duration::from_secs(120) + s.watch_interval * s.watch_updates as u32;
        loaded.watch = bounded(
            "watch",
            watch_limit,
            scenarios::watch::watch_latency(&server.endpoint, &plan),
        )
        .await;

        if filled_ok {
            loaded.memory.loaded = server.memory().map_err(|e| format!("{e:#}"));
        }
        if let Err(e) = server.stop().await {
            progress(e);
        }
        if filled_ok {
            progress("start to ready, existing data directory");
            loaded.restarts = bounded("restart", Duration::from_secs(300), async {
                let mut times = Vec::new();
                for _ in 0..s.restarts {
                    let (server, ready) = ServerProcess::start(&launch).await?;
                    times.push(ready);
                    server.stop().await?;
                }
                Ok(times)
            })
            .await;
        }
        loaded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchOptions,
    }

    #[test]
    fn options_flatten_into_a_cli() {
        let cli = Cli::parse_from(["skiff"]);
        assert_eq!(cli.bench.out, PathBuf::from("docs/benchmarks.md"));
        assert_eq!(cli.bench.skiff_bin, None);
        assert!(!cli.bench.quick);
        let cli = Cli::parse_from(["skiff", "--out", "x.md", "--skiff-bin", "/b", "--quick"]);
        assert_eq!(cli.bench.out, PathBuf::from("x.md"));
        assert_eq!(cli.bench.skiff_bin, Some(PathBuf::from("/b")));
        assert!(cli.bench.quick);
        assert_eq!(commands(&cli.bench)[0], "make bench");
        assert!(commands(&cli.bench)[1].ends_with("skiff bench --out x.md --quick"));
    }

    #[test]
    fn quick_is_smaller() {
        let (q, f) = (Sizes::new(true), Sizes::new(false));
        assert!(q.creates < f.creates && q.watchers < f.watchers);
        assert_eq!(f.creates, 20_000);
        assert_eq!(f.list_pods, 10_000);
        assert_eq!(f.watchers, 1_000);
    }
}
