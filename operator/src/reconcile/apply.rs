//! Step 3: server-side apply of the children under one field manager, never touching an
//! object this resource does not control, and removal of children no longer wanted.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::names::FIELD_MANAGER;

/// What applying one child did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Created,
    Updated,
    Unchanged,
    /// An object of that name exists and is not controlled by this resource: left untouched.
    Conflict {
        object: String,
    },
}

/// Whether `object` has a controller owner reference to the resource with `owner_uid`.
pub fn controlled_by<K: Resource>(object: &K, owner_uid: &str) -> bool {
    object
        .owner_references()
        .iter()
        .any(|o| o.controller == Some(true) && o.uid == owner_uid)
}

fn describe<K: Resource<DynamicType = ()>>(name: &str, namespace: &str) -> String {
    format!("{} {namespace}/{name}", K::kind(&()))
}

/// Applies `desired` unless a same-named object is controlled by someone else; returns what
/// happened and, unless in conflict, the object as the apiserver now holds it.
pub async fn apply<K>(
    api: &Api<K>,
    owner_uid: &str,
    desired: &K,
) -> kube::Result<(Applied, Option<K>)>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = desired.name_any();
    let conflict = || Applied::Conflict {
        object: describe::<K>(&name, &desired.namespace().unwrap_or_default()),
    };
    let Some(existing) = api.get_opt(&name).await? else {
        // Created, never taken over: a forced apply would adopt a same-named object created
        // since the read; a create fails on it instead (409), reported as a conflict.
        let params = PostParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PostParams::default()
        };
        return match api.create(&params, desired).await {
            Ok(_) => Ok((
                Applied::Created,
                Some(adopt_as_applied(api, desired).await?),
            )),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok((conflict(), None)),
            Err(e) => Err(e),
        };
    };
    if !controlled_by(&existing, owner_uid) {
        return Ok((conflict(), None));
    }
    let patched = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(desired),
        )
        .await?;
    let applied = if existing.resource_version() != patched.resource_version() {
        Applied::Updated
    } else {
        Applied::Unchanged
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
    let name = desired.name_any();
    let applied = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(desired),
        )
        .await?;
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
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&only_applied))
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
