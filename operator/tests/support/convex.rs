//! The FAKE Convex deployment (`tests/fake-convex/deployment.mjs`, a node process): the admin
//! API the operator uses, answering as convex-backend does, re-evaluating the pushed
//! `auth.config.js` with node on every variable change. Stopped on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::process::KillOnDrop;

pub struct FakeConvex {
    pub url: String,
    admin_key: String,
    http: reqwest::Client,
    _process: KillOnDrop,
    /// Kept open: the fake may still write to it.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl FakeConvex {
    /// Starts a deployment on loopback whose admin key is `admin_key`.
    pub fn start(admin_key: &str) -> Self {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fake-convex/deployment.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .args(["--listen", "127.0.0.1:0", "--admin-key", admin_key])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs the fake Convex deployment");
        let stdout = child.stdout.take().expect("piped stdout");
        let process = KillOnDrop::new(child);
        let mut line = String::new();
        let mut stdout = BufReader::new(stdout);
        stdout
            .read_line(&mut line)
            .expect("the fake deployment says where it listens");
        let url = line
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Self {
            url,
            admin_key: admin_key.to_string(),
            http: reqwest::Client::new(),
            _process: process,
            _stdout: stdout,
        }
    }

    fn authorization(&self) -> String {
        format!("Convex {}", self.admin_key)
    }

    /// Deploys an `auth.config.js` as `npx convex deploy` would: the deployment evaluates it
    /// with its variables; `Err` carries the status and Convex's error body.
    pub async fn push(&self, auth_config_js: &str) -> Result<Value, (u16, Value)> {
        let response = self
            .http
            .post(format!("{}/_fake/push", self.url))
            .header("authorization", self.authorization())
            .body(auth_config_js.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        if status == 200 {
            Ok(body)
        } else {
            Err((status, body))
        }
    }

    /// Sets a variable through the deployment's own API, as `npx convex env set` would.
    pub async fn set_variable(&self, name: &str, value: &str) -> u16 {
        self.http
            .post(format!("{}/api/update_environment_variables", self.url))
            .header("authorization", self.authorization())
            .header("content-type", "application/json")
            .body(serde_json::json!({"changes": [{"name": name, "value": value}]}).to_string())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// `{env, providers, deployed, requests: {list, update, query, push}, writes}`.
    pub async fn state(&self) -> Value {
        let response = self
            .http
            .get(format!("{}/_fake/state", self.url))
            .send()
            .await
            .unwrap();
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    /// A variable's value on the deployment.
    pub async fn variable(&self, name: &str) -> Option<String> {
        self.state().await["env"][name].as_str().map(str::to_string)
    }

    /// How many variable changes the deployment accepted.
    pub async fn writes(&self) -> u64 {
        self.state().await["writes"].as_u64().unwrap()
    }
}
