//! The reference itself against the worked examples of `docs/metrics.md` (and the
//! golden days of `tests/*.rs` that the docs point to), so that it is checked against
//! the definitions, not only against the product.

use chrono::DateTime;
use crmpulse_reference::{
    Input, Query, Settings, conversation_effectiveness::agent_score, nearest_rank, ratio,
    resolve_range, section,
};
use schemas::event::*;
use serde_json::{Value, json};

fn at(t: &str) -> i64 {
    DateTime::parse_from_rfc3339(t).unwrap().timestamp_millis()
}

struct Day {
    events: Vec<Event>,
}

impl Day {
    fn new() -> Self {
        Self { events: Vec::new() }
    }
    fn push(&mut self, t: &str, payload: Payload) -> &mut Self {
        let n = self.events.len();
        self.events.push(Event {
            event_id: format!("x{n}"),
            account_id: 1,
            occurred_at_ms: at(t),
            payload,
        });
        self
    }
    fn open(&mut self, t: &str, c: &str, customer: &str) -> &mut Self {
        self.push(
            t,
            Payload::ConversationOpened {
                conversation_id: c.into(),
                customer_id: customer.into(),
                channel: Channel::Whatsapp,
                inbox_id: "i1".into(),
                origin: Origin::Inbound,
                campaign_id: None,
            },
        )
    }
    fn bot(&mut self, t: &str, c: &str) -> &mut Self {
        self.push(
            t,
            Payload::ConversationAssigned {
                conversation_id: c.into(),
                assignee: Assignee::Bot,
                agent_id: None,
                team_id: None,
            },
        )
    }
    fn assign(&mut self, t: &str, c: &str, agent: &str, team: &str) -> &mut Self {
        self.push(
            t,
            Payload::ConversationAssigned {
                conversation_id: c.into(),
                assignee: Assignee::Agent,
                agent_id: Some(agent.into()),
                team_id: Some(team.into()),
            },
        )
    }
    fn escalate(&mut self, t: &str, c: &str) -> &mut Self {
        self.push(
            t,
            Payload::ConversationEscalated {
                conversation_id: c.into(),
                reason: None,
            },
        )
    }
    fn reply(&mut self, t: &str, m: &str, c: &str, agent: &str) -> &mut Self {
        self.push(
            t,
            Payload::MessageCreated {
                message_id: m.into(),
                conversation_id: c.into(),
                direction: Direction::Outbound,
                sender: Sender::Agent,
                agent_id: Some(agent.into()),
                channel: Channel::Whatsapp,
                broadcast_id: None,
                auto_reply: false,
            },
        )
    }
    fn resolve(&mut self, t: &str, c: &str, by: ResolvedBy, agent: Option<&str>) -> &mut Self {
        self.push(
            t,
            Payload::ConversationResolved {
                conversation_id: c.into(),
                resolved_by: by,
                agent_id: agent.map(Into::into),
            },
        )
    }
    fn status(&mut self, t: &str, m: &str, status: DeliveryStatus) -> &mut Self {
        self.push(
            t,
            Payload::MessageStatus {
                message_id: m.into(),
                status,
                error_code: None,
                error_title: None,
            },
        )
    }

    fn body(&self, name: &str, settings: &Settings, query: &Query, now: &str) -> Value {
        let input = Input {
            events: &self.events,
            settings,
            query,
            progress_ms: at(now),
            now_ms: at(now),
        };
        section(name, &input).unwrap()
    }
}

fn day_query(from: &str) -> Query {
    Query {
        account_id: 1,
        from: Some(from.into()),
        ..Query::default()
    }
}

/// docs/metrics.md, "Worked example" (the last section).
#[test]
fn the_final_worked_example() {
    let mut d = Day::new();
    d.open("2026-11-20T10:00:00Z", "c1", "u1")
        .reply("2026-11-20T10:02:00Z", "r1", "c1", "a1")
        .open("2026-11-20T11:00:00Z", "c2", "u2")
        .bot("2026-11-20T11:00:01Z", "c2")
        .escalate("2026-11-20T11:05:00Z", "c2")
        .reply("2026-11-20T11:15:00Z", "r2", "c2", "a1")
        .reply("2026-11-20T10:30:00Z", "m1", "c1", "a1")
        .status("2026-11-20T10:31:00Z", "m1", DeliveryStatus::Read)
        .status("2026-11-20T10:32:00Z", "m1", DeliveryStatus::Sent)
        .reply("2026-11-20T10:40:00Z", "m2", "c1", "a1")
        .status("2026-11-20T10:41:00Z", "m2", DeliveryStatus::Failed);
    let body = d.body(
        "kpi",
        &Settings::default(),
        &day_query("2026-11-20"),
        "2026-11-20T18:00:00Z",
    );
    assert_eq!(
        body["first_response"]["current"],
        json!({"count": 2, "avg_s": 360.0, "p50_s": 120, "p90_s": 600})
    );
    assert_eq!(body["first_response"]["sla_status"], "yellow");
    // The replies r1, r2 are outbound WhatsApp messages too, without statuses.
    assert_eq!(
        body["whatsapp_delivery"]["current"],
        json!({"delivered": 1, "with_status": 2, "rate": 0.5})
    );
    assert_eq!(body["whatsapp_delivery"]["alert"], true);
}

/// docs/metrics.md, FRT: an agent who writes while the bot still holds the
/// conversation, before any hand-over, has FRT 0.
#[test]
fn an_agent_reply_before_the_bot_hands_over_is_frt_0() {
    let mut d = Day::new();
    d.open("2026-11-20T10:00:00Z", "c", "u")
        .bot("2026-11-20T10:00:01Z", "c")
        .reply("2026-11-20T10:04:00Z", "r", "c", "a1")
        .escalate("2026-11-20T10:06:00Z", "c");
    let body = d.body(
        "kpi",
        &Settings::default(),
        &day_query("2026-11-20"),
        "2026-11-20T18:00:00Z",
    );
    assert_eq!(
        body["first_response"]["current"],
        json!({"count": 1, "avg_s": 0.0, "p50_s": 0, "p90_s": 0})
    );
}

/// docs/metrics.md, Ranges: bounds truncated to the grid, an empty range refused, the
/// previous period of equal length.
#[test]
fn ranges_are_truncated_to_the_grid() {
    let settings = Settings::default();
    let range = |from: &str, to: &str| {
        let q = Query {
            account_id: 1,
            from: Some(from.into()),
            to: Some(to.into()),
            ..Query::default()
        };
        resolve_range(&Input {
            events: &[],
            settings: &settings,
            query: &q,
            progress_ms: 0,
            now_ms: 0,
        })
    };
    let r = range("2026-11-20T10:07:00Z", "2026-11-20T11:07:00Z").unwrap();
    assert_eq!(
        (r.from, r.to),
        (at("2026-11-20T10:00:00Z"), at("2026-11-20T11:00:00Z"))
    );
    let p = r.previous();
    assert_eq!(
        (p.from, p.to),
        (at("2026-11-20T09:00:00Z"), at("2026-11-20T10:00:00Z"))
    );
    assert!(range("2026-11-20T10:01:00Z", "2026-11-20T10:14:00Z").is_err());
}

/// docs/metrics.md, Rounding and the nearest-rank method.
#[test]
fn rounding_is_exact_half_up() {
    assert_eq!(ratio(1, 8, 4), Some(0.125));
    assert_eq!(ratio(1, 3, 4), Some(0.3333));
    assert_eq!(ratio(2, 3, 4), Some(0.6667));
    assert_eq!(ratio(1, 4, 1), Some(0.3), "sum 1 s over 4 replies");
    assert_eq!(ratio(3, 4, 1), Some(0.8), "sum 3 s over 4 replies");
    assert_eq!(ratio(1, 0, 4), None);
    // Rates 0.5, 0.75, 0.25 → 52.5 → 53.
    assert_eq!(agent_score((1, 2), (3, 4), (1, 4)), 53);
    // For 30 replies p90 is the 27th value, p50 the 15th.
    let v: Vec<i64> = (1..=30).collect();
    assert_eq!(nearest_rank(&v, 9, 10), Some(27));
    assert_eq!(nearest_rank(&v, 1, 2), Some(15));
    let ten: Vec<i64> = (1..=10).collect();
    assert_eq!(nearest_rank(&ten, 9, 10), Some(9), "⌈0.9·10⌉ = 9 exactly");
}

/// The golden day of tests/conversation_effectiveness.rs, every number there.
#[test]
fn the_conversation_effectiveness_golden_day() {
    let mut d = Day::new();
    let t = |hm: &str| format!("2026-11-20T{hm}Z");
    d.open(&t("10:00:00"), "c1", "u")
        .assign(&t("10:00:30"), "c1", "a1", "t1")
        .reply(&t("10:02:00"), "m1", "c1", "a1")
        .reply(&t("10:20:00"), "m1b", "c1", "a1")
        .resolve(&t("10:30:00"), "c1", ResolvedBy::Agent, Some("a1"))
        .open(&t("11:00:00"), "c2", "u")
        .bot(&t("11:00:01"), "c2")
        .escalate(&t("11:05:00"), "c2")
        .assign(&t("11:06:00"), "c2", "a2", "t2")
        .reply(&t("11:15:00"), "m2", "c2", "a2")
        .resolve(&t("11:20:00"), "c2", ResolvedBy::Agent, Some("a2"))
        .open(&t("12:00:00"), "c3", "u")
        .open(&t("13:00:00"), "c4", "u")
        .bot(&t("13:00:01"), "c4")
        .resolve(&t("13:02:00"), "c4", ResolvedBy::Bot, None)
        .open(&t("14:00:00"), "c5", "u")
        .assign(&t("14:01:00"), "c5", "a1", "t1")
        .reply(&t("14:03:00"), "m5", "c5", "a1")
        .open("2026-11-19T23:50:00Z", "c6", "u")
        .reply(&t("00:01:00"), "m6", "c6", "a1")
        .open(&t("15:00:00"), "c7", "u")
        .resolve(&t("15:03:00"), "c7", ResolvedBy::System, None)
        .open(&t("16:00:00"), "c8", "u")
        .resolve(&t("16:30:00"), "c8", ResolvedBy::System, None);
    let q = Query {
        to: Some("2026-11-21".into()),
        ..day_query("2026-11-20")
    };
    let body = d.body(
        "conversation-effectiveness",
        &Settings::default(),
        &q,
        "2026-11-21T12:00:00Z",
    );
    assert_eq!(
        body["sla"]["current"],
        json!({"met": 2, "replied": 4, "breached_unanswered": 2, "compliance": 0.3333})
    );
    assert_eq!(
        body["sla"]["previous"],
        json!({"met": 0, "replied": 0, "breached_unanswered": 0, "compliance": null})
    );
    assert_eq!(
        body["sla"]["waiting_now"],
        json!({"within_target": 0, "past_target": 1})
    );
    assert_eq!(
        body["handled_per_agent"],
        json!([
            {"agent_id": "a1", "conversations": 3, "previous": 0},
            {"agent_id": "a2", "conversations": 1, "previous": 0},
        ])
    );
    assert_eq!(
        body["resolution"]["opened_in_range"],
        json!({"total": 7, "resolved": 5, "open": 2})
    );
    assert_eq!(
        body["resolution"]["resolve_events"],
        json!({"total": 5, "by_agent": 2, "by_bot": 1, "by_system": 2})
    );
    let agents = &body["agent_ranking"]["agents"];
    assert_eq!(
        agents[0],
        json!({"rank": 1, "agent_id": "a1", "score": 63, "level": "ok", "handled": 3, "resolved": 1,
        "resolution_rate": 0.3333, "frt_avg_s": 320.0, "sla_met_rate": 0.6667})
    );
    assert_eq!(
        agents[1],
        json!({"rank": 2, "agent_id": "a2", "score": 37, "level": "attention", "handled": 1, "resolved": 1,
        "resolution_rate": 1.0, "frt_avg_s": 600.0, "sla_met_rate": 0.0})
    );
    let points = body["frt_trend"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    assert_eq!(
        points[0],
        json!({"start": "2026-11-20T00:00:00.000Z", "count": 1, "avg_s": 660.0, "p50_s": 660, "p90_s": 660})
    );
    assert_eq!(points[10]["count"], 1);
    assert_eq!(points[10]["p50_s"], 120);
    assert_eq!(
        points[12],
        json!({"start": "2026-11-20T12:00:00.000Z", "count": 0, "avg_s": null, "p50_s": null, "p90_s": null})
    );
}

/// The golden day of tests/customer_load.rs (Asia/Kolkata, +05:30).
#[test]
fn the_customer_load_golden_day_in_kolkata() {
    let ist = |day: &str, hm: &str| format!("{day}T{hm}:00+05:30");
    let day = "2025-11-21";
    let mut d = Day::new();
    d.open(&ist("2025-11-11", "10:00"), "c0", "u1")
        .open(&ist(day, "10:15"), "c1", "u1")
        .reply(&ist(day, "10:17"), "m1", "c1", "a1")
        .open(&ist(day, "10:40"), "c2", "u2")
        .open(&ist(day, "10:50"), "c4", "u3")
        .open(&ist(day, "11:05"), "c7", "u6")
        .open(&ist(day, "11:20"), "c8", "u7")
        .open(&ist(day, "12:00"), "c9", "u8")
        .open(&ist(day, "12:30"), "c10", "u9")
        .open(&ist(day, "14:05"), "c3", "u2")
        .reply(&ist(day, "14:10"), "m3", "c3", "a1")
        .open(&ist(day, "00:10"), "c5", "u4")
        .open(&ist("2025-11-20", "23:59"), "c6", "u5");
    // Forecast history: now is 12:10 local on 2025-12-10; one opening 1 week before
    // the hour 3 hours ahead, one 2 weeks before the hour 6 hours ahead.
    let now = "2025-12-10T06:40:00Z";
    let hour = 3_600_000;
    let this_hour = at("2025-12-10T06:30:00Z");
    for (i, (ahead, weeks)) in [(3i64, 1i64), (6, 2)].into_iter().enumerate() {
        let t = this_hour + ahead * hour - weeks * 7 * 24 * hour + 5 * 60_000;
        d.open(
            &schemas::event::format_rfc3339_ms(t),
            &format!("cf{i}"),
            "uf",
        );
    }
    let settings = Settings {
        timezone: chrono_tz::Tz::Asia__Kolkata,
        ..Settings::default()
    };
    let body = d.body("customer-load", &settings, &day_query(day), now);
    assert_eq!(body["range"]["from"], "2025-11-20T18:30:00.000Z");
    assert_eq!(body["opened"]["total"], 9);
    assert_eq!(body["opened"]["previous"], 1);
    let points = body["opened"]["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    assert_eq!(
        points[10],
        json!({"start": "2025-11-21T04:30:00.000Z", "count": 3})
    );
    assert_eq!(body["peak_hours"], json!([10, 11, 12]));
    assert_eq!(
        body["hour_of_day"][10],
        json!({"hour": 10, "count": 3, "peak": true})
    );
    assert_eq!(
        body["hour_of_day"][14],
        json!({"hour": 14, "count": 1, "peak": false})
    );
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
    assert_eq!(body["heatmap"]["cells"][4][10], 3);
    assert_eq!(body["heatmap"]["cells"][4][0], 1);
    assert_eq!(body["heatmap"]["cells"][3][23], 0);
    let forecast = body["forecast"]["points"].as_array().unwrap();
    assert_eq!(forecast.len(), 24);
    assert_eq!(forecast[0]["start"], "2025-12-10T06:30:00.000Z");
    // The account's first conversation (11-11) is before all four comparison weeks.
    assert!(forecast.iter().all(|p| p["weeks"] == 4));
    assert_eq!(forecast[3]["expected"], 0.25);
    assert_eq!(forecast[6]["expected"], 0.25);
    let sum: f64 = forecast
        .iter()
        .map(|p| p["expected"].as_f64().unwrap())
        .sum();
    assert_eq!(sum, 0.5);
}

/// docs/metrics.md, Forecast: with one week of history and 58 conversations in that
/// hour a week ago, `expected` is 58 (`weeks: 1`); without history it is `null`.
#[test]
fn the_forecast_averages_the_weeks_with_history() {
    let now = "2026-11-20T10:20:00Z";
    let mut d = Day::new();
    for i in 0..58 {
        let t = at("2026-11-13T10:00:00Z") + i * 60_000;
        d.open(&schemas::event::format_rfc3339_ms(t), &format!("c{i}"), "u");
    }
    let body = d.body(
        "customer-load",
        &Settings::default(),
        &day_query("2026-11-20"),
        now,
    );
    let points = body["forecast"]["points"].as_array().unwrap();
    assert_eq!(
        points[0],
        json!({"start": "2026-11-20T10:00:00.000Z", "expected": 58.0, "weeks": 1})
    );
    // 11:00 a week ago ends after the first conversation's bucket too: 0 of 1 week.
    assert_eq!(points[1]["expected"], 0.0);
    assert_eq!(points[1]["weeks"], 1);
    // 09:00 tomorrow: a week before, 09:00–10:00 on 11-14; 2 weeks before is 11-07,
    // before the history.
    assert_eq!(points[23]["start"], "2026-11-21T09:00:00.000Z");
    assert_eq!(points[23]["weeks"], 1);
    let empty = Day::new().body(
        "customer-load",
        &Settings::default(),
        &day_query("2026-11-20"),
        now,
    );
    assert_eq!(empty["forecast"]["points"][0]["expected"], Value::Null);
    assert_eq!(empty["forecast"]["points"][0]["weeks"], 0);
}

/// docs/metrics.md, SLA compliance: closed, reopened and unanswered is waiting again.
#[test]
fn a_reopened_unanswered_conversation_breaches_at_its_deadline() {
    let mut d = Day::new();
    d.open("2026-11-20T10:00:00Z", "c", "u")
        .resolve("2026-11-20T10:02:00Z", "c", ResolvedBy::System, None)
        .push(
            "2026-11-20T10:04:00Z",
            Payload::ConversationReopened {
                conversation_id: "c".into(),
            },
        );
    let settings = Settings {
        sla_first_response_s: 300,
        ..Settings::default()
    };
    let q = day_query("2026-11-20");
    let body = d.body(
        "conversation-effectiveness",
        &settings,
        &q,
        "2026-11-20T10:06:00Z",
    );
    assert_eq!(body["sla"]["current"]["breached_unanswered"], 1);
    assert_eq!(body["sla"]["waiting_now"]["past_target"], 1);
    d.resolve("2026-11-20T10:20:00Z", "c", ResolvedBy::System, None);
    let body = d.body(
        "conversation-effectiveness",
        &settings,
        &q,
        "2026-11-20T10:30:00Z",
    );
    assert_eq!(body["sla"]["current"]["breached_unanswered"], 1);
    assert_eq!(body["sla"]["waiting_now"]["past_target"], 0);
    // Without the reopen it was closed before its deadline: not counted at all.
    let mut d = Day::new();
    d.open("2026-11-20T10:00:00Z", "c", "u").resolve(
        "2026-11-20T10:02:00Z",
        "c",
        ResolvedBy::System,
        None,
    );
    let body = d.body(
        "conversation-effectiveness",
        &settings,
        &q,
        "2026-11-20T10:30:00Z",
    );
    assert_eq!(body["sla"]["current"]["breached_unanswered"], 0);
}

/// docs/metrics.md, messages today: the worked example in Kolkata.
#[test]
fn messages_today_compares_with_yesterday_up_to_the_same_slot() {
    let mut d = Day::new();
    for (i, t) in [
        "2026-11-19T14:10:00+05:30", // yesterday, inside the slot: counted
        "2026-11-19T14:20:00+05:30", // yesterday, after the slot: not
        "2026-11-20T09:00:00+05:30", // today
    ]
    .into_iter()
    .enumerate()
    {
        d.reply(t, &format!("m{i}"), "c", "a1");
    }
    let settings = Settings {
        timezone: chrono_tz::Asia::Kolkata,
        ..Settings::default()
    };
    let q = day_query("2026-11-20");
    let input = |progress: &str| Input {
        events: &d.events,
        settings: &settings,
        query: &q,
        progress_ms: at(progress),
        now_ms: at("2026-11-20T14:40:00+05:30"),
    };
    let body = section("kpi", &input("2026-11-20T14:05:30+05:30")).unwrap();
    assert_eq!(body["messages_today"]["current"]["total"], 1);
    assert_eq!(body["messages_today"]["previous"]["total"], 1);
    let body = section("kpi", &input("2026-11-19T23:58:00+05:30")).unwrap();
    assert_eq!(body["messages_today"]["current"]["total"], 0);
    assert_eq!(body["messages_today"]["previous"]["total"], 0);
}
