//! The executive summary through the binary: a known previous day and test day, and
//! the summary's figures, largest changes and highlight sentences worked out by hand
//! from the events; each highlight's numbers are those of the sections it names.

mod common;

use common::{
    agent_message, ev, free_port, get_json, opened, post_events, resolved, start, wait_caught_up,
};
use serde_json::{Value, json};

/// The servers' clock: the day after the test day 2026-11-20 (UTC).
const NOW: &str = "2026-11-21T12:00:00Z";

#[tokio::test(flavor = "multi_thread")]
async fn the_summary_reads_the_sections_and_says_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start(port, dir.path(), NOW);
    let client = common::client(port);
    let y = |t: &str| format!("2026-11-19T{t}Z");
    let d = |t: &str| format!("2026-11-20T{t}Z");
    let status = |id: &str, at: String, message: &str, s: &str| {
        let mut body = json!({"type": "message_status", "message_id": message, "status": s});
        if s == "failed" {
            body["error_code"] = 131_047.into();
            body["error_title"] = "Re-engagement message".into();
        }
        ev(id, &at, body)
    };
    let events = vec![
        // The previous day: two answers in 60 s, one resolution.
        ev("p1", &y("10:00:00"), opened("c1")),
        ev("p2", &y("10:01:00"), agent_message("pm1", "c1", "a1")),
        ev("p3", &y("10:30:00"), resolved("c1", "agent", Some("a1"))),
        ev("p4", &y("11:00:00"), opened("c2")),
        ev("p5", &y("11:01:00"), agent_message("pm2", "c2", "a2")),
        // The test day: answers in 120, 600 and 180 s, one never answered, one
        // resolution; one WhatsApp message delivered, one failed.
        ev("e1", &d("10:00:00"), opened("c3")),
        ev("e2", &d("10:02:00"), agent_message("m1", "c3", "a1")),
        status("e3", d("10:02:05"), "m1", "delivered"),
        ev("e4", &d("11:00:00"), opened("c4")),
        ev("e5", &d("11:10:00"), agent_message("m2", "c4", "a1")),
        status("e6", d("11:10:05"), "m2", "failed"),
        ev("e7", &d("12:00:00"), opened("c5")),
        ev("e8", &d("12:03:00"), agent_message("m3", "c5", "a2")),
        ev("e9", &d("12:30:00"), resolved("c5", "agent", Some("a2"))),
        ev("e10", &d("13:00:00"), opened("c6")),
    ];
    let res = post_events(&client, &base, &Value::Array(events.clone())).await;
    assert_eq!(res.status(), 200);
    wait_caught_up(&client, &base, events.len() as u64).await;

    let day = "from=2026-11-20&to=2026-11-21";
    let s = get_json(&client, &format!("{base}/api/reports/summary?{day}")).await;
    assert_eq!(s["report"], "summary", "{s}");
    assert_eq!(s["range"]["from"], "2026-11-20T00:00:00.000Z");
    let figure = |metric: &str| {
        let f = s["figures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["metric"] == metric)
            .unwrap_or_else(|| panic!("no {metric} in {s}"));
        (
            f["current"].clone(),
            f["previous"].clone(),
            f["change"].clone(),
        )
    };
    assert_eq!(
        figure("conversations_opened"),
        (json!(4), json!(2), json!(1.0))
    );
    assert_eq!(
        figure("first_response_avg_s"),
        (json!(300.0), json!(60.0), json!(4.0))
    );
    assert_eq!(
        figure("first_response_p90_s"),
        (json!(600), json!(60), json!(9.0))
    );
    assert_eq!(
        figure("sla_compliance"),
        (json!(0.5), json!(1.0), json!(-0.5))
    );
    assert_eq!(figure("resolutions"), (json!(1), json!(1), json!(0.0)));
    // No WhatsApp status the day before: no rate, so no change.
    assert_eq!(
        figure("whatsapp_delivery_rate"),
        (json!(0.5), Value::Null, Value::Null)
    );
    assert_eq!(figure("leads"), (json!(0), json!(0), Value::Null));
    let largest: Vec<&str> = s["largest_changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["metric"].as_str().unwrap())
        .collect();
    assert_eq!(
        largest,
        [
            "first_response_p90_s",
            "first_response_avg_s",
            "conversations_opened"
        ]
    );

    let eff = get_json(
        &client,
        &format!("{base}/api/dashboard/conversation-effectiveness?{day}"),
    )
    .await;
    let agents = eff["agent_ranking"]["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 2, "{eff}");
    let texts: Vec<&str> = s["highlights"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["text"].as_str().unwrap())
        .collect();
    let agents_line = format!(
        "Highest agent score: {} ({}); lowest: {} ({}).",
        agents[0]["agent_id"].as_str().unwrap(),
        agents[0]["score"],
        agents[1]["agent_id"].as_str().unwrap(),
        agents[1]["score"]
    );
    assert_eq!(
        texts,
        [
            "First response p90 rose from 60 s to 600 s (+900.0%), worse.",
            "Average first response rose from 60.0 s to 300.0 s (+400.0%), worse.",
            "Conversations opened rose from 2 to 4 (+100.0%).",
            "2 of 3 first responses met the 5-minute target; 1 conversation breached it unanswered.",
            "WhatsApp delivery is 50.0%, below the alert threshold of 90.0%.",
            "The most frequent WhatsApp error was 131047 (Re-engagement message): 1 message.",
            agents_line.as_str(),
        ],
        "{s}"
    );
    // Every highlight names where its numbers come from, and those fields exist.
    let kpi = get_json(&client, &format!("{base}/api/dashboard/kpi?{day}")).await;
    for h in s["highlights"].as_array().unwrap() {
        let sources = h["sources"].as_array().unwrap();
        assert!(!sources.is_empty(), "{h}");
        for source in sources {
            let (section, pointer) = source.as_str().unwrap().split_once('#').unwrap();
            let body = match section {
                "kpi" => &kpi,
                "conversation-effectiveness" => &eff,
                _ => continue,
            };
            assert!(body.pointer(pointer).is_some(), "{source} in {h}");
        }
    }
    assert_eq!(s["sla"], eff["sla"]);
    assert_eq!(s["whatsapp"]["delivery"], kpi["whatsapp_delivery"]);

    // The PDF of the same query: its text, read back by pdftotext, holds the range,
    // the account, every highlight and the error code.
    let res = client
        .get(format!("{base}/api/reports/summary.pdf?{day}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert!(
        res.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("crmpulse-summary-2026-11-20.pdf")
    );
    let pdf = res.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    // `CRMPULSE_SUMMARY_PDF=FILE` keeps a copy (how docs/images/summary-pdf.png is made).
    if let Some(copy) = std::env::var_os("CRMPULSE_SUMMARY_PDF") {
        std::fs::write(copy, &pdf).unwrap();
    }
    let path = dir.path().join("summary.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout".as_ref(), path.as_os_str(), "-".as_ref()])
        .output()
        .expect("pdftotext (Debian poppler-utils; scripts/test installs it)");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in texts.iter().copied().chain([
        "Executive summary",
        "Range 2026-11-20T00:00:00.000Z to 2026-11-21T00:00:00.000Z",
        "Account 1, time zone UTC",
        "Generated 2026-11-21T12:00:",
        "Re-engagement message",
        "Current: 2 met of 3 replied, 1 breached unanswered, compliance 50.0%",
    ]) {
        assert!(
            text.contains(expected),
            "{expected:?} not in the PDF:\n{text}"
        );
    }

    // An agent's summary holds only what the agent may see: no other agent's row.
    let agent = common::token(dir.path(), NOW, 1, &["agent", "--agent", "a1"]);
    let mine: Value = reqwest::Client::new()
        .get(format!("{base}/api/reports/summary?{day}"))
        .bearer_auth(agent)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["report"], "summary", "{mine}");
    assert!(!mine.to_string().contains("\"a2\""), "{mine}");

    child.kill().ok();
    child.wait().ok();
}
