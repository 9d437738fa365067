//! Checkpoints in Kafka mode: a restart goes on from the consumed offsets of each
//! partition with the live entities' events kept in the checkpoint, and its numbers,
//! dead letters and metrics topic are those of a start that read the whole topic.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crmpulse::stack::{Source, Stack};
use schemas::metrics::Fact;

use super::topics::kill_9_at_random_points;
use super::*;

/// Builds `run`'s stack in process over the events topic, checkpointing into
/// `checkpoints`, and waits until the view store holds every event it took and the
/// metrics topic reflects them (the sink publishes once it has caught up).
fn caught_up_stack(
    s: &Setup,
    config: &crmpulse::config::Config,
    checkpoints: Option<&Path>,
) -> Stack {
    // The stack's log lines in the test's output, shown when it fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("info,librdkafka=warn,rdkafka=warn")
        .with_test_writer()
        .try_init();
    let clock = schemas::Clock::starting_at_rfc3339(NOW).unwrap();
    let source = Source::EventsTopic {
        checkpoints: checkpoints.map(Path::to_owned),
    };
    let stack = Stack::build(config, source, clock).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stack.started() || stack.store.read(|s| s.events_consumed) < stack.source_len() {
        assert!(Instant::now() < deadline, "the stack did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    s.wait_for_events(stack.source_len(), Duration::from_secs(60));
    stack
}

fn facts_of(stack: &Stack) -> HashMap<Fact, i64> {
    let mut facts = HashMap::new();
    stack.store.for_each_fact(|f, n| {
        facts.insert(f, n);
    });
    facts
}

/// The dead letters' source offsets, once `expected` are there (or after 10 s).
fn letter_offsets(s: &Setup, expected: usize) -> Vec<String> {
    let mut offsets: Vec<String> =
        topics::dead_letters_within(s, expected, Duration::from_secs(10))
            .into_iter()
            .map(|(_, headers)| headers["source.offset"].clone())
            .collect();
    offsets.sort();
    offsets
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn a_restart_from_a_checkpoint_reads_on_from_its_offsets_and_equals_a_start_that_read_the_whole_topic()
 {
    // One partition, so that every start reads the events in one order, and a one-hour
    // horizon, so that most conversations are final by the checkpoint. The second half
    // of the events also holds a reopen of a conversation resolved in the first half:
    // only a finalizer resumed from the checkpoint knows that it is final.
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 1);
    s.create_topics(&broker);
    let mut events = simulated(14, 23);
    let (first, second) = events.split_at(events.len() / 2);
    let resolved = first
        .iter()
        .find_map(|e| match &e.payload {
            schemas::Payload::ConversationResolved {
                conversation_id, ..
            } => Some(conversation_id.clone()),
            _ => None,
        })
        .expect("a resolution in the first half");
    let late_reopen = Event::from_json(&format!(
        r#"{{"event_id":"late-reopen","account_id":1,"occurred_at":"{}","type":"conversation_reopened","conversation_id":"{resolved}"}}"#,
        chrono::DateTime::from_timestamp_millis(second.last().unwrap().occurred_at_ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    ))
    .unwrap();
    let (first, mut second) = (first.to_vec(), second.to_vec());
    second.push(late_reopen);
    events = [first.clone(), second.clone()].concat();
    let mut config = crmpulse::config::load(Some(&s.config_path)).unwrap();
    config.pipeline.lateness_horizon_hours = 1;
    let data = s.dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();

    // First start, on the first half; its shutdown writes the checkpoint.
    s.produce(&first);
    let a = caught_up_stack(&s, &config, Some(&data));
    assert_eq!(a.resumed_from, None);
    let covered = a.source_len();
    a.shutdown();
    assert!(data.join("checkpoint.bin").exists());

    // Second start, after the second half came in: from the checkpoint.
    s.produce(&second);
    let b = caught_up_stack(&s, &config, Some(&data));
    assert_eq!(
        b.resumed_from,
        Some(covered),
        "went on from the checkpoint's offsets"
    );
    let resumed = facts_of(&b);
    let resumed_total = b.source_len();
    b.shutdown();
    let letters = letter_offsets(&s, usize::MAX);
    assert!(
        !letters.is_empty(),
        "the late reopen (at least) is refused and dead-lettered"
    );
    let published = s.read_metrics();

    // A start that reads the whole topic, without checkpoints.
    let c = caught_up_stack(&s, &config, None);
    assert_eq!(c.resumed_from, None);
    let full = facts_of(&c);
    let full_total = c.source_len();
    c.shutdown();

    assert!(full.len() > 100, "{} facts", full.len());
    assert_eq!(resumed_total, full_total, "the same events taken");
    assert_eq!(
        differences(&resumed, &full),
        vec![],
        "(fact, resumed, whole topic)"
    );
    assert_eq!(
        differences(&published.applied(), &full),
        vec![],
        "the metrics topic after the resumed start: (fact, topic, whole topic)"
    );
    assert_eq!(
        letter_offsets(&s, letters.len() + 1),
        letters,
        "the start that read the whole topic refused the same events, dead-lettered once"
    );
    assert!(events.len() > 1000, "{} events", events.len());
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn kill_9_at_random_points_with_a_checkpoint_every_second_neither_loses_nor_doubles_a_metric() {
    let s = kill_9_at_random_points("checkpoint_interval_secs = 1\n", 1_500..6_000);
    let logs: Vec<String> = (0..6).map(|i| s.log(&format!("run-{i}"))).collect();
    let loaded = logs
        .iter()
        .filter(|l| l.contains("checkpoint loaded"))
        .count();
    assert!(
        loaded >= 1,
        "no start went on from a checkpoint; logs:\n{}",
        logs.join("\n---\n")
    );
    eprintln!("{loaded} of 6 starts went on from a checkpoint");
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn the_event_source_resumed_inside_a_record_batch_takes_every_later_message_once() {
    // 100 events produced at once (a few record batches), a source that takes 37 of
    // them, and one resumed at its position: it must take exactly the other 63. tansu
    // answers a fetch inside a batch with the batch after it, which would lose the
    // rest of the batch.
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 1);
    s.create_topics(&broker);
    let events: Vec<Event> = simulated(6, 5).into_iter().take(100).collect();
    assert_eq!(events.len(), 100);
    s.produce(&events);
    let mut source = ingest::kafka::EventSource::open(&s.kafka).unwrap();
    let mut taken: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while taken.len() < 37 {
        assert!(
            Instant::now() < deadline,
            "the source did not read 37 events"
        );
        let batch = source
            .poll_batch(37 - taken.len(), Duration::from_millis(200))
            .unwrap();
        taken.extend(batch.into_iter().map(|e| e.event_id));
    }
    let position = source.position();
    assert_eq!(position.partitions.len(), 1);
    assert_eq!(position.partitions[0].1, 37, "{position:?}");
    drop(source);
    let mut resumed = ingest::kafka::EventSource::resume(&s.kafka, &position).unwrap();
    while !resumed.caught_up() {
        assert!(
            Instant::now() < deadline,
            "the resumed source did not catch up"
        );
        let batch = resumed
            .poll_batch(1_000, Duration::from_millis(200))
            .unwrap();
        taken.extend(batch.into_iter().map(|e| e.event_id));
    }
    let sent: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    let first_difference = taken.iter().zip(&sent).position(|(a, b)| a != b);
    assert_eq!(
        taken,
        sent,
        "every event once, in order: {} taken, first difference at {first_difference:?}",
        taken.len()
    );
    assert_eq!(
        resumed.read(),
        63,
        "the messages before the position are not read again"
    );

    // A position that the topic does not hold is refused.
    let mut other = position.clone();
    other.partitions[0].2 ^= 1;
    let refused = ingest::kafka::EventSource::resume(&s.kafka, &other).unwrap_err();
    assert!(
        refused.to_string().contains("is not in"),
        "{refused}: {:?}",
        refused
    );
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn a_partition_read_ahead_of_another_does_not_make_the_other_ones_events_late() {
    // Partition 0 holds two days of traffic. Partition 1 holds a conversation of the
    // first minutes, resolved at 5 minutes, then 20,000 messages of another within
    // the first 10 minutes, then the first conversation's customer writing at 35
    // minutes: on time in its partition (one-hour horizon). The source reads both
    // backlogs at once, so partition 0's later hours come in before that last message;
    // the pipeline's watermark is capped by the partition still behind, so it is not
    // refused.
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 2);
    s.create_topics(&broker);
    let backlog = simulated(48, 3);
    let t0 = backlog.first().unwrap().occurred_at_ms;
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let slow = [
        (0, r#""type":"conversation_opened","conversation_id":"slow-c","customer_id":"slow-u","channel":"whatsapp","inbox_id":"i1","origin":"inbound""#),
        (5, r#""type":"conversation_resolved","conversation_id":"slow-c","resolved_by":"agent""#),
        (35, r#""type":"message_created","message_id":"slow-m","conversation_id":"slow-c","direction":"inbound","sender":"customer","channel":"whatsapp""#),
    ]
    .map(|(minute, body)| {
        Event::from_json(&format!(
            r#"{{"event_id":"slow-{minute}","account_id":1,"occurred_at":"{}",{body}}}"#,
            at(t0 + minute * 60_000)
        ))
        .unwrap()
    });
    let filler = (0..20_000).map(|i| {
        Event::from_json(&format!(
            r#"{{"event_id":"filler-{i}","account_id":1,"occurred_at":"{}","type":"message_created","message_id":"filler-{i}","conversation_id":"filler-c","direction":"inbound","sender":"customer","channel":"whatsapp"}}"#,
            at(t0 + i * 30)
        ))
        .unwrap()
    });
    let partition_1: Vec<Event> = slow[..2]
        .iter()
        .cloned()
        .chain(filler)
        .chain([slow[2].clone()])
        .collect();
    let producer: BaseProducer = s.kafka.producer_config(60_000).create().unwrap();
    for (partition, events) in [(0, &backlog[..]), (1, &partition_1[..])] {
        for e in events {
            let payload = e.to_proto_bytes();
            while producer
                .send(
                    BaseRecord::to(&s.kafka.topics.events)
                        .partition(partition)
                        .key(e.partition_key().as_bytes())
                        .payload(&payload),
                )
                .is_err()
            {
                producer.poll(Duration::from_millis(10));
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let mut config = crmpulse::config::load(Some(&s.config_path)).unwrap();
    config.pipeline.lateness_horizon_hours = 1;
    let stack = caught_up_stack(&s, &config, None);
    stack.shutdown();
    let letters = topics::dead_letters_within(&s, usize::MAX, Duration::from_secs(5));
    let slow_letters: Vec<_> = letters
        .iter()
        .filter(|(payload, _)| {
            Event::from_proto_bytes(payload).is_ok_and(|e| e.event_id.starts_with("slow-"))
        })
        .map(|(_, headers)| headers["reason"].clone())
        .collect();
    assert_eq!(
        slow_letters,
        Vec::<String>::new(),
        "{} letters in all",
        letters.len()
    );
    assert!(backlog.len() > 10_000, "{} events", backlog.len());
}
