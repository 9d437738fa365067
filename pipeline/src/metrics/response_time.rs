//! The conversation fold: active conversations now, and first response time (FRT).
//!
//! FRT runs from the conversation's open, or from the bot's hand-over when a bot held
//! the conversation first, to the first message a human agent sends. The hand-over is
//! the first `conversation_escalated` or assignment to an agent after the bot was
//! assigned. An agent who writes while the bot still holds the conversation (before any
//! hand-over) answers a customer who was not waiting for a human: FRT 0. FRT is
//! measured once per conversation (a reopen does not start a new one) and counted in
//! the 15-minute bucket of the reply.
//!
//! A conversation is active when it was opened or reopened and not resolved since, in
//! event-time order. Its holder is who it was last assigned to; an escalation makes it
//! unassigned until an agent takes it.
//!
//! The same fold yields the conversation-effectiveness facts: when it was opened and
//! whether it is resolved now, every resolution, which agents wrote in it in which
//! bucket, and — while no human has replied — when its wait for a first response
//! started (for SLA deadlines). A conversation the bot holds and never handed over is
//! not waiting for a human.

use std::collections::BTreeSet;

use schemas::event::{Assignee, Channel, ResolvedBy, Sender};
use schemas::metrics::{Fact, Holder};
use schemas::time::bucket_of;

use crate::records::{ConvEvent, ConvKind, owned};

/// A conversation's first human response.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FirstResponse {
    /// When the reply was sent.
    pub at: i64,
    /// Seconds from open or hand-over, floored, never negative.
    pub seconds: u32,
    /// Replying agent.
    pub agent_id: Option<String>,
    /// Team of the agent assignment in force at the reply.
    pub team_id: Option<String>,
}

/// What the conversation's events add up to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConversationSummary {
    /// Channel it was opened on.
    pub channel: Channel,
    /// Inbox it was opened in.
    pub inbox_id: String,
    /// Who holds it, when it is active now.
    pub active: Option<Holder>,
    /// Its first human response, if any.
    pub first_response: Option<FirstResponse>,
    /// When it was first opened.
    pub opened_at: i64,
    /// Every resolution: time, by whom, which agent, and the team of the latest agent
    /// assignment at that moment.
    pub resolutions: Vec<(i64, ResolvedBy, Option<String>, Option<String>)>,
    /// When the wait for a human started: the open, the bot's hand-over, or — when an
    /// agent wrote before any hand-over — that first reply. Human handling time
    /// (automation impact) runs from here.
    pub human_start: i64,
    /// `(agent, team, bucket)` for every bucket in which an agent wrote in it.
    pub agent_activity: BTreeSet<(String, Option<String>, i64)>,
    /// While unanswered by a human: when the wait started and, if it was closed
    /// unanswered, its first resolution after that. `None` once answered, or while
    /// the bot holds it without a hand-over.
    pub awaiting: Option<(i64, Option<i64>)>,
    /// Team of the current assignment.
    pub team_id: Option<String>,
    /// The agent holding it now, when an agent does.
    pub assignee: Option<String>,
    /// The campaign of its first open, if any.
    pub campaign_id: Option<String>,
}

/// Folds a conversation's events, which must be sorted by `(at, kind)`. Returns
/// `None` while no `conversation_opened` is known (events may arrive before it).
pub fn fold<'a>(events: impl IntoIterator<Item = &'a ConvEvent>) -> Option<ConversationSummary> {
    let events: Vec<&ConvEvent> = events.into_iter().collect();
    // The first open is known before the walk: an agent's message or resolution stamped
    // before it (clock skew between systems) still counts, its FRT as 0.
    let mut opened: Option<(i64, Channel, String)> = None;
    let mut campaign: Option<String> = None;
    if let Some((at, o)) = events.iter().find_map(|ev| match &ev.kind {
        ConvKind::Opened(o) => Some((ev.at, o)),
        _ => None,
    }) {
        opened = Some((at, o.channel, o.inbox_id.as_str().to_owned()));
        campaign = owned(o.campaign_id.as_ref());
    }
    let mut open = false;
    let mut holder = Holder::Unassigned;
    let mut bot_held = false;
    let mut handover_at: Option<i64> = None;
    let mut team: Option<String> = None;
    let mut first_response: Option<FirstResponse> = None;
    let mut resolutions = Vec::new();
    let mut agent_activity = BTreeSet::new();
    let mut assignee: Option<String> = None;

    for ev in events {
        match &ev.kind {
            ConvKind::Opened(_) => open = true,
            ConvKind::Assigned(to) if to.assignee == Assignee::Bot => {
                holder = Holder::Bot;
                assignee = None;
                if first_response.is_none() {
                    bot_held = true;
                }
            }
            ConvKind::Assigned(to) => {
                holder = Holder::Agent;
                assignee = owned(to.agent_id.as_ref());
                team = owned(to.team_id.as_ref());
                if bot_held && handover_at.is_none() {
                    handover_at = Some(ev.at);
                }
            }
            ConvKind::Escalated => {
                // The bot hands over; an escalation while an agent holds it leaves it
                // with the agent (docs/metrics.md, active conversations).
                if holder == Holder::Bot {
                    holder = Holder::Unassigned;
                    assignee = None;
                }
                if bot_held && handover_at.is_none() {
                    handover_at = Some(ev.at);
                }
            }
            ConvKind::Message {
                sender: Sender::Agent,
                agent_id,
                ..
            } => {
                if let (Some(agent), Some(_)) = (agent_id, &opened) {
                    agent_activity.insert((
                        agent.as_str().to_owned(),
                        team.clone(),
                        bucket_of(ev.at),
                    ));
                }
                if let (None, Some((open_at, _, _))) = (&first_response, &opened) {
                    let start = match (bot_held, handover_at) {
                        (false, _) => *open_at,
                        (true, Some(handover)) => handover,
                        // Written while the bot holds it: nobody was waiting for a human.
                        (true, None) => ev.at,
                    };
                    let seconds = u32::try_from((ev.at - start).max(0) / 1000).unwrap_or(u32::MAX);
                    first_response = Some(FirstResponse {
                        at: ev.at,
                        seconds,
                        agent_id: owned(agent_id.as_ref()),
                        team_id: team.clone(),
                    });
                }
            }
            ConvKind::Message { .. } => {}
            ConvKind::Resolved { by, agent_id } => {
                if opened.is_some() {
                    resolutions.push((ev.at, *by, owned(agent_id.as_ref()), team.clone()));
                }
                open = false;
            }
            ConvKind::Reopened => open = true,
            ConvKind::Intent { .. } | ConvKind::Csat { .. } => {}
        }
    }
    let (opened_at, channel, inbox_id) = opened?;
    let human_start = match (&first_response, bot_held, handover_at) {
        (_, false, _) => opened_at,
        (_, true, Some(handover)) if first_response.as_ref().is_none_or(|f| handover <= f.at) => {
            handover
        }
        (Some(f), true, _) => f.at,
        (None, true, _) => handover_at.unwrap_or(opened_at),
    };
    let awaiting = match (&first_response, bot_held, handover_at) {
        (Some(_), _, _) | (None, true, None) => None,
        (None, false, _) => Some(opened_at),
        (None, true, Some(handover)) => Some(handover),
    }
    .map(|start| {
        // The closing that stands: the last resolution, unless reopened since
        // (docs/metrics.md, SLA compliance).
        let closed = if open {
            None
        } else {
            resolutions.last().map(|r| r.0)
        };
        (start, closed)
    });
    Some(ConversationSummary {
        channel,
        inbox_id,
        active: open.then_some(holder),
        first_response,
        opened_at,
        resolutions,
        human_start,
        agent_activity,
        awaiting,
        team_id: team,
        assignee,
        campaign_id: campaign,
    })
}

/// The facts a conversation contributes.
pub fn facts(
    account_id: u64,
    conversation_id: &str,
    summary: &ConversationSummary,
    out: &mut Vec<Fact>,
) {
    out.push(Fact::ConversationOpened {
        account_id,
        bucket: bucket_of(summary.opened_at),
        resolved: summary.active.is_none(),
        channel: summary.channel,
        inbox_id: summary.inbox_id.clone(),
        campaign_id: summary.campaign_id.clone(),
    });
    for (at, by, agent_id, team_id) in &summary.resolutions {
        out.push(Fact::Resolution {
            account_id,
            bucket: bucket_of(*at),
            resolved_by: *by,
            agent_id: agent_id.clone(),
            team_id: team_id.clone(),
            channel: summary.channel,
            inbox_id: summary.inbox_id.clone(),
        });
    }
    for (agent_id, team_id, bucket) in &summary.agent_activity {
        out.push(Fact::AgentHandled {
            account_id,
            bucket: *bucket,
            agent_id: agent_id.clone(),
            team_id: team_id.clone(),
            conversation_id: conversation_id.to_owned(),
            channel: summary.channel,
            inbox_id: summary.inbox_id.clone(),
        });
    }
    if let Some((start_ms, resolved_at_ms)) = summary.awaiting {
        out.push(Fact::AwaitingFirstResponse {
            account_id,
            bucket: bucket_of(start_ms),
            start_ms,
            resolved_at_ms,
            channel: summary.channel,
            inbox_id: summary.inbox_id.clone(),
            team_id: summary.team_id.clone(),
        });
    }
    if let Some(holder) = summary.active {
        out.push(Fact::ActiveConversation {
            account_id,
            holder,
            agent_id: summary.assignee.clone().filter(|_| holder == Holder::Agent),
            channel: summary.channel,
            inbox_id: summary.inbox_id.clone(),
        });
    }
    if let Some(fr) = &summary.first_response {
        out.push(Fact::FirstResponse {
            account_id,
            bucket: bucket_of(fr.at),
            seconds: fr.seconds,
            channel: summary.channel,
            inbox_id: summary.inbox_id.clone(),
            agent_id: fr.agent_id.clone(),
            team_id: fr.team_id.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Assignment, Opened};
    use schemas::event::{Direction, Origin, ResolvedBy};

    fn ev(at_s: i64, kind: ConvKind) -> ConvEvent {
        ConvEvent {
            at: at_s * 1000,
            kind,
        }
    }
    fn opened() -> ConvKind {
        ConvKind::Opened(Box::new(Opened {
            customer_id: "u".into(),
            channel: Channel::Whatsapp,
            inbox_id: "i".into(),
            origin: Origin::Inbound,
            campaign_id: None,
        }))
    }
    fn assigned(a: Assignee) -> ConvKind {
        ConvKind::Assigned(Box::new(Assignment {
            assignee: a,
            agent_id: Some("ag".into()),
            team_id: Some("t1".into()),
        }))
    }
    fn msg(sender: Sender) -> ConvKind {
        ConvKind::Message {
            direction: Direction::Outbound,
            sender,
            agent_id: Some("ag".into()),
            auto_reply: false,
        }
    }

    fn run(mut events: Vec<ConvEvent>) -> Option<ConversationSummary> {
        events.sort();
        fold(&events)
    }

    #[test]
    fn frt_from_open_when_no_bot() {
        let s = run(vec![
            ev(100, opened()),
            ev(130, assigned(Assignee::Agent)),
            ev(190, msg(Sender::Agent)),
            ev(200, msg(Sender::Agent)),
        ])
        .unwrap();
        let fr = s.first_response.unwrap();
        assert_eq!(
            (fr.at, fr.seconds, fr.team_id.as_deref()),
            (190_000, 90, Some("t1"))
        );
        assert_eq!(s.active, Some(Holder::Agent));
    }

    #[test]
    fn an_agent_who_writes_before_the_bots_handover_has_frt_zero() {
        // The four minutes before the reply were the bot's: nobody waited for a human.
        let s = run(vec![
            ev(0, opened()),
            ev(1, assigned(Assignee::Bot)),
            ev(240, msg(Sender::Agent)),
            ev(360, ConvKind::Escalated),
            ev(
                900,
                ConvKind::Resolved {
                    by: ResolvedBy::Agent,
                    agent_id: Some("ag".into()),
                },
            ),
        ])
        .unwrap();
        let fr = s.first_response.unwrap();
        assert_eq!((fr.at, fr.seconds), (240_000, 0));
        // Human handling (automation impact) starts at that reply too.
        assert_eq!(s.human_start, 240_000);
        assert_eq!(s.awaiting, None);
    }

    #[test]
    fn an_escalation_and_an_agent_assignment_in_the_same_millisecond_leave_it_with_the_agent() {
        // As a CRM emits them: the bot escalates, routing assigns an agent at once.
        // Sorted by kind alone the assignment came first and the escalation then left
        // the conversation unassigned.
        let s = run(vec![
            ev(0, opened()),
            ev(0, assigned(Assignee::Bot)),
            ev(60, assigned(Assignee::Agent)),
            ev(60, ConvKind::Escalated),
        ])
        .unwrap();
        assert_eq!(s.active, Some(Holder::Agent));
        assert_eq!(s.assignee.as_deref(), Some("ag"));
        assert_eq!(s.awaiting, Some((60_000, None)));
    }

    #[test]
    fn work_stamped_before_the_open_counts_and_an_escalation_leaves_an_agent_holding_it() {
        let s = run(vec![
            // Clock skew: the agent's reply is stamped a second before the open.
            ev(9, msg(Sender::Agent)),
            ev(10, opened()),
            ev(20, assigned(Assignee::Agent)),
            ev(30, ConvKind::Escalated),
        ])
        .unwrap();
        let fr = s.first_response.unwrap();
        assert_eq!((fr.at, fr.seconds), (9_000, 0));
        assert_eq!(s.agent_activity.len(), 1);
        // Not the bot's hand-over: the agent keeps it.
        assert_eq!(s.active, Some(Holder::Agent));
    }

    #[test]
    fn a_resolution_carries_the_team_of_the_agent_assignment_in_force() {
        let s = run(vec![
            ev(0, opened()),
            ev(10, assigned(Assignee::Agent)),
            ev(
                20,
                ConvKind::Resolved {
                    by: ResolvedBy::System,
                    agent_id: None,
                },
            ),
        ])
        .unwrap();
        assert_eq!(
            s.resolutions,
            vec![(20_000, ResolvedBy::System, None, Some("t1".into()))]
        );
    }

    #[test]
    fn frt_from_bot_handover() {
        let s = run(vec![
            ev(0, opened()),
            ev(1, assigned(Assignee::Bot)),
            ev(5, msg(Sender::Bot)),
            ev(60, ConvKind::Escalated),
            ev(90, assigned(Assignee::Agent)),
            ev(180, msg(Sender::Agent)),
        ])
        .unwrap();
        assert_eq!(s.first_response.unwrap().seconds, 120);
    }

    #[test]
    fn escalation_leaves_it_unassigned_and_resolve_reopen_toggle_activity() {
        let s = run(vec![
            ev(0, opened()),
            ev(1, assigned(Assignee::Bot)),
            ev(60, ConvKind::Escalated),
        ])
        .unwrap();
        assert_eq!(s.active, Some(Holder::Unassigned));
        assert_eq!(s.first_response, None);
        let resolved = ConvKind::Resolved {
            by: ResolvedBy::Bot,
            agent_id: None,
        };
        let s = run(vec![
            ev(0, opened()),
            ev(1, assigned(Assignee::Bot)),
            ev(9, resolved.clone()),
        ])
        .unwrap();
        assert_eq!(s.active, None);
        let s = run(vec![
            ev(0, opened()),
            ev(9, resolved),
            ev(20, ConvKind::Reopened),
        ])
        .unwrap();
        assert_eq!(s.active, Some(Holder::Unassigned));
    }

    #[test]
    fn awaiting_starts_at_open_or_handover_and_ends_with_the_reply() {
        let s = run(vec![ev(100, opened()), ev(150, msg(Sender::Bot))]).unwrap();
        assert_eq!(s.awaiting, Some((100_000, None)));
        let bot_only = run(vec![ev(0, opened()), ev(1, assigned(Assignee::Bot))]).unwrap();
        assert_eq!(
            bot_only.awaiting, None,
            "the bot holds it: nobody owes a human reply"
        );
        let resolved = ConvKind::Resolved {
            by: ResolvedBy::System,
            agent_id: None,
        };
        let s = run(vec![
            ev(0, opened()),
            ev(1, assigned(Assignee::Bot)),
            ev(60, ConvKind::Escalated),
            ev(900, resolved.clone()),
        ])
        .unwrap();
        assert_eq!(s.awaiting, Some((60_000, Some(900_000))));
        assert_eq!(
            s.resolutions,
            vec![(900_000, ResolvedBy::System, None, None)]
        );
        // Closed, reopened and still unanswered: it is waiting again, nothing closes it.
        let s = run(vec![
            ev(0, opened()),
            ev(100, resolved.clone()),
            ev(200, ConvKind::Reopened),
        ])
        .unwrap();
        assert_eq!(s.awaiting, Some((0, None)));
        // Closed twice: the closing that stands is the last one.
        let s = run(vec![
            ev(0, opened()),
            ev(100, resolved.clone()),
            ev(200, ConvKind::Reopened),
            ev(700, resolved),
        ])
        .unwrap();
        assert_eq!(s.awaiting, Some((0, Some(700_000))));
        let s = run(vec![
            ev(0, opened()),
            ev(30, assigned(Assignee::Agent)),
            ev(40, msg(Sender::Agent)),
        ])
        .unwrap();
        assert_eq!(s.awaiting, None);
        assert_eq!(
            s.agent_activity.into_iter().collect::<Vec<_>>(),
            vec![("ag".to_string(), Some("t1".to_string()), 0)]
        );
    }

    #[test]
    fn out_of_order_arrival_is_folded_in_event_time_order_and_unopened_is_nothing() {
        // The agent message arrives first; only after the open is known does it count.
        assert_eq!(run(vec![ev(50, msg(Sender::Agent))]), None);
        let s = run(vec![ev(50, msg(Sender::Agent)), ev(20, opened())]).unwrap();
        assert_eq!(s.first_response.unwrap().seconds, 30);
    }
}
