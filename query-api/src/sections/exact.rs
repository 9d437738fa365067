//! Exact rounding: every rounded figure comes from the exact ratio of two integers,
//! rounded half up (`docs/metrics.md`, "Rounding"). Rounding a floating-point product
//! instead turned an exact 57.5 into 57.

/// `num ÷ den` rounded half up to an integer; `den` must be positive.
pub(crate) fn div_half_up(num: i128, den: i128) -> i128 {
    debug_assert!(den > 0);
    (2 * num + den).div_euclid(2 * den)
}

/// `num ÷ den` rounded half up to `places` decimals; `None` when `den` is not positive.
pub(crate) fn decimal(num: i128, den: i128, places: u32) -> Option<f64> {
    (den > 0).then(|| {
        let scale = 10i128.pow(places);
        div_half_up(num * scale, den) as f64 / scale as f64
    })
}

/// A rate to 4 decimals: `num ÷ den`, `None` without a denominator.
pub(crate) fn rate(num: i64, den: i64) -> Option<f64> {
    decimal(num.into(), den.into(), 4)
}

/// An average duration to 0.1 s.
pub(crate) fn tenths(sum: i64, count: i64) -> Option<f64> {
    decimal(sum.into(), count.into(), 1)
}

/// The 1-based nearest rank ⌈q·n⌉ (at least 1) for `q = num/den`, in integers.
pub(crate) fn nearest_rank(num: i64, den: i64, n: i64) -> i64 {
    ((num * n + den - 1) / den).max(1)
}

/// `num ÷ den` in ten-thousandths, rounded half up (0 without a denominator).
fn basis(num: i64, den: i64) -> i128 {
    if den > 0 {
        div_half_up(i128::from(num) * 10_000, den.into())
    } else {
        0
    }
}

/// The agent score, the one score of an agent (`docs/metrics.md`, "Agent ranking"):
/// `round(100 × (0.5 × sla_met_rate + 0.3 × resolution_rate + 0.2 × volume))`, each
/// rate rounded half up to 4 decimals first, a missing rate counting as 0.
///
/// `sla` is (first replies within target, first replies), `resolution` (resolutions
/// capped at handled, handled), `volume` (handled, most handled by any agent listed).
pub(crate) fn agent_score(sla: (i64, i64), resolution: (i64, i64), volume: (i64, i64)) -> u32 {
    let weighted = 5 * basis(sla.0, sla.1)
        + 3 * basis(resolution.0, resolution.1)
        + 2 * basis(volume.0, volume.1);
    // Weights in tenths and rates in ten-thousandths: 100 × score = weighted ÷ 1000.
    u32::try_from(div_half_up(weighted, 1000)).unwrap_or(0)
}

/// The documented score formula, returned in the bodies that show the score.
pub const AGENT_SCORE_FORMULA: &str = "score = round(100 × (0.5 × sla_met_rate + 0.3 × resolution_rate + 0.2 × handled ÷ most handled by any agent listed)); rates rounded half up to 4 decimals, a missing rate counts as 0";

/// `good` at or above.
pub const GOOD: u32 = 80;
/// `attention` below.
pub const ATTENTION: u32 = 50;

/// The level of a score.
pub(crate) fn level(score: u32) -> &'static str {
    if score >= GOOD {
        "good"
    } else if score < ATTENTION {
        "attention"
    } else {
        "ok"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_round_up_where_floating_point_rounded_down() {
        // 0.5, 0.75, 0.5: 100 × (0.25 + 0.225 + 0.1) = 57.5 exactly.
        assert_eq!(agent_score((1, 2), (3, 4), (2, 4)), 58);
        let float = (100.0f64 * (0.5 * 0.5 + 0.3 * 0.75 + 0.2 * 0.5)).round() as u32;
        assert_eq!(float, 57, "the float formula this replaces");
        assert_eq!(agent_score((0, 0), (0, 0), (0, 0)), 0);
        assert_eq!(agent_score((1, 1), (1, 1), (1, 1)), 100);
        assert_eq!(agent_score((0, 3), (1, 3), (1, 3)), 17); // 10 + 6.67 = 16.67 → 17
    }

    #[test]
    fn ranks_and_rates_are_exact() {
        assert_eq!(nearest_rank(9, 10, 30), 27);
        assert_eq!(nearest_rank(9, 10, 31), 28);
        assert_eq!(nearest_rank(1, 2, 4), 2);
        assert_eq!(nearest_rank(1, 2, 1), 1);
        assert_eq!(nearest_rank(9, 10, 1), 1);
        assert_eq!(rate(1, 8), Some(0.125));
        assert_eq!(rate(2, 3), Some(0.6667));
        assert_eq!(rate(1, 0), None);
        assert_eq!(tenths(1, 4), Some(0.3));
        assert_eq!(tenths(3, 4), Some(0.8));
        assert_eq!(div_half_up(-5, 2), -2);
    }
}
