//! The dataflow graph: keyed input collections, one incremental fold per entity
//! family, and the union of their facts captured for the output.
//!
//! ```text
//!  conversations ─ reduce(fold response_time + automation) ─┐
//!  messages      ─ reduce(fold messages)                    ─┤
//!  tickets       ─ reduce(fold tickets)                     ─┤
//!  customers     ─ reduce(fold customers)                   ─┼─ facts ─ probe ─ capture
//!  agents        ─ reduce(fold agents)                      ─┤
//!  leads         ─ reduce(fold leads)                       ─┤
//!  broadcasts    ─ reduce(fold broadcasts)                  ─┤
//!  channels      ─ reduce(fold channel_health)              ─┘
//! ```
//!
//! No trace handle is kept outside the graph, so every arrangement compacts as the
//! input frontier advances.

use std::sync::mpsc;

use differential_dataflow::input::{Input, InputSession};
use schemas::metrics::Fact;
use timely::dataflow::ProbeHandle;
use timely::dataflow::operators::capture::{Capture, Event as CaptureEvent};
use timely::worker::Worker;

use crate::metrics::{
    agents, automation, broadcasts, channel_health, customers, leads, messages, response_time,
    tickets,
};
use crate::records::{
    AgentEvent, BroadcastEvent, ChannelEvent, ConvEvent, CustomerEvent, EntityKey, LeadEvent,
    MsgEvent, Routed, TicketEvent,
};

/// Pipeline time: milliseconds since the Unix epoch on the pipeline's clock.
pub type Time = u64;

/// What the capture operator sends: fact updates `(fact, time, diff)` and progress.
pub type FactEvent = CaptureEvent<Time, Vec<(Fact, Time, isize)>>;

/// One worker's input handles.
pub struct Inputs {
    conversations: InputSession<Time, (EntityKey, ConvEvent), isize>,
    messages: InputSession<Time, (EntityKey, MsgEvent), isize>,
    tickets: InputSession<Time, (EntityKey, TicketEvent), isize>,
    customers: InputSession<Time, (EntityKey, CustomerEvent), isize>,
    agents: InputSession<Time, (EntityKey, AgentEvent), isize>,
    leads: InputSession<Time, (EntityKey, LeadEvent), isize>,
    broadcasts: InputSession<Time, (EntityKey, BroadcastEvent), isize>,
    channels: InputSession<Time, (EntityKey, ChannelEvent), isize>,
}

impl Inputs {
    /// Inserts routed records at the current input time.
    pub fn insert(&mut self, routed: Routed) {
        for r in routed.conversations {
            self.conversations.insert(r);
        }
        for r in routed.messages {
            self.messages.insert(r);
        }
        for r in routed.tickets {
            self.tickets.insert(r);
        }
        for r in routed.customers {
            self.customers.insert(r);
        }
        for r in routed.agents {
            self.agents.insert(r);
        }
        for r in routed.leads {
            self.leads.insert(r);
        }
        for r in routed.broadcasts {
            self.broadcasts.insert(r);
        }
        for r in routed.channels {
            self.channels.insert(r);
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

/// Builds the dataflow on `worker`; fact updates and progress go to `sink`.
pub fn build(worker: &mut Worker, sink: mpsc::Sender<FactEvent>) -> (Inputs, ProbeHandle<Time>) {
    worker.dataflow::<Time, _, _>(move |scope| {
        let (conversations, conv) = scope.new_collection::<(EntityKey, ConvEvent), isize>();
        let (messages, msg) = scope.new_collection::<(EntityKey, MsgEvent), isize>();
        let (tickets, tick) = scope.new_collection::<(EntityKey, TicketEvent), isize>();
        let (customers, cust) = scope.new_collection::<(EntityKey, CustomerEvent), isize>();
        let (agents, agent) = scope.new_collection::<(EntityKey, AgentEvent), isize>();
        let (leads, lead) = scope.new_collection::<(EntityKey, LeadEvent), isize>();
        let (broadcasts, bcast) = scope.new_collection::<(EntityKey, BroadcastEvent), isize>();
        let (channels, chan) = scope.new_collection::<(EntityKey, ChannelEvent), isize>();

        // The folds' outputs are their compact summaries, not the facts: a reduce keeps
        // its output arranged, and one summary per entity is several times smaller
        // than the facts it yields (each fact repeats the entity's ids). The facts are
        // derived by a stateless `flat_map`; a changed summary retracts its old facts
        // and adds its new ones at the same time, so unchanged facts cancel out.
        let conv_facts = conv
            .reduce_named("ConversationFold", |_key: &EntityKey, input, output| {
                if let Some(summary) = response_time::fold(input.iter().map(|(v, _)| *v)) {
                    let automation = automation::fold(input.iter().map(|(v, _)| *v));
                    output.push(((summary, automation), 1isize));
                }
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

        let msg_facts = msg
            .reduce_named("MessageFold", |_key: &EntityKey, input, output| {
                output.push((messages::fold(input.iter().map(|(v, _)| *v)), 1isize));
            })
            .flat_map(|(key, summary)| {
                let mut facts = Vec::new();
                messages::facts(key.0, &summary, &mut facts);
                facts
            });

        let ticket_facts = tick
            .reduce_named("TicketFold", |key: &EntityKey, input, output| {
                let mut facts = Vec::new();
                tickets::facts(
                    key.0,
                    &tickets::fold(input.iter().map(|(v, _)| *v)),
                    &mut facts,
                );
                output.extend(facts.into_iter().map(|f| (f, 1isize)));
            })
            .map(|(_, fact)| fact);

        let customer_facts = cust
            .reduce_named("CustomerFold", |key: &EntityKey, input, output| {
                let mut facts = Vec::new();
                customers::facts(
                    key.0,
                    &key.1,
                    &customers::fold(input.iter().map(|(v, _)| *v)),
                    &mut facts,
                );
                output.extend(facts.into_iter().map(|f| (f, 1isize)));
            })
            .map(|(_, fact)| fact);

        let agent_facts = agent
            .reduce_named("AgentPresenceFold", |key: &EntityKey, input, output| {
                let mut facts = Vec::new();
                agents::facts(
                    key.0,
                    &key.1,
                    &agents::fold(input.iter().map(|(v, _)| *v)),
                    &mut facts,
                );
                output.extend(facts.into_iter().map(|f| (f, 1isize)));
            })
            .map(|(_, fact)| fact);

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

        let broadcast_facts = bcast
            .reduce_named("BroadcastFold", |key: &EntityKey, input, output| {
                let mut facts = Vec::new();
                broadcasts::facts(
                    key.0,
                    &key.1,
                    broadcasts::fold(input.iter().map(|(v, _)| *v)),
                    &mut facts,
                );
                output.extend(facts.into_iter().map(|f| (f, 1isize)));
            })
            .map(|(_, fact)| fact);

        let channel_facts = chan
            .reduce_named("ChannelHealthFold", |key: &EntityKey, input, output| {
                let mut facts = Vec::new();
                channel_health::facts(
                    key.0,
                    &key.1,
                    channel_health::fold(input.iter().map(|(v, _)| *v)),
                    &mut facts,
                );
                output.extend(facts.into_iter().map(|f| (f, 1isize)));
            })
            .map(|(_, fact)| fact);

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
