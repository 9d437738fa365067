//! The pipeline's internal records: each [`Event`] routed to the entities it affects.
//!
//! Every metric family is a *fold over one entity's events* (a conversation, a
//! message, a ticket), maintained incrementally by a differential `reduce` keyed by the
//! entity. Keeping the entity's events (not running totals) in the reduce is what makes
//! late and out-of-order events exact: the fold is re-run over the entity's events in
//! event-time order, and only that entity's facts change.
//!
//! Duplicate deliveries of an event produce identical records, which a reduce sees as
//! one value with a multiplicity above one: folds look at values, never at
//! multiplicities, so duplicates change nothing.

use schemas::Event;
use schemas::event::{
    AgentStatus, Assignee, Channel, ChannelState, DeliveryStatus, Direction, Origin, Payload,
    Priority, Quality, ResolvedBy, Sender,
};
use serde::{Deserialize, Serialize};

/// An id inside the pipeline's records (conversation, customer, agent, inbox, ...).
///
/// Ids up to 23 bytes (all the ids we have seen: `conv-…`, `agent-07`,
/// `inbox-whatsapp-1`) are stored inline, longer ones behind a shared pointer. The
/// arrangements keep every record of every live entity, so this saves one heap
/// allocation per id in each of them and makes their clones copies. It orders, hashes
/// and compares like the string it holds, so event order and tie-breaks are those of
/// the ids' text.
pub type Id = smol_str::SmolStr;

/// `(account_id, entity_id)`.
pub type EntityKey = (u64, Id);

/// A conversation lifecycle or message event, as the conversation fold sees it.
/// `Ord` sorts by event time first, so a reduce hands them over in time order; events
/// at the same instant follow [`ConvKind::rank`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvEvent {
    /// Event time, ms since epoch.
    pub at: i64,
    /// What happened.
    pub kind: ConvKind,
}

impl Ord for ConvEvent {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.kind.rank())
            .cmp(&(other.at, other.kind.rank()))
            .then_with(|| self.kind.cmp(&other.kind))
    }
}

impl PartialOrd for ConvEvent {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl ConvKind {
    /// The order of a conversation's events at the same instant, the order in which a
    /// CRM emits them (docs/metrics.md, "Edge cases"): opened, assigned to the bot,
    /// escalated, assigned to an agent, messages, resolved, reopened, intent, CSAT. So a
    /// bot that escalates and an agent who is assigned in the same millisecond leave
    /// the conversation with the agent, not unassigned.
    pub fn rank(&self) -> u8 {
        match self {
            ConvKind::Opened(_) => 0,
            ConvKind::Assigned(a) if a.assignee == Assignee::Bot => 1,
            ConvKind::Escalated => 2,
            ConvKind::Assigned(_) => 3,
            ConvKind::Message { .. } => 4,
            ConvKind::Resolved { .. } => 5,
            ConvKind::Reopened => 6,
            ConvKind::Intent { .. } => 7,
            ConvKind::Csat { .. } => 8,
        }
    }
}

/// See [`ConvEvent`]. The two variants with several ids are boxed: every message of
/// a conversation is a `ConvKind` in the conversation fold's arrangement, and boxing
/// the rare wide variants keeps each record at 40 bytes instead of 88.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum ConvKind {
    Opened(Box<Opened>),
    Assigned(Box<Assignment>),
    Escalated,
    Message {
        direction: Direction,
        sender: Sender,
        agent_id: Option<Id>,
        auto_reply: bool,
    },
    Resolved {
        by: ResolvedBy,
        agent_id: Option<Id>,
    },
    Reopened,
    Intent {
        intent: Id,
    },
    Csat {
        score: u8,
    },
}

/// A `conversation_opened`, as the conversation fold sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Opened {
    pub customer_id: Id,
    pub channel: Channel,
    pub inbox_id: Id,
    pub origin: Origin,
    pub campaign_id: Option<Id>,
}

/// A `conversation_assigned`, as the conversation fold sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Assignment {
    pub assignee: Assignee,
    pub agent_id: Option<Id>,
    pub team_id: Option<Id>,
}

/// A message's creation or status change, as the message fold sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MsgEvent {
    /// Event time, ms since epoch.
    pub at: i64,
    /// What happened.
    pub kind: MsgKind,
}

/// See [`MsgEvent`]. The rare ids (a broadcast, a failure's details) are boxed, so a
/// record of the message fold's arrangement is 24 bytes instead of 56.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum MsgKind {
    Created {
        direction: Direction,
        channel: Channel,
        sender: Sender,
        broadcast_id: Option<Box<Id>>,
    },
    Status {
        status: DeliveryStatus,
        /// Set when the status carries an error code or title.
        error: Option<Box<StatusError>>,
    },
}

/// The error a `message_status` reported.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StatusError {
    /// Provider error code.
    pub code: Option<i64>,
    /// Provider error title.
    pub title: Option<Id>,
}

/// A customer's conversation, as the customer fold sees it (from `conversation_opened`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CustomerEvent {
    /// When the conversation was opened.
    pub at: i64,
    /// The conversation.
    pub conversation_id: Id,
    /// Its channel.
    pub channel: Channel,
    /// Its inbox.
    pub inbox_id: Id,
}

/// An agent's presence change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AgentEvent {
    /// When the status changed.
    pub at: i64,
    /// The new status.
    pub status: AgentStatus,
    /// The agent's team, when the event names it.
    pub team_id: Option<Id>,
}

/// A lead's creation or a deal won on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LeadEvent {
    /// Event time.
    pub at: i64,
    /// What happened.
    pub kind: LeadKind,
}

/// See [`LeadEvent`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum LeadKind {
    Created { campaign_id: Option<Id> },
    Won { amount_minor: i64, currency: Id },
}

/// A `broadcast_sent`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BroadcastEvent {
    /// Event time.
    pub at: i64,
    /// The broadcast's campaign, when named.
    pub campaign_id: Option<Id>,
    /// Recipients.
    pub recipients: u64,
}

/// A `channel_health` report.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelEvent {
    /// Event time.
    pub at: i64,
    /// Connection state.
    pub state: ChannelState,
    /// Quality rating.
    pub quality: Quality,
    /// Messages waiting to be sent.
    pub queue_depth: u64,
    /// Send rate in thousandths of a message per minute (records must be `Ord`).
    pub sent_per_minute_milli: i64,
}

/// A ticket's lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TicketEvent {
    /// Event time, ms since epoch.
    pub at: i64,
    /// What happened.
    pub kind: TicketKind,
}

/// See [`TicketEvent`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum TicketKind {
    Opened { priority: Priority },
    Resolved,
}

/// The records one event contributes, per entity family.
#[derive(Debug, Default)]
pub struct Routed {
    /// Conversation records.
    pub conversations: Vec<(EntityKey, ConvEvent)>,
    /// Message records.
    pub messages: Vec<(EntityKey, MsgEvent)>,
    /// Ticket records.
    pub tickets: Vec<(EntityKey, TicketEvent)>,
    /// Customer records.
    pub customers: Vec<(EntityKey, CustomerEvent)>,
    /// Agent presence records.
    pub agents: Vec<(EntityKey, AgentEvent)>,
    /// Lead records.
    pub leads: Vec<(EntityKey, LeadEvent)>,
    /// Broadcast records.
    pub broadcasts: Vec<(EntityKey, BroadcastEvent)>,
    /// Channel health records.
    pub channels: Vec<(EntityKey, ChannelEvent)>,
}

impl Routed {
    /// Routes one event to every entity fold it affects.
    pub fn push(&mut self, e: Event) {
        let at = e.occurred_at_ms;
        let account = e.account_id;
        let conv = |kind| (account, kind, at);
        let mut push_conv = |id: String, kind: ConvKind| {
            let (account, kind, at) = conv(kind);
            self.conversations
                .push(((account, Id::from(id)), ConvEvent { at, kind }));
        };
        match e.payload {
            Payload::ConversationOpened {
                conversation_id,
                customer_id,
                channel,
                inbox_id,
                origin,
                campaign_id,
            } => {
                self.customers.push((
                    (account, Id::from(&customer_id)),
                    CustomerEvent {
                        at,
                        conversation_id: Id::from(&conversation_id),
                        channel,
                        inbox_id: Id::from(&inbox_id),
                    },
                ));
                push_conv(
                    conversation_id,
                    ConvKind::Opened(Box::new(Opened {
                        customer_id: customer_id.into(),
                        channel,
                        inbox_id: inbox_id.into(),
                        origin,
                        campaign_id: opt(campaign_id),
                    })),
                );
            }
            Payload::ConversationAssigned {
                conversation_id,
                assignee,
                agent_id,
                team_id,
            } => push_conv(
                conversation_id,
                ConvKind::Assigned(Box::new(Assignment {
                    assignee,
                    agent_id: opt(agent_id),
                    team_id: opt(team_id),
                })),
            ),
            Payload::ConversationEscalated {
                conversation_id, ..
            } => push_conv(conversation_id, ConvKind::Escalated),
            Payload::ConversationResolved {
                conversation_id,
                resolved_by,
                agent_id,
            } => push_conv(
                conversation_id,
                ConvKind::Resolved {
                    by: resolved_by,
                    agent_id: opt(agent_id),
                },
            ),
            Payload::ConversationReopened { conversation_id } => {
                push_conv(conversation_id, ConvKind::Reopened)
            }
            Payload::MessageCreated {
                message_id,
                conversation_id,
                direction,
                sender,
                agent_id,
                channel,
                auto_reply,
                broadcast_id,
            } => {
                push_conv(
                    conversation_id,
                    ConvKind::Message {
                        direction,
                        sender,
                        agent_id: opt(agent_id),
                        auto_reply,
                    },
                );
                self.messages.push((
                    (account, message_id.into()),
                    MsgEvent {
                        at,
                        kind: MsgKind::Created {
                            direction,
                            channel,
                            sender,
                            broadcast_id: opt(broadcast_id).map(Box::new),
                        },
                    },
                ));
            }
            Payload::MessageStatus {
                message_id,
                status,
                error_code,
                error_title,
            } => self.messages.push((
                (account, message_id.into()),
                MsgEvent {
                    at,
                    kind: MsgKind::Status {
                        status,
                        error: (error_code.is_some() || error_title.is_some()).then(|| {
                            Box::new(StatusError {
                                code: error_code,
                                title: opt(error_title),
                            })
                        }),
                    },
                },
            )),
            Payload::TicketOpened {
                ticket_id,
                priority,
                ..
            } => self.tickets.push((
                (account, ticket_id.into()),
                TicketEvent {
                    at,
                    kind: TicketKind::Opened { priority },
                },
            )),
            Payload::TicketResolved { ticket_id } => self.tickets.push((
                (account, ticket_id.into()),
                TicketEvent {
                    at,
                    kind: TicketKind::Resolved,
                },
            )),
            Payload::AgentStatusChanged {
                agent_id,
                team_id,
                status,
            } => self.agents.push((
                (account, agent_id.into()),
                AgentEvent {
                    at,
                    status,
                    team_id: opt(team_id),
                },
            )),
            Payload::LeadCreated {
                lead_id,
                campaign_id,
                ..
            } => self.leads.push((
                (account, lead_id.into()),
                LeadEvent {
                    at,
                    kind: LeadKind::Created {
                        campaign_id: opt(campaign_id),
                    },
                },
            )),
            Payload::DealWon {
                lead_id,
                amount_minor,
                currency,
            } => self.leads.push((
                (account, lead_id.into()),
                LeadEvent {
                    at,
                    kind: LeadKind::Won {
                        amount_minor,
                        currency: currency.into(),
                    },
                },
            )),
            Payload::IntentDetected {
                conversation_id,
                intent,
                ..
            } => push_conv(
                conversation_id,
                ConvKind::Intent {
                    intent: intent.into(),
                },
            ),
            Payload::CsatSubmitted {
                conversation_id,
                score,
            } => push_conv(conversation_id, ConvKind::Csat { score }),
            Payload::BroadcastSent {
                broadcast_id,
                campaign_id,
                recipients,
            } => self.broadcasts.push((
                (account, broadcast_id.into()),
                BroadcastEvent {
                    at,
                    campaign_id: opt(campaign_id),
                    recipients,
                },
            )),
            Payload::ChannelHealth {
                channel_id,
                state,
                quality,
                queue_depth,
                sent_per_minute,
            } => self.channels.push((
                (account, channel_id.into()),
                ChannelEvent {
                    at,
                    state,
                    quality,
                    queue_depth,
                    // Rates are small positive numbers; thousandths keep them exact enough.
                    sent_per_minute_milli: (sent_per_minute * 1000.0).round() as i64,
                },
            )),
        }
    }
}

fn opt(id: Option<String>) -> Option<Id> {
    id.map(Id::from)
}

/// An optional id as an owned `String`, as the facts carry it.
pub fn owned(id: Option<&Id>) -> Option<String> {
    id.map(|id| id.as_str().to_owned())
}
