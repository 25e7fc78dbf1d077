//! The driver's branches, fast: `reconcile` against the recorded API (what it sends, what it
//! writes to status, what it returns), and `report::plan` on outcomes no API call can produce
//! cheaply. The real-apiserver tests (tests/it/controller.rs) cover the same paths end to end.

use std::time::Duration;

use http::Method;
use kube::runtime::controller::Action;
use kube::runtime::events::{Recorder, Reporter};
use serde_json::{Value, json};

use super::fixtures::{self, resource};
use super::recorded_api::RecordedApi;
use super::report::{Next, RESYNC, UNAVAILABLE_RESYNC, plan};
use super::*;
use crate::api::{ClientIdSource, KeyRef, WorkOSConvexAuth};
use crate::jwks::{FetchLimits, UpstreamRules};

const RESOURCE: &str = "/apis/workos-convex.io/v1alpha1/namespaces/apps/workosconvexauths/acme";
const CONFIG_MAPS: &str = "/api/v1/namespaces/apps/configmaps";
const SECRET: &str = "/api/v1/namespaces/apps/secrets/workos";

fn context(api: &RecordedApi) -> Context {
    watched_context(api).0
}

/// The children's stores of a [`Context`], filled from the recorded API on demand (a watch).
struct Watches(LiveWriters);

impl Watches {
    /// Every store re-lists what the recorded API holds in namespace `apps`.
    fn see(&mut self, api: &RecordedApi) {
        fn relist<K: live::Child>(
            writer: &mut kube::runtime::reflector::store::Writer<K>,
            api: &RecordedApi,
            path: &str,
        ) {
            use kube::runtime::watcher::Event;
            writer.apply_watcher_event(&Event::Init);
            for object in api.objects_in(path) {
                let object: K =
                    serde_json::from_value(object).expect("a child the recorded API holds");
                writer.apply_watcher_event(&Event::InitApply(object));
            }
            writer.apply_watcher_event(&Event::InitDone);
        }
        relist(&mut self.0.config_maps, api, CONFIG_MAPS);
        relist(
            &mut self.0.deployments,
            api,
            "/apis/apps/v1/namespaces/apps/deployments",
        );
        relist(
            &mut self.0.services,
            api,
            "/api/v1/namespaces/apps/services",
        );
        relist(
            &mut self.0.pod_disruption_budgets,
            api,
            "/apis/policy/v1/namespaces/apps/poddisruptionbudgets",
        );
        relist(
            &mut self.0.ingresses,
            api,
            "/apis/networking.k8s.io/v1/namespaces/apps/ingresses",
        );
        relist(
            &mut self.0.http_routes,
            api,
            "/apis/gateway.networking.k8s.io/v1/namespaces/apps/httproutes",
        );
        relist(
            &mut self.0.network_policies,
            api,
            "/apis/networking.k8s.io/v1/namespaces/apps/networkpolicies",
        );
    }
}

fn watched_context(api: &RecordedApi) -> (Context, Watches) {
    let (live, writers) = LiveChildren::new();
    let client = api.client();
    let context = Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "test".into(),
                instance: None,
            },
        ),
        client,
        fetcher: Fetcher::new(FetchLimits::default(), UpstreamRules::default()).expect("fetcher"),
        build: fixtures::context(),
        secret_resync: Duration::from_secs(300),
        inline_keys: InlineKeyCache::default(),
        policy: Policy::for_image(fixtures::IMAGE),
        live,
        deployments: crate::convex::deployment::Deployments::new(
            UpstreamRules::default(),
            Default::default(),
        )
        .expect("deployment client"),
        synced: Default::default(),
    };
    (context, Watches(writers))
}

/// The resource stored in the recorded API (its status is patched there).
fn stored(api: &RecordedApi, spec_yaml: &str) -> WorkOSConvexAuth {
    let mut r = resource(spec_yaml);
    r.metadata.generation = Some(4);
    api.put(RESOURCE, serde_json::to_value(&r).expect("resource"));
    r
}

fn from_secret(r: &mut WorkOSConvexAuth) {
    r.spec.client_id = None;
    r.spec.client_id_from = Some(ClientIdSource {
        secret_key_ref: Some(KeyRef {
            name: "workos".into(),
            key: "clientId".into(),
        }),
        config_map_key_ref: None,
    });
}

/// The conditions the driver wrote, as `type=status/reason`.
fn conditions(api: &RecordedApi) -> Vec<String> {
    let status = api
        .object(RESOURCE)
        .and_then(|r| r.get("status").cloned())
        .unwrap_or(Value::Null);
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            format!(
                "{}={}/{}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?"),
                c["reason"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// The reasons of the Events sent.
fn events(api: &RecordedApi) -> Vec<String> {
    api.requests()
        .iter()
        .filter(|r| r.method == Method::POST && r.path.ends_with("/events"))
        .map(|r| r.body["reason"].as_str().unwrap_or("?").to_string())
        .collect()
}

fn writes(api: &RecordedApi) -> Vec<String> {
    api.calls()
        .into_iter()
        .filter(|c| !c.starts_with("GET ") && !c.contains("/events"))
        .collect()
}

#[tokio::test]
async fn a_direct_resource_gets_its_config_map_status_and_event_then_settles() {
    let api = RecordedApi::default();
    let r = stored(&api, "{clientId: client_01A, jwks: {mode: Direct}}");
    let (ctx, mut watches) = watched_context(&api);
    watches.see(&api);
    let action = reconcile(&r, &ctx).await.expect("reconciled");
    assert_eq!(action, Action::requeue(RESYNC));
    let config_map = api
        .object(&format!("{CONFIG_MAPS}/acme-convex-auth"))
        .expect("ConfigMap created");
    assert!(
        config_map["data"]["auth.config.ts"]
            .as_str()
            .unwrap_or_default()
            .contains("client_01A")
    );
    assert_eq!(config_map["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    assert_eq!(
        conditions(&api),
        ["Ready=True/Reconciled", "ConfigReady=True/Generated"]
    );
    assert_eq!(events(&api), ["ConfigCreated"]);

    // Again, from the status it wrote, once the watch has brought the ConfigMap: nothing
    // changed, so nothing is sent at all.
    watches.see(&api);
    let settled: WorkOSConvexAuth = serde_json::from_value(api.object(RESOURCE).unwrap()).unwrap();
    let before = api.calls().len();
    let action = reconcile(&settled, &ctx).await.expect("reconciled");
    assert_eq!(action, Action::requeue(RESYNC));
    assert_eq!(
        api.calls()[before..],
        [] as [String; 0],
        "a settled resource costs no request"
    );
    assert_eq!(events(&api), ["ConfigCreated"], "no second event");

    // Someone else changed the ConfigMap: one apply, with the version seen as its precondition.
    let path = format!("{CONFIG_MAPS}/acme-convex-auth");
    let mut edited = api.object(&path).expect("ConfigMap");
    edited["data"]["auth.config.ts"] = json!("edited");
    edited["metadata"]["resourceVersion"] = json!("1000");
    api.put(&path, edited);
    watches.see(&api);
    let before = api.requests().len();
    reconcile(&settled, &ctx).await.expect("reconciled");
    let sent: Vec<_> = api.requests()[before..]
        .iter()
        .filter(|r| r.path.starts_with(CONFIG_MAPS))
        .cloned()
        .collect();
    assert_eq!(sent.len(), 1, "{:?}", api.calls());
    assert_eq!(
        (&sent[0].method, sent[0].path.as_str()),
        (&Method::PATCH, path.as_str())
    );
    assert_eq!(sent[0].body["metadata"]["resourceVersion"], "1000");
    assert!(
        api.object(&path).expect("ConfigMap")["data"]["auth.config.ts"]
            .as_str()
            .unwrap_or_default()
            .contains("client_01A"),
        "restored"
    );
    assert_eq!(events(&api), ["ConfigCreated", "ConfigUpdated"]);
}

#[tokio::test]
async fn a_missing_secret_is_reported_and_retried_without_touching_children() {
    let api = RecordedApi::default();
    let mut r = resource("jwks: {mode: Direct}");
    from_secret(&mut r);
    api.put(RESOURCE, serde_json::to_value(&r).unwrap());
    let error = reconcile(&r, &context(&api)).await.expect_err("waits");
    assert_eq!(error.reason(), Reason::ClientIdSourceMissing);
    assert_eq!(
        conditions(&api),
        [
            "Ready=False/ClientIdSourceMissing",
            "ConfigReady=False/ClientIdSourceMissing",
            "Stalled=True/ClientIdSourceMissing"
        ]
    );
    assert_eq!(events(&api), ["ClientIdSourceMissing"]);
    assert_eq!(writes(&api), [format!("PATCH {RESOURCE}/status")]);
    assert!(
        api.calls().contains(&format!("GET {SECRET}")),
        "read by name, never listed"
    );
}

#[tokio::test]
async fn a_secret_value_that_is_no_client_id_is_invalid_and_never_echoed() {
    let api = RecordedApi::default();
    let mut r = resource("jwks: {mode: Direct}");
    from_secret(&mut r);
    api.put(RESOURCE, serde_json::to_value(&r).unwrap());
    // "hunter2" base64-encoded, under the referenced key.
    api.put(SECRET, json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "workos", "namespace": "apps"}, "data": {"clientId": "aHVudGVyMg=="}}));
    let action = reconcile(&r, &context(&api))
        .await
        .expect("awaits a change");
    assert_eq!(action, Action::await_change());
    assert_eq!(conditions(&api)[1], "ConfigReady=False/InvalidSpec");
    let everything =
        serde_json::to_string(&api.requests().iter().map(|r| &r.body).collect::<Vec<_>>()).unwrap();
    assert!(
        !everything.contains("hunter2"),
        "the Secret's value reached a write"
    );
}

#[tokio::test]
async fn an_invalid_spec_writes_status_only_and_waits_for_an_edit() {
    let api = RecordedApi::default();
    let r = stored(&api, "{clientId: client_01A, proxy: {refreshInterval: 1s}}");
    let action = reconcile(&r, &context(&api))
        .await
        .expect("awaits a change");
    assert_eq!(action, Action::await_change());
    assert_eq!(conditions(&api)[0], "Ready=False/InvalidSpec");
    assert_eq!(writes(&api), [format!("PATCH {RESOURCE}/status")]);
}

#[tokio::test]
async fn a_refused_resource_loses_its_mirror_but_keeps_its_config_map() {
    let api = RecordedApi::default();
    let r = stored(&api, "{clientId: client_01A, proxy: {replicas: 50}}");
    let deployment = "/apis/apps/v1/namespaces/apps/deployments/acme-jwks";
    let ours = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "acme-jwks", "namespace": "apps", "ownerReferences": [{"apiVersion": "workos-convex.io/v1alpha1", "kind": "WorkOSConvexAuth", "name": "acme", "uid": "uid-1", "controller": true}]}});
    api.put(deployment, ours);
    let service = "/api/v1/namespaces/apps/services/acme-jwks";
    api.put(service, json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "acme-jwks", "namespace": "apps"}}));
    let (ctx, mut watches) = watched_context(&api);
    watches.see(&api);
    let action = reconcile(&r, &ctx).await.expect("awaits a change");
    assert_eq!(action, Action::await_change());
    assert_eq!(conditions(&api)[0], "Ready=False/NotAllowed");
    assert!(
        api.object(deployment).is_none(),
        "our Deployment is removed"
    );
    assert!(
        api.object(service).is_some(),
        "a Service we do not control is left alone"
    );
    assert!(!writes(&api).iter().any(|w| w.contains("configmaps")));
}

/// Issue 24: a 403 on a child's write names the verb, the object and the chart value that grants
/// it, in status (reason `Forbidden`), and is retried.
#[tokio::test]
async fn a_write_the_operator_may_not_make_names_the_rule_that_grants_it() {
    let api = RecordedApi::default();
    let r = stored(&api, "{clientId: client_01A, jwks: {mode: Direct}}");
    api.fail(Method::POST, CONFIG_MAPS, 403);
    let error = reconcile(&r, &context(&api)).await.expect_err("retried");
    assert_eq!(error.reason(), Reason::Forbidden);
    assert_eq!(conditions(&api)[1], "ConfigReady=False/Forbidden");
    let status = api.object(RESOURCE).unwrap()["status"].clone();
    let message = status["conditions"][1]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with("the operator may not create or patch configmaps ")
            && message.contains("rbac.create=true"),
        "{message}"
    );
}

#[tokio::test]
async fn a_child_the_apiserver_refuses_is_named_in_status_and_retried() {
    let api = RecordedApi::default();
    let r = stored(&api, "{clientId: client_01A, jwks: {mode: Direct}}");
    api.fail(Method::POST, CONFIG_MAPS, 422);
    let error = reconcile(&r, &context(&api)).await.expect_err("retried");
    assert_eq!(error.reason(), Reason::ApplyRejected);
    assert_eq!(conditions(&api)[1], "ConfigReady=False/ApplyRejected");
    let status = api.object(RESOURCE).unwrap()["status"].clone();
    assert!(
        status["conditions"][1]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ConfigMap apps/acme-convex-auth"),
        "{status}"
    );
}

#[tokio::test]
async fn an_unreachable_apiserver_leaves_status_alone() {
    let api = RecordedApi::default();
    let r = stored(&api, "{clientId: client_01A, jwks: {mode: Direct}}");
    api.fail(Method::POST, CONFIG_MAPS, 503);
    let error = reconcile(&r, &context(&api)).await.expect_err("retried");
    assert_eq!(error.reason(), Reason::KubernetesApi);
    assert!(conditions(&api).is_empty(), "no status write");
    assert!(events(&api).is_empty());
}

#[tokio::test]
async fn a_conflict_is_reported_once_in_one_event() {
    let api = RecordedApi::default();
    let r = stored(&api, "{clientId: client_01A, jwks: {mode: Direct}}");
    api.put(
        &format!("{CONFIG_MAPS}/acme-convex-auth"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "acme-convex-auth", "namespace": "apps"}, "data": {"mine": "yes"}}),
    );
    let ctx = context(&api);
    reconcile(&r, &ctx).await.expect("reconciled");
    assert_eq!(conditions(&api)[1], "ConfigReady=False/Conflict");
    assert_eq!(events(&api), ["Conflict"]);
    assert_eq!(
        api.object(&format!("{CONFIG_MAPS}/acme-convex-auth"))
            .unwrap()["data"]["mine"],
        "yes",
        "left untouched"
    );
    let reported: WorkOSConvexAuth = serde_json::from_value(api.object(RESOURCE).unwrap()).unwrap();
    reconcile(&reported, &ctx).await.expect("reconciled");
    assert_eq!(
        events(&api),
        ["Conflict"],
        "not again while status carries it"
    );
}

#[tokio::test]
async fn the_requeue_follows_the_mode_and_the_mirror() {
    let api = RecordedApi::default();
    let r = stored(&api, "clientId: client_01A");
    // Mode Proxy: the Deployment exists but no pod is available yet.
    let action = reconcile(&r, &context(&api)).await.expect("reconciled");
    assert_eq!(action, Action::requeue(UNAVAILABLE_RESYNC));
    assert_eq!(conditions(&api)[2], "ProxyAvailable=False/Unavailable");
    assert!(
        api.calls()
            .iter()
            .any(|c| c == "GET /api/v1/namespaces/apps/pods"),
        "the pods say why"
    );
}

fn done(spec_yaml: &str, key_ids: &[&str]) -> Done {
    let valid = fixtures::valid(spec_yaml);
    let keys = InlineKeys {
        workos: r#"{"keys":[]}"#.into(),
        authkit: None,
    };
    Done {
        children: match valid.served_urls {
            Some(_) => fixtures::children(spec_yaml),
            None => fixtures::inline_children(spec_yaml, &keys),
        },
        valid,
        applied: apply::Applied::default(),
        key_ids: key_ids.iter().map(|k| k.to_string()).collect(),
        convex: None,
    }
}

#[test]
fn rotated_keys_are_announced_and_a_secret_is_read_again_on_its_own_schedule() {
    let mut r = resource("{clientId: client_01A, jwks: {mode: Direct}}");
    r.status = Some(crate::api::WorkOSConvexAuthStatus {
        key_ids: vec!["old".into()],
        ..Default::default()
    });
    let report = plan(
        &r,
        Ok(done(
            "{clientId: client_01A, jwks: {mode: Direct}}",
            &["new"],
        )),
        Duration::from_secs(60),
    );
    assert_eq!(report.notices.len(), 1);
    assert_eq!(report.notices[0].reason, Reason::KeysRotated);
    assert!(report.notices[0].note.contains("old → new"));

    from_secret(&mut r);
    let minute = Duration::from_secs(60);
    for spec in [
        "{clientId: client_01A, jwks: {mode: Direct}}",
        "{clientId: client_01A, jwks: {mode: Inline}, proxy: {refreshInterval: 10m}}",
    ] {
        let report = plan(&r, Ok(done(spec, &[])), minute);
        assert!(
            matches!(report.next, Next::Requeue(d) if d == minute),
            "{spec}: {:?}",
            report.next
        );
    }
    r.spec.client_id_from = None;
    let inline = "{clientId: client_01A, jwks: {mode: Inline}, proxy: {refreshInterval: 10m}}";
    let report = plan(&r, Ok(done(inline, &[])), minute);
    assert!(matches!(report.next, Next::Requeue(d) if d == Duration::from_secs(600)));
}

#[test]
fn convex_sync_outcomes_become_convex_synced_events_and_the_requeue() {
    use crate::convex::config::Variable;
    use crate::convex::deployment::DeploymentError;
    use sync::{AWAITING_PUSH_RESYNC, CONFIRM_EVERY, SyncFailed, Synced};

    let spec = "{clientId: client_01A, jwks: {mode: Direct}, convex: {url: 'https://x.convex.cloud', adminKeySecretRef: {name: convex, key: adminKey}}}";
    let r = resource(spec);
    let with = |outcome: Result<Synced, SyncFailed>| {
        let mut d = done(spec, &[]);
        d.convex = Some(outcome);
        plan(&r, Ok(d), Duration::from_secs(300))
    };
    let synced = |written: Vec<Variable>, in_use: Option<bool>| Synced {
        url: "https://x.convex.cloud".into(),
        variables: vec![Variable::ClientId, Variable::JwksUrl],
        written,
        in_use,
    };
    let convex_synced = |report: &report::Report| {
        report
            .observed
            .as_ref()
            .unwrap()
            .findings
            .iter()
            .find(|f| f.condition == ConditionType::ConvexSynced)
            .cloned()
            .unwrap()
    };

    let report = with(Ok(synced(vec![Variable::JwksUrl], Some(true))));
    let finding = convex_synced(&report);
    assert!(finding.holds && finding.reason == Reason::VariablesCurrent);
    assert!(matches!(report.next, Next::Requeue(d) if d == CONFIRM_EVERY));
    let updated: Vec<_> = report
        .notices
        .iter()
        .filter(|n| n.reason == Reason::VariablesUpdated)
        .collect();
    assert_eq!(updated.len(), 1);
    assert_eq!(
        updated[0].note,
        "set WORKOS_JWKS_URL on https://x.convex.cloud; the deployment re-evaluated its auth config with them"
    );

    // Nothing written: no event.
    let report = with(Ok(synced(vec![], Some(true))));
    assert!(
        report
            .notices
            .iter()
            .all(|n| n.reason != Reason::VariablesUpdated)
    );

    let report = with(Ok(synced(vec![], Some(false))));
    let finding = convex_synced(&report);
    assert!(!finding.holds && finding.reason == Reason::AuthConfigNotPushed);
    assert!(
        finding.message.contains(
            "kubectl get configmap -n apps acme-convex-auth -o jsonpath='{.data.auth\\.config\\.ts}' > convex/auth.config.ts && npx convex deploy"
        ),
        "{}",
        finding.message
    );
    assert!(matches!(report.next, Next::Requeue(d) if d == AWAITING_PUSH_RESYNC));

    // A deployment's refusal is retried with backoff and names the fix; a value too large waits
    // for an edit.
    let report = with(Err(SyncFailed::Deployment {
        url: "https://x.convex.cloud".into(),
        error: DeploymentError::AdminKeyRefused {
            status: 401,
            code: "BadAdminKey".into(),
            message: "The provided admin key was invalid for this instance".into(),
        },
    }));
    let finding = convex_synced(&report);
    assert_eq!(finding.reason, Reason::AdminKeyRefused);
    assert!(
        finding.message.contains("spec.convex.adminKeySecretRef"),
        "{}",
        finding.message
    );
    assert!(matches!(report.next, Next::Retry(_)));
    assert!(
        report
            .notices
            .iter()
            .any(|n| n.warning && n.reason == Reason::AdminKeyRefused)
    );

    let report = with(Err(SyncFailed::Deployment {
        url: "https://x.convex.cloud".into(),
        error: DeploymentError::Refused {
            status: 400,
            code: "AuthConfigMissingEnvironmentVariable".into(),
            message: "Environment variable X is used in auth config file but its value was not set"
                .into(),
        },
    }));
    assert_eq!(convex_synced(&report).reason, Reason::ChangeRefused);
    assert!(
        convex_synced(&report)
            .message
            .contains("push the generated one")
    );

    let report = with(Err(SyncFailed::ValueTooLarge {
        variable: Variable::JwksUrl,
        bytes: 9000,
    }));
    assert_eq!(convex_synced(&report).reason, Reason::ValueTooLarge);
    assert!(matches!(report.next, Next::Requeue(d) if d == RESYNC));
    // Ready follows ConvexSynced.
    let status = status::desired_status(None, report.observed.as_ref().unwrap(), &status::now());
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "ValueTooLarge")
    );
}
