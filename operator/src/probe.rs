//! `probe`: one HTTP GET that succeeds on a 2xx answer. The image holds only this binary (no
//! shell, no curl), so the chart's `helm test` Pod runs it to check the operator's `/readyz`
//! from inside the cluster.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use reqwest::{StatusCode, Url, redirect};

use crate::duration::parse_duration;

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The URL to GET, e.g. http://wca-workos-convex-auth-metrics.wca-system.svc:8081/readyz.
    #[arg(long, env = "WCA_PROBE_URL", value_parser = parse_url)]
    pub url: Url,
    /// Longest time for the whole request, connection included.
    #[arg(long, env = "WCA_PROBE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// Only http and https: anything else cannot be a probe target.
fn parse_url(input: &str) -> Result<Url, String> {
    let url = Url::parse(input).map_err(|e| format!("{input}: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!("{input}: scheme {other} is not http or https")),
    }
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("no answer from {url} within {timeout:?}")]
    Timeout { url: Url, timeout: Duration },
    #[error("GET {url} failed: {source}")]
    Request {
        url: Url,
        #[source]
        source: reqwest::Error,
    },
    /// A redirect counts as a failure too: a health endpoint that redirects is misconfigured,
    /// and following it could probe something else.
    #[error("GET {url} answered {status}")]
    Status { url: Url, status: StatusCode },
}

/// GETs the URL once; the status on a 2xx answer.
pub async fn probe(args: &ProbeArgs) -> Result<StatusCode, ProbeError> {
    let client = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(args.timeout)
        .connect_timeout(args.timeout)
        .build()
        .map_err(ProbeError::Client)?;
    let response = client
        .get(args.url.clone())
        .send()
        .await
        .map_err(|source| {
            if source.is_timeout() {
                ProbeError::Timeout {
                    url: args.url.clone(),
                    timeout: args.timeout,
                }
            } else {
                ProbeError::Request {
                    url: args.url.clone(),
                    source,
                }
            }
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(status)
    } else {
        Err(ProbeError::Status {
            url: args.url.clone(),
            status,
        })
    }
}

/// The subcommand: exit 0 on a 2xx answer, 1 otherwise, with one line saying which.
pub async fn run(args: ProbeArgs) -> ExitCode {
    match probe(&args).await {
        Ok(status) => {
            println!("ok: GET {} answered {status}", args.url);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("probe failed: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_and_https_urls_are_accepted() {
        assert!(parse_url("http://127.0.0.1:8081/readyz").is_ok());
        assert!(parse_url("https://example.com/readyz").is_ok());
        let file = parse_url("file:///etc/passwd").unwrap_err();
        assert!(file.contains("scheme file"), "{file}");
        assert!(parse_url("not a url").is_err());
    }
}
