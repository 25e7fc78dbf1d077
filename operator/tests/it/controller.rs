//! The controller against a real kube-apiserver (tests/harness): children, updates, mode
//! switches, drift repair, conflicts, references, steady state, Inline mode and start-up.

use super::support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use support::mirror::jwks_of;
use tokio::task::JoinHandle;
use wca_test_harness::fake_workos::{FakeWorkos, Fault};
use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::api::WorkOSConvexAuth;
use workos_convex_auth::controller::{RunArgs, run_with_client};

const WAIT: Duration = Duration::from_secs(20);

pub(crate) struct Scenario {
    client: Client,
    /// The client the operator runs with: `client`, or a ServiceAccount's ([`Scenario::audited`]).
    operator_client: Client,
    pub(crate) ns: String,
    controller: Option<JoinHandle<()>>,
    policy: Vec<String>,
    /// Where the operator's admin server listens (`/metrics`).
    pub(crate) admin_addr: String,
}

impl Scenario {
    pub(crate) async fn new(test: &str) -> Self {
        // The fake WorkOS serves plain http on loopback: allowed here, never by default.
        Self::with_policy(
            test,
            &[
                "--allow-http-upstream",
                "--allowed-upstream-networks",
                "127.0.0.0/8",
                "--allowed-upstream-hosts",
                "127.0.0.1",
                "--allowed-ingress-annotations",
                "a.example/*,b.example/*",
            ],
        )
        .await
    }

    /// A scenario whose operator runs with these policy flags (and no others).
    pub(crate) async fn with_policy(test: &str, policy: &[&str]) -> Self {
        Self::on(ControlPlane::shared(), test, policy).await
    }

    /// A scenario on another control plane (one with the CRDs installed).
    pub(crate) async fn on(cp: &ControlPlane, test: &str, policy: &[&str]) -> Self {
        let client = cp.client().await.unwrap();
        let ns = cp.namespace(&client, test).await.unwrap();
        let mut s = Scenario {
            operator_client: client.clone(),
            client,
            ns,
            controller: None,
            policy: policy.iter().map(|f| f.to_string()).collect(),
            admin_addr: String::new(),
        };
        s.start_controller();
        s
    }

    /// As [`Scenario::new`], with the operator running as ServiceAccount `default/<namespace>`
    /// (bound to cluster-admin), so the audit log tells its requests apart
    /// ([`Scenario::operator_writes`]).
    pub(crate) async fn audited(test: &str) -> Self {
        Self::audited_with(test, &[]).await
    }

    /// As [`Scenario::audited`], with `extra` flags after [`Scenario::new`]'s.
    pub(crate) async fn audited_with(test: &str, extra: &[&str]) -> Self {
        let mut s = Self::new(test).await;
        s.policy.extend(extra.iter().map(|f| f.to_string()));
        s.stop_controller();
        let cp = ControlPlane::shared();
        let kubeconfig = cp.service_account_kubeconfig(&s.ns).unwrap();
        s.operator_client = wca_test_harness::client_for(&kubeconfig).await.unwrap();
        s.start_controller();
        s
    }

    /// Starts the operator, its admin server on a port of its own (a restarted operator's
    /// predecessor may still hold the last one for a moment).
    pub(crate) fn start_controller(&mut self) {
        self.admin_addr = format!("127.0.0.1:{}", support::process::free_port());
        let mut flags = vec![
            "--namespace",
            &self.ns,
            "--proxy-image",
            "example.com/workos-convex-auth:test",
            "--admin-addr",
            &self.admin_addr,
            "--log-format",
            "text",
        ];
        flags.extend(self.policy.iter().map(String::as_str));
        let args = RunArgs::parse_flags(flags).unwrap();
        let client = self.operator_client.clone();
        self.controller = Some(tokio::spawn(async move {
            run_with_client(client, args)
                .await
                .expect("controller runs");
        }));
    }

    /// The policy flags of the next [`Scenario::start_controller`].
    pub(crate) fn set_policy(&mut self, policy: &[&str]) {
        self.policy = policy.iter().map(|f| f.to_string()).collect();
    }

    pub(crate) fn stop_controller(&mut self) {
        if let Some(handle) = self.controller.take() {
            handle.abort();
        }
    }

    pub(crate) fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub(crate) async fn create(&self, name: &str, spec: serde_json::Value) -> WorkOSConvexAuth {
        let r: WorkOSConvexAuth = serde_json::from_value(json!({
            "apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        self.api::<WorkOSConvexAuth>()
            .create(&PostParams::default(), &r)
            .await
            .unwrap()
    }

    /// Creates Secret `name` holding `string_data` (stringData) in the scenario's namespace.
    pub(crate) async fn create_secret(&self, name: &str, string_data: serde_json::Value) {
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": string_data}))
                .unwrap();
        self.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    pub(crate) async fn patch_spec(&self, name: &str, spec: serde_json::Value) {
        let patch = json!({"spec": spec});
        self.api::<WorkOSConvexAuth>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    pub(crate) async fn version<K>(&self, name: &str) -> String
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        self.api::<K>()
            .get(name)
            .await
            .unwrap()
            .resource_version()
            .unwrap()
    }

    /// Waits until the object `name` exists and returns it.
    pub(crate) async fn appears<K>(&self, name: &str, what: &str) -> K
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let api = self.api::<K>();
        eventually(WAIT, what, || async { api.get_opt(name).await.ok()? })
            .await
            .unwrap()
    }

    /// Waits until the object `name` no longer exists.
    pub(crate) async fn gone<K>(&self, name: &str, what: &str)
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let api = self.api::<K>();
        eventually(WAIT, what, || async {
            api.get_opt(name).await.ok()?.is_none().then_some(())
        })
        .await
        .unwrap();
    }

    pub(crate) async fn config_json(&self, cm: &str) -> Option<String> {
        let cm = self.api::<ConfigMap>().get_opt(cm).await.ok()??;
        cm.data?.get("auth.config.json").cloned()
    }

    /// Waits for a condition of the resource's status to have `status` and returns its message.
    pub(crate) async fn condition(&self, name: &str, type_: &str, status: &str) -> String {
        let api = self.api::<WorkOSConvexAuth>();
        eventually(
            WAIT,
            &format!("{name} condition {type_}={status}"),
            || async {
                let r = api.get(name).await.ok()?;
                let c = r
                    .status?
                    .conditions
                    .into_iter()
                    .find(|c| c.type_ == type_ && c.status == status)?;
                Some(c.message)
            },
        )
        .await
        .unwrap()
    }

    /// Waits until the resource is refused with `reason` (`Ready=False`) and returns the message.
    pub(crate) async fn refused(&self, name: &str, reason: &str) -> String {
        let api = self.api::<WorkOSConvexAuth>();
        eventually(WAIT, &format!("{name} refused with {reason}"), || async {
            let r = api.get(name).await.ok()?;
            let c = r
                .status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.status == "False" && c.reason == reason)?;
            Some(c.message)
        })
        .await
        .unwrap()
    }

    /// Whether the mirror's Deployment, Service or Ingress of `resource` exists.
    pub(crate) async fn has_workloads(&self, resource: &str) -> bool {
        let name = format!("{resource}-jwks");
        self.api::<Deployment>()
            .get_opt(&name)
            .await
            .unwrap()
            .is_some()
            || self
                .api::<Service>()
                .get_opt(&name)
                .await
                .unwrap()
                .is_some()
            || self
                .api::<Ingress>()
                .get_opt(&name)
                .await
                .unwrap()
                .is_some()
    }

    pub(crate) async fn events(&self, reason: &str) -> Vec<String> {
        let events: Api<Event> = self.api();
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .filter_map(|e| e.note)
            .collect()
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.stop_controller();
    }
}

fn owned_by(meta: &impl Resource, owner: &WorkOSConvexAuth) -> bool {
    meta.owner_references().iter().any(|o| {
        o.uid == owner.uid().unwrap() && o.controller == Some(true) && o.kind == "WorkOSConvexAuth"
    })
}

#[tokio::test]
async fn create_makes_every_child_with_owner_references_and_status() {
    let s = Scenario::new("create").await;
    let r = s.create("acme", json!({"clientId": "client_01A"})).await;
    let cm = s
        .appears::<ConfigMap>("acme-convex-auth", "ConfigMap")
        .await;
    assert!(owned_by(&cm, &r));
    assert_eq!(
        cm.labels()["app.kubernetes.io/managed-by"],
        "workos-convex-auth"
    );
    let data = cm.data.unwrap();
    assert!(data["auth.config.ts"].contains("satisfies AuthConfig"));
    assert!(data["auth.config.json"].contains(&format!(
        "http://acme-jwks.{}.svc.cluster.local/sso/jwks/client_01A",
        s.ns
    )));
    let deployment = s.appears::<Deployment>("acme-jwks", "Deployment").await;
    assert!(owned_by(&deployment, &r));
    let args = deployment.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap();
    assert!(
        args.contains(
            &"/sso/jwks/client_01A=https://api.workos.com/sso/jwks/client_01A".to_string()
        ),
        "{args:?}"
    );
    // Children are applied one after another: wait for each rather than assume the order.
    let service = s.appears::<Service>("acme-jwks", "Service").await;
    assert!(owned_by(&service, &r));
    let pdb = s
        .appears::<PodDisruptionBudget>("acme-jwks", "PodDisruptionBudget")
        .await;
    assert!(owned_by(&pdb, &r));

    // No kubelet runs here, so the mirror never becomes available: status says so, honestly.
    let message = s.condition("acme", "ProxyAvailable", "False").await;
    assert!(message.contains("0/2 mirror pods available"), "{message}");
    let warning = s.condition("acme", "PublicJwksUrl", "False").await;
    assert!(
        warning.contains("only a Convex backend inside this cluster"),
        "{warning}"
    );
    s.condition("acme", "ConfigReady", "True").await;
    let status = s
        .api::<WorkOSConvexAuth>()
        .get("acme")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.config_map_name.as_deref(), Some("acme-convex-auth"));
    assert_eq!(
        status.issuers,
        [
            "https://api.workos.com/",
            "https://api.workos.com/user_management/client_01A"
        ]
    );
    assert_eq!(status.observed_generation, Some(1));
    assert!(
        !s.events("ConfigCreated").await.is_empty(),
        "a Normal event on create"
    );
}

/// Children are created with a plain create (never a forced apply that could adopt an object
/// made in between) and then kept by server-side apply: a field the spec drops goes, although
/// the create wrote it.
#[tokio::test]
async fn a_field_the_spec_drops_is_removed_from_a_created_child() {
    let s = Scenario::new("drop-field").await;
    s.create(
        "acme",
        json!({"clientId": "client_01A", "ingress": {"enabled": true, "host": "jwks.acme.com", "annotations": {"a.example/keep": "1", "b.example/drop": "2"}}}),
    )
    .await;
    let ingress = s.appears::<Ingress>("acme-jwks", "Ingress").await;
    assert!(ingress.annotations().contains_key("b.example/drop"));
    s.patch_spec(
        "acme",
        json!({"ingress": {"annotations": {"b.example/drop": null}}}),
    )
    .await;
    eventually(WAIT, "the dropped annotation removed", || async {
        let ingress = s.api::<Ingress>().get("acme-jwks").await.ok()?;
        let annotations = ingress.annotations();
        (annotations.contains_key("a.example/keep") && !annotations.contains_key("b.example/drop"))
            .then_some(())
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn spec_updates_and_mode_switches_update_and_remove_children() {
    let s = Scenario::new("switch").await;
    s.create(
        "acme",
        json!({"clientId": "client_01A", "ingress": {"enabled": true, "host": "jwks.acme.com"}}),
    )
    .await;
    s.appears::<Ingress>("acme-jwks", "Ingress").await;

    s.patch_spec("acme", json!({"authDomain": "auth.acme.com"}))
        .await;
    eventually(WAIT, "custom-domain issuer in the ConfigMap", || async {
        s.config_json("acme-convex-auth")
            .await
            .filter(|j| j.contains("https://auth.acme.com/user_management/client_01A"))
    })
    .await
    .unwrap();
    // Events are sent once every child is applied, so shortly after the ConfigMap changes.
    eventually(WAIT, "a ConfigUpdated event", || async {
        (!s.events("ConfigUpdated").await.is_empty()).then_some(())
    })
    .await
    .unwrap();

    s.patch_spec("acme", json!({"ingress": {"enabled": false}}))
        .await;
    s.gone::<Ingress>("acme-jwks", "Ingress removed").await;
    assert!(
        s.api::<Deployment>()
            .get_opt("acme-jwks")
            .await
            .unwrap()
            .is_some(),
        "the mirror stays"
    );

    s.patch_spec("acme", json!({"jwks": {"mode": "Direct"}}))
        .await;
    eventually(WAIT, "mirror removed", || async {
        let gone = s
            .api::<Deployment>()
            .get_opt("acme-jwks")
            .await
            .ok()?
            .is_none()
            && s.api::<Service>()
                .get_opt("acme-jwks")
                .await
                .ok()?
                .is_none()
            && s.api::<PodDisruptionBudget>()
                .get_opt("acme-jwks")
                .await
                .ok()?
                .is_none();
        gone.then_some(())
    })
    .await
    .unwrap();
    let json = s.config_json("acme-convex-auth").await.unwrap();
    assert!(
        json.contains("\"jwks\": \"https://api.workos.com/sso/jwks/client_01A\""),
        "{json}"
    );
    s.condition("acme", "Ready", "True").await;

    s.patch_spec("acme", json!({"configMap": {"name": "renamed"}}))
        .await;
    s.gone::<ConfigMap>("acme-convex-auth", "old ConfigMap removed")
        .await;
    assert!(s.config_json("renamed").await.is_some());
}

#[tokio::test]
async fn children_deleted_or_edited_by_hand_are_restored() {
    let s = Scenario::new("drift").await;
    s.create("acme", json!({"clientId": "client_01A"})).await;
    let original = eventually(WAIT, "ConfigMap", || s.config_json("acme-convex-auth"))
        .await
        .unwrap();

    let edit = json!({"data": {"auth.config.json": "{}"}});
    s.api::<ConfigMap>()
        .patch(
            "acme-convex-auth",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(&json!({"apiVersion": "v1", "kind": "ConfigMap", "data": edit["data"]})),
        )
        .await
        .unwrap();
    eventually(WAIT, "edited ConfigMap restored", || async {
        s.config_json("acme-convex-auth")
            .await
            .filter(|j| *j == original)
    })
    .await
    .unwrap();

    s.api::<Service>()
        .delete("acme-jwks", &DeleteParams::default())
        .await
        .unwrap();
    s.appears::<Service>("acme-jwks", "deleted Service restored")
        .await;
    s.api::<ConfigMap>()
        .delete("acme-convex-auth", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "deleted ConfigMap restored", || {
        s.config_json("acme-convex-auth")
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_existing_object_it_does_not_control_is_left_untouched_and_reported() {
    let s = Scenario::new("conflict").await;
    let theirs: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "acme-convex-auth"}, "data": {"mine": "yes"}}),
    )
    .unwrap();
    let before = s
        .api::<ConfigMap>()
        .create(&PostParams::default(), &theirs)
        .await
        .unwrap();
    s.create(
        "acme",
        json!({"clientId": "client_01A", "jwks": {"mode": "Direct"}}),
    )
    .await;
    let message = s.condition("acme", "ConfigReady", "False").await;
    assert!(
        message.contains(&format!(
            "ConfigMap {}/acme-convex-auth exists and is not controlled",
            s.ns
        )),
        "{message}"
    );
    assert!(
        message.contains("spec.configMap.name"),
        "the message says how to fix it: {message}"
    );
    let after = s.api::<ConfigMap>().get("acme-convex-auth").await.unwrap();
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "never modified"
    );
    assert_eq!(after.data.unwrap()["mine"], "yes");
    assert!(!s.events("Conflict").await.is_empty());
    // Renaming resolves it.
    s.patch_spec("acme", json!({"configMap": {"name": "acme-auth"}}))
        .await;
    s.condition("acme", "Ready", "True").await;
    assert!(
        s.api::<ConfigMap>()
            .get_opt("acme-convex-auth")
            .await
            .unwrap()
            .is_some(),
        "still there"
    );
}

#[tokio::test]
async fn a_missing_secret_is_reported_then_recovered_from() {
    let s = Scenario::new("secret").await;
    s.create("acme", json!({"clientIdFrom": {"secretKeyRef": {"name": "workos", "key": "client-id"}}, "jwks": {"mode": "Direct"}})).await;
    let message = s.condition("acme", "ConfigReady", "False").await;
    assert!(
        message.contains(&format!(
            "Secret {}/workos (spec.clientIdFrom.secretKeyRef.name) does not exist",
            s.ns
        )),
        "{message}"
    );
    s.create_secret("workos", json!({"client-id": "client_01FROMSECRET"}))
        .await;
    s.condition("acme", "Ready", "True").await;
    assert!(
        s.config_json("acme-convex-auth")
            .await
            .unwrap()
            .contains("client_01FROMSECRET")
    );
}

/// Ingress annotations are denied by default: a key of every class that acts outside the Ingress
/// (and a harmless one) is refused with the field and the chart value named, and no Ingress (no
/// child at all) is created: the operator would create it under its own identity. Listed
/// exactly by the admin, the same resources get their Ingress, annotations applied.
#[tokio::test]
async fn annotations_are_refused_by_default_and_applied_once_listed() {
    let upstream = [
        "--allow-http-upstream",
        "--allowed-upstream-networks",
        "127.0.0.0/8",
        "--allowed-upstream-hosts",
        "127.0.0.1",
    ];
    let mut s = Scenario::with_policy("annotations", &upstream).await;
    let keys = [
        "example.com/team",
        "nginx.ingress.kubernetes.io/server-snippet",
        "nginx.ingress.kubernetes.io/permanent-redirect",
        "external-dns.alpha.kubernetes.io/hostname",
        "cert-manager.io/cluster-issuer",
        "traefik.ingress.kubernetes.io/router.priority",
        "alb.ingress.kubernetes.io/group.name",
        "ingress.gcp.kubernetes.io/pre-shared-cert",
    ];
    for (i, key) in keys.iter().enumerate() {
        s.create(&format!("r{i}"), json!({"clientId": "client_01A", "ingress": {"enabled": true, "host": format!("r{i}.acme.com"), "annotations": {*key: "x"}}})).await;
    }
    for (i, key) in keys.iter().enumerate() {
        let name = format!("r{i}");
        let message = s.refused(&name, "NotAllowed").await;
        assert!(
            message.starts_with(&format!("spec.ingress.annotations[{key:?}]: the operator sets no Ingress annotations unless the cluster admin lists them")),
            "{message}"
        );
        assert!(
            message.contains("chart value policy.ingress.annotations"),
            "{message}"
        );
        assert!(!s.has_workloads(&name).await, "{name} has workloads");
    }

    s.stop_controller();
    let listed = keys.join(",");
    s.set_policy(&[&upstream[..], &["--allowed-ingress-annotations", &listed]].concat());
    s.start_controller();
    for (i, key) in keys.iter().enumerate() {
        let ingress: Ingress = s
            .appears(&format!("r{i}-jwks"), "the Ingress once listed")
            .await;
        assert_eq!(
            ingress.annotations().get(*key).map(String::as_str),
            Some("x"),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_referenced_value_that_is_not_a_client_id_is_never_echoed() {
    let s = Scenario::new("no-echo").await;
    let leaked = "postgres://admin:S3cr3t@db";
    s.create_secret("db", json!({"url": leaked})).await;
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "db-config"}, "data": {"url": leaked}}))
            .unwrap();
    s.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    s.create("from-secret", json!({"clientIdFrom": {"secretKeyRef": {"name": "db", "key": "url"}}, "jwks": {"mode": "Direct"}})).await;
    s.create("from-config-map", json!({"clientIdFrom": {"configMapKeyRef": {"name": "db-config", "key": "url"}}, "jwks": {"mode": "Direct"}})).await;
    for (name, kind, object) in [
        ("from-secret", "Secret", "db"),
        ("from-config-map", "ConfigMap", "db-config"),
    ] {
        let message = s.condition(name, "ConfigReady", "False").await;
        assert!(
            message.contains(&format!(
                "key \"url\" of {kind} \"{object}\" does not hold a WorkOS client id"
            )),
            "{message}"
        );
        let status =
            serde_json::to_string(&s.api::<WorkOSConvexAuth>().get(name).await.unwrap().status)
                .unwrap();
        assert!(!status.contains("S3cr3t"), "{status}");
    }
    let api = s.api::<Event>();
    let events = eventually(WAIT, "the InvalidSpec events", || async {
        let all = api.list(&ListParams::default()).await.ok()?.items;
        (all.iter()
            .filter(|e| e.reason.as_deref() == Some("InvalidSpec"))
            .count()
            >= 2)
            .then_some(all)
    })
    .await
    .unwrap();
    let text = serde_json::to_string(&events).unwrap();
    assert!(
        !text.contains("S3cr3t") && !text.contains("postgres"),
        "{text}"
    );
}

#[tokio::test]
async fn a_referenced_config_map_change_re_renders() {
    let s = Scenario::new("configmap ref").await;
    let source: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "workos"}, "data": {"id": "client_01ONE"}}),
    )
    .unwrap();
    s.api::<ConfigMap>()
        .create(&PostParams::default(), &source)
        .await
        .unwrap();
    s.create("acme", json!({"clientIdFrom": {"configMapKeyRef": {"name": "workos", "key": "id"}}, "jwks": {"mode": "Direct"}})).await;
    eventually(WAIT, "first id", || async {
        s.config_json("acme-convex-auth")
            .await
            .filter(|j| j.contains("client_01ONE"))
    })
    .await
    .unwrap();
    s.api::<ConfigMap>()
        .patch(
            "workos",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"id": "client_01TWO"}})),
        )
        .await
        .unwrap();
    eventually(WAIT, "new id", || async {
        s.config_json("acme-convex-auth")
            .await
            .filter(|j| j.contains("client_01TWO"))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_settled_resource_causes_no_writes_across_resyncs() {
    let mut s = Scenario::new("steady").await;
    s.create(
        "acme",
        json!({"clientId": "client_01A", "ingress": {"enabled": true, "host": "jwks.acme.com"}}),
    )
    .await;
    s.condition("acme", "ConfigReady", "True").await;
    s.condition("acme", "ProxyAvailable", "False").await;
    async fn versions(s: &Scenario) -> Vec<String> {
        vec![
            s.version::<WorkOSConvexAuth>("acme").await,
            s.version::<ConfigMap>("acme-convex-auth").await,
            s.version::<Deployment>("acme-jwks").await,
            s.version::<Service>("acme-jwks").await,
            s.version::<PodDisruptionBudget>("acme-jwks").await,
            s.version::<Ingress>("acme-jwks").await,
        ]
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled = versions(&s).await;
    let events_before = s
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    // A restarted controller reconciles everything again: a forced resync, twice.
    for _ in 0..2 {
        s.stop_controller();
        s.start_controller();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert_eq!(
        versions(&s).await,
        settled,
        "resource or children were written although nothing changed"
    );
    assert_eq!(
        s.api::<Event>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        events_before,
        "no new events"
    );
}

#[tokio::test]
async fn inline_mode_embeds_upstream_keys_and_reports_rotation() {
    let upstream = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    let s = Scenario::new("inline").await;
    s.create("acme", json!({"clientId": "client_01A", "jwks": {"mode": "Inline", "upstreamBase": upstream.base_url()}, "proxy": {"refreshInterval": "10s"}})).await;
    let json = eventually(WAIT, "inline config", || s.config_json("acme-convex-auth"))
        .await
        .unwrap();
    let url = json
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("\"jwks\": \"data:application/json;base64,")
        })
        .unwrap()
        .trim_end_matches([',', '"']);
    use base64::Engine;
    let keys = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(url)
            .unwrap(),
    )
    .unwrap();
    assert!(keys.contains("\"kid\":\"test-rsa-a\""), "{keys}");
    assert!(!keys.contains("\"d\""), "no private members");
    assert!(upstream.hits("/sso/jwks/client_01A") >= 1);
    s.condition("acme", "Ready", "True").await;
    let status = s
        .api::<WorkOSConvexAuth>()
        .get("acme")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.key_ids, ["test-rsa-a"]);

    upstream.set_document(jwks_of(&["rsa-b.jwk.json"]));
    eventually(
        Duration::from_secs(40),
        "rotated key in the ConfigMap",
        || async {
            let json = s.config_json("acme-convex-auth").await?;
            let b64 = json
                .lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("\"jwks\": \"data:application/json;base64,")
                })?
                .trim_end_matches([',', '"'])
                .to_string();
            let keys =
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).ok()?)
                    .ok()?;
            keys.contains("test-rsa-b").then_some(())
        },
    )
    .await
    .unwrap();
    let rotated = eventually(WAIT, "KeysRotated event", || async {
        s.events("KeysRotated").await.into_iter().next()
    })
    .await
    .unwrap();
    assert!(
        rotated.contains("npx convex deploy") && rotated.contains("test-rsa-a → test-rsa-b"),
        "{rotated}"
    );
}

#[tokio::test]
async fn starting_before_the_crd_exists_is_a_clear_error() {
    let bare = ControlPlane::start().unwrap(); // no CRDs installed
    let client = bare.client().await.unwrap();
    let args =
        RunArgs::parse_flags(["--admin-addr", "127.0.0.1:0", "--log-format", "text"]).unwrap();
    let err = run_with_client(client, args).await.unwrap_err().to_string();
    assert!(
        err.contains("CRD is not installed")
            && err.contains("kubectl apply --server-side -f crds/"),
        "{err}"
    );
}

/// The admin's policy on a real apiserver: a resource within it gets its children; each one
/// outside it gets `Ready=False`, reason `NotAllowed`, naming the field, and no workload; a
/// resource edited out of policy loses the workloads it had.
#[tokio::test]
async fn the_admin_policy_admits_or_refuses_with_the_field_named() {
    let s = Scenario::with_policy(
        "policy",
        &[
            "--allowed-ingress-classes",
            "traefik",
            "--allowed-ingress-host-suffixes",
            "acme.com",
            "--max-proxy-replicas",
            "3",
            "--max-proxy-memory",
            "128Mi",
        ],
    )
    .await;
    let within = json!({"clientId": "client_01A", "proxy": {"replicas": 3, "image": "example.com/workos-convex-auth:v2", "resources": {"limits": {"memory": "128Mi"}}}, "ingress": {"enabled": true, "host": "jwks.acme.com", "className": "traefik"}});
    s.create("ok", within).await;
    s.appears::<Ingress>("ok-jwks", "the admitted resource's Ingress")
        .await;
    s.appears::<Deployment>("ok-jwks", "the admitted resource's Deployment")
        .await;

    let cases = [
        (
            "class",
            json!({"ingress": {"enabled": true, "host": "jwks.acme.com", "className": "nginx"}}),
            "spec.ingress.className",
        ),
        (
            "host",
            json!({"ingress": {"enabled": true, "host": "jwks.evil.com", "className": "traefik"}}),
            "spec.ingress.host",
        ),
        (
            "snippet",
            json!({"ingress": {"enabled": true, "host": "jwks.acme.com", "className": "traefik", "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "x"}}}),
            "spec.ingress.annotations",
        ),
        (
            "image",
            json!({"proxy": {"image": "docker.io/evil/miner:latest"}}),
            "spec.proxy.image",
        ),
        (
            "replicas",
            json!({"proxy": {"replicas": 4}}),
            "spec.proxy.replicas",
        ),
        (
            "memory",
            json!({"proxy": {"resources": {"limits": {"memory": "1Gi"}}}}),
            "spec.proxy.resources.limits.memory",
        ),
        (
            "upstream",
            json!({"jwks": {"upstreamBase": "https://internal.example"}}),
            "spec.jwks.upstreamBase",
        ),
        (
            "http",
            json!({"jwks": {"upstreamBase": "http://api.workos.com"}}),
            "spec.jwks.upstreamBase",
        ),
    ];
    for (name, extra, _) in &cases {
        let mut spec = json!({"clientId": "client_01A"});
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        s.create(name, spec).await;
    }
    for (name, _, field) in &cases {
        let message = s.refused(name, "NotAllowed").await;
        assert!(message.starts_with(field), "{name}: {message}");
        assert!(
            !s.has_workloads(name).await,
            "{name}: no workload was created"
        );
    }

    // Edited out of policy: its Deployment, Service and Ingress go.
    s.patch_spec("ok", json!({"ingress": {"className": "nginx"}}))
        .await;
    s.refused("ok", "NotAllowed").await;
    s.gone::<Deployment>("ok-jwks", "the refused resource's Deployment")
        .await;
    s.gone::<Ingress>("ok-jwks", "the refused resource's Ingress")
        .await;
    s.gone::<Service>("ok-jwks", "the refused resource's Service")
        .await;
    let events = s.events("NotAllowed").await;
    assert!(events.len() >= cases.len(), "{events:?}");
}

/// Server-side request forgery through mode Inline: plain http, an IP literal, names resolving
/// to loopback, metadata and private addresses, and a cross-origin redirect are all refused
/// with a condition, and the fake upstreams see no request. Host names are mapped with
/// `--upstream-resolve` (no DNS query leaves the machine); nothing is sent to 169.254.169.254
/// or 10.1.2.3, refused before connecting.
#[tokio::test]
async fn inline_upstreams_cannot_reach_internal_addresses() {
    let upstream = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    let port = upstream.addr().port();
    let inline = |base: String| json!({"clientId": "client_01A", "jwks": {"mode": "Inline", "upstreamBase": base}});

    // Default policy: https only, WorkOS or the resource's own domains.
    let strict = Scenario::with_policy("ssrf-default", &[]).await;
    strict.create("http", inline(upstream.base_url())).await;
    let message = strict.refused("http", "NotAllowed").await;
    assert!(
        message.starts_with("spec.jwks.upstreamBase: scheme \"http\""),
        "{message}"
    );
    strict
        .create("literal", inline(format!("https://127.0.0.1:{port}")))
        .await;
    let message = strict.refused("literal", "NotAllowed").await;
    assert!(message.contains("127.0.0.1"), "{message}");

    // Hosts allowed by name, http allowed, but no internal range: refused when they resolve.
    let names = Scenario::with_policy(
        "ssrf-names",
        &[
            "--allow-http-upstream",
            "--allowed-upstream-hosts",
            "loopback.test,metadata.test,private.test,127.0.0.1",
            "--upstream-resolve",
            "loopback.test=127.0.0.1",
            "--upstream-resolve",
            "metadata.test=169.254.169.254",
            "--upstream-resolve",
            "private.test=10.1.2.3",
        ],
    )
    .await;
    for (name, host, address) in [
        ("loopback", "loopback.test", "127.0.0.1"),
        ("metadata", "metadata.test", "169.254.169.254"),
        ("private", "private.test", "10.1.2.3"),
    ] {
        names
            .create(name, inline(format!("http://{host}:{port}")))
            .await;
        let message = names.refused(name, "KeysUnavailable").await;
        assert!(
            message.contains(&format!(
                "refused: address {address} is in a loopback, private, link-local or metadata range"
            )),
            "{name}: {message}"
        );
        assert!(
            names
                .config_json(&format!("{name}-convex-auth"))
                .await
                .is_none()
        );
    }
    // An allowed IP literal in a blocked range is refused before anything is fetched.
    names
        .create("literal", inline(format!("http://127.0.0.1:{port}")))
        .await;
    let message = names.refused("literal", "NotAllowed").await;
    assert!(
        message
            .contains("address 127.0.0.1 is in a loopback, private, link-local or metadata range"),
        "{message}"
    );
    assert_eq!(
        upstream.total_hits(),
        0,
        "no refused request reached the upstream"
    );

    // Loopback allowed by the admin: a redirect to another origin is still not followed.
    let redirect = Scenario::with_policy(
        "ssrf-redirect",
        &[
            "--allow-http-upstream",
            "--allowed-upstream-hosts",
            "127.0.0.1,localhost",
            "--allowed-upstream-networks",
            "127.0.0.0/8",
        ],
    )
    .await;
    let elsewhere = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    upstream.set_fault(Fault::RedirectTo(format!(
        "http://localhost:{}/sso/jwks/client_01A",
        elsewhere.addr().port()
    )));
    redirect.create("hop", inline(upstream.base_url())).await;
    let message = redirect.refused("hop", "KeysUnavailable").await;
    assert!(message.contains("redirect to another origin"), "{message}");
    assert_eq!(
        elsewhere.total_hits(),
        0,
        "the redirect target saw no request"
    );
}

/// Specs that used to be accepted and then fail at the apiserver or in the mirror: refused up
/// front with the field named, or, when only the apiserver can tell, the apiserver's refusal
/// shown in the status, naming the child.
#[tokio::test]
async fn specs_that_would_fail_later_are_refused_with_the_field_named() {
    let s = Scenario::new("fail-later").await;
    for (name, spec, field) in [
        (
            "acme.prod",
            json!({"clientId": "client_01A"}),
            "metadata.name",
        ),
        ("1acme", json!({"clientId": "client_01A"}), "metadata.name"),
        (
            "path",
            json!({"clientId": "client_01A", "ingress": {"enabled": true, "host": "jwks.acme.com", "path": "/a//b"}}),
            "spec.ingress.path",
        ),
    ] {
        s.create(name, spec).await;
        let message = s.refused(name, "InvalidSpec").await;
        assert!(message.starts_with(field), "{name}: {message}");
        assert!(!s.has_workloads(name).await);
    }
    let long = "a".repeat(64);
    s.create(
        &long,
        json!({"clientId": "client_01A", "jwks": {"mode": "Direct"}}),
    )
    .await;
    let message = s.refused(&long, "InvalidSpec").await;
    assert!(message.contains("allows 63"), "{message}");

    // An annotation key the apiserver refuses: only it can tell, and the status shows its answer.
    s.create(
        "badkey",
        json!({"clientId": "client_01A", "ingress": {"enabled": true, "host": "jwks.acme.com", "annotations": {"a.example/not a key!": "x"}}}),
    )
    .await;
    let message = s.refused("badkey", "ApplyRejected").await;
    assert!(
        message.starts_with(&format!(
            "the apiserver refused Ingress {}/badkey-jwks: ",
            s.ns
        )),
        "{message}"
    );
    assert!(message.contains("metadata.annotations"), "{message}");
}

/// Issue 24: a resource whose `spec.convex.url` is Convex Cloud while the config gives Convex the
/// in-cluster JWKS URL is not Ready, and says so first, before the mirror's state (no kubelet
/// runs here: never available) and the sync's outcome (a missing admin key); with a public URL,
/// `Ready` reports the first of those again.
#[tokio::test]
async fn convex_outside_the_cluster_with_an_in_cluster_jwks_url_is_not_ready() {
    let s = Scenario::new("convex-reach").await;
    let convex = json!({"url": "https://happy-animal-123.convex.cloud", "adminKeySecretRef": {"name": "convex-admin", "key": "adminKey"}});
    s.create("acme", json!({"clientId": "client_01A", "convex": convex}))
        .await;
    let message = s.refused("acme", "ConvexCannotFetchKeys").await;
    assert!(
        message.starts_with(
            "spec.convex.url https://happy-animal-123.convex.cloud is outside this cluster"
        ) && message.contains(&format!("http://acme-jwks.{}.svc.cluster.local/", s.ns))
            && message
                .contains("set spec.jwks.publicUrl, enable spec.ingress, or set spec.httpRoute"),
        "{message}"
    );
    s.condition("acme", "PublicJwksUrl", "False").await;
    s.condition("acme", "ConvexSynced", "False").await;

    s.patch_spec(
        "acme",
        json!({"jwks": {"publicUrl": "https://jwks.example.com"}}),
    )
    .await;
    s.condition("acme", "PublicJwksUrl", "True").await;
    let message = s.refused("acme", "Unavailable").await;
    assert!(message.contains("mirror pods available"), "{message}");
    let sync = s.condition("acme", "ConvexSynced", "False").await;
    assert!(sync.contains("convex-admin"), "{sync}");
}
