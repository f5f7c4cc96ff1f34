//! Table output.
