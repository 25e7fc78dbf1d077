//! The harness crate's tests, one binary: the CRD against the API server, the harness itself,
//! and the chart. `tests/node.rs` stays a binary of its own: it compares the whole host before
//! and after a node, so nothing else may start processes while it runs.

mod api_server;
mod chart;
mod harness;
