//! Skiff's node agent. For now: simulated nodes ([`simulated`]), which register Nodes, renew
//! their Leases and move the pods bound to them through their lifecycle without running
//! containers.

pub mod simulated;
