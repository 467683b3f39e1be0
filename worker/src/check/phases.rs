//! Where an HTTP check's time goes: DNS, TCP connect, TLS handshake, first
//! byte, transfer.
//!
//! reqwest opens connections out of sight, so the phases are marked from
//! three hooks that run inside the connect future, which is polled by the
//! check's own task: the connector layer ([`MarkConnectLayer`]: start and
//! end of the whole connect), the resolver (start and end of DNS, see
//! `resolve::FilteringResolver`) and the TLS session store
//! ([`MarkingSessionStore`]: rustls consults it as it writes the
//! ClientHello, which is when TCP is connected). The marks live in a
//! task-local scoped to one check, so checks running side by side never
//! see each other's. A connect that a pooled connection overtakes finishes
//! in a background task, outside the scope, and marks nothing.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use monitor_proto::v1::HttpTiming;
use rustls::NamedGroup;
use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::pki_types::ServerName;
use tokio::time::Instant;

tokio::task_local! {
    static MARKS: RefCell<Marks>;
}

/// When each phase of the latest connect began and ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Marks {
    /// The connector was called (a new connection is being opened).
    pub(super) connect_start: Option<Instant>,
    pub(super) dns_start: Option<Instant>,
    pub(super) dns_end: Option<Instant>,
    /// TCP connected: rustls began the handshake.
    pub(super) tls_start: Option<Instant>,
    /// The connection (TCP, proxy and TLS) was ready.
    pub(super) connected: Option<Instant>,
}

/// Runs `check` with its own marks and returns them with its output.
pub(super) async fn scope<F: Future>(check: F) -> (F::Output, Marks) {
    MARKS
        .scope(RefCell::new(Marks::default()), async {
            let output = check.await;
            let marks = MARKS.with(|marks| *marks.borrow());
            (output, marks)
        })
        .await
}

/// Changes the current check's marks; outside a check, nothing.
fn mark(change: impl FnOnce(&mut Marks)) {
    let _ = MARKS.try_with(|marks| change(&mut marks.borrow_mut()));
}

pub(super) fn dns_started() {
    mark(|marks| marks.dns_start = Some(Instant::now()));
}

pub(super) fn dns_ended() {
    mark(|marks| marks.dns_end = Some(Instant::now()));
}

impl Marks {
    /// Whether this check opened a connection of its own.
    pub(super) fn connected_here(&self) -> bool {
        self.connected.is_some()
    }

    /// The phases of the final request, whose headers arrived at
    /// `headers_at` and whose body ended at `body_end` (unset for a request
    /// that ended earlier). `request_start` is where the first byte phase
    /// starts on a reused connection.
    pub(super) fn timing(&self, request_start: Instant, headers_at: Instant, body_end: Option<Instant>) -> HttpTiming {
        let between = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
            (Some(from), Some(to)) if to >= from => Some((to - from).into()),
            _ => None,
        };
        let connected = self.connected.filter(|connected| *connected <= headers_at);
        let (dns, connect, tls_handshake) = if connected.is_some() {
            let tcp_start = self.dns_end.or(self.connect_start);
            let tcp_end = self.tls_start.or(connected);
            (
                between(self.dns_start, self.dns_end),
                between(tcp_start, tcp_end),
                between(self.tls_start, connected),
            )
        } else {
            (None, None, None)
        };
        HttpTiming {
            dns,
            connect,
            tls_handshake,
            first_byte: between(Some(connected.unwrap_or(request_start)), Some(headers_at)),
            transfer: between(Some(headers_at), body_end),
        }
    }
}

/// A connector layer that marks the start and end of each connect.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct MarkConnectLayer;

impl<S> tower::Layer<S> for MarkConnectLayer {
    type Service = MarkConnect<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MarkConnect { inner }
    }
}

#[derive(Debug, Clone)]
pub(super) struct MarkConnect<S> {
    inner: S,
}

impl<S, R> tower::Service<R> for MarkConnect<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let connecting = self.inner.call(request);
        Box::pin(async move {
            // A new connect starts over: an earlier one (a redirect's) is
            // not this request's.
            mark(|marks| {
                *marks = Marks {
                    connect_start: Some(Instant::now()),
                    ..Marks::default()
                }
            });
            let connected = connecting.await;
            if connected.is_ok() {
                mark(|marks| marks.connected = Some(Instant::now()));
            }
            connected
        })
    }
}

/// The TLS session store of the HTTP clients: rustls's in-memory cache,
/// plus a mark when a handshake begins.
#[derive(Debug)]
pub(super) struct MarkingSessionStore {
    inner: Arc<dyn ClientSessionStore>,
}

impl MarkingSessionStore {
    pub(super) fn new() -> Self {
        Self {
            // rustls's default size.
            inner: Arc::new(rustls::client::ClientSessionMemoryCache::new(256)),
        }
    }

    fn handshake_started() {
        mark(|marks| {
            marks.tls_start.get_or_insert_with(Instant::now);
        });
    }
}

impl ClientSessionStore for MarkingSessionStore {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(server_name, group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        Self::handshake_started();
        self.inner.kx_hint(server_name)
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.inner.set_tls12_session(server_name, value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        Self::handshake_started();
        self.inner.tls12_session(server_name)
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        self.inner.remove_tls12_session(server_name);
    }

    fn insert_tls13_ticket(&self, server_name: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.inner.insert_tls13_ticket(server_name, value);
    }

    fn take_tls13_ticket(&self, server_name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        Self::handshake_started();
        self.inner.take_tls13_ticket(server_name)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at(base: Instant, ms: u64) -> Option<Instant> {
        Some(base + Duration::from_millis(ms))
    }

    fn ms(duration: Option<pbjson_types::Duration>) -> Option<i64> {
        duration.map(|duration| i64::from(duration.nanos) / 1_000_000 + duration.seconds * 1000)
    }

    #[test]
    fn a_new_https_connection_has_every_phase() {
        let base = Instant::now();
        let marks = Marks {
            connect_start: at(base, 0),
            dns_start: at(base, 1),
            dns_end: at(base, 5),
            tls_start: at(base, 12),
            connected: at(base, 30),
        };
        let timing = marks.timing(base, base + Duration::from_millis(50), at(base, 65));
        assert_eq!(ms(timing.dns), Some(4));
        assert_eq!(ms(timing.connect), Some(7));
        assert_eq!(ms(timing.tls_handshake), Some(18));
        assert_eq!(ms(timing.first_byte), Some(20));
        assert_eq!(ms(timing.transfer), Some(15));
    }

    #[test]
    fn an_ip_literal_over_http_has_no_dns_or_tls() {
        let base = Instant::now();
        let marks = Marks {
            connect_start: at(base, 0),
            connected: at(base, 3),
            ..Marks::default()
        };
        let timing = marks.timing(base, base + Duration::from_millis(10), None);
        assert_eq!(ms(timing.dns), None);
        assert_eq!(ms(timing.connect), Some(3));
        assert_eq!(ms(timing.tls_handshake), None);
        assert_eq!(ms(timing.first_byte), Some(7));
        assert_eq!(timing.transfer, None);
    }

    #[test]
    fn a_reused_connection_has_only_the_request() {
        let base = Instant::now();
        let timing = Marks::default().timing(base, base + Duration::from_millis(8), at(base, 9));
        assert_eq!((timing.dns, timing.connect, timing.tls_handshake), (None, None, None));
        assert_eq!(ms(timing.first_byte), Some(8));
        assert_eq!(ms(timing.transfer), Some(1));
    }

    #[tokio::test]
    async fn marks_belong_to_their_own_check() {
        let (_, first) = scope(async { dns_started() }).await;
        assert!(first.dns_start.is_some());
        let (_, second) = scope(async {}).await;
        assert_eq!(second, Marks::default());
        // Outside any check, marking is a no-op rather than a panic.
        dns_ended();
    }
}
