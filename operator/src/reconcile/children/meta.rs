use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::api::WorkOSConvexAuth;
use crate::reconcile::names;
use crate::reconcile::validate::Valid;

/// Metadata of a child: name, namespace, standard labels, and a controller owner reference
/// when the resource is live (has a uid).
pub fn child_meta(valid: &Valid, name: String, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(valid.namespace.clone()),
        labels: Some(names::labels(&valid.name, component)),
        owner_references: owner_reference(valid).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

pub fn with_annotations(
    mut meta: ObjectMeta,
    annotations: &BTreeMap<String, String>,
) -> ObjectMeta {
    if !annotations.is_empty() {
        meta.annotations = Some(annotations.clone());
    }
    meta
}

fn owner_reference(valid: &Valid) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: WorkOSConvexAuth::api_version(&()).to_string(),
        kind: WorkOSConvexAuth::kind(&()).to_string(),
        name: valid.name.clone(),
        uid: valid.uid.clone()?,
        controller: Some(true),
        // Unset on purpose: with it, clusters running OwnerReferencesPermissionEnforcement
        // demand `update` on workosconvexauths/finalizers, a right the operator has no other
        // use for. All it adds is that a foreground deletion of the resource waits for its
        // children; the garbage collector removes them either way.
        block_owner_deletion: None,
    })
}
