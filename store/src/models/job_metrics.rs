//! The `job_metrics` rollups and the `consumer_offsets` they are written
//! with: the aggregator's exactly-once flush, retention, and the reads behind
//! QueryMetrics.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, QueryDsl, SelectableHelper,
    prelude::*,
    sql_types::{Array, BigInt, Double, Integer, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    StoreError,
    schema::{consumer_offsets, job_metrics},
};

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
    pub job_id: Uuid,
    /// "" for the job over all locations.
    pub location: String,
    /// Width label, e.g. "1m".
    pub granularity: String,
    pub dt: DateTime<Utc>,
}

/// Additive aggregates of some checks; merging two is exact.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollup {
    pub rt_min: Option<f64>,
    pub rt_max: Option<f64>,
    pub rt_sum: f64,
    pub rt_count: i64,
    pub rt_histogram: BTreeMap<usize, i64>,
    pub checks: i64,
    pub passed: i64,
    /// HTTP status code → count.
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

fn counters_json<K: ToString>(map: &BTreeMap<K, i64>) -> serde_json::Value {
    serde_json::Value::Object(map.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect())
}

fn counters_from_json(value: &serde_json::Value) -> BTreeMap<String, i64> {
    value
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0))).collect())
        .unwrap_or_default()
}

/// The next offset of one partition, as this consumer expects to find it
/// stored (`expected`, None when none was stored) and as it writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProgress {
    pub partition: i32,
    pub expected: Option<i64>,
    pub next_offset: i64,
}

/// How a flush ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlushOutcome {
    Committed {
        rows: usize,
        /// SQL statements the transaction ran (the benchmark reports them).
        statements: usize,
    },
    /// Another consumer moved these partitions' stored offsets since this
    /// one read them: nothing was written; drop their pending state.
    Fenced { partitions: Vec<i32> },
}

const UPSERT_ROLLUPS: &str = "
INSERT INTO job_metrics AS m
    (job_id, location, granularity, dt, rt_min, rt_max, rt_sum, rt_count, rt_histogram, checks, passed, data, errors)
SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::float8[], $6::float8[],
                     $7::float8[], $8::int8[], $9::jsonb[], $10::int8[], $11::int8[], $12::jsonb[], $13::jsonb[])
ON CONFLICT (job_id, location, granularity, dt) DO UPDATE SET
    rt_min = LEAST(m.rt_min, EXCLUDED.rt_min),
    rt_max = GREATEST(m.rt_max, EXCLUDED.rt_max),
    rt_sum = m.rt_sum + EXCLUDED.rt_sum,
    rt_count = m.rt_count + EXCLUDED.rt_count,
    rt_histogram = monitor_jsonb_add(m.rt_histogram, EXCLUDED.rt_histogram),
    checks = m.checks + EXCLUDED.checks,
    passed = m.passed + EXCLUDED.passed,
    data = monitor_jsonb_add(m.data, EXCLUDED.data),
    errors = monitor_jsonb_add(m.errors, EXCLUDED.errors),
    updated_at = now()";

/// Serialises flushes of the same partitions, also where no offset row
/// exists yet (which `SELECT .. FOR UPDATE` cannot lock): without it two
/// members that both expect "nothing stored" would both pass the fence and
/// both count the same messages. Partitions are locked in ascending order.
const LOCK_PARTITIONS: &str = "
SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2), p) FROM UNNEST($3::int4[]) AS p";

const UPSERT_OFFSETS: &str = "
INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
SELECT $1, $2, * FROM UNNEST($3::int4[], $4::int8[])
ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()";

/// Writes `rollups` and the partitions' next offsets in one transaction,
/// with four statements whatever the number of rows (lock the partitions,
/// read their offsets, upsert the rollups, upsert the offsets). Fenced
/// (nothing written) when a stored offset is not the one this consumer
/// expected.
pub async fn flush(
    conn: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
    rollups: &[(RollupKey, Rollup)],
    progress: &[PartitionProgress],
) -> Result<FlushOutcome, StoreError> {
    let mut partitions: Vec<i32> = progress.iter().map(|p| p.partition).collect();
    partitions.sort_unstable();
    let (group, topic) = (group.to_owned(), topic.to_owned());
    let mut columns = Columns::default();
    for (key, rollup) in rollups {
        columns.push(key, rollup);
    }
    let progress = progress.to_vec();
    let rows = rollups.len();
    conn.transaction(async move |conn| {
        diesel::sql_query(LOCK_PARTITIONS)
            .bind::<Text, _>(&group)
            .bind::<Text, _>(&topic)
            .bind::<Array<Integer>, _>(&partitions)
            .execute(conn)
            .await?;
        // Lock, read and offsets upsert; the rollup upsert when rows exist.
        let mut statements = 3;
        let stored: Vec<(i32, i64)> = consumer_offsets::table
            .filter(consumer_offsets::group_id.eq(&group))
            .filter(consumer_offsets::topic.eq(&topic))
            .filter(consumer_offsets::partition.eq_any(&partitions))
            .select((consumer_offsets::partition, consumer_offsets::next_offset))
            .for_update()
            .load(conn)
            .await?;
        let stored: HashMap<i32, i64> = stored.into_iter().collect();
        let fenced: Vec<i32> = progress
            .iter()
            .filter(|p| stored.get(&p.partition).copied() != p.expected)
            .map(|p| p.partition)
            .collect();
        if !fenced.is_empty() {
            return Ok(FlushOutcome::Fenced { partitions: fenced });
        }
        if rows > 0 {
            diesel::sql_query(UPSERT_ROLLUPS)
                .bind::<Array<SqlUuid>, _>(&columns.job_id)
                .bind::<Array<Text>, _>(&columns.location)
                .bind::<Array<Text>, _>(&columns.granularity)
                .bind::<Array<Timestamptz>, _>(&columns.dt)
                .bind::<Array<Nullable<Double>>, _>(&columns.rt_min)
                .bind::<Array<Nullable<Double>>, _>(&columns.rt_max)
                .bind::<Array<Double>, _>(&columns.rt_sum)
                .bind::<Array<BigInt>, _>(&columns.rt_count)
                .bind::<Array<Jsonb>, _>(&columns.rt_histogram)
                .bind::<Array<BigInt>, _>(&columns.checks)
                .bind::<Array<BigInt>, _>(&columns.passed)
                .bind::<Array<Jsonb>, _>(&columns.data)
                .bind::<Array<Jsonb>, _>(&columns.errors)
                .execute(conn)
                .await?;
            statements += 1;
        }
        let offset_partitions: Vec<i32> = progress.iter().map(|p| p.partition).collect();
        let offsets: Vec<i64> = progress.iter().map(|p| p.next_offset).collect();
        diesel::sql_query(UPSERT_OFFSETS)
            .bind::<Text, _>(&group)
            .bind::<Text, _>(&topic)
            .bind::<Array<Integer>, _>(&offset_partitions)
            .bind::<Array<BigInt>, _>(&offsets)
            .execute(conn)
            .await?;
        Ok(FlushOutcome::Committed { rows, statements })
    })
    .await
}

/// The rollup batch as one array per column, for UNNEST.
#[derive(Default)]
struct Columns {
    job_id: Vec<Uuid>,
    location: Vec<String>,
    granularity: Vec<String>,
    dt: Vec<DateTime<Utc>>,
    rt_min: Vec<Option<f64>>,
    rt_max: Vec<Option<f64>>,
    rt_sum: Vec<f64>,
    rt_count: Vec<i64>,
    rt_histogram: Vec<serde_json::Value>,
    checks: Vec<i64>,
    passed: Vec<i64>,
    data: Vec<serde_json::Value>,
    errors: Vec<serde_json::Value>,
}

impl Columns {
    fn push(&mut self, key: &RollupKey, rollup: &Rollup) {
        self.job_id.push(key.job_id);
        self.location.push(key.location.clone());
        self.granularity.push(key.granularity.clone());
        self.dt.push(key.dt);
        self.rt_min.push(rollup.rt_min);
        self.rt_max.push(rollup.rt_max);
        self.rt_sum.push(rollup.rt_sum);
        self.rt_count.push(rollup.rt_count);
        self.rt_histogram.push(counters_json(&rollup.rt_histogram));
        self.checks.push(rollup.checks);
        self.passed.push(rollup.passed);
        self.data.push(counters_json(&rollup.status));
        self.errors.push(counters_json(&rollup.errors));
    }
}

/// The stored next offsets of `partitions` (absent: none stored yet).
pub async fn stored_offsets(
    conn: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, i64>, StoreError> {
    let rows: Vec<(i32, i64)> = consumer_offsets::table
        .filter(consumer_offsets::group_id.eq(group))
        .filter(consumer_offsets::topic.eq(topic))
        .filter(consumer_offsets::partition.eq_any(partitions))
        .select((consumer_offsets::partition, consumer_offsets::next_offset))
        .load(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Deletes rows of `granularity` older than `before`; returns how many.
pub async fn apply_retention(
    conn: &mut AsyncPgConnection,
    granularity: &str,
    before: DateTime<Utc>,
) -> Result<usize, StoreError> {
    Ok(diesel::delete(
        job_metrics::table
            .filter(job_metrics::granularity.eq(granularity))
            .filter(job_metrics::dt.lt(before)),
    )
    .execute(conn)
    .await?)
}

/// A stored rollup row.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = job_metrics, check_for_backend(diesel::pg::Pg))]
pub struct MetricRow {
    pub job_id: Uuid,
    pub location: String,
    pub granularity: String,
    pub dt: DateTime<Utc>,
    pub rt_min: Option<f64>,
    pub rt_max: Option<f64>,
    pub rt_sum: f64,
    pub rt_count: i64,
    pub rt_histogram: serde_json::Value,
    pub checks: i64,
    pub passed: i64,
    pub data: serde_json::Value,
    pub errors: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

impl MetricRow {
    /// The row as an in-memory rollup (to merge rows or compute quantiles).
    pub fn rollup(&self) -> Rollup {
        Rollup {
            rt_min: self.rt_min,
            rt_max: self.rt_max,
            rt_sum: self.rt_sum,
            rt_count: self.rt_count,
            rt_histogram: counters_from_json(&self.rt_histogram)
                .into_iter()
                .filter_map(|(k, v)| k.parse().ok().map(|k| (k, v)))
                .collect(),
            checks: self.checks,
            passed: self.passed,
            status: counters_from_json(&self.data),
            errors: counters_from_json(&self.errors),
        }
    }
}

/// Rows of one job, location and granularity with `from <= dt < to`, oldest first.
pub async fn query(
    conn: &mut AsyncPgConnection,
    job_id: Uuid,
    location: &str,
    granularity: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<MetricRow>, StoreError> {
    Ok(job_metrics::table
        .filter(job_metrics::job_id.eq(job_id))
        .filter(job_metrics::location.eq(location))
        .filter(job_metrics::granularity.eq(granularity))
        .filter(job_metrics::dt.ge(from))
        .filter(job_metrics::dt.lt(to))
        .order(job_metrics::dt.asc())
        .select(MetricRow::as_select())
        .load(conn)
        .await?)
}

/// Checks and passed checks of one job over a time window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, QueryableByName)]
pub struct CheckTotals {
    #[diesel(sql_type = SqlUuid)]
    pub job_id: Uuid,
    #[diesel(sql_type = BigInt)]
    pub checks: i64,
    #[diesel(sql_type = BigInt)]
    pub passed: i64,
}

/// Per job of `job_ids`, the checks and passed checks of its rows over all
/// locations at `granularity` with `dt >= from`, summed in the database so a
/// day of minute rows costs one row per job on the wire. Jobs without rows
/// are absent.
pub async fn check_totals(
    conn: &mut AsyncPgConnection,
    job_ids: &[Uuid],
    granularity: &str,
    from: DateTime<Utc>,
) -> Result<Vec<CheckTotals>, StoreError> {
    Ok(diesel::sql_query(
        "SELECT job_id, SUM(checks)::int8 AS checks, SUM(passed)::int8 AS passed \
         FROM job_metrics \
         WHERE job_id = ANY($1) AND location = '' AND granularity = $2 AND dt >= $3 \
         GROUP BY job_id",
    )
    .bind::<Array<SqlUuid>, _>(job_ids)
    .bind::<Text, _>(granularity)
    .bind::<Timestamptz, _>(from)
    .load(conn)
    .await?)
}

/// Per job of `job_ids`, `(job_id, dt, average response time in ms)` of its
/// rows over all locations at `granularity` with `dt >= from` that measured
/// a response time, by job and oldest first.
pub async fn average_response_times(
    conn: &mut AsyncPgConnection,
    job_ids: &[Uuid],
    granularity: &str,
    from: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>, f64)>, StoreError> {
    let rows: Vec<(Uuid, DateTime<Utc>, f64, i64)> = job_metrics::table
        .filter(job_metrics::job_id.eq_any(job_ids))
        .filter(job_metrics::location.eq(""))
        .filter(job_metrics::granularity.eq(granularity))
        .filter(job_metrics::dt.ge(from))
        .filter(job_metrics::rt_count.gt(0))
        .order((job_metrics::job_id.asc(), job_metrics::dt.asc()))
        .select((
            job_metrics::job_id,
            job_metrics::dt,
            job_metrics::rt_sum,
            job_metrics::rt_count,
        ))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(job_id, dt, sum, count)| (job_id, dt, sum / count as f64))
        .collect())
}

/// Deletes every rollup and stored offset (database reset).
pub async fn delete_all(conn: &mut AsyncPgConnection) -> Result<usize, StoreError> {
    let rows = diesel::delete(job_metrics::table).execute(conn).await?;
    diesel::delete(consumer_offsets::table).execute(conn).await?;
    Ok(rows)
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
