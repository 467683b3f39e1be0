//! `job_metrics`: the stored rollups. The aggregator's exactly-once flush
//! (rollups and the partitions' offsets in one fenced transaction, see
//! [`super::consumer_offsets`]), retention (by dropping partitions, see
//! [`super::metric_partitions`]), and the reads behind
//! QueryMetrics and the job summaries. The maths of a rollup lives in
//! [`crate::rollup`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use diesel::{
    ExpressionMethods, QueryDsl, SelectableHelper,
    prelude::*,
    sql_types::{Array, BigInt, Double, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid},
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    StoreError,
    models::{
        consumer_offsets::{self, PartitionProgress},
        metric_partitions::{self, MetricPartitions},
    },
    rollup::{Rollup, RollupKey},
    schema::job_metrics,
};

fn counters_json<K: ToString>(map: &BTreeMap<K, i64>) -> serde_json::Value {
    serde_json::Value::Object(map.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect())
}

fn counters_from_json(value: &serde_json::Value) -> BTreeMap<String, i64> {
    value
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), v.as_i64().unwrap_or(0))).collect())
        .unwrap_or_default()
}

/// How a flush ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlushOutcome {
    Committed {
        /// Rollup rows upserted (new or added to).
        rows: usize,
        /// SQL statements the transaction ran (the benchmark reports them;
        /// creating a partition for a new bucket runs before it and is not
        /// counted).
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

/// [`flush_with`] for a one-off writer (a test, a tool) without a
/// partition cache: it asks the database once per partition the rows fall
/// in.
pub async fn flush(
    conn: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
    rollups: &[(RollupKey, Rollup)],
    progress: &[PartitionProgress],
) -> Result<FlushOutcome, StoreError> {
    flush_with(conn, &MetricPartitions::default(), group, topic, rollups, progress).await
}

/// Writes `rollups` and the partitions' next offsets in one transaction,
/// with four statements whatever the number of rows (lock the partitions,
/// read their offsets, upsert the rollups, upsert the offsets). Fenced
/// (nothing written) when a stored offset is not the one this consumer
/// expected.
///
/// Before the transaction, the `job_metrics` partitions of buckets that
/// `partitions` does not know are created (each in its own short
/// transaction; nothing when every bucket is known, the usual case). If a
/// partition it knew was dropped meanwhile (another process's retention,
/// and a late bucket past its age), the transaction fails having written
/// nothing; the granularities' knowledge is dropped, the partitions are
/// created again and the transaction runs once more, so no row is lost.
#[tracing::instrument(skip_all, fields(rows = rollups.len()))]
pub async fn flush_with(
    conn: &mut AsyncPgConnection,
    partitions: &MetricPartitions,
    group: &str,
    topic: &str,
    rollups: &[(RollupKey, Rollup)],
    progress: &[PartitionProgress],
) -> Result<FlushOutcome, StoreError> {
    // A flush's rows fall in a handful of buckets: each is looked up once.
    let buckets: Vec<(&str, DateTime<Utc>)> = rollups
        .iter()
        .map(|(key, _)| (key.granularity.as_str(), key.dt))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let created = partitions.ensure_for(conn, &buckets).await?;
    if created > 0 {
        tracing::debug!(calls = created, "asked for job_metrics partitions of new buckets");
    }
    match write_flush(conn, group, topic, rollups, progress).await {
        Err(err) if metric_partitions::is_missing_partition(&err) => {
            tracing::warn!(error = %err, "a known job_metrics partition is gone; creating it again");
            for (granularity, _) in &buckets {
                partitions.forget(granularity);
            }
            partitions.ensure_for(conn, &buckets).await?;
            write_flush(conn, group, topic, rollups, progress).await
        }
        other => other,
    }
}

/// The fenced transaction of [`flush_with`].
async fn write_flush(
    conn: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
    rollups: &[(RollupKey, Rollup)],
    progress: &[PartitionProgress],
) -> Result<FlushOutcome, StoreError> {
    let (group, topic) = (group.to_owned(), topic.to_owned());
    let mut columns = Columns::default();
    for (key, rollup) in rollups {
        columns.push(key, rollup);
    }
    let progress = progress.to_vec();
    let rows = rollups.len();
    conn.transaction(async move |conn| {
        let fenced = consumer_offsets::fence(conn, &group, &topic, &progress).await?;
        if !fenced.is_empty() {
            return Ok(FlushOutcome::Fenced { partitions: fenced });
        }
        // Lock, read and offsets upsert; the rollup upsert when rows exist.
        let mut statements = 3;
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
        consumer_offsets::store_next(conn, &group, &topic, &progress).await?;
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

/// What one retention pass removed of a granularity.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Retained {
    /// Partitions dropped whole (every row older than the age), oldest first.
    pub partitions_dropped: Vec<String>,
    /// Rows deleted one by one from the partition that straddles the
    /// cutoff (only when the age is shorter than one partition's span).
    pub rows_deleted: usize,
}

/// Removes the rows of `granularity` older than `keep` at `now`, by
/// dropping whole partitions: a partition goes once all of it is older
/// than the age, so a row is kept at least `keep` and at most `keep` plus
/// one partition's span (a day for widths under an hour, a month
/// otherwise). Only when `keep` is shorter than that span (e.g. `1m=12h`),
/// which would keep more than twice the age, are the older rows of the
/// straddling partition DELETEd as well.
#[tracing::instrument(skip_all, fields(granularity = %granularity))]
pub async fn apply_retention(
    conn: &mut AsyncPgConnection,
    partitions: &MetricPartitions,
    granularity: &str,
    keep: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<Retained, StoreError> {
    let Some(before) = chrono::Duration::from_std(keep)
        .ok()
        .and_then(|keep| now.checked_sub_signed(keep))
    else {
        // An age beyond any date: nothing is that old.
        return Ok(Retained::default());
    };
    let partitions_dropped = metric_partitions::drop_before(conn, granularity, before).await?;
    if !partitions_dropped.is_empty() {
        partitions.forget(granularity);
    }
    let rows_deleted = diesel::sql_query(
        "DELETE FROM job_metrics WHERE granularity = $1 AND dt < $2 \
         AND make_interval(secs => $3) < ('1 ' || monitor_metric_partition_unit($1))::interval",
    )
    .bind::<Text, _>(granularity)
    .bind::<Timestamptz, _>(before)
    .bind::<Double, _>(keep.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(Retained {
        partitions_dropped,
        rows_deleted,
    })
}

/// A stored rollup row: the [`RollupKey`] and [`Rollup`] fields as columns
/// (the counter maps as jsonb objects), read back with [`MetricRow::rollup`].
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = job_metrics, check_for_backend(diesel::pg::Pg))]
pub struct MetricRow {
    /// [`RollupKey::job_id`].
    pub job_id: Uuid,
    /// [`RollupKey::location`] ("" over all locations).
    pub location: String,
    /// [`RollupKey::granularity`].
    pub granularity: String,
    /// [`RollupKey::dt`], the bucket start.
    pub dt: DateTime<Utc>,
    /// [`Rollup::rt_min`].
    pub rt_min: Option<f64>,
    /// [`Rollup::rt_max`].
    pub rt_max: Option<f64>,
    /// [`Rollup::rt_sum`].
    pub rt_sum: f64,
    /// [`Rollup::rt_count`].
    pub rt_count: i64,
    /// [`Rollup::rt_histogram`] as `{"bucket": count}`.
    pub rt_histogram: serde_json::Value,
    /// [`Rollup::checks`].
    pub checks: i64,
    /// [`Rollup::passed`].
    pub passed: i64,
    /// [`Rollup::status`] as `{"200": count}` (the proof of concept's name).
    pub data: serde_json::Value,
    /// [`Rollup::errors`] as `{"CHECK_OUTCOME_TIMEOUT": count}`.
    pub errors: serde_json::Value,
    /// When a flush last wrote the row.
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
    consumer_offsets::delete_all(conn).await?;
    Ok(rows)
}
