//! Reference: customer load (`docs/metrics.md#customer-load`).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Timelike};
use serde_json::{Value, json};

use crate::{
    Input, Range, Slot, account_events, admits_agent, conversations, floor_quarter, frt_stats,
    header, local, ratio, rfc3339, slot_start, slots,
};

const DAY_MS: i64 = 24 * 3600 * 1000;

/// `opened`'s slot: `granularity`, or the default by local dates.
fn granularity(input: &Input<'_>, range: Range) -> Slot {
    match input.query.granularity.as_deref().and_then(Slot::parse) {
        Some(g) => g,
        None => crate::default_slot(range, input.settings.timezone),
    }
}

/// The section body.
pub fn body(input: &Input<'_>, range: Range) -> Value {
    let events = account_events(input);
    let q = input.query;
    let tz = input.settings.timezone;
    let all = conversations(&events);
    // Channel and inbox filters on everything.
    let convs: Vec<_> = all.iter().filter(|c| c.admits(q)).collect();
    let opened_in = |r: Range| convs.iter().filter(|c| r.contains(c.opened_at)).count() as i64;

    // Conversations opened, per slot.
    let slot = granularity(input, range);
    let points: Vec<Value> = slots(range, slot, tz)
        .into_iter()
        .map(|s| json!({"start": rfc3339(slot_start(s.from, slot, tz)), "count": opened_in(s)}))
        .collect();

    // Hour of day and the heatmap (local).
    let mut hours = [0i64; 24];
    let mut cells = vec![vec![0i64; 24]; 7];
    for c in convs.iter().filter(|c| range.contains(c.opened_at)) {
        let t = local(c.opened_at, tz);
        hours[t.hour() as usize] += 1;
        cells[t.weekday().num_days_from_monday() as usize][t.hour() as usize] += 1;
    }
    let mut by_count: Vec<u32> = (0..24).filter(|h| hours[*h as usize] > 0).collect();
    by_count.sort_by(|a, b| hours[*b as usize].cmp(&hours[*a as usize]).then(a.cmp(b)));
    let peak: Vec<u32> = by_count.into_iter().take(3).collect();
    let hour_of_day: Vec<Value> = (0..24u32)
        .map(|h| json!({"hour": h, "count": hours[h as usize], "peak": peak.contains(&h)}))
        .collect();

    // New vs returning: a customer's first conversation ever (earliest open of any of
    // its conversations, unfiltered).
    let mut first_ever: BTreeMap<&str, i64> = BTreeMap::new();
    for c in &all {
        let t = first_ever.entry(&c.customer_id).or_insert(c.opened_at);
        *t = (*t).min(c.opened_at);
    }
    let customers = |r: Range| {
        let set: BTreeSet<&str> = convs
            .iter()
            .filter(|c| r.contains(c.opened_at))
            .map(|c| c.customer_id.as_str())
            .collect();
        let new = set.iter().filter(|u| r.contains(first_ever[*u])).count();
        json!({"total": set.len(), "new": new, "returning": set.len() - new})
    };

    // Wait time: first replies in the range, by whether the reply's local hour is a peak.
    let (mut at_peak, mut off_peak) = (Vec::new(), Vec::new());
    for c in &convs {
        if let Some(reply) = c.first_reply()
            && range.contains(reply.at)
            && admits_agent(q, reply.agent_id.as_deref(), reply.team_id.as_deref())
        {
            if peak.contains(&local(reply.at, tz).hour()) {
                at_peak.push(reply.frt_s);
            } else {
                off_peak.push(reply.frt_s);
            }
        }
    }

    // Forecast: the next 24 local hours from the current one on the pipeline clock.
    let mut start = floor_quarter(input.progress_ms);
    while !Slot::Hour.starts_at(start, tz) {
        start -= 15 * 60 * 1000;
    }
    let forecast_range = Range {
        from: start,
        to: start + 27 * 3600 * 1000,
    };
    let history_from = all.iter().map(|c| c.opened_at).min().map(floor_quarter);
    let forecast: Vec<Value> = slots(forecast_range, Slot::Hour, tz)
        .into_iter()
        .take(24)
        .map(|h| {
            let (mut weeks, mut sum) = (0i128, 0i128);
            for k in 1..=4 {
                let back = Range {
                    from: h.from - 7 * k * DAY_MS,
                    to: h.to - 7 * k * DAY_MS,
                };
                if history_from.is_some_and(|first| back.to > first) {
                    weeks += 1;
                    sum += i128::from(opened_in(back));
                }
            }
            json!({
                "start": rfc3339(h.from),
                "expected": ratio(sum, weeks, 2),
                "weeks": weeks,
            })
        })
        .collect();

    let mut body = header(input, range, "customer-load");
    body.insert(
        "opened".into(),
        json!({
            "total": opened_in(range),
            "previous": opened_in(range.previous()),
            "granularity": slot.name(),
            "points": points,
        }),
    );
    body.insert("hour_of_day".into(), hour_of_day.into());
    body.insert("peak_hours".into(), json!(peak));
    body.insert(
        "customers".into(),
        json!({"current": customers(range), "previous": customers(range.previous())}),
    );
    body.insert(
        "wait_time".into(),
        json!({"peak": frt_stats(&at_peak), "off_peak": frt_stats(&off_peak)}),
    );
    body.insert(
        "heatmap".into(),
        json!({
            "weekdays": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            "cells": cells,
        }),
    );
    body.insert("forecast".into(), json!({"points": forecast}));
    Value::Object(body)
}
