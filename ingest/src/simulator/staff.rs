//! Agents, teams, shifts and who gets which conversation.
//!
//! Each agent works one of three shifts in the account's local time, with two short
//! breaks and a lunch (`away`). An agent holding [`BUSY_AT`] open conversations goes
//! `busy` and gets no new ones until down to [`RESUME_AT`]. Conversations go to an
//! available (`online`, not full) agent of the intent's team, else of any team, else
//! wait in a FIFO queue that drains as soon as someone is free: this queue is what makes
//! the morning backlog and the night-time SLA breaches.
//!
//! Invariant: `Agent::open` counts the conversations whose `agent` is that agent.

use chrono::Datelike;
use schemas::event::{AgentStatus, Assignee, Channel, Payload};

use super::calendar::Calendar;
use super::dist::{self, HOUR_MS, MINUTE_MS, chance, int, lognormal_ms, minutes_between};
use super::{Action, Simulator, Step, agent_id, conversation_id};

/// Open conversations at which an agent goes `busy` and stops receiving new ones.
pub(super) const BUSY_AT: u16 = 8;
/// Open conversations at which a `busy` agent is `online` again.
pub(super) const RESUME_AT: u16 = 6;

/// Shift hours in local time, `[start, end)`: early, middle and late, nine hours with
/// an hour of breaks. At least two shifts overlap 10:00–19:00; nobody works
/// 23:00–07:00, so night-time conversations wait for the morning (the SLA breaches a
/// dashboard should show).
const SHIFTS: [(i64, i64); 3] = [(7, 16), (10, 19), (14, 23)];

/// The night shift of [`SimulatorConfig::night_crew`](super::SimulatorConfig), into the
/// next morning (hours past 24 roll into the next day).
const NIGHT: (i64, i64) = (23, 31);

/// The roster positions of the night crew (both of the late shift in the rotation).
const NIGHT_CREW: [usize; 2] = [2, 5];

/// Start and end hour of shift `shift` (an index into [`SHIFTS`], or `SHIFTS.len()`
/// for [`NIGHT`]).
fn hours(shift: usize) -> (i64, i64) {
    SHIFTS.get(shift).copied().unwrap_or(NIGHT)
}

/// Breaks as (minutes after the shift's start, length in minutes): two short ones and
/// lunch.
const BREAKS: [(i64, i64); 3] = [(120, 15), (255, 30), (405, 15)];

/// Team ids in the order they are created; more teams than names get numbered ids.
const TEAM_NAMES: [&str; 6] = [
    "team-support",
    "team-sales",
    "team-billing",
    "team-retention",
    "team-onboarding",
    "team-vip",
];

/// The ids of `n` teams.
pub(super) fn team_names(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            TEAM_NAMES
                .get(i)
                .map_or_else(|| format!("team-{}", i + 1), |s| (*s).to_owned())
        })
        .collect()
}

/// One member of the roster.
pub(super) struct Agent {
    /// Team number.
    pub(super) team: usize,
    /// Index into [`SHIFTS`]; `SHIFTS.len()` for the night shift.
    shift: usize,
    /// Current presence; changes are emitted as `agent_status_changed`.
    pub(super) status: AgentStatus,
    /// Conversations currently assigned to this agent.
    pub(super) open: u16,
    /// End of the current break, so replies due during it wait until the agent is back.
    pub(super) away_until: i64,
}

impl Agent {
    /// Agent `i` of a roster spread over `teams` teams. Half the agents are in the
    /// first team (support carries most of the volume), the rest round-robin over the
    /// others; shifts rotate independently of teams so every team is covered all day.
    pub(super) fn new(i: usize, teams: usize, night_crew: bool) -> Self {
        let team = if teams <= 1 || i.is_multiple_of(2) {
            0
        } else {
            1 + (i / 2) % (teams - 1)
        };
        Self {
            team,
            shift: if night_crew && NIGHT_CREW.contains(&i) {
                SHIFTS.len()
            } else {
                i % SHIFTS.len()
            },
            status: AgentStatus::Offline,
            open: 0,
            away_until: 0,
        }
    }

    fn available(&self) -> bool {
        self.status == AgentStatus::Online && self.open < BUSY_AT
    }
}

/// Something that happens to an agent's day.
#[derive(Debug, Clone, Copy)]
pub(super) enum ShiftAction {
    /// Logs in.
    Start,
    /// Goes on a break of the given length.
    BreakStart {
        /// Minutes.
        minutes: u16,
    },
    /// Back from the break.
    BreakEnd,
    /// Logs off.
    End,
}

impl Simulator {
    /// The `DayPlan` action: schedules today's shifts, breaks and broadcasts, and the
    /// next day's plan at the next local midnight.
    pub(super) fn plan_day(&mut self) {
        let now = self.now_ms;
        let today = self.calendar.local_date(now);
        let weekend = Calendar::is_weekend(today);
        let shifts: Vec<usize> = self.agents.iter().map(|a| a.shift).collect();
        for (i, shift) in shifts.into_iter().enumerate() {
            self.plan_shift(i, shift, today);
        }
        self.plan_broadcasts(today, weekend);
        let tomorrow = today.succ_opt().unwrap_or(today);
        let next = self.calendar.at_local(tomorrow, 0).max(now + HOUR_MS);
        self.schedule(next, Action::DayPlan);
    }

    /// When the world starts: the night shifts that began the evening before and are
    /// still on (every later one is planned by the day it begins).
    pub(super) fn plan_last_night(&mut self) {
        let Some(yesterday) = self.calendar.local_date(self.now_ms).pred_opt() else {
            return;
        };
        let shifts: Vec<usize> = self.agents.iter().map(|a| a.shift).collect();
        for (i, shift) in shifts.into_iter().enumerate() {
            if hours(shift).1 > 24 {
                self.plan_shift(i, shift, yesterday);
            }
        }
    }

    /// Schedules agent `i`'s shift `shift` of `date` (log-in, breaks, log-off), unless
    /// it is over already or the agent has that weekend off.
    fn plan_shift(&mut self, i: usize, shift: usize, date: chrono::NaiveDate) {
        let now = self.now_ms;
        // Weekends are staffed by half the roster, alternating weekly, in groups of
        // three so each shift keeps someone; the night crew works every night.
        let week = date.iso_week().week() as usize;
        if Calendar::is_weekend(date) && shift < SHIFTS.len() && (i / 3 + week) % 2 == 1 {
            return;
        }
        let (start_h, end_h) = hours(shift);
        let late_by = int(&mut self.rng, 0, 20) as i64 - 10;
        let overtime = int(&mut self.rng, 0, 15) as i64;
        let start = self.calendar.at_local(date, start_h * 60 + late_by);
        let end = self.calendar.at_local(date, end_h * 60 + overtime);
        if end <= now {
            return;
        }
        let agent = i as u16;
        self.schedule(
            start,
            Action::Shift {
                agent,
                action: ShiftAction::Start,
            },
        );
        // The two of the night crew take their breaks 45 minutes apart, so the night is
        // never left to nobody.
        let stagger = if shift == SHIFTS.len() && i == NIGHT_CREW[1] {
            45
        } else {
            0
        };
        for (offset, minutes) in BREAKS {
            let jitter = int(&mut self.rng, 0, 30) as i64 - 15;
            let at = self
                .calendar
                .at_local(date, start_h * 60 + offset + stagger + jitter);
            if at >= now && at + minutes * MINUTE_MS < end {
                let minutes = minutes as u16;
                self.schedule(
                    at,
                    Action::Shift {
                        agent,
                        action: ShiftAction::BreakStart { minutes },
                    },
                );
            }
        }
        self.schedule(
            end,
            Action::Shift {
                agent,
                action: ShiftAction::End,
            },
        );
    }

    /// Runs one [`ShiftAction`].
    pub(super) fn shift(&mut self, agent: u16, action: ShiftAction) {
        let a = usize::from(agent);
        match action {
            ShiftAction::Start => {
                let status = if self.agents[a].open >= BUSY_AT {
                    AgentStatus::Busy
                } else {
                    AgentStatus::Online
                };
                self.set_status(agent, status);
                self.drain_waiting();
            }
            ShiftAction::BreakStart { minutes } => {
                if matches!(
                    self.agents[a].status,
                    AgentStatus::Online | AgentStatus::Busy
                ) {
                    self.set_status(agent, AgentStatus::Away);
                    let back = self.now_ms + i64::from(minutes) * MINUTE_MS;
                    self.agents[a].away_until = back;
                    self.schedule(
                        back,
                        Action::Shift {
                            agent,
                            action: ShiftAction::BreakEnd,
                        },
                    );
                }
            }
            ShiftAction::BreakEnd => {
                if self.agents[a].status == AgentStatus::Away {
                    let back = if self.agents[a].open >= BUSY_AT {
                        AgentStatus::Busy
                    } else {
                        AgentStatus::Online
                    };
                    self.set_status(agent, back);
                    self.drain_waiting();
                }
            }
            ShiftAction::End => self.set_status(agent, AgentStatus::Offline),
        }
    }

    /// Changes an agent's presence and emits the change; no-op when unchanged.
    fn set_status(&mut self, agent: u16, status: AgentStatus) {
        let a = &mut self.agents[usize::from(agent)];
        if a.status == status {
            return;
        }
        a.status = status;
        let team_id = self.teams[a.team].clone();
        self.emit(Payload::AgentStatusChanged {
            agent_id: agent_id(agent),
            team_id: Some(team_id),
            status,
        });
    }

    /// Agents logged in and not on a break.
    fn agents_present(&self) -> usize {
        self.agents
            .iter()
            .filter(|a| matches!(a.status, AgentStatus::Online | AgentStatus::Busy))
            .count()
    }

    /// The agent a conversation of `team` should go to: `prefer` (the agent who had it
    /// before) when available, else the least loaded available agent of the team, else
    /// of any team. Ties go to the lowest index, as in a round-robin rota.
    fn pick_agent(&self, team: usize, prefer: Option<u16>) -> Option<u16> {
        if let Some(p) = prefer.filter(|&p| self.agents[usize::from(p)].available()) {
            return Some(p);
        }
        let least_loaded = |same_team: bool| {
            self.agents
                .iter()
                .enumerate()
                .filter(|(_, a)| a.available() && (!same_team || a.team == team))
                .min_by_key(|(i, a)| (a.open, *i))
                .map(|(i, _)| i as u16)
        };
        least_loaded(true).or_else(|| least_loaded(false))
    }

    /// Hands a conversation to humans: to an available agent now, or to the queue.
    pub(super) fn enqueue(&mut self, conv: u32, prefer: Option<u16>) {
        let Some(c) = self.conversations.get(&conv) else {
            return;
        };
        if let Some(agent) = self.pick_agent(c.team, prefer) {
            self.assign(conv, agent);
            return;
        }
        let now = self.now_ms;
        let Some(c) = self.conversations.get_mut(&conv) else {
            return;
        };
        c.waiting = true;
        c.queue_epoch = c.queue_epoch.wrapping_add(1);
        c.queued_since = Some(now);
        let epoch = c.queue_epoch;
        self.waiting.push_back(conv);
        // Unanswered conversations are closed by the system after a day, as help desks
        // do; this also bounds the queue when nobody is on the roster at all.
        self.schedule(
            now + dist::DAY_MS,
            Action::Conversation {
                conv,
                step: Step::QueueTimeout { epoch },
            },
        );
    }

    /// Assigns a conversation to an agent and schedules the agent's next reply.
    fn assign(&mut self, conv: u32, agent: u16) {
        let a = usize::from(agent);
        let team_id = self.teams[self.agents[a].team].clone();
        self.emit(Payload::ConversationAssigned {
            conversation_id: conversation_id(conv),
            assignee: Assignee::Agent,
            agent_id: Some(agent_id(agent)),
            team_id: Some(team_id),
        });
        self.agents[a].open += 1;
        if self.agents[a].status == AgentStatus::Online && self.agents[a].open >= BUSY_AT {
            self.set_status(agent, AgentStatus::Busy);
        }
        let now = self.now_ms;
        let waited_long = {
            let Some(c) = self.conversations.get_mut(&conv) else {
                return;
            };
            c.agent = Some(agent);
            c.last_agent = Some(agent);
            c.waiting = false;
            c.human = true;
            !c.agent_replied && c.queued_since.is_some_and(|q| now - q > 2 * HOUR_MS)
        };
        // Customers left waiting for hours often do not answer when someone finally
        // writes back.
        if waited_long
            && chance(&mut self.rng, 0.35)
            && let Some(c) = self.conversations.get_mut(&conv)
        {
            c.silent = true;
            c.exchanges_left = 0;
        }
        let delay = self.agent_reply_delay(conv, agent);
        self.schedule(
            now + delay,
            Action::Conversation {
                conv,
                step: Step::AgentReply { follow_up: false },
            },
        );
    }

    /// Takes a conversation off an agent (resolved or handed over) and gives the freed
    /// capacity to the queue.
    pub(super) fn release(&mut self, agent: u16) {
        let a = &mut self.agents[usize::from(agent)];
        a.open = a.open.saturating_sub(1);
        if a.status == AgentStatus::Busy && a.open <= RESUME_AT {
            self.set_status(agent, AgentStatus::Online);
        }
        self.drain_waiting();
    }

    /// Assigns queued conversations, oldest first, while anyone is available.
    fn drain_waiting(&mut self) {
        while let Some(&conv) = self.waiting.front() {
            let Some(c) = self.conversations.get(&conv).filter(|c| c.waiting) else {
                self.waiting.pop_front();
                continue;
            };
            let Some(agent) = self.pick_agent(c.team, c.last_agent) else {
                break;
            };
            self.waiting.pop_front();
            self.assign(conv, agent);
        }
    }

    /// How much slower an agent answers for every other conversation they juggle.
    pub(super) fn workload_factor(&self, agent: u16) -> f64 {
        1.0 + 0.1 * f64::from(self.agents[usize::from(agent)].open.saturating_sub(1))
    }

    /// How long until the assigned agent writes: the first reply is log-normal with a
    /// median of about a minute that grows with the agent's workload, the hour's demand
    /// and a thin roster (queue time, counted by the dashboard, comes on top); later
    /// replies are quicker. A few conversations are forgotten in the inbox for half an
    /// hour to four hours.
    fn agent_reply_delay(&mut self, conv: u32, agent: u16) -> i64 {
        let Some(c) = self.conversations.get(&conv) else {
            return MINUTE_MS;
        };
        let (first, email) = (!c.agent_replied, c.channel == Channel::Email);
        let workload = self.workload_factor(agent);
        let channel_factor = if email { 8.0 } else { 1.0 };
        if !first {
            return lognormal_ms(&mut self.rng, 30.0 * workload * channel_factor, 0.8).max(3_000);
        }
        if chance(&mut self.rng, 0.025) {
            return minutes_between(&mut self.rng, 30.0, 240.0);
        }
        let demand = self.calendar.demand(self.now_ms).clamp(0.05, 3.0);
        let staffing = (4.0 / self.agents_present().max(1) as f64)
            .sqrt()
            .clamp(0.75, 2.0);
        let median_s = 60.0 * (0.7 + 0.35 * demand) * workload * staffing * channel_factor;
        lognormal_ms(&mut self.rng, median_s, 0.9).max(5_000)
    }
}

#[cfg(test)]
impl Simulator {
    /// Checks that every agent's `open` matches the conversations held, and that
    /// nothing waits in the queue while someone is available.
    pub(super) fn check_staff_invariants(&self) {
        for (i, a) in self.agents.iter().enumerate() {
            let held = self
                .conversations
                .values()
                .filter(|c| c.agent == Some(i as u16))
                .count();
            assert_eq!(usize::from(a.open), held, "agent {i} open count drifted");
        }
        let waiting = self.conversations.values().filter(|c| c.waiting).count();
        if waiting > 0 {
            assert!(
                self.agents.iter().all(|a| !a.available()),
                "{waiting} waiting while an agent is free"
            );
        }
    }

    /// Conversations waiting for an agent.
    pub(super) fn waiting_len(&self) -> usize {
        self.conversations.values().filter(|c| c.waiting).count()
    }
}
