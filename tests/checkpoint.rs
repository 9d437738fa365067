//! Checkpoints and restart through the real binary: two days of simulated traffic are
//! posted to `crmpulse run` in five parts, with a checkpoint every second and a
//! `kill -9` at a random moment after each part (during a checkpoint write, a replay
//! or the warm-up, as it falls). Then the data dir is opened twice in process: once
//! going on from its checkpoint, once on a copy without it (the whole log replayed).
//! Both view stores must hold exactly the same facts, and those must equal the batch
//! recomputation of the events the lateness horizon admits (decided by the independent
//! reference's rule).

mod common;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::time::{Duration, Instant};

use common::{Killed, free_port, start_with};
use crmpulse::stack::{Source, Stack};
use rand::{Rng as _, SeedableRng as _};
use schemas::Clock;
use schemas::event::Event;
use schemas::metrics::Fact;

/// The servers' clock: the end of the simulated days.
const NOW: &str = "2025-12-10T06:05:00Z";
const HORIZON_HOURS: i64 = 6;

async fn post(http: &reqwest::Client, base: &str, key: &str, lines: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match http
            .post(format!("{base}/api/v1/events"))
            .bearer_auth(key)
            .header("content-type", "application/x-ndjson")
            .body(lines.join("\n"))
            .send()
            .await
        {
            Ok(res) if res.status() == 200 => return,
            Ok(res) => panic!("{}: {}", res.status(), res.text().await.unwrap()),
            Err(e) => {
                assert!(Instant::now() < deadline, "no server: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The view store's facts once it has released all `events` of its log.
fn facts_of(stack: &Stack, events: u64) -> HashMap<Fact, i64> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while stack.store.read(|s| s.events_consumed) < events {
        assert!(Instant::now() < deadline, "the stack did not catch up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut facts = HashMap::new();
    stack.store.for_each_fact(|f, n| {
        facts.insert(f, n);
    });
    facts
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_from_a_checkpoint_after_kill_9_at_random_points_equals_a_full_replay_and_the_batch_recomputation()
 {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("crmpulse.toml");
    let config_text = format!(
        "[pipeline]\nlateness_horizon_hours = {HORIZON_HOURS}\ncheckpoint_interval_secs = 1\n"
    );
    std::fs::write(&config_path, &config_text).unwrap();
    let data = dir.path().join("data");
    let extra: [&OsStr; 2] = ["--config".as_ref(), config_path.as_os_str()];
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut lines = common::simulate(&["--days", "2", "--now", NOW, "--seed", "5"]);
    // The last events go in after the final restart, into the running stacks.
    let held_back: Vec<Event> = lines
        .split_off(lines.len() * 9 / 10)
        .iter()
        .map(|l| Event::from_json(l).unwrap())
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(29);
    let mut interrupted_writes = 0;
    for part in lines.chunks(lines.len().div_ceil(5)) {
        let server = Killed(start_with(port, &data, NOW, &extra));
        let key = common::creds(port).ingest_key;
        for body in part.chunks(3_000) {
            post(&http, &base, &key, body).await;
        }
        // Somewhere in the replay, the warm-up, the catching up or a checkpoint write.
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..2_500))).await;
        drop(server);
        if data.join("checkpoint.bin.tmp").exists() {
            interrupted_writes += 1;
        }
    }
    println!("{interrupted_writes} of 5 kills left a checkpoint half written");

    // A copy without the checkpoint replays the whole log.
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(&data).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if entry.file_type().unwrap().is_file() && !name.to_string_lossy().starts_with("checkpoint")
        {
            std::fs::copy(entry.path(), copy.join(&name)).unwrap();
        }
    }
    let config = crmpulse::config::load(Some(&config_path)).unwrap();
    let clock = Clock::starting_at_rfc3339(NOW).unwrap();

    // Each goes on with the held-back events once it is ready: the resumed one after
    // its warm-up, so that later events meet the replayed state.
    let run = |dir: std::path::PathBuf| {
        let stack = Stack::build(&config, Source::EventLog(dir), clock).unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stack.started() {
            assert!(Instant::now() < deadline, "the stack did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = stack.log.clone().unwrap();
        log.append(&held_back).unwrap();
        let facts = facts_of(&stack, log.len());
        let resumed_from = stack.resumed_from;
        stack.shutdown();
        (facts, resumed_from)
    };
    let (resumed_facts, from) = run(data.clone());
    let from = from.expect("the restart went on from a checkpoint");
    assert!(from > 0, "a checkpoint of a part of the log");
    let (replayed_facts, none) = run(copy);
    assert_eq!(none, None, "the copy has no checkpoint");

    // The log as the pipeline read it, and what the horizon admits of it.
    let log_events: Vec<Event> = {
        let log = ingest::EventLog::open(&data).unwrap();
        let (events, _) = log.read(0, usize::MAX).unwrap();
        events
    };
    println!(
        "resumed from the checkpoint at {from} of {} events",
        log_events.len()
    );
    assert!(log_events.len() > 50_000, "{} events", log_events.len());
    let refused = reference::finalization::refused(&log_events, HORIZON_HOURS * 3_600_000);
    let accepted: Vec<Event> = log_events
        .iter()
        .enumerate()
        .filter(|(i, _)| refused.binary_search(i).is_err())
        .map(|(_, e)| e.clone())
        .collect();
    let expected = pipeline::reference::facts(&accepted);

    assert_eq!(
        resumed_facts.len(),
        replayed_facts.len(),
        "facts after the checkpoint's restart vs the whole log's replay"
    );
    assert!(
        resumed_facts == replayed_facts,
        "the restart and the replay differ"
    );
    let differing = expected
        .iter()
        .filter(|(f, n)| resumed_facts.get(*f) != Some(*n))
        .count()
        + resumed_facts
            .keys()
            .filter(|f| !expected.contains_key(*f))
            .count();
    assert_eq!(
        differing,
        0,
        "facts that differ from the batch recomputation ({} refused)",
        refused.len()
    );
}

/// The default configuration, a clock at [`NOW`], and a simulator of a small team
/// (300 conversations a day) starting a day before it.
fn small_day() -> (
    crmpulse::config::Config,
    Clock,
    ingest::simulator::Simulator,
) {
    let clock = Clock::starting_at_rfc3339(NOW).unwrap();
    let sim = ingest::simulator::Simulator::new(
        ingest::simulator::SimulatorConfig {
            conversations_per_day: 300.0,
            ..Default::default()
        },
        clock.now_ms() - 86_400_000,
    );
    (crmpulse::config::Config::default(), clock, sim)
}

/// Starts the embedded stack on `dir`, appends `events`, waits until the view store
/// has them and shuts the stack down (which writes a checkpoint of what is new).
/// Returns the position it resumed from, if any, and the log's length.
fn run_once(
    config: &crmpulse::config::Config,
    clock: Clock,
    dir: &std::path::Path,
    events: &[Event],
) -> (Option<u64>, u64) {
    let stack = Stack::build(config, Source::EventLog(dir.to_owned()), clock).unwrap();
    let log = stack.log.clone().unwrap();
    if !events.is_empty() {
        log.append(events).unwrap();
    }
    facts_of(&stack, log.len());
    let resumed = stack.resumed_from;
    stack.shutdown();
    (resumed, log.len())
}

/// A checkpoint found beside another log — a recreated or restored `events.redb` as
/// long as the one it was taken from — is not used: the start replays that log. Beside
/// its own log it is.
#[test]
fn a_checkpoint_of_another_log_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let (own, other) = (dir.path().join("own"), dir.path().join("other"));
    let (config, clock, mut sim) = small_day();
    let now = clock.now_ms();
    let events = sim.advance_to(now);
    let run = |dir: &std::path::Path, events: &[Event]| run_once(&config, clock, dir, events).0;
    assert_eq!(run(&own, &events), None);
    assert!(own.join("checkpoint.bin").exists());
    assert_eq!(run(&own, &[]), Some(events.len() as u64), "its own log");

    // Another log with the same events and one more, and the first one's checkpoint.
    {
        let log = ingest::EventLog::open(&other).unwrap();
        log.append(&events).unwrap();
        log.append(&sim.advance_to(now + 60_000)).unwrap();
    }
    std::fs::copy(own.join("checkpoint.bin"), other.join("checkpoint.bin")).unwrap();
    let stack = Stack::build(&config, Source::EventLog(other.clone()), clock).unwrap();
    assert_eq!(stack.resumed_from, None, "another log's checkpoint");
    assert!(
        !other.join("checkpoint.bin").exists(),
        "removed when not used"
    );
    let len = stack.log.as_ref().unwrap().len();
    facts_of(&stack, len);
    stack.shutdown();
    // The shutdown wrote this log's own, which the next start takes.
    assert_eq!(run(&other, &[]), Some(len));
}

/// A checkpoint whose file cannot be written (here its tmp path is a directory) leaves
/// the previous one in place: the next start goes on from that one, and once the path
/// is free again the next write replaces it.
#[test]
fn a_checkpoint_write_that_fails_leaves_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (config, clock, mut sim) = small_day();
    let now = clock.now_ms();
    let run = |events: &[Event]| run_once(&config, clock, &data, events);
    let (resumed, first) = run(&sim.advance_to(now - 43_200_000));
    assert_eq!(resumed, None);
    assert!(data.join("checkpoint.bin").exists());
    // The shutdown's write fails: the file at `first` stays.
    let tmp = data.join("checkpoint.bin.tmp");
    std::fs::create_dir(&tmp).unwrap();
    let (resumed, second) = run(&sim.advance_to(now));
    assert_eq!(resumed, Some(first));
    assert!(second > first);
    assert!(tmp.is_dir(), "the write could not replace the directory");
    std::fs::remove_dir(&tmp).unwrap();
    // From the one that stayed; then this start's shutdown writes one at `second`.
    assert_eq!(run(&[]), (Some(first), second));
    assert_eq!(run(&[]), (Some(second), second));
}
