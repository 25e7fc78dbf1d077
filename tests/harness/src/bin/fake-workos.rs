//! The fake WorkOS as a process: `wca_test_harness::fake_workos` behind a command line.
//!
//!   fake-workos --listen ADDR --jwks FILE [--report-ready URL]
//!
//! Serves the JWKS at WorkOS's paths and the `/_fake/` control endpoints (faults, key rotation,
//! hit counts). The end-to-end tests run it as a pod on the local node, the proxy benchmark on
//! loopback. With `--report-ready URL` (a mirror's `/readyz`), after its first JWKS answer it
//! polls that URL every 0.5 ms and prints `ready_after_first_answer_ms=<ms>` once it is 200.
//! Stops on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use wca_test_harness::fake_workos::FakeWorkos;

struct Args {
    listen: SocketAddr,
    jwks: PathBuf,
    report_ready: Option<String>,
}

fn parse_args() -> anyhow::Result<Args> {
    let usage = "usage: fake-workos --listen ADDR --jwks FILE [--report-ready URL]";
    let (mut listen, mut jwks, mut report_ready) = (None, None, None);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value; {usage}"))?;
        match flag.as_str() {
            "--listen" => {
                listen = Some(
                    value
                        .parse()
                        .context("--listen: an address such as 0.0.0.0:8080")?,
                )
            }
            "--jwks" => jwks = Some(PathBuf::from(value)),
            "--report-ready" => report_ready = Some(value),
            _ => anyhow::bail!("unknown flag {flag}; {usage}"),
        }
    }
    Ok(Args {
        listen: listen.context(usage)?,
        jwks: jwks.context(usage)?,
        report_ready,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let document = std::fs::read_to_string(&args.jwks)
        .with_context(|| format!("reading {}", args.jwks.display()))?;
    let fake = FakeWorkos::start_controllable(args.listen, document).await;
    println!("fake WorkOS listening on {}", fake.base_url());
    if let Some(readyz) = &args.report_ready {
        let client = reqwest::Client::builder().no_proxy().build()?;
        let first = loop {
            if let Some(at) = fake.first_answer() {
                break at;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        let ready = loop {
            if client
                .get(readyz)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
            {
                break Instant::now();
            }
            tokio::time::sleep(Duration::from_micros(500)).await;
        };
        println!(
            "ready_after_first_answer_ms={:.2}",
            ready.duration_since(first).as_secs_f64() * 1000.0
        );
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(())
}
