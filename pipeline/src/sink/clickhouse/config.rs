//! `[clickhouse]`: where the rollups go and how the sink batches, retries and bounds
//! its memory. The sink is off while `url` is empty.

use std::time::Duration;

use schemas::Secret;
use serde::{Deserialize, Serialize};

/// The ClickHouse sink's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP interface of the server, e.g. `http://127.0.0.1:8123`. Empty: no ClickHouse
    /// sink (the default; the dashboard does not need one).
    pub url: String,
    /// Database holding the tables; created by `crmpulse migrate` when missing.
    pub database: String,
    /// User name sent with every request.
    pub user: String,
    /// Password sent with every request (empty for none), in the `Authorization`
    /// header, never in the URL. Never printed.
    pub password: Secret,
    /// Most rows in one `INSERT`; a flush of more rows is split into several.
    pub batch_rows: usize,
    /// Changed rows are written at least this often (ms), even below `batch_rows`.
    pub flush_interval_ms: u64,
    /// Most changed rollup rows held in memory waiting to be written. When reached (for
    /// example while ClickHouse is down), the event-log reader waits before feeding the
    /// pipeline more events: backpressure instead of unbounded memory.
    pub max_buffered_rows: usize,
    /// First wait before retrying a failed write (ms); doubles on every failure.
    pub retry_initial_ms: u64,
    /// Longest wait between two retries (ms). Writes are retried until they succeed.
    pub retry_max_ms: u64,
    /// Timeout of one HTTP request to ClickHouse (ms).
    pub request_timeout_ms: u64,
    /// Apply pending migrations when the sink starts (as `crmpulse migrate` does).
    pub migrate_on_start: bool,
    /// Also copy every raw event from the event log into the `events` table.
    pub raw_events: bool,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            database: "crmpulse".into(),
            user: "default".into(),
            password: Secret::default(),
            batch_rows: 50_000,
            flush_interval_ms: 1_000,
            max_buffered_rows: 1_000_000,
            retry_initial_ms: 100,
            retry_max_ms: 5_000,
            request_timeout_ms: 30_000,
            migrate_on_start: true,
            raw_events: true,
        }
    }
}

impl ClickHouseConfig {
    /// Whether a server is configured.
    pub fn enabled(&self) -> bool {
        !self.url.trim().is_empty()
    }

    pub(crate) fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms.max(10))
    }

    /// Backoff before retry number `attempt` (0-based).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let initial = self.retry_initial_ms.max(1);
        let ms = initial
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.retry_max_ms.max(initial));
        Duration::from_millis(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = ClickHouseConfig {
            retry_initial_ms: 100,
            retry_max_ms: 1_000,
            ..ClickHouseConfig::default()
        };
        let waits: Vec<u64> = (0..6).map(|a| c.backoff(a).as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert!(!c.enabled());
    }

    #[test]
    fn the_password_never_prints() {
        let c = ClickHouseConfig {
            user: "analyst".into(),
            password: Secret::new("clickhouse-pass-5e1f"),
            ..ClickHouseConfig::default()
        };
        for printed in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!printed.contains("clickhouse-pass"), "{printed}");
            assert!(printed.contains("analyst") && printed.contains("[redacted]"));
        }
    }
}
