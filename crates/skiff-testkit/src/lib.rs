//! Test builders for Skiff.
//!
//! [`TestServer::start`] runs a whole `skiff server` in-process (the same wiring as the binary:
//! PKI, authentication, the API server over SQLite) in a temporary data directory on a free
//! loopback port, and hands out `kube` clients authenticated as the cluster admin.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use k8s_openapi;
pub use kube;

/// A running in-process Skiff server; stopped when dropped.
pub struct TestServer {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts the API server alone (no controllers, no scheduler) with a fresh data
    /// directory: what the API conformance tests need, with nothing else writing.
    pub async fn start() -> anyhow::Result<TestServer> {
        let dir = tempfile::Builder::new().prefix("skiff-test").tempdir()?;
        Self::start_in(dir).await
    }

    /// Starts a whole control plane (API server, controllers, scheduler; no node agent) with
    /// a fresh data directory and options changed by `configure` (simulated nodes, shorter
    /// timers, …).
    pub async fn start_with(
        configure: impl FnOnce(&mut skiff::server::ServerOptions),
    ) -> anyhow::Result<TestServer> {
        let dir = tempfile::Builder::new().prefix("skiff-test").tempdir()?;
        Self::start_configured(dir, Box::new(configure)).await
    }

    /// Starts a server whose data directory is a new folder under `parent` (removed when the
    /// server is dropped).
    pub async fn start_under(parent: &Path) -> anyhow::Result<TestServer> {
        std::fs::create_dir_all(parent)?;
        let dir = tempfile::Builder::new()
            .prefix("skiff-test")
            .tempdir_in(parent)?;
        Self::start_in(dir).await
    }

    async fn start_in(dir: tempfile::TempDir) -> anyhow::Result<TestServer> {
        Self::start_configured(
            dir,
            Box::new(|o| {
                o.disable_controller_manager = true;
                o.disable_scheduler = true;
            }),
        )
        .await
    }

    async fn start_configured(
        dir: tempfile::TempDir,
        configure: Box<dyn FnOnce(&mut skiff::server::ServerOptions) + '_>,
    ) -> anyhow::Result<TestServer> {
        let kubeconfig = dir.path().join("kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let mut opts = skiff::server::ServerOptions::new(dir.path().join("data"));
        opts.write_kubeconfig = Some(kubeconfig.clone());
        opts.disable_agent = true;
        opts.compaction = self_compaction();
        configure(&mut opts);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(skiff::server::run(opts, async {
            let _ = rx.await;
        }));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !kubeconfig.exists() {
            if task.is_finished() {
                let r = task.await?;
                r.context("server stopped before it was ready")?;
                anyhow::bail!("server stopped before it was ready");
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("server not ready after 20 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(TestServer {
            dir,
            kubeconfig,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// Stops the server and starts it again on the same data directory (a new port).
    pub async fn restart(mut self) -> anyhow::Result<TestServer> {
        self.stop().await?;
        let dir = tempfile::TempDir::new()?; // placeholder swapped below
        let old = std::mem::replace(&mut self.dir, dir);
        drop(self);
        Self::start_in(old).await
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await??;
        }
        Ok(())
    }

    /// The admin kubeconfig.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A client authenticated as the cluster admin.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    /// A client as [`Self::client`] that does not retry 429/503/504 answers itself (kube's
    /// default does), for tests that assert on them.
    pub async fn client_without_retries(&self) -> anyhow::Result<kube::Client> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)?;
        let mut config =
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
        config.default_retry = false;
        Ok(kube::Client::try_from(config)?)
    }

    /// The server's base URL (`https://127.0.0.1:PORT`).
    pub fn url(&self) -> anyhow::Result<String> {
        let kc = Kubeconfig::read_from(&self.kubeconfig)?;
        kc.clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .and_then(|c| c.server.clone())
            .context("kubeconfig has no server")
    }
}

/// Tests compact often so that 410 Expired paths can be reached: every second, keeping the
/// last 100 revisions.
fn self_compaction() -> Option<skiff_store::sqlite::AutoCompact> {
    Some(skiff_store::sqlite::AutoCompact {
        interval: Duration::from_secs(1),
        keep_revisions: 100,
    })
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
