//! Wires every surface onto one listener and serves until shutdown: native
//! gRPC (JobService, AlertService, AdminService, health, reflection v1 and v1alpha),
//! grpc-web, the REST gateway and the legacy routes, behind CORS, token
//! authentication and request tracing.

use std::{future::Future, sync::Arc, time::Duration};

use axum::response::IntoResponse as _;
use axum::{Router, body::Body, http::HeaderValue, middleware};
use monitor_proto::keepalive::Keepalive;
use monitor_proto::v1::{
    admin_service_server::AdminServiceServer, alert_service_server::AlertServiceServer,
    job_service_server::JobServiceServer, notification_service_server::NotificationServiceServer,
};
use monitor_store::DbPool;
use tokio::net::TcpListener;
use tower::{Layer as _, ServiceExt as _};
use tower_http::{
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    trace::TraceLayer,
};

use crate::{
    admin::Admin,
    alerts::AlertCatalog,
    auth::{self, Tokens},
    fleet::{RegistryConfig, WorkerRegistry},
    grpc::worker_service::WorkerServiceImpl,
    grpc::{
        admin_service::AdminServiceImpl, alert_service::AlertServiceImpl, job_service::JobServiceImpl,
        notification_service::NotificationServiceImpl,
    },
    health,
    jobs::JobCatalog,
    rest,
};
use monitor_proto::v1::worker_service_server::WorkerServiceServer;

/// Largest gRPC message accepted or sent.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// How the server treats requests; the defaults suit tests and local use.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// API tokens; empty means dev mode (open, reset disabled).
    pub tokens: Tokens,
    /// Origins browsers may call from (CORS); empty allows none.
    pub cors_allowed_origins: Vec<HeaderValue>,
    /// Longest a REST request may take.
    pub request_timeout: Duration,
    /// Largest REST request body.
    pub max_body_bytes: usize,
    /// Lease and heartbeat timing of the probe workers.
    pub workers: RegistryConfig,
    /// Where the dashboard's files come from.
    pub ui: crate::ui::UiSource,
    /// Certificate and key when the port speaks TLS; None: plain TCP.
    pub tls: Option<crate::tls::ServerTls>,
    /// The blocklist channel URLs go through, and the test sends' timeout.
    pub notify: crate::notify::NotifyOptions,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            tokens: Tokens::default(),
            cors_allowed_origins: Vec::new(),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 1024 * 1024,
            workers: RegistryConfig::default(),
            ui: crate::ui::UiSource::default(),
            tls: None,
            notify: crate::notify::NotifyOptions::default(),
        }
    }
}

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection descriptors: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
    #[error("notifications: {0}")]
    Notify(String),
}

/// Reflection over every service served here, plus google.rpc error
/// details so clients such as grpcurl can print field violations.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(monitor_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

/// CORS for browsers (grpc-web and REST): the configured origins, preflight
/// answered, gRPC status headers readable by scripts.
fn cors(origins: &[HeaderValue]) -> CorsLayer {
    use axum::http::{HeaderName, Method, header};
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
            HeaderName::from_static("connect-protocol-version"),
            HeaderName::from_static("connect-timeout-ms"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
        ])
        .max_age(Duration::from_secs(3600))
}

/// Runs the task `start` makes and starts it again a second after it
/// panics, so one bad input can never stop (say) assignment for good.
/// Aborting the supervisor aborts the task.
async fn supervise<F, Fut>(name: &'static str, start: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    struct AbortOnDrop(tokio::task::AbortHandle);
    impl Drop for AbortOnDrop {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    loop {
        let task = tokio::spawn(start());
        let _guard = AbortOnDrop(task.abort_handle());
        match task.await {
            Err(err) if err.is_panic() => {
                tracing::error!(task = name, "background task panicked; restarting it in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            _ => return,
        }
    }
}

/// Background tasks of a running server; aborted when it stops.
pub struct BackgroundTasks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// The worker registry, so shutdown can end the worker streams.
    pub workers: WorkerRegistry,
}

impl Drop for BackgroundTasks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Builds the whole HTTP application (also used by tests and benchmarks).
pub async fn app(pool: DbPool, options: ServerOptions) -> Result<(Router, BackgroundTasks), ServeError> {
    let registry = WorkerRegistry::new(options.workers);
    let catalog = JobCatalog::new(pool.clone(), registry.clone());
    let admin = Admin::new(catalog.clone());
    let alerts = AlertCatalog::new(pool.clone());
    let channels = crate::notify::ChannelCatalog::new(pool.clone(), &options.notify)
        .map_err(|err| ServeError::Notify(err.to_string()))?;

    let (reporter, health_service) = tonic_health::server::health_reporter();
    health::report(&reporter, false).await;
    let watcher = tokio::spawn(health::watch_database(pool.clone(), reporter));
    let cache_follower = tokio::spawn(crate::jobs::cache::follow(catalog.cache().clone(), pool.clone()));
    let assigner = {
        let registry = registry.clone();
        tokio::spawn(supervise("assignment loop", move || registry.clone().run(pool.clone())))
    };

    let jobs = JobServiceServer::new(JobServiceImpl::new(catalog.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let alert_service = AlertServiceServer::new(AlertServiceImpl::new(alerts.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let notification_service = NotificationServiceServer::new(NotificationServiceImpl::new(channels.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let admin_service = AdminServiceServer::new(AdminServiceImpl::new(admin.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let registry_handle = registry.clone();
    let worker_service = WorkerServiceServer::new(WorkerServiceImpl::new(registry))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut grpc = tonic::service::Routes::builder();
    grpc.add_service(health_service)
        .add_service(worker_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?)
        .add_service(jobs)
        .add_service(alert_service)
        .add_service(notification_service)
        .add_service(admin_service);
    let grpc = grpc.routes().into_axum_router();

    let metrics = crate::metrics::ServerMetrics::default();
    let rest_state = rest::RestState {
        catalog,
        alerts,
        channels,
        admin,
        metrics: metrics.clone(),
        max_body_bytes: options.max_body_bytes,
        openapi: Arc::new(rest::openapi::document(monitor_proto::FILE_DESCRIPTOR_SET)),
    };
    // Compression only for REST: gRPC negotiates its own.
    let rest = rest::router(rest_state, options.request_timeout)
        .merge(crate::ui::router(options.ui.clone()))
        .layer(CompressionLayer::new());

    let inner = grpc
        .merge(rest)
        .fallback(rest::fallback)
        .method_not_allowed_fallback(rest::method_not_allowed)
        .layer(middleware::from_fn_with_state(
            options.tokens.clone(),
            auth::require_token,
        ))
        // Outside authentication, so refused requests are counted too.
        .layer(middleware::from_fn_with_state(metrics, crate::metrics::track))
        .layer(TraceLayer::new_for_http());

    // grpc-web requests are translated outside the router (the translation
    // hands tonic bodies inwards); everything else goes straight in. CORS
    // wraps both, so preflights are answered before authentication.
    let grpc_web = tonic_web::GrpcWebLayer::new().layer(
        inner
            .clone()
            .map_request(|request: axum::http::Request<tonic::body::Body>| request.map(Body::new)),
    );
    let dispatch = move |request: axum::extract::Request| {
        let inner = inner.clone();
        let grpc_web = grpc_web.clone();
        async move {
            let is_grpc_web = request
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("application/grpc-web"));
            if is_grpc_web {
                grpc_web.oneshot(request).await.into_response()
            } else {
                inner.oneshot(request).await.into_response()
            }
        }
    };
    let app = Router::new()
        .fallback(dispatch)
        .layer(cors(&options.cors_allowed_origins));
    Ok((
        app,
        BackgroundTasks {
            tasks: vec![watcher, assigner, cache_follower],
            workers: registry_handle,
        },
    ))
}

/// Serves on an already-bound `listener` (over TLS when `options.tls` is
/// set) until `shutdown` completes, then lets in-flight requests finish.
pub async fn run(
    listener: TcpListener,
    pool: DbPool,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    if options.tokens.is_empty() {
        tracing::warn!(
            "NO API TOKENS CONFIGURED: every API call is allowed without authentication (dev mode) and the \
             database reset is disabled. Set MONITOR_API_TOKENS or MONITOR_API_TOKENS_FILE in production."
        );
    }
    if !options.tokens.has_worker_tokens() {
        tracing::warn!(
            "no worker tokens configured: any client may connect as a probe worker (set MONITOR_WORKER_TOKENS)"
        );
    }
    // Pings close connections that stop carrying packets without closing,
    // so a worker behind one shows as lost before its lease ends.
    let keepalive = Keepalive::for_lease(options.workers.lease, options.workers.heartbeat_interval);
    let tls = options.tls.clone();
    let (app, tasks) = app(pool, options).await?;
    // Worker streams never end on their own: close them when shutdown
    // begins, so the graceful shutdown can finish.
    let workers = tasks.workers.clone();
    let shutdown = async move {
        shutdown.await;
        workers.disconnect_all();
    };
    crate::transport::serve(listener, app, tls, keepalive, shutdown).await;
    drop(tasks);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    #[tokio::test]
    async fn a_panicking_task_is_started_again() {
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        supervise("test", move || {
            let counted = counted.clone();
            async move {
                if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("the first run fails");
                }
            }
        })
        .await;
        assert_eq!(
            starts.load(Ordering::SeqCst),
            2,
            "ran again after the panic, then ended"
        );
    }
}
