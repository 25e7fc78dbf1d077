//! Shared helpers of the proxy integration tests. Each test binary uses a subset.
#![allow(dead_code)]

pub mod jose;
pub mod keys;
pub mod mirror;
pub mod process;
