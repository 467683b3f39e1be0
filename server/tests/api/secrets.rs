//! Secrets in job specs are write-only: every answer (gRPC, REST, the
//! legacy routes, summaries, the GetJob cache) shows `***` for secret
//! header values and the URL's userinfo, while PostgreSQL and the job a
//! worker is assigned keep the real values; writing the marker back keeps
//! the stored value, and a create with it is refused naming the field.

use std::time::Duration;

use monitor_proto::{
    secret::REDACTED,
    v1::{
        ConnectRequest, CreateJobRequest, GetJobRequest, HttpCheck, HttpHeader, Job, ListJobSummariesRequest,
        ListJobsRequest, StartJobRequest, StopJobRequest, UpdateJobRequest, WorkerHello, connect_request,
        connect_response, job::Check, worker_service_client::WorkerServiceClient,
    },
};
use monitor_server::jobs_file;
use monitor_store::models::job;
use monitor_testkit::{jobs::secs, server::TestServer};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use tokio_stream::wrappers::ReceiverStream;

use crate::harness::violated_fields;

/// Every secret below contains this, so an answer can be searched for it.
const SECRET: &str = "s3cret";

fn header(name: &str, value: &str) -> HttpHeader {
    HttpHeader {
        name: name.into(),
        value: value.into(),
    }
}

/// Authorization, Cookie, a header marked secret, a plain one and a URL
/// with a user and password.
fn secret_job(name: &str) -> Job {
    Job {
        name: name.into(),
        interval: secs(30),
        timeout: secs(5),
        check: Some(Check::Http(HttpCheck {
            url: format!("https://user:pw-{SECRET}@shop.example/health"),
            headers: vec![
                header("Authorization", &format!("Bearer {SECRET}-token")),
                header("cookie", &format!("session={SECRET}")),
                header("X-Custom-Token", &format!("{SECRET}-custom")),
                header("X-Plain", "visible"),
            ],
            secret_headers: vec!["x-custom-token".into()],
            ..Default::default()
        })),
        ..Default::default()
    }
}

fn http(job: &Job) -> &HttpCheck {
    match &job.check {
        Some(Check::Http(http)) => http,
        other => panic!("not an HTTP check: {other:?}"),
    }
}

fn values(http: &HttpCheck) -> Vec<&str> {
    http.headers.iter().map(|h| h.value.as_str()).collect()
}

/// The job as an answer shows it.
fn assert_redacted(job: &Job) {
    let http = http(job);
    assert_eq!(http.url, "https://***@shop.example/health");
    assert_eq!(values(http), [REDACTED, REDACTED, REDACTED, "visible"]);
    assert_eq!(http.secret_headers, ["x-custom-token"]);
    assert!(!format!("{job:?}").contains(SECRET), "Debug shows a secret: {job:?}");
}

/// The check as PostgreSQL holds it.
async fn stored_check(server: &TestServer, id: &str) -> HttpCheck {
    let mut conn = server.pool.get().await.unwrap();
    let row = job::get(&mut conn, id.parse().unwrap()).await.unwrap();
    assert_eq!(row.check_kind, "http");
    serde_json::from_value(row.check_spec).unwrap()
}

fn assert_real(http: &HttpCheck) {
    assert_eq!(http.url, format!("https://user:pw-{SECRET}@shop.example/health"));
    assert_eq!(
        values(http),
        [
            format!("Bearer {SECRET}-token").as_str(),
            &format!("session={SECRET}"),
            &format!("{SECRET}-custom"),
            "visible"
        ]
    );
}

/// Connects as a probe worker and returns the first job it is assigned.
async fn assigned_job(server: &TestServer) -> Job {
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(ConnectRequest {
        kind: Some(connect_request::Kind::Hello(WorkerHello {
            worker_id: "secrets-probe".into(),
            version: "test".into(),
            capacity: 100,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut answers = WorkerServiceClient::new(server.channel.clone())
        .connect(ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let assign = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match answers.message().await.unwrap().expect("stream open").kind {
                Some(connect_response::Kind::Assign(assign)) => return assign,
                _ => continue,
            }
        }
    })
    .await
    .expect("an assignment within 20 s");
    drop(tx);
    assign.job.expect("assign carries the job")
}

#[tokio::test]
async fn grpc_answers_redact_while_the_store_and_the_worker_keep_the_values() {
    let server = TestServer::start().await;
    let mut jobs = server.jobs.clone();
    let created = server.create(secret_job("secret-grpc")).await;
    assert_redacted(&created);
    let id = created.id.clone();

    // Twice: the second read comes from the cache.
    for _ in 0..2 {
        let got = jobs
            .get_job(GetJobRequest { id: id.clone() })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap();
        assert_redacted(&got);
    }
    let listed = jobs.list_jobs(ListJobsRequest::default()).await.unwrap().into_inner();
    assert_redacted(&listed.jobs[0]);
    let summaries = jobs
        .list_job_summaries(ListJobSummariesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_redacted(summaries.summaries[0].job.as_ref().unwrap());
    let started = jobs
        .start_job(StartJobRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_redacted(started.job.as_ref().unwrap());

    assert_real(&stored_check(&server, &id).await);
    let assigned = assigned_job(&server).await;
    assert_eq!(assigned.id, id);
    assert_real(http(&assigned));

    let stopped = jobs
        .stop_job(StopJobRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_redacted(stopped.job.as_ref().unwrap());
}

#[tokio::test]
async fn grpc_updates_keep_what_comes_back_as_the_marker_and_take_new_values() {
    let server = TestServer::start().await;
    let mut jobs = server.jobs.clone();
    let created = server.create(secret_job("secret-update")).await;
    let id = created.id.clone();

    // Sent back as read: nothing changed, not even the version.
    let same = update(&mut jobs, created.clone(), None).await.unwrap();
    assert_eq!(same.version, created.version, "a round trip is no change");
    assert_redacted(&same);

    // Another field edited: the secrets stay.
    let mut edited = created.clone();
    edited.interval = secs(60);
    let updated = update(&mut jobs, edited, None).await.unwrap();
    assert_eq!(updated.version, created.version + 1);
    assert_redacted(&updated);
    assert_real(&stored_check(&server, &id).await);

    // A new value replaces; the marker keeps the others.
    let mut rotated = updated.clone();
    let Some(Check::Http(check)) = &mut rotated.check else {
        unreachable!()
    };
    check.headers[0].value = "Bearer rotated".into();
    let rotated = update(&mut jobs, rotated, Some("http")).await.unwrap();
    assert_eq!(values(http(&rotated))[0], REDACTED);
    let stored = stored_check(&server, &id).await;
    assert_eq!(stored.headers[0].value, "Bearer rotated");
    assert_eq!(stored.headers[1].value, format!("session={SECRET}"));
    assert!(stored.url.contains(SECRET));

    // The stored secrets do not follow the job to another host.
    let mut moved = rotated.clone();
    let Some(Check::Http(check)) = &mut moved.check else {
        unreachable!()
    };
    check.url = "https://***@elsewhere.example/health".into();
    let err = update(&mut jobs, moved, None).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["job.http.url"]);
    assert!(
        err.message().contains("send the secret values again"),
        "{}",
        err.message()
    );
}

/// UpdateJob of `job` (with `mask` as its one field-mask path, if any):
/// the job as answered, or the refusal.
async fn update(
    jobs: &mut monitor_proto::v1::job_service_client::JobServiceClient<tonic::transport::Channel>,
    job: Job,
    mask: Option<&str>,
) -> Result<Job, tonic::Status> {
    let request = UpdateJobRequest {
        job: Some(job),
        update_mask: mask.map(|path| pbjson_types::FieldMask {
            paths: vec![path.into()],
        }),
    };
    Ok(jobs.update_job(request).await?.into_inner().job.unwrap())
}

#[tokio::test]
async fn grpc_create_with_the_marker_is_refused_naming_the_field() {
    let server = TestServer::start().await;
    let mut marked = secret_job("secret-marker");
    let Some(Check::Http(check)) = &mut marked.check else {
        unreachable!()
    };
    check.headers[1].value = REDACTED.into();
    check.url = "https://***@shop.example/health".into();
    let err = server
        .jobs
        .clone()
        .create_job(CreateJobRequest { job: Some(marked) })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["job.http.url", "job.http.headers[1].value"]);
    assert!(err.message().contains("a new job has none"), "{}", err.message());
    assert!(
        server
            .jobs
            .clone()
            .list_jobs(ListJobsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .jobs
            .is_empty()
    );
}

async fn send(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = Client::new().request(method, server.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(!text.contains(SECRET), "{path} answers a secret: {text}");
    (status, serde_json::from_str(&text).unwrap())
}

fn secret_job_json(name: &str) -> Value {
    json!({"name": name, "interval": "30s", "timeout": "5s",
           "http": {"url": format!("https://user:pw-{SECRET}@shop.example/health"),
                    "headers": [{"name": "Authorization", "value": format!("Bearer {SECRET}-token")},
                                {"name": "cookie", "value": format!("session={SECRET}")},
                                {"name": "X-Custom-Token", "value": format!("{SECRET}-custom")},
                                {"name": "X-Plain", "value": "visible"}],
                    "secretHeaders": ["x-custom-token"]}})
}

fn assert_redacted_json(job: &Value) {
    assert_eq!(job["http"]["url"], "https://***@shop.example/health", "{job}");
    let values: Vec<&str> = job["http"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, [REDACTED, REDACTED, REDACTED, "visible"], "{job}");
}

#[tokio::test]
async fn rest_and_legacy_answers_redact_and_patches_keep_or_replace() {
    let server = TestServer::start().await;
    let (status, created) = send(&server, Method::POST, "/v1/jobs", Some(secret_job_json("secret-rest"))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let created = &created["job"];
    assert_redacted_json(created);
    let id = created["id"].as_str().unwrap().to_owned();

    for path in [format!("/v1/jobs/{id}"), format!("/v1/jobs/{id}"), format!("/job/{id}")] {
        let (status, got) = send(&server, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{got}");
        assert_redacted_json(&got["job"]);
    }
    for path in ["/v1/jobs", "/job"] {
        let (_, listed) = send(&server, Method::GET, path, None).await;
        assert_redacted_json(&listed["jobs"][0]);
    }
    let (_, summaries) = send(&server, Method::GET, "/v1/job-summaries", None).await;
    assert_redacted_json(&summaries["summaries"][0]["job"]);
    for path in [format!("/v1/jobs/{id}/start"), format!("/job/{id}/stop")] {
        let (status, changed) = send(&server, Method::POST, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{changed}");
        assert_redacted_json(&changed["job"]);
    }
    assert_real(&stored_check(&server, &id).await);

    // PATCH back what GET showed, with another field changed: kept.
    let (_, current) = send(&server, Method::GET, &format!("/v1/jobs/{id}"), None).await;
    let current = &current["job"];
    let patch = json!({"version": current["version"], "interval": "60s", "http": current["http"]});
    let (status, patched) = send(&server, Method::PATCH, &format!("/v1/jobs/{id}"), Some(patch)).await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_redacted_json(&patched["job"]);
    assert_eq!(patched["job"]["interval"], "60s");
    assert_real(&stored_check(&server, &id).await);

    // A new cookie replaces the stored one.
    let mut http = patched["job"]["http"].clone();
    http["headers"][1]["value"] = json!("session=fresh");
    let patch = json!({"version": patched["job"]["version"], "http": http});
    let (status, rotated) = send(&server, Method::PATCH, &format!("/v1/jobs/{id}"), Some(patch)).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert_redacted_json(&rotated["job"]);
    let stored = stored_check(&server, &id).await;
    assert_eq!(stored.headers[1].value, "session=fresh");
    assert_eq!(stored.headers[0].value, format!("Bearer {SECRET}-token"));

    // A create with the marker: 400 naming the field.
    let mut marked = secret_job_json("secret-rest-marker");
    marked["http"]["headers"][0]["value"] = json!(REDACTED);
    let (status, refused) = send(&server, Method::POST, "/v1/jobs", Some(marked)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("job.http.headers[0].value"), "{message}");
    assert!(message.contains("redaction marker"), "{message}");
}

#[tokio::test]
async fn jobs_file_round_trip_of_redacted_secrets_is_unchanged() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jobs.json");
    let import = |text: String| {
        std::fs::write(&path, text).unwrap();
        let pool = server.pool.clone();
        let path = path.clone();
        async move { jobs_file::import_file(&pool, &path).await }
    };

    // Markers for a job that is not stored yet: refused, naming job and field.
    let mut marked = secret_job_json("secret-file");
    marked["http"]["headers"][0]["value"] = json!(REDACTED);
    let err = import(json!({"jobs": [marked]}).to_string())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("jobs[0] (\"secret-file\")") && err.contains("http.headers[0].value"),
        "{err}"
    );

    let report = import(json!({"jobs": [secret_job_json("secret-file")]}).to_string())
        .await
        .unwrap();
    assert_eq!(report.created, ["secret-file"]);

    // The job as the API shows it, imported again: unchanged, values kept.
    let listed = server
        .jobs
        .clone()
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .jobs;
    let shown = &listed[0];
    let version = shown.version;
    let mut exported = serde_json::to_value(shown).unwrap();
    let object = exported.as_object_mut().unwrap();
    for output_only in ["id", "version", "createTime", "updateTime", "stateChangeTime"] {
        object.remove(output_only);
    }
    assert_redacted_json(&exported);
    let report = import(json!({"jobs": [exported.clone()]}).to_string()).await.unwrap();
    assert_eq!(report.unchanged, ["secret-file"], "{report:?}");
    assert_real(&stored_check(&server, &shown.id).await);

    // A real change next to the markers: updated, secrets kept.
    exported["interval"] = json!("45s");
    let report = import(json!({"jobs": [exported]}).to_string()).await.unwrap();
    assert_eq!(report.updated, ["secret-file"], "{report:?}");
    assert_real(&stored_check(&server, &shown.id).await);
    let mut conn = server.pool.get().await.unwrap();
    let row = job::get(&mut conn, shown.id.parse().unwrap()).await.unwrap();
    assert_eq!(row.version, version + 1);
}

/// The proxy password of every kind that goes through a proxy: shown as
/// the marker over REST, stored and assigned as written, kept by the
/// marker, and refused with it when the proxy moves.
#[tokio::test]
async fn proxy_passwords_are_write_only_over_rest() {
    let server = TestServer::start().await;
    let proxy = json!({"host": "proxy.example", "port": 1080, "username": "probe",
                       "password": format!("pw-{SECRET}")});
    let kinds = [
        ("http", json!({"url": "https://shop.example/", "proxy": proxy})),
        ("tcp", json!({"host": "db.example", "port": 5432, "proxy": proxy})),
        (
            "socks5",
            json!({"proxy": proxy, "targetHost": "example.com", "targetPort": 443}),
        ),
    ];
    for (kind, check) in kinds {
        let body = json!({"name": format!("proxy-{kind}"), "interval": "30s", "timeout": "5s", kind: check});
        let (status, created) = send(&server, Method::POST, "/v1/jobs", Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let created = &created["job"];
        assert_eq!(created[kind]["proxy"]["password"], REDACTED, "{created}");
        assert_eq!(created[kind]["proxy"]["username"], "probe", "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        let stored_password = || async {
            let mut conn = server.pool.get().await.unwrap();
            let row = job::get(&mut conn, id.parse().unwrap()).await.unwrap();
            assert_eq!(row.check_kind, kind);
            row.check_spec["proxy"]["password"].as_str().unwrap().to_owned()
        };
        assert_eq!(stored_password().await, format!("pw-{SECRET}"));

        // Back as shown, another field changed: kept.
        let patch = json!({"version": created["version"], "interval": "60s", kind: created[kind]});
        let (status, patched) = send(&server, Method::PATCH, &format!("/v1/jobs/{id}"), Some(patch)).await;
        assert_eq!(status, StatusCode::OK, "{patched}");
        assert_eq!(patched["job"][kind]["proxy"]["password"], REDACTED);
        assert_eq!(stored_password().await, format!("pw-{SECRET}"));

        // The marker with another proxy: refused, naming the proxy's host.
        let mut moved = patched["job"][kind].clone();
        moved["proxy"]["host"] = json!("evil.example");
        let patch = json!({"version": patched["job"]["version"], kind: moved});
        let (status, refused) = send(&server, Method::PATCH, &format!("/v1/jobs/{id}"), Some(patch)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
        let message = refused["message"].as_str().unwrap();
        assert!(message.contains(&format!("job.{kind}.proxy.host")), "{message}");
        assert_eq!(stored_password().await, format!("pw-{SECRET}"));
    }

    // A create with the marker names the password.
    let marked = json!({"name": "proxy-marked", "interval": "30s", "timeout": "5s",
                        "socks5": {"proxy": {"host": "proxy.example", "port": 1080, "username": "probe",
                                             "password": REDACTED},
                                   "targetHost": "example.com", "targetPort": 443}});
    let (status, refused) = send(&server, Method::POST, "/v1/jobs", Some(marked)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("job.socks5.proxy.password"), "{message}");
}
