//! The partitioned `job_metrics` (migration 000010) against a real
//! PostgreSQL: the migration keeps every row, flushes create the partitions
//! of new granularities and new days, concurrent creation does not fail,
//! retention drops whole partitions (and deletes in the straddling one only
//! when the age is shorter than a partition), and a granularity that is not
//! `<N><s|m|h|d>` never reaches a table name.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use diesel::{
    QueryableByName,
    sql_types::{BigInt, Text},
};
use monitor_store::{
    diesel_async::{AsyncPgConnection, RunQueryDsl},
    migrations,
    models::{
        consumer_offsets::PartitionProgress,
        job_metrics::{self, FlushOutcome, Retained},
        metric_partitions::{self, MetricPartitions},
    },
    rollup::{Rollup, RollupKey},
    testing::TestDb,
};
use uuid::Uuid;

const GROUP: &str = "partition-tests";
const TOPIC: &str = "monitor.checks";
/// The last migration before job_metrics was partitioned.
const BEFORE_PARTITIONS: &str = "2026-12-02-000009_notification_kinds_grouping";

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

fn row(job_id: Uuid, granularity: &str, dt: DateTime<Utc>) -> (RollupKey, Rollup) {
    let mut rollup = Rollup::default();
    rollup.add(Some(12.5), true, Some(200), None);
    rollup.add(Some(40.0), false, Some(503), Some("CHECK_OUTCOME_HTTP_STATUS"));
    (
        RollupKey {
            job_id,
            location: String::new(),
            granularity: granularity.into(),
            dt,
        },
        rollup,
    )
}

/// A flush of `rows` by a consumer that owns partition 0 and stored
/// nothing yet (`expected: None` is only right for the first flush, so each
/// test flushes once per `next`).
async fn flush(
    conn: &mut AsyncPgConnection,
    partitions: &MetricPartitions,
    rows: &[(RollupKey, Rollup)],
    expected: Option<i64>,
    next: i64,
) -> FlushOutcome {
    let progress = [PartitionProgress {
        partition: 0,
        expected,
        next_offset: next,
    }];
    job_metrics::flush_with(conn, partitions, GROUP, TOPIC, rows, &progress)
        .await
        .unwrap()
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Digest {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Text)]
    digest: String,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).await.unwrap().n
}

/// Row count and an md5 over every column of every row, in key order.
async fn digest(conn: &mut AsyncPgConnection) -> (i64, String) {
    let d: Digest = diesel::sql_query(
        "SELECT count(*) AS n, coalesce(md5(string_agg(m::text, '|' ORDER BY job_id, location, granularity, dt)), '') \
         AS digest FROM job_metrics m",
    )
    .get_result(conn)
    .await
    .unwrap();
    (d.n, d.digest)
}

fn names(partitions: &[metric_partitions::MetricPartition]) -> Vec<&str> {
    partitions.iter().map(|p| p.name.as_str()).collect()
}

#[tokio::test]
async fn the_migration_keeps_every_row_and_partitions_them() {
    let db = TestDb::at_migration(BEFORE_PARTITIONS).await;
    let mut conn = db.pool().get().await.unwrap();
    // Rows in the old, plain shape: minutes over three days, 5 minutes over
    // two, hours over three months, days over a year, in two locations,
    // with counters and a NULL rt_min.
    diesel::sql_query(
        "INSERT INTO job_metrics (job_id, location, granularity, dt, rt_min, rt_max, rt_sum, rt_count, \
                                  rt_histogram, checks, passed, data, errors, updated_at) \
         SELECT md5(j::text)::uuid, loc, g, t, CASE WHEN j % 3 = 0 THEN NULL ELSE j END, j * 2, j * 10, j, \
                jsonb_build_object('17', j), j + 1, j, jsonb_build_object('200', j), '{}'::jsonb, \
                '2026-11-30T00:00:00Z' \
         FROM generate_series(1, 3) j, unnest(ARRAY['', 'eu-west']) loc, \
              (SELECT '1m' AS g, generate_series('2026-11-28T00:00Z'::timestamptz, '2026-11-30T23:59Z', '37 minutes') AS t \
               UNION ALL SELECT '5m', generate_series('2026-11-29T00:00Z'::timestamptz, '2026-11-30T23:55Z', '55 minutes') \
               UNION ALL SELECT '1h', generate_series('2026-09-01T00:00Z'::timestamptz, '2026-11-30T23:00Z', '7 hours') \
               UNION ALL SELECT '1d', generate_series('2025-12-01T00:00Z'::timestamptz, '2026-11-30T00:00Z', '1 day')) AS series",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let before = digest(&mut conn).await;
    assert!(before.0 > 1_000, "{before:?}");
    drop(conn);

    let ran = migrations::run_pending(&db.url).await.unwrap();
    assert_eq!(ran.len(), 1, "{ran:?}");
    let mut conn = db.pool().get().await.unwrap();
    assert_eq!(digest(&mut conn).await, before, "every row, every column");
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM pg_class WHERE relname = 'job_metrics' AND relkind = 'p'"
        )
        .await,
        1,
        "job_metrics is partitioned"
    );
    let minutes = metric_partitions::list(&mut conn, "1m").await.unwrap();
    let minute_names = names(&minutes);
    for day in [
        "job_metrics_1m_20261128",
        "job_metrics_1m_20261129",
        "job_metrics_1m_20261130",
    ] {
        assert!(minute_names.contains(&day), "{minute_names:?}");
    }
    assert_eq!(minutes[0].from, at("2026-11-28T00:00:00Z"));
    assert_eq!(minutes[0].to, at("2026-11-29T00:00:00Z"));
    let hours = metric_partitions::list(&mut conn, "1h").await.unwrap();
    assert_eq!(
        names(&hours)[..3],
        [
            "job_metrics_1h_202609",
            "job_metrics_1h_202610",
            "job_metrics_1h_202611"
        ]
    );
    assert_eq!(hours[1].to, at("2026-11-01T00:00:00Z"), "months end on the first");
    let days = metric_partitions::list(&mut conn, "1d").await.unwrap();
    assert_eq!(days[0].name, "job_metrics_1d_202512", "a year of day rows, monthly");
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM ONLY job_metrics_1m_20261129").await,
        2 * 3 * 39,
        "each row sits in its day's partition (39 times 37 minutes start on 2026-11-29)"
    );
    // The aggregator's upsert adds to a moved row, as before.
    let job = diesel::sql_query("SELECT md5('1')::uuid::text AS digest, 0::int8 AS n")
        .get_result::<Digest>(&mut conn)
        .await
        .unwrap()
        .digest
        .parse::<Uuid>()
        .unwrap();
    let partitions = MetricPartitions::default();
    flush(
        &mut conn,
        &partitions,
        &[row(job, "1d", at("2026-11-30T00:00:00Z"))],
        None,
        1,
    )
    .await;
    let stored = job_metrics::query(
        &mut conn,
        job,
        "",
        "1d",
        at("2026-11-30T00:00:00Z"),
        at("2026-12-01T00:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].checks, 2 + 2, "1 + 1 checks moved, 2 added");
}

#[tokio::test]
async fn flushes_create_the_partitions_of_new_granularities_and_days_once() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let partitions = MetricPartitions::default();
    let job = Uuid::now_v7();
    assert!(metric_partitions::list(&mut conn, "5m").await.unwrap().is_empty());

    let first = [
        row(job, "5m", at("2026-12-02T10:05:00Z")),
        row(job, "5m", at("2026-12-02T23:55:00Z")),
        row(job, "1h", at("2026-12-02T10:00:00Z")),
    ];
    assert_eq!(
        flush(&mut conn, &partitions, &first, None, 3).await,
        FlushOutcome::Committed { rows: 3, statements: 4 }
    );
    assert_eq!(
        names(&metric_partitions::list(&mut conn, "5m").await.unwrap()),
        ["job_metrics_5m_20261202"]
    );
    assert_eq!(
        names(&metric_partitions::list(&mut conn, "1h").await.unwrap()),
        ["job_metrics_1h_202612"]
    );
    assert!(partitions.covers("5m", at("2026-12-02T00:00:00Z")));

    // Known buckets ask nothing; a new day creates its partition.
    let second = [row(job, "5m", at("2026-12-02T10:05:00Z"))];
    let asked = partitions
        .ensure_for(&mut conn, &[("5m", second[0].0.dt)])
        .await
        .unwrap();
    assert_eq!(asked, 0, "every bucket is known");
    let third = [
        row(job, "5m", at("2026-12-03T00:00:00Z")),
        row(job, "5m", at("2026-12-02T10:05:00Z")),
    ];
    flush(&mut conn, &partitions, &third, Some(3), 5).await;
    assert_eq!(
        names(&metric_partitions::list(&mut conn, "5m").await.unwrap()),
        ["job_metrics_5m_20261202", "job_metrics_5m_20261203"]
    );
    let rows = job_metrics::query(
        &mut conn,
        job,
        "",
        "5m",
        at("2026-12-01T00:00:00Z"),
        at("2026-12-04T00:00:00Z"),
    )
    .await
    .unwrap();
    let checks: Vec<i64> = rows.iter().map(|r| r.checks).collect();
    assert_eq!(checks, [4, 2, 2], "10:05 written twice, 23:55 and the new day once");
}

#[tokio::test]
async fn a_partition_dropped_behind_a_cache_is_created_again_and_the_row_kept() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let mut conn = pool.get().await.unwrap();
    let partitions = MetricPartitions::default();
    let job = Uuid::now_v7();
    let old = at("2026-10-01T12:00:00Z");
    flush(&mut conn, &partitions, &[row(job, "1m", old)], None, 1).await;
    // Another aggregator's retention drops the partition this one knows.
    let mut other = pool.get().await.unwrap();
    let dropped = metric_partitions::drop_before(&mut other, "1m", at("2026-11-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(dropped, ["job_metrics_1m_20261001"]);
    assert!(partitions.covers("1m", old), "still believed to exist");

    // A late result for that bucket still lands.
    let outcome = flush(&mut conn, &partitions, &[row(job, "1m", old)], Some(1), 2).await;
    assert_eq!(outcome, FlushOutcome::Committed { rows: 1, statements: 4 });
    let rows = job_metrics::query(&mut conn, job, "", "1m", old, old + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].checks, 2,
        "only the late row: the dropped one was past retention"
    );
}

#[tokio::test]
async fn concurrent_creation_of_the_same_partitions_never_fails() {
    let db = TestDb::new().await;
    let pool = monitor_store::connect(&db.url, 8).unwrap();
    let from = at("2026-12-02T00:00:00Z");
    let to = from + TimeDelta::days(20);
    // Eight sessions create the same new granularity's 21 days at once,
    // in two orders of granularities, each on its own connection.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.get().await.unwrap();
            let mut made = Vec::new();
            let order = if i % 2 == 0 { ["2m", "3h"] } else { ["3h", "2m"] };
            for granularity in order {
                let partitions = metric_partitions::ensure(&mut conn, granularity, from, to)
                    .await
                    .unwrap();
                made.push((granularity, partitions.len()));
            }
            made.sort();
            made
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), [("2m", 21), ("3h", 1)]);
    }
    let mut conn = pool.get().await.unwrap();
    assert_eq!(metric_partitions::list(&mut conn, "2m").await.unwrap().len(), 21);
    assert_eq!(
        names(&metric_partitions::list(&mut conn, "3h").await.unwrap()),
        ["job_metrics_3h_202612"]
    );
}

#[tokio::test]
async fn the_retention_loop_creates_partitions_ahead() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let partitions = MetricPartitions::default();
    let now = at("2026-12-31T23:30:00Z");
    let minutes = partitions.ensure_ahead(&mut conn, "1m", now, 2).await.unwrap();
    assert_eq!(
        names(&minutes),
        [
            "job_metrics_1m_20261231",
            "job_metrics_1m_20270101",
            "job_metrics_1m_20270102"
        ]
    );
    let hours = partitions.ensure_ahead(&mut conn, "1h", now, 2).await.unwrap();
    assert_eq!(
        names(&hours),
        [
            "job_metrics_1h_202612",
            "job_metrics_1h_202701",
            "job_metrics_1h_202702"
        ]
    );
    assert!(partitions.covers("1h", at("2027-02-28T23:00:00Z")));
    assert!(!partitions.covers("1h", at("2027-03-01T00:00:00Z")));
}

/// One row at 03:00, 09:00 and 15:00 of each day from `first` for `days` days.
fn three_a_day(job: Uuid, granularity: &str, first: DateTime<Utc>, days: i64) -> Vec<(RollupKey, Rollup)> {
    (0..days)
        .flat_map(|d| [3, 9, 15].map(|h| first + TimeDelta::days(d) + TimeDelta::hours(h)))
        .map(|dt| row(job, granularity, dt))
        .collect()
}

#[tokio::test]
async fn retention_drops_whole_partitions_and_keeps_the_straddling_one() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let partitions = MetricPartitions::default();
    let job = Uuid::now_v7();
    // Minute rows on 2026-11-10 .. 2026-12-02; hour rows on the 15th of
    // each month from 2025-06 to 2026-12.
    let mut rows = three_a_day(job, "1m", at("2026-11-10T00:00:00Z"), 23);
    let months: Vec<DateTime<Utc>> = (0..19)
        .map(|m| {
            let (y, mo) = (2025 + (5 + m) / 12, (5 + m) % 12 + 1);
            at(&format!("{y}-{mo:02}-15T12:00:00Z"))
        })
        .collect();
    rows.extend(months.iter().map(|&dt| row(job, "1h", dt)));
    flush(&mut conn, &partitions, &rows, None, 1).await;
    let now = at("2026-12-02T12:00:00Z");

    // 1m=14d: the cutoff is 2026-11-18T12:00; the days up to 11-17 go whole.
    let minutes = job_metrics::apply_retention(&mut conn, &partitions, "1m", Duration::from_secs(14 * 86_400), now)
        .await
        .unwrap();
    let expected: Vec<String> = (10..18).map(|d| format!("job_metrics_1m_202611{d}")).collect();
    assert_eq!(
        minutes,
        Retained {
            partitions_dropped: expected,
            rows_deleted: 0
        }
    );
    let left = job_metrics::query(
        &mut conn,
        job,
        "",
        "1m",
        at("2026-01-01T00:00:00Z"),
        at("2027-01-01T00:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(left.len(), (23 - 8) * 3, "three rows of each day from 11-18 on");
    assert_eq!(
        left[0].dt,
        at("2026-11-18T03:00:00Z"),
        "the straddling day is kept whole, older rows too: at most a day past the age"
    );
    assert!(
        !partitions.covers("1m", at("2026-11-10T03:00:00Z")),
        "the cache forgot them"
    );

    // 1h=400d: the cutoff is 2025-10-28T12:00; June to September 2025 go.
    let hours = job_metrics::apply_retention(&mut conn, &partitions, "1h", Duration::from_secs(400 * 86_400), now)
        .await
        .unwrap();
    assert_eq!(
        hours.partitions_dropped,
        [
            "job_metrics_1h_202506",
            "job_metrics_1h_202507",
            "job_metrics_1h_202508",
            "job_metrics_1h_202509"
        ]
    );
    assert_eq!(hours.rows_deleted, 0);
    let left = job_metrics::query(
        &mut conn,
        job,
        "",
        "1h",
        at("2020-01-01T00:00:00Z"),
        at("2027-01-01T00:00:00Z"),
    )
    .await
    .unwrap();
    assert_eq!(left.len(), 19 - 4);
    assert_eq!(left[0].dt, at("2025-10-15T12:00:00Z"), "October straddles: kept");

    // A second pass finds nothing more.
    let again = job_metrics::apply_retention(&mut conn, &partitions, "1h", Duration::from_secs(400 * 86_400), now)
        .await
        .unwrap();
    assert_eq!(again, Retained::default());
}

#[tokio::test]
async fn an_age_shorter_than_a_partition_deletes_in_the_straddling_one() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let partitions = MetricPartitions::default();
    let job = Uuid::now_v7();
    flush(
        &mut conn,
        &partitions,
        &three_a_day(job, "1m", at("2026-11-30T00:00:00Z"), 3),
        None,
        1,
    )
    .await;
    // 1m=12h at 18:00: the cutoff is 2026-12-02T06:00.
    let now = at("2026-12-02T18:00:00Z");
    let retained = job_metrics::apply_retention(&mut conn, &partitions, "1m", Duration::from_secs(12 * 3_600), now)
        .await
        .unwrap();
    assert_eq!(
        retained,
        Retained {
            partitions_dropped: vec!["job_metrics_1m_20261130".into(), "job_metrics_1m_20261201".into()],
            rows_deleted: 1,
        },
        "03:00 of the straddling day is deleted"
    );
    let left = job_metrics::query(
        &mut conn,
        job,
        "",
        "1m",
        at("2026-11-01T00:00:00Z"),
        at("2027-01-01T00:00:00Z"),
    )
    .await
    .unwrap();
    let dts: Vec<_> = left.iter().map(|r| r.dt).collect();
    assert_eq!(dts, [at("2026-12-02T09:00:00Z"), at("2026-12-02T15:00:00Z")]);
}

#[tokio::test]
async fn a_granularity_that_is_not_a_width_never_reaches_a_table_name() {
    let db = TestDb::new().await;
    let mut conn = db.pool().get().await.unwrap();
    let partitions = MetricPartitions::default();
    let dt = at("2026-12-02T10:00:00Z");
    let tables = "SELECT count(*) AS n FROM pg_class WHERE relname LIKE 'job_metrics%'";
    let before = count(&mut conn, tables).await;
    for bad in [
        "1m; DROP TABLE jobs; --",
        "1m\"",
        "1M",
        "01m",
        "0m",
        "m",
        "",
        "1w",
        "1m ",
        "12345678901s",
        "1m_20261202",
    ] {
        let err = metric_partitions::ensure(&mut conn, bad, dt, dt).await.unwrap_err();
        assert!(metric_partitions::is_invalid_granularity(&err), "{bad:?}: {err}");
        let err = metric_partitions::drop_before(&mut conn, bad, dt).await.unwrap_err();
        assert!(metric_partitions::is_invalid_granularity(&err), "{bad:?}: {err}");
        let err = job_metrics::apply_retention(&mut conn, &partitions, bad, Duration::from_secs(60), dt)
            .await
            .unwrap_err();
        assert!(metric_partitions::is_invalid_granularity(&err), "{bad:?}: {err}");
        let progress = [PartitionProgress {
            partition: 0,
            expected: None,
            next_offset: 1,
        }];
        let err = job_metrics::flush_with(
            &mut conn,
            &partitions,
            GROUP,
            TOPIC,
            &[row(Uuid::now_v7(), bad, dt)],
            &progress,
        )
        .await
        .unwrap_err();
        assert!(metric_partitions::is_invalid_granularity(&err), "{bad:?}: {err}");
    }
    assert_eq!(
        count(&mut conn, tables).await,
        before,
        "no table was created or dropped"
    );
    assert_eq!(count(&mut conn, "SELECT count(*) AS n FROM job_metrics").await, 0);
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM consumer_offsets").await,
        0,
        "no offset stored"
    );
    assert_eq!(
        count(&mut conn, "SELECT count(*) AS n FROM jobs").await,
        0,
        "jobs still exists"
    );
    // A NULL granularity is refused the same way.
    let err = diesel::sql_query("SELECT * FROM monitor_ensure_metric_partitions(NULL, now(), now())")
        .execute(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("invalid granularity NULL"), "{err}");
}
