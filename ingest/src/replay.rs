//! Bulk load of NDJSON event files into the event log (`crmpulse replay FILE`).
//!
//! Lines are validated one by one; bad lines are dead-lettered with their line number
//! and reason and never stop the load. Appends are batched so that a multi-million
//! line file costs a few hundred fsyncs, not millions.

use std::io::BufRead;
use std::path::Path;

use schemas::Event;

use crate::log::{EventLog, LogError};

/// Errors that stop a replay (bad lines do not).
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The file could not be read.
    #[error("reading {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

/// Counts of a finished replay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    /// Non-blank lines read.
    pub lines: u64,
    /// Events newly stored.
    pub accepted: u64,
    /// Events already in the log.
    pub duplicates: u64,
    /// Lines rejected (dead-lettered).
    pub rejected: u64,
    /// Events refused as older than the lateness horizon (dead-lettered with reason
    /// `too_late`; see docs/operations.md).
    pub too_late: u64,
}

/// Events appended per log transaction.
pub const REPLAY_BATCH: usize = 20_000;

/// Replays an NDJSON file into `log`. `progress` is called after each batch with the
/// number of bytes read so far.
///
/// # Errors
/// I/O errors reading the file, or log storage errors. Invalid lines are not errors.
pub fn replay_file(
    path: &Path,
    log: &EventLog,
    mut progress: impl FnMut(u64, &ReplayStats),
) -> Result<ReplayStats, ReplayError> {
    let io = |source| ReplayError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut stats = ReplayStats::default();
    let mut batch: Vec<Event> = Vec::with_capacity(REPLAY_BATCH);
    let mut line = String::new();
    let mut line_no = 0u64;
    let mut bytes = 0u64;
    let source = format!("replay:{}", path.display());
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(io)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        line_no += 1;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        stats.lines += 1;
        match Event::from_json(text) {
            Ok(event) => batch.push(event),
            Err(err) => {
                stats.rejected += 1;
                metrics::counter!("crmpulse_ingest_rejected_events_total", "reason" => err.kind())
                    .increment(1);
                log.dead_letter(
                    &format!("{source}:{line_no}"),
                    text.as_bytes(),
                    &err.to_string(),
                )?;
            }
        }
        if batch.len() >= REPLAY_BATCH {
            flush(log, &source, &mut batch, &mut stats)?;
            progress(bytes, &stats);
        }
    }
    flush(log, &source, &mut batch, &mut stats)?;
    progress(bytes, &stats);
    Ok(stats)
}

fn flush(
    log: &EventLog,
    source: &str,
    batch: &mut Vec<Event>,
    stats: &mut ReplayStats,
) -> Result<(), LogError> {
    let out = log.write(source, batch, &[])?;
    stats.accepted += out.accepted;
    stats.duplicates += out.duplicates;
    stats.too_late += out.too_late.len() as u64;
    batch.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn replay_keeps_good_lines_and_dead_letters_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.ndjson");
        let mut f = std::fs::File::create(&file).unwrap();
        let ok = |id: &str| {
            format!(
                r#"{{"event_id":"{id}","account_id":1,"occurred_at":"2026-11-24T10:00:00Z","type":"ticket_resolved","ticket_id":"t"}}"#
            )
        };
        writeln!(
            f,
            "{}\n\n{{\"event_id\":\"x\"}}\n{}\n{}",
            ok("a"),
            ok("b"),
            ok("a")
        )
        .unwrap();
        drop(f);
        let log = EventLog::open(&dir.path().join("data")).unwrap();
        let stats = replay_file(&file, &log, |_, _| {}).unwrap();
        assert_eq!(
            stats,
            ReplayStats {
                lines: 4,
                accepted: 2,
                duplicates: 1,
                rejected: 1,
                too_late: 0
            }
        );
        let dl = log.dead_letters().unwrap();
        assert_eq!(dl[0]["reason"], "account_id: missing required field");
        assert!(dl[0]["source"].as_str().unwrap().ends_with(":3"));
    }
}
