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

/// The header of a JWT, decoded.
fn jwt_header(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    let mut bits = 0u32;
    let mut n = 0;
    let mut bytes = Vec::new();
    for c in part.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url: {part}"),
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            bytes.push((bits >> n) as u8);
        }
    }
    serde_json::from_slice(&bytes).unwrap()
}

/// `GET /api/me` with `token`: the status and the error message, if any.
async fn me(base: &str, token: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .get(format!("{base}/api/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    (
        status,
        body["error"]["message"].as_str().unwrap_or("").to_owned(),
    )
}

/// Waits (up to 10 s: the server re-reads its key and revocation files every second)
/// until `token` is answered with `status`.
async fn until_me(base: &str, token: &str, status: u16) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (got, message) = me(base, token).await;
        if got == status {
            return message;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {got} ({message}), expected {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Access end to end: a supervisor's filters stay within their teams; errors of the
/// merged API and ingest routes are the documented JSON; retiring a signing key ends
/// its tokens and their live connections, and revoking a user ends theirs, on the
/// running server, with the commands docs/security.md gives.
#[tokio::test(flavor = "multi_thread")]
async fn access_is_scoped_and_tokens_end_when_their_key_or_user_is_revoked() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let cli = |args: &[&str]| cli_line(&data, &common::now_args(NOW), args);
    let key1 = cli(&["ingest-key", "--account", "1"]);
    let admin = token(&data, NOW, 1, &["admin", "--sub", "ada"]);
    let supervisor = token(&data, NOW, 1, &["supervisor", "--team", "team-1"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env("CRMPULSE_NOW", NOW)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = |agent: &str, team: &str| json!({"type": "agent_status_changed", "agent_id": agent, "team_id": team, "status": "online"});
    let events = json!([
        event(1, "s1", status("a1", "team-1")),
        event(1, "s2", status("a2", "team-2")),
        event(1, "e1", opened("c1")),
        event(1, "e2", agent_message("m1", "c1", "a1")),
        event(1, "e3", opened("c2")),
        event(1, "e4", agent_message("m2", "c2", "a2")),
    ]);
    // Media types are case-insensitive.
    let res = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(&key1)
        .header("content-type", "Application/JSON; Charset=UTF-8")
        .body(events.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    wait_caught_up(&http, &base, 6).await;

    // A supervisor of team-1 names a1 (team-1), never a2 (team-2), in any section.
    for section in ["kpi", "agent-productivity", "conversation-effectiveness"] {
        let url = |agent: &str| {
            format!("{base}/api/dashboard/{section}?from=2026-11-24&to=2026-11-25&agent_id={agent}")
        };
        let res = http
            .get(url("a2"))
            .bearer_auth(&supervisor)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{section}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "forbidden");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("agent_id")
        );
        let res = http
            .get(url("a1"))
            .bearer_auth(&supervisor)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{section}");
        let res = http
            .get(url("a2"))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{section}");
    }

    // Errors of the API and the ingest routes, merged in one server, are JSON.
    let cases = [
        (http.get(format!("{base}/api/nope")), 404, "not_found"),
        (
            http.get(format!("{base}/api/v1/events")),
            405,
            "method_not_allowed",
        ),
        (
            http.delete(format!("{base}/api/me")),
            405,
            "method_not_allowed",
        ),
        (
            http.post(format!("{base}/api/v1/events"))
                .bearer_auth(&key1)
                .header("content-type", "application/json")
                .body(vec![b' '; 8 * 1024 * 1024 + 1]),
            413,
            "payload_too_large",
        ),
        (
            http.post(format!("{base}/api/v1/events"))
                .bearer_auth(&key1)
                .header("content-type", "text/csv")
                .body("[]"),
            415,
            "unsupported_media_type",
        ),
    ];
    for (req, status, code) in cases {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), status, "{code}");
        let text = res.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{code}: {text}"));
        assert_eq!(body["error"]["code"], code, "{text}");
    }

    // A live connection of the first token.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/api/live"))
        .await
        .unwrap();
    ws.send(json!({"op": "auth", "token": admin}).to_string().into())
        .await
        .unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    assert!(
        hello.to_text().unwrap().contains("authenticated"),
        "{hello:?}"
    );

    // Rotation: a new key signs from now on; the first one is still accepted.
    assert_eq!(jwt_header(&admin).get("kid"), None);
    let kid = cli(&["signing-keys", "rotate"]);
    let listed = cli(&["signing-keys", "list"]);
    assert!(
        listed.contains(&kid) && listed.contains("initial"),
        "{listed}"
    );
    let rotated = token(&data, NOW, 1, &["admin", "--sub", "bea"]);
    assert_eq!(jwt_header(&rotated)["kid"], json!(kid));
    until_me(&base, &rotated, 200).await;
    assert_eq!(me(&base, &admin).await.0, 200);
    // Retiring the first key ends every token it signed, the live one included.
    cli(&["signing-keys", "retire", "initial"]);
    let message = until_me(&base, &admin, 401).await;
    assert!(
        message.contains("kid") || message.contains("signature"),
        "{message}"
    );
    assert_eq!(me(&base, &rotated).await.0, 200);
    let close = loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("the connection of a retired key is closed")
            .expect("a close frame")
            .unwrap();
        if let Message::Close(frame) = m {
            break frame.expect("a close code");
        }
    };
    assert_eq!(u16::from(close.code), 4401, "{close:?}");

    // Revoking one user: their tokens end, other users' do not.
    let other = token(&data, NOW, 1, &["analyst", "--sub", "cyd"]);
    assert_eq!(me(&base, &other).await.0, 200);
    cli(&["revoke", "--sub", "bea", "--account", "1"]);
    let message = until_me(&base, &rotated, 401).await;
    assert!(message.contains("revoked"), "{message}");
    assert_eq!(me(&base, &other).await.0, 200);
    // A token issued after the revocation is accepted (here: minted a minute later on
    // the pinned clock); lifting the revocation brings the old one back.
    let later = token(&data, "2026-11-25T12:01:00Z", 1, &["admin", "--sub", "bea"]);
    assert_eq!(me(&base, &later).await.0, 200);
    cli(&["revoke", "--sub", "bea", "--account", "1", "--lift"]);
    until_me(&base, &rotated, 200).await;

    child.kill().unwrap();
    child.wait().unwrap();
}

/// A stand-in for a ClickHouse server that fails every request and quotes the request
/// line in its error, as a proxy's or a server's error page may: whatever the client
/// puts in the URL ends up in the sink's log line. Returns its port.
fn quoting_clickhouse() -> u16 {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream);
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            // The rest of the head, then the body by its length.
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; length];
            let _ = std::io::Read::read_exact(&mut reader, &mut body);
            let message = format!("Code: 516. refused: {}", request_line.trim());
            let mut stream = reader.into_inner();
            let _ = write!(
                stream,
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{message}",
                message.len()
            );
        }
    });
    port
}

/// Every kind of secret the configuration holds — the HS256 secret and a previous one,
/// a configured ingest key and webhook secret, the ClickHouse password — with the
/// server logging at `trace` while they are all used: none reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn no_configured_secret_reaches_the_log_even_at_trace() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log_path = dir.path().join("server.log");
    let config_path = dir.path().join("crmpulse.toml");
    let secrets = [
        "trace-hs256-secret-0123456789abcdef0123",
        "trace-previous-secret-0123456789abcdef",
        "trace-ingest-key-0123456789abcdef",
        "trace-webhook-secret-0123456789ab",
        "trace-clickhouse-password-0123",
    ];
    let clickhouse = quoting_clickhouse();
    std::fs::write(
        &config_path,
        format!(
            r#"
[auth]
hs256_secret = "{}"
hs256_kid = "k-now"

[[auth.hs256_previous_keys]]
kid = "k-before"
secret = "{}"

[[auth.ingest_keys]]
id = "crm"
account_id = 1
key = "{}"
webhook_secret = "{}"

[clickhouse]
url = "http://127.0.0.1:{clickhouse}"
user = "crmpulse"
password = "{}"
"#,
            secrets[0], secrets[1], secrets[2], secrets[3], secrets[4]
        ),
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .arg("--config")
        .arg(&config_path)
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env("RUST_LOG", "trace")
        .env("CRMPULSE_NOW", NOW)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let token = cli_line(
        &data,
        &[
            "--config".as_ref(),
            config_path.as_os_str(),
            "--now".as_ref(),
            NOW.as_ref(),
        ],
        &["token", "--account", "1", "--role", "admin"],
    );
    assert_eq!(jwt_header(&token)["kid"], "k-now");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "server did not start");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Use every secret: a token of the current key, events with the configured key, a
    // signed webhook body; the ClickHouse sink sends its password with every attempt.
    assert_eq!(me(&base, &token).await.0, 200);
    let res = http
        .post(format!("{base}/api/v1/events"))
        .bearer_auth(secrets[2])
        .json(&json!([event(1, "e1", opened("c1"))]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body = serde_json::to_vec(&json!([event(1, "e2", opened("c2"))])).unwrap();
    let res = http
        .post(format!("{base}/api/v1/webhooks/1/events"))
        .header("content-type", "application/json")
        .header(
            "x-crmpulse-signature-256",
            ingest::auth::sign(secrets[3], &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains("Code: 516") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the ClickHouse sink never reported its failure"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("TRACE"), "the log is at trace level");
    for secret in secrets.iter().copied().chain([token.as_str()]) {
        assert!(!log.contains(secret), "{secret} is in the log");
    }
}
