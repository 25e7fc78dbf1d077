//! What the end-to-end tests on the real node share: the node, the operator installed once
//! from the release, one namespace per test ([`Tenant`]: its fake WorkOS, a TLS Secret for its
//! Ingress host), a client loop through the ingress ([`Load`]), what the kernel sees of a
//! container ([`ContainerProcess`]), the audit log, and small helpers.
//!
//! One node per test binary; the tests run one at a time ([`begin`]), each in its own namespace,
//! because one of them deletes the operator's pod and others measure rollouts.

use super::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::release::published;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde_json::Value;
use support::audit::{self, Entry};
use support::conditions::{Want, wait_for};
use support::fixtures::{SpecExt, resource, spec};
use support::jose::jose_dir;
use support::mirror::fixture;
use tokio::sync::{Mutex, MutexGuard};
use wca_test_harness::node::Node;
use wca_test_harness::{eventually, repo_root, run_ok};
use workos_convex_auth::api::{WorkOSConvexAuth, WorkOSConvexAuthSpec};
use workos_convex_auth::reconcile::live::ChildKind;
use workos_convex_auth::reconcile::reason::ConditionType;

pub(crate) const CLIENT_ID: &str = "client_01JE2ENODETEST0000000000000";
pub(crate) const RELEASE: &str = "wca";
pub(crate) const RELEASE_NS: &str = "wca-system";
/// The chart's leader-election Lease (the release's full name).
pub(crate) const LEASE: &str = "wca-workos-convex-auth";
pub(crate) const OPERATOR_USER: &str = "system:serviceaccount:wca-system:wca-workos-convex-auth";
/// Generous: pods start in 1–2 s here, but a cold image import or a busy machine is slower.
pub(crate) const WAIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// The node, the operator, one namespace per test
// ---------------------------------------------------------------------------------------------

pub(crate) fn node() -> &'static Node {
    Node::shared()
}

/// The start of every test: its turn, the operator installed, a namespace of its own.
pub(crate) async fn begin(test: &str) -> (MutexGuard<'static, ()>, Tenant) {
    let turn = serial().await;
    operator();
    (turn, Tenant::new(test).await)
}

/// One test at a time (see the module doc); a failed test does not block the others (a tokio
/// mutex is not poisoned by a panic).
pub(crate) async fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::const_new(());
    SERIAL.lock().await
}

pub(crate) struct Installed {
    pub(crate) install_time: Duration,
}

/// `helm install` of the chart, once per binary, as the README says: from the OCI registry the
/// release script pushed to ([`published`]), the image pulled by the node's containerd from that
/// registry over TLS with the credentials of a pull Secret.
pub(crate) fn operator() -> &'static Installed {
    static INSTALLED: OnceLock<Installed> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let release = published();
        let registry = &release.registry;
        node()
            .trust_registry(&registry.host(), &registry.ca_file())
            .expect("containerd trusts the registry's CA");
        node()
            .kubectl_ok(&["create", "namespace", RELEASE_NS])
            .expect("the release's namespace");
        create_pull_secret(RELEASE_NS);
        let started = Instant::now();
        let mut helm = node().helm();
        helm.env("SSL_CERT_FILE", &release.ca_bundle);
        run_ok(helm.args([
            "install",
            RELEASE,
            &release.chart(),
            "--version",
            &release.version,
            "--username",
            &registry.username,
            "--password",
            &registry.password,
            "-n",
            RELEASE_NS,
            "--set",
            &format!("image.repository={}", release.repository()),
            "--set",
            &format!("imagePullSecrets[0].name={PULL_SECRET}"),
            "--set",
            &format!("mirror.imagePullSecrets[0].name={PULL_SECRET}"),
            // Each test's fake WorkOS is the Service `fake-workos` of its namespace, plain http.
            "--set",
            "policy.upstream.allowHttp=true",
            "--set",
            "policy.upstream.allowedHosts={fake-workos}",
            "--wait",
            "--timeout",
            "180s",
        ]))
        .expect("helm install");
        Installed {
            install_time: started.elapsed(),
        }
    })
}

/// The pull Secret every namespace that runs the image needs (pull secrets are namespaced).
pub(crate) const PULL_SECRET: &str = "release-registry";

pub(crate) fn create_pull_secret(ns: &str) {
    let config = published().registry.docker_config_json();
    node()
        .kubectl_ok(&[
            "-n",
            ns,
            "create",
            "secret",
            "generic",
            PULL_SECRET,
            "--type=kubernetes.io/dockerconfigjson",
            &format!("--from-literal=.dockerconfigjson={config}"),
        ])
        .expect("the pull secret");
}

/// The pod runs the released image: its reference names the registry, and containerd reports
/// the digest the release pushed (the image index, resolved to this node's platform).
pub(crate) fn assert_pulled_from_the_release(pod: &Pod) {
    let release = published();
    let container = &pod.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        container.image.as_deref(),
        Some(format!("{}:{}", release.repository(), release.version).as_str())
    );
    let status = &pod
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    assert_eq!(
        status.image_id,
        format!("{}@{}", release.repository(), release.digest),
        "{} runs the pushed image",
        pod.name_any()
    );
}

pub(crate) async fn operator_pod_opt(client: &Client) -> Option<Pod> {
    operator_pods(client).await.into_iter().next()
}

/// The operator pods that are not terminating.
pub(crate) async fn operator_pods(client: &Client) -> Vec<Pod> {
    let listed = Api::<Pod>::namespaced(client.clone(), RELEASE_NS)
        .list(&ListParams::default().labels(&format!(
            "app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
        )))
        .await;
    listed
        .map(|pods| pods.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

pub(crate) async fn operator_pod(client: &Client) -> Pod {
    eventually(WAIT, "the operator pod", || operator_pod_opt(client))
        .await
        .unwrap()
}

/// A namespace with its own fake WorkOS (Deployment + Service `fake-workos`) and a TLS Secret
/// for its Ingress host, signed by a CA made for this test.
pub(crate) struct Tenant {
    pub(crate) client: Client,
    pub(crate) ns: String,
    pub(crate) host: String,
    ca_pem: String,
    ca_file: PathBuf,
}

impl Tenant {
    pub(crate) async fn new(test: &str) -> Self {
        let client = node().client().await.unwrap();
        let ns = node().namespace(&client, test).await.unwrap();
        create_pull_secret(&ns);
        let host = format!("jwks.{ns}.wca.test");
        let tls = TestCa::issue(&host);
        let ca_file = std::env::temp_dir().join(format!("wca-e2e-ca-{ns}.pem"));
        std::fs::write(&ca_file, &tls.ca_pem).unwrap();
        let cert: String = tls.cert_pem.lines().map(|l| format!("    {l}\n")).collect();
        let key: String = tls.key_pem.lines().map(|l| format!("    {l}\n")).collect();
        node()
            .kubectl_apply(&format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: jwks-tls, namespace: {ns}}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{cert}  tls.key: |\n{key}"
            ))
            .unwrap();
        // The fake WorkOS, exactly as the demo runs it.
        let keys = repo_root().join("tests/fixtures/keys/jwks-rsa.json");
        let keys = format!("--from-file=jwks.json={}", keys.display());
        node()
            .kubectl_ok(&["-n", &ns, "create", "configmap", "fake-workos-keys", &keys])
            .unwrap();
        let manifest = repo_root().join("tests/node/fake-workos.yaml");
        node()
            .kubectl_ok(&["-n", &ns, "apply", "-f", manifest.to_str().unwrap()])
            .unwrap();
        let t = Self {
            client,
            ns,
            host,
            ca_pem: tls.ca_pem,
            ca_file,
        };
        t.wait_deployment_available("fake-workos").await;
        t
    }

    pub(crate) fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Mode Proxy behind an Ingress of class traefik with the test's TLS Secret; the upstream is
    /// the namespace's fake WorkOS by its short Service name.
    pub(crate) fn ingress_spec(&self) -> WorkOSConvexAuthSpec {
        spec(CLIENT_ID)
            .upstream("http://fake-workos")
            .ingress(&self.host)
            .ingress_class("traefik")
            .with(|s| s.ingress.tls_secret_name = Some("jwks-tls".into()))
    }

    /// Server-side applies resource `name` with `spec`, as the test's field manager.
    pub(crate) async fn apply_resource(&self, name: &str, spec: &WorkOSConvexAuthSpec) {
        self.api::<WorkOSConvexAuth>()
            .patch(
                name,
                &PatchParams::apply("e2e-test").force(),
                &Patch::Apply(&resource(name, spec.clone())),
            )
            .await
            .unwrap();
    }

    pub(crate) async fn apply_ready(
        &self,
        name: &str,
        spec: &WorkOSConvexAuthSpec,
    ) -> WorkOSConvexAuth {
        self.apply_resource(name, spec).await;
        self.wait_ready(name).await
    }

    /// Waits until resource `name` has a condition as `want`ed, and returns it as read then.
    pub(crate) async fn wait(&self, name: &str, want: Want, timeout: Duration) -> WorkOSConvexAuth {
        wait_for(&self.api(), name, &want, timeout).await.0
    }

    /// Waits until ProxyAvailable says both mirror pods are available (`Ready` comes with the
    /// first one).
    pub(crate) async fn wait_both_mirror_pods(&self, name: &str) -> WorkOSConvexAuth {
        let both = Want::of(ConditionType::ProxyAvailable).message("2/2 mirror pods available");
        self.wait(name, both, WAIT).await
    }

    /// `Ready=True`, of the resource's current generation.
    pub(crate) async fn wait_ready(&self, name: &str) -> WorkOSConvexAuth {
        let ready = Want::holds(ConditionType::Ready).current();
        self.wait(name, ready, WAIT).await
    }

    pub(crate) async fn wait_deployment_available(&self, name: &str) {
        let api = self.api::<Deployment>();
        eventually(WAIT, &format!("deployment {name} available"), || async {
            let d = api.get(name).await.ok()?;
            let s = d.status.as_ref()?;
            (s.available_replicas.unwrap_or(0) >= d.spec.as_ref()?.replicas.unwrap_or(1))
                .then_some(())
        })
        .await
        .unwrap();
    }

    /// Waits until the disruption controller has seen the PDB's generation and every pod it covers.
    pub(crate) async fn wait_budget_settled(&self, name: &str) {
        let api = self.api::<PodDisruptionBudget>();
        eventually(WAIT, &format!("PDB {name} settled"), || async {
            let pdb = api.get(name).await.ok()?;
            let s = pdb.status.as_ref()?;
            (s.observed_generation == pdb.metadata.generation
                && s.expected_pods > 0
                && s.current_healthy == s.expected_pods)
                .then_some(())
        })
        .await
        .unwrap();
    }

    pub(crate) async fn mirror_pods(&self, resource: &str) -> Vec<Pod> {
        self.api::<Pod>()
            .list(&ListParams::default().labels(&format!(
                "app.kubernetes.io/instance={resource},app.kubernetes.io/component=jwks-mirror"
            )))
            .await
            .unwrap()
            .items
    }

    /// Waits until the mirror runs exactly its wanted replicas, all Ready and none of `gone`.
    pub(crate) async fn wait_rolled_out(&self, resource: &str, gone: &[Pod]) {
        let deployments = self.api::<Deployment>();
        let name = format!("{resource}-jwks");
        let gone: Vec<String> = gone.iter().map(ResourceExt::name_any).collect();
        eventually(WAIT, "the mirror rolled out", || async {
            let d = deployments.get(&name).await.ok()?;
            let wanted = d.spec.as_ref()?.replicas?;
            let s = d.status.as_ref()?;
            let done = s.observed_generation == d.metadata.generation
                && s.updated_replicas == Some(wanted)
                && s.available_replicas == Some(wanted)
                && s.replicas == Some(wanted);
            let pods = self.mirror_pods(resource).await;
            (done
                && pods.len() == usize::try_from(wanted).ok()?
                && pods
                    .iter()
                    .all(|p| is_ready(p) && !gone.contains(&p.name_any())))
            .then_some(())
        })
        .await
        .unwrap();
    }

    pub(crate) async fn service_ip(&self, name: &str) -> String {
        self.api::<Service>()
            .get(name)
            .await
            .unwrap()
            .spec
            .unwrap()
            .cluster_ip
            .unwrap()
    }

    /// The JWKS URL of the tenant's Ingress host: what Convex gets.
    pub(crate) fn jwks_url(&self) -> String {
        format!("https://{}/sso/jwks/{CLIENT_ID}", self.host)
    }

    /// A client loop through the ingress at [`Tenant::jwks_url`], started once the ingress
    /// controller routes it (Ready says the mirror pods are available; Traefik applies endpoint
    /// changes after a throttle), and past its first 20 answers. From then on, nothing may fail.
    pub(crate) async fn ingress_load(&self) -> Load {
        let url = self.jwks_url();
        self.wait_served(&self.ingress_client(), &url).await;
        let load = Load::start(self.ingress_client(), url);
        load.wait_for_successes(20).await;
        load
    }

    /// Waits until `url` answers 200 (kube-proxy and the ingress controller program their
    /// routes a moment after the endpoints are ready) and returns that answer.
    pub(crate) async fn wait_served(&self, http: &reqwest::Client, url: &str) -> reqwest::Response {
        eventually(WAIT, &format!("{url} to answer 200"), || async {
            http.get(url)
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
        })
        .await
        .unwrap()
    }

    /// The fake WorkOS's control endpoints, reached through its ClusterIP from the host.
    pub(crate) async fn fake_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.service_ip("fake-workos").await)
    }

    pub(crate) async fn fake_fault(&self, fault: Value) {
        let response = plain_client()
            .put(self.fake_url("/_fake/fault").await)
            .header("content-type", "application/json")
            .body(fault.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "fake WorkOS took the fault {fault}");
    }

    pub(crate) async fn fake_hits(&self, path: &str) -> u64 {
        let body = plain_client()
            .get(self.fake_url("/_fake/hits").await)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let hits: BTreeMap<String, u64> = serde_json::from_str(&body).unwrap();
        hits.get(path).copied().unwrap_or(0)
    }

    /// HTTPS to the ingress controller for this tenant's host, trusting its test CA: DNS is
    /// replaced by the node's address, as a real client's resolver would give it.
    pub(crate) fn ingress_client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .resolve(&self.host, (node().ip(), 443).into())
            .add_root_certificate(reqwest::Certificate::from_pem(self.ca_pem.as_bytes()).unwrap())
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }

    /// npm `jose` (createRemoteJWKSet) verifies `tokens` against `jwks_url` through the ingress.
    pub(crate) fn jose_verify(&self, jwks_url: &str, issuer: &str, tokens: &[&str]) -> Vec<Value> {
        let dir = jose_dir();
        let output = Command::new("node")
            .arg("verify.mjs")
            .args([jwks_url, issuer, "-"])
            .args(tokens)
            .env("WCA_RESOLVE", format!("{}={}", self.host, node().ip()))
            .env("NODE_EXTRA_CA_CERTS", &self.ca_file)
            .current_dir(dir)
            .output()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "node failed: {}\n{stdout}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// How many objects of each child kind (every one: `ChildKind::ALL`) the resource has, and
    /// of the ReplicaSets and pods under its Deployment (by its instance label).
    pub(crate) async fn children(&self, resource: &str) -> BTreeMap<&'static str, usize> {
        let selector = format!("app.kubernetes.io/instance={resource}");
        let mut counts = BTreeMap::from([
            ("ReplicaSet", self.count::<ReplicaSet>(&selector).await),
            ("Pod", self.count::<Pod>(&selector).await),
        ]);
        let params = ListParams::default().labels(&selector);
        for &kind in ChildKind::ALL {
            let objects = support::children::list(&self.client, &self.ns, kind, &params).await;
            counts.insert(kind.as_str(), objects.len());
        }
        counts
    }

    /// How many `K` carry the labels of `selector` (every `K` for "").
    pub(crate) async fn count<K>(&self, selector: &str) -> usize
    where
        K: Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned,
    {
        let listed = self
            .api::<K>()
            .list(&ListParams::default().labels(selector))
            .await;
        listed.unwrap().items.len()
    }

    /// `Kind/name → resourceVersion` of the resources and everything the operator writes, once
    /// two reads a few seconds apart agree (the Deployment's status settles last).
    pub(crate) async fn settled_versions(&self) -> BTreeMap<String, String> {
        let deadline = Instant::now() + WAIT;
        let mut last = self.versions().await;
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let now = self.versions().await;
            if now == last {
                return now;
            }
            assert!(
                Instant::now() < deadline,
                "did not settle: {last:?} → {now:?}"
            );
            last = now;
        }
    }

    pub(crate) async fn versions(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let all = ListParams::default();
        for r in self.api::<WorkOSConvexAuth>().list(&all).await.unwrap() {
            out.insert(
                format!("WorkOSConvexAuth/{}", r.name_any()),
                r.resource_version().unwrap(),
            );
        }
        for &kind in ChildKind::ALL {
            for (name, version) in support::children::list(&self.client, &self.ns, kind, &all).await
            {
                out.insert(format!("{}/{name}", kind.as_str()), version);
            }
        }
        out
    }
}

// ---------------------------------------------------------------------------------------------
// A client loop through the ingress, bounded in time and count
// ---------------------------------------------------------------------------------------------

pub(crate) struct Load {
    pub(crate) began: Instant,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Vec<Failure>>,
}

pub(crate) struct LoadReport {
    pub(crate) ok: usize,
    pub(crate) failures: Vec<Failure>,
}

/// A failed request of the client loop: when (since the loop began) and what.
pub(crate) struct Failure {
    pub(crate) at: Duration,
    what: String,
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1}s: {}", self.at.as_secs_f64(), self.what)
    }
}

impl Load {
    /// At most 100 requests a second, for at most 5 minutes or 30 000 requests.
    pub(crate) fn start(client: reqwest::Client, url: String) -> Self {
        let expected = keys_of(&fixture("jwks-rsa.json"));
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let (stop_flag, ok_count) = (stop.clone(), ok.clone());
        // One origin for the failures' times and the test's own.
        let began = Instant::now();
        let task = tokio::spawn(async move {
            let deadline = began + Duration::from_secs(300);
            let mut failures = Vec::new();
            let mut sent = 0;
            while !stop_flag.load(Ordering::Relaxed) && Instant::now() < deadline && sent < 30_000 {
                sent += 1;
                let failed = match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => match r.text().await {
                        Ok(body) if keys_of(&body) == expected => {
                            ok_count.fetch_add(1, Ordering::Relaxed);
                            None
                        }
                        Ok(body) => Some(format!("unexpected body: {body:.200}")),
                        Err(e) => Some(format!("body: {e}")),
                    },
                    Ok(r) => Some(format!("HTTP {}", r.status())),
                    Err(e) => Some(format!("{e:?}")),
                };
                if let Some(what) = failed {
                    failures.push(Failure {
                        at: began.elapsed(),
                        what,
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failures
        });
        Self {
            began,
            stop,
            ok,
            task,
        }
    }

    pub(crate) fn successes(&self) -> usize {
        self.ok.load(Ordering::Relaxed)
    }

    pub(crate) async fn wait_for_successes(&self, n: usize) {
        eventually(WAIT, "the client loop's first answers", || async {
            (self.successes() >= n).then_some(())
        })
        .await
        .unwrap();
    }

    pub(crate) async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.task.await.unwrap();
        LoadReport {
            ok: self.ok.load(Ordering::Relaxed),
            failures,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What the kernel sees of a container
// ---------------------------------------------------------------------------------------------

/// The main process of a pod's container, found on the host through its cgroup (the kubelet's
/// cgroupfs driver names a container's cgroup after its containerd id).
pub(crate) struct ContainerProcess {
    pid: u32,
    cgroup: PathBuf,
}

impl ContainerProcess {
    pub(crate) fn of(pod: &Pod, container: &str) -> Self {
        let id = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == container))
            .and_then(|c| c.container_id.as_deref())
            .and_then(|id| id.strip_prefix("containerd://"))
            .unwrap_or_else(|| panic!("{} has a running {container}", pod.name_any()))
            .to_string();
        let root = Path::new("/sys/fs/cgroup/pids/kubepods");
        let cgroup = find_dir(root, &id)
            .unwrap_or_else(|| panic!("no cgroup {id} under {}", root.display()));
        let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap();
        let pid = procs.lines().next().unwrap().trim().parse().unwrap();
        let relative = cgroup
            .strip_prefix("/sys/fs/cgroup/pids")
            .unwrap()
            .to_path_buf();
        Self {
            pid,
            cgroup: relative,
        }
    }

    pub(crate) fn status(&self, field: &str) -> String {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .unwrap_or_else(|| panic!("{field} in /proc/{}/status", self.pid))
            .trim()
            .to_string()
    }

    /// Non-root 65532, no capabilities, no privilege escalation, seccomp filtering, and a
    /// read-only root filesystem: what the pod's securityContext asks for, as the kernel has it.
    pub(crate) fn assert_hardened(&self) {
        let ids = |field| -> Vec<String> {
            self.status(field)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(ids("Uid"), vec!["65532"; 4], "runs as user 65532");
        assert_eq!(ids("Gid"), vec!["65532"; 4], "runs as group 65532");
        assert_eq!(self.status("CapEff"), "0000000000000000", "no capability");
        assert_eq!(
            self.status("CapBnd"),
            "0000000000000000",
            "none can be gained"
        );
        assert_eq!(self.status("NoNewPrivs"), "1", "no privilege escalation");
        assert_eq!(
            self.status("Seccomp"),
            "2",
            "seccomp filter (RuntimeDefault)"
        );
        let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", self.pid)).unwrap();
        let root = mountinfo
            .lines()
            .find(|l| l.split(' ').nth(4) == Some("/"))
            .expect("a root mount");
        let options = root.split(' ').nth(5).unwrap();
        assert!(
            options.split(',').any(|o| o == "ro"),
            "read-only root filesystem: {root}"
        );
    }

    pub(crate) fn memory_limit(&self) -> u64 {
        let file = Path::new("/sys/fs/cgroup/memory")
            .join(&self.cgroup)
            .join("memory.limit_in_bytes");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
            .trim()
            .parse()
            .unwrap()
    }
}

pub(crate) fn find_dir(root: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if entry.file_name() == name {
                return Some(path);
            }
            if let Some(found) = find_dir(&path, name) {
                return Some(found);
            }
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The API server's audit log (every request of a ServiceAccount)
// ---------------------------------------------------------------------------------------------

pub(crate) struct AuditLog(Vec<Entry>);

impl AuditLog {
    pub(crate) fn read() -> Self {
        Self(audit::read_existing(&node().audit_log()))
    }

    pub(crate) fn by<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.0.iter().filter(move |e| e.user == user)
    }

    /// The chart's RBAC covers everything the operator does, in a pod, for real.
    pub(crate) fn assert_nothing_forbidden(&self) {
        let forbidden: Vec<String> = self
            .by(OPERATOR_USER)
            .filter(|e| e.code == 403)
            .map(Entry::describe)
            .collect();
        assert!(
            forbidden.is_empty(),
            "requests the chart's RBAC refused: {forbidden:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

/// A CA made for one test and a serving certificate for one host.
pub(crate) struct TestCa {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

impl TestCa {
    pub(crate) fn issue(host: &str) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // Distinct names: OpenSSL (node's TLS) takes a leaf whose issuer equals its subject for
        // self-signed.
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "workos-convex-auth e2e test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(vec![host.to_string()]).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, host);
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        Self {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

pub(crate) fn is_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub(crate) fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_else(|| panic!("{} has an IP", pod.name_any()))
}

/// GET `url` with `http`, which must answer.
pub(crate) async fn get(http: &reqwest::Client, url: &str) -> reqwest::Response {
    http.get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Plain HTTP to pod and Service addresses on the node's bridge.
pub(crate) fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The keys of a JWKS document, as JSON values, in order.
pub(crate) fn keys_of(document: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(document)
        .ok()
        .and_then(|v| v["keys"].as_array().cloned())
        .unwrap_or_default()
}

pub(crate) fn assert_same_keys(served: &str, expected: &str) {
    let kids = |doc: &str| -> Vec<String> {
        keys_of(doc)
            .iter()
            .map(|k| k["kid"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(kids(served), kids(expected), "served: {served}");
}

pub(crate) fn unix_now() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}
