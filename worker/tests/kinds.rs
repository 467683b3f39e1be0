//! Every check kind end to end: jobs created over gRPC and over REST, run
//! by a real `monitor-worker probe` process against real local servers
//! (the mock's listeners, 127.0.0.1 for ICMP), their results on the real
//! broker, rolled up by a real aggregator; the job status shows each
//! job's latest result with the kind's detail and QueryMetrics the kind's
//! counters.

use std::collections::BTreeMap;
use std::time::Duration;

mod common;

use monitor_proto::v1::{
    CheckOutcome, CheckResult, GetJobStatusRequest, Job, QueryMetricsRequest, check_result::Detail,
};
use monitor_testkit::{
    fresh,
    kafka::shared_brokers,
    mock::{MockServer, tls_config},
    mock_dns::MockDns,
    server::TestServer,
    wait_until,
};
use serde_json::{Value, json};

const WORKER_TOKEN: &str = "worker-token-for-tests-0001";

/// A job of one kind, as the REST body (proto3 JSON) and, parsed from it,
/// as the gRPC message: both paths take the same definition.
struct KindJob {
    name: &'static str,
    json: Value,
}

impl KindJob {
    fn new(name: &'static str, check: Value) -> Self {
        let mut json = json!({
            "name": name,
            "interval": "1s",
            "timeout": "1s",
            "desiredState": "JOB_STATE_RUNNING",
        });
        let (kind, spec) = check.as_object().unwrap().iter().next().unwrap();
        json[kind] = spec.clone();
        Self { name, json }
    }

    /// The same job named `<kind>-<via>`, for creating it once per API.
    fn named(&self, via: &str) -> KindJob {
        let mut json = self.json.clone();
        json["name"] = json!(format!("{}-{via}", self.name));
        KindJob { name: self.name, json }
    }

    fn message(&self) -> Job {
        serde_json::from_value(self.json.clone()).unwrap_or_else(|error| panic!("{}: {error}", self.name))
    }
}

/// The kinds' jobs against `mock` and `dns`, each expected to pass.
fn jobs(mock: &MockServer, dns: &MockDns) -> Vec<KindJob> {
    let http = mock.address;
    let https = mock.tls_address.expect("started with TLS");
    let grpc = mock.grpc_address.expect("started with gRPC");
    let ssh = mock.ssh_address.expect("started with --ssh-listen");
    let socks5 = mock.socks5_address.expect("started with --socks5-listen");
    vec![
        KindJob::new(
            "http",
            json!({"http": {
                "url": format!("https://localhost:{}/echo", https.port()),
                "method": "HTTP_METHOD_POST",
                "body": base64_of(br#"{"status":"ok"}"#),
                "insecureSkipTlsVerify": true,
                "assertions": {
                    "headers": [{"name": "content-type", "condition": "HEADER_CONDITION_REGEX", "value": "json"}],
                    "jsonPath": [{"path": "$.method", "condition": "JSON_CONDITION_EQUALS", "value": "POST"}],
                    "certMinDaysRemaining": 7,
                },
            }}),
        ),
        KindJob::new("tcp", json!({"tcp": {"host": "127.0.0.1", "port": http.port()}})),
        KindJob::new(
            "icmp",
            json!({"icmp": {"host": "127.0.0.1", "count": 2, "interval": "0.05s"}}),
        ),
        KindJob::new(
            "tls",
            json!({"tls": {
                "host": "127.0.0.1",
                "port": https.port(),
                "assertions": {"allowUntrustedChain": true, "minDaysRemaining": 7},
            }}),
        ),
        KindJob::new(
            "dns",
            json!({"dns": {
                "name": "www.mock.test",
                "recordType": "DNS_RECORD_TYPE_A",
                "server": dns.address.to_string(),
                "assertions": {"answersEqual": ["192.0.2.10", "192.0.2.11"]},
            }}),
        ),
        KindJob::new(
            "grpc_health",
            json!({"grpcHealth": {"host": "127.0.0.1", "port": grpc.port()}}),
        ),
        KindJob::new(
            "websocket",
            json!({"websocket": {"url": mock.ws_url("/ws/echo"), "send": "ping", "expectContains": "ping"}}),
        ),
        KindJob::new(
            "ssh",
            json!({"ssh": {"host": "127.0.0.1", "port": ssh.port(), "bannerRegex": "^SSH-2\\.0-"}}),
        ),
        KindJob::new(
            "socks5",
            json!({"socks5": {
                "proxy": {"host": "127.0.0.1", "port": socks5.port(), "username": "probe", "password": "s0cks"},
                "targetHost": "127.0.0.1",
                "targetPort": http.port(),
            }}),
        ),
    ]
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The detail's kind, as the oneof names it.
fn detail_kind(result: &CheckResult) -> &'static str {
    match &result.detail {
        Some(Detail::Http(_)) => "http",
        Some(Detail::Tcp(_)) => "tcp",
        Some(Detail::Dns(_)) => "dns",
        Some(Detail::Icmp(_)) => "icmp",
        Some(Detail::Tls(_)) => "tls",
        Some(Detail::GrpcHealth(_)) => "grpc_health",
        Some(Detail::Websocket(_)) => "websocket",
        Some(Detail::Ssh(_)) => "ssh",
        Some(Detail::Socks5(_)) => "socks5",
        None => "none",
    }
}

/// The answer counters a kind's rollup must show.
fn expected_counters(kind: &str) -> &'static [&'static str] {
    match kind {
        "http" => &["200"],
        "dns" => &["NOERROR"],
        "icmp" => &["icmp_sent", "icmp_lost"],
        "grpc_health" => &["SERVING"],
        "websocket" => &["101"],
        _ => &[],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_runs_on_a_probe_and_shows_its_detail_and_rollup() {
    let (mock, _certificate) = MockServer::start_with_grpc(
        &[
            "--latency-ms=0",
            "--ssh-listen=127.0.0.1:0",
            "--socks5-listen=127.0.0.1:0",
            "--socks5-user=probe",
            "--socks5-password=s0cks",
        ],
        Some(&tls_config(-1, 30)),
    )
    .await;
    let dns = MockDns::start().await;
    let server = TestServer::builder()
        .worker_tokens(&format!("worker-*:{WORKER_TOKEN}"))
        .start()
        .await;
    let topic = fresh("checks");
    let brokers = shared_brokers();

    // Every kind twice: once created over gRPC, once over REST.
    let http = reqwest::Client::new();
    let mut ids = BTreeMap::new();
    for job in jobs(&mock, &dns) {
        let grpc = job.named("grpc");
        let id = server.create(grpc.message()).await.id;
        ids.insert((job.name, "grpc"), id);

        let rest = job.named("rest");
        let response = http.post(server.url("/v1/jobs")).json(&rest.json).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, reqwest::StatusCode::CREATED, "{}: {body}", job.name);
        assert_eq!(body["job"]["desiredState"], "JOB_STATE_RUNNING", "{body}");
        ids.insert((job.name, "rest"), body["job"]["id"].as_str().unwrap().to_owned());
    }

    let server_url = format!("http://{}", server.addr);
    let probe = common::spawn_worker(
        "probe",
        &[
            "--server",
            &server_url,
            "--worker-id",
            "worker-kinds",
            "--token",
            WORKER_TOKEN,
            "--kafka-brokers",
            &brokers,
            "--kafka-topic",
            &topic,
            "--topic-partitions",
            "1",
            "--allow-net",
            "127.0.0.0/8",
        ],
    );
    let aggregator = common::spawn_aggregator(&server.db.url, &brokers, &topic);

    // Each job's latest result, as the status reports it, is its kind's and passed.
    for ((kind, via), id) in &ids {
        let result = wait_until(
            &format!("{kind} created over {via}: a passing result"),
            Duration::from_secs(30),
            || async {
                let status = server
                    .jobs
                    .clone()
                    .get_job_status(GetJobStatusRequest { id: id.clone() })
                    .await
                    .map_err(|status| status.to_string())?
                    .into_inner()
                    .status
                    .ok_or("no status")?;
                let result = status
                    .placements
                    .first()
                    .and_then(|placement| placement.last_result.clone())
                    .ok_or_else(|| format!("no result yet: {status:?}"))?;
                if result.outcome() == CheckOutcome::Ok {
                    Ok(result)
                } else {
                    Err(format!("{result:?}"))
                }
            },
        )
        .await;
        assert_eq!(detail_kind(&result), *kind, "{result:?}");
        // Every kind but the bare connects judged at least one assertion.
        if !matches!(*kind, "tcp" | "socks5") {
            assert!(
                result.assertions.iter().all(|assertion| assertion.passed) && !result.assertions.is_empty(),
                "{result:?}"
            );
        }
    }

    // The rollups count each job's checks and its kind's answer counters.
    for ((kind, via), id) in &ids {
        let request = QueryMetricsRequest {
            job_id: id.clone(),
            granularity: "1m".into(),
            ..QueryMetricsRequest::default()
        };
        wait_until(
            &format!("{kind} created over {via}: rolled up"),
            Duration::from_secs(30),
            || async {
                let response = server
                    .jobs
                    .clone()
                    .query_metrics(request.clone())
                    .await
                    .map_err(|status| status.to_string())?
                    .into_inner();
                let summary = response.summary.ok_or("no summary")?;
                if summary.checks == 0 || summary.rt_count.unwrap_or(0) == 0 {
                    return Err(format!("{summary:?}"));
                }
                for counter in expected_counters(kind) {
                    if !summary.status_counts.contains_key(*counter) {
                        return Err(format!("no {counter}: {summary:?}"));
                    }
                }
                Ok(())
            },
        )
        .await;
    }

    let ids: Vec<String> = ids.into_values().collect();
    server.stop_jobs(&ids).await;
    probe.terminate().await;
    aggregator.terminate().await;
}
