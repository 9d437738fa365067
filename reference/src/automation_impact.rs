//! Automation impact (`docs/metrics.md#automation-impact`), and the per-conversation
//! facts the sections of this file's neighbours (agent productivity, business impact)
//! read too: [`Conv`], built by [`conversations`] from each conversation's events in
//! event-time order.

use std::collections::BTreeMap;

use schemas::event::{Assignee, Channel, Event, Payload, ResolvedBy};
use serde_json::{Value, json};

use crate::{Input, Range, div_half_up, grouped, ratio};

/// One conversation: its events in event-time order, and its first `conversation_opened`.
///
/// A conversation without any `conversation_opened` is not one ("an event for a
/// conversation not opened yet: held; counted once the `conversation_opened` arrives"),
/// so [`conversations`] leaves it out.
pub(crate) struct Conv<'a> {
    /// Every event naming the conversation, sorted by event time.
    pub events: Vec<&'a Event>,
    /// Event time of the first `conversation_opened`.
    pub opened_at: i64,
    /// Fields of that first `conversation_opened`.
    pub customer_id: &'a str,
    pub channel: Channel,
    pub inbox_id: &'a str,
    pub campaign_id: Option<&'a str>,
}

/// Every opened conversation of the account, by id.
pub(crate) fn conversations<'a>(events: &[&'a Event]) -> BTreeMap<String, Conv<'a>> {
    let mut out = BTreeMap::new();
    for (id, evs) in grouped(events, |e| e.conversation_id().map(str::to_owned)) {
        // Tickets and leads name a conversation too, but they are not its events.
        let evs: Vec<&Event> = evs
            .into_iter()
            .filter(|e| {
                !matches!(
                    e.payload,
                    Payload::TicketOpened { .. } | Payload::LeadCreated { .. }
                )
            })
            .collect();
        let first_open = evs.iter().find_map(|e| match &e.payload {
            Payload::ConversationOpened {
                customer_id,
                channel,
                inbox_id,
                campaign_id,
                ..
            } => Some((
                e.occurred_at_ms,
                customer_id.as_str(),
                *channel,
                inbox_id.as_str(),
                campaign_id.as_deref(),
            )),
            _ => None,
        });
        if let Some((opened_at, customer_id, channel, inbox_id, campaign_id)) = first_open {
            out.insert(
                id,
                Conv {
                    events: evs,
                    opened_at,
                    customer_id,
                    channel,
                    inbox_id,
                    campaign_id,
                },
            );
        }
    }
    out
}

impl<'a> Conv<'a> {
    /// The request's `channel` and `inbox_id` filters admit it (by its first open).
    pub fn admitted(&self, input: &Input<'_>) -> bool {
        input.query.channel.is_none_or(|c| c == self.channel)
            && input
                .query
                .inbox_id
                .as_deref()
                .is_none_or(|i| i == self.inbox_id)
    }

    /// The latest resolution, while the conversation is resolved now: walking the
    /// events in order, an open or a reopen clears it, a resolution sets it.
    pub fn resolved_now(&self) -> Option<(ResolvedBy, Option<&'a str>, i64)> {
        let mut now = None;
        for e in &self.events {
            match &e.payload {
                Payload::ConversationOpened { .. } | Payload::ConversationReopened { .. } => {
                    now = None;
                }
                Payload::ConversationResolved {
                    resolved_by,
                    agent_id,
                    ..
                } => now = Some((*resolved_by, agent_id.as_deref(), e.occurred_at_ms)),
                _ => {}
            }
        }
        now
    }

    /// Active now: opened or reopened and not resolved since.
    pub fn active_now(&self) -> bool {
        self.resolved_now().is_none()
    }

    /// The latest `conversation_assigned`: who holds it by its last assignment.
    pub fn last_assignment(&self) -> Option<(Assignee, Option<&'a str>)> {
        self.events.iter().rev().find_map(|e| match &e.payload {
            Payload::ConversationAssigned {
                assignee, agent_id, ..
            } => Some((*assignee, agent_id.as_deref())),
            _ => None,
        })
    }

    /// Ever assigned to the bot.
    pub fn ever_bot(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e.payload,
                Payload::ConversationAssigned {
                    assignee: Assignee::Bot,
                    ..
                }
            )
        })
    }

    /// Ever escalated.
    pub fn escalated(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e.payload, Payload::ConversationEscalated { .. }))
    }

    /// Has at least one message with `sender = agent`.
    pub fn has_agent_message(&self) -> bool {
        self.first_reply().is_some()
    }

    /// Has at least one `auto_reply` message.
    pub fn has_auto_reply(&self) -> bool {
        self.events.iter().any(|e| {
            matches!(
                e.payload,
                Payload::MessageCreated {
                    auto_reply: true,
                    ..
                }
            )
        })
    }

    /// Position in `events` and event of the first message with `sender = agent`.
    pub fn first_reply(&self) -> Option<(usize, &'a Event)> {
        self.events.iter().enumerate().find_map(|(i, e)| {
            matches!(
                e.payload,
                Payload::MessageCreated {
                    sender: schemas::event::Sender::Agent,
                    ..
                }
            )
            .then_some((i, *e))
        })
    }

    /// The replying agent of the first reply.
    pub fn first_reply_agent(&self) -> Option<&'a str> {
        match &self.first_reply()?.1.payload {
            Payload::MessageCreated { agent_id, .. } => agent_id.as_deref(),
            _ => None,
        }
    }

    /// The start of the human wait, as for FRT: the open, or — when the bot was
    /// assigned before any human reply (before position `before`) — the bot's
    /// hand-over: the first escalation or assignment to an agent after the bot took
    /// it, before `before`. `Err(())` when the bot was assigned before `before` and
    /// handed over only after it (or never).
    fn wait_start(&self, before: usize) -> Result<i64, ()> {
        let bot = self.events[..before].iter().position(|e| {
            matches!(
                e.payload,
                Payload::ConversationAssigned {
                    assignee: Assignee::Bot,
                    ..
                }
            )
        });
        let Some(bot) = bot else {
            return Ok(self.opened_at);
        };
        self.events[bot + 1..before]
            .iter()
            .find(|e| {
                matches!(
                    e.payload,
                    Payload::ConversationEscalated { .. }
                        | Payload::ConversationAssigned {
                            assignee: Assignee::Agent,
                            ..
                        }
                )
            })
            .map(|e| e.occurred_at_ms)
            .ok_or(())
    }

    /// First response: (event time of the first agent message, FRT in whole seconds).
    ///
    /// FRT = reply − start (open, or the bot's hand-over), negative → 0, floored to
    /// seconds; an agent writing while the bot holds it before any hand-over has FRT 0.
    pub fn frt(&self) -> Option<(i64, i64)> {
        let (pos, reply) = self.first_reply()?;
        let frt_ms = match self.wait_start(pos) {
            Ok(start) => (reply.occurred_at_ms - start).max(0),
            Err(()) => 0,
        };
        Some((reply.occurred_at_ms, frt_ms.div_euclid(1000)))
    }

    /// Human handling time (whole seconds) of a conversation with humans resolved now:
    /// from the start of the human wait (as for FRT) to its resolution now.
    ///
    /// Assumption (docs silent): a bot conversation with an agent message and no
    /// hand-over at all starts its human wait at that first agent message (its FRT is 0).
    fn handling_s(&self) -> Option<i64> {
        let (_, _, resolved_at) = self.resolved_now()?;
        let (pos, reply) = self.first_reply()?;
        let start = self.wait_start(pos).unwrap_or(reply.occurred_at_ms);
        Some((resolved_at - start).max(0).div_euclid(1000))
    }

    /// Intent: the first `intent_detected` in event time.
    fn intent(&self) -> Option<&'a str> {
        self.events.iter().find_map(|e| match &e.payload {
            Payload::IntentDetected { intent, .. } => Some(intent.as_str()),
            _ => None,
        })
    }

    /// The latest `csat_submitted` score in event time.
    fn csat(&self) -> Option<u8> {
        self.events.iter().rev().find_map(|e| match &e.payload {
            Payload::CsatSubmitted { score, .. } => Some(*score),
            _ => None,
        })
    }

    /// Resolved now by the bot, and no agent message ever.
    fn bot_only(&self) -> bool {
        matches!(self.resolved_now(), Some((ResolvedBy::Bot, _, _))) && !self.has_agent_message()
    }
}

/// `{count, of, rate}` with the rate to 4 decimals (`null` when `of` is 0).
pub(crate) fn rate(count: i64, of: i64) -> Value {
    json!({"count": count, "of": of, "rate": ratio(i128::from(count), i128::from(of), 4)})
}

/// The section's numbers over the conversations opened in one range.
struct Period {
    total: i64,
    bot_only: i64,
    with_humans: i64,
    other: i64,
    bot: i64,
    escalated: i64,
    dropped: i64,
    auto_reply: i64,
    auto_reply_ok: i64,
    handled_n: i64,
    handled_sum_s: i128,
    csat_bot: Vec<u8>,
    csat_human: Vec<u8>,
}

fn period(convs: &[&Conv<'_>]) -> Period {
    let mut p = Period {
        total: 0,
        bot_only: 0,
        with_humans: 0,
        other: 0,
        bot: 0,
        escalated: 0,
        dropped: 0,
        auto_reply: 0,
        auto_reply_ok: 0,
        handled_n: 0,
        handled_sum_s: 0,
        csat_bot: vec![],
        csat_human: vec![],
    };
    for c in convs {
        p.total += 1;
        let resolved = c.resolved_now();
        if c.bot_only() {
            p.bot_only += 1;
            p.csat_bot.extend(c.csat());
        } else if c.has_agent_message() {
            p.with_humans += 1;
            p.csat_human.extend(c.csat());
            if let Some(s) = c.handling_s() {
                p.handled_n += 1;
                p.handled_sum_s += i128::from(s);
            }
        } else {
            p.other += 1;
        }
        if c.ever_bot() {
            p.bot += 1;
            if c.escalated() {
                p.escalated += 1;
            }
            if matches!(resolved, Some((ResolvedBy::System, _, _))) {
                p.dropped += 1;
            }
        }
        if c.has_auto_reply() {
            p.auto_reply += 1;
            if resolved.is_some() && !c.escalated() {
                p.auto_reply_ok += 1;
            }
        }
    }
    p
}

fn csat_group(scores: &[u8]) -> Value {
    let n = scores.len() as i128;
    let sum: i128 = scores.iter().map(|s| i128::from(*s)).sum();
    let satisfied = scores.iter().filter(|s| **s >= 4).count() as i128;
    json!({"responses": n, "average": ratio(sum, n, 2), "satisfaction": ratio(satisfied, n, 4)})
}

fn split(p: &Period) -> Value {
    json!({"total": p.total, "bot_only": p.bot_only, "with_humans": p.with_humans,
        "other": p.other, "bot_only_share": ratio(p.bot_only.into(), p.total.into(), 4)})
}

/// Time saved: bot-only resolutions × the average human handling time.
///
/// Assumption: `saved_s` is the exact product rounded half up to whole seconds
/// (not the product of the 0.1 s-rounded average).
fn time_saved(p: &Period) -> Value {
    let n = i128::from(p.handled_n);
    let avg = ratio(p.handled_sum_s, n, 1);
    let saved = (n > 0).then(|| div_half_up(i128::from(p.bot_only) * p.handled_sum_s, n));
    json!({"bot_only_resolutions": p.bot_only, "human_conversations": p.handled_n,
        "avg_human_handling_s": avg, "saved_s": saved})
}

/// The section body.
pub fn body(input: &Input<'_>, range: Range) -> Value {
    let events = crate::account_events(input);
    let all = conversations(&events);
    let admitted: Vec<&Conv<'_>> = all.values().filter(|c| c.admitted(input)).collect();
    let opened_in = |r: Range| -> Vec<&Conv<'_>> {
        admitted
            .iter()
            .copied()
            .filter(|c| r.contains(c.opened_at))
            .collect()
    };
    let cur_convs = opened_in(range);
    let prev_convs = opened_in(range.previous());
    let cur = period(&cur_convs);
    let prev = period(&prev_convs);

    // Top intents: the ten most frequent in R (ties: the intent's name).
    let mut intents: BTreeMap<&str, (Vec<&Conv<'_>>, i64)> = BTreeMap::new();
    for c in &cur_convs {
        if let Some(i) = c.intent() {
            intents.entry(i).or_default().0.push(c);
        }
    }
    for c in &prev_convs {
        if let Some(i) = c.intent()
            && let Some(row) = intents.get_mut(i)
        {
            row.1 += 1;
        }
    }
    let mut rows: Vec<(&str, Vec<&Conv<'_>>, i64)> =
        intents.into_iter().map(|(i, (c, p))| (i, c, p)).collect();
    rows.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    rows.truncate(10);
    let top_intents: Vec<Value> = rows
        .iter()
        .map(|(intent, convs, previous)| {
            let p = period(convs);
            json!({"intent": intent, "conversations": p.total, "previous_conversations": previous,
                "bot_resolution": rate(p.bot_only, p.total), "escalation": rate(p.escalated, p.bot)})
        })
        .collect();

    let mut body = crate::agent_productivity::header(input, range, "automation-impact");
    let fields = json!({
        "conversations": {"current": split(&cur), "previous": split(&prev)},
        "escalation": {"current": rate(cur.escalated, cur.bot), "previous": rate(prev.escalated, prev.bot)},
        "drop_off": {"current": rate(cur.dropped, cur.bot), "previous": rate(prev.dropped, prev.bot)},
        "auto_reply_success": {"current": rate(cur.auto_reply_ok, cur.auto_reply),
            "previous": rate(prev.auto_reply_ok, prev.auto_reply)},
        "top_intents": top_intents,
        "time_saved": {"current": time_saved(&cur), "previous": time_saved(&prev)},
        "csat": {
            "current": {"bot_only": csat_group(&cur.csat_bot), "with_humans": csat_group(&cur.csat_human)},
            "previous": {"bot_only": csat_group(&prev.csat_bot), "with_humans": csat_group(&prev.csat_human)},
        },
    });
    if let (Value::Object(b), Value::Object(f)) = (&mut body, fields) {
        b.extend(f);
    }
    body
}

#[cfg(test)]
mod tests {
    use schemas::event::Event;
    use serde_json::{Value, json};

    use crate::Settings;
    use crate::agent_productivity::testing::{day, ev};

    fn open(c: &str, inbox: &str) -> Value {
        json!({"type": "conversation_opened", "conversation_id": c, "customer_id": "u1",
            "channel": "whatsapp", "inbox_id": inbox, "origin": "inbound"})
    }
    fn bot(c: &str) -> Value {
        json!({"type": "conversation_assigned", "conversation_id": c, "assignee": "bot"})
    }
    fn agent(c: &str) -> Value {
        json!({"type": "conversation_assigned", "conversation_id": c, "assignee": "agent", "agent_id": "a1"})
    }
    fn auto_reply(m: &str, c: &str) -> Value {
        json!({"type": "message_created", "message_id": m, "conversation_id": c, "direction": "outbound",
            "sender": "bot", "channel": "whatsapp", "auto_reply": true})
    }
    fn agent_msg(m: &str, c: &str) -> Value {
        json!({"type": "message_created", "message_id": m, "conversation_id": c, "direction": "outbound",
            "sender": "agent", "agent_id": "a1", "channel": "whatsapp"})
    }
    fn intent(c: &str, i: &str) -> Value {
        json!({"type": "intent_detected", "conversation_id": c, "intent": i, "confidence": 0.9})
    }
    fn escalated(c: &str) -> Value {
        json!({"type": "conversation_escalated", "conversation_id": c})
    }
    fn resolved(c: &str, by: &str) -> Value {
        json!({"type": "conversation_resolved", "conversation_id": c, "resolved_by": by})
    }
    fn csat(c: &str, score: u8) -> Value {
        json!({"type": "csat_submitted", "conversation_id": c, "score": score})
    }

    /// The events of `tests/automation_impact.rs`.
    fn golden() -> Vec<Event> {
        let d = |t: &str| format!("2026-11-20T{t}Z");
        let y = |t: &str| format!("2026-11-19T{t}Z");
        vec![
            ev("c1o", &d("09:00:00"), open("c1", "i1")),
            ev("c1b", &d("09:00:01"), bot("c1")),
            ev("c1m", &d("09:00:02"), auto_reply("m1", "c1")),
            ev("c1i", &d("09:00:05"), intent("c1", "billing")),
            ev("c1r", &d("09:05:00"), resolved("c1", "bot")),
            ev("c1c", &d("09:06:00"), csat("c1", 5)),
            ev("c2o", &d("10:00:00"), open("c2", "i1")),
            ev("c2b", &d("10:00:01"), bot("c2")),
            ev("c2m", &d("10:00:02"), auto_reply("m2", "c2")),
            ev("c2i", &d("10:00:05"), intent("c2", "billing")),
            ev("c2e", &d("10:02:00"), escalated("c2")),
            ev("c2a", &d("10:03:00"), agent("c2")),
            ev("c2h", &d("10:05:00"), agent_msg("m3", "c2")),
            ev("c2r", &d("10:32:00"), resolved("c2", "agent")),
            ev("c2c", &d("10:40:00"), csat("c2", 3)),
            ev("c3o", &d("11:00:00"), open("c3", "i1")),
            ev("c3b", &d("11:00:01"), bot("c3")),
            ev("c3i", &d("11:00:05"), intent("c3", "order_status")),
            ev("c3r", &d("11:30:00"), resolved("c3", "system")),
            ev("c4o", &d("12:00:00"), open("c4", "i2")),
            ev("c4a", &d("12:01:00"), agent("c4")),
            ev("c4h", &d("12:02:00"), agent_msg("m4", "c4")),
            ev("c4r", &d("12:20:00"), resolved("c4", "agent")),
            ev("c4c", &d("12:30:00"), csat("c4", 4)),
            ev("c5o", &d("13:00:00"), open("c5", "i1")),
            ev("c5b", &d("13:00:01"), bot("c5")),
            ev("c5i", &d("13:00:05"), intent("c5", "order_status")),
            ev("c5r", &d("13:10:00"), resolved("c5", "bot")),
            ev("c5c2", &d("13:20:00"), csat("c5", 4)),
            ev("c5c1", &d("13:15:00"), csat("c5", 2)),
            ev("c6o", &d("14:00:00"), open("c6", "i1")),
            ev("c6b", &d("14:00:01"), bot("c6")),
            ev("c6m", &d("14:00:02"), auto_reply("m6", "c6")),
            ev("y1o", &y("10:00:00"), open("y1", "i1")),
            ev("y1b", &y("10:00:01"), bot("y1")),
            ev("y1r", &y("10:05:00"), resolved("y1", "bot")),
            ev("y2o", &y("11:00:00"), open("y2", "i1")),
            ev("y2b", &y("11:00:01"), bot("y2")),
            ev("y2e", &y("11:01:00"), escalated("y2")),
            ev("y2h", &y("11:02:00"), agent_msg("m7", "y2")),
            ev("y2r", &y("11:11:00"), resolved("y2", "agent")),
        ]
    }

    const NOW: &str = "2026-11-21T12:00:00Z";

    #[test]
    fn worked_example() {
        let events = golden();
        let settings = Settings::default();
        let body = day("automation-impact", &events, &settings, NOW, |_| {});
        assert_eq!(body["section"], "automation-impact");
        assert_eq!(
            body["conversations"],
            json!({
                "current": {"total": 6, "bot_only": 2, "with_humans": 2, "other": 2, "bot_only_share": 0.3333},
                "previous": {"total": 2, "bot_only": 1, "with_humans": 1, "other": 0, "bot_only_share": 0.5},
            })
        );
        assert_eq!(
            body["escalation"],
            json!({"current": {"count": 1, "of": 5, "rate": 0.2}, "previous": {"count": 1, "of": 2, "rate": 0.5}})
        );
        assert_eq!(
            body["drop_off"],
            json!({"current": {"count": 1, "of": 5, "rate": 0.2}, "previous": {"count": 0, "of": 2, "rate": 0.0}})
        );
        assert_eq!(
            body["auto_reply_success"],
            json!({"current": {"count": 1, "of": 3, "rate": 0.3333}, "previous": {"count": 0, "of": 0, "rate": null}})
        );
        assert_eq!(
            body["top_intents"],
            json!([
                {"intent": "billing", "conversations": 2, "previous_conversations": 0,
                 "bot_resolution": {"count": 1, "of": 2, "rate": 0.5}, "escalation": {"count": 1, "of": 2, "rate": 0.5}},
                {"intent": "order_status", "conversations": 2, "previous_conversations": 0,
                 "bot_resolution": {"count": 1, "of": 2, "rate": 0.5}, "escalation": {"count": 0, "of": 2, "rate": 0.0}},
            ])
        );
        assert_eq!(
            body["time_saved"],
            json!({
                "current": {"bot_only_resolutions": 2, "human_conversations": 2, "avg_human_handling_s": 1500.0, "saved_s": 3000},
                "previous": {"bot_only_resolutions": 1, "human_conversations": 1, "avg_human_handling_s": 600.0, "saved_s": 600},
            })
        );
        assert_eq!(
            body["csat"],
            json!({
                "current": {
                    "bot_only": {"responses": 2, "average": 4.5, "satisfaction": 1.0},
                    "with_humans": {"responses": 2, "average": 3.5, "satisfaction": 0.5},
                },
                "previous": {
                    "bot_only": {"responses": 0, "average": null, "satisfaction": null},
                    "with_humans": {"responses": 0, "average": null, "satisfaction": null},
                },
            })
        );
        let inbox2 = day("automation-impact", &events, &settings, NOW, |q| {
            q.inbox_id = Some("i2".into());
        });
        assert_eq!(
            inbox2["conversations"]["current"],
            json!({"total": 1, "bot_only": 0, "with_humans": 1, "other": 0, "bot_only_share": 0.0})
        );
        assert_eq!(inbox2["escalation"]["current"]["of"], 0);
    }

    #[test]
    fn frt_follows_the_hand_over() {
        // metrics.md: opened 10:00, bot 10:00:01, an agent writes 10:04, the bot
        // escalates 10:06: FRT 0. And the worked example of "Worked example": a
        // hand-over at 11:05 and a reply at 11:15 give 600 s.
        let d = |t: &str| format!("2026-11-20T{t}Z");
        let events = [
            ev("o", &d("10:00:00"), open("c", "i1")),
            ev("b", &d("10:00:01"), bot("c")),
            ev("m", &d("10:04:00"), agent_msg("m", "c")),
            ev("e", &d("10:06:00"), escalated("c")),
            ev("o2", &d("11:00:00"), open("c2", "i1")),
            ev("b2", &d("11:00:01"), bot("c2")),
            ev("e2", &d("11:05:00"), escalated("c2")),
            ev("m2", &d("11:15:00"), agent_msg("m2", "c2")),
        ];
        let refs: Vec<&Event> = events.iter().collect();
        let convs = super::conversations(&refs);
        assert_eq!(convs["c"].frt().unwrap().1, 0);
        assert_eq!(convs["c2"].frt().unwrap().1, 600);
    }

    /// Human handling time starts where the human wait starts, as for FRT: the open
    /// when the bot took the conversation only after the first human reply (the product
    /// measured from the later hand-over: 420 s), and — an assumption, the docs are
    /// silent — the first agent message when the bot held it and never handed it over
    /// (that reply's FRT is 0; the product measured from the open: 600 s).
    #[test]
    fn handling_starts_with_the_human_wait() {
        let d = |t: &str| format!("2026-11-20T{t}Z");
        let events = [
            // c: open 10:00, agent 10:01, bot 10:02, agent assigned 10:03, resolved 10:10.
            ev("o", &d("10:00:00"), open("c", "i1")),
            ev("m", &d("10:01:00"), agent_msg("m", "c")),
            ev("b", &d("10:02:00"), bot("c")),
            ev("a", &d("10:03:00"), agent("c")),
            ev("r", &d("10:10:00"), resolved("c", "agent")),
            // c2: open 11:00, bot 11:00:01, agent writes 11:04, resolved 11:10.
            ev("o2", &d("11:00:00"), open("c2", "i1")),
            ev("b2", &d("11:00:01"), bot("c2")),
            ev("m2", &d("11:04:00"), agent_msg("m2", "c2")),
            ev("r2", &d("11:10:00"), resolved("c2", "agent")),
        ];
        let refs: Vec<&Event> = events.iter().collect();
        let convs = super::conversations(&refs);
        assert_eq!(convs["c"].handling_s(), Some(600));
        assert_eq!(convs["c"].frt().unwrap().1, 60);
        assert_eq!(convs["c2"].handling_s(), Some(360));
        assert_eq!(convs["c2"].frt().unwrap().1, 0);
        let body = day(
            "automation-impact",
            &events,
            &Settings::default(),
            NOW,
            |_| {},
        );
        assert_eq!(body["time_saved"]["current"]["avg_human_handling_s"], 480.0);
    }
}
