//! Golden scenario for customer load in a +05:30 zone (Asia/Kolkata), through the real
//! binary: local day and hour boundaries, new vs returning customers, peak hours, wait
//! time at peak vs off-peak, the heatmap and the forecast.

mod common;

use common::{agent_message, ev, free_port, post_events, start_with, wait_caught_up};
use serde_json::{Value, json};

fn open(c: &str, customer: &str) -> Value {
    json!({"type": "conversation_opened", "conversation_id": c, "customer_id": customer,
        "channel": "whatsapp", "inbox_id": "i1", "origin": "inbound"})
}

/// The server's clock ("now"): Wednesday 2025-12-10, 12:10 in Kolkata (06:40 UTC). The
/// forecast covers the 24 hours from the current local hour (12:00, which the test
/// stays inside for 50 minutes), from the same weekday-hours of the four weeks before:
/// the history below, at now − 7 days (12-03) and now − 14 days (11-26), is far from
/// the test day 2025-11-21, its previous day and 11-11.
const NOW: &str = "2025-12-10T06:40:00Z";

/// A local Kolkata time on a day, as an RFC 3339 instant with offset.
fn ist(day: &str, hm: &str) -> String {
    format!("{day}T{hm}:00+05:30")
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_load_golden_day_in_kolkata() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(
        &config,
        "[accounts.defaults]\ntimezone = \"Asia/Kolkata\"\n",
    )
    .unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = start_with(
        port,
        &dir.path().join("data"),
        NOW,
        &["--config".as_ref(), config.as_os_str()],
    );
    let client = common::client(port);

    // A Friday more than two weeks before NOW: the forecast's history can never fall
    // inside it (on the wall clock of 2026-12-04, the old test day 2026-11-20 met
    // "now - 14 days", issue 12).
    let d = "2025-11-21"; // a Friday
    let mut events = vec![
        // u1's first conversation ever was on 11-11: u1 is returning on 11-21.
        ev("h0", &ist("2025-11-11", "10:00"), open("c0", "u1")),
        ev("e1", &ist(d, "10:15"), open("c1", "u1")),
        ev("e1r", &ist(d, "10:17"), agent_message("m1", "c1", "a1")), // 120 s, peak hour
        ev("e2", &ist(d, "10:40"), open("c2", "u2")),
        ev("e3", &ist(d, "10:50"), open("c4", "u3")),
        ev("e4", &ist(d, "11:05"), open("c7", "u6")),
        ev("e5", &ist(d, "11:20"), open("c8", "u7")),
        ev("e6", &ist(d, "12:00"), open("c9", "u8")),
        ev("e7", &ist(d, "12:30"), open("c10", "u9")),
        ev("e8", &ist(d, "14:05"), open("c3", "u2")), // u2's second: still new today
        ev("e8r", &ist(d, "14:10"), agent_message("m3", "c3", "a1")), // 300 s, off-peak
        // 00:10 local is 18:40 UTC the day before: inside the local day.
        ev("e9", &ist(d, "00:10"), open("c5", "u4")),
        // 23:59 local on 11-20: the previous period.
        ev("p1", &ist("2025-11-20", "23:59"), open("c6", "u5")),
    ];
    // Forecast history: the same weekday-hour 1 and 2 weeks before two of the next hours.
    let now = chrono::DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .timestamp_millis();
    let hour = 3_600_000;
    let this_hour = now - (now + 5 * hour + hour / 2).rem_euclid(hour); // IST hours start at :30 UTC
    for (i, (ahead, weeks)) in [(3, 1), (6, 2)].into_iter().enumerate() {
        let at = this_hour + ahead * hour - weeks * 7 * 24 * hour + 5 * 60_000;
        let at = schemas::event::format_rfc3339_ms(at);
        events.push(ev(&format!("f{i}"), &at, open(&format!("cf{i}"), "uf")));
    }
    let n = events.len() as u64;
    assert_eq!(
        post_events(&client, &base, &Value::from(events))
            .await
            .status(),
        200
    );
    wait_caught_up(&client, &base, n).await;

    let url = format!("{base}/api/dashboard/customer-load?from={d}");
    let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();

    assert_eq!(body["range"]["from"], "2025-11-20T18:30:00.000Z");
    assert_eq!(body["opened"]["total"], 9);
    assert_eq!(body["opened"]["previous"], 1);
    let points = body["opened"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    assert_eq!(
        points[10],
        json!({"start": "2025-11-21T04:30:00.000Z", "count": 3})
    );
    // Local hours: 0 → 1, 10 → 3, 11 → 2, 12 → 2, 14 → 1.
    assert_eq!(body["peak_hours"], json!([10, 11, 12]));
    assert_eq!(
        body["hour_of_day"][10],
        json!({"hour": 10, "count": 3, "peak": true})
    );
    assert_eq!(
        body["hour_of_day"][14],
        json!({"hour": 14, "count": 1, "peak": false})
    );
    // Distinct customers today: u1, u2, u3, u4, u6, u7, u8, u9; only u1 came before.
    assert_eq!(
        body["customers"]["current"],
        json!({"total": 8, "new": 7, "returning": 1})
    );
    assert_eq!(
        body["customers"]["previous"],
        json!({"total": 1, "new": 1, "returning": 0})
    );
    assert_eq!(
        body["wait_time"]["peak"],
        json!({"count": 1, "avg_s": 120.0, "p50_s": 120, "p90_s": 120})
    );
    assert_eq!(
        body["wait_time"]["off_peak"],
        json!({"count": 1, "avg_s": 300.0, "p50_s": 300, "p90_s": 300})
    );
    // Friday is row 4 (Monday first).
    assert_eq!(body["heatmap"]["cells"][4][10], 3);
    assert_eq!(body["heatmap"]["cells"][4][0], 1);
    assert_eq!(
        body["heatmap"]["cells"][3][23], 0,
        "Thursday 23:59 local is outside the range"
    );
    let forecast = body["forecast"]["points"].as_array().unwrap();
    assert_eq!(forecast.len(), 24);
    let expected: f64 = forecast
        .iter()
        .map(|p| p["expected"].as_f64().unwrap())
        .sum();
    assert_eq!(
        expected, 0.5,
        "two past openings, each a quarter of a 4-week mean"
    );
}
