//! ClickHouse rollups against a real server (issue #5).
//!
//! `scripts/test` starts a private `clickhouse-server` and exports its HTTP address as
//! `CRMPULSE_CLICKHOUSE_URL` (default `http://127.0.0.1:8123`). Every test works in its
//! own database. The fault test starts a second private server of its own through
//! `scripts/clickhouse-server`, so that it can stop it for 30 s.
//!
//! Before looking at ClickHouse, a test waits for the sink's own committed position
//! (`/healthz` `clickhouse.written_through`) to reach the number of events it posted,
//! then compares once: a row missing then is a row lost, not a row late.
//!
//! The example queries are read from `docs/clickhouse.md`, run as documented, and their
//! results compared with the API's numbers for the same range.
//!
//! Time: the server runs on a clock pinned at [`NOW`], the simulated traffic ends there,
//! and "yesterday" and "today" are NOW's local days. ClickHouse's own `now()` cannot be
//! pinned, so the examples that read it are run with NOW in its place ([`bind`]).

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use chrono::{DateTime, Days, NaiveDate};
use chrono_tz::Tz;
use common::{
    Killed, clickhouse_url, free_port, get_json, metric, metrics_text, post_events, start_with,
    unique_database, wait_caught_up,
};
use ingest::simulator::{Simulator, SimulatorConfig};
use schemas::event::{Event, Payload};
use serde_json::Value;

const TZ: Tz = chrono_tz::Asia::Kolkata;
/// The servers' clock ("now"): 13:40 in Kolkata, so that the simulated traffic, which
/// ends here, has a complete local yesterday and half a today.
const NOW: &str = "2026-11-26T08:10:00Z";

fn now_ms() -> i64 {
    DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .timestamp_millis()
}
const DOC: &str = include_str!("../docs/clickhouse.md");

/// Runs `sql` and returns its rows as column → value (blocking; fine inside the
/// multi-thread test runtime).
fn query(url: &str, database: &str, sql: &str) -> Vec<HashMap<String, String>> {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::block_in_place(|| query_blocking(url, database, sql))
    } else {
        query_blocking(url, database, sql)
    }
}

fn query_blocking(url: &str, database: &str, sql: &str) -> Vec<HashMap<String, String>> {
    let res = reqwest::blocking::Client::new()
        .post(format!("{url}/"))
        .query(&[("database", database)])
        .body(format!("{sql}\nFORMAT TabSeparatedWithNames"))
        .send()
        .unwrap_or_else(|e| {
            panic!("ClickHouse at {url} unreachable ({e}); run scripts/test or set CRMPULSE_CLICKHOUSE_URL")
        });
    let status = res.status();
    let text = res.text().unwrap();
    assert!(status.is_success(), "{sql}\n→ {text}");
    let mut lines = text.lines();
    let names: Vec<String> = lines
        .next()
        .unwrap_or_default()
        .split('\t')
        .map(str::to_owned)
        .collect();
    lines
        .map(|l| {
            names
                .iter()
                .cloned()
                .zip(l.split('\t').map(str::to_owned))
                .collect()
        })
        .collect()
}

/// Runs a statement that returns nothing.
fn execute(url: &str, database: &str, sql: &str) {
    let run = || {
        let res = reqwest::blocking::Client::new()
            .post(format!("{url}/"))
            .query(&[("database", database)])
            .body(sql.to_owned())
            .send()
            .unwrap();
        assert!(res.status().is_success(), "{sql}: {}", res.text().unwrap());
    };
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::block_in_place(run);
    } else {
        run();
    }
}

fn int(row: &HashMap<String, String>, col: &str) -> i64 {
    row[col]
        .parse()
        .unwrap_or_else(|_| panic!("{col} = {:?}", row[col]))
}

fn float(row: &HashMap<String, String>, col: &str) -> f64 {
    row[col].parse().unwrap()
}

/// The `-- example: NAME` SQL blocks of `docs/clickhouse.md`.
fn examples() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for block in DOC.split("```sql\n").skip(1) {
        let sql = block.split("```").next().unwrap();
        if let Some(name) = sql
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("-- example: "))
        {
            out.insert(name.trim().to_owned(), sql.to_owned());
        }
    }
    out
}

/// Substitutes the documented parameters with literals, as one does on 18.16, and
/// ClickHouse's `now()` with [`NOW`], the API's clock (the ranges checked end before it).
fn bind(sql: &str, from: NaiveDate, to: NaiveDate) -> String {
    sql.replace("now()", &format!("toDateTime({})", now_ms() / 1000))
        .replace("{account_id:UInt64}", "1")
        .replace("{tz:String}", &format!("'{}'", TZ.name()))
        .replace("{from:String}", &format!("'{from} 00:00:00'"))
        .replace("{to:String}", &format!("'{to} 00:00:00'"))
}

struct Checker<'a> {
    url: &'a str,
    database: &'a str,
    api: &'a str,
    http: reqwest::Client,
}

impl Checker<'_> {
    fn example(&self, name: &str, from: NaiveDate, to: NaiveDate) -> Vec<HashMap<String, String>> {
        let examples = examples();
        let sql = examples
            .get(name)
            .unwrap_or_else(|| panic!("docs/clickhouse.md has no example {name}"));
        query(self.url, self.database, &bind(sql, from, to))
    }

    async fn api(&self, section: &str, from: NaiveDate, to: NaiveDate, extra: &str) -> Value {
        let res = self
            .http
            .get(format!(
                "{}/api/dashboard/{section}?from={from}&to={to}{extra}",
                self.api
            ))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{section}: {}", res.status());
        res.json().await.unwrap()
    }

    /// Every documented example against the API, for the local day `day` (and today
    /// for the messages of the day). Returns a list of mismatches, empty when equal.
    async fn mismatches(&self, day: NaiveDate, today: NaiveDate, events: &[Event]) -> Vec<String> {
        let mut bad = Vec::new();
        let mut check = |what: &str, ch: Value, api: Value| {
            if ch != api {
                bad.push(format!("{what}: clickhouse {ch} != api {api}"));
            }
        };
        let next = day + Days::new(1);

        let kpi = self.api("kpi", day, next, "").await;
        let frt = &kpi["first_response"]["current"];
        let rows = self.example("frt", day, next);
        let r = &rows[0];
        check(
            "frt",
            serde_json::json!([
                int(r, "responses"),
                float(r, "avg_s"),
                int(r, "p50_s"),
                int(r, "p90_s")
            ]),
            serde_json::json!([frt["count"], frt["avg_s"], frt["p50_s"], frt["p90_s"]]),
        );
        let wa = &kpi["whatsapp_delivery"]["current"];
        let r = &self.example("whatsapp_delivery", day, next)[0];
        check(
            "whatsapp_delivery",
            serde_json::json!([int(r, "delivered"), int(r, "with_status")]),
            serde_json::json!([wa["delivered"], wa["with_status"]]),
        );
        let active = &kpi["active_conversations"];
        let by_holder: HashMap<String, i64> = self
            .example("active_now", day, next)
            .iter()
            .map(|r| (r["holder"].clone(), int(r, "conversations")))
            .collect();
        check(
            "active_now",
            serde_json::json!(
                ["unassigned", "bot", "agent"].map(|h| by_holder.get(h).copied().unwrap_or(0))
            ),
            serde_json::json!([active["unassigned"], active["bot"], active["agent"]]),
        );

        let today_kpi = self.api("kpi", today, today + Days::new(1), "").await;
        let m = &today_kpi["messages_today"]["current"];
        let r = &self.example("messages", today, today + Days::new(1))[0];
        check(
            "messages",
            serde_json::json!([int(r, "inbound"), int(r, "outbound"), int(r, "total")]),
            serde_json::json!([m["inbound"], m["outbound"], m["total"]]),
        );

        // FRT per local day over two days.
        let prev = day - Days::new(1);
        let ce2 = self
            .api("conversation-effectiveness", prev, next, "&granularity=day")
            .await;
        let api_days: Vec<Value> = ce2["frt_trend"]["points"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["count"].as_i64() > Some(0))
            .map(|p| serde_json::json!([p["count"], p["avg_s"]]))
            .collect();
        let ch_days: Vec<Value> = self
            .example("frt_by_day", prev, next)
            .iter()
            .map(|r| serde_json::json!([int(r, "replies"), float(r, "avg_s")]))
            .collect();
        check("frt_by_day", ch_days.into(), api_days.into());

        let ce = self.api("conversation-effectiveness", day, next, "").await;
        // FRT per agent over the day = the per-day rows summed per agent.
        let mut per_agent: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for r in self.example("frt_by_agent_day", day, next) {
            let e = per_agent.entry(r["agent_id"].clone()).or_default();
            e.0 += int(&r, "replies");
            e.1 += int(&r, "seconds_total");
        }
        let ch_frt: BTreeMap<String, Value> = per_agent
            .into_iter()
            .map(|(a, (n, s))| {
                (
                    a,
                    serde_json::json!(((s as f64 / n as f64) * 10.0).round() / 10.0),
                )
            })
            .collect();
        let api_frt: BTreeMap<String, Value> = ce["agent_ranking"]["agents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| !a["frt_avg_s"].is_null())
            .map(|a| {
                (
                    a["agent_id"].as_str().unwrap().to_owned(),
                    a["frt_avg_s"].clone(),
                )
            })
            .collect();
        check(
            "frt_by_agent_day",
            serde_json::json!(ch_frt),
            serde_json::json!(api_frt),
        );

        let sla = &ce["sla"]["current"];
        let (mut met, mut replied, mut breached) = (0, 0, 0);
        for r in self.example("sla_by_week", day, next) {
            met += int(&r, "met");
            replied += int(&r, "replied");
            breached += int(&r, "breached_unanswered");
        }
        check(
            "sla_by_week",
            serde_json::json!([met, replied, breached]),
            serde_json::json!([sla["met"], sla["replied"], sla["breached_unanswered"]]),
        );

        let res = &ce["resolution"];
        let r = &self.example("resolution", day, next)[0];
        check(
            "resolution",
            serde_json::json!([
                int(r, "opened"),
                int(r, "opened_resolved"),
                int(r, "resolve_events"),
                int(r, "by_agent")
            ]),
            serde_json::json!([
                res["opened_in_range"]["total"],
                res["opened_in_range"]["resolved"],
                res["resolve_events"]["total"],
                res["resolve_events"]["by_agent"]
            ]),
        );

        let ch_handled: BTreeMap<String, i64> = self
            .example("handled_by_agent", day, next)
            .iter()
            .map(|r| (r["agent_id"].clone(), int(r, "conversations")))
            .collect();
        let api_handled: BTreeMap<String, i64> = ce["handled_per_agent"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h["agent_id"].as_str().unwrap().to_owned(),
                    h["conversations"].as_i64().unwrap(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        check(
            "handled_by_agent",
            serde_json::json!(ch_handled),
            serde_json::json!(api_handled),
        );

        let load = self.api("customer-load", day, next, "").await;
        let mut cells = vec![vec![0i64; 24]; 7];
        for r in self.example("heatmap", day, next) {
            cells[int(&r, "weekday") as usize - 1][int(&r, "hour") as usize] = int(&r, "opened");
        }
        check(
            "heatmap",
            serde_json::json!(cells),
            load["heatmap"]["cells"].clone(),
        );
        let c = &load["customers"]["current"];
        let r = &self.example("customers", day, next)[0];
        check(
            "customers",
            serde_json::json!([int(r, "customers"), int(r, "new"), int(r, "returning")]),
            serde_json::json!([c["total"], c["new"], c["returning"]]),
        );

        let prod = self.api("agent-productivity", day, next, "").await;
        let mut ch_time: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for r in self.example("status_time", day, next) {
            ch_time
                .entry(r["agent_id"].clone())
                .or_default()
                .insert(r["status"].clone(), int(&r, "seconds"));
        }
        let mut api_time: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        for a in prod["agents"].as_array().unwrap() {
            for (status, s) in a["time_in_status_s"].as_object().unwrap() {
                if s.as_i64() > Some(0) {
                    api_time
                        .entry(a["agent_id"].as_str().unwrap().to_owned())
                        .or_default()
                        .insert(status.clone(), s.as_i64().unwrap());
                }
            }
        }
        check(
            "status_time",
            serde_json::json!(ch_time),
            serde_json::json!(api_time),
        );

        let biz = self.api("business-impact", day, next, "").await;
        let r = &self.example("leads_tickets", day, next)[0];
        check(
            "leads_tickets",
            serde_json::json!([int(r, "leads"), int(r, "tickets_resolved")]),
            serde_json::json!([biz["leads"]["current"], biz["tickets_resolved"]["current"]]),
        );
        // Deals are rare: revenue over both days.
        let biz = self.api("business-impact", prev, next, "").await;
        let ch_rev: BTreeMap<String, Vec<Value>> = self
            .example("campaign_revenue", prev, next)
            .iter()
            .fold(BTreeMap::new(), |mut m, r| {
                m.entry(r["campaign_id"].clone())
                    .or_default()
                    .push(serde_json::json!([
                        r["currency"],
                        int(r, "deals_won"),
                        int(r, "revenue_minor")
                    ]));
                m
            });
        let api_rev: BTreeMap<String, Vec<Value>> = biz["campaigns"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| !c["revenue"].as_array().unwrap().is_empty())
            .map(|c| {
                let mut v: Vec<Value> = c["revenue"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| serde_json::json!([m["currency"], m["deals"], m["amount_minor"]]))
                    .collect();
                v.sort_by_key(|x| x[0].as_str().unwrap_or_default().to_owned());
                (c["campaign_id"].as_str().unwrap().to_owned(), v)
            })
            .collect();
        check(
            "campaign_revenue",
            serde_json::json!(ch_rev),
            serde_json::json!(api_rev),
        );

        // No API section for failures by code on this branch: compare with a batch
        // count over the events themselves.
        let start = day
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_local_timezone(TZ)
            .unwrap();
        let (from_ms, to_ms) = (
            start.timestamp_millis(),
            (start + chrono::Duration::days(1)).timestamp_millis(),
        );
        let mut expected: BTreeMap<i64, HashSet<&str>> = BTreeMap::new();
        for e in events {
            if let Payload::MessageStatus {
                message_id,
                status,
                error_code,
                ..
            } = &e.payload
                && status.as_str() == "failed"
                && (from_ms..to_ms).contains(&e.occurred_at_ms)
            {
                expected
                    .entry(error_code.unwrap_or(0))
                    .or_default()
                    .insert(message_id);
            }
        }
        let expected: BTreeMap<i64, usize> =
            expected.into_iter().map(|(k, v)| (k, v.len())).collect();
        let got: BTreeMap<i64, usize> = self
            .example("failures_by_error_code", day, next)
            .iter()
            .map(|r| (int(r, "error_code"), int(r, "failed_messages") as usize))
            .collect();
        check(
            "failures_by_error_code",
            serde_json::json!(got),
            serde_json::json!(expected),
        );
        bad
    }

    /// Every example equals the API. Call it once the sink has written everything
    /// the API reflects ([`wait_written_through`]): no retry, a difference is a failure.
    async fn assert_equal(&self, day: NaiveDate, today: NaiveDate, events: &[Event]) {
        let bad = self.mismatches(day, today, events).await;
        assert!(
            bad.is_empty(),
            "ClickHouse does not match the API:\n{}",
            bad.join("\n")
        );
    }
}

/// `/healthz` `clickhouse` now.
async fn clickhouse_health(http: &reqwest::Client, base: &str) -> Value {
    get_json(http, &format!("{base}/healthz")).await["clickhouse"].clone()
}

/// Waits until the sink reports every row of the first `events` source events written
/// (`/healthz` `clickhouse.written_through`). The deadline only bounds a failing run.
async fn wait_written_through(http: &reqwest::Client, base: &str, events: u64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let ch = clickhouse_health(http, base).await;
        if ch["written_through"] == events {
            return;
        }
        assert!(
            ch["written_through"].as_u64() < Some(events),
            "the sink reports more than was posted: {ch}"
        );
        assert!(
            Instant::now() < deadline,
            "the ClickHouse sink never wrote through {events} events: {ch}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two days of simulated traffic, ending at [`NOW`], in Asia/Kolkata (+05:30: local
/// days start in the middle of a UTC hour).
fn simulated_events() -> Vec<Event> {
    let now = now_ms();
    let mut sim = Simulator::new(
        SimulatorConfig {
            seed: 11,
            account_id: 1,
            timezone: TZ,
            // A smaller team than the default keeps the debug-build tests quick.
            conversations_per_day: 500.0,
            ..SimulatorConfig::default()
        },
        now - 2 * 86_400_000,
    );
    let mut events = Vec::new();
    while sim.now_ms() < now {
        let until = (sim.now_ms() + 3_600_000).min(now);
        events.extend(sim.advance_to(until));
    }
    events
}

fn write_config(dir: &Path, url: &str, database: &str) -> std::path::PathBuf {
    let path = dir.join("crmpulse.toml");
    std::fs::write(
        &path,
        format!(
            "[accounts.defaults]\ntimezone = \"{}\"\n[clickhouse]\nurl = \"{url}\"\ndatabase = \"{database}\"\n\
             flush_interval_ms = 200\nretry_initial_ms = 100\nretry_max_ms = 1000\nrequest_timeout_ms = 5000\n",
            TZ.name()
        ),
    )
    .unwrap();
    path
}

async fn post_all(http: &reqwest::Client, base: &str, events: &[Event]) {
    for chunk in events.chunks(2_000) {
        let body: Vec<Value> = chunk
            .iter()
            .map(|e| serde_json::from_str(&e.to_json()).unwrap())
            .collect();
        let res = post_events(http, base, &Value::Array(body)).await;
        assert!(res.status().is_success(), "{}", res.status());
    }
}

fn local_days() -> (NaiveDate, NaiveDate) {
    let today = DateTime::from_timestamp_millis(now_ms())
        .unwrap()
        .with_timezone(&TZ)
        .date_naive();
    (today - Days::new(1), today)
}

#[test]
fn migrations_are_idempotent_and_recorded() {
    let url = clickhouse_url();
    let database = unique_database("crmpulse_migrate");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
            .arg("migrate")
            .env("CRMPULSE__CLICKHOUSE__URL", &url)
            .env("CRMPULSE__CLICKHOUSE__DATABASE", &database)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = run();
    assert!(
        first.contains("2 migration(s) applied now, 0 already"),
        "{first}"
    );
    let second = run();
    assert!(
        second.contains("0 migration(s) applied now, 2 already"),
        "{second}"
    );
    let recorded = query(
        &url,
        &database,
        "SELECT version, name FROM schema_migrations ORDER BY version",
    );
    let recorded: Vec<(i64, String)> = recorded
        .iter()
        .map(|r| (int(r, "version"), r["name"].clone()))
        .collect();
    assert_eq!(
        recorded,
        [(1, "raw_events".to_owned()), (2, "rollups".to_owned())]
    );
    let tables = query(
        &url,
        &database,
        &format!("SELECT name FROM system.tables WHERE database = '{database}' ORDER BY name"),
    );
    let tables: Vec<&str> = tables.iter().map(|r| r["name"].as_str()).collect();
    for t in pipeline::sink::clickhouse::rollup::Table::ALL {
        assert!(
            tables.contains(&t.name()),
            "{} missing in {tables:?}",
            t.name()
        );
    }
    assert!(tables.contains(&"events") && tables.contains(&"schema_migrations"));
    assert_eq!(tables.len(), 17);
    query(&url, "default", &format!("DROP DATABASE {database}"));
}

#[test]
fn every_documented_example_is_checked() {
    let names: Vec<String> = examples().into_keys().collect();
    assert!(names.len() >= 10, "{names:?}");
    // `mismatches` checks each of these; a new example must be added there too.
    let checked = [
        "active_now",
        "campaign_revenue",
        "customers",
        "failures_by_error_code",
        "frt",
        "frt_by_agent_day",
        "frt_by_day",
        "handled_by_agent",
        "heatmap",
        "leads_tickets",
        "messages",
        "resolution",
        "sla_by_week",
        "status_time",
        "whatsapp_delivery",
    ];
    assert_eq!(names, checked);
}

#[tokio::test(flavor = "multi_thread")]
async fn documented_queries_equal_the_api() {
    let url = clickhouse_url();
    let database = unique_database("crmpulse_examples");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &url, &database);
    // Rows an earlier run wrote and never retracted (it crashed with ClickHouse down):
    // a conversation that no longer exists, yesterday; and an absolute value the
    // rebuild must overwrite. Both would break the comparisons below if they survived.
    let (day, today) = local_days();
    let migrated = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .args(["--config".as_ref(), config.as_os_str(), "migrate".as_ref()])
        .output()
        .unwrap();
    assert!(migrated.status.success());
    let stale_bucket = day
        .and_hms_opt(10, 0, 0)
        .unwrap()
        .and_local_timezone(TZ)
        .unwrap()
        .timestamp();
    execute(
        &url,
        &database,
        &format!(
            "INSERT INTO conversations_opened_15m VALUES (1, {stale_bucket}, 'whatsapp', 'stale-inbox', '', 0, 5, 1)"
        ),
    );
    execute(
        &url,
        &database,
        "INSERT INTO active_conversations_now VALUES (1, 'bot', '', 'whatsapp', 'inbox-whatsapp-1', 1000, 1)",
    );
    let port = free_port();
    let _server = Killed(start_with(
        port,
        &dir.path().join("log"),
        NOW,
        &["--config".as_ref(), config.as_os_str()],
    ));
    let base = format!("http://127.0.0.1:{port}");
    let http = common::client(port);
    let events = simulated_events();
    post_all(&http, &base, &events).await;
    wait_caught_up(&http, &base, events.len() as u64).await;
    wait_written_through(&http, &base, events.len() as u64).await;

    let checker = Checker {
        url: &url,
        database: &database,
        api: &base,
        http: http.clone(),
    };
    checker.assert_equal(day, today, &events).await;
    let stale = query(
        &url,
        &database,
        "SELECT sum(conversations) AS n FROM conversations_opened_15m FINAL WHERE inbox_id = 'stale-inbox'",
    );
    assert_eq!(int(&stale[0], "n"), 0);
    // Every event arrived once.
    let n = query(
        &url,
        &database,
        "SELECT count() AS n, uniqExact(event_id) AS ids FROM events FINAL",
    );
    assert_eq!(int(&n[0], "n"), events.len() as i64);
    assert_eq!(int(&n[0], "ids"), events.len() as i64);
    query(&url, "default", &format!("DROP DATABASE {database}"));
}

/// A restart from a checkpoint in front of ClickHouse: half the events, SIGTERM (the
/// shutdown writes a checkpoint), a restart that goes on from it (its facts rewrite
/// every rollup row once), the other half. The documented queries still equal the API,
/// and every event is in `events` once.
#[tokio::test(flavor = "multi_thread")]
async fn documented_queries_equal_the_api_after_a_restart_from_a_checkpoint() {
    let url = clickhouse_url();
    let database = unique_database("crmpulse_checkpoint");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &url, &database);
    let (day, today) = local_days();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let events = simulated_events();
    let (first, second) = events.split_at(events.len() / 2);
    let extra = ["--config".as_ref(), config.as_os_str()];
    let log = dir.path().join("log");
    let mut server = Killed(start_with(port, &log, NOW, &extra));
    let http = common::client(port);
    post_all(&http, &base, first).await;
    wait_caught_up(&http, &base, first.len() as u64).await;
    let term = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(server.0.wait().unwrap().success());
    assert!(log.join("checkpoint.bin").exists(), "written at shutdown");

    let _server = Killed(start_with(port, &log, NOW, &extra));
    let http = common::client(port);
    post_all(&http, &base, second).await;
    wait_caught_up(&http, &base, events.len() as u64).await;
    wait_written_through(&http, &base, events.len() as u64).await;
    let loaded = metric(
        &metrics_text(&http, &base).await,
        "crmpulse_checkpoint_loaded_events",
    );
    assert_eq!(
        loaded,
        first.len() as f64,
        "the restart went on from the checkpoint"
    );

    let checker = Checker {
        url: &url,
        database: &database,
        api: &base,
        http: http.clone(),
    };
    checker.assert_equal(day, today, &events).await;
    let n = query(
        &url,
        &database,
        "SELECT count() AS n, uniqExact(event_id) AS ids FROM events FINAL",
    );
    assert_eq!(int(&n[0], "n"), events.len() as i64);
    assert_eq!(int(&n[0], "ids"), events.len() as i64);
    query(&url, "default", &format!("DROP DATABASE {database}"));
}

/// Starts or stops a private server through `scripts/clickhouse-server`.
fn private_server(action: &str, dir: &Path, port: u16) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/clickhouse-server");
    let out = Command::new(script)
        .arg(action)
        .arg(dir)
        .arg(port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "clickhouse-server {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct PrivateServer<'a>(&'a Path);

impl Drop for PrivateServer<'_> {
    fn drop(&mut self) {
        private_server("stop", self.0, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_outage_mid_stream_loses_and_duplicates_nothing() {
    let ch_dir = tempfile::tempdir().unwrap();
    let ch_port = free_port();
    private_server("start", ch_dir.path(), ch_port);
    let _ch = PrivateServer(ch_dir.path());
    let url = format!("http://127.0.0.1:{ch_port}");
    let database = "crmpulse_fault";

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &url, database);
    let port = free_port();
    let _server = Killed(start_with(
        port,
        &dir.path().join("log"),
        NOW,
        &["--config".as_ref(), config.as_os_str()],
    ));
    let base = format!("http://127.0.0.1:{port}");
    let http = common::client(port);
    let events = simulated_events();
    let third = events.len() / 3;

    post_all(&http, &base, &events[..third]).await;
    wait_caught_up(&http, &base, third as u64).await;
    wait_written_through(&http, &base, third as u64).await;

    // Down for 30 s while the second third streams in.
    private_server("stop", ch_dir.path(), ch_port);
    let down = Instant::now();
    for chunk in events[third..2 * third].chunks(1_000) {
        post_all(&http, &base, chunk).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait_caught_up(&http, &base, 2 * third as u64).await;
    // The dashboard kept serving, with the new events.
    let kpi: Value = http
        .get(format!("{base}/api/dashboard/kpi"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(kpi["progress"].as_u64() > Some(0));
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(down.elapsed())).await;
    let metrics = metrics_text(&http, &base).await;
    assert!(metric(&metrics, "crmpulse_clickhouse_failures_total") > 0.0);
    assert!(metric(&metrics, "crmpulse_clickhouse_retries_total") > 0.0);
    assert!(metric(&metrics, "crmpulse_clickhouse_lag_seconds") > 0.0);
    // Nothing can be written while the server is down: the position stays put.
    assert_eq!(
        metric(&metrics, "crmpulse_clickhouse_written_through_events"),
        third as f64
    );
    let ch = clickhouse_health(&http, &base).await;
    assert_eq!(ch["written_through"], third as u64, "{ch}");
    assert!(ch["buffered_rows"].as_u64() > Some(0), "{ch}");

    private_server("start", ch_dir.path(), ch_port);
    post_all(&http, &base, &events[2 * third..]).await;
    wait_caught_up(&http, &base, events.len() as u64).await;
    wait_written_through(&http, &base, events.len() as u64).await;

    let checker = Checker {
        url: &url,
        database,
        api: &base,
        http: http.clone(),
    };
    let (day, today) = local_days();
    checker.assert_equal(day, today, &events).await;
    let n = query(
        &url,
        database,
        "SELECT count() AS n, uniqExact(event_id) AS ids FROM events FINAL",
    );
    assert_eq!(int(&n[0], "n"), events.len() as i64);
    assert_eq!(int(&n[0], "ids"), events.len() as i64);
    let metrics = metrics_text(&http, &base).await;
    assert_eq!(
        metric(&metrics, "crmpulse_clickhouse_written_through_events"),
        events.len() as f64
    );
}
