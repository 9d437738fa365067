//! Every served number equals its definition, through the real binary: two days of
//! simulated traffic for two accounts (UTC, and Asia/Kolkata at +05:30 with another SLA
//! target) are posted over HTTP as NDJSON and JSON-array bodies, shuffled within each
//! body, with a share redelivered; then every section, for several ranges (dates, two
//! days, RFC 3339 bounds off the 15-minute grid) and filters, is compared value by
//! value with the independent reference (`reference/`, written from docs/metrics.md
//! and sharing no code with the pipeline or the query layer).

mod common;

use rand::seq::SliceRandom as _;
use rand::{Rng as _, SeedableRng as _};
use reference::{Input, Query, Settings};
use schemas::event::{Event, Payload};
use serde_json::Value;

/// The servers' clock: 2025-12-10, five past an hour so that the few seconds the test
/// takes never cross a 15-minute slot ("messages today" compares slots).
const NOW: &str = "2025-12-10T06:05:00Z";

fn simulate(account: u64, seed: u64) -> Vec<String> {
    common::simulate(&[
        "--days",
        "2",
        "--now",
        NOW,
        "--seed",
        &seed.to_string(),
        "--account",
        &account.to_string(),
    ])
}

/// Every leaf of `reference` against the same path in `actual`; differences are
/// pushed as `path: reference vs actual`. Returns the number of leaves compared.
fn compare(path: &str, reference: &Value, actual: &Value, out: &mut Vec<String>) -> usize {
    match (reference, actual) {
        (Value::Object(r), Value::Object(a)) => r
            .iter()
            .map(|(k, v)| {
                compare(
                    &format!("{path}/{k}"),
                    v,
                    a.get(k).unwrap_or(&Value::Null),
                    out,
                )
            })
            .sum(),
        (Value::Array(r), Value::Array(a)) => {
            if r.len() != a.len() {
                out.push(format!("{path}: length {} vs {}", r.len(), a.len()));
            }
            r.iter()
                .zip(a)
                .enumerate()
                .map(|(i, (r, a))| compare(&format!("{path}/{i}"), r, a, out))
                .sum::<usize>()
                .max(1)
        }
        (Value::Number(r), Value::Number(a)) => {
            let (r, a) = (r.as_f64().unwrap(), a.as_f64().unwrap());
            if (r - a).abs() > 1e-9 * r.abs().max(1.0) {
                out.push(format!("{path}: {r} vs {a}"));
            }
            1
        }
        (r, a) => {
            if r != a {
                out.push(format!("{path}: {r} vs {a}"));
            }
            1
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn simulated_traffic_over_http_equals_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("crmpulse.toml");
    std::fs::write(
        &config,
        "[accounts.defaults]\ntimezone = \"UTC\"\n\n[accounts.accounts.\"2\"]\ntimezone = \"Asia/Kolkata\"\nsla_first_response_s = 120\n",
    )
    .unwrap();
    let settings = |account: u64| match account {
        2 => Settings {
            timezone: chrono_tz::Asia::Kolkata,
            sla_first_response_s: 120,
            ..Settings::default()
        },
        _ => Settings::default(),
    };
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let data = dir.path().join("data");
    let extra = ["--config".as_ref(), config.as_os_str()];
    let mut child = common::start_with(port, &data, NOW, &extra);
    let now_args = common::now_args(NOW);
    let cli_extra: Vec<&std::ffi::OsStr> = now_args.iter().copied().chain(extra).collect();
    let http = reqwest::Client::new();

    let mut rng = rand::rngs::StdRng::seed_from_u64(13);
    let mut events: Vec<Event> = Vec::new();
    let mut delivered = 0u64;
    for (account, seed) in [(1u64, 7u64), (2, 8)] {
        let lines = simulate(account, seed);
        events.extend(lines.iter().map(|l| Event::from_json(l).unwrap()));
        let key = common::cli_line(
            &data,
            &cli_extra,
            &["ingest-key", "--account", &account.to_string()],
        );
        // Bodies of up to 3,000 events, each shuffled, with 3% of them sent again in a
        // later body; every other body is a JSON array, the rest NDJSON.
        let mut redeliver = Vec::new();
        for (i, chunk) in lines.chunks(3_000).enumerate() {
            let mut body: Vec<&String> = chunk.iter().collect();
            body.append(&mut redeliver);
            body.shuffle(&mut rng);
            redeliver.extend(chunk.iter().filter(|_| rng.random_bool(0.03)));
            let (ctype, text) = if i % 2 == 0 {
                let items: Vec<&str> = body.iter().map(|s| s.as_str()).collect();
                ("application/json", format!("[{}]", items.join(",")))
            } else {
                let items: Vec<&str> = body.iter().map(|s| s.as_str()).collect();
                ("application/x-ndjson", items.join("\n"))
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            let res = loop {
                match http
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .header("content-type", ctype)
                    .body(text.clone())
                    .send()
                    .await
                {
                    Ok(res) => break res,
                    Err(e) => {
                        assert!(std::time::Instant::now() < deadline, "no server: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            };
            assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        }
        delivered += lines.len() as u64;
    }
    let client = common::client(port);
    common::wait_caught_up(&client, &base, delivered).await;
    let started = std::time::Instant::now();
    let now_ms = chrono::DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .timestamp_millis();

    let mut compared = 0usize;
    let mut failures = Vec::new();
    for account in [1u64, 2] {
        let token = common::token(&data, NOW, account, &["admin"]);
        let ids = |pick: fn(&Payload) -> Option<&str>| -> Vec<String> {
            let mut v: Vec<String> = events
                .iter()
                .filter(|e| e.account_id == account)
                .filter_map(|e| pick(&e.payload).map(str::to_owned))
                .collect();
            v.sort();
            v.dedup();
            v
        };
        let agents = ids(|p| match p {
            Payload::ConversationAssigned {
                agent_id: Some(a), ..
            } => Some(a.as_str()),
            _ => None,
        });
        let teams = ids(|p| match p {
            Payload::ConversationAssigned {
                team_id: Some(t), ..
            } => Some(t.as_str()),
            _ => None,
        });
        let inboxes = ids(|p| match p {
            Payload::ConversationOpened { inbox_id, .. } => Some(inbox_id.as_str()),
            _ => None,
        });
        let mut queries: Vec<Vec<(&str, String)>> = vec![
            vec![("from", "2025-12-09".into())],
            vec![("from", "2025-12-08".into()), ("to", "2025-12-10".into())],
            vec![
                ("from", "2025-12-09T03:07:00Z".into()),
                ("to", "2025-12-09T17:52:30Z".into()),
            ],
            vec![("from", "2025-12-08".into()), ("granularity", "day".into())],
            vec![
                ("from", "2025-12-09".into()),
                ("channel", "whatsapp".into()),
            ],
        ];
        if let (Some(agent), Some(team), Some(inbox)) =
            (agents.first(), teams.first(), inboxes.first())
        {
            queries.push(vec![
                ("from", "2025-12-09".into()),
                ("agent_id", agent.clone()),
            ]);
            queries.push(vec![
                ("from", "2025-12-09".into()),
                ("team_id", team.clone()),
            ]);
            queries.push(vec![
                ("from", "2025-12-09".into()),
                ("inbox_id", inbox.clone()),
            ]);
            queries.push(vec![
                ("from", "2025-12-09".into()),
                ("agent_id", agent.clone()),
                ("team_id", team.clone()),
            ]);
        }
        for section in [
            "kpi",
            "conversation-effectiveness",
            "whatsapp-performance",
            "customer-load",
            "agent-productivity",
            "automation-impact",
            "business-impact",
        ] {
            for q in &queries {
                let mut url = format!("{base}/api/dashboard/{section}?account_id={account}");
                let mut query = Query {
                    account_id: account,
                    ..Query::default()
                };
                for (k, v) in q {
                    url.push_str(&format!("&{k}={v}"));
                    match *k {
                        "from" => query.from = Some(v.clone()),
                        "to" => query.to = Some(v.clone()),
                        "granularity" => query.granularity = Some(v.clone()),
                        "channel" => query.channel = schemas::event::Channel::parse(v),
                        "agent_id" => query.agent_id = Some(v.clone()),
                        "team_id" => query.team_id = Some(v.clone()),
                        "inbox_id" => query.inbox_id = Some(v.clone()),
                        _ => unreachable!(),
                    }
                }
                let actual: Value = http
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let settings = settings(account);
                let input = Input {
                    events: &events,
                    settings: &settings,
                    query: &query,
                    progress_ms: actual["progress"].as_i64().unwrap(),
                    now_ms: now_ms + started.elapsed().as_millis() as i64,
                };
                let expected = reference::section(section, &input).unwrap();
                let mut diffs = Vec::new();
                let n = compare("", &expected, &actual, &mut diffs);
                assert!(n > 1, "the reference produced nothing for {section}");
                compared += n;
                if !diffs.is_empty() {
                    failures.push(format!(
                        "account {account} {section} {q:?}: {} of {n} values differ:\n  {}",
                        diffs.len(),
                        diffs
                            .iter()
                            .take(12)
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("\n  ")
                    ));
                }
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    println!(
        "{} events, {compared} values compared, {} requests with differences",
        events.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
