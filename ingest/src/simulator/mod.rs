//! A seeded, realistic CRM workload: the event stream of one account, for demos, tests
//! and benchmarks (`crmpulse demo`, `crmpulse simulate`).
//!
//! The simulated account has agents on shifts in its local time, a customer pool that
//! grows and comes back, inbound conversations following a weekday × hour curve, a bot
//! that answers first and hands over to humans, WhatsApp delivery statuses (failures,
//! skipped and late statuses included), tickets, CSAT, leads, deals, daily broadcasts and
//! channel health reports. `docs/simulator.md` describes the distributions.
//!
//! How it works: a discrete-event simulation. Everything that will happen is an
//! [`Action`] in a priority queue keyed by `(time, sequence number)`; running an action
//! emits its events at the action's time and schedules follow-ups at the same time or
//! later. [`Simulator::advance_to`] runs actions in key order until the next one is due
//! at or after `until_ms`.
//!
//! Invariants:
//! - Output is sorted by `occurred_at_ms`, ties in a fixed order, and every event of one
//!   `advance_to(until)` call lies in `[previous until, until)`.
//! - Determinism: one ChaCha8 stream drawn in action order, ordered maps only, and no
//!   dependence on `until_ms` while running an action. So the same seed and calls give
//!   the same events, and `advance_to(t1)` then `advance_to(t2)` equals `advance_to(t2)`.
//! - An open conversation has exactly one pending script step, or sits in the queue
//!   for a free agent; side effects (statuses, CSAT, tickets, leads) are independent
//!   actions that carry what they need and never touch conversation state.

mod calendar;
mod conversation;
mod dist;
mod staff;
mod whatsapp;

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use chrono_tz::Tz;
use rand::SeedableRng;
use schemas::event::{DeliveryStatus, Event, Payload};

use calendar::{Calendar, SLOT_MS};
use conversation::{Conversation, Customer, Step, Ticket};
use dist::{SimRng, exponential, unit};
use staff::{Agent, ShiftAction};
use whatsapp::{BroadcastInfo, WaNumber};

/// The knobs of one simulated account.
#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// Seed of the random stream: the same seed and the same `advance_to` calls give
    /// the same events, and the seed is part of every event id.
    pub seed: u64,
    /// The tenant every event belongs to.
    pub account_id: u64,
    /// The account's IANA zone: shifts, the daily curve and broadcast times are local.
    pub timezone: Tz,
    /// Human agents on the roster, spread over three shifts (default 12).
    pub agents: usize,
    /// Teams the agents belong to: support, sales, billing, then retention,
    /// onboarding, vip (default 3). At least one team is always created.
    pub teams: usize,
    /// Inbound conversations per day averaged over the week (default 1200). The hour of
    /// a weekday peak sees about 2.5 times the average hourly rate, 3 a.m. about 6%.
    /// Campaign replies come on top; zero or less means no inbound traffic.
    pub conversations_per_day: f64,
    /// Two agents (the third and the sixth of the roster) work every night, 23:00–07:00
    /// local, instead of the late shift, so someone is online at
    /// every hour (the demo turns it on, so it looks alive whenever it is started). Off
    /// by default: nobody works nights and night-time conversations wait for the
    /// morning.
    pub night_crew: bool,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            account_id: 1,
            timezone: chrono_tz::Asia::Kolkata,
            agents: 12,
            teams: 3,
            conversations_per_day: 1200.0,
            night_crew: false,
        }
    }
}

/// Something due to happen at a point in simulated time. Small and `Copy`: the queue
/// holds hundreds of thousands of these, and ids are only formatted on emission.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// The next inbound conversation arrives (and the one after is scheduled).
    Arrival,
    /// Local midnight: plans the day's shifts and broadcasts.
    DayPlan,
    /// The five-minute `channel_health` report of every WhatsApp number.
    HealthTick,
    /// The next step of a conversation's script.
    Conversation {
        /// Conversation number.
        conv: u32,
        /// What happens.
        step: Step,
    },
    /// A delivery-status webhook for an outbound WhatsApp message.
    Status {
        /// Message number.
        msg: u64,
        /// The status reported.
        status: DeliveryStatus,
        /// 1-based index into [`whatsapp::ERRORS`] for `failed`, else 0.
        error: u8,
    },
    /// An agent's shift, break or end of day.
    Shift {
        /// Index into the roster.
        agent: u16,
        /// What happens.
        action: ShiftAction,
    },
    /// A campaign broadcast starts sending.
    Broadcast,
    /// One sampled recipient's broadcast message is created.
    BroadcastMessage {
        /// Broadcast number.
        broadcast: u32,
    },
    /// A broadcast recipient answers, which opens a campaign conversation.
    CampaignReply {
        /// The conversation the broadcast message was sent in.
        conv: u32,
        /// The recipient.
        customer: u32,
        /// Broadcast number.
        broadcast: u32,
    },
    /// An agent files a ticket from a conversation.
    TicketOpened(Ticket),
    /// A ticket is closed, optionally with a follow-up message to the customer.
    TicketResolved {
        /// The ticket.
        ticket: Ticket,
        /// Whether the agent sends a follow-up message.
        follow_up: bool,
        /// Whether WhatsApp's 24-hour customer-service window has closed, so the
        /// follow-up fails with 131047.
        window_closed: bool,
    },
    /// The customer answers the satisfaction survey.
    Csat {
        /// Conversation number.
        conv: u32,
        /// 1..=5.
        score: u8,
    },
    /// A sales lead is captured from a conversation.
    Lead {
        /// Lead number.
        lead: u32,
        /// Customer number.
        customer: u32,
        /// Conversation number.
        conv: u32,
        /// Campaign number when the conversation came from one.
        campaign: Option<u32>,
    },
    /// A lead turns into revenue.
    DealWon {
        /// Lead number.
        lead: u32,
    },
}

/// An [`Action`] with its place in the queue.
struct Scheduled {
    /// When it happens (event time, epoch milliseconds).
    at: i64,
    /// Scheduling order: breaks ties between actions due at the same millisecond, so
    /// the output never depends on the heap's internal layout.
    seq: u64,
    /// What happens.
    action: Action,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Next free number of each kind of entity; ids are formatted from these.
#[derive(Default)]
struct Counters {
    /// Events emitted, for `event_id`.
    events: u64,
    /// Conversations, including broadcast threads that are never opened.
    conversations: u32,
    /// Messages.
    messages: u64,
    /// Tickets.
    tickets: u32,
    /// Leads.
    leads: u32,
}

/// A deterministic CRM event generator for one account. See the module docs.
pub struct Simulator {
    /// The knobs this simulator was built with.
    config: SimulatorConfig,
    /// The single random stream; drawn only while running actions, in queue order.
    rng: SimRng,
    /// Simulated clock: the running action's time, or the last `until_ms` reached.
    now_ms: i64,
    /// Everything scheduled to happen, earliest first.
    queue: BinaryHeap<Reverse<Scheduled>>,
    /// Next sequence number for [`Scheduled::seq`].
    next_seq: u64,
    /// Entity counters.
    counters: Counters,
    /// Local time and the demand curve.
    calendar: Calendar,
    /// Every customer ever seen; index + 1 is the number in `cust-000123`.
    customers: Vec<Customer>,
    /// Open conversations, and resolved ones that will be reopened. A `BTreeMap` so
    /// that nothing depends on hash order.
    conversations: BTreeMap<u32, Conversation>,
    /// The roster.
    agents: Vec<Agent>,
    /// Team ids, indexed by team number.
    teams: Vec<String>,
    /// Conversations waiting for a free agent, oldest first. May hold stale entries
    /// (closed or already assigned), which are skipped when met.
    waiting: VecDeque<u32>,
    /// Every broadcast sent, indexed by broadcast number.
    broadcasts: Vec<BroadcastInfo>,
    /// The account's WhatsApp numbers.
    wa_numbers: Vec<WaNumber>,
    /// Events emitted by the current `advance_to` call.
    out: Vec<Event>,
}

impl Simulator {
    /// A simulated account whose world starts at `start_ms` (event time, epoch ms):
    /// agents whose shift covers `start_ms` come online at that instant, and the first
    /// conversation arrives shortly after.
    pub fn new(config: SimulatorConfig, start_ms: i64) -> Self {
        let teams = staff::team_names(config.teams.max(1));
        let agents = (0..config.agents.min(usize::from(u16::MAX)))
            .map(|i| Agent::new(i, teams.len(), config.night_crew))
            .collect();
        let mut sim = Simulator {
            rng: SimRng::seed_from_u64(config.seed),
            now_ms: start_ms,
            queue: BinaryHeap::new(),
            next_seq: 0,
            counters: Counters::default(),
            calendar: Calendar::new(config.timezone, config.conversations_per_day),
            customers: Vec::new(),
            conversations: BTreeMap::new(),
            agents,
            teams,
            waiting: VecDeque::new(),
            broadcasts: Vec::new(),
            wa_numbers: whatsapp::numbers(),
            out: Vec::new(),
            config,
        };
        sim.plan_last_night();
        sim.schedule(start_ms, Action::DayPlan);
        // Reports fall on wall-clock multiples of five minutes, the first at or after
        // the start.
        let every = whatsapp::HEALTH_EVERY_MS;
        let first_tick = (start_ms + every - 1).div_euclid(every) * every;
        sim.schedule(first_tick, Action::HealthTick);
        if let Some(t) = sim.next_arrival(start_ms) {
            sim.schedule(t, Action::Arrival);
        }
        sim
    }

    /// Produces every event with `occurred_at_ms < until_ms`, in `occurred_at` order
    /// (ties in a fixed, deterministic order), and advances the simulated clock to
    /// `until_ms`. Anything due later stays scheduled for the next call; a `until_ms`
    /// at or before [`Simulator::now_ms`] returns nothing.
    pub fn advance_to(&mut self, until_ms: i64) -> Vec<Event> {
        while self
            .queue
            .peek()
            .is_some_and(|Reverse(next)| next.at < until_ms)
        {
            let Some(Reverse(next)) = self.queue.pop() else {
                break;
            };
            self.now_ms = next.at;
            self.run(next.action);
        }
        self.now_ms = self.now_ms.max(until_ms);
        std::mem::take(&mut self.out)
    }

    /// The simulated clock: everything before it has been produced.
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    fn run(&mut self, action: Action) {
        match action {
            Action::Arrival => self.arrival(),
            Action::DayPlan => self.plan_day(),
            Action::HealthTick => self.health_tick(),
            Action::Conversation { conv, step } => self.conversation_step(conv, step),
            Action::Status { msg, status, error } => self.emit_status(msg, status, error),
            Action::Shift { agent, action } => self.shift(agent, action),
            Action::Broadcast => self.start_broadcast(),
            Action::BroadcastMessage { broadcast } => self.broadcast_message(broadcast),
            Action::CampaignReply {
                conv,
                customer,
                broadcast,
            } => self.campaign_reply(conv, customer, broadcast),
            Action::TicketOpened(ticket) => self.ticket_opened(ticket),
            Action::TicketResolved {
                ticket,
                follow_up,
                window_closed,
            } => self.ticket_resolved(ticket, follow_up, window_closed),
            Action::Csat { conv, score } => self.emit(Payload::CsatSubmitted {
                conversation_id: conversation_id(conv),
                score,
            }),
            Action::Lead {
                lead,
                customer,
                conv,
                campaign,
            } => self.lead(lead, customer, conv, campaign),
            Action::DealWon { lead } => self.deal_won(lead),
        }
    }

    /// Queues `action` at `at`, never before the running action (which would break the
    /// output order).
    fn schedule(&mut self, at: i64, action: Action) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(Scheduled {
            at: at.max(self.now_ms),
            seq,
            action,
        }));
    }

    /// Emits one event at the current simulated time.
    fn emit(&mut self, payload: Payload) {
        let n = self.counters.events;
        self.counters.events += 1;
        self.out.push(Event {
            event_id: format!("sim-{}-{n}", self.config.seed),
            account_id: self.config.account_id,
            occurred_at_ms: self.now_ms,
            payload,
        });
    }

    /// The next inbound arrival after `from`: a non-homogeneous Poisson process whose
    /// rate is constant within each 15-minute slot. The exponential gap is memoryless,
    /// so when a draw overshoots the slot it is redrawn from the slot's end at the new
    /// rate, which makes the process exact rather than thinned. `None` without traffic.
    fn next_arrival(&mut self, from: i64) -> Option<i64> {
        let mut t = from;
        loop {
            let slot_end = (t.div_euclid(SLOT_MS) + 1) * SLOT_MS;
            let rate = self.calendar.arrivals_per_ms(t);
            // The curve is positive at every hour, so a zero rate means no traffic.
            if !(rate.is_finite() && rate > 0.0) {
                return None;
            }
            let gap = exponential(&mut self.rng, 1.0 / rate);
            if (t as f64 + gap) < slot_end as f64 {
                return Some(t + gap as i64);
            }
            t = slot_end;
        }
    }

    fn arrival(&mut self) {
        if let Some(t) = self.next_arrival(self.now_ms) {
            self.schedule(t, Action::Arrival);
        }
        let (customer, channel, inbox) = self.inbound_customer();
        let conv = self.new_conversation_number();
        self.open_conversation(conv, customer, channel, inbox, None);
    }

    fn new_conversation_number(&mut self) -> u32 {
        self.counters.conversations += 1;
        self.counters.conversations
    }

    fn new_message_number(&mut self) -> u64 {
        self.counters.messages += 1;
        self.counters.messages
    }

    /// A random draw in `[0, 1)`, for call sites that only need one.
    fn unit(&mut self) -> f64 {
        unit(&mut self.rng)
    }
}

fn conversation_id(n: u32) -> String {
    format!("conv-{n:06}")
}

fn message_id(n: u64) -> String {
    format!("msg-{n:08}")
}

fn customer_id(n: u32) -> String {
    format!("cust-{:06}", n + 1)
}

fn ticket_id(n: u32) -> String {
    format!("tkt-{n:06}")
}

fn lead_id(n: u32) -> String {
    format!("lead-{n:06}")
}

fn broadcast_id(n: u32) -> String {
    format!("bcast-{:05}", n + 1)
}

fn campaign_id(n: u32) -> String {
    format!("camp-{:03}", n + 1)
}

fn agent_id(n: u16) -> String {
    format!("agent-{:02}", n + 1)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::OnceLock;

    use chrono::{Datelike, TimeZone, Timelike, Weekday};
    use schemas::event::{AgentStatus, Assignee, Channel, Direction, Origin, ResolvedBy, Sender};

    use super::dist::{DAY_MS, HOUR_MS, MINUTE_MS};
    use super::*;

    /// Monday 2026-11-23 00:00 in Kolkata (the default zone).
    fn start() -> i64 {
        chrono_tz::Asia::Kolkata
            .with_ymd_and_hms(2026, 11, 23, 0, 0, 0)
            .unwrap()
            .timestamp_millis()
    }

    fn config(seed: u64) -> SimulatorConfig {
        SimulatorConfig {
            seed,
            ..SimulatorConfig::default()
        }
    }

    fn run(seed: u64, days: i64) -> Vec<Event> {
        Simulator::new(config(seed), start()).advance_to(start() + days * DAY_MS)
    }

    /// One default week, shared by the statistical tests.
    fn week() -> &'static [Event] {
        static WEEK: OnceLock<Vec<Event>> = OnceLock::new();
        WEEK.get_or_init(|| run(42, 7))
    }

    fn count(events: &[Event], ty: &str) -> usize {
        events.iter().filter(|e| e.type_name() == ty).count()
    }

    #[test]
    fn same_seed_and_calls_give_the_same_events() {
        let single = run(7, 2);
        assert!(single.len() > 50_000, "{}", single.len());
        assert_eq!(single, run(7, 2));
        assert_ne!(single[..1000], run(8, 2)[..1000]);

        // Split calls, including a repeated and a backwards `until`, add up to one call.
        let mut sim = Simulator::new(config(7), start());
        let mut split = Vec::new();
        let mut reached = start();
        for until in [
            start() + 1,
            start() + 5 * HOUR_MS,
            start() + 5 * HOUR_MS,
            start() + 3 * HOUR_MS,
            start() + 13 * HOUR_MS + 7 * MINUTE_MS + 3,
            start() + 2 * DAY_MS,
        ] {
            split.extend(sim.advance_to(until));
            reached = reached.max(until);
            assert_eq!(sim.now_ms(), reached);
        }
        assert_eq!(split.len(), single.len());
        assert!(split == single, "split advance_to calls diverged");
    }

    #[test]
    fn events_are_sorted_unique_and_inside_each_call() {
        let mut sim = Simulator::new(config(3), start());
        let mut all = Vec::new();
        let mut from = start();
        for hours in [1, 6, 17, 24, 48] {
            let until = start() + hours * HOUR_MS;
            let chunk = sim.advance_to(until);
            assert!(!chunk.is_empty());
            assert!(
                chunk
                    .iter()
                    .all(|e| (from..until).contains(&e.occurred_at_ms)),
                "an event outside [{from}, {until})"
            );
            assert!(chunk.iter().all(|e| e.account_id == 1));
            all.extend(chunk);
            from = until;
        }
        assert!(
            all.windows(2)
                .all(|w| w[0].occurred_at_ms <= w[1].occurred_at_ms)
        );
        let ids: BTreeSet<&str> = all.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), all.len(), "duplicate event ids");
        assert_eq!(all[0].event_id, "sim-3-0");
    }

    #[test]
    fn every_event_round_trips_through_json_and_every_type_occurs() {
        let events = week();
        for e in events {
            let back = Event::from_json(&e.to_json())
                .unwrap_or_else(|err| panic!("{err}: {}", e.to_json()));
            assert_eq!(&back, e);
        }
        let types: BTreeSet<&str> = events.iter().map(|e| e.type_name()).collect();
        assert_eq!(
            types.len(),
            schemas::event::EVENT_TYPES.len(),
            "missing types: {types:?}"
        );
    }

    #[test]
    fn statuses_follow_their_message_with_whatsapp_quirks() {
        use DeliveryStatus::*;
        // Outbound WhatsApp messages and the statuses each one got, in stream order.
        let mut outbound_wa: BTreeMap<&str, (i64, Vec<DeliveryStatus>)> = BTreeMap::new();
        let mut others = BTreeSet::new();
        for e in week() {
            match &e.payload {
                Payload::MessageCreated {
                    message_id,
                    channel,
                    direction,
                    ..
                } => {
                    let fresh =
                        if *direction == Direction::Outbound && *channel == Channel::Whatsapp {
                            let entry = (e.occurred_at_ms, Vec::new());
                            outbound_wa.insert(message_id, entry).is_none()
                        } else {
                            others.insert(message_id.as_str())
                        };
                    assert!(fresh, "message {message_id} created twice");
                }
                Payload::MessageStatus {
                    message_id, status, ..
                } => {
                    let Some((_, seen)) = outbound_wa.get_mut(message_id.as_str()) else {
                        panic!(
                            "status for {message_id}, which is not an earlier outbound WhatsApp message"
                        );
                    };
                    assert!(!seen.contains(status), "{message_id} got {status} twice");
                    seen.push(*status);
                }
                _ => {}
            }
        }
        // Messages old enough for their statuses to be complete.
        let settled = start() + 6 * DAY_MS;
        let with = |pattern: &[DeliveryStatus]| {
            outbound_wa
                .values()
                .filter(|(at, s)| *at < settled && s.as_slice() == pattern)
                .count()
        };
        let total = outbound_wa.values().filter(|(at, _)| *at < settled).count();
        // A phone that stays off for days: sent, nothing more yet.
        let phone_off = with(&[Sent]);
        assert!(phone_off * 1000 < total, "{phone_off} of {total}");
        let normal = with(&[Sent, Delivered, Read]) + with(&[Sent, Delivered]);
        let failed = with(&[Failed]) + with(&[Sent, Failed]);
        let read_without_delivered = with(&[Sent, Read]);
        let late_sent = with(&[Delivered, Read, Sent]) + with(&[Read, Sent]);
        // Every message got one of the known sequences, at least one status each.
        assert_eq!(
            normal + failed + read_without_delivered + late_sent + phone_off,
            total
        );
        assert!(
            read_without_delivered * 100 > total * 4,
            "{read_without_delivered} of {total}"
        );
        assert!(late_sent * 1000 > total * 5, "{late_sent} of {total}");
        assert!(failed * 100 > total, "{failed} of {total}");
    }

    #[test]
    fn failures_carry_real_whatsapp_error_codes() {
        let mut codes = BTreeMap::new();
        let mut statuses = 0;
        for e in week() {
            if let Payload::MessageStatus {
                status,
                error_code,
                error_title,
                ..
            } = &e.payload
            {
                statuses += 1;
                if *status == DeliveryStatus::Failed {
                    let code = error_code.expect("failed status without a code");
                    let title = whatsapp::ERRORS
                        .iter()
                        .find(|(c, _)| *c == code)
                        .map(|e| e.1);
                    assert_eq!(error_title.as_deref(), title);
                    *codes.entry(code).or_insert(0) += 1;
                } else {
                    assert!(error_code.is_none() && error_title.is_none());
                }
            }
        }
        assert!(codes.len() >= 5, "{codes:?}");
        let failed: usize = codes.values().sum();
        let share = failed as f64 / statuses as f64;
        assert!((0.002..0.05).contains(&share), "failed share {share}");
    }

    #[test]
    fn weekday_days_are_far_busier_than_nights_and_weekends() {
        // Local (weekday, hour) of every conversation_opened.
        let mut by_slot: BTreeMap<(bool, u32), usize> = BTreeMap::new();
        let tz = chrono_tz::Asia::Kolkata;
        for e in week()
            .iter()
            .filter(|e| e.type_name() == "conversation_opened")
        {
            let local = tz.timestamp_millis_opt(e.occurred_at_ms).unwrap();
            let weekend = matches!(local.weekday(), Weekday::Sat | Weekday::Sun);
            *by_slot.entry((weekend, local.hour())).or_default() += 1;
        }
        let per_hour = |weekend: bool, hours: &[u32], days: f64| {
            hours
                .iter()
                .map(|h| by_slot.get(&(weekend, *h)).copied().unwrap_or(0))
                .sum::<usize>() as f64
                / (hours.len() as f64 * days)
        };
        let day = per_hour(false, &[9, 10, 11, 12, 15, 16, 17, 18], 5.0);
        let night = per_hour(false, &[2, 3, 4], 5.0);
        assert!(day > 8.0 * night.max(0.2), "day {day}/h, night {night}/h");
        assert!(day > 70.0, "day {day}/h");
        let weekday_total: usize = by_slot.iter().filter(|(k, _)| !k.0).map(|(_, v)| v).sum();
        let weekend_total: usize = by_slot.iter().filter(|(k, _)| k.0).map(|(_, v)| v).sum();
        let ratio = (weekend_total as f64 / 2.0) / (weekday_total as f64 / 5.0);
        assert!((0.3..0.55).contains(&ratio), "weekend/weekday {ratio}");
        // ~1200 a day over the week, plus a few dozen campaign replies a day.
        let total = (weekday_total + weekend_total) as f64 / 7.0;
        assert!((1100.0..1400.0).contains(&total), "{total}/day");
    }

    #[test]
    fn most_conversations_meet_the_bot_first() {
        let mut first: BTreeMap<&str, Assignee> = BTreeMap::new();
        for e in week() {
            if let Payload::ConversationAssigned {
                conversation_id,
                assignee,
                ..
            } = &e.payload
            {
                first.entry(conversation_id).or_insert(*assignee);
            }
        }
        let bot =
            first.values().filter(|a| **a == Assignee::Bot).count() as f64 / first.len() as f64;
        assert!((0.5..0.9).contains(&bot), "bot-first share {bot}");
        // About a third of bot conversations are settled by the bot.
        let resolved_by_bot = week()
            .iter()
            .filter(|e| {
                matches!(
                    e.payload,
                    Payload::ConversationResolved {
                        resolved_by: ResolvedBy::Bot,
                        ..
                    }
                )
            })
            .count() as f64;
        let bot_share =
            resolved_by_bot / first.values().filter(|a| **a == Assignee::Bot).count() as f64;
        assert!(
            (0.25..0.45).contains(&bot_share),
            "bot resolution share {bot_share}"
        );
    }

    #[test]
    fn agents_get_work_only_while_online_and_on_shift() {
        let tz = chrono_tz::Asia::Kolkata;
        let mut status: BTreeMap<&str, AgentStatus> = BTreeMap::new();
        let mut agent_messages_while_offline = 0;
        for e in week() {
            match &e.payload {
                Payload::AgentStatusChanged {
                    agent_id,
                    status: s,
                    team_id,
                } => {
                    assert!(team_id.as_deref().is_some_and(|t| t.starts_with("team-")));
                    if *s == AgentStatus::Online
                        && status
                            .get(agent_id.as_str())
                            .is_none_or(|p| *p == AgentStatus::Offline)
                    {
                        let h = tz.timestamp_millis_opt(e.occurred_at_ms).unwrap().hour();
                        assert!(
                            [6, 7, 9, 10, 13, 14].contains(&h),
                            "{agent_id} logged in at {h}h"
                        );
                    }
                    status.insert(agent_id, *s);
                }
                Payload::ConversationAssigned {
                    assignee: Assignee::Agent,
                    agent_id,
                    team_id,
                    ..
                } => {
                    let agent = agent_id
                        .as_deref()
                        .expect("agent assignment without agent_id");
                    assert!(team_id.is_some());
                    assert_eq!(
                        status.get(agent),
                        Some(&AgentStatus::Online),
                        "{agent} assigned while not online"
                    );
                }
                Payload::MessageCreated {
                    sender: Sender::Agent,
                    agent_id,
                    ..
                } => {
                    let agent = agent_id.as_deref().expect("agent message without agent_id");
                    if status.get(agent) != Some(&AgentStatus::Online)
                        && status.get(agent) != Some(&AgentStatus::Busy)
                    {
                        agent_messages_while_offline += 1;
                    }
                }
                _ => {}
            }
        }
        assert_eq!(status.len(), 12);
        // Only ticket follow-ups, sent whenever the ticket closes, may come off shift.
        let follow_ups = count(week(), "ticket_resolved");
        assert!(
            agent_messages_while_offline <= follow_ups,
            "{agent_messages_while_offline}"
        );
    }

    #[test]
    fn a_night_crew_keeps_someone_online_at_every_hour_from_the_first() {
        // Started at 03:00 on a Wednesday: the night shift that began on Tuesday
        // evening is on at once; through the week someone is on shift at every hour,
        // weekends included (a day shift's breaks may leave nobody answering for a few
        // minutes), someone is answering at every night hour, and night-time customers
        // get answers within the hour.
        let tz = chrono_tz::Asia::Kolkata;
        let start = tz
            .with_ymd_and_hms(2026, 11, 25, 3, 0, 0)
            .unwrap()
            .timestamp_millis();
        let config = SimulatorConfig {
            night_crew: true,
            ..config(42)
        };
        let events = Simulator::new(config, start).advance_to(start + 7 * DAY_MS);
        let mut status: BTreeMap<&str, AgentStatus> = BTreeMap::new();
        let mut next_hour = start;
        let mut uncovered = Vec::new();
        for e in &events {
            while next_hour < e.occurred_at_ms {
                // Only the first minutes of the start may pass before the log-ins.
                let local = tz.timestamp_millis_opt(next_hour).unwrap();
                let on_shift = status.values().any(|s| *s != AgentStatus::Offline);
                let answering = status
                    .values()
                    .any(|s| matches!(s, AgentStatus::Online | AgentStatus::Busy));
                let night_hour = !(7..23).contains(&local.hour());
                if next_hour > start && (!on_shift || (night_hour && !answering)) {
                    uncovered.push(local);
                }
                next_hour += HOUR_MS;
            }
            if let Payload::AgentStatusChanged {
                agent_id,
                status: s,
                ..
            } = &e.payload
            {
                status.insert(agent_id, *s);
            }
        }
        let online_at_start = events
            .iter()
            .take_while(|e| e.occurred_at_ms <= start + 5 * 60_000)
            .filter(|e| {
                matches!(
                    e.payload,
                    Payload::AgentStatusChanged {
                        status: AgentStatus::Online,
                        ..
                    }
                )
            })
            .count();
        assert!(online_at_start >= 1, "nobody logged in at the start");
        assert!(uncovered.is_empty(), "nobody online at {uncovered:?}");
        let mut night: Vec<i64> = first_responses(&events)
            .into_iter()
            .filter(|(t, _)| (0..=5).contains(&tz.timestamp_millis_opt(*t).unwrap().hour()))
            .map(|(_, frt)| frt)
            .collect();
        night.sort_unstable();
        assert!(night.len() > 100, "{}", night.len());
        let median = night[night.len() / 2] as f64 / 1000.0;
        assert!(median < 3600.0, "night median FRT {median}s");
    }

    /// First response times as the dashboard defines them: from the open (or the bot's
    /// hand-over) to the first agent message, as (when the wait began, its length in
    /// ms); a conversation resolved before any agent message has none.
    fn first_responses(events: &[Event]) -> Vec<(i64, i64)> {
        let mut since: BTreeMap<&str, i64> = BTreeMap::new();
        let mut waits = Vec::new();
        for e in events {
            match &e.payload {
                Payload::ConversationOpened {
                    conversation_id, ..
                }
                | Payload::ConversationEscalated {
                    conversation_id, ..
                } => {
                    since.insert(conversation_id, e.occurred_at_ms);
                }
                Payload::MessageCreated {
                    sender: Sender::Agent,
                    conversation_id,
                    ..
                } => {
                    if let Some(t) = since.remove(conversation_id.as_str()) {
                        waits.push((t, e.occurred_at_ms - t));
                    }
                }
                Payload::ConversationResolved {
                    conversation_id, ..
                } => {
                    since.remove(conversation_id.as_str());
                }
                _ => {}
            }
        }
        waits
    }

    #[test]
    fn first_response_times_look_like_a_help_desk() {
        // Grouped by the local hour the customer started waiting.
        let tz = chrono_tz::Asia::Kolkata;
        let (mut day, mut night, mut all) = (Vec::new(), Vec::new(), Vec::new());
        for (t, frt) in first_responses(week()) {
            match tz.timestamp_millis_opt(t).unwrap().hour() {
                10..=18 => day.push(frt),
                0..=5 => night.push(frt),
                _ => {}
            }
            all.push(frt);
        }
        let pct = |v: &mut Vec<i64>, q: f64| {
            v.sort_unstable();
            v[((v.len() - 1) as f64 * q) as usize] as f64 / 1000.0
        };
        assert!(day.len() > 2000, "{}", day.len());
        let day_median = pct(&mut day, 0.5);
        assert!(
            (60.0..300.0).contains(&day_median),
            "daytime median FRT {day_median}s"
        );
        let day_p90 = pct(&mut day, 0.9);
        assert!(
            (300.0..3600.0).contains(&day_p90),
            "daytime p90 FRT {day_p90}s"
        );
        // Nobody works at night: those customers wait for the morning shift.
        let night_median = pct(&mut night, 0.5);
        assert!(night_median > 3600.0, "night median FRT {night_median}s");
        // A tail of SLA breaches (default target 5 minutes) across the week.
        let breached = all.iter().filter(|&&f| f > 300_000).count() as f64 / all.len() as f64;
        assert!((0.1..0.5).contains(&breached), "breached share {breached}");
    }

    #[test]
    fn business_events_have_plausible_shares() {
        let events = week();
        let opened = count(events, "conversation_opened") as f64;
        let share = |ty: &str| count(events, ty) as f64 / opened;
        assert!(
            (0.10..0.20).contains(&share("ticket_opened")),
            "tickets {}",
            share("ticket_opened")
        );
        assert!(
            (0.15..0.35).contains(&share("csat_submitted")),
            "csat {}",
            share("csat_submitted")
        );
        assert!(
            (0.02..0.08).contains(&share("conversation_reopened")),
            "reopen {}",
            share("conversation_reopened")
        );
        assert!(count(events, "lead_created") > 100);
        assert!(count(events, "deal_won") > 10);
        assert_eq!(count(events, "broadcast_sent"), 2 * 5 + 2);
        let campaign_conversations = events
            .iter()
            .filter(|e| {
                matches!(
                    e.payload,
                    Payload::ConversationOpened {
                        origin: schemas::event::Origin::Campaign,
                        ..
                    }
                )
            })
            .count();
        assert!(campaign_conversations > 50, "{campaign_conversations}");
        // Broadcast messages are sampled: at most 200 per broadcast.
        let broadcast_messages = events
            .iter()
            .filter(|e| {
                matches!(
                    &e.payload,
                    Payload::MessageCreated {
                        broadcast_id: Some(_),
                        ..
                    }
                )
            })
            .count();
        assert!((12 * 200 * 9 / 10..=200 * 12).contains(&broadcast_messages));
        // Channel mix: about 70% WhatsApp.
        let wa = events
            .iter()
            .filter(|e| {
                matches!(
                    e.payload,
                    Payload::ConversationOpened {
                        channel: Channel::Whatsapp,
                        ..
                    }
                )
            })
            .count() as f64
            / opened;
        assert!((0.65..0.78).contains(&wa), "whatsapp share {wa}");
        // Two numbers, one report each every five minutes.
        assert_eq!(count(events, "channel_health"), 2 * 7 * 24 * 12);
    }

    #[test]
    fn odd_zones_and_dst_days_work() {
        for (tz, start) in [
            // The night New York skips 02:00–03:00.
            (
                chrono_tz::America::New_York,
                chrono_tz::America::New_York.with_ymd_and_hms(2026, 3, 7, 12, 0, 0),
            ),
            (
                chrono_tz::Asia::Kathmandu,
                chrono_tz::Asia::Kathmandu.with_ymd_and_hms(2026, 11, 23, 0, 0, 0),
            ),
        ] {
            let start = start.unwrap().timestamp_millis();
            let cfg = SimulatorConfig {
                timezone: tz,
                agents: 5,
                teams: 7,
                ..SimulatorConfig::default()
            };
            let events = Simulator::new(cfg, start).advance_to(start + 2 * DAY_MS);
            assert!(
                events
                    .windows(2)
                    .all(|w| w[0].occurred_at_ms <= w[1].occurred_at_ms)
            );
            // Log-ins (offline to present) after the start follow the local rota.
            let mut status: BTreeMap<&str, AgentStatus> = BTreeMap::new();
            let mut logins = Vec::new();
            for e in &events {
                if let Payload::AgentStatusChanged {
                    agent_id,
                    status: s,
                    ..
                } = &e.payload
                {
                    let was = status.insert(agent_id, *s).unwrap_or(AgentStatus::Offline);
                    if was == AgentStatus::Offline && e.occurred_at_ms > start {
                        logins.push(tz.timestamp_millis_opt(e.occurred_at_ms).unwrap().hour());
                    }
                }
            }
            assert!(logins.len() >= 5, "{tz}: {logins:?}");
            assert!(
                logins.iter().all(|h| [6, 7, 9, 10, 13, 14].contains(h)),
                "{tz}: {logins:?}"
            );
        }
    }

    #[test]
    fn degenerate_configs_do_not_hang_or_panic() {
        for per_day in [0.0, -5.0, f64::NAN, f64::INFINITY] {
            let quiet = SimulatorConfig {
                conversations_per_day: per_day,
                agents: 0,
                teams: 0,
                ..SimulatorConfig::default()
            };
            let events = Simulator::new(quiet, start()).advance_to(start() + 2 * DAY_MS);
            // Broadcasts still go out; the only conversations are replies to them.
            assert_eq!(count(&events, "broadcast_sent"), 4);
            assert!(events.iter().all(|e| match &e.payload {
                Payload::ConversationOpened { origin, .. } => *origin == Origin::Campaign,
                Payload::AgentStatusChanged { .. } => false,
                _ => true,
            }));
        }
        // Without agents, escalated conversations wait a day and are closed by the system.
        let unstaffed = SimulatorConfig {
            agents: 0,
            ..SimulatorConfig::default()
        };
        let events = Simulator::new(unstaffed, start()).advance_to(start() + 3 * DAY_MS);
        let closed_by_system = events
            .iter()
            .filter(|e| {
                matches!(
                    e.payload,
                    Payload::ConversationResolved {
                        resolved_by: ResolvedBy::System,
                        ..
                    }
                )
            })
            .count();
        assert!(closed_by_system > 500, "{closed_by_system}");
        assert!(events.iter().all(|e| !matches!(
            e.payload,
            Payload::ConversationAssigned {
                assignee: Assignee::Agent,
                ..
            } | Payload::MessageCreated {
                sender: Sender::Agent,
                ..
            }
        )));
    }

    #[test]
    fn staff_bookkeeping_stays_consistent() {
        let mut sim = Simulator::new(config(11), start());
        let (mut night_queue, mut noon_queue) = (0, 0);
        for h in 1..=72 {
            sim.advance_to(start() + h * HOUR_MS);
            sim.check_staff_invariants();
            match h % 24 {
                5 => night_queue += sim.waiting_len(),
                14 => noon_queue += sim.waiting_len(),
                _ => {}
            }
        }
        assert!(
            night_queue > 20,
            "{night_queue} waiting at 05:00 over three nights"
        );
        assert!(
            noon_queue < night_queue / 4,
            "{noon_queue} waiting at 14:00"
        );
    }

    #[test]
    fn the_ticket_backlog_levels_off_instead_of_growing_with_the_run() {
        let events = Simulator::new(
            SimulatorConfig {
                seed: 9,
                conversations_per_day: 150.0,
                ..SimulatorConfig::default()
            },
            start(),
        )
        .advance_to(start() + 100 * DAY_MS);
        let open_at = |day: i64| {
            let t = start() + day * DAY_MS;
            let before = |ty: &str| {
                events
                    .iter()
                    .filter(|e| e.occurred_at_ms < t && e.type_name() == ty)
                    .count() as i64
            };
            before("ticket_opened") - before("ticket_resolved")
        };
        let (day_50, day_100) = (open_at(50), open_at(100));
        let filed = count(&events, "ticket_opened") as i64;
        assert!(filed > 1_000, "{filed} tickets");
        // Were 15% left open for good, day 100 would hold about twice day 50's backlog.
        assert!(day_50 > 0, "no open tickets at day 50");
        assert!(
            (day_100 as f64) < 1.25 * day_50 as f64,
            "open tickets grew from {day_50} (day 50) to {day_100} (day 100)"
        );
    }

    /// The month-long volume the demo and benchmarks rely on. Speed is a benchmark's
    /// business, not a test's: run with `-- --ignored --nocapture` to see it.
    #[test]
    #[ignore = "a month of events takes a few seconds; run on demand"]
    fn thirty_days_volume() {
        let t = std::time::Instant::now();
        let events = run(42, 30);
        let elapsed = t.elapsed();
        let conversations = count(&events, "conversation_opened");
        let mut by_type: BTreeMap<&str, usize> = BTreeMap::new();
        for e in &events {
            *by_type.entry(e.type_name()).or_default() += 1;
        }
        println!(
            "30 days: {} events, {conversations} conversations ({:.1} events each) in {elapsed:?}\n{by_type:#?}",
            events.len(),
            events.len() as f64 / conversations as f64
        );
        // 1200 a day plus campaign replies, and a few dozen events each.
        assert!((34_000..40_000).contains(&conversations), "{conversations}");
        let per_conversation = events.len() as f64 / conversations as f64;
        assert!(
            (30.0..60.0).contains(&per_conversation),
            "{per_conversation}"
        );
        assert_eq!(by_type.len(), schemas::event::EVENT_TYPES.len());
    }
}
