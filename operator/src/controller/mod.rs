//! `workos-convex-auth run`: the kube-runtime controller and its admin server.

mod admin;
mod args;
mod context;
mod housekeeping;
mod leader;
pub mod metrics;
mod reconciler;
mod triggers;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::DeserializeGuard;
use kube::core::PartialObjectMeta;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::utils::{Backoff, ResetTimerBackoff};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Client, Config, ResourceExt};

pub use args::{AdminLimitsArgs, LogFormat, RunArgs};
pub use context::backoff_for;
pub use leader::{LeaderElectionArgs, Leadership};

use crate::api::WorkOSConvexAuth;
use crate::convex::deployment::{DeploymentLimits, Deployments};
use crate::gateway::Availability;
use crate::http_serve::{LimitsError, ServerLimits};
use crate::jwks::{FetchError, FetchLimits, Fetcher};
use crate::reconcile::live::Child;
use crate::reconcile::sync::SyncMemory;
use crate::reconcile::{self, BuildContext, InlineKeyCache, LiveChildren, LiveWriters};

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("cannot configure the Kubernetes client: {0}")]
    Config(String),
    #[error(
        "the WorkOSConvexAuth CRD is not installed in this cluster; install it with\n  kubectl apply --server-side -f crds/workos-convex.io_workosconvexauths.yaml\n(or `workos-convex-auth crd | kubectl apply --server-side -f -`, or the Helm chart)"
    )]
    CrdMissing,
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("policy flags: {0}")]
    Policy(String),
    #[error("leader election flags: {0}")]
    LeaderElection(String),
    #[error(transparent)]
    Fetcher(#[from] FetchError),
    #[error("Convex deployment client: {0}")]
    Deployments(String),
    #[error("admin server on {addr}: {source}")]
    Admin {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("admin server: {0}")]
    AdminLimits(#[from] LimitsError),
}

/// The admin router on the bounded server.
async fn serve_admin_state<F>(
    listener: tokio::net::TcpListener,
    state: admin::AdminState,
    limits: ServerLimits,
    shutdown: F,
) where
    F: std::future::Future<Output = ()> + Send,
{
    let connections = Arc::clone(&state.connections);
    crate::http_serve::serve(
        listener,
        admin::router(state),
        limits,
        connections,
        shutdown,
    )
    .await;
}

/// An Api for `K` in the watched namespace, or in all namespaces.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<Client, ControllerError> {
    let config = match kubeconfig {
        Some(path) => {
            let kc =
                Kubeconfig::read_from(path).map_err(|e| ControllerError::Config(e.to_string()))?;
            Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .map_err(|e| ControllerError::Config(e.to_string()))?
        }
        None => Config::infer()
            .await
            .map_err(|e| ControllerError::Config(e.to_string()))?,
    };
    // A 429 or 503 fails the request at once instead of being retried inside the client (up to
    // 15 times, minutes in all): the reconcile is then retried with the resource's backoff and a
    // watch with kube-runtime's, so a throttled apiserver shows in `wca_reconcile_errors_total`
    // and `wca_watch_errors_total`, and no reconcile holds a worker while it waits.
    let mut config = config;
    config.default_retry = false;
    // With a kubeconfig, kube takes HTTPS_PROXY from the environment for the API server too.
    // That variable is the egress proxy for WorkOS and Convex (chart egress.*); the API server
    // is reached directly, as in the cluster, where kube ignores the variable. A proxy-url
    // written in the kubeconfig itself stays.
    if config
        .proxy_url
        .as_ref()
        .is_some_and(proxy_from_environment)
    {
        config.proxy_url = None;
    }
    Client::try_from(config).map_err(|e| ControllerError::Config(e.to_string()))
}

/// Whether `proxy` is the value of `HTTPS_PROXY`/`https_proxy` (as kube read it).
fn proxy_from_environment<U: std::str::FromStr + PartialEq>(proxy: &U) -> bool {
    ["HTTPS_PROXY", "https_proxy"].iter().any(|name| {
        std::env::var(name)
            .ok()
            .and_then(|value| value.trim().parse::<U>().ok())
            .is_some_and(|uri| &uri == proxy)
    })
}

/// The backoff after a watch error. kube-runtime shares one backoff between all the watches
/// of a controller (seven here): every error of any of them pauses them all. Its default (0.8 s
/// doubling to 30 s) then makes recovery from an apiserver restart take minutes, as each watch
/// in turn fails once more (410 Expired) before it lists again. Capped at 2 s, the shared
/// backoff still bounds the retries of all watches together to about one every 2 s during an
/// outage, and recovery takes seconds (tests/it/control_plane_faults.rs).
fn watch_backoff() -> ResetTimerBackoff<WatchBackoff> {
    ResetTimerBackoff::new(WatchBackoff::default(), Duration::from_secs(30))
}

/// Doubling from 250 ms to 2 s; [`ResetTimerBackoff`] starts it over after 30 s without errors.
#[derive(Debug)]
struct WatchBackoff {
    next: Duration,
}

impl WatchBackoff {
    const FIRST: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(2);
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (wait * 2).min(Self::MAX);
        Some(wait)
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// The watch of a child kind, each object trimmed to what the reconcile reads
/// ([`Child::trim`]) before it is stored.
fn owned_watch<K: Child>(
    client: &Client,
    ns: Option<&str>,
    config: &watcher::Config,
) -> impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static {
    watcher(scoped::<K>(client, ns), config.clone()).modify(K::trim)
}

/// Says at start-up whether `spec.httpRoute` can be served, and what to do if not.
fn log_gateway_api(gateway_api: Availability) {
    match gateway_api {
        Availability::Installed => {
            tracing::info!("Gateway API installed: watching HTTPRoutes (spec.httpRoute)")
        }
        Availability::NotInstalled => tracing::info!(
            "Gateway API CRDs not installed: HTTPRoutes are not watched, and a resource with spec.httpRoute reports it; install them and restart to use spec.httpRoute"
        ),
        Availability::Forbidden => tracing::warn!(
            "Gateway API installed, but this operator may not list HTTPRoutes (RBAC): spec.httpRoute is unavailable until its role allows get, list, watch, create, patch and delete on httproutes.gateway.networking.k8s.io"
        ),
    }
}

/// What every reconcile shares: the clients, the policy, the build context, the caches.
fn reconcile_context(
    client: &Client,
    args: &RunArgs,
    reporter: Reporter,
    policy: reconcile::Policy,
    live: LiveChildren,
) -> Result<reconcile::Context, ControllerError> {
    Ok(reconcile::Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), reporter),
        fetcher: Fetcher::new(FetchLimits::for_reconcile(), policy.upstream.clone())?,
        deployments: Deployments::new(policy.convex.clone(), DeploymentLimits::for_reconcile())
            .map_err(ControllerError::Deployments)?,
        synced: SyncMemory::default(),
        build: BuildContext {
            default_image: args.proxy_image.clone(),
            mirror_upstream: policy.upstream.clone(),
            mirror_network_policy: args.mirror_network_policy(),
            mirror_pod: policy.mirror_pod.clone(),
            cluster_domain: args.cluster_domain.clone(),
            egress: policy.upstream.egress.clone(),
        },
        secret_resync: args.secret_resync,
        inline_keys: InlineKeyCache::default(),
        policy,
        live,
    })
}

/// ConfigMaps named by spec.clientIdFrom are not ours (no labels): watch all and map back, by
/// name only: a metadata watch, so what tenants store in ConfigMaps never reaches the
/// operator's memory (the client id is read with a GET when a resource reconciles).
fn watch_referenced_config_maps(
    controller: Controller<DeserializeGuard<WorkOSConvexAuth>>,
    referencing: kube::runtime::reflector::Store<DeserializeGuard<WorkOSConvexAuth>>,
    client: &Client,
    ns: Option<&str>,
    watch: watcher::Config,
) -> Controller<DeserializeGuard<WorkOSConvexAuth>> {
    let config_map_names = config_map_names(client, ns, watch);
    controller.watches_stream(config_map_names, move |cm| {
        let (cm_ns, cm_name) = (cm.namespace(), cm.name_any());
        referencing
            .state()
            .into_iter()
            .filter(|guard| {
                guard.0.as_ref().is_ok_and(|r| {
                    r.namespace() == cm_ns
                        && r.spec
                            .client_id_from
                            .as_ref()
                            .and_then(|s| s.config_map_key_ref.as_ref())
                            .is_some_and(|k| k.name == cm_name)
                })
            })
            .map(|guard| ObjectRef::from_obj(&*guard))
            .collect::<Vec<_>>()
    })
}

/// Every ConfigMap in scope as it changes, by name only.
fn config_map_names(
    client: &Client,
    ns: Option<&str>,
    watch: watcher::Config,
) -> impl futures::Stream<Item = Result<PartialObjectMeta<ConfigMap>, watcher::Error>> + Send + 'static
{
    watcher(scoped::<PartialObjectMeta<ConfigMap>>(client, ns), watch).touched_objects()
}

/// What the controller's queue reports: a watch (or its re-list) failed, which kube-runtime
/// retries; until it works again no change reaches the reconciles, so readiness reports it.
/// Reconcile failures are logged (with their backoff) by the error policy.
fn note_queue_result<T, E: std::error::Error + 'static>(
    result: Result<T, kube::runtime::controller::Error<E, watcher::Error>>,
    watch_health: &housekeeping::WatchHealth,
    metrics: &metrics::Metrics,
) {
    match result {
        Err(kube::runtime::controller::Error::QueueError(error)) => {
            if housekeeping::crd_missing(&error) {
                tracing::error!(%error, "the WorkOSConvexAuth CRD was removed from the cluster: nothing is reconciled and /readyz fails until it is installed again (kubectl apply --server-side -f crds/workos-convex.io_workosconvexauths.yaml, or the Helm chart)");
            } else {
                tracing::warn!(%error, "watch failed; retrying");
            }
            watch_health.failed();
            metrics.watch_failed();
        }
        Err(error) => tracing::debug!(%error, "reconcile queue"),
        Ok(_) => {}
    }
}

/// Registers the watch of every child kind, each filling its store in [`LiveChildren`] and
/// triggering its owner's reconcile. Every writer is named without `..`: a kind added to
/// [`LiveWriters`] does not compile until it is watched here.
fn watch_children(
    controller: Controller<DeserializeGuard<WorkOSConvexAuth>>,
    writers: LiveWriters,
    client: &Client,
    ns: Option<&str>,
    owned: &watcher::Config,
    routes: bool,
) -> Controller<DeserializeGuard<WorkOSConvexAuth>> {
    let LiveWriters {
        config_maps,
        deployments,
        services,
        pod_disruption_budgets,
        ingresses,
        http_routes,
        network_policies,
    } = writers;
    let own = OwnedWatch { client, ns, owned };
    let controller = own.add(controller, config_maps);
    let controller = own.add(controller, deployments);
    let controller = own.add(controller, services);
    let controller = own.add(controller, pod_disruption_budgets);
    let controller = own.add(controller, ingresses);
    let controller = own.add(controller, network_policies);
    // Without the Gateway API there is nothing to watch (its store stays empty and unused).
    if routes {
        own.add(controller, http_routes)
    } else {
        controller
    }
}

/// How the controller watches its children: labelled as ours, in its namespace scope.
struct OwnedWatch<'a> {
    client: &'a Client,
    ns: Option<&'a str>,
    owned: &'a watcher::Config,
}

impl OwnedWatch<'_> {
    /// `controller` also watching the children of kind `K`, filling `writer`'s store.
    fn add<K: Child>(
        &self,
        controller: Controller<DeserializeGuard<WorkOSConvexAuth>>,
        writer: reflector::store::Writer<K>,
    ) -> Controller<DeserializeGuard<WorkOSConvexAuth>> {
        controller.owns_stream(triggers::reflected(
            writer,
            owned_watch::<K>(self.client, self.ns, self.owned),
        ))
    }
}

/// Fails with install instructions when the CRD is missing, instead of retrying a watch forever.
pub async fn check_crd(client: &Client, namespace: Option<&str>) -> Result<(), ControllerError> {
    match scoped::<WorkOSConvexAuth>(client, namespace)
        .list(&ListParams::default().limit(1))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Err(ControllerError::CrdMissing),
        Err(e) => Err(e.into()),
    }
}

/// Runs the controller until SIGTERM or Ctrl-C.
pub async fn run(args: RunArgs) -> Result<(), ControllerError> {
    let client = client(args.kubeconfig.as_deref()).await?;
    run_with_client(client, args).await
}

/// Runs the controller with a ready client (tests pass their own).
pub async fn run_with_client(client: Client, args: RunArgs) -> Result<(), ControllerError> {
    // Before anything touches the cluster: a bad flag is the operator's mistake to fix first.
    let admin_limits = args.admin_limits.to_limits()?;
    args.leader_election
        .check()
        .map_err(ControllerError::LeaderElection)?;
    let ns = args.namespace.as_deref();
    check_crd(&client, ns).await?;
    let policy = args.policy().map_err(ControllerError::Policy)?;
    let election = args
        .leader_election
        .enabled
        .then(|| leader::Election::start(client.clone(), &args.leader_election));
    let leadership = election
        .as_ref()
        .map_or_else(|| Arc::new(Leadership::always()), |e| e.leadership.clone());
    // HTTPRoutes are watched only where the apiserver serves them: clusters without the
    // Gateway API CRDs run everything else.
    let gateway_api = crate::gateway::availability(&client, ns).await?;
    log_gateway_api(gateway_api);
    // The children's watch caches: filled by the watches below, read by every reconcile.
    let (live, writers) = LiveChildren::with_routes(gateway_api.usable());
    let admin_connections = Arc::<crate::http_serve::ConnectionStats>::default();
    let metrics = Arc::new(metrics::Metrics::new(
        leadership.clone(),
        admin_connections.clone(),
    ));
    let reconcile_ctx = reconcile_context(&client, &args, reporter(), policy, live)?;
    let ctx = Arc::new(
        context::Shared::new(reconcile_ctx, metrics.clone(), leadership.clone())
            .with_namespace_share(args.namespace_share()),
    );
    let controller = controller(&client, &args, writers, &leadership, gateway_api.usable());

    let ready = Arc::new(AtomicBool::new(false));
    let watch_health = Arc::new(housekeeping::WatchHealth::default());
    let store = controller.store();
    tokio::spawn(housekeeping::run(
        store,
        ctx.clone(),
        watch_health.clone(),
        ready.clone(),
    ));
    let admin_state = admin::AdminState {
        ready,
        metrics,
        connections: admin_connections,
    };
    let admin = spawn_admin(args.admin_addr, admin_state, admin_limits)?;
    tracing::info!(namespace = ns.unwrap_or("(all)"), admin = %args.admin_addr, "controller starting");

    run_until_shutdown(controller, ctx, &watch_health).await;
    if let Some(election) = election {
        election.stop(std::time::Duration::from_secs(5)).await;
    }
    admin.abort();
    tracing::info!("controller stopped");
    Ok(())
}

/// Reconciles until SIGTERM or Ctrl-C, noting each queue result for the health and metrics.
async fn run_until_shutdown(
    controller: Controller<DeserializeGuard<WorkOSConvexAuth>>,
    ctx: Arc<context::Shared>,
    watch_health: &housekeeping::WatchHealth,
) {
    let ctx_metrics = ctx.metrics.clone();
    controller
        .shutdown_on_signal()
        .run(reconciler::reconcile, reconciler::error_policy, ctx)
        .for_each(|result| {
            note_queue_result(result, watch_health, &ctx_metrics);
            std::future::ready(())
        })
        .await;
}

/// How the operator signs its Events: `POD_NAME` tells the replicas apart.
fn reporter() -> Reporter {
    Reporter {
        controller: "workos-convex-auth".into(),
        instance: std::env::var("POD_NAME").ok(),
    }
}

/// The controller: the resources' watch, every child's, the referenced ConfigMaps', and how it
/// queues.
fn controller(
    client: &Client,
    args: &RunArgs,
    writers: LiveWriters,
    leadership: &Leadership,
    routes: bool,
) -> Controller<DeserializeGuard<WorkOSConvexAuth>> {
    let ns = args.namespace.as_deref();
    // Lists are consistent reads (the default), not "any" (`resourceVersion=0`): after an
    // apiserver restart its watch cache can list an older resourceVersion than it can watch
    // from, and a watcher listing "any" then gets 410 Expired again and again and never
    // catches up (seen in tests/it/control_plane_faults.rs). Since Kubernetes 1.31 consistent
    // lists are served from the watch cache too.
    let watch = watcher::Config::default();
    let owned = watch.clone().labels(&format!(
        "app.kubernetes.io/managed-by={}",
        crate::reconcile::names::APP_NAME
    ));
    let (resources, triggers) = triggers::reflect_and_trigger(watcher(
        scoped::<DeserializeGuard<WorkOSConvexAuth>>(client, ns),
        watch.clone(),
    ));
    let controller = Controller::for_stream(triggers, resources);
    let controller = watch_children(controller, writers, client, ns, &owned, routes)
        // A new leader looks at every resource: changes made while it followed were not reconciled.
        .reconcile_all_on(leadership.on_becoming_leader())
        .trigger_backoff(watch_backoff())
        .with_config(
            kube::runtime::controller::Config::default()
                .concurrency(args.max_concurrent_reconciles),
        );
    let store = controller.store();
    watch_referenced_config_maps(controller, store, client, ns, watch)
}

/// Binds the admin server (health, readiness, metrics) and serves it until Ctrl-C.
fn spawn_admin(
    addr: std::net::SocketAddr,
    state: admin::AdminState,
    limits: ServerLimits,
) -> Result<tokio::task::JoinHandle<()>, ControllerError> {
    let listener =
        crate::http_serve::bind(addr).map_err(|source| ControllerError::Admin { addr, source })?;
    Ok(tokio::spawn(async move {
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        serve_admin_state(listener, state, limits, shutdown).await;
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ConfigMaps a tenant stores never reach the operator whole: their watch asks the
    /// apiserver for metadata only (`PartialObjectMetadataList`, then `PartialObjectMetadata`
    /// for the watch), not for full objects it would trim. kube sends that Accept header for an
    /// `Api<PartialObjectMeta<_>>`; this pins it, so a change to a plain `Api<ConfigMap>`
    /// watch fails here.
    #[tokio::test]
    async fn the_config_map_watch_asks_for_metadata_only() {
        let accepts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = accepts.clone();
        let service = tower::service_fn(move |request: http::Request<kube::client::Body>| {
            let accept = request
                .headers()
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            seen.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((request.uri().path().to_string(), accept));
            async {
                let empty = r#"{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadataList","metadata":{"resourceVersion":"1"},"items":[]}"#;
                Ok::<_, std::convert::Infallible>(http::Response::new(kube::client::Body::from(
                    empty.as_bytes().to_vec(),
                )))
            }
        });
        let client = Client::new(service, "default");
        let names = config_map_names(&client, Some("apps"), watcher::Config::default());
        let mut names = std::pin::pin!(names);
        let _ = tokio::time::timeout(Duration::from_millis(200), names.next()).await;
        let accepts = accepts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let (path, accept) = accepts.first().expect("the watch lists first");
        assert_eq!(path, "/api/v1/namespaces/apps/configmaps");
        assert!(
            accept.contains("as=PartialObjectMetadataList"),
            "the list asks for full ConfigMaps: Accept {accept:?}"
        );
    }

    #[test]
    fn the_watch_backoff_doubles_to_two_seconds_and_starts_over() {
        let mut backoff = WatchBackoff::default();
        let waits: Vec<u64> = (&mut backoff)
            .take(6)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .collect();
        assert_eq!(waits, [250, 500, 1000, 2000, 2000, 2000]);
        backoff.reset();
        assert_eq!(backoff.next(), Some(Duration::from_millis(250)));
    }
}
