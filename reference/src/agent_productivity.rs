//! Agent productivity (`docs/metrics.md#agent-productivity`), and two things the other
//! sections of this reference's second half read too: the body [`header`] and the
//! agents' [`status_ms`] (time in each status within a range).

use std::collections::{BTreeMap, BTreeSet};

use schemas::event::{AgentStatus, Assignee, Event, Payload, ResolvedBy};
use serde_json::{Value, json};

use crate::automation_impact::{Conv, conversations};
use crate::{Input, Range, div_half_up, grouped, ratio, rfc3339};

/// The fields every section body starts with.
pub(crate) fn header(input: &Input<'_>, range: Range, section: &str) -> Value {
    let prev = range.previous();
    json!({
        "section": section,
        "account_id": input.query.account_id,
        "timezone": input.settings.timezone.name(),
        "range": {"from": rfc3339(range.from), "to": rfc3339(range.to)},
        "previous_range": {"from": rfc3339(prev.from), "to": rfc3339(prev.to)},
        "progress": input.progress_ms,
    })
}

/// Every agent's `agent_status_changed` events, sorted by event time.
pub(crate) fn status_events<'a>(events: &[&'a Event]) -> BTreeMap<String, Vec<&'a Event>> {
    grouped(events, |e| match &e.payload {
        Payload::AgentStatusChanged { agent_id, .. } => Some(agent_id.clone()),
        _ => None,
    })
}

fn status_of(e: &Event) -> AgentStatus {
    match &e.payload {
        Payload::AgentStatusChanged { status, .. } => *status,
        _ => unreachable!("status events only"),
    }
}

/// Milliseconds in each status (online, busy, away, offline) within `range`, up to
/// `progress`: each status holds from its event to the agent's next status event.
pub(crate) fn status_ms(statuses: &[&Event], range: Range, progress: i64) -> [i64; 4] {
    let mut out = [0i64; 4];
    let end = range.to.min(progress);
    for (i, e) in statuses.iter().enumerate() {
        let from = e.occurred_at_ms;
        let to = statuses.get(i + 1).map_or(i64::MAX, |n| n.occurred_at_ms);
        let lo = from.max(range.from);
        let hi = to.min(end);
        if hi > lo {
            let k = match status_of(e) {
                AgentStatus::Online => 0,
                AgentStatus::Busy => 1,
                AgentStatus::Away => 2,
                AgentStatus::Offline => 3,
            };
            out[k] += hi - lo;
        }
    }
    out
}

/// Distinct admitted conversations in which `agent` sent a message in `r`.
fn handled(convs: &[&Conv<'_>], agent: &str, r: Range) -> i64 {
    convs
        .iter()
        .filter(|c| {
            c.events.iter().any(|e| {
                r.contains(e.occurred_at_ms)
                    && matches!(&e.payload, Payload::MessageCreated {
                        sender: schemas::event::Sender::Agent,
                        agent_id: Some(a), ..
                    } if a == agent)
            })
        })
        .count() as i64
}

/// `conversation_resolved` events by `agent` (`resolved_by = agent`) in `r`.
fn resolved(convs: &[&Conv<'_>], agent: &str, r: Range) -> i64 {
    convs
        .iter()
        .flat_map(|c| c.events.iter())
        .filter(|e| {
            r.contains(e.occurred_at_ms)
                && matches!(&e.payload, Payload::ConversationResolved {
                    resolved_by: ResolvedBy::Agent,
                    agent_id: Some(a), ..
                } if a == agent)
        })
        .count() as i64
}

/// Rounded half up to 4 decimals, in ten-thousandths (0 when missing).
fn rate_e4(a: i128, b: i128) -> i128 {
    if b == 0 {
        0
    } else {
        div_half_up(a * 10_000, b)
    }
}

fn level(score: i128) -> &'static str {
    if score >= 80 {
        "good"
    } else if score < 50 {
        "attention"
    } else {
        "ok"
    }
}

/// `isqrt(n)`: the largest `r` with `r² ≤ n`.
fn isqrt(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    let mut x = (n as f64).sqrt() as u128;
    while x * x > n {
        x -= 1;
    }
    while (x + 1) * (x + 1) <= n {
        x += 1;
    }
    x
}

/// `√q ÷ d` rounded half up to 4 decimals, exactly (`d > 0`).
///
/// `k = ⌊√q·10⁴/d + ½⌋` is the largest `k` with `2kd − d ≤ 2√(q·10⁸)`, and the left side is
/// an integer, so `k = ⌊(⌊√(4q·10⁸)⌋ + d) / 2d⌋`.
fn sqrt_ratio_e4(q: u128, d: u128) -> f64 {
    let r = isqrt(4 * q * 100_000_000);
    ((r + d) / (2 * d)) as f64 / 10_000.0
}

struct Row {
    agent_id: String,
    team_id: Option<String>,
    handled: i64,
    handled_previous: i64,
    resolved: i64,
    ms: [i64; 4],
    status_now: Option<(AgentStatus, i64)>,
    open: i64,
    frt: Vec<i64>,
}

/// The section body.
pub fn body(input: &Input<'_>, range: Range) -> Value {
    let events = crate::account_events(input);
    let progress = input.progress_ms;
    let target = i64::from(input.settings.sla_first_response_s);
    let all = conversations(&events);
    let convs: Vec<&Conv<'_>> = all.values().filter(|c| c.admitted(input)).collect();
    let statuses = status_events(&events);

    // The agents seen in the range or now: a status (every agent with a status event has
    // a current one), a message or a resolution in R, or an open conversation now.
    let mut agents: BTreeSet<String> = statuses.keys().cloned().collect();
    for c in &convs {
        for e in &c.events {
            match &e.payload {
                Payload::MessageCreated {
                    sender: schemas::event::Sender::Agent,
                    agent_id: Some(a),
                    ..
                }
                | Payload::ConversationResolved {
                    resolved_by: ResolvedBy::Agent,
                    agent_id: Some(a),
                    ..
                } if range.contains(e.occurred_at_ms) => {
                    agents.insert(a.clone());
                }
                _ => {}
            }
        }
        if c.active_now()
            && let Some((Assignee::Agent, Some(a))) = c.last_assignment()
        {
            agents.insert(a.to_owned());
        }
    }

    let mut rows = vec![];
    for agent in agents {
        let own = statuses.get(&agent).map(Vec::as_slice).unwrap_or_default();
        let team_id = own.iter().rev().find_map(|e| match &e.payload {
            Payload::AgentStatusChanged { team_id, .. } => team_id.clone(),
            _ => None,
        });
        if input.query.agent_id.as_ref().is_some_and(|a| *a != agent)
            || input
                .query
                .team_id
                .as_ref()
                .is_some_and(|t| team_id.as_ref() != Some(t))
        {
            continue;
        }
        let open = convs
            .iter()
            .filter(|c| {
                c.active_now()
                    && matches!(c.last_assignment(), Some((Assignee::Agent, Some(a))) if a == agent)
            })
            .count() as i64;
        let frt = convs
            .iter()
            .filter(|c| c.first_reply_agent() == Some(agent.as_str()))
            .filter_map(|c| c.frt())
            .filter(|(at, _)| range.contains(*at))
            .map(|(_, s)| s)
            .collect();
        rows.push(Row {
            handled: handled(&convs, &agent, range),
            handled_previous: handled(&convs, &agent, range.previous()),
            resolved: resolved(&convs, &agent, range),
            ms: status_ms(own, range, progress),
            status_now: own.last().map(|e| (status_of(e), e.occurred_at_ms)),
            open,
            frt,
            team_id,
            agent_id: agent,
        });
    }

    // The agent score over this section's rows.
    let most = rows.iter().map(|r| r.handled).max().unwrap_or(0);
    let mut scored: Vec<(i128, Value, &Row)> = rows
        .iter()
        .map(|r| {
            let n = r.frt.len() as i128;
            let met = r.frt.iter().filter(|s| **s <= target).count() as i128;
            let sum: i128 = r.frt.iter().map(|s| i128::from(*s)).sum();
            let handled = i128::from(r.handled);
            let resolved = i128::from(r.resolved).min(handled);
            let score = div_half_up(
                5 * rate_e4(met, n) + 3 * rate_e4(resolved, handled) + 2 * rate_e4(handled, most.into()),
                1000,
            );
            // Whole seconds (floored) per status, and of active = online + busy; the
            // utilisation is the ratio of the shown active and idle seconds.
            let [online, busy, away, offline] = r.ms.map(|ms| ms.div_euclid(1000));
            let active = i128::from((r.ms[0] + r.ms[1]).div_euclid(1000));
            let idle = i128::from(away);
            let row = json!({
                "agent_id": r.agent_id,
                "team_id": r.team_id,
                "handled": r.handled,
                "handled_previous": r.handled_previous,
                "resolved": r.resolved,
                "resolution_rate": ratio(resolved, handled, 4),
                "time_in_status_s": {"online": online, "busy": busy, "away": away, "offline": offline},
                "active_s": active,
                "idle_s": away,
                "utilisation": ratio(active, active + idle, 4),
                "status_now": r.status_now.map(|(s, since)| json!({
                    "status": s.as_str(), "since": rfc3339(since),
                    "for_s": (progress - since).div_euclid(1000),
                })),
                "open_conversations": r.open,
                "frt_avg_s": ratio(sum, n, 1),
                "sla_met_rate": ratio(met, n, 4),
                "productivity_score": score,
                "level": level(score),
            });
            (score, row, r)
        })
        .collect();
    scored.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then(b.2.handled.cmp(&a.2.handled))
            .then(a.2.agent_id.cmp(&b.2.agent_id))
    });

    // Workload spread over the rows online or busy now.
    let available: Vec<i64> = rows
        .iter()
        .filter(|r| {
            matches!(
                r.status_now,
                Some((AgentStatus::Online | AgentStatus::Busy, _))
            )
        })
        .map(|r| r.open)
        .collect();
    let n = available.len() as u128;
    let s: u128 = available.iter().map(|x| *x as u128).sum();
    let s2: u128 = available.iter().map(|x| (*x as u128) * (*x as u128)).sum();
    let q = n * s2 - s * s; // n² × variance
    let workload = json!({
        "agents": n,
        "open_conversations": s,
        "mean": ratio(s as i128, n as i128, 4),
        "std_dev": (n > 0).then(|| sqrt_ratio_e4(q, n)),
        "coefficient_of_variation": (s > 0).then(|| sqrt_ratio_e4(q, s)),
    });

    let mut body = header(input, range, "agent-productivity");
    let fields = json!({
        "thresholds": {"good": 80, "attention": 50},
        "agents": scored.into_iter().map(|(_, v, _)| v).collect::<Vec<_>>(),
        "workload": workload,
    });
    if let (Value::Object(b), Value::Object(f)) = (&mut body, fields) {
        b.extend(f);
    }
    body
}

/// Helpers for the worked examples of this file and its neighbours.
#[cfg(test)]
pub(crate) mod testing {
    use schemas::event::Event;
    use serde_json::{Value, json};

    use crate::{Input, Query, Settings};

    /// `body` with `event_id`, `account_id` 1 and `occurred_at` (as `tests/common`).
    pub fn ev(id: &str, at: &str, body: Value) -> Event {
        let mut e = json!({"event_id": id, "account_id": 1, "occurred_at": at});
        e.as_object_mut()
            .unwrap()
            .extend(body.as_object().unwrap().clone());
        Event::from_json_value(&e).unwrap()
    }

    /// Milliseconds of an RFC 3339 instant.
    pub fn ms(t: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(t)
            .unwrap()
            .timestamp_millis()
    }

    /// The body of `section` for the day 2026-11-20, computed at `now` (progress = now).
    pub fn day(
        section: &str,
        events: &[Event],
        settings: &Settings,
        now: &str,
        tweak: impl FnOnce(&mut Query),
    ) -> Value {
        let mut query = Query {
            account_id: 1,
            from: Some("2026-11-20".into()),
            to: Some("2026-11-21".into()),
            ..Query::default()
        };
        tweak(&mut query);
        let input = Input {
            events,
            settings,
            query: &query,
            progress_ms: ms(now),
            now_ms: ms(now),
        };
        crate::section(section, &input).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::testing::{day, ev};
    use crate::Settings;

    fn status(agent: &str, team: &str, s: &str) -> Value {
        json!({"type": "agent_status_changed", "agent_id": agent, "team_id": team, "status": s})
    }
    fn assigned(c: &str, agent: &str, team: &str) -> Value {
        json!({"type": "conversation_assigned", "conversation_id": c, "assignee": "agent", "agent_id": agent, "team_id": team})
    }
    fn opened(c: &str) -> Value {
        json!({"type": "conversation_opened", "conversation_id": c, "customer_id": "u1",
            "channel": "whatsapp", "inbox_id": "i1", "origin": "inbound"})
    }
    fn agent_message(m: &str, c: &str, agent: &str) -> Value {
        json!({"type": "message_created", "message_id": m, "conversation_id": c,
            "direction": "outbound", "sender": "agent", "agent_id": agent, "channel": "whatsapp"})
    }

    /// The events of `tests/agent_productivity.rs`.
    fn golden() -> Vec<schemas::event::Event> {
        let d = |t: &str| format!("2026-11-20T{t}Z");
        vec![
            ev("s1", "2026-11-19T22:00:00Z", status("a1", "t1", "online")),
            ev("s2", &d("02:00:00"), status("a1", "t1", "busy")),
            ev("s3", &d("03:00:00"), status("a1", "t1", "away")),
            ev("s4", &d("03:30:00"), status("a1", "t1", "online")),
            ev("s5", &d("08:00:00"), status("a1", "t1", "offline")),
            ev("s6", "2026-11-21T01:00:00Z", status("a1", "t1", "online")),
            ev("s7", &d("09:00:00"), status("a2", "t2", "online")),
            ev("c1o", &d("10:00:00"), opened("c1")),
            ev("c1a", &d("10:00:30"), assigned("c1", "a1", "t1")),
            ev("c1m", &d("10:02:00"), agent_message("m1", "c1", "a1")),
            ev(
                "c1r",
                &d("10:30:00"),
                json!({"type": "conversation_resolved", "conversation_id": "c1", "resolved_by": "agent", "agent_id": "a1"}),
            ),
            ev("c2o", &d("11:00:00"), opened("c2")),
            ev("c2a", &d("11:01:00"), assigned("c2", "a1", "t1")),
            ev("c2m", &d("11:10:00"), agent_message("m2", "c2", "a1")),
            ev("c3o", &d("12:00:00"), opened("c3")),
            ev("c3a", &d("12:01:00"), assigned("c3", "a2", "t2")),
        ]
    }

    const NOW: &str = "2026-11-21T12:00:00Z";

    #[test]
    fn worked_example() {
        let events = golden();
        let settings = Settings::default();
        let body = day("agent-productivity", &events, &settings, NOW, |_| {});
        assert_eq!(body["section"], "agent-productivity");
        assert_eq!(body["range"]["from"], "2026-11-20T00:00:00.000Z");
        let a1 = &body["agents"][0];
        assert_eq!(a1["agent_id"], "a1");
        assert_eq!(a1["team_id"], "t1");
        assert_eq!(
            a1["time_in_status_s"],
            json!({"online": 23_400, "busy": 3_600, "away": 1_800, "offline": 57_600})
        );
        assert_eq!(
            (&a1["active_s"], &a1["idle_s"], &a1["utilisation"]),
            (&json!(27_000), &json!(1_800), &json!(0.9375))
        );
        assert_eq!(
            (&a1["handled"], &a1["resolved"], &a1["resolution_rate"]),
            (&json!(2), &json!(1), &json!(0.5))
        );
        assert_eq!(
            (&a1["frt_avg_s"], &a1["sla_met_rate"]),
            (&json!(360.0), &json!(0.5))
        );
        // The one agent score: 100 × (0.5 × 0.5 + 0.3 × 0.5 + 0.2 × 2/2) = 60.
        assert_eq!(
            (&a1["productivity_score"], &a1["level"]),
            (&json!(60), &json!("ok"))
        );
        assert_eq!(
            a1["status_now"],
            json!({"status": "online", "since": "2026-11-21T01:00:00.000Z", "for_s": 11 * 3600})
        );
        assert_eq!(a1["open_conversations"], 1);

        let a2 = &body["agents"][1];
        assert_eq!(a2["agent_id"], "a2");
        assert_eq!(a2["time_in_status_s"]["online"], 54_000);
        // No reply, no resolution, no conversation handled: 0.
        assert_eq!(
            (&a2["handled"], &a2["productivity_score"], &a2["level"]),
            (&json!(0), &json!(0), &json!("attention"))
        );
        assert_eq!(a2["resolution_rate"], Value::Null);
        assert_eq!(a2["open_conversations"], 1);
        assert_eq!(
            body["workload"],
            json!({"agents": 2, "open_conversations": 2, "mean": 1.0, "std_dev": 0.0, "coefficient_of_variation": 0.0})
        );

        let team2 = day("agent-productivity", &events, &settings, NOW, |q| {
            q.team_id = Some("t2".into());
        });
        let ids: Vec<&Value> = team2["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["agent_id"])
            .collect();
        assert_eq!(ids, vec!["a2"]);
    }

    #[test]
    fn the_score_is_exact() {
        // Rates 0.5, 0.75, 0.25 give 52.5 → 53 (metrics.md "Agent ranking").
        let score = super::div_half_up(5 * 5_000 + 3 * 7_500 + 2 * 2_500, 1000);
        assert_eq!(score, 53);
    }

    #[test]
    fn std_dev_is_rounded_exactly() {
        // Open conversations 0, 1, 2: variance 2/3, std 0.81649…, cv 0.81649…
        assert_eq!(super::sqrt_ratio_e4(3 * 5 - 9, 3), 0.8165);
        // 1 and 2: std 0.5, mean 1.5, cv 0.3333.
        assert_eq!(super::sqrt_ratio_e4(2 * 5 - 9, 2), 0.5);
        assert_eq!(super::sqrt_ratio_e4(2 * 5 - 9, 3), 0.3333);
    }

    /// Events of a conversation that happen (in event time) before its first
    /// `conversation_opened` count once the open is known: a reply before the open has
    /// FRT 0 ("negative durations count as 0"), and it and a resolution before the open
    /// count for the agent. The product left them out (no row, or the later reply as the
    /// first one).
    #[test]
    fn events_before_the_open_count() {
        let d = |t: &str| format!("2026-11-20T{t}Z");
        let events = [
            ev("m0", &d("04:28:29"), agent_message("w5", "c7", "a1")),
            ev("o", &d("10:06:18"), opened("c7")),
            ev("m1", &d("10:14:53"), agent_message("m7", "c7", "a3")),
            ev(
                "r",
                &d("09:00:00"),
                json!({"type": "conversation_resolved", "conversation_id": "c8", "resolved_by": "agent", "agent_id": "a2"}),
            ),
            ev("o8", &d("09:00:01"), opened("c8")),
        ];
        let body = day(
            "agent-productivity",
            &events,
            &Settings::default(),
            NOW,
            |_| {},
        );
        let row = |id: &str| {
            body["agents"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["agent_id"] == id)
                .cloned()
                .unwrap()
        };
        assert_eq!(
            (&row("a1")["handled"], &row("a1")["frt_avg_s"]),
            (&json!(1), &json!(0.0))
        );
        assert_eq!(
            (&row("a3")["handled"], &row("a3")["frt_avg_s"]),
            (&json!(1), &Value::Null)
        );
        assert_eq!(row("a2")["resolved"], 1);
    }

    /// "Open conversations now: active conversations whose last assignment is to the
    /// agent": an escalation after the assignment does not take it from the agent (the
    /// product's holder becomes unassigned, in the KPI strip too).
    #[test]
    fn an_escalation_does_not_unassign_the_agent() {
        let d = |t: &str| format!("2026-11-20T{t}Z");
        let events = [
            ev("o", &d("10:00:00"), opened("c0")),
            ev("a", &d("10:00:01"), assigned("c0", "a1", "t1")),
            ev(
                "e",
                &d("10:00:02"),
                json!({"type": "conversation_escalated", "conversation_id": "c0"}),
            ),
        ];
        let body = day(
            "agent-productivity",
            &events,
            &Settings::default(),
            NOW,
            |_| {},
        );
        assert_eq!(body["agents"][0]["agent_id"], "a1");
        assert_eq!(body["agents"][0]["open_conversations"], 1);
    }
}
