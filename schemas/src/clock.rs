//! The one clock of a crmpulse process.
//!
//! Everything that asks "what time is it now" — the pipeline's input timestamps and
//! idle ticks, the API's default range ("today") and its "now" for SLA deadlines and
//! forecasts, token issue and expiry, the demo simulator — reads a [`Clock`] handed to
//! it by the binary, never the system clock directly. The default clock is the system
//! clock. A clock [`Clock::starting_at`] a fixed instant reads that instant at the
//! moment it is created and then advances with the monotonic clock
//! ([`std::time::Instant`]), so a test or a reproduction can run the whole server "on"
//! a chosen day at a chosen time, whatever the machine's date (`crmpulse --now`,
//! `CRMPULSE_NOW`; docs/operations.md).
//!
//! Durations (timeouts, rate limits, tick intervals) are not read from this clock: they
//! use `Instant`, which no change of the wall clock moves.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Where "now" comes from. Cheap to copy; every copy reads the same time line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some((ms, at))`: `ms` since the epoch at the
    /// monotonic instant `at`.
    pinned: Option<(i64, Instant)>,
}

/// A `--now` / `CRMPULSE_NOW` value that is not an RFC 3339 instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an RFC 3339 instant (e.g. 2026-11-20T12:00:00Z): {0:?}")]
pub struct ClockError(pub String);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { pinned: None }
    }

    /// A clock that reads `ms` (since the Unix epoch) now and then advances with the
    /// monotonic clock.
    pub fn starting_at(ms: i64) -> Self {
        Self {
            pinned: Some((ms, Instant::now())),
        }
    }

    /// [`Clock::starting_at`] an RFC 3339 instant (`2026-11-20T12:00:00Z`,
    /// `2026-03-29T00:30:00+01:00`).
    ///
    /// # Errors
    /// [`ClockError`] when `s` is not an RFC 3339 instant.
    pub fn starting_at_rfc3339(s: &str) -> Result<Self, ClockError> {
        chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Self::starting_at(t.timestamp_millis()))
            .map_err(|_| ClockError(s.to_owned()))
    }

    /// Whether this clock was started at a fixed instant (not the system clock).
    pub fn is_pinned(&self) -> bool {
        self.pinned.is_some()
    }

    /// Milliseconds since the Unix epoch, now.
    pub fn now_ms(&self) -> i64 {
        match self.pinned {
            Some((ms, at)) => {
                ms.saturating_add(i64::try_from(at.elapsed().as_millis()).unwrap_or(i64::MAX))
            }
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// Whole seconds since the Unix epoch, now (JWT `iat` and `exp` are in seconds).
    pub fn now_s(&self) -> u64 {
        u64::try_from(self.now_ms().div_euclid(1000)).unwrap_or(0)
    }
}

impl std::str::FromStr for Clock {
    type Err = ClockError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::starting_at_rfc3339(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_clock_starts_at_its_instant_and_moves_forward() {
        let clock = Clock::starting_at_rfc3339("2026-03-29T00:30:00+01:00").unwrap();
        assert!(clock.is_pinned());
        let t0 = clock.now_ms();
        // 2026-03-28T23:30:00Z, read well within the minute after the clock started.
        assert!((1_774_740_600_000..1_774_740_660_000).contains(&t0), "{t0}");
        let copy = clock;
        assert!(copy.now_ms() >= t0, "copies share one time line");
        assert_eq!(
            clock.now_s(),
            1_774_740_600 + (clock.now_ms() - t0) as u64 / 1000
        );
    }

    #[test]
    fn an_invalid_instant_is_named_in_the_error() {
        let e = Clock::starting_at_rfc3339("yesterday").unwrap_err();
        assert!(e.to_string().contains("\"yesterday\""), "{e}");
        assert!(
            "2026-11-20".parse::<Clock>().is_err(),
            "a date alone is not an instant"
        );
    }

    #[test]
    fn the_default_clock_is_the_system_clock() {
        let clock = Clock::default();
        assert!(!clock.is_pinned());
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        // The same source, read twice: far less than a minute apart.
        assert!((clock.now_ms() - system).abs() < 60_000);
    }
}
