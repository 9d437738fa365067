//! The broadcast fold: each broadcast once, at its earliest `broadcast_sent`, with that
//! event's campaign and recipients. How many of its messages were delivered comes from
//! the message fold ([`Fact::BroadcastMessage`]); the API divides one by the other.

use schemas::metrics::Fact;
use schemas::time::bucket_of;

use crate::records::{BroadcastEvent, owned};

/// Folds a broadcast's events (sorted by time): the earliest send wins.
pub fn fold<'a>(
    events: impl IntoIterator<Item = &'a BroadcastEvent>,
) -> Option<&'a BroadcastEvent> {
    events.into_iter().next()
}

/// The facts a broadcast contributes.
pub fn facts(
    account_id: u64,
    broadcast_id: &str,
    sent: Option<&BroadcastEvent>,
    out: &mut Vec<Fact>,
) {
    if let Some(ev) = sent {
        out.push(Fact::Broadcast {
            account_id,
            bucket: bucket_of(ev.at),
            sent_at_ms: ev.at,
            broadcast_id: broadcast_id.to_owned(),
            campaign_id: owned(ev.campaign_id.as_ref()),
            recipients: ev.recipients,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_send_counts_once() {
        let ev = |at, recipients| BroadcastEvent {
            at,
            campaign_id: None,
            recipients,
        };
        let mut events = vec![ev(5_000_000, 900), ev(1_000, 1_000)];
        events.sort();
        let mut out = Vec::new();
        facts(1, "b", fold(&events), &mut out);
        assert_eq!(
            out,
            vec![Fact::Broadcast {
                account_id: 1,
                bucket: 0,
                sent_at_ms: 1_000,
                broadcast_id: "b".into(),
                campaign_id: None,
                recipients: 1_000,
            }]
        );
    }
}
