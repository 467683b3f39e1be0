//! The GetJob read cache stays coherent with PostgreSQL: a change committed
//! elsewhere (another replica, plain SQL) reaches it through the jobs
//! trigger's notification, and a broken subscription turns it off until it
//! is back.

use std::time::Duration;

use monitor_proto::v1::{CreateJobRequest, GetJobRequest, Job, job_service_client::JobServiceClient};
use monitor_server::{
    fleet::{RegistryConfig, WorkerRegistry},
    jobs::{JobCatalog, cache},
};
use monitor_store::diesel_async::RunQueryDsl as _;
use monitor_store::testing::TestDb;
use monitor_testkit::server::TestServer;
use tonic::transport::Channel;
use uuid::Uuid;

use crate::harness::http_job;

/// Polls `condition` every 20 ms for up to 10 s.
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads the job until a read lands in the cache (within 10 s).
async fn cached_after_reads(catalog: &JobCatalog, id: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while catalog.cache().get(Uuid::parse_str(id).unwrap()).is_none() {
        assert!(tokio::time::Instant::now() < deadline, "job {id} was never cached");
        catalog.get(GetJobRequest { id: id.to_owned() }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn sql(db: &TestDb, statement: &str) {
    let mut conn = db.pool().get().await.unwrap();
    diesel::sql_query(statement).execute(&mut conn).await.unwrap();
}

#[tokio::test]
async fn changes_made_elsewhere_reach_the_cache_and_a_lost_subscription_turns_it_off() {
    let db = TestDb::new().await;
    let pool = db.pool();
    let catalog = JobCatalog::new(pool.clone(), WorkerRegistry::new(RegistryConfig::default()));
    let follower = tokio::spawn(cache::follow(catalog.cache().clone(), pool.clone()));
    eventually("the cache follows job changes", || catalog.cache().is_live()).await;

    let job = catalog
        .create(CreateJobRequest {
            job: Some(http_job("cached")),
        })
        .await
        .unwrap();
    let id = Uuid::parse_str(&job.id).unwrap();
    let get = || catalog.get(GetJobRequest { id: job.id.clone() });
    // The create's own notification may land while the first read is in
    // flight; that read is then (rightly) not kept, and a later one is.
    cached_after_reads(&catalog, &job.id).await;
    assert_eq!(catalog.cache().get(id).unwrap().name, "cached");

    // Another replica renames it: the notification drops the cached copy.
    sql(
        &db,
        &format!("UPDATE jobs SET name = 'renamed-elsewhere', version = version + 1 WHERE id = '{id}'"),
    )
    .await;
    eventually("the change is notified", || catalog.cache().get(id).is_none()).await;
    let read = get().await.unwrap();
    assert_eq!(
        (read.name.as_str(), read.version),
        ("renamed-elsewhere", job.version + 1)
    );

    // Deleted elsewhere: NOT_FOUND, not the cached job.
    sql(&db, &format!("DELETE FROM jobs WHERE id = '{id}'")).await;
    eventually("the delete is notified", || catalog.cache().get(id).is_none()).await;
    assert_eq!(get().await.unwrap_err().code(), tonic::Code::NotFound);

    // The subscription's connection (its last statement was the trigger
    // check) is killed: caching stops at once (reads
    // go to the database), then resumes on a new subscription.
    let again = catalog
        .create(CreateJobRequest {
            job: Some(http_job("cached-again")),
        })
        .await
        .unwrap();
    let again_id = Uuid::parse_str(&again.id).unwrap();
    cached_after_reads(&catalog, &again.id).await;
    sql(
        &db,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{}' AND query LIKE '%FROM pg_trigger%' AND pid <> pg_backend_pid()",
            db.name()
        ),
    )
    .await;
    eventually("the cache turns off", || !catalog.cache().is_live()).await;
    assert!(catalog.cache().is_empty());
    eventually("the cache follows job changes again", || catalog.cache().is_live()).await;
    sql(
        &db,
        &format!("UPDATE jobs SET name = 'renamed-after-reconnect', version = version + 1 WHERE id = '{again_id}'"),
    )
    .await;
    // Read until the renamed job shows: it must, and then stay so.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let read = catalog.get(GetJobRequest { id: again.id.clone() }).await.unwrap();
        if read.name == "renamed-after-reconnect" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the rename never showed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        let read = catalog.get(GetJobRequest { id: again.id.clone() }).await.unwrap();
        assert_eq!(read.name, "renamed-after-reconnect");
    }
    follower.abort();
}

/// GetJob over gRPC.
async fn get_job(jobs: &mut JobServiceClient<Channel>, id: &str) -> Job {
    jobs.get_job(GetJobRequest { id: id.to_owned() })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap()
}

#[tokio::test]
async fn a_server_reads_its_own_writes_at_once() {
    let server = TestServer::start().await;
    let mut jobs = server.jobs.clone();
    let job = server.create(http_job("own-writes")).await;
    for round in 0..20 {
        // Warm the cache, change the job, and read it straight back.
        jobs.get_job(GetJobRequest { id: job.id.clone() }).await.unwrap();
        let started = jobs
            .start_job(monitor_proto::v1::StartJobRequest { id: job.id.clone() })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        let read = get_job(&mut jobs, &job.id).await;
        assert_eq!(read.version, started.version, "round {round}");
        let stopped = jobs
            .stop_job(monitor_proto::v1::StopJobRequest { id: job.id.clone() })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        let read = get_job(&mut jobs, &job.id).await;
        assert_eq!(read.version, stopped.version, "round {round}");
        assert_eq!(read.desired_state, stopped.desired_state, "round {round}");
    }
}

#[tokio::test]
async fn without_the_change_triggers_nothing_is_cached() {
    let db = TestDb::new().await;
    let pool = db.pool();
    sql(&db, "ALTER TABLE jobs DISABLE TRIGGER jobs_notify_change").await;
    let catalog = JobCatalog::new(pool.clone(), WorkerRegistry::new(RegistryConfig::default()));
    let follower = tokio::spawn(cache::follow(catalog.cache().clone(), pool.clone()));
    let job = catalog
        .create(CreateJobRequest {
            job: Some(http_job("uncached")),
        })
        .await
        .unwrap();
    for _ in 0..20 {
        catalog.get(GetJobRequest { id: job.id.clone() }).await.unwrap();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(!catalog.cache().is_live(), "no triggers, no caching");
    assert!(catalog.cache().is_empty());

    sql(&db, "ALTER TABLE jobs ENABLE TRIGGER jobs_notify_change").await;
    eventually("the cache turns on once the triggers fire", || {
        catalog.cache().is_live()
    })
    .await;

    // A job whose id changes (by SQL): the old id is announced too.
    cached_after_reads(&catalog, &job.id).await;
    let new_id = Uuid::from_u128(0x1234);
    sql(&db, &format!("UPDATE jobs SET id = '{new_id}' WHERE id = '{}'", job.id)).await;
    let old_id = Uuid::parse_str(&job.id).unwrap();
    eventually("the old id is dropped", || catalog.cache().get(old_id).is_none()).await;
    let err = catalog.get(GetJobRequest { id: job.id.clone() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);
    follower.abort();
}
