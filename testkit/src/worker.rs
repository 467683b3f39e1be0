//! `monitor-worker` processes, as an operator runs them: each with its
//! tracing log in a file of its own and its telemetry (`/metrics`,
//! `/healthz`, `/readyz`) on a free port, stopped by SIGTERM (a drain) or
//! kill -9 (no goodbye), and killed when dropped.
//!
//! Only the worker crate's tests know where the binary is
//! (`env!("CARGO_BIN_EXE_monitor-worker")`), so they pass it in. With
//! `MONITOR_TEST_KEEP_LOGS` set, each process's log directory is kept and
//! named on stderr.

use std::{
    cell::RefCell,
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::process::{Child, Command};

/// The log filter unless `env` sets `RUST_LOG`: the worker's own lines,
/// librdkafka's warnings only.
const RUST_LOG: &str = "info,librdkafka=warn,rdkafka=warn";

/// A running `monitor-worker`; killed when dropped.
pub struct WorkerProcess {
    child: Child,
    /// Address of /metrics, /healthz and /readyz.
    pub telemetry: String,
    /// Its standard error: the tracing log.
    log: PathBuf,
    /// Holds the log; kept when `MONITOR_TEST_KEEP_LOGS` is set.
    dir: Option<tempfile::TempDir>,
}

/// Starts `binary role args` with `--metrics-listen` on a free port and
/// the environment variables `env` (as an operator sets `KAFKA_*`).
pub fn spawn_worker(binary: &Path, role: &str, args: &[&str], env: &[(&str, &str)]) -> WorkerProcess {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let log = dir.path().join(format!("{role}.log"));
    let telemetry = format!("127.0.0.1:{}", crate::free_port());
    let child = Command::new(binary)
        .arg(role)
        .args(args)
        .args(["--metrics-listen", &telemetry])
        .env("RUST_LOG", RUST_LOG)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("creating the worker's log"))
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|err| panic!("starting {}: {err}", binary.display()));
    WorkerProcess {
        child,
        telemetry,
        log,
        dir: Some(dir),
    }
}

/// GETs `path` on the telemetry listener at `telemetry`: status and body,
/// or why it could not be asked.
async fn get(telemetry: &str, path: &str) -> Result<(u16, String), String> {
    let response = crate::http_client()
        .get(format!("http://{telemetry}{path}"))
        .send()
        .await
        .map_err(|err| err.to_string())?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.map_err(|err| err.to_string())?))
}

impl WorkerProcess {
    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("the worker runs")
    }

    /// `path` on its telemetry port: status and body, or why it could not
    /// be asked.
    pub async fn get(&self, path: &str) -> Result<(u16, String), String> {
        get(&self.telemetry, path).await
    }

    /// /readyz's status and body, or why it could not be asked.
    pub async fn readyz(&self) -> Result<(u16, String), String> {
        self.get("/readyz").await
    }

    /// Waits until /readyz answers `status` with a body containing `says`;
    /// fails at once, with the worker's log, if the worker exits.
    pub async fn wait_ready(&mut self, status: u16, says: &str) {
        let (telemetry, log) = (&self.telemetry, &self.log);
        let child = RefCell::new(&mut self.child);
        let what = format!("/readyz {status} saying {says:?}");
        crate::wait_until(&what, Duration::from_secs(90), || async {
            let exited = child.borrow_mut().try_wait().expect("asking whether the worker runs");
            let log = || std::fs::read_to_string(log).unwrap_or_default();
            if let Some(exit) = exited {
                panic!("the worker exited ({exit}) while waiting for {what}: {}", log());
            }
            match get(telemetry, "/readyz").await {
                Ok((got, body)) if got == status && body.contains(says) => Ok(()),
                Ok((got, body)) => Err(format!("{got} {body:?}; log:\n{}", log())),
                Err(err) => Err(format!("{err}; log:\n{}", log())),
            }
        })
        .await;
    }

    /// Its /metrics, parsed; `Err` while it does not answer.
    pub async fn metrics(&self) -> Result<prometheus_parse::Scrape, String> {
        crate::metrics::scrape(&format!("http://{}/metrics", self.telemetry)).await
    }

    /// SIGTERM, and the exit status once it has drained (within 60 s).
    pub async fn stop(&mut self) -> ExitStatus {
        let pid = self.pid();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -TERM {pid}");
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the worker did not stop within 60 s: {}", self.log()))
            .expect("waiting for the worker")
    }

    /// SIGTERM, then a clean exit; returns the log.
    pub async fn terminate(mut self) -> String {
        let status = self.stop().await;
        assert!(status.success(), "the worker exited with {status}: {}", self.log());
        self.log()
    }

    /// SIGKILL: no drain, no goodbye.
    pub async fn kill_9(mut self) {
        self.child.start_kill().expect("sending SIGKILL");
        self.child.wait().await.expect("waiting for the killed worker");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if std::env::var_os("MONITOR_TEST_KEEP_LOGS").is_none() {
            return;
        }
        if let Some(dir) = self.dir.take() {
            eprintln!("worker log kept: {}", dir.keep().display());
        }
    }
}
