//! spawn_app for the black-box API tests: a generated county, test certificates, keys,
//! `hedui sim` (the 12 department sources over HTTPS with mutual TLS) and `hedui serve`,
//! all real processes on loopback, in a temporary directory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub const AS_OF: &str = "2026-11-01";
pub const COUNTY: &str = "620503";

/// A consent's `valid_until` inside serve's default `[limits] max_consent_days` (366): 300
/// days from today (UTC), as `YYYY-MM-DD`.
pub fn consent_until() -> String {
    (hedui::domain::date::today() + chrono::Days::new(300)).to_string()
}

/// The binary under test: cargo's, or `HEDUI_BIN` when set (engineers sharing one target
/// directory copy their build aside, since `target/release/hedui` is overwritten by
/// whoever builds last).
pub fn bin() -> String {
    std::env::var("HEDUI_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_hedui").to_string())
}

pub fn hedui(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("the hedui binary runs")
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "hedui failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `hedui ARGS` and wait for its `listening on https://ADDR` line.
pub fn spawn_listening(args: &[&str]) -> (Proc, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("hedui starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent && let Some(i) = line.find("https://") {
                let addr: String = line[i + 8..]
                    .chars()
                    .take_while(|c| !c.is_whitespace())
                    .collect();
                let _ = tx.send(addr);
                sent = true;
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("hedui {args:?} did not print its address"));
    (Proc(child), addr)
}

/// The generated county, certificates and keys (shared by the processes of one test).
pub struct World {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
}

impl World {
    pub fn new(households: usize) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let h = households.to_string();
        ok(&hedui(&[
            "gen",
            "--households",
            &h,
            "--seed",
            "11",
            "--population-factor",
            "2",
            "--as-of",
            AS_OF,
            "--out",
            s(&root.join("data")),
            "--format",
            "csv",
        ]));
        ok(&hedui(&["keygen", "--out", s(&root.join("keys"))]));
        ok(&hedui(&["certs", "--out", s(&root.join("certs"))]));
        World { _dir: dir, root }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.root.join(p)
    }

    /// Start the sim with this faults config (TOML).
    pub fn sim(&self, faults: &str) -> (Proc, String) {
        let cfg = self.path(&format!("sim-{}.toml", rand_suffix()));
        std::fs::write(&cfg, faults).unwrap();
        spawn_listening(&[
            "sim",
            "--data",
            s(&self.path("data")),
            "--listen",
            "127.0.0.1:0",
            "--certs",
            s(&self.path("certs")),
            "--config",
            s(&cfg),
            "--as-of",
            AS_OF,
        ])
    }

    /// Write a serve config reaching the sim at `sim_addr`; `source_extra` is added to every
    /// `[[sources.sources]]` entry (e.g. `cache_ttl_s = 0`).
    pub fn serve_config(&self, sim_addr: &str, source_extra: &str) -> PathBuf {
        let mut t = format!(
            r#"listen = "127.0.0.1:0"
tls_cert = "certs/server.pem"
tls_key = "certs/server.key"
store = "hedui.db"
recipients = ["keys/civil.pub"]
signing_key = "keys/hedui-signing.key"
secret = "a-test-secret-of-at-least-thirty-two-bytes"
as_of = "{AS_OF}"

[limits]
max_body_bytes = 16384
max_persons = 8
wait_cap_s = 20

[sources]
cache_secret = "another-test-secret-of-at-least-32-bytes"

[sources.tls]
ca = "certs/ca.pem"
cert = "certs/client.pem"
key = "certs/client.key"
"#
        );
        for k in hedui::SourceKind::ALL {
            t.push_str(&format!(
                "\n[[sources.sources]]\nname = \"{}\"\nbase_url = \"https://{sim_addr}\"\n{source_extra}\n",
                k.name()
            ));
        }
        let p = self.path("serve.toml");
        std::fs::write(&p, t).unwrap();
        p
    }

    pub fn serve(&self, config: &Path) -> (Proc, String) {
        spawn_listening(&["serve", "--config", s(config)])
    }

    /// A token made with the CLI: (id, secret).
    pub fn token(&self, role: &str, region: &str) -> (String, String) {
        let out = ok(&hedui(&[
            "token",
            "add",
            "--store",
            s(&self.path("hedui.db")),
            "--role",
            role,
            "--region",
            region,
        ]));
        let mut it = out.split_whitespace();
        (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
        )
    }

    /// `hedui token revoke` of token `id` on the world's store (the operator's command line).
    pub fn revoke_token(&self, id: &str) {
        ok(&hedui(&[
            "token",
            "revoke",
            "--store",
            s(&self.path("hedui.db")),
            "--id",
            id,
        ]));
    }

    /// `hedui batch` over `caseload` and the generated extracts into `out`, opened with the
    /// civil-affairs key: every report, by household id.
    pub fn batch_reports(&self, caseload: &Path, out: &str) -> BTreeMap<String, Value> {
        let out = self.path(out);
        let _ = hedui(&[
            "batch",
            "--caseload",
            s(caseload),
            "--sources",
            s(&self.path("data")),
            "--recipient",
            s(&self.path("keys/civil.pub")),
            "--out",
            s(&out),
            "--as-of",
            AS_OF,
        ]);
        ok(&hedui(&[
            "open",
            "--key",
            s(&self.path("keys/civil.key")),
            s(&out.join("reports.jsonl")),
        ]))
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|r| (r["household_id"].as_str().unwrap().to_string(), r))
        .collect()
    }

    /// Open a sealed report with the civil-affairs key.
    pub fn open(&self, sealed: &Value) -> Value {
        let key = hedui::seal::RecipientPrivateKey::load(&self.path("keys/civil.key")).unwrap();
        let signer = hedui::seal::VerifyingKey::load(&self.path("keys/hedui-signing.pub")).unwrap();
        let env: hedui::seal::SealedReport = serde_json::from_value(sealed.clone()).unwrap();
        let bytes = hedui::seal::Opener::new(key, Some(signer))
            .open(&env)
            .expect("the report opens");
        serde_json::from_slice(&bytes).unwrap()
    }

    /// Caseload rows of the generated county: table → rows as column → value.
    pub fn caseload(&self, table: &str) -> Vec<BTreeMap<String, String>> {
        let mut r = csv::Reader::from_path(self.path(&format!("data/{table}.csv"))).unwrap();
        let headers = r.headers().unwrap().clone();
        r.records()
            .map(|row| {
                let row = row.unwrap();
                headers
                    .iter()
                    .zip(row.iter())
                    .map(|(h, v)| (h.to_string(), v.to_string()))
                    .collect()
            })
            .collect()
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// HTTP requests that reached `source` at the sim at `sim_addr` (its `/v1/stats`, over
/// mutual TLS with the client certificate the server uses).
pub async fn sim_requests(world: &World, sim_addr: &str, source: &str) -> u64 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(world.path("certs/ca.pem")).unwrap();
    let mut pem = std::fs::read(world.path("certs/client.pem")).unwrap();
    pem.extend(std::fs::read(world.path("certs/client.key")).unwrap());
    let stats: serde_json::Value = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .use_rustls_tls()
        .build()
        .unwrap()
        .get(format!(
            "https://localhost:{}/v1/stats",
            sim_addr.rsplit(':').next().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    stats["sources"][source]["requests"].as_u64().unwrap()
}

/// An HTTPS client trusting the test CA.
pub fn client(world: &World) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = std::fs::read(world.path("certs/ca.pem")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .use_rustls_tls()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(world: &World, addr: &str) -> Api {
        Api {
            http: client(world),
            base: format!("https://localhost:{}", addr.rsplit(':').next().unwrap()),
        }
    }
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    pub async fn post_raw(&self, path: &str, token: &str, body: Vec<u8>) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }
    pub async fn get(&self, path: &str, token: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap_or_default())
    }
    /// `DELETE path` with `token`: the status and the JSON answer (`Null` when none).
    pub async fn delete(&self, path: &str, token: &str) -> (u16, Value) {
        let r = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
    /// Revoke the consent `reference` with `token`; returns the HTTP status.
    pub async fn revoke_consent(&self, token: &str, reference: &str) -> u16 {
        self.http
            .delete(format!("{}/v1/consents/{reference}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
    /// Register a consent for every source; returns its reference.
    pub async fn consent(&self, token: &str, id_number: &str) -> String {
        let (st, v) = self
            .post(
                "/v1/consents",
                token,
                &json!({"id_number": id_number, "region_code": COUNTY, "purpose": "dibao application",
                        "valid_until": consent_until(), "scope": ["*"]}),
            )
            .await;
        assert_eq!(st, 201, "{v}");
        v["consent_ref"].as_str().unwrap().to_string()
    }
}
