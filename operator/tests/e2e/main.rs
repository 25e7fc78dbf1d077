//! The real-node part, one binary: the image archives and the end-to-end tests on a real
//! single-node cluster (`common`: what they share; one module per scenario). They need the machine to themselves (one node per machine, under a
//! lock), so they stay out of `tests/it/`, whose tests run side by side.

#[path = "../support/mod.rs"]
mod support;

mod chart;
mod common;
mod failover;
mod gateway;
mod image;
mod placement;
mod release;
mod rollout;
mod serving;
