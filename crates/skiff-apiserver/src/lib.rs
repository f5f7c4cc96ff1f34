//! Skiff's Kubernetes API server.
//!
//! [`ApiServer`] turns HTTP requests into store operations with Kubernetes semantics; [`serve`]
//! runs it over TLS with client-certificate and bearer-token authentication.

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;

pub mod authn;
pub mod tls;

pub use authn::{Authenticator, UserInfo};
pub use tls::serve;

/// A response body: full or streamed (watch).
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// Something that answers authenticated requests; implemented by [`ApiServer`].
pub trait Handler: Send + Sync + 'static {
    /// `user` is `None` for an anonymous request.
    fn call(
        self: Arc<Self>,
        req: http::Request<hyper::body::Incoming>,
        user: Option<UserInfo>,
    ) -> BoxFuture<'static, http::Response<Body>>;
}

mod coalesce;
pub mod codec;
pub mod crds;
pub mod discovery;
pub mod fieldvalidation;
mod lifecycle;
pub mod list;
pub mod metrics;
pub mod objects;
pub mod openapi;
pub mod openapi_v2;
mod priority;
pub mod recent;
pub mod request;
pub mod reviews;
pub mod server;
pub mod services;
#[cfg(test)]
mod test_store;
pub mod warnings;
mod watch;

pub use server::{ApiOptions, ApiServer, KUBERNETES_VERSION};
