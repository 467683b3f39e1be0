//! Rollup storage before and after partitioning `job_metrics` (issue 16).
//! Fills a database at the last migration before partitioning (the plain
//! table) with J jobs × `--minute-days` of minute rows and `--hour-days` of
//! hour rows (generate_series INSERTs, ending at today's UTC midnight),
//! measures, migrates it (the real migration, timed) and measures again:
//!
//! - flush throughput: the aggregator's `job_metrics::flush_with` over
//!   `--flushes` batches of one new minute row and the current hour and day
//!   rows per job (3 × J rows per flush, offsets fenced as in production);
//! - QueryMetrics' `job_metrics::query` for one job over 1 h of minute rows,
//!   7 d and 365 d of hour rows, p50/p99 over `--reads` random jobs;
//! - the job list's summary (`check_totals` over 24 h and
//!   `average_response_times` over 1 h of minute rows, as
//!   `server::jobs::summaries` calls them) for pages of `--page` jobs;
//! - retention of the oldest day of minute rows and the oldest month of hour
//!   rows: DELETE on the plain table (rolled back, to keep the rows for the
//!   migration), partitions dropped after.
//!
//! `cargo bench -p monitor-worker --bench metrics_store -- [--jobs 10000] [--minute-days 3] [--hour-days 365] [--flushes 20] [--reads 200] [--page 50]`

use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use diesel::{QueryableByName, sql_types::Uuid as SqlUuid};
use monitor_store::{
    diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl},
    migrations,
    models::{
        consumer_offsets::PartitionProgress,
        job_metrics::{self, FlushOutcome},
        metric_partitions::{MetricPartition, MetricPartitions},
    },
    rollup::{Rollup, RollupKey},
    testing::TestDb,
};
use monitor_testkit::bench_number;
use uuid::Uuid;

/// The last migration before job_metrics was partitioned.
const BEFORE_PARTITIONS: &str = "2026-12-02-000009_notification_kinds_grouping";

async fn sql(conn: &mut AsyncPgConnection, statement: &str) -> usize {
    diesel::sql_query(statement).execute(conn).await.unwrap()
}

#[derive(QueryableByName)]
struct JobId {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
}

/// A small deterministic generator, so both runs read the same jobs.
struct Lcg(u64);

impl Lcg {
    fn pick(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn percentile(samples: &mut [Duration], p: f64) -> f64 {
    samples.sort();
    let index = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[index].as_secs_f64() * 1e3
}

fn rollup() -> Rollup {
    let mut rollup = Rollup::default();
    for ms in [12.0, 48.0, 95.0] {
        rollup.add(Some(ms), true, Some(200), None);
    }
    rollup
}

struct Settings {
    flushes: usize,
    reads: usize,
    page: usize,
    today: DateTime<Utc>,
}

/// Flush throughput, reads and the summary, printed under `label`.
async fn measure(
    label: &str,
    conn: &mut AsyncPgConnection,
    partitions: &MetricPartitions,
    jobs: &[Uuid],
    offset: &mut i64,
    s: &Settings,
) {
    let group = "bench-partitions";
    let mut flush_time = Duration::ZERO;
    let mut rows_written = 0;
    let mut statements = 0;
    let base = if label == "plain" { 0 } else { s.flushes as i64 };
    for i in 0..s.flushes as i64 {
        let minute = s.today + TimeDelta::minutes(base + i);
        let mut rows = Vec::with_capacity(jobs.len() * 3);
        for &job_id in jobs {
            for (granularity, dt) in [("1m", minute), ("1h", s.today), ("1d", s.today)] {
                let key = RollupKey {
                    job_id,
                    location: String::new(),
                    granularity: granularity.into(),
                    dt,
                };
                rows.push((key, rollup()));
            }
        }
        let progress = [PartitionProgress {
            partition: 0,
            expected: (*offset > 0).then_some(*offset),
            next_offset: *offset + 1,
        }];
        let started = Instant::now();
        let outcome = job_metrics::flush_with(conn, partitions, group, "monitor.checks", &rows, &progress)
            .await
            .unwrap();
        flush_time += started.elapsed();
        *offset += 1;
        match outcome {
            FlushOutcome::Committed { rows, statements: n } => {
                rows_written += rows;
                statements += n;
            }
            FlushOutcome::Fenced { .. } => panic!("fenced"),
        }
    }
    println!(
        "{label}: flush {} batches of {} rows: {:.0} rows/s ({:.1} ms per flush, {:.1} statements per flush)",
        s.flushes,
        jobs.len() * 3,
        rows_written as f64 / flush_time.as_secs_f64(),
        flush_time.as_secs_f64() * 1e3 / s.flushes as f64,
        statements as f64 / s.flushes as f64
    );

    for (window, granularity, span) in [
        ("1 h", "1m", TimeDelta::hours(1)),
        ("7 d", "1h", TimeDelta::days(7)),
        ("365 d", "1h", TimeDelta::days(365)),
    ] {
        let mut pick = Lcg(7);
        let mut samples = Vec::with_capacity(s.reads);
        let mut points = 0;
        for _ in 0..s.reads {
            let job = jobs[pick.pick(jobs.len())];
            let started = Instant::now();
            let rows = job_metrics::query(conn, job, "", granularity, s.today - span, s.today)
                .await
                .unwrap();
            samples.push(started.elapsed());
            points = rows.len();
        }
        println!(
            "{label}: QueryMetrics {window} ({granularity} rows, {points} per job): p50 {:.2} ms, p99 {:.2} ms over {} jobs",
            percentile(&mut samples, 0.5),
            percentile(&mut samples, 0.99),
            s.reads
        );
    }

    let mut pick = Lcg(11);
    let mut samples = Vec::with_capacity(s.reads);
    for _ in 0..s.reads {
        let start = pick.pick(jobs.len().saturating_sub(s.page).max(1));
        let ids = &jobs[start..(start + s.page).min(jobs.len())];
        let started = Instant::now();
        let totals = job_metrics::check_totals(conn, ids, "1m", s.today - TimeDelta::hours(24))
            .await
            .unwrap();
        let latencies = job_metrics::average_response_times(conn, ids, "1m", s.today - TimeDelta::hours(1))
            .await
            .unwrap();
        samples.push(started.elapsed());
        assert_eq!(totals.len(), ids.len());
        assert!(!latencies.is_empty());
    }
    println!(
        "{label}: job list summary (check_totals 24 h + average_response_times 1 h, {} jobs a page): p50 {:.2} ms, p99 {:.2} ms over {} pages",
        s.page,
        percentile(&mut samples, 0.5),
        percentile(&mut samples, 0.99),
        s.reads
    );
}

#[tokio::main]
async fn main() {
    let jobs = bench_number("--jobs", 10_000);
    let minute_days = bench_number("--minute-days", 3) as i64;
    let hour_days = bench_number("--hour-days", 365) as i64;
    let settings = Settings {
        flushes: bench_number("--flushes", 20),
        reads: bench_number("--reads", 200),
        page: bench_number("--page", 50),
        today: Utc::now().duration_trunc(TimeDelta::days(1)).unwrap(),
    };
    let today = settings.today;
    let db = TestDb::at_migration(BEFORE_PARTITIONS).await;
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    println!(
        "jobs {jobs}, minute rows {minute_days} d ({} rows), hour rows {hour_days} d ({} rows), until {today}",
        jobs as i64 * minute_days * 1440,
        jobs as i64 * hour_days * 24
    );

    let started = Instant::now();
    sql(
        &mut conn,
        "CREATE TABLE bench_jobs (n int PRIMARY KEY, id uuid NOT NULL)",
    )
    .await;
    sql(
        &mut conn,
        &format!("INSERT INTO bench_jobs SELECT n, gen_random_uuid() FROM generate_series(0, {jobs} - 1) n"),
    )
    .await;
    let fill = |granularity: &str, days: i64, step: &str| {
        format!(
            "INSERT INTO job_metrics (job_id, location, granularity, dt, rt_min, rt_max, rt_sum, rt_count, \
                                      rt_histogram, checks, passed, data, errors) \
             SELECT j.id, '', '{granularity}', t, 12, 95, 155, 3, '{{\"120\": 2, \"180\": 1}}', 3, 3, \
                    '{{\"200\": 3}}', '{{}}' \
             FROM bench_jobs j, generate_series('{today}'::timestamptz - interval '{days} days', \
                                                '{today}'::timestamptz - interval '{step}', interval '{step}') t",
            today = today.to_rfc3339()
        )
    };
    let minutes = sql(&mut conn, &fill("1m", minute_days, "1 minute")).await;
    let hours = sql(&mut conn, &fill("1h", hour_days, "1 hour")).await;
    sql(&mut conn, "ANALYZE job_metrics").await;
    println!(
        "filled {minutes} minute and {hours} hour rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let ids: Vec<JobId> = diesel::sql_query("SELECT id FROM bench_jobs ORDER BY n")
        .load(&mut conn)
        .await
        .unwrap();
    let jobs: Vec<Uuid> = ids.into_iter().map(|j| j.id).collect();

    // The oldest day of minute rows and the oldest month of hour rows: what
    // retention removes when they fall past their age.
    let minute_cutoff = today - TimeDelta::days(minute_days - 1);
    let oldest_hour = today - TimeDelta::days(hour_days);
    let hour_cutoff = {
        use chrono::Datelike;
        let next = if oldest_hour.month() == 12 {
            oldest_hour
                .with_day(1)
                .unwrap()
                .with_month(1)
                .unwrap()
                .with_year(oldest_hour.year() + 1)
        } else {
            oldest_hour.with_day(1).unwrap().with_month(oldest_hour.month() + 1)
        };
        next.unwrap().duration_trunc(TimeDelta::days(1)).unwrap()
    };

    // Before: the plain table. The partition cache is told everything
    // exists, so flush_with runs exactly the old flush (no partition calls).
    let plain = MetricPartitions::default();
    for granularity in ["1m", "1h", "1d"] {
        plain.learn(
            granularity,
            &[MetricPartition {
                name: "job_metrics".into(),
                from: DateTime::<Utc>::MIN_UTC,
                to: DateTime::<Utc>::MAX_UTC,
            }],
        );
    }
    let mut offset = 0;
    measure("plain", &mut conn, &plain, &jobs, &mut offset, &settings).await;
    for (granularity, cutoff) in [("1m", minute_cutoff), ("1h", hour_cutoff)] {
        sql(&mut conn, "BEGIN").await;
        let started = Instant::now();
        let deleted = sql(
            &mut conn,
            &format!(
                "DELETE FROM job_metrics WHERE granularity = '{granularity}' AND dt < '{}'",
                cutoff.to_rfc3339()
            ),
        )
        .await;
        let took = started.elapsed();
        sql(&mut conn, "ROLLBACK").await;
        println!(
            "plain: retention {granularity} before {cutoff}: DELETE of {deleted} rows in {:.0} ms (rolled back)",
            took.as_secs_f64() * 1e3
        );
    }
    drop(conn);

    let started = Instant::now();
    migrations::run_pending(&db.url).await.unwrap();
    println!(
        "migration 000010 (partition and copy every row) took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    sql(&mut conn, "ANALYZE job_metrics").await;
    let partitions = MetricPartitions::default();
    measure("partitioned", &mut conn, &partitions, &jobs, &mut offset, &settings).await;
    for (granularity, cutoff) in [("1m", minute_cutoff), ("1h", hour_cutoff)] {
        let keep = (today - cutoff).to_std().unwrap();
        let started = Instant::now();
        let retained = job_metrics::apply_retention(&mut conn, &partitions, granularity, keep, today)
            .await
            .unwrap();
        println!(
            "partitioned: retention {granularity} before {cutoff}: {} partitions dropped ({:?}), {} rows deleted, in {:.0} ms",
            retained.partitions_dropped.len(),
            retained.partitions_dropped,
            retained.rows_deleted,
            started.elapsed().as_secs_f64() * 1e3
        );
    }
}
