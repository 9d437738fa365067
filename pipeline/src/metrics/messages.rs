//! The message fold: messages by direction, WhatsApp delivery outcomes and the
//! WhatsApp funnel, and the messages of each broadcast.
//!
//! Statuses never move backwards: the fold keeps the highest of sent < delivered <
//! read whatever order the statuses arrive in, so a late `sent` after `read` changes
//! nothing, and `read` counts as delivered even when no `delivered` event came
//! (WhatsApp skips it when both happen at once). `failed` is tracked on its own, with
//! the error code and title of the earliest `failed` status in event time.

use schemas::event::{Channel, DeliveryStatus, Direction};
use schemas::metrics::Fact;
use schemas::time::bucket_of;

use crate::records::{MsgEvent, MsgKind, owned};

/// What a message's events add up to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageSummary {
    /// Creation time, direction and channel, once `message_created` is known.
    pub created: Option<(i64, Direction, Channel)>,
    /// Highest non-failure status reached.
    pub best: Option<DeliveryStatus>,
    /// A `failed` status was reported.
    pub failed: bool,
    /// `(error_code, error_title)` of the earliest `failed` status.
    pub error: (Option<i64>, Option<String>),
    /// The broadcast the message belongs to, from its `message_created`.
    pub broadcast_id: Option<String>,
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
        error: (None, None),
        broadcast_id: None,
    };
    for ev in events {
        match &ev.kind {
            MsgKind::Created {
                direction,
                channel,
                broadcast_id,
                ..
            } => {
                if summary.created.is_none() {
                    summary.created = Some((ev.at, *direction, *channel));
                    summary.broadcast_id = owned(broadcast_id.as_deref());
                }
            }
            MsgKind::Status {
                status: DeliveryStatus::Failed,
                error,
            } => {
                if !summary.failed {
                    summary.failed = true;
                    summary.error = error
                        .as_deref()
                        .map_or((None, None), |e| (e.code, owned(e.title.as_ref())));
                }
            }
            MsgKind::Status { status, .. } => {
                if summary.best.is_none_or(|b| rank(*status) > rank(b)) {
                    summary.best = Some(*status);
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
    if channel != Channel::Whatsapp || direction != Direction::Outbound {
        return;
    }
    out.push(Fact::WhatsappMessage {
        account_id,
        bucket,
        status: s.best,
        failed: s.failed,
        error_code: s.error.0,
        error_title: s.error.1.clone(),
    });
    if let Some(broadcast_id) = &s.broadcast_id {
        out.push(Fact::BroadcastMessage {
            account_id,
            broadcast_id: broadcast_id.clone(),
            status: s.best,
            failed: s.failed,
        });
    }
    if s.best.is_some() || s.failed {
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
    use crate::records::StatusError;
    use schemas::event::Sender;

    fn status(at: i64, status: DeliveryStatus) -> MsgEvent {
        MsgEvent {
            at,
            kind: MsgKind::Status {
                status,
                error: None,
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
                broadcast_id: None,
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
            out[2],
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
            2,
            "a message without status is not in the delivery rate"
        );
        assert!(matches!(
            out[1],
            Fact::WhatsappMessage {
                status: None,
                failed: false,
                ..
            }
        ));
    }

    #[test]
    fn the_earliest_failure_names_the_error_and_broadcast_messages_are_counted() {
        let mut c = created();
        if let MsgKind::Created { broadcast_id, .. } = &mut c.kind {
            *broadcast_id = Some(Box::new("b1".into()));
        }
        let failed = |at, code: i64, title: &str| MsgEvent {
            at,
            kind: MsgKind::Status {
                status: DeliveryStatus::Failed,
                error: Some(Box::new(StatusError {
                    code: Some(code),
                    title: Some(title.into()),
                })),
            },
        };
        let mut events = vec![
            failed(9, 131_026, "Message undeliverable"),
            c,
            failed(4, 131_047, "Re-engagement message"),
        ];
        events.sort();
        let mut out = Vec::new();
        facts(1, &fold(&events), &mut out);
        assert!(out.contains(&Fact::WhatsappMessage {
            account_id: 1,
            bucket: 0,
            status: None,
            failed: true,
            error_code: Some(131_047),
            error_title: Some("Re-engagement message".into()),
        }));
        assert!(out.contains(&Fact::BroadcastMessage {
            account_id: 1,
            broadcast_id: "b1".into(),
            status: None,
            failed: true,
        }));
    }
}
