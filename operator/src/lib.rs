//! workos-convex-auth: wires WorkOS AuthKit tokens into Convex on Kubernetes.
//!
//! # Layout
//!
//! - [`api`]: the `WorkOSConvexAuth` resource; the CRD YAML, the chart's CRD, `render` and the
//!   controller all derive from these types.
//! - [`convex`]: Convex's own rules (issuer matching, token checks) and the config generator.
//! - [`reconcile`]: the pipeline `read → validate → admit → claim hosts → fetch → build → apply
//!   → sync → report`;
//!   the pure steps take no client.
//! - [`controller`]: the kube-runtime wiring around the pipeline (watches, backoff,
//!   housekeeping), the admin server and the operator's metrics (`run`).
//! - [`gateway`]: the Gateway API HTTPRoute, typed, as far as the operator uses it.
//! - [`jwks`]: JWKS documents: sanitising, content types, the guarded fetcher.
//! - [`mirror`]: the JWKS mirror (`proxy` subcommand): cache, refresher, router, metrics.
//! - [`http_serve`]: both HTTP servers (mirror, admin), bounded in connections, time and size.
//! - [`check_token`]: why Convex would reject a token (`check-token`).
//! - [`render`]: the objects for resources in a file, offline (`render`).
//! - [`status_table`]: every resource's conditions and JWKS URL as a table (`status`, `kubectl wca`);
//!   [`generated`]: one resource's generated auth config (`config`); [`kubeconfig`]: the user's
//!   cluster for `status`, `config` and `check-token --resource`.
//! - [`probe`]: one GET that must answer 2xx (`probe`, the chart's `helm test`).
//! - [`cli`]: the command line; [`duration`]: durations as the spec writes them;
//!   [`printable`]: text a terminal shows as written.
pub mod api;
pub mod check_token;
pub mod cli;
pub mod controller;
pub mod convex;
pub mod duration;
pub mod gateway;
pub mod generated;
pub mod http_serve;
pub mod jwks;
pub mod kubeconfig;
pub mod mirror;
pub mod printable;
pub mod probe;
pub mod reconcile;
pub mod render;
pub mod status_table;

/// The image the operator deploys as the mirror unless told otherwise: its own.
pub const DEFAULT_IMAGE: &str = concat!(
    "ghcr.io/workos-convex-auth/workos-convex-auth:",
    env!("CARGO_PKG_VERSION")
);
