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
use schemas::sharded::ShardedMap;
use serde::{Deserialize, Serialize};
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::Operator as _;

use crate::dataflow::Time;
use crate::metrics::customers;
use crate::records::{CustomerEvent, EntityKey, Id};
use schemas::event::Channel;
use schemas::metrics::Fact;

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

impl<V, S> Default for Entity<V, S> {
    fn default() -> Self {
        Self {
            events: Vec::new(),
            sent: None,
        }
    }
}

/// The skeleton of the keyed folds: records exchanged by key, each complete time
/// processed in time order, and each key's records of one time handed to `step`
/// together (in arrival order, in a buffer it drains) with the key's state, which
/// `step` updates, writing output updates; it returns whether to keep the state
/// (`false` forgets the key).
fn fold_keyed<'s, O, St, Out, F>(
    name: &str,
    input: VecCollection<'s, Time, (EntityKey, O), isize>,
    mut step: F,
) -> VecCollection<'s, Time, Out, isize>
where
    O: ExchangeData,
    St: Default + 'static,
    Out: Clone + 'static,
    F: FnMut(&EntityKey, &mut St, &mut Vec<O>, &mut Vec<(Out, isize)>) -> bool + 'static,
{
    let exchange = Exchange::new(|((key, _), _, _): &((EntityKey, O), Time, isize)| route(key));
    input
        .inner
        .unary_frontier(exchange, name, move |_capability, _info| {
            // Records not yet processed, by time; and a capability at the least of them.
            let mut stash: BTreeMap<Time, Vec<(EntityKey, O)>> = BTreeMap::new();
            let mut held: Option<Capability<Time>> = None;
            // Sharded: a worker holds millions of entities, and one growth of a single
            // table held every record behind it for a fifth of a second.
            let mut states: ShardedMap<EntityKey, St> = ShardedMap::new();
            let mut out: Vec<(Out, isize)> = Vec::new();
            let mut ops: Vec<O> = Vec::new();
            move |(input, frontier), output| {
                input.for_each(|cap, data| {
                    if let Some(cap) = cap.retain_least(0)
                        && held.as_ref().is_none_or(|h| cap.time() < h.time())
                    {
                        held = Some(cap);
                    }
                    for ((key, op), time, diff) in data.drain(..) {
                        // The inputs only ever insert (the log is append-only).
                        debug_assert!(diff > 0, "keyed-fold inputs are insert-only");
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
                    let mut records = entry.remove();
                    // Stable: a key's records keep their arrival order.
                    records.sort_by(|a, b| a.0.cmp(&b.0));
                    let cap = held
                        .as_ref()
                        .expect("a capability is held for stashed records");
                    let mut session = output.session(cap);
                    let mut records = records.into_iter().peekable();
                    while let Some((key, op)) = records.next() {
                        ops.clear();
                        ops.push(op);
                        while let Some((_, op)) = records.next_if(|(k, _)| *k == key) {
                            ops.push(op);
                        }
                        match states.get_mut(&key) {
                            Some(state) => {
                                if !step(&key, state, &mut ops, &mut out) {
                                    states.remove(&key);
                                }
                            }
                            None => {
                                let mut state = St::default();
                                if step(&key, &mut state, &mut ops, &mut out) {
                                    states.insert(key.clone(), state);
                                }
                            }
                        }
                        for (update, diff) in out.drain(..) {
                            session.give((update, time, diff));
                        }
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
    fold_keyed(
        name,
        input,
        move |key, entity: &mut Entity<V, S>, ops, out| {
            let mut changed = false;
            let mut finalize = false;
            for op in ops.drain(..) {
                match op {
                    Op::Event(ev) => {
                        if let Err(at) = entity.events.binary_search(&ev) {
                            entity.events.insert(at, ev);
                            changed = true;
                        }
                    }
                    Op::Finalize => finalize = true,
                }
            }
            if changed {
                let summary = fold(&entity.events);
                if summary != entity.sent {
                    if let Some(old) = entity.sent.take() {
                        out.push(((key.clone(), old), -1));
                    }
                    if let Some(new) = &summary {
                        out.push(((key.clone(), new.clone()), 1));
                    }
                    entity.sent = summary;
                }
            }
            // After this time's events: the summary sent stands, the state goes.
            !finalize && !entity.events.is_empty()
        },
    )
}

/// A customer-fold record: a conversation the customer opened, or the order to forget
/// one of the customer's conversations that is final.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CustomerOp {
    /// A `conversation_opened` of the customer.
    Open(CustomerEvent),
    /// The conversation is final: its fact stands, its record goes.
    Forget(Id),
    /// `(opened at, conversation)`: the customer's first conversation as a checkpoint
    /// knew it, whose own events a restart does not replay when it is final.
    First(i64, Id),
}

/// One customer: their first conversation ever (`(opened at, conversation)`, kept when
/// that conversation is forgotten), and the earliest open of each live conversation.
#[derive(Default)]
struct Customer {
    first: Option<(i64, Id)>,
    live: BTreeMap<Id, (i64, Channel, Id)>,
}

impl Customer {
    fn facts(&self, (account, customer): &EntityKey, sign: isize, out: &mut Vec<(Fact, isize)>) {
        for (conversation, (at, channel, inbox)) in &self.live {
            let first = self.first.as_ref().is_some_and(|(_, c)| c == conversation);
            out.push((
                customers::conversation_fact(*account, customer, (*at, *channel, inbox), first),
                sign,
            ));
        }
    }
}

/// The customer fold (`docs/metrics.md`, new and returning customers): each live
/// conversation's earliest open, and the customer's first conversation ever — the
/// earliest open, ties by conversation id. A forgotten (final) conversation's fact
/// stands as sent; the customer's first is kept for good. The finalizer refuses a
/// `conversation_opened` more than the horizon before its account's watermark, so a
/// final first conversation cannot be overtaken by an earlier one.
pub fn fold_customers<'s>(
    input: VecCollection<'s, Time, (EntityKey, CustomerOp), isize>,
) -> VecCollection<'s, Time, Fact, isize> {
    fold_keyed(
        "CustomerFold",
        input,
        |key, customer: &mut Customer, ops, out| {
            let before = out.len();
            customer.facts(key, -1, out);
            let mut forget = Vec::new();
            for op in ops.drain(..) {
                match op {
                    CustomerOp::Open(ev) => {
                        let open = (ev.at, ev.channel, ev.inbox_id);
                        match customer.live.get_mut(&ev.conversation_id) {
                            // The earliest open; at the same instant, the least (channel,
                            // inbox), as the whole-history fold orders them.
                            Some(known)
                                if (known.0, known.1, &known.2) <= (open.0, open.1, &open.2) => {}
                            Some(known) => *known = open,
                            None => {
                                customer.live.insert(ev.conversation_id.clone(), open);
                            }
                        }
                        let candidate = (ev.at, ev.conversation_id);
                        if customer.first.as_ref().is_none_or(|f| candidate < *f) {
                            customer.first = Some(candidate);
                        }
                    }
                    CustomerOp::Forget(conversation) => forget.push(conversation),
                    CustomerOp::First(at, conversation) => {
                        let candidate = (at, conversation);
                        if customer.first.as_ref().is_none_or(|f| candidate < *f) {
                            customer.first = Some(candidate);
                        }
                    }
                }
            }
            customer.facts(key, 1, out);
            if out.len() - before == 2 * customer.live.len() {
                // Unchanged facts cancel downstream; drop the pairs that are equal here.
                let (old, new) = out[before..].split_at(customer.live.len());
                if old.iter().zip(new).all(|(o, n)| o.0 == n.0) {
                    out.truncate(before);
                }
            }
            for conversation in forget {
                customer.live.remove(&conversation);
            }
            true
        },
    )
}
