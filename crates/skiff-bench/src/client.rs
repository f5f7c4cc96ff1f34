//! The load generator's HTTPS client: rustls (ring) with the admin client certificate, and one
//! hyper connection per simulated client, HTTP/1.1 keep-alive or h2 as chosen by ALPN, so that
//! each figure says exactly how many connections carried it. The pod-create load uses the lean
//! connections of [`lean`] instead, over the same TLS set-up.

pub(crate) mod h1;
pub(crate) mod lean;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context as _};
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::kubeconfig::Credentials;

/// Which HTTP version a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Http1,
    H2,
}

/// Where the server is and how to authenticate to it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    addr: SocketAddr,
    authority: String,
    server_name: ServerName<'static>,
    h1: TlsConnector,
    h2: TlsConnector,
}

impl Endpoint {
    /// Builds TLS configurations from kubeconfig credentials.
    pub(crate) fn new(creds: &Credentials) -> anyhow::Result<Self> {
        let authority = creds.authority()?.to_string();
        let addr: SocketAddr = authority
            .parse()
            .with_context(|| format!("server {authority:?} is not an IP:port"))?;
        let server_name = ServerName::IpAddress(addr.ip().into());
        Ok(Endpoint {
            addr,
            authority,
            server_name,
            h1: TlsConnector::from(Arc::new(tls_config(creds, b"http/1.1")?)),
            h2: TlsConnector::from(Arc::new(tls_config(creds, b"h2")?)),
        })
    }

    /// The same credentials and server name aimed at another port of the same address: a
    /// baseline server that presents the same certificate.
    pub(crate) fn with_port(&self, port: u16) -> Endpoint {
        let addr = SocketAddr::new(self.addr.ip(), port);
        Endpoint {
            addr,
            authority: addr.to_string(),
            ..self.clone()
        }
    }

    /// The server's `host:port`.
    pub(crate) fn authority(&self) -> &str {
        &self.authority
    }

    /// Opens a TCP connection (no Nagle delay) and completes the TLS handshake, offering `proto`
    /// by ALPN; fails unless the server chose it.
    pub(crate) async fn connect_tls(&self, proto: Proto) -> anyhow::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connecting to {}", self.addr))?;
        tcp.set_nodelay(true)?;
        let connector = match proto {
            Proto::Http1 => &self.h1,
            Proto::H2 => &self.h2,
        };
        let tls = connector
            .connect(self.server_name.clone(), tcp)
            .await
            .context("TLS handshake")?;
        if proto == Proto::H2 && tls.get_ref().1.alpn_protocol() != Some(b"h2") {
            bail!("the server did not agree to h2 by ALPN");
        }
        Ok(tls)
    }

    /// Opens a new connection.
    pub(crate) async fn connect(&self, proto: Proto) -> anyhow::Result<Conn> {
        let io = TokioIo::new(self.connect_tls(proto).await?);
        let sender = match proto {
            Proto::Http1 => {
                let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Sender::H1(sender)
            }
            Proto::H2 => {
                let (sender, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                Sender::H2(sender)
            }
        };
        Ok(Conn {
            sender,
            authority: self.authority.clone(),
        })
    }
}

fn tls_config(creds: &Credentials, alpn: &[u8]) -> anyhow::Result<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&creds.ca_pem) {
        roots.add(cert.context("CA certificate PEM")?)?;
    }
    let chain = CertificateDer::pem_slice_iter(&creds.client_cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .context("client certificate PEM")?;
    if chain.is_empty() {
        bail!("kubeconfig client certificate holds no certificate");
    }
    let key = PrivateKeyDer::from_pem_slice(&creds.client_key_pem).context("client key PEM")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One client connection. h2 connections may be cloned to share streams.
pub(crate) struct Conn {
    sender: Sender,
    authority: String,
}

impl Clone for Conn {
    /// Shares an h2 connection (a new stream per request). Panics for HTTP/1.1, which carries
    /// one request at a time.
    fn clone(&self) -> Self {
        match &self.sender {
            Sender::H2(s) => Conn {
                sender: Sender::H2(s.clone()),
                authority: self.authority.clone(),
            },
            Sender::H1(_) => panic!("an HTTP/1.1 connection cannot be shared"),
        }
    }
}

impl Conn {
    /// Sends a request and returns the response with its body still streaming.
    pub(crate) async fn send(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<Response<Incoming>> {
        let uri = match self.sender {
            Sender::H1(_) => path.to_string(),
            Sender::H2(_) => format!("https://{}{}", self.authority, path),
        };
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT, "application/json");
        if matches!(self.sender, Sender::H1(_)) {
            req = req.header(header::HOST, &self.authority);
        }
        if let Some(ct) = content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        let req = req.body(Full::new(body))?;
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await.context("connection closed")?;
                s.send_request(req).await?
            }
            Sender::H2(s) => {
                s.ready().await.context("connection closed")?;
                s.send_request(req).await?
            }
        };
        Ok(resp)
    }

    /// Sends a request and reads the whole response body.
    pub(crate) async fn call(
        &mut self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let resp = self.send(method, path, content_type, body).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    /// GET returning the body, failing unless the status is 200.
    pub(crate) async fn get_ok(&mut self, path: &str) -> anyhow::Result<Bytes> {
        let (status, body) = self.call(Method::GET, path, None, Bytes::new()).await?;
        expect_status(path, status, &body, &[StatusCode::OK])?;
        Ok(body)
    }
}

/// An error naming the request and the start of the body unless `status` is one of `ok`.
pub(crate) fn expect_status(
    what: &str,
    status: StatusCode,
    body: &[u8],
    ok: &[StatusCode],
) -> anyhow::Result<()> {
    if ok.contains(&status) {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    Err(anyhow!("{what}: HTTP {status}: {}", text.trim()))
}
