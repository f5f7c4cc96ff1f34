//! The do-nothing HTTPS baseline of section 1: nginx, started by the harness on loopback with
//! the Skiff server's own serving certificate, answering every request with 201 Created and
//! the bytes of a pod Skiff stored. It parses no JSON and writes nothing, so its rate under
//! the same load generator is what TLS, HTTP and the kernel's loopback alone allow on this
//! machine: a ceiling for any server that answers a create.
//!
//! nginx runs as a master process and one worker per core (its best configuration here), in
//! a process group of its own that the guard ends when it drops.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use rustix::process::{kill_process_group, Pid, Signal};

use crate::process::{cpu_time_of, terminate};

/// How long nginx may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long nginx may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// The nginx executable: `$NGINX` if set, else the first `nginx` on the PATH or in the
/// system folders Debian installs it to (`/usr/sbin` is not on every user's PATH).
pub(crate) fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NGINX") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"].map(PathBuf::from))
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

/// What nginx serves and where.
pub(crate) struct Site<'a> {
    /// Folder for the configuration, PID file, logs and temporary files (must exist).
    pub dir: &'a Path,
    pub port: u16,
    /// PEM certificate chain and key for TLS.
    pub cert: &'a Path,
    pub key: &'a Path,
    /// The response body of every request.
    pub body: &'a [u8],
    /// Worker processes.
    pub workers: usize,
}

/// The configuration file for `site`. Fails when the body cannot be written as an nginx string
/// (it must be UTF-8 and free of `$`, which would name a variable).
pub(crate) fn config(site: &Site) -> anyhow::Result<String> {
    let body = std::str::from_utf8(site.body).context("response body is not UTF-8")?;
    if body.contains('$') {
        bail!("response body holds a '$', which nginx would read as a variable");
    }
    let quoted = body.replace('\\', "\\\\").replace('\'', "\\'");
    let dir = site.dir.display();
    Ok(format!(
        "worker_processes {workers};\n\
         pid {dir}/nginx.pid;\n\
         error_log {dir}/error.log warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
         \x20 access_log off;\n\
         \x20 client_body_temp_path {dir}/body;\n\
         \x20 proxy_temp_path {dir}/proxy;\n\
         \x20 fastcgi_temp_path {dir}/fastcgi;\n\
         \x20 uwsgi_temp_path {dir}/uwsgi;\n\
         \x20 scgi_temp_path {dir}/scgi;\n\
         \x20 keepalive_requests 10000000;\n\
         \x20 keepalive_timeout 300s;\n\
         \x20 client_body_buffer_size 64k;\n\
         \x20 client_max_body_size 3m;\n\
         \x20 server {{\n\
         \x20   listen 127.0.0.1:{port} ssl http2;\n\
         \x20   ssl_certificate {cert};\n\
         \x20   ssl_certificate_key {key};\n\
         \x20   location / {{\n\
         \x20     default_type application/json;\n\
         \x20     return 201 '{quoted}';\n\
         \x20   }}\n\
         \x20 }}\n\
         }}\n",
        workers = site.workers.max(1),
        port = site.port,
        cert = site.cert.display(),
        key = site.key.display(),
    ))
}

/// A running nginx: its master process and workers.
pub(crate) struct Nginx {
    master: Child,
    workers: Vec<Pid>,
    dir: PathBuf,
    pub(crate) version: String,
}

impl Nginx {
    /// Writes the configuration for `site` and starts `bin` in the foreground; returns once it
    /// accepts connections on the site's port and its workers are up.
    pub(crate) async fn start(bin: &Path, site: &Site<'_>) -> anyhow::Result<Nginx> {
        let version = version(bin)?;
        let conf = site.dir.join("nginx.conf");
        std::fs::write(&conf, config(site)?)
            .with_context(|| format!("writing {}", conf.display()))?;
        let log = site.dir.join("nginx.out");
        let out = std::fs::File::create(&log)?;
        let master = Command::new(bin)
            .arg("-p")
            .arg(site.dir)
            .arg("-e")
            .arg(site.dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .args(["-g", "daemon off;"])
            // Its own process group, so that the workers can be ended with the master.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut nginx = Nginx {
            master,
            workers: Vec::new(),
            dir: site.dir.to_path_buf(),
            version,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = nginx.master.try_wait()? {
                bail!(
                    "nginx exited at start ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default().trim()
                );
            }
            nginx.workers = children(nginx.master.id());
            let listening = tokio::net::TcpStream::connect(("127.0.0.1", site.port))
                .await
                .is_ok();
            if listening && nginx.workers.len() >= site.workers.max(1) {
                return Ok(nginx);
            }
            if Instant::now() >= deadline {
                bail!(
                    "nginx did not listen on port {} within {START_TIMEOUT:?}: {}",
                    site.port,
                    std::fs::read_to_string(site.dir.join("error.log")).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// CPU time used so far by the master and the workers.
    pub(crate) fn cpu_time(&self) -> anyhow::Result<Duration> {
        let mut total = cpu_time_of(&format!("/proc/{}/stat", self.master.id()))?;
        for w in &self.workers {
            total += cpu_time_of(&format!("/proc/{}/stat", w.as_raw_nonzero()))?;
        }
        Ok(total)
    }

    /// Stops nginx (SIGTERM: fast shutdown of master and workers) and waits for the master.
    pub(crate) async fn stop(mut self) -> anyhow::Result<()> {
        if terminate(&mut self.master, STOP_TIMEOUT).await? {
            return Ok(());
        }
        bail!(
            "nginx did not stop within {STOP_TIMEOUT:?} of SIGTERM; killed it (folder {})",
            self.dir.display()
        )
        // Drop kills what is left.
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(None) = self.master.try_wait() {
            // The master is not reaped yet, so its process group (which the workers share)
            // is still the one it made: end them all.
            if let Some(group) = Pid::from_raw(self.master.id() as i32) {
                let _ = kill_process_group(group, Signal::KILL);
            }
            let _ = self.master.wait();
        }
    }
}

/// The child processes of `pid` (from `/proc/<pid>/task/*/children`).
fn children(pid: u32) -> Vec<Pid> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        out.extend(
            text.split_whitespace()
                .filter_map(|s| s.parse::<i32>().ok())
                .filter_map(Pid::from_raw),
        );
    }
    out
}

/// `nginx -v`'s version, e.g. `nginx/1.22.1`.
fn version(bin: &Path) -> anyhow::Result<String> {
    let out = Command::new(bin)
        .arg("-v")
        .output()
        .with_context(|| format!("running {} -v", bin.display()))?;
    // nginx prints its version on stderr.
    let text = String::from_utf8_lossy(&out.stderr);
    text.split_whitespace()
        .find(|w| w.starts_with("nginx/"))
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{} -v printed no version: {}", bin.display(), text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site<'a>(dir: &'a Path, body: &'a [u8]) -> Site<'a> {
        Site {
            dir,
            port: 40000,
            cert: Path::new("/c/cert.pem"),
            key: Path::new("/c/key.pem"),
            body,
            workers: 2,
        }
    }

    #[test]
    fn the_body_is_quoted_for_nginx() {
        let dir = Path::new("/w");
        let c = config(&site(dir, br#"{"a":"it's \"q\""}"#)).unwrap();
        assert!(c.contains(r#"return 201 '{"a":"it\'s \\"q\\""}';"#), "{c}");
        assert!(c.contains("listen 127.0.0.1:40000 ssl http2;"));
        assert!(c.contains("worker_processes 2;"));
        assert!(c.contains("pid /w/nginx.pid;"));
        assert!(c.contains("ssl_certificate_key /c/key.pem;"));
    }

    /// A CA and a certificate for 127.0.0.1 that it signed (PEM): the CA, the certificate
    /// and its key.
    fn certificates() -> (String, String, String) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::default();
        leaf.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
        let cert = leaf.signed_by(&key, &issuer).unwrap().pem();
        (ca_pem, cert, key.serialize_pem())
    }

    /// nginx started as the harness starts it answers the create load with 201 and the body
    /// it was given, over both protocols, its CPU is counted, and stopping it or dropping
    /// its guard ends the master and every worker.
    #[tokio::test]
    async fn nginx_answers_the_load_and_is_ended_with_its_workers() {
        use crate::client::{Endpoint, Proto};
        use crate::kubeconfig::Credentials;
        use crate::scenarios::create::{create_pods, CreatePlan};

        let bin = binary().expect(
            "nginx is not installed: `make test` installs it (Debian package nginx), or set NGINX",
        );
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = certificates();
        std::fs::write(dir.path().join("cert.pem"), &cert).unwrap();
        std::fs::write(dir.path().join("key.pem"), &key).unwrap();
        let body = br#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"it's"}}"#;
        let start = |port| {
            let (dir, bin) = (dir.path().to_path_buf(), bin.clone());
            async move {
                let site = Site {
                    dir: &dir,
                    port,
                    cert: &dir.join("cert.pem"),
                    key: &dir.join("key.pem"),
                    body,
                    workers: 2,
                };
                Nginx::start(&bin, &site).await.unwrap()
            }
        };
        let port = crate::process::free_port().unwrap();
        let server = start(port).await;
        assert!(server.version.starts_with("nginx/"), "{}", server.version);
        assert_eq!(server.workers.len(), 2, "one worker per core asked");
        let endpoint = Endpoint::new(&Credentials {
            server: format!("https://127.0.0.1:{port}"),
            ca_pem: ca.into_bytes(),
            client_cert_pem: cert.into_bytes(),
            client_key_pem: key.into_bytes(),
        })
        .unwrap();
        let cpu_before = server.cpu_time().unwrap();
        for proto in [Proto::Http1, Proto::H2] {
            let plan = CreatePlan {
                namespace: "default".into(),
                prefix: "p".into(),
                total: 2000,
                clients: 16,
                proto,
                h2_connections: 1,
                max_time: Duration::from_secs(60),
                answered: None,
            };
            let o = create_pods(&endpoint, &plan).await.unwrap();
            assert_eq!(
                (o.created, o.errors),
                (2000, 0),
                "{proto:?}: {:?}",
                o.first_error
            );
        }
        // The answer is the body given, byte for byte.
        let mut conn = endpoint.connect(Proto::Http1).await.unwrap();
        let (status, answer) = conn
            .call(http::Method::POST, "/anything", None, bytes::Bytes::new())
            .await
            .unwrap();
        assert_eq!(status, http::StatusCode::CREATED);
        assert_eq!(&answer[..], &body[..]);
        drop(conn);
        assert!(
            server.cpu_time().unwrap() > cpu_before,
            "nginx's CPU is counted"
        );

        let alive = |pid: i32| Path::new(&format!("/proc/{pid}")).exists();
        let pids: Vec<i32> = std::iter::once(server.master.id() as i32)
            .chain(server.workers.iter().map(|w| w.as_raw_nonzero().get()))
            .collect();
        server.stop().await.unwrap();
        for pid in &pids {
            assert!(!alive(*pid), "nginx process {pid} outlived stop");
        }

        // Dropped without stopping (a failed run): the group goes at once.
        let port = crate::process::free_port().unwrap();
        let server = start(port).await;
        let pids: Vec<i32> = std::iter::once(server.master.id() as i32)
            .chain(server.workers.iter().map(|w| w.as_raw_nonzero().get()))
            .collect();
        drop(server);
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids.iter().any(|p| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        for pid in &pids {
            assert!(!alive(*pid), "nginx process {pid} outlived its guard");
        }
    }

    #[test]
    fn a_body_nginx_would_expand_is_refused() {
        let dir = Path::new("/w");
        let e = config(&site(dir, br#"{"a":"$host"}"#)).unwrap_err();
        assert!(e.to_string().contains("variable"), "{e}");
        assert!(config(&site(dir, &[0xff, 0xfe])).is_err());
    }
}
