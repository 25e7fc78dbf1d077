//! Step 1c, pure: a host belongs to the namespace that first served it.
//!
//! Nothing in the Ingress or the Gateway API stops a second namespace from naming a host the
//! first one serves, and ingress controllers and Gateways then pick the older route or the
//! longer path: a tenant could put its own upstream's keys at another tenant's JWKS URL and get
//! its tokens accepted by the other tenant's Convex. So an Ingress host or HTTPRoute hostname
//! that an Ingress or HTTPRoute of this operator serves for another namespace is refused.
//!
//! Who holds a host is read from the children the operator created (the watch caches), not from
//! the resources' specs: the claim dates from when the operator admitted it (the child's
//! `creationTimestamp`), so a resource created long ago cannot take a host by being edited to
//! name it. Two claims made at once (both created before either was seen) are settled the way
//! the Gateway API settles conflicting routes: the older object, then `namespace/name` in
//! alphabetical order; the loser's reconcile, set off by the watch event of its own child,
//! removes it.

use k8s_openapi::jiff::Timestamp;

use super::validate::Valid;

/// A host an Ingress or HTTPRoute of this operator answers, as the watch caches hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostClaim {
    /// Normalised ([`normalise`]).
    pub host: String,
    pub namespace: String,
    /// The Ingress's or HTTPRoute's name.
    pub name: String,
    /// Its `creationTimestamp`: when the operator admitted the claim.
    pub since: Option<Timestamp>,
}

impl HostClaim {
    /// Earlier claims sort first; one without a time (never from the apiserver) last.
    fn rank(&self) -> (bool, Option<Timestamp>, &str, &str) {
        (
            self.since.is_none(),
            self.since,
            &self.namespace,
            &self.name,
        )
    }
}

/// A host another namespace holds. The message names the host and the field, never the other
/// namespace or its resource: they are not the asking tenant's to know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{field}: host {host:?} is already served by a WorkOSConvexAuth in another namespace, and a host belongs to the namespace that served it first; use another host (the cluster admin can give each namespace its own domain with --allowed-ingress-host-suffixes '{{namespace}}.<domain>', chart policy.ingress.hostSuffixes)"
)]
pub struct HostTaken {
    pub field: String,
    pub host: String,
}

/// Host names compare case-blind, a trailing dot ignored (`JWKS.Example.com.` is
/// `jwks.example.com`).
pub fn normalise(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// The hosts the resource's Ingress or HTTPRoute would answer, each with its field.
pub fn wanted(valid: &Valid) -> Vec<(String, String)> {
    let ingress = valid
        .ingress()
        .map(|ingress| ("spec.ingress.host".to_string(), normalise(&ingress.host)));
    let route = valid.route().into_iter().flat_map(|route| {
        route
            .hostnames
            .iter()
            .enumerate()
            .map(|(i, host)| (format!("spec.httpRoute.hostnames[{i}]"), normalise(host)))
    });
    ingress.into_iter().chain(route).collect()
}

/// Refuses a host of `valid` that an earlier claim of another namespace holds. `claims` are the
/// claims on the hosts of [`wanted`] (others are ignored); `own_child` is the name of the
/// resource's own Ingress or HTTPRoute, whose claim on a host dates from its creation.
pub fn check(valid: &Valid, own_child: &str, claims: &[HostClaim]) -> Result<(), HostTaken> {
    for (field, host) in wanted(valid) {
        let on_host = || claims.iter().filter(|c| c.host == host);
        let own = on_host().find(|c| c.namespace == valid.namespace && c.name == own_child);
        let taken = on_host()
            .filter(|c| c.namespace != valid.namespace)
            .any(|other| own.is_none_or(|own| other.rank() < own.rank()));
        if taken {
            return Err(HostTaken { field, host });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::fixtures::resource;
    use crate::reconcile::validate;

    fn valid(namespace: &str, spec: &str) -> Valid {
        let mut r = resource(spec);
        r.metadata.namespace = Some(namespace.into());
        validate(&r, None, crate::reconcile::names::DEFAULT_CLUSTER_DOMAIN).expect("valid")
    }

    fn claim(host: &str, namespace: &str, second: i64) -> HostClaim {
        HostClaim {
            host: host.into(),
            namespace: namespace.into(),
            name: "acme-jwks".into(),
            since: Some(Timestamp::from_second(second).expect("a time")),
        }
    }

    const INGRESS: &str = "{clientId: client_01A, ingress: {enabled: true, host: JWKS.Acme.com.}}";
    const ROUTE: &str = "{clientId: client_01A, httpRoute: {parentRefs: [{name: p}], hostnames: [a.acme.com, jwks.acme.com]}}";

    #[test]
    fn a_host_another_namespace_serves_is_refused_naming_the_field_and_the_host_only() {
        let b = valid("tenant-b", INGRESS);
        let taken =
            check(&b, "acme-jwks", &[claim("jwks.acme.com", "tenant-a", 10)]).expect_err("taken");
        assert_eq!(
            taken,
            HostTaken {
                field: "spec.ingress.host".into(),
                host: "jwks.acme.com".into()
            }
        );
        let message = taken.to_string();
        assert!(!message.contains("tenant-a"), "{message}");
        assert!(message.contains("policy.ingress.hostSuffixes"), "{message}");

        let route = valid("tenant-b", ROUTE);
        let taken = check(
            &route,
            "acme-jwks",
            &[claim("jwks.acme.com", "tenant-a", 10)],
        )
        .expect_err("taken");
        assert_eq!(taken.field, "spec.httpRoute.hostnames[1]");
    }

    #[test]
    fn the_same_namespace_shares_and_the_earlier_claim_keeps_the_host() {
        let b = valid("tenant-b", INGRESS);
        // Another resource of the same namespace: shared.
        let mut sibling = claim("jwks.acme.com", "tenant-b", 5);
        sibling.name = "other-jwks".into();
        assert_eq!(check(&b, "acme-jwks", &[sibling]), Ok(()));
        // B's own Ingress is older than A's: B keeps it, A's is the one to go.
        let claims = [
            claim("jwks.acme.com", "tenant-b", 10),
            claim("jwks.acme.com", "tenant-a", 20),
        ];
        assert_eq!(check(&b, "acme-jwks", &claims), Ok(()));
        let a = valid("tenant-a", INGRESS);
        assert!(check(&a, "acme-jwks", &claims).is_err());
        // Created in the same second: namespace order decides, the same way for both.
        let tie = [
            claim("jwks.acme.com", "tenant-b", 10),
            claim("jwks.acme.com", "tenant-a", 10),
        ];
        assert_eq!(check(&a, "acme-jwks", &tie), Ok(()));
        assert!(check(&b, "acme-jwks", &tie).is_err());
        // Other hosts do not matter.
        assert_eq!(
            check(&b, "acme-jwks", &[claim("jwks.acme.org", "tenant-a", 1)]),
            Ok(())
        );
    }

    #[test]
    fn hosts_compare_case_blind_without_the_trailing_dot() {
        assert_eq!(normalise("JWKS.Acme.com."), "jwks.acme.com");
        assert_eq!(
            wanted(&valid("ns", INGRESS)),
            [("spec.ingress.host".to_string(), "jwks.acme.com".to_string())]
        );
    }
}
