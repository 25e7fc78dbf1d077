//! A real HTTP forward proxy on loopback for the egress tests: Debian's `tinyproxy` (plain
//! requests in absolute form, and CONNECT), logging every request it forwards.
//!
//! `tests/run.sh` installs the package. The proxy runs until [`ForwardProxy::stop`] or the end of
//! the test process (a shell holds it and kills it once its stdin closes).

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

const TINYPROXY: &str = "/usr/bin/tinyproxy";

/// A running forward proxy.
pub struct ForwardProxy {
    process: Option<Child>,
    dir: PathBuf,
    address: SocketAddrV4,
}

impl ForwardProxy {
    /// Starts tinyproxy on a free loopback port, admitting loopback clients only.
    pub fn start() -> anyhow::Result<Self> {
        if !Path::new(TINYPROXY).exists() {
            bail!("{TINYPROXY} is missing: apt-get install tinyproxy (tests/run.sh does)");
        }
        let dir = std::env::temp_dir().join(format!(
            "wca-forward-proxy-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir)?;
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        std::fs::write(
            dir.join("tinyproxy.conf"),
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 10\nLogFile \"{log}\"\nLogLevel Connect\n\
                 MaxClients 32\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
                log = dir.join("tinyproxy.log").display()
            ),
        )?;
        let process = Command::new("bash")
            .args([
                "-c",
                r#""$0" -d -c "$1/tinyproxy.conf" >"$1/stdout.log" 2>&1 & pid=$!; read -r _; kill "$pid"; wait "$pid"; rm -rf "$1""#,
                TINYPROXY,
            ])
            .arg(&dir)
            .stdin(Stdio::piped())
            .spawn()
            .context("starting tinyproxy")?;
        let proxy = Self {
            process: Some(process),
            dir,
            address,
        };
        let began = Instant::now();
        while TcpStream::connect(address).is_err() {
            if began.elapsed() > Duration::from_secs(10) {
                bail!("tinyproxy did not listen on {address} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(proxy)
    }

    /// `http://127.0.0.1:PORT`, the value of `HTTP_PROXY`/`HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The requests it forwarded, as logged (`GET http://host:port/path HTTP/1.1`, `CONNECT
    /// host:443 HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("tinyproxy.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("): ").map(|(_, r)| r.to_string()))
            .filter(|r| r.ends_with(" HTTP/1.1") || r.ends_with(" HTTP/1.0"))
            .collect()
    }

    /// Stops the proxy; its port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            drop(process.stdin.take());
            let _ = process.wait();
        }
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.stop();
    }
}
