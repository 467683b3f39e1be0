//! Worker streams from outside: a worker token connects only as the ids it
//! names, epochs come from the server only (an invented one is fenced and
//! assignment goes on), epochs keep rising across a restart, and a hello
//! is bounded, as is the registry.

use std::{collections::HashMap, time::Duration};

use monitor_proto::v1::{
    AssignmentRef, ConnectRequest, ConnectResponse, StartJobRequest, WorkerHello, connect_request, connect_response,
    worker_service_client::WorkerServiceClient,
};
use monitor_server::fleet::RegistryConfig;
use monitor_testkit::server::{ADMIN_TOKEN, Bearer, READ_TOKEN, TestServer, TestServerBuilder};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Streaming};

use crate::harness::http_job;

const PROBE_TOKEN: &str = "probe-token-for-tests-0005";

/// Tokens of every role, and a worker token for the ids `probe-a*`.
fn control_plane(workers: RegistryConfig) -> TestServerBuilder {
    TestServer::builder()
        .api_tokens()
        .worker_tokens(&format!("probe-a*:{PROBE_TOKEN}"))
        .registry(workers)
}

fn quick_registry() -> RegistryConfig {
    RegistryConfig {
        lease: Duration::from_millis(1_500),
        heartbeat_interval: Duration::from_millis(300),
        ..RegistryConfig::default()
    }
}

async fn start(workers: RegistryConfig) -> TestServer {
    control_plane(workers).start().await
}

fn hello(worker_id: &str) -> WorkerHello {
    WorkerHello {
        worker_id: worker_id.into(),
        version: "test".into(),
        capacity: 1,
        ..Default::default()
    }
}

/// An open worker stream: what it receives, and the sender that keeps it
/// open (dropping it ends the stream).
struct Stream {
    inbound: Streaming<ConnectResponse>,
    _outbound: mpsc::Sender<ConnectRequest>,
    /// Sends the heartbeats; stopped with the stream, so dropping a
    /// `Stream` ends the worker's session.
    heartbeats: tokio::task::JoinHandle<()>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.heartbeats.abort();
    }
}

impl Stream {
    /// The next control message, within 30 s.
    async fn next(&mut self) -> connect_response::Kind {
        tokio::time::timeout(Duration::from_secs(30), self.inbound.message())
            .await
            .expect("a control message within 30 s")
            .expect("the stream stays up")
            .expect("the stream stays open")
            .kind
            .expect("a message kind")
    }

    /// The next message that is not a heartbeat.
    async fn next_control(&mut self) -> connect_response::Kind {
        loop {
            match self.next().await {
                connect_response::Kind::Heartbeat(_) => {}
                other => return other,
            }
        }
    }
}

async fn connect(
    server: &TestServer,
    token: Option<&'static str>,
    hello: WorkerHello,
) -> Result<Stream, tonic::Status> {
    let (outbound, rx) = mpsc::channel(16);
    outbound
        .send(ConnectRequest {
            kind: Some(connect_request::Kind::Hello(hello)),
        })
        .await
        .unwrap();
    // Heartbeats, as a real worker sends them (a silent stream is dropped
    // as lost after lease + heartbeat); they stop with the stream.
    let beats = outbound.clone();
    let heartbeats = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let beat = ConnectRequest {
                kind: Some(connect_request::Kind::Heartbeat(Default::default())),
            };
            if beats.send(beat).await.is_err() {
                break;
            }
        }
    });
    let mut client = WorkerServiceClient::with_interceptor(server.channel.clone(), Bearer(token));
    let inbound = match client.connect(ReceiverStream::new(rx)).await {
        Ok(response) => response.into_inner(),
        Err(status) => {
            heartbeats.abort();
            return Err(status);
        }
    };
    Ok(Stream {
        inbound,
        _outbound: outbound,
        heartbeats,
    })
}

#[tokio::test]
async fn a_worker_token_connects_only_as_the_ids_it_names() {
    let server = start(RegistryConfig::default()).await;
    let mut stream = connect(&server, Some(PROBE_TOKEN), hello("probe-a1")).await.unwrap();
    assert!(matches!(stream.next().await, connect_response::Kind::Welcome(_)));

    let other = connect(&server, Some(PROBE_TOKEN), hello("probe-b1"))
        .await
        .err()
        .unwrap();
    assert_eq!(other.code(), Code::PermissionDenied, "{other:?}");
    assert!(other.message().contains("probe-a*"), "{other:?}");
    assert!(!other.message().contains(PROBE_TOKEN), "token echoed: {other:?}");

    let api = connect(&server, Some(ADMIN_TOKEN), hello("probe-a2"))
        .await
        .err()
        .unwrap();
    assert_eq!(api.code(), Code::PermissionDenied, "{api:?}");
    let nothing = connect(&server, None, hello("probe-a2")).await.err().unwrap();
    assert_eq!(nothing.code(), Code::Unauthenticated, "{nothing:?}");
    let unknown = connect(&server, Some("unknown-token-0123456789"), hello("probe-a2"))
        .await
        .err()
        .unwrap();
    assert_eq!(unknown.code(), Code::Unauthenticated, "{unknown:?}");
}

/// A running job over `server`, returning its id.
async fn running_job(server: &TestServer, name: &str) -> String {
    let mut jobs = server.jobs_as(Some(ADMIN_TOKEN));
    let job = jobs
        .create_job(monitor_proto::v1::CreateJobRequest {
            job: Some(http_job(name)),
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    jobs.start_job(StartJobRequest { id: job.id.clone() }).await.unwrap();
    job.id
}

/// The next Assign on `stream`, skipping heartbeats; panics on a Revoke.
async fn next_assign(stream: &mut Stream) -> monitor_proto::v1::Assign {
    loop {
        match stream.next_control().await {
            connect_response::Kind::Assign(assign) => return assign,
            connect_response::Kind::Welcome(_) => {}
            other => panic!("expected an Assign, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_claim_at_an_invented_epoch_is_fenced_and_assignment_goes_on() {
    let server = start(quick_registry()).await;
    let job_id = running_job(&server, "claimed").await;
    let mut claimer = hello("probe-a1");
    claimer.held = vec![AssignmentRef {
        job_id: job_id.clone(),
        location: String::new(),
        epoch: u64::MAX,
        job_version: 1,
    }];
    let mut stream = connect(&server, Some(PROBE_TOKEN), claimer).await.unwrap();
    let mut fenced = false;
    let assign = loop {
        match stream.next_control().await {
            connect_response::Kind::Welcome(_) => {}
            connect_response::Kind::Revoke(revoke) => {
                assert_eq!((revoke.job_id.as_str(), revoke.epoch), (job_id.as_str(), u64::MAX));
                assert!(revoke.reason.contains("unknown epoch"), "{revoke:?}");
                fenced = true;
            }
            connect_response::Kind::Assign(assign) => break assign,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(fenced, "the invented claim was revoked before the job was assigned");
    assert_eq!(assign.job.unwrap().id, job_id);
    assert_eq!(assign.epoch, 1, "the first epoch of the first reserved block");

    // The assignment loop is alive: a second job is assigned too.
    let second = running_job(&server, "second").await;
    let assign = next_assign(&mut stream).await;
    assert_eq!(assign.job.unwrap().id, second);
    assert_eq!(assign.epoch, 2);
}

#[tokio::test]
async fn epochs_keep_rising_across_a_restart() {
    // Both processes use the first one's database.
    let first = start(quick_registry()).await;
    let job_id = running_job(&first, "restarted").await;
    let mut stream = connect(&first, Some(PROBE_TOKEN), hello("probe-a1")).await.unwrap();
    let before = next_assign(&mut stream).await.epoch;
    drop(stream);
    let db = first.db.clone();
    first.shutdown().await;

    // A new process on the same database: the claim of the old epoch is
    // adopted (it was issued), and an assignment that moves gets an epoch
    // above everything the first process reserved.
    // A process of its own has a pool of its own.
    let second = control_plane(quick_registry()).database(db).start().await;
    let mut reclaim = hello("probe-a1");
    reclaim.held = vec![AssignmentRef {
        job_id: job_id.clone(),
        location: String::new(),
        epoch: before,
        job_version: 1,
    }];
    let mut adopted = connect(&second, Some(PROBE_TOKEN), reclaim).await.unwrap();
    // It keeps the job: confirmed with an Assign at the same epoch.
    let confirmed = next_assign(&mut adopted).await;
    assert_eq!((confirmed.job.unwrap().id, confirmed.epoch), (job_id.clone(), before));
    drop(adopted);
    // Its stream is gone: after its lease the job moves to another worker,
    // at an epoch of the second process's own block.
    let mut next = connect(&second, Some(PROBE_TOKEN), hello("probe-a2")).await.unwrap();
    let moved = next_assign(&mut next).await;
    assert_eq!(moved.job.unwrap().id, job_id);
    assert!(
        moved.epoch > 10_000,
        "above the first process's block (1..=10000): {}",
        moved.epoch
    );
}

#[tokio::test]
async fn a_hello_is_bounded() {
    let server = start(RegistryConfig::default()).await;
    let mut many_labels = hello("probe-a1");
    many_labels.labels = (0..33).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let mut long_value = hello("probe-a1");
    long_value.labels = HashMap::from([("location".to_owned(), "x".repeat(257))]);
    let mut long_version = hello("probe-a1");
    long_version.version = "v".repeat(65);
    let mut big_capacity = hello("probe-a1");
    big_capacity.capacity = 10_001;
    for (bad, field) in [
        (many_labels, "hello.labels"),
        (long_value, "hello.labels[\"location\"]"),
        (long_version, "hello.version"),
        (big_capacity, "hello.capacity"),
    ] {
        let status = connect(&server, Some(PROBE_TOKEN), bad).await.err().unwrap();
        assert_eq!(
            crate::harness::violated_fields(&status),
            vec![field.to_owned()],
            "{status:?}"
        );
    }
}

#[tokio::test]
async fn the_registry_is_bounded() {
    let server = start(RegistryConfig {
        max_workers: 2,
        ..RegistryConfig::default()
    })
    .await;
    let _a1 = connect(&server, Some(PROBE_TOKEN), hello("probe-a1")).await.unwrap();
    let _a2 = connect(&server, Some(PROBE_TOKEN), hello("probe-a2")).await.unwrap();
    let third = connect(&server, Some(PROBE_TOKEN), hello("probe-a3"))
        .await
        .err()
        .unwrap();
    assert_eq!(third.code(), Code::ResourceExhausted, "{third:?}");
    assert!(third.message().contains("MONITOR_MAX_WORKERS"), "{third:?}");
    // A known id may always reconnect.
    let again = connect(&server, Some(PROBE_TOKEN), hello("probe-a1")).await;
    assert!(again.is_ok(), "{:?}", again.err());
    // Reading the registry needs an API token, not a worker token.
    let mut workers = WorkerServiceClient::with_interceptor(server.channel.clone(), Bearer(Some(READ_TOKEN)));
    let listed = workers
        .list_workers(monitor_proto::v1::ListWorkersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .workers;
    assert_eq!(listed.len(), 2);
}
