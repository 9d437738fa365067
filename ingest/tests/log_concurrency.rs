//! The event log under concurrent writers: every acknowledged event is stored exactly
//! once, sequence numbers stay dense, and a redelivery (of one's own batch or another
//! writer's) is a duplicate, whatever the interleaving of group commits.

use std::collections::HashMap;
use std::sync::{Arc, Barrier};

use crmpulse_ingest::{DeadLetter, EventLog};
use schemas::Event;
use schemas::event::Payload;

const WRITERS: usize = 12;
const BATCHES: usize = 40;
const BATCH: usize = 250;

fn event(id: String, at: i64) -> Event {
    Event {
        event_id: id,
        account_id: 1 + (at as u64 % 3),
        occurred_at_ms: at,
        payload: Payload::TicketResolved {
            ticket_id: "t".into(),
        },
    }
}

fn batch(writer: usize, n: usize) -> Vec<Event> {
    (0..BATCH)
        .map(|i| {
            event(
                format!("w{writer}-b{n}-{i}"),
                (writer * 1_000_000 + n * 1_000 + i) as i64,
            )
        })
        .collect()
}

#[test]
fn concurrent_writers_and_redeliveries_store_every_acknowledged_event_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(EventLog::open(dir.path()).unwrap());
    let start = Arc::new(Barrier::new(WRITERS));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = Arc::clone(&log);
            let start = Arc::clone(&start);
            std::thread::spawn(move || {
                start.wait();
                let (mut accepted, mut duplicates) = (0, 0);
                for n in 0..BATCHES {
                    let out = log.append(&batch(w, n)).unwrap();
                    accepted += out.accepted;
                    duplicates += out.duplicates;
                    // Redeliver one of this writer's batches and one of a neighbour's
                    // (which may or may not be stored yet).
                    if n % 4 == 3 {
                        let out = log.append(&batch(w, n - 2)).unwrap();
                        assert_eq!((out.accepted, out.duplicates), (0, BATCH as u64));
                        duplicates += out.duplicates;
                        let out = log.append(&batch((w + 1) % WRITERS, n)).unwrap();
                        accepted += out.accepted;
                        duplicates += out.duplicates;
                    }
                    // A dead letter beside a batch: stored with it.
                    if n % 10 == 0 {
                        let raw = format!("bad-{w}-{n}");
                        log.write(
                            "test",
                            &batch(w, n),
                            &[DeadLetter {
                                source: "test",
                                raw: raw.as_bytes(),
                                reason: "malformed",
                            }],
                        )
                        .unwrap();
                    }
                }
                (accepted, duplicates)
            })
        })
        .collect();
    let (accepted, _duplicates) = writers
        .into_iter()
        .map(|w| w.join().unwrap())
        .fold((0, 0), |(a, d), (wa, wd)| (a + wa, d + wd));

    let expected = (WRITERS * BATCHES * BATCH) as u64;
    assert_eq!(accepted, expected, "every distinct event accepted once");
    assert_eq!(log.len(), expected);
    let (events, next) = log.read(0, usize::MAX).unwrap();
    assert_eq!(next, expected, "sequence numbers are dense");
    let mut seen: HashMap<(u64, String), usize> = HashMap::new();
    for e in &events {
        *seen.entry((e.account_id, e.event_id.clone())).or_default() += 1;
    }
    assert_eq!(events.len() as u64, expected);
    assert_eq!(seen.len() as u64, expected, "no event stored twice");
    for w in 0..WRITERS {
        for n in 0..BATCHES {
            for e in batch(w, n) {
                assert_eq!(
                    seen.get(&(e.account_id, e.event_id.clone())),
                    Some(&1),
                    "{}",
                    e.event_id
                );
            }
        }
    }
    assert_eq!(
        log.dead_letters().unwrap().len(),
        WRITERS * BATCHES.div_ceil(10)
    );

    // Reopened, the log holds the same and keeps deduplicating.
    drop(log);
    let log = EventLog::open(dir.path()).unwrap();
    assert_eq!(log.len(), expected);
    let out = log.append(&batch(3, 7)).unwrap();
    assert_eq!((out.accepted, out.duplicates), (0, BATCH as u64));
    let out = log.append(&[event("fresh".into(), 1)]).unwrap();
    assert_eq!(out.accepted, 1);
    let (tail, next) = log.read(expected, 10).unwrap();
    assert_eq!(
        (tail.len(), tail[0].event_id.as_str(), next),
        (1, "fresh", expected + 1)
    );
}
