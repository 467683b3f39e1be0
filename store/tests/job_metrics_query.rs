//! The read path behind QueryMetrics and the reset, against a real
//! PostgreSQL: which rows `query` returns, that a row reads back as the
//! rollup that was written, and what `delete_all` removes.

use chrono::{DateTime, TimeDelta, Utc};
use monitor_store::{
    models::{
        consumer_offsets::{self, PartitionProgress},
        job_metrics::{self, FlushOutcome},
        metric_partitions::MetricPartitions,
    },
    rollup::{Rollup, RollupKey},
    testing::TestDb,
};
use uuid::Uuid;

const GROUP: &str = "store-tests";
const TOPIC: &str = "monitor.checks";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn key(job_id: Uuid, location: &str, granularity: &str, dt: DateTime<Utc>) -> RollupKey {
    RollupKey {
        job_id,
        location: location.into(),
        granularity: granularity.into(),
        dt,
    }
}

fn sample(seed: u32) -> Rollup {
    let mut rollup = Rollup::default();
    for i in 0..20 {
        let ms = f64::from(seed * 10 + i) + 0.25;
        let passed = i % 7 != 0;
        let error = (!passed).then_some("CHECK_OUTCOME_TIMEOUT");
        rollup.add(Some(ms), passed, Some(if passed { 200 } else { 503 }), error);
    }
    rollup.add(None, false, None, Some("CHECK_OUTCOME_DNS"));
    rollup
}

#[tokio::test]
async fn query_reads_a_half_open_range_of_one_series() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let (job, other_job) = (Uuid::now_v7(), Uuid::now_v7());
    let start = at("2026-11-27T10:00:00Z");
    let minute = |n: i64| start + TimeDelta::minutes(n);
    let rows = vec![
        (key(job, "", "1m", minute(-1)), sample(1)),
        (key(job, "", "1m", minute(0)), sample(2)),
        (key(job, "", "1m", minute(1)), sample(3)),
        (key(job, "", "1m", minute(2)), sample(4)),
        (key(job, "eu-west", "1m", minute(1)), sample(5)),
        (key(job, "", "1h", minute(0)), sample(6)),
        (key(other_job, "", "1m", minute(1)), sample(7)),
    ];
    let progress = [PartitionProgress {
        partition: 0,
        expected: None,
        next_offset: 1,
    }];
    let outcome = job_metrics::flush(&mut conn, GROUP, TOPIC, &rows, &progress)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FlushOutcome::Committed {
            rows: rows.len(),
            statements: 4
        }
    );

    let found = job_metrics::query(&mut conn, job, "", "1m", minute(0), minute(2))
        .await
        .unwrap();
    let dts: Vec<_> = found.iter().map(|r| r.dt).collect();
    assert_eq!(
        dts,
        [minute(0), minute(1)],
        "from is inclusive, to exclusive, oldest first"
    );
    assert_eq!(found[0].rollup(), sample(2), "a row reads back as the rollup written");
    assert_eq!(found[1].rollup(), sample(3));
    let located = job_metrics::query(&mut conn, job, "eu-west", "1m", minute(0), minute(2))
        .await
        .unwrap();
    assert_eq!(located.len(), 1);
    assert_eq!(located[0].rollup(), sample(5));
    let hours = job_metrics::query(&mut conn, job, "", "1h", minute(0), minute(60))
        .await
        .unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].rollup(), sample(6));
    let none = job_metrics::query(&mut conn, job, "", "5m", minute(-60), minute(60))
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn delete_all_removes_rollups_and_offsets() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let job = Uuid::now_v7();
    let dt = at("2026-11-27T10:00:00Z");
    let rows = vec![(key(job, "", "1m", dt), sample(1)), (key(job, "", "1h", dt), sample(1))];
    let progress = [
        PartitionProgress {
            partition: 0,
            expected: None,
            next_offset: 5,
        },
        PartitionProgress {
            partition: 1,
            expected: None,
            next_offset: 9,
        },
    ];
    job_metrics::flush(&mut conn, GROUP, TOPIC, &rows, &progress)
        .await
        .unwrap();
    assert_eq!(
        consumer_offsets::stored_offsets(&mut conn, GROUP, TOPIC, &[0, 1])
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(job_metrics::delete_all(&mut conn).await.unwrap(), 2);
    assert!(
        consumer_offsets::stored_offsets(&mut conn, GROUP, TOPIC, &[0, 1])
            .await
            .unwrap()
            .is_empty()
    );
    let left = job_metrics::query(&mut conn, job, "", "1m", dt, dt + TimeDelta::days(1))
        .await
        .unwrap();
    assert!(left.is_empty());
    assert_eq!(
        job_metrics::delete_all(&mut conn).await.unwrap(),
        0,
        "nothing left to delete"
    );
}

#[tokio::test]
async fn retention_deletes_only_old_rows_of_its_granularity() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let job = Uuid::now_v7();
    let rows = vec![
        (key(job, "", "1m", at("2026-11-01T00:00:00Z")), sample(1)),
        (key(job, "", "1m", at("2026-11-27T09:59:00Z")), sample(2)),
        (key(job, "", "1h", at("2026-11-01T00:00:00Z")), sample(3)),
    ];
    let progress = [PartitionProgress {
        partition: 0,
        expected: None,
        next_offset: 3,
    }];
    job_metrics::flush(&mut conn, GROUP, TOPIC, &rows, &progress)
        .await
        .unwrap();
    let partitions = MetricPartitions::default();
    let keep = std::time::Duration::from_secs(7 * 86_400);
    let retained = job_metrics::apply_retention(&mut conn, &partitions, "1m", keep, at("2026-11-27T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        retained,
        job_metrics::Retained {
            partitions_dropped: vec!["job_metrics_1m_20261101".into()],
            rows_deleted: 0
        }
    );
    let left_minutes = job_metrics::query(
        &mut conn,
        job,
        "",
        "1m",
        at("2026-01-01T00:00:00Z"),
        at("2027-01-01T00:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(left_minutes.len(), 1);
    let hours = job_metrics::query(
        &mut conn,
        job,
        "",
        "1h",
        at("2026-01-01T00:00:00Z"),
        at("2027-01-01T00:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(hours.len(), 1, "other granularities keep their rows");
}

/// The job's minute rows (over all locations) of 2026-11-27.
async fn minutes_of_the_day(
    conn: &mut monitor_store::diesel_async::AsyncPgConnection,
    job: Uuid,
) -> Vec<job_metrics::MetricRow> {
    job_metrics::query(
        conn,
        job,
        "",
        "1m",
        at("2026-11-27T00:00:00Z"),
        at("2026-11-28T00:00:00Z"),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_flush_from_a_stale_reader_is_fenced_and_writes_nothing() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let job = Uuid::now_v7();
    let row = vec![(key(job, "", "1m", at("2026-11-27T10:00:00Z")), sample(1))];
    let first = [PartitionProgress {
        partition: 2,
        expected: None,
        next_offset: 10,
    }];
    assert_eq!(
        job_metrics::flush(&mut conn, GROUP, TOPIC, &row, &first).await.unwrap(),
        FlushOutcome::Committed { rows: 1, statements: 4 }
    );
    // A second reader that also started from "nothing stored" is fenced.
    let stale = [PartitionProgress {
        partition: 2,
        expected: None,
        next_offset: 12,
    }];
    assert_eq!(
        job_metrics::flush(&mut conn, GROUP, TOPIC, &row, &stale).await.unwrap(),
        FlushOutcome::Fenced { partitions: vec![2] }
    );
    let rows = minutes_of_the_day(&mut conn, job).await;
    assert_eq!(rows[0].checks, sample(1).checks, "the fenced flush added nothing");
    let stored = consumer_offsets::stored_offsets(&mut conn, GROUP, TOPIC, &[2])
        .await
        .unwrap();
    assert_eq!(stored[&2], 10);
    // Continuing from the stored offset works and adds up.
    let next = [PartitionProgress {
        partition: 2,
        expected: Some(10),
        next_offset: 15,
    }];
    job_metrics::flush(&mut conn, GROUP, TOPIC, &row, &next).await.unwrap();
    let rows = minutes_of_the_day(&mut conn, job).await;
    assert_eq!(rows[0].checks, 2 * sample(1).checks);
    assert_eq!(rows[0].rt_min, sample(1).rt_min, "LEAST keeps the minimum");
}

#[tokio::test]
async fn two_first_flushes_of_a_partition_at_once_count_it_once() {
    use diesel::{dsl::sql, sql_types::BigInt};
    use diesel_async::RunQueryDsl;

    let db = TestDb::new().await;
    let pool = db.pool();
    let job = Uuid::now_v7();
    let row = vec![(key(job, "", "1m", at("2026-11-27T10:00:00Z")), sample(1))];
    // Hold both flushes inside their transactions: a third session locks
    // the rollup table, so each stops at its upsert (or, when the partition
    // lock works, the second stops before it even reads the offsets).
    let mut blocker = pool.get().await.unwrap();
    diesel::sql_query("BEGIN").execute(&mut blocker).await.unwrap();
    diesel::sql_query("LOCK TABLE job_metrics IN EXCLUSIVE MODE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let flush = |next_offset: i64| {
        let (pool, row) = (pool.clone(), row.clone());
        tokio::spawn(async move {
            let mut conn = pool.get().await.unwrap();
            let progress = [PartitionProgress {
                partition: 5,
                expected: None,
                next_offset,
            }];
            job_metrics::flush(&mut conn, GROUP, TOPIC, &row, &progress)
                .await
                .unwrap()
        })
    };
    let (first, second) = (flush(7), flush(9));
    let waiting = || {
        diesel::select(sql::<BigInt>(
            "(SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock')",
        ))
    };
    // Asked outside the blocker's transaction, whose view of the activity
    // statistics is a snapshot.
    let mut watcher = pool.get().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while waiting().get_result::<i64>(&mut watcher).await.unwrap() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "both flushes should be waiting on a lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    diesel::sql_query("COMMIT").execute(&mut blocker).await.unwrap();
    let outcomes = [first.await.unwrap(), second.await.unwrap()];
    let committed = outcomes
        .iter()
        .filter(|o| matches!(o, FlushOutcome::Committed { .. }))
        .count();
    assert_eq!(committed, 1, "exactly one first flush commits: {outcomes:?}");
    assert!(
        outcomes.contains(&FlushOutcome::Fenced { partitions: vec![5] }),
        "{outcomes:?}"
    );
    let rows = minutes_of_the_day(&mut watcher, job).await;
    assert_eq!(rows[0].checks, sample(1).checks, "the messages were counted once");
}
