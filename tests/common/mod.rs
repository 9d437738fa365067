//! Helpers for tests that drive the real `crmpulse` binary over HTTP.
//!
//! Every server is started on a clock pinned to an instant the test chooses relative to
//! its data (`crmpulse --now`), and its tokens are minted on the same clock: no result
//! depends on the machine's date or time of day (`scripts/test` runs these suites under
//! `faketime` at several instants to show it).
#![allow(dead_code)]

pub mod smtp;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `crmpulse run` with its clock started at `now` (RFC 3339).
pub fn start(port: u16, dir: &std::path::Path, now: &str) -> Child {
    start_with(port, dir, now, &[])
}

/// `--now NOW`: the global flag that starts the binary's clock at `now`.
pub fn now_args(now: &str) -> [&OsStr; 2] {
    ["--now".as_ref(), now.as_ref()]
}

/// Credentials of a server started by [`start_with`]: an admin token of account 1
/// and account 1's ingest key, both made by the binary's own `token` and `ingest-key`
/// commands from the data dir's secret.
#[derive(Debug, Clone)]
pub struct Creds {
    pub token: String,
    pub ingest_key: String,
}

static CREDS: LazyLock<Mutex<HashMap<u16, Creds>>> = LazyLock::new(Mutex::default);

/// Runs `crmpulse [extra] ARGS --data-dir DIR` and returns its one line of output.
pub fn cli_line(dir: &std::path::Path, extra: &[&OsStr], args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .args(extra)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "crmpulse {args:?} failed");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A token for `role` (`admin`, `analyst`, or e.g. `agent --agent a1`) of `account`,
/// issued at `now` (the clock of the server that will check it).
pub fn token(dir: &std::path::Path, now: &str, account: u64, role_args: &[&str]) -> String {
    let account = account.to_string();
    let mut args = vec!["token", "--account", &account, "--role"];
    args.extend_from_slice(role_args);
    cli_line(dir, &now_args(now), &args)
}

/// The credentials of the server on `port`.
///
/// # Panics
/// When no server was started on `port` by [`start_with`].
pub fn creds(port: u16) -> Creds {
    CREDS.lock().unwrap()[&port].clone()
}

fn port_of(url: &str) -> u16 {
    let rest = url.split("://").nth(1).unwrap_or(url);
    let host_port = rest.split('/').next().unwrap();
    host_port.rsplit(':').next().unwrap().parse().unwrap()
}

/// A client that reads the dashboard of the server on `port` as account 1's admin.
pub fn client(port: u16) -> reqwest::Client {
    client_with(&creds(port).token)
}

/// A client that sends `token` as its bearer on every request.
pub fn client_with(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A server (or any child process), killed and reaped however the test ends.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until loopback `port` accepts connections (at most 30 s).
pub fn wait_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `crmpulse run` with its clock started at `now` (RFC 3339) and extra
/// arguments (e.g. `--config FILE`).
///
/// With `CRMPULSE_TEST_UNPINNED_CLOCK=1` the server and its tokens run on the system
/// clock instead: only for `scripts/clock-sweep`'s check that a test without its pin
/// fails under `faketime` (that the sweep can fail at all).
pub fn start_with(port: u16, dir: &std::path::Path, now: &str, extra: &[&OsStr]) -> Child {
    let pinned = std::env::var_os("CRMPULSE_TEST_UNPINNED_CLOCK").is_none_or(|v| v != "1");
    let extra: Vec<&OsStr> = now_args(now)
        .into_iter()
        .filter(|_| pinned)
        .chain(extra.iter().copied())
        .collect();
    let extra = extra.as_slice();
    let creds = Creds {
        token: cli_line(dir, extra, &["token", "--account", "1", "--role", "admin"]),
        ingest_key: cli_line(dir, extra, &["ingest-key", "--account", "1"]),
    };
    CREDS.lock().unwrap().insert(port, creds);
    Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .args(extra)
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub async fn wait_caught_up(client: &reqwest::Client, base: &str, events: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(res) = client.get(format!("{base}/healthz")).send().await {
            let h: Value = res.json().await.unwrap();
            if h["events_consumed"] == events && h["caught_up"] == true {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "crmpulse did not catch up with {events} events"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn ev(id: &str, at: &str, body: Value) -> Value {
    let mut e = json!({"event_id": id, "account_id": 1, "occurred_at": at});
    e.as_object_mut()
        .unwrap()
        .extend(body.as_object().unwrap().clone());
    e
}

/// POSTs events, retrying while the server is still starting.
pub async fn post_events(client: &reqwest::Client, base: &str, body: &Value) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(creds(port_of(base)).ingest_key)
            .json(body)
            .send()
            .await
        {
            Ok(res) => return res,
            Err(e) => {
                assert!(Instant::now() < deadline, "server did not come up: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// `GET url` and its JSON body.
///
/// # Panics
/// When the request fails or the body is not JSON.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    client
        .get(url)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()
}

/// The server's `/metrics` text, read with `client` (its token) from `base`.
pub async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The sum of the samples of metric `name` (every label set) in `/metrics` text; 0
/// when it is not exported.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.split([' ', '{']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A `conversation_opened` body.
pub fn opened(conversation: &str) -> Value {
    json!({"type": "conversation_opened", "conversation_id": conversation, "customer_id": "u1",
        "channel": "whatsapp", "inbox_id": "i1", "origin": "inbound"})
}

/// A `conversation_resolved` body, by `by` (`agent`, `bot`, `system`), with the agent
/// when there is one.
pub fn resolved(conversation: &str, by: &str, agent: Option<&str>) -> Value {
    let mut v = json!({"type": "conversation_resolved", "conversation_id": conversation, "resolved_by": by});
    if let Some(a) = agent {
        v["agent_id"] = a.into();
    }
    v
}

/// An outbound agent message body.
pub fn agent_message(message: &str, conversation: &str, agent: &str) -> Value {
    json!({"type": "message_created", "message_id": message, "conversation_id": conversation,
        "direction": "outbound", "sender": "agent", "agent_id": agent, "channel": "whatsapp"})
}

/// The ClickHouse server of the tests: the private one `scripts/test` starts
/// (`CRMPULSE_CLICKHOUSE_URL`), or a local default.
pub fn clickhouse_url() -> String {
    std::env::var("CRMPULSE_CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// A database name no other test or run uses: the process id and a random suffix
/// (never the clock, which tests pin or fake).
pub fn unique_database(prefix: &str) -> String {
    format!("{prefix}_{}_{}", std::process::id(), rand::random::<u32>())
}

/// One number from ClickHouse: `sql` in `database`, which must succeed.
pub async fn clickhouse_number(url: &str, database: &str, sql: &str) -> i64 {
    let res = reqwest::Client::new()
        .post(format!("{url}/"))
        .query(&[("database", database)])
        .body(format!("{sql}\nFORMAT TabSeparated"))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!("ClickHouse at {url} unreachable ({e}); run scripts/test or set CRMPULSE_CLICKHOUSE_URL")
        });
    let status = res.status();
    let text = res.text().await.unwrap();
    assert!(status.is_success(), "{sql}\n→ {text}");
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{sql} → {text:?}"))
}

/// The NDJSON lines `crmpulse simulate ARGS` writes (e.g. `--days 2 --now T --seed 5`).
pub fn simulate(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .arg("simulate")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}
