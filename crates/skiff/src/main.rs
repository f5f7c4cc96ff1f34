//! The `skiff` binary: Kubernetes in one executable. Its command line follows k3s (`skiff
//! server` takes k3s's flag names) so that k3s habits carry over.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use skiff::{server, version};

/// mimalloc: the request path allocates many small JSON nodes, where it is markedly faster
/// than glibc's allocator (called as `skiff::alloc` explains).
#[global_allocator]
static GLOBAL: skiff::alloc::Allocator = skiff::alloc::Allocator;

#[derive(Debug, Parser)]
#[command(name = "skiff", about = "Kubernetes in one binary", version = version::SKIFF_VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane (API server, datastore, controllers) and, later, a node agent.
    Server(ServerArgs),
    /// Print the Skiff version and the Kubernetes version it serves.
    Version,
    /// Run the benchmark harness (each figure beside a baseline measured in the same run) and
    /// write the report.
    Bench(skiff_bench::BenchOptions),
    /// Kubeconfigs for people and teams.
    #[command(subcommand)]
    Kubeconfig(KubeconfigCommand),
}

#[derive(Debug, Subcommand)]
enum KubeconfigCommand {
    /// Print a kubeconfig with a new client certificate for NAME, signed by the cluster CA.
    User(KubeconfigUserArgs),
}

#[derive(Debug, Args)]
struct KubeconfigUserArgs {
    /// User name (the certificate's CommonName).
    name: String,
    /// Group (the certificate's Organization); repeatable.
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// The server's data folder, which holds the cluster CA.
    #[arg(
        short = 'd',
        long,
        env = "SKIFF_DATA_DIR",
        default_value = "/var/lib/skiff"
    )]
    data_dir: PathBuf,
    /// API server URL; defaults to the one in <data-dir>/admin.kubeconfig.
    #[arg(long)]
    server: Option<String>,
}

#[derive(Debug, Args)]
struct ServerArgs {
    /// Folder to hold state (database, certificates, token).
    #[arg(
        short = 'd',
        long,
        env = "SKIFF_DATA_DIR",
        default_value = "/var/lib/skiff"
    )]
    data_dir: PathBuf,

    /// Address to listen on. k3s listens on every address (0.0.0.0) by default; Skiff listens on
    /// loopback only unless told otherwise, so a first try exposes nothing.
    #[arg(long, default_value = "127.0.0.1")]
    bind_address: IpAddr,

    /// Port of the HTTPS API (0 lets the OS choose; the kubeconfig records the real one).
    #[arg(long, default_value_t = 6443)]
    https_listen_port: u16,

    /// Also write the admin kubeconfig to this path (it is always written to
    /// <data-dir>/admin.kubeconfig).
    #[arg(short = 'o', long, env = "SKIFF_KUBECONFIG_OUTPUT")]
    write_kubeconfig: Option<PathBuf>,

    /// Mode of the --write-kubeconfig file, in octal (e.g. 644).
    #[arg(long, env = "SKIFF_KUBECONFIG_MODE", default_value = "600", value_parser = parse_mode)]
    write_kubeconfig_mode: u32,

    /// Run the control plane only, without the embedded node agent.
    #[arg(long)]
    disable_agent: bool,

    /// Shared secret to join nodes (stored in <data-dir>/token; generated when absent).
    #[arg(short = 't', long, env = "SKIFF_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// Static bearer tokens, in kube-apiserver's --token-auth-file CSV format
    /// (token,user,uid,"group1,group2").
    #[arg(long)]
    token_auth_file: Option<PathBuf>,

    /// Extra host name or IP for the serving certificate (repeatable).
    #[arg(long = "tls-san", value_name = "NAME")]
    tls_san: Vec<String>,

    /// How often the datastore drops history older than the previous run, in seconds, as
    /// kube-apiserver's --etcd-compaction-interval (0 turns compaction off).
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    compaction_interval: u64,

    /// Revisions of history always kept by compaction.
    #[arg(long, default_value_t = 1000, value_name = "REVISIONS")]
    compaction_retain: i64,

    /// Run no controllers (as k3s's flag).
    #[arg(long)]
    disable_controller_manager: bool,

    /// Run no scheduler: pods stay unscheduled (as k3s's flag).
    #[arg(long)]
    disable_scheduler: bool,

    /// How long a node may go without renewing its Lease before it is marked NotReady/Unknown
    /// (kube-controller-manager's flag), e.g. 50s, 2m.
    #[arg(long, default_value = "50s", value_parser = parse_duration, value_name = "DURATION")]
    node_monitor_grace_period: std::time::Duration,

    /// Terminated pods kept before the pod garbage collector deletes the oldest (0: never;
    /// kube-controller-manager's flag).
    #[arg(long, default_value_t = 12500, value_name = "N")]
    terminated_pod_gc_threshold: usize,

    /// Register this many simulated nodes (fake-node-0 …), which run pods without containers.
    #[arg(long, default_value_t = 0, value_name = "N")]
    fake_nodes: usize,

    /// Capacity of each simulated node, as quantities.
    #[arg(long, default_value = "cpu=4,memory=16Gi,pods=110", value_parser = parse_pairs, value_name = "K=V,…")]
    fake_node_capacity: Pairs,

    /// Extra labels of each simulated node.
    #[arg(long, value_parser = parse_pairs, value_name = "K=V,…")]
    fake_node_labels: Option<Pairs>,

    /// A taint of each simulated node, key=value:Effect (repeatable).
    #[arg(long = "fake-node-taint", value_name = "TAINT")]
    fake_node_taints: Vec<String>,

    /// How long pods on simulated nodes stay Pending (ContainerCreating) before they run
    /// (the sim.skiff.dev/start-delay annotation overrides it per pod), e.g. 500ms, 2s.
    #[arg(long, default_value = "0s", value_parser = parse_duration, value_name = "DURATION")]
    fake_node_pod_start_delay: std::time::Duration,
}

type Pairs = std::collections::BTreeMap<String, String>;

/// `k=v,k2=v2` into a map.
fn parse_pairs(s: &str) -> Result<Pairs, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("{p:?} is not key=value"))
        })
        .collect()
}

/// A Go-style duration of whole units: `50s`, `2m`, `1h`, `500ms`.
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} needs a unit (ms, s, m, h)"))?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{s:?} is not a duration"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n * 1000,
        "m" => n * 60_000,
        "h" => n * 3_600_000,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ms, s, m, h)")),
    };
    Ok(std::time::Duration::from_millis(ms))
}

fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim_start_matches("0o");
    let mode = u32::from_str_radix(digits, 8).map_err(|e| format!("{s:?} is not octal: {e}"))?;
    if mode > 0o7777 {
        return Err(format!("{s:?} is not a file mode"));
    }
    Ok(mode)
}

impl From<ServerArgs> for server::ServerOptions {
    fn from(a: ServerArgs) -> Self {
        server::ServerOptions {
            data_dir: a.data_dir,
            bind_address: a.bind_address,
            https_listen_port: a.https_listen_port,
            write_kubeconfig: a.write_kubeconfig,
            write_kubeconfig_mode: a.write_kubeconfig_mode,
            disable_agent: a.disable_agent,
            token: a.token,
            token_auth_file: a.token_auth_file,
            tls_san: a.tls_san,
            compaction: (a.compaction_interval > 0).then(|| skiff_store::sqlite::AutoCompact {
                interval: std::time::Duration::from_secs(a.compaction_interval),
                keep_revisions: a.compaction_retain,
            }),
            disable_controller_manager: a.disable_controller_manager,
            disable_scheduler: a.disable_scheduler,
            controllers: skiff_controllers::Options {
                node_monitor_grace_period: a.node_monitor_grace_period,
                terminated_pod_gc_threshold: a.terminated_pod_gc_threshold,
                ..Default::default()
            },
            scheduler: skiff_scheduler::Config::default(),
            fake_nodes: skiff_agent::simulated::Options {
                count: a.fake_nodes,
                capacity: a.fake_node_capacity,
                labels: a.fake_node_labels.unwrap_or_default(),
                taints: a.fake_node_taints,
                pod_start_delay: a.fake_node_pod_start_delay,
                ..Default::default()
            },
        }
    }
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("skiff: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Version => {
            println!("{}", version::version_line());
            Ok(())
        }
        Command::Kubeconfig(KubeconfigCommand::User(args)) => {
            print!(
                "{}",
                server::user_kubeconfig(&args.data_dir, &args.name, &args.groups, args.server)?
            );
            Ok(())
        }
        Command::Server(args) => {
            init_logging();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(server::run(args.into(), shutdown_signal()))
        }
        Command::Bench(opts) => {
            init_logging();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(skiff_bench::run(opts))
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down"),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn simulated_node_flags_parse() {
        let cli = Cli::try_parse_from([
            "skiff",
            "server",
            "--fake-nodes",
            "3",
            "--fake-node-capacity",
            "cpu=8,memory=32Gi",
            "--fake-node-labels",
            "topology.kubernetes.io/zone=a,pool=gpu",
            "--fake-node-taint",
            "dedicated=gpu:NoSchedule",
            "--node-monitor-grace-period",
            "2s",
            "--terminated-pod-gc-threshold",
            "100",
            "--fake-node-pod-start-delay",
            "500ms",
        ])
        .unwrap();
        let Command::Server(a) = cli.command else {
            panic!("not server")
        };
        let o = server::ServerOptions::from(a);
        assert_eq!(o.fake_nodes.count, 3);
        assert_eq!(o.controllers.terminated_pod_gc_threshold, 100);
        assert_eq!(
            o.fake_nodes.pod_start_delay,
            std::time::Duration::from_millis(500)
        );
        assert_eq!(o.fake_nodes.capacity["memory"], "32Gi");
        assert_eq!(o.fake_nodes.labels["pool"], "gpu");
        assert_eq!(o.fake_nodes.taints, vec!["dedicated=gpu:NoSchedule"]);
        assert_eq!(
            o.controllers.node_monitor_grace_period,
            std::time::Duration::from_secs(2)
        );
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5d").is_err());
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert!(parse_pairs("a").is_err());
    }

    #[test]
    fn server_flags_parse_like_k3s() {
        let cli = Cli::try_parse_from([
            "skiff",
            "server",
            "--data-dir",
            "/tmp/x",
            "-o",
            "/tmp/k.yaml",
            "--write-kubeconfig-mode",
            "644",
            "--tls-san",
            "a.example",
            "--tls-san",
            "10.0.0.1",
            "--disable-agent",
            "--token",
            "t",
            "--https-listen-port",
            "0",
        ])
        .unwrap();
        let Command::Server(a) = cli.command else {
            panic!("not server")
        };
        assert_eq!(a.write_kubeconfig_mode, 0o644);
        assert_eq!(a.tls_san, vec!["a.example", "10.0.0.1"]);
        assert_eq!(a.write_kubeconfig, Some(PathBuf::from("/tmp/k.yaml")));
        assert!(a.disable_agent);
        assert_eq!(a.https_listen_port, 0);
        assert_eq!(a.bind_address.to_string(), "127.0.0.1");
    }

    #[test]
    fn mode_parsing() {
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0644"), Ok(0o644));
        assert!(parse_mode("9").is_err());
        assert!(parse_mode("77777").is_err());
    }
}
