//! Wires the services onto one listener and serves until shutdown.

use std::future::Future;

use monitor_proto::v1::{admin_service_server::AdminServiceServer, job_service_server::JobServiceServer};
use monitor_store::DbPool;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::Server;

use crate::{
    admin::Admin,
    grpc::{admin_service::AdminServiceImpl, job_service::JobServiceImpl},
    health,
    jobs::JobCatalog,
};

/// Largest gRPC message accepted or sent.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Why serving failed.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection descriptors: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
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

/// Serves gRPC (JobService, AdminService, health, reflection v1 and
/// v1alpha) on an already-bound `listener` until `shutdown` completes, then
/// lets in-flight requests finish.
pub async fn run(listener: TcpListener, pool: DbPool, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
    let catalog = JobCatalog::new(pool.clone());
    let admin = Admin::new(catalog.clone());

    let (reporter, health_service) = tonic_health::server::health_reporter();
    health::report(&reporter, false).await;
    let watcher = tokio::spawn(health::watch_database(pool, reporter));

    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let jobs = JobServiceServer::new(JobServiceImpl::new(catalog))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let admin = AdminServiceServer::new(AdminServiceImpl::new(admin))
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);

    let result = Server::builder()
        .tcp_nodelay(true)
        .trace_fn(|request| tracing::info_span!("grpc", path = %request.uri().path()))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(jobs)
        .add_service(admin)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await;
    watcher.abort();
    Ok(result?)
}
