//! The real binary with a one-hour lateness horizon: a resolved conversation whose
//! last event falls more than the horizon behind its account's latest events is
//! final; a later reopen of it is accepted by the log, refused by the pipeline as
//! `too_late`, counted, and dead-lettered once — also after `kill -9` and a restart
//! that replays the log and refuses it again — and the numbers do not count it.

mod common;

use std::ffi::OsStr;

use common::{Killed, agent_message, ev, free_port, opened, post_events, resolved, start_with};
use serde_json::{Value, json};

const NOW: &str = "2026-11-21T12:00:00Z";

fn customer_message(message: &str, conversation: &str) -> Value {
    json!({"type": "message_created", "message_id": message, "conversation_id": conversation,
        "direction": "inbound", "sender": "customer", "channel": "whatsapp"})
}

async fn kpi(client: &reqwest::Client, base: &str) -> Value {
    common::get_json(
        client,
        &format!("{base}/api/dashboard/kpi?from=2026-11-20&to=2026-11-21"),
    )
    .await
}

fn pipeline_dead_letters(dir: &std::path::Path) -> Vec<Value> {
    let log = ingest::log::EventLog::open(dir).unwrap();
    log.dead_letters()
        .unwrap()
        .into_iter()
        .filter(|d| d["source"] == "pipeline")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_for_a_final_conversation_is_refused_counted_and_dead_lettered_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(&config, "[pipeline]\nlateness_horizon_hours = 1\n").unwrap();
    let extra: [&OsStr; 2] = ["--config".as_ref(), config.as_os_str()];
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Killed(start_with(port, dir.path(), NOW, &extra));
    let client = common::client(port);

    // c1: opened, answered after 120 s, resolved at 10:05. c2 stays open, and its
    // customer writes every hour: the watermark moves to 13:00, the cut to 12:00.
    let mut body = vec![
        ev("e1", "2026-11-20T10:00:00Z", opened("c1")),
        ev(
            "e2",
            "2026-11-20T10:02:00Z",
            agent_message("m1", "c1", "a1"),
        ),
        ev(
            "e3",
            "2026-11-20T10:05:00Z",
            resolved("c1", "agent", Some("a1")),
        ),
        ev("e4", "2026-11-20T11:00:00Z", opened("c2")),
    ];
    for (k, hour) in ["11:30", "12:00", "12:30", "13:00"].iter().enumerate() {
        body.push(ev(
            &format!("c2-{k}"),
            &format!("2026-11-20T{hour}:00Z"),
            customer_message(&format!("c2m{k}"), "c2"),
        ));
    }
    let out: Value = post_events(&client, &base, &Value::from(body))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(out["accepted"], 8, "{out}");
    common::wait_caught_up(&client, &base, 8).await;
    assert_eq!(
        kpi(&client, &base).await["active_conversations"]["total"],
        1
    );

    // The customer of c1 writes again at 13:30: recent for the log (which stores
    // it), but c1 is final.
    let reopen = vec![
        ev(
            "late-1",
            "2026-11-20T13:30:00Z",
            json!({"type": "conversation_reopened", "conversation_id": "c1"}),
        ),
        ev(
            "late-2",
            "2026-11-20T13:30:01Z",
            customer_message("m9", "c1"),
        ),
    ];
    let out: Value = post_events(&client, &base, &Value::from(reopen))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(out["accepted"], 2, "{out}");
    common::wait_caught_up(&client, &base, 10).await;
    let after = kpi(&client, &base).await;
    assert_eq!(
        after["active_conversations"]["total"], 1,
        "the reopen of a final conversation must not count: {after}"
    );
    assert_eq!(after["first_response"]["current"]["count"], 1);
    assert_eq!(
        common::metric(
            &common::metrics_text(&client, &base).await,
            "crmpulse_pipeline_too_late_events_total"
        ),
        2.0
    );

    // kill -9, restart: the log is replayed and the same events refused again, but
    // the dead letters hold them once.
    drop(server);
    let letters = pipeline_dead_letters(dir.path());
    assert_eq!(letters.len(), 2, "{letters:?}");
    let reason = letters[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("too_late: conversation c1 of account 1 is final"),
        "{reason}"
    );
    server = Killed(start_with(port, dir.path(), NOW, &extra));
    common::wait_caught_up(&client, &base, 10).await;
    assert_eq!(
        kpi(&client, &base).await["active_conversations"]["total"],
        1
    );
    assert_eq!(
        common::metric(
            &common::metrics_text(&client, &base).await,
            "crmpulse_pipeline_too_late_events_total"
        ),
        2.0
    );
    drop(server);
    assert_eq!(pipeline_dead_letters(dir.path()).len(), 2);
}
