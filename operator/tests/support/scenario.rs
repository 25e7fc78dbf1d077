//! Where a test against the apiserver works: [`Ns`], one namespace through one client, and
//! [`Scenario`], a namespace with an operator watching it (in this process, or the binary).

use std::ops::Deref;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::task::JoinHandle;
use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::api::{
    Condition, WorkOSConvexAuth, WorkOSConvexAuthSpec, WorkOSConvexAuthStatus,
};
use workos_convex_auth::controller::{RunArgs, run_with_client};
use workos_convex_auth::reconcile::reason::Reason;

use super::binary::{Admin, Binary, LOOPBACK_UPSTREAM};
use super::conditions::{Want, wait_for};
use super::fixtures::resource;
use super::process::KillOnDrop;

/// A namespaced kind the tests read.
pub trait Kind:
    Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + std::fmt::Debug
    + DeserializeOwned
{
}

impl<K> Kind for K where
    K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned
{
}

/// One namespace, written and read with one client; its waits give up after `wait`.
#[derive(Clone)]
pub struct Ns {
    pub client: Client,
    pub ns: String,
    pub wait: Duration,
}

impl Ns {
    pub fn new(client: Client, ns: &str, wait: Duration) -> Self {
        Self {
            client,
            ns: ns.to_string(),
            wait,
        }
    }

    /// A fresh namespace of `cp` for `test`, with the admin's client.
    pub async fn fresh(cp: &ControlPlane, test: &str, wait: Duration) -> Self {
        let client = cp.client().await.expect("a client");
        let ns = cp.namespace(&client, test).await.expect("a namespace");
        Self { client, ns, wait }
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Creates resource `name` with `spec`.
    pub async fn create(&self, name: &str, spec: WorkOSConvexAuthSpec) -> WorkOSConvexAuth {
        self.api::<WorkOSConvexAuth>()
            .create(&PostParams::default(), &resource(name, spec))
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"))
    }

    /// Merges `spec` into resource `name`'s spec: JSON, since `null` removes a field.
    pub async fn patch_spec(&self, name: &str, spec: serde_json::Value) {
        let patch = serde_json::json!({ "spec": spec });
        self.api::<WorkOSConvexAuth>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    /// Creates `object` (of any namespaced kind) and returns it as stored.
    pub async fn add<K: Kind + serde::Serialize>(&self, object: &K) -> K {
        self.api::<K>()
            .create(&PostParams::default(), object)
            .await
            .unwrap_or_else(|e| panic!("create {} {}: {e}", K::kind(&()), object.name_any()))
    }

    /// Creates ConfigMap `name` holding `data`, and returns it as stored.
    pub async fn create_config_map(&self, name: &str, data: serde_json::Value) -> ConfigMap {
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "data": data}))
                .unwrap();
        self.add(&cm).await
    }

    /// Creates Secret `name` holding `string_data` (stringData).
    pub async fn create_secret(&self, name: &str, string_data: serde_json::Value) {
        let secret: Secret = serde_json::from_value(
            serde_json::json!({"metadata": {"name": name}, "stringData": string_data}),
        )
        .unwrap();
        self.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }

    /// Waits for a condition of resource `name` as `want`ed, and returns it.
    pub async fn wait(&self, name: &str, want: Want) -> Condition {
        wait_for(&self.api(), name, &want, self.wait).await.1
    }

    /// Waits for a condition of resource `name` as `want`ed; its message.
    pub async fn condition(&self, name: &str, want: Want) -> String {
        self.wait(name, want).await.message
    }

    /// Waits until resource `name` is refused with `reason` (`Ready=False`); its message.
    pub async fn refused(&self, name: &str, reason: Reason) -> String {
        self.condition(name, Want::refused(reason)).await
    }

    /// The status of resource `name`, which must have one.
    pub async fn status(&self, name: &str) -> WorkOSConvexAuthStatus {
        let r = self.api::<WorkOSConvexAuth>().get(name).await.unwrap();
        r.status
            .unwrap_or_else(|| panic!("{name} has no status yet"))
    }

    pub async fn version<K: Kind>(&self, name: &str) -> String {
        self.api::<K>()
            .get(name)
            .await
            .unwrap()
            .resource_version()
            .unwrap()
    }

    pub async fn exists<K: Kind>(&self, name: &str) -> bool {
        self.api::<K>().get_opt(name).await.unwrap().is_some()
    }

    /// Waits until the object `name` exists and returns it.
    pub async fn appears<K: Kind>(&self, name: &str) -> K {
        self.appears_within(name, self.wait).await
    }

    pub async fn appears_within<K: Kind>(&self, name: &str, within: Duration) -> K {
        let api = self.api::<K>();
        eventually(within, &format!("{} {name}", K::kind(&())), || async {
            api.get_opt(name).await.ok()?
        })
        .await
        .unwrap()
    }

    /// Waits until the object `name` no longer exists.
    pub async fn gone<K: Kind>(&self, name: &str) {
        let api = self.api::<K>();
        eventually(
            self.wait,
            &format!("{} {name} gone", K::kind(&())),
            || async { api.get_opt(name).await.ok()?.is_none().then_some(()) },
        )
        .await
        .unwrap();
    }

    /// `auth.config.json` of ConfigMap `cm`, if it exists.
    pub async fn config_json(&self, cm: &str) -> Option<String> {
        let cm = self.api::<ConfigMap>().get_opt(cm).await.ok()??;
        cm.data?.get("auth.config.json").cloned()
    }

    /// Waits until `auth.config.json` of ConfigMap `cm` contains `part`, and returns it.
    pub async fn config_json_containing(&self, cm: &str, part: &str) -> String {
        eventually(self.wait, &format!("{cm} with {part:?}"), || async {
            self.config_json(cm).await.filter(|j| j.contains(part))
        })
        .await
        .unwrap()
    }

    /// Whether the mirror's Deployment, Service or Ingress of `resource` exists.
    pub async fn has_workloads(&self, resource: &str) -> bool {
        let name = format!("{resource}-jwks");
        self.exists::<Deployment>(&name).await
            || self.exists::<Service>(&name).await
            || self.exists::<Ingress>(&name).await
    }

    /// The notes of the Events with `reason`.
    pub async fn events(&self, reason: Reason) -> Vec<String> {
        self.api::<Event>()
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some(reason.as_str()))
            .filter_map(|e| e.note)
            .collect()
    }

    /// Waits for an Event with `reason`; the first one's note.
    pub async fn event(&self, reason: Reason) -> String {
        eventually(self.wait, &format!("a {reason} event"), || async {
            self.events(reason).await.into_iter().next()
        })
        .await
        .unwrap()
    }
}

/// The operator in this process (`run_with_client` on this runtime) with `client`, its admin
/// server at `admin`, the tests' mirror image, text logs, and `flags`.
pub fn run_operator(client: Client, admin: &Admin, flags: &[&str]) -> JoinHandle<()> {
    let mut all = vec![
        "--proxy-image",
        "example.com/workos-convex-auth:test",
        "--admin-addr",
        &admin.0,
        "--log-format",
        "text",
    ];
    all.extend(flags);
    let args = RunArgs::parse_flags(all).unwrap();
    tokio::spawn(async move {
        run_with_client(client, args)
            .await
            .expect("the operator runs");
    })
}

/// The operator of a [`Scenario`].
enum Operator {
    /// `run_with_client` on this runtime.
    Task(JoinHandle<()>),
    /// The binary, its log in a file.
    Process { _child: KillOnDrop, log: PathBuf },
}

/// A namespace of its own with an operator watching it. The operator runs in this process
/// (`Scenario::new` and friends: restartable with other flags) or as the binary
/// (`Scenario::binary`: its log in a file).
pub struct Scenario {
    ns: Ns,
    /// The client the operator runs with: the namespace's, or a ServiceAccount's
    /// ([`Scenario::audited`]).
    operator_client: Client,
    operator: Option<Operator>,
    policy: Vec<String>,
    /// Where the operator's admin server listens (`/metrics`).
    pub admin: Admin,
}

impl Deref for Scenario {
    type Target = Ns;
    fn deref(&self) -> &Ns {
        &self.ns
    }
}

/// How long a scenario's waits take at most.
pub const SCENARIO_WAIT: Duration = Duration::from_secs(20);

impl Scenario {
    pub async fn new(test: &str) -> Self {
        // The fake WorkOS serves plain http on loopback: allowed here, never by default.
        let policy = [
            &LOOPBACK_UPSTREAM[..],
            &["--allowed-ingress-annotations", "a.example/*,b.example/*"],
        ]
        .concat();
        Self::with_policy(test, &policy).await
    }

    /// A scenario whose operator runs with these policy flags (and no others).
    pub async fn with_policy(test: &str, policy: &[&str]) -> Self {
        Self::on(ControlPlane::shared(), test, policy).await
    }

    /// A scenario on another control plane (one with the CRDs installed).
    pub async fn on(cp: &ControlPlane, test: &str, policy: &[&str]) -> Self {
        let mut s = Self::stopped(cp, test, policy).await;
        s.start_controller();
        s
    }

    async fn stopped(cp: &ControlPlane, test: &str, policy: &[&str]) -> Self {
        let ns = Ns::fresh(cp, test, SCENARIO_WAIT).await;
        Scenario {
            operator_client: ns.client.clone(),
            ns,
            operator: None,
            policy: policy.iter().map(|f| f.to_string()).collect(),
            admin: Admin::any(),
        }
    }

    /// The operator binary on the shared control plane, with `flags` besides the namespace and
    /// an admin address, `RUST_LOG=rust_log`, its log in a file ([`Scenario::log_text`]).
    pub async fn binary(test: &str, flags: &[&str], rust_log: &str, wait: Duration) -> Self {
        let cp = ControlPlane::shared();
        let mut s = Self::stopped(cp, test, flags).await;
        s.ns.wait = wait;
        let log = std::env::temp_dir().join(format!("wca-{}-operator.log", s.ns.ns));
        let child = Binary::operator(cp.kubeconfig(), &s.ns.ns, &s.admin)
            .args(flags)
            .env("RUST_LOG", rust_log)
            .log_to(&log)
            .spawn();
        s.operator = Some(Operator::Process { _child: child, log });
        s
    }

    /// As [`Scenario::new`], with the operator running as ServiceAccount `default/<namespace>`
    /// (bound to cluster-admin), so the audit log tells its requests apart.
    pub async fn audited(test: &str) -> Self {
        Self::audited_with(test, &[]).await
    }

    /// As [`Scenario::audited`], with `extra` flags after [`Scenario::new`]'s.
    pub async fn audited_with(test: &str, extra: &[&str]) -> Self {
        let mut s = Self::new(test).await;
        s.policy.extend(extra.iter().map(|f| f.to_string()));
        s.stop_controller();
        let cp = ControlPlane::shared();
        let kubeconfig = cp.service_account_kubeconfig(&s.ns.ns).unwrap();
        s.operator_client = wca_test_harness::client_for(&kubeconfig).await.unwrap();
        s.start_controller();
        s
    }

    /// Starts the operator in this process, its admin server on a port of its own (a restarted
    /// operator's predecessor may still hold the last one for a moment).
    pub fn start_controller(&mut self) {
        self.admin = Admin::free();
        let mut flags = vec!["--namespace", &self.ns.ns];
        flags.extend(self.policy.iter().map(String::as_str));
        let client = self.operator_client.clone();
        self.operator = Some(Operator::Task(run_operator(client, &self.admin, &flags)));
    }

    /// The policy flags of the next [`Scenario::start_controller`].
    pub fn set_policy(&mut self, policy: &[&str]) {
        self.policy = policy.iter().map(|f| f.to_string()).collect();
    }

    /// Stops the operator (killing the binary).
    pub fn stop_controller(&mut self) {
        if let Some(Operator::Task(handle)) = self.operator.take() {
            handle.abort();
        }
    }

    /// The binary's log so far (empty for an operator in this process).
    pub fn log_text(&self) -> String {
        match &self.operator {
            Some(Operator::Process { log, .. }) => std::fs::read_to_string(log).unwrap(),
            _ => String::new(),
        }
    }
}

impl Drop for Scenario {
    fn drop(&mut self) {
        self.stop_controller();
    }
}
