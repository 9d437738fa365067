//! Reference: conversation effectiveness (`docs/metrics.md#conversation-effectiveness`).

use std::collections::{BTreeMap, BTreeSet};

use schemas::event::ResolvedBy;
use serde_json::{Value, json};

use crate::{
    Conversation, Input, Range, Slot, Wait, account_events, admits_agent, conversations,
    default_slot, div_half_up, frt_stats, header, ratio, rfc3339, slot_start, slots,
};

/// The trend's slot: `granularity`, or the default by local dates.
pub fn granularity(input: &Input<'_>, range: Range) -> Slot {
    match input.query.granularity.as_deref().and_then(Slot::parse) {
        Some(g) => g,
        None => default_slot(range, input.settings.timezone),
    }
}

/// FRT values of the first replies in `r` that the filters admit (channel, inbox, the
/// replying agent, the team at the reply).
pub fn first_replies_in(input: &Input<'_>, convs: &[Conversation<'_>], r: Range) -> Vec<i64> {
    let q = input.query;
    let mut v = Vec::new();
    for c in convs.iter().filter(|c| c.admits(q)) {
        if let Some(reply) = c.first_reply()
            && r.contains(reply.at)
            && admits_agent(q, reply.agent_id.as_deref(), reply.team_id.as_deref())
        {
            v.push(reply.frt_s);
        }
    }
    v
}

/// Distinct conversations per agent with ≥ 1 message from the agent in `r` (filters:
/// channel, inbox; agent; the team of the agent assignment in force at the message).
pub fn handled(input: &Input<'_>, convs: &[Conversation<'_>], r: Range) -> BTreeMap<String, i64> {
    let q = input.query;
    let mut per_agent: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for c in convs.iter().filter(|c| c.admits(q)) {
        for (t, agent) in c.agent_messages() {
            if let Some(agent) = agent
                && r.contains(t)
                && admits_agent(q, Some(agent), c.team_at(t))
            {
                per_agent
                    .entry(agent.to_string())
                    .or_default()
                    .insert(&c.id);
            }
        }
    }
    per_agent
        .into_iter()
        .map(|(a, set)| (a, set.len() as i64))
        .collect()
}

/// `conversation_resolved` events in `r` that the filters admit: channel, inbox; with
/// `agent_id` those by that agent; with `team_id` those of conversations whose latest
/// agent assignment at the resolution was to that team.
fn resolutions_in<'a>(
    input: &Input<'_>,
    convs: &'a [Conversation<'_>],
    r: Range,
) -> Vec<(ResolvedBy, Option<&'a str>)> {
    let q = input.query;
    let mut out = Vec::new();
    for c in convs.iter().filter(|c| c.admits(q)) {
        for (t, by, agent) in c.resolutions() {
            if !r.contains(t) {
                continue;
            }
            if let Some(a) = &q.agent_id
                && (by != ResolvedBy::Agent || agent != Some(a.as_str()))
            {
                continue;
            }
            if let Some(team) = &q.team_id
                && c.team_at(t) != Some(team.as_str())
            {
                continue;
            }
            out.push((by, agent));
        }
    }
    out
}

fn resolve_events(list: &[(ResolvedBy, Option<&str>)]) -> Value {
    let n = |by: ResolvedBy| list.iter().filter(|(b, _)| *b == by).count();
    json!({
        "total": list.len(),
        "by_agent": n(ResolvedBy::Agent),
        "by_bot": n(ResolvedBy::Bot),
        "by_system": n(ResolvedBy::System),
    })
}

/// SLA compliance in `r`.
fn sla(input: &Input<'_>, convs: &[Conversation<'_>], r: Range) -> Value {
    let q = input.query;
    let target = input.settings.sla_first_response_s;
    let replies = first_replies_in(input, convs, r);
    let replied = replies.len() as i64;
    let met = replies.iter().filter(|f| **f <= i64::from(target)).count() as i64;
    let mut breached = 0i64;
    if q.agent_id.is_none() {
        for c in convs.iter().filter(|c| c.admits(q)) {
            let Some(deadline) = c.deadline(target) else {
                continue;
            };
            if !r.contains(deadline) || deadline > input.progress_ms {
                continue;
            }
            if c.standing_close().is_some_and(|at| at <= deadline) {
                continue; // closed unanswered before its deadline, and not reopened
            }
            if q.team_id.is_some() && q.team_id.as_deref() != c.team_at(i64::MAX) {
                continue;
            }
            breached += 1;
        }
    }
    json!({
        "met": met,
        "replied": replied,
        "breached_unanswered": breached,
        "compliance": ratio(i128::from(met), i128::from(replied + breached), 4),
    })
}

/// The section body.
pub fn body(input: &Input<'_>, range: Range) -> Value {
    let events = account_events(input);
    let q = input.query;
    let convs = conversations(&events);
    let target = input.settings.sla_first_response_s;
    let tz = input.settings.timezone;

    // Waiting now: unanswered, not closed, owing a reply; by whether the deadline passed.
    let (mut within, mut past) = (0i64, 0i64);
    if q.agent_id.is_none() {
        for c in convs.iter().filter(|c| c.admits(q)) {
            if c.first_reply().is_some() || !c.state_at(i64::MAX).active {
                continue;
            }
            if c.wait() == Wait::BotHolds {
                continue;
            }
            if q.team_id.is_some() && q.team_id.as_deref() != c.team_at(i64::MAX) {
                continue;
            }
            match c.deadline(target) {
                Some(d) if d <= input.progress_ms => past += 1,
                Some(_) => within += 1,
                None => {}
            }
        }
    }

    // Handled per agent, current and previous.
    let handled_now = handled(input, &convs, range);
    let handled_before = handled(input, &convs, range.previous());
    // Rows: the agents who handled a conversation in the range.
    let mut per_agent: Vec<(i64, i64, &String)> = handled_now
        .keys()
        .map(|a| {
            (
                handled_now.get(a).copied().unwrap_or(0),
                handled_before.get(a).copied().unwrap_or(0),
                a,
            )
        })
        .collect();
    per_agent.sort_by(|x, y| y.0.cmp(&x.0).then(x.2.cmp(y.2)));
    let handled_per_agent: Vec<Value> = per_agent
        .iter()
        .map(|(n, p, a)| json!({"agent_id": a, "conversations": n, "previous": p}))
        .collect();

    // FRT trend.
    let slot = granularity(input, range);
    let points: Vec<Value> = slots(range, slot, tz)
        .into_iter()
        .map(|s| {
            let mut p = frt_stats(&first_replies_in(input, &convs, s));
            p["start"] = rfc3339(slot_start(s.from, slot, tz)).into();
            p
        })
        .collect();

    // Resolved vs open: conversations first opened in the range (channel, inbox only).
    let (mut opened_total, mut opened_resolved) = (0i64, 0i64);
    for c in convs.iter().filter(|c| c.admits(q)) {
        if range.contains(c.opened_at) {
            opened_total += 1;
            if !c.state_at(i64::MAX).active {
                opened_resolved += 1;
            }
        }
    }
    let resolved_now = resolutions_in(input, &convs, range);
    let resolved_before = resolutions_in(input, &convs, range.previous());

    // Agent ranking.
    let mut rows = Vec::new();
    let most = handled_now.values().copied().max().unwrap_or(0);
    for (agent, &n) in &handled_now {
        let resolved = resolved_now
            .iter()
            .filter(|(by, a)| *by == ResolvedBy::Agent && *a == Some(agent.as_str()))
            .count() as i64;
        // The agent's first replies in the range.
        let mut frts = Vec::new();
        for c in convs.iter().filter(|c| c.admits(q)) {
            if let Some(reply) = c.first_reply()
                && range.contains(reply.at)
                && reply.agent_id.as_deref() == Some(agent.as_str())
                && admits_agent(q, reply.agent_id.as_deref(), reply.team_id.as_deref())
            {
                frts.push(reply.frt_s);
            }
        }
        let met = frts.iter().filter(|f| **f <= i64::from(target)).count() as i128;
        let sum: i128 = frts.iter().map(|f| i128::from(*f)).sum();
        let score = agent_score(
            (met, frts.len() as i128),
            (i128::from(resolved.min(n)), i128::from(n)),
            (i128::from(n), i128::from(most)),
        );
        rows.push((
            score,
            n,
            agent.clone(),
            json!({
                "agent_id": agent,
                "score": score,
                "level": level(score),
                "handled": n,
                "resolved": resolved,
                "resolution_rate": ratio(i128::from(resolved.min(n)), i128::from(n), 4),
                "frt_avg_s": ratio(sum, frts.len() as i128, 1),
                "sla_met_rate": ratio(met, frts.len() as i128, 4),
            }),
        ));
    }
    rows.sort_by(|x, y| y.0.cmp(&x.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2)));
    let ranked: Vec<Value> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (_, _, _, mut row))| {
            row["rank"] = (i + 1).into();
            row
        })
        .collect();

    let mut body = header(input, range, "conversation-effectiveness");
    body.insert(
        "sla".into(),
        json!({
            "target_s": target,
            "current": sla(input, &convs, range),
            "previous": sla(input, &convs, range.previous()),
            "waiting_now": {"within_target": within, "past_target": past},
        }),
    );
    body.insert("handled_per_agent".into(), handled_per_agent.into());
    body.insert(
        "frt_trend".into(),
        json!({"granularity": slot.name(), "points": points}),
    );
    body.insert(
        "resolution".into(),
        json!({
            "opened_in_range": {
                "total": opened_total,
                "resolved": opened_resolved,
                "open": opened_total - opened_resolved,
            },
            "resolve_events": resolve_events(&resolved_now),
            "resolve_events_previous": resolve_events(&resolved_before),
        }),
    );
    body.insert(
        "agent_ranking".into(),
        json!({
            "thresholds": {"good": 80, "attention": 50},
            "agents": ranked,
        }),
    );
    Value::Object(body)
}

/// `(a, b)` rounded half up to 4 decimals, as an integer of ten-thousandths (0 when
/// `b` is 0: a missing rate counts as 0).
fn rate_e4(a: i128, b: i128) -> i128 {
    if b == 0 {
        0
    } else {
        div_half_up(a * 10_000, b)
    }
}

/// The agent score (`docs/metrics.md#agent-ranking`): each rate rounded half up to 4
/// decimals, then `round(100 × (0.5 × sla + 0.3 × resolution + 0.2 × volume))`, exactly:
/// with rates in ten-thousandths, `100 × Σ wᵢ·rᵢ/10⁴ = (5·sla + 3·res + 2·vol) / 1000`.
pub fn agent_score(sla: (i128, i128), resolution: (i128, i128), volume: (i128, i128)) -> i64 {
    let s = rate_e4(sla.0, sla.1);
    let r = rate_e4(resolution.0.min(resolution.1), resolution.1);
    let v = rate_e4(volume.0, volume.1);
    i64::try_from(div_half_up(5 * s + 3 * r + 2 * v, 1000)).expect("score")
}

/// `good` at 80 or more, `attention` below 50, `ok` between.
pub fn level(score: i64) -> &'static str {
    if score >= 80 {
        "good"
    } else if score < 50 {
        "attention"
    } else {
        "ok"
    }
}
