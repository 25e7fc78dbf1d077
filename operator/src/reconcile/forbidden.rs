//! A 403 from the apiserver on one of the operator's own requests: the RBAC it runs with lacks
//! a rule. Never silent: the status and one Warning name the verb, the object, and the chart
//! value or rule that grants it.

use std::fmt;

/// The operator may not do `verb` on `resource` `namespace/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// `get`, `create or patch`, ...
    pub verb: &'static str,
    /// The API resource, plural, as RBAC rules name it (`secrets`, `deployments`).
    pub resource: &'static str,
    pub namespace: String,
    pub name: String,
}

impl Forbidden {
    /// `Some` when `error` is the apiserver's 403.
    pub fn of(
        error: &kube::Error,
        verb: &'static str,
        resource: &'static str,
        namespace: &str,
        name: &str,
    ) -> Option<Self> {
        matches!(error, kube::Error::Api(status) if status.code == 403).then(|| Self {
            verb,
            resource,
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }

    /// What grants the permission: the chart value first, then the rule for a role of one's own.
    pub fn grant(&self) -> &'static str {
        match self.resource {
            "secrets" => {
                "the chart value rbac.secrets=true grants it (with rbac.secretNames set, list this Secret there); a role of your own needs a rule with verb get on secrets in this namespace"
            }
            _ => {
                "the chart's role grants it (rbac.create=true, and this namespace among watchNamespaces when that is set); a role of your own needs the rules README \"RBAC\" lists"
            }
        }
    }
}

impl fmt::Display for Forbidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the operator may not {} {} {}/{} (403 Forbidden): {}",
            self.verb,
            self.resource,
            self.namespace,
            self.name,
            self.grant()
        )
    }
}

impl std::error::Error for Forbidden {}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("secrets \"s\" is forbidden", "Forbidden")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn a_403_names_the_verb_the_object_and_the_chart_value() {
        let forbidden =
            Forbidden::of(&status(403), "get", "secrets", "apps", "workos").expect("a 403");
        let message = forbidden.to_string();
        assert!(
            message.starts_with("the operator may not get secrets apps/workos (403 Forbidden)"),
            "{message}"
        );
        assert!(message.contains("rbac.secrets=true"), "{message}");
        assert_eq!(
            Forbidden::of(&status(404), "get", "secrets", "apps", "w"),
            None
        );
        assert_eq!(
            Forbidden::of(&status(500), "get", "secrets", "apps", "w"),
            None
        );
        let write = Forbidden::of(
            &status(403),
            "create or patch",
            "deployments",
            "apps",
            "acme-jwks",
        )
        .unwrap()
        .to_string();
        assert!(write.contains("rbac.create=true"), "{write}");
    }
}
