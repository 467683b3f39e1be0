//! jobs.json import: idempotent by name, updates changes, never deletes,
//! and refuses a bad file with a message naming the job and the field.

use monitor_proto::v1::{CreateJobRequest, JobState, ListJobsRequest};
use monitor_server::jobs_file::{self, JobsFileError};
use monitor_testkit::server::TestServer;

use crate::harness::http_job;

const TWO_JOBS: &str = r#"{"jobs": [
  {"name": "a", "interval": "10s", "timeout": "5s", "desiredState": "JOB_STATE_RUNNING",
   "http": {"url": "http://127.0.0.1:8081/website_mock"}},
  {"name": "b", "interval": "20s", "timeout": "5s", "labels": {"env": "demo"},
   "http": {"url": "http://127.0.0.1:8081/status/404", "method": "HTTP_METHOD_HEAD"}}
]}"#;

async fn import(server: &TestServer, text: &str) -> Result<jobs_file::ImportReport, JobsFileError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.json");
    std::fs::write(&path, text).unwrap();
    jobs_file::import_file(&server.pool, &path).await
}

async fn names_and_versions(server: &TestServer) -> Vec<(String, i64, i32)> {
    let listed = server
        .jobs
        .clone()
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    listed
        .jobs
        .into_iter()
        .map(|j| (j.name, j.version, j.desired_state))
        .collect()
}

#[tokio::test]
async fn import_is_idempotent_updates_changes_and_never_deletes() {
    let server = TestServer::start().await;
    server.create(http_job("created-by-api")).await;

    let first = import(&server, TWO_JOBS).await.unwrap();
    assert_eq!(first.created, ["a", "b"]);
    assert!(first.updated.is_empty() && first.unchanged.is_empty());

    let second = import(&server, TWO_JOBS).await.unwrap();
    assert_eq!(second.unchanged, ["a", "b"]);
    assert!(second.created.is_empty() && second.updated.is_empty());
    let running = JobState::Running as i32;
    let stopped = JobState::Stopped as i32;
    assert_eq!(
        names_and_versions(&server).await,
        [
            ("created-by-api".into(), 1, stopped),
            ("a".into(), 1, running),
            ("b".into(), 1, stopped)
        ]
    );

    // Change b's interval; a job without a state keeps the one it has now.
    let listed = server
        .jobs
        .clone()
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let b_id = listed.jobs.into_iter().find(|j| j.name == "b").unwrap().id;
    server
        .jobs
        .clone()
        .start_job(monitor_proto::v1::StartJobRequest { id: b_id })
        .await
        .unwrap();
    let changed = TWO_JOBS.replace("\"20s\"", "\"25s\"");
    let third = import(&server, &changed).await.unwrap();
    assert_eq!(third.updated, ["b"]);
    assert_eq!(third.unchanged, ["a"]);
    assert_eq!(
        names_and_versions(&server).await,
        [
            ("created-by-api".into(), 1, stopped),
            ("a".into(), 1, running),
            ("b".into(), 3, running)
        ]
    );

    // A file without a job does not delete it.
    let only_a = r#"{"jobs": [{"name": "a", "interval": "10s", "timeout": "5s", "desiredState": "JOB_STATE_RUNNING",
        "http": {"url": "http://127.0.0.1:8081/website_mock"}}]}"#;
    let fourth = import(&server, only_a).await.unwrap();
    assert_eq!(fourth.unchanged, ["a"]);
    assert_eq!(names_and_versions(&server).await.len(), 3);
}

#[tokio::test]
async fn the_repository_jobs_json_imports_cleanly() {
    let server = TestServer::start().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../jobs.json");
    let report = jobs_file::import_file(&server.pool, &path).await.unwrap();
    assert!(report.created.len() >= 4, "{report:?}");
    let listed = server
        .jobs
        .clone()
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let methods: Vec<_> = listed
        .jobs
        .iter()
        .filter_map(|j| match &j.check {
            Some(monitor_proto::v1::job::Check::Http(h)) => Some(h.method),
            _ => None,
        })
        .collect();
    assert!(methods.contains(&(monitor_proto::v1::HttpMethod::Head as i32)));
    assert!(methods.contains(&(monitor_proto::v1::HttpMethod::Post as i32)));
    // The examples show the other kinds the mock of `scripts/dev up` answers.
    let mut kinds: Vec<&str> = listed
        .jobs
        .iter()
        .filter_map(|j| j.check.as_ref())
        .map(monitor_server::jobs::convert::check_kind)
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds, ["dns", "grpc_health", "http", "icmp", "ssh", "tcp", "websocket"]);
    let again = jobs_file::import_file(&server.pool, &path).await.unwrap();
    assert_eq!(again.unchanged.len(), report.created.len());
}

#[tokio::test]
async fn bad_files_are_refused_naming_job_and_field_and_change_nothing() {
    let server = TestServer::start().await;
    let cases: &[(&str, &[&str])] = &[
        ("{not json", &["not valid JSON", "line 1"]),
        ("[]", &["JSON object"]),
        (r#"{"jobs": {}}"#, &["\"jobs\" must be an array"]),
        (r#"{"jobs": [], "extra": 1}"#, &["unknown top-level field \"extra\""]),
        (
            r#"{"jobs": [{"name": "ok", "interval": "10s", "timeout": "5s", "http": {"url": "http://h/"}},
                         {"name": "bad", "interval": "10s", "timeout": "5s", "http": {"url": "ftp://h/"}}]}"#,
            &["jobs[1] (\"bad\")", "http.url", "http or https"],
        ),
        (
            r#"{"jobs": [{"interval": "10s", "timeout": "5s", "http": {"url": "http://h/"}}]}"#,
            &["jobs[0]", "name: must not be empty"],
        ),
        (
            r#"{"jobs": [{"name": "typo", "intervall": "10s", "timeout": "5s", "http": {"url": "http://h/"}}]}"#,
            &["jobs[0] (\"typo\")", "intervall"],
        ),
        (
            r#"{"jobs": [{"name": "d", "interval": "ten", "timeout": "5s", "http": {"url": "http://h/"}}]}"#,
            &["jobs[0] (\"d\")", "interval", "missing 's' suffix"],
        ),
        (
            r#"{"jobs": [{"name": "t", "interval": "2s", "timeout": "5s", "http": {"url": "http://h/"}}]}"#,
            &["jobs[0] (\"t\")", "timeout: must not exceed the interval"],
        ),
        (
            r#"{"jobs": [{"name": "x", "interval": "2s", "timeout": "1s", "http": {"url": "http://h/"}},
                         {"name": "x", "interval": "2s", "timeout": "1s", "http": {"url": "http://h/"}}]}"#,
            &["jobs[1] (\"x\")", "more than once"],
        ),
        (
            r#"{"jobs": [{"id": "123", "name": "o", "interval": "2s", "timeout": "1s", "http": {"url": "http://h/"}}]}"#,
            &["jobs[0] (\"o\")", "\"id\" is set by the server"],
        ),
        (
            r#"{"jobs": [{"name": "m", "interval": "2s", "timeout": "1s", "http": {"url": "http://h/", "method": "HTTP_METHOD_BREW"}}]}"#,
            &["jobs[0] (\"m\")", "HTTP_METHOD_BREW"],
        ),
    ];
    for (text, expected) in cases {
        let err = import(&server, text).await.unwrap_err();
        assert!(matches!(err, JobsFileError::Invalid { .. }), "{err:?}");
        let message = err.to_string();
        for part in *expected {
            assert!(message.contains(part), "{text}\n=> {message}\nmissing {part:?}");
        }
    }
    let listed = server
        .jobs
        .clone()
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.total_size, 0,
        "a refused file writes nothing, not even its valid jobs"
    );

    let missing = jobs_file::import_file(&server.pool, std::path::Path::new("/nonexistent/jobs.json")).await;
    assert!(matches!(missing, Err(JobsFileError::Read { .. })));
    assert!(missing.unwrap_err().to_string().contains("/nonexistent/jobs.json"));
}

#[tokio::test]
async fn import_leaves_jobs_with_taken_names_to_the_file() {
    // A job created through the API with a name the file uses is adopted and
    // updated by the import (names are the identity), not duplicated.
    let server = TestServer::start().await;
    let mut job = http_job("a");
    job.interval = Some(pbjson_types::Duration { seconds: 99, nanos: 0 });
    server
        .jobs
        .clone()
        .create_job(CreateJobRequest { job: Some(job) })
        .await
        .unwrap();
    let report = import(&server, TWO_JOBS).await.unwrap();
    assert_eq!(report.updated, ["a"]);
    assert_eq!(report.created, ["b"]);
}
