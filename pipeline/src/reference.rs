//! Batch recomputation of the fact multiset from a list of events: deduplicate by
//! `event_id`, group by entity, sort by event time, fold. The incremental dataflow
//! must always agree with this, for any arrival order and any duplicates.
//!
//! This reuses the pipeline's folds, so it checks incrementality, not definitions:
//! the independent recomputation from `docs/metrics.md` is the `reference` crate.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use schemas::Event;
use schemas::metrics::Fact;

use crate::metrics::{
    agents, automation, broadcasts, channel_health, customers, leads, messages, response_time,
    tickets,
};
use crate::records::{EntityKey, Routed};

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
    for ((account, id), evs) in by_entity(routed.conversations) {
        if let Some(s) = response_time::fold(&evs) {
            response_time::facts(account, &id, &s, &mut out);
            automation::facts(
                account,
                (s.opened_at, s.human_start, s.channel, &s.inbox_id),
                &automation::fold(&evs),
                &mut out,
            );
        }
    }
    for ((account, _), evs) in by_entity(routed.messages) {
        messages::facts(account, &messages::fold(&evs), &mut out);
    }
    for ((account, _), evs) in by_entity(routed.tickets) {
        tickets::facts(account, &tickets::fold(&evs), &mut out);
    }
    for ((account, customer), evs) in by_entity(routed.customers) {
        customers::facts(account, &customer, &customers::fold(&evs), &mut out);
    }
    for ((account, agent), evs) in by_entity(routed.agents) {
        agents::facts(account, &agent, &agents::fold(&evs), &mut out);
    }
    for ((account, _), evs) in by_entity(routed.leads) {
        leads::facts(account, &leads::fold(&evs), &mut out);
    }
    for ((account, id), evs) in by_entity(routed.broadcasts) {
        broadcasts::facts(account, &id, broadcasts::fold(&evs), &mut out);
    }
    for ((account, id), evs) in by_entity(routed.channels) {
        channel_health::facts(account, &id, channel_health::fold(&evs), &mut out);
    }
    let mut counts = HashMap::new();
    for f in out {
        *counts.entry(f).or_default() += 1;
    }
    counts
}

/// Groups records by entity, each entity's records sorted by time and deduplicated.
fn by_entity<V: Ord>(records: Vec<(EntityKey, V)>) -> BTreeMap<EntityKey, Vec<V>> {
    let mut groups: BTreeMap<EntityKey, Vec<V>> = BTreeMap::new();
    for (k, v) in records {
        groups.entry(k).or_default().push(v);
    }
    for evs in groups.values_mut() {
        evs.sort();
        evs.dedup();
    }
    groups
}
