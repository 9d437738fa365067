//! The input event contract (see `docs/events.md`).
//!
//! [`Event`] is the validated form every stage works with: once a value of this type
//! exists, every required field is present, every enum is a known value and every
//! range check has passed. It comes from the canonical JSON form
//! ([`Event::from_json`]) or from protobuf ([`Event::from_proto_bytes`]); both
//! conversions reject bad input with an [`EventError`] naming the field at fault.
//! Unknown JSON fields are ignored, so producers can add fields without breaking
//! older consumers.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use prost::Message as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::proto;

/// Why an event was rejected. `Display` reads `field: problem`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct EventError {
    /// The field at fault (`type`, `channel`, …), or `event` for the whole record.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl EventError {
    fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            problem: problem.into(),
        }
    }

    /// A short stable label for metrics (`missing_field`, `bad_enum`, …).
    pub fn kind(&self) -> &'static str {
        let p = self.problem.as_str();
        if p.starts_with("missing") {
            "missing_field"
        } else if p.starts_with("unknown value") {
            "bad_enum"
        } else if p.starts_with("unknown event type") {
            "unknown_type"
        } else if p.starts_with("expected") {
            "wrong_type"
        } else if p.starts_with("not valid") {
            "malformed"
        } else {
            "out_of_range"
        }
    }
}

/// Defines a closed enum with its JSON names and its protobuf mapping.
macro_rules! contract_enum {
    ($(#[$meta:meta])* $name:ident, $proto:ident { $($variant:ident = $json:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The canonical JSON name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $json),+ }
            }

            /// Parses the canonical JSON name.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($json => Some($name::$variant),)+ _ => None }
            }

            fn expected() -> String {
                [$($json),+].join(", ")
            }

            fn to_proto(self) -> i32 {
                match self { $($name::$variant => proto::$proto::$variant as i32),+ }
            }

            fn from_proto(field: &str, v: i32) -> Result<Self, EventError> {
                match proto::$proto::try_from(v) {
                    $(Ok(proto::$proto::$variant) => Ok($name::$variant),)+
                    _ => Err(EventError::new(field, format!(
                        "unknown value {v}, expected one of {}", Self::expected()))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

contract_enum!(
    /// The channel a conversation or message travels on.
    Channel, Channel {
        Whatsapp = "whatsapp", Webchat = "webchat", Email = "email",
        Instagram = "instagram", Messenger = "messenger", Sms = "sms",
    }
);
contract_enum!(
    /// How a conversation started.
    Origin, Origin { Inbound = "inbound", Campaign = "campaign" }
);
contract_enum!(
    /// Who a conversation is assigned to.
    Assignee, Assignee { Bot = "bot", Agent = "agent" }
);
contract_enum!(
    /// Who resolved a conversation; `system` means closed for inactivity.
    ResolvedBy, ResolvedBy { Agent = "agent", Bot = "bot", System = "system" }
);
contract_enum!(
    /// Message direction, seen from the business.
    Direction, Direction { Inbound = "inbound", Outbound = "outbound" }
);
contract_enum!(
    /// Who wrote a message.
    Sender, Sender { Customer = "customer", Agent = "agent", Bot = "bot", System = "system" }
);
contract_enum!(
    /// Delivery status of an outbound message. Ordered: a status never moves backwards.
    DeliveryStatus, DeliveryStatus {
        Sent = "sent", Delivered = "delivered", Read = "read", Failed = "failed",
    }
);
contract_enum!(
    /// An agent's presence.
    AgentStatus, AgentStatus { Online = "online", Busy = "busy", Away = "away", Offline = "offline" }
);
contract_enum!(
    /// Ticket priority.
    Priority, Priority { Low = "low", Medium = "medium", High = "high", Urgent = "urgent" }
);
contract_enum!(
    /// Connection state of a channel (e.g. a WhatsApp number).
    ChannelState, ChannelState {
        Connected = "connected", Degraded = "degraded", Disconnected = "disconnected",
    }
);
contract_enum!(
    /// WhatsApp quality rating of a channel.
    Quality, Quality { Green = "green", Yellow = "yellow", Red = "red" }
);

/// A validated CRM event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Unique id; a second delivery of the same id changes nothing.
    pub event_id: String,
    /// The tenant.
    pub account_id: u64,
    /// Event time, milliseconds since the Unix epoch.
    #[serde(rename = "occurred_at", serialize_with = "ser_rfc3339")]
    pub occurred_at_ms: i64,
    /// What happened.
    #[serde(flatten)]
    pub payload: Payload,
}

/// The type-specific part of an [`Event`]; `type` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Payload {
    ConversationOpened {
        conversation_id: String,
        customer_id: String,
        channel: Channel,
        inbox_id: String,
        origin: Origin,
        #[serde(skip_serializing_if = "Option::is_none")]
        campaign_id: Option<String>,
    },
    ConversationAssigned {
        conversation_id: String,
        assignee: Assignee,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        team_id: Option<String>,
    },
    ConversationEscalated {
        conversation_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    ConversationResolved {
        conversation_id: String,
        resolved_by: ResolvedBy,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
    },
    ConversationReopened {
        conversation_id: String,
    },
    MessageCreated {
        message_id: String,
        conversation_id: String,
        direction: Direction,
        sender: Sender,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent_id: Option<String>,
        channel: Channel,
        #[serde(skip_serializing_if = "Option::is_none")]
        broadcast_id: Option<String>,
        auto_reply: bool,
    },
    MessageStatus {
        message_id: String,
        status: DeliveryStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_code: Option<i64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_title: Option<String>,
    },
    AgentStatusChanged {
        agent_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        team_id: Option<String>,
        status: AgentStatus,
    },
    TicketOpened {
        ticket_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<String>,
        priority: Priority,
    },
    TicketResolved {
        ticket_id: String,
    },
    IntentDetected {
        conversation_id: String,
        intent: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        confidence: Option<f64>,
    },
    CsatSubmitted {
        conversation_id: String,
        score: u8,
    },
    LeadCreated {
        lead_id: String,
        customer_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        campaign_id: Option<String>,
    },
    DealWon {
        lead_id: String,
        amount_minor: i64,
        currency: String,
    },
    BroadcastSent {
        broadcast_id: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        campaign_id: Option<String>,
        recipients: u64,
    },
    ChannelHealth {
        channel_id: String,
        state: ChannelState,
        quality: Quality,
        queue_depth: u64,
        sent_per_minute: f64,
    },
}

/// Every accepted value of `type`.
pub const EVENT_TYPES: &[&str] = &[
    "conversation_opened",
    "conversation_assigned",
    "conversation_escalated",
    "conversation_resolved",
    "conversation_reopened",
    "message_created",
    "message_status",
    "agent_status_changed",
    "ticket_opened",
    "ticket_resolved",
    "intent_detected",
    "csat_submitted",
    "lead_created",
    "deal_won",
    "broadcast_sent",
    "channel_health",
];

fn ser_rfc3339<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_ms(*ms))
}

/// Formats epoch milliseconds as RFC 3339 UTC with millisecond precision.
pub fn format_rfc3339_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Earliest and latest accepted `occurred_at` (years 1970 to 9999).
const MIN_TIME_MS: i64 = 0;
const MAX_TIME_MS: i64 = 253_402_300_799_999;

impl Event {
    /// The event's `type` name.
    pub fn type_name(&self) -> &'static str {
        self.payload.type_name()
    }

    /// The conversation this event belongs to, when it names one.
    pub fn conversation_id(&self) -> Option<&str> {
        match &self.payload {
            Payload::ConversationOpened {
                conversation_id, ..
            }
            | Payload::ConversationAssigned {
                conversation_id, ..
            }
            | Payload::ConversationEscalated {
                conversation_id, ..
            }
            | Payload::ConversationResolved {
                conversation_id, ..
            }
            | Payload::ConversationReopened { conversation_id }
            | Payload::MessageCreated {
                conversation_id, ..
            }
            | Payload::IntentDetected {
                conversation_id, ..
            }
            | Payload::CsatSubmitted {
                conversation_id, ..
            } => Some(conversation_id),
            Payload::TicketOpened {
                conversation_id, ..
            }
            | Payload::LeadCreated {
                conversation_id, ..
            } => conversation_id.as_deref(),
            _ => None,
        }
    }

    /// The Kafka message key: `account_id:conversation_id`, or `account_id:entity_id`
    /// for events without a conversation, so that one entity's events stay in order
    /// on one partition.
    pub fn partition_key(&self) -> String {
        let entity = match &self.payload {
            Payload::MessageStatus { message_id, .. } => message_id.as_str(),
            Payload::AgentStatusChanged { agent_id, .. } => agent_id,
            Payload::TicketOpened { ticket_id, .. } | Payload::TicketResolved { ticket_id } => {
                ticket_id
            }
            Payload::LeadCreated { lead_id, .. } | Payload::DealWon { lead_id, .. } => lead_id,
            Payload::BroadcastSent { broadcast_id, .. } => broadcast_id,
            Payload::ChannelHealth { channel_id, .. } => channel_id,
            _ => self.conversation_id().unwrap_or_default(),
        };
        format!("{}:{}", self.account_id, entity)
    }

    /// Parses and validates one event in canonical JSON form.
    ///
    /// # Errors
    /// An [`EventError`] naming the first field that is missing, of the wrong type,
    /// out of range or not a known enum value.
    pub fn from_json(text: &str) -> Result<Self, EventError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| EventError::new("event", format!("not valid JSON: {e}")))?;
        Self::from_json_value(&value)
    }

    /// Validates one event already parsed as JSON. See [`Event::from_json`].
    ///
    /// # Errors
    /// As [`Event::from_json`].
    pub fn from_json_value(value: &Value) -> Result<Self, EventError> {
        let Some(map) = value.as_object() else {
            return Err(EventError::new("event", "expected a JSON object"));
        };
        let o = Obj(map);
        let event_id = o.string("event_id")?;
        let account_id = o.u64("account_id")?;
        let occurred_at = o.string("occurred_at")?;
        let occurred_at_ms = DateTime::parse_from_rfc3339(&occurred_at)
            .map_err(|e| {
                EventError::new(
                    "occurred_at",
                    format!("not valid RFC 3339 ({e}): {occurred_at:?}"),
                )
            })?
            .timestamp_millis();
        check_time(occurred_at_ms)?;
        let ty = o.string("type")?;
        let payload = Payload::from_json(&ty, &o)?;
        Ok(Event {
            event_id,
            account_id,
            occurred_at_ms,
            payload,
        })
    }

    /// The canonical JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an Event always serializes")
    }

    /// Decodes and validates a protobuf-encoded event.
    ///
    /// # Errors
    /// An [`EventError`] for undecodable bytes or an invalid field.
    pub fn from_proto_bytes(bytes: &[u8]) -> Result<Self, EventError> {
        let msg = proto::Event::decode(bytes)
            .map_err(|e| EventError::new("event", format!("not valid protobuf: {e}")))?;
        Self::try_from(msg)
    }

    /// The protobuf wire form.
    pub fn to_proto_bytes(&self) -> Vec<u8> {
        proto::Event::from(self).encode_to_vec()
    }
}

fn check_time(ms: i64) -> Result<(), EventError> {
    if (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
        Ok(())
    } else {
        Err(EventError::new(
            "occurred_at",
            "out of range: must be between 1970 and 9999",
        ))
    }
}

/// Typed, field-naming accessors over a JSON object.
struct Obj<'a>(&'a Map<String, Value>);

impl Obj<'_> {
    fn get(&self, field: &str) -> Option<&Value> {
        self.0.get(field).filter(|v| !v.is_null())
    }

    fn string(&self, field: &str) -> Result<String, EventError> {
        self.opt_string(field)?
            .ok_or_else(|| EventError::new(field, "missing required field"))
    }

    fn opt_string(&self, field: &str) -> Result<Option<String>, EventError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => {
                Err(EventError::new(field, "out of range: must not be empty"))
            }
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(EventError::new(
                field,
                format!("expected a string, got {}", kind(other)),
            )),
        }
    }

    fn u64(&self, field: &str) -> Result<u64, EventError> {
        match self.get(field) {
            None => Err(EventError::new(field, "missing required field")),
            Some(v) => v.as_u64().ok_or_else(|| {
                EventError::new(
                    field,
                    format!("expected a non-negative integer, got {}", kind(v)),
                )
            }),
        }
    }

    fn i64_opt(&self, field: &str) -> Result<Option<i64>, EventError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                EventError::new(field, format!("expected an integer, got {}", kind(v)))
            }),
        }
    }

    fn f64_opt(&self, field: &str) -> Result<Option<f64>, EventError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                EventError::new(field, format!("expected a number, got {}", kind(v)))
            }),
        }
    }

    fn bool_or(&self, field: &str, default: bool) -> Result<bool, EventError> {
        match self.get(field) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(EventError::new(
                field,
                format!("expected a boolean, got {}", kind(v)),
            )),
        }
    }

    fn parsed<E>(
        &self,
        field: &str,
        parse: fn(&str) -> Option<E>,
        expected: fn() -> String,
    ) -> Result<E, EventError> {
        let s = self.string(field)?;
        parse(&s).ok_or_else(|| {
            EventError::new(
                field,
                format!("unknown value {s:?}, expected one of {}", expected()),
            )
        })
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

macro_rules! enum_field {
    ($o:expr, $field:literal, $ty:ident) => {
        $o.parsed($field, $ty::parse, $ty::expected)?
    };
}

fn check_score(score: u64) -> Result<u8, EventError> {
    match score {
        1..=5 => Ok(score as u8),
        _ => Err(EventError::new(
            "score",
            format!("out of range: {score}, expected 1..5"),
        )),
    }
}

/// Largest accepted `deal_won.amount_minor`: 10^15 minor units (ten trillion in a
/// two-decimal currency). Sums of bounded values are exact 128-bit sums.
pub const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000_000;
/// Largest accepted `broadcast_sent.recipients`.
pub const MAX_RECIPIENTS: u64 = 1_000_000_000;
/// Largest accepted `channel_health.queue_depth`.
pub const MAX_QUEUE_DEPTH: u64 = 1_000_000_000;
/// Largest accepted `channel_health.sent_per_minute`.
pub const MAX_SENT_PER_MINUTE: f64 = 1_000_000.0;

fn check_amount(amount: i64) -> Result<i64, EventError> {
    if (0..=MAX_AMOUNT_MINOR).contains(&amount) {
        Ok(amount)
    } else {
        Err(EventError::new(
            "amount_minor",
            format!("out of range: {amount}, expected 0..={MAX_AMOUNT_MINOR}"),
        ))
    }
}

fn check_count(field: &'static str, n: u64, max: u64) -> Result<u64, EventError> {
    if n <= max {
        Ok(n)
    } else {
        Err(EventError::new(
            field,
            format!("out of range: {n}, expected 0..={max}"),
        ))
    }
}

fn check_currency(currency: String) -> Result<String, EventError> {
    if currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(currency)
    } else {
        Err(EventError::new(
            "currency",
            format!("out of range: {currency:?} is not an ISO 4217 code such as \"USD\""),
        ))
    }
}

fn check_confidence(c: Option<f64>) -> Result<Option<f64>, EventError> {
    match c {
        Some(c) if !(0.0..=1.0).contains(&c) => Err(EventError::new(
            "confidence",
            format!("out of range: {c}, expected 0..1"),
        )),
        other => Ok(other),
    }
}

fn check_rate(r: f64) -> Result<f64, EventError> {
    if r.is_finite() && (0.0..=MAX_SENT_PER_MINUTE).contains(&r) {
        Ok(r)
    } else {
        Err(EventError::new(
            "sent_per_minute",
            format!("out of range: {r}, expected 0..={MAX_SENT_PER_MINUTE}"),
        ))
    }
}

impl Payload {
    /// The `type` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::ConversationOpened { .. } => "conversation_opened",
            Payload::ConversationAssigned { .. } => "conversation_assigned",
            Payload::ConversationEscalated { .. } => "conversation_escalated",
            Payload::ConversationResolved { .. } => "conversation_resolved",
            Payload::ConversationReopened { .. } => "conversation_reopened",
            Payload::MessageCreated { .. } => "message_created",
            Payload::MessageStatus { .. } => "message_status",
            Payload::AgentStatusChanged { .. } => "agent_status_changed",
            Payload::TicketOpened { .. } => "ticket_opened",
            Payload::TicketResolved { .. } => "ticket_resolved",
            Payload::IntentDetected { .. } => "intent_detected",
            Payload::CsatSubmitted { .. } => "csat_submitted",
            Payload::LeadCreated { .. } => "lead_created",
            Payload::DealWon { .. } => "deal_won",
            Payload::BroadcastSent { .. } => "broadcast_sent",
            Payload::ChannelHealth { .. } => "channel_health",
        }
    }

    fn from_json(ty: &str, o: &Obj<'_>) -> Result<Self, EventError> {
        Ok(match ty {
            "conversation_opened" => Payload::ConversationOpened {
                conversation_id: o.string("conversation_id")?,
                customer_id: o.string("customer_id")?,
                channel: enum_field!(o, "channel", Channel),
                inbox_id: o.string("inbox_id")?,
                origin: enum_field!(o, "origin", Origin),
                campaign_id: o.opt_string("campaign_id")?,
            },
            "conversation_assigned" => Payload::ConversationAssigned {
                conversation_id: o.string("conversation_id")?,
                assignee: enum_field!(o, "assignee", Assignee),
                agent_id: o.opt_string("agent_id")?,
                team_id: o.opt_string("team_id")?,
            },
            "conversation_escalated" => Payload::ConversationEscalated {
                conversation_id: o.string("conversation_id")?,
                reason: o.opt_string("reason")?,
            },
            "conversation_resolved" => Payload::ConversationResolved {
                conversation_id: o.string("conversation_id")?,
                resolved_by: enum_field!(o, "resolved_by", ResolvedBy),
                agent_id: o.opt_string("agent_id")?,
            },
            "conversation_reopened" => Payload::ConversationReopened {
                conversation_id: o.string("conversation_id")?,
            },
            "message_created" => Payload::MessageCreated {
                message_id: o.string("message_id")?,
                conversation_id: o.string("conversation_id")?,
                direction: enum_field!(o, "direction", Direction),
                sender: enum_field!(o, "sender", Sender),
                agent_id: o.opt_string("agent_id")?,
                channel: enum_field!(o, "channel", Channel),
                broadcast_id: o.opt_string("broadcast_id")?,
                auto_reply: o.bool_or("auto_reply", false)?,
            },
            "message_status" => Payload::MessageStatus {
                message_id: o.string("message_id")?,
                status: enum_field!(o, "status", DeliveryStatus),
                error_code: o.i64_opt("error_code")?,
                error_title: o.opt_string("error_title")?,
            },
            "agent_status_changed" => Payload::AgentStatusChanged {
                agent_id: o.string("agent_id")?,
                team_id: o.opt_string("team_id")?,
                status: enum_field!(o, "status", AgentStatus),
            },
            "ticket_opened" => Payload::TicketOpened {
                ticket_id: o.string("ticket_id")?,
                conversation_id: o.opt_string("conversation_id")?,
                priority: enum_field!(o, "priority", Priority),
            },
            "ticket_resolved" => Payload::TicketResolved {
                ticket_id: o.string("ticket_id")?,
            },
            "intent_detected" => Payload::IntentDetected {
                conversation_id: o.string("conversation_id")?,
                intent: o.string("intent")?,
                confidence: check_confidence(o.f64_opt("confidence")?)?,
            },
            "csat_submitted" => Payload::CsatSubmitted {
                conversation_id: o.string("conversation_id")?,
                score: check_score(o.u64("score")?)?,
            },
            "lead_created" => Payload::LeadCreated {
                lead_id: o.string("lead_id")?,
                customer_id: o.string("customer_id")?,
                conversation_id: o.opt_string("conversation_id")?,
                campaign_id: o.opt_string("campaign_id")?,
            },
            "deal_won" => Payload::DealWon {
                lead_id: o.string("lead_id")?,
                amount_minor: check_amount(
                    o.i64_opt("amount_minor")?
                        .ok_or_else(|| EventError::new("amount_minor", "missing required field"))?,
                )?,
                currency: check_currency(o.string("currency")?)?,
            },
            "broadcast_sent" => Payload::BroadcastSent {
                broadcast_id: o.string("broadcast_id")?,
                campaign_id: o.opt_string("campaign_id")?,
                recipients: check_count("recipients", o.u64("recipients")?, MAX_RECIPIENTS)?,
            },
            "channel_health" => Payload::ChannelHealth {
                channel_id: o.string("channel_id")?,
                state: enum_field!(o, "state", ChannelState),
                quality: enum_field!(o, "quality", Quality),
                queue_depth: check_count("queue_depth", o.u64("queue_depth")?, MAX_QUEUE_DEPTH)?,
                sent_per_minute: check_rate(o.f64_opt("sent_per_minute")?.ok_or_else(|| {
                    EventError::new("sent_per_minute", "missing required field")
                })?)?,
            },
            other => {
                return Err(EventError::new(
                    "type",
                    format!(
                        "unknown event type {other:?}, expected one of {}",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            }
        })
    }
}

// ---------------------------------------------------------------------------------
// Protobuf conversions.

fn req(field: &str, s: String) -> Result<String, EventError> {
    if s.is_empty() {
        Err(EventError::new(field, "missing required field"))
    } else {
        Ok(s)
    }
}

fn opt(field: &str, s: Option<String>) -> Result<Option<String>, EventError> {
    match s {
        Some(s) if s.is_empty() => Err(EventError::new(field, "out of range: must not be empty")),
        other => Ok(other),
    }
}

impl TryFrom<proto::Event> for Event {
    type Error = EventError;

    fn try_from(e: proto::Event) -> Result<Self, EventError> {
        use proto::event::Payload as P;
        let event_id = req("event_id", e.event_id)?;
        check_time(e.occurred_at_ms)?;
        let payload = match e
            .payload
            .ok_or_else(|| EventError::new("type", "missing required field"))?
        {
            P::ConversationOpened(p) => Payload::ConversationOpened {
                conversation_id: req("conversation_id", p.conversation_id)?,
                customer_id: req("customer_id", p.customer_id)?,
                channel: Channel::from_proto("channel", p.channel)?,
                inbox_id: req("inbox_id", p.inbox_id)?,
                origin: Origin::from_proto("origin", p.origin)?,
                campaign_id: opt("campaign_id", p.campaign_id)?,
            },
            P::ConversationAssigned(p) => Payload::ConversationAssigned {
                conversation_id: req("conversation_id", p.conversation_id)?,
                assignee: Assignee::from_proto("assignee", p.assignee)?,
                agent_id: opt("agent_id", p.agent_id)?,
                team_id: opt("team_id", p.team_id)?,
            },
            P::ConversationEscalated(p) => Payload::ConversationEscalated {
                conversation_id: req("conversation_id", p.conversation_id)?,
                reason: opt("reason", p.reason)?,
            },
            P::ConversationResolved(p) => Payload::ConversationResolved {
                conversation_id: req("conversation_id", p.conversation_id)?,
                resolved_by: ResolvedBy::from_proto("resolved_by", p.resolved_by)?,
                agent_id: opt("agent_id", p.agent_id)?,
            },
            P::ConversationReopened(p) => Payload::ConversationReopened {
                conversation_id: req("conversation_id", p.conversation_id)?,
            },
            P::MessageCreated(p) => Payload::MessageCreated {
                message_id: req("message_id", p.message_id)?,
                conversation_id: req("conversation_id", p.conversation_id)?,
                direction: Direction::from_proto("direction", p.direction)?,
                sender: Sender::from_proto("sender", p.sender)?,
                agent_id: opt("agent_id", p.agent_id)?,
                channel: Channel::from_proto("channel", p.channel)?,
                broadcast_id: opt("broadcast_id", p.broadcast_id)?,
                auto_reply: p.auto_reply,
            },
            P::MessageStatus(p) => Payload::MessageStatus {
                message_id: req("message_id", p.message_id)?,
                status: DeliveryStatus::from_proto("status", p.status)?,
                error_code: p.error_code,
                error_title: opt("error_title", p.error_title)?,
            },
            P::AgentStatusChanged(p) => Payload::AgentStatusChanged {
                agent_id: req("agent_id", p.agent_id)?,
                team_id: opt("team_id", p.team_id)?,
                status: AgentStatus::from_proto("status", p.status)?,
            },
            P::TicketOpened(p) => Payload::TicketOpened {
                ticket_id: req("ticket_id", p.ticket_id)?,
                conversation_id: opt("conversation_id", p.conversation_id)?,
                priority: Priority::from_proto("priority", p.priority)?,
            },
            P::TicketResolved(p) => Payload::TicketResolved {
                ticket_id: req("ticket_id", p.ticket_id)?,
            },
            P::IntentDetected(p) => Payload::IntentDetected {
                conversation_id: req("conversation_id", p.conversation_id)?,
                intent: req("intent", p.intent)?,
                confidence: check_confidence(p.confidence)?,
            },
            P::CsatSubmitted(p) => Payload::CsatSubmitted {
                conversation_id: req("conversation_id", p.conversation_id)?,
                score: check_score(u64::from(p.score))?,
            },
            P::LeadCreated(p) => Payload::LeadCreated {
                lead_id: req("lead_id", p.lead_id)?,
                customer_id: req("customer_id", p.customer_id)?,
                conversation_id: opt("conversation_id", p.conversation_id)?,
                campaign_id: opt("campaign_id", p.campaign_id)?,
            },
            P::DealWon(p) => Payload::DealWon {
                lead_id: req("lead_id", p.lead_id)?,
                amount_minor: check_amount(p.amount_minor)?,
                currency: check_currency(req("currency", p.currency)?)?,
            },
            P::BroadcastSent(p) => Payload::BroadcastSent {
                broadcast_id: req("broadcast_id", p.broadcast_id)?,
                campaign_id: opt("campaign_id", p.campaign_id)?,
                recipients: check_count("recipients", p.recipients, MAX_RECIPIENTS)?,
            },
            P::ChannelHealth(p) => Payload::ChannelHealth {
                channel_id: req("channel_id", p.channel_id)?,
                state: ChannelState::from_proto("state", p.state)?,
                quality: Quality::from_proto("quality", p.quality)?,
                queue_depth: check_count("queue_depth", p.queue_depth, MAX_QUEUE_DEPTH)?,
                sent_per_minute: check_rate(p.sent_per_minute)?,
            },
        };
        Ok(Event {
            event_id,
            account_id: e.account_id,
            occurred_at_ms: e.occurred_at_ms,
            payload,
        })
    }
}

impl From<&Event> for proto::Event {
    fn from(e: &Event) -> Self {
        use proto::event::Payload as P;
        let payload = match e.payload.clone() {
            Payload::ConversationOpened {
                conversation_id,
                customer_id,
                channel,
                inbox_id,
                origin,
                campaign_id,
            } => P::ConversationOpened(proto::ConversationOpened {
                conversation_id,
                customer_id,
                channel: channel.to_proto(),
                inbox_id,
                origin: origin.to_proto(),
                campaign_id,
            }),
            Payload::ConversationAssigned {
                conversation_id,
                assignee,
                agent_id,
                team_id,
            } => P::ConversationAssigned(proto::ConversationAssigned {
                conversation_id,
                assignee: assignee.to_proto(),
                agent_id,
                team_id,
            }),
            Payload::ConversationEscalated {
                conversation_id,
                reason,
            } => P::ConversationEscalated(proto::ConversationEscalated {
                conversation_id,
                reason,
            }),
            Payload::ConversationResolved {
                conversation_id,
                resolved_by,
                agent_id,
            } => P::ConversationResolved(proto::ConversationResolved {
                conversation_id,
                resolved_by: resolved_by.to_proto(),
                agent_id,
            }),
            Payload::ConversationReopened { conversation_id } => {
                P::ConversationReopened(proto::ConversationReopened { conversation_id })
            }
            Payload::MessageCreated {
                message_id,
                conversation_id,
                direction,
                sender,
                agent_id,
                channel,
                broadcast_id,
                auto_reply,
            } => P::MessageCreated(proto::MessageCreated {
                message_id,
                conversation_id,
                direction: direction.to_proto(),
                sender: sender.to_proto(),
                agent_id,
                channel: channel.to_proto(),
                broadcast_id,
                auto_reply,
            }),
            Payload::MessageStatus {
                message_id,
                status,
                error_code,
                error_title,
            } => P::MessageStatus(proto::MessageStatus {
                message_id,
                status: status.to_proto(),
                error_code,
                error_title,
            }),
            Payload::AgentStatusChanged {
                agent_id,
                team_id,
                status,
            } => P::AgentStatusChanged(proto::AgentStatusChanged {
                agent_id,
                team_id,
                status: status.to_proto(),
            }),
            Payload::TicketOpened {
                ticket_id,
                conversation_id,
                priority,
            } => P::TicketOpened(proto::TicketOpened {
                ticket_id,
                conversation_id,
                priority: priority.to_proto(),
            }),
            Payload::TicketResolved { ticket_id } => {
                P::TicketResolved(proto::TicketResolved { ticket_id })
            }
            Payload::IntentDetected {
                conversation_id,
                intent,
                confidence,
            } => P::IntentDetected(proto::IntentDetected {
                conversation_id,
                intent,
                confidence,
            }),
            Payload::CsatSubmitted {
                conversation_id,
                score,
            } => P::CsatSubmitted(proto::CsatSubmitted {
                conversation_id,
                score: u32::from(score),
            }),
            Payload::LeadCreated {
                lead_id,
                customer_id,
                conversation_id,
                campaign_id,
            } => P::LeadCreated(proto::LeadCreated {
                lead_id,
                customer_id,
                conversation_id,
                campaign_id,
            }),
            Payload::DealWon {
                lead_id,
                amount_minor,
                currency,
            } => P::DealWon(proto::DealWon {
                lead_id,
                amount_minor,
                currency,
            }),
            Payload::BroadcastSent {
                broadcast_id,
                campaign_id,
                recipients,
            } => P::BroadcastSent(proto::BroadcastSent {
                broadcast_id,
                campaign_id,
                recipients,
            }),
            Payload::ChannelHealth {
                channel_id,
                state,
                quality,
                queue_depth,
                sent_per_minute,
            } => P::ChannelHealth(proto::ChannelHealth {
                channel_id,
                state: state.to_proto(),
                quality: quality.to_proto(),
                queue_depth,
                sent_per_minute,
            }),
        };
        proto::Event {
            event_id: e.event_id.clone(),
            account_id: e.account_id,
            occurred_at_ms: e.occurred_at_ms,
            payload: Some(payload),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opened_json() -> Value {
        serde_json::json!({
            "event_id": "e1", "account_id": 7, "occurred_at": "2026-11-24T09:15:02.123+05:30",
            "type": "conversation_opened", "conversation_id": "c1", "customer_id": "u1",
            "channel": "whatsapp", "inbox_id": "i1", "origin": "inbound", "extra": 1
        })
    }

    #[test]
    fn parses_a_valid_event_and_normalises_time_to_utc() {
        let e = Event::from_json_value(&opened_json()).unwrap();
        assert_eq!(e.account_id, 7);
        assert_eq!(
            format_rfc3339_ms(e.occurred_at_ms),
            "2026-11-24T03:45:02.123Z"
        );
        assert_eq!(e.partition_key(), "7:c1");
        assert!(matches!(
            e.payload,
            Payload::ConversationOpened {
                channel: Channel::Whatsapp,
                ..
            }
        ));
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = opened_json();
        v["channel"] = "fax".into();
        let err = Event::from_json_value(&v).unwrap_err();
        assert_eq!(err.field, "channel");
        assert_eq!(err.kind(), "bad_enum");
        assert!(
            err.to_string()
                .starts_with("channel: unknown value \"fax\", expected one of whatsapp")
        );

        let mut v = opened_json();
        v.as_object_mut().unwrap().remove("customer_id");
        assert_eq!(
            Event::from_json_value(&v).unwrap_err().to_string(),
            "customer_id: missing required field"
        );

        let mut v = opened_json();
        v["account_id"] = "7".into();
        let err = Event::from_json_value(&v).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.kind()),
            ("account_id", "wrong_type")
        );

        let mut v = opened_json();
        v["type"] = "conversation_exploded".into();
        assert_eq!(
            Event::from_json_value(&v).unwrap_err().kind(),
            "unknown_type"
        );

        let mut v = opened_json();
        v["occurred_at"] = "yesterday".into();
        assert_eq!(Event::from_json_value(&v).unwrap_err().field, "occurred_at");

        let csat = serde_json::json!({"event_id": "e", "account_id": 1,
            "occurred_at": "2026-11-24T00:00:00Z", "type": "csat_submitted",
            "conversation_id": "c", "score": 6});
        assert_eq!(
            Event::from_json_value(&csat).unwrap_err().to_string(),
            "score: out of range: 6, expected 1..5"
        );
    }

    #[test]
    fn sums_cannot_wrap_because_values_past_their_bounds_are_refused() {
        let event = |fields: Value| {
            let mut v = serde_json::json!({"event_id": "e", "account_id": 1,
                "occurred_at": "2026-11-24T00:00:00Z"});
            v.as_object_mut()
                .unwrap()
                .extend(fields.as_object().unwrap().clone());
            Event::from_json_value(&v)
        };
        let deal = |amount: i64| {
            event(serde_json::json!({"type": "deal_won", "lead_id": "l",
                "amount_minor": amount, "currency": "USD"}))
        };
        assert!(deal(MAX_AMOUNT_MINOR).is_ok());
        assert_eq!(
            deal(i64::MAX).unwrap_err().to_string(),
            "amount_minor: out of range: 9223372036854775807, expected 0..=1000000000000000"
        );
        assert_eq!(deal(-1).unwrap_err().field, "amount_minor");
        let broadcast = |recipients: u64| {
            event(
                serde_json::json!({"type": "broadcast_sent", "broadcast_id": "b",
                "recipients": recipients}),
            )
        };
        assert!(broadcast(MAX_RECIPIENTS).is_ok());
        assert_eq!(broadcast(u64::MAX).unwrap_err().field, "recipients");
        let health = |queue_depth: u64, rate: f64| {
            event(
                serde_json::json!({"type": "channel_health", "channel_id": "wa",
                "state": "connected", "quality": "green", "queue_depth": queue_depth,
                "sent_per_minute": rate}),
            )
        };
        assert!(health(MAX_QUEUE_DEPTH, MAX_SENT_PER_MINUTE).is_ok());
        assert_eq!(
            health(MAX_QUEUE_DEPTH + 1, 1.0).unwrap_err().field,
            "queue_depth"
        );
        assert_eq!(health(1, 1e300).unwrap_err().field, "sent_per_minute");
        // The protobuf path checks the same bounds.
        let mut p = proto::Event::from(&broadcast(1).unwrap());
        if let Some(proto::event::Payload::BroadcastSent(b)) = &mut p.payload {
            b.recipients = u64::MAX;
        }
        assert_eq!(Event::try_from(p).unwrap_err().field, "recipients");
    }

    #[test]
    fn protobuf_rejects_unspecified_enums_and_missing_payload() {
        let mut p = proto::Event::from(&Event::from_json_value(&opened_json()).unwrap());
        if let Some(proto::event::Payload::ConversationOpened(o)) = &mut p.payload {
            o.channel = 0;
        }
        let err = Event::try_from(p.clone()).unwrap_err();
        assert_eq!(err.field, "channel");
        p.payload = None;
        assert_eq!(Event::try_from(p).unwrap_err().field, "type");
        assert_eq!(
            Event::from_proto_bytes(&[0xff, 0xff]).unwrap_err().kind(),
            "malformed"
        );
    }
}
