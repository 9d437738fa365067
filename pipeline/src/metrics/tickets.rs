//! The ticket fold: open tickets now, by priority.
//!
//! A ticket is open when a `ticket_opened` is known and no `ticket_resolved` is; its
//! priority is that of the latest `ticket_opened` in event time.

use schemas::event::Priority;
use schemas::metrics::Fact;

use crate::records::{TicketEvent, TicketKind};

/// Folds a ticket's events (sorted by time): `Some(priority)` while it is open.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a TicketEvent>) -> Option<Priority> {
    let mut priority = None;
    let mut resolved = false;
    for ev in events {
        match ev.kind {
            TicketKind::Opened { priority: p } => priority = Some(p),
            TicketKind::Resolved => resolved = true,
        }
    }
    priority.filter(|_| !resolved)
}

/// The facts a ticket contributes.
pub fn facts(account_id: u64, open: Option<Priority>, out: &mut Vec<Fact>) {
    if let Some(priority) = open {
        out.push(Fact::OpenTicket {
            account_id,
            priority,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolved_in_any_order_closes() {
        let o = TicketEvent {
            at: 5,
            kind: TicketKind::Opened {
                priority: Priority::High,
            },
        };
        let r = TicketEvent {
            at: 1,
            kind: TicketKind::Resolved,
        };
        assert_eq!(fold(std::slice::from_ref(&o)), Some(Priority::High));
        assert_eq!(fold(&[r, o]), None);
    }
}
