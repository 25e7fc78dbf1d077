//! Shared helpers of the integration tests. Each test binary uses a subset.
#![allow(dead_code)]

pub mod api_proxy;
pub mod jose;
pub mod keys;
pub mod mirror;
pub mod process;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

/// Who holds Lease `name`, if anyone.
pub async fn lease_holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .ok()??
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}
