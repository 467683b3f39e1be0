//! The control plane in-process: the real `monitor_server::server::run`
//! (the code path of the `monitor-server` binary) on port 0 or a given
//! listener, over a fresh database, with tonic clients connected to it.
//!
//! ```ignore
//! let server = TestServer::builder().api_tokens().lease(Duration::from_secs(4)).start().await;
//! ```

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use monitor_proto::v1::{
    CreateJobRequest, Job, ListWorkersRequest, StopJobRequest, Worker, admin_service_client::AdminServiceClient,
    alert_service_client::AlertServiceClient, job_service_client::JobServiceClient,
    worker_service_client::WorkerServiceClient,
};
use monitor_server::{auth::Tokens, fleet::RegistryConfig, server::ServerOptions};
use monitor_store::{DbPool, testing::TestDb};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

/// Test API tokens, one per role (see [`api_tokens`]).
pub const READ_TOKEN: &str = "read-token-for-tests-0001";
pub const WRITE_TOKEN: &str = "write-token-for-tests-0002";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0003";

/// [`READ_TOKEN`], [`WRITE_TOKEN`] and [`ADMIN_TOKEN`] with their roles.
pub fn api_tokens() -> Tokens {
    Tokens::parse(
        "tests",
        &format!("read:{READ_TOKEN},write:{WRITE_TOKEN},admin:{ADMIN_TOKEN}"),
    )
    .expect("the test tokens parse")
}

/// Adds `authorization: Bearer <token>` to every call (none when `None`).
#[derive(Clone)]
pub struct Bearer(pub Option<&'static str>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = self.0 {
            let value = format!("Bearer {token}").parse().expect("a token is a header value");
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }
}

/// A channel sending a [`Bearer`] token.
pub type AuthedChannel = tonic::service::interceptor::InterceptedService<Channel, Bearer>;

/// A certificate and key for 127.0.0.1 and localhost, made by rcgen, in
/// files as an operator hands them to the server.
pub struct TestCertificate {
    /// The certificate (self-signed, so also the CA clients must trust), PEM.
    pub cert_pem: String,
    /// Holds `cert.pem` and `key.pem`; removed when dropped.
    dir: tempfile::TempDir,
}

impl Default for TestCertificate {
    fn default() -> Self {
        TestCertificate::new()
    }
}

impl TestCertificate {
    pub fn new() -> TestCertificate {
        let issued = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("a self-signed certificate");
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("cert.pem"), issued.cert.pem()).expect("writing cert.pem");
        std::fs::write(dir.path().join("key.pem"), issued.signing_key.serialize_pem()).expect("writing key.pem");
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
}

/// How to start a [`TestServer`]; every part is optional.
#[derive(Default)]
pub struct TestServerBuilder {
    /// The base options (CORS, limits, UI); the settings below go on top.
    options: ServerOptions,
    /// Serve [`api_tokens`].
    api_tokens: bool,
    /// `WORKER_ID_PATTERN:TOKEN` entries, as `MONITOR_WORKER_TOKENS` takes them.
    worker_tokens: Option<String>,
    registry: Option<RegistryConfig>,
    /// (certificate file, key file, certificate PEM) when serving TLS.
    tls: Option<(PathBuf, PathBuf, String)>,
    /// A database shared with another server process; else a fresh one.
    database: Option<Arc<TestDb>>,
    /// Serve with this pool instead of one on the database.
    pool: Option<DbPool>,
    /// Serve here instead of on a new port.
    listener: Option<TcpListener>,
}

impl TestServerBuilder {
    /// Base options, e.g. CORS origins or the dashboard's source.
    pub fn options(mut self, options: ServerOptions) -> Self {
        self.options = options;
        self
    }

    /// One API token per role: [`READ_TOKEN`], [`WRITE_TOKEN`], [`ADMIN_TOKEN`].
    pub fn api_tokens(mut self) -> Self {
        self.api_tokens = true;
        self
    }

    /// Worker tokens, as `MONITOR_WORKER_TOKENS` takes them (`probe-*:TOKEN`).
    pub fn worker_tokens(mut self, entries: &str) -> Self {
        self.worker_tokens = Some(entries.to_owned());
        self
    }

    /// The worker registry's timing and bounds.
    pub fn registry(mut self, registry: RegistryConfig) -> Self {
        self.registry = Some(registry);
        self
    }

    /// A short worker lease for tests that watch jobs move: heartbeats every
    /// quarter lease, an assignment pass at least every 200 ms.
    pub fn lease(self, lease: Duration) -> Self {
        self.registry(RegistryConfig {
            lease,
            heartbeat_interval: lease / 4,
            reconcile_interval: Duration::from_millis(200),
            ..RegistryConfig::default()
        })
    }

    /// Serves TLS only, with `certificate` (its files must outlive the
    /// server); the clients trust it.
    pub fn tls(mut self, certificate: &TestCertificate) -> Self {
        self.tls = Some((
            certificate.cert_path(),
            certificate.key_path(),
            certificate.cert_pem.clone(),
        ));
        self
    }

    /// Serves over `database` (e.g. the one a stopped server used).
    pub fn database(mut self, database: Arc<TestDb>) -> Self {
        self.database = Some(database);
        self
    }

    /// Serves with `pool`, which may point elsewhere than the database (one
    /// that does not answer) or be larger.
    pub fn pool(mut self, pool: DbPool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Serves on `listener` (a restart on the same address).
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Starts the server and connects the clients.
    pub async fn start(self) -> TestServer {
        let mut options = self.options;
        if self.api_tokens {
            options.tokens = api_tokens();
        }
        if let Some(entries) = &self.worker_tokens {
            options.tokens = options
                .tokens
                .with_worker_tokens("tests", entries)
                .expect("the test worker tokens parse");
        }
        if let Some(registry) = self.registry {
            options.workers = registry;
        }
        if let Some((cert, key, _)) = &self.tls {
            options.tls = Some(monitor_server::tls::load(cert, key).expect("the test certificate loads"));
        }
        let db = match self.database {
            Some(db) => db,
            None => Arc::new(TestDb::new().await),
        };
        let pool = self.pool.unwrap_or_else(|| db.pool());
        let listener = match self.listener {
            Some(listener) => listener,
            None => TcpListener::bind("127.0.0.1:0").await.expect("binding port 0"),
        };
        let addr = listener.local_addr().expect("a bound socket has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let serve_pool = pool.clone();
        let task = tokio::spawn(async move {
            monitor_server::server::run(listener, serve_pool, options, async {
                let _ = stopped.await;
            })
            .await
            .expect("the server runs");
        });
        let endpoint = match &self.tls {
            None => Channel::from_shared(format!("http://{addr}")).expect("a URL"),
            Some((_, _, pem)) => Channel::from_shared(format!("https://{addr}"))
                .expect("a URL")
                .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
                .expect("a client TLS configuration"),
        };
        let channel = endpoint.connect().await.expect("connecting to the server");
        TestServer {
            addr,
            ca_file: self.tls.map(|(cert, _, _)| cert),
            pool,
            jobs: JobServiceClient::new(channel.clone()),
            admin: AdminServiceClient::new(channel.clone()),
            channel,
            stop: Some(stop),
            task: Some(task),
            db,
        }
    }
}

/// A running control plane; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The CA file clients trust when the server speaks TLS.
    pub ca_file: Option<PathBuf>,
    /// The pool the server serves with.
    pub pool: DbPool,
    pub jobs: JobServiceClient<Channel>,
    pub admin: AdminServiceClient<Channel>,
    /// Connected to the server (over TLS when it speaks TLS).
    pub channel: Channel,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    // Dropped last: the database outlives the server using it.
    pub db: Arc<TestDb>,
}

impl TestServer {
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// Dev mode (no tokens) over a fresh database.
    pub async fn start() -> TestServer {
        TestServer::builder().start().await
    }

    /// JobService client sending `token`.
    pub fn jobs_as(&self, token: Option<&'static str>) -> JobServiceClient<AuthedChannel> {
        JobServiceClient::with_interceptor(self.channel.clone(), Bearer(token))
    }

    /// AlertService client sending `token`.
    pub fn alerts_as(&self, token: Option<&'static str>) -> AlertServiceClient<AuthedChannel> {
        AlertServiceClient::with_interceptor(self.channel.clone(), Bearer(token))
    }

    /// NotificationService client sending `token`.
    pub fn notifications_as(
        &self,
        token: Option<&'static str>,
    ) -> monitor_proto::v1::notification_service_client::NotificationServiceClient<AuthedChannel> {
        monitor_proto::v1::notification_service_client::NotificationServiceClient::with_interceptor(
            self.channel.clone(),
            Bearer(token),
        )
    }

    /// AdminService client sending `token`.
    pub fn admin_as(&self, token: Option<&'static str>) -> AdminServiceClient<AuthedChannel> {
        AdminServiceClient::with_interceptor(self.channel.clone(), Bearer(token))
    }

    /// `path` on this server, for HTTP clients.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.ca_file.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// Creates `job` and returns it as stored.
    pub async fn create(&self, job: Job) -> Job {
        self.jobs
            .clone()
            .create_job(CreateJobRequest { job: Some(job) })
            .await
            .expect("CreateJob")
            .into_inner()
            .job
            .expect("the created job")
    }

    /// Stops each of the jobs `ids` (the workers let go of them soon after).
    pub async fn stop_jobs(&self, ids: &[String]) {
        for id in ids {
            let request = StopJobRequest { id: id.clone() };
            self.jobs.clone().stop_job(request).await.expect("StopJob");
        }
    }

    /// The registry's workers (dev mode, or a server without API tokens).
    pub async fn workers(&self) -> Result<Vec<Worker>, tonic::Status> {
        let listed = WorkerServiceClient::new(self.channel.clone())
            .list_workers(ListWorkersRequest {})
            .await?;
        Ok(listed.into_inner().workers)
    }

    /// Waits until `service` ("" for the server) reports `want`; the health
    /// watcher probes the database every 2 s.
    pub async fn wait_health(&self, service: &str, want: ServingStatus) {
        let what = format!("{service:?} to become {want:?}");
        crate::wait_until(&what, Duration::from_secs(10), || async {
            let request = HealthCheckRequest {
                service: service.into(),
            };
            let response = HealthClient::new(self.channel.clone())
                .check(request)
                .await
                .map_err(|status| status.to_string())?;
            match ServingStatus::try_from(response.into_inner().status) {
                Ok(status) if status == want => Ok(()),
                status => Err(format!("{status:?}")),
            }
        })
        .await;
    }

    /// Stops the server without waiting and hands back its database, for a
    /// successor process or to keep it.
    pub fn stop(mut self) -> Arc<TestDb> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.db.clone()
    }

    /// Stops the server and waits until it has finished.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server stops cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
