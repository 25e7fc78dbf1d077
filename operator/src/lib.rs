//! workos-convex-auth: wires WorkOS AuthKit tokens into Convex on Kubernetes.
//!
//! `api` is the custom resource; `convex` holds Convex's own rules and the config generator;
//! `reconcile` turns a resource into the objects to apply; `jwks` and `proxy` are the mirror.
pub mod api;
pub mod duration;
pub mod jwks;
pub mod proxy;
