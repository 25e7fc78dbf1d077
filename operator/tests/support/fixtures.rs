//! Typed fixtures, after kube-rs/controller-rs's `src/fixtures.rs`: every test builds its
//! `WorkOSConvexAuth` from the crate's own spec structs, so a renamed or retyped field breaks
//! the tests at compile time, not at the apiserver.
//!
//! JSON stays where a test means the wire, not the type: merge patches (`{"field": null}`
//! removes a field, which no typed value says), and what the CRD must refuse that the typed
//! struct cannot express (conformance.rs, properties.rs).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use workos_convex_auth::api::{
    ClientIdSource, ConvexSpec, GatewayRef, HttpRouteSpec, JwksMode, KeyRef, ProxySpec,
    WorkOSConvexAuth, WorkOSConvexAuthSpec,
};

/// `name` with `spec`: what the tests create or apply.
pub fn resource(name: &str, spec: WorkOSConvexAuthSpec) -> WorkOSConvexAuth {
    WorkOSConvexAuth::new(name, spec)
}

/// A spec with `clientId` and every other field its default (mode Proxy, no Ingress).
pub fn spec(client_id: &str) -> WorkOSConvexAuthSpec {
    WorkOSConvexAuthSpec {
        client_id: Some(client_id.to_string()),
        client_id_from: None,
        auth_domain: None,
        authkit_domain: None,
        algorithm: Default::default(),
        extra_issuers: Vec::new(),
        jwks: Default::default(),
        proxy: Default::default(),
        ingress: Default::default(),
        http_route: None,
        config_map: Default::default(),
        convex: None,
    }
}

/// A spec whose client id is key `key` of Secret `name` (`spec.clientIdFrom.secretKeyRef`).
pub fn from_secret(name: &str, key: &str) -> WorkOSConvexAuthSpec {
    without_client_id(ClientIdSource {
        secret_key_ref: Some(key_ref(name, key)),
        config_map_key_ref: None,
    })
}

/// A spec whose client id is key `key` of ConfigMap `name` (`spec.clientIdFrom.configMapKeyRef`).
pub fn from_config_map(name: &str, key: &str) -> WorkOSConvexAuthSpec {
    without_client_id(ClientIdSource {
        secret_key_ref: None,
        config_map_key_ref: Some(key_ref(name, key)),
    })
}

fn without_client_id(source: ClientIdSource) -> WorkOSConvexAuthSpec {
    WorkOSConvexAuthSpec {
        client_id: None,
        client_id_from: Some(source),
        ..spec("")
    }
}

pub fn key_ref(name: &str, key: &str) -> KeyRef {
    KeyRef {
        name: name.to_string(),
        key: key.to_string(),
    }
}

/// A Gateway parent: `name`, in `namespace` or the route's own.
pub fn parent(name: &str, namespace: Option<&str>) -> GatewayRef {
    GatewayRef {
        name: name.to_string(),
        namespace: namespace.map(str::to_string),
        section_name: None,
    }
}

/// The spec's fields the tests set, one call each, chained from [`spec`].
pub trait SpecExt: Sized {
    /// Any other change, in place.
    fn with(self, change: impl FnOnce(&mut WorkOSConvexAuthSpec)) -> Self;

    /// `spec.jwks.mode: Direct`.
    fn direct(self) -> Self {
        self.with(|s| s.jwks.mode = JwksMode::Direct)
    }

    /// `spec.jwks.mode: Inline`, the keys fetched from `upstream_base`.
    fn inline(self, upstream_base: impl Into<String>) -> Self {
        let base = upstream_base.into();
        self.with(|s| {
            s.jwks.mode = JwksMode::Inline;
            s.jwks.upstream_base = base;
        })
    }

    /// `spec.jwks.upstreamBase`, the mode unchanged.
    fn upstream(self, upstream_base: impl Into<String>) -> Self {
        let base = upstream_base.into();
        self.with(|s| s.jwks.upstream_base = base)
    }

    /// `spec.ingress` enabled for `host`.
    fn ingress(self, host: impl Into<String>) -> Self {
        let host = host.into();
        self.with(|s| {
            s.ingress.enabled = true;
            s.ingress.host = Some(host);
        })
    }

    /// `spec.ingress.className`.
    fn ingress_class(self, class: &str) -> Self {
        let class = class.to_string();
        self.with(|s| s.ingress.class_name = Some(class))
    }

    /// An annotation of `spec.ingress`.
    fn ingress_annotation(self, key: &str, value: &str) -> Self {
        self.with(|s| {
            s.ingress
                .annotations
                .insert(key.to_string(), value.to_string());
        })
    }

    /// `spec.httpRoute` attached to `parents`, for `hostnames`.
    fn http_route(self, parents: Vec<GatewayRef>, hostnames: &[&str]) -> Self {
        self.with(|s| {
            s.http_route = Some(HttpRouteSpec {
                parent_refs: parents,
                hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
                path: None,
            })
        })
    }

    /// `spec.convex`: the deployment at `url`, its admin key in Secret `secret`'s `key`.
    fn convex(self, url: impl Into<String>, secret: &str, key: &str) -> Self {
        let url = url.into();
        self.with(|s| {
            s.convex = Some(ConvexSpec {
                url,
                admin_key_secret_ref: key_ref(secret, key),
            })
        })
    }

    /// `spec.proxy.resources.limits.memory`.
    fn memory_limit(self, memory: &str) -> Self {
        let limits = BTreeMap::from([("memory".to_string(), Quantity(memory.to_string()))]);
        self.proxy(|p| {
            p.resources = Some(ResourceRequirements {
                limits: Some(limits),
                ..Default::default()
            })
        })
    }

    /// A change to `spec.proxy`.
    fn proxy(self, change: impl FnOnce(&mut ProxySpec)) -> Self {
        self.with(|s| change(&mut s.proxy))
    }
}

impl SpecExt for WorkOSConvexAuthSpec {
    fn with(mut self, change: impl FnOnce(&mut WorkOSConvexAuthSpec)) -> Self {
        change(&mut self);
        self
    }
}
