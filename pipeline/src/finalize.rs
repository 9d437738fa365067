//! The finalizer: which entities are final, and the events refused because they
//! arrive for one.
//!
//! Conversations, messages, tickets and broadcasts are folded per entity
//! ([`crate::entities`]). Each account has a *watermark*: the latest event time
//! pushed, rising by at most [`MAX_STEP_MS`] per event, so that one event stamped far
//! in the future by a wrong clock cannot make the account's real entities final. An
//! entity is **final** once it is *closed* and its latest event is more than the
//! lateness horizon before its account's watermark:
//!
//! | entity | closed when |
//! |---|---|
//! | conversation | its latest open, resolution or reopen (in event-time order) is a resolution |
//! | message | always (a message has no open state) |
//! | ticket | a `ticket_resolved` is known |
//! | broadcast | always |
//!
//! Leads are never final (a deal can be won on a lead at any time), and neither are
//! customers, agents and channels (they fold in levels of days, see
//! [`crate::dataflow`]). A conversation still open at the horizon stays live.
//!
//! A final entity's state leaves the pipeline ([`crate::entities::Op::Finalize`]);
//! its facts stay in the view store as they are. What is left of it is a 64-bit hash
//! in a set, so that **an event for a final entity is refused** — with reason
//! `too_late`, counted, and handed back to the caller for the dead letters — instead
//! of starting a new entity with half its history.
//!
//! Every decision is a function of the sequence of events pushed (and of the
//! watermark cap below): the same events in the same order are refused whatever the
//! batch sizes, the timing or the number of workers. (An entity is refused by the
//! rule itself, not only once the sweep that frees its state has run.)
//!
//! **The watermark cap** ([`Finalizer::set_cap`]): a source that interleaves several
//! ordered streams (the partitions of a Kafka topic) may deliver one stream's events
//! far ahead of another's while it reads a backlog. The account's watermark would
//! then run ahead of the slow stream's events, which would be refused although they
//! are on time in their stream. The source caps the watermark, for each event, at the
//! least event time reached by the event's own stream and by the streams still
//! behind (as a Flink source combines partition watermarks by their minimum); the cut
//! is `min(watermark, cap) - horizon`.

use std::collections::BTreeMap;
use std::hash::BuildHasher as _;

use foldhash::HashMap;

mod tombstones;
use schemas::Event;
use schemas::event::Payload;
use schemas::sharded::ShardedMap;
use serde::{Deserialize, Serialize};
use tombstones::Tombstones;

use crate::records::{EntityKey, Id, Routed};

/// How far one event may move its account's watermark forward.
pub const MAX_STEP_MS: i64 = 3_600_000;

const HOUR_MS: i64 = 3_600_000;

/// The entity families that finalize.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    /// A conversation.
    Conversation,
    /// A message.
    Message,
    /// A ticket.
    Ticket,
    /// A broadcast.
    Broadcast,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Family::Conversation => "conversation",
            Family::Message => "message",
            Family::Ticket => "ticket",
            Family::Broadcast => "broadcast",
        }
    }
}

/// What the sweep frees: an entity's state, or a customer's record of a final
/// conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finalized {
    /// A conversation, message, ticket or broadcast.
    Entity(Family, EntityKey),
    /// `(customer, conversation)`: the customer fold forgets that conversation (its
    /// fact stands) and keeps the customer's first conversation.
    CustomerConversation(EntityKey, Id),
}

/// What an event does to an entity's open state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// Nothing (a message, an assignment, ...).
    Neutral,
    /// Opens it (an open or a reopen), at this rank among same-instant events.
    Opens(u8),
    /// Closes it, at this rank.
    Closes(u8),
}

/// The finalizable entities an event touches: at most two.
fn touched(e: &Event) -> [Option<(Family, &str, Lifecycle)>; 2] {
    use Family::*;
    use Lifecycle::*;
    // Ranks as in `ConvKind::rank`: opened 0, resolved 5, reopened 6.
    match &e.payload {
        Payload::ConversationOpened {
            conversation_id, ..
        } => [Some((Conversation, conversation_id, Opens(0))), None],
        Payload::ConversationResolved {
            conversation_id, ..
        } => [Some((Conversation, conversation_id, Closes(5))), None],
        Payload::ConversationReopened { conversation_id } => {
            [Some((Conversation, conversation_id, Opens(6))), None]
        }
        Payload::ConversationAssigned {
            conversation_id, ..
        }
        | Payload::ConversationEscalated {
            conversation_id, ..
        }
        | Payload::IntentDetected {
            conversation_id, ..
        }
        | Payload::CsatSubmitted {
            conversation_id, ..
        } => [Some((Conversation, conversation_id, Neutral)), None],
        Payload::MessageCreated {
            conversation_id,
            message_id,
            ..
        } => [
            Some((Conversation, conversation_id, Neutral)),
            Some((Message, message_id, Neutral)),
        ],
        Payload::MessageStatus { message_id, .. } => [Some((Message, message_id, Neutral)), None],
        Payload::TicketOpened { ticket_id, .. } => [Some((Ticket, ticket_id, Neutral)), None],
        Payload::TicketResolved { ticket_id } => [Some((Ticket, ticket_id, Closes(0))), None],
        Payload::BroadcastSent { broadcast_id, .. } => {
            [Some((Broadcast, broadcast_id, Neutral)), None]
        }
        Payload::AgentStatusChanged { .. }
        | Payload::LeadCreated { .. }
        | Payload::DealWon { .. }
        | Payload::ChannelHealth { .. } => [None, None],
    }
}

/// A live entity as the finalizer sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Live {
    /// Its latest event time.
    latest: i64,
    /// `(at, rank)` of its latest open or close, and whether that closed it.
    lifecycle: Option<(i64, u8, bool)>,
    /// The positions of its admitted events: what a restart replays to rebuild its
    /// state ([`Finalizer::warm_positions`]).
    positions: Vec<u64>,
}

impl Live {
    fn closed(&self, family: Family) -> bool {
        match family {
            Family::Message | Family::Broadcast => true,
            Family::Conversation => self.lifecycle.is_some_and(|(_, _, closed)| closed),
            // A resolution closes a ticket for good (the ticket fold counts its earliest).
            Family::Ticket => self.lifecycle.is_some(),
        }
    }
}

/// A checkpoint carries an account without its `queue`, which repeats a key of every
/// live entity (a third of the time of the pipeline's part of a capture under load):
/// loading rebuilds it from `live` ([`StoredAccount`]).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(from = "StoredAccount")]
struct Account {
    /// `None` before its first event.
    watermark: Option<i64>,
    /// Sharded, as the per-entity maps below: they hold millions, and one growth of
    /// a single table stopped the pipeline's driver for a third of a second.
    live: ShardedMap<(Family, Id), Live>,
    /// Live entities by the hour of their latest event (an entity may be listed under
    /// several hours). Only where the sweep looks: whether an entity is final is the
    /// rule on `live` ([`Finalizer::admit`]), so the queue decides when its state is
    /// freed, never a number.
    #[serde(skip)]
    queue: BTreeMap<i64, Vec<(Family, Id)>>,
    /// The customers of each live conversation, from its `conversation_opened`s.
    customers: ShardedMap<Id, Vec<Id>>,
    /// Each customer's first conversation: the earliest admitted `conversation_opened`,
    /// ties by conversation id, as the customer fold keeps it
    /// ([`crate::entities::fold_customers`]). A restart seeds the fold with it, since
    /// the events of a final first conversation are not replayed.
    firsts: ShardedMap<Id, (i64, Id)>,
}

/// [`Account`] as a checkpoint holds it: the same fields in the same order, but the
/// queue.
#[derive(Deserialize)]
struct StoredAccount {
    watermark: Option<i64>,
    live: ShardedMap<(Family, Id), Live>,
    customers: ShardedMap<Id, Vec<Id>>,
    firsts: ShardedMap<Id, (i64, Id)>,
}

impl From<StoredAccount> for Account {
    /// Lists every live entity under the hour of its latest event: where its last
    /// listing was, or later (an open entity the sweep passed is listed again, and
    /// the next sweep passes it again).
    fn from(stored: StoredAccount) -> Self {
        let mut queue: BTreeMap<i64, Vec<(Family, Id)>> = BTreeMap::new();
        for (key, live) in stored.live.iter() {
            queue
                .entry(live.latest.div_euclid(HOUR_MS))
                .or_default()
                .push(key.clone());
        }
        Self {
            watermark: stored.watermark,
            live: stored.live,
            queue,
            customers: stored.customers,
            firsts: stored.firsts,
        }
    }
}

/// An event refused because an entity it touches is final.
#[derive(Debug, Clone)]
pub struct Refused {
    /// Its position among every event pushed (refused ones included), from 0.
    pub position: u64,
    /// The event.
    pub event: Event,
    /// `too_late: ...`, naming the entity.
    pub reason: String,
}

/// See the module documentation.
///
/// It also knows what a restart must replay: the positions of every live entity's
/// admitted events and of the events of the folds that never finalize (agents, leads,
/// channels). It is serializable, so that a checkpoint can carry it
/// (docs/architecture.md, "Checkpoints").
#[derive(Debug, Serialize, Deserialize)]
pub struct Finalizer {
    horizon_ms: i64,
    accounts: HashMap<u64, Account>,
    /// Hashes of final entities ([`Finalizer::tombstone`]).
    tombstones: Tombstones,
    /// Positions of the admitted events that touch no finalizable entity (agent
    /// presence, leads, channel health): their folds keep them for good.
    permanent: Vec<u64>,
    /// The watermark cap ([`Finalizer::set_cap`]): set by the source before each
    /// batch, not part of a checkpoint.
    #[serde(skip)]
    cap: Option<i64>,
}

impl Finalizer {
    /// A finalizer with the given lateness horizon, ms.
    pub fn new(horizon_ms: i64) -> Self {
        Self {
            horizon_ms: horizon_ms.max(0),
            accounts: HashMap::default(),
            tombstones: Tombstones::default(),
            permanent: Vec::new(),
            cap: None,
        }
    }

    /// Caps every account's watermark at `cap` (ms) for the decisions from now on,
    /// `None` for no cap (see the module). A cap only delays finality: it never makes
    /// an entity final sooner.
    pub fn set_cap(&mut self, cap: Option<i64>) {
        self.cap = cap;
    }

    /// The cut of an account with watermark `watermark` under `cap` and `horizon_ms`:
    /// entities closed with their latest event before it are final.
    fn cut(watermark: i64, cap: Option<i64>, horizon_ms: i64) -> i64 {
        cap.map_or(watermark, |c| watermark.min(c))
            .saturating_sub(horizon_ms)
    }

    /// The lateness horizon, ms.
    pub fn horizon_ms(&self) -> i64 {
        self.horizon_ms
    }

    /// The positions a restart replays to rebuild the dataflow's state, ascending:
    /// those of every live entity's admitted events and of the events that touch no
    /// finalizable entity. Replayed through [`Finalizer::keep`], they give the folds
    /// exactly the state they hold now.
    pub fn warm_positions(&self) -> Vec<u64> {
        let mut out = self.permanent.clone();
        for account in self.accounts.values() {
            for live in account.live.values() {
                out.extend_from_slice(&live.positions);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Keeps the records of `routed` whose entity is live (the folds hold its state)
    /// and those of the folds that never finalize: a restart's replay
    /// ([`crate::runtime::Pipeline::warm`]). A customer's record is kept when its
    /// conversation is live.
    pub fn retain_live(&self, routed: &mut Routed) {
        let live = |family: Family, (account, id): &EntityKey| {
            self.accounts
                .get(account)
                .is_some_and(|a| a.live.contains_key(&(family, id.clone())))
        };
        routed
            .conversations
            .retain(|(k, _)| live(Family::Conversation, k));
        routed.messages.retain(|(k, _)| live(Family::Message, k));
        routed.tickets.retain(|(k, _)| live(Family::Ticket, k));
        routed
            .broadcasts
            .retain(|(k, _)| live(Family::Broadcast, k));
        routed.customers.retain(|((account, _), ev)| {
            live(
                Family::Conversation,
                &(*account, ev.conversation_id.clone()),
            )
        });
    }

    /// Each customer's first conversation, `((account, customer), (opened at,
    /// conversation))`: what a restart seeds the customer fold with.
    pub fn firsts(&self) -> impl Iterator<Item = (EntityKey, (i64, Id))> + '_ {
        self.accounts.iter().flat_map(|(account, a)| {
            a.firsts
                .iter()
                .map(move |(customer, first)| ((*account, customer.clone()), first.clone()))
        })
    }

    fn tombstone(family: Family, account: u64, id: &str) -> u64 {
        foldhash::quality::FixedState::with_seed(0xf1a1_12ed).hash_one((family, account, id))
    }

    /// Entities live now.
    pub fn live(&self) -> usize {
        self.accounts.values().map(|a| a.live.len()).sum()
    }

    /// Entities finalized so far.
    pub fn finalized(&self) -> usize {
        self.tombstones.len()
    }

    /// Admits `e` or says why it is refused (`too_late: ...`).
    ///
    /// # Errors
    /// The reason, when an entity `e` touches is final.
    /// `position` is the event's position among every event pushed, kept for the
    /// restart's replay ([`Finalizer::warm_positions`]).
    pub fn admit(&mut self, e: &Event, position: u64) -> Result<(), String> {
        let touched = touched(e);
        let account = self.accounts.entry(e.account_id).or_default();
        let cut = account
            .watermark
            .map_or(i64::MIN, |w| Self::cut(w, self.cap, self.horizon_ms));
        // An open that old could precede a customer's final first conversation.
        if let Payload::ConversationOpened {
            conversation_id, ..
        } = &e.payload
            && e.occurred_at_ms < cut
        {
            return Err(format!(
                "too_late: the conversation_opened of conversation {conversation_id} of \
                 account {} is more than the lateness horizon ({} h) before the account's \
                 latest events",
                e.account_id,
                self.horizon_ms / HOUR_MS,
            ));
        }
        for (family, id, _) in touched.iter().flatten() {
            // A live entity is final by the rule; an unknown one if it was swept.
            let is_final = match account.live.get(&(*family, Id::from(*id))) {
                Some(l) => l.closed(*family) && l.latest < cut,
                None => self
                    .tombstones
                    .contains(Self::tombstone(*family, e.account_id, id)),
            };
            if is_final {
                return Err(format!(
                    "too_late: {} {id} of account {} is final: its last event was more than \
                     the lateness horizon ({} h) before the account's latest events, and its \
                     numbers no longer change",
                    family.name(),
                    e.account_id,
                    self.horizon_ms / HOUR_MS,
                ));
            }
        }
        let at = e.occurred_at_ms;
        if touched.iter().all(Option::is_none) {
            self.permanent.push(position);
        }
        for (family, id, lifecycle) in touched.into_iter().flatten() {
            let key = (family, Id::from(id));
            let (live, new) = account.live.get_or_insert_with(key.clone(), || Live {
                latest: at,
                lifecycle: None,
                positions: Vec::new(),
            });
            let before = (live.latest.div_euclid(HOUR_MS), live.closed(family));
            live.positions.push(position);
            live.latest = live.latest.max(at);
            let step = match lifecycle {
                Lifecycle::Neutral => None,
                Lifecycle::Opens(rank) => Some((at, rank, false)),
                Lifecycle::Closes(rank) => Some((at, rank, true)),
            };
            if let Some(step) = step
                && live
                    .lifecycle
                    .is_none_or(|(t, r, _)| (step.0, step.1) >= (t, r))
            {
                live.lifecycle = Some(step);
            }
            let after = (live.latest.div_euclid(HOUR_MS), live.closed(family));
            if new || after != before {
                account.queue.entry(after.0).or_default().push(key);
            }
        }
        if let Payload::ConversationOpened {
            conversation_id,
            customer_id,
            ..
        } = &e.payload
        {
            let customers = account
                .customers
                .get_or_default(Id::from(conversation_id.as_str()));
            if !customers.iter().any(|c| c == customer_id.as_str()) {
                customers.push(Id::from(customer_id.as_str()));
            }
            let candidate = (at, Id::from(conversation_id.as_str()));
            let (first, new) = account
                .firsts
                .get_or_insert_with(Id::from(customer_id.as_str()), || candidate.clone());
            if !new && candidate < *first {
                *first = candidate;
            }
        }
        account.watermark = Some(match account.watermark {
            None => at,
            Some(w) => w.max(at.min(w.saturating_add(MAX_STEP_MS))),
        });
        Ok(())
    }

    /// Frees the entities the watermarks have made final since the last sweep, and
    /// returns them (the dataflow drops their state).
    pub fn sweep(&mut self) -> Vec<Finalized> {
        let mut out = Vec::new();
        let (horizon_ms, cap) = (self.horizon_ms, self.cap);
        for (account_id, account) in &mut self.accounts {
            let Some(w) = account.watermark else { continue };
            let cut = Self::cut(w, cap, horizon_ms);
            // Every time in hour `h` is before the cut once (h + 1) hours <= cut.
            while let Some(entry) = account.queue.first_entry() {
                if (entry.key() + 1).saturating_mul(HOUR_MS) > cut {
                    break;
                }
                for key in entry.remove() {
                    let Some(live) = account.live.get(&key) else {
                        continue;
                    };
                    if live.closed(key.0) && live.latest < cut {
                        account.live.remove(&key);
                        self.tombstones
                            .insert(Self::tombstone(key.0, *account_id, &key.1));
                        if key.0 == Family::Conversation
                            && let Some(customers) = account.customers.remove(&key.1)
                        {
                            for customer in customers {
                                out.push(Finalized::CustomerConversation(
                                    (*account_id, customer),
                                    key.1.clone(),
                                ));
                            }
                        }
                        out.push(Finalized::Entity(key.0, (*account_id, key.1)));
                    }
                    // Not closed: it stays live and is listed again by its next event.
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use schemas::event::{Channel, Direction, ResolvedBy, Sender};

    const H: i64 = HOUR_MS;

    fn admit(f: &mut Finalizer, e: &Event) -> Result<(), String> {
        f.admit(e, 0)
    }

    fn ev(at: i64, payload: Payload) -> Event {
        Event {
            event_id: format!("e{at}"),
            account_id: 1,
            occurred_at_ms: at,
            payload,
        }
    }
    fn msg(at: i64, conv: &str, id: &str) -> Event {
        ev(
            at,
            Payload::MessageCreated {
                message_id: id.into(),
                conversation_id: conv.into(),
                direction: Direction::Inbound,
                sender: Sender::Customer,
                agent_id: None,
                channel: Channel::Whatsapp,
                auto_reply: false,
                broadcast_id: None,
            },
        )
    }
    fn resolved(at: i64, conv: &str) -> Event {
        ev(
            at,
            Payload::ConversationResolved {
                conversation_id: conv.into(),
                resolved_by: ResolvedBy::Agent,
                agent_id: None,
            },
        )
    }

    /// A checkpoint leaves the queue out; the loaded finalizer frees the same entities
    /// (here: at the same sweeps) and refuses the same events as the one it was taken of.
    #[test]
    fn a_finalizer_loaded_from_its_checkpoint_sweeps_and_refuses_as_the_original() {
        let mut original = Finalizer::new(10 * H);
        let at = |h: i64| h * H + 17;
        for (i, h) in [0, 1, 1, 3, 5].into_iter().enumerate() {
            admit(
                &mut original,
                &msg(at(h), &format!("c{i}"), &format!("m{i}")),
            )
            .unwrap();
        }
        admit(&mut original, &resolved(at(2), "c0")).unwrap();
        admit(&mut original, &resolved(at(4), "c2")).unwrap();
        // c1 and c4 stay open; the messages are closed as they come.
        let bytes = postcard::to_allocvec(&original).unwrap();
        let mut loaded: Finalizer = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(loaded.live(), original.live());
        let copy = |f: &Finalizer| -> Finalizer {
            postcard::from_bytes(&postcard::to_allocvec(f).unwrap()).unwrap()
        };
        let names = |finals: Vec<Finalized>| {
            let mut out: Vec<String> = finals.into_iter().map(|f| format!("{f:?}")).collect();
            out.sort();
            out
        };
        for h in [11, 12, 13, 14, 15, 16, 40] {
            let tick = msg(at(h), &format!("tick{h}"), &format!("t{h}"));
            admit(&mut original, &tick).unwrap();
            admit(&mut loaded, &tick).unwrap();
            assert_eq!(
                names(original.sweep()),
                names(loaded.sweep()),
                "sweep at {h} h"
            );
            assert_eq!(loaded.live(), original.live(), "live at {h} h");
            // Whether a late event is refused, on copies (admitting it changes them).
            for late in [msg(at(2), "c0", "late0"), msg(at(4), "c1", "late1")] {
                assert_eq!(
                    admit(&mut copy(&original), &late).is_ok(),
                    admit(&mut copy(&loaded), &late).is_ok(),
                    "{late:?} at {h} h"
                );
            }
        }
        assert!(original.finalized() > 0);
    }

    #[test]
    fn a_resolved_conversation_is_final_past_the_horizon_and_refuses_later_events() {
        let mut f = Finalizer::new(10 * H);
        admit(&mut f, &msg(0, "c1", "m1")).unwrap();
        admit(&mut f, &resolved(H, "c1")).unwrap();
        // An open conversation stays live however old.
        admit(&mut f, &msg(0, "c2", "m2")).unwrap();
        // The watermark climbs one hour per event at most.
        for k in 1..=12 {
            admit(&mut f, &msg(k * H, "other", &format!("x{k}"))).unwrap();
        }
        let swept = f.sweep();
        let convs: Vec<_> = swept
            .iter()
            .filter_map(|f| match f {
                Finalized::Entity(Family::Conversation, k) => Some(k.1.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(convs, vec!["c1"]);
        assert!(swept.contains(&Finalized::Entity(Family::Message, (1, "m2".into()))));
        let err = admit(&mut f, &msg(12 * H, "c1", "m9")).unwrap_err();
        assert!(
            err.starts_with("too_late: conversation c1 of account 1 is final"),
            "{err}"
        );
        admit(&mut f, &msg(12 * H, "c2", "m10")).unwrap();
    }

    #[test]
    fn a_final_conversation_is_forgotten_by_its_customer_and_an_open_past_the_horizon_is_refused() {
        let mut f = Finalizer::new(2 * H);
        let open = |at, conv: &str| {
            ev(
                at,
                Payload::ConversationOpened {
                    conversation_id: conv.into(),
                    customer_id: "u1".into(),
                    channel: Channel::Whatsapp,
                    inbox_id: "i1".into(),
                    origin: schemas::event::Origin::Inbound,
                    campaign_id: None,
                },
            )
        };
        admit(&mut f, &open(0, "c1")).unwrap();
        admit(&mut f, &resolved(H, "c1")).unwrap();
        for k in 2..=5 {
            admit(&mut f, &msg(k * H, "other", &format!("x{k}"))).unwrap();
        }
        let swept = f.sweep();
        assert!(swept.contains(&Finalized::CustomerConversation(
            (1, "u1".into()),
            "c1".into()
        )));
        let err = admit(&mut f, &open(2 * H, "c2")).unwrap_err();
        assert!(
            err.starts_with("too_late: the conversation_opened of conversation c2"),
            "{err}"
        );
        admit(&mut f, &open(3 * H, "c3")).unwrap();
    }

    #[test]
    fn refusal_does_not_wait_for_the_sweep() {
        let mut f = Finalizer::new(2 * H);
        admit(&mut f, &resolved(0, "c1")).unwrap();
        for k in 1..=4 {
            admit(&mut f, &msg(k * H, "other", &format!("x{k}"))).unwrap();
        }
        assert!(admit(&mut f, &resolved(4 * H, "c1")).is_err());
        let c1 = Finalized::Entity(Family::Conversation, (1, "c1".into()));
        assert_eq!(f.sweep().iter().filter(|f| **f == c1).count(), 1);
        assert!(admit(&mut f, &resolved(4 * H, "c1")).is_err());
    }

    #[test]
    fn one_event_from_the_future_moves_the_watermark_one_hour() {
        let mut f = Finalizer::new(2 * H);
        admit(&mut f, &resolved(0, "c1")).unwrap();
        admit(&mut f, &msg(1_000 * H, "far", "x")).unwrap();
        admit(&mut f, &resolved(H, "c1")).unwrap();
        let c1 = Finalized::Entity(Family::Conversation, (1, "c1".into()));
        assert!(!f.sweep().contains(&c1));
    }

    #[test]
    fn a_capped_watermark_keeps_an_entity_live_until_the_cap_passes_it() {
        // A stream still behind is at 1 h: c1 (resolved at 0) is not final although
        // another stream's events moved the account to 10 h, and a message for it is
        // admitted. Once the cap is lifted, c1 is final and refused.
        let mut f = Finalizer::new(2 * H);
        f.set_cap(Some(H));
        admit(&mut f, &resolved(0, "c1")).unwrap();
        for h in 1..=10 {
            admit(&mut f, &msg(h * H, "c2", &format!("m{h}"))).unwrap();
        }
        let c1 = Finalized::Entity(Family::Conversation, (1, "c1".into()));
        assert!(!f.sweep().contains(&c1));
        admit(&mut f, &msg(H / 2, "c1", "late-but-on-time")).unwrap();
        f.set_cap(Some(3 * H));
        assert!(
            f.sweep().contains(&c1),
            "the cap passed c1's latest event + horizon"
        );
        let refused = admit(&mut f, &msg(H / 2, "c1", "after")).unwrap_err();
        assert!(
            refused.starts_with("too_late: conversation c1"),
            "{refused}"
        );
        // Without a cap the account's own watermark (10 h) decides: c2's message at
        // 1 h is final (8 h before), while the cap at 3 h still kept it live.
        let m1 = Finalized::Entity(Family::Message, (1, "m1".into()));
        assert!(!f.sweep().contains(&m1));
        f.set_cap(None);
        assert!(f.sweep().contains(&m1));
    }
}
