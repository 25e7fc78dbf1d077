//! Pure: the conditions that describe what applying the children achieved.

use kube::ResourceExt;

use super::Children;
use super::status::{CONFIG_READY, PROXY_AVAILABLE, PUBLIC_JWKS_URL, Verdict};

/// What `apply` reported for one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Objects left untouched because this resource does not control them ("Kind ns/name").
    pub conflicts: Vec<String>,
    /// `status.availableReplicas` of the mirror Deployment as applied.
    pub available_replicas: i32,
}

/// `ConfigReady`, and in mode Proxy `ProxyAvailable` and `PublicJwksUrl`.
pub fn verdicts(children: &Children, applied: &Applied) -> Vec<Verdict> {
    let config_map = format!(
        "{}/{}",
        children.config_map.namespace().unwrap_or_default(),
        children.config_map.name_any()
    );
    let (config_conflicts, mirror_conflicts): (Vec<&String>, Vec<&String>) = applied
        .conflicts
        .iter()
        .partition(|c| c.starts_with("ConfigMap "));
    let mut verdicts = vec![match config_conflicts.first() {
        Some(object) => Verdict::new(
            CONFIG_READY,
            false,
            "Conflict",
            format!(
                "{object} exists and is not controlled by this WorkOSConvexAuth; it was left untouched: delete it, or set spec.configMap.name to another name"
            ),
        ),
        None => Verdict::new(
            CONFIG_READY,
            true,
            "Generated",
            format!(
                "ConfigMap {config_map} holds auth.config.ts, .js and .json ({} providers)",
                children.config.providers.len()
            ),
        ),
    }];
    let Some(deployment) = &children.deployment else {
        return verdicts;
    };
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    verdicts.push(if !mirror_conflicts.is_empty() {
        let list: Vec<&str> = mirror_conflicts.iter().map(|s| s.as_str()).collect();
        Verdict::new(
            PROXY_AVAILABLE,
            false,
            "Conflict",
            format!("{} exist and are not controlled by this WorkOSConvexAuth; they were left untouched: delete or rename them", list.join(", ")),
        )
    } else if wanted == 0 {
        Verdict::new(PROXY_AVAILABLE, false, "ScaledToZero", "spec.proxy.replicas is 0: nothing serves the keys")
    } else if applied.available_replicas > 0 {
        Verdict::new(PROXY_AVAILABLE, true, "Available", format!("{}/{wanted} mirror pods available", applied.available_replicas))
    } else {
        Verdict::new(PROXY_AVAILABLE, false, "Unavailable", format!("0/{wanted} mirror pods available: see kubectl describe deployment"))
    });
    verdicts.push(if children.cluster_internal_url {
        Verdict::new(
            PUBLIC_JWKS_URL,
            false,
            "ClusterInternalUrl",
            format!("Convex fetches the keys from {}, which only a Convex backend inside this cluster can reach; for Convex Cloud set spec.jwks.publicUrl or enable spec.ingress", children.jwks_url),
        )
    } else {
        Verdict::new(PUBLIC_JWKS_URL, true, "PublicUrl", format!("Convex fetches the keys from {}", children.jwks_url))
    });
    verdicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{WorkOSConvexAuth, WorkOSConvexAuthSpec};
    use crate::reconcile::{BuildContext, build, validate};

    fn children(spec_yaml: &str) -> Children {
        let spec: WorkOSConvexAuthSpec = serde_saphyr::from_str(spec_yaml).unwrap();
        let mut r = WorkOSConvexAuth::new("acme", spec);
        r.metadata.namespace = Some("apps".into());
        build(&validate(&r, None).unwrap(), &BuildContext::default()).unwrap()
    }

    fn find<'a>(v: &'a [Verdict], t: &str) -> &'a Verdict {
        v.iter().find(|x| x.type_ == t).unwrap()
    }

    #[test]
    fn direct_mode_reports_only_the_config() {
        let v = verdicts(
            &children("{clientId: client_1, jwks: {mode: Direct}}"),
            &Applied::default(),
        );
        assert_eq!(v.len(), 1);
        assert!(
            v[0].ok
                && v[0].message.contains("ConfigMap apps/acme-convex-auth")
                && v[0].message.contains("2 providers")
        );
    }

    #[test]
    fn proxy_mode_reports_availability_and_where_convex_fetches() {
        let c = children("clientId: client_1");
        let v = verdicts(&c, &Applied::default());
        assert_eq!(
            find(&v, PROXY_AVAILABLE).message,
            "0/2 mirror pods available: see kubectl describe deployment"
        );
        assert!(!find(&v, PUBLIC_JWKS_URL).ok);
        let v = verdicts(
            &c,
            &Applied {
                available_replicas: 1,
                ..Applied::default()
            },
        );
        assert!(find(&v, PROXY_AVAILABLE).ok);
        let v = verdicts(
            &children("{clientId: client_1, jwks: {publicUrl: 'https://k.acme.com'}}"),
            &Applied::default(),
        );
        assert!(find(&v, PUBLIC_JWKS_URL).ok);
        let v = verdicts(
            &children("{clientId: client_1, proxy: {replicas: 0}}"),
            &Applied::default(),
        );
        assert_eq!(find(&v, PROXY_AVAILABLE).reason, "ScaledToZero");
    }

    #[test]
    fn conflicts_name_the_object_and_the_fix() {
        let applied = Applied {
            conflicts: vec![
                "ConfigMap apps/acme-convex-auth".into(),
                "Service apps/acme-jwks".into(),
            ],
            available_replicas: 2,
        };
        let v = verdicts(&children("clientId: client_1"), &applied);
        let config = find(&v, CONFIG_READY);
        assert!(
            !config.ok
                && config
                    .message
                    .starts_with("ConfigMap apps/acme-convex-auth exists and is not controlled")
        );
        assert!(config.message.contains("spec.configMap.name"));
        let proxy = find(&v, PROXY_AVAILABLE);
        assert_eq!(proxy.reason, "Conflict");
        assert!(proxy.message.starts_with("Service apps/acme-jwks exist"));
    }
}
