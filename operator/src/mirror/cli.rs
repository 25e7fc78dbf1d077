//! Command line of `workos-convex-auth proxy`, and the checked configuration it becomes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::http_serve::{LimitsError, ServerLimits};
use crate::jwks::{
    EgressProxy, EgressProxyError, FetchLimits, UpstreamRules, parse_network, parse_resolve,
};
use ipnet::IpNet;

/// Default `--header-read-timeout`: ample for any real client on a cluster network, short
/// enough that a slow-header client holds a connection for seconds, not minutes.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Default `--max-connections`. An open connection costs about 20 KiB of RSS (hyper's 8 KiB read
/// and write buffers and the task; measured by tests/it/slowloris.rs), so a full table adds about
/// 20 MiB to a mirror that idles under 16 MiB: well inside its 64 MiB memory limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Default `--max-header-bytes`: the start line and headers of a request; JWKS clients send a
/// few hundred bytes.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 16 * 1024;

/// `workos-convex-auth proxy`: serve WorkOS JWKS documents from memory.
#[derive(Debug, Clone, clap::Args)]
pub struct MirrorArgs {
    /// Address to listen on.
    #[arg(
        long,
        env = "WCA_PROXY_LISTEN",
        default_value = "0.0.0.0:8080",
        value_name = "ADDR"
    )]
    pub listen: SocketAddr,
    /// A document to mirror, as `PATH=URL`, e.g.
    /// `/sso/jwks/client_01…=https://api.workos.com/sso/jwks/client_01…`. Repeatable; in the
    /// environment, space-separated (a URL may hold commas, never a space).
    #[arg(
        long = "mirror",
        env = "WCA_PROXY_MIRROR",
        value_name = "PATH=URL",
        value_delimiter = ' ',
        required = true
    )]
    pub mirrors: Vec<MirrorSpec>,
    /// How often to refresh each document from its upstream (`30s`, `5m`, ...).
    #[arg(long, env = "WCA_PROXY_REFRESH", default_value = "5m", value_parser = parse_duration)]
    pub refresh: Duration,
    /// How long to keep serving the last good document while the upstream fails; after that,
    /// answer 503 rather than keys that may have been revoked.
    #[arg(long, env = "WCA_PROXY_MAX_STALE", default_value = "24h", value_parser = parse_duration)]
    pub max_stale: Duration,
    /// Allow `http://` upstreams (default: https only).
    #[arg(long, env = "WCA_PROXY_ALLOW_HTTP_UPSTREAM")]
    pub allow_http_upstream: bool,
    /// A range (CIDR or address) the upstream may resolve to although it is loopback, private,
    /// link-local or metadata space. Repeatable; space-separated in the environment.
    /// (`--allowed-upstream-network`, the name before 0.1.0, is kept as an alias.)
    #[arg(long = "allowed-upstream-networks", alias = "allowed-upstream-network", env = "WCA_PROXY_ALLOWED_UPSTREAM_NETWORKS", value_name = "CIDR", value_delimiter = ' ', value_parser = parse_network)]
    pub allowed_upstream_networks: Vec<IpNet>,
    /// A fixed DNS answer for an upstream host, as `HOST=IP` (like curl's --resolve; for
    /// tests). The address is checked like any other. Repeatable.
    #[arg(long = "upstream-resolve", value_name = "HOST=IP", value_parser = parse_resolve)]
    pub upstream_resolve: Vec<(String, IpAddr)>,
    /// Time a client has to send a complete request head, counted from accept or from the end
    /// of its previous response; so also how long an idle keep-alive connection stays open.
    #[arg(
        long,
        env = "WCA_PROXY_HEADER_READ_TIMEOUT",
        default_value = "5s",
        value_name = "DURATION",
        value_parser = parse_duration
    )]
    pub header_read_timeout: Duration,
    /// Most client connections open at once; further ones are closed at accept.
    #[arg(
        long,
        env = "WCA_PROXY_MAX_CONNECTIONS",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
        value_name = "N"
    )]
    pub max_connections: usize,
    /// Largest request head (start line and headers) in bytes; larger ones get 431.
    #[arg(
        long,
        env = "WCA_PROXY_MAX_HEADER_BYTES",
        default_value_t = DEFAULT_MAX_HEADER_BYTES,
        value_name = "BYTES"
    )]
    pub max_header_bytes: usize,
}

impl MirrorArgs {
    /// Checks the arguments as a whole and turns them into a [`MirrorConfig`].
    pub fn into_config(self) -> Result<MirrorConfig, ConfigError> {
        let mut config = MirrorConfig::new(self.mirrors, self.refresh, self.max_stale)?;
        config.upstream = upstream_rules(
            self.allow_http_upstream,
            self.allowed_upstream_networks,
            self.upstream_resolve,
        );
        // HTTPS_PROXY, HTTP_PROXY, NO_PROXY: the operator passes its own to every mirror.
        config.upstream.egress = EgressProxy::from_env()?;
        config.server = ServerLimits::new(
            self.header_read_timeout,
            self.max_connections,
            self.max_header_bytes,
        )?;
        Ok(config)
    }
}

/// One mirrored document: served at `path`, fetched from `url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorSpec {
    /// `/sso/jwks/<clientId>` or `/oauth2/jwks`, as WorkOS serves them, optionally below a
    /// path prefix (the Ingress path).
    pub path: String,
    /// The upstream URL (http or https, without credentials).
    pub url: String,
}

/// A configuration the mirror refuses to start with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A `--mirror` value without `=`.
    #[error("mirror {0:?} is not PATH=URL")]
    NotPathEqualsUrl(String),
    /// A path that is not one of WorkOS's JWKS paths.
    #[error("mirror path {0:?} is not [/prefix]/sso/jwks/<clientId> or [/prefix]/oauth2/jwks")]
    Path(String),
    /// A URL that does not parse, is not http(s), or carries credentials.
    #[error("mirror URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same path twice.
    #[error("mirror path {0:?} is given twice")]
    DuplicatePath(String),
    /// A proxy variable of the environment that is not a proxy URL.
    #[error(transparent)]
    Egress(#[from] EgressProxyError),
    /// No `--mirror` at all.
    #[error("at least one --mirror is needed")]
    NoMirror,
    /// A zero refresh interval.
    #[error("--refresh must be more than zero")]
    ZeroRefresh,
    /// Max-stale not above the refresh interval, so a healthy mirror would go stale.
    #[error("--max-stale must be longer than --refresh")]
    MaxStaleTooShort,
    /// `--header-read-timeout`, `--max-connections` or `--max-header-bytes` out of range.
    #[error(transparent)]
    Server(#[from] LimitsError),
}

impl MirrorSpec {
    /// What the mirror refuses to start with: a path that is not one of WorkOS's JWKS paths, a
    /// URL that does not parse, is not http(s) or carries credentials. The controller checks its
    /// routes with this before it writes them into a Deployment.
    pub fn check(&self) -> Result<(), ConfigError> {
        let (path, url) = (self.path.as_str(), self.url.as_str());
        if !is_workos_jwks_path(path) {
            return Err(ConfigError::Path(path.to_string()));
        }
        let bad = |reason: &str| ConfigError::Url {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad("only http and https are supported"));
        }
        // Credentials in the URL would end up in logs and metrics.
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(bad("credentials in the URL are refused"));
        }
        Ok(())
    }
}

/// `PATH=URL`, as `--mirror` takes it.
impl std::fmt::Display for MirrorSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.path, self.url)
    }
}

impl FromStr for MirrorSpec {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (path, url) = s
            .split_once('=')
            .ok_or_else(|| ConfigError::NotPathEqualsUrl(s.to_string()))?;
        let spec = Self {
            path: path.trim().to_string(),
            url: url.trim().to_string(),
        };
        spec.check()?;
        Ok(spec)
    }
}

/// WorkOS's own JWKS paths, optionally below a path prefix (`spec.ingress.path`), e.g.
/// `/workos/sso/jwks/client_01…`. Prefix segments are plain names: no `.`/`..`, no empty ones.
fn is_workos_jwks_path(path: &str) -> bool {
    let (prefix, id) = if let Some(prefix) = path.strip_suffix("/oauth2/jwks") {
        (prefix, None)
    } else if let Some((prefix, id)) = path.rsplit_once("/sso/jwks/") {
        (prefix, Some(id))
    } else {
        return false;
    };
    let id_ok = id.is_none_or(|id| {
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    });
    let prefix_ok = prefix.is_empty()
        || prefix.strip_prefix('/').is_some_and(|rest| {
            rest.split('/').all(|seg| {
                !seg.is_empty()
                    && seg != "."
                    && seg != ".."
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
            })
        });
    id_ok && prefix_ok
}

/// A checked mirror configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorConfig {
    /// The documents to mirror, distinct paths.
    pub mirrors: Vec<MirrorSpec>,
    /// Longest interval between two refreshes of a document.
    pub refresh: Duration,
    /// How long a document may go unconfirmed by its upstream before it is withdrawn.
    pub max_stale: Duration,
    /// Limits on each upstream request.
    pub limits: FetchLimits,
    /// Limits on the clients of the mirror's HTTP server.
    pub server: ServerLimits,
    /// Where upstream requests may go.
    pub upstream: UpstreamRules,
}

/// The rules from their flags (shared with `run`).
pub fn upstream_rules(
    allow_http: bool,
    allowed_networks: Vec<IpNet>,
    resolve: Vec<(String, IpAddr)>,
) -> UpstreamRules {
    let mut fixed: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for (host, ip) in resolve {
        fixed.entry(host).or_default().push(ip);
    }
    UpstreamRules {
        allow_http,
        allowed_networks,
        resolve: fixed,
        egress: EgressProxy::default(),
    }
}

impl MirrorConfig {
    /// Checks a configuration: at least one mirror, distinct paths, refresh > 0 and
    /// max-stale > refresh. Upstream and server limits start at their defaults.
    pub fn new(
        mirrors: Vec<MirrorSpec>,
        refresh: Duration,
        max_stale: Duration,
    ) -> Result<Self, ConfigError> {
        if mirrors.is_empty() {
            return Err(ConfigError::NoMirror);
        }
        for (i, m) in mirrors.iter().enumerate() {
            if mirrors[..i].iter().any(|other| other.path == m.path) {
                return Err(ConfigError::DuplicatePath(m.path.clone()));
            }
        }
        if refresh.is_zero() {
            return Err(ConfigError::ZeroRefresh);
        }
        if max_stale <= refresh {
            return Err(ConfigError::MaxStaleTooShort);
        }
        Ok(Self {
            mirrors,
            refresh,
            max_stale,
            limits: FetchLimits::default(),
            upstream: UpstreamRules::default(),
            server: default_server_limits(),
        })
    }
}

/// The server limits of the flags' defaults.
fn default_server_limits() -> ServerLimits {
    ServerLimits::new(
        DEFAULT_HEADER_READ_TIMEOUT,
        DEFAULT_MAX_CONNECTIONS,
        DEFAULT_MAX_HEADER_BYTES,
    )
    .expect("the default server limits are valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        proxy: MirrorArgs,
    }

    const CLIENT: &str = "/sso/jwks/client_01HZ=https://api.workos.com/sso/jwks/client_01HZ";

    #[test]
    fn parses_flags_with_defaults() {
        let cli = Cli::try_parse_from([
            "x",
            "--mirror",
            CLIENT,
            "--mirror",
            "/oauth2/jwks=https://a.authkit.app/oauth2/jwks",
        ])
        .unwrap();
        let args = cli.proxy;
        assert_eq!(args.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(args.refresh, Duration::from_secs(300));
        assert_eq!(args.max_stale, Duration::from_secs(86_400));
        assert_eq!(args.mirrors[0].path, "/sso/jwks/client_01HZ");
        assert_eq!(args.mirrors[1].url, "https://a.authkit.app/oauth2/jwks");
        let config = args.into_config().unwrap();
        assert_eq!(config.mirrors.len(), 2);
        assert_eq!(config.server, default_server_limits());
        assert_eq!(config.server.header_read_timeout(), Duration::from_secs(5));
        assert_eq!(config.server.max_connections(), 1024);
        assert_eq!(config.server.max_header_bytes(), 16 * 1024);
    }

    #[test]
    fn parses_and_checks_server_limits() {
        let cli = Cli::try_parse_from([
            "x",
            "--mirror",
            CLIENT,
            "--header-read-timeout",
            "2s",
            "--max-connections",
            "10",
            "--max-header-bytes",
            "4096",
        ])
        .unwrap();
        let server = cli.proxy.into_config().unwrap().server;
        assert_eq!(server.header_read_timeout(), Duration::from_secs(2));
        assert_eq!(server.max_connections(), 10);
        assert_eq!(server.max_header_bytes(), 4096);
        let zero_connections =
            Cli::try_parse_from(["x", "--mirror", CLIENT, "--max-connections", "0"]).unwrap();
        assert_eq!(
            zero_connections.proxy.into_config(),
            Err(ConfigError::Server(LimitsError::ZeroMaxConnections))
        );
        assert!(
            Cli::try_parse_from(["x", "--mirror", CLIENT, "--header-read-timeout", "5"]).is_err()
        );
    }

    #[test]
    fn a_comma_in_a_url_never_splits_a_mirror() {
        let cli = Cli::try_parse_from([
            "x",
            "--mirror",
            "/sso/jwks/client_01HZ=https://a.example/x,/oauth2/jwks=https://evil.example/k",
        ])
        .unwrap();
        assert_eq!(cli.proxy.mirrors.len(), 1);
        assert_eq!(
            cli.proxy.mirrors[0].url,
            "https://a.example/x,/oauth2/jwks=https://evil.example/k"
        );
    }

    #[test]
    fn parses_durations_and_space_separated_mirrors() {
        let two = format!("{CLIENT} /oauth2/jwks=https://a.authkit.app/oauth2/jwks");
        let cli = Cli::try_parse_from([
            "x",
            "--mirror",
            &two,
            "--refresh",
            "30s",
            "--max-stale",
            "1h",
            "--listen",
            "127.0.0.1:9",
        ])
        .unwrap();
        assert_eq!(cli.proxy.mirrors.len(), 2);
        assert_eq!(cli.proxy.refresh, Duration::from_secs(30));
        assert_eq!(cli.proxy.max_stale, Duration::from_secs(3600));
        assert!(Cli::try_parse_from(["x", "--mirror", CLIENT, "--refresh", "soon"]).is_err());
        assert!(Cli::try_parse_from(["x"]).is_err(), "a mirror is required");
    }

    #[test]
    fn accepts_workos_paths_below_a_prefix() {
        for path in [
            "/workos/sso/jwks/client_1",
            "/a/b-c/oauth2/jwks",
            "/v1.2/sso/jwks/x",
        ] {
            let spec = format!("{path}=https://api.workos.com/sso/jwks/a");
            assert_eq!(
                spec.parse::<MirrorSpec>().map(|m| m.path),
                Ok(path.to_string())
            );
        }
    }

    #[test]
    fn refuses_paths_that_are_not_workos_jwks() {
        for path in [
            "/",
            "/sso/jwks/",
            "/sso/jwks/a/b",
            "/sso/jwks/../x",
            "/healthz",
            "/oauth2/jwks/",
            "sso/jwks/a",
            "//sso/jwks/a",
            "/../sso/jwks/a",
            "/x/./oauth2/jwks",
            "/x y/sso/jwks/a",
        ] {
            let spec = format!("{path}=https://api.workos.com/sso/jwks/a");
            assert_eq!(
                spec.parse::<MirrorSpec>(),
                Err(ConfigError::Path(path.into())),
                "{path}"
            );
        }
    }

    #[test]
    fn refuses_bad_urls() {
        for url in [
            "ftp://x/sso/jwks/a",
            "not a url",
            "https://user:pw@api.workos.com/sso/jwks/a",
            "file:///etc/passwd",
        ] {
            let spec = format!("/sso/jwks/a={url}");
            assert!(
                matches!(spec.parse::<MirrorSpec>(), Err(ConfigError::Url { .. })),
                "{url}"
            );
        }
        assert!(matches!(
            "/sso/jwks/a".parse::<MirrorSpec>(),
            Err(ConfigError::NotPathEqualsUrl(_))
        ));
    }

    #[test]
    fn refuses_inconsistent_configs() {
        let m: MirrorSpec = CLIENT.parse().unwrap();
        let (s5, h1) = (Duration::from_secs(5), Duration::from_secs(3600));
        assert_eq!(
            MirrorConfig::new(vec![], s5, h1),
            Err(ConfigError::NoMirror)
        );
        assert_eq!(
            MirrorConfig::new(vec![m.clone(), m.clone()], s5, h1),
            Err(ConfigError::DuplicatePath(m.path.clone()))
        );
        assert_eq!(
            MirrorConfig::new(vec![m.clone()], Duration::ZERO, h1),
            Err(ConfigError::ZeroRefresh)
        );
        assert_eq!(
            MirrorConfig::new(vec![m.clone()], h1, s5),
            Err(ConfigError::MaxStaleTooShort)
        );
        assert!(MirrorConfig::new(vec![m], s5, h1).is_ok());
    }
}
