//! AdminService: server info and the guarded database reset.

use monitor_proto::v1::{GetServerInfoRequest, JobState, ListJobsRequest, ResetDatabaseRequest};
use monitor_testkit::server::{ADMIN_TOKEN, TestServer, WRITE_TOKEN};

use crate::harness::{http_job, violated_fields};

#[tokio::test]
async fn info_counts_jobs_by_state() {
    let server = TestServer::start().await;
    let mut running = http_job("r");
    running.desired_state = JobState::Running as i32;
    server.create(running).await;
    server.create(http_job("s1")).await;
    server.create(http_job("s2")).await;
    let info = server
        .admin
        .clone()
        .get_server_info(GetServerInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.name, "monitor-server");
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    let jobs = info.jobs.unwrap();
    assert_eq!((jobs.total, jobs.running, jobs.stopped), (3, 1, 2));
    assert!(info.start_time.is_some());
    assert!(info.uptime.unwrap().seconds >= 0);
}

#[tokio::test]
async fn reset_is_disabled_without_an_admin_token() {
    let server = TestServer::start().await;
    server.create(http_job("a")).await;
    let err = server
        .admin
        .clone()
        .reset_database(ResetDatabaseRequest { confirm: true })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    assert!(err.message().contains("configure an admin token"), "{}", err.message());
    let listed = server
        .jobs
        .clone()
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 1);
}

#[tokio::test]
async fn reset_requires_confirmation_then_deletes_every_job() {
    let server = TestServer::builder().api_tokens().start().await;
    let mut jobs = server.jobs_as(Some(WRITE_TOKEN));
    jobs.create_job(monitor_proto::v1::CreateJobRequest {
        job: Some(http_job("a")),
    })
    .await
    .unwrap();
    jobs.create_job(monitor_proto::v1::CreateJobRequest {
        job: Some(http_job("b")),
    })
    .await
    .unwrap();
    let err = server
        .admin_as(Some(WRITE_TOKEN))
        .reset_database(ResetDatabaseRequest { confirm: true })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let mut admin = server.admin_as(Some(ADMIN_TOKEN));
    let err = admin
        .reset_database(ResetDatabaseRequest { confirm: false })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["confirm"]);
    let listed = jobs.list_jobs(ListJobsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.total_size, 2, "an unconfirmed reset deletes nothing");
    let reset = admin
        .reset_database(ResetDatabaseRequest { confirm: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reset.deleted_jobs, 2);
    let listed = jobs.list_jobs(ListJobsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.total_size, 0);
}
