//! The pairs indexes ([`crate::store::DistinctPairs`]: conversations per agent,
//! customers) against a straightforward recomputation over the raw facts: every
//! fact's updates summed, the facts left with a positive multiplicity filtered by
//! bucket and counted with sets. Updates come in any order and batch cut, with
//! retractions (some ahead of their fact, so entries go negative and back), and
//! ranges are local days of a DST zone and of a +05:45 zone around the spring
//! change, and any quarter-hour range (starting and ending mid-day).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use proptest::prelude::*;
use schemas::event::Channel;
use schemas::metrics::{Fact, MetricBatch};

use super::Params;
use crate::range::{Range, local_midnight};
use crate::store::ViewStore;

const DAY_MS: i64 = 86_400_000;
const QUARTER: i64 = 15 * 60 * 1000;
/// Days of generated history.
const DAYS: i64 = 5;

/// 2026-03-27T00:00Z: Berlin's clocks go forward on 2026-03-29 at 01:00Z.
fn base() -> i64 {
    local_midnight(date(0), chrono_tz::UTC)
}

/// The `k`th date of the history.
fn date(k: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 27).expect("a date") + chrono::Days::new(k as u64)
}

/// A quarter-hour index of the history, often next to a UTC midnight.
fn quarter() -> impl Strategy<Value = i64> {
    prop_oneof![
        0..DAYS * 96,
        (0..DAYS, -1..=1i64).prop_map(|(d, o)| (d * 96 + o).clamp(0, DAYS * 96 - 1)),
    ]
}

/// A handled or a customer fact of account 1.
fn fact() -> impl Strategy<Value = Fact> {
    let channels = [Channel::Whatsapp, Channel::Email];
    let handled = (
        quarter(),
        0..3usize,
        0..3usize,
        0..8usize,
        0..2usize,
        0..2usize,
    )
        .prop_map(move |(q, a, t, c, ch, i)| Fact::AgentHandled {
            account_id: 1,
            bucket: base() + q * QUARTER,
            agent_id: format!("a{a}"),
            team_id: (t > 0).then(|| format!("t{t}")),
            conversation_id: format!("c{c}"),
            channel: channels[ch],
            inbox_id: format!("i{i}"),
        });
    let customer = (quarter(), 0..6usize, any::<bool>(), 0..2usize, 0..2usize).prop_map(
        move |(q, u, first, ch, i)| Fact::CustomerConversation {
            account_id: 1,
            bucket: base() + q * QUARTER,
            customer_id: format!("u{u}"),
            first,
            channel: channels[ch],
            inbox_id: format!("i{i}"),
        },
    );
    prop_oneof![handled, customer]
}

/// Facts each added 1 to 3 times and retracted up to as often, the updates in a
/// shuffled order: every multiplicity ends at zero or above.
fn updates() -> impl Strategy<Value = Vec<(Fact, i64)>> {
    proptest::collection::vec((fact(), 1..=3i64, 0..=3i64), 0..60).prop_flat_map(|facts| {
        let updates: Vec<(Fact, i64)> = facts
            .into_iter()
            .flat_map(|(f, adds, retractions)| {
                let retractions = retractions.min(adds);
                std::iter::repeat_n((f.clone(), 1), adds as usize)
                    .chain(std::iter::repeat_n((f, -1), retractions as usize))
            })
            .collect();
        Just(updates).prop_shuffle()
    })
}

/// Ranges to ask: local days (one or several) in Berlin and Kathmandu, and quarter
/// ranges in UTC.
fn ranges() -> impl Strategy<Value = Vec<Range>> {
    let local = (0..DAYS, 1..=3i64, any::<bool>()).prop_map(|(d, len, berlin)| {
        let tz = if berlin {
            chrono_tz::Europe::Berlin
        } else {
            chrono_tz::Asia::Kathmandu
        };
        Range {
            from: local_midnight(date(d), tz),
            to: local_midnight(date(d + len), tz),
        }
    });
    let quarters = (quarter(), quarter()).prop_map(|(a, b)| Range {
        from: base() + a.min(b) * QUARTER,
        to: base() + a.max(b) * QUARTER + QUARTER,
    });
    proptest::collection::vec(prop_oneof![local, quarters], 1..8)
}

/// The facts with a positive multiplicity once every update is summed.
fn present(updates: &[(Fact, i64)]) -> Vec<Fact> {
    let mut sums: BTreeMap<Fact, i64> = BTreeMap::new();
    for (f, d) in updates {
        *sums.entry(f.clone()).or_default() += d;
    }
    sums.into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(f, _)| f)
        .collect()
}

fn in_range(f: &Fact, r: Range) -> bool {
    f.bucket().is_some_and(|b| r.from <= b && b < r.to)
}

/// Distinct conversations per agent in `r`.
fn handled(facts: &[Fact], r: Range) -> BTreeMap<String, i64> {
    let mut seen: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for f in facts.iter().filter(|f| in_range(f, r)) {
        if let Fact::AgentHandled {
            agent_id,
            conversation_id,
            ..
        } = f
        {
            seen.entry(agent_id).or_default().insert(conversation_id);
        }
    }
    seen.into_iter()
        .map(|(a, c)| (a.to_owned(), c.len() as i64))
        .collect()
}

/// Distinct customers in `r`, and those of them with their first conversation in `r`.
fn customers(facts: &[Fact], r: Range) -> (i64, i64) {
    let (mut all, mut new) = (BTreeSet::new(), BTreeSet::new());
    for f in facts.iter().filter(|f| in_range(f, r)) {
        if let Fact::CustomerConversation {
            customer_id, first, ..
        } = f
        {
            all.insert(customer_id);
            if *first {
                new.insert(customer_id);
            }
        }
    }
    (all.len() as i64, new.len() as i64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// The pairs indexes, applied incrementally, answer every range as the
    /// recomputation over the raw facts, and the sections use them (no negative
    /// multiplicity is left, so the fast path is taken).
    #[test]
    fn distinct_pairs_equal_a_recomputation_over_the_raw_facts(
        updates in updates(),
        cuts in proptest::collection::vec(0..200usize, 0..6),
        ranges in ranges(),
    ) {
        let store = super::compact_tests::applied_in_batches(&updates, cuts);
        let facts = present(&updates);
        let all = Params { account_id: 1, ..Params::default() };
        store.read(|snap| {
            let account = snap.accounts.get(&1);
            for r in &ranges {
                let want = handled(&facts, *r);
                if let Some(a) = account {
                    prop_assert!(a.handled.all_positive() && a.customer_conversations.all_positive());
                    let fast = super::handled_per_agent_unfiltered(a, *r)
                        .map(|m| m.into_iter().collect::<BTreeMap<_, _>>());
                    prop_assert_eq!(fast.as_ref(), Some(&want), "{:?}", r);
                }
                let sorted = |m: foldhash::HashMap<String, i64>| m.into_iter().collect::<BTreeMap<_, _>>();
                prop_assert_eq!(&sorted(super::agent_productivity::handled(account, *r, &all)), &want);
                prop_assert_eq!(&sorted(super::conversation_effectiveness::handled(account, *r, &all)), &want);
                let c = super::customer_load::customers(account, *r, &all);
                prop_assert_eq!((c.total, c.new), customers(&facts, *r), "{:?}", r);
                prop_assert_eq!(c.returning, c.total - c.new);
            }
            Ok(())
        })?;
    }
}

/// A retraction ahead of its fact leaves a negative entry: the sections fall back to
/// the scan (the day rollups and the index would disagree), and take the index again
/// once the fact arrives.
#[test]
fn a_negative_entry_turns_the_index_off_until_it_is_gone() {
    let at = base() + 40 * QUARTER;
    let handled = |conversation: &str| Fact::AgentHandled {
        account_id: 1,
        bucket: at,
        agent_id: "a".into(),
        team_id: None,
        conversation_id: conversation.into(),
        channel: Channel::Sms,
        inbox_id: "i".into(),
    };
    let store = ViewStore::default();
    let apply = |updates: Vec<(Fact, i64)>| {
        store.apply(MetricBatch {
            progress: 1,
            updates,
            events_consumed: 0,
        })
    };
    let r = Range {
        from: base(),
        to: base() + DAY_MS,
    };
    apply(vec![(handled("c1"), 1), (handled("c2"), -1)]);
    store.read(|snap| {
        let a = &snap.accounts[&1];
        assert!(!a.handled.all_positive());
        assert!(super::handled_per_agent_unfiltered(a, r).is_none());
    });
    apply(vec![(handled("c2"), 1)]);
    store.read(|snap| {
        let a = &snap.accounts[&1];
        let counts = super::handled_per_agent_unfiltered(a, r).expect("no negative entry");
        assert_eq!(counts.get("a"), Some(&1));
    });
}
