//! What the notification benches share: outbox rows written in bulk and
//! latency figures.

use chrono::{DateTime, Utc};
use monitor_store::{DbPool, diesel_async::RunQueryDsl};
use uuid::Uuid;

/// Writes `n` open incidents with their `opened` outbox rows to `channel`
/// in one statement; (outbox id, dedup key, created_at) of each.
pub async fn incidents(pool: &DbPool, channel: Uuid, n: usize) -> Vec<(i64, String, DateTime<Utc>)> {
    #[derive(diesel::QueryableByName)]
    struct Written {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
        #[diesel(sql_type = diesel::sql_types::Text)]
        dedup_key: String,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        created_at: DateTime<Utc>,
    }
    let mut conn = pool.get().await.unwrap();
    let written: Vec<Written> = diesel::sql_query(format!(
        "WITH opened AS ( \
             INSERT INTO incidents (id, rule_name, job_id, job_name, severity, cause, opened_at, failing_locations, first_failure) \
             SELECT gen_random_uuid(), 'bench rule', gen_random_uuid(), 'job-' || i, 'critical', 'down', now(), '{{eu-1}}', \
                    '{{\"outcome\": \"CHECK_OUTCOME_HTTP_STATUS\", \"status_code\": 500, \"location\": \"eu-1\"}}' \
             FROM generate_series(1, {n}) AS i RETURNING id) \
         INSERT INTO notification_outbox (dedup_key, incident_id, event, channel_ids) \
         SELECT id || ':opened', id, 'opened', ARRAY['{channel}'::uuid] FROM opened \
         RETURNING id, dedup_key, created_at"
    ))
    .load(&mut conn)
    .await
    .unwrap();
    written
        .into_iter()
        .map(|row| (row.id, row.dedup_key, row.created_at))
        .collect()
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn summary(mut ms: Vec<f64>) -> String {
    ms.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&ms, 50.0),
        percentile(&ms, 99.0),
        ms[ms.len() - 1]
    )
}

/// Milliseconds from `from` to `to`.
pub fn ms_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1000.0
}
