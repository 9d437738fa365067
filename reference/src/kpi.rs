//! Reference: the KPI strip (`docs/metrics.md#kpi-strip`).

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime, TimeZone};
use schemas::event::{Channel, DeliveryStatus, Direction, Payload, Priority};
use serde_json::{Value, json};

use crate::{
    Holder, Input, Range, account_events, admits_agent, conversations, floor_quarter, frt_stats,
    header, local, midnight, nearest_rank, ratio, rfc3339, sla_status,
};

/// The section body.
pub fn body(input: &Input<'_>, range: Range) -> Value {
    let events = account_events(input);
    let q = input.query;
    let convs = conversations(&events);

    // Active conversations now, by holder (filters: channel, inbox).
    let (mut unassigned, mut bot, mut agent) = (0, 0, 0);
    for c in convs.iter().filter(|c| c.admits(q)) {
        let s = c.state_at(i64::MAX);
        if s.active {
            match s.holder {
                Holder::Unassigned => unassigned += 1,
                Holder::Bot => bot += 1,
                Holder::Agent => agent += 1,
            }
        }
    }

    // First response time: first replies in the range (filters: channel, inbox, the
    // replying agent, the team at the reply).
    let frt_in = |r: Range| -> Vec<i64> {
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
    };
    let current = frt_in(range);
    let previous = frt_in(range.previous());
    let target = input.settings.sla_first_response_s;

    // WhatsApp delivery.
    let (cur_delivery, prev_delivery) = {
        // The delivery rate lists no filter (docs/metrics.md): the `channel` filter is
        // for first responses and "Messages today".
        let messages = whatsapp_outbound(&events);
        let count = |r: Range| {
            let (mut delivered, mut with_status) = (0i64, 0i64);
            for m in messages.values() {
                if r.contains(m.created) && !m.statuses.is_empty() {
                    with_status += 1;
                    if m.statuses
                        .iter()
                        .any(|s| matches!(s, DeliveryStatus::Delivered | DeliveryStatus::Read))
                    {
                        delivered += 1;
                    }
                }
            }
            json!({
                "delivered": delivered,
                "with_status": with_status,
                "rate": ratio(i128::from(delivered), i128::from(with_status), 4),
            })
        };
        (count(range), count(range.previous()))
    };
    let alert_below = input.settings.whatsapp_delivery_alert_below;
    let alert = cur_delivery["rate"]
        .as_f64()
        .is_some_and(|rate| rate < alert_below);

    // Open tickets now, by the priority of the latest `ticket_opened`.
    type Ticket = (Option<(i64, Priority)>, bool);
    let mut tickets: BTreeMap<&str, Ticket> = BTreeMap::new();
    for e in &events {
        match &e.payload {
            Payload::TicketOpened {
                ticket_id,
                priority,
                ..
            } => {
                let t = tickets.entry(ticket_id).or_default();
                if t.0.is_none_or(|(at, _)| e.occurred_at_ms > at) {
                    t.0 = Some((e.occurred_at_ms, *priority));
                }
            }
            Payload::TicketResolved { ticket_id } => {
                tickets.entry(ticket_id).or_default().1 = true;
            }
            _ => {}
        }
    }
    let mut open = BTreeMap::new();
    for (opened, resolved) in tickets.values() {
        if let (Some((_, p)), false) = (opened, resolved) {
            *open.entry(p.as_str()).or_insert(0i64) += 1;
        }
    }
    let total_open: i64 = open.values().sum();
    let n = |p: &str| open.get(p).copied().unwrap_or(0);

    // Messages since local midnight today (on the clock), and yesterday from midnight
    // to the same local time of day as the end of the 15-minute slot holding the last
    // complete instant (progress - 1); nothing yesterday while the progress has not
    // reached today; a wall time the clocks skipped yesterday moves to the next
    // quarter-hour that exists.
    let tz = input.settings.timezone;
    let today = local(input.now_ms, tz).date_naive();
    let since = midnight(today, tz);
    let yesterday = today - Duration::days(1);
    let slot_end = floor_quarter(input.progress_ms - 1) + 15 * 60 * 1000;
    let slot_end_wall: NaiveDateTime = local(slot_end, tz).naive_local();
    let prev_end = if slot_end <= since {
        midnight(yesterday, tz)
    } else if slot_end_wall.date() > today {
        since
    } else {
        let mut wall = yesterday.and_time(slot_end_wall.time());
        loop {
            if let Some(t) = tz.from_local_datetime(&wall).earliest() {
                break t.timestamp_millis();
            }
            wall += Duration::minutes(15);
        }
    };
    let messages = |r: Range| {
        let (mut inbound, mut outbound) = (0i64, 0i64);
        for e in &events {
            if let Payload::MessageCreated {
                direction, channel, ..
            } = &e.payload
                && r.contains(e.occurred_at_ms)
                && q.channel.is_none_or(|c| c == *channel)
            {
                match direction {
                    Direction::Inbound => inbound += 1,
                    Direction::Outbound => outbound += 1,
                }
            }
        }
        json!({"inbound": inbound, "outbound": outbound, "total": inbound + outbound})
    };
    let cur_messages = messages(Range {
        from: since,
        to: input.progress_ms + 1,
    });
    let prev_messages = messages(Range {
        from: midnight(yesterday, tz),
        to: prev_end,
    });

    let mut body = header(input, range, "kpi");
    body.insert(
        "active_conversations".into(),
        json!({
            "total": unassigned + bot + agent,
            "unassigned": unassigned,
            "bot": bot,
            "agent": agent,
        }),
    );
    body.insert(
        "first_response".into(),
        json!({
            "current": frt_stats(&current),
            "previous": frt_stats(&previous),
            "sla_target_s": target,
            "sla_status": sla_status(nearest_rank(&current, 9, 10), target),
        }),
    );
    body.insert(
        "whatsapp_delivery".into(),
        json!({
            "current": cur_delivery,
            "previous": prev_delivery,
            "alert_below": alert_below,
            "alert": alert,
        }),
    );
    body.insert(
        "open_tickets".into(),
        json!({
            "total": total_open,
            "low": n("low"),
            "medium": n("medium"),
            "high": n("high"),
            "urgent": n("urgent"),
        }),
    );
    body.insert(
        "messages_today".into(),
        json!({
            "since": rfc3339(since),
            "current": cur_messages,
            "previous": prev_messages,
        }),
    );
    Value::Object(body)
}

/// An outbound WhatsApp message: its creation (earliest `message_created`) and every
/// status it reported, whenever.
#[derive(Debug, Clone)]
pub struct Outbound {
    /// Earliest `message_created`.
    pub created: i64,
    /// The broadcast it belongs to.
    pub broadcast_id: Option<String>,
    /// Every status reported, in event-time order.
    pub statuses: Vec<DeliveryStatus>,
}

/// The outbound `whatsapp` messages, by id.
pub fn whatsapp_outbound(events: &[&schemas::event::Event]) -> BTreeMap<String, Outbound> {
    let mut out: BTreeMap<String, Outbound> = BTreeMap::new();
    let mut sorted: Vec<_> = events.to_vec();
    sorted.sort_by_key(|e| e.occurred_at_ms);
    for e in &sorted {
        if let Payload::MessageCreated {
            message_id,
            direction: Direction::Outbound,
            channel: Channel::Whatsapp,
            broadcast_id,
            ..
        } = &e.payload
        {
            out.entry(message_id.clone()).or_insert(Outbound {
                created: e.occurred_at_ms,
                broadcast_id: broadcast_id.clone(),
                statuses: Vec::new(),
            });
        }
    }
    for e in &sorted {
        if let Payload::MessageStatus {
            message_id, status, ..
        } = &e.payload
            && let Some(m) = out.get_mut(message_id)
        {
            m.statuses.push(*status);
        }
    }
    out
}
