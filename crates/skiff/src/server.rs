//! `skiff server`: the control plane of a cluster, started the way k3s starts its server.
//!
//! Order: data directory, certificates (`pki`), the join token, authenticators, the API
//! handler over the store, the listener, then the kubeconfigs (written after binding so they
//! carry the real port, which may have been chosen by the OS for `--https-listen-port 0`), and
//! serving until SIGTERM/SIGINT.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use skiff_apiserver::{Authenticator, UserInfo};

use crate::kubeconfig::{self, Kubeconfig};
use crate::{files, pki};

/// The user a request authenticated with the cluster join token is.
pub const BOOTSTRAP_USER: &str = "skiff:node-bootstrap";
/// The groups of [`BOOTSTRAP_USER`] (besides `system:authenticated`, added by authn).
pub const BOOTSTRAP_GROUP: &str = "system:bootstrappers";

/// How the server is configured (from the command line).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub data_dir: PathBuf,
    pub bind_address: IpAddr,
    pub https_listen_port: u16,
    pub write_kubeconfig: Option<PathBuf>,
    pub write_kubeconfig_mode: u32,
    pub disable_agent: bool,
    pub token: Option<String>,
    pub token_auth_file: Option<PathBuf>,
    pub tls_san: Vec<String>,
    /// Background compaction of the datastore's history (`None`: never).
    pub compaction: Option<skiff_store::sqlite::AutoCompact>,
    /// `--disable-controller-manager`: run no controllers.
    pub disable_controller_manager: bool,
    /// `--disable-scheduler`: leave pods unscheduled.
    pub disable_scheduler: bool,
    /// Settings of the controllers (`--node-monitor-grace-period`, …).
    pub controllers: skiff_controllers::Options,
    /// Settings of the scheduler (scoring strategy, nodes to score).
    pub scheduler: skiff_scheduler::Config,
    /// Simulated nodes (`--fake-nodes N`; none by default).
    pub fake_nodes: skiff_agent::simulated::Options,
}

impl ServerOptions {
    /// The defaults of `skiff server` for `data_dir`, listening on a port the OS chooses on
    /// loopback.
    pub fn new(data_dir: PathBuf) -> ServerOptions {
        ServerOptions {
            data_dir,
            bind_address: IpAddr::from([127, 0, 0, 1]),
            https_listen_port: 0,
            write_kubeconfig: None,
            write_kubeconfig_mode: 0o600,
            disable_agent: false,
            token: None,
            token_auth_file: None,
            tls_san: Vec::new(),
            compaction: None,
            disable_controller_manager: false,
            disable_scheduler: false,
            controllers: skiff_controllers::Options::default(),
            scheduler: skiff_scheduler::Config::default(),
            fake_nodes: skiff_agent::simulated::Options::default(),
        }
    }
}

/// Where the admin kubeconfig is always written.
pub fn admin_kubeconfig_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.kubeconfig")
}

/// Runs the server until `shutdown` completes.
pub async fn run(opts: ServerOptions, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    files::create_dir_with_mode(&opts.data_dir, 0o700)
        .with_context(|| format!("creating data directory {}", opts.data_dir.display()))?;

    let mut extra_sans = opts.tls_san.clone();
    if !opts.bind_address.is_unspecified() {
        extra_sans.push(opts.bind_address.to_string());
    }
    let sans = pki::serving_sans(pki::hostname().as_deref(), &extra_sans);
    let pki = pki::ensure(&opts.data_dir.join("tls"), &sans)?;

    let token = ensure_token(&opts.data_dir, opts.token.as_deref())?;
    let authn = Arc::new(Authenticator::new());
    authn.add_token(
        token,
        UserInfo::new(BOOTSTRAP_USER, "", vec![BOOTSTRAP_GROUP.to_string()]),
    );
    if let Some(path) = &opts.token_auth_file {
        let n = authn.load_token_file(path)?;
        tracing::info!(path = %path.display(), tokens = n, "loaded token file");
    }

    let tls = skiff_apiserver::tls::server_config(
        pki.serving_cert_pem.as_bytes(),
        pki.serving_key_pem.as_bytes(),
        pki.ca_cert_pem.as_bytes(),
    )?;

    let bind = SocketAddr::new(opts.bind_address, opts.https_listen_port);
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let local = listener.local_addr()?;
    let advertised = if local.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), local.port())
    } else {
        local
    };
    let handler = build_handler(&opts.data_dir, advertised, opts.compaction).await?;

    let kubeconfig = Kubeconfig {
        server: kubeconfig::server_url(local),
        ca_cert_pem: pki.ca_cert_pem.clone(),
        client_cert_pem: pki.admin_cert_pem.clone(),
        client_key_pem: pki.admin_key_pem.clone(),
    };
    let admin_path = admin_kubeconfig_path(&opts.data_dir);
    kubeconfig
        .write(&admin_path, files::PRIVATE)
        .with_context(|| format!("writing {}", admin_path.display()))?;
    let mut shown = admin_path;
    if let Some(path) = &opts.write_kubeconfig {
        kubeconfig
            .write(path, opts.write_kubeconfig_mode)
            .with_context(|| format!("writing kubeconfig {}", path.display()))?;
        tracing::info!(path = %path.display(), "wrote kubeconfig");
        shown = path.clone();
    }

    // The control loops share one in-process runtime over the API server, on threads of their
    // own with a raised priority (see skiff_runtime::threads): under a flood of requests the
    // cluster still reacts at once to what the clients write.
    let loops = skiff_runtime::threads::ControlPlaneThreads::start(
        std::thread::available_parallelism().map_or(2, |n| n.get()),
    )
    .context("starting the control-plane threads")?;
    let runtime = skiff_runtime::Runtime::on(handler.clone(), &loops);
    if opts.disable_controller_manager {
        tracing::info!("controllers disabled (--disable-controller-manager)");
    } else {
        skiff_controllers::start(&runtime, &opts.controllers);
    }
    if opts.disable_scheduler {
        tracing::info!("scheduler disabled (--disable-scheduler)");
    } else {
        // Its binding is the next write of each pod created without a node.
        handler.set_keep_pending_pods(true);
        skiff_scheduler::start(&runtime, opts.scheduler);
    }
    let mut simulated_threads = None;
    if opts.fake_nodes.count > 0 {
        tracing::info!(nodes = opts.fake_nodes.count, "starting simulated nodes");
        // Heartbeats must come well within the grace period the node lifecycle controller allows.
        let mut fake = opts.fake_nodes.clone();
        fake.lease_renew_interval = fake
            .lease_renew_interval
            .min(opts.controllers.node_monitor_grace_period / 4);
        let threads = skiff_runtime::threads::Threads::simulated_nodes(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )
        .context("starting the simulated nodes' threads")?;
        skiff_agent::simulated::start(&runtime.elsewhere(threads.handle()), &fake)
            .context("simulated nodes (--fake-node-*)")?;
        simulated_threads = Some(threads);
    }
    if opts.disable_agent {
        tracing::info!("node agent disabled (--disable-agent)");
    } else {
        tracing::warn!(
            "the embedded node agent is not available yet; serving the control plane only"
        );
    }
    tracing::info!(address = %local, "serving the Kubernetes API over TLS");
    println!(
        "Skiff is ready. KUBECONFIG={} kubectl get nodes",
        shown.display()
    );

    let served =
        skiff_apiserver::tls::serve_with_shutdown(listener, tls, authn, handler, shutdown).await;
    runtime.shutdown().await;
    drop(simulated_threads);
    drop(loops);
    served?;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the store in `data_dir` and builds the API server over it.
async fn build_handler(
    data_dir: &Path,
    server_address: SocketAddr,
    compaction: Option<skiff_store::sqlite::AutoCompact>,
) -> anyhow::Result<Arc<skiff_apiserver::ApiServer>> {
    let db = data_dir.join("db");
    files::create_dir_with_mode(&db, 0o700)?;
    let store = skiff_store::sqlite::SqliteStore::open(
        &db.join("state.db"),
        skiff_store::sqlite::SqliteOptions {
            auto_compact: compaction,
            ..Default::default()
        },
    )
    .with_context(|| format!("opening the datastore in {}", db.display()))?;
    let api = skiff_apiserver::ApiServer::new(
        store,
        skiff_apiserver::ApiOptions {
            server_address: server_address.to_string(),
            ..Default::default()
        },
    );
    api.bootstrap()
        .await
        .map_err(|e| anyhow::anyhow!("bootstrapping the API server: {e}"))?;
    Ok(api)
}

/// A kubeconfig for `user` in `groups` with a new client certificate signed by the cluster CA
/// in `data_dir` (`skiff kubeconfig user`). `server` defaults to the admin kubeconfig's.
pub fn user_kubeconfig(
    data_dir: &Path,
    user: &str,
    groups: &[String],
    server: Option<String>,
) -> anyhow::Result<String> {
    let tls_dir = data_dir.join("tls");
    let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
    let (cert, key) = pki::issue_client_cert(&tls_dir, user, &groups)?;
    let server = match server {
        Some(s) => s,
        None => {
            let path = admin_kubeconfig_path(data_dir);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {} (or pass --server)", path.display()))?;
            text.lines()
                .find_map(|l| l.trim().strip_prefix("server: "))
                .map(str::to_string)
                .with_context(|| format!("no server in {}", path.display()))?
        }
    };
    let ca_cert_pem = std::fs::read_to_string(tls_dir.join(pki::CA_CERT))?;
    let kc = Kubeconfig {
        server,
        ca_cert_pem,
        client_cert_pem: cert,
        client_key_pem: key,
    };
    Ok(kc.render())
}

/// The cluster join token: `given` (stored for later starts) or the stored one, else a new
/// random one. Stored at `<data-dir>/token`, mode 0600.
pub fn ensure_token(data_dir: &Path, given: Option<&str>) -> anyhow::Result<String> {
    let path = data_dir.join("token");
    let stored = files::read_optional(&path)?.map(|s| s.trim().to_string());
    let token = match (given, stored) {
        (Some(given), stored) => {
            let given = given.trim();
            anyhow::ensure!(!given.is_empty(), "--token must not be empty");
            if stored.as_deref() != Some(given) {
                if stored.is_some() {
                    tracing::warn!("--token differs from the stored token; replacing it");
                }
                files::write_atomic(&path, format!("{given}\n").as_bytes(), files::PRIVATE)?;
            }
            given.to_string()
        }
        (None, Some(stored)) if !stored.is_empty() => stored,
        (None, _) => {
            let token = random_token()?;
            files::write_atomic(&path, format!("{token}\n").as_bytes(), files::PRIVATE)?;
            tracing::info!(path = %path.display(), "generated cluster token");
            token
        }
    };
    Ok(token)
}

/// 32 random bytes, hex-encoded.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no secure random numbers"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn token_is_generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure_token(dir.path(), None).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(ensure_token(dir.path(), None).unwrap(), first);
        let meta = std::fs::metadata(dir.path().join("token")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn given_token_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        ensure_token(dir.path(), None).unwrap();
        assert_eq!(ensure_token(dir.path(), Some("s3cret")).unwrap(), "s3cret");
        assert_eq!(ensure_token(dir.path(), None).unwrap(), "s3cret");
        assert!(ensure_token(dir.path(), Some(" ")).is_err());
    }
}
