//! Accepting connections and serving them with hyper: HTTP/1.1 (with
//! upgrades, for WebSocket) and HTTP/2 (prior knowledge, or ALPN over TLS)
//! on every listener, plus the means for a route to close or reset its own
//! connection, and graceful shutdown.
//!
//! Shutdown: stop accepting, ask every connection to finish what it has in
//! flight (hyper's graceful shutdown), and give them the configured grace
//! period before the rest are dropped.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::routes::{self, Site};
use crate::tls::TlsListener;

/// Pause after a failed accept (e.g. out of file descriptors), so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Longest a client may take to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Lets a request end its own connection without answering: `/reset` and a
/// `/hang` interrupted by shutdown.
pub(crate) struct ConnectionControl {
    /// Cancelled to drop the connection at once.
    abort: CancellationToken,
    /// Set before `abort` when the close must be a TCP reset.
    reset: AtomicBool,
}

impl ConnectionControl {
    fn new() -> Self {
        Self {
            abort: CancellationToken::new(),
            reset: AtomicBool::new(false),
        }
    }

    /// Drops the connection with an ordinary close (FIN).
    pub(crate) fn close(&self) {
        self.abort.cancel();
    }

    /// Drops the connection with a TCP reset (RST): `SO_LINGER` 0 on close.
    pub(crate) fn reset(&self) {
        self.reset.store(true, Ordering::Release);
        self.abort.cancel();
    }
}

/// A TCP stream that resets instead of closing when its connection asked
/// for it. hyper owns the stream until the connection is dropped, so the
/// linger option can only be set here, on the way out.
struct ResettableStream {
    stream: TcpStream,
    control: Arc<ConnectionControl>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if !self.control.reset.load(Ordering::Acquire) {
            return;
        }
        if let Err(error) = self.stream.set_zero_linger() {
            warn!(%error, "could not set SO_LINGER 0; the connection closes without a reset");
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Serves `http` (and `tls`, when given) until `shutdown` completes, then
/// drains for at most `grace`.
pub(crate) async fn serve(
    http: TcpListener,
    tls: Option<TlsListener>,
    site: Arc<Site>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The timer is needed for hyper's default 30 s header-read timeout.
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);

    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = http.accept() => match accepted {
                Ok((stream, peer)) => {
                    let (stream, control) = prepare(stream, peer);
                    let (builder, site) = (builder.clone(), site.clone());
                    connections.spawn(serve_connection(stream, builder, site, control));
                }
                Err(error) => {
                    warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            accepted = accept_tls(tls.as_ref()) => match accepted {
                Ok((stream, peer)) => {
                    let (stream, control) = prepare(stream, peer);
                    let acceptor = tls.as_ref().map(TlsListener::acceptor);
                    let (builder, site) = (builder.clone(), site.clone());
                    connections.spawn(async move {
                        let Some(acceptor) = acceptor else { return };
                        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => serve_connection(stream, builder, site, control).await,
                            Ok(Err(error)) => debug!(%peer, %error, "TLS handshake failed"),
                            Err(_) => debug!(%peer, "TLS handshake timed out"),
                        }
                    });
                }
                Err(error) => {
                    warn!(%error, "accepting a TLS connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(finished) = connections.join_next() => log_finished(finished),
        }
    }

    drop(http);
    drop(tls);
    site.shutdown.cancel();
    let open = connections.len();
    info!(
        open,
        grace_ms = grace.as_millis(),
        "shutting down: draining connections"
    );
    let drained = tokio::time::timeout(grace, async {
        while let Some(finished) = connections.join_next().await {
            log_finished(finished);
        }
    })
    .await;
    if drained.is_err() {
        warn!(
            cut = connections.len(),
            "grace period over: dropping the connections still open"
        );
        connections.shutdown().await;
    }
    info!("stopped");
}

async fn accept_tls(tls: Option<&TlsListener>) -> io::Result<(TcpStream, SocketAddr)> {
    match tls {
        Some(tls) => tls.accept().await,
        None => std::future::pending().await,
    }
}

fn prepare(stream: TcpStream, peer: SocketAddr) -> (ResettableStream, Arc<ConnectionControl>) {
    // Responses go out in one write; don't let Nagle hold them back.
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%peer, %error, "could not set TCP_NODELAY");
    }
    let control = Arc::new(ConnectionControl::new());
    let stream = ResettableStream {
        stream,
        control: control.clone(),
    };
    (stream, control)
}

fn log_finished(finished: Result<(), tokio::task::JoinError>) {
    match finished {
        Err(error) if error.is_panic() => error!(%error, "a connection task panicked"),
        _ => {}
    }
}

/// Serves one connection until it ends, is aborted by a route, or has
/// drained after shutdown began.
async fn serve_connection<I>(
    io: I,
    builder: Arc<auto::Builder<TokioExecutor>>,
    site: Arc<Site>,
    control: Arc<ConnectionControl>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let (site, control) = (site.clone(), control.clone());
        service_fn(move |request| {
            let (site, control) = (site.clone(), control.clone());
            async move { Ok::<_, Infallible>(routes::handle(request, &site, &control).await) }
        })
    };
    // With upgrades: the WebSocket routes take the connection over.
    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        tokio::select! {
            finished = connection.as_mut() => {
                if let Err(error) = finished {
                    debug!(%error, "connection ended with an error");
                }
                return;
            }
            // Dropping the connection drops the stream: a FIN, or a reset if asked.
            () = control.abort.cancelled() => return,
            () = site.shutdown.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
