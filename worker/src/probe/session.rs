//! The worker's stream to the control plane: hello with what it holds,
//! assignments in, releases and reports out, heartbeats both ways.
//! Reconnects with exponential backoff and full jitter; keeps running its
//! jobs while disconnected until its lease runs out, then pauses them until
//! the server confirms them again. Over `https://` it verifies the server
//! against the system's roots or the configured CA; HTTP/2 keepalive pings
//! give up a connection that stops carrying packets (see
//! [`monitor_proto::keepalive`]), so the worker reconnects.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use monitor_proto::v1::{
    ConnectRequest, Draining, JobReport, JobReports, Released, WorkerHeartbeat, WorkerHello, connect_request,
    connect_response, worker_service_client::WorkerServiceClient,
};
use monitor_proto::{duration, keepalive::Keepalive};
use rand::Rng as _;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{
    Code,
    transport::{Channel, ClientTlsConfig},
};

use super::scheduler::{Key, Scheduler};

/// Who this worker is, and how to reach the server.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub server: String,
    pub worker_id: String,
    pub capacity: u32,
    pub labels: std::collections::HashMap<String, String>,
    pub token: Option<monitor_proto::secret::Secret>,
    /// Backoff bounds for reconnecting.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Until the server says otherwise in its welcome.
    pub default_lease: Duration,
    /// How `https://` servers are verified; None for `http://`.
    pub tls: Option<ClientTlsConfig>,
}

/// Heartbeat used until the server's welcome names one.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(3);

/// Last time the server was heard, shared with the lease watchdog.
#[derive(Clone)]
struct Contact(Arc<Mutex<Instant>>);

impl Contact {
    fn touch(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
    fn since(&self) -> Duration {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }
}

/// Why a session ended.
enum Ended {
    /// The worker is shutting down; stop reconnecting.
    Drained,
    /// The stream broke or could not be opened; reconnect.
    Lost(String),
    /// The server refused our credentials.
    Refused(String),
    /// The server's certificate is not trusted.
    Untrusted(String),
}

/// The error and its causes on one line (tonic's own message is only
/// "transport error"); a cause whose message its wrapper already ends with
/// is not repeated.
fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        source = cause.source();
    }
    text
}

/// Whether TLS verification refused the server's certificate somewhere in
/// `error`'s causes (rustls' error travels inside an `io::Error`).
fn certificate_rejected(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(cause) = next {
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if matches!(tls, Some(rustls::Error::InvalidCertificate(_))) {
            return true;
        }
        next = cause.source();
    }
    false
}

/// Runs sessions until `shutdown` flips to true, then drains.
pub async fn run(
    config: SessionConfig,
    scheduler: Scheduler,
    mut shutdown: watch::Receiver<bool>,
    stream_up: crate::telemetry::Dependency,
) {
    let contact = Contact(Arc::new(Mutex::new(Instant::now())));
    let timing = Arc::new(Mutex::new(Timing {
        lease: config.default_lease,
        heartbeat: DEFAULT_HEARTBEAT,
    }));
    let watchdog = tokio::spawn(lease_watchdog(scheduler.clone(), contact.clone(), timing.clone()));
    let mut backoff = config.backoff_min;
    loop {
        let started = Instant::now();
        let ended = session(&config, &scheduler, &contact, &timing, &mut shutdown, &stream_up).await;
        stream_up.set(false);
        match ended {
            Ended::Drained => break,
            Ended::Lost(reason) => {
                tracing::warn!(server = config.server, %reason, "control plane unreachable; retrying")
            }
            Ended::Refused(reason) => {
                tracing::error!(server = config.server, %reason, "the control plane refused this worker's token; fix MONITOR_WORKER_TOKEN (retrying slowly)");
                backoff = config.backoff_max;
            }
            Ended::Untrusted(reason) => {
                tracing::error!(server = config.server, %reason, "the control plane's TLS certificate is not trusted; set MONITOR_SERVER_CA_FILE to the CA that issued it (retrying slowly)");
                backoff = config.backoff_max;
            }
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = config.backoff_min;
        }
        // Full jitter: a fleet restarting together does not reconnect in step.
        let wait = rand::rng().random_range(Duration::ZERO..=backoff);
        tracing::info!(wait_ms = wait.as_millis() as u64, "reconnecting after backoff");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => {
                // Nobody to hand jobs back to: stop them and leave.
                scheduler.revoke_all();
                break;
            }
        }
        backoff = (backoff * 2).min(config.backoff_max);
    }
    watchdog.abort();
}

/// The lease and heartbeat interval, from the server's last welcome.
#[derive(Debug, Clone, Copy)]
struct Timing {
    lease: Duration,
    heartbeat: Duration,
}

/// Pauses every job once the server has been silent for a whole lease.
async fn lease_watchdog(scheduler: Scheduler, contact: Contact, timing: Arc<Mutex<Timing>>) {
    let mut paused = false;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let lease = timing.lock().unwrap_or_else(|p| p.into_inner()).lease;
        let silent = contact.since() > lease;
        if silent && !paused && !scheduler.is_empty() {
            tracing::warn!(
                lease_ms = lease.as_millis() as u64,
                jobs = scheduler.len(),
                "lease expired without the control plane: pausing jobs"
            );
            scheduler.pause_all();
        }
        paused = silent;
    }
}

fn request(kind: connect_request::Kind) -> ConnectRequest {
    ConnectRequest { kind: Some(kind) }
}

async fn session(
    config: &SessionConfig,
    scheduler: &Scheduler,
    contact: &Contact,
    timing: &Arc<Mutex<Timing>>,
    shutdown: &mut watch::Receiver<bool>,
    stream_up: &crate::telemetry::Dependency,
) -> Ended {
    let last = *timing.lock().unwrap_or_else(|p| p.into_inner());
    let keepalive = Keepalive::for_lease(last.lease, last.heartbeat);
    let endpoint = match Channel::from_shared(config.server.clone()) {
        Ok(endpoint) => endpoint
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(keepalive.interval)
            .keep_alive_timeout(keepalive.timeout)
            .keep_alive_while_idle(true),
        Err(err) => return Ended::Lost(format!("bad server address: {err}")),
    };
    let endpoint = match &config.tls {
        Some(tls) => match endpoint.tls_config(tls.clone()) {
            Ok(endpoint) => endpoint,
            Err(err) => return Ended::Lost(format!("TLS settings: {}", describe(&err))),
        },
        None => endpoint,
    };
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(err) if certificate_rejected(&err) => return Ended::Untrusted(format!("connect: {}", describe(&err))),
        Err(err) => return Ended::Lost(format!("connect: {}", describe(&err))),
    };
    let token = config.token.clone();
    let mut client = WorkerServiceClient::with_interceptor(channel, move |mut req: tonic::Request<()>| {
        if let Some(token) = &token {
            let value = format!("Bearer {}", token.expose())
                .parse()
                .map_err(|_| tonic::Status::internal("token is not ASCII"))?;
            req.metadata_mut().insert("authorization", value);
        }
        Ok(req)
    });
    let (outbound, outbound_rx) = mpsc::channel::<ConnectRequest>(1024);
    let hello = WorkerHello {
        worker_id: config.worker_id.clone(),
        version: env!("CARGO_PKG_VERSION").into(),
        capacity: config.capacity,
        labels: config.labels.clone(),
        held: scheduler.held(),
    };
    let held = hello.held.len();
    if outbound
        .send(request(connect_request::Kind::Hello(hello)))
        .await
        .is_err()
    {
        return Ended::Lost("stream closed before hello".into());
    }
    let mut inbound = match client.connect(ReceiverStream::new(outbound_rx)).await {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == Code::Unauthenticated || status.code() == Code::PermissionDenied => {
            return Ended::Refused(status.message().to_owned());
        }
        Err(status) => return Ended::Lost(format!("{}: {}", status.code(), status.message())),
    };
    tracing::info!(
        server = config.server,
        worker_id = config.worker_id,
        held,
        "connected to the control plane"
    );
    scheduler.report_all_again();
    let mut heartbeat = tokio::time::interval(last.heartbeat);
    let mut reports = tokio::time::interval(Duration::from_secs(2));
    // Last message on this stream (not `contact`, which may be older than
    // the stream after an outage).
    let mut heard = Instant::now();
    loop {
        tokio::select! {
            message = inbound.message() => {
                let message = match message {
                    Ok(Some(message)) => message,
                    Ok(None) => return Ended::Lost("the control plane closed the stream".into()),
                    Err(status) if status.code() == Code::Unauthenticated => return Ended::Refused(status.message().to_owned()),
                    Err(status) => return Ended::Lost(format!("{}: {}", status.code(), status.message())),
                };
                contact.touch();
                heard = Instant::now();
                match message.kind {
                    Some(connect_response::Kind::Welcome(welcome)) => {
                        stream_up.set(true);
                        // Also the keepalive of the next connection.
                        let mut known = timing.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(lease) = &welcome.lease {
                            known.lease = duration::to_std_saturating(lease).max(Duration::from_secs(1));
                        }
                        if let Some(hb) = &welcome.heartbeat_interval {
                            let period = duration::to_std_saturating(hb).max(Duration::from_millis(100));
                            known.heartbeat = period;
                            heartbeat = tokio::time::interval(period);
                        }
                    }
                    Some(connect_response::Kind::Assign(assign)) => {
                        let Some(job) = assign.job else { continue };
                        scheduler.assign(Key { job_id: job.id.clone(), location: assign.location }, job, assign.epoch);
                    }
                    Some(connect_response::Kind::Revoke(revoke)) => {
                        let key = Key { job_id: revoke.job_id, location: revoke.location };
                        let released = match scheduler.revoke(&key) {
                            Some(released) => released,
                            // Not running it: confirm anyway so the server can move on.
                            None => monitor_proto::v1::AssignmentRef { job_id: key.job_id, location: key.location, epoch: revoke.epoch, job_version: 0 },
                        };
                        tracing::debug!(job_id = released.job_id, reason = revoke.reason, "revoked");
                        let _ = outbound.send(request(connect_request::Kind::Released(Released { assignments: vec![released] }))).await;
                    }
                    Some(connect_response::Kind::Heartbeat(_)) | None => {}
                }
            }
            _ = heartbeat.tick() => {
                // The server heartbeats too: a lease of silence means the
                // connection is dead even if it has not closed.
                let lease = timing.lock().unwrap_or_else(|p| p.into_inner()).lease;
                if heard.elapsed() > lease {
                    return Ended::Lost(format!("nothing from the control plane for {} ms", lease.as_millis()));
                }
                let beat = WorkerHeartbeat { in_flight: scheduler.in_flight() as u32, queued_results: 0 };
                if outbound.send(request(connect_request::Kind::Heartbeat(beat))).await.is_err() {
                    return Ended::Lost("outbound stream closed".into());
                }
            }
            _ = reports.tick() => {
                for reports in report_chunks(scheduler.reports()) {
                    let _ = outbound.send(request(connect_request::Kind::Reports(JobReports { reports }))).await;
                }
            }
            _ = shutdown.changed() => {
                // Drain: stop every job, hand them back at once, then leave.
                let released = scheduler.revoke_all();
                tracing::info!(jobs = released.len(), "draining: handing jobs back to the control plane");
                let _ = outbound.send(request(connect_request::Kind::Released(Released { assignments: released }))).await;
                let _ = outbound.send(request(connect_request::Kind::Draining(Draining {}))).await;
                drop(outbound);
                // Give the server a moment to read them before the stream closes.
                let _ = tokio::time::timeout(Duration::from_secs(2), async { while let Ok(Some(_)) = inbound.message().await {} }).await;
                return Ended::Drained;
            }
        }
    }
}

/// Reports grouped into messages of at most [`REPORT_CHUNK_BYTES`] encoded
/// (a report carries its latest result, and the server takes messages of
/// at most 4 MiB).
fn report_chunks(reports: Vec<JobReport>) -> Vec<Vec<JobReport>> {
    let mut chunks = Vec::new();
    let mut chunk = Vec::new();
    let mut bytes = 0;
    for report in reports {
        let size = prost::Message::encoded_len(&report) + 8;
        if !chunk.is_empty() && bytes + size > REPORT_CHUNK_BYTES {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += size;
        chunk.push(report);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

/// Largest reports message sent.
const REPORT_CHUNK_BYTES: usize = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_sent_in_messages_under_the_limit() {
        let report = |i: usize| JobReport {
            last_result: Some(monitor_proto::v1::CheckResult {
                error: "x".repeat(1000 + i % 7),
                ..Default::default()
            }),
            ..Default::default()
        };
        let reports: Vec<JobReport> = (0..5000).map(report).collect();
        let total = reports.len();
        let chunks = report_chunks(reports);
        assert!(chunks.len() > 1);
        assert_eq!(chunks.iter().map(Vec::len).sum::<usize>(), total);
        for chunk in &chunks {
            let encoded = prost::Message::encoded_len(&JobReports { reports: chunk.clone() });
            assert!(encoded <= REPORT_CHUNK_BYTES, "{encoded}");
        }
        assert!(report_chunks(Vec::new()).is_empty());
    }

    /// A wrapper whose message repeats its cause's, as hyper's do.
    #[derive(Debug)]
    struct Wrapper(std::io::Error);

    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "transport error: {}", self.0)
        }
    }

    impl std::error::Error for Wrapper {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_untrusted_certificate_is_told_apart_from_an_outage() {
        let untrusted = Wrapper(std::io::Error::other(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        )));
        assert!(certificate_rejected(&untrusted));
        assert_eq!(
            describe(&untrusted),
            "transport error: invalid peer certificate: UnknownIssuer"
        );
        let refused = Wrapper(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!certificate_rejected(&refused));
    }
}
