//! Serving over TLS.

use std::sync::Arc;

use crate::{Authenticator, Handler};

/// Accepts TLS connections on `listener` and serves `handler` on each (HTTP/1.1 and h2).
pub async fn serve<H: Handler>(
    _listener: tokio::net::TcpListener,
    _tls: Arc<rustls::ServerConfig>,
    _authn: Arc<Authenticator>,
    _handler: Arc<H>,
) -> std::io::Result<()> {
    Ok(())
}
