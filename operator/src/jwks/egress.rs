//! An HTTP(S) forward proxy for the outbound requests (WorkOS keys, Convex's admin API), read
//! from the environment as curl reads it: `https_proxy`/`HTTPS_PROXY`, `http_proxy`/`HTTP_PROXY`
//! and `no_proxy`/`NO_PROXY` (lower case first). Through a proxy, the operator connects to the
//! proxy only: the address guard checks the proxy's address (list it in the allowed networks
//! when it is private), and the proxy resolves the upstream, so its own rules must keep it from
//! internal destinations. The name allow-lists apply as without a proxy.

use reqwest::{ClientBuilder, NoProxy, Proxy};

/// The proxies of the outbound clients; empty: every request goes directly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressProxy {
    /// For `https://` destinations (WorkOS, Convex Cloud): a CONNECT tunnel through it.
    pub https: Option<url::Url>,
    /// For `http://` destinations (a test upstream, a self-hosted backend on plain http).
    pub http: Option<url::Url>,
    /// Hosts, domains (`.svc`) and ranges reached directly, curl's `NO_PROXY` syntax.
    pub no_proxy: Option<String>,
}

/// A proxy variable that is not a proxy URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{variable} is not a proxy URL ({reason}): set it to e.g. http://proxy.example:3128 (chart value {chart_value})"
)]
pub struct EgressProxyError {
    pub variable: &'static str,
    pub reason: String,
    pub chart_value: &'static str,
}

impl EgressProxy {
    /// The proxies of this process's environment.
    pub fn from_env() -> Result<Self, EgressProxyError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The proxies `lookup` gives for the environment variables' names.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EgressProxyError> {
        let read = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                lookup(name)
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .map(|v| (name, v))
            })
        };
        let proxy = |names, chart_value| -> Result<Option<url::Url>, EgressProxyError> {
            let Some((variable, value)) = read(names) else {
                return Ok(None);
            };
            let error = |reason: String| EgressProxyError {
                variable,
                reason,
                chart_value,
            };
            let url = url::Url::parse(&value).map_err(|e| error(e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(error(format!(
                    "scheme {:?} with no host or not http(s)",
                    url.scheme()
                )));
            }
            Ok(Some(url))
        };
        Ok(Self {
            https: proxy(["https_proxy", "HTTPS_PROXY"], "egress.httpsProxy")?,
            http: proxy(["http_proxy", "HTTP_PROXY"], "egress.httpProxy")?,
            no_proxy: read(["no_proxy", "NO_PROXY"]).map(|(_, v)| v),
        })
    }

    /// `builder` sending through these proxies and through nothing else: reqwest's own reading
    /// of the environment is turned off, so what the operator reports is what it does.
    pub(crate) fn apply(&self, builder: ClientBuilder) -> Result<ClientBuilder, reqwest::Error> {
        let mut builder = builder.no_proxy();
        let skip = || self.no_proxy.as_deref().and_then(NoProxy::from_string);
        if let Some(url) = &self.https {
            builder = builder.proxy(Proxy::https(url.as_str())?.no_proxy(skip()));
        }
        if let Some(url) = &self.http {
            builder = builder.proxy(Proxy::http(url.as_str())?.no_proxy(skip()));
        }
        Ok(builder)
    }

    /// The environment that gives a mirror pod the same proxies (upper-case names).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = Vec::new();
        if let Some(url) = &self.https {
            env.push(("HTTPS_PROXY", url.to_string()));
        }
        if let Some(url) = &self.http {
            env.push(("HTTP_PROXY", url.to_string()));
        }
        if let Some(hosts) = &self.no_proxy {
            env.push(("NO_PROXY", hosts.clone()));
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn lower_case_first_then_upper_case_as_curl_reads_them() {
        let proxy = EgressProxy::from_lookup(env(&[
            ("HTTPS_PROXY", "http://upper:3128"),
            ("https_proxy", "http://lower:3128"),
            ("HTTP_PROXY", "http://plain:8080"),
            ("NO_PROXY", ".svc,10.0.0.0/8"),
        ]))
        .unwrap();
        assert_eq!(proxy.https.unwrap().as_str(), "http://lower:3128/");
        assert_eq!(proxy.http.unwrap().as_str(), "http://plain:8080/");
        assert_eq!(proxy.no_proxy.as_deref(), Some(".svc,10.0.0.0/8"));
        assert_eq!(
            EgressProxy::from_lookup(env(&[])).unwrap(),
            EgressProxy::default()
        );
    }

    #[test]
    fn a_value_that_is_not_a_proxy_url_names_the_variable_and_the_chart_value() {
        for bad in ["proxy.example:3128", "socks5://proxy:1080", "not a url"] {
            let err = EgressProxy::from_lookup(env(&[("HTTPS_PROXY", bad)])).unwrap_err();
            assert_eq!(err.variable, "HTTPS_PROXY", "{bad}");
            let message = err.to_string();
            assert!(message.contains("egress.httpsProxy"), "{message}");
        }
    }

    #[test]
    fn the_mirror_gets_the_same_proxies() {
        let proxy = EgressProxy::from_lookup(env(&[
            ("https_proxy", "http://proxy:3128"),
            ("no_proxy", ".svc"),
        ]))
        .unwrap();
        assert_eq!(
            proxy.env(),
            [
                ("HTTPS_PROXY", "http://proxy:3128/".to_string()),
                ("NO_PROXY", ".svc".to_string())
            ]
        );
    }
}
