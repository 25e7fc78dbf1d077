//! Test fixtures of the pipeline's pure steps: a resource from its spec in YAML, its `Valid`
//! and its children, named `apps/acme` with uid `uid-1`.

use crate::api::{WorkOSConvexAuth, WorkOSConvexAuthSpec};
use crate::reconcile::{BuildContext, Children, InlineKeys, JwksUrls, Valid, build, validate};

/// The mirror image the fixtures build with.
pub const IMAGE: &str = "ghcr.io/example/workos-convex-auth:test";

pub fn resource(spec_yaml: &str) -> WorkOSConvexAuth {
    let spec: WorkOSConvexAuthSpec = serde_saphyr::from_str(spec_yaml).expect("spec YAML");
    let mut resource = WorkOSConvexAuth::new("acme", spec);
    resource.metadata.namespace = Some("apps".into());
    resource.metadata.uid = Some("uid-1".into());
    resource
}

pub fn valid(spec_yaml: &str) -> Valid {
    validate(
        &resource(spec_yaml),
        None,
        crate::reconcile::names::DEFAULT_CLUSTER_DOMAIN,
    )
    .expect("a valid spec")
}

pub fn context() -> BuildContext {
    BuildContext {
        default_image: IMAGE.into(),
        ..BuildContext::default()
    }
}

/// The children of a resource in mode Direct or Proxy.
pub fn children(spec_yaml: &str) -> Children {
    let valid = valid(spec_yaml);
    let urls = valid.served_urls.clone().expect("mode Direct or Proxy");
    build(&valid, &urls, &context())
}

/// The children of a resource in mode Inline, with `keys` embedded.
pub fn inline_children(spec_yaml: &str, keys: &InlineKeys) -> Children {
    let valid = valid(spec_yaml);
    let urls = JwksUrls::embedded(&valid, keys).expect("keys that fit");
    build(&valid, &urls, &context())
}
