//! Helpers for tests that drive the real `crmpulse` binary over HTTP.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start(port: u16, dir: &std::path::Path) -> Child {
    start_with(port, dir, &[])
}

/// Starts `crmpulse run` with extra arguments (e.g. `--config FILE`).
pub fn start_with(port: u16, dir: &std::path::Path, extra: &[&std::ffi::OsStr]) -> Child {
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

/// A `conversation_opened` body.
pub fn opened(conversation: &str) -> Value {
    json!({"type": "conversation_opened", "conversation_id": conversation, "customer_id": "u1",
        "channel": "whatsapp", "inbox_id": "i1", "origin": "inbound"})
}

/// An outbound agent message body.
pub fn agent_message(message: &str, conversation: &str, agent: &str) -> Value {
    json!({"type": "message_created", "message_id": message, "conversation_id": conversation,
        "direction": "outbound", "sender": "agent", "agent_id": agent, "channel": "whatsapp"})
}
