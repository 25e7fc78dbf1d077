//! Step 3: server-side apply of the children under one field manager, never touching an
//! object this resource does not control, and removal of children no longer wanted.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams};
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
    let existing = api.get_opt(&name).await?;
    if let Some(existing) = &existing
        && !controlled_by(existing, owner_uid)
    {
        return Ok((
            Applied::Conflict {
                object: describe::<K>(&name, &desired.namespace().unwrap_or_default()),
            },
            None,
        ));
    }
    let patched = api
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(desired),
        )
        .await?;
    let applied = match existing {
        None => Applied::Created,
        Some(old) if old.resource_version() != patched.resource_version() => Applied::Updated,
        Some(_) => Applied::Unchanged,
    };
    Ok((applied, Some(patched)))
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
