use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, ServiceBackendPort,
};

use super::meta::{child_meta, with_annotations};
use crate::reconcile::names;
use crate::reconcile::validate::IngressPlan;
use crate::reconcile::validate::Valid;

pub fn ingress(valid: &Valid, spec: &IngressPlan) -> Ingress {
    let host = Some(spec.host.clone());
    let path = HTTPIngressPath {
        path: Some(spec.path.clone()),
        path_type: "Prefix".to_string(),
        backend: IngressBackend {
            service: Some(IngressServiceBackend {
                name: names::mirror_name(&valid.name),
                port: Some(ServiceBackendPort {
                    name: Some("http".to_string()),
                    number: None,
                }),
            }),
            resource: None,
        },
    };
    Ingress {
        metadata: with_annotations(
            child_meta(
                valid,
                names::mirror_name(&valid.name),
                names::COMPONENT_MIRROR,
            ),
            &spec.annotations,
        ),
        spec: Some(IngressSpec {
            ingress_class_name: spec.class_name.clone(),
            rules: Some(vec![IngressRule {
                host: host.clone(),
                http: Some(HTTPIngressRuleValue { paths: vec![path] }),
            }]),
            tls: spec.tls_secret_name.as_ref().map(|secret| {
                vec![IngressTLS {
                    hosts: host.map(|h| vec![h]),
                    secret_name: Some(secret.clone()),
                }]
            }),
            default_backend: None,
        }),
        status: None,
    }
}
