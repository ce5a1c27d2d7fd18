//! Statistics of timed calls: median, p10–p90, median absolute deviation; the harness overhead
//! subtraction; time ratios.

use serde::Serialize;

/// Summary of one engine's timed calls, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    /// Timed calls.
    pub n: usize,
    /// Median.
    pub median_us: f64,
    /// 10th percentile.
    pub p10_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// Median absolute deviation from the median.
    pub mad_us: f64,
    /// Fastest call.
    pub min_us: f64,
}

/// The `q`-quantile of sorted `v` (`0 <= q <= 1`), linear between the closest ranks (numpy's
/// default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
        }
    }
}

/// Summarize `samples` (microseconds); `None` when there are none or one is not finite.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() || samples.iter().any(|s| !s.is_finite()) {
        return None;
    }
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let median = quantile(&v, 0.5);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    Some(Summary {
        n: v.len(),
        median_us: median,
        p10_us: quantile(&v, 0.1),
        p90_us: quantile(&v, 0.9),
        mad_us: quantile(&dev, 0.5),
        min_us: v[0],
    })
}

/// A harness's calls minus its own per-call cost: every sample less the median of the
/// `overhead` samples (the same loop around a trivial model), floored at 0. The median of the
/// result is the raw median less the overhead median; the spread is the raw spread.
pub fn subtract_overhead(samples: &[f64], overhead: &[f64]) -> Option<Vec<f64>> {
    let o = summarize(overhead)?.median_us;
    Some(samples.iter().map(|s| (s - o).max(0.0)).collect())
}

/// `a / b` of two medians; `None` unless both are positive.
pub fn ratio(a: &Summary, b: &Summary) -> Option<f64> {
    (a.median_us > 0.0 && b.median_us > 0.0).then(|| a.median_us / b.median_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_ranks() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 5.0);
        assert!((quantile(&v, 0.1) - 1.4).abs() < 1e-12);
        assert!((quantile(&[1.0, 2.0], 0.5) - 1.5).abs() < 1e-12);
        assert_eq!(quantile(&[7.0], 0.9), 7.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn summary_of_unsorted_samples_with_an_outlier() {
        let s = summarize(&[12.0, 10.0, 11.0, 100.0, 10.0, 13.0, 11.0]).unwrap();
        assert_eq!(s.n, 7);
        assert_eq!(s.median_us, 11.0);
        assert_eq!(s.min_us, 10.0);
        // |x - 11|: 1 1 0 89 1 2 0 -> sorted 0 0 1 1 1 2 89.
        assert_eq!(s.mad_us, 1.0);
        assert!(s.p10_us >= 10.0 && s.p10_us <= s.median_us);
        assert!(s.p90_us >= s.median_us && s.p90_us < 100.0, "{s:?}");
        assert!(summarize(&[]).is_none());
        assert!(summarize(&[1.0, f64::NAN]).is_none());
    }

    #[test]
    fn overhead_subtraction_moves_the_median_not_the_spread() {
        let raw = [110.0, 120.0, 130.0, 140.0, 150.0];
        let overhead = [9.0, 10.0, 11.0, 10.0, 30.0];
        let net = subtract_overhead(&raw, &overhead).unwrap();
        assert_eq!(net, [100.0, 110.0, 120.0, 130.0, 140.0]);
        let (r, n) = (summarize(&raw).unwrap(), summarize(&net).unwrap());
        assert_eq!(n.median_us, r.median_us - 10.0);
        assert!((n.p90_us - n.p10_us - (r.p90_us - r.p10_us)).abs() < 1e-9);
        assert_eq!(n.mad_us, r.mad_us);
        // A call faster than the overhead counts as 0, never negative.
        assert_eq!(
            subtract_overhead(&[5.0, 20.0], &[10.0]).unwrap(),
            [0.0, 10.0]
        );
        assert!(subtract_overhead(&raw, &[]).is_none());
    }

    #[test]
    fn ratios_of_medians() {
        let a = summarize(&[10.0, 10.0, 10.0]).unwrap();
        let b = summarize(&[40.0, 40.0]).unwrap();
        assert_eq!(ratio(&a, &b), Some(0.25));
        let zero = summarize(&[0.0]).unwrap();
        assert_eq!(ratio(&a, &zero), None);
    }
}
