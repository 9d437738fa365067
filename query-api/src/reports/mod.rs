//! The executive summary (`GET /api/reports/summary`): one page of the dashboard for
//! people who never open it.
//!
//! The summary computes nothing of its own. It reads the sections' bodies for the same
//! query and the same principal, all from one snapshot of the view store, so it holds
//! exactly the numbers the dashboard shows and only what the requester may see. Every highlight sentence is generated from
//! those numbers by a fixed rule and names the fields it was made from (`sources`,
//! `section#/json/pointer`), so each one can be traced to a metric. The rules are in
//! `docs/api.md`.

pub mod book;
pub mod http;
pub mod mail;
pub mod pdf;
pub mod schedule;
pub mod service;

pub use service::{Reports, ReportsConfig};

use serde_json::{Value, json};

use crate::AppState;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::sections::{self, Params};

/// A relative change at or beyond this share is a highlight (10 %).
const NOTABLE_CHANGE: f64 = 0.10;
/// How many of the largest changes, error codes and agents the summary lists.
const TOP: usize = 3;

/// Whether a rise of a figure is good news.
#[derive(Clone, Copy)]
enum Better {
    Higher,
    Lower,
    /// Volume: neither good nor bad by itself.
    Neither,
}

/// One figure of the summary: where it is read, and how it reads.
struct Figure {
    metric: &'static str,
    label: &'static str,
    unit: &'static str,
    better: Better,
    section: &'static str,
    current: &'static str,
    previous: &'static str,
}

/// The summary's figures, each a current and a previous value of a section body.
const FIGURES: &[Figure] = &[
    Figure {
        metric: "conversations_opened",
        label: "Conversations opened",
        unit: "",
        better: Better::Neither,
        section: "customer-load",
        current: "/opened/total",
        previous: "/opened/previous",
    },
    Figure {
        metric: "first_response_avg_s",
        label: "Average first response",
        unit: "s",
        better: Better::Lower,
        section: "kpi",
        current: "/first_response/current/avg_s",
        previous: "/first_response/previous/avg_s",
    },
    Figure {
        metric: "first_response_p90_s",
        label: "First response p90",
        unit: "s",
        better: Better::Lower,
        section: "kpi",
        current: "/first_response/current/p90_s",
        previous: "/first_response/previous/p90_s",
    },
    Figure {
        metric: "sla_compliance",
        label: "SLA compliance",
        unit: "ratio",
        better: Better::Higher,
        section: "conversation-effectiveness",
        current: "/sla/current/compliance",
        previous: "/sla/previous/compliance",
    },
    Figure {
        metric: "resolutions",
        label: "Resolutions",
        unit: "",
        better: Better::Higher,
        section: "conversation-effectiveness",
        current: "/resolution/resolve_events/total",
        previous: "/resolution/resolve_events_previous/total",
    },
    Figure {
        metric: "whatsapp_delivery_rate",
        label: "WhatsApp delivery rate",
        unit: "ratio",
        better: Better::Higher,
        section: "kpi",
        current: "/whatsapp_delivery/current/rate",
        previous: "/whatsapp_delivery/previous/rate",
    },
    Figure {
        metric: "leads",
        label: "Leads",
        unit: "",
        better: Better::Higher,
        section: "business-impact",
        current: "/leads/current",
        previous: "/leads/previous",
    },
];

/// The sections the summary reads.
const READS: &[&str] = &[
    "kpi",
    "conversation-effectiveness",
    "whatsapp-performance",
    "customer-load",
    "business-impact",
];

/// The summary body for `params` as `principal` may see it.
///
/// # Errors
/// Whatever a section refuses (a bad range, a filter out of the principal's scope).
pub fn summary(
    app: &AppState,
    params: &Params,
    now_ms: i64,
    principal: Option<&Principal>,
) -> Result<Value, ApiError> {
    let computed = sections::compute_together(app, READS, params, now_ms, principal)?;
    let bodies: serde_json::Map<String, Value> = READS
        .iter()
        .map(|s| (*s).to_owned())
        .zip(computed)
        .collect();
    Ok(build(&bodies))
}

/// The summary of the sections' `bodies` (by section name): pure, so its rules are
/// tested on bodies written by hand.
pub fn build(bodies: &serde_json::Map<String, Value>) -> Value {
    let read = |section: &str, pointer: &str| {
        bodies
            .get(section)
            .and_then(|b| b.pointer(pointer))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let kpi = &bodies["kpi"];
    let figures: Vec<Value> = FIGURES
        .iter()
        .map(|f| {
            let current = read(f.section, f.current);
            let previous = read(f.section, f.previous);
            let change = match (current.as_f64(), previous.as_f64()) {
                (Some(c), Some(p)) if p != 0.0 => Some(round4((c - p) / p)),
                _ => None,
            };
            json!({
                "metric": f.metric, "label": f.label, "unit": f.unit,
                "better": match f.better {
                    Better::Higher => "higher",
                    Better::Lower => "lower",
                    Better::Neither => "neither",
                },
                "current": current, "previous": previous, "change": change,
                "sources": [format!("{}#{}", f.section, f.current), format!("{}#{}", f.section, f.previous)],
            })
        })
        .collect();
    let mut largest: Vec<&Value> = figures.iter().filter(|f| f["change"].is_f64()).collect();
    largest.sort_by(|a, b| {
        let size = |v: &Value| v["change"].as_f64().unwrap_or_default().abs();
        size(b).total_cmp(&size(a)).then_with(|| {
            a["metric"]
                .as_str()
                .unwrap_or_default()
                .cmp(b["metric"].as_str().unwrap_or_default())
        })
    });
    let largest: Vec<Value> = largest.into_iter().take(TOP).cloned().collect();

    let mut highlights = Vec::new();
    for f in &largest {
        if let Some(h) = change_sentence(f) {
            highlights.push(h);
        }
    }
    let sla = read("conversation-effectiveness", "/sla");
    if let Some(h) = sla_sentence(&sla) {
        highlights.push(h);
    }
    let delivery = read("kpi", "/whatsapp_delivery");
    if delivery["alert"] == true
        && let Some(rate) = delivery["current"]["rate"].as_f64()
    {
        highlights.push(json!({
            "text": format!(
                "WhatsApp delivery is {}, below the alert threshold of {}.",
                percent(rate),
                percent(delivery["alert_below"].as_f64().unwrap_or_default())
            ),
            "sources": ["kpi#/whatsapp_delivery/current/rate", "kpi#/whatsapp_delivery/alert_below"],
        }));
    }
    let failures: Vec<Value> = read("whatsapp-performance", "/failures")
        .as_array()
        .map(|f| f.iter().take(TOP).cloned().collect())
        .unwrap_or_default();
    if let Some(top) = failures.first() {
        highlights.push(json!({
            "text": format!(
                "The most frequent WhatsApp error was {} ({}): {} message{}.",
                top["error_code"],
                top["error_title"].as_str().unwrap_or("no title"),
                top["count"],
                if top["count"] == 1 { "" } else { "s" }
            ),
            "sources": ["whatsapp-performance#/failures/0"],
        }));
    }
    let agents: Vec<Value> = read("conversation-effectiveness", "/agent_ranking/agents")
        .as_array()
        .cloned()
        .unwrap_or_default();
    // The top and the bottom of the ranking, never the same agent in both.
    let best: Vec<Value> = agents
        .iter()
        .take(TOP.min(agents.len().div_ceil(2)))
        .cloned()
        .collect();
    let worst: Vec<Value> = agents
        .iter()
        .rev()
        .take(TOP.min(agents.len() / 2))
        .cloned()
        .collect();
    if let (Some(b), Some(w)) = (agents.first(), agents.last())
        && agents.len() > 1
    {
        highlights.push(json!({
            "text": format!(
                "Highest agent score: {} ({}); lowest: {} ({}).",
                b["agent_id"].as_str().unwrap_or_default(),
                b["score"],
                w["agent_id"].as_str().unwrap_or_default(),
                w["score"]
            ),
            "sources": [
                "conversation-effectiveness#/agent_ranking/agents/0/score",
                format!("conversation-effectiveness#/agent_ranking/agents/{}/score", agents.len() - 1),
            ],
        }));
    }
    json!({
        "report": "summary",
        "account_id": kpi["account_id"],
        "timezone": kpi["timezone"],
        "range": kpi["range"],
        "previous_range": kpi["previous_range"],
        "progress": READS
            .iter()
            .filter_map(|s| bodies.get(*s)?.get("progress")?.as_i64())
            .min(),
        "figures": figures,
        "largest_changes": largest,
        "sla": sla,
        "whatsapp": {"delivery": delivery, "top_failures": failures},
        "agents": {"formula": read("conversation-effectiveness", "/agent_ranking/formula"),
                   "best": best, "worst": worst},
        "highlights": highlights,
    })
}

/// "First response p90 rose from 90 s to 130 s (+44.4%), worse." for a change of at
/// least [`NOTABLE_CHANGE`].
fn change_sentence(f: &Value) -> Option<Value> {
    let change = f["change"].as_f64()?;
    if change.abs() < NOTABLE_CHANGE {
        return None;
    }
    let unit = f["unit"].as_str().unwrap_or_default();
    let value = |v: &Value| match unit {
        "ratio" => v.as_f64().map_or("none".to_owned(), percent),
        "s" => format!("{v} s"),
        _ => v.to_string(),
    };
    let verdict = match (f["better"].as_str(), change > 0.0) {
        (Some("higher"), true) | (Some("lower"), false) => ", better",
        (Some("higher"), false) | (Some("lower"), true) => ", worse",
        _ => "",
    };
    Some(json!({
        "text": format!(
            "{} {} from {} to {} ({}{:.1}%){verdict}.",
            f["label"].as_str().unwrap_or_default(),
            if change > 0.0 { "rose" } else { "fell" },
            value(&f["previous"]),
            value(&f["current"]),
            if change > 0.0 { "+" } else { "" },
            change * 100.0
        ),
        "sources": f["sources"],
    }))
}

/// "4 of 5 first responses met the 5-minute target; 1 conversation breached it unanswered."
fn sla_sentence(sla: &Value) -> Option<Value> {
    let current = &sla["current"];
    let replied = current["replied"].as_u64()?;
    let breached = current["breached_unanswered"].as_u64().unwrap_or_default();
    if replied + breached == 0 {
        return None;
    }
    let target = sla["target_s"].as_u64().unwrap_or_default();
    let target = if target.is_multiple_of(60) {
        format!("{}-minute", target / 60)
    } else {
        format!("{target}-second")
    };
    let mut text = format!(
        "{} of {replied} first response{} met the {target} target",
        current["met"],
        if replied == 1 { "" } else { "s" }
    );
    if breached > 0 {
        text.push_str(&format!(
            "; {breached} conversation{} breached it unanswered",
            if breached == 1 { "" } else { "s" }
        ));
    }
    text.push('.');
    Some(json!({
        "text": text,
        "sources": [
            "conversation-effectiveness#/sla/current/met",
            "conversation-effectiveness#/sla/current/replied",
            "conversation-effectiveness#/sla/current/breached_unanswered",
            "conversation-effectiveness#/sla/target_s",
        ],
    }))
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// A ratio as a percentage with one decimal: 0.5714 → "57.1%".
fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Section bodies written by hand: only the fields the summary reads.
    fn bodies(
        agents: Value,
        previous_p90: Value,
        failures: Value,
    ) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert(
            "kpi".into(),
            json!({"account_id": 3, "timezone": "UTC", "progress": 10,
                "range": {"from": "a", "to": "b"}, "previous_range": {"from": "c", "to": "a"},
                "first_response": {"current": {"avg_s": 100.0, "p90_s": 105},
                                   "previous": {"avg_s": 100.0, "p90_s": previous_p90}},
                "whatsapp_delivery": {"current": {"rate": 0.95}, "previous": {"rate": 0.9},
                                      "alert_below": 0.9, "alert": false}}),
        );
        m.insert(
            "conversation-effectiveness".into(),
            json!({"progress": 9,
                "sla": {"target_s": 90, "current": {"met": 0, "replied": 0, "breached_unanswered": 0, "compliance": null},
                        "previous": {"compliance": null}},
                "resolution": {"resolve_events": {"total": 3}, "resolve_events_previous": {"total": 0}},
                "agent_ranking": {"formula": "f", "agents": agents}}),
        );
        m.insert("whatsapp-performance".into(), json!({"failures": failures}));
        m.insert(
            "customer-load".into(),
            json!({"opened": {"total": 5, "previous": 5}}),
        );
        m.insert(
            "business-impact".into(),
            json!({"leads": {"current": 1, "previous": 2}}),
        );
        m
    }

    fn texts(s: &Value) -> Vec<&str> {
        s["highlights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["text"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_change_from_zero_or_nothing_has_no_percentage_and_small_ones_are_not_highlights() {
        let s = build(&bodies(json!([]), Value::Null, json!([])));
        let change = |m: &str| {
            s["figures"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["metric"] == m)
                .unwrap()["change"]
                .clone()
        };
        // Resolutions 0 → 3 and a p90 with no previous value: no change.
        assert_eq!(change("resolutions"), Value::Null);
        assert_eq!(change("first_response_p90_s"), Value::Null);
        assert_eq!(change("sla_compliance"), Value::Null);
        // Leads 2 → 1 is −50 %; delivery 0.9 → 0.95 is +5.56 %: listed, not a highlight.
        assert_eq!(change("leads"), json!(-0.5));
        assert_eq!(change("whatsapp_delivery_rate"), json!(0.0556));
        assert_eq!(change("conversations_opened"), json!(0.0));
        // Nothing was due (no SLA line), no alert, no failures, no agents.
        assert_eq!(texts(&s), ["Leads fell from 2 to 1 (-50.0%), worse."]);
        assert_eq!(s["progress"], 9, "the lowest progress read");
        assert_eq!(s["agents"]["best"], json!([]));
    }

    #[test]
    fn one_agent_is_best_and_not_worst_and_a_seconds_target_reads_in_seconds() {
        let mut b = bodies(
            json!([{"agent_id": "a1", "score": 80}]),
            json!(100),
            json!([{"error_code": 131_026, "error_title": "Message undeliverable", "count": 2}]),
        );
        b["conversation-effectiveness"]["sla"]["current"] =
            json!({"met": 1, "replied": 1, "breached_unanswered": 0, "compliance": 1.0});
        let s = build(&b);
        assert_eq!(
            s["agents"]["best"],
            json!([{"agent_id": "a1", "score": 80}])
        );
        assert_eq!(s["agents"]["worst"], json!([]));
        assert_eq!(
            texts(&s),
            [
                "Leads fell from 2 to 1 (-50.0%), worse.",
                "1 of 1 first response met the 90-second target.",
                "The most frequent WhatsApp error was 131026 (Message undeliverable): 2 messages.",
            ]
        );
    }
}
