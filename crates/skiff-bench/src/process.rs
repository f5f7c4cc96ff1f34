//! The server under test as a child process: `skiff server` on loopback with a data directory of
//! the harness's own, ready when `GET /readyz` answers 200 with the admin credentials, and
//! killed by its PID when the guard drops (also on errors and panics).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rustix::process::{kill_process, Pid, Signal};

use crate::client::{Endpoint, Proto};
use crate::kubeconfig::{self, Credentials};

/// How long a server may take to become ready before the harness gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running `skiff server`.
pub(crate) struct ServerProcess {
    child: Child,
    pub(crate) endpoint: Endpoint,
    log_path: PathBuf,
}

/// How to start a server.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    /// The server's stdout and stderr go here (appended).
    pub log_path: PathBuf,
    /// More `skiff server` flags (simulated nodes, components turned off).
    pub args: Vec<String>,
}

impl ServerProcess {
    /// Spawns the server and waits until it is ready; returns it and the time from spawn to
    /// the first 200 from `/readyz`.
    pub(crate) async fn start(launch: &Launch) -> anyhow::Result<(Self, Duration)> {
        let port = free_port()?;
        let kubeconfig_path = launch
            .data_dir
            .parent()
            .unwrap_or(&launch.data_dir)
            .join(format!(
                "{}.kubeconfig",
                launch.data_dir.file_name().unwrap_or_default().display()
            ));
        // A kubeconfig left by an earlier start must not be mistaken for this one's.
        let _ = std::fs::remove_file(&kubeconfig_path);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&launch.log_path)
            .with_context(|| format!("opening {}", launch.log_path.display()))?;
        let started = Instant::now();
        let child = Command::new(&launch.bin)
            .arg("server")
            .arg("--data-dir")
            .arg(&launch.data_dir)
            .args(["--bind-address", "127.0.0.1", "--https-listen-port"])
            .arg(port.to_string())
            .arg("--disable-agent")
            .arg("--write-kubeconfig")
            .arg(&kubeconfig_path)
            .args(&launch.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", launch.bin.display()))?;
        let mut guard = Starting {
            child: Some(child),
            log_path: launch.log_path.clone(),
        };
        let endpoint = guard.wait_ready(&kubeconfig_path, started).await?;
        let ready_after = started.elapsed();
        let child = guard.child.take().expect("child is held until ready");
        Ok((
            ServerProcess {
                child,
                endpoint,
                log_path: launch.log_path.clone(),
            },
            ready_after,
        ))
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident set now and at its peak, in bytes (`VmRSS`, `VmHWM`).
    pub(crate) fn memory(&self) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        parse_memory(&status)
    }

    /// CPU time the server has used so far (user + system, all threads).
    pub(crate) fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time_of(&format!("/proc/{}/stat", self.pid()))
    }

    /// Stops the server with SIGTERM (as an init system would), killing it after a while.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if terminate(&mut self.child, STOP_TIMEOUT).await? {
            return Ok(());
        }
        bail!(
            "server (pid {}) did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed it (log: {})",
            self.pid(),
            self.log_path.display()
        )
        // Drop kills it.
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        kill_and_reap(&mut self.child);
    }
}

/// A server that has been spawned but is not ready yet; killed if readiness fails.
struct Starting {
    child: Option<Child>,
    log_path: PathBuf,
}

impl Starting {
    async fn wait_ready(
        &mut self,
        kubeconfig_path: &Path,
        started: Instant,
    ) -> anyhow::Result<Endpoint> {
        let mut endpoint: Option<Endpoint> = None;
        let mut last_error = anyhow!("no kubeconfig at {}", kubeconfig_path.display());
        while started.elapsed() < READY_TIMEOUT {
            let child = self.child.as_mut().expect("child is held until ready");
            if let Some(status) = child.try_wait()? {
                bail!(
                    "server exited with {status} before it was ready; log {}:\n{}",
                    self.log_path.display(),
                    log_tail(&self.log_path)
                );
            }
            if endpoint.is_none() {
                match read_credentials(kubeconfig_path).and_then(|c| Endpoint::new(&c)) {
                    Ok(e) => endpoint = Some(e),
                    Err(e) => last_error = e,
                }
            }
            if let Some(ep) = &endpoint {
                match probe_ready(ep).await {
                    Ok(()) => return Ok(ep.clone()),
                    Err(e) => last_error = e,
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Err(last_error.context(format!(
            "server not ready within {READY_TIMEOUT:?}; log {}:\n{}",
            self.log_path.display(),
            log_tail(&self.log_path)
        )))
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            kill_and_reap(child);
        }
    }
}

fn read_credentials(path: &Path) -> anyhow::Result<Credentials> {
    let text = std::fs::read_to_string(path)?;
    kubeconfig::parse(&text)
}

async fn probe_ready(endpoint: &Endpoint) -> anyhow::Result<()> {
    let mut conn = endpoint.connect(Proto::Http1).await?;
    conn.get_ok("/readyz").await?;
    Ok(())
}

fn pid_of(child: &Child) -> anyhow::Result<Pid> {
    Pid::from_raw(child.id() as i32).ok_or_else(|| anyhow!("child has no pid"))
}

/// Sends SIGTERM to `child` and waits up to `timeout` for it to exit; whether it did.
pub(crate) async fn terminate(child: &mut Child, timeout: Duration) -> anyhow::Result<bool> {
    let _ = kill_process(pid_of(child)?, Signal::TERM);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(false)
}

fn kill_and_reap(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        // `Child::kill` sends SIGKILL to this child's PID only.
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// The last lines of the server's log, for error messages.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// CPU time (user + system) of the process whose `/proc/…/stat` is at `path`.
pub(crate) fn cpu_time_of(path: &str) -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let ticks = parse_cpu_ticks(&text).ok_or_else(|| anyhow!("no CPU times in {path}"))?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Ok(Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// `utime + stime` (fields 14 and 15, in clock ticks) of `/proc/<pid>/stat` text. The command
/// name in field 2 may hold spaces and parentheses, so fields are counted after the last `)`.
pub(crate) fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state).
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    Some(utime + stime)
}

/// The machine's CPU time from the `cpu` line of `/proc/stat`, in clock ticks: all of it, and
/// the part spent idle or waiting for I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MachineTicks {
    pub total: u64,
    pub idle: u64,
}

impl MachineTicks {
    /// Now, for the whole machine.
    pub(crate) fn now() -> anyhow::Result<MachineTicks> {
        let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        parse_machine_ticks(&text).ok_or_else(|| anyhow!("no cpu line in /proc/stat"))
    }

    /// The share of the machine's CPU time from `self` to `later` that was idle (I/O wait
    /// included), if any time passed.
    pub(crate) fn idle_share(self, later: MachineTicks) -> Option<f64> {
        let total = later.total.checked_sub(self.total)?;
        let idle = later.idle.checked_sub(self.idle)?;
        (total > 0).then(|| idle as f64 / total as f64)
    }
}

/// The first (`cpu`, all cores) line of `/proc/stat`: user, nice, system, idle, iowait, irq,
/// softirq and steal, summed; idle and iowait as the idle part (guest time is inside user).
pub(crate) fn parse_machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if v.len() < 5 {
        return None;
    }
    Some(MachineTicks {
        total: v.iter().sum(),
        idle: v[3] + v[4],
    })
}

/// Resident memory of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Memory {
    pub rss: u64,
    pub peak_rss: u64,
}

/// Reads `VmRSS` and `VmHWM` (in kB) from `/proc/<pid>/status` text.
pub(crate) fn parse_memory(status: &str) -> anyhow::Result<Memory> {
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .ok_or_else(|| anyhow!("no {name} in /proc status"))?;
        let kb: u64 = line
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("{name} {line:?}"))?;
        Ok(kb * 1024)
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        peak_rss: field("VmHWM:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_from_proc_status() {
        let status =
            "Name:\tskiff\nVmPeak:\t  900000 kB\nVmHWM:\t   40000 kB\nVmRSS:\t   31234 kB\n";
        let m = parse_memory(status).unwrap();
        assert_eq!(m.rss, 31234 * 1024);
        assert_eq!(m.peak_rss, 40000 * 1024);
        assert!(parse_memory("Name:\tx\n").is_err());
    }

    #[test]
    fn reads_cpu_ticks_from_proc_stat() {
        let stat = "4242 (sk iff) (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        assert!(cpu_time_of("/proc/self/stat").is_ok());
    }

    #[test]
    fn reads_the_machines_idle_share_from_proc_stat() {
        let before = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n";
        let after = "cpu  250 0 100 850 100 0 0 0 0 0\ncpu0 1 1 1 1 1 0 0 0 0 0\n";
        let (a, b) = (
            parse_machine_ticks(before).unwrap(),
            parse_machine_ticks(after).unwrap(),
        );
        assert_eq!(
            a,
            MachineTicks {
                total: 1000,
                idle: 850
            }
        );
        // 300 ticks passed, 100 of them idle or waiting.
        assert_eq!(a.idle_share(b), Some(100.0 / 300.0));
        assert_eq!(b.idle_share(a), None);
        assert_eq!(a.idle_share(a), None);
        assert_eq!(parse_machine_ticks("intr 1 2 3\n"), None);
        assert_eq!(parse_machine_ticks("cpu  1 2 x 4 5\n"), None);
        let now = MachineTicks::now().unwrap();
        assert!(now.total >= now.idle && now.total > 0);
    }

    #[test]
    fn reads_own_memory() {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(parse_memory(&text).unwrap().rss > 0);
    }
}
