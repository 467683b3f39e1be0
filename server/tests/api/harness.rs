//! Starts the real server for one test.

use std::{net::SocketAddr, path::PathBuf};

use monitor_proto::v1::{
    CreateJobRequest, HttpCheck, Job, admin_service_client::AdminServiceClient, job::Check,
    job_service_client::JobServiceClient,
};
use monitor_server::server::ServerOptions;
use monitor_store::{DbPool, testing::TestDb};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// Test tokens, one per role.
pub const READ_TOKEN: &str = "read-token-for-tests-0001";
pub const WRITE_TOKEN: &str = "write-token-for-tests-0002";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0003";

/// Options with one token of each role.
pub fn with_tokens() -> ServerOptions {
    ServerOptions {
        tokens: monitor_server::auth::Tokens::parse(
            "tests",
            &format!("read:{READ_TOKEN},write:{WRITE_TOKEN},admin:{ADMIN_TOKEN}"),
        )
        .unwrap(),
        ..ServerOptions::default()
    }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(pub Option<&'static str>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = self.0 {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        Ok(request)
    }
}

pub type AuthedChannel = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

/// A certificate and key for 127.0.0.1 and localhost, made by rcgen, in
/// files as an operator would hand them to the server.
pub struct TestCertificate {
    /// The certificate (self-signed, so also the CA clients must trust), PEM.
    pub cert_pem: String,
    dir: tempfile::TempDir,
}

impl TestCertificate {
    pub fn new() -> TestCertificate {
        let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), issued.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), issued.signing_key.serialize_pem()).unwrap();
        TestCertificate {
            cert_pem: issued.cert.pem(),
            dir,
        }
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("cert.pem")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("key.pem")
    }

    /// Server options serving TLS with this certificate.
    pub fn serve(&self, options: ServerOptions) -> ServerOptions {
        ServerOptions {
            tls: Some(monitor_server::tls::load(&self.cert_path(), &self.key_path()).unwrap()),
            ..options
        }
    }
}

/// A running server over its own database; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The CA file clients trust when the server speaks TLS.
    pub ca_file: Option<PathBuf>,
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
        TestServer::start_with_options(db, pool, ServerOptions::default()).await
    }

    /// Serves with the given options (tokens, CORS, limits).
    pub async fn start_with_options(db: TestDb, pool: DbPool, options: ServerOptions) -> TestServer {
        TestServer::serve(db, pool, options, None).await
    }

    /// Serves over TLS with `certificate` (its files must outlive the server).
    pub async fn start_tls(certificate: &TestCertificate) -> TestServer {
        let db = TestDb::new().await;
        let pool = db.pool();
        let options = certificate.serve(ServerOptions::default());
        TestServer::serve(db, pool, options, Some(certificate)).await
    }

    async fn serve(db: TestDb, pool: DbPool, options: ServerOptions, ca: Option<&TestCertificate>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let serve_pool = pool.clone();
        let task = tokio::spawn(async move {
            monitor_server::server::run(listener, serve_pool, options, async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        let endpoint = match ca {
            None => Channel::from_shared(format!("http://{addr}")).unwrap(),
            Some(ca) => Channel::from_shared(format!("https://{addr}"))
                .unwrap()
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&ca.cert_pem)))
                .unwrap(),
        };
        let channel = endpoint.connect().await.unwrap();
        TestServer {
            addr,
            ca_file: ca.map(TestCertificate::cert_path),
            pool,
            jobs: JobServiceClient::new(channel.clone()),
            admin: AdminServiceClient::new(channel.clone()),
            channel,
            stop: Some(stop),
            task: Some(task),
            db,
        }
    }

    /// Starts a server with one token per role over a fresh database.
    pub async fn start_with_tokens() -> TestServer {
        let db = TestDb::new().await;
        let pool = db.pool();
        TestServer::start_with_options(db, pool, with_tokens()).await
    }

    /// JobService client sending `token`.
    pub fn jobs_as(&self, token: Option<&'static str>) -> JobServiceClient<AuthedChannel> {
        JobServiceClient::with_interceptor(self.channel.clone(), Bearer(token))
    }

    /// AdminService client sending `token`.
    pub fn admin_as(&self, token: Option<&'static str>) -> AdminServiceClient<AuthedChannel> {
        AdminServiceClient::with_interceptor(self.channel.clone(), Bearer(token))
    }

    /// Base URL for HTTP clients.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.ca_file.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
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
    Some(monitor_proto::duration::from_millis(ms))
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
