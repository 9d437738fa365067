//! The message fold: messages by direction, and WhatsApp delivery outcomes.
//!
//! Statuses never move backwards: the fold keeps the highest of sent < delivered <
//! read whatever order the statuses arrive in, so a late `sent` after `read` changes
//! nothing, and `read` counts as delivered even when no `delivered` event came
//! (WhatsApp skips it when both happen at once). `failed` is tracked on its own.

use schemas::event::{Channel, DeliveryStatus, Direction};
use schemas::metrics::Fact;
use schemas::time::bucket_of;

use crate::records::{MsgEvent, MsgKind};

/// What a message's events add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageSummary {
    /// Creation time, direction and channel, once `message_created` is known.
    pub created: Option<(i64, Direction, Channel)>,
    /// Highest non-failure status reached.
    pub best: Option<DeliveryStatus>,
    /// A `failed` status was reported.
    pub failed: bool,
}

fn rank(s: DeliveryStatus) -> u8 {
    match s {
        DeliveryStatus::Sent => 1,
        DeliveryStatus::Delivered => 2,
        DeliveryStatus::Read => 3,
        DeliveryStatus::Failed => 0,
    }
}

/// Folds a message's events (any order).
pub fn fold<'a>(events: impl IntoIterator<Item = &'a MsgEvent>) -> MessageSummary {
    let mut summary = MessageSummary {
        created: None,
        best: None,
        failed: false,
    };
    for ev in events {
        match ev.kind {
            MsgKind::Created {
                direction, channel, ..
            } => {
                if summary.created.is_none() {
                    summary.created = Some((ev.at, direction, channel));
                }
            }
            MsgKind::Status {
                status: DeliveryStatus::Failed,
                ..
            } => summary.failed = true,
            MsgKind::Status { status, .. } => {
                if summary.best.is_none_or(|b| rank(status) > rank(b)) {
                    summary.best = Some(status);
                }
            }
        }
    }
    summary
}

/// The facts a message contributes.
pub fn facts(account_id: u64, s: &MessageSummary, out: &mut Vec<Fact>) {
    let Some((at, direction, channel)) = s.created else {
        return;
    };
    let bucket = bucket_of(at);
    out.push(Fact::Message {
        account_id,
        bucket,
        direction,
        channel,
    });
    if channel == Channel::Whatsapp
        && direction == Direction::Outbound
        && (s.best.is_some() || s.failed)
    {
        out.push(Fact::WhatsappOutcome {
            account_id,
            bucket,
            delivered: s
                .best
                .is_some_and(|b| rank(b) >= rank(DeliveryStatus::Delivered)),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::event::Sender;

    fn status(at: i64, status: DeliveryStatus) -> MsgEvent {
        MsgEvent {
            at,
            kind: MsgKind::Status {
                status,
                error_code: None,
            },
        }
    }
    fn created() -> MsgEvent {
        MsgEvent {
            at: 1,
            kind: MsgKind::Created {
                direction: Direction::Outbound,
                channel: Channel::Whatsapp,
                sender: Sender::Agent,
            },
        }
    }

    #[test]
    fn read_implies_delivered_and_late_sent_changes_nothing() {
        let s = fold(&[
            created(),
            status(5, DeliveryStatus::Read),
            status(9, DeliveryStatus::Sent),
        ]);
        assert_eq!(s.best, Some(DeliveryStatus::Read));
        let mut facts_out = Vec::new();
        facts(1, &s, &mut facts_out);
        assert!(facts_out.contains(&Fact::WhatsappOutcome {
            account_id: 1,
            bucket: 0,
            delivered: true
        }));
    }

    #[test]
    fn failed_without_delivery_counts_as_not_delivered_and_no_status_is_no_outcome() {
        let mut out = Vec::new();
        facts(
            1,
            &fold(&[
                created(),
                status(5, DeliveryStatus::Sent),
                status(6, DeliveryStatus::Failed),
            ]),
            &mut out,
        );
        assert_eq!(
            out[1],
            Fact::WhatsappOutcome {
                account_id: 1,
                bucket: 0,
                delivered: false
            }
        );
        let mut out = Vec::new();
        facts(1, &fold(&[created()]), &mut out);
        assert_eq!(
            out.len(),
            1,
            "a message without status is not in the delivery rate"
        );
    }
}
