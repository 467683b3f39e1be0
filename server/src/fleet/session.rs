//! A worker's session, as the gRPC stream drives it: opened by a hello
//! (checked and admitted in `hello`), fed the worker's messages, and closed
//! when the stream ends or the server shuts down. The registry keeps each
//! session's outbox beside the state; dropping it ends the stream.

use std::time::Instant;

use chrono::{DateTime, Utc};
use monitor_proto::v1::{ConnectRequest, ConnectResponse, WorkerHello, connect_request};
use tokio::sync::mpsc;

use super::{
    WorkerRegistry,
    hello::{admit, validate_hello},
    parse_key,
    state::State,
};
use crate::error::ApiError;

type Outbox = mpsc::UnboundedSender<Result<ConnectResponse, tonic::Status>>;

/// The live stream of a connected worker.
pub(super) struct Session {
    /// Which of the worker's sessions this is: only the current one is
    /// written to.
    pub(super) id: u64,
    /// The control messages to send on the stream.
    pub(super) outbox: Outbox,
}

/// A connected worker's session, as the gRPC stream holds it.
#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub worker_id: String,
    id: u64,
}

impl WorkerRegistry {
    /// Registers a worker's session from its hello. Returns the session and
    /// the stream of control messages to send it.
    pub fn open(
        &self,
        hello: WorkerHello,
    ) -> Result<
        (
            SessionHandle,
            mpsc::UnboundedReceiver<Result<ConnectResponse, tonic::Status>>,
        ),
        ApiError,
    > {
        validate_hello(&hello)?;
        let config = self.inner.config;
        let (outbox, inbox) = mpsc::unbounded_channel();
        let mut shared = self.lock();
        let (session_id, messages) = admit(&mut shared.state, &hello, &config, Instant::now(), Utc::now())?;
        let worker_id = hello.worker_id;
        // Replacing an open session drops its outbox, which ends its stream.
        shared
            .streams
            .insert(worker_id.clone(), Session { id: session_id, outbox });
        shared.deliver(messages);
        drop(shared);
        self.wake();
        Ok((
            SessionHandle {
                worker_id,
                id: session_id,
            },
            inbox,
        ))
    }

    /// Handles one message of an open session.
    pub fn handle(&self, session: &SessionHandle, message: ConnectRequest) {
        let wake = receive(&mut self.lock().state, session, message, Instant::now(), Utc::now());
        if wake {
            self.wake();
        }
    }

    /// Ends every worker stream (server shutdown): workers reconnect, to this
    /// server when it is back or to another one, and keep their jobs running
    /// within their lease meanwhile.
    pub fn disconnect_all(&self) {
        let mut shared = self.lock();
        for entry in shared.state.workers.values_mut() {
            entry.session = None;
        }
        shared.end_stale_streams();
    }

    /// The session's stream ended: the worker is lost until its lease expires.
    pub fn close(&self, session: &SessionHandle) {
        let mut shared = self.lock();
        let state = &mut shared.state;
        if let Some(entry) = state.workers.get_mut(&session.worker_id)
            && entry.session == Some(session.id)
        {
            entry.session = None;
            if entry.draining && entry.held.is_empty() {
                state.workers.remove(&session.worker_id);
                tracing::info!(worker_id = session.worker_id, "worker left after draining");
            } else {
                tracing::warn!(
                    worker_id = session.worker_id,
                    "worker stream closed; its jobs wait for its lease"
                );
            }
        }
        shared.end_stale_streams();
        drop(shared);
        self.wake();
    }
}

/// Takes one message of `session` heard at `now` (ignored when the session
/// was replaced). Returns whether the assignment loop should run now.
fn receive(
    state: &mut State,
    session: &SessionHandle,
    message: ConnectRequest,
    now: Instant,
    now_at: DateTime<Utc>,
) -> bool {
    let Some(entry) = state.workers.get_mut(&session.worker_id) else {
        return false;
    };
    if entry.session != Some(session.id) {
        return false; // a replaced session
    }
    entry.last_heard = now;
    entry.last_heard_at = now_at;
    let mut wake = false;
    match message.kind {
        Some(connect_request::Kind::Heartbeat(_)) | None => {}
        Some(connect_request::Kind::Hello(_)) => {
            tracing::warn!(worker_id = session.worker_id, "ignoring a second hello on one stream");
        }
        Some(connect_request::Kind::Reports(reports)) => {
            for report in reports.reports {
                let Some(key) = report.assignment.as_ref().and_then(parse_key) else {
                    continue;
                };
                if let Some(held) = entry.held.get_mut(&key)
                    && report.assignment.as_ref().is_some_and(|a| a.epoch == held.epoch)
                {
                    held.report = Some(report);
                }
            }
        }
        Some(connect_request::Kind::Released(released)) => {
            for assignment in &released.assignments {
                let Some(key) = parse_key(assignment) else { continue };
                if entry.held.get(&key).is_some_and(|h| h.epoch == assignment.epoch) {
                    entry.held.remove(&key);
                    wake = true;
                }
            }
        }
        Some(connect_request::Kind::Draining(_)) => {
            tracing::info!(worker_id = session.worker_id, "worker draining");
            entry.draining = true;
            wake = true;
        }
    }
    wake
}
