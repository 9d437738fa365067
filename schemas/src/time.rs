//! Time buckets shared by the pipeline (which emits bucketed facts) and the view store
//! (which sums buckets over a range).
//!
//! A bucket is 15 minutes of UTC time. Every UTC offset in current use in the IANA
//! database is a multiple of 15 minutes (+05:30, +05:45, −09:30, …), so every local
//! hour and day boundary, in every zone, DST days included, is a bucket boundary. That
//! makes range sums exact without knowing the zone at aggregation time, and lets a
//! zone change recompute nothing in the pipeline.

/// Length of one bucket in milliseconds.
pub const BUCKET_MS: i64 = 15 * 60 * 1000;

/// The bucket (its start, in ms since the epoch) that contains `t_ms`.
pub fn bucket_of(t_ms: i64) -> i64 {
    t_ms.div_euclid(BUCKET_MS) * BUCKET_MS
}

/// Truncates an instant down to a bucket boundary.
pub fn floor_to_bucket(t_ms: i64) -> i64 {
    bucket_of(t_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_floor_towards_negative_infinity() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(BUCKET_MS - 1), 0);
        assert_eq!(bucket_of(BUCKET_MS), BUCKET_MS);
        assert_eq!(bucket_of(-1), -BUCKET_MS);
    }
}
