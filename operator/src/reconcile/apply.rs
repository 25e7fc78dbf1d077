//! I/O: server-side apply of the children under one field manager, never touching an object
//! this resource does not control, and removal of children no longer wanted.

use std::fmt::{self, Debug};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::children::Children;
use super::findings::{PodState, pod_state};
use super::names::{self, FIELD_MANAGER};
use super::validate::Valid;

/// What applying one child did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Created,
    Updated,
    Unchanged,
    /// An object of that name exists and is not controlled by this resource: left untouched.
    Conflict,
}

/// The kinds of children.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildKind {
    ConfigMap,
    Deployment,
    Service,
    PodDisruptionBudget,
    Ingress,
}

impl ChildKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChildKind::ConfigMap => "ConfigMap",
            ChildKind::Deployment => "Deployment",
            ChildKind::Service => "Service",
            ChildKind::PodDisruptionBudget => "PodDisruptionBudget",
            ChildKind::Ingress => "Ingress",
        }
    }
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// What happened to the ConfigMap (Events say when it was created or updated).
    pub config_map: Change,
    /// Objects left untouched because this resource does not control them.
    pub conflicts: Vec<Conflict>,
    /// `status.availableReplicas` of the mirror Deployment as applied.
    pub available_replicas: i32,
    /// What the mirror's pods are doing; read only while none is available, to say why.
    pub mirror_pods: Vec<PodState>,
}

impl Default for Applied {
    fn default() -> Self {
        Self {
            config_map: Change::Unchanged,
            conflicts: Vec::new(),
            available_replicas: 0,
            mirror_pods: Vec::new(),
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
    #[error("Kubernetes API error: {0}")]
    Api(#[from] kube::Error),
}

/// Applies every wanted child, removes unwanted ones, and says what happened.
pub async fn apply_children(
    client: &Client,
    valid: &Valid,
    children: &Children,
) -> Result<Applied, ApplyError> {
    let (ns, uid) = (valid.namespace.as_str(), owner_uid(valid));
    let mut conflicts = Vec::new();
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let (config_map, _) = apply(&config_maps, uid, &children.config_map)
        .await
        .map_err(|e| rejected(ChildKind::ConfigMap, ns, &valid.config_map_name, e))?;
    if config_map == Change::Conflict {
        conflicts.push(conflict(ChildKind::ConfigMap, ns, &valid.config_map_name));
    }
    // A renamed ConfigMap (spec.configMap.name changed) leaves the old one behind: remove it.
    let selector = format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/component={}",
        valid.name,
        names::COMPONENT_CONFIG
    );
    remove_others(&config_maps, uid, &selector, &valid.config_map_name).await?;

    let mirror = names::mirror_name(&valid.name);
    let child = |kind| Wanted {
        kind,
        ns,
        uid,
        name: &mirror,
    };
    let deployment = child(ChildKind::Deployment)
        .apply_or_remove(client, children.deployment.as_ref(), &mut conflicts)
        .await?;
    child(ChildKind::Service)
        .apply_or_remove(client, children.service.as_ref(), &mut conflicts)
        .await?;
    child(ChildKind::PodDisruptionBudget)
        .apply_or_remove(
            client,
            children.pod_disruption_budget.as_ref(),
            &mut conflicts,
        )
        .await?;
    child(ChildKind::Ingress)
        .apply_or_remove(client, children.ingress.as_ref(), &mut conflicts)
        .await?;

    let available_replicas = deployment
        .as_ref()
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    // Only while nothing serves the keys: the pods say why (one list, never in steady state).
    let mirror_pods = if deployment.is_some() && available_replicas == 0 {
        let selector = names::mirror_selector(&valid.name)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        Api::<Pod>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&selector))
            .await?
            .items
            .iter()
            .map(pod_state)
            .collect()
    } else {
        Vec::new()
    };
    Ok(Applied {
        config_map,
        conflicts,
        available_replicas,
        mirror_pods,
    })
}

/// Removes the mirror's Ingress, PodDisruptionBudget, Service and Deployment, where this
/// resource controls them (a resource the policy refuses keeps only its ConfigMap).
pub async fn remove_mirror(client: &Client, valid: &Valid) -> kube::Result<()> {
    let mirror = names::mirror_name(&valid.name);
    let child = |kind| Wanted {
        kind,
        ns: &valid.namespace,
        uid: owner_uid(valid),
        name: &mirror,
    };
    child(ChildKind::Ingress).remove::<Ingress>(client).await?;
    child(ChildKind::PodDisruptionBudget)
        .remove::<PodDisruptionBudget>(client)
        .await?;
    child(ChildKind::Service).remove::<Service>(client).await?;
    child(ChildKind::Deployment)
        .remove::<Deployment>(client)
        .await?;
    Ok(())
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
    kind: ChildKind,
    ns: &'a str,
    uid: &'a str,
    name: &'a str,
}

impl Wanted<'_> {
    /// Applies `desired` or, when it is `None`, removes the child we control of that name;
    /// returns the object as applied, or adds the object in the way to `conflicts`.
    async fn apply_or_remove<K>(
        self,
        client: &Client,
        desired: Option<&K>,
        conflicts: &mut Vec<Conflict>,
    ) -> Result<Option<K>, ApplyError>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned,
    {
        let Some(desired) = desired else {
            self.remove::<K>(client).await?;
            return Ok(None);
        };
        let api = Api::<K>::namespaced(client.clone(), self.ns);
        match apply(&api, self.uid, desired)
            .await
            .map_err(|e| rejected(self.kind, self.ns, self.name, e))?
        {
            (Change::Conflict, _) => {
                conflicts.push(conflict(self.kind, self.ns, self.name));
                Ok(None)
            }
            (_, live) => Ok(live),
        }
    }
}

impl Wanted<'_> {
    /// Deletes the child of this name if, and only if, this resource controls it.
    async fn remove<K>(self, client: &Client) -> kube::Result<bool>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + Debug
            + DeserializeOwned,
    {
        remove(
            &Api::<K>::namespaced(client.clone(), self.ns),
            self.uid,
            self.name,
        )
        .await
    }
}

/// A 4xx from the apiserver about a child becomes [`ApplyError::Rejected`]; 409 (a conflicting
/// write), 429 (throttled) and every other error stay transient.
fn rejected(kind: ChildKind, ns: &str, name: &str, error: kube::Error) -> ApplyError {
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
/// happened and, unless in conflict, the object as the apiserver now holds it.
pub async fn apply<K>(
    api: &Api<K>,
    owner_uid: &str,
    desired: &K,
) -> kube::Result<(Change, Option<K>)>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = desired.name_any();
    let Some(existing) = api.get_opt(&name).await? else {
        // Created, never taken over: a forced apply would adopt a same-named object created
        // since the read; a create fails on it instead (409), reported as a conflict.
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PostParams::default()
        };
        return match api.create(&params, desired).await {
            Ok(_) => Ok((Change::Created, Some(adopt_as_applied(api, desired).await?))),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok((Change::Conflict, None)),
            Err(e) => Err(e),
        };
    };
    if !controlled_by(&existing, owner_uid) {
        return Ok((Change::Conflict, None));
    }
    let patched = force_apply(api, desired).await?;
    let applied = if existing.resource_version() != patched.resource_version() {
        Change::Updated
    } else {
        Change::Unchanged
    };
    Ok((applied, Some(patched)))
}

/// Moves a just-created object's fields from the create (an `Update` by our field manager) to
/// our server-side apply: applied once, then the `Update` entry dropped. Otherwise that entry
/// would keep owning every field the create wrote, and a field later dropped from the desired
/// object would never be removed.
async fn adopt_as_applied<K>(api: &Api<K>, desired: &K) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let applied = force_apply(api, desired).await?;
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
        return Ok(applied);
    }
    let only_applied = ManagedFieldsOnly {
        metadata: ManagedFieldsMeta {
            managed_fields: kept,
            resource_version: applied.resource_version(),
        },
    };
    api.patch(
        &desired.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&only_applied),
    )
    .await
}

/// Server-side apply under our field manager, taking over fields another manager set (the
/// object is ours: `apply` checked the controller reference, or just created it).
async fn force_apply<K>(api: &Api<K>, desired: &K) -> kube::Result<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    api.patch(
        &desired.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(desired),
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

/// Deletes the object `name` if, and only if, this resource controls it.
pub async fn remove<K>(api: &Api<K>, owner_uid: &str, name: &str) -> kube::Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    match api.get_opt(name).await? {
        Some(existing) if controlled_by(&existing, owner_uid) => {
            api.delete(name, &DeleteParams::background()).await?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Deletes objects carrying `selector` that this resource controls, except `keep`
/// (e.g. the old ConfigMap after `spec.configMap.name` changed).
pub async fn remove_others<K>(
    api: &Api<K>,
    owner_uid: &str,
    selector: &str,
    keep: &str,
) -> kube::Result<usize>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let mut removed = 0;
    for object in api.list(&ListParams::default().labels(selector)).await? {
        if object.name_any() != keep && controlled_by(&object, owner_uid) {
            api.delete(&object.name_any(), &DeleteParams::background())
                .await?;
            removed += 1;
        }
    }
    Ok(removed)
}
