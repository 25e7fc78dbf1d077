//! The tests' fake WorkOS as a process, for `bench/proxy/run.sh`.
//!
//! `fake_workos <listen addr> <jwks file> [<mirror readyz URL>]`: serves the JWKS at WorkOS's
//! paths; with a readyz URL, after the first JWKS answer it polls that URL every 0.5 ms and
//! prints `ready_after_first_answer_ms=<ms>` once it answers 200.

// The tests use every helper; this process only a few.
#[allow(dead_code)]
#[path = "../tests/support/fake_workos.rs"]
mod fake_workos;

use std::time::{Duration, Instant};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(file)) = (args.first(), args.get(1)) else {
        eprintln!("usage: fake_workos <listen addr> <jwks file> [<mirror readyz URL>]");
        std::process::exit(2);
    };
    let addr = addr.parse().expect("listen address");
    let document = std::fs::read_to_string(file).expect("read the JWKS file");
    let fake = fake_workos::FakeWorkos::start_on(addr, document).await;
    println!("listening on {}", fake.base_url());
    if let Some(readyz) = args.get(2) {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
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
    tokio::signal::ctrl_c().await.ok();
}
