//! The automation fold: what the bot did in a conversation, for the automation impact
//! section. It reads the same conversation events as [`super::response_time`], in
//! event-time order, and yields one [`Fact::AutomationConversation`] per opened
//! conversation, in the bucket of its first open.
//!
//! The outcome is the conversation's state *now*: `resolved_by` is that of its latest
//! resolution while it is resolved (a reopen clears it until the next resolution).
//! The intent is the first one detected; the CSAT score is the latest submitted (a
//! customer may revise it). Human handling time runs from the start of the human wait
//! (`ConversationSummary::human_start` of [`super::response_time`]: the open, the bot's
//! hand-over, or an agent's reply before it, as for FRT) to the resolution now.

use schemas::event::{Assignee, ResolvedBy, Sender};
use schemas::metrics::Fact;
use schemas::time::bucket_of;

use crate::records::{ConvEvent, ConvKind};

/// What automation metrics need from one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Automation {
    /// Ever assigned to the bot.
    pub bot: bool,
    /// Escalated at least once.
    pub escalated: bool,
    /// A human agent wrote in it.
    pub human: bool,
    /// Latest resolution `(at, by)` while resolved now.
    pub resolved: Option<(i64, ResolvedBy)>,
    /// At least one auto-reply message.
    pub auto_reply: bool,
    /// First detected intent.
    pub intent: Option<String>,
    /// Latest CSAT score.
    pub csat: Option<u8>,
}

/// Folds a conversation's events (sorted by `(at, kind)`).
pub fn fold<'a>(events: impl IntoIterator<Item = &'a ConvEvent>) -> Automation {
    let mut a = Automation::default();
    for ev in events {
        match &ev.kind {
            ConvKind::Opened(_) | ConvKind::Reopened => a.resolved = None,
            ConvKind::Assigned(to) if to.assignee == Assignee::Bot => a.bot = true,
            ConvKind::Assigned(_) => {}
            ConvKind::Escalated => a.escalated = true,
            ConvKind::Message {
                sender, auto_reply, ..
            } => {
                a.human |= *sender == Sender::Agent;
                a.auto_reply |= *auto_reply;
            }
            ConvKind::Resolved { by, .. } => a.resolved = Some((ev.at, *by)),
            ConvKind::Intent { intent } => {
                if a.intent.is_none() {
                    a.intent = Some(intent.as_str().to_owned());
                }
            }
            ConvKind::Csat { score } => a.csat = Some(*score),
        }
    }
    a
}

/// The fact a conversation contributes; `opened` is `(first open, start of the human
/// wait, channel, inbox)` from the conversation fold.
pub fn facts(
    account_id: u64,
    opened: (i64, i64, schemas::event::Channel, &str),
    a: &Automation,
    out: &mut Vec<Fact>,
) {
    let (opened_at, human_start, channel, inbox_id) = opened;
    let handling_s = match (a.human, a.resolved) {
        (true, Some((at, _))) => {
            Some(u32::try_from((at - human_start).max(0) / 1000).unwrap_or(u32::MAX))
        }
        _ => None,
    };
    out.push(Fact::AutomationConversation {
        account_id,
        bucket: bucket_of(opened_at),
        channel,
        inbox_id: inbox_id.to_owned(),
        bot: a.bot,
        escalated: a.escalated,
        human: a.human,
        resolved_by: a.resolved.map(|(_, by)| by),
        auto_reply: a.auto_reply,
        intent: a.intent.clone(),
        csat: a.csat,
        handling_s,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Assignment, Opened};
    use schemas::event::{Channel, Direction, Origin};

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
    fn msg(sender: Sender, auto_reply: bool) -> ConvKind {
        ConvKind::Message {
            direction: Direction::Outbound,
            sender,
            agent_id: None,
            auto_reply,
        }
    }
    fn resolved(by: ResolvedBy) -> ConvKind {
        ConvKind::Resolved { by, agent_id: None }
    }
    fn bot() -> ConvKind {
        ConvKind::Assigned(Box::new(Assignment {
            assignee: Assignee::Bot,
            agent_id: None,
            team_id: None,
        }))
    }

    #[test]
    fn bot_only_with_intent_and_revised_csat() {
        let mut events = vec![
            ev(0, opened()),
            ev(1, bot()),
            ev(2, msg(Sender::Bot, true)),
            ev(
                3,
                ConvKind::Intent {
                    intent: "billing".into(),
                },
            ),
            ev(
                4,
                ConvKind::Intent {
                    intent: "refund".into(),
                },
            ),
            ev(50, resolved(ResolvedBy::Bot)),
            ev(70, ConvKind::Csat { score: 5 }),
            ev(60, ConvKind::Csat { score: 2 }),
        ];
        events.sort();
        let a = fold(&events);
        assert!(a.bot && !a.human && !a.escalated && a.auto_reply);
        assert_eq!(a.resolved, Some((50_000, ResolvedBy::Bot)));
        assert_eq!((a.intent.as_deref(), a.csat), (Some("billing"), Some(5)));
    }

    #[test]
    fn handling_runs_from_the_handover_to_the_resolution_now_and_a_reopen_clears_it() {
        let mut events = vec![
            ev(0, opened()),
            ev(1, bot()),
            ev(60, ConvKind::Escalated),
            ev(120, msg(Sender::Agent, false)),
            ev(660, resolved(ResolvedBy::Agent)),
        ];
        let mut out = Vec::new();
        facts(
            1,
            (0, 60_000, Channel::Whatsapp, "i"),
            &fold(&events),
            &mut out,
        );
        assert!(matches!(
            &out[..],
            [Fact::AutomationConversation {
                handling_s: Some(600),
                escalated: true,
                human: true,
                ..
            }]
        ));
        events.push(ev(700, ConvKind::Reopened));
        let a = fold(&events);
        assert_eq!(a.resolved, None);
    }
}
