//! The binary's logs: plain text without ANSI colour codes when stderr is not a
//! terminal (a file here, as under systemd or a container runtime), and one JSON object
//! per line with `--log-format json`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const NOW: &str = "2026-11-20T12:00:00Z";

/// Runs `crmpulse run` until it answers `/healthz`, with `extra` global flags; returns
/// what it wrote to stderr.
fn run_logs(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crmpulse"))
        .args(["--now", NOW])
        .args(extra)
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "crmpulse did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The source's first read is logged once it has caught up with the empty log.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("source read up to what it held at start")
    {
        assert!(Instant::now() < deadline, "no start-up log line");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(&log).unwrap()
}

#[test]
fn text_logs_to_a_file_have_no_colour_codes() {
    let text = run_logs(&[]);
    assert!(
        text.contains("the clock was started at a fixed instant"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "ANSI escape codes in {text:?}");
}

#[test]
fn json_logs_are_one_object_per_line() {
    let text = run_logs(&["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert!(lines.len() >= 2, "{text}");
    for l in &lines {
        assert!(l["timestamp"].is_string() && l["level"].is_string(), "{l}");
        assert!(l["fields"]["message"].is_string(), "{l}");
    }
    let clock = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("the clock was started"))
        })
        .expect("the clock line");
    assert_eq!(clock["level"], "WARN");
    // The pinned clock runs on from the instant: the line may be a millisecond or
    // two past it.
    let now = clock["fields"]["now"].as_str().unwrap_or_default();
    assert!(now.starts_with("2026-11-20T12:00:0"), "{clock}");
}
