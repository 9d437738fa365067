//! Generated event sets and queries for `tests/sections.rs`.
//!
//! A case is a handful of accounts (UTC, Europe/Berlin on a DST-change day,
//! Asia/Kolkata +05:30, Asia/Kathmandu +05:45), each with its own settings, and for
//! each account scripted conversations (opens, bot assignment, escalation, agent
//! assignment with a team, agent replies before and after the bot's hand-over,
//! reopen/resolve by agent, bot and system, messages of every sender, intents, CSAT,
//! tickets, leads and deals) plus entity events that belong to no conversation
//! (WhatsApp outbound messages with statuses in any order, broadcasts, channel
//! health, agent status changes, tickets, leads, deals).
//!
//! Every event gets a distinct `occurred_at_ms` (the docs do not define the order of
//! two events at the same instant): the script's second plus the event's index in
//! milliseconds, and script steps are at least a second apart, so a script's order is
//! its event-time order. Every event happens before the pipeline's final progress.
//! Then some events are redelivered (exact duplicates), everything is shuffled and
//! pushed in several batches.

#![allow(dead_code)]

use chrono::{FixedOffset, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::sample::select;
use schemas::event::*;

pub const AGENTS: &[&str] = &["a1", "a2", "a3"];
pub const TEAMS: &[&str] = &["t1", "t2"];
pub const INBOXES: &[&str] = &["i1", "i2"];
pub const CAMPAIGNS: &[&str] = &["spring", "fall"];
pub const INTENTS: &[&str] = &["billing", "refund", "order_status", "other"];
pub const CURRENCIES: &[&str] = &["USD", "INR", "EUR"];
/// WhatsApp error codes from every category of docs/metrics.md, and some unknown.
pub const ERROR_CODES: &[i64] = &[
    131_026, 131_047, 4, 130_429, 132_001, 100, 190, 250, 131_000, 1, 999_999, 133_005, 368,
];

/// Account ids and their zones: account 1 takes the `defaults` settings.
pub const ZONES: &[(u64, Tz)] = &[
    (1, Tz::UTC),
    (2, Tz::Europe__Berlin),
    (3, Tz::Asia__Kolkata),
    (4, Tz::Asia__Kathmandu),
];

/// The settings of one account.
#[derive(Debug, Clone)]
pub struct AccountSpec {
    pub sla_first_response_s: u32,
    pub alert_below: f64,
    pub agent_hourly_cost_minor: i64,
    pub fees: bool,
    pub currency: &'static str,
}

/// One step of a conversation script.
#[derive(Debug, Clone)]
pub enum Act {
    AssignBot,
    AssignAgent(usize, Option<usize>),
    Escalate,
    AgentMsg(Option<usize>),
    CustomerMsg,
    BotMsg(bool),
    SystemMsg,
    Resolve(ResolvedBy, Option<usize>),
    Reopen,
    Intent(usize),
    Csat(u8),
    /// A second `conversation_opened` (same attributes, a new event).
    OpenAgain,
    TicketOpen(usize, Priority),
    TicketResolve(usize),
    Lead(Option<usize>),
    Deal(i64, usize),
}

/// A conversation: where it starts and what happens, `gap` seconds apart.
#[derive(Debug, Clone)]
pub struct ConvSpec {
    pub account: usize,
    /// Seconds from the main day's UTC midnight.
    pub at_s: i64,
    pub opened: bool,
    pub channel: Channel,
    pub inbox: usize,
    pub customer: usize,
    pub campaign: Option<usize>,
    pub acts: Vec<(i64, Act)>,
}

/// An event (or a few) outside conversations.
#[derive(Debug, Clone)]
pub enum OtherKind {
    /// An outbound message, and its statuses at offsets (s) from its creation.
    Outbound {
        created: bool,
        channel: Channel,
        sender: Sender,
        agent: Option<usize>,
        conversation: Option<usize>,
        broadcast: Option<usize>,
        auto_reply: bool,
        statuses: Vec<(i64, DeliveryStatus, Option<usize>)>,
    },
    Broadcast(usize, Option<usize>, u64),
    Health(usize, ChannelState, Quality, u64, f64),
    AgentStatus(usize, Option<usize>, AgentStatus),
    Ticket(usize, Priority),
    TicketResolved(usize),
    Lead(usize, usize, Option<usize>),
    Deal(usize, i64, usize),
}

#[derive(Debug, Clone)]
pub struct OtherSpec {
    pub account: usize,
    pub at_s: i64,
    pub kind: OtherKind,
}

/// A whole generated case (its `Debug` is a summary: a failure report lists the
/// events and the query; the seed reproduces the case).
#[derive(Clone)]
pub struct Case {
    /// Index into [`DAYS`].
    pub day: usize,
    /// The final pipeline progress, seconds after the main day's UTC midnight.
    pub progress_s: i64,
    pub accounts: Vec<AccountSpec>,
    pub conversations: Vec<ConvSpec>,
    pub others: Vec<OtherSpec>,
    /// Indices (mod the event count) delivered a second time.
    pub duplicates: Vec<usize>,
    /// Shuffle seed and batch sizes.
    pub shuffle: u64,
    pub cuts: Vec<usize>,
    pub queries: Vec<QuerySpec>,
    /// How far the server's clock is ahead of the pipeline's progress, ms.
    pub lag_ms: i64,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Case {{ day: {}, progress_s: {}, lag_ms: {}, {} conversations, {} other events, {} duplicates, cuts {:?}, accounts {:?}, queries {:?} }}",
            self.day(),
            self.progress_s,
            self.lag_ms,
            self.conversations.len(),
            self.others.len(),
            self.duplicates.len(),
            self.cuts,
            self.accounts,
            self.queries
        )
    }
}

/// The main day of a case: both 2025/2026 Berlin DST changes and an ordinary day.
pub const DAYS: &[(i32, u32, u32)] = &[(2025, 10, 26), (2026, 3, 29), (2026, 11, 20)];

impl Case {
    pub fn day(&self) -> NaiveDate {
        let (y, m, d) = DAYS[self.day];
        NaiveDate::from_ymd_opt(y, m, d).expect("date")
    }

    /// The main day's UTC midnight, ms.
    pub fn base_ms(&self) -> i64 {
        Utc.from_utc_datetime(&self.day().and_hms_opt(0, 0, 0).expect("time"))
            .timestamp_millis()
    }

    /// The server's clock ("now"), ms.
    pub fn now_ms(&self) -> i64 {
        self.progress_ms() + self.lag_ms
    }

    /// The pipeline progress after the last batch, ms (off the second grid).
    pub fn progress_ms(&self) -> i64 {
        self.base_ms() + self.progress_s * 1000 + 123
    }
}

/// A time a script starts at: mostly the main day (from 6 h before its UTC midnight
/// to 22 h after), some the day before, some 1–5 weeks before (the forecast's history).
fn start_s() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => -6 * 3600i64..22 * 3600,
        2 => -30 * 3600i64..-6 * 3600,
        1 => (1i64..=5, -2 * 3600i64..26 * 3600).prop_map(|(w, s)| s - w * 7 * 86_400),
    ]
}

fn gap() -> impl Strategy<Value = i64> {
    prop_oneof![3 => 1i64..120, 2 => 120i64..900, 1 => 900i64..10_800]
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    p: f64,
    s: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Option<T>> {
    proptest::option::weighted(p, s)
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => Just(Act::AssignBot),
        4 => (0..AGENTS.len(), opt(0.85, 0..TEAMS.len())).prop_map(|(a, t)| Act::AssignAgent(a, t)),
        2 => Just(Act::Escalate),
        6 => opt(0.92, 0..AGENTS.len()).prop_map(Act::AgentMsg),
        3 => Just(Act::CustomerMsg),
        2 => any::<bool>().prop_map(Act::BotMsg),
        1 => Just(Act::SystemMsg),
        3 => (select(ResolvedBy::ALL), opt(0.85, 0..AGENTS.len())).prop_map(|(by, a)| {
            Act::Resolve(by, if by == ResolvedBy::Agent { a } else { None })
        }),
        1 => Just(Act::Reopen),
        1 => (0..INTENTS.len()).prop_map(Act::Intent),
        1 => (1u8..=5).prop_map(Act::Csat),
        1 => Just(Act::OpenAgain),
        1 => (0..2usize, select(Priority::ALL)).prop_map(|(t, p)| Act::TicketOpen(t, p)),
        1 => (0..2usize).prop_map(Act::TicketResolve),
        1 => opt(0.7, 0..CAMPAIGNS.len()).prop_map(Act::Lead),
        1 => (0i64..100_000, 0..CURRENCIES.len()).prop_map(|(a, c)| Act::Deal(a, c)),
    ]
}

fn conversation() -> impl Strategy<Value = ConvSpec> {
    (
        0..ZONES.len(),
        start_s(),
        proptest::bool::weighted(0.95),
        select(vec![
            Channel::Whatsapp,
            Channel::Whatsapp,
            Channel::Webchat,
            Channel::Sms,
            Channel::Email,
        ]),
        0..INBOXES.len(),
        0..6usize,
        opt(0.3, 0..CAMPAIGNS.len()),
        proptest::collection::vec((gap(), act()), 0..9),
    )
        .prop_map(
            |(account, at_s, opened, channel, inbox, customer, campaign, acts)| ConvSpec {
                account,
                at_s,
                opened,
                channel,
                inbox,
                customer,
                campaign,
                acts,
            },
        )
}

fn other_kind() -> impl Strategy<Value = OtherKind> {
    let statuses = proptest::collection::vec(
        (
            -120i64..7_200,
            select(DeliveryStatus::ALL),
            opt(0.85, 0..ERROR_CODES.len()),
        ),
        0..4,
    );
    prop_oneof![
        6 => (
            proptest::bool::weighted(0.9),
            select(vec![Channel::Whatsapp, Channel::Whatsapp, Channel::Whatsapp, Channel::Sms]),
            select(vec![Sender::Agent, Sender::Bot, Sender::System]),
            opt(0.6, 0..AGENTS.len()),
            opt(0.3, 0..8usize),
            opt(0.4, 0..3usize),
            any::<bool>(),
            statuses,
        )
            .prop_map(|(created, channel, sender, agent, conversation, broadcast, auto_reply, statuses)| {
                OtherKind::Outbound {
                    created, channel, sender,
                    agent: if sender == Sender::Agent { agent } else { None },
                    conversation, broadcast, auto_reply,
                    statuses: statuses
                        .into_iter()
                        .map(|(o, s, c)| (o, s, if s == DeliveryStatus::Failed { c } else { None }))
                        .collect(),
                }
            }),
        1 => (0..3usize, opt(0.7, 0..CAMPAIGNS.len()), 0u64..5_000)
            .prop_map(|(b, c, r)| OtherKind::Broadcast(b, c, r)),
        1 => (0..3usize, select(ChannelState::ALL), select(Quality::ALL), 0u64..500, 0.0f64..100.0)
            .prop_map(|(c, s, q, d, r)| OtherKind::Health(c, s, q, d, r)),
        3 => (0..AGENTS.len(), opt(0.8, 0..TEAMS.len()), select(AgentStatus::ALL))
            .prop_map(|(a, t, s)| OtherKind::AgentStatus(a, t, s)),
        1 => (0..3usize, select(Priority::ALL)).prop_map(|(t, p)| OtherKind::Ticket(t, p)),
        1 => (0..3usize).prop_map(OtherKind::TicketResolved),
        1 => (0..3usize, 0..6usize, opt(0.7, 0..CAMPAIGNS.len()))
            .prop_map(|(l, u, c)| OtherKind::Lead(l, u, c)),
        1 => (0..4usize, 0i64..100_000, 0..CURRENCIES.len())
            .prop_map(|(l, a, c)| OtherKind::Deal(l, a, c)),
    ]
}

fn other() -> impl Strategy<Value = OtherSpec> {
    (0..ZONES.len(), start_s(), other_kind()).prop_map(|(account, at_s, kind)| OtherSpec {
        account,
        at_s,
        kind,
    })
}

fn account() -> impl Strategy<Value = AccountSpec> {
    (
        select(vec![60u32, 120, 300, 600, 900]),
        select(vec![0.5f64, 0.9, 0.95]),
        select(vec![0i64, 1_500, 2_999]),
        any::<bool>(),
        select(vec!["USD", "EUR"]),
    )
        .prop_map(
            |(sla_first_response_s, alert_below, agent_hourly_cost_minor, fees, currency)| {
                AccountSpec {
                    sla_first_response_s,
                    alert_below,
                    agent_hourly_cost_minor,
                    fees,
                    currency,
                }
            },
        )
}

/// How a query names its range.
#[derive(Debug, Clone)]
pub enum RangeSpec {
    /// No `from`, no `to`: today on the clock.
    Default,
    /// `from=<date D+k>` only.
    Day(i64),
    /// `from=<date D+a>&to=<date D+a+len>`.
    Days(i64, i64),
    /// Instants off the 15-minute grid: ms after the main day's UTC midnight, and a
    /// length in ms, written with a UTC offset of `offset_min` minutes.
    Instants(i64, i64, i32),
    /// `from` an instant only (`to` = `from` + 1 day).
    FromInstant(i64, i32),
    /// `from` a date, `to` an instant.
    Mixed(i64, i64),
    /// A range that truncates to nothing (`10:01`–`10:14`): refused.
    Tiny(i64),
    /// `to` before `from`: refused.
    Reversed(i64),
}

#[derive(Debug, Clone)]
pub struct QuerySpec {
    pub range: RangeSpec,
    pub channel: Option<Channel>,
    pub inbox: Option<&'static str>,
    pub agent: Option<&'static str>,
    pub team: Option<&'static str>,
    pub granularity: Option<&'static str>,
}

fn range_spec() -> impl Strategy<Value = RangeSpec> {
    let ms = -30 * 3_600_000i64..24 * 3_600_000;
    prop_oneof![
        2 => Just(RangeSpec::Default),
        2 => (-1i64..=1).prop_map(RangeSpec::Day),
        2 => (-9i64..=0, 1i64..=3).prop_map(|(a, l)| RangeSpec::Days(a, l)),
        1 => Just(RangeSpec::Days(-70, 71)),
        // Around the 400-day limit (query-api's; docs do not state it).
        1 => prop_oneof![Just(RangeSpec::Days(-399, 400)), Just(RangeSpec::Days(-400, 401))],
        4 => (ms.clone(), prop_oneof![60_000i64..3 * 3_600_000, 3_600_000i64..60 * 3_600_000],
              select(vec![0i32, 330, 345, -180, 60]))
            .prop_map(|(f, l, o)| RangeSpec::Instants(f, l, o)),
        1 => (ms.clone(), select(vec![0i32, 330])).prop_map(|(f, o)| RangeSpec::FromInstant(f, o)),
        1 => (-1i64..=0, 3_600_000i64..40 * 3_600_000).prop_map(|(d, t)| RangeSpec::Mixed(d, t)),
        1 => (-24i64..24).prop_map(RangeSpec::Tiny),
        1 => ms.prop_map(RangeSpec::Reversed),
    ]
}

fn query() -> impl Strategy<Value = QuerySpec> {
    (
        range_spec(),
        opt(
            0.25,
            select(vec![Channel::Whatsapp, Channel::Webchat, Channel::Sms]),
        ),
        opt(0.2, select(vec!["i1", "i2", "i9"])),
        opt(0.25, select(vec!["a1", "a2", "a3"])),
        opt(0.25, select(vec!["t1", "t2"])),
        opt(0.4, select(vec!["hour", "day", "week"])),
    )
        .prop_map(
            |(range, channel, inbox, agent, team, granularity)| QuerySpec {
                range,
                channel,
                inbox,
                agent,
                team,
                granularity,
            },
        )
}

/// Every query of a case is asked of every account and every section.
pub fn case() -> impl Strategy<Value = Case> {
    (
        0..DAYS.len(),
        10 * 3600i64..22 * 3600,
        proptest::collection::vec(account(), ZONES.len()),
        proptest::collection::vec(conversation(), 0..12),
        proptest::collection::vec(other(), 0..24),
        proptest::collection::vec(0usize..1000, 0..12),
        any::<u64>(),
        proptest::collection::vec(1usize..40, 1..6),
        proptest::collection::vec(query(), 3..8),
        select(vec![1_234i64, 1_234, 600_000, 3 * 3_600_000 + 1_234]),
    )
        .prop_map(
            |(
                day,
                progress_s,
                accounts,
                conversations,
                others,
                duplicates,
                shuffle,
                cuts,
                queries,
                lag_ms,
            )| Case {
                day,
                progress_s,
                accounts,
                conversations,
                others,
                duplicates,
                shuffle,
                cuts,
                queries,
                lag_ms,
            },
        )
}

/// Events of a case before duplication: `(time in ms without the index, event)`.
struct Builder {
    out: Vec<(i64, u64, Payload)>,
}

impl Builder {
    fn push(&mut self, t_ms: i64, account: u64, p: Payload) {
        self.out.push((t_ms, account, p));
    }
}

/// Options of the materialisation (only to look past known differences locally).
#[derive(Debug, Clone, Copy, Default)]
pub struct Materialize {
    /// Leave out agent messages written while the bot holds a conversation before any
    /// hand-over (known class 1).
    pub no_agent_before_handover: bool,
    /// Leave out conversations whose first open is not their first event, and put
    /// outbound messages outside conversations in conversations of their own.
    pub open_first: bool,
}

/// The events of a case, each once, in generation order, with distinct times.
pub fn events(case: &Case, opts: Materialize) -> Vec<Event> {
    let base = case.base_ms();
    let limit = case.progress_ms() - 1000;
    let mut b = Builder { out: Vec::new() };
    let mut msg = 0usize;
    for (ci, c) in case.conversations.iter().enumerate() {
        let account = ZONES[c.account].0;
        let conv = format!("c{ci}");
        let open = Payload::ConversationOpened {
            conversation_id: conv.clone(),
            customer_id: format!("u{}", c.customer),
            channel: c.channel,
            inbox_id: INBOXES[c.inbox].into(),
            origin: if c.campaign.is_some() {
                Origin::Campaign
            } else {
                Origin::Inbound
            },
            campaign_id: c.campaign.map(|x| CAMPAIGNS[x].to_string()),
        };
        let mut t = base + c.at_s * 1000;
        if opts.open_first && !c.opened {
            continue;
        }
        if c.opened {
            b.push(t, account, open.clone());
        }
        let mut bot_holds = false;
        let mut handed_over = false;
        for (gap, act) in &c.acts {
            t += gap * 1000;
            let cid = conv.clone();
            let message = |msg: &mut usize, direction, sender, agent_id, auto_reply| {
                *msg += 1;
                Payload::MessageCreated {
                    message_id: format!("m{ci}-{msg}"),
                    conversation_id: cid.clone(),
                    direction,
                    sender,
                    agent_id,
                    channel: c.channel,
                    broadcast_id: None,
                    auto_reply,
                }
            };
            let p = match act {
                Act::AssignBot => {
                    bot_holds = true;
                    Payload::ConversationAssigned {
                        conversation_id: cid,
                        assignee: Assignee::Bot,
                        agent_id: None,
                        team_id: None,
                    }
                }
                Act::AssignAgent(a, team) => {
                    if bot_holds {
                        handed_over = true;
                    }
                    bot_holds = false;
                    Payload::ConversationAssigned {
                        conversation_id: cid,
                        assignee: Assignee::Agent,
                        agent_id: Some(AGENTS[*a].into()),
                        team_id: team.map(|x| TEAMS[x].to_string()),
                    }
                }
                Act::Escalate => {
                    if bot_holds {
                        handed_over = true;
                    }
                    Payload::ConversationEscalated {
                        conversation_id: cid,
                        reason: Some("customer asked".into()),
                    }
                }
                Act::AgentMsg(a) => {
                    if opts.no_agent_before_handover && bot_holds && !handed_over {
                        continue;
                    }
                    message(
                        &mut msg,
                        Direction::Outbound,
                        Sender::Agent,
                        a.map(|x| AGENTS[x].to_string()),
                        false,
                    )
                }
                Act::CustomerMsg => {
                    message(&mut msg, Direction::Inbound, Sender::Customer, None, false)
                }
                Act::BotMsg(auto) => {
                    message(&mut msg, Direction::Outbound, Sender::Bot, None, *auto)
                }
                Act::SystemMsg => {
                    message(&mut msg, Direction::Outbound, Sender::System, None, false)
                }
                Act::Resolve(by, a) => Payload::ConversationResolved {
                    conversation_id: cid,
                    resolved_by: *by,
                    agent_id: a.map(|x| AGENTS[x].to_string()),
                },
                Act::Reopen => Payload::ConversationReopened {
                    conversation_id: cid,
                },
                Act::Intent(i) => Payload::IntentDetected {
                    conversation_id: cid,
                    intent: INTENTS[*i].into(),
                    confidence: Some(0.5),
                },
                Act::Csat(s) => Payload::CsatSubmitted {
                    conversation_id: cid,
                    score: *s,
                },
                Act::OpenAgain => open.clone(),
                Act::TicketOpen(k, p) => Payload::TicketOpened {
                    ticket_id: format!("k{ci}-{k}"),
                    conversation_id: Some(cid),
                    priority: *p,
                },
                Act::TicketResolve(k) => Payload::TicketResolved {
                    ticket_id: format!("k{ci}-{k}"),
                },
                Act::Lead(campaign) => Payload::LeadCreated {
                    lead_id: format!("l{ci}"),
                    customer_id: format!("u{}", c.customer),
                    conversation_id: Some(cid),
                    campaign_id: campaign.map(|x| CAMPAIGNS[x].to_string()),
                },
                Act::Deal(amount, cur) => Payload::DealWon {
                    lead_id: format!("l{ci}"),
                    amount_minor: *amount,
                    currency: CURRENCIES[*cur].into(),
                },
            };
            b.push(t, account, p);
        }
    }
    for (oi, o) in case.others.iter().enumerate() {
        let account = ZONES[o.account].0;
        let t = base + o.at_s * 1000;
        match &o.kind {
            OtherKind::Outbound {
                created,
                channel,
                sender,
                agent,
                conversation,
                broadcast,
                auto_reply,
                statuses,
            } => {
                let id = format!("w{oi}");
                // A message in a conversation of the same account travels on its channel.
                let channel = match conversation.and_then(|c| case.conversations.get(c)) {
                    Some(c) if c.account == o.account => &c.channel,
                    _ => channel,
                };
                if *created {
                    b.push(
                        t,
                        account,
                        Payload::MessageCreated {
                            message_id: id.clone(),
                            conversation_id: match conversation {
                                Some(c)
                                    if !(opts.open_first
                                        || (opts.no_agent_before_handover
                                            && *sender == Sender::Agent)) =>
                                {
                                    format!("c{c}")
                                }
                                _ => format!("bc{oi}"),
                            },
                            direction: Direction::Outbound,
                            sender: *sender,
                            agent_id: agent.map(|x| AGENTS[x].to_string()),
                            channel: *channel,
                            broadcast_id: broadcast.map(|x| format!("b{x}")),
                            auto_reply: *auto_reply,
                        },
                    );
                }
                for (offset, status, code) in statuses {
                    b.push(
                        t + offset * 1000,
                        account,
                        Payload::MessageStatus {
                            message_id: id.clone(),
                            status: *status,
                            error_code: code.map(|x| ERROR_CODES[x]),
                            error_title: code.map(|x| format!("error {}", ERROR_CODES[x])),
                        },
                    );
                }
            }
            OtherKind::Broadcast(id, campaign, recipients) => b.push(
                t,
                account,
                Payload::BroadcastSent {
                    broadcast_id: format!("b{id}"),
                    campaign_id: campaign.map(|x| CAMPAIGNS[x].to_string()),
                    recipients: *recipients,
                },
            ),
            OtherKind::Health(ch, state, quality, depth, rate) => b.push(
                t,
                account,
                Payload::ChannelHealth {
                    channel_id: format!("wa-{ch}"),
                    state: *state,
                    quality: *quality,
                    queue_depth: *depth,
                    sent_per_minute: *rate,
                },
            ),
            OtherKind::AgentStatus(a, team, status) => b.push(
                t,
                account,
                Payload::AgentStatusChanged {
                    agent_id: AGENTS[*a].into(),
                    team_id: team.map(|x| TEAMS[x].to_string()),
                    status: *status,
                },
            ),
            OtherKind::Ticket(k, p) => b.push(
                t,
                account,
                Payload::TicketOpened {
                    ticket_id: format!("k{k}"),
                    conversation_id: None,
                    priority: *p,
                },
            ),
            OtherKind::TicketResolved(k) => b.push(
                t,
                account,
                Payload::TicketResolved {
                    ticket_id: format!("k{k}"),
                },
            ),
            OtherKind::Lead(l, u, campaign) => b.push(
                t,
                account,
                Payload::LeadCreated {
                    lead_id: format!("l{l}"),
                    customer_id: format!("u{u}"),
                    conversation_id: None,
                    campaign_id: campaign.map(|x| CAMPAIGNS[x].to_string()),
                },
            ),
            OtherKind::Deal(l, amount, cur) => b.push(
                t,
                account,
                Payload::DealWon {
                    lead_id: format!("l{l}"),
                    amount_minor: *amount,
                    currency: CURRENCIES[*cur].into(),
                },
            ),
        }
    }
    b.out
        .into_iter()
        .filter(|(t, _, _)| *t < limit)
        .enumerate()
        .map(|(i, (t, account_id, payload))| Event {
            event_id: format!("e{i}"),
            account_id,
            occurred_at_ms: t + i as i64,
            payload,
        })
        .collect()
}

/// The delivery: every event, some twice, shuffled, cut into batches.
pub fn deliveries(case: &Case, events: &[Event]) -> Vec<Vec<Event>> {
    let mut all = events.to_vec();
    if !events.is_empty() {
        for d in &case.duplicates {
            all.push(events[d % events.len()].clone());
        }
    }
    // Fisher–Yates with a small xorshift: reproducible from the case.
    let mut s = case.shuffle | 1;
    for i in (1..all.len()).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let j = (s % (i as u64 + 1)) as usize;
        all.swap(i, j);
    }
    let mut batches = Vec::new();
    let mut pos = 0;
    for cut in case.cuts.iter().cycle() {
        if pos >= all.len() {
            break;
        }
        let end = (pos + cut).min(all.len());
        batches.push(all[pos..end].to_vec());
        pos = end;
    }
    batches
}

/// `t` (ms) written as RFC 3339 with a UTC offset of `offset_min` minutes.
pub fn instant(t: i64, offset_min: i32) -> String {
    let tz = FixedOffset::east_opt(offset_min * 60).expect("offset");
    let dt = chrono::DateTime::<Utc>::from_timestamp_millis(t)
        .expect("time")
        .with_timezone(&tz);
    dt.to_rfc3339_opts(chrono::SecondsFormat::Millis, offset_min == 0)
}

/// The query string's `from` and `to` for `spec` on `case`.
pub fn bounds(case: &Case, spec: &RangeSpec, tz: Tz) -> (Option<String>, Option<String>) {
    let base = case.base_ms();
    let date = |k: i64| {
        (case.day() + chrono::Duration::days(k))
            .format("%Y-%m-%d")
            .to_string()
    };
    match *spec {
        RangeSpec::Default => (None, None),
        RangeSpec::Day(k) => (Some(date(k)), None),
        RangeSpec::Days(a, l) => (Some(date(a)), Some(date(a + l))),
        RangeSpec::Instants(f, l, o) => {
            (Some(instant(base + f, o)), Some(instant(base + f + l, o)))
        }
        RangeSpec::FromInstant(f, o) => (Some(instant(base + f, o)), None),
        RangeSpec::Mixed(d, t) => {
            let from = reference_midnight(case.day() + chrono::Duration::days(d), tz);
            (Some(date(d)), Some(instant(from + t, 0)))
        }
        RangeSpec::Tiny(h) => {
            let q = base + h * 3_600_000;
            (
                Some(instant(q + 60_000, 0)),
                Some(instant(q + 14 * 60_000, 0)),
            )
        }
        RangeSpec::Reversed(f) => (
            Some(instant(base + f, 0)),
            Some(instant(base + f - 3_600_000, 0)),
        ),
    }
}

fn reference_midnight(d: NaiveDate, tz: Tz) -> i64 {
    crmpulse_reference::midnight(d, tz)
}

/// The view store after the real pipeline (two workers) consumed `batches`, pushed at
/// pipeline times ending at `progress - 1`, so that its final progress is `progress`.
pub fn store_after(batches: &[Vec<Event>], progress: i64) -> query_api::ViewStore {
    store_after_with(batches, progress, None).0
}

/// As [`store_after`], with a lateness horizon; also returns the positions (in
/// delivery order) of the events the pipeline refused.
pub fn store_after_with(
    batches: &[Vec<Event>],
    progress: i64,
    lateness_horizon_ms: Option<i64>,
) -> (query_api::ViewStore, Vec<u64>) {
    use std::sync::{Arc, Mutex};
    let released = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&released);
    let config = pipeline::PipelineConfig {
        workers: 2,
        max_in_flight: 2,
        clock: schemas::Clock::starting_at(progress),
        lateness_horizon_ms,
        ..pipeline::PipelineConfig::default()
    };
    let mut pipeline =
        pipeline::Pipeline::start(&config, move |b| sink.lock().unwrap().push(b)).unwrap();
    let n = batches.len() as i64;
    let mut refused = Vec::new();
    for (k, batch) in batches.iter().enumerate() {
        let t = u64::try_from(progress - 10 * (n - 1 - k as i64) - 1).unwrap();
        pipeline.push_at(t, batch.clone()).unwrap();
        refused.extend(pipeline.take_refused().into_iter().map(|r| r.position));
    }
    if batches.is_empty() {
        pipeline
            .advance_to(u64::try_from(progress - 1).unwrap())
            .unwrap();
    }
    pipeline.finish();
    let store = query_api::ViewStore::default();
    for b in released.lock().unwrap().drain(..) {
        store.apply(b);
    }
    (store, refused)
}

/// The query state over `store`: settings, a pinned clock, no shared body cache.
pub fn app(
    store: query_api::ViewStore,
    config: query_api::AccountsConfig,
    now_ms: i64,
) -> query_api::AppState {
    let mut app = query_api::AppState::new(std::sync::Arc::new(store));
    app.clock = schemas::Clock::starting_at(now_ms);
    app.bodies = None;
    app.settings.replace(config);
    app
}
