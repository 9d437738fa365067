//! Authentication end to end, against the real binary: ingest keys and dashboard
//! tokens are separate, every request lands in the token's or key's own account,
//! webhook bodies are signed, secrets never reach the log, and credentials survive a
//! restart (the secret is kept in the data dir).

mod common;

use std::process::{Command, Stdio};

use common::{agent_message, cli_line, ev, free_port, opened, token, wait_caught_up};
use serde_json::{Value, json};

/// The server's clock ("now"), the day after the events (2026-11-24T10:00Z). The server
/// takes it from `CRMPULSE_NOW`, the tokens from `--now`: the two ways to set it.
const NOW: &str = "2026-11-25T12:00:00Z";

fn event(account: u64, id: &str, body: Value) -> Value {
    let mut e = ev(id, "2026-11-24T10:00:00Z", body);
    e["account_id"] = json!(account);
    e
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_and_dashboard_credentials_stay_in_their_account() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("server.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_crmpulse"))
            .args([
                "run",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(&data)
            .env("RUST_LOG", "debug")
            .env("CRMPULSE_NOW", NOW)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap()
    };
    let key1 = cli_line(&data, &[], &["ingest-key", "--account", "1"]);
    let key2 = cli_line(&data, &[], &["ingest-key", "--account", "2"]);
    let hook1 = cli_line(
        &data,
        &[],
        &["ingest-key", "--account", "1", "--webhook-secret"],
    );
    let admin1 = token(&data, NOW, 1, &["admin"]);
    let admin2 = token(&data, NOW, 2, &["admin"]);
    let agent1 = token(&data, NOW, 1, &["agent", "--agent", "a1"]);
    let mut child = spawn();
    let http = reqwest::Client::new();

    // Wait for the server.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    let batch1 = json!([
        event(1, "e1", opened("c1")),
        event(1, "e2", agent_message("m1", "c1", "a1")),
        event(1, "e3", opened("c2")),
        event(1, "e4", agent_message("m2", "c2", "a2")),
    ]);
    let post = |key: Option<&str>, body: &Value| {
        let mut req = http.post(format!("{base}/api/v1/events")).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send()
    };
    // No key, a dashboard token, a made-up key: refused, nothing stored.
    for key in [
        None,
        Some(admin1.as_str()),
        Some("cpi_1_0123456789abcdef0123456789abcdef01234567"),
    ] {
        let res = post(key, &batch1).await.unwrap();
        assert_eq!(res.status(), 401, "{key:?}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
    }
    // Account 2's key cannot write account 1's events.
    let res = post(Some(&key2), &batch1).await.unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["rejected"].as_array().unwrap().len(), 4);
    assert!(
        body["rejected"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("account_id: 1 is not the account"),
        "{body}"
    );
    // Account 1's key writes them; account 2 gets one conversation of its own.
    assert_eq!(post(Some(&key1), &batch1).await.unwrap().status(), 200);
    let batch2 = json!([
        event(2, "f1", opened("d1")),
        event(2, "f2", agent_message("n1", "d1", "b1"))
    ]);
    assert_eq!(post(Some(&key2), &batch2).await.unwrap().status(), 200);

    // A signed webhook body for account 1; a body whose signature does not match.
    let signed = serde_json::to_vec(&json!([event(1, "e5", opened("c3"))])).unwrap();
    let sig = ingest::auth::sign(&hook1, &signed);
    let hook = |account: u64, sig: &str, body: Vec<u8>| {
        http.post(format!("{base}/api/v1/webhooks/{account}/events"))
            .header("content-type", "application/json")
            .header("x-crmpulse-signature-256", sig)
            .body(body)
            .send()
    };
    assert_eq!(hook(1, &sig, signed.clone()).await.unwrap().status(), 200);
    assert_eq!(hook(2, &sig, signed.clone()).await.unwrap().status(), 401);
    let mut tampered = signed.clone();
    tampered.push(b' ');
    assert_eq!(hook(1, &sig, tampered).await.unwrap().status(), 401);

    wait_caught_up(&http, &base, 7).await;

    let url = format!("{base}/api/dashboard/agent-productivity?from=2026-11-24&to=2026-11-25");
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agent_id"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    let as_admin1: Value = get_as(&admin1, &url).await;
    assert_eq!(names(&as_admin1), ["a1", "a2"]);
    let as_agent1: Value = get_as(&agent1, &url).await;
    assert_eq!(names(&as_agent1), ["a1"]);
    let as_admin2: Value = get_as(&admin2, &url).await;
    assert_eq!(
        (as_admin2["account_id"].as_u64(), names(&as_admin2)),
        (Some(2), vec!["b1".to_owned()])
    );
    let kpi = format!("{base}/api/dashboard/kpi?from=2026-11-24&to=2026-11-25");
    let k1: Value = get_as(&admin1, &kpi).await;
    let k2: Value = get_as(&admin2, &kpi).await;
    assert_eq!(k1["active_conversations"]["total"], 3);
    assert_eq!(k2["active_conversations"]["total"], 1);

    // Restart on the same data dir: the same credentials still work.
    child.kill().unwrap();
    child.wait().unwrap();
    let mut child = spawn();
    wait_caught_up(&http, &base, 7).await;
    let again: Value = get_as(&agent1, &url).await;
    assert_eq!(names(&again), ["a1"]);
    child.kill().unwrap();
    child.wait().unwrap();

    // Nothing secret reached the log, even at debug level.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("listening"), "the log was captured: {log}");
    let secret = std::fs::read_to_string(data.join("auth/secret.key")).unwrap();
    for s in [secret.trim(), &key1, &key2, &hook1, &admin1, &agent1] {
        assert!(!log.contains(s), "a secret is in the log");
    }
}

/// `GET url` with a bearer token, as JSON.
async fn get_as(token: &str, url: &str) -> Value {
    reqwest::Client::new()
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[test]
fn tokens_that_do_not_fit_their_role_are_not_minted() {
    let dir = tempfile::tempdir().unwrap();
    for (args, says) in [
        (
            &["token", "--account", "1", "--role", "agent"][..],
            "agent_id",
        ),
        (
            &["token", "--account", "1", "--role", "supervisor"][..],
            "team_ids",
        ),
        (
            &["token", "--account", "1", "--role", "owner"][..],
            "unknown role",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
