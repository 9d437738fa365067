//! Sampling helpers over the simulator's single random stream.
//!
//! rand 0.9 has no normal or log-normal distribution without `rand_distr`, which the
//! workspace does not carry, so the few shapes the simulator needs are written out
//! here. Every helper draws a fixed number of values from the stream, so the sequence
//! of draws depends only on the sequence of calls: that is what keeps the simulator
//! deterministic.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The simulator's random stream.
pub(super) type SimRng = ChaCha8Rng;

/// Milliseconds in one second, minute, hour and day.
pub(super) const SECOND_MS: i64 = 1_000;
pub(super) const MINUTE_MS: i64 = 60 * SECOND_MS;
pub(super) const HOUR_MS: i64 = 60 * MINUTE_MS;
pub(super) const DAY_MS: i64 = 24 * HOUR_MS;

/// A uniform draw in `[0, 1)`.
pub(super) fn unit(rng: &mut SimRng) -> f64 {
    rng.random::<f64>()
}

/// True with probability `p`.
pub(super) fn chance(rng: &mut SimRng, p: f64) -> bool {
    unit(rng) < p
}

/// A uniform draw in `[lo, hi)`.
pub(super) fn uniform(rng: &mut SimRng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit(rng)
}

/// A uniform integer in `lo..=hi`.
pub(super) fn int(rng: &mut SimRng, lo: u64, hi: u64) -> u64 {
    rng.random_range(lo..=hi)
}

/// A uniform duration in `[lo_min, hi_min)` minutes, in milliseconds.
pub(super) fn minutes_between(rng: &mut SimRng, lo_min: f64, hi_min: f64) -> i64 {
    (uniform(rng, lo_min, hi_min) * MINUTE_MS as f64) as i64
}

/// A standard normal draw (Box–Muller), clamped to ±4σ.
///
/// The clamp keeps log-normal tails long but finite: a 4σ delay with σ = 1 is 55× the
/// median, far enough for an SLA breach without scheduling anything into next month.
fn standard_normal(rng: &mut SimRng) -> f64 {
    // 1 - u keeps the logarithm's argument in (0, 1].
    let u1 = 1.0 - unit(rng);
    let u2 = unit(rng);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()).clamp(-4.0, 4.0)
}

/// A log-normal duration with the given median (seconds) and shape σ, in milliseconds.
///
/// Human response times are the textbook log-normal: most replies come quickly, a few
/// take ten or fifty times longer.
pub(super) fn lognormal_ms(rng: &mut SimRng, median_s: f64, sigma: f64) -> i64 {
    (lognormal(rng, median_s, sigma) * SECOND_MS as f64).round() as i64
}

/// A log-normal value with the given median and shape σ.
pub(super) fn lognormal(rng: &mut SimRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * standard_normal(rng)).exp()
}

/// An exponential draw with the given mean.
pub(super) fn exponential(rng: &mut SimRng, mean: f64) -> f64 {
    -mean * (1.0 - unit(rng)).ln()
}

/// Picks a value from a `(value, weight)` table; weights need not sum to 1.
pub(super) fn weighted<T: Copy>(rng: &mut SimRng, table: &[(T, f64)]) -> T {
    table[weighted_index(rng, table, |(_, w)| *w)].0
}

/// Picks an index into `items`, each weighted by `weight`; weights need not sum to 1.
pub(super) fn weighted_index<T>(
    rng: &mut SimRng,
    items: &[T],
    weight: impl Fn(&T) -> f64,
) -> usize {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = unit(rng) * total;
    for (i, item) in items.iter().enumerate() {
        let w = weight(item);
        if x < w {
            return i;
        }
        x -= w;
    }
    items.len() - 1
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn lognormal_median_is_the_median() {
        let mut rng = SimRng::seed_from_u64(7);
        let mut v: Vec<i64> = (0..20_001)
            .map(|_| lognormal_ms(&mut rng, 120.0, 0.9))
            .collect();
        v.sort_unstable();
        let median = v[10_000] as f64 / 1000.0;
        assert!((110.0..130.0).contains(&median), "median {median}");
        assert!(
            v[19_900] > 900_000,
            "p99.5 should exceed 15 minutes, got {}",
            v[19_900]
        );
    }

    #[test]
    fn weighted_follows_the_weights() {
        let mut rng = SimRng::seed_from_u64(1);
        let hits = (0..10_000)
            .filter(|_| weighted(&mut rng, &[('a', 0.7), ('b', 0.3)]) == 'a')
            .count();
        assert!((6_700..7_300).contains(&hits), "{hits}");
    }
}
