//! The agent presence fold: how long each agent spent in each status, and their
//! status now.
//!
//! An agent's status events, in event-time order, cut time into stretches: each status
//! holds from its event to the next one. Closed stretches become
//! [`Fact::AgentStatusPiece`]s, cut at UTC midnights; the last, open-ended stretch is the
//! agent's current status ([`Fact::AgentCurrentStatus`]), measured up to "now" at query
//! time. A late status event splits the stretch it falls in, exactly.
//!
//! [`fold`] is the definition over an agent's whole history (the batch recomputation
//! uses it). The dataflow computes the same stretches in levels, so an event's cost does
//! not grow with the agent's history: [`fold_day`] folds one UTC day's events into a
//! [`Block`] (its stretches and its ends), and [`fold_blocks`] joins consecutive blocks,
//! adding only the stretches that bridge them. A new event re-folds its day, then at
//! most a handful of block summaries per level.

use schemas::event::AgentStatus;
use schemas::metrics::Fact;
use schemas::time::bucket_of;

use serde::{Deserialize, Serialize};

use crate::records::{AgentEvent, Id, owned};

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

/// A status stretch `(start, end, status)`: the status held from `start` to `end`.
pub type Stretch = (i64, i64, AgentStatus);

/// A run of an agent's events (a day, or consecutive days): the stretches closed inside
/// it that no smaller block holds, and its ends, which are all a larger block needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Block {
    /// The first event's time.
    pub first_at: i64,
    /// The last event's time and status: the stretch still open at the block's end.
    pub last: (i64, AgentStatus),
    /// The team named by the block's latest event that named one.
    pub team_id: Option<Id>,
    /// Stretches closed inside the block and not held by a smaller block, in time order.
    pub stretches: Vec<Stretch>,
}

/// Folds one day's events (sorted by time) into a block; `None` for no events.
pub fn fold_day<'a>(events: impl IntoIterator<Item = &'a AgentEvent>) -> Option<Block> {
    let mut events = events.into_iter();
    let first = events.next()?;
    let mut block = Block {
        first_at: first.at,
        last: (first.at, first.status),
        team_id: first.team_id.clone(),
        stretches: Vec::new(),
    };
    for ev in events {
        let (start, status) = block.last;
        if ev.at > start {
            block.stretches.push((start, ev.at, status));
        }
        block.last = (ev.at, ev.status);
        if ev.team_id.is_some() {
            block.team_id.clone_from(&ev.team_id);
        }
    }
    Some(block)
}

/// Joins consecutive blocks (in time order) into one whose stretches are only those
/// bridging a block's last status to the next block's first event.
pub fn fold_blocks<'a>(blocks: impl IntoIterator<Item = &'a Block>) -> Option<Block> {
    let mut blocks = blocks.into_iter();
    let first = blocks.next()?;
    let mut joined = Block {
        first_at: first.first_at,
        last: first.last,
        team_id: first.team_id.clone(),
        stretches: Vec::new(),
    };
    for b in blocks {
        let (start, status) = joined.last;
        if b.first_at > start {
            joined.stretches.push((start, b.first_at, status));
        }
        joined.last = b.last;
        if b.team_id.is_some() {
            joined.team_id.clone_from(&b.team_id);
        }
    }
    Some(joined)
}

/// The facts an agent contributes.
pub fn facts(account_id: u64, agent_id: &str, p: &Presence, out: &mut Vec<Fact>) {
    for &stretch in &p.closed {
        piece_facts(account_id, agent_id, p.team_id.as_deref(), stretch, out);
    }
    if let Some(current) = p.current {
        out.push(current_fact(
            account_id,
            agent_id,
            p.team_id.as_deref(),
            current,
        ));
    }
}

/// A closed stretch's facts: one piece per UTC day it touches.
pub fn piece_facts(
    account_id: u64,
    agent_id: &str,
    team_id: Option<&str>,
    (start, end, status): Stretch,
    out: &mut Vec<Fact>,
) {
    let mut from = start;
    while from < end {
        let midnight = (from.div_euclid(DAY_MS) + 1) * DAY_MS;
        let to = end.min(midnight);
        out.push(Fact::AgentStatusPiece {
            account_id,
            bucket: bucket_of(from),
            agent_id: agent_id.to_owned(),
            team_id: team_id.map(str::to_owned),
            status,
            start_ms: from,
            end_ms: to,
        });
        from = to;
    }
}

/// The agent's current status: the open stretch `(since, status)`.
pub fn current_fact(
    account_id: u64,
    agent_id: &str,
    team_id: Option<&str>,
    (since_ms, status): (i64, AgentStatus),
) -> Fact {
    Fact::AgentCurrentStatus {
        account_id,
        agent_id: agent_id.to_owned(),
        team_id: team_id.map(str::to_owned),
        status,
        since_ms,
    }
}

/// The day an event time falls in (UTC), the leaf of the dataflow's levels.
pub fn day_of(at: i64) -> i64 {
    at.div_euclid(DAY_MS)
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
