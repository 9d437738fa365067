//! Batch recomputation of the fact multiset from a list of events: deduplicate by
//! `event_id`, group by entity, sort by event time, fold. The incremental dataflow
//! must always agree with this, for any arrival order and any duplicates.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schemas::Event;
use schemas::metrics::Fact;

use crate::metrics::{messages, response_time, tickets};
use crate::records::Routed;

/// The facts of `events`, as `fact → multiplicity`.
pub fn facts(events: &[Event]) -> HashMap<Fact, i64> {
    let mut seen = BTreeSet::new();
    let mut routed = Routed::default();
    for e in events {
        if seen.insert((e.account_id, e.event_id.clone())) {
            routed.push(e.clone());
        }
    }
    let mut out = Vec::new();
    let mut convs: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for (k, v) in routed.conversations {
        convs.entry(k).or_default().push(v);
    }
    for ((account, _), mut evs) in convs {
        evs.sort();
        evs.dedup();
        if let Some(s) = response_time::fold(&evs) {
            response_time::facts(account, &s, &mut out);
        }
    }
    let mut msgs: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for (k, v) in routed.messages {
        msgs.entry(k).or_default().push(v);
    }
    for ((account, _), mut evs) in msgs {
        evs.sort();
        evs.dedup();
        messages::facts(account, &messages::fold(&evs), &mut out);
    }
    let mut ticks: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for (k, v) in routed.tickets {
        ticks.entry(k).or_default().push(v);
    }
    for ((account, _), mut evs) in ticks {
        evs.sort();
        evs.dedup();
        tickets::facts(account, tickets::fold(&evs), &mut out);
    }
    let mut counts = HashMap::new();
    for f in out {
        *counts.entry(f).or_default() += 1;
    }
    counts
}
