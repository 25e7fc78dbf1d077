//! Shared helpers of the integration tests. Each test binary uses a subset.
#![allow(dead_code)]

pub mod api_proxy;
pub mod audit;
pub mod binary;
pub mod children;
pub mod conditions;
pub mod convex;
pub mod fixtures;
pub mod jose;
pub mod keys;
pub mod mirror;
pub mod process;
pub mod scenario;
