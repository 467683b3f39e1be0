//! What only the API tests share; the server itself starts from
//! `monitor_testkit::server`.

use monitor_proto::v1::Job;
use monitor_store::{
    DbPool,
    models::{
        consumer_offsets::{self, PartitionProgress},
        job_metrics::{self, FlushOutcome},
    },
    rollup::{Rollup, RollupKey},
};

/// A valid, stopped HTTP job against the mock website's default address
/// (nothing needs to answer there: the API tests never run it).
pub fn http_job(name: &str) -> Job {
    monitor_testkit::jobs::http_job(name, "http://127.0.0.1:8081/website_mock")
}

/// The field paths of an INVALID_ARGUMENT's BadRequest details.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    status
        .get_details_bad_request()
        .expect("BadRequest details")
        .field_violations
        .into_iter()
        .map(|v| v.field)
        .collect()
}

/// The consumer group and topic [`write_rollups`] stores offsets under.
pub const ROLLUP_GROUP: &str = "api-tests";
pub const ROLLUP_TOPIC: &str = "monitor.checks";

/// Writes rollups the way an aggregator does: one flush, with the offsets
/// of partition 0 moved on by one per row.
pub async fn write_rollups(pool: &DbPool, rows: &[(RollupKey, Rollup)]) {
    let mut conn = pool.get().await.unwrap();
    let stored = consumer_offsets::stored_offsets(&mut conn, ROLLUP_GROUP, ROLLUP_TOPIC, &[0])
        .await
        .unwrap();
    let expected = stored.get(&0).copied();
    let progress = [PartitionProgress {
        partition: 0,
        expected,
        next_offset: expected.unwrap_or(0) + rows.len() as i64,
    }];
    let outcome = job_metrics::flush(&mut conn, ROLLUP_GROUP, ROLLUP_TOPIC, rows, &progress)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FlushOutcome::Committed {
            rows: rows.len(),
            statements: 4
        }
    );
}
