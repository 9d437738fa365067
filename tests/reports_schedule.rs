//! Scheduled reports through the binary, delivered to a real SMTP server (Python's
//! aiosmtpd, Debian `python3-aiosmtpd`, started here on loopback and writing a
//! Maildir): the delivered message, its recipients and subject, the HTML body, the
//! PDF attachment read back with `pdftotext` holding the numbers of a known day; the
//! history and its download; no second send after a `kill -9` and restart; a slot
//! missed while down sent on start; retries then `failed` when the server is gone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::smtp::Smtp;
use common::{
    agent_message, ev, free_port, get_json, opened, post_events, resolved, wait_caught_up,
};
use mail_parser::MimeHeaders as _;
use serde_json::{Value, json};

/// The test day is 2026-11-20 (UTC); the servers start just before 09:00 the next
/// morning, when the daily report of the 20th is due.
const NOW: &str = "2026-11-21T08:59:40Z";

fn config(dir: &Path, smtp_port: u16) -> PathBuf {
    config_with(dir, &format!("smtp://127.0.0.1:{smtp_port}"), "")
}

fn config_with(dir: &Path, smtp_url: &str, extra: &str) -> PathBuf {
    let path = dir.join("crmpulse.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[reports]
smtp_url = "{smtp_url}"
{extra}
from = "crmpulse reports <reports@crmpulse.test>"
dashboard_url = "https://crmpulse.test/"
tick_ms = 200
retry_attempts = 3
retry_initial_ms = 100
smtp_timeout_s = 5
"#
        ),
    )
    .unwrap();
    path
}

fn start(port: u16, dir: &Path, now: &str, config: &Path) -> Child {
    common::start_with(port, dir, now, &["--config".as_ref(), config.as_os_str()])
}

/// The day: three conversations opened, two answered (120 s and 600 s), one resolved.
fn day() -> Vec<Value> {
    let d = |t: &str| format!("2026-11-20T{t}Z");
    vec![
        ev("e1", &d("10:00:00"), opened("c1")),
        ev("e2", &d("10:02:00"), agent_message("m1", "c1", "a1")),
        ev("e3", &d("11:00:00"), opened("c2")),
        ev("e4", &d("11:10:00"), agent_message("m2", "c2", "a2")),
        ev("e5", &d("11:30:00"), resolved("c2", "agent", Some("a2"))),
        ev("e6", &d("12:00:00"), opened("c3")),
    ]
}

fn pdf_text(dir: &Path, name: &str, pdf: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, pdf).unwrap();
    let out = Command::new("pdftotext")
        .args(["-layout".as_ref(), path.as_os_str(), "-".as_ref()])
        .output()
        .expect("pdftotext (Debian poppler-utils; scripts/test installs it)");
    assert!(out.status.success(), "pdftotext refused the attachment");
    String::from_utf8(out.stdout).unwrap()
}

fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The server's clock now: the pipeline time `/healthz` reports.
async fn server_now(client: &reqwest::Client, base: &str) -> i64 {
    let h = get_json(client, &format!("{base}/healthz")).await;
    h["progress"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_daily_report_is_mailed_once_with_the_days_numbers_and_kept_in_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let smtp = Smtp::start(dir.path());
    let config = config(dir.path(), smtp.port);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = start(port, dir.path(), NOW, &config);
    let client = common::client(port);
    let events = day();
    assert_eq!(
        post_events(&client, &base, &Value::Array(events.clone()))
            .await
            .status(),
        200
    );
    wait_caught_up(&client, &base, events.len() as u64).await;

    // Due at the next whole minute at least 5 s from now (09:00 unless this machine
    // was slow to start), so the schedule exists before its slot.
    let now = server_now(&client, &base).await;
    let due = (now + 5_000).div_euclid(60_000) * 60_000 + 60_000;
    let due_time = chrono::DateTime::from_timestamp_millis(due).unwrap();
    let schedule = json!({
        "name": "Daily operations",
        "cadence": "daily",
        "local_time": due_time.format("%H:%M").to_string(),
        "recipients": ["lead@crmpulse.test", "ops@crmpulse.test"],
        "sections": ["summary", "customer-load"],
    });
    let res = client
        .post(format!("{base}/api/reports/schedules"))
        .json(&schedule)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["formats"], json!({"pdf": true, "html": true}));

    // A bad schedule is refused naming the field; a non-admin may not manage them.
    let res = client
        .post(format!("{base}/api/reports/schedules"))
        .json(
            &json!({"name": "x", "cadence": "weekly", "local_time": "09:00",
            "recipients": ["a@b.test"], "sections": ["summary"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("weekday:"),
        "{body}"
    );
    let analyst = common::token(dir.path(), NOW, 1, &["analyst"]);
    let res = reqwest::Client::new()
        .get(format!("{base}/api/reports/schedules"))
        .bearer_auth(analyst)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // The slot's message.
    let wait = Duration::from_millis(u64::try_from(due - now).unwrap()) + Duration::from_secs(30);
    let messages = smtp.wait_for(1, wait).await;
    let raw = &messages[0];
    let message = mail_parser::MessageParser::default().parse(raw).unwrap();
    assert_eq!(
        message.subject(),
        Some("Daily operations - 2026-11-20"),
        "the report covers the day before its slot"
    );
    let to: Vec<&str> = message
        .to()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, ["lead@crmpulse.test", "ops@crmpulse.test"]);
    let envelope = String::from_utf8_lossy(raw);
    assert!(
        envelope.contains("X-RcptTo: lead@crmpulse.test, ops@crmpulse.test"),
        "the SMTP envelope names both recipients"
    );
    let html = message.body_html(0).unwrap();
    assert!(html.contains("Conversations opened"), "{html}");
    assert!(html.contains("https://crmpulse.test/"));
    let text = message.body_text(0).unwrap();
    assert!(text.contains("- Conversations opened: 3 / 0 / -"), "{text}");
    let attachment = message.attachment(0).expect("the PDF attached");
    assert_eq!(
        attachment.attachment_name(),
        Some("crmpulse-daily-operations-2026-11-20.pdf")
    );
    let pdf = attachment.contents().to_vec();
    assert!(pdf.starts_with(b"%PDF-"));
    let pdf_text = pdf_text(dir.path(), "attached.pdf", &pdf);
    for expected in [
        "crmpulse - Daily operations",
        "Range 2026-11-20T00:00:00.000Z to 2026-11-21T00:00:00.000Z",
        "Account 1, time zone UTC",
        "Conversations opened",
        "Average first response",
        "360",
        "Section: Customer load",
    ] {
        assert!(
            pdf_text.contains(expected),
            "{expected:?} not in\n{pdf_text}"
        );
    }

    // The history: one run, sent once, whose PDF downloads byte for byte.
    let runs = get_json(
        &client,
        &format!("{base}/api/reports/runs?schedule_id={id}"),
    )
    .await;
    let run = &runs["runs"][0];
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(run["status"], "sent");
    assert_eq!(run["attempts"], 1);
    assert_eq!(run["slot"], due_time.format("%Y-%m-%d").to_string());
    assert_eq!(run["period"], json!(["2026-11-20", "2026-11-21"]));
    assert_eq!(run["pdf_bytes"], pdf.len());
    let again = client
        .get(format!(
            "{base}/api/reports/runs/{}/pdf",
            run["run_id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.bytes().await.unwrap().to_vec(), pdf);

    // kill -9 and a restart after the slot: the slot is not sent again.
    kill(child);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let after = chrono::DateTime::from_timestamp_millis(due + 20_000)
        .unwrap()
        .to_rfc3339();
    let child = start(port, dir.path(), &after, &config);
    let client = common::client(port);
    wait_caught_up(&client, &base, events.len() as u64).await;
    tokio::time::sleep(Duration::from_secs(2)).await; // ten scheduler ticks
    assert_eq!(
        smtp.messages().len(),
        1,
        "a restart never sends a slot twice"
    );
    let runs = get_json(&client, &format!("{base}/api/reports/runs")).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);

    // Down over the next day's slot: sent on start, covering the 21st.
    kill(child);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let next_day = chrono::DateTime::from_timestamp_millis(due + 86_400_000 + 3_600_000)
        .unwrap()
        .to_rfc3339();
    let child = start(port, dir.path(), &next_day, &config);
    let client = common::client(port);
    let messages = smtp.wait_for(2, Duration::from_secs(30)).await;
    let second = mail_parser::MessageParser::default()
        .parse(&messages[1])
        .unwrap();
    assert_eq!(second.subject(), Some("Daily operations - 2026-11-21"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(smtp.messages().len(), 2);
    let runs = get_json(&client, &format!("{base}/api/reports/runs")).await;
    let slots: Vec<&str> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["period"][0].as_str().unwrap())
        .collect();
    assert_eq!(slots, ["2026-11-21", "2026-11-20"], "newest first");

    // Paused: nothing is sent; deleted: gone, its history stays.
    let mut paused = schedule.clone();
    paused["paused"] = true.into();
    let res = client
        .put(format!("{base}/api/reports/schedules/{id}"))
        .json(&paused)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = client
        .delete(format!("{base}/api/reports/schedules/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let list = get_json(&client, &format!("{base}/api/reports/schedules")).await;
    assert_eq!(list["schedules"], json!([]));
    assert_eq!(list["delivery"], "smtp");
    let runs = get_json(&client, &format!("{base}/api/reports/runs")).await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 2);
    kill(child);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_the_server_cannot_take_is_retried_then_recorded_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on this port.
    let config = config(dir.path(), free_port());
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = start(port, dir.path(), NOW, &config);
    let client = common::client(port);
    let events = day();
    post_events(&client, &base, &Value::Array(events.clone())).await;
    wait_caught_up(&client, &base, events.len() as u64).await;
    let created: Value = client
        .post(format!("{base}/api/reports/schedules"))
        .json(
            &json!({"name": "Weekly", "cadence": "weekly", "weekday": "mon",
            "local_time": "07:30", "recipients": ["lead@crmpulse.test"],
            "sections": ["kpi"], "formats": {"pdf": true, "html": false}}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = client
        .post(format!(
            "{base}/api/reports/schedules/{}/send",
            created["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let run_id = res.json::<Value>().await.unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        let runs = get_json(&client, &format!("{base}/api/reports/runs")).await;
        let run = runs["runs"][0].clone();
        if run["status"] != "sending" {
            break run;
        }
        assert!(Instant::now() < deadline, "the run did not end: {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(run["run_id"], run_id.as_str());
    assert_eq!(run["status"], "failed");
    assert_eq!(run["attempts"], 3, "every configured attempt was made");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("connect"),
        "{run}"
    );
    // A weekly report sent on Saturday 2026-11-21 covers the seven days before.
    assert_eq!(run["period"], json!(["2026-11-14", "2026-11-21"]));
    // Its PDF was made and is kept even though it was never delivered.
    let pdf = client
        .get(format!("{base}/api/reports/runs/{run_id}/pdf"))
        .send()
        .await
        .unwrap();
    assert_eq!(pdf.status(), 200);
    let text = pdf_text(dir.path(), "failed.pdf", &pdf.bytes().await.unwrap());
    assert!(text.contains("Section: Kpi"), "{text}");
    kill(child);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_pdf_holds_the_sections_numbers_as_the_caller_may_see_them() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = common::start(port, dir.path(), NOW);
    let client = common::client(port);
    let events = day();
    post_events(&client, &base, &Value::Array(events.clone())).await;
    wait_caught_up(&client, &base, events.len() as u64).await;
    let q = "from=2026-11-20&to=2026-11-21";
    let res = client
        .get(format!("{base}/api/reports/dashboard.pdf?{q}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-disposition"],
        "attachment; filename=\"crmpulse-dashboard-2026-11-20.pdf\""
    );
    let text = pdf_text(dir.path(), "dashboard.pdf", &res.bytes().await.unwrap());
    for section in [
        "Kpi",
        "Conversation effectiveness",
        "Whatsapp performance",
        "Customer load",
        "Agent productivity",
        "Automation impact",
        "Business impact",
    ] {
        assert!(
            text.contains(&format!("Section: {section}")),
            "{section} missing"
        );
    }
    // The agents' rows are those of the JSON answer.
    let agents = get_json(
        &client,
        &format!("{base}/api/dashboard/agent-productivity?{q}"),
    )
    .await;
    for a in agents["agents"].as_array().unwrap() {
        assert!(text.contains(a["agent_id"].as_str().unwrap()));
    }
    // An agent's PDF of one section names no other agent.
    let agent = common::token(dir.path(), NOW, 1, &["agent", "--agent", "a1"]);
    let res = reqwest::Client::new()
        .get(format!(
            "{base}/api/reports/dashboard.pdf?{q}&sections=agent-productivity"
        ))
        .bearer_auth(agent)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let text = pdf_text(dir.path(), "agent.pdf", &res.bytes().await.unwrap());
    assert!(text.contains("Agent productivity report"));
    assert!(text.contains("a1") && !text.contains("a2"), "{text}");
    let res = client
        .get(format!("{base}/api/reports/dashboard.pdf?sections=sales"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    kill(child);
}

/// Sends `schedule` now through the server on `base` and waits for the run's outcome.
async fn send_now(client: &reqwest::Client, base: &str, schedule: &Value) -> Value {
    let created: Value = client
        .post(format!("{base}/api/reports/schedules"))
        .json(schedule)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"));
    let res = client
        .post(format!("{base}/api/reports/schedules/{id}/send"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let run_id = res.json::<Value>().await.unwrap()["run_id"].clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let runs = get_json(client, &format!("{base}/api/reports/runs")).await;
        if let Some(run) = runs["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["run_id"] == run_id && r["status"] != "sending")
        {
            return run.clone();
        }
        assert!(Instant::now() < deadline, "the run did not end: {runs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_goes_over_starttls_to_a_relay_whose_certificate_is_from_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    // aiosmtpd with a certificate requires STARTTLS before MAIL FROM: a delivery
    // proves the session was encrypted.
    let (smtp, ca) = Smtp::start_tls(dir.path());
    let schedule = json!({"name": "Over TLS", "cadence": "daily", "local_time": "07:00",
        "recipients": ["lead@crmpulse.test"], "sections": ["summary"]});

    // Trusting the relay's CA: delivered.
    let trusted = dir.path().join("trusted");
    std::fs::create_dir_all(&trusted).unwrap();
    let config = config_with(
        &trusted,
        &format!("smtp://127.0.0.1:{}?tls=required", smtp.port),
        &format!("smtp_ca_file = {:?}", ca.display().to_string()),
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = start(port, &trusted, NOW, &config);
    let client = common::client(port);
    post_events(&client, &base, &Value::Array(day())).await;
    let run = send_now(&client, &base, &schedule).await;
    assert_eq!(run["status"], "sent", "{run}");
    let messages = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert!(String::from_utf8_lossy(&messages[0]).contains("Subject: Over TLS - 2026-11-20"));
    kill(child);

    // Trusting only the public roots: the certificate is refused, nothing is sent.
    let public = dir.path().join("public");
    std::fs::create_dir_all(&public).unwrap();
    let config = config_with(
        &public,
        &format!("smtp://127.0.0.1:{}?tls=required", smtp.port),
        "",
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let child = start(port, &public, NOW, &config);
    let client = common::client(port);
    post_events(&client, &base, &Value::Array(day())).await;
    let run = send_now(&client, &base, &schedule).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("certificate"),
        "{run}"
    );
    assert_eq!(smtp.messages().len(), 1);
    kill(child);
}
