//! The control plane misbehaving under a running operator process: kube-apiserver killed and
//! started again, etcd killed and started again, 429 and 503 answers, watches expired (410),
//! and the CRD deleted and created again. The operator never exits, and catches up after each.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::support::api_proxy::{ApiProxy, Fault};
use super::support::binary::{Admin, Binary};
use super::support::fixtures::{SpecExt, resource, spec};
use super::support::process::KillOnDrop;
use wca_test_harness::{Component, ControlPlane, client_for, eventually};
use workos_convex_auth::api::WorkOSConvexAuth;

const WAIT: Duration = Duration::from_secs(90);

/// `workos-convex-auth run` as its own process, its log in a file.
struct Operator {
    process: KillOnDrop,
    admin: Admin,
    log: PathBuf,
}

impl Operator {
    fn start(kubeconfig: &Path, namespace: &str, log: PathBuf) -> Self {
        let admin = Admin::free();
        let process = Binary::operator(kubeconfig, namespace, &admin)
            .log_format("text")
            .env("RUST_LOG", "info")
            .log_to(&log)
            .spawn();
        Self {
            process,
            admin,
            log,
        }
    }

    /// Fails the test if the process exited.
    fn assert_running(&mut self) {
        let exited = self.process.try_wait().unwrap();
        assert!(
            exited.is_none(),
            "the operator exited ({exited:?}); its log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    async fn metric(&self, sample: &str) -> f64 {
        self.admin.metric(sample).await.unwrap_or(0.0)
    }

    async fn wait_ready(&self, want: bool) {
        let what = if want { "ready" } else { "not ready" };
        eventually(WAIT, what, || async {
            ((self.admin.status("/readyz").await? == 200) == want).then_some(())
        })
        .await
        .unwrap();
    }
}

async fn create(client: &Client, ns: &str, name: &str, client_id: &str) {
    Api::<WorkOSConvexAuth>::namespaced(client.clone(), ns)
        .create(
            &PostParams::default(),
            &resource(name, spec(client_id).direct()),
        )
        .await
        .unwrap();
}

async fn change_client_id(client: &Client, ns: &str, name: &str, client_id: &str) {
    Api::<WorkOSConvexAuth>::namespaced(client.clone(), ns)
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clientId": client_id}})),
        )
        .await
        .unwrap();
}

/// Waits until `<name>-convex-auth` holds a config for `client_id`.
async fn generated_for(client: &Client, ns: &str, name: &str, client_id: &str) {
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), ns);
    let config_map = format!("{name}-convex-auth");
    eventually(WAIT, &format!("{config_map} for {client_id}"), || async {
        let data = config_maps.get_opt(&config_map).await.ok()??.data?;
        data.get("auth.config.ts")?
            .contains(client_id)
            .then_some(())
    })
    .await
    .unwrap();
}

/// [`generated_for`] each `(name, client_id)`, one after another.
async fn generated(client: &Client, ns: &str, expected: &[(&str, &str)]) {
    for (name, client_id) in expected {
        generated_for(client, ns, name, client_id).await;
    }
}

async fn namespace(client: &Client, name: &str) {
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// kube-apiserver killed and started again while the operator runs. The control plane has a
/// second apiserver on the same etcd (as with several control-plane nodes), so resources are
/// created and changed during the outage; the operator reconciles them once its apiserver is
/// back, without a restart. Then etcd is killed and started again: both apiservers fail
/// meanwhile, and changes made right after are reconciled.
#[tokio::test]
async fn an_apiserver_restart_and_an_etcd_restart_are_ridden_out() {
    let cp = ControlPlane::start_with_second_apiserver().unwrap();
    cp.install_crds().unwrap();
    let first = cp.client().await.unwrap();
    let second = client_for(&cp.second_kubeconfig().unwrap()).await.unwrap();
    namespace(&first, "faults").await;
    let mut operator = Operator::start(
        cp.kubeconfig(),
        "faults",
        std::env::temp_dir().join("wca-faults-restart.log"),
    );
    operator.wait_ready(true).await;
    create(&first, "faults", "before", "client_01BEFORE").await;
    generated_for(&first, "faults", "before", "client_01BEFORE").await;

    cp.kill(Component::ApiServer).unwrap();
    create(&second, "faults", "during", "client_01DURING").await;
    change_client_id(&second, "faults", "before", "client_01CHANGED").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    operator.assert_running();
    cp.start_again(Component::ApiServer).unwrap();
    let back = Instant::now();
    generated(
        &first,
        "faults",
        &[
            ("during", "client_01DURING"),
            ("before", "client_01CHANGED"),
        ],
    )
    .await;
    eprintln!(
        "apiserver back → changes made during its outage reconciled: {} ms",
        back.elapsed().as_millis()
    );
    operator.assert_running();
    assert!(
        operator.metric("wca_watch_errors_total").await > 0.0,
        "the outage broke the watches"
    );

    cp.kill(Component::Etcd).unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    operator.assert_running();
    cp.start_again(Component::Etcd).unwrap();
    let back = Instant::now();
    create(&first, "faults", "after-etcd", "client_01AFTERETCD").await;
    change_client_id(&first, "faults", "during", "client_01CHANGEDAGAIN").await;
    generated(
        &first,
        "faults",
        &[
            ("after-etcd", "client_01AFTERETCD"),
            ("during", "client_01CHANGEDAGAIN"),
        ],
    )
    .await;
    eprintln!(
        "etcd back → changes made after it reconciled: {} ms",
        back.elapsed().as_millis()
    );
    operator.wait_ready(true).await;
    operator.assert_running();
}

/// The apiserver answers 429 (API Priority and Fairness) and then 503 for 10 s in all, and then
/// ends every watch and answers new ones with 410 Expired: the operator retries with backoff
/// (visible in its metrics), lists again, and converges; it never exits.
#[tokio::test]
async fn throttling_unavailability_and_expired_watches_are_ridden_out() {
    let cp = ControlPlane::shared();
    let admin = cp.client().await.unwrap();
    let ns = cp.namespace(&admin, "throttled").await.unwrap();
    let identity = format!("{ns}-operator");
    let upstream = client_for(&cp.service_account_kubeconfig(&identity).unwrap())
        .await
        .unwrap();
    let proxy = ApiProxy::start(upstream).await;
    let dir = cp.kubeconfig().parent().unwrap();
    let mut operator = Operator::start(
        &proxy.kubeconfig(dir, &identity),
        &ns,
        std::env::temp_dir().join(format!("wca-{ns}.log")),
    );
    operator.wait_ready(true).await;
    create(&admin, &ns, "steady", "client_01STEADY").await;
    generated_for(&admin, &ns, "steady", "client_01STEADY").await;
    let errors_before = operator
        .metric("wca_reconcile_errors_total{reason=\"KubernetesApi\"}")
        .await;

    proxy.set(Fault::Status(429));
    create(&admin, &ns, "throttled", "client_01THROTTLED").await;
    change_client_id(&admin, &ns, "steady", "client_01CHANGED").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.set(Fault::Status(503));
    create(&admin, &ns, "unavailable", "client_01UNAVAILABLE").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    operator.assert_running();
    let errors_during = operator
        .metric("wca_reconcile_errors_total{reason=\"KubernetesApi\"}")
        .await;
    assert!(
        errors_during > errors_before,
        "failed reconciles are counted: {errors_before} → {errors_during}"
    );
    let injected = proxy.injected();
    assert!(injected > 0, "the proxy answered 429 and 503");
    proxy.set(Fault::None);
    let healed = Instant::now();
    generated(
        &admin,
        &ns,
        &[
            ("throttled", "client_01THROTTLED"),
            ("steady", "client_01CHANGED"),
            ("unavailable", "client_01UNAVAILABLE"),
        ],
    )
    .await;
    eprintln!(
        "429/503 for 10 s ({injected} answers) → converged {} ms after",
        healed.elapsed().as_millis()
    );

    // Every watch ends and starts again from a resourceVersion the apiserver calls expired.
    let watch_errors = operator.metric("wca_watch_errors_total").await;
    proxy.set(Fault::ExpireWatches);
    create(&admin, &ns, "expired", "client_01EXPIRED").await;
    eventually(WAIT, "a watch told its resourceVersion expired", || async {
        (operator.metric("wca_watch_errors_total").await > watch_errors).then_some(())
    })
    .await
    .unwrap();
    proxy.set(Fault::None);
    generated_for(&admin, &ns, "expired", "client_01EXPIRED").await;
    operator.wait_ready(true).await;
    operator.assert_running();
}

/// The CRD deleted under the operator: it says so in one clear log line, `/readyz` fails, and it
/// keeps running; the CRD created again: it recovers and reconciles new resources.
#[tokio::test]
async fn a_deleted_crd_makes_the_operator_unready_until_it_is_back() {
    let cp = ControlPlane::start().unwrap();
    cp.install_crds().unwrap();
    let client = cp.client().await.unwrap();
    namespace(&client, "crd").await;
    let log = cp.kubeconfig().parent().unwrap().join("operator.log");
    let mut operator = Operator::start(cp.kubeconfig(), "crd", log.clone());
    operator.wait_ready(true).await;
    create(&client, "crd", "first", "client_01FIRST").await;
    generated_for(&client, "crd", "first", "client_01FIRST").await;

    cp.kubectl_ok(&["delete", "crd", "workosconvexauths.workos-convex.io"])
        .unwrap();
    operator.wait_ready(false).await;
    let said = eventually(WAIT, "the log naming the missing CRD", || async {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|text| text.contains("the WorkOSConvexAuth CRD was removed from the cluster"))
    })
    .await
    .unwrap_or_else(|e| {
        panic!(
            "{e}; the log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    assert!(
        said.contains(
            "kubectl apply --server-side -f crds/workos-convex.io_workosconvexauths.yaml"
        ),
        "the log line says how to fix it"
    );
    operator.assert_running();

    cp.install_crds().unwrap();
    create(&client, "crd", "second", "client_01SECOND").await;
    generated_for(&client, "crd", "second", "client_01SECOND").await;
    operator.wait_ready(true).await;
    operator.assert_running();
}
