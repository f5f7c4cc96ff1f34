//! Serving over TLS.
//!
//! Like kube-apiserver's secure serving: one TLS listener that speaks HTTP/1.1 and h2 (chosen by
//! ALPN, `h2` preferred), client certificates requested but optional and verified against the
//! cluster CA, and every request authenticated before it reaches the [`Handler`]. Credentials
//! that are present but wrong are answered here with a 401 `Status`; anonymous requests go on to
//! the handler with `user = None`. Connections are served with upgrades enabled (exec, attach and
//! port-forward switch protocols on HTTP/1.1).

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::{Authenticator, Body, Handler, UserInfo};

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an HTTP/1.1 client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Streams per h2 connection, as Go's (and so kube-apiserver's) default.
const H2_MAX_CONCURRENT_STREAMS: u32 = 250;
/// How long connections may take to finish their requests once shutdown starts.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("reading {what} PEM: {message}")]
    Pem { what: &'static str, message: String },
    #[error("no certificate in {what} PEM")]
    Empty { what: &'static str },
    #[error("tls configuration: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// The crypto provider Skiff uses everywhere (ring).
pub fn crypto_provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the server TLS configuration from the serving certificate chain and key (PEM) and the
/// CA that signs client certificates (PEM, one or more certificates). Client certificates are
/// optional; when given, they must chain to `client_ca_pem`. ALPN offers `h2` then `http/1.1`.
pub fn server_config(
    cert_pem: &[u8],
    key_pem: &[u8],
    client_ca_pem: &[u8],
) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = crypto_provider();
    let chain = parse_certs(cert_pem, "serving certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
        what: "serving key",
        message: e.to_string(),
    })?;
    let mut roots = RootCertStore::empty();
    for ca in parse_certs(client_ca_pem, "client CA")? {
        roots.add(ca)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn parse_certs(pem: &[u8], what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            what,
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty { what });
    }
    Ok(certs)
}

/// Accepts TLS connections on `listener` and serves `handler` on each (HTTP/1.1 and h2), until
/// the listener fails.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    authn: Arc<Authenticator>,
    handler: Arc<H>,
) -> io::Result<()> {
    serve_with_shutdown(listener, tls, authn, handler, std::future::pending()).await
}

/// Like [`serve`], but stops accepting when `shutdown` completes, asks open connections to
/// finish (h2 GOAWAY, HTTP/1.1 close after the current response) and waits for them up to
/// [`SHUTDOWN_GRACE`]; long-running requests (watches) are cut after that.
pub async fn serve_with_shutdown<H: Handler>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    authn: Arc<Authenticator>,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(tls);
    let builder = Arc::new(http_builder());
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) if is_transient(&e) => {
                    // Out of file descriptors and the like: back off rather than spin.
                    tracing::warn!(error = %e, "accept failed; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                Err(e) => return Err(e),
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_connection(
            tcp,
            acceptor.clone(),
            builder.clone(),
            authn.clone(),
            handler.clone(),
            graceful.watcher(),
            peer,
        ));
    }
    drop(listener);
    tracing::debug!(connections = graceful.count(), "draining connections");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::debug!("connections still open after the shutdown grace period");
    }
    Ok(())
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) || e.raw_os_error().is_some_and(|c| c == 23 || c == 24) // ENFILE, EMFILE
}

fn http_builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        // Headers and a small body in one buffer: one TLS record and one write per response,
        // rather than a vectored write that TLS splits up anyway.
        .writev(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_MAX_CONCURRENT_STREAMS);
    builder
}

async fn serve_connection<H: Handler>(
    tcp: TcpStream,
    acceptor: TlsAcceptor,
    builder: Arc<auto::Builder<TokioExecutor>>,
    authn: Arc<Authenticator>,
    handler: Arc<H>,
    watcher: Watcher,
    peer: std::net::SocketAddr,
) {
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "tls handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "tls handshake timed out");
            return;
        }
    };
    // The chain was verified by rustls against the client CA; the user comes from the leaf and
    // is the same for every request on this connection.
    let cert_user: Option<Arc<UserInfo>> = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|leaf| Authenticator::from_client_cert(leaf))
        .map(Arc::new);
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let authn = authn.clone();
        let handler = handler.clone();
        let cert_user = cert_user.clone();
        async move {
            Ok::<_, std::convert::Infallible>(
                dispatch(req, cert_user.as_deref(), &authn, handler).await,
            )
        }
    });
    // h2 carries many streams whose responses are ready together: gather them into fewer
    // TLS records and writes. HTTP/1.1 has one response at a time to send.
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = crate::coalesce::Coalesce::new(stream, h2);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn.into_owned()).await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

async fn dispatch<H: Handler>(
    req: http::Request<Incoming>,
    cert_user: Option<&UserInfo>,
    authn: &Authenticator,
    handler: Arc<H>,
) -> http::Response<Body> {
    let header = match req
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|v| v.to_str())
    {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) if cert_user.is_some() => None,
        Some(Err(_)) => return unauthorized(),
    };
    match authn.authenticate_request(cert_user, header) {
        Ok(user) => handler.call(req, user).await,
        Err(e) => {
            tracing::debug!(method = %req.method(), path = req.uri().path(), error = %e, "unauthorized");
            unauthorized()
        }
    }
}

/// The 401 Status answer.
pub fn unauthorized() -> http::Response<Body> {
    crate::codec::error_response(&skiff_core::status::ApiError::unauthorized())
}
