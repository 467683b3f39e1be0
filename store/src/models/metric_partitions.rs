//! The partitions of `job_metrics` (migration 000010): one list partition
//! per granularity, split into time ranges of a UTC day (widths under an
//! hour) or a UTC month (the rest). Which span a granularity gets, the
//! partition names and the creation lock live in SQL
//! (`monitor_ensure_metric_partitions` and its neighbours); this module
//! calls them and keeps [`MetricPartitions`], what one process knows exists,
//! so a flush only asks the database about a bucket no earlier flush
//! covered.
//!
//! Partitions are created by whoever needs them first: the aggregator's
//! flush for a bucket it has not seen (before its transaction), the
//! retention loop ahead of time (this and the next two spans), the
//! migration for the rows it moved. Creation from several aggregators at
//! once is safe: the SQL side serialises it with an advisory lock and
//! treats a partition that appeared meanwhile as created.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Mutex,
};

use chrono::{DateTime, Utc};
use diesel::{
    QueryableByName,
    result::{DatabaseErrorKind, Error as DieselError},
    sql_types::{Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::StoreError;

/// One time-range partition of a granularity: rows with `from <= dt < to`.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct MetricPartition {
    /// Table name, e.g. `job_metrics_1m_20261202`.
    #[diesel(sql_type = Text, column_name = partition_name)]
    pub name: String,
    /// First instant it holds.
    #[diesel(sql_type = Timestamptz, column_name = range_from)]
    pub from: DateTime<Utc>,
    /// First instant it no longer holds.
    #[diesel(sql_type = Timestamptz, column_name = range_to)]
    pub to: DateTime<Utc>,
}

/// The partitions this process knows exist, per granularity (by range
/// start). Shared by a process's flushes and its retention loop. It can be
/// stale only by knowing too much (another process dropped a partition): a
/// flush that then fails for a missing partition forgets the granularity
/// and creates it again ([`is_missing_partition`]).
#[derive(Debug, Default)]
pub struct MetricPartitions {
    /// Per granularity label, the known ranges as start -> end.
    known: Mutex<HashMap<String, Ranges>>,
}

/// Partition ranges `[start, end)` keyed by start.
type Ranges = BTreeMap<DateTime<Utc>, DateTime<Utc>>;

impl MetricPartitions {
    /// Whether a known partition of `granularity` holds `dt`.
    pub fn covers(&self, granularity: &str, dt: DateTime<Utc>) -> bool {
        let known = self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        known
            .get(granularity)
            .and_then(|ranges| ranges.range(..=dt).next_back())
            .is_some_and(|(_, to)| dt < *to)
    }

    /// Records partitions the database reported as existing.
    pub fn learn(&self, granularity: &str, partitions: &[MetricPartition]) {
        let mut known = self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let ranges = known.entry(granularity.to_owned()).or_default();
        for partition in partitions {
            ranges.insert(partition.from, partition.to);
        }
    }

    /// Forgets every partition of `granularity` (some were dropped).
    pub fn forget(&self, granularity: &str) {
        let mut known = self.known.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        known.remove(granularity);
    }

    /// Makes sure a partition holds each `(granularity, dt)`, asking the
    /// database only for those no known partition covers (one call per
    /// missing partition, in its own short transaction: creating a
    /// partition locks its parent, which must not last a whole flush).
    /// Returns how many calls it made. A granularity that is not
    /// `<N><s|m|h|d>` is refused by the database before any name is built.
    pub async fn ensure_for(
        &self,
        conn: &mut AsyncPgConnection,
        buckets: &[(&str, DateTime<Utc>)],
    ) -> Result<usize, StoreError> {
        let mut calls = 0;
        for &(granularity, dt) in buckets {
            if self.covers(granularity, dt) {
                continue;
            }
            let created = ensure(conn, granularity, dt, dt).await?;
            self.learn(granularity, &created);
            calls += 1;
        }
        Ok(calls)
    }

    /// Creates the partition of `granularity` holding `now` and the next
    /// `spans` ones (days or months), so flushes rarely create any.
    pub async fn ensure_ahead(
        &self,
        conn: &mut AsyncPgConnection,
        granularity: &str,
        now: DateTime<Utc>,
        spans: i32,
    ) -> Result<Vec<MetricPartition>, StoreError> {
        let partitions: Vec<MetricPartition> = diesel::sql_query(
            "SELECT * FROM monitor_ensure_metric_partitions($1, $2, \
             (($2 AT TIME ZONE 'UTC') + $3 * ('1 ' || monitor_metric_partition_unit($1))::interval) AT TIME ZONE 'UTC')",
        )
        .bind::<Text, _>(granularity)
        .bind::<Timestamptz, _>(now)
        .bind::<diesel::sql_types::Integer, _>(spans)
        .load(conn)
        .await?;
        self.learn(granularity, &partitions);
        Ok(partitions)
    }
}

/// Creates what is missing of the partitions of `granularity` holding the
/// instants `from..=to` and returns all of them, oldest first.
pub async fn ensure(
    conn: &mut AsyncPgConnection,
    granularity: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<MetricPartition>, StoreError> {
    Ok(
        diesel::sql_query("SELECT * FROM monitor_ensure_metric_partitions($1, $2, $3)")
            .bind::<Text, _>(granularity)
            .bind::<Timestamptz, _>(from)
            .bind::<Timestamptz, _>(to)
            .load(conn)
            .await?,
    )
}

/// The time-range partitions of `granularity`, oldest first.
pub async fn list(conn: &mut AsyncPgConnection, granularity: &str) -> Result<Vec<MetricPartition>, StoreError> {
    Ok(diesel::sql_query("SELECT * FROM monitor_metric_partitions($1)")
        .bind::<Text, _>(granularity)
        .load(conn)
        .await?)
}

#[derive(QueryableByName)]
struct Dropped {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Detaches and drops the partitions of `granularity` that lie entirely
/// before `before`; returns their names, oldest first.
pub async fn drop_before(
    conn: &mut AsyncPgConnection,
    granularity: &str,
    before: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let dropped: Vec<Dropped> = diesel::sql_query("SELECT name FROM monitor_drop_metric_partitions($1, $2) AS name")
        .bind::<Text, _>(granularity)
        .bind::<Timestamptz, _>(before)
        .load(conn)
        .await?;
    Ok(dropped.into_iter().map(|d| d.name).collect())
}

/// Whether `err` is PostgreSQL refusing a row for which no partition
/// exists (check_violation, "no partition of relation ... found for row").
pub fn is_missing_partition(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::Database(DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, info))
            if info.message().starts_with("no partition of relation")
    )
}

/// Whether `err` is the database refusing a granularity label that is not
/// `<N><s|m|h|d>` (invalid_parameter_value from the partition functions).
pub fn is_invalid_granularity(err: &StoreError) -> bool {
    matches!(
        err,
        StoreError::Database(DieselError::DatabaseError(_, info))
            if info.message().starts_with("invalid granularity")
    )
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn the_cache_covers_half_open_ranges_per_granularity() {
        let cache = MetricPartitions::default();
        assert!(!cache.covers("1m", day(2)));
        cache.learn(
            "1m",
            &[MetricPartition {
                name: "job_metrics_1m_20261202".into(),
                from: day(2),
                to: day(3),
            }],
        );
        assert!(cache.covers("1m", day(2)));
        assert!(cache.covers("1m", day(3) - chrono::TimeDelta::microseconds(1)));
        assert!(!cache.covers("1m", day(3)), "the range ends before its upper bound");
        assert!(!cache.covers("1m", day(1)));
        assert!(!cache.covers("5m", day(2)), "per granularity");
        cache.forget("1m");
        assert!(!cache.covers("1m", day(2)));
    }
}
