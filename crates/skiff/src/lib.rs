//! The `skiff` binary's library: server wiring, the cluster PKI and kubeconfigs. The binary
//! (`main.rs`) is its command line; tests and the test kit start servers through [`server::run`].

pub mod alloc;
pub mod files;
pub mod kubeconfig;
pub mod pki;
pub mod server;
pub mod version;
