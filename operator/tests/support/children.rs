//! Every child of a resource, found by walking `ChildKind::ALL` with an exhaustive match: a new
//! child kind does not compile here until the tests can list it, so "every child" in a test
//! cannot silently miss one.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams};
use kube::{Client, Resource, ResourceExt};
use workos_convex_auth::gateway::HTTPRoute;
use workos_convex_auth::reconcile::live::ChildKind;

/// `(name, resourceVersion)` of each object of `kind` in `ns` that `params` selects; none for a
/// kind the apiserver does not serve (HTTPRoute without the Gateway API's CRDs).
pub async fn list(
    client: &Client,
    ns: &str,
    kind: ChildKind,
    params: &ListParams,
) -> Vec<(String, String)> {
    match kind {
        ChildKind::ConfigMap => versions::<ConfigMap>(client, ns, params).await,
        ChildKind::Deployment => versions::<Deployment>(client, ns, params).await,
        ChildKind::Service => versions::<Service>(client, ns, params).await,
        ChildKind::PodDisruptionBudget => versions::<PodDisruptionBudget>(client, ns, params).await,
        ChildKind::Ingress => versions::<Ingress>(client, ns, params).await,
        ChildKind::HttpRoute => versions::<HTTPRoute>(client, ns, params).await,
        ChildKind::NetworkPolicy => versions::<NetworkPolicy>(client, ns, params).await,
    }
}

async fn versions<K>(client: &Client, ns: &str, params: &ListParams) -> Vec<(String, String)>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    match Api::<K>::namespaced(client.clone(), ns).list(params).await {
        Ok(list) => list
            .items
            .iter()
            .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
            .collect(),
        Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
        Err(e) => panic!("listing {} in {ns}: {e}", K::kind(&())),
    }
}
