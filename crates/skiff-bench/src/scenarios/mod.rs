//! The benchmarks that drive a running server, one file each: pod creates, reads (get and
//! list) and watch delivery. Each returns raw outcomes; `crate::sections` turns them into
//! report sections.

pub(crate) mod cluster;
pub(crate) mod create;
pub(crate) mod reads;
pub(crate) mod watch;
