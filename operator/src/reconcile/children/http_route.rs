use super::meta::child_meta;
use crate::gateway::{
    HTTPRoute, HTTPRouteSpec, HttpBackendRef, HttpPathMatch, HttpRouteMatch, HttpRouteRule,
    ParentReference,
};
use crate::reconcile::names;
use crate::reconcile::validate::RoutePlan;
use crate::reconcile::validate::Valid;

/// The HTTPRoute to the mirror's Service: one rule, the path prefix, the Service's port.
pub fn http_route(valid: &Valid, plan: &RoutePlan) -> HTTPRoute {
    let spec = HTTPRouteSpec {
        parent_refs: plan
            .parents
            .iter()
            .map(|p| ParentReference {
                namespace: Some(p.namespace.clone()),
                name: p.name.clone(),
                section_name: p.section_name.clone(),
                ..ParentReference::default()
            })
            .collect(),
        hostnames: plan.hostnames.clone(),
        rules: vec![HttpRouteRule {
            matches: vec![HttpRouteMatch {
                path: Some(HttpPathMatch {
                    type_: Some("PathPrefix".to_string()),
                    value: Some(plan.path.clone()),
                }),
            }],
            backend_refs: vec![HttpBackendRef {
                name: names::mirror_name(&valid.name),
                port: Some(names::SERVICE_PORT),
            }],
        }],
    };
    let mut route = HTTPRoute::new(&names::mirror_name(&valid.name), spec);
    route.metadata = child_meta(
        valid,
        names::mirror_name(&valid.name),
        names::COMPONENT_MIRROR,
    );
    route
}
