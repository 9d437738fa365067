//! The channel health fold: a channel's latest `channel_health` report in event time
//! is its health now. A late older report changes nothing; two reports at the same
//! instant are ordered by their content, so the choice is deterministic.

use schemas::metrics::Fact;

use crate::records::ChannelEvent;

/// Folds a channel's reports (sorted by time): the latest wins.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a ChannelEvent>) -> Option<&'a ChannelEvent> {
    events.into_iter().last()
}

/// The facts a channel contributes.
pub fn facts(
    account_id: u64,
    channel_id: &str,
    latest: Option<&ChannelEvent>,
    out: &mut Vec<Fact>,
) {
    if let Some(ev) = latest {
        out.push(Fact::ChannelHealth {
            account_id,
            channel_id: channel_id.to_owned(),
            state: ev.state,
            quality: ev.quality,
            queue_depth: ev.queue_depth,
            sent_per_minute_milli: ev.sent_per_minute_milli,
            at_ms: ev.at,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::event::{ChannelState, Quality};

    #[test]
    fn the_latest_report_in_event_time_wins_even_when_an_older_one_arrives_last() {
        let ev = |at, state, queue_depth| ChannelEvent {
            at,
            state,
            quality: Quality::Green,
            queue_depth,
            sent_per_minute_milli: 12_500,
        };
        let mut events = vec![
            ev(10, ChannelState::Degraded, 40),
            ev(5, ChannelState::Connected, 3),
        ];
        events.sort();
        let mut out = Vec::new();
        facts(1, "wa-1", fold(&events), &mut out);
        assert!(matches!(
            &out[..],
            [Fact::ChannelHealth {
                state: ChannelState::Degraded,
                queue_depth: 40,
                at_ms: 10,
                ..
            }]
        ));
    }
}
