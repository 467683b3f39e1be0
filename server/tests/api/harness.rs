//! Starts the real server for one test.

use std::net::SocketAddr;

use monitor_proto::v1::{
    CreateJobRequest, HttpCheck, Job, admin_service_client::AdminServiceClient, job::Check,
    job_service_client::JobServiceClient,
};
use monitor_store::{DbPool, testing::TestDb};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::transport::Channel;

/// A running server over its own database; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub pool: DbPool,
    pub jobs: JobServiceClient<Channel>,
    pub admin: AdminServiceClient<Channel>,
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    // Dropped last: the database outlives the server using it.
    pub db: TestDb,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let db = TestDb::new().await;
        let pool = db.pool();
        TestServer::start_with(db, pool).await
    }

    /// Serves with `pool` (which may point elsewhere than `db`, e.g. at a
    /// database that does not answer).
    pub async fn start_with(db: TestDb, pool: DbPool) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serve_pool = pool.clone();
        let task = tokio::spawn(async move {
            monitor_server::server::run(listener, serve_pool, async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        TestServer {
            addr,
            pool,
            jobs: JobServiceClient::new(channel.clone()),
            admin: AdminServiceClient::new(channel.clone()),
            channel,
            stop: Some(stop),
            task: Some(task),
            db,
        }
    }

    /// Stops the server and waits until it has finished.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Creates `job` and returns it as stored.
    pub async fn create(&self, job: Job) -> Job {
        self.jobs
            .clone()
            .create_job(CreateJobRequest { job: Some(job) })
            .await
            .unwrap()
            .into_inner()
            .job
            .unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn secs(seconds: i64) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration { seconds, nanos: 0 })
}

pub fn millis(ms: i64) -> Option<pbjson_types::Duration> {
    Some(pbjson_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    })
}

/// A valid HTTP job against the mock website.
pub fn http_job(name: &str) -> Job {
    Job {
        name: name.to_owned(),
        interval: secs(30),
        timeout: secs(5),
        check: Some(Check::Http(HttpCheck {
            url: "http://127.0.0.1:8081/website_mock".into(),
            ..Default::default()
        })),
        ..Default::default()
    }
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
