//! The running server driven by the real grpcurl binary (1.8.6, which asks
//! reflection v1alpha), as an operator would.

use std::path::PathBuf;

use monitor_testkit::server::TestServer;
use serde_json::Value;

/// grpcurl from `GRPCURL`, the project's `.tools/bin`, or PATH.
pub fn grpcurl_binary() -> PathBuf {
    if let Ok(path) = std::env::var("GRPCURL") {
        return path.into();
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/grpcurl");
    if local.exists() {
        return local;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("grpcurl"))
            .find(|p| p.exists())
    });
    on_path
        .unwrap_or_else(|| panic!("grpcurl not found: run scripts/test, which installs grpcurl 1.8.6 into .tools/bin"))
}

pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs grpcurl against `server`: over TLS trusting its CA when it speaks
/// TLS, else in plaintext.
pub async fn grpcurl(server: &TestServer, args: &[&str]) -> Output {
    let addr = server.addr.to_string();
    let mut command = tokio::process::Command::new(grpcurl_binary());
    match &server.ca_file {
        Some(ca) => command.arg("-cacert").arg(ca),
        None => command.arg("-plaintext"),
    };
    // Everything but the last argument (the method) goes before the address.
    let (method, flags) = args.split_last().unwrap();
    command
        .args(flags)
        .arg(&addr)
        .args(method.split(' ').filter(|s| !s.is_empty()));
    let out = command.output().await.expect("grpcurl runs");
    Output {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub async fn call(server: &TestServer, method: &str, body: &str) -> Value {
    let out = grpcurl(server, &["-d", body, method]).await;
    assert!(out.success, "{method} failed: {}", out.stderr);
    serde_json::from_str(&out.stdout).unwrap_or_else(|err| panic!("{method} printed non-JSON ({err}): {}", out.stdout))
}

#[tokio::test]
async fn operator_session_with_grpcurl() {
    let server = TestServer::start().await;

    let list = grpcurl(&server, &["list"]).await;
    assert!(list.success, "{}", list.stderr);
    for service in [
        "monitor.v1.JobService",
        "monitor.v1.AlertService",
        "monitor.v1.AdminService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            list.stdout.lines().any(|l| l == service),
            "list shows {service}: {}",
            list.stdout
        );
    }
    let describe = grpcurl(&server, &["describe monitor.v1.JobService"]).await;
    assert!(describe.success, "{}", describe.stderr);
    assert!(describe.stdout.contains("rpc CreateJob"), "{}", describe.stdout);
    let describe = grpcurl(&server, &["describe monitor.v1.HttpCheck"]).await;
    assert!(describe.stdout.contains("follow_redirects"), "{}", describe.stdout);

    let created = call(
        &server,
        "monitor.v1.JobService/CreateJob",
        r#"{"job": {"name": "cli", "interval": "15s", "timeout": "3s", "labels": {"via": "grpcurl"},
            "http": {"url": "http://127.0.0.1:8081/website_mock", "method": "HTTP_METHOD_HEAD"}}}"#,
    )
    .await;
    let job = &created["job"];
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["name"], "cli");
    assert_eq!(job["interval"], "15s");
    assert_eq!(job["version"], "1", "int64 prints as a string in proto3 JSON");
    assert_eq!(job["desiredState"], "JOB_STATE_STOPPED");
    assert_eq!(job["http"]["method"], "HTTP_METHOD_HEAD");

    let got = call(&server, "monitor.v1.JobService/GetJob", &format!(r#"{{"id": "{id}"}}"#)).await;
    assert_eq!(got["job"], *job);

    let started = call(
        &server,
        "monitor.v1.JobService/StartJob",
        &format!(r#"{{"id": "{id}"}}"#),
    )
    .await;
    assert_eq!(started["changed"], true);
    assert_eq!(started["job"]["desiredState"], "JOB_STATE_RUNNING");
    let status = call(
        &server,
        "monitor.v1.JobService/GetJobStatus",
        &format!(r#"{{"id": "{id}"}}"#),
    )
    .await;
    assert_eq!(status["status"]["phase"], "JOB_PHASE_PENDING");
    let again = call(
        &server,
        "monitor.v1.JobService/StartJob",
        &format!(r#"{{"id": "{id}"}}"#),
    )
    .await;
    assert!(
        again.get("changed").is_none(),
        "false is the default and is omitted: {again}"
    );
    assert!(again["message"].as_str().unwrap().contains("already running"));

    let stopped = call(
        &server,
        "monitor.v1.JobService/StopJob",
        &format!(r#"{{"id": "{id}"}}"#),
    )
    .await;
    assert_eq!(stopped["job"]["desiredState"], "JOB_STATE_STOPPED");
    let status = call(
        &server,
        "monitor.v1.JobService/GetJobStatus",
        &format!(r#"{{"id": "{id}"}}"#),
    )
    .await;
    assert_eq!(status["status"]["phase"], "JOB_PHASE_STOPPED");

    let listed = call(
        &server,
        "monitor.v1.JobService/ListJobs",
        r#"{"labelSelector": ["via=grpcurl"]}"#,
    )
    .await;
    assert_eq!(listed["totalSize"], "1");

    // grpcurl 1.8 reads a FieldMask as {"paths": [...]}, not the "a,b" string.
    let updated = call(
        &server,
        "monitor.v1.JobService/UpdateJob",
        &format!(
            r#"{{"job": {{"id": "{id}", "version": "3", "name": "cli-renamed"}}, "updateMask": {{"paths": ["name"]}}}}"#
        ),
    )
    .await;
    assert_eq!(updated["job"]["name"], "cli-renamed");
    assert_eq!(updated["job"]["version"], "4");

    call(
        &server,
        "monitor.v1.JobService/DeleteJob",
        &format!(r#"{{"id": "{id}"}}"#),
    )
    .await;
    let gone = grpcurl(
        &server,
        &["-d", &format!(r#"{{"id": "{id}"}}"#), "monitor.v1.JobService/GetJob"],
    )
    .await;
    assert!(!gone.success);
    assert!(gone.stderr.contains("Code: NotFound"), "{}", gone.stderr);

    let health = call(&server, "grpc.health.v1.Health/Check", "{}").await;
    assert!(health["status"] == "SERVING" || health["status"] == "NOT_SERVING");
    let info = call(&server, "monitor.v1.AdminService/GetServerInfo", "{}").await;
    assert_eq!(info["name"], "monitor-server");
}

#[tokio::test]
async fn invalid_create_fails_with_invalid_argument_and_field_details() {
    let server = TestServer::start().await;
    let out = grpcurl(
        &server,
        &[
            "-d",
            r#"{"job": {"name": "bad", "interval": "10s", "timeout": "5s", "http": {"url": "not a url"}}}"#,
            "monitor.v1.JobService/CreateJob",
        ],
    )
    .await;
    assert!(!out.success);
    assert!(out.stderr.contains("Code: InvalidArgument"), "{}", out.stderr);
    assert!(out.stderr.contains("job.http.url"), "{}", out.stderr);
    // Reflection carries google.rpc.BadRequest, so grpcurl decodes the details.
    assert!(
        out.stderr.contains("google.rpc.BadRequest") && out.stderr.contains("fieldViolations"),
        "{}",
        out.stderr
    );

    let unknown_field = grpcurl(
        &server,
        &["-d", r#"{"job": {"nmae": "x"}}"#, "monitor.v1.JobService/CreateJob"],
    )
    .await;
    assert!(!unknown_field.success);
    assert!(unknown_field.stderr.contains("nmae"), "{}", unknown_field.stderr);
}

#[tokio::test]
async fn a_job_created_over_rest_reads_the_same_in_grpcurl() {
    let server = TestServer::start().await;
    let body = serde_json::json!({
        "name": "same-everywhere", "interval": "45s", "timeout": "2.500s", "labels": {"a": "b"},
        "desiredState": "JOB_STATE_RUNNING",
        "http": {"url": "https://example.com/x?y=1", "method": "HTTP_METHOD_POST", "body": "aGVsbG8=",
                 "headers": [{"name": "X-A", "value": "1"}], "followRedirects": true,
                 "assertions": {"acceptedStatus": [{"min": 200, "max": 204}], "bodyContains": "ok",
                                "maxResponseTime": "1.250s"}}
    });
    let created: Value = reqwest::Client::new()
        .post(server.url("/v1/jobs"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rest_job = created["job"].clone();
    let id = rest_job["id"].as_str().unwrap();
    let grpc = call(&server, "monitor.v1.JobService/GetJob", &format!(r#"{{"id": "{id}"}}"#)).await;
    // Timestamps are compared as instants: grpcurl and pbjson may pick a
    // different number of fractional digits for the same time.
    let normalise = |mut job: Value| {
        for key in ["createTime", "updateTime", "stateChangeTime"] {
            let text = job[key].as_str().unwrap();
            let at = chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap();
            job[key] = at.into();
        }
        job
    };
    assert_eq!(
        normalise(grpc["job"].clone()),
        normalise(rest_job),
        "REST and grpcurl disagree"
    );
}
