//! The agent presence fold: how long each agent spent in each status, and their
//! status now.
//!
//! An agent's status events, in event-time order, cut time into stretches: each status
//! holds from its event to the next one. Closed stretches become
//! [`Fact::AgentStatusPiece`]s, cut at UTC midnights; the last, open-ended stretch is the
//! agent's current status ([`Fact::AgentCurrentStatus`]), measured up to "now" at query
//! time. A late status event splits the stretch it falls in, exactly.

use schemas::event::AgentStatus;
use schemas::metrics::Fact;
use schemas::time::bucket_of;

use crate::records::{AgentEvent, owned};

const DAY_MS: i64 = 86_400_000;

/// Closed stretches `(start, end, status)` and the open last one `(start, status)`,
/// with the team last named.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// Closed stretches, in time order.
    pub closed: Vec<(i64, i64, AgentStatus)>,
    /// The current stretch.
    pub current: Option<(i64, AgentStatus)>,
    /// The team named by the latest event that named one.
    pub team_id: Option<String>,
}

/// Folds an agent's events, which must be sorted by time.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a AgentEvent>) -> Presence {
    let mut p = Presence::default();
    for ev in events {
        if let Some((start, status)) = p.current.take()
            && ev.at > start
        {
            p.closed.push((start, ev.at, status));
        }
        p.current = Some((ev.at, ev.status));
        if ev.team_id.is_some() {
            p.team_id = owned(ev.team_id.as_ref());
        }
    }
    p
}

/// The facts an agent contributes.
pub fn facts(account_id: u64, agent_id: &str, p: &Presence, out: &mut Vec<Fact>) {
    for &(start, end, status) in &p.closed {
        let mut from = start;
        while from < end {
            let midnight = (from.div_euclid(DAY_MS) + 1) * DAY_MS;
            let to = end.min(midnight);
            out.push(Fact::AgentStatusPiece {
                account_id,
                bucket: bucket_of(from),
                agent_id: agent_id.to_owned(),
                team_id: p.team_id.clone(),
                status,
                start_ms: from,
                end_ms: to,
            });
            from = to;
        }
    }
    if let Some((since_ms, status)) = p.current {
        out.push(Fact::AgentCurrentStatus {
            account_id,
            agent_id: agent_id.to_owned(),
            team_id: p.team_id.clone(),
            status,
            since_ms,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: i64, status: AgentStatus) -> AgentEvent {
        AgentEvent {
            at,
            status,
            team_id: Some("t".into()),
        }
    }

    #[test]
    fn stretches_are_cut_at_utc_midnight_and_the_last_is_current() {
        let mut events = vec![
            ev(DAY_MS - 1_000, AgentStatus::Online),
            ev(DAY_MS + 5_000, AgentStatus::Away),
        ];
        events.sort();
        let p = fold(&events);
        assert_eq!(
            p.closed,
            vec![(DAY_MS - 1_000, DAY_MS + 5_000, AgentStatus::Online)]
        );
        let mut out = Vec::new();
        facts(1, "a", &p, &mut out);
        let pieces: Vec<_> = out
            .iter()
            .filter_map(|f| match f {
                Fact::AgentStatusPiece {
                    start_ms, end_ms, ..
                } => Some((*start_ms, *end_ms)),
                _ => None,
            })
            .collect();
        assert_eq!(
            pieces,
            vec![(DAY_MS - 1_000, DAY_MS), (DAY_MS, DAY_MS + 5_000)]
        );
        assert!(out.iter().any(|f| matches!(f, Fact::AgentCurrentStatus { status: AgentStatus::Away, since_ms, .. } if *since_ms == DAY_MS + 5_000)));
    }
}
