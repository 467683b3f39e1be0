//! The SSH-like banner listener (`--ssh-listen`): every connection gets
//! [`BANNER`], the mock reads the client's identification line (or waits
//! [`CLIENT_LINE_TIMEOUT`] for it) and closes. Enough for the monitor's
//! SSH check, which reads the server's identification and goes; there is no
//! key exchange.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The identification line sent (RFC 4253 4.2).
pub const BANNER: &str = "SSH-2.0-MonitorMock_1.0\r\n";

/// How long a client may take to send its own identification line.
const CLIENT_LINE_TIMEOUT: Duration = Duration::from_secs(10);
/// RFC 4253's bound on an identification line, CR LF included.
const MAX_LINE_BYTES: usize = 255;
/// Pause after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves banners on `listener` until `shutdown` is cancelled; connections
/// still open then are dropped.
pub(crate) async fn serve(listener: TcpListener, shutdown: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(async move {
                        if let Err(error) = greet(stream).await {
                            debug!(%peer, %error, "SSH banner connection failed");
                        }
                    });
                }
                Err(error) => {
                    warn!(%error, "accepting an SSH connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
}

/// The banner, the client's line (or the timeout), then a close.
async fn greet(mut stream: TcpStream) -> std::io::Result<()> {
    stream.write_all(BANNER.as_bytes()).await?;
    let mut line = Vec::with_capacity(MAX_LINE_BYTES);
    let mut byte = [0_u8; 1];
    let _ = tokio::time::timeout(CLIENT_LINE_TIMEOUT, async {
        while line.len() < MAX_LINE_BYTES && !line.ends_with(b"\n") {
            if stream.read(&mut byte).await? == 0 {
                break;
            }
            line.push(byte[0]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    debug!(client = %String::from_utf8_lossy(&line).trim_end(), "SSH client identified");
    stream.shutdown().await
}
