//! Customers and conversation lifecycles.
//!
//! A conversation follows a script decided step by step as it runs:
//!
//! ```text
//! opened + customer message
//!   ├─ bot first (most): greeting, menu ─ question + intent [─ bot asks details ─ customer]
//!   │    ─ bot answer ─┬─ resolved by bot
//!   │                  ├─ customer drops off ─ closed by system after 30 min
//!   │                  └─ escalated ─┐
//!   └─ straight to humans ───────────┤
//!        assigned to an available agent, or queued until one is free
//!        ─ first reply ─ back and forth ─ resolved by the agent, or by the system
//! later, for some: CSAT, a reopen, a ticket, a lead and a won deal
//! ```
//!
//! Invariant: an open conversation has exactly one pending [`Step`] or sits in the
//! waiting queue (see `staff`), so its steps never interleave with themselves.

use schemas::event::{
    AgentStatus, Assignee, Channel, Direction, Origin, Payload, Priority, ResolvedBy, Sender,
};

use super::dist::{
    self, DAY_MS, HOUR_MS, MINUTE_MS, chance, lognormal, lognormal_ms, minutes_between, weighted,
    weighted_index,
};
use super::whatsapp::{self, Traffic};
use super::{
    Action, Simulator, agent_id, campaign_id, conversation_id, customer_id, lead_id, message_id,
    ticket_id,
};

/// Channel mix of new customers.
const CHANNELS: [(Channel, f64); 6] = [
    (Channel::Whatsapp, 0.70),
    (Channel::Webchat, 0.12),
    (Channel::Instagram, 0.07),
    (Channel::Messenger, 0.05),
    (Channel::Email, 0.04),
    (Channel::Sms, 0.02),
];

/// Share of each channel's conversations that a bot takes first. Email and SMS are
/// mostly routed straight to people.
fn bot_first_share(channel: Channel) -> f64 {
    match channel {
        Channel::Whatsapp => 0.85,
        Channel::Webchat => 0.80,
        Channel::Instagram | Channel::Messenger => 0.65,
        Channel::Sms => 0.30,
        Channel::Email => 0.05,
    }
}

/// What a customer wants, and what follows from it.
struct Intent {
    /// The `intent_detected` label.
    name: &'static str,
    /// Share of inbound conversations.
    weight: f64,
    /// Chance the bot settles it alone (at full confidence).
    bot_resolves: f64,
    /// Team number that handles it (falls back to team 0 when there are fewer teams).
    team: usize,
    /// Chance an agent files a ticket.
    ticket: f64,
    /// Chance a lead is captured.
    lead: f64,
}

const INTENTS: [Intent; 6] = [
    Intent {
        name: "order_status",
        weight: 0.28,
        bot_resolves: 0.62,
        team: 0,
        ticket: 0.12,
        lead: 0.01,
    },
    Intent {
        name: "pricing",
        weight: 0.18,
        bot_resolves: 0.45,
        team: 1,
        ticket: 0.04,
        lead: 0.35,
    },
    Intent {
        name: "billing",
        weight: 0.15,
        bot_resolves: 0.30,
        team: 2,
        ticket: 0.28,
        lead: 0.02,
    },
    Intent {
        name: "tech_support",
        weight: 0.17,
        bot_resolves: 0.18,
        team: 0,
        ticket: 0.42,
        lead: 0.01,
    },
    Intent {
        name: "refund",
        weight: 0.12,
        bot_resolves: 0.12,
        team: 2,
        ticket: 0.38,
        lead: 0.0,
    },
    Intent {
        name: "cancel",
        weight: 0.10,
        bot_resolves: 0.10,
        team: 3,
        ticket: 0.22,
        lead: 0.04,
    },
];

/// Index of `pricing` in [`INTENTS`].
const PRICING: usize = 1;

/// Customer turns after the agent's first reply (mean about 4).
const EXCHANGES: [(u8, f64); 11] = [
    (0, 0.05),
    (1, 0.10),
    (2, 0.14),
    (3, 0.16),
    (4, 0.16),
    (5, 0.13),
    (6, 0.10),
    (7, 0.07),
    (8, 0.05),
    (10, 0.03),
    (12, 0.01),
];

/// A bot conversation the customer stopped answering is closed after this long.
const BOT_INACTIVITY_MS: i64 = 30 * MINUTE_MS;
/// An agent conversation whose customer went quiet is closed after this long, unless
/// the agent closes it first.
const AGENT_INACTIVITY_MS: i64 = HOUR_MS;

/// Intents for which the bot first asks for an order or invoice number.
const NEEDS_DETAILS: [&str; 4] = ["order_status", "billing", "refund", "cancel"];

/// Ticket priorities and their median time to resolution in hours.
const PRIORITIES: [(Priority, f64, f64); 4] = [
    (Priority::Low, 0.30, 40.0),
    (Priority::Medium, 0.40, 16.0),
    (Priority::High, 0.22, 5.0),
    (Priority::Urgent, 0.08, 1.5),
];

/// What a ticket's follow-up needs to know, carried by its scheduled actions.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ticket {
    /// Ticket number.
    pub(super) number: u32,
    /// The conversation it was filed from.
    pub(super) conv: u32,
    /// The agent who filed it, who also writes the follow-up.
    pub(super) agent: u16,
    /// The conversation's channel and inbox, for the follow-up message.
    pub(super) channel: Channel,
    /// Inbox number within the channel (1-based).
    pub(super) inbox: u8,
    /// Priority; drives how long it stays open.
    pub(super) priority: Priority,
}

/// Why a bot hands over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EscalationReason {
    /// The customer asked for a person.
    CustomerRequested,
    /// The bot was unsure what the customer meant.
    LowConfidence,
    /// The topic is one the bot may not settle (refunds, cancellations…).
    IntentRequiresAgent,
}

impl EscalationReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::CustomerRequested => "customer_requested_agent",
            Self::LowConfidence => "low_confidence",
            Self::IntentRequiresAgent => "intent_requires_agent",
        }
    }
}

/// The next thing that happens in a conversation.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    /// The bot greets.
    BotGreeting,
    /// The bot shows its menu of topics.
    BotMenu,
    /// The customer states the problem; the intent is detected.
    CustomerQuestion,
    /// The bot asks for details (an order or invoice number).
    BotClarify,
    /// The customer gives them.
    CustomerDetails,
    /// The bot answers and the outcome is decided.
    BotAnswer,
    /// The customer thanks the bot.
    CustomerThanks,
    /// The bot closes the conversation.
    BotResolve,
    /// The bot hands over to humans.
    Escalate {
        /// Why.
        reason: EscalationReason,
    },
    /// A conversation that skips the bot is routed to humans.
    Route,
    /// The assigned agent writes.
    AgentReply {
        /// A second message straight after the agent's previous one.
        follow_up: bool,
    },
    /// The customer writes back to the agent: one of a burst of messages, as people
    /// type on WhatsApp.
    CustomerReply {
        /// Messages still to come in this burst after this one.
        more: u8,
    },
    /// The agent closes the conversation.
    AgentResolve,
    /// Closed by the system after the customer went quiet.
    InactivityClose,
    /// Closed by the system after waiting a day for an agent, unless it has been
    /// assigned or re-queued since (`epoch` tells).
    QueueTimeout {
        /// The conversation's `queue_epoch` when it was queued.
        epoch: u16,
    },
    /// The customer comes back to a resolved conversation.
    Reopen,
}

/// A customer in the pool.
pub(super) struct Customer {
    /// The channel they usually write on.
    channel: Channel,
    /// Which inbox of that channel (1-based).
    inbox: u8,
}

/// A conversation's state while it is open (or resolved but due to reopen).
pub(super) struct Conversation {
    /// Customer number.
    customer: u32,
    /// Channel, fixed for the conversation's life.
    pub(super) channel: Channel,
    /// Inbox number within the channel (1-based).
    inbox: u8,
    /// Campaign number for conversations opened by a broadcast reply.
    campaign: Option<u32>,
    /// Index into [`INTENTS`]; also drawn (but not reported) when the bot is skipped,
    /// to route the conversation and decide tickets and leads.
    intent: usize,
    /// The intent detector's confidence.
    confidence: f64,
    /// Team number that should handle it.
    pub(super) team: usize,
    /// The agent holding it now.
    pub(super) agent: Option<u16>,
    /// The agent who last held it; preferred on reassignment and reopen.
    pub(super) last_agent: Option<u16>,
    /// Whether a human has been assigned, for CSAT (bot-only scores run lower).
    pub(super) human: bool,
    /// Whether the current agent round has had its first human reply.
    pub(super) agent_replied: bool,
    /// When the conversation started waiting for a human (open or hand-over), to
    /// measure the first wait.
    handover_ms: i64,
    /// Hand-over to first human reply, once known.
    first_wait_ms: Option<i64>,
    /// The customer's last message, for WhatsApp's 24-hour window.
    last_inbound_ms: i64,
    /// Customer messages still to come in the agent phase.
    pub(super) exchanges_left: u8,
    /// The customer stops answering once the exchanges run out.
    pub(super) silent: bool,
    /// Reopened once already; a conversation reopens at most once.
    reopened: bool,
    /// In the waiting queue.
    pub(super) waiting: bool,
    /// Bumped each time it is queued, so a stale queue timeout does nothing.
    pub(super) queue_epoch: u16,
    /// When it last entered the queue.
    pub(super) queued_since: Option<i64>,
}

impl Simulator {
    /// A customer for a new inbound conversation: a new one, or a returning one who
    /// mostly writes on their usual channel.
    ///
    /// The chance of a new customer starts at 1 and settles at 35% as the pool grows;
    /// returning customers are skewed towards the oldest, a loyal core.
    pub(super) fn inbound_customer(&mut self) -> (u32, Channel, u8) {
        let pool = self.customers.len();
        let p_new = 0.35 + 0.65 * (-(pool as f64) / 1500.0).exp();
        if pool == 0 || chance(&mut self.rng, p_new) {
            let channel = weighted(&mut self.rng, &CHANNELS);
            let inbox = self.pick_inbox(channel);
            let n = self.customers.len() as u32;
            self.customers.push(Customer { channel, inbox });
            return (n, channel, inbox);
        }
        let n = self.returning_customer();
        let Customer { channel, inbox } = self.customers[n as usize];
        if chance(&mut self.rng, 0.85) {
            return (n, channel, inbox);
        }
        let channel = weighted(&mut self.rng, &CHANNELS);
        let inbox = self.pick_inbox(channel);
        (n, channel, inbox)
    }

    /// An existing customer, skewed towards the oldest; a new one if the pool is empty.
    pub(super) fn returning_customer(&mut self) -> u32 {
        if self.customers.is_empty() {
            self.customers.push(Customer {
                channel: Channel::Whatsapp,
                inbox: 1,
            });
            return 0;
        }
        let u = self.unit();
        (self.customers.len() as f64 * u * u) as u32
    }

    /// WhatsApp has two numbers (80/20); every other channel one inbox.
    fn pick_inbox(&mut self, channel: Channel) -> u8 {
        if channel == Channel::Whatsapp && chance(&mut self.rng, 0.2) {
            2
        } else {
            1
        }
    }

    /// Opens conversation `conv` with the customer's first message and routes it.
    pub(super) fn open_conversation(
        &mut self,
        conv: u32,
        customer: u32,
        channel: Channel,
        inbox: u8,
        campaign: Option<u32>,
    ) {
        let now = self.now_ms;
        self.emit(Payload::ConversationOpened {
            conversation_id: conversation_id(conv),
            customer_id: customer_id(customer),
            channel,
            inbox_id: format!("inbox-{}-{inbox}", channel.as_str()),
            origin: if campaign.is_some() {
                Origin::Campaign
            } else {
                Origin::Inbound
            },
            campaign_id: campaign.map(campaign_id),
        });
        // Campaign replies are mostly about the offer.
        let intent = if campaign.is_some() && chance(&mut self.rng, 0.6) {
            PRICING
        } else {
            weighted_index(&mut self.rng, &INTENTS, |i| i.weight)
        };
        let team = if INTENTS[intent].team < self.teams.len() {
            INTENTS[intent].team
        } else {
            0
        };
        // Confidence in [0.5, 1), most of it high.
        let confidence = 1.0 - 0.5 * self.unit().powi(2);
        let exchanges = weighted(&mut self.rng, &EXCHANGES);
        let silent = chance(&mut self.rng, 0.08);
        self.conversations.insert(
            conv,
            Conversation {
                customer,
                channel,
                inbox,
                campaign,
                intent,
                confidence,
                team,
                agent: None,
                last_agent: None,
                human: false,
                agent_replied: false,
                handover_ms: now,
                first_wait_ms: None,
                last_inbound_ms: now,
                exchanges_left: exchanges,
                silent,
                reopened: false,
                waiting: false,
                queue_epoch: 0,
                queued_since: None,
            },
        );
        self.say(conv, Sender::Customer, None);
        let bot_share = if campaign.is_some() {
            0.9
        } else {
            bot_first_share(channel)
        };
        if chance(&mut self.rng, bot_share) {
            self.emit(Payload::ConversationAssigned {
                conversation_id: conversation_id(conv),
                assignee: Assignee::Bot,
                agent_id: None,
                team_id: None,
            });
            let delay = lognormal_ms(&mut self.rng, 1.5, 0.4);
            self.step_in(conv, delay, Step::BotGreeting);
        } else {
            let delay = lognormal_ms(&mut self.rng, 8.0, 0.8);
            self.step_in(conv, delay, Step::Route);
        }
    }

    /// Opens the conversation of a broadcast recipient who answered.
    pub(super) fn campaign_reply(&mut self, conv: u32, customer: u32, broadcast: u32) {
        let campaign = self.broadcasts[broadcast as usize].campaign;
        self.open_conversation(conv, customer, Channel::Whatsapp, 1, Some(campaign));
    }

    fn step_in(&mut self, conv: u32, delay_ms: i64, step: Step) {
        self.schedule(
            self.now_ms + delay_ms,
            super::Action::Conversation { conv, step },
        );
    }

    /// Creates a message in a conversation; outbound WhatsApp messages get statuses.
    /// An agent writing more than 24 hours after the customer's last message is outside
    /// WhatsApp's customer-service window, and the message fails with 131047.
    fn say(&mut self, conv: u32, sender: Sender, agent: Option<u16>) {
        let now = self.now_ms;
        let Some(c) = self.conversations.get_mut(&conv) else {
            return;
        };
        let inbound = sender == Sender::Customer;
        if inbound {
            c.last_inbound_ms = now;
        }
        let (channel, inbox) = (c.channel, c.inbox);
        let window_closed = sender == Sender::Agent && now - c.last_inbound_ms > DAY_MS;
        let msg = self.new_message_number();
        self.emit(Payload::MessageCreated {
            message_id: message_id(msg),
            conversation_id: conversation_id(conv),
            direction: if inbound {
                Direction::Inbound
            } else {
                Direction::Outbound
            },
            sender,
            agent_id: agent.map(agent_id),
            channel,
            broadcast_id: None,
            auto_reply: sender == Sender::Bot,
        });
        if !inbound && channel == Channel::Whatsapp {
            self.wa_numbers[usize::from(inbox - 1)].sent += 1.0;
            let forced = window_closed.then_some(whatsapp::RE_ENGAGEMENT);
            self.schedule_statuses(msg, Traffic::Conversation, forced);
        }
    }

    /// Runs one step of a conversation's script.
    pub(super) fn conversation_step(&mut self, conv: u32, step: Step) {
        if !self.conversations.contains_key(&conv) {
            return;
        }
        match step {
            Step::BotGreeting => {
                self.say(conv, Sender::Bot, None);
                let d = lognormal_ms(&mut self.rng, 1.0, 0.3);
                self.step_in(conv, d, Step::BotMenu);
            }
            Step::BotMenu => {
                self.say(conv, Sender::Bot, None);
                // Some customers never answer the bot at all.
                if chance(&mut self.rng, 0.04) {
                    self.step_in(conv, BOT_INACTIVITY_MS, Step::InactivityClose);
                } else {
                    let d = lognormal_ms(&mut self.rng, 25.0, 0.8);
                    self.step_in(conv, d, Step::CustomerQuestion);
                }
            }
            Step::CustomerQuestion => {
                self.say(conv, Sender::Customer, None);
                let c = &self.conversations[&conv];
                let (intent, confidence) = (INTENTS[c.intent].name, c.confidence);
                self.emit(Payload::IntentDetected {
                    conversation_id: conversation_id(conv),
                    intent: intent.to_owned(),
                    confidence: Some((confidence * 100.0).round() / 100.0),
                });
                let d = lognormal_ms(&mut self.rng, 2.0, 0.4);
                let next = if NEEDS_DETAILS.contains(&intent) && chance(&mut self.rng, 0.7) {
                    Step::BotClarify
                } else {
                    Step::BotAnswer
                };
                self.step_in(conv, d, next);
            }
            Step::BotClarify => {
                self.say(conv, Sender::Bot, None);
                let d = lognormal_ms(&mut self.rng, 35.0, 0.8);
                self.step_in(conv, d, Step::CustomerDetails);
            }
            Step::CustomerDetails => {
                self.say(conv, Sender::Customer, None);
                let d = lognormal_ms(&mut self.rng, 2.0, 0.4);
                self.step_in(conv, d, Step::BotAnswer);
            }
            Step::BotAnswer => self.bot_answer(conv),
            Step::CustomerThanks => {
                self.say(conv, Sender::Customer, None);
                let d = lognormal_ms(&mut self.rng, 4.0, 0.5);
                self.step_in(conv, d, Step::BotResolve);
            }
            Step::BotResolve => {
                self.emit_resolved(conv, ResolvedBy::Bot, None);
                self.finish(conv, ResolvedBy::Bot);
            }
            Step::Escalate { reason } => {
                if reason == EscalationReason::CustomerRequested {
                    self.say(conv, Sender::Customer, None);
                }
                self.emit(Payload::ConversationEscalated {
                    conversation_id: conversation_id(conv),
                    reason: Some(reason.as_str().to_owned()),
                });
                // "Connecting you to an agent…"
                self.say(conv, Sender::Bot, None);
                let now = self.now_ms;
                if let Some(c) = self.conversations.get_mut(&conv) {
                    c.handover_ms = now;
                }
                self.enqueue(conv, None);
            }
            Step::Route => self.enqueue(conv, None),
            Step::AgentReply { follow_up } => self.agent_reply(conv, follow_up),
            Step::CustomerReply { more } => {
                self.say(conv, Sender::Customer, None);
                if more > 0 {
                    let d = lognormal_ms(&mut self.rng, 8.0, 0.7);
                    self.step_in(conv, d, Step::CustomerReply { more: more - 1 });
                    return;
                }
                let c = &self.conversations[&conv];
                let (agent, email) = (c.agent, c.channel == Channel::Email);
                let workload = agent.map_or(1.0, |a| self.workload_factor(a));
                let median = 30.0 * workload * if email { 8.0 } else { 1.0 };
                let d = lognormal_ms(&mut self.rng, median, 0.8).max(3_000);
                self.step_in(conv, d, Step::AgentReply { follow_up: false });
            }
            Step::AgentResolve => {
                let agent = self.conversations[&conv].agent;
                self.emit_resolved(conv, ResolvedBy::Agent, agent);
                self.finish(conv, ResolvedBy::Agent);
            }
            Step::InactivityClose => {
                self.emit_resolved(conv, ResolvedBy::System, None);
                self.finish(conv, ResolvedBy::System);
            }
            Step::QueueTimeout { epoch } => {
                let c = &self.conversations[&conv];
                if c.waiting && c.queue_epoch == epoch {
                    // Its stale queue entry is skipped by the next drain.
                    self.emit_resolved(conv, ResolvedBy::System, None);
                    self.finish(conv, ResolvedBy::System);
                }
            }
            Step::Reopen => {
                self.emit(Payload::ConversationReopened {
                    conversation_id: conversation_id(conv),
                });
                self.say(conv, Sender::Customer, None);
                let exchanges = dist::int(&mut self.rng, 0, 2) as u8;
                let now = self.now_ms;
                let prefer = self.conversations.get_mut(&conv).and_then(|c| {
                    c.reopened = true;
                    c.exchanges_left = exchanges;
                    c.silent = false;
                    c.agent_replied = false;
                    c.handover_ms = now;
                    c.last_agent
                });
                self.enqueue(conv, prefer);
            }
        }
    }

    /// The bot answers the question; then it settles it, the customer drops off, or it
    /// escalates. Low confidence makes settling less likely and escalation more.
    fn bot_answer(&mut self, conv: u32) {
        self.say(conv, Sender::Bot, None);
        let c = &self.conversations[&conv];
        let intent = &INTENTS[c.intent];
        let confidence = c.confidence;
        let p_resolve = intent.bot_resolves * (0.5 + 0.55 * confidence);
        let r = self.unit();
        if r < p_resolve {
            if chance(&mut self.rng, 0.65) {
                let d = lognormal_ms(&mut self.rng, 40.0, 0.8);
                self.step_in(conv, d, Step::CustomerThanks);
            } else {
                let d = lognormal_ms(&mut self.rng, 180.0, 0.5);
                self.step_in(conv, d, Step::BotResolve);
            }
            if chance(&mut self.rng, intent.lead * 0.4) {
                self.schedule_lead(conv);
            }
        } else if r < p_resolve + 0.08 {
            self.step_in(conv, BOT_INACTIVITY_MS, Step::InactivityClose);
        } else {
            let reason = if confidence < 0.65 {
                EscalationReason::LowConfidence
            } else if chance(&mut self.rng, 0.6) {
                EscalationReason::CustomerRequested
            } else {
                EscalationReason::IntentRequiresAgent
            };
            let d = lognormal_ms(&mut self.rng, 30.0, 0.8);
            self.step_in(conv, d, Step::Escalate { reason });
        }
    }

    /// The assigned agent writes, unless they have logged off (hand the conversation
    /// over) or are on a break (write when back).
    fn agent_reply(&mut self, conv: u32, follow_up: bool) {
        let Some(agent) = self.conversations[&conv].agent else {
            self.enqueue(conv, None);
            return;
        };
        match self.agents[usize::from(agent)].status {
            AgentStatus::Offline => {
                if let Some(c) = self.conversations.get_mut(&conv) {
                    c.agent = None;
                }
                self.release(agent);
                self.enqueue(conv, None);
                return;
            }
            AgentStatus::Away => {
                let back = self.agents[usize::from(agent)].away_until;
                let at = back + lognormal_ms(&mut self.rng, 40.0, 0.6);
                self.schedule(
                    at,
                    Action::Conversation {
                        conv,
                        step: Step::AgentReply { follow_up },
                    },
                );
                return;
            }
            _ => {}
        }
        self.say(conv, Sender::Agent, Some(agent));
        let now = self.now_ms;
        let first = {
            let c = self
                .conversations
                .get_mut(&conv)
                .expect("checked by conversation_step");
            let first = !c.agent_replied;
            if first {
                c.agent_replied = true;
                c.first_wait_ms.get_or_insert(now - c.handover_ms);
            }
            first && !c.reopened
        };
        if first {
            self.maybe_ticket(conv, agent);
            let p_lead = {
                let c = &self.conversations[&conv];
                if c.campaign.is_some() {
                    0.3
                } else {
                    INTENTS[c.intent].lead
                }
            };
            if chance(&mut self.rng, p_lead) {
                self.schedule_lead(conv);
            }
        }
        // Agents often open with a greeting and follow with the answer.
        let p_follow_up = if first { 0.6 } else { 0.25 };
        if !follow_up && chance(&mut self.rng, p_follow_up) {
            let d = lognormal_ms(&mut self.rng, 25.0, 0.6);
            self.step_in(conv, d, Step::AgentReply { follow_up: true });
            return;
        }
        let c = &self.conversations[&conv];
        let (left, silent, email) = (c.exchanges_left, c.silent, c.channel == Channel::Email);
        if left > 0 {
            if let Some(c) = self.conversations.get_mut(&conv) {
                c.exchanges_left -= 1;
            }
            let median = 45.0 * if email { 15.0 } else { 1.0 };
            let d = lognormal_ms(&mut self.rng, median, 1.0).max(2_000);
            let more = weighted(&mut self.rng, &[(0u8, 0.40), (1, 0.35), (2, 0.25)]);
            self.step_in(conv, d, Step::CustomerReply { more });
        } else if silent {
            // The customer went quiet: the agent closes it, or the system does.
            if chance(&mut self.rng, 0.75) {
                let d = minutes_between(&mut self.rng, 5.0, 20.0);
                self.step_in(conv, d, Step::AgentResolve);
            } else {
                self.step_in(conv, AGENT_INACTIVITY_MS, Step::InactivityClose);
            }
        } else {
            let d = lognormal_ms(&mut self.rng, 90.0, 0.7);
            self.step_in(conv, d, Step::AgentResolve);
        }
    }

    fn emit_resolved(&mut self, conv: u32, by: ResolvedBy, agent: Option<u16>) {
        self.emit(Payload::ConversationResolved {
            conversation_id: conversation_id(conv),
            resolved_by: by,
            agent_id: agent.map(agent_id),
        });
    }

    /// After a resolution: free the agent, maybe schedule CSAT and a reopen, and drop
    /// the state unless it will reopen.
    fn finish(&mut self, conv: u32, by: ResolvedBy) {
        let Some(c) = self.conversations.get_mut(&conv) else {
            return;
        };
        c.waiting = false;
        let agent = c.agent.take();
        let (human, first_wait, reopened) = (c.human, c.first_wait_ms, c.reopened);
        if let Some(agent) = agent {
            self.release(agent);
        }
        if by != ResolvedBy::System && chance(&mut self.rng, 0.30) {
            // Bot-only conversations score a little lower; a long first wait costs a lot.
            let weights: [f64; 5] = if !human {
                [0.08, 0.08, 0.17, 0.34, 0.33]
            } else if first_wait.is_some_and(|w| w > 15 * MINUTE_MS) {
                [0.15, 0.15, 0.22, 0.28, 0.20]
            } else {
                [0.04, 0.05, 0.11, 0.32, 0.48]
            };
            let score = 1 + weighted_index(&mut self.rng, &weights, |w| *w) as u8;
            let at = self.now_ms + lognormal_ms(&mut self.rng, 240.0, 0.9);
            self.schedule(at, Action::Csat { conv, score });
        }
        if !reopened && chance(&mut self.rng, 0.04) {
            let d =
                lognormal_ms(&mut self.rng, 6.0 * 3600.0, 1.0).clamp(15 * MINUTE_MS, 3 * DAY_MS);
            self.step_in(conv, d, Step::Reopen);
        } else {
            self.conversations.remove(&conv);
        }
    }

    /// Files a ticket from the conversation with the intent's probability.
    fn maybe_ticket(&mut self, conv: u32, agent: u16) {
        let c = &self.conversations[&conv];
        let (p, channel, inbox) = (INTENTS[c.intent].ticket, c.channel, c.inbox);
        if !chance(&mut self.rng, p) {
            return;
        }
        let priority = PRIORITIES[weighted_index(&mut self.rng, &PRIORITIES, |p| p.1)].0;
        self.counters.tickets += 1;
        let ticket = Ticket {
            number: self.counters.tickets,
            conv,
            agent,
            channel,
            inbox,
            priority,
        };
        let at = self.now_ms + minutes_between(&mut self.rng, 0.5, 3.0);
        self.schedule(at, Action::TicketOpened(ticket));
    }

    /// Emits `ticket_opened` and decides when (and whether) it is resolved.
    pub(super) fn ticket_opened(&mut self, ticket: Ticket) {
        self.emit(Payload::TicketOpened {
            ticket_id: ticket_id(ticket.number),
            conversation_id: Some(conversation_id(ticket.conv)),
            priority: ticket.priority,
        });
        // 85% are worked on and resolved by priority. The rest are the backlog a team
        // lead knows: they linger for weeks until a clean-up closes them without a
        // word to the customer, so the open count levels off instead of growing with
        // the length of the run.
        let worked = chance(&mut self.rng, 0.85);
        let (d, follow_up) = if worked {
            let median_h = PRIORITIES
                .iter()
                .find(|p| p.0 == ticket.priority)
                .map_or(16.0, |p| p.2);
            let d = lognormal_ms(&mut self.rng, median_h * 3600.0, 0.9)
                .clamp(10 * MINUTE_MS, 14 * DAY_MS);
            (d, chance(&mut self.rng, 0.6))
        } else {
            let d =
                lognormal_ms(&mut self.rng, 12.0 * 86_400.0, 0.5).clamp(3 * DAY_MS, 45 * DAY_MS);
            (d, false)
        };
        // The customer's last message was about when the ticket was filed, so a ticket
        // closed a day later is outside WhatsApp's 24-hour window.
        let window_closed = ticket.channel == Channel::Whatsapp && d > 23 * HOUR_MS;
        self.schedule(
            self.now_ms + d,
            Action::TicketResolved {
                ticket,
                follow_up,
                window_closed,
            },
        );
    }

    /// Emits `ticket_resolved` and, if `follow_up`, the agent's "your issue is fixed"
    /// message (sent whenever the ticket closes, on shift or not).
    pub(super) fn ticket_resolved(&mut self, ticket: Ticket, follow_up: bool, window_closed: bool) {
        self.emit(Payload::TicketResolved {
            ticket_id: ticket_id(ticket.number),
        });
        if !follow_up {
            return;
        }
        let msg = self.new_message_number();
        self.emit(Payload::MessageCreated {
            message_id: message_id(msg),
            conversation_id: conversation_id(ticket.conv),
            direction: Direction::Outbound,
            sender: Sender::Agent,
            agent_id: Some(agent_id(ticket.agent)),
            channel: ticket.channel,
            broadcast_id: None,
            auto_reply: false,
        });
        if ticket.channel == Channel::Whatsapp {
            self.wa_numbers[usize::from(ticket.inbox - 1)].sent += 1.0;
            let forced = window_closed.then_some(whatsapp::RE_ENGAGEMENT);
            self.schedule_statuses(msg, Traffic::Conversation, forced);
        }
    }

    /// Schedules `lead_created` for the conversation's customer a few minutes from now.
    fn schedule_lead(&mut self, conv: u32) {
        let c = &self.conversations[&conv];
        let (customer, campaign) = (c.customer, c.campaign);
        self.counters.leads += 1;
        let lead = self.counters.leads;
        let at = self.now_ms + minutes_between(&mut self.rng, 1.0, 10.0);
        self.schedule(
            at,
            Action::Lead {
                lead,
                customer,
                conv,
                campaign,
            },
        );
    }

    /// Emits `lead_created`; about a fifth of leads are won days later.
    pub(super) fn lead(&mut self, lead: u32, customer: u32, conv: u32, campaign: Option<u32>) {
        self.emit(Payload::LeadCreated {
            lead_id: lead_id(lead),
            customer_id: customer_id(customer),
            conversation_id: Some(conversation_id(conv)),
            campaign_id: campaign.map(campaign_id),
        });
        if chance(&mut self.rng, 0.22) {
            let d =
                lognormal_ms(&mut self.rng, 3.0 * 86_400.0, 0.7).clamp(4 * HOUR_MS, 21 * DAY_MS);
            self.schedule(self.now_ms + d, Action::DealWon { lead });
        }
    }

    /// Emits `deal_won` with a log-normal order value. Indian accounts sell mostly in
    /// rupees, others mostly in dollars; amounts are whole units in minor units.
    pub(super) fn deal_won(&mut self, lead: u32) {
        let indian = matches!(self.calendar.tz().name(), "Asia/Kolkata" | "Asia/Calcutta");
        let inr = chance(&mut self.rng, if indian { 0.6 } else { 0.2 });
        let (currency, median) = if inr {
            ("INR", 4_500.0)
        } else {
            ("USD", 150.0)
        };
        let units = lognormal(&mut self.rng, median, 0.9).round().max(1.0);
        self.emit(Payload::DealWon {
            lead_id: lead_id(lead),
            amount_minor: units as i64 * 100,
            currency: currency.to_owned(),
        });
    }
}
