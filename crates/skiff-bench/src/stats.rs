//! Latency samples and the figures the report prints from them: nearest-rank percentiles (as
//! `fio` and most HTTP load generators report them) and rates.

use std::time::Duration;

/// A set of latency samples; percentiles are taken over the sorted samples.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples {
    sorted: Vec<Duration>,
}

impl Samples {
    /// Sorts `samples` once, so each percentile is a lookup.
    pub(crate) fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Samples { sorted: samples }
    }

    pub(crate) fn len(&self) -> usize {
        self.sorted.len()
    }

    /// The nearest-rank `p`th percentile (0 < p ≤ 100): the smallest sample such that at least
    /// p% of the samples are less than or equal to it. `None` without samples.
    pub(crate) fn percentile(&self, p: f64) -> Option<Duration> {
        percentile_sorted(&self.sorted, p)
    }

    pub(crate) fn p50(&self) -> Option<Duration> {
        self.percentile(50.0)
    }

    pub(crate) fn p99(&self) -> Option<Duration> {
        self.percentile(99.0)
    }

    pub(crate) fn max(&self) -> Option<Duration> {
        self.sorted.last().copied()
    }
}

/// Nearest-rank percentile of already sorted samples.
pub(crate) fn percentile_sorted(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let p = p.clamp(0.0, 100.0);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    Some(sorted[index])
}

/// The median of a few durations (start-to-ready runs).
pub(crate) fn median(samples: &[Duration]) -> Option<Duration> {
    let mut v = samples.to_vec();
    v.sort_unstable();
    percentile_sorted(&v, 50.0)
}

/// Operations per second.
pub(crate) fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return 0.0;
    }
    count as f64 / secs
}

/// A duration for a table: microseconds below 1 ms, else milliseconds with enough precision.
pub(crate) fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else if us < 100_000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{:.0} ms", us / 1000.0)
    }
}

/// `fmt_duration` of an optional figure; "–" when there were no samples.
pub(crate) fn fmt_opt(d: Option<Duration>) -> String {
    d.map(fmt_duration).unwrap_or_else(|| "–".to_string())
}

/// A rate with thousands separators: `21,345/s`.
pub(crate) fn fmt_rate(per_sec: f64) -> String {
    format!("{}/s", fmt_count(per_sec.round() as u64))
}

/// An integer with thousands separators.
pub(crate) fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes as MiB with one decimal.
pub(crate) fn fmt_mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = Samples::new(ms(&[5, 1, 4, 2, 3, 10, 9, 8, 7, 6]));
        assert_eq!(s.len(), 10);
        assert_eq!(s.p50(), Some(Duration::from_millis(5)));
        assert_eq!(s.percentile(90.0), Some(Duration::from_millis(9)));
        assert_eq!(s.p99(), Some(Duration::from_millis(10)));
        assert_eq!(s.percentile(100.0), Some(Duration::from_millis(10)));
        assert_eq!(s.percentile(0.0), Some(Duration::from_millis(1)));
        assert_eq!(s.max(), Some(Duration::from_millis(10)));
    }

    #[test]
    fn p99_of_a_thousand_is_the_990th() {
        let s = Samples::new((1..=1000).map(Duration::from_micros).collect());
        assert_eq!(s.p99(), Some(Duration::from_micros(990)));
        assert_eq!(s.p50(), Some(Duration::from_micros(500)));
    }

    #[test]
    fn empty_and_single() {
        assert_eq!(Samples::new(vec![]).p50(), None);
        let one = Samples::new(ms(&[7]));
        assert_eq!(one.p50(), Some(Duration::from_millis(7)));
        assert_eq!(one.p99(), Some(Duration::from_millis(7)));
    }

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&ms(&[30, 10, 20])), Some(Duration::from_millis(20)));
        // Nearest rank: the lower middle of an even count.
        assert_eq!(median(&ms(&[4, 1, 3, 2])), Some(Duration::from_millis(2)));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn rates_and_formatting() {
        assert_eq!(rate(1000, Duration::from_millis(500)), 2000.0);
        assert_eq!(rate(5, Duration::ZERO), 0.0);
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(1234567), "1,234,567");
        assert_eq!(fmt_rate(21344.6), "21,345/s");
        assert_eq!(fmt_duration(Duration::from_micros(850)), "850 µs");
        assert_eq!(fmt_duration(Duration::from_micros(1234)), "1.23 ms");
        assert_eq!(fmt_duration(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250 ms");
        assert_eq!(fmt_opt(None), "–");
        assert_eq!(fmt_mib(50 * 1024 * 1024), "50.0 MiB");
    }
}
