//! The mock's DNS responder in-process on a port 0 of its own (UDP and TCP
//! of one port), one per test: the same `serve` that `monitor-mock
//! --dns-port` runs.

use std::net::SocketAddr;

use monitor_mock::DnsListener;
/// The zone, its records and the names that misbehave, for tests to ask.
pub use monitor_mock::dns::{GARBAGE, GARBAGE_REPLY, RECORDS, SILENT, TRUNCATED, WRONG_ID, ZONE};
use tokio::{sync::oneshot, task::JoinHandle};

/// A running responder; stops when dropped.
pub struct MockDns {
    /// Where it answers, on UDP and TCP.
    pub address: SocketAddr,
    /// Fires the shutdown future given to `serve`.
    stop: Option<oneshot::Sender<()>>,
    /// The task running `serve`.
    task: Option<JoinHandle<()>>,
}

impl MockDns {
    /// A responder on 127.0.0.1 and a port free for both UDP and TCP.
    pub async fn start() -> MockDns {
        let listener = DnsListener::bind("127.0.0.1".parse().expect("an address"), 0)
            .await
            .expect("binding UDP and TCP on one port");
        let address = listener.local_addr().expect("a bound socket has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(monitor_mock::dns::serve(listener, async {
            let _ = stopped.await;
        }));
        MockDns {
            address,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the responder and waits until it has.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the DNS responder does not panic");
        }
    }
}

impl Drop for MockDns {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
