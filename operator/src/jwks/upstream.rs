//! Where a JWKS fetch may go: the scheme, and the addresses a host may resolve to.
//!
//! The upstream URL is written by a tenant, and the request leaves from the operator's or the
//! mirror's network position: without these rules a resource could make either fetch from cloud
//! metadata (169.254.169.254), the apiserver or any in-cluster service (server-side request
//! forgery). The host allow-list is the operator's admission policy
//! (`crate::reconcile::policy`); the rules here are the ones every fetch enforces itself, in the
//! operator (mode Inline) and in the mirror (which gets them as flags), at connect time: the
//! resolver refuses a blocked address, so a DNS answer cannot change between check and use.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::LookupIpStrategy;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Address ranges no fetch may reach unless the admin allows them: loopback, RFC 1918 private,
/// link-local (cloud metadata at 169.254.169.254 and fd00:ec2::254 included), CGNAT (Alibaba's
/// metadata at 100.100.100.200), unspecified, multicast, reserved, unique-local, and IPv6 forms
/// whose IPv4 cannot be read or whose reach is the local network's: local-use NAT64
/// (`64:ff9b:1::/48`, RFC 8215: the IPv4's place depends on a prefix length only the network
/// knows), Teredo (`2001::/32`, its client address obfuscated), deprecated site-local
/// (`fec0::/10`), and the 6to4 relay anycast. IPv6 forms that carry a readable IPv4 (mapped,
/// compatible, NAT64 `64:ff9b::/96`, 6to4) are checked as that IPv4 ([`canonical`]).
const BLOCKED_RANGES: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "192.88.99.0/24",
    "::/128",
    "::1/128",
    "64:ff9b:1::/48",
    "2001::/32",
    "fc00::/7",
    "fe80::/10",
    "fec0::/10",
    "ff00::/8",
];

/// The rules every upstream fetch follows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamRules {
    /// Allow `http://` upstreams (default: `https` only; WorkOS serves its keys over https).
    pub allow_http: bool,
    /// Ranges allowed although they are in `BLOCKED_RANGES` (e.g. `127.0.0.0/8` in tests, or
    /// the address of an egress proxy).
    pub allowed_networks: Vec<IpNet>,
    /// Fixed answers for host names, like curl's `--resolve` (tests map names to loopback
    /// addresses with it); the answers are checked like any other.
    pub resolve: HashMap<String, Vec<IpAddr>>,
    /// The forward proxy requests go through (`HTTPS_PROXY`…); the address checks then apply to
    /// the proxy's address, which the proxy connects on from.
    pub egress: super::EgressProxy,
}

/// A refused upstream: what was refused, never a response from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the upstream URL {0:?} is not a valid absolute URL")]
    Url(String),
    #[error(
        "scheme {0:?} is not allowed: only https, unless the cluster admin allows http with --allow-http-upstream (chart value policy.upstream.allowHttp), or for a Convex deployment --allow-http-convex (chart value policy.convex.allowHttp)"
    )]
    Scheme(String),
    #[error(
        "address {0} is in a loopback, private, link-local or metadata range; the cluster admin admits it with --allowed-upstream-networks (chart value policy.upstream.allowedNetworks), or for a Convex deployment --allowed-convex-networks (chart value policy.convex.allowedNetworks)"
    )]
    Address(IpAddr),
    #[error("host {0:?} resolves to no address")]
    NoAddress(String),
    #[error(
        "redirect to another origin ({0}); only redirects within the upstream's origin are followed"
    )]
    CrossOriginRedirect(String),
}

impl UpstreamRules {
    /// Whether a connection to `ip` is allowed.
    pub fn address_allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        !blocked(ip) || self.allowed_networks.iter().any(|n| n.contains(&ip))
    }

    /// Checks what can be checked before any I/O: the URL parses, its scheme, and an IP-literal
    /// host's address. Host names are checked when they resolve.
    pub fn check_url(&self, url: &str) -> Result<url::Url, Refused> {
        let parsed = url::Url::parse(url).map_err(|_| Refused::Url(url.to_string()))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => return Err(Refused::Scheme(other.to_string())),
        }
        match parsed.host() {
            Some(url::Host::Ipv4(ip)) => self.check_address(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_address(IpAddr::V6(ip))?,
            Some(url::Host::Domain(_)) => {}
            None => return Err(Refused::Url(url.to_string())),
        }
        Ok(parsed)
    }

    fn check_address(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.address_allowed(ip) {
            Ok(())
        } else {
            Err(Refused::Address(canonical(ip)))
        }
    }

    /// Command-line arguments that give a mirror these rules (see `proxy --help`).
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.allow_http {
            args.push("--allow-http-upstream".to_string());
        }
        for network in &self.allowed_networks {
            args.extend([
                "--allowed-upstream-networks".to_string(),
                network.to_string(),
            ]);
        }
        let mut resolve: Vec<_> = self.resolve.iter().collect();
        resolve.sort();
        for (host, ips) in resolve {
            for ip in ips {
                args.extend(["--upstream-resolve".to_string(), format!("{host}={ip}")]);
            }
        }
        args
    }
}

/// An IPv6 address that carries an IPv4 one is that IPv4 address: what a connection to it
/// reaches through the translator, the tunnel or the dual stack.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_ipv4(v6).map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The IPv4 address in an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`,
/// deprecated), well-known-prefix NAT64 (`64:ff9b::a.b.c.d`, RFC 6052) or 6to4
/// (`2002:AABB:CCDD::/48`, RFC 3056) address.
fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = v6.segments();
    // The low 32 bits: the truncation is the point.
    let low32 = Ipv4Addr::from(v6.to_bits() as u32);
    match segments {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(low32),
        // `::` and `::1` are IPv6's own unspecified and loopback addresses, blocked as such.
        [0, 0, 0, 0, 0, 0, _, _] if !v6.is_unspecified() && !v6.is_loopback() => Some(low32),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low32),
        [0x2002, high, low, ..] => Some(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))),
        _ => None,
    }
}

/// [`BLOCKED_RANGES`], parsed once rather than on every resolved address.
static BLOCKED: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
    BLOCKED_RANGES
        .iter()
        // The table is static; `the_blocked_table_parses` proves every entry parses.
        .filter_map(|range| IpNet::from_str(range).ok())
        .collect()
});

fn blocked(ip: IpAddr) -> bool {
    BLOCKED.iter().any(|net| net.contains(&ip))
}

/// Parses `host=ip`, the form of `--upstream-resolve`.
pub fn parse_resolve(value: &str) -> Result<(String, IpAddr), String> {
    let (host, ip) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?}: expected HOST=IP"))?;
    let ip = ip
        .parse::<IpAddr>()
        .map_err(|_| format!("{value:?}: {ip:?} is not an IP address"))?;
    if host.is_empty() {
        return Err(format!("{value:?}: the host is empty"));
    }
    Ok((host.to_ascii_lowercase(), ip))
}

/// Parses a CIDR (`10.0.0.0/8`) or a single address, the form of `--allowed-upstream-network`.
pub fn parse_network(value: &str) -> Result<IpNet, String> {
    value
        .parse::<IpNet>()
        .or_else(|_| value.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{value:?} is neither a CIDR (10.0.0.0/8) nor an IP address"))
}

/// reqwest's resolver: fixed answers first, else DNS (hickory, as the rest of the client; a
/// static binary has no usable NSS), then every answer checked against the rules. A host with
/// one blocked address is refused as a whole: a rebinding answer mixes both kinds.
#[derive(Clone)]
pub(crate) struct GuardedResolver {
    rules: Arc<UpstreamRules>,
    /// Built on first use, inside the runtime (as reqwest does with its own hickory resolver).
    dns: Arc<tokio::sync::OnceCell<TokioResolver>>,
}

impl GuardedResolver {
    pub(crate) fn new(rules: UpstreamRules) -> Self {
        Self {
            rules: Arc::new(rules),
            dns: Arc::default(),
        }
    }
}

fn system_resolver() -> Result<TokioResolver, hickory_resolver::ResolveError> {
    let mut builder = TokioResolver::builder_tokio()?;
    // Both families, so reqwest's happy eyeballs has both to try (reqwest's own choice).
    builder.options_mut().ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    Ok(builder.build())
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let rules = Arc::clone(&self.rules);
        let dns = Arc::clone(&self.dns);
        Box::pin(async move {
            let host = name.as_str().to_ascii_lowercase();
            let ips: Vec<IpAddr> = match rules.resolve.get(&host) {
                Some(fixed) => fixed.clone(),
                None => {
                    let resolver = dns.get_or_try_init(|| async { system_resolver() }).await?;
                    resolver.lookup_ip(host.as_str()).await?.iter().collect()
                }
            };
            if ips.is_empty() {
                return Err(Box::new(Refused::NoAddress(host)) as _);
            }
            if let Some(bad) = ips.iter().find(|ip| !rules.address_allowed(**ip)) {
                return Err(Box::new(Refused::Address(canonical(*bad))) as _);
            }
            // reqwest sets the port of the URL; the resolver's port is ignored.
            let addrs: Addrs = Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The origin a redirect must stay within.
pub(crate) fn same_origin(a: &url::Url, b: &url::Url) -> bool {
    a.origin() == b.origin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_blocked_table_parses() {
        for range in BLOCKED_RANGES {
            assert!(IpNet::from_str(range).is_ok(), "{range}");
        }
        assert_eq!(BLOCKED.len(), BLOCKED_RANGES.len());
    }

    #[test]
    fn internal_and_metadata_addresses_are_refused_by_default() {
        let rules = UpstreamRules::default();
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!rules.address_allowed(ip(blocked)), "{blocked}");
        }
        for public in ["104.18.0.1", "198.18.0.10", "2606:4700::1"] {
            assert!(rules.address_allowed(ip(public)), "{public}");
        }
    }

    /// Issue 22: IPv6 forms that carry or hide an IPv4 address.
    #[test]
    fn ipv6_forms_of_internal_ipv4_addresses_are_refused() {
        let rules = UpstreamRules::default();
        for (blocked, reaches) in [
            ("64:ff9b::7f00:1", Some("127.0.0.1")),
            ("64:ff9b::a9fe:a9fe", Some("169.254.169.254")),
            ("64:ff9b::10.1.2.3", Some("10.1.2.3")),
            ("2002:7f00:1::1", Some("127.0.0.1")),
            ("2002:a9fe:a9fe:1::", Some("169.254.169.254")),
            ("2002:c0a8:101::42", Some("192.168.1.1")),
            ("::127.0.0.1", Some("127.0.0.1")),
            ("::10.0.0.1", Some("10.0.0.1")),
            ("::a9fe:a9fe", Some("169.254.169.254")),
            // Whole ranges: the IPv4 cannot be read, or the reach is the local network's.
            ("64:ff9b:1::a00:1", None),
            ("64:ff9b:1:ffff::1", None),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", None),
            ("2001::1", None),
            ("fec0::1", None),
            ("feff::1", None),
        ] {
            let ip = ip(blocked);
            assert!(!rules.address_allowed(ip), "{blocked}");
            let shown = match rules.check_url(&format!("https://[{blocked}]/")) {
                Err(Refused::Address(shown)) => shown,
                other => panic!("{blocked}: {other:?}"),
            };
            if let Some(v4) = reaches {
                assert_eq!(shown.to_string(), v4, "{blocked}");
            }
        }
        // Public IPv4 behind the same forms stays reachable; the ranges around the blocked ones too.
        for public in [
            "64:ff9b::6812:1",
            "2002:6812:1::1",
            "::ffff:104.18.0.1",
            "2001:db9::1",
            "2001:1::1",
            "fe00::1",
        ] {
            assert!(rules.address_allowed(ip(public)), "{public}");
        }
        // The admin's ranges apply to the IPv4 carried.
        let loopback = UpstreamRules {
            allowed_networks: vec![parse_network("127.0.0.0/8").unwrap()],
            ..UpstreamRules::default()
        };
        assert!(loopback.address_allowed(ip("64:ff9b::7f00:1")));
        assert!(loopback.address_allowed(ip("2002:7f00:1::")));
    }

    /// A DNS answer that mixes public addresses with a translated form of an internal one is
    /// refused whole (a rebinding answer does exactly this), naming the IPv4 it carries.
    #[tokio::test]
    async fn a_mixed_answer_with_a_translated_internal_address_is_refused_whole() {
        let answer = |ips: &[&str]| UpstreamRules {
            resolve: HashMap::from([(
                "mixed.test".to_string(),
                ips.iter().map(|s| ip(s)).collect(),
            )]),
            ..UpstreamRules::default()
        };
        let resolve = |rules: UpstreamRules| async move {
            let name = Name::from_str("mixed.test").expect("a name");
            GuardedResolver::new(rules)
                .resolve(name)
                .await
                .map(|addrs| addrs.map(|a| a.ip()).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        };
        for (ips, shown) in [
            (&["104.18.0.1", "64:ff9b::7f00:1"][..], "127.0.0.1"),
            (
                &["2606:4700::1", "2002:a9fe:a9fe::1"][..],
                "169.254.169.254",
            ),
            (&["104.18.0.1", "::10.0.0.1"][..], "10.0.0.1"),
            (&["104.18.0.1", "2001::1"][..], "2001::1"),
        ] {
            let refused = resolve(answer(ips)).await.expect_err("refused");
            assert!(
                refused.contains(&format!("address {shown} ")),
                "{ips:?}: {refused}"
            );
        }
        let fine = resolve(answer(&["104.18.0.1", "64:ff9b::6812:1"]))
            .await
            .expect("public only");
        assert_eq!(fine.len(), 2);
    }

    #[test]
    fn the_admin_can_allow_a_range() {
        let rules = UpstreamRules {
            allowed_networks: vec![parse_network("127.0.0.0/8").unwrap()],
            ..UpstreamRules::default()
        };
        assert!(rules.address_allowed(ip("127.0.0.1")));
        assert!(rules.address_allowed(ip("::ffff:127.0.0.1")));
        assert!(!rules.address_allowed(ip("10.0.0.1")));
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let rules = UpstreamRules::default();
        assert!(rules.check_url("https://api.workos.com/sso/jwks/x").is_ok());
        assert_eq!(
            rules.check_url("http://api.workos.com/x").unwrap_err(),
            Refused::Scheme("http".into())
        );
        assert_eq!(
            rules
                .check_url("https://169.254.169.254/latest")
                .unwrap_err(),
            Refused::Address(ip("169.254.169.254"))
        );
        assert_eq!(
            rules.check_url("https://[::ffff:10.0.0.1]/").unwrap_err(),
            Refused::Address(ip("10.0.0.1"))
        );
        assert!(matches!(
            rules.check_url("file:///etc/passwd").unwrap_err(),
            Refused::Scheme(_)
        ));
        let http = UpstreamRules {
            allow_http: true,
            ..UpstreamRules::default()
        };
        assert!(http.check_url("http://api.workos.com/x").is_ok());
    }

    #[test]
    fn flags_round_trip() {
        assert_eq!(
            parse_resolve("Fake.Test=127.0.0.1").unwrap(),
            ("fake.test".to_string(), ip("127.0.0.1"))
        );
        assert!(parse_resolve("fake.test").is_err());
        assert!(parse_resolve("=1.2.3.4").is_err());
        assert!(parse_network("nope").is_err());
        assert_eq!(
            parse_network("10.0.0.1").unwrap().to_string(),
            "10.0.0.1/32"
        );
        let rules = UpstreamRules {
            allow_http: true,
            allowed_networks: vec![parse_network("10.0.0.0/8").unwrap()],
            resolve: HashMap::from([("a.test".to_string(), vec![ip("10.0.0.1")])]),
            ..UpstreamRules::default()
        };
        assert_eq!(
            rules.to_args(),
            [
                "--allow-http-upstream",
                "--allowed-upstream-networks",
                "10.0.0.0/8",
                "--upstream-resolve",
                "a.test=10.0.0.1"
            ]
        );
    }
}
