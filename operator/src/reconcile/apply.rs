//! I/O: server-side apply of the children under one field manager, never touching an object
//! this resource does not control, and removal of children no longer wanted.
//!
//! A child is read from the controller's watch caches ([`LiveChildren`]), not from the
//! apiserver: an unchanged child costs no request, a changed one one apply. The apiserver is
//! asked only when the caches cannot answer: a create that finds the name taken (409) reads
//! the object once to learn whose it is.

use std::fmt::{self, Debug};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;

use super::children::{Children, MirrorChildren};
use super::live::{Child, ChildKind, LiveChildren};
use super::names::{self, FIELD_MANAGER};
use super::pods::{PodState, pod_state};
use super::validate::Valid;
use crate::gateway::{HTTPRoute, RouteParentStatus};

/// What applying one child did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
    /// An object of that name exists and is not controlled by this resource: left untouched.
    Conflict,
}

/// An object in the way of a child: same kind and name, not controlled by this resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub kind: ChildKind,
    pub namespace: String,
    pub name: String,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind.as_str(), self.namespace, self.name)
    }
}

/// What applying all children achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    /// What happened to the ConfigMap (Events say when it was created or updated).
    pub config_map: Change,
    /// Objects left untouched because this resource does not control them.
    pub conflicts: Vec<Conflict>,
    /// `status.availableReplicas` of the mirror Deployment as applied.
    pub available_replicas: i32,
    /// What the mirror's pods are doing; read only while none is available, to say why.
    pub mirror_pods: Vec<PodState>,
    /// What the Gateway controllers say of the HTTPRoute, as the watch last saw it.
    pub route_parents: Vec<RouteParentStatus>,
}

impl Default for Applied {
    fn default() -> Self {
        Self {
            config_map: Change::Unchanged,
            conflicts: Vec::new(),
            available_replicas: 0,
            mirror_pods: Vec::new(),
            route_parents: Vec::new(),
        }
    }
}

/// Why the children could not all be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The apiserver refused a child (4xx: invalid, forbidden, over quota, refused by an
    /// admission webhook); the status names the child and carries the apiserver's message.
    #[error("the apiserver refused {child}: {message}")]
    Rejected { child: String, message: String },
    /// The operator's RBAC does not let it write the child (403).
    #[error(transparent)]
    Forbidden(#[from] super::forbidden::Forbidden),
    #[error("Kubernetes API error: {0}")]
    Api(#[from] kube::Error),
}

/// Applies every wanted child, removes unwanted ones, and says what happened.
pub async fn apply_children(
    client: &Client,
    live: &LiveChildren,
    valid: &Valid,
    children: &Children,
) -> Result<Applied, ApplyError> {
    // Every field named, without `..`: a child added to `Children` does not compile until it is
    // applied here (the mirror's parts are named in `apply_mirror`).
    let Children {
        config: _,
        config_map,
        mirror,
        jwks_url: _,
        cluster_internal_url: _,
    } = children;
    let mut conflicts = Vec::new();
    let config_map = apply_config_map(client, live, valid, config_map, &mut conflicts).await?;
    let MirrorApplied { deployment, route } =
        apply_mirror(client, live, valid, mirror, &mut conflicts).await?;
    let available_replicas = deployment
        .as_ref()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    // Only while nothing serves the keys: the pods say why (one list, never in steady state).
    let mirror_pods = if deployment.is_some() && available_replicas == 0 {
        mirror_pod_states(client, valid).await?
    } else {
        Vec::new()
    };
    Ok(Applied {
        config_map,
        conflicts,
        available_replicas,
        mirror_pods,
        route_parents: route
            .and_then(|r| r.status)
            .map(|s| s.parents)
            .unwrap_or_default(),
    })
}

/// A resource the policy refuses keeps only its ConfigMap (plain data): its mirror is pruned by
/// the same apply as ever, with every part absent.
pub async fn prune_mirror(
    client: &Client,
    live: &LiveChildren,
    valid: &Valid,
) -> Result<(), ApplyError> {
    let mut conflicts = Vec::new();
    apply_mirror(
        client,
        live,
        valid,
        &MirrorChildren::default(),
        &mut conflicts,
    )
    .await?;
    Ok(())
}

/// Applies the ConfigMap, then removes the ones this resource controls under another name (a
/// renamed `spec.configMap.name` leaves the old one behind).
async fn apply_config_map(
    client: &Client,
    live: &LiveChildren,
    valid: &Valid,
    config_map: &ConfigMap,
    conflicts: &mut Vec<Conflict>,
) -> Result<Change, ApplyError> {
    let (ns, uid) = (valid.namespace.as_str(), owner_uid(valid));
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let (change, _) = apply(&config_maps, live, uid, config_map)
        .await
        .map_err(|e| rejected(ChildKind::ConfigMap, ns, &valid.config_map_name, e))?;
    if change == Change::Conflict {
        conflicts.push(conflict(ChildKind::ConfigMap, ns, &valid.config_map_name));
    }
    let labels = [
        ("app.kubernetes.io/instance", valid.name.as_str()),
        ("app.kubernetes.io/component", names::COMPONENT_CONFIG),
    ];
    remove_others(&config_maps, live, uid, &labels, &valid.config_map_name).await?;
    Ok(change)
}

/// What status needs of the mirror's parts as applied.
struct MirrorApplied {
    deployment: Option<Deployment>,
    route: Option<HTTPRoute>,
}

/// Applies each wanted part of the mirror and removes each absent one this resource controls.
async fn apply_mirror(
    client: &Client,
    live: &LiveChildren,
    valid: &Valid,
    mirror: &MirrorChildren,
    conflicts: &mut Vec<Conflict>,
) -> Result<MirrorApplied, ApplyError> {
    // Every part named, without `..`: a new kind does not compile until it is applied here.
    let MirrorChildren {
        deployment,
        service,
        pod_disruption_budget,
        ingress,
        http_route,
        network_policy,
    } = mirror;
    let name = names::mirror_name(&valid.name);
    let child = || Wanted {
        ns: &valid.namespace,
        uid: owner_uid(valid),
        name: &name,
        client,
        live,
    };
    let deployment = child()
        .apply_or_remove(deployment.as_ref(), conflicts)
        .await?;
    child().apply_or_remove(service.as_ref(), conflicts).await?;
    let budget = pod_disruption_budget.as_ref();
    child().apply_or_remove(budget, conflicts).await?;
    child().apply_or_remove(ingress.as_ref(), conflicts).await?;
    child()
        .apply_or_remove(network_policy.as_ref(), conflicts)
        .await?;
    // Without the Gateway API there is no HTTPRoute to apply, nor one to remove.
    let route = match (http_route, live.routes_watched()) {
        (_, true) => {
            child()
                .apply_or_remove(http_route.as_ref(), conflicts)
                .await?
        }
        (None, false) => None,
        (Some(_), false) => return Err(routes_not_watched(&valid.namespace, &name)),
    };
    Ok(MirrorApplied { deployment, route })
}

/// A wanted HTTPRoute the operator cannot apply: it started without the Gateway API.
fn routes_not_watched(ns: &str, name: &str) -> ApplyError {
    ApplyError::Rejected {
        child: conflict(ChildKind::HttpRoute, ns, name).to_string(),
        message: "the operator does not watch HTTPRoutes: the Gateway API CRDs were not installed (or its RBAC did not allow listing httproutes) when it started; install them (kubectl apply -f https://github.com/kubernetes-sigs/gateway-api/releases/download/v1.4.1/standard-install.yaml) and restart the operator, or use spec.ingress".to_string(),
    }
}

/// The state of each of the mirror's pods (listed by its selector).
async fn mirror_pod_states(client: &Client, valid: &Valid) -> kube::Result<Vec<PodState>> {
    let selector = names::mirror_selector(&valid.name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    Ok(Api::<Pod>::namespaced(client.clone(), &valid.namespace)
        .list(&ListParams::default().labels(&selector))
        .await?
        .items
        .iter()
        .map(pod_state)
        .collect())
}

fn owner_uid(valid: &Valid) -> &str {
    valid.uid.as_deref().unwrap_or_default()
}

fn conflict(kind: ChildKind, ns: &str, name: &str) -> Conflict {
    Conflict {
        kind,
        namespace: ns.to_string(),
        name: name.to_string(),
    }
}

/// One of the mirror's children, named after the mirror.
struct Wanted<'a> {
    ns: &'a str,
    uid: &'a str,
    name: &'a str,
    client: &'a Client,
    live: &'a LiveChildren,
}

impl Wanted<'_> {
    /// Applies `desired` or, when it is `None`, removes the child we control of that name;
    /// returns the object as applied, or adds the object in the way to `conflicts`.
    async fn apply_or_remove<K: Child>(
        self,
        desired: Option<&K>,
        conflicts: &mut Vec<Conflict>,
    ) -> Result<Option<K>, ApplyError> {
        let Some(desired) = desired else {
            self.remove::<K>().await?;
            return Ok(None);
        };
        let api = Api::<K>::namespaced(self.client.clone(), self.ns);
        match apply(&api, self.live, self.uid, desired)
            .await
            .map_err(|e| rejected(K::KIND, self.ns, self.name, e))?
        {
            (Change::Conflict, _) => {
                conflicts.push(conflict(K::KIND, self.ns, self.name));
                Ok(None)
            }
            (_, live) => Ok(live),
        }
    }

    /// Deletes the child of this name if, and only if, this resource controls it.
    async fn remove<K: Child>(self) -> kube::Result<bool> {
        remove(
            &Api::<K>::namespaced(self.client.clone(), self.ns),
            self.live,
            self.uid,
            self.name,
        )
        .await
    }
}

/// A 4xx from the apiserver about a child becomes [`ApplyError::Rejected`]; 409 (a conflicting
/// write), 429 (throttled) and every other error stay transient.
fn rejected(kind: ChildKind, ns: &str, name: &str, error: kube::Error) -> ApplyError {
    if let Some(forbidden) =
        super::forbidden::Forbidden::of(&error, "create or patch", kind.resource(), ns, name)
    {
        return ApplyError::Forbidden(forbidden);
    }
    match error {
        kube::Error::Api(status)
            if (400..500).contains(&status.code) && !matches!(status.code, 409 | 429) =>
        {
            ApplyError::Rejected {
                child: conflict(kind, ns, name).to_string(),
                message: status.message,
            }
        }
        other => ApplyError::Api(other),
    }
}

/// Whether `object` has a controller owner reference to the resource with `owner_uid`.
pub fn controlled_by<K: Resource>(object: &K, owner_uid: &str) -> bool {
    object
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == owner_uid)
}

/// Applies `desired` unless a same-named object is controlled by someone else; returns what
/// happened and, unless in conflict, the object as the apiserver now holds it (or, when nothing
/// needed writing, as the watch cache holds it).
pub async fn apply<K: Child>(
    api: &Api<K>,
    live: &LiveChildren,
    owner_uid: &str,
    desired: &K,
) -> kube::Result<(Change, Option<K>)> {
    let namespace = desired.meta().namespace.clone().unwrap_or_default();
    let Some(seen) = live.get::<K>(&namespace, &desired.name_any()) else {
        return create(api, live, owner_uid, desired).await;
    };
    if !controlled_by(&seen, owner_uid) {
        return Ok((Change::Conflict, None));
    }
    if live.unchanged_since_applied(desired, &seen) {
        return Ok((Change::Unchanged, Some(seen)));
    }
    match force_apply(api, desired, seen.resource_version()).await {
        Ok(applied) => {
            live.remember(desired, &[&applied]);
            Ok((change_from(&seen, &applied), Some(applied)))
        }
        // The object changed since the cache saw it: ask the apiserver whose it is now.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            apply_after_read(api, live, owner_uid, desired).await
        }
        Err(e) => Err(e),
    }
}

/// A child the cache does not hold: new, or in the way (an object without our labels), or
/// created so recently that the watch has not brought it yet.
async fn create<K: Child>(
    api: &Api<K>,
    live: &LiveChildren,
    owner_uid: &str,
    desired: &K,
) -> kube::Result<(Change, Option<K>)> {
    match create_new(api, live, desired).await {
        Ok(created) => Ok((Change::Created, Some(created))),
        Err(kube::Error::Api(status)) if status.code == 409 => {
            apply_after_read(api, live, owner_uid, desired).await
        }
        Err(e) => Err(e),
    }
}

/// Reads the child from the apiserver (the cache could not say) and applies only if this
/// resource controls it.
async fn apply_after_read<K: Child>(
    api: &Api<K>,
    live: &LiveChildren,
    owner_uid: &str,
    desired: &K,
) -> kube::Result<(Change, Option<K>)> {
    match api.get_opt(&desired.name_any()).await? {
        Some(existing) if controlled_by(&existing, owner_uid) => {
            let applied = force_apply(api, desired, existing.resource_version()).await?;
            live.remember(desired, &[&applied]);
            Ok((change_from(&existing, &applied), Some(applied)))
        }
        Some(_) => Ok((Change::Conflict, None)),
        // Deleted since the 409: create it, and call a second object in the way a conflict.
        None => match create_new(api, live, desired).await {
            Ok(created) => Ok((Change::Created, Some(created))),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok((Change::Conflict, None)),
            Err(e) => Err(e),
        },
    }
}

fn change_from<K: Resource>(before: &K, after: &K) -> Change {
    if before.resource_version() == after.resource_version() {
        Change::Unchanged
    } else {
        Change::Updated
    }
}

/// Creates `desired`, never taking an object over: a forced apply would adopt a same-named
/// object; a create fails on it instead (409). Then hands the fields to our apply.
async fn create_new<K: Child>(api: &Api<K>, live: &LiveChildren, desired: &K) -> kube::Result<K> {
    let params = PostParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PostParams::default()
    };
    let created = api.create(&params, desired).await?;
    let (applied, adopted) = adopt_as_applied(api, desired).await?;
    // Every version these writes made is ours: the watch brings them one by one, and none of
    // them calls for another apply.
    live.remember(desired, &[&adopted, &created, &applied]);
    Ok(adopted)
}

/// Moves a just-created object's fields from the create (an `Update` by our field manager) to
/// our server-side apply: applied once, then the `Update` entry dropped. Otherwise that entry
/// would keep owning every field the create wrote, and a field later dropped from the desired
/// object would never be removed.
/// Returns the object as applied and as finally adopted.
async fn adopt_as_applied<K: Child>(api: &Api<K>, desired: &K) -> kube::Result<(K, K)> {
    let applied = force_apply(api, desired, None).await?;
    let kept: Vec<ManagedFieldsEntry> = applied
        .meta()
        .managed_fields
        .iter()
        .flatten()
        .filter(|e| {
            !(e.manager.as_deref() == Some(FIELD_MANAGER)
                && e.operation.as_deref() == Some("Update"))
        })
        .cloned()
        .collect();
    if kept.is_empty() {
        // An empty list would clear every entry, and the next apply would hand the fields to a
        // `before-first-apply` manager: leave the object as it is.
        return Ok((applied.clone(), applied));
    }
    let only_applied = ManagedFieldsOnly {
        metadata: ManagedFieldsMeta {
            managed_fields: kept,
            resource_version: applied.resource_version(),
        },
    };
    let adopted = api
        .patch(
            &desired.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&only_applied),
        )
        .await?;
    Ok((applied, adopted))
}

/// Server-side apply under our field manager, taking over fields another manager set (the
/// object is ours: `apply` checked the controller reference, or just created it). With
/// `version`, only onto that version of the object (the one checked): the apiserver answers
/// 409 if it changed since, so a replaced object is never taken over.
async fn force_apply<K: Child>(
    api: &Api<K>,
    desired: &K,
    version: Option<String>,
) -> kube::Result<K> {
    let mut desired = desired.clone();
    desired.meta_mut().resource_version = version;
    api.patch(
        &desired.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&desired),
    )
    .await
}

/// `{"metadata": {"managedFields": [...], "resourceVersion": "..."}}`: the patch that replaces the
/// field ownership, conditional on nothing having changed since the apply.
#[derive(Debug, Serialize)]
struct ManagedFieldsOnly {
    metadata: ManagedFieldsMeta,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ManagedFieldsMeta {
    managed_fields: Vec<ManagedFieldsEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_version: Option<String>,
}

/// Deletes the object `name` if, and only if, this resource controls it, as the cache has it
/// (a child too new for the cache is removed when its watch event triggers the next reconcile).
pub async fn remove<K: Child>(
    api: &Api<K>,
    live: &LiveChildren,
    owner_uid: &str,
    name: &str,
) -> kube::Result<bool> {
    let namespace = api.namespace().unwrap_or_default().to_string();
    match live.get::<K>(&namespace, name) {
        Some(existing) if controlled_by(&existing, owner_uid) => {
            delete_exactly(api, live, &existing).await
        }
        _ => Ok(false),
    }
}

/// Deletes the children of kind `K` carrying `labels` that this resource controls, except
/// `keep` (e.g. the old ConfigMap after `spec.configMap.name` changed).
pub async fn remove_others<K: Child>(
    api: &Api<K>,
    live: &LiveChildren,
    owner_uid: &str,
    labels: &[(&str, &str)],
    keep: &str,
) -> kube::Result<usize> {
    let namespace = api.namespace().unwrap_or_default().to_string();
    let mut removed = 0;
    for object in live.list::<K>(&namespace, labels) {
        if object.name_any() != keep
            && controlled_by(&object, owner_uid)
            && delete_exactly(api, live, &object).await?
        {
            removed += 1;
        }
    }
    Ok(removed)
}

/// Deletes `object` only if the apiserver still holds that object (same uid): one that was
/// replaced since the cache saw it is someone else's (409) and stays. Gone already: nothing to do.
async fn delete_exactly<K: Child>(
    api: &Api<K>,
    live: &LiveChildren,
    object: &K,
) -> kube::Result<bool> {
    let name = object.name_any();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: object.uid(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    match api.delete(&name, &params).await {
        Ok(_) => {
            live.forget::<K>(&namespace, &name);
            Ok(true)
        }
        Err(kube::Error::Api(status)) if matches!(status.code, 404 | 409) => Ok(false),
        Err(e) => Err(e),
    }
}
