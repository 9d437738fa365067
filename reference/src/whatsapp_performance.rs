//! WhatsApp performance (`docs/metrics.md#whatsapp-performance`).

use std::collections::BTreeMap;

use schemas::event::{Channel, DeliveryStatus, Direction, Event, Payload};
use serde_json::{Value, json};

use crate::{Input, Range, div_half_up, grouped, ratio, rfc3339};

/// One outbound WhatsApp message: its first `message_created` and all its statuses.
struct Msg<'a> {
    created_at: i64,
    broadcast_id: Option<&'a str>,
    /// Furthest of sent (1) < delivered (2) < read (3); 0 for none.
    furthest: u8,
    /// Reported `failed` at least once.
    failed: bool,
    /// Reported any status.
    with_status: bool,
    /// The earliest `failed` status: (event time, error code, error title).
    first_failed: Option<(i64, Option<i64>, Option<&'a str>)>,
}

/// Every outbound WhatsApp message of the account, by id.
fn messages<'a>(events: &[&'a Event]) -> BTreeMap<String, Msg<'a>> {
    let created = grouped(events, |e| match &e.payload {
        Payload::MessageCreated { message_id, .. } => Some(message_id.clone()),
        _ => None,
    });
    let statuses = grouped(events, |e| match &e.payload {
        Payload::MessageStatus { message_id, .. } => Some(message_id.clone()),
        _ => None,
    });
    let mut out = BTreeMap::new();
    for (id, evs) in created {
        let first = evs[0];
        let Payload::MessageCreated {
            direction,
            channel,
            broadcast_id,
            ..
        } = &first.payload
        else {
            unreachable!()
        };
        if *direction != Direction::Outbound || *channel != Channel::Whatsapp {
            continue;
        }
        let mut m = Msg {
            created_at: first.occurred_at_ms,
            broadcast_id: broadcast_id.as_deref(),
            furthest: 0,
            failed: false,
            with_status: false,
            first_failed: None,
        };
        for s in statuses.get(&id).map(Vec::as_slice).unwrap_or_default() {
            let Payload::MessageStatus {
                status,
                error_code,
                error_title,
                ..
            } = &s.payload
            else {
                unreachable!()
            };
            m.with_status = true;
            match status {
                DeliveryStatus::Sent => m.furthest = m.furthest.max(1),
                DeliveryStatus::Delivered => m.furthest = m.furthest.max(2),
                DeliveryStatus::Read => m.furthest = m.furthest.max(3),
                DeliveryStatus::Failed => {
                    m.failed = true;
                    if m.first_failed.is_none() {
                        m.first_failed =
                            Some((s.occurred_at_ms, *error_code, error_title.as_deref()));
                    }
                }
            }
        }
        out.insert(id, m);
    }
    out
}

fn funnel(msgs: &[&Msg<'_>]) -> (Value, Value) {
    let created = msgs.len() as i128;
    let count = |f: &dyn Fn(&Msg<'_>) -> bool| msgs.iter().filter(|m| f(m)).count() as i128;
    let sent = count(&|m| m.furthest >= 1);
    let delivered = count(&|m| m.furthest >= 2);
    let read = count(&|m| m.furthest >= 3);
    let failed = count(&|m| m.failed);
    let with_status = count(&|m| m.with_status);
    (
        json!({"created": created, "sent": sent, "delivered": delivered, "read": read,
            "failed": failed, "with_status": with_status, "read_rate": ratio(read, delivered, 4)}),
        json!({"delivered": delivered, "with_status": with_status,
            "rate": ratio(delivered, with_status, 4)}),
    )
}

/// Category of a WhatsApp Cloud API error code (the table in `docs/metrics.md`).
fn category(code: Option<i64>) -> &'static str {
    match code {
        Some(131_026 | 131_021 | 131_050 | 131_045) => "recipient",
        Some(131_047 | 131_049 | 130_472 | 368 | 131_031) => "policy",
        Some(4 | 80_007 | 130_429 | 131_048 | 131_056) => "rate_limit",
        Some(132_000..=132_999) => "template",
        Some(100 | 131_008 | 131_009 | 131_051 | 131_052 | 131_053) => "content",
        Some(0 | 3 | 10 | 190 | 200..=299 | 131_005 | 131_042 | 133_000..=133_999) => "account",
        Some(1 | 2 | 131_000 | 131_016) => "platform",
        _ => "unknown",
    }
}

/// `x` rounded half up to thousandths, exactly from its binary value (`x ≥ 0`).
fn thousandths(x: f64) -> i128 {
    if x == 0.0 {
        return 0;
    }
    // x = mantissa × 2^exp exactly.
    let bits = x.to_bits();
    let raw_exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = i128::from(bits & ((1u64 << 52) - 1));
    let (mantissa, exp) = if raw_exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1 << 52), raw_exp - 1075)
    };
    if exp >= 0 {
        // An integer; beyond i128 at 1000× only for rates no sender reports.
        mantissa
            .checked_shl(exp as u32)
            .map_or(i128::MAX, |v| v * 1000)
    } else if exp <= -100 {
        0 // mantissa × 1000 < 2^63, far below half of 2^100
    } else {
        div_half_up(mantissa * 1000, 1i128 << (-exp))
    }
}

/// The section body.
pub fn body(input: &Input<'_>, range: Range) -> Value {
    let events = crate::account_events(input);
    let prev = range.previous();
    // Messages carry only the channel filter, and these figures are WhatsApp: any other
    // channel empties the message and broadcast figures.
    let wa = input.query.channel.is_none_or(|c| c == Channel::Whatsapp);
    let msgs = if wa {
        messages(&events)
    } else {
        BTreeMap::new()
    };
    let created_in = |r: Range| -> Vec<&Msg<'_>> {
        msgs.values().filter(|m| r.contains(m.created_at)).collect()
    };
    let (cur_msgs, prev_msgs) = (created_in(range), created_in(prev));
    let (funnel_cur, delivery_cur) = funnel(&cur_msgs);
    let (funnel_prev, delivery_prev) = funnel(&prev_msgs);
    let alert_below = input.settings.whatsapp_delivery_alert_below;
    let alert = delivery_cur["rate"]
        .as_f64()
        .is_some_and(|rate| rate < alert_below);

    // Broadcasts, by their earliest `broadcast_sent`.
    let mut rows = vec![];
    let mut totals = [(0i128, 0i128, 0i128); 2];
    if wa {
        for (id, sends) in grouped(&events, |e| match &e.payload {
            Payload::BroadcastSent { broadcast_id, .. } => Some(broadcast_id.clone()),
            _ => None,
        }) {
            let first = sends[0];
            let Payload::BroadcastSent {
                campaign_id,
                recipients,
                ..
            } = &first.payload
            else {
                unreachable!()
            };
            let t = first.occurred_at_ms;
            let own: Vec<&Msg<'_>> = msgs
                .values()
                .filter(|m| m.broadcast_id == Some(id.as_str()))
                .collect();
            let delivered = own.iter().filter(|m| m.furthest >= 2).count() as i128;
            let recipients = i128::from(*recipients);
            for (k, r) in [range, prev].into_iter().enumerate() {
                if r.contains(t) {
                    totals[k].0 += 1;
                    totals[k].1 += recipients;
                    totals[k].2 += delivered;
                }
            }
            if range.contains(t) {
                rows.push((
                    t,
                    id.clone(),
                    json!({
                        "broadcast_id": id, "campaign_id": campaign_id, "sent_at": rfc3339(t),
                        "recipients": recipients, "messages": own.len(), "delivered": delivered,
                        "read": own.iter().filter(|m| m.furthest >= 3).count(),
                        "failed": own.iter().filter(|m| m.failed).count(),
                        "success_rate": ratio(delivered, recipients, 4),
                    }),
                ));
            }
        }
    }
    // Latest first (assumption for equal times: by broadcast id).
    rows.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let total = |(n, recipients, delivered): (i128, i128, i128)| {
        json!({"broadcasts": n, "recipients": recipients, "delivered": delivered,
            "success_rate": ratio(delivered, recipients, 4)})
    };

    // Failures by the error code of the earliest `failed` status: a row per code failing
    // in R or in the previous period (a code that stopped failing shows count 0).
    // code → (count in R, count in previous, latest (time, title) in R, the same in the
    // previous period). The title shown is the latest one in R, or, for a code failing
    // only in the previous period, the latest one there.
    type Titled<'a> = Option<(i64, &'a str)>;
    type Failure<'a> = (i64, i64, Titled<'a>, Titled<'a>);
    fn latest<'a>(seen: &mut Titled<'a>, at: i64, title: Option<&'a str>) {
        if let Some(title) = title
            && seen.is_none_or(|(t, _)| t <= at)
        {
            *seen = Some((at, title));
        }
    }
    let mut failures: BTreeMap<Option<i64>, Failure<'_>> = BTreeMap::new();
    for m in &cur_msgs {
        if let Some((at, code, title)) = m.first_failed {
            let f = failures.entry(code).or_default();
            f.0 += 1;
            latest(&mut f.2, at, title);
        }
    }
    for m in &prev_msgs {
        if let Some((at, code, title)) = m.first_failed {
            let f = failures.entry(code).or_default();
            f.1 += 1;
            latest(&mut f.3, at, title);
        }
    }
    let mut failures: Vec<(Option<i64>, Failure<'_>)> = failures.into_iter().collect();
    // Most frequent first; ties by code (assumption).
    failures.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(&b.0)));
    let failures: Vec<Value> = failures
        .into_iter()
        .map(|(code, (count, previous, title, title_before))| {
            let title = title.or(title_before).map(|(_, t)| t);
            json!({"error_code": code, "error_title": title,
                "category": category(code), "count": count, "previous": previous})
        })
        .collect();

    // Channel health now: the latest report per channel in event time (never filtered).
    let mut channels = vec![];
    let (mut queue, mut rate_e3, mut unhealthy) = (0i128, 0i128, 0i64);
    for (id, reports) in grouped(&events, |e| match &e.payload {
        Payload::ChannelHealth { channel_id, .. } => Some(channel_id.clone()),
        _ => None,
    }) {
        let last = reports[reports.len() - 1];
        let Payload::ChannelHealth {
            state,
            quality,
            queue_depth,
            sent_per_minute,
            ..
        } = &last.payload
        else {
            unreachable!()
        };
        let spm = thousandths(*sent_per_minute);
        queue += i128::from(*queue_depth);
        rate_e3 += spm;
        if state.as_str() != "connected" || quality.as_str() != "green" {
            unhealthy += 1;
        }
        channels.push(json!({
            "channel_id": id, "state": state.as_str(), "quality": quality.as_str(),
            "queue_depth": queue_depth, "sent_per_minute": spm as f64 / 1000.0,
            "reported_at": rfc3339(last.occurred_at_ms),
            "age_s": (input.progress_ms - last.occurred_at_ms).div_euclid(1000),
        }));
    }

    let mut body = crate::agent_productivity::header(input, range, "whatsapp-performance");
    let fields = json!({
        "funnel": {"current": funnel_cur, "previous": funnel_prev},
        "delivery": {"current": delivery_cur, "previous": delivery_prev,
            "alert_below": alert_below, "alert": alert},
        "broadcasts": {
            "rows": rows.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>(),
            "current": total(totals[0]),
            "previous": total(totals[1]),
        },
        "failures": failures,
        "channels_now": {"channels": channels, "queue_depth": queue,
            "sent_per_minute": rate_e3 as f64 / 1000.0, "unhealthy": unhealthy},
    });
    if let (Value::Object(b), Value::Object(f)) = (&mut body, fields) {
        b.extend(f);
    }
    body
}

#[cfg(test)]
mod tests {
    use schemas::event::{Channel, Event};
    use serde_json::{Value, json};

    use crate::Settings;
    use crate::agent_productivity::testing::{day, ev, ms};

    fn out(m: &str, broadcast: Option<&str>) -> Value {
        let mut v = json!({"type": "message_created", "message_id": m, "conversation_id": "c1",
            "direction": "outbound", "sender": "agent", "agent_id": "a1", "channel": "whatsapp"});
        if let Some(b) = broadcast {
            v["broadcast_id"] = b.into();
        }
        v
    }
    fn status(m: &str, s: &str) -> Value {
        json!({"type": "message_status", "message_id": m, "status": s})
    }
    fn failed(m: &str, code: i64, title: &str) -> Value {
        json!({"type": "message_status", "message_id": m, "status": "failed", "error_code": code, "error_title": title})
    }
    fn health(ch: &str, state: &str, quality: &str, queue: u64, rate: f64) -> Value {
        json!({"type": "channel_health", "channel_id": ch, "state": state, "quality": quality,
            "queue_depth": queue, "sent_per_minute": rate})
    }

    /// The events of `tests/whatsapp_performance.rs`, the late ones last.
    fn golden() -> Vec<Event> {
        let d = |t: &str| format!("2026-11-20T{t}Z");
        let y = |t: &str| format!("2026-11-19T{t}Z");
        vec![
            ev("m1", &d("09:00:00"), out("m1", None)),
            ev("m1s", &d("09:00:01"), status("m1", "sent")),
            ev("m1d", &d("09:00:02"), status("m1", "delivered")),
            ev("m1r", &d("09:05:00"), status("m1", "read")),
            ev("m2", &d("09:10:00"), out("m2", None)),
            ev("m2r", &d("09:11:00"), status("m2", "read")),
            ev("m3", &d("10:00:00"), out("m3", None)),
            ev("m3s", &d("10:00:01"), status("m3", "sent")),
            ev("m3d", &d("10:00:05"), status("m3", "delivered")),
            ev("m4", &d("10:30:00"), out("m4", None)),
            ev("m4s", &d("10:30:01"), status("m4", "sent")),
            ev(
                "m4f",
                &d("10:31:00"),
                failed("m4", 131_047, "Re-engagement message"),
            ),
            ev("m5", &d("11:00:00"), out("m5", None)),
            ev(
                "m5f",
                &d("11:00:09"),
                failed("m5", 131_026, "Message undeliverable"),
            ),
            ev("m6", &d("11:30:00"), out("m6", None)),
            ev(
                "m6f",
                &d("11:30:09"),
                failed("m6", 131_026, "Message undeliverable"),
            ),
            ev("m7", &d("12:00:00"), out("m7", None)),
            ev(
                "m8",
                &d("12:00:00"),
                json!({"type": "message_created", "message_id": "m8", "conversation_id": "c1",
                "direction": "inbound", "sender": "customer", "channel": "whatsapp"}),
            ),
            ev(
                "m9",
                &d("12:00:00"),
                json!({"type": "message_created", "message_id": "m9", "conversation_id": "c2",
                "direction": "outbound", "sender": "agent", "channel": "webchat"}),
            ),
            ev("m9s", &d("12:00:01"), status("m9", "sent")),
            ev(
                "b1",
                &d("14:00:00"),
                json!({"type": "broadcast_sent", "broadcast_id": "b1", "campaign_id": "spring", "recipients": 4}),
            ),
            ev("m10", &d("14:00:00"), out("m10", Some("b1"))),
            ev("m10d", &d("14:00:03"), status("m10", "delivered")),
            ev("m11", &d("14:00:00"), out("m11", Some("b1"))),
            ev("m11r", &d("14:20:00"), status("m11", "read")),
            ev("m12", &d("14:00:00"), out("m12", Some("b1"))),
            ev(
                "m12f",
                &d("14:00:04"),
                failed("m12", 131_049, "Meta chose not to deliver"),
            ),
            ev("p1", &y("10:00:00"), out("p1", None)),
            ev("p1d", &y("10:00:05"), status("p1", "delivered")),
            ev("p2", &y("11:00:00"), out("p2", None)),
            ev(
                "p2f",
                &y("11:00:05"),
                failed("p2", 131_047, "Re-engagement message"),
            ),
            ev(
                "b0",
                &y("15:00:00"),
                json!({"type": "broadcast_sent", "broadcast_id": "b0", "recipients": 10}),
            ),
            ev("p3", &y("15:00:00"), out("p3", Some("b0"))),
            ev("p3d", &y("15:00:05"), status("p3", "delivered")),
            ev(
                "h1",
                &d("13:00:00"),
                health("wa-1", "connected", "green", 5, 12.5),
            ),
            ev(
                "h2",
                &d("15:00:00"),
                health("wa-1", "degraded", "yellow", 40, 3.25),
            ),
            ev(
                "h3",
                &d("14:30:00"),
                health("wa-2", "connected", "green", 2, 1.0),
            ),
            // Late, older in event time: they change nothing.
            ev("m2s", &d("09:20:00"), status("m2", "sent")),
            ev(
                "h0",
                &d("08:00:00"),
                health("wa-1", "connected", "green", 0, 0.0),
            ),
            // A redelivery changes nothing either.
            ev("m7", &d("12:00:00"), out("m7", None)),
        ]
    }

    const NOW: &str = "2026-11-21T12:00:00Z";

    #[test]
    fn worked_example() {
        let events = golden();
        let settings = Settings::default();
        let body = day("whatsapp-performance", &events, &settings, NOW, |_| {});
        assert_eq!(body["section"], "whatsapp-performance");
        assert_eq!(
            body["funnel"],
            json!({
                "current": {"created": 10, "sent": 6, "delivered": 5, "read": 3, "failed": 4, "with_status": 9, "read_rate": 0.6},
                "previous": {"created": 3, "sent": 2, "delivered": 2, "read": 0, "failed": 1, "with_status": 3, "read_rate": 0.0},
            })
        );
        assert_eq!(
            body["delivery"],
            json!({
                "current": {"delivered": 5, "with_status": 9, "rate": 0.5556},
                "previous": {"delivered": 2, "with_status": 3, "rate": 0.6667},
                "alert_below": 0.9, "alert": true,
            })
        );
        assert_eq!(
            body["failures"],
            json!([
                {"error_code": 131_026, "error_title": "Message undeliverable", "category": "recipient", "count": 2, "previous": 0},
                {"error_code": 131_047, "error_title": "Re-engagement message", "category": "policy", "count": 1, "previous": 1},
                {"error_code": 131_049, "error_title": "Meta chose not to deliver", "category": "policy", "count": 1, "previous": 0},
            ])
        );
        assert_eq!(
            body["broadcasts"],
            json!({
                "rows": [{"broadcast_id": "b1", "campaign_id": "spring", "sent_at": "2026-11-20T14:00:00.000Z",
                          "recipients": 4, "messages": 3, "delivered": 2, "read": 1, "failed": 1, "success_rate": 0.5}],
                "current": {"broadcasts": 1, "recipients": 4, "delivered": 2, "success_rate": 0.5},
                "previous": {"broadcasts": 1, "recipients": 10, "delivered": 1, "success_rate": 0.1},
            })
        );
        let age = |t: &str| (ms(NOW) - ms(t)) / 1000;
        assert_eq!(
            body["channels_now"],
            json!({
                "channels": [
                    {"channel_id": "wa-1", "state": "degraded", "quality": "yellow", "queue_depth": 40,
                     "sent_per_minute": 3.25, "reported_at": "2026-11-20T15:00:00.000Z",
                     "age_s": age("2026-11-20T15:00:00Z")},
                    {"channel_id": "wa-2", "state": "connected", "quality": "green", "queue_depth": 2,
                     "sent_per_minute": 1.0, "reported_at": "2026-11-20T14:30:00.000Z",
                     "age_s": age("2026-11-20T14:30:00Z")},
                ],
                "queue_depth": 42, "sent_per_minute": 4.25, "unhealthy": 1,
            })
        );

        // Another channel empties the message and broadcast figures, not channel health.
        let webchat = day("whatsapp-performance", &events, &settings, NOW, |q| {
            q.channel = Some(Channel::Webchat);
        });
        assert_eq!(webchat["funnel"]["current"]["created"], 0);
        assert_eq!(webchat["broadcasts"]["rows"], json!([]));
        assert_eq!(webchat["failures"], json!([]));
        assert_eq!(webchat["channels_now"]["queue_depth"], 42);
        let whatsapp = day("whatsapp-performance", &events, &settings, NOW, |q| {
            q.channel = Some(Channel::Whatsapp);
        });
        assert_eq!(whatsapp["funnel"], body["funnel"]);
    }

    #[test]
    fn send_rates_round_half_up_exactly() {
        assert_eq!(super::thousandths(0.0625), 63); // an exact tie in binary
        assert_eq!(super::thousandths(3.25), 3250);
        assert_eq!(super::thousandths(0.0004999), 0);
        assert_eq!(super::thousandths(0.1), 100);
        assert_eq!(super::thousandths(1e-300), 0);
    }

    #[test]
    fn categories() {
        use super::category;
        assert_eq!(category(Some(131_045)), "recipient");
        assert_eq!(category(Some(132_500)), "template");
        assert_eq!(category(Some(250)), "account");
        assert_eq!(category(Some(131_016)), "platform");
        assert_eq!(category(Some(130_429)), "rate_limit");
        assert_eq!(category(Some(131_053)), "content");
        assert_eq!(category(Some(7)), "unknown");
        assert_eq!(category(None), "unknown");
    }
}
