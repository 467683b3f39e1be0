//! QueryMetrics: the rules of a metrics query and the figures computed from
//! the stored rollups. Pure functions, so the arithmetic is tested without a
//! database; [`super::JobCatalog::query_metrics`] reads the rows.

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use monitor_core::{
    granularity::{self, Granularity, GranularityError},
    labels::{LABEL_KEY_RULE, is_label_key},
};
use monitor_proto::{
    v1::{MetricPoint, MetricSummary, QueryMetricsRequest},
    wkt::Timestamp,
};
use monitor_store::rollup::{Rollup, histogram};
use uuid::Uuid;

use crate::error::{ApiError, FieldViolation};

/// Granularity of a request that names none.
pub const DEFAULT_GRANULARITY: &str = "1m";
/// Range of a request that names no start: this long before its end.
pub const DEFAULT_RANGE: TimeDelta = TimeDelta::hours(1);
/// Most buckets one query may span, so one answer stays small.
pub const MAX_BUCKETS: i64 = 10_000;

/// A response-time aggregate a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Min,
    Max,
    Avg,
    Count,
    P50,
    P90,
    P95,
    P99,
}

impl Aggregate {
    /// Every aggregate, in the order error messages list them.
    pub const ALL: [Aggregate; 8] = [
        Aggregate::Min,
        Aggregate::Max,
        Aggregate::Avg,
        Aggregate::Count,
        Aggregate::P50,
        Aggregate::P90,
        Aggregate::P95,
        Aggregate::P99,
    ];

    /// The name clients use in `aggregates`.
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Min => "min",
            Aggregate::Max => "max",
            Aggregate::Avg => "avg",
            Aggregate::Count => "count",
            Aggregate::P50 => "p50",
            Aggregate::P90 => "p90",
            Aggregate::P95 => "p95",
            Aggregate::P99 => "p99",
        }
    }

    pub fn parse(name: &str) -> Option<Aggregate> {
        Aggregate::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The quantile a percentile stands for.
    fn quantile(self) -> Option<f64> {
        match self {
            Aggregate::P50 => Some(0.50),
            Aggregate::P90 => Some(0.90),
            Aggregate::P95 => Some(0.95),
            Aggregate::P99 => Some(0.99),
            _ => None,
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The aggregates a query asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregates(u8);

impl Aggregates {
    pub fn all() -> Self {
        Aggregates(Aggregate::ALL.iter().fold(0, |bits, a| bits | a.bit()))
    }

    pub fn only(wanted: &[Aggregate]) -> Self {
        Aggregates(wanted.iter().fold(0, |bits, a| bits | a.bit()))
    }

    pub fn contains(self, aggregate: Aggregate) -> bool {
        self.0 & aggregate.bit() != 0
    }
}

/// A validated QueryMetrics request with its defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsQuery {
    pub job_id: Uuid,
    /// The width label rows are stored under, e.g. "1m".
    pub granularity: String,
    /// Bucket starts in `start <= dt < end` are answered.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// "" for the job over all its locations.
    pub location: String,
    pub aggregates: Aggregates,
}

/// The granularity a request names (the aggregator's rule, see
/// [`monitor_core::granularity`]), or the field violation's reason.
pub fn parse_granularity(label: &str) -> Result<Granularity, String> {
    Granularity::parse(label).map_err(|err| match err {
        GranularityError::BadCount | GranularityError::BadUnit => {
            format!("{label:?} is not a granularity: use a positive whole number and s, m, h or d, e.g. \"1m\"")
        }
        GranularityError::TooWide => format!("{label:?} is too wide: at most {}d", granularity::MAX_DAYS),
    })
}

fn timestamp(field: &str, value: Option<Timestamp>, v: &mut Vec<FieldViolation>) -> Option<DateTime<Utc>> {
    let value = value?;
    match DateTime::<Utc>::try_from(value) {
        Ok(at) if value.nanos < 1_000_000_000 && (1..=9999).contains(&at.year()) => Some(at),
        _ => {
            v.push(FieldViolation::new(
                field,
                "is not a valid timestamp (nanos must be 0 to 999999999, the date within years 1 to 9999)",
            ));
            None
        }
    }
}

/// Checks a request and fills in its defaults relative to `now`. Every
/// violated field is reported, not just the first.
pub fn parse_query(request: &QueryMetricsRequest, now: DateTime<Utc>) -> Result<MetricsQuery, ApiError> {
    let mut v = Vec::new();
    let job_id = match Uuid::parse_str(&request.job_id) {
        Ok(id) => Some(id),
        Err(_) if request.job_id.is_empty() => {
            v.push(FieldViolation::new("job_id", "is required"));
            None
        }
        Err(_) => {
            let reason = format!("{:?} is not a job id (a UUID)", request.job_id);
            v.push(FieldViolation::new("job_id", reason));
            None
        }
    };
    let granularity = if request.granularity.is_empty() {
        DEFAULT_GRANULARITY
    } else {
        &request.granularity
    };
    let width_ms = parse_granularity(granularity)
        .map(|granularity| granularity.width_ms())
        .map_err(|reason| v.push(FieldViolation::new("granularity", reason)))
        .ok();
    if !request.location.is_empty() && !is_label_key(&request.location) {
        v.push(FieldViolation::new(
            "location",
            format!("must be empty (the job over all its locations) or {LABEL_KEY_RULE}"),
        ));
    }
    let mut wanted = Vec::new();
    for (i, name) in request.aggregates.iter().enumerate() {
        match Aggregate::parse(name) {
            Some(aggregate) => wanted.push(aggregate),
            None => v.push(FieldViolation::new(
                format!("aggregates[{i}]"),
                format!(
                    "{name:?} is not an aggregate; use {}",
                    Aggregate::ALL.map(Aggregate::name).join(", ")
                ),
            )),
        }
    }
    let start = timestamp("start_time", request.start_time, &mut v);
    let end = timestamp("end_time", request.end_time, &mut v);
    let unreadable = (request.start_time.is_some() && start.is_none()) || (request.end_time.is_some() && end.is_none());
    let range = if unreadable {
        None
    } else {
        let end = end.unwrap_or(now);
        let start = start.unwrap_or(end - DEFAULT_RANGE);
        if start < end {
            Some((start, end))
        } else {
            let reason = if request.end_time.is_some() {
                "must be before end_time"
            } else {
                "must be before end_time (default: now)"
            };
            v.push(FieldViolation::new("start_time", reason));
            None
        }
    };
    if let (Some((start, end)), Some(width_ms)) = (range, width_ms) {
        let span_ms = (end - start).num_milliseconds();
        let buckets = span_ms / width_ms + i64::from(span_ms % width_ms != 0);
        if buckets > MAX_BUCKETS {
            v.push(FieldViolation::new(
                "start_time",
                format!(
                    "the range spans {buckets} buckets of {granularity}; at most {MAX_BUCKETS}: narrow the range or \
                     use a coarser granularity"
                ),
            ));
        }
    }
    if !v.is_empty() {
        return Err(ApiError::InvalidArgument(v));
    }
    let (Some(job_id), Some((start, end))) = (job_id, range) else {
        unreachable!("a missing value is always a violation");
    };
    Ok(MetricsQuery {
        job_id,
        granularity: granularity.to_owned(),
        start,
        end,
        location: request.location.clone(),
        aggregates: if wanted.is_empty() {
            Aggregates::all()
        } else {
            Aggregates::only(&wanted)
        },
    })
}

/// What a point and the summary report about one rollup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub checks: i64,
    pub passed: i64,
    pub uptime: Option<f64>,
    pub rt_min: Option<f64>,
    pub rt_max: Option<f64>,
    pub rt_avg: Option<f64>,
    pub rt_count: Option<i64>,
    /// p50, p90, p95, p99.
    pub percentiles: [Option<f64>; 4],
    pub status_counts: std::collections::HashMap<String, i64>,
    pub error_counts: std::collections::HashMap<String, i64>,
}

/// The figures of `rollup`, with only the `wanted` response-time aggregates.
pub fn figures(rollup: &Rollup, wanted: Aggregates) -> Figures {
    let measured = rollup.rt_count > 0;
    let pick = |aggregate: Aggregate, value: Option<f64>| value.filter(|_| wanted.contains(aggregate));
    // quantile() clamps to [min, max]; keep that interval well-formed even
    // if a row's bounds were missing or crossed.
    let low = rollup.rt_min.filter(|m| m.is_finite()).unwrap_or(0.0);
    let high = rollup
        .rt_max
        .filter(|m| m.is_finite())
        .unwrap_or(f64::INFINITY)
        .max(low);
    let percentile = |aggregate: Aggregate| {
        let q = aggregate.quantile().expect("a percentile");
        pick(aggregate, histogram::quantile(&rollup.rt_histogram, q, low, high))
    };
    Figures {
        checks: rollup.checks,
        passed: rollup.passed,
        uptime: (rollup.checks > 0).then(|| rollup.passed as f64 / rollup.checks as f64),
        rt_min: pick(Aggregate::Min, rollup.rt_min),
        rt_max: pick(Aggregate::Max, rollup.rt_max),
        rt_avg: pick(Aggregate::Avg, measured.then(|| rollup.rt_sum / rollup.rt_count as f64)),
        rt_count: wanted.contains(Aggregate::Count).then_some(rollup.rt_count),
        percentiles: [
            percentile(Aggregate::P50),
            percentile(Aggregate::P90),
            percentile(Aggregate::P95),
            percentile(Aggregate::P99),
        ],
        status_counts: rollup.status.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        error_counts: rollup.errors.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    }
}

/// One bucket's point.
pub fn point(dt: DateTime<Utc>, figures: Figures) -> MetricPoint {
    let [p50, p90, p95, p99] = figures.percentiles;
    MetricPoint {
        dt: Some(dt.into()),
        checks: figures.checks,
        passed: figures.passed,
        uptime: figures.uptime,
        rt_min: figures.rt_min,
        rt_max: figures.rt_max,
        rt_avg: figures.rt_avg,
        rt_count: figures.rt_count,
        p50,
        p90,
        p95,
        p99,
        status_counts: figures.status_counts,
        error_counts: figures.error_counts,
    }
}

/// The summary of a whole range.
pub fn summary(figures: Figures) -> MetricSummary {
    let [p50, p90, p95, p99] = figures.percentiles;
    MetricSummary {
        checks: figures.checks,
        passed: figures.passed,
        uptime: figures.uptime,
        rt_min: figures.rt_min,
        rt_max: figures.rt_max,
        rt_avg: figures.rt_avg,
        rt_count: figures.rt_count,
        p50,
        p90,
        p95,
        p99,
        status_counts: figures.status_counts,
        error_counts: figures.error_counts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn request() -> QueryMetricsRequest {
        QueryMetricsRequest {
            job_id: Uuid::now_v7().to_string(),
            ..Default::default()
        }
    }

    fn fields(err: &ApiError) -> Vec<String> {
        err.violations().iter().map(|v| v.field.clone()).collect()
    }

    /// The parsing rules are `monitor_core::granularity`'s (tested there);
    /// this is how a QueryMetrics violation words what it refuses.
    #[test]
    fn granularity_violations_keep_their_wording() {
        assert_eq!(parse_granularity("15s").unwrap().width_ms(), 15_000);
        assert_eq!(parse_granularity("3650d").unwrap().label(), "3650d");
        let not_one = "is not a granularity: use a positive whole number and s, m, h or d, e.g. \"1m\"";
        for bad in ["", "01m", "1w", "1é"] {
            assert_eq!(
                parse_granularity(bad).unwrap_err(),
                format!("{bad:?} {not_one}"),
                "{bad:?}"
            );
        }
        for wide in ["3651d", "99999999999999999999s"] {
            assert_eq!(
                parse_granularity(wide).unwrap_err(),
                format!("{wide:?} is too wide: at most 3650d")
            );
        }
    }

    #[test]
    fn defaults_are_the_last_hour_by_minute_with_every_aggregate() {
        let now = at("2026-11-27T10:30:00Z");
        let query = parse_query(&request(), now).unwrap();
        assert_eq!(query.granularity, "1m");
        assert_eq!((query.start, query.end), (at("2026-11-27T09:30:00Z"), now));
        assert_eq!(query.location, "");
        assert_eq!(query.aggregates, Aggregates::all());
        let mut only_end = request();
        only_end.end_time = Some(at("2026-11-27T08:00:00Z").into());
        let query = parse_query(&only_end, now).unwrap();
        assert_eq!(query.start, at("2026-11-27T07:00:00Z"));
    }

    #[test]
    fn every_violation_is_named() {
        let now = at("2026-11-27T10:30:00Z");
        let bad = QueryMetricsRequest {
            job_id: "nope".into(),
            granularity: "5x".into(),
            location: "-eu".into(),
            aggregates: vec!["p95".into(), "median".into()],
            start_time: Some(at("2026-11-27T11:00:00Z").into()),
            end_time: Some(at("2026-11-27T10:00:00Z").into()),
        };
        assert_eq!(
            fields(&parse_query(&bad, now).unwrap_err()),
            ["job_id", "granularity", "location", "aggregates[1]", "start_time"]
        );
        let mut missing = request();
        missing.job_id.clear();
        assert_eq!(fields(&parse_query(&missing, now).unwrap_err()), ["job_id"]);
        // Only a start, in the future: it is after the default end (now).
        let mut future = request();
        future.start_time = Some(at("2026-11-27T11:00:00Z").into());
        let err = parse_query(&future, now).unwrap_err();
        assert!(err.to_string().contains("default: now"), "{err}");
        let mut equal = request();
        equal.start_time = Some(now.into());
        equal.end_time = Some(now.into());
        assert_eq!(fields(&parse_query(&equal, now).unwrap_err()), ["start_time"]);
        let mut broken = request();
        broken.end_time = Some(Timestamp {
            seconds: 0,
            nanos: 1_000_000_000,
        });
        assert_eq!(fields(&parse_query(&broken, now).unwrap_err()), ["end_time"]);
        broken.end_time = Some(Timestamp {
            seconds: i64::MAX,
            nanos: 0,
        });
        assert_eq!(fields(&parse_query(&broken, now).unwrap_err()), ["end_time"]);
    }

    #[test]
    fn ranges_are_limited_in_buckets() {
        let now = at("2026-11-27T10:30:00Z");
        let mut query = request();
        query.end_time = Some(now.into());
        query.start_time = Some((now - TimeDelta::minutes(MAX_BUCKETS)).into());
        assert!(parse_query(&query, now).is_ok(), "exactly the limit");
        query.start_time = Some((now - TimeDelta::minutes(MAX_BUCKETS) - TimeDelta::milliseconds(1)).into());
        let err = parse_query(&query, now).unwrap_err();
        assert_eq!(fields(&err), ["start_time"]);
        assert!(err.to_string().contains("10001 buckets of 1m"), "{err}");
        query.granularity = "1h".into();
        assert!(parse_query(&query, now).is_ok(), "a coarser granularity fits");
    }

    #[test]
    fn figures_honour_the_aggregates_asked_for() {
        let mut rollup = Rollup::default();
        for ms in [10.0, 20.0, 30.0, 40.0] {
            rollup.add(Some(ms), ms < 35.0, Some(200), None);
        }
        rollup.add(None, false, None, Some("CHECK_OUTCOME_TIMEOUT"));
        let all = figures(&rollup, Aggregates::all());
        assert_eq!((all.checks, all.passed), (5, 3));
        assert_eq!(all.uptime, Some(0.6));
        assert_eq!(
            (all.rt_min, all.rt_max, all.rt_avg, all.rt_count),
            (Some(10.0), Some(40.0), Some(25.0), Some(4))
        );
        assert!(all.percentiles.iter().all(Option::is_some));
        assert_eq!(all.status_counts["200"], 4);
        assert_eq!(all.error_counts["CHECK_OUTCOME_TIMEOUT"], 1);
        let some = figures(&rollup, Aggregates::only(&[Aggregate::P95, Aggregate::Avg]));
        assert_eq!((some.rt_min, some.rt_max, some.rt_count), (None, None, None));
        assert_eq!(some.rt_avg, Some(25.0));
        assert_eq!(
            [some.percentiles[0], some.percentiles[1], some.percentiles[3]],
            [None; 3]
        );
        assert_eq!(some.percentiles[2], all.percentiles[2]);
        assert_eq!(some.uptime, Some(0.6), "uptime and counters are always reported");
        let empty = figures(&Rollup::default(), Aggregates::all());
        assert_eq!((empty.uptime, empty.rt_min, empty.rt_avg), (None, None, None));
        assert_eq!(empty.rt_count, Some(0), "a count of nothing is 0");
        assert_eq!(empty.percentiles, [None; 4]);
        // Crossed bounds (corrupt row) must not panic in the clamp.
        let mut crossed = rollup.clone();
        crossed.rt_min = Some(50.0);
        crossed.rt_max = Some(5.0);
        assert_eq!(figures(&crossed, Aggregates::all()).percentiles[0], Some(50.0));
    }
}
