//! Every JobService RPC, positive and negative.

use monitor_proto::v1::{
    CreateJobRequest, DeleteJobRequest, GetJobRequest, GetJobStatusRequest, HttpAssertions, HttpHeader, HttpMethod,
    Job, JobPhase, JobState, ListJobsRequest, StartJobRequest, StatusRange, StopJobRequest, UpdateJobRequest,
    job::Check,
};
use monitor_testkit::{
    jobs::{millis, secs},
    server::TestServer,
};
use pbjson_types::FieldMask;
use tonic::Code;

use crate::harness::{http_job, violated_fields};

fn http(job: &mut Job) -> &mut monitor_proto::v1::HttpCheck {
    match job.check.as_mut() {
        Some(Check::Http(http)) => http,
        _ => panic!("job has no HTTP check"),
    }
}

#[tokio::test]
async fn create_then_get_returns_the_stored_job() {
    let server = TestServer::start().await;
    let mut job = http_job("shop");
    job.labels.insert("team".into(), "web".into());
    http(&mut job).method = HttpMethod::Post as i32;
    http(&mut job).body = b"{}".to_vec();
    http(&mut job).headers = vec![HttpHeader {
        name: "X-Probe".into(),
        value: "1".into(),
    }];
    http(&mut job).assertions = Some(HttpAssertions {
        accepted_status: vec![StatusRange { min: 200, max: 204 }],
        body_contains: "ok".into(),
        body_regex: "^o".into(),
        max_response_time: millis(1500),
        ..Default::default()
    });
    let created = server.create(job.clone()).await;
    assert!(!created.id.is_empty());
    assert_eq!(created.version, 1);
    assert_eq!(
        created.desired_state,
        JobState::Stopped as i32,
        "new jobs start stopped"
    );
    assert_eq!(created.name, "shop");
    assert_eq!(created.labels, job.labels);
    assert_eq!(created.interval, secs(30));
    assert_eq!(created.check, job.check);
    assert!(created.create_time.is_some() && created.update_time.is_some());

    let fetched = server
        .jobs
        .clone()
        .get_job(GetJobRequest { id: created.id.clone() })
        .await
        .unwrap();
    assert_eq!(fetched.into_inner().job.unwrap(), created);
}

#[tokio::test]
async fn create_defaults_method_to_get_and_can_start_running() {
    let server = TestServer::start().await;
    let mut job = http_job("running");
    job.desired_state = JobState::Running as i32;
    let created = server.create(job).await;
    assert_eq!(created.desired_state, JobState::Running as i32);
    let Some(Check::Http(check)) = created.check else {
        panic!()
    };
    assert_eq!(check.method, HttpMethod::Get as i32);
}

#[tokio::test]
async fn tcp_jobs_with_locations_round_trip() {
    let server = TestServer::start().await;
    let mut job = http_job("db-port");
    job.check = Some(Check::Tcp(monitor_proto::v1::TcpCheck {
        host: "127.0.0.1".into(),
        port: 5432,
        ..Default::default()
    }));
    job.locations = vec!["eu-1".into(), "us-2".into()];
    let created = server.create(job.clone()).await;
    assert_eq!(created.check, job.check);
    assert_eq!(created.locations, job.locations);
    // Switching the kind through the mask replaces the check.
    let mut change = http_job("db-port");
    change.id = created.id.clone();
    change.version = 1;
    let updated = server
        .jobs
        .clone()
        .update_job(UpdateJobRequest {
            job: Some(change.clone()),
            update_mask: Some(FieldMask {
                paths: vec!["http".into(), "locations".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    let Some(Check::Http(check)) = updated.check else {
        panic!("kind switched to HTTP")
    };
    assert_eq!(check.url, "http://127.0.0.1:8081/website_mock");
    assert!(updated.locations.is_empty());
}

#[tokio::test]
async fn duplicate_name_is_already_exists() {
    let server = TestServer::start().await;
    server.create(http_job("same")).await;
    let err = server
        .jobs
        .clone()
        .create_job(CreateJobRequest {
            job: Some(http_job("same")),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(err.message().contains("\"same\""), "{}", err.message());
}

#[tokio::test]
async fn create_without_job_is_invalid() {
    let server = TestServer::start().await;
    let err = server
        .jobs
        .clone()
        .create_job(CreateJobRequest { job: None })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["job"]);
}

/// Each validation rule, seen through the API: the violation names the field.
#[tokio::test]
async fn every_validation_rule_names_its_field() {
    let server = TestServer::start().await;
    type Mutation = Box<dyn Fn(&mut Job)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        ("empty name", Box::new(|j| j.name.clear()), "job.name"),
        ("long name", Box::new(|j| j.name = "x".repeat(129)), "job.name"),
        ("padded name", Box::new(|j| j.name = " x".into()), "job.name"),
        ("control char", Box::new(|j| j.name = "a\u{7}".into()), "job.name"),
        ("no interval", Box::new(|j| j.interval = None), "job.interval"),
        ("short interval", Box::new(|j| j.interval = millis(999)), "job.interval"),
        ("long interval", Box::new(|j| j.interval = secs(86_401)), "job.interval"),
        ("negative interval", Box::new(|j| j.interval = secs(-5)), "job.interval"),
        (
            "sub-ms interval",
            Box::new(|j| j.interval = Some(pbjson_types::Duration { seconds: 2, nanos: 1 })),
            "job.interval",
        ),
        ("no timeout", Box::new(|j| j.timeout = None), "job.timeout"),
        ("zero timeout", Box::new(|j| j.timeout = secs(0)), "job.timeout"),
        (
            "timeout over 60s",
            Box::new(|j| {
                j.interval = secs(120);
                j.timeout = secs(61);
            }),
            "job.timeout",
        ),
        (
            "timeout over interval",
            Box::new(|j| {
                j.interval = secs(2);
                j.timeout = secs(3);
            }),
            "job.timeout",
        ),
        ("unknown state", Box::new(|j| j.desired_state = 9), "job.desired_state"),
        ("no check", Box::new(|j| j.check = None), "job.check"),
        ("empty url", Box::new(|j| http(j).url.clear()), "job.http.url"),
        (
            "relative url",
            Box::new(|j| http(j).url = "/path".into()),
            "job.http.url",
        ),
        (
            "ftp url",
            Box::new(|j| http(j).url = "ftp://host/x".into()),
            "job.http.url",
        ),
        (
            "empty host",
            Box::new(|j| http(j).url = "http://:80/x".into()),
            "job.http.url",
        ),
        (
            "huge url",
            Box::new(|j| http(j).url = format!("http://h/{}", "a".repeat(2100))),
            "job.http.url",
        ),
        ("unknown method", Box::new(|j| http(j).method = 42), "job.http.method"),
        (
            "bad header name",
            Box::new(|j| {
                http(j).headers = vec![HttpHeader {
                    name: "Bad Name".into(),
                    value: "v".into(),
                }]
            }),
            "job.http.headers[0].name",
        ),
        (
            "bad header value",
            Box::new(|j| {
                http(j).headers = vec![HttpHeader {
                    name: "X".into(),
                    value: "a\r\nb".into(),
                }]
            }),
            "job.http.headers[0].value",
        ),
        (
            "long header value",
            Box::new(|j| {
                http(j).headers = vec![HttpHeader {
                    name: "X".into(),
                    value: "v".repeat(4097),
                }]
            }),
            "job.http.headers[0].value",
        ),
        (
            "too many headers",
            Box::new(|j| {
                http(j).headers = (0..33)
                    .map(|i| HttpHeader {
                        name: format!("X-{i}"),
                        value: "v".into(),
                    })
                    .collect()
            }),
            "job.http.headers",
        ),
        (
            "headers too large",
            Box::new(|j| {
                http(j).headers = (0..5)
                    .map(|i| HttpHeader {
                        name: format!("X-{i}"),
                        value: "v".repeat(4000),
                    })
                    .collect()
            }),
            "job.http.headers",
        ),
        (
            "body too large",
            Box::new(|j| {
                http(j).method = HttpMethod::Post as i32;
                http(j).body = vec![b'x'; 64 * 1024 + 1];
            }),
            "job.http.body",
        ),
        (
            "body on GET",
            Box::new(|j| http(j).body = b"x".to_vec()),
            "job.http.body",
        ),
        (
            "status out of range",
            Box::new(|j| {
                http(j).assertions = Some(HttpAssertions {
                    accepted_status: vec![StatusRange { min: 99, max: 200 }],
                    ..Default::default()
                })
            }),
            "job.http.assertions.accepted_status[0]",
        ),
        (
            "status min above max",
            Box::new(|j| {
                http(j).assertions = Some(HttpAssertions {
                    accepted_status: vec![StatusRange { min: 200, max: 299 }, StatusRange { min: 500, max: 400 }],
                    ..Default::default()
                })
            }),
            "job.http.assertions.accepted_status[1]",
        ),
        (
            "too many ranges",
            Box::new(|j| {
                http(j).assertions = Some(HttpAssertions {
                    accepted_status: vec![StatusRange { min: 200, max: 200 }; 33],
                    ..Default::default()
                })
            }),
            "job.http.assertions.accepted_status",
        ),
        (
            "bad regex",
            Box::new(|j| {
                http(j).assertions = Some(HttpAssertions {
                    body_regex: "(".into(),
                    ..Default::default()
                })
            }),
            "job.http.assertions.body_regex",
        ),
        (
            "long contains",
            Box::new(|j| {
                http(j).assertions = Some(HttpAssertions {
                    body_contains: "x".repeat(1025),
                    ..Default::default()
                })
            }),
            "job.http.assertions.body_contains",
        ),
        (
            "max response over timeout",
            Box::new(|j| {
                http(j).assertions = Some(HttpAssertions {
                    max_response_time: secs(6),
                    ..Default::default()
                })
            }),
            "job.http.assertions.max_response_time",
        ),
        (
            "zero max response",
            Box::new(|j| {
                http(j).assertions = Some(HttpAssertions {
                    max_response_time: secs(0),
                    ..Default::default()
                })
            }),
            "job.http.assertions.max_response_time",
        ),
        (
            "bad label key",
            Box::new(|j| {
                j.labels.insert("-bad".into(), "v".into());
            }),
            "job.labels[\"-bad\"]",
        ),
        (
            "long label value",
            Box::new(|j| {
                j.labels.insert("k".into(), "v".repeat(257));
            }),
            "job.labels[\"k\"]",
        ),
        (
            "too many labels",
            Box::new(|j| {
                for i in 0..65 {
                    j.labels.insert(format!("k{i}"), "v".into());
                }
            }),
            "job.labels",
        ),
    ];
    for (what, mutate, field) in cases {
        let mut job = http_job("valid");
        mutate(&mut job);
        let err = server
            .jobs
            .clone()
            .create_job(CreateJobRequest { job: Some(job) })
            .await
            .unwrap_err();
        let fields = violated_fields(&err);
        assert!(
            fields.iter().any(|f| f == field),
            "{what}: expected {field} in {fields:?} ({})",
            err.message()
        );
        assert!(
            err.message().contains(field),
            "{what}: message names the field: {}",
            err.message()
        );
    }
    // Nothing invalid was stored.
    let listed = server
        .jobs
        .clone()
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0);
}

#[tokio::test]
async fn several_violations_are_reported_together() {
    let server = TestServer::start().await;
    let mut job = http_job("");
    job.interval = None;
    http(&mut job).url = "nope".into();
    let err = server
        .jobs
        .clone()
        .create_job(CreateJobRequest { job: Some(job) })
        .await
        .unwrap_err();
    // The timeout cannot be compared with a missing interval, so it is not flagged.
    assert_eq!(violated_fields(&err), ["job.name", "job.interval", "job.http.url"]);
}

#[tokio::test]
async fn get_unknown_or_malformed_id() {
    let server = TestServer::start().await;
    let mut jobs = server.jobs.clone();
    let err = jobs
        .get_job(GetJobRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().contains("not found"));
    let err = jobs.get_job(GetJobRequest { id: "42".into() }).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["id"]);
    let err = jobs.get_job(GetJobRequest { id: String::new() }).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["id"]);
}

#[tokio::test]
async fn list_pages_filters_and_rejects_bad_tokens() {
    let server = TestServer::start().await;
    let mut names = Vec::new();
    for i in 0..5 {
        let mut job = http_job(&format!("site-{i}"));
        if i % 2 == 0 {
            job.labels.insert("env".into(), "prod".into());
            job.desired_state = JobState::Running as i32;
        }
        names.push(server.create(job).await.name);
    }
    let mut jobs = server.jobs.clone();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = jobs
            .list_jobs(ListJobsRequest {
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(page.total_size, 5);
        assert!(page.jobs.len() <= 2);
        seen.extend(page.jobs.into_iter().map(|j| j.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen, names, "every job once, in creation order");

    let running = jobs
        .list_jobs(ListJobsRequest {
            state: JobState::Running as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(running.total_size, 3);
    assert!(running.jobs.iter().all(|j| j.desired_state == JobState::Running as i32));
    let prod = jobs
        .list_jobs(ListJobsRequest {
            label_selector: vec!["env=prod".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        prod.jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(),
        ["site-0", "site-2", "site-4"]
    );
    let by_name = jobs
        .list_jobs(ListJobsRequest {
            name_contains: "SITE-3".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_name.jobs.len(), 1);

    // A token from one filter is refused under another.
    let first = jobs
        .list_jobs(ListJobsRequest {
            page_size: 1,
            state: JobState::Running as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let err = jobs
        .list_jobs(ListJobsRequest {
            page_size: 1,
            page_token: first.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_token"]);
    let err = jobs
        .list_jobs(ListJobsRequest {
            page_token: "garbage!".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_token"]);
    let err = jobs
        .list_jobs(ListJobsRequest {
            page_size: -1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["page_size"]);
    let err = jobs
        .list_jobs(ListJobsRequest {
            state: 7,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["state"]);
    let err = jobs
        .list_jobs(ListJobsRequest {
            label_selector: vec!["env".into(), "=x".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["label_selector[0]", "label_selector[1]"]);
    // Oversized pages are capped, not refused.
    let capped = jobs
        .list_jobs(ListJobsRequest {
            page_size: 5000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(capped.into_inner().jobs.len(), 5);
}

#[tokio::test]
async fn update_with_mask_with_full_replace_and_stale_versions() {
    let server = TestServer::start().await;
    let created = server.create(http_job("before")).await;
    let mut jobs = server.jobs.clone();

    // Masked: only the name changes, whatever else the message carries.
    let mut change = Job {
        id: created.id.clone(),
        version: 1,
        name: "after".into(),
        ..Default::default()
    };
    change.interval = secs(5000);
    let updated = jobs
        .update_job(UpdateJobRequest {
            job: Some(change),
            update_mask: Some(FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(updated.name, "after");
    assert_eq!(updated.interval, created.interval);
    assert_eq!(updated.version, 2);

    // Stale version: ABORTED, nothing written.
    let stale = Job {
        id: created.id.clone(),
        version: 1,
        name: "again".into(),
        ..Default::default()
    };
    let err = jobs
        .update_job(UpdateJobRequest {
            job: Some(stale),
            update_mask: Some(FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert!(err.message().contains("version 2"), "{}", err.message());

    // Full replace (no mask) keeps the state when none is given.
    jobs.start_job(StartJobRequest { id: created.id.clone() })
        .await
        .unwrap();
    let mut replacement = http_job("replaced");
    replacement.id = created.id.clone();
    replacement.version = 3;
    replacement.interval = secs(60);
    let replaced = jobs
        .update_job(UpdateJobRequest {
            job: Some(replacement.clone()),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(replaced.name, "replaced");
    assert_eq!(replaced.interval, secs(60));
    assert_eq!(replaced.desired_state, JobState::Running as i32);
    assert_eq!(replaced.version, 4);

    // An update that changes nothing keeps the version.
    replacement.version = 4;
    let same = jobs
        .update_job(UpdateJobRequest {
            job: Some(replacement),
            update_mask: None,
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(same.version, 4);

    // State through the mask.
    let stop = Job {
        id: created.id.clone(),
        version: 4,
        desired_state: JobState::Stopped as i32,
        ..Default::default()
    };
    let stopped = jobs
        .update_job(UpdateJobRequest {
            job: Some(stop),
            update_mask: Some(FieldMask {
                paths: vec!["desired_state".into()],
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(stopped.desired_state, JobState::Stopped as i32);
    assert_ne!(stopped.state_change_time, replaced.state_change_time);
}

#[tokio::test]
async fn update_rejects_bad_requests() {
    let server = TestServer::start().await;
    let created = server.create(http_job("a")).await;
    server.create(http_job("b")).await;
    let mut jobs = server.jobs.clone();
    let masked = |job: Job, paths: &[&str]| UpdateJobRequest {
        job: Some(job),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }),
    };

    let err = jobs
        .update_job(UpdateJobRequest {
            job: None,
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["job"]);
    let err = jobs
        .update_job(masked(
            Job {
                version: 1,
                ..Default::default()
            },
            &["name"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["job.id"]);
    let err = jobs
        .update_job(masked(
            Job {
                id: created.id.clone(),
                ..Default::default()
            },
            &["name"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["job.version"]);
    let err = jobs
        .update_job(masked(
            Job {
                id: created.id.clone(),
                version: 1,
                ..Default::default()
            },
            &["id"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["update_mask.paths[0]"]);
    let err = jobs
        .update_job(masked(
            Job {
                id: uuid::Uuid::now_v7().to_string(),
                version: 1,
                ..Default::default()
            },
            &["name"],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // The merged job is validated like a new one.
    let err = jobs
        .update_job(masked(
            Job {
                id: created.id.clone(),
                version: 1,
                timeout: secs(0),
                ..Default::default()
            },
            &["timeout"],
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["job.timeout"]);
    // Renaming onto a taken name.
    let err = jobs
        .update_job(masked(
            Job {
                id: created.id.clone(),
                version: 1,
                name: "b".into(),
                ..Default::default()
            },
            &["name"],
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn start_and_stop_are_idempotent_and_say_so() {
    let server = TestServer::start().await;
    let created = server.create(http_job("toggle")).await;
    let mut jobs = server.jobs.clone();
    let id = created.id.clone();

    let started = jobs
        .start_job(StartJobRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(started.changed);
    assert_eq!(started.message, "job started");
    assert_eq!(started.job.as_ref().unwrap().desired_state, JobState::Running as i32);
    let again = jobs
        .start_job(StartJobRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.changed);
    assert!(again.message.contains("already running"));
    assert_eq!(again.job.unwrap().version, started.job.unwrap().version);

    let status = jobs
        .get_job_status(GetJobStatusRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    let status = status.status.unwrap();
    assert_eq!(status.phase, JobPhase::Pending as i32);
    assert_eq!(status.desired_state, JobState::Running as i32);
    assert!(status.assigned_workers.is_empty());

    let stopped = jobs
        .stop_job(StopJobRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(stopped.changed);
    assert_eq!(stopped.message, "job stopped");
    let again = jobs
        .stop_job(StopJobRequest { id: id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(!again.changed);
    assert!(again.message.contains("already stopped"));
    let status = jobs
        .get_job_status(GetJobStatusRequest { id })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(status.phase, JobPhase::Stopped as i32);

    for missing in [uuid::Uuid::now_v7().to_string()] {
        assert_eq!(
            jobs.start_job(StartJobRequest { id: missing.clone() })
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        assert_eq!(
            jobs.stop_job(StopJobRequest { id: missing.clone() })
                .await
                .unwrap_err()
                .code(),
            Code::NotFound
        );
        let err = jobs
            .get_job_status(GetJobStatusRequest { id: missing })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
    }
    let err = jobs.start_job(StartJobRequest { id: "x".into() }).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["id"]);
}

#[tokio::test]
async fn delete_checks_version_and_forgets_the_job() {
    let server = TestServer::start().await;
    let created = server.create(http_job("gone")).await;
    let mut jobs = server.jobs.clone();
    let err = jobs
        .delete_job(DeleteJobRequest {
            id: created.id.clone(),
            version: 9,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    let err = jobs
        .delete_job(DeleteJobRequest {
            id: created.id.clone(),
            version: -1,
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["version"]);
    jobs.delete_job(DeleteJobRequest {
        id: created.id.clone(),
        version: 1,
    })
    .await
    .unwrap();
    let err = jobs
        .get_job(GetJobRequest { id: created.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = jobs
        .delete_job(DeleteJobRequest {
            id: created.id,
            version: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // The name is free again.
    server.create(http_job("gone")).await;
}

#[tokio::test]
async fn concurrent_updates_at_one_version_let_exactly_one_win() {
    let server = TestServer::start().await;
    let created = server.create(http_job("race")).await;
    let mut handles = Vec::new();
    for i in 0..8 {
        let mut jobs = server.jobs.clone();
        let id = created.id.clone();
        handles.push(tokio::spawn(async move {
            jobs.update_job(UpdateJobRequest {
                job: Some(Job {
                    id,
                    version: 1,
                    name: format!("race-{i}"),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: vec!["name".into()],
                }),
            })
            .await
        }));
    }
    let mut won = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Ok(_) => won += 1,
            Err(status) => assert_eq!(status.code(), Code::Aborted),
        }
    }
    assert_eq!(won, 1);
}
