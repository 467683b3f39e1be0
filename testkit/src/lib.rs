//! Helpers the integration tests share (a dev-dependency only; nothing here
//! is shipped):
//!
//! - [`kafka`]: private Apache Kafka brokers a test may kill -9 and restart
//!   with their data, three-node KRaft clusters, and TLS/SASL listeners laid
//!   out as managed Kafka services hand them out.
//! - [`wait_until`]: polling with a deadline, the one way tests wait.
//! - [`free_port`]: a port nothing listens on right now.

pub mod kafka;

use std::time::{Duration, Instant};

/// Polls `condition` every 200 ms until it holds; panics naming `what` and
/// the condition's last complaint after `limit`. A deadline, not a timing
/// assertion: `limit` is generous and only ends a test that would hang.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match condition().await {
            Ok(()) => return,
            Err(last) => assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {last}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A port on 127.0.0.1 nothing listens on right now (the kernel's pick).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding 127.0.0.1:0")
        .local_addr()
        .expect("a bound socket has an address")
        .port()
}
