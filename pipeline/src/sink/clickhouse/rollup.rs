//! From metric facts to rollup rows: which table, which key, how much.
//!
//! A fact contributes fixed amounts (its [`Measures`]) to one or more rows; the sink
//! multiplies them by the fact's diff and keeps every row's absolute value. A row's key
//! is its table plus its dimension columns, already encoded as JSON members, so that
//! writing a row is a string concatenation and the key doubles as the map key.
//! `None` dimensions are written as `''`.

use std::fmt::Write as _;

use schemas::metrics::{Fact, Holder};
use schemas::time::{BUCKET_MS, bucket_of};

/// A rollup table (see `infra/clickhouse/0002_rollups.sql` and `docs/clickhouse.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `first_responses_15m`.
    FirstResponses,
    /// `awaiting_first_response_15m`.
    AwaitingFirstResponse,
    /// `whatsapp_outcomes_15m`.
    WhatsappOutcomes,
    /// `messages_15m`.
    Messages,
    /// `conversations_opened_15m`.
    ConversationsOpened,
    /// `resolutions_15m`.
    Resolutions,
    /// `agent_handled_15m`.
    AgentHandled,
    /// `customer_conversations_15m`.
    CustomerConversations,
    /// `agent_status_15m`.
    AgentStatus,
    /// `tickets_resolved_15m`.
    TicketsResolved,
    /// `leads_15m`.
    Leads,
    /// `deals_won_15m`.
    DealsWon,
    /// `active_conversations_now`.
    ActiveConversationsNow,
    /// `open_tickets_now`.
    OpenTicketsNow,
    /// `agent_status_now`.
    AgentStatusNow,
}

impl Table {
    /// Every table.
    pub const ALL: [Table; 15] = [
        Table::FirstResponses,
        Table::AwaitingFirstResponse,
        Table::WhatsappOutcomes,
        Table::Messages,
        Table::ConversationsOpened,
        Table::Resolutions,
        Table::AgentHandled,
        Table::CustomerConversations,
        Table::AgentStatus,
        Table::TicketsResolved,
        Table::Leads,
        Table::DealsWon,
        Table::ActiveConversationsNow,
        Table::OpenTicketsNow,
        Table::AgentStatusNow,
    ];

    /// The table's name in ClickHouse.
    pub fn name(self) -> &'static str {
        match self {
            Table::FirstResponses => "first_responses_15m",
            Table::AwaitingFirstResponse => "awaiting_first_response_15m",
            Table::WhatsappOutcomes => "whatsapp_outcomes_15m",
            Table::Messages => "messages_15m",
            Table::ConversationsOpened => "conversations_opened_15m",
            Table::Resolutions => "resolutions_15m",
            Table::AgentHandled => "agent_handled_15m",
            Table::CustomerConversations => "customer_conversations_15m",
            Table::AgentStatus => "agent_status_15m",
            Table::TicketsResolved => "tickets_resolved_15m",
            Table::Leads => "leads_15m",
            Table::DealsWon => "deals_won_15m",
            Table::ActiveConversationsNow => "active_conversations_now",
            Table::OpenTicketsNow => "open_tickets_now",
            Table::AgentStatusNow => "agent_status_now",
        }
    }

    /// Names of the measure columns, in [`Measures`] order (one or two).
    pub fn measures(self) -> &'static [&'static str] {
        match self {
            Table::FirstResponses => &["responses"],
            Table::AwaitingFirstResponse
            | Table::ConversationsOpened
            | Table::CustomerConversations
            | Table::ActiveConversationsNow => &["conversations"],
            Table::WhatsappOutcomes | Table::Messages => &["messages"],
            Table::Resolutions => &["resolutions"],
            Table::AgentHandled => &["handled"],
            Table::AgentStatus => &["milliseconds"],
            Table::TicketsResolved | Table::OpenTicketsNow => &["tickets"],
            Table::Leads => &["leads"],
            Table::DealsWon => &["deals", "amount_minor"],
            Table::AgentStatusNow => &["agents"],
        }
    }
}

/// Measure values of a row, in [`Table::measures`] order; unused slots stay 0.
pub type Measures = [i64; 2];

/// A rollup row's identity: its table and its dimension columns as JSON members
/// (`"account_id":1,"bucket":1795458600,"channel":"whatsapp"`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RowKey {
    /// The table.
    pub table: Table,
    /// Dimension columns, JSON-encoded, without braces.
    pub columns: Box<str>,
}

impl RowKey {
    /// The JSONEachRow line for this row with `measures` at `version`.
    pub fn to_json_line(&self, measures: Measures, version: u64, out: &mut String) {
        out.push('{');
        out.push_str(&self.columns);
        for (name, value) in self.table.measures().iter().zip(measures) {
            let _ = write!(out, ",\"{name}\":{value}");
        }
        let _ = writeln!(out, ",\"version\":{version}}}");
    }
}

/// Builds the dimension columns of one row.
struct Cols(String);

impl Cols {
    fn new(account_id: u64) -> Self {
        Self(format!("\"account_id\":{account_id}"))
    }

    fn bucket(self, bucket_ms: i64) -> Self {
        self.int("bucket", bucket_ms.div_euclid(1000))
    }

    fn int(mut self, name: &str, v: i64) -> Self {
        let _ = write!(self.0, ",\"{name}\":{v}");
        self
    }

    fn flag(self, name: &str, v: bool) -> Self {
        self.int(name, i64::from(v))
    }

    fn str(mut self, name: &str, v: &str) -> Self {
        let _ = write!(self.0, ",\"{name}\":");
        // serde_json escapes quotes, backslashes and control characters.
        self.0
            .push_str(&serde_json::to_string(v).expect("a str always serializes"));
        self
    }

    fn opt(self, name: &str, v: Option<&str>) -> Self {
        self.str(name, v.unwrap_or(""))
    }

    fn key(self, table: Table) -> RowKey {
        RowKey {
            table,
            columns: self.0.into_boxed_str(),
        }
    }
}

fn holder_str(h: Holder) -> &'static str {
    match h {
        Holder::Unassigned => "unassigned",
        Holder::Bot => "bot",
        Holder::Agent => "agent",
    }
}

/// Appends to `out` the rows `fact` contributes to, each with the amounts one unit of
/// the fact adds. Returns `false` for a fact with no table yet (counted by the sink).
pub fn rows_of(fact: &Fact, out: &mut Vec<(RowKey, Measures)>) -> bool {
    let one = [1, 0];
    match fact {
        Fact::FirstResponse {
            account_id,
            bucket,
            seconds,
            channel,
            inbox_id,
            agent_id,
            team_id,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .str("channel", channel.as_str())
                .str("inbox_id", inbox_id)
                .opt("agent_id", agent_id.as_deref())
                .opt("team_id", team_id.as_deref())
                .int("seconds", i64::from(*seconds))
                .key(Table::FirstResponses),
            one,
        )),
        Fact::AwaitingFirstResponse {
            account_id,
            bucket,
            start_ms,
            resolved_at_ms,
            channel,
            inbox_id,
            team_id,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .str("channel", channel.as_str())
                .str("inbox_id", inbox_id)
                .opt("team_id", team_id.as_deref())
                .int("start_ms", *start_ms)
                .int("resolved_at_ms", resolved_at_ms.unwrap_or(0))
                .key(Table::AwaitingFirstResponse),
            one,
        )),
        Fact::WhatsappOutcome {
            account_id,
            bucket,
            delivered,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .flag("delivered", *delivered)
                .key(Table::WhatsappOutcomes),
            one,
        )),
        Fact::Message {
            account_id,
            bucket,
            direction,
            channel,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .str("direction", direction.as_str())
                .str("channel", channel.as_str())
                .key(Table::Messages),
            one,
        )),
        Fact::ConversationOpened {
            account_id,
            bucket,
            resolved,
            channel,
            inbox_id,
            campaign_id,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .str("channel", channel.as_str())
                .str("inbox_id", inbox_id)
                .opt("campaign_id", campaign_id.as_deref())
                .flag("resolved", *resolved)
                .key(Table::ConversationsOpened),
            one,
        )),
        Fact::Resolution {
            account_id,
            bucket,
            resolved_by,
            agent_id,
            channel,
            inbox_id,
            // Not a column of `resolutions_15m` (docs/clickhouse.md).
            team_id: _,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .str("resolved_by", resolved_by.as_str())
                .opt("agent_id", agent_id.as_deref())
                .str("channel", channel.as_str())
                .str("inbox_id", inbox_id)
                .key(Table::Resolutions),
            one,
        )),
        Fact::AgentHandled {
            account_id,
            bucket,
            agent_id,
            team_id,
            conversation_id,
            channel,
            inbox_id,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .str("agent_id", agent_id)
                .opt("team_id", team_id.as_deref())
                .str("channel", channel.as_str())
                .str("inbox_id", inbox_id)
                .str("conversation_id", conversation_id)
                .key(Table::AgentHandled),
            one,
        )),
        Fact::CustomerConversation {
            account_id,
            bucket,
            customer_id,
            first,
            channel,
            inbox_id,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .str("channel", channel.as_str())
                .str("inbox_id", inbox_id)
                .str("customer_id", customer_id)
                .flag("first", *first)
                .key(Table::CustomerConversations),
            one,
        )),
        Fact::AgentStatusPiece {
            account_id,
            agent_id,
            team_id,
            status,
            start_ms,
            end_ms,
            ..
        } => {
            // Spread the stretch over the buckets it covers, so that any bucket-aligned
            // range (every local hour or day) sums exactly.
            let mut b = bucket_of(*start_ms);
            while b < *end_ms {
                let overlap = (*end_ms).min(b + BUCKET_MS) - (*start_ms).max(b);
                if overlap > 0 {
                    out.push((
                        Cols::new(*account_id)
                            .bucket(b)
                            .str("agent_id", agent_id)
                            .opt("team_id", team_id.as_deref())
                            .str("status", status.as_str())
                            .key(Table::AgentStatus),
                        [overlap, 0],
                    ));
                }
                b += BUCKET_MS;
            }
        }
        Fact::TicketResolved {
            account_id,
            bucket,
            priority,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .opt("priority", priority.map(|p| p.as_str()))
                .key(Table::TicketsResolved),
            one,
        )),
        Fact::Lead {
            account_id,
            bucket,
            campaign_id,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .opt("campaign_id", campaign_id.as_deref())
                .key(Table::Leads),
            one,
        )),
        Fact::DealWon {
            account_id,
            bucket,
            campaign_id,
            amount_minor,
            currency,
        } => out.push((
            Cols::new(*account_id)
                .bucket(*bucket)
                .opt("campaign_id", campaign_id.as_deref())
                .str("currency", currency)
                .key(Table::DealsWon),
            [1, *amount_minor],
        )),
        Fact::ActiveConversation {
            account_id,
            holder,
            agent_id,
            channel,
            inbox_id,
        } => out.push((
            Cols::new(*account_id)
                .str("holder", holder_str(*holder))
                .opt("agent_id", agent_id.as_deref())
                .str("channel", channel.as_str())
                .str("inbox_id", inbox_id)
                .key(Table::ActiveConversationsNow),
            one,
        )),
        Fact::OpenTicket {
            account_id,
            priority,
        } => out.push((
            Cols::new(*account_id)
                .str("priority", priority.as_str())
                .key(Table::OpenTicketsNow),
            one,
        )),
        Fact::AgentCurrentStatus {
            account_id,
            agent_id,
            team_id,
            status,
            since_ms,
        } => out.push((
            Cols::new(*account_id)
                .str("agent_id", agent_id)
                .opt("team_id", team_id.as_deref())
                .str("status", status.as_str())
                .int("since_ms", *since_ms)
                .key(Table::AgentStatusNow),
            one,
        )),
        // ── Facts without a table yet ────────────────────────────────────────────────
        // The WhatsApp-performance and automation-impact facts (branch `sections`) land
        // here until they get their tables: add a migration `infra/clickhouse/0003_*.sql`,
        // a `Table` variant and an arm above. Until then they are counted in
        // `crmpulse_clickhouse_unmapped_facts_total` and skipped, never an error.
        #[allow(unreachable_patterns)]
        _ => return false,
    }
    true
}

#[cfg(test)]
mod tests {
    use schemas::event::{AgentStatus, Channel, Direction};

    use super::*;

    #[test]
    fn a_message_is_one_row_with_json_dimensions() {
        let mut out = Vec::new();
        assert!(rows_of(
            &Fact::Message {
                account_id: 7,
                bucket: 1_795_458_600_000,
                direction: Direction::Inbound,
                channel: Channel::Whatsapp,
            },
            &mut out,
        ));
        assert_eq!(out.len(), 1);
        let mut line = String::new();
        out[0].0.to_json_line(out[0].1, 42, &mut line);
        assert_eq!(
            line,
            "{\"account_id\":7,\"bucket\":1795458600,\"direction\":\"inbound\",\"channel\":\"whatsapp\",\"messages\":1,\"version\":42}\n"
        );
    }

    #[test]
    fn strings_are_escaped_and_none_is_empty() {
        let mut out = Vec::new();
        rows_of(
            &Fact::Lead {
                account_id: 1,
                bucket: 0,
                campaign_id: Some("a\"b".into()),
            },
            &mut out,
        );
        rows_of(
            &Fact::Lead {
                account_id: 1,
                bucket: 0,
                campaign_id: None,
            },
            &mut out,
        );
        assert!(out[0].0.columns.ends_with(r#""campaign_id":"a\"b""#));
        assert!(out[1].0.columns.ends_with(r#""campaign_id":"""#));
    }

    #[test]
    fn status_stretches_split_exactly_over_buckets() {
        let start = 1_795_458_600_000 + 10 * 60_000; // 10 min into a bucket
        let end = start + 40 * 60_000; // 40 minutes
        let mut out = Vec::new();
        rows_of(
            &Fact::AgentStatusPiece {
                account_id: 1,
                bucket: bucket_of(start),
                agent_id: "a".into(),
                team_id: None,
                status: AgentStatus::Online,
                start_ms: start,
                end_ms: end,
            },
            &mut out,
        );
        let ms: Vec<i64> = out.iter().map(|(_, m)| m[0]).collect();
        assert_eq!(ms, [5 * 60_000, 15 * 60_000, 15 * 60_000, 5 * 60_000]);
        assert_eq!(ms.iter().sum::<i64>(), end - start);
    }
}
