//! The pipeline's event source: every partition of `crm.events.v1`, read from the
//! start, or from where a checkpoint says the last run had read
//! ([`EventSource::resume`]).
//!
//! Why the start is always possible: the pipeline's state is a pure function of the
//! events in their order (duplicates ignored), so rebuilding it from the topic needs
//! no checkpoint and can never disagree with the input; the metric sink then publishes only the difference
//! from what `crm.metrics.v1` already holds (see `pipeline::sink::kafka`). The source
//! records each partition's high watermark when it starts; [`EventSource::caught_up`]
//! says when everything that was in the topic then has been handed out.
//!
//! Malformed messages are dead-lettered (once: those already in the dead-letter topic
//! from an earlier run are recognised by their source offset) and never stop the
//! source; the valid messages around them are all delivered.
//!
//! **The lateness horizon** ([`EventSource::with_lateness_horizon`]): each partition
//! keeps a watermark per account, the latest event time read from it, but at most the
//! record's own timestamp (set by its producer) + 1 h, so one event stamped in the
//! future by a wrong clock does not make the real ones late. An event more than the
//! horizon before its account's watermark in its partition is dead-lettered with
//! reason `too_late` instead of reaching the pipeline. The watermark is a function of
//! the partition's records in their order, so every replay of the topic refuses the
//! same events (and dead-letters them once, as it does malformed ones).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use connectors::kafka::{ReadToEnd, assign_from};
use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::producer::FutureProducer;
use schemas::Event;
use serde::{Deserialize, Serialize};

use super::dead_letter::{DeadLetter, Origin, already_dead_lettered};
use super::{DeadLetters, KafkaConfig, KafkaError};

/// A message to dead-letter: one that did not decode or is too late, or one the
/// pipeline refused.
struct Malformed {
    payload: Vec<u8>,
    key: Option<Vec<u8>>,
    reason: String,
    reason_kind: &'static str,
    partition: i32,
    offset: i64,
}

/// Where an event the last [`EventSource::poll_batch`] returned came from.
struct Returned {
    payload: Vec<u8>,
    key: Option<Vec<u8>>,
    partition: i32,
    offset: i64,
}

/// Reads `crm.events.v1` from the start, dead-lettering what does not decode.
pub struct EventSource {
    consumer: BaseConsumer,
    dead_letters: DeadLetters,
    topic: String,
    /// How far the read is from the end of the topic as it was at open.
    progress: ReadToEnd,
    /// Source offsets already in the dead-letter topic.
    dead_lettered: HashSet<(i32, i64)>,
    /// Messages read so far.
    read: u64,
    /// The lateness horizon, ms (`None`: events of any age are delivered).
    horizon_ms: Option<i64>,
    /// The watermark of each `(account, partition)`.
    watermarks: HashMap<(u64, i32), i64>,
    /// The last lag measured, and when.
    lag: Option<(Option<u64>, std::time::Instant)>,
    /// The records of the events the last [`EventSource::poll_batch`] returned, in
    /// order ([`EventSource::dead_letter_refused`]).
    returned: Vec<Returned>,
    /// Per partition read from: the next offset, and the CRC-32 of the message before.
    next: HashMap<i32, (i64, u32)>,
    /// After a resume, each partition's next offset there: messages before it, which
    /// the fetch from an earlier offset returns too, were read by the last run.
    skip_below: HashMap<i32, i64>,
    /// The latest event time read from each partition.
    partition_time: HashMap<i32, i64>,
    /// The watermark cap of each event the last [`EventSource::poll_batch`] returned.
    caps: Vec<Option<i64>>,
}

/// Where a source stands after the messages it has handed out: what a checkpoint
/// keeps so that [`EventSource::resume`] goes on from exactly there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    /// The events topic.
    pub topic: String,
    /// Each partition read from: `(partition, next offset, CRC-32 of the payload at
    /// next offset - 1)`. The checksum tells a resume that the topic is the one read
    /// (not recreated since), sorted by partition.
    pub partitions: Vec<(i32, i64, u32)>,
    /// The lateness watermark of each `(account, partition)`, sorted.
    pub watermarks: Vec<((u64, i32), i64)>,
}

/// How far past its record's timestamp an event may move its account's watermark.
pub const FUTURE_SLACK_MS: i64 = 3_600_000;

impl std::fmt::Debug for EventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSource")
            .field("topic", &self.topic)
            .field("behind", self.progress.behind())
            .field("read", &self.read)
            .finish()
    }
}

impl EventSource {
    /// Assigns every partition of the events topic from its first offset. Waits while
    /// the brokers are unreachable.
    ///
    /// # Errors
    /// [`KafkaError`] when a topic is missing or the configuration is refused.
    pub fn open(config: &KafkaConfig) -> Result<Self, KafkaError> {
        Self::open_at(config, None)
    }

    /// Goes on from `position` (a checkpoint's, [`EventSource::position`]): each
    /// partition from its next offset there (a partition added since, from its
    /// start), with the lateness watermarks it had. First checks that the message
    /// before each partition's next offset is still the one that was read.
    ///
    /// # Errors
    /// [`KafkaError::NotThisTopic`] when it is not (another topic name, a partition
    /// gone, a message missing or different: the topic was recreated); the caller
    /// then reads from the start. Otherwise as [`EventSource::open`].
    pub fn resume(config: &KafkaConfig, position: &SourcePosition) -> Result<Self, KafkaError> {
        Self::open_at(config, Some(position))
    }

    fn open_at(
        config: &KafkaConfig,
        position: Option<&SourcePosition>,
    ) -> Result<Self, KafkaError> {
        let topic = config.topics.events.clone();
        let mut next = HashMap::new();
        let mut watermarks = HashMap::new();
        let mut fetch_from = HashMap::new();
        if let Some(position) = position {
            if position.topic != topic {
                return Err(KafkaError::NotThisTopic {
                    topic,
                    reason: format!("the checkpoint is of {}", position.topic),
                });
            }
            fetch_from = locate(config, position)?;
            next = position
                .partitions
                .iter()
                .map(|(p, o, c)| (*p, (*o, *c)))
                .collect();
            watermarks = position.watermarks.iter().copied().collect();
        }
        let mut consumer_config = config.reader_config("source");
        // Named by the configured group id; partitions are assigned, nothing is committed.
        consumer_config.set("group.id", &config.group_id);
        let consumer: BaseConsumer = consumer_config.create()?;
        let starts: HashMap<i32, i64> = next.iter().map(|(p, (o, _))| (*p, *o)).collect();
        let progress = assign_from(&consumer, &topic, &starts, &fetch_from)?;
        let dead_lettered = already_dead_lettered(config, &topic)?;
        let producer: FutureProducer = config.producer_config(0).create()?;
        tracing::info!(
            topic,
            partitions = progress.partitions().len(),
            messages = progress.messages_at_open(),
            resumed_at = starts.values().sum::<i64>(),
            dead_lettered = dead_lettered.len(),
            "event source opened"
        );
        Ok(Self {
            consumer,
            dead_letters: DeadLetters::new(producer, config),
            topic,
            progress,
            dead_lettered,
            read: 0,
            horizon_ms: None,
            watermarks,
            lag: None,
            returned: Vec::new(),
            next,
            skip_below: starts,
            partition_time: HashMap::new(),
            caps: Vec::new(),
        })
    }

    /// Where the source stands: after every message the polls so far returned or
    /// dead-lettered (a checkpoint taken between polls covers exactly those).
    pub fn position(&self) -> SourcePosition {
        let mut partitions: Vec<(i32, i64, u32)> =
            self.next.iter().map(|(p, (o, c))| (*p, *o, *c)).collect();
        partitions.sort_unstable();
        let mut watermarks: Vec<((u64, i32), i64)> =
            self.watermarks.iter().map(|(k, w)| (*k, *w)).collect();
        watermarks.sort_unstable();
        SourcePosition {
            topic: self.topic.clone(),
            partitions,
            watermarks,
        }
    }

    /// For each event the last [`EventSource::poll_batch`] returned, in order: the
    /// least event time reached, once that event was read, by its own partition and
    /// by the partitions still behind the end they had at open (a partition not read
    /// from yet counts as `i64::MIN`). The pipeline caps
    /// its watermarks with them (`pipeline::Pipeline::set_watermark_caps`): while one
    /// partition is read ahead of another, the slow one's events are not made late by
    /// the fast one's. Each cap depends only on the sequence of messages read, not on
    /// how it is cut into batches.
    pub fn watermark_caps(&self) -> &[Option<i64>] {
        &self.caps
    }

    fn watermark_cap(&self) -> Option<i64> {
        self.progress
            .behind()
            .iter()
            .map(|p| self.partition_time.get(p).copied().unwrap_or(i64::MIN))
            .min()
    }

    /// The payloads of the events the last [`EventSource::poll_batch`] returned, in
    /// order (protobuf, as in the topic).
    pub fn returned_payloads(&self) -> impl Iterator<Item = &[u8]> {
        self.returned.iter().map(|r| r.payload.as_slice())
    }

    /// True once every message that was in the topic at [`Self::open`] has been
    /// returned by [`Self::poll_batch`]: every partition up to its high watermark at
    /// open, and then one call that found nothing more.
    ///
    /// The second condition is for brokers whose high watermark lags (tansu 0.6);
    /// the rule is [`ReadToEnd`]'s, shared with `pipeline::sink::kafka::MetricsReader`.
    pub fn caught_up(&self) -> bool {
        self.progress.caught_up()
    }

    /// Applies the lateness horizon `horizon_ms` (see the module; `None` turns it off,
    /// the default).
    #[must_use]
    pub fn with_lateness_horizon(mut self, horizon_ms: Option<i64>) -> Self {
        self.horizon_ms = horizon_ms;
        self
    }

    /// Messages in the topic past this source's position, summed over its partitions,
    /// measured at most every 5 s (each measure asks the broker for the high
    /// watermarks); `None` until first measured or while the broker does not answer
    /// (a failed measure is also not retried for 5 s, so an unreachable broker does not
    /// slow the read loop).
    pub fn lag(&mut self) -> Option<u64> {
        if self
            .lag
            .is_some_and(|(_, at)| at.elapsed() < Duration::from_secs(5))
        {
            return self.lag.and_then(|(l, _)| l);
        }
        let lag = self.measure_lag();
        self.lag = Some((lag, std::time::Instant::now()));
        lag
    }

    fn measure_lag(&self) -> Option<u64> {
        use rdkafka::consumer::Consumer as _;
        let positions = self.consumer.position().ok()?;
        let mut lag = 0u64;
        for p in self.progress.partitions() {
            let (_, high) = self
                .consumer
                .fetch_watermarks(&self.topic, *p, Duration::from_secs(1))
                .ok()?;
            let at = positions
                .find_partition(&self.topic, *p)
                .and_then(|e| match e.offset() {
                    rdkafka::Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .unwrap_or(0);
            lag += u64::try_from(high.saturating_sub(at)).unwrap_or(0);
        }
        Some(lag)
    }

    /// Messages read so far (valid or not).
    pub fn read(&self) -> u64 {
        self.read
    }

    /// Waits up to `timeout` for a message, then takes what else is ready, up to
    /// `max` messages. Returns the valid events; invalid ones are dead-lettered
    /// before this returns. Broker errors are logged and waited out (librdkafka
    /// reconnects by itself).
    ///
    /// # Errors
    /// [`KafkaError::Delivery`] when a dead letter could not be written.
    pub fn poll_batch(&mut self, max: usize, timeout: Duration) -> Result<Vec<Event>, KafkaError> {
        let mut events = Vec::new();
        let mut bad: Vec<Malformed> = Vec::new();
        let mut wait = timeout;
        self.returned.clear();
        self.caps.clear();
        while events.len() + bad.len() < max {
            let Some(result) = self.consumer.poll(wait) else {
                if wait == timeout {
                    // A whole `timeout` without a message: the partitions read past
                    // their start marks hold nothing more (for now).
                    self.progress.nothing_more();
                }
                break;
            };
            wait = Duration::ZERO;
            let m = match result {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(topic = self.topic, error = %e, "consumer error, continuing");
                    metrics::counter!("crmpulse_kafka_consumer_errors_total").increment(1);
                    break;
                }
            };
            let (partition, offset) = (m.partition(), m.offset());
            self.progress.message(partition, offset);
            if self
                .skip_below
                .get(&partition)
                .is_some_and(|next| offset < *next)
            {
                continue;
            }
            self.read += 1;
            let payload = m.payload().unwrap_or_default();
            self.next
                .insert(partition, (offset + 1, crc32fast::hash(payload)));
            let decoded = Event::from_proto_bytes(payload).map_err(|e| (e.to_string(), e.kind()));
            let decoded = match decoded {
                Ok(e) => match too_late(
                    self.horizon_ms,
                    &mut self.watermarks,
                    &e,
                    partition,
                    m.timestamp().to_millis(),
                ) {
                    None => Ok(e),
                    Some(reason) => {
                        metrics::counter!("crmpulse_kafka_too_late_events_total").increment(1);
                        Err((reason, "too_late"))
                    }
                },
                Err(e) => Err(e),
            };
            match decoded {
                Ok(e) => {
                    let time = self.partition_time.entry(partition).or_insert(i64::MIN);
                    *time = (*time).max(e.occurred_at_ms);
                    let own = *time;
                    // Its own partition's time bounds it too: the last message of a
                    // partition's backlog is no longer behind, but it is no later.
                    self.caps
                        .push(Some(self.watermark_cap().map_or(own, |c| c.min(own))));
                    events.push(e);
                    self.returned.push(Returned {
                        payload: payload.to_vec(),
                        key: m.key().map(<[u8]>::to_vec),
                        partition,
                        offset,
                    });
                }
                Err((reason, reason_kind)) => {
                    if self.dead_lettered.contains(&(partition, offset)) {
                        continue;
                    }
                    bad.push(Malformed {
                        payload: payload.to_vec(),
                        key: m.key().map(<[u8]>::to_vec),
                        reason,
                        reason_kind,
                        partition,
                        offset,
                    });
                }
            }
        }
        if !bad.is_empty() {
            self.send_dead_letters(&bad, "malformed or too late events dead-lettered")?;
        }
        metrics::counter!("crmpulse_kafka_source_events_total").increment(events.len() as u64);
        Ok(events)
    }

    /// Dead-letters events of the last [`EventSource::poll_batch`] that the pipeline
    /// refused, `(index in that batch, reason)`, with reason kind `too_late` and their
    /// source offsets. Each once: every start replays the topic and the pipeline
    /// refuses the same events again; their offsets are then found in the dead-letter
    /// topic, as for the events refused here.
    ///
    /// # Errors
    /// [`KafkaError`] when the dead-letter topic does not take them.
    pub fn dead_letter_refused(&mut self, refused: &[(usize, &str)]) -> Result<(), KafkaError> {
        let fresh: Vec<Malformed> = refused
            .iter()
            .filter_map(|(i, reason)| self.returned.get(*i).map(|r| (r, *reason)))
            .filter(|(r, _)| !self.dead_lettered.contains(&(r.partition, r.offset)))
            .map(|(r, reason)| Malformed {
                payload: r.payload.clone(),
                key: r.key.clone(),
                reason: reason.to_owned(),
                reason_kind: "too_late",
                partition: r.partition,
                offset: r.offset,
            })
            .collect();
        if fresh.is_empty() {
            return Ok(());
        }
        self.send_dead_letters(&fresh, "events for final entities dead-lettered")
    }

    /// Sends `bad` to the dead-letter topic with their source offsets and remembers
    /// those offsets, so that a replay skips them; `what` is the log line.
    fn send_dead_letters(&mut self, bad: &[Malformed], what: &str) -> Result<(), KafkaError> {
        let letters: Vec<DeadLetter<'_>> = bad
            .iter()
            .map(|b| DeadLetter {
                payload: &b.payload,
                key: b.key.as_deref(),
                reason: &b.reason,
                reason_kind: b.reason_kind,
                origin: Origin::Kafka {
                    topic: self.topic.clone(),
                    partition: b.partition,
                    offset: b.offset,
                },
            })
            .collect();
        self.dead_letters.send_blocking(&letters)?;
        for b in bad {
            self.dead_lettered.insert((b.partition, b.offset));
        }
        tracing::warn!(topic = self.topic, count = bad.len(), "{what}");
        Ok(())
    }
}

/// How long [`locate`] waits for the messages it reads.
const LOCATE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one of its probes waits before it tries an earlier offset.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Checks that the message before each partition's next offset in `position` is in
/// the topic with the checksum it had when read, and returns an offset per partition
/// to fetch from, at or before that message, from which the broker returns every
/// message.
///
/// Kafka returns the whole record batch that holds the offset asked for (the client
/// skips the records before it), so that offset is the message itself. tansu 0.6
/// returns the first batch that *starts* at or after the offset instead (nothing,
/// inside the last batch), which would lose the rest of the batch. So the probe
/// starts at the message, or at the high watermark − 1 when that is earlier (tansu
/// reports the last batch's first offset + 1), then moves back, doubling the step,
/// until the broker's first message is at or before the one read; the source skips
/// what comes before the next offset.
fn locate(
    config: &KafkaConfig,
    position: &SourcePosition,
) -> Result<HashMap<i32, i64>, KafkaError> {
    let topic = &position.topic;
    let not_this = |reason: String| KafkaError::NotThisTopic {
        topic: topic.clone(),
        reason,
    };
    let consumer: BaseConsumer = config.reader_config("source-check").create()?;
    let marks = connectors::kafka::high_watermarks(&consumer, topic)?;
    let mut fetch_from = HashMap::new();
    for &(p, next, crc) in &position.partitions {
        if next == 0 {
            continue;
        }
        let Some(&high) = marks.get(&p) else {
            return Err(not_this(format!("partition {p} is gone")));
        };
        let last = next - 1;
        let (low, _) = consumer.fetch_watermarks(topic, p, LOCATE_TIMEOUT)?;
        let low = low.max(0);
        let mut from = last.min(high - 1).max(low);
        let mut step = 1;
        let first = loop {
            let mut tpl = rdkafka::TopicPartitionList::new();
            tpl.add_partition_offset(topic, p, rdkafka::Offset::Offset(from))?;
            consumer.assign(&tpl)?;
            let wait = if from == low {
                LOCATE_TIMEOUT
            } else {
                PROBE_TIMEOUT
            };
            match first_at_or_after(&consumer, p, from, wait) {
                Some(first) if first.0 <= last => break first,
                Some(_) | None if from > low => {
                    from = (last - step).max(low);
                    step *= 2;
                }
                _ => {
                    return Err(not_this(format!(
                        "no message in partition {p} at or before offset {last}"
                    )));
                }
            }
        };
        // Read on to the last message read, and check it.
        let mut at = first;
        while at.0 < last {
            at = first_at_or_after(&consumer, p, at.0 + 1, LOCATE_TIMEOUT)
                .ok_or_else(|| not_this(format!("partition {p} ends before offset {last}")))?;
        }
        if at.0 != last || at.1 != crc {
            return Err(not_this(format!(
                "partition {p} offset {last} is not the message read (found offset {}, crc {:08x}, expected {crc:08x})",
                at.0, at.1
            )));
        }
        fetch_from.insert(p, first.0);
    }
    Ok(fetch_from)
}

/// The next message of partition `p` at or after `offset` that `consumer` returns
/// within `wait`, as `(offset, CRC-32 of its payload)`.
fn first_at_or_after(
    consumer: &BaseConsumer,
    p: i32,
    offset: i64,
    wait: Duration,
) -> Option<(i64, u32)> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        match consumer.poll(left.min(Duration::from_millis(200))) {
            Some(Ok(m)) if m.partition() == p && m.offset() >= offset => {
                return Some((m.offset(), crc32fast::hash(m.payload().unwrap_or_default())));
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "consumer error while locating a checkpoint's position");
            }
            _ => {}
        }
    }
}

/// Whether `event`, read from `partition` in a record stamped `record_ms`, is later
/// than the horizon; otherwise it moves its account's watermark. `Some(reason)`
/// for a refused one.
fn too_late(
    horizon_ms: Option<i64>,
    watermarks: &mut HashMap<(u64, i32), i64>,
    event: &Event,
    partition: i32,
    record_ms: Option<i64>,
) -> Option<String> {
    let horizon = horizon_ms?;
    let at = event.occurred_at_ms;
    let mark = watermarks
        .entry((event.account_id, partition))
        .or_insert(i64::MIN);
    if *mark != i64::MIN && at < mark.saturating_sub(horizon) {
        let show = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms).map_or_else(
                || ms.to_string(),
                |t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            )
        };
        return Some(format!(
            "too_late: occurred_at {} is more than the lateness horizon ({} h) before account {}'s latest event time {} in partition {partition}",
            show(at),
            horizon / 3_600_000,
            event.account_id,
            show(*mark),
        ));
    }
    let capped = record_ms.map_or(at, |r| at.min(r.saturating_add(FUTURE_SLACK_MS)));
    *mark = (*mark).max(capped);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn event(account: u64, at_ms: i64) -> Event {
        let at = chrono::DateTime::from_timestamp_millis(at_ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        Event::from_json(&format!(
            r#"{{"event_id":"e{at_ms}","account_id":{account},"occurred_at":"{at}","type":"conversation_opened","conversation_id":"c1","customer_id":"u1","channel":"whatsapp","inbox_id":"i1","origin":"inbound"}}"#
        ))
        .unwrap()
    }

    #[test]
    fn an_event_older_than_the_horizon_before_its_partitions_watermark_is_refused() {
        let horizon = Some(7 * DAY);
        let t0 = 1_795_000_000_000;
        let mut marks = HashMap::new();
        let mut late = |account, partition, at: i64, record: Option<i64>| {
            too_late(horizon, &mut marks, &event(account, at), partition, record)
        };
        assert_eq!(late(1, 0, t0, Some(t0)), None);
        assert_eq!(late(1, 0, t0 + 10 * DAY, Some(t0 + 10 * DAY)), None);
        let reason = late(1, 0, t0 + DAY, Some(t0 + 10 * DAY)).expect("9 days late");
        assert!(reason.starts_with("too_late: occurred_at"), "{reason}");
        assert!(
            reason.contains("(168 h)") && reason.contains("account 1"),
            "{reason}"
        );
        // Exactly at the horizon is still admitted; another account or partition has
        // its own watermark.
        assert_eq!(late(1, 0, t0 + 3 * DAY, None), None);
        assert_eq!(late(2, 0, t0 + DAY, None), None);
        assert_eq!(late(1, 1, t0 + DAY, None), None);
    }

    #[test]
    fn an_event_stamped_in_the_future_moves_the_watermark_only_to_its_record_time_plus_an_hour() {
        let horizon = Some(7 * DAY);
        let t0 = 1_795_000_000_000;
        let mut marks = HashMap::new();
        // A wrong clock: a year ahead of the record's timestamp.
        assert_eq!(
            too_late(horizon, &mut marks, &event(1, t0 + 365 * DAY), 0, Some(t0)),
            None
        );
        assert_eq!(marks[&(1, 0)], t0 + FUTURE_SLACK_MS);
        assert_eq!(
            too_late(horizon, &mut marks, &event(1, t0 - DAY), 0, Some(t0)),
            None,
            "a real event a day old is not late"
        );
        assert_eq!(
            too_late(None, &mut HashMap::new(), &event(1, 0), 0, None),
            None,
            "no horizon, nothing refused"
        );
    }
}
