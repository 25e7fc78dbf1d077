//! The controller against a real kube-apiserver (tests/harness): children, updates, mode
//! switches, drift repair, conflicts, references, steady state, Inline mode and start-up.

use super::support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use support::binary::LOOPBACK_UPSTREAM;
use support::conditions::Want;
use support::fixtures::{SpecExt, from_config_map, from_secret, spec};
use support::mirror::jwks_of;
use support::scenario::Scenario;
use wca_test_harness::fake_workos::{FakeWorkos, Fault};
use wca_test_harness::{ControlPlane, eventually};
use workos_convex_auth::api::{WorkOSConvexAuth, WorkOSConvexAuthSpec};
use workos_convex_auth::controller::{RunArgs, run_with_client};
use workos_convex_auth::reconcile::live::ChildKind;
use workos_convex_auth::reconcile::reason::ConditionType::{
    ConfigReady, ConvexSynced, ProxyAvailable, PublicJwksUrl, Ready,
};
use workos_convex_auth::reconcile::reason::Reason;

const WAIT: Duration = Duration::from_secs(20);

fn owned_by(meta: &impl Resource, owner: &WorkOSConvexAuth) -> bool {
    meta.owner_references().iter().any(|o| {
        o.uid == owner.uid().unwrap() && o.controller == Some(true) && o.kind == "WorkOSConvexAuth"
    })
}

#[tokio::test]
async fn create_makes_every_child_with_owner_references_and_status() {
    let s = Scenario::new("create").await;
    let r = s.create("acme", spec("client_01A")).await;
    let cm = s.appears::<ConfigMap>("acme-convex-auth").await;
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
    let deployment = s.appears::<Deployment>("acme-jwks").await;
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
    let service = s.appears::<Service>("acme-jwks").await;
    assert!(owned_by(&service, &r));
    let pdb = s.appears::<PodDisruptionBudget>("acme-jwks").await;
    assert!(owned_by(&pdb, &r));

    // No kubelet runs here, so the mirror never becomes available: status says so, honestly.
    let message = s.condition("acme", Want::fails(ProxyAvailable)).await;
    assert!(message.contains("0/2 mirror pods available"), "{message}");
    let warning = s.condition("acme", Want::fails(PublicJwksUrl)).await;
    assert!(
        warning.contains("only a Convex backend inside this cluster"),
        "{warning}"
    );
    s.condition("acme", Want::holds(ConfigReady)).await;
    let status = s.status("acme").await;
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
        !s.events(Reason::ConfigCreated).await.is_empty(),
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
        spec("client_01A")
            .ingress("jwks.acme.com")
            .ingress_annotation("a.example/keep", "1")
            .ingress_annotation("b.example/drop", "2"),
    )
    .await;
    let ingress = s.appears::<Ingress>("acme-jwks").await;
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
    s.create("acme", spec("client_01A").ingress("jwks.acme.com"))
        .await;
    s.appears::<Ingress>("acme-jwks").await;

    s.patch_spec("acme", json!({"authDomain": "auth.acme.com"}))
        .await;
    s.config_json_containing(
        "acme-convex-auth",
        "https://auth.acme.com/user_management/client_01A",
    )
    .await;
    // Events are sent once every child is applied, so shortly after the ConfigMap changes.
    s.event(Reason::ConfigUpdated).await;

    s.patch_spec("acme", json!({"ingress": {"enabled": false}}))
        .await;
    s.gone::<Ingress>("acme-jwks").await;
    assert!(
        s.exists::<Deployment>("acme-jwks").await,
        "the mirror stays"
    );

    s.patch_spec("acme", json!({"jwks": {"mode": "Direct"}}))
        .await;
    // Every kind of the mirror's children (`ChildKind::ALL`) named `acme-jwks` is gone.
    let mirror = ListParams::default().fields("metadata.name=acme-jwks");
    eventually(WAIT, "mirror removed", || async {
        for &kind in ChildKind::ALL {
            if !support::children::list(&s.client, &s.ns, kind, &mirror)
                .await
                .is_empty()
            {
                return None;
            }
        }
        Some(())
    })
    .await
    .unwrap();
    let json = s.config_json("acme-convex-auth").await.unwrap();
    assert!(
        json.contains("\"jwks\": \"https://api.workos.com/sso/jwks/client_01A\""),
        "{json}"
    );
    s.condition("acme", Want::holds(Ready)).await;

    s.patch_spec("acme", json!({"configMap": {"name": "renamed"}}))
        .await;
    s.gone::<ConfigMap>("acme-convex-auth").await;
    assert!(s.config_json("renamed").await.is_some());
}

#[tokio::test]
async fn children_deleted_or_edited_by_hand_are_restored() {
    let s = Scenario::new("drift").await;
    s.create("acme", spec("client_01A")).await;
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

    // The reconcile that restored the ConfigMap may still be applying the mirror (under load a
    // first reconcile can fail half-way, and the ConfigMap comes first): the Service must exist
    // before it can be deleted by hand.
    s.appears::<Service>("acme-jwks").await;
    s.api::<Service>()
        .delete("acme-jwks", &DeleteParams::default())
        .await
        .unwrap();
    s.appears::<Service>("acme-jwks").await;
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
    let before = s
        .create_config_map("acme-convex-auth", json!({"mine": "yes"}))
        .await;
    s.create("acme", spec("client_01A").direct()).await;
    let message = s.condition("acme", Want::fails(ConfigReady)).await;
    let theirs = format!("ConfigMap {}/acme-convex-auth", s.ns);
    assert!(
        message.contains(&format!("{theirs} exists and is not controlled")),
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
    assert!(!s.events(Reason::Conflict).await.is_empty());
    // Renaming resolves it.
    s.patch_spec("acme", json!({"configMap": {"name": "acme-auth"}}))
        .await;
    s.condition("acme", Want::holds(Ready)).await;
    assert!(
        s.exists::<ConfigMap>("acme-convex-auth").await,
        "still there"
    );
}

#[tokio::test]
async fn a_missing_secret_is_reported_then_recovered_from() {
    let s = Scenario::new("secret").await;
    s.create("acme", from_secret("workos", "client-id").direct())
        .await;
    let message = s.condition("acme", Want::fails(ConfigReady)).await;
    let missing = format!(
        "Secret {}/workos (spec.clientIdFrom.secretKeyRef.name)",
        s.ns
    );
    assert!(
        message.contains(&format!("{missing} does not exist")),
        "{message}"
    );
    s.create_secret("workos", json!({"client-id": "client_01FROMSECRET"}))
        .await;
    s.condition("acme", Want::holds(Ready)).await;
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
    let upstream = LOOPBACK_UPSTREAM;
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
        s.create(
            &format!("r{i}"),
            spec("client_01A")
                .ingress(format!("r{i}.acme.com"))
                .ingress_annotation(key, "x"),
        )
        .await;
    }
    for (i, key) in keys.iter().enumerate() {
        let name = format!("r{i}");
        let message = s.refused(&name, Reason::NotAllowed).await;
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
        let ingress: Ingress = s.appears(&format!("r{i}-jwks")).await;
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
    s.create_config_map("db-config", json!({"url": leaked}))
        .await;
    s.create("from-secret", from_secret("db", "url").direct())
        .await;
    s.create(
        "from-config-map",
        from_config_map("db-config", "url").direct(),
    )
    .await;
    for (name, kind, object) in [
        ("from-secret", "Secret", "db"),
        ("from-config-map", "ConfigMap", "db-config"),
    ] {
        let message = s.condition(name, Want::fails(ConfigReady)).await;
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
            .filter(|e| e.reason.as_deref() == Some(Reason::InvalidSpec.as_str()))
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
    s.create_config_map("workos", json!({"id": "client_01ONE"}))
        .await;
    s.create("acme", from_config_map("workos", "id").direct())
        .await;
    s.config_json_containing("acme-convex-auth", "client_01ONE")
        .await;
    s.api::<ConfigMap>()
        .patch(
            "workos",
            &PatchParams::default(),
            &Patch::Merge(&json!({"data": {"id": "client_01TWO"}})),
        )
        .await
        .unwrap();
    s.config_json_containing("acme-convex-auth", "client_01TWO")
        .await;
}

#[tokio::test]
async fn a_settled_resource_causes_no_writes_across_resyncs() {
    let mut s = Scenario::new("steady").await;
    s.create("acme", spec("client_01A").ingress("jwks.acme.com"))
        .await;
    s.condition("acme", Want::holds(ConfigReady)).await;
    s.condition("acme", Want::fails(ProxyAvailable)).await;
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

/// The JWKS document a config of mode Inline embeds (its `data:` URL decoded).
fn inline_keys(config_json: &str) -> Option<String> {
    use base64::Engine;
    let b64 = config_json
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("\"jwks\": \"data:application/json;base64,")
        })?
        .trim_end_matches([',', '"']);
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    String::from_utf8(raw).ok()
}

#[tokio::test]
async fn inline_mode_embeds_upstream_keys_and_reports_rotation() {
    let upstream = FakeWorkos::start(jwks_of(&["rsa-a.jwk.json"])).await;
    let s = Scenario::new("inline").await;
    s.create(
        "acme",
        spec("client_01A")
            .inline(upstream.base_url())
            .proxy(|p| p.refresh_interval = "10s".into()),
    )
    .await;
    let json = eventually(WAIT, "inline config", || s.config_json("acme-convex-auth"))
        .await
        .unwrap();
    let keys = inline_keys(&json).expect("the keys inline, as a data: URL");
    assert!(keys.contains("\"kid\":\"test-rsa-a\""), "{keys}");
    assert!(!keys.contains("\"d\""), "no private members");
    assert!(upstream.hits("/sso/jwks/client_01A") >= 1);
    s.condition("acme", Want::holds(Ready)).await;
    let status = s.status("acme").await;
    assert_eq!(status.key_ids, ["test-rsa-a"]);

    upstream.set_document(jwks_of(&["rsa-b.jwk.json"]));
    eventually(
        Duration::from_secs(40),
        "rotated key in the ConfigMap",
        || async {
            let keys = inline_keys(&s.config_json("acme-convex-auth").await?)?;
            keys.contains("test-rsa-b").then_some(())
        },
    )
    .await
    .unwrap();
    let rotated = s.event(Reason::KeysRotated).await;
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
    let within = spec("client_01A")
        .proxy(|p| {
            p.replicas = 3;
            p.image = Some("example.com/workos-convex-auth:v2".into());
        })
        .memory_limit("128Mi")
        .ingress("jwks.acme.com")
        .ingress_class("traefik");
    s.create("ok", within).await;
    s.appears::<Ingress>("ok-jwks").await;
    s.appears::<Deployment>("ok-jwks").await;

    type Change = fn(WorkOSConvexAuthSpec) -> WorkOSConvexAuthSpec;
    let cases: [(&str, Change, &str); 8] = [
        (
            "class",
            |s| s.ingress("jwks.acme.com").ingress_class("nginx"),
            "spec.ingress.className",
        ),
        (
            "host",
            |s| s.ingress("jwks.evil.com").ingress_class("traefik"),
            "spec.ingress.host",
        ),
        (
            "snippet",
            |s| {
                s.ingress("jwks.acme.com")
                    .ingress_class("traefik")
                    .ingress_annotation("nginx.ingress.kubernetes.io/configuration-snippet", "x")
            },
            "spec.ingress.annotations",
        ),
        (
            "image",
            |s| s.proxy(|p| p.image = Some("docker.io/evil/miner:latest".into())),
            "spec.proxy.image",
        ),
        (
            "replicas",
            |s| s.proxy(|p| p.replicas = 4),
            "spec.proxy.replicas",
        ),
        (
            "memory",
            |s| s.memory_limit("1Gi"),
            "spec.proxy.resources.limits.memory",
        ),
        (
            "upstream",
            |s| s.upstream("https://internal.example"),
            "spec.jwks.upstreamBase",
        ),
        (
            "http",
            |s| s.upstream("http://api.workos.com"),
            "spec.jwks.upstreamBase",
        ),
    ];
    for (name, change, _) in &cases {
        s.create(name, change(spec("client_01A"))).await;
    }
    for (name, _, field) in &cases {
        let message = s.refused(name, Reason::NotAllowed).await;
        assert!(message.starts_with(field), "{name}: {message}");
        assert!(
            !s.has_workloads(name).await,
            "{name}: no workload was created"
        );
    }

    // Edited out of policy: its Deployment, Service and Ingress go.
    s.patch_spec("ok", json!({"ingress": {"className": "nginx"}}))
        .await;
    s.refused("ok", Reason::NotAllowed).await;
    s.gone::<Deployment>("ok-jwks").await;
    s.gone::<Ingress>("ok-jwks").await;
    s.gone::<Service>("ok-jwks").await;
    let events = s.events(Reason::NotAllowed).await;
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
    let inline = |base: String| spec("client_01A").inline(base);

    // Default policy: https only, WorkOS or the resource's own domains.
    let strict = Scenario::with_policy("ssrf-default", &[]).await;
    strict.create("http", inline(upstream.base_url())).await;
    let message = strict.refused("http", Reason::NotAllowed).await;
    assert!(
        message.starts_with("spec.jwks.upstreamBase: scheme \"http\""),
        "{message}"
    );
    strict
        .create("literal", inline(format!("https://127.0.0.1:{port}")))
        .await;
    let message = strict.refused("literal", Reason::NotAllowed).await;
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
        let message = names.refused(name, Reason::KeysUnavailable).await;
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
    let message = names.refused("literal", Reason::NotAllowed).await;
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
    let message = redirect.refused("hop", Reason::KeysUnavailable).await;
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
        ("acme.prod", spec("client_01A"), "metadata.name"),
        ("1acme", spec("client_01A"), "metadata.name"),
        (
            "path",
            spec("client_01A")
                .ingress("jwks.acme.com")
                .with(|s| s.ingress.path = Some("/a//b".into())),
            "spec.ingress.path",
        ),
    ] {
        s.create(name, spec).await;
        let message = s.refused(name, Reason::InvalidSpec).await;
        assert!(message.starts_with(field), "{name}: {message}");
        assert!(!s.has_workloads(name).await);
    }
    let long = "a".repeat(64);
    s.create(&long, spec("client_01A").direct()).await;
    let message = s.refused(&long, Reason::InvalidSpec).await;
    assert!(message.contains("allows 63"), "{message}");

    // An annotation key the apiserver refuses: only it can tell, and the status shows its answer.
    s.create(
        "badkey",
        spec("client_01A")
            .ingress("jwks.acme.com")
            .ingress_annotation("a.example/not a key!", "x"),
    )
    .await;
    let message = s.refused("badkey", Reason::ApplyRejected).await;
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
    s.create(
        "acme",
        spec("client_01A").convex(
            "https://happy-animal-123.convex.cloud",
            "convex-admin",
            "adminKey",
        ),
    )
    .await;
    let message = s.refused("acme", Reason::ConvexCannotFetchKeys).await;
    assert!(
        message.starts_with(
            "spec.convex.url https://happy-animal-123.convex.cloud is outside this cluster"
        ) && message.contains(&format!("http://acme-jwks.{}.svc.cluster.local/", s.ns))
            && message
                .contains("set spec.jwks.publicUrl, enable spec.ingress, or set spec.httpRoute"),
        "{message}"
    );
    s.condition("acme", Want::fails(PublicJwksUrl)).await;
    s.condition("acme", Want::fails(ConvexSynced)).await;

    s.patch_spec(
        "acme",
        json!({"jwks": {"publicUrl": "https://jwks.example.com"}}),
    )
    .await;
    s.condition("acme", Want::holds(PublicJwksUrl)).await;
    let message = s.refused("acme", Reason::Unavailable).await;
    assert!(message.contains("mirror pods available"), "{message}");
    let sync = s.condition("acme", Want::fails(ConvexSynced)).await;
    assert!(sync.contains("convex-admin"), "{sync}");
}
