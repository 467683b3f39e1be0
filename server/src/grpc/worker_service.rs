//! `monitor.v1.WorkerService` over [`WorkerRegistry`]: one bidirectional
//! stream per probe worker, and the worker list.

use std::{pin::Pin, time::Duration};

use futures::Stream;
use monitor_proto::v1::{
    ConnectRequest, ConnectResponse, ListWorkersRequest, ListWorkersResponse, connect_request,
    worker_service_server::WorkerService,
};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::{auth::WorkerGrant, fleet::WorkerRegistry};

/// How long a new stream may take to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

pub struct WorkerServiceImpl {
    registry: WorkerRegistry,
}

impl WorkerServiceImpl {
    pub fn new(registry: WorkerRegistry) -> Self {
        WorkerServiceImpl { registry }
    }
}

type ControlStream = Pin<Box<dyn Stream<Item = Result<ConnectResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl WorkerService for WorkerServiceImpl {
    type ConnectStream = ControlStream;

    async fn connect(&self, request: Request<Streaming<ConnectRequest>>) -> Result<Response<ControlStream>, Status> {
        // Set by the access middleware from the worker token; without it
        // nothing may connect (deny by default).
        let identities = request
            .extensions()
            .get::<WorkerGrant>()
            .cloned()
            .ok_or_else(|| Status::permission_denied("this stream carries no worker credential"))?;
        let mut inbound = request.into_inner();
        let first = tokio::time::timeout(HELLO_TIMEOUT, inbound.message())
            .await
            .map_err(|_| Status::deadline_exceeded("no hello within 10 s"))??;
        let Some(ConnectRequest {
            kind: Some(connect_request::Kind::Hello(hello)),
        }) = first
        else {
            return Err(Status::invalid_argument(
                "the first message of a session must be a hello",
            ));
        };
        if !identities.allows(&hello.worker_id) {
            return Err(Status::permission_denied(format!(
                "this worker token may connect as {} only, not as {:?}",
                identities.describe(),
                hello.worker_id
            )));
        }
        let (session, outbox) = self.registry.open(hello)?;
        let registry = self.registry.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(message)) => registry.handle(&session, message),
                    Ok(None) => break,
                    Err(status) => {
                        tracing::info!(worker_id = session.worker_id, %status, "worker stream broke");
                        break;
                    }
                }
            }
            registry.close(&session);
        });
        Ok(Response::new(Box::pin(UnboundedReceiverStream::new(outbox))))
    }

    async fn list_workers(
        &self,
        _request: Request<ListWorkersRequest>,
    ) -> Result<Response<ListWorkersResponse>, Status> {
        Ok(Response::new(ListWorkersResponse {
            workers: self.registry.list(),
        }))
    }
}
