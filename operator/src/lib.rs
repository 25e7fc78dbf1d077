//! workos-convex-auth: wires WorkOS AuthKit tokens into Convex on Kubernetes.
//!
//! `api` is the custom resource; `convex` holds Convex's own rules and the config generator;
//! `reconcile` turns a resource into the objects to apply; `jwks` and `proxy` are the mirror;
//! `http_serve` runs both HTTP servers (mirror, admin) with bounds on what a client can hold.
pub mod api;
pub mod check_token;
pub mod cli;
pub mod controller;
pub mod convex;
pub mod duration;
pub mod http_serve;
pub mod jwks;
pub mod mirror;
pub mod reconcile;
pub mod render;

/// The image the operator deploys as the mirror unless told otherwise: its own.
pub const DEFAULT_IMAGE: &str = concat!(
    "ghcr.io/workos-convex-auth/workos-convex-auth:",
    env!("CARGO_PKG_VERSION")
);
