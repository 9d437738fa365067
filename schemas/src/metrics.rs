//! The pipeline's output contract: metric facts, their multiplicities, and progress.
//!
//! The pipeline maintains, for every metric family, a multiset of *facts*: small
//! records such as "one conversation of account 1 is active and held by the bot" or
//! "one first response of 93 s was given in the bucket starting at t". It emits the
//! changes to that multiset as `(fact, diff)` pairs, grouped into [`MetricBatch`]es
//! that are each complete up to a pipeline timestamp. A reader that sums every diff
//! per fact up to some batch holds the exact state at that batch's `progress`, and
//! answers any range query by summing facts over buckets (see [`crate::time`]).
//!
//! Facts carry only what the API needs to filter and aggregate, never pipeline
//! internals, so `query-api` (and, later, consumers of `crm.metrics.v1`) depend on this
//! module alone.

use serde::{Deserialize, Serialize};

use crate::event::{
    AgentStatus, Channel, ChannelState, DeliveryStatus, Direction, Priority, Quality, ResolvedBy,
};

/// Who currently holds an active conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// Open and assigned to nobody (or handed over by the bot and not yet picked up).
    Unassigned,
    /// Assigned to the bot.
    Bot,
    /// Assigned to a human agent.
    Agent,
}

/// One unit of a metric. The multiplicity of a fact is carried by the diff beside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Fact {
    /// A conversation that is open now (opened or reopened, not resolved since).
    ActiveConversation {
        /// Tenant.
        account_id: u64,
        /// Who holds it.
        holder: Holder,
        /// The agent holding it, when an agent does (workload per agent).
        agent_id: Option<String>,
        /// Channel the conversation was opened on.
        channel: Channel,
        /// Inbox it arrived in.
        inbox_id: String,
    },
    /// A conversation's first human response, counted in the bucket of the reply.
    FirstResponse {
        /// Tenant.
        account_id: u64,
        /// Bucket (ms since epoch, see [`crate::time`]) of the reply.
        bucket: i64,
        /// Seconds from open (or bot hand-over) to the first human agent message.
        seconds: u32,
        /// Conversation channel.
        channel: Channel,
        /// Conversation inbox.
        inbox_id: String,
        /// The agent who replied, when the message named one.
        agent_id: Option<String>,
        /// The team of the agent assignment in force at the reply, if any.
        team_id: Option<String>,
    },
    /// An outbound WhatsApp message that reached some status, in the bucket it was created.
    WhatsappOutcome {
        /// Tenant.
        account_id: u64,
        /// Bucket of the message's creation.
        bucket: i64,
        /// Reached `delivered` or `read` (a `read` implies delivery).
        delivered: bool,
    },
    /// A message, in the bucket it was created.
    Message {
        /// Tenant.
        account_id: u64,
        /// Bucket of creation.
        bucket: i64,
        /// Inbound or outbound.
        direction: Direction,
        /// Channel the message travelled on.
        channel: Channel,
    },
    /// A conversation, in the bucket it was opened, with whether it is resolved now.
    ConversationOpened {
        /// Tenant.
        account_id: u64,
        /// Bucket of the first `conversation_opened`.
        bucket: i64,
        /// Resolved now (not reopened since its last resolution).
        resolved: bool,
        /// Channel.
        channel: Channel,
        /// Inbox.
        inbox_id: String,
        /// The campaign it came from, for campaign-origin conversations.
        campaign_id: Option<String>,
    },
    /// One `conversation_resolved` event, in its bucket.
    Resolution {
        /// Tenant.
        account_id: u64,
        /// Bucket of the resolution.
        bucket: i64,
        /// Who resolved it.
        resolved_by: ResolvedBy,
        /// The resolving agent, when named.
        agent_id: Option<String>,
        /// Team of the conversation's latest agent assignment at the resolution, if any.
        #[serde(default)]
        team_id: Option<String>,
        /// Conversation channel.
        channel: Channel,
        /// Conversation inbox.
        inbox_id: String,
    },
    /// An agent sent at least one message in a conversation during a bucket. Carries the
    /// conversation id so that "conversations handled" is an exact distinct count over
    /// any range.
    AgentHandled {
        /// Tenant.
        account_id: u64,
        /// Bucket of the messages.
        bucket: i64,
        /// The agent.
        agent_id: String,
        /// Team of the agent assignment in force at the message, if any.
        team_id: Option<String>,
        /// The conversation.
        conversation_id: String,
        /// Conversation channel.
        channel: Channel,
        /// Conversation inbox.
        inbox_id: String,
    },
    /// A conversation waiting for its first human reply (never answered so far). The
    /// SLA deadline is `start_ms` plus the account's target, evaluated at query time
    /// against the complete timestamp, so a breach shows the moment the deadline
    /// passes, with no new event, and a target change applies at once.
    AwaitingFirstResponse {
        /// Tenant.
        account_id: u64,
        /// Bucket of `start_ms` (the index key).
        bucket: i64,
        /// Open, or the bot's hand-over: when the wait started.
        start_ms: i64,
        /// The closing that stands: the last resolution of a conversation closed
        /// unanswered and not reopened since; `None` while it is open.
        resolved_at_ms: Option<i64>,
        /// Conversation channel.
        channel: Channel,
        /// Conversation inbox.
        inbox_id: String,
        /// Team of the current assignment, if any.
        team_id: Option<String>,
    },
    /// A customer's conversation, in the bucket it was opened; `first` marks the
    /// customer's first conversation ever (a new customer).
    CustomerConversation {
        /// Tenant.
        account_id: u64,
        /// Bucket of the conversation's open.
        bucket: i64,
        /// The customer, for exact distinct counts over any range.
        customer_id: String,
        /// This is the customer's first conversation ever.
        first: bool,
        /// Conversation channel.
        channel: Channel,
        /// Conversation inbox.
        inbox_id: String,
    },
    /// A closed stretch of time an agent spent in one status, cut at UTC midnights so
    /// that a range query only looks one day back for stretches that overlap it.
    AgentStatusPiece {
        /// Tenant.
        account_id: u64,
        /// Bucket of `start_ms`.
        bucket: i64,
        /// The agent.
        agent_id: String,
        /// The agent's team, as last named by a status event.
        team_id: Option<String>,
        /// The status held.
        status: AgentStatus,
        /// Start, ms since epoch.
        start_ms: i64,
        /// End (exclusive), ms since epoch; at most the next UTC midnight.
        end_ms: i64,
    },
    /// An agent's status now, and since when (the open-ended last stretch).
    AgentCurrentStatus {
        /// Tenant.
        account_id: u64,
        /// The agent.
        agent_id: String,
        /// The agent's team, as last named by a status event.
        team_id: Option<String>,
        /// Current status.
        status: AgentStatus,
        /// Since when, ms since epoch.
        since_ms: i64,
    },
    /// A ticket's resolution, in the bucket of its earliest `ticket_resolved`.
    TicketResolved {
        /// Tenant.
        account_id: u64,
        /// Bucket of the resolution.
        bucket: i64,
        /// Priority of its latest `ticket_opened`, when known.
        priority: Option<Priority>,
    },
    /// A lead, in the bucket it was created.
    Lead {
        /// Tenant.
        account_id: u64,
        /// Bucket of `lead_created`.
        bucket: i64,
        /// The campaign it is attributed to.
        campaign_id: Option<String>,
    },
    /// A won deal, in the bucket it was won, attributed to its lead's campaign.
    DealWon {
        /// Tenant.
        account_id: u64,
        /// Bucket of `deal_won`.
        bucket: i64,
        /// The lead's campaign, when the lead is known and names one.
        campaign_id: Option<String>,
        /// Amount in minor units.
        amount_minor: i64,
        /// ISO 4217 code.
        currency: String,
    },
    /// An outbound WhatsApp message, in the bucket it was created, with the furthest
    /// status it reached. Carries no message id: identical messages collapse into one
    /// fact with a multiplicity, so a range sums few facts.
    WhatsappMessage {
        /// Tenant.
        account_id: u64,
        /// Bucket of the message's creation.
        bucket: i64,
        /// Furthest of sent < delivered < read reached (`None`: no such status yet).
        /// Statuses never move backwards, and `read` implies delivered.
        status: Option<DeliveryStatus>,
        /// A `failed` status was reported.
        failed: bool,
        /// Error code of the earliest `failed` status, when it named one.
        error_code: Option<i64>,
        /// Error title of the earliest `failed` status, when it named one.
        error_title: Option<String>,
    },
    /// A broadcast, in the bucket of its earliest `broadcast_sent`.
    Broadcast {
        /// Tenant.
        account_id: u64,
        /// Bucket of the send.
        bucket: i64,
        /// Event time of the send, ms since epoch.
        sent_at_ms: i64,
        /// The broadcast.
        broadcast_id: String,
        /// Its campaign, when named.
        campaign_id: Option<String>,
        /// Recipients, as reported by `broadcast_sent`.
        recipients: u64,
    },
    /// The messages of one broadcast by furthest status (multiplicity = messages),
    /// whenever they were created: a broadcast's success is over all its messages.
    BroadcastMessage {
        /// Tenant.
        account_id: u64,
        /// The broadcast the message belongs to.
        broadcast_id: String,
        /// Furthest of sent < delivered < read reached.
        status: Option<DeliveryStatus>,
        /// A `failed` status was reported.
        failed: bool,
    },
    /// A channel's health now: its latest `channel_health` in event time.
    ChannelHealth {
        /// Tenant.
        account_id: u64,
        /// The channel (e.g. a WhatsApp number).
        channel_id: String,
        /// Connection state.
        state: ChannelState,
        /// Quality rating.
        quality: Quality,
        /// Messages waiting to be sent.
        queue_depth: u64,
        /// Send rate in thousandths of a message per minute (facts are `Eq`/`Hash`).
        sent_per_minute_milli: i64,
        /// Event time of the report, ms since epoch.
        at_ms: i64,
    },
    /// A conversation as automation sees it, in the bucket it was opened.
    AutomationConversation {
        /// Tenant.
        account_id: u64,
        /// Bucket of the first `conversation_opened`.
        bucket: i64,
        /// Channel.
        channel: Channel,
        /// Inbox.
        inbox_id: String,
        /// Was ever assigned to the bot.
        bot: bool,
        /// Was escalated by the bot at least once.
        escalated: bool,
        /// A human agent wrote in it.
        human: bool,
        /// Who resolved it last, when it is resolved now (not reopened since).
        resolved_by: Option<ResolvedBy>,
        /// It carries at least one auto-reply message.
        auto_reply: bool,
        /// Its first detected intent in event time.
        intent: Option<String>,
        /// Its latest CSAT score (1..5), when the customer rated it.
        csat: Option<u8>,
        /// Human handling seconds, from the human wait's start (open or the bot's
        /// hand-over) to its resolution now; set for resolved conversations with humans.
        handling_s: Option<u32>,
    },
    /// A ticket that is open now.
    OpenTicket {
        /// Tenant.
        account_id: u64,
        /// Its priority.
        priority: Priority,
    },
}

impl Fact {
    /// The account the fact belongs to.
    pub fn account_id(&self) -> u64 {
        match self {
            Fact::ActiveConversation { account_id, .. }
            | Fact::FirstResponse { account_id, .. }
            | Fact::WhatsappOutcome { account_id, .. }
            | Fact::Message { account_id, .. }
            | Fact::ConversationOpened { account_id, .. }
            | Fact::Resolution { account_id, .. }
            | Fact::AgentHandled { account_id, .. }
            | Fact::AwaitingFirstResponse { account_id, .. }
            | Fact::CustomerConversation { account_id, .. }
            | Fact::AgentStatusPiece { account_id, .. }
            | Fact::AgentCurrentStatus { account_id, .. }
            | Fact::TicketResolved { account_id, .. }
            | Fact::Lead { account_id, .. }
            | Fact::DealWon { account_id, .. }
            | Fact::WhatsappMessage { account_id, .. }
            | Fact::Broadcast { account_id, .. }
            | Fact::BroadcastMessage { account_id, .. }
            | Fact::ChannelHealth { account_id, .. }
            | Fact::AutomationConversation { account_id, .. }
            | Fact::OpenTicket { account_id, .. } => *account_id,
        }
    }

    /// The fact's kind: the variant name in snake case. The view store indexes by it.
    pub fn kind(&self) -> &'static str {
        match self {
            Fact::ActiveConversation { .. } => "active_conversation",
            Fact::FirstResponse { .. } => "first_response",
            Fact::WhatsappOutcome { .. } => "whatsapp_outcome",
            Fact::Message { .. } => "message",
            Fact::ConversationOpened { .. } => "conversation_opened",
            Fact::Resolution { .. } => "resolution",
            Fact::AgentHandled { .. } => "agent_handled",
            Fact::AwaitingFirstResponse { .. } => "awaiting_first_response",
            Fact::CustomerConversation { .. } => "customer_conversation",
            Fact::AgentStatusPiece { .. } => "agent_status_piece",
            Fact::AgentCurrentStatus { .. } => "agent_current_status",
            Fact::TicketResolved { .. } => "ticket_resolved",
            Fact::Lead { .. } => "lead",
            Fact::DealWon { .. } => "deal_won",
            Fact::WhatsappMessage { .. } => "whatsapp_message",
            Fact::Broadcast { .. } => "broadcast",
            Fact::BroadcastMessage { .. } => "broadcast_message",
            Fact::ChannelHealth { .. } => "channel_health",
            Fact::AutomationConversation { .. } => "automation_conversation",
            Fact::OpenTicket { .. } => "open_ticket",
        }
    }

    /// The same fact in another bucket (a "now" fact is returned unchanged). The view
    /// store uses it to roll a day's buckets up into one.
    pub fn with_bucket(&self, bucket: i64) -> Fact {
        let mut f = self.clone();
        match &mut f {
            Fact::FirstResponse { bucket: b, .. }
            | Fact::WhatsappOutcome { bucket: b, .. }
            | Fact::Message { bucket: b, .. }
            | Fact::ConversationOpened { bucket: b, .. }
            | Fact::Resolution { bucket: b, .. }
            | Fact::AgentHandled { bucket: b, .. }
            | Fact::AwaitingFirstResponse { bucket: b, .. }
            | Fact::CustomerConversation { bucket: b, .. }
            | Fact::AgentStatusPiece { bucket: b, .. }
            | Fact::TicketResolved { bucket: b, .. }
            | Fact::Lead { bucket: b, .. }
            | Fact::DealWon { bucket: b, .. }
            | Fact::WhatsappMessage { bucket: b, .. }
            | Fact::Broadcast { bucket: b, .. }
            | Fact::AutomationConversation { bucket: b, .. } => *b = bucket,
            Fact::ActiveConversation { .. }
            | Fact::OpenTicket { .. }
            | Fact::AgentCurrentStatus { .. }
            | Fact::BroadcastMessage { .. }
            | Fact::ChannelHealth { .. } => {}
        }
        f
    }

    /// The time bucket of a bucketed fact; `None` for "now" facts.
    pub fn bucket(&self) -> Option<i64> {
        match self {
            Fact::FirstResponse { bucket, .. }
            | Fact::WhatsappOutcome { bucket, .. }
            | Fact::Message { bucket, .. }
            | Fact::ConversationOpened { bucket, .. }
            | Fact::Resolution { bucket, .. }
            | Fact::AgentHandled { bucket, .. }
            | Fact::AwaitingFirstResponse { bucket, .. }
            | Fact::CustomerConversation { bucket, .. }
            | Fact::AgentStatusPiece { bucket, .. }
            | Fact::TicketResolved { bucket, .. }
            | Fact::Lead { bucket, .. }
            | Fact::DealWon { bucket, .. }
            | Fact::WhatsappMessage { bucket, .. }
            | Fact::Broadcast { bucket, .. }
            | Fact::AutomationConversation { bucket, .. } => Some(*bucket),
            Fact::ActiveConversation { .. }
            | Fact::OpenTicket { .. }
            | Fact::AgentCurrentStatus { .. }
            | Fact::BroadcastMessage { .. }
            | Fact::ChannelHealth { .. } => None,
        }
    }
}

/// Changes to the fact multiset, complete up to `progress`.
///
/// Every change at a pipeline time `< progress` is in this batch or an earlier one;
/// no later batch carries a change at such a time. `updates` is consolidated: each
/// fact appears at most once, with a non-zero diff.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricBatch {
    /// Pipeline time (ms since epoch) up to which (exclusive) the state is complete.
    pub progress: u64,
    /// Consolidated changes.
    pub updates: Vec<(Fact, i64)>,
    /// Input events the pipeline had consumed when this batch was complete.
    pub events_consumed: u64,
}
