//! End to end: the real `skiff` binary on a free port with a tempdir data dir, driven over TLS
//! with the certificates from the kubeconfig it writes. Proves TLS (HTTP/1.1 and h2 by ALPN),
//! client-certificate and bearer-token authentication, the 401 `Status`, graceful shutdown on
//! SIGTERM, and that a restart reuses the cluster CA.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

const UNAUTHORIZED: &str = r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}
"#;
use common::{Server, JOIN_TOKEN};

mod common;

struct Kubeconfig {
    addr: SocketAddr,
    ca_pem: Vec<u8>,
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
}

trait KubeconfigExt {
    fn kubeconfig(&self) -> Kubeconfig;
}

impl KubeconfigExt for Server {
    fn kubeconfig(&self) -> Kubeconfig {
        Kubeconfig::read(&self.kubeconfig_path())
    }
}

impl Kubeconfig {
    fn read(path: &Path) -> Kubeconfig {
        let doc: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let b64 = |v: &serde_yaml_ng::Value| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap()
        };
        let cluster = &doc["clusters"][0]["cluster"];
        let user = &doc["users"][0]["user"];
        let server = cluster["server"].as_str().unwrap();
        Kubeconfig {
            addr: server.strip_prefix("https://").unwrap().parse().unwrap(),
            ca_pem: b64(&cluster["certificate-authority-data"]),
            cert_pem: b64(&user["client-certificate-data"]),
            key_pem: b64(&user["client-key-data"]),
        }
    }

    /// A client trusting the cluster CA, presenting the admin certificate if `with_cert`.
    fn client(&self, with_cert: bool, alpn: &[&[u8]]) -> Client {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(&self.ca_pem).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        let mut config = if with_cert {
            let chain = vec![CertificateDer::from_pem_slice(&self.cert_pem).unwrap()];
            let key = PrivateKeyDer::from_pem_slice(&self.key_pem).unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        } else {
            builder.with_no_client_auth()
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Client {
            config: Arc::new(config),
            addr: self.addr,
        }
    }
}

struct Client {
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
}

struct Reply {
    status: u16,
    body: String,
    h2: bool,
}

impl Client {
    async fn request(&self, method: &str, path: &str, bearer: Option<&str>) -> Reply {
        let tcp = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let name = ServerName::from(self.addr.ip());
        let tls = connector.connect(name, tcp).await.expect("tls handshake");
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.addr))
            .header("content-type", "application/json");
        if let Some(token) = bearer {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let body = if method == "POST" {
            r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#
        } else {
            ""
        };
        let req = req.body(Full::new(Bytes::from(body))).unwrap();
        let io = TokioIo::new(tls);
        let resp = if h2 {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            send.send_request(req).await.unwrap()
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            send.send_request(req).await.unwrap()
        };
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            body: String::from_utf8(bytes.to_vec()).unwrap(),
            h2,
        }
    }

    async fn whoami(&self, bearer: Option<&str>) -> serde_json::Value {
        let path = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
        let reply = self.request("POST", path, bearer).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        v["status"]["userInfo"].clone()
    }
}

async fn wait_ready(client: &Client) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = client.request("GET", "/readyz", None).await;
        if reply.status == 200 {
            assert_eq!(reply.body, "ok");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "never ready: {} {}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tls_authentication_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("tokens.csv");
    std::fs::write(&token_file, "alice-token,alice,uid-alice,\"dev,ops\"\n").unwrap();
    let kubeconfig_out = dir.path().join("out/kube/config.yaml");
    let data_dir = dir.path().join("data");
    let server = Server::start(
        &data_dir,
        &[
            "--token-auth-file",
            token_file.to_str().unwrap(),
            "-o",
            kubeconfig_out.to_str().unwrap(),
            "--write-kubeconfig-mode",
            "640",
            "--tls-san",
            "skiff.example",
        ],
    );
    let kc = server.kubeconfig();
    let h1 = [b"http/1.1".as_slice()];
    let admin = kc.client(true, &h1);
    wait_ready(&admin).await;

    // The --write-kubeconfig copy is the same file, with the mode asked for.
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(&kubeconfig_out).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o640);
    assert_eq!(
        std::fs::read(&kubeconfig_out).unwrap(),
        std::fs::read(data_dir.join("admin.kubeconfig")).unwrap()
    );

    // No credentials: 401 Status.
    let anon = kc.client(false, &h1);
    let reply = anon.request("GET", "/readyz", None).await;
    assert_eq!((reply.status, reply.body.as_str()), (401, UNAUTHORIZED));

    // A bad bearer token: 401, even though anonymous would also be 401 — and with a client
    // certificate the certificate wins, as upstream's authenticator union does.
    let reply = anon.request("GET", "/version", Some("wrong")).await;
    assert_eq!((reply.status, reply.body.as_str()), (401, UNAUTHORIZED));
    assert_eq!(
        admin.request("GET", "/version", Some("wrong")).await.status,
        200
    );

    // The admin client certificate.
    let me = admin.whoami(None).await;
    assert_eq!(me["username"], "system:admin");
    assert_eq!(
        me["groups"],
        serde_json::json!(["system:masters", "system:authenticated"])
    );

    // A token from --token-auth-file.
    let me = anon.whoami(Some("alice-token")).await;
    assert_eq!(me["username"], "alice");
    assert_eq!(me["uid"], "uid-alice");
    assert_eq!(
        me["groups"],
        serde_json::json!(["dev", "ops", "system:authenticated"])
    );

    // The cluster join token.
    let me = anon.whoami(Some(JOIN_TOKEN)).await;
    assert_eq!(me["username"], "skiff:node-bootstrap");
    assert_eq!(
        me["groups"],
        serde_json::json!(["system:bootstrappers", "system:authenticated"])
    );

    // h2 by ALPN, as kubectl offers it; and h2 preferred when both are offered.
    let h2 = kc.client(true, &[b"h2", b"http/1.1"]);
    let reply = h2.request("GET", "/version", None).await;
    assert!(reply.h2, "h2 was not negotiated");
    assert_eq!(reply.status, 200);
    let v: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        (v["major"].as_str(), v["minor"].as_str()),
        (Some("1"), Some("32"))
    );
    let h2_anon = kc.client(false, &[b"h2"]);
    let reply = h2_anon.request("GET", "/version", Some("wrong")).await;
    assert!(reply.h2);
    assert_eq!((reply.status, reply.body.as_str()), (401, UNAUTHORIZED));
    assert_eq!(
        h2_anon.whoami(Some("alice-token")).await["username"],
        "alice"
    );

    // A client certificate from another CA is refused in the handshake.
    let other = tempfile::tempdir().unwrap();
    let foreign = Server::start(&other.path().join("data"), &[]);
    let mut mixed = foreign.kubeconfig();
    mixed.ca_pem = kc.ca_pem.clone();
    mixed.addr = kc.addr;
    let stranger = mixed.client(true, &h1);
    let tcp = tokio::net::TcpStream::connect(kc.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(stranger.config.clone());
    let refused = match connector.connect(ServerName::from(kc.addr.ip()), tcp).await {
        // TLS 1.3: the client learns of the refusal on its first read.
        Ok(tls) => {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut tls = tls;
            let _ = tls
                .write_all(b"GET /version HTTP/1.1\r\nhost: x\r\n\r\n")
                .await;
            let mut buf = [0u8; 64];
            !matches!(tls.read(&mut buf).await, Ok(n) if n > 0)
        }
        Err(_) => true,
    };
    assert!(refused, "a certificate from another CA was accepted");
    assert!(foreign.stop().success());

    // The server still serves after the failed handshake, then stops cleanly on SIGTERM.
    assert_eq!(admin.request("GET", "/readyz", None).await.status, 200);
    assert!(server.stop().success(), "skiff exits 0 after SIGTERM");
}

#[tokio::test]
async fn restart_reuses_the_cluster_ca() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let first = Server::start(&data_dir, &[]);
    let kc1 = first.kubeconfig();
    wait_ready(&kc1.client(true, &[b"h2"])).await;
    let token = std::fs::read_to_string(data_dir.join("token")).unwrap();
    assert_eq!(token.trim(), JOIN_TOKEN);
    assert!(first.stop().success());

    let second = Server::start(&data_dir, &[]);
    let kc2 = second.kubeconfig();
    assert_eq!(kc1.ca_pem, kc2.ca_pem, "the CA changed across a restart");
    assert_eq!(
        kc1.cert_pem, kc2.cert_pem,
        "the admin certificate changed across a restart"
    );
    // The old kubeconfig's credentials still work against the new process.
    let mut old = kc1;
    old.addr = kc2.addr;
    wait_ready(&old.client(true, &[b"http/1.1"])).await;
    assert!(second.stop().success());
}

#[test]
fn version_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_skiff"))
        .arg("version")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.trim(),
        "skiff version v1.32.4+skiff (kubernetes v1.32.4)"
    );
}

/// A connection's reading side that can be held shut: while it is, nothing is read from the
/// socket, so the server's writes fill the socket's buffers and wait.
struct Gate<S> {
    inner: S,
    shut: Arc<std::sync::Mutex<(bool, Option<std::task::Waker>)>>,
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Gate<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        {
            let mut shut = self.shut.lock().unwrap();
            if shut.0 {
                shut.1 = Some(cx.waker().clone());
                return std::task::Poll::Pending;
            }
        }
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Gate<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type GateHandle = Arc<std::sync::Mutex<(bool, Option<std::task::Waker>)>>;

fn set_gate(gate: &GateHandle, shut: bool) {
    let mut g = gate.lock().unwrap();
    g.0 = shut;
    if !shut {
        if let Some(w) = g.1.take() {
            w.wake();
        }
    }
}

impl Client {
    /// One h2 connection (the client must offer only h2) with flow-control windows large
    /// enough that only the socket holds the server back, and the gate on its reading side.
    async fn h2(
        &self,
    ) -> (
        hyper::client::conn::http2::SendRequest<Full<Bytes>>,
        GateHandle,
    ) {
        // A small receive buffer (no autotuning): the socket fills after a few hundred KiB.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(64 * 1024).unwrap();
        let tcp = socket.connect(self.addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let tls = connector
            .connect(ServerName::from(self.addr.ip()), tcp)
            .await
            .expect("tls handshake");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let gate: GateHandle = Arc::new(std::sync::Mutex::new((false, None)));
        let io = Gate {
            inner: tls,
            shut: gate.clone(),
        };
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(64 << 20)
            .initial_connection_window_size(64 << 20)
            .max_frame_size(1 << 20)
            .handshake(TokioIo::new(io))
            .await
            .unwrap();
        tokio::spawn(conn);
        (send, gate)
    }
}

fn h2_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: String,
) -> http::Request<Full<Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(format!("https://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// An h2 response far larger than the socket's buffers (a 12 MiB list; the client's receive
/// buffer is 64 KiB and its reading side is held shut for a while), then read slowly, arrives
/// whole while other streams of the same connection are answered: the server's h2 writes,
/// gathered before they go out (`coalesce.rs`), wait for the socket and lose nothing. (The
/// unit test `a_full_socket_holds_the_flush_back` is the one that pins the stalled flush.)
#[tokio::test]
async fn a_large_h2_response_reaches_a_slow_reader_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let kc = server.kubeconfig();
    let client = kc.client(true, &[b"h2"]);
    wait_ready(&client).await;
    let (mut send, gate) = client.h2().await;
    // 24 ConfigMaps of 512 KiB: a list of 12 MiB.
    let filler = "x".repeat(512 * 1024);
    for i in 0..24 {
        let body = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("big-{i}")},
            "data": {"blob": filler},
        })
        .to_string();
        let req = h2_request(
            kc.addr,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            body,
        );
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 201);
        resp.into_body().collect().await.unwrap();
    }
    // The list is asked for with the reading side shut: the server writes until the socket
    // is full and must wait for it. Then it is read, with other requests on the connection.
    let list = send.send_request(h2_request(
        kc.addr,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        String::new(),
    ));
    set_gate(&gate, true);
    let list = tokio::spawn(list);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    set_gate(&gate, false);
    let list = list.await.unwrap().unwrap();
    assert_eq!(list.status(), 200);
    let mut body = list.into_body();
    let mut bytes = Vec::new();
    let mut frames = 0;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            bytes.extend_from_slice(&data);
        }
        frames += 1;
        if frames % 64 == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let resp = send
                .send_request(h2_request(kc.addr, "GET", "/version", String::new()))
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.into_body().collect().await.unwrap();
        }
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes).expect("the whole list");
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 24);
    assert!(items
        .iter()
        .all(|i| i["data"]["blob"].as_str() == Some(&filler[..])));
    server.stop();
}
