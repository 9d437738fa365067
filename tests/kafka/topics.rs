//! The data path against tansu: gateway and producer → `crm.events.v1` → `run` →
//! `crm.metrics.v1` → `serve` replicas; dead letters; `kill -9` at random points.
//! Without `CRMPULSE_KAFKA_BROKERS` they run against a MockCluster instead.

use std::collections::HashMap;
use std::time::Duration;

use prost::Message as _;
use rand::{Rng as _, SeedableRng as _};
use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::Headers as _;

use super::*;

/// Every dead letter: payload and headers.
fn dead_letters(s: &Setup, expected: usize) -> Vec<(Vec<u8>, HashMap<String, String>)> {
    dead_letters_within(s, expected, Duration::from_secs(60))
}

/// Every dead letter read until `expected` are read or `within` has passed.
pub(crate) fn dead_letters_within(
    s: &Setup,
    expected: usize,
    within: Duration,
) -> Vec<(Vec<u8>, HashMap<String, String>)> {
    let consumer: BaseConsumer = s.kafka.reader_config("test-dlq").create().unwrap();
    consumer.subscribe(&[&s.kafka.topics.dead_letters]).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + within;
    while out.len() < expected && Instant::now() < deadline {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        (
                            h.key.to_owned(),
                            String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push((m.payload().unwrap_or_default().to_vec(), headers));
    }
    out
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn events_reach_the_metrics_topic_exactly_and_serve_replicas_agree() {
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 3);
    s.create_topics(&broker);
    let events = simulated_daytime(6, 7);
    assert!(events.len() > 500, "{} events", events.len());
    let (via_http, direct) = events.split_at(events.len() / 2);

    // Half through the gateway, with one invalid item that must not cost the others.
    let port = free_port();
    let _gateway = Guard(s.spawn(
        "ingest",
        &["ingest", "--listen", &format!("127.0.0.1:{port}")],
    ));
    let bad_json = r#"{"event_id":"bad1","account_id":1,"occurred_at":"2026-11-24T10:00:00Z","type":"ticket_opened","ticket_id":"t9","priority":"meh"}"#;
    let mut body: String = via_http.iter().map(|e| e.to_json() + "\n").collect();
    body.push_str(bad_json);
    let (status, res) = post_ndjson(
        &format!("http://127.0.0.1:{port}/api/v1/events"),
        &body,
        Duration::from_secs(60),
    );
    assert_eq!(status, 422, "{res}");
    assert_eq!(res["accepted"], via_http.len() as u64);
    assert_eq!(res["rejected"][0]["event_id"], "bad1");

    // The other half straight to the topic, with two malformed messages among them.
    let garbage = b"\xff\xff not protobuf".to_vec();
    let no_payload = schemas::proto::Event {
        event_id: "nopayload".into(),
        account_id: 1,
        occurred_at_ms: 1,
        payload: None,
    }
    .encode_to_vec();
    let k = direct.len() / 2;
    s.produce(&direct[..k]);
    s.produce_raw(&[
        (b"1:x".to_vec(), garbage.clone()),
        (b"1:y".to_vec(), no_payload.clone()),
    ]);
    s.produce(&direct[k..]);

    let run_port = free_port();
    let run = Guard(s.spawn(
        "run",
        &["run", "--listen", &format!("127.0.0.1:{run_port}")],
    ));
    let view = s.wait_for_events(events.len() as u64, Duration::from_secs(180));
    let expected = reference(&events);
    assert!(expected.len() > 100);
    assert_eq!(differences(&view.sum, &expected), vec![]);
    assert_eq!(
        view.applied(),
        expected,
        "complete batches add up to the state"
    );

    // Dead letters: the original bytes, the reason and where they came from.
    let letters = dead_letters(&s, 3);
    assert_eq!(letters.len(), 3, "{letters:?}");
    let http = letters
        .iter()
        .find(|(_, h)| h["source"] == "http")
        .expect("the gateway's dead letter");
    assert_eq!(http.0, bad_json.as_bytes());
    assert!(http.1["reason"].starts_with("priority"), "{:?}", http.1);
    let mut from_topic: Vec<_> = letters
        .iter()
        .filter(|(_, h)| h["source"] == "kafka")
        .collect();
    from_topic.sort_by(|a, b| a.0.cmp(&b.0));
    let mut originals = [garbage.clone(), no_payload.clone()];
    originals.sort();
    assert_eq!(from_topic.len(), 2);
    assert_eq!(from_topic[0].0, originals[0]);
    assert_eq!(from_topic[1].0, originals[1]);
    for (_, h) in &from_topic {
        assert_eq!(h["source.topic"], s.kafka.topics.events);
        assert!(h["source.partition"].parse::<i32>().unwrap() < 3);
        assert!(h["source.offset"].parse::<i64>().unwrap() >= 0);
        assert!(!h["reason"].is_empty());
    }
    let metrics = block_on(common::metrics_text(
        &common::client_with(&admin_token()),
        &format!("http://127.0.0.1:{run_port}"),
    ));
    let counted = common::metric(&metrics, "crmpulse_kafka_dead_letters_total");
    assert_eq!(counted, 2.0, "{metrics}");
    drop(run);

    // Two serve replicas, fed only from the metrics topic, answer identically.
    let ports = [free_port(), free_port()];
    let _serves: Vec<Guard> = ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            Guard(s.spawn(
                &format!("serve{i}"),
                &["serve", "--listen", &format!("127.0.0.1:{p}")],
            ))
        })
        .collect();
    let health: Vec<serde_json::Value> = ports
        .iter()
        .map(|p| {
            get_json(
                &format!("http://127.0.0.1:{p}/healthz"),
                Duration::from_secs(60),
            )
        })
        .collect();
    assert_eq!(health[0]["progress"], health[1]["progress"]);
    assert_eq!(health[0]["events_consumed"], events.len() as u64);
    let day = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .format("%Y-%m-%d")
            .to_string()
    };
    let now = now_ms();
    let range = format!(
        "from={}&to={}",
        day(now - 86_400_000),
        day(now + 86_400_000)
    );
    for section in query_api::sections::SECTIONS {
        let answers: Vec<serde_json::Value> = ports
            .iter()
            .map(|p| {
                get_json(
                    &format!("http://127.0.0.1:{p}/api/dashboard/{section}?{range}"),
                    Duration::from_secs(10),
                )
            })
            .collect();
        assert_eq!(answers[0], answers[1], "{section}");
    }
    let kpi = get_json(
        &format!("http://127.0.0.1:{}/api/dashboard/kpi?{range}", ports[0]),
        Duration::from_secs(10),
    );
    assert!(kpi.to_string().len() > 100, "{kpi}");
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn kill_9_at_random_points_neither_loses_nor_doubles_a_metric() {
    kill_9_at_random_points("", 300..5_000);
}

/// Six starts of `run` on a growing topic (3 partitions), each but the last killed
/// with `kill -9` after a random time in `kill_after_ms`; `pipeline` adds lines to the
/// `[pipeline]` section. The metrics topic must then hold exactly the batch
/// recomputation, never a negative count on the way, with progress moving forward.
/// Returns the set-up (the runs' logs are `run-0.log` …).
pub fn kill_9_at_random_points(pipeline: &str, kill_after_ms: std::ops::Range<u64>) -> Setup {
    let broker = Broker::from_env();
    let s = setup_with(&broker.bootstrap(), 3, pipeline);
    s.create_topics(&broker);
    let events = simulated_daytime(8, 11);
    let seed: u64 = rand::random();
    eprintln!("kill schedule seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let chunks: Vec<&[Event]> = events.chunks(events.len() / 6 + 1).collect();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    for (i, chunk) in chunks[..chunks.len() - 1].iter().enumerate() {
        s.produce(chunk);
        let mut run = s.spawn(&format!("run-{i}"), &["run", "--listen", &listen]);
        std::thread::sleep(Duration::from_millis(
            rng.random_range(kill_after_ms.clone()),
        ));
        kill_9(&mut run);
    }
    s.produce(chunks[chunks.len() - 1]);
    let last = format!("run-{}", chunks.len() - 1);
    let _run = Guard(s.spawn(&last, &["run", "--listen", &listen]));
    let view = s.wait_for_events_logged(events.len() as u64, Duration::from_secs(240), &last);
    let expected = reference(&events);
    assert!(expected.len() > 100, "{} facts", expected.len());
    assert_eq!(
        differences(&view.sum, &expected),
        vec![],
        "kill schedule seed {seed}"
    );
    // A consumer applying complete batches never holds a negative count, and ends
    // with exactly the batch recomputation: nothing was counted twice.
    let mut state: HashMap<Fact, i64> = HashMap::new();
    for batch in &view.batches {
        for (f, d) in &batch.updates {
            *state.entry(f.clone()).or_default() += d;
        }
        assert!(
            state.values().all(|d| *d >= 0),
            "negative multiplicity at progress {}; kill schedule seed {seed}",
            batch.progress
        );
    }
    state.retain(|_, d| *d != 0);
    assert_eq!(
        differences(&state, &expected),
        vec![],
        "(fact, applied, expected); kill schedule seed {seed}"
    );
    // Progress only moves forward across restarts.
    assert!(
        view.batches
            .windows(2)
            .all(|w| w[0].progress < w[1].progress)
    );
    s
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn the_metrics_reader_reads_a_whole_last_batch_past_a_lagging_high_watermark() {
    // tansu 0.6 reports a partition's latest offset as the base offset of its last
    // record batch plus one. A reader that stopped at that mark would miss the rest of
    // the batch, and the sink's read-back would then publish those deltas twice.
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 1);
    s.create_topics(&broker);
    let producer: BaseProducer = s
        .kafka
        .producer_config(60_000)
        .set("linger.ms", "200")
        .create()
        .unwrap();
    let records = 500u64;
    for i in 1..=records {
        let payload = MetricRecord::Progress {
            progress: i,
            events_consumed: i,
        }
        .encode();
        producer
            .send(
                BaseRecord::<(), [u8]>::to(&s.kafka.topics.metrics)
                    .partition(0)
                    .payload(&payload),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let view = s.read_metrics();
    assert_eq!(
        view.batches.len() as u64,
        records,
        "one batch per progress record"
    );
    assert_eq!(view.events_consumed, records);
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn the_event_source_reads_a_whole_last_batch_past_a_lagging_high_watermark() {
    // tansu 0.6 reports a partition's latest offset as the base offset of its last
    // record batch plus one. A source that called itself caught up at that mark would
    // tell the metric sink and the ClickHouse sink so before the rest of the batch is in
    // the pipeline.
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 1);
    s.create_topics(&broker);
    let events: Vec<_> = simulated_daytime(2, 13).into_iter().take(300).collect();
    assert_eq!(events.len(), 300);
    let producer: BaseProducer = s
        .kafka
        .producer_config(60_000)
        .set("linger.ms", "200")
        .create()
        .unwrap();
    for e in &events {
        let (key, value) = (e.partition_key(), e.to_proto_bytes());
        producer
            .send(
                BaseRecord::to(&s.kafka.topics.events)
                    .partition(0)
                    .key(key.as_bytes())
                    .payload(&value),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let mut source = ingest::kafka::EventSource::open(&s.kafka).unwrap();
    let mut read = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !source.caught_up() {
        read += source
            .poll_batch(1, Duration::from_millis(200))
            .unwrap()
            .len();
        assert!(std::time::Instant::now() < deadline, "{read} events read");
    }
    assert_eq!(read, events.len(), "caught up after {read} events");
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn an_event_later_than_the_horizon_is_dead_lettered_once_and_every_replay_refuses_the_same() {
    // One partition, records stamped with their events' own times: an event 9 days
    // before the account's watermark is refused with a 7-day horizon, the others
    // reach the pipeline, on the first read and on a replay from the start.
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 1);
    s.create_topics(&broker);
    const DAY: i64 = 86_400_000;
    let t0 = now_ms() - 20 * DAY;
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let event = |id: &str, ms: i64| {
        schemas::Event::from_json(&format!(
            r#"{{"event_id":"{id}","account_id":1,"occurred_at":"{}","type":"conversation_opened","conversation_id":"{id}","customer_id":"u1","channel":"whatsapp","inbox_id":"i1","origin":"inbound"}}"#,
            at(ms)
        ))
        .unwrap()
    };
    let sent = [
        event("early", t0),
        event("later", t0 + 10 * DAY),
        event("too-late", t0 + DAY),
        event("in-time", t0 + 4 * DAY),
    ];
    let producer: BaseProducer = s.kafka.producer_config(60_000).create().unwrap();
    for e in &sent {
        producer
            .send(
                BaseRecord::to(&s.kafka.topics.events)
                    .partition(0)
                    .key(e.partition_key().as_bytes())
                    .payload(&e.to_proto_bytes())
                    .timestamp(e.occurred_at_ms),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let read_all = || {
        let mut source = ingest::kafka::EventSource::open(&s.kafka)
            .unwrap()
            .with_lateness_horizon(Some(7 * DAY));
        let mut ids = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !source.caught_up() {
            ids.extend(
                source
                    .poll_batch(10, Duration::from_millis(200))
                    .unwrap()
                    .into_iter()
                    .map(|e| e.event_id),
            );
            assert!(Instant::now() < deadline, "{ids:?}");
        }
        ids
    };
    assert_eq!(read_all(), ["early", "later", "in-time"]);
    assert_eq!(read_all(), ["early", "later", "in-time"], "a replay");
    // Waiting for a second letter, which must not come.
    let letters = dead_letters_within(&s, 2, Duration::from_secs(10));
    assert_eq!(letters.len(), 1, "dead-lettered once, not on the replay");
    let (payload, headers) = &letters[0];
    assert_eq!(headers["reason_kind"], "too_late");
    assert!(
        headers["reason"].starts_with("too_late: occurred_at"),
        "{headers:?}"
    );
    assert_eq!(headers["source.offset"], "2");
    assert_eq!(
        schemas::Event::from_proto_bytes(payload).unwrap().event_id,
        "too-late"
    );
}

#[test]
#[ignore = "needs a Kafka broker: scripts/test starts tansu and runs it"]
fn an_event_for_a_final_conversation_is_refused_by_the_pipeline_and_dead_lettered_once_across_replays()
 {
    // `run` with `[kafka]` and a one-hour horizon, in process: c1 is resolved, c2's
    // customer writes every hour, and c1's reopen four hours later names a final
    // conversation. The pipeline refuses it; the stack dead-letters it with its source
    // offset, once, though the second start replays the topic and refuses it again.
    let broker = Broker::from_env();
    let s = setup(&broker.bootstrap(), 1);
    s.create_topics(&broker);
    const H: i64 = 3_600_000;
    let t0 = now_ms() - 10 * H;
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let event = |id: &str, ms: i64, body: &str| {
        Event::from_json(&format!(
            r#"{{"event_id":"{id}","account_id":1,"occurred_at":"{}",{body}}}"#,
            at(ms)
        ))
        .unwrap()
    };
    let open = |c: &str| {
        format!(
            r#""type":"conversation_opened","conversation_id":"{c}","customer_id":"u1","channel":"whatsapp","inbox_id":"i1","origin":"inbound""#
        )
    };
    let message = |m: &str| {
        format!(
            r#""type":"message_created","message_id":"{m}","conversation_id":"c2","direction":"inbound","sender":"customer","channel":"whatsapp""#
        )
    };
    let sent = [
        event("o1", t0, &open("c1")),
        event(
            "r1",
            t0 + 300_000,
            r#""type":"conversation_resolved","conversation_id":"c1","resolved_by":"agent""#,
        ),
        event("o2", t0 + H, &open("c2")),
        event("m1", t0 + 2 * H, &message("m1")),
        event("m2", t0 + 3 * H, &message("m2")),
        event("m3", t0 + 4 * H, &message("m3")),
        event(
            "reopen",
            t0 + 4 * H,
            r#""type":"conversation_reopened","conversation_id":"c1""#,
        ),
    ];
    let producer: BaseProducer = s.kafka.producer_config(60_000).create().unwrap();
    for e in &sent {
        producer
            .send(
                BaseRecord::to(&s.kafka.topics.events)
                    .partition(0)
                    .key(e.partition_key().as_bytes())
                    .payload(&e.to_proto_bytes())
                    .timestamp(e.occurred_at_ms),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    let mut config = crmpulse::config::load(Some(&s.config_path)).unwrap();
    config.pipeline.lateness_horizon_hours = 1;
    let clock = schemas::Clock::starting_at_rfc3339(NOW).unwrap();
    for _ in 0..2 {
        let stack = crmpulse::stack::Stack::build(
            &config,
            crmpulse::stack::Source::EventsTopic { checkpoints: None },
            clock,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !stack.started() {
            assert!(Instant::now() < deadline, "the stack did not catch up");
            std::thread::sleep(Duration::from_millis(20));
        }
        let active = stack.store.read(|st| {
            st.accounts[&1]
                .now_of("active_conversation")
                .map(|(_, n)| n)
                .sum::<i64>()
        });
        assert_eq!(active, 1, "c2 only: the refused reopen does not count");
        stack.shutdown();
    }
    // Waiting for a second letter, which must not come.
    let letters = dead_letters_within(&s, 2, Duration::from_secs(10));
    assert_eq!(letters.len(), 1, "dead-lettered once, not on the replay");
    let (payload, headers) = &letters[0];
    assert_eq!(headers["reason_kind"], "too_late");
    assert!(
        headers["reason"].starts_with("too_late: conversation c1 of account 1 is final"),
        "{headers:?}"
    );
    assert_eq!(headers["source.offset"], "6");
    assert_eq!(Event::from_proto_bytes(payload).unwrap().event_id, "reopen");
}
