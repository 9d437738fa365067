//! The customer fold: every conversation a customer opened, and which was their first
//! ever. New vs returning and repeat-customer metrics are exact distinct counts over
//! these facts.
//!
//! A conversation counts once, at its earliest `conversation_opened`; the customer's
//! first conversation is the earliest of those in event time (ties broken by
//! conversation id), so a late-arriving older conversation takes over "first".
//!
//! [`fold`] is the definition over a customer's whole history (the batch recomputation
//! uses it). The dataflow keeps each conversation's earliest open apart, and finds the
//! customer's first in levels of days, so a loyal customer's next conversation does not
//! re-walk the hundreds before it (see `crate::dataflow`).

use std::collections::BTreeMap;

use schemas::event::Channel;
use schemas::metrics::Fact;
use schemas::time::bucket_of;

use crate::records::CustomerEvent;

/// One conversation of the customer: `(opened at, channel, inbox)` by conversation id.
pub type Conversations = BTreeMap<String, (i64, Channel, String)>;

/// Folds a customer's events (any order).
pub fn fold<'a>(events: impl IntoIterator<Item = &'a CustomerEvent>) -> Conversations {
    let mut convs: Conversations = BTreeMap::new();
    for ev in events {
        let entry = convs
            .entry(ev.conversation_id.as_str().to_owned())
            .or_insert((ev.at, ev.channel, ev.inbox_id.as_str().to_owned()));
        if ev.at < entry.0 {
            *entry = (ev.at, ev.channel, ev.inbox_id.as_str().to_owned());
        }
    }
    convs
}

/// The facts a customer contributes.
pub fn facts(account_id: u64, customer_id: &str, convs: &Conversations, out: &mut Vec<Fact>) {
    let first = convs
        .iter()
        .min_by_key(|(id, (at, _, _))| (*at, id.as_str()))
        .map(|(id, _)| id.clone());
    for (id, &(at, channel, ref inbox_id)) in convs {
        out.push(conversation_fact(
            account_id,
            customer_id,
            (at, channel, inbox_id),
            first.as_deref() == Some(id.as_str()),
        ));
    }
}

/// One conversation of the customer, opened at `at` in `channel` and `inbox_id`;
/// `first` when it is the customer's first.
pub fn conversation_fact(
    account_id: u64,
    customer_id: &str,
    (at, channel, inbox_id): (i64, Channel, &str),
    first: bool,
) -> Fact {
    Fact::CustomerConversation {
        account_id,
        bucket: bucket_of(at),
        customer_id: customer_id.to_owned(),
        first,
        channel,
        inbox_id: inbox_id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(at: i64, c: &str) -> CustomerEvent {
        CustomerEvent {
            at,
            conversation_id: c.into(),
            channel: Channel::Sms,
            inbox_id: "i".into(),
        }
    }

    #[test]
    fn the_earliest_conversation_is_first_even_when_it_arrives_late() {
        let mut out = Vec::new();
        facts(
            1,
            "u",
            &fold(&[ev(5_000_000, "b"), ev(1_000, "a"), ev(9_000_000, "b")]),
            &mut out,
        );
        let firsts: Vec<_> = out
            .iter()
            .map(|f| match f {
                Fact::CustomerConversation { first, bucket, .. } => (*bucket, *first),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(firsts, vec![(0, true), (bucket_of(5_000_000), false)]);
    }
}
