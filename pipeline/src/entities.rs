//! The per-entity fold with finalization: the operator behind the conversation,
//! message, ticket and broadcast folds.
//!
//! A differential `reduce` keeps every record it was given for as long as the
//! dataflow runs: its input arrangement cannot forget an entity without retracting
//! its records, and a retraction would retract the entity's facts too. The
//! finalization tier needs the opposite: once an entity is final (docs/architecture.md,
//! "Finalization"), its facts stay exactly as they are in the view store and its
//! state leaves the pipeline. Differential has no such operation, so this operator
//! does what the `reduce` did for an insert-only input over a totally ordered time,
//! plus that one thing:
//!
//! - records arrive exchanged by entity key; each complete time is processed in time
//!   order, as a `reduce` would;
//! - an entity's events are kept sorted and distinct (a duplicate delivery changes
//!   nothing, as with the `reduce`'s multiplicities), and the fold re-runs over them
//!   when an event arrives; a changed summary is sent as `-old, +new`;
//! - [`Op::Finalize`] drops the entity's state and sends nothing: downstream, its
//!   last summary (and so its facts) stands.
//!
//! The runtime's finalizer decides what is final and never lets an event for a
//! finalized entity in, so dropping the state loses nothing.

use std::collections::BTreeMap;
use std::hash::BuildHasher as _;

use differential_dataflow::{AsCollection as _, ExchangeData, VecCollection};
use foldhash::{HashMap, HashMapExt as _};
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator as _;

use crate::dataflow::Time;
use crate::records::EntityKey;

/// A record of an entity-fold input: one of the entity's events, or the order to
/// forget it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Op<V> {
    /// One of the entity's events.
    Event(V),
    /// The entity is final: keep its summary as sent, drop its state.
    Finalize,
}

/// The worker an entity's records go to (the same hash on every worker and run).
pub(crate) fn route(key: &EntityKey) -> u64 {
    foldhash::quality::FixedState::with_seed(0x5eed_c0de).hash_one(key)
}

/// One live entity: its distinct events in order, and the summary last sent.
struct Entity<V, S> {
    events: Vec<V>,
    sent: Option<S>,
}

/// Folds each entity's events with `fold` (which receives them sorted and distinct)
/// into a collection of `(entity, summary)`; see the module documentation.
pub fn fold_entities<'s, V, S, F>(
    name: &str,
    input: VecCollection<'s, Time, (EntityKey, Op<V>), isize>,
    fold: F,
) -> VecCollection<'s, Time, (EntityKey, S), isize>
where
    V: ExchangeData + Ord,
    S: Clone + PartialEq + 'static,
    F: Fn(&[V]) -> Option<S> + 'static,
{
    let exchange = Exchange::new(|((key, _), _, _): &((EntityKey, Op<V>), Time, isize)| route(key));
    input
        .inner
        .unary_frontier(exchange, name, move |_capability, _info| {
            // Records not yet processed, by time; and a capability at the least of them.
            let mut stash: BTreeMap<Time, Vec<(EntityKey, Op<V>)>> = BTreeMap::new();
            let mut held: Option<Capability<Time>> = None;
            let mut entities: HashMap<EntityKey, Entity<V, S>> = HashMap::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(cap) = cap.retain_least(0)
                        && held.as_ref().is_none_or(|h| cap.time() < h.time())
                    {
                        held = Some(cap);
                    }
                    for ((key, op), time, diff) in data.drain(..) {
                        // The inputs only ever insert (the log is append-only).
                        debug_assert!(diff > 0, "entity-fold inputs are insert-only");
                        if diff > 0 {
                            stash.entry(time).or_default().push((key, op));
                        }
                    }
                });
                while let Some(entry) = stash.first_entry() {
                    let time = *entry.key();
                    if frontier.less_equal(&time) {
                        break;
                    }
                    let records = entry.remove();
                    let cap = held
                        .as_ref()
                        .expect("a capability is held for stashed records");
                    let mut session = output.session(cap);
                    let mut touched: Vec<EntityKey> = Vec::new();
                    let mut finalized: Vec<EntityKey> = Vec::new();
                    for (key, op) in records {
                        match op {
                            Op::Event(ev) => {
                                let entity =
                                    entities.entry(key.clone()).or_insert_with(|| Entity {
                                        events: Vec::new(),
                                        sent: None,
                                    });
                                if let Err(at) = entity.events.binary_search(&ev) {
                                    entity.events.insert(at, ev);
                                    touched.push(key);
                                }
                            }
                            Op::Finalize => finalized.push(key),
                        }
                    }
                    touched.sort_unstable();
                    touched.dedup();
                    for key in touched {
                        let entity = entities.get_mut(&key).expect("touched entities exist");
                        let summary = fold(&entity.events);
                        if summary != entity.sent {
                            if let Some(old) = entity.sent.take() {
                                session.give(((key.clone(), old), time, -1));
                            }
                            if let Some(new) = &summary {
                                session.give(((key, new.clone()), time, 1));
                            }
                            entity.sent = summary;
                        }
                    }
                    // After this time's events: the summary sent stands, the state goes.
                    for key in finalized {
                        entities.remove(&key);
                    }
                }
                match stash.keys().next() {
                    Some(next) => {
                        if let Some(h) = held.as_mut() {
                            h.downgrade(next);
                        }
                    }
                    None => held = None,
                }
            }
        })
        .as_collection()
}
