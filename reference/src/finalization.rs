//! Which delivered events the lateness horizon refuses (docs/architecture.md,
//! "Finalization"), recomputed with plain loops from the definition:
//!
//! - an account's watermark is the latest event time accepted so far, except that one
//!   event moves it at most one hour forward;
//! - a conversation is closed when its latest open, resolution or reopen (in event-time
//!   order; at the same instant a reopen comes after a resolution) is a resolution; a
//!   ticket once a resolution is known; a message and a broadcast always; leads never
//!   finalize;
//! - an entity is final when it is closed and its latest accepted event is more than
//!   the horizon before its account's watermark;
//! - an event is refused when any conversation, message, ticket or broadcast it names
//!   is final at the moment it arrives, and a `conversation_opened` is refused when it
//!   is more than the horizon before its account's watermark (it could otherwise come
//!   before a customer's first conversation that is already final).
//!
//! No sweep, no tombstones: every check walks the entity's accepted events again
//! (found by entity, so that a long history is checked in time linear in its length).

use std::collections::{BTreeMap, HashMap};

use schemas::event::{Event, Payload};

const HOUR_MS: i64 = 3_600_000;

/// The entities an event names, as `(kind, id)`.
fn entities(e: &Event) -> Vec<(&'static str, String)> {
    match &e.payload {
        Payload::MessageCreated {
            conversation_id,
            message_id,
            ..
        } => vec![
            ("conversation", conversation_id.clone()),
            ("message", message_id.clone()),
        ],
        Payload::MessageStatus { message_id, .. } => vec![("message", message_id.clone())],
        Payload::TicketOpened { ticket_id, .. } | Payload::TicketResolved { ticket_id } => {
            vec![("ticket", ticket_id.clone())]
        }
        Payload::BroadcastSent { broadcast_id, .. } => vec![("broadcast", broadcast_id.clone())],
        Payload::ConversationOpened {
            conversation_id, ..
        }
        | Payload::ConversationAssigned {
            conversation_id, ..
        }
        | Payload::ConversationEscalated {
            conversation_id, ..
        }
        | Payload::ConversationResolved {
            conversation_id, ..
        }
        | Payload::ConversationReopened { conversation_id }
        | Payload::IntentDetected {
            conversation_id, ..
        }
        | Payload::CsatSubmitted {
            conversation_id, ..
        } => vec![("conversation", conversation_id.clone())],
        _ => vec![],
    }
}

fn closed(kind: &str, events: &[&Event]) -> bool {
    match kind {
        "message" | "broadcast" => true,
        "ticket" => events
            .iter()
            .any(|e| matches!(e.payload, Payload::TicketResolved { .. })),
        _ => {
            // (time, order at the same instant, closes)
            let mut latest: Option<(i64, u8, bool)> = None;
            for e in events {
                let step = match e.payload {
                    Payload::ConversationOpened { .. } => (e.occurred_at_ms, 0, false),
                    Payload::ConversationResolved { .. } => (e.occurred_at_ms, 1, true),
                    Payload::ConversationReopened { .. } => (e.occurred_at_ms, 2, false),
                    _ => continue,
                };
                if latest.is_none_or(|l| (step.0, step.1) >= (l.0, l.1)) {
                    latest = Some(step);
                }
            }
            latest.is_some_and(|l| l.2)
        }
    }
}

/// The indices in `delivered` (in delivery order) of the events a horizon of
/// `horizon_ms` refuses.
pub fn refused(delivered: &[Event], horizon_ms: i64) -> Vec<usize> {
    let mut watermark: BTreeMap<u64, i64> = BTreeMap::new();
    // Each entity's accepted events: `(account, kind, id)` → events.
    let mut accepted: HashMap<(u64, &'static str, String), Vec<&Event>> = HashMap::new();
    let mut out = Vec::new();
    for (i, e) in delivered.iter().enumerate() {
        let is_final = |kind: &'static str, id: &str| {
            let Some(w) = watermark.get(&e.account_id) else {
                return false;
            };
            let Some(mine) = accepted.get(&(e.account_id, kind, id.to_owned())) else {
                return false;
            };
            let Some(latest) = mine.iter().map(|a| a.occurred_at_ms).max() else {
                return false;
            };
            closed(kind, mine) && latest < w - horizon_ms
        };
        let old_open = matches!(e.payload, Payload::ConversationOpened { .. })
            && watermark
                .get(&e.account_id)
                .is_some_and(|w| e.occurred_at_ms < w - horizon_ms);
        let named = entities(e);
        if old_open || named.iter().any(|(kind, id)| is_final(kind, id)) {
            out.push(i);
            continue;
        }
        for (kind, id) in named {
            accepted
                .entry((e.account_id, kind, id))
                .or_default()
                .push(e);
        }
        let w = watermark.entry(e.account_id).or_insert(e.occurred_at_ms);
        *w = (*w).max(e.occurred_at_ms.min(*w + HOUR_MS));
    }
    out
}
