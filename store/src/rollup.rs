//! The rollup maths: [`Rollup`], the additive aggregates of some checks
//! (counts, response-time min, max, sum and a mergeable [`histogram`]),
//! and [`RollupKey`], the row it belongs to. Plain values and functions,
//! no database: the aggregator builds rollups in memory, the flush in
//! [`crate::models::job_metrics`] stores them, and the control plane merges
//! stored rows back into rollups to compute figures and percentiles.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Fixed log-scale response-time buckets, so histograms from any number of
/// checks, workers and flushes merge by adding counts.
pub mod histogram {
    /// Upper bound of bucket 0, in milliseconds.
    pub const FIRST_BOUND_MS: f64 = 0.1;
    /// Each bucket is this much wider than the previous one (±2.5 % error).
    pub const GROWTH: f64 = 1.05;
    /// Buckets up to about 10 minutes; slower values land in the last one.
    pub const BUCKETS: usize = 330;

    /// The bucket of a value in milliseconds.
    pub fn bucket_of(ms: f64) -> usize {
        if ms.is_nan() || ms <= FIRST_BOUND_MS {
            return 0;
        }
        let index = ((ms / FIRST_BOUND_MS).ln() / GROWTH.ln()).ceil() as usize;
        index.min(BUCKETS - 1)
    }

    /// The inclusive upper bound of bucket `index`, in milliseconds.
    pub fn upper_bound(index: usize) -> f64 {
        FIRST_BOUND_MS * GROWTH.powi(index as i32)
    }

    /// The value at quantile `q` (0..=1) of sparse bucket counts, reported as
    /// the middle of its bucket and clamped to the observed min and max.
    pub fn quantile(counts: &std::collections::BTreeMap<usize, i64>, q: f64, min: f64, max: f64) -> Option<f64> {
        let total: i64 = counts.values().sum();
        if total <= 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as i64).max(1);
        let mut seen = 0;
        for (&index, &count) in counts {
            seen += count;
            if seen >= rank {
                let lower = if index == 0 { 0.0 } else { upper_bound(index - 1) };
                let middle = (lower + upper_bound(index)) / 2.0;
                return Some(middle.clamp(min, max));
            }
        }
        Some(max)
    }
}

/// Identifies one rollup row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RollupKey {
    /// The job whose checks these are.
    pub job_id: Uuid,
    /// "" for the job over all locations.
    pub location: String,
    /// Width label, e.g. "1m".
    pub granularity: String,
    /// Bucket start (UTC): checks land in the bucket of their start time.
    pub dt: DateTime<Utc>,
}

/// Additive aggregates of some checks; merging two is exact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollup {
    /// Fastest response time in ms (None: no check measured one).
    pub rt_min: Option<f64>,
    /// Slowest response time in ms (None: no check measured one).
    pub rt_max: Option<f64>,
    /// Sum of the response times in ms, for the average with `rt_count`.
    pub rt_sum: f64,
    /// Checks that measured a response time (answered ones only).
    pub rt_count: i64,
    /// Sparse [`histogram`] bucket → count, for percentiles.
    pub rt_histogram: BTreeMap<usize, i64>,
    /// Every check, answered or not.
    pub checks: i64,
    /// Checks whose outcome was OK.
    pub passed: i64,
    /// Answer code → count: HTTP (and WebSocket upgrade) status codes, DNS
    /// response codes, gRPC health statuses; for ICMP checks the echo
    /// requests sent and lost (`icmp_sent`, `icmp_lost`).
    pub status: BTreeMap<String, i64>,
    /// Failed outcome → count.
    pub errors: BTreeMap<String, i64>,
}

impl Rollup {
    /// Adds one check.
    pub fn add(&mut self, rt_ms: Option<f64>, passed: bool, status: Option<u32>, error: Option<&str>) {
        self.checks += 1;
        if passed {
            self.passed += 1;
        }
        if let Some(ms) = rt_ms {
            self.rt_min = Some(self.rt_min.map_or(ms, |m| m.min(ms)));
            self.rt_max = Some(self.rt_max.map_or(ms, |m| m.max(ms)));
            self.rt_sum += ms;
            self.rt_count += 1;
            *self.rt_histogram.entry(histogram::bucket_of(ms)).or_default() += 1;
        }
        if let Some(code) = status {
            *self.status.entry(code.to_string()).or_default() += 1;
        }
        if let Some(kind) = error {
            *self.errors.entry(kind.to_owned()).or_default() += 1;
        }
    }

    /// Adds `n` to the answer counter `key` (see [`Rollup::status`]).
    pub fn count(&mut self, key: &str, n: i64) {
        match self.status.get_mut(key) {
            Some(total) => *total += n,
            None => {
                self.status.insert(key.to_owned(), n);
            }
        }
    }

    /// Adds another rollup of the same key.
    pub fn merge(&mut self, other: &Rollup) {
        self.rt_min = match (self.rt_min, other.rt_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.rt_max = match (self.rt_max, other.rt_max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.rt_sum += other.rt_sum;
        self.rt_count += other.rt_count;
        self.checks += other.checks;
        self.passed += other.passed;
        for (k, v) in &other.rt_histogram {
            *self.rt_histogram.entry(*k).or_default() += v;
        }
        for (k, v) in &other.status {
            *self.status.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_quantiles() {
        assert_eq!(histogram::bucket_of(0.0), 0);
        assert_eq!(histogram::bucket_of(0.1), 0);
        assert_eq!(histogram::bucket_of(1e12), histogram::BUCKETS - 1);
        for ms in [0.5, 3.0, 42.0, 999.0, 30_000.0] {
            let b = histogram::bucket_of(ms);
            assert!(
                histogram::upper_bound(b) >= ms && histogram::upper_bound(b - 1) < ms,
                "{ms} in bucket {b}"
            );
        }
        let mut rollup = Rollup::default();
        for i in 1..=1000 {
            rollup.add(Some(i as f64), i % 10 != 0, Some(200), None);
        }
        let p50 = histogram::quantile(&rollup.rt_histogram, 0.5, 1.0, 1000.0).unwrap();
        let p99 = histogram::quantile(&rollup.rt_histogram, 0.99, 1.0, 1000.0).unwrap();
        assert!((p50 - 500.0).abs() / 500.0 < 0.03, "p50 {p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.03, "p99 {p99}");
        assert_eq!(rollup.passed, 900);
        let mut merged = rollup.clone();
        merged.merge(&rollup);
        assert_eq!(merged.checks, 2000);
        assert_eq!(merged.rt_min, Some(1.0));
        assert_eq!(merged.status["200"], 2000);
        assert_eq!(histogram::quantile(&BTreeMap::new(), 0.5, 0.0, 0.0), None);
    }
}
