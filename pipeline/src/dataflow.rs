//! The dataflow graph: keyed input collections, one incremental fold per entity
//! family, and the union of their facts captured for the output.
//!
//! ```text
//!  conversations ─ entity fold(response_time + automation)  ─┐
//!  messages      ─ entity fold(messages)                    ─┤
//!  tickets       ─ entity fold(tickets)                     ─┤
//!  customers     ─ fold(first ever + live conversations)    ─┼─ facts ─ probe ─ capture
//!  agents        ─ day → 8 days → 64 days → agent (levels)  ─┤
//!  leads         ─ reduce(fold leads)                       ─┤
//!  broadcasts    ─ entity fold(broadcasts)                  ─┤
//!  channels      ─ day → 8 days → 64 days → channel         ─┘
//! ```
//!
//! No trace handle is kept outside the graph, so every arrangement compacts as the
//! input frontier advances.

use std::sync::mpsc;

use differential_dataflow::input::{Input, InputSession};
use differential_dataflow::{ExchangeData, VecCollection};
use schemas::metrics::Fact;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::capture::{Capture, Event as CaptureEvent};
use timely::worker::Worker;

use crate::entities::{CustomerOp, Op, fold_customers, fold_entities};
use crate::finalize::{Family, Finalized};
use crate::metrics::{
    agents, automation, broadcasts, channel_health, leads, messages, response_time, tickets,
};
use crate::records::{
    AgentEvent, BroadcastEvent, ChannelEvent, ConvEvent, EntityKey, LeadEvent, MsgEvent, Routed,
    TicketEvent,
};

/// Pipeline time: milliseconds since the Unix epoch on the pipeline's clock.
pub type Time = u64;

/// What the capture operator sends: fact updates `(fact, time, diff)` and progress.
pub type FactEvent = CaptureEvent<Time, Vec<(Fact, Time, isize)>>;

/// One worker's input handles.
pub struct Inputs {
    conversations: InputSession<Time, (EntityKey, Op<ConvEvent>), isize>,
    messages: InputSession<Time, (EntityKey, Op<MsgEvent>), isize>,
    tickets: InputSession<Time, (EntityKey, Op<TicketEvent>), isize>,
    customers: InputSession<Time, (EntityKey, CustomerOp), isize>,
    agents: InputSession<Time, (EntityKey, AgentEvent), isize>,
    leads: InputSession<Time, (EntityKey, LeadEvent), isize>,
    broadcasts: InputSession<Time, (EntityKey, Op<BroadcastEvent>), isize>,
    channels: InputSession<Time, (EntityKey, ChannelEvent), isize>,
}

impl Inputs {
    /// Inserts routed records at the current input time.
    pub fn insert(&mut self, routed: Routed) {
        for (key, ev) in routed.conversations {
            self.conversations.insert((key, Op::Event(ev)));
        }
        for (key, ev) in routed.messages {
            self.messages.insert((key, Op::Event(ev)));
        }
        for (key, ev) in routed.tickets {
            self.tickets.insert((key, Op::Event(ev)));
        }
        for (key, ev) in routed.customers {
            self.customers.insert((key, CustomerOp::Open(ev)));
        }
        for r in routed.agents {
            self.agents.insert(r);
        }
        for r in routed.leads {
            self.leads.insert(r);
        }
        for (key, ev) in routed.broadcasts {
            self.broadcasts.insert((key, Op::Event(ev)));
        }
        for r in routed.channels {
            self.channels.insert(r);
        }
    }

    /// Tells the entity folds to drop the state of these final entities
    /// ([`crate::finalize`]), at the current input time, after its events.
    pub fn finalize(&mut self, entities: Vec<Finalized>) {
        for finalized in entities {
            match finalized {
                Finalized::Entity(family, key) => match family {
                    Family::Conversation => self.conversations.insert((key, Op::Finalize)),
                    Family::Message => self.messages.insert((key, Op::Finalize)),
                    Family::Ticket => self.tickets.insert((key, Op::Finalize)),
                    Family::Broadcast => self.broadcasts.insert((key, Op::Finalize)),
                },
                Finalized::CustomerConversation(customer, conversation) => self
                    .customers
                    .insert((customer, CustomerOp::Forget(conversation))),
            }
        }
    }

    /// Seeds the customer fold with customers' first conversations (a restart from a
    /// checkpoint, [`crate::runtime::Pipeline::warm`]).
    pub fn seed_firsts(&mut self, firsts: Vec<(EntityKey, (i64, crate::records::Id))>) {
        for (customer, (at, conversation)) in firsts {
            self.customers
                .insert((customer, CustomerOp::First(at, conversation)));
        }
    }

    /// The current input time.
    pub fn time(&self) -> Time {
        *self.conversations.time()
    }

    /// Advances every input to `t` (no-op when not later) and flushes.
    pub fn advance_to(&mut self, t: Time) {
        if t > self.time() {
            self.conversations.advance_to(t);
            self.messages.advance_to(t);
            self.tickets.advance_to(t);
            self.customers.advance_to(t);
            self.agents.advance_to(t);
            self.leads.advance_to(t);
            self.broadcasts.advance_to(t);
            self.channels.advance_to(t);
        }
        self.conversations.flush();
        self.messages.flush();
        self.tickets.flush();
        self.customers.flush();
        self.agents.flush();
        self.leads.flush();
        self.broadcasts.flush();
        self.channels.flush();
    }
}

/// The block sizes, in days, of the levels above the day: an entity's days fold into
/// blocks of 8, those into blocks of 64, and those into the entity's summary. An event
/// re-folds at most 8 summaries per level and one per 64 days of history at the top.
pub const LEVEL_DAYS: [i64; 2] = [8, 64];

/// One level's summaries: `((entity, block index), summary)`.
type Level<'s, V> = VecCollection<'s, Time, ((EntityKey, i64), V), isize>;

/// Each entity's summary: `(entity, summary)`.
type Entities<'s, V> = VecCollection<'s, Time, (EntityKey, V), isize>;

/// Folds per-day summaries `((entity, day), V)` up through [`LEVEL_DAYS`] with
/// `combine`, which receives a block's child summaries in time order. Returns each
/// level above the day and the entity's summary.
fn levels<'s, V, F>(
    name: &str,
    days: Level<'s, V>,
    combine: F,
) -> (Vec<Level<'s, V>>, Entities<'s, V>)
where
    V: ExchangeData,
    F: Fn(&mut dyn Iterator<Item = &V>) -> Option<V> + Copy + 'static,
{
    let fold = move |input: &[(&(i64, V), isize)], output: &mut Vec<(V, isize)>| {
        if let Some(v) = combine(&mut input.iter().map(|((_, v), _)| v)) {
            output.push((v, 1));
        }
    };
    let mut blocks = Vec::new();
    let mut below = days;
    let mut below_days = 1;
    for (i, span) in LEVEL_DAYS.into_iter().enumerate() {
        let ratio = span / below_days;
        let level = below
            .map(move |((key, index), v)| ((key, index.div_euclid(ratio)), (index, v)))
            .reduce_named(
                &format!("{name}Level{}", i + 1),
                move |_key, input, output| fold(input, output),
            );
        blocks.push(level.clone());
        below = level;
        below_days = span;
    }
    let top = below
        .map(|((key, index), v)| (key, (index, v)))
        .reduce_named(&format!("{name}Entity"), move |_key, input, output| {
            fold(input, output)
        });
    (blocks, top)
}

/// Builds the dataflow on `worker`; fact updates and progress go to `sink`.
pub fn build(worker: &mut Worker, sink: mpsc::Sender<FactEvent>) -> (Inputs, ProbeHandle<Time>) {
    worker.dataflow::<Time, _, _>(move |scope| {
        let (conversations, conv) = scope.new_collection::<(EntityKey, Op<ConvEvent>), isize>();
        let (messages, msg) = scope.new_collection::<(EntityKey, Op<MsgEvent>), isize>();
        let (tickets, tick) = scope.new_collection::<(EntityKey, Op<TicketEvent>), isize>();
        let (customers, cust) = scope.new_collection::<(EntityKey, CustomerOp), isize>();
        let (agents, agent) = scope.new_collection::<(EntityKey, AgentEvent), isize>();
        let (leads, lead) = scope.new_collection::<(EntityKey, LeadEvent), isize>();
        let (broadcasts, bcast) = scope.new_collection::<(EntityKey, Op<BroadcastEvent>), isize>();
        let (channels, chan) = scope.new_collection::<(EntityKey, ChannelEvent), isize>();

        // The folds' outputs are their compact summaries, not the facts: a reduce keeps
        // its output arranged, and one summary per entity is several times smaller
        // than the facts it yields (each fact repeats the entity's ids). The facts are
        // derived by a stateless `flat_map`; a changed summary retracts its old facts
        // and adds its new ones at the same time, so unchanged facts cancel out.
        let conv_facts = fold_entities("ConversationFold", conv, |events| {
            response_time::fold(events).map(|summary| (summary, automation::fold(events)))
        })
        .flat_map(|(key, (summary, automation))| {
            let mut facts = Vec::new();
            response_time::facts(key.0, &key.1, &summary, &mut facts);
            automation::facts(
                key.0,
                (
                    summary.opened_at,
                    summary.human_start,
                    summary.channel,
                    &summary.inbox_id,
                ),
                &automation,
                &mut facts,
            );
            facts
        });

        let msg_facts = fold_entities("MessageFold", msg, |events| Some(messages::fold(events)))
            .flat_map(|(key, summary)| {
                let mut facts = Vec::new();
                messages::facts(key.0, &summary, &mut facts);
                facts
            });

        let ticket_facts = fold_entities("TicketFold", tick, |events| Some(tickets::fold(events)))
            .flat_map(|(key, summary)| {
                let mut facts = Vec::new();
                tickets::facts(key.0, &summary, &mut facts);
                facts
            });

        // A customer opens conversations for as long as the account lives: the fold
        // keeps the customer's first conversation and their live conversations only.
        let customer_facts = fold_customers(cust);

        // Agent presence and channel health are keyed by entity, which lives as long as
        // the account: folding an entity's whole history per event would make every
        // event cost more as history grows. They fold in levels instead (a day, then
        // blocks of LEVEL_DAYS), so an event re-folds its day and a few block summaries.
        let agent_days = agent
            .map(|(key, ev)| ((key, agents::day_of(ev.at)), ev))
            .reduce_named("AgentPresenceDay", |_key, input, output| {
                if let Some(block) = agents::fold_day(input.iter().map(|(v, _)| *v)) {
                    output.push((block, 1isize));
                }
            });
        let (agent_blocks, agent_top) = levels("AgentPresence", agent_days.clone(), |blocks| {
            agents::fold_blocks(blocks)
        });
        let agent_teams = agent_top.clone().map(|(key, block)| (key, block.team_id));
        // Every level's stretches: a day's own, and those bridging blocks above it.
        let agent_pieces = agent_blocks
            .into_iter()
            .fold(agent_days, |all, level| all.concat(level))
            .concat(agent_top.clone().map(|(key, block)| ((key, 0), block)))
            .flat_map(|((key, _), block)| {
                block.stretches.into_iter().map(move |s| (key.clone(), s))
            })
            .join(agent_teams)
            .flat_map(|((account, agent), (stretch, team))| {
                let mut facts = Vec::new();
                agents::piece_facts(account, &agent, team.as_deref(), stretch, &mut facts);
                facts
            });
        let agent_facts = agent_top
            .map(|((account, agent), block)| {
                agents::current_fact(account, &agent, block.team_id.as_deref(), block.last)
            })
            .concat(agent_pieces);

        let lead_facts = lead
            .reduce_named("LeadFold", |key: &EntityKey, input, output| {
                let mut facts = Vec::new();
                leads::facts(
                    key.0,
                    &leads::fold(input.iter().map(|(v, _)| *v)),
                    &mut facts,
                );
                output.extend(facts.into_iter().map(|f| (f, 1isize)));
            })
            .map(|(_, fact)| fact);

        let broadcast_facts = fold_entities("BroadcastFold", bcast, |events| {
            broadcasts::fold(events).cloned()
        })
        .flat_map(|(key, sent)| {
            let mut facts = Vec::new();
            broadcasts::facts(key.0, &key.1, Some(&sent), &mut facts);
            facts
        });

        let channel_days = chan
            .map(|(key, ev)| ((key, agents::day_of(ev.at)), ev))
            .reduce_named("ChannelHealthDay", |_key, input, output| {
                if let Some(latest) = channel_health::fold(input.iter().map(|(v, _)| *v)) {
                    output.push((latest.clone(), 1isize));
                }
            });
        let (_, channel_top) = levels("ChannelHealth", channel_days, |reports| {
            channel_health::fold(reports).cloned()
        });
        let channel_facts = channel_top.flat_map(|((account, channel), latest)| {
            let mut facts = Vec::new();
            channel_health::facts(account, &channel, Some(&latest), &mut facts);
            facts
        });

        let (probe, facts) = conv_facts
            .concat(msg_facts)
            .concat(ticket_facts)
            .concat(customer_facts)
            .concat(agent_facts)
            .concat(lead_facts)
            .concat(broadcast_facts)
            .concat(channel_facts)
            .probe();
        facts.inner.capture_into(sink);
        (
            Inputs {
                conversations,
                messages,
                tickets,
                customers,
                agents,
                leads,
                broadcasts,
                channels,
            },
            probe,
        )
    })
}
