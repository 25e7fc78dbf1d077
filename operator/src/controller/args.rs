use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use std::time::Duration;

use clap::{Args, ValueEnum};
use ipnet::IpNet;
use k8s_openapi::api::core::v1::Toleration;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::duration::parse_duration;
use crate::jwks::{EgressProxy, parse_network, parse_resolve};
use crate::mirror::upstream_rules;
use crate::reconcile::Policy;
use crate::reconcile::pod_template::MirrorPodDefaults;
use crate::reconcile::policy::quantity_value;

use crate::http_serve::{LimitsError, ServerLimits};

/// `workos-convex-auth run`: the controller.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Kubeconfig to use; unset: $KUBECONFIG, ~/.kube/config, then the in-cluster config.
    #[arg(long, env = "WCA_KUBECONFIG", value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Watch only this namespace; unset: all namespaces.
    #[arg(long, env = "WCA_NAMESPACE")]
    pub namespace: Option<String>,
    /// Image of the JWKS mirror when a resource does not set spec.proxy.image.
    #[arg(long, env = "WCA_PROXY_IMAGE", default_value = crate::DEFAULT_IMAGE)]
    pub proxy_image: String,
    /// Pull secrets of every mirror pod (names of `kubernetes.io/dockerconfigjson` Secrets, which
    /// must exist in each namespace that has a mirror): for a mirror image in a private registry.
    #[arg(
        long,
        env = "WCA_MIRROR_IMAGE_PULL_SECRETS",
        value_delimiter = ',',
        value_name = "SECRET,…"
    )]
    pub mirror_image_pull_secrets: Vec<String>,
    /// Node labels every mirror pod is placed by, `KEY=VALUE`: a resource's
    /// spec.proxy.podTemplate.spec.nodeSelector may add keys, never change these.
    #[arg(long, env = "WCA_MIRROR_NODE_SELECTOR", value_delimiter = ',', value_name = "KEY=VALUE,…", value_parser = parse_label)]
    pub mirror_node_selector: Vec<(String, String)>,
    /// Tolerations of every mirror pod, a JSON list of Kubernetes tolerations (as the chart's
    /// mirror.tolerations is written).
    #[arg(long, env = "WCA_MIRROR_TOLERATIONS", value_name = "JSON", value_parser = parse_tolerations)]
    pub mirror_tolerations: Option<Tolerations>,
    /// PriorityClass of the mirror pods whose resource names none; always allowed.
    #[arg(long, env = "WCA_MIRROR_PRIORITY_CLASS", value_name = "NAME")]
    pub mirror_priority_class: Option<String>,
    /// The cluster's DNS domain (the kubelet's clusterDomain): the in-cluster JWKS URL is
    /// `http://<name>-jwks.<namespace>.svc.<domain>`.
    #[arg(long, env = "WCA_CLUSTER_DOMAIN", default_value = crate::reconcile::names::DEFAULT_CLUSTER_DOMAIN, value_parser = crate::reconcile::names::parse_cluster_domain)]
    pub cluster_domain: String,
    /// Address of the admin server (/healthz, /readyz, /metrics).
    #[arg(long, env = "WCA_ADMIN_ADDR", default_value = "0.0.0.0:8081")]
    pub admin_addr: SocketAddr,
    /// Limits on the admin server's clients.
    #[command(flatten)]
    pub admin_limits: AdminLimitsArgs,
    /// How often resources with spec.clientIdFrom.secretKeyRef re-read their Secret. Secrets are
    /// read by name only (least privilege), not watched.
    #[arg(long, env = "WCA_SECRET_RESYNC", default_value = "60s", value_parser = parse_duration)]
    pub secret_resync: std::time::Duration,
    /// Most reconciles running at once. A burst (a new leader's pass, a re-list after an outage)
    /// otherwise sends every resource's requests at once, which the apiserver's priority and
    /// fairness answers with 429s (most of 2000 in `bench/ha/run.sh`) and which grows memory.
    #[arg(long, env = "WCA_MAX_CONCURRENT_RECONCILES", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrent_reconciles: u16,
    /// Most of those reconciles one namespace may hold at once: a tenant whose upstream or
    /// Convex deployment answers slowly (or never) cannot take every worker. Unset: a quarter of
    /// --max-concurrent-reconciles, at least 1.
    #[arg(long, env = "WCA_MAX_RECONCILES_PER_NAMESPACE", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_reconciles_per_namespace: Option<u16>,
    /// Log format.
    #[arg(long, env = "WCA_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// What tenants may ask for (README, "Security model").
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Several replicas, one leader (README, "High availability").
    #[command(flatten)]
    pub leader_election: super::leader::LeaderElectionArgs,
}

/// The admin's policy. Lists are comma-separated, on the command line and in the environment.
#[derive(Debug, Clone, Args)]
pub struct PolicyArgs {
    /// IngressClass names resources may use. Unset: any (and the cluster default).
    #[arg(
        long,
        env = "WCA_ALLOWED_INGRESS_CLASSES",
        value_delimiter = ',',
        value_name = "CLASS,…"
    )]
    pub allowed_ingress_classes: Vec<String>,
    /// DNS suffixes Ingress hosts must end with (`example.com` admits `jwks.example.com`).
    /// Unset: any host.
    #[arg(
        long,
        env = "WCA_ALLOWED_INGRESS_HOST_SUFFIXES",
        value_delimiter = ',',
        value_name = "DOMAIN,…"
    )]
    pub allowed_ingress_host_suffixes: Vec<String>,
    /// Ingress annotation keys resources may set: exact keys or prefixes ending in `*`. Unset:
    /// none. Keys that act outside the Ingress (snippets, redirects, external auth, DNS,
    /// certificates, shared load balancers, priorities; README, "Running on a shared cluster")
    /// pass only when listed exactly, never through a prefix.
    #[arg(
        long,
        env = "WCA_ALLOWED_INGRESS_ANNOTATIONS",
        value_delimiter = ',',
        value_name = "KEY,…"
    )]
    pub allowed_ingress_annotations: Vec<String>,
    /// Prefixes spec.proxy.image must start with (a repository, or `registry/org/` for all
    /// below it). Unset: the repository of --proxy-image.
    #[arg(
        long,
        env = "WCA_ALLOWED_IMAGE_PREFIXES",
        value_delimiter = ',',
        value_name = "PREFIX,…"
    )]
    pub allowed_image_prefixes: Vec<String>,
    /// Most mirror pods one resource may run.
    #[arg(long, env = "WCA_MAX_PROXY_REPLICAS", default_value_t = 10)]
    pub max_proxy_replicas: i32,
    /// Largest CPU request or limit of a mirror container.
    #[arg(long, env = "WCA_MAX_PROXY_CPU", default_value = "1")]
    pub max_proxy_cpu: String,
    /// Largest memory request or limit of a mirror container.
    #[arg(long, env = "WCA_MAX_PROXY_MEMORY", default_value = "512Mi")]
    pub max_proxy_memory: String,
    /// PriorityClasses spec.proxy.podTemplate.spec.priorityClassName may name (besides
    /// --mirror-priority-class). Unset: none, so no tenant preempts with system-cluster-critical.
    #[arg(
        long,
        env = "WCA_ALLOWED_PRIORITY_CLASSES",
        value_delimiter = ',',
        value_name = "CLASS,…"
    )]
    pub allowed_priority_classes: Vec<String>,
    /// Label keys spec.proxy.podTemplate.metadata.labels may set: exact keys or prefixes ending
    /// in `*`. Unset: none (a label can make a pod match another namespace's NetworkPolicy).
    #[arg(
        long,
        env = "WCA_ALLOWED_PROXY_POD_LABELS",
        value_delimiter = ',',
        value_name = "KEY,…"
    )]
    pub allowed_proxy_pod_labels: Vec<String>,
    /// Annotation keys spec.proxy.podTemplate.metadata.annotations may set: exact keys or
    /// prefixes ending in `*`. Unset: none (an annotation can ask a mesh or a secrets injector
    /// to act on the pod).
    #[arg(
        long,
        env = "WCA_ALLOWED_PROXY_POD_ANNOTATIONS",
        value_delimiter = ',',
        value_name = "KEY,…"
    )]
    pub allowed_proxy_pod_annotations: Vec<String>,
    /// Upstream hosts allowed besides api.workos.com and each resource's authDomain and
    /// authkitDomain: names, IP literals, or `.suffix` for every name below it.
    #[arg(
        long,
        env = "WCA_ALLOWED_UPSTREAM_HOSTS",
        value_delimiter = ',',
        value_name = "HOST,…"
    )]
    pub allowed_upstream_hosts: Vec<String>,
    /// Allow `http://` upstreams (default: https only). Passed on to the mirrors.
    #[arg(long, env = "WCA_ALLOW_HTTP_UPSTREAM")]
    pub allow_http_upstream: bool,
    /// Ranges upstreams may resolve to although they are loopback, private, link-local or
    /// metadata space. Passed on to the mirrors.
    #[arg(long = "allowed-upstream-networks", env = "WCA_ALLOWED_UPSTREAM_NETWORKS", value_delimiter = ',', value_name = "CIDR,…", value_parser = parse_network)]
    pub allowed_upstream_networks: Vec<IpNet>,
    /// A fixed DNS answer for an upstream host, `HOST=IP` (like curl's --resolve; for tests).
    /// Checked like any answer; passed on to the mirrors. Repeatable.
    #[arg(long = "upstream-resolve", value_name = "HOST=IP", value_parser = parse_resolve)]
    pub upstream_resolve: Vec<(String, IpAddr)>,
    /// Gateways an HTTPRoute (`spec.httpRoute.parentRefs`) may attach to, as `namespace/name`;
    /// empty: any.
    #[arg(
        long,
        env = "WCA_ALLOWED_GATEWAYS",
        value_delimiter = ',',
        value_name = "NAMESPACE/NAME,…"
    )]
    pub allowed_gateways: Vec<String>,
    /// Allow `http://` Convex deployment URLs in `spec.convex.url` (default: https only; a
    /// self-hosted backend inside the cluster usually serves plain http).
    #[arg(long, env = "WCA_ALLOW_HTTP_CONVEX")]
    pub allow_http_convex: bool,
    /// Ranges a Convex deployment's host may resolve to although they are loopback, private,
    /// link-local or metadata space (e.g. the Service network, for a self-hosted backend).
    #[arg(long = "allowed-convex-networks", env = "WCA_ALLOWED_CONVEX_NETWORKS", value_delimiter = ',', value_name = "CIDR,…", value_parser = parse_network)]
    pub allowed_convex_networks: Vec<IpNet>,
    /// Hosts `spec.convex.url` may name, where the operator sends the admin key: exact names
    /// (or IP literals), or `.suffix` for any name below it. Convex Cloud's deployments by
    /// default.
    #[arg(
        long,
        env = "WCA_ALLOWED_CONVEX_HOSTS",
        value_delimiter = ',',
        value_name = "HOST,…",
        default_value = ".convex.cloud"
    )]
    pub allowed_convex_hosts: Vec<String>,
    /// Refuse every `spec.convex` (the operator then reads no admin key and calls no Convex
    /// deployment).
    #[arg(long, env = "WCA_DISABLE_CONVEX_SYNC")]
    pub disable_convex_sync: bool,
    /// Give every mirror a NetworkPolicy: its pods take connections on their port only from
    /// their own namespace and --mirror-network-policy-from-namespaces (needs a network plugin
    /// that enforces NetworkPolicies).
    #[arg(long, env = "WCA_MIRROR_NETWORK_POLICY")]
    pub mirror_network_policy: bool,
    /// Namespaces the mirrors' NetworkPolicy admits besides the mirror's own: the ingress
    /// controller's, a self-hosted Convex backend's.
    #[arg(
        long,
        env = "WCA_MIRROR_NETWORK_POLICY_FROM_NAMESPACES",
        value_delimiter = ',',
        value_name = "NAMESPACE,…"
    )]
    pub mirror_network_policy_from_namespaces: Vec<String>,
}

impl RunArgs {
    /// What `--mirror-network-policy` gives `build`: the namespaces admitted, or `None`.
    pub fn mirror_network_policy(&self) -> Option<Vec<String>> {
        self.policy
            .mirror_network_policy
            .then(|| self.policy.mirror_network_policy_from_namespaces.clone())
    }

    /// [`RunArgs::max_reconciles_per_namespace`], defaulted.
    pub fn namespace_share(&self) -> usize {
        usize::from(
            self.max_reconciles_per_namespace
                .unwrap_or((self.max_concurrent_reconciles / 4).max(1)),
        )
    }

    /// Parses `run`'s flags alone, defaults and environment included (tests, embedders).
    pub fn parse_flags<I, T>(flags: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Run {
            #[command(flatten)]
            run: RunArgs,
        }
        let argv = std::iter::once(std::ffi::OsString::from("run"))
            .chain(flags.into_iter().map(Into::into));
        <Run as clap::Parser>::try_parse_from(argv).map(|r| r.run)
    }

    /// What every mirror pod gets besides its resource's podTemplate.
    pub fn mirror_pod(&self) -> MirrorPodDefaults {
        MirrorPodDefaults {
            image_pull_secrets: self.mirror_image_pull_secrets.clone(),
            node_selector: self.mirror_node_selector.iter().cloned().collect(),
            tolerations: self
                .mirror_tolerations
                .as_ref()
                .map(|t| t.0.clone())
                .unwrap_or_default(),
            priority_class_name: self.mirror_priority_class.clone(),
        }
    }

    /// The policy these flags describe.
    pub fn policy(&self) -> Result<Policy, String> {
        let p = &self.policy;
        let mut policy = Policy::for_image(&self.proxy_image);
        policy.ingress_classes = p.allowed_ingress_classes.clone();
        policy.ingress_host_suffixes = p.allowed_ingress_host_suffixes.clone();
        policy.ingress_annotations = p.allowed_ingress_annotations.clone();
        if !p.allowed_image_prefixes.is_empty() {
            policy.image_prefixes = p.allowed_image_prefixes.clone();
        }
        policy.max_replicas = p.max_proxy_replicas;
        for (flag, value) in [
            ("--max-proxy-cpu", &p.max_proxy_cpu),
            ("--max-proxy-memory", &p.max_proxy_memory),
        ] {
            if quantity_value(value).is_none() {
                return Err(format!(
                    "{flag} {value:?} is not a Kubernetes quantity (1, 500m, 512Mi)"
                ));
            }
        }
        policy.max_cpu = Quantity(p.max_proxy_cpu.clone());
        policy.max_memory = Quantity(p.max_proxy_memory.clone());
        policy.priority_classes = p.allowed_priority_classes.clone();
        policy.pod_labels = p.allowed_proxy_pod_labels.clone();
        policy.pod_annotations = p.allowed_proxy_pod_annotations.clone();
        policy.mirror_pod = self.mirror_pod();
        policy.upstream_hosts = p.allowed_upstream_hosts.clone();
        policy.upstream = upstream_rules(
            p.allow_http_upstream,
            p.allowed_upstream_networks.clone(),
            p.upstream_resolve.clone(),
        );
        if let Some(bad) = p.allowed_gateways.iter().find(|g| {
            g.split_once('/')
                .is_none_or(|(ns, name)| ns.is_empty() || name.is_empty() || name.contains('/'))
        }) {
            return Err(format!(
                "--allowed-gateways {bad:?}: write each Gateway as namespace/name"
            ));
        }
        policy.gateways = p.allowed_gateways.clone();
        policy.convex = upstream_rules(
            p.allow_http_convex,
            p.allowed_convex_networks.clone(),
            Vec::new(),
        );
        policy.convex_hosts = p.allowed_convex_hosts.clone();
        policy.convex_sync = !p.disable_convex_sync;
        // The forward proxy of the environment (chart egress.*), for WorkOS and Convex alike.
        let egress = EgressProxy::from_env().map_err(|e| e.to_string())?;
        policy.upstream.egress = egress.clone();
        policy.convex.egress = egress;
        Ok(policy)
    }
}

/// `--mirror-tolerations`: a list, parsed as one value.
#[derive(Debug, Clone, PartialEq)]
pub struct Tolerations(pub Vec<Toleration>);

fn parse_tolerations(json: &str) -> Result<Tolerations, String> {
    serde_json::from_str(json).map(Tolerations).map_err(|e| {
        format!("a JSON list of tolerations, e.g. [{{\"key\":\"dedicated\",\"operator\":\"Exists\"}}]: {e}")
    })
}

fn parse_label(pair: &str) -> Result<(String, String), String> {
    pair.split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .ok_or_else(|| format!("{pair:?}: write KEY=VALUE"))
}

/// Default `--admin-header-read-timeout`.
const DEFAULT_ADMIN_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `--admin-max-connections`: the admin server's clients are the kubelet's probes and a
/// few Prometheus scrapers.
const DEFAULT_ADMIN_MAX_CONNECTIONS: usize = 128;
/// Default `--admin-max-header-bytes`.
const DEFAULT_ADMIN_MAX_HEADER_BYTES: usize = 16 * 1024;

/// How far the admin server's clients are trusted (see [`crate::http_serve`]).
#[derive(Debug, Clone, Args)]
pub struct AdminLimitsArgs {
    /// Time an admin client has to send a complete request head, counted from accept or from
    /// the end of its previous response; so also how long an idle keep-alive connection stays.
    #[arg(
        long = "admin-header-read-timeout",
        env = "WCA_ADMIN_HEADER_READ_TIMEOUT",
        default_value = "5s",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub header_read_timeout: Duration,
    /// Most admin connections open at once; further ones are closed at accept.
    #[arg(
        long = "admin-max-connections",
        env = "WCA_ADMIN_MAX_CONNECTIONS",
        default_value_t = DEFAULT_ADMIN_MAX_CONNECTIONS,
        value_name = "N"
    )]
    pub max_connections: usize,
    /// Largest admin request head (start line and headers) in bytes; larger ones get 431.
    #[arg(
        long = "admin-max-header-bytes",
        env = "WCA_ADMIN_MAX_HEADER_BYTES",
        default_value_t = DEFAULT_ADMIN_MAX_HEADER_BYTES,
        value_name = "BYTES"
    )]
    pub max_header_bytes: usize,
}

impl Default for AdminLimitsArgs {
    /// The flags' defaults.
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_ADMIN_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_ADMIN_MAX_CONNECTIONS,
            max_header_bytes: DEFAULT_ADMIN_MAX_HEADER_BYTES,
        }
    }
}

impl AdminLimitsArgs {
    /// Checks the values.
    pub fn to_limits(&self) -> Result<ServerLimits, LimitsError> {
        ServerLimits::new(
            self.header_read_timeout,
            self.max_connections,
            self.max_header_bytes,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn reconciles_run_sixteen_at_a_time_unless_told_and_never_zero() {
        let args = RunArgs::parse_flags(Vec::<String>::new()).expect("defaults");
        assert_eq!(args.max_concurrent_reconciles, 16);
        assert_eq!(args.namespace_share(), 4);
        let args = RunArgs::parse_flags(["--max-concurrent-reconciles", "4"]).expect("flag");
        assert_eq!(args.max_concurrent_reconciles, 4);
        assert_eq!(args.namespace_share(), 1);
        let args = RunArgs::parse_flags(["--max-reconciles-per-namespace", "6"]).expect("flag");
        assert_eq!(args.namespace_share(), 6);
        assert!(RunArgs::parse_flags(["--max-reconciles-per-namespace", "0"]).is_err());
        assert!(RunArgs::parse_flags(["--max-concurrent-reconciles", "0"]).is_err());
    }

    #[test]
    fn admin_limits_default_to_the_documented_values() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        let limits = cli.run.admin_limits.to_limits().unwrap();
        assert_eq!(limits.header_read_timeout(), Duration::from_secs(5));
        assert_eq!(limits.max_connections(), 128);
        assert_eq!(limits.max_header_bytes(), 16 * 1024);
        assert_eq!(
            AdminLimitsArgs::default().to_limits(),
            Ok(limits),
            "Default matches the flags"
        );
    }

    #[test]
    fn admin_limits_are_parsed_and_checked() {
        let cli = Cli::try_parse_from([
            "x",
            "--admin-header-read-timeout",
            "1500ms",
            "--admin-max-connections",
            "3",
            "--admin-max-header-bytes",
            "2048",
        ])
        .unwrap();
        let limits = cli.run.admin_limits.to_limits().unwrap();
        assert_eq!(limits.header_read_timeout(), Duration::from_millis(1500));
        assert_eq!(limits.max_connections(), 3);
        assert_eq!(limits.max_header_bytes(), 2048);
        let cli = Cli::try_parse_from(["x", "--admin-header-read-timeout", "0s"]).unwrap();
        assert_eq!(
            cli.run.admin_limits.to_limits(),
            Err(LimitsError::ZeroHeaderReadTimeout)
        );
    }
}
