//! The ticket fold: open tickets now by priority, and ticket resolutions over time.
//!
//! A ticket is open when a `ticket_opened` is known and no `ticket_resolved` is; its
//! priority is that of the latest `ticket_opened` in event time. It counts as resolved
//! once, at its earliest `ticket_resolved`.

use schemas::event::Priority;
use schemas::metrics::Fact;
use schemas::time::bucket_of;

use crate::records::{TicketEvent, TicketKind};

/// What a ticket's events add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TicketSummary {
    /// Priority of the latest `ticket_opened`, if any.
    pub priority: Option<Priority>,
    /// Earliest `ticket_resolved`, if any.
    pub resolved_at: Option<i64>,
}

impl TicketSummary {
    /// `Some(priority)` while the ticket is open.
    pub fn open(&self) -> Option<Priority> {
        self.priority.filter(|_| self.resolved_at.is_none())
    }
}

/// Folds a ticket's events (sorted by time).
pub fn fold<'a>(events: impl IntoIterator<Item = &'a TicketEvent>) -> TicketSummary {
    let mut s = TicketSummary::default();
    for ev in events {
        match ev.kind {
            TicketKind::Opened { priority } => s.priority = Some(priority),
            TicketKind::Resolved => {
                s.resolved_at.get_or_insert(ev.at);
            }
        }
    }
    s
}

/// The facts a ticket contributes.
pub fn facts(account_id: u64, s: &TicketSummary, out: &mut Vec<Fact>) {
    if let Some(priority) = s.open() {
        out.push(Fact::OpenTicket {
            account_id,
            priority,
        });
    }
    if let Some(at) = s.resolved_at {
        out.push(Fact::TicketResolved {
            account_id,
            bucket: bucket_of(at),
            priority: s.priority,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_in_any_order_closes_and_counts_once() {
        let o = TicketEvent {
            at: 5,
            kind: TicketKind::Opened {
                priority: Priority::High,
            },
        };
        let r = |at| TicketEvent {
            at,
            kind: TicketKind::Resolved,
        };
        assert_eq!(fold(std::slice::from_ref(&o)).open(), Some(Priority::High));
        let s = fold(&[r(1), o, r(9)]);
        assert_eq!((s.open(), s.resolved_at), (None, Some(1)));
    }
}
