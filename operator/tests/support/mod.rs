//! Shared helpers of the integration tests. Each test binary uses a subset.
#![allow(dead_code)]

pub mod api_proxy;
pub mod audit;
pub mod convex;
pub mod jose;
pub mod keys;
pub mod mirror;
pub mod process;
