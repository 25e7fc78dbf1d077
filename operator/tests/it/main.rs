//! The crate's integration tests, one binary (one link step): each module was a test binary of
//! its own. Tests against the API server share one control plane (`ControlPlane::shared`), each
//! in its own namespace. The images and the real node are in `tests/e2e/`.

#[path = "../support/mod.rs"]
mod support;

mod architecture_map;
mod chart_rbac;
mod chart_values;
mod check_token;
mod check_token_cli;
mod check_token_resource;
mod conformance;
mod control_plane_faults;
mod controller;
mod controller_binary;
mod convex_package;
mod convex_sync;
mod crd_drift;
mod drift;
mod egress_proxy;
mod function_length;
mod gateway_api;
mod gitops_health;
mod golden;
mod kubectl_plugin;
mod leader_election;
mod mirror_args;
mod module_cycles;
mod monitoring;
mod oldest_kubernetes;
mod pod_template;
mod probe;
mod properties;
mod proxy_faults;
mod proxy_fetcher;
mod proxy_serving;
mod proxy_tokens;
mod release_workflow;
mod slowloris;
mod tenancy;
