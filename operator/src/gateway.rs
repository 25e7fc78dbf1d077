//! The parts of Gateway API `gateway.networking.k8s.io/v1` `HTTPRoute` this operator writes and
//! reads, typed. (The `gateway-api` crate would be the ecosystem's choice, but its releases
//! are built on kube 4 and k8s-openapi 0.28, and this crate is on kube 5 and 0.29.) Field names
//! and shapes follow the Gateway API v1 CRD (`config/crd/standard/
//! gateway.networking.k8s.io_httproutes.yaml` of `sigs.k8s.io/gateway-api`), which the tests
//! install; only what is set here is sent, so server-side apply owns nothing else.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Api, Client, CustomResource};
use serde::{Deserialize, Serialize};

/// `HTTPRoute.spec`, named after its kind (the resource's own `spec.httpRoute` is
/// [`crate::api::HttpRouteSpec`]).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gateway.networking.k8s.io",
    version = "v1",
    kind = "HTTPRoute",
    plural = "httproutes",
    namespaced,
    status = "HTTPRouteStatus",
    schema = "disabled",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct HTTPRouteSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parent_refs: Vec<ParentReference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<HttpRouteRule>,
}

/// A Gateway (or one of its listeners) the route attaches to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ParentReference {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpRouteRule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<HttpRouteMatch>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backend_refs: Vec<HttpBackendRef>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpRouteMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<HttpPathMatch>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpPathMatch {
    /// `PathPrefix`, `Exact` or `RegularExpression`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A Service the route sends requests to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct HttpBackendRef {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// `HTTPRoute.status`: what each parent's Gateway controller says of the route.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct HTTPRouteStatus {
    #[serde(default)]
    pub parents: Vec<RouteParentStatus>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    #[serde(default)]
    pub parent_ref: ParentReference,
    #[serde(default)]
    pub controller_name: String,
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// Whether this operator can use HTTPRoutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    Installed,
    /// The apiserver does not serve the Gateway API (its CRDs are not installed).
    NotInstalled,
    /// Installed, but the operator's RBAC does not allow listing HTTPRoutes.
    Forbidden,
}

impl Availability {
    pub fn usable(self) -> bool {
        self == Availability::Installed
    }
}

/// Asks the apiserver once, at start-up, with the list a watch would make (in `namespace`, or
/// in all of them). Other errors fail the start-up, as any apiserver error then does.
pub async fn availability(
    client: &Client,
    namespace: Option<&str>,
) -> Result<Availability, kube::Error> {
    let routes: Api<HTTPRoute> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    match routes
        .list_metadata(&kube::api::ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(Availability::Installed),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Availability::NotInstalled),
        Err(kube::Error::Api(status)) if status.code == 403 => Ok(Availability::Forbidden),
        Err(e) => Err(e),
    }
}
