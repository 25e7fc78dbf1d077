//! The children as the controller's watches last saw them, and what this process last applied
//! to each: `apply` reads a child from here instead of GETting it, and skips the write when
//! neither the desired object nor the live one changed since its last apply.
//!
//! The stores are kube-runtime reflector stores, filled by the same watches that trigger the
//! owner's reconcile (`Controller::owns_stream`), so they hold the objects labelled
//! `app.kubernetes.io/managed-by: workos-convex-auth`. An object without that label is never
//! here: the apply then learns of it from a 409 on create.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use crate::gateway::HTTPRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Resource;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::hosts::{HostClaim, normalise};

/// Declares [`ChildKind`] and [`ChildKind::ALL`] from one list: the list of every kind cannot
/// miss one.
macro_rules! child_kinds {
    ($($kind:ident),+ $(,)?) => {
        /// The kinds of children.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ChildKind {
            $($kind),+
        }

        impl ChildKind {
            /// Every kind, in declaration order (tests walk it to find every child).
            pub const ALL: &'static [ChildKind] = &[$(ChildKind::$kind),+];
        }
    };
}

child_kinds!(
    ConfigMap,
    Deployment,
    Service,
    PodDisruptionBudget,
    Ingress,
    HttpRoute,
    NetworkPolicy,
);

impl ChildKind {
    /// The API resource, plural, as RBAC rules name it.
    pub fn resource(self) -> &'static str {
        match self {
            ChildKind::ConfigMap => "configmaps",
            ChildKind::Deployment => "deployments",
            ChildKind::Service => "services",
            ChildKind::PodDisruptionBudget => "poddisruptionbudgets",
            ChildKind::Ingress => "ingresses",
            ChildKind::HttpRoute => "httproutes",
            ChildKind::NetworkPolicy => "networkpolicies",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChildKind::ConfigMap => "ConfigMap",
            ChildKind::Deployment => "Deployment",
            ChildKind::Service => "Service",
            ChildKind::PodDisruptionBudget => "PodDisruptionBudget",
            ChildKind::Ingress => "Ingress",
            ChildKind::HttpRoute => "HTTPRoute",
            ChildKind::NetworkPolicy => "NetworkPolicy",
        }
    }
}

/// A kind of child, and where its live objects are kept.
pub trait Child:
    Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    const KIND: ChildKind;
    fn store(live: &LiveChildren) -> &Store<Self>;
    /// Drops what no step reads from the cache, before the object is stored. The stores hold
    /// every object with our `managed-by` label, and any tenant can put that label on objects
    /// of its own: what is kept per object must not grow with what the tenant stores.
    fn trim(&mut self);
}

macro_rules! child {
    ($type:ty, $kind:ident, $field:ident, |$object:ident| $trim:block) => {
        impl Child for $type {
            const KIND: ChildKind = ChildKind::$kind;
            fn store(live: &LiveChildren) -> &Store<Self> {
                &live.$field
            }
            fn trim(&mut self) {
                trim_metadata(self.meta_mut());
                let $object = self;
                $trim
            }
        }
    };
}

// apply reads metadata (owner references, resourceVersion, labels); the findings read a
// Deployment's status and an HTTPRoute's parents; the host claims read the hosts.
child!(ConfigMap, ConfigMap, config_maps, |cm| {
    cm.data = None;
    cm.binary_data = None;
});
child!(Deployment, Deployment, deployments, |deployment| {
    deployment.spec = None;
});
child!(Service, Service, services, |service| {
    service.spec = None;
    service.status = None;
});
child!(
    PodDisruptionBudget,
    PodDisruptionBudget,
    pod_disruption_budgets,
    |pdb| {
        pdb.spec = None;
        pdb.status = None;
    }
);
child!(Ingress, Ingress, ingresses, |ingress| {
    if let Some(spec) = &mut ingress.spec {
        spec.default_backend = None;
        spec.tls = None;
        for rule in spec.rules.iter_mut().flatten() {
            rule.http = None;
        }
    }
    ingress.status = None;
});
child!(NetworkPolicy, NetworkPolicy, network_policies, |policy| {
    policy.spec = None;
});
child!(HTTPRoute, HttpRoute, http_routes, |route| {
    route.spec.rules.clear();
    route.spec.parent_refs.clear();
});

/// The labels the operator sets and selects by; others are dropped from the caches.
const KEPT_LABELS: [&str; 4] = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
];

fn trim_metadata(meta: &mut kube::api::ObjectMeta) {
    meta.managed_fields = None;
    meta.annotations = None;
    meta.finalizers = None;
    if let Some(labels) = &mut meta.labels {
        labels.retain(|key, _| KEPT_LABELS.contains(&key.as_str()));
    }
}

/// The writers that fill a [`LiveChildren`]'s stores, one per kind (for the watches).
pub struct LiveWriters {
    pub config_maps: Writer<ConfigMap>,
    pub deployments: Writer<Deployment>,
    pub services: Writer<Service>,
    pub pod_disruption_budgets: Writer<PodDisruptionBudget>,
    pub ingresses: Writer<Ingress>,
    /// Fed only when the Gateway API is installed ([`LiveChildren::routes_watched`]).
    pub http_routes: Writer<HTTPRoute>,
    pub network_policies: Writer<NetworkPolicy>,
}

/// One child: kind, namespace, name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ChildKey {
    kind: ChildKind,
    namespace: String,
    name: String,
}

/// What this process last applied to a child, and the versions of the object its writes made
/// (a create and its adoption make three, which the watch brings one by one).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LastApplied {
    desired: u64,
    versions: Vec<String>,
}

/// See the module documentation.
pub struct LiveChildren {
    config_maps: Store<ConfigMap>,
    deployments: Store<Deployment>,
    services: Store<Service>,
    pod_disruption_budgets: Store<PodDisruptionBudget>,
    ingresses: Store<Ingress>,
    http_routes: Store<HTTPRoute>,
    network_policies: Store<NetworkPolicy>,
    /// Whether HTTPRoutes are watched (the Gateway API CRDs were installed at start-up).
    routes_watched: bool,
    applied: Mutex<HashMap<ChildKey, LastApplied>>,
}

impl LiveChildren {
    /// Empty stores, and the writers the watches fill them with, HTTPRoutes included.
    pub fn new() -> (Self, LiveWriters) {
        Self::with_routes(true)
    }

    /// As [`LiveChildren::new`]; `routes_watched` says whether HTTPRoutes will be watched.
    pub fn with_routes(routes_watched: bool) -> (Self, LiveWriters) {
        let (config_maps, config_maps_writer) = reflector::store();
        let (deployments, deployments_writer) = reflector::store();
        let (services, services_writer) = reflector::store();
        let (pod_disruption_budgets, pdbs_writer) = reflector::store();
        let (ingresses, ingresses_writer) = reflector::store();
        let (http_routes, http_routes_writer) = reflector::store();
        let (network_policies, network_policies_writer) = reflector::store();
        (
            Self {
                config_maps,
                deployments,
                services,
                pod_disruption_budgets,
                ingresses,
                http_routes,
                network_policies,
                routes_watched,
                applied: Mutex::default(),
            },
            LiveWriters {
                config_maps: config_maps_writer,
                deployments: deployments_writer,
                services: services_writer,
                pod_disruption_budgets: pdbs_writer,
                ingresses: ingresses_writer,
                http_routes: http_routes_writer,
                network_policies: network_policies_writer,
            },
        )
    }

    /// Whether HTTPRoutes are watched, so the operator can create them.
    pub fn routes_watched(&self) -> bool {
        self.routes_watched
    }

    /// Waits until every store has had its first list (an empty store would send every apply
    /// down the slow path of a create that finds the object). Fails only when the watches stopped.
    pub async fn wait_until_ready(&self) -> Result<(), reflector::store::WriterDropped> {
        // Every store, named without `..`: a new kind's store cannot be left out.
        let LiveChildren {
            config_maps,
            deployments,
            services,
            pod_disruption_budgets,
            ingresses,
            http_routes,
            network_policies,
            routes_watched,
            applied: _,
        } = self;
        store_ready(config_maps).await?;
        store_ready(deployments).await?;
        store_ready(services).await?;
        store_ready(pod_disruption_budgets).await?;
        store_ready(ingresses).await?;
        store_ready(network_policies).await?;
        if *routes_watched {
            store_ready(http_routes).await?;
        }
        Ok(())
    }

    /// The child `name` in `namespace` as last seen, if it carries our labels and exists.
    pub fn get<K: Child>(&self, namespace: &str, name: &str) -> Option<K> {
        K::store(self)
            .get(&ObjectRef::new(name).within(namespace))
            .map(|object| K::clone(&object))
    }

    /// The children of kind `K` in `namespace` whose labels include every pair of `labels`.
    pub fn list<K: Child>(&self, namespace: &str, labels: &[(&str, &str)]) -> Vec<K> {
        K::store(self)
            .state()
            .iter()
            .filter(|object| object.meta().namespace.as_deref() == Some(namespace))
            .filter(|object| {
                let have = object.meta().labels.as_ref();
                labels
                    .iter()
                    .all(|(k, v)| have.and_then(|l| l.get(*k)).map(String::as_str) == Some(*v))
            })
            .map(|object| K::clone(object))
            .collect()
    }

    /// Whether applying `desired` to `live` again would change nothing: this process applied
    /// the same desired object last time, and `live` is a version this process's own writes
    /// made (nobody, not even a controller updating status, has written it since; a later
    /// version from someone else comes with a watch event of its own).
    pub fn unchanged_since_applied<K: Child>(&self, desired: &K, live: &K) -> bool {
        let Some(key) = key_of(desired) else {
            return false;
        };
        let Some(version) = live.meta().resource_version.as_deref() else {
            return false;
        };
        self.applied.lock().is_ok_and(|applied| {
            applied.get(&key).is_some_and(|last| {
                last.desired == digest(desired) && last.versions.iter().any(|v| v == version)
            })
        })
    }

    /// Remembers that `desired` was applied, and the versions of the object the writes made.
    pub fn remember<K: Child>(&self, desired: &K, written: &[&K]) {
        let Some(key) = key_of(desired) else {
            return;
        };
        let versions = written
            .iter()
            .filter_map(|object| object.meta().resource_version.clone())
            .collect();
        if let Ok(mut memory) = self.applied.lock() {
            memory.insert(
                key,
                LastApplied {
                    desired: digest(desired),
                    versions,
                },
            );
        }
    }

    /// Forgets what was applied to the child of `K` named `name` in `namespace` (removed).
    pub fn forget<K: Child>(&self, namespace: &str, name: &str) {
        if let Ok(mut memory) = self.applied.lock() {
            memory.remove(&ChildKey {
                kind: K::KIND,
                namespace: namespace.to_string(),
                name: name.to_string(),
            });
        }
    }

    /// Drops the memory of children that no store holds any more (deleted with their owner);
    /// returns how many entries are left.
    pub fn forget_gone(&self) -> usize {
        let Ok(mut memory) = self.applied.lock() else {
            return 0;
        };
        memory.retain(|key, _| self.holds(key));
        memory.len()
    }

    fn holds(&self, key: &ChildKey) -> bool {
        match key.kind {
            ChildKind::ConfigMap => self.has::<ConfigMap>(key),
            ChildKind::Deployment => self.has::<Deployment>(key),
            ChildKind::Service => self.has::<Service>(key),
            ChildKind::PodDisruptionBudget => self.has::<PodDisruptionBudget>(key),
            ChildKind::Ingress => self.has::<Ingress>(key),
            ChildKind::HttpRoute => self.has::<HTTPRoute>(key),
            ChildKind::NetworkPolicy => self.has::<NetworkPolicy>(key),
        }
    }

    /// The claims of this operator's Ingresses and HTTPRoutes on `hosts` (normalised), in every
    /// namespace the watches see. Only objects controlled by a `WorkOSConvexAuth` count.
    pub fn host_claims(&self, hosts: &[String]) -> Vec<HostClaim> {
        // Most resources have no Ingress or HTTPRoute: no need to look through the caches.
        if hosts.is_empty() {
            return Vec::new();
        }
        let ingresses = self.ingresses.state().into_iter().flat_map(|ingress| {
            let hosts: Vec<String> = ingress
                .spec
                .iter()
                .flat_map(|spec| spec.rules.iter().flatten())
                .filter_map(|rule| rule.host.clone())
                .collect();
            claims_of(&*ingress, hosts)
        });
        let routes = self
            .http_routes
            .state()
            .into_iter()
            .flat_map(|route| claims_of(&*route, route.spec.hostnames.clone()));
        ingresses
            .chain(routes)
            .filter(|claim| hosts.contains(&claim.host))
            .collect()
    }

    fn has<K: Child>(&self, key: &ChildKey) -> bool {
        K::store(self)
            .get(&ObjectRef::new(&key.name).within(&key.namespace))
            .is_some()
    }
}

/// `store.wait_until_ready()`, asked afresh every 100 ms. In kube-runtime 5 readiness is a
/// oneshot channel that keeps the waker of only the last task to wait: with several reconciles
/// waiting at once, the others are never woken (seen as reconciles that never ran in
/// tests/it/controller_binary.rs). A fresh wait on a ready store returns at once. Every wait for
/// a store in this crate goes through here (the housekeeping's too).
pub async fn store_ready<K>(store: &Store<K>) -> Result<(), reflector::store::WriterDropped>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    loop {
        match tokio::time::timeout(Duration::from_millis(100), store.wait_until_ready()).await {
            Ok(result) => return result,
            Err(_still_filling) => {}
        }
    }
}

/// The claims `object` makes on `hosts`, if a `WorkOSConvexAuth` controls it.
fn claims_of(object: &impl Resource, hosts: Vec<String>) -> Vec<HostClaim> {
    let meta = object.meta();
    let controlled = meta.owner_references.iter().flatten().any(|owner| {
        owner.controller == Some(true)
            && owner.kind == "WorkOSConvexAuth"
            && owner.api_version.starts_with("workos-convex.io/")
    });
    let (Some(namespace), Some(name), true) = (&meta.namespace, &meta.name, controlled) else {
        return Vec::new();
    };
    hosts
        .iter()
        .map(|host| HostClaim {
            host: normalise(host),
            namespace: namespace.clone(),
            name: name.clone(),
            since: meta.creation_timestamp.as_ref().map(|t| t.0),
        })
        .collect()
}

fn key_of<K: Child>(object: &K) -> Option<ChildKey> {
    Some(ChildKey {
        kind: K::KIND,
        namespace: object.meta().namespace.clone()?,
        name: object.meta().name.clone()?,
    })
}

/// A digest of the object as it would be sent; only compared within this process.
fn digest<K: Serialize>(object: &K) -> u64 {
    let mut hasher = DefaultHasher::new();
    // Serializing a k8s-openapi struct cannot fail; an error digests as empty, never equal to
    // a real object's.
    serde_json::to_vec(object)
        .unwrap_or_default()
        .hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::api::ObjectMeta;
    use kube::runtime::watcher;

    use super::*;

    fn config_map(name: &str, version: &str, value: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("apps".into()),
                resource_version: Some(version.into()),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/instance".into(),
                    name.into(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([("k".into(), value.into())])),
            ..ConfigMap::default()
        }
    }

    #[test]
    fn an_apply_is_skipped_only_while_both_sides_are_as_last_applied() {
        let (live, mut writers) = LiveChildren::new();
        let desired = config_map("a", "", "one");
        let applied = config_map("a", "7", "one");
        writers
            .config_maps
            .apply_watcher_event(&watcher::Event::Apply(applied.clone()));
        let seen: ConfigMap = live.get("apps", "a").expect("in the store");
        assert!(
            !live.unchanged_since_applied(&desired, &seen),
            "never applied here"
        );
        live.remember(&desired, &[&config_map("a", "6", "one"), &applied]);
        assert!(live.unchanged_since_applied(&desired, &seen));
        // The watch is behind our own writes: still nothing to apply.
        assert!(live.unchanged_since_applied(&desired, &config_map("a", "6", "one")));
        // Someone else wrote it: a new version.
        assert!(!live.unchanged_since_applied(&desired, &config_map("a", "8", "one")));
        // We want something else now.
        assert!(!live.unchanged_since_applied(&config_map("a", "", "two"), &seen));
        live.forget::<ConfigMap>("apps", "a");
        assert!(!live.unchanged_since_applied(&desired, &seen));
    }

    #[test]
    fn lists_by_namespace_and_labels_and_forgets_what_is_gone() {
        let (live, mut writers) = LiveChildren::new();
        for cm in [config_map("a", "1", "x"), config_map("b", "2", "x")] {
            live.remember(&cm, &[&cm]);
            writers
                .config_maps
                .apply_watcher_event(&watcher::Event::Apply(cm));
        }
        let found: Vec<ConfigMap> = live.list("apps", &[("app.kubernetes.io/instance", "a")]);
        assert_eq!(found.len(), 1);
        assert!(live.list::<ConfigMap>("other", &[]).is_empty());
        assert_eq!(live.forget_gone(), 2);
        writers
            .config_maps
            .apply_watcher_event(&watcher::Event::Delete(config_map("b", "2", "x")));
        assert_eq!(live.forget_gone(), 1);
        assert!(live.get::<Deployment>("apps", "a").is_none());
    }
}
