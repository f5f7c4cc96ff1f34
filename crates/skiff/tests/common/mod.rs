//! A real `skiff` server process for tests: started on a free port with a data directory of
//! the test's, stopped by SIGTERM or killed (by PID) when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const JOIN_TOKEN: &str = "join-secret";

/// A running `skiff server`; killed on drop if the test did not stop it.
pub struct Server {
    pub child: Option<Child>,
    pub data_dir: PathBuf,
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_skiff"))
            .arg("server")
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--https-listen-port",
                "0",
                "--disable-agent",
                "--token",
                JOIN_TOKEN,
            ])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("skiff starts");
        // The ready line comes after the listener is bound and the kubeconfig written.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("Skiff is ready") {
                    let _ = tx.send(line);
                }
            }
        });
        let server = Server {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("skiff prints its ready line");
        assert!(line.contains("kubectl get nodes"), "{line}");
        server
    }

    /// The admin kubeconfig the server wrote.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.data_dir.join("admin.kubeconfig")
    }

    /// SIGKILL: no chance to flush or finish anything.
    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "skiff did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
