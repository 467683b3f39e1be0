//! A real SMTP server for the email channel tests: aiosmtpd
//! (`tests/smtp/server.py`) in a child process, with a throw-away
//! certificate for localhost and 127.0.0.1 made here, listening on three
//! ports: STARTTLS required then a login, implicit TLS then a login, and
//! plain text without STARTTLS. Each message received is a JSON file the
//! test reads back ([`ReceivedMail`]); recipients named at start are
//! refused with 550, and the first N messages may be answered 451 (try
//! again later). Killed when dropped.
//!
//! aiosmtpd lives in a venv that `scripts/test` installs
//! (`scripts/lib.sh`, `ensure_smtp_server`) under `.tools/smtp`;
//! `MONITOR_TEST_SMTP_PYTHON` names another Python that has it.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use serde::Deserialize;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

use crate::server::TestCertificate;

/// The user the server accepts.
pub const SMTP_USER: &str = "monitor-test";
/// Its password.
pub const SMTP_PASSWORD: &str = "smtp-test-password-7f3a";

/// One message the server received (all of it, after DATA).
#[derive(Debug, Clone, Deserialize)]
pub struct ReceivedMail {
    /// "starttls", "implicit" or "plain".
    pub listener: String,
    /// Whether it came over TLS.
    pub tls: bool,
    /// The user that logged in, if one did.
    pub login: Option<String>,
    /// The envelope.
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Headers, decoded.
    pub subject: String,
    pub message_id: String,
    pub from: String,
    pub to: String,
    /// The decoded parts (None when the message has no such part).
    pub text: Option<String>,
    pub html: Option<String>,
    /// The message as it arrived.
    pub raw: String,
    /// When the server received it (Unix seconds).
    pub received_at: f64,
    /// What the server answered: "250 2.0.0 Ok: queued as …", or 451 for
    /// the first `fail_first` messages.
    pub reply: String,
}

/// A running SMTP server; killed when dropped.
pub struct SmtpServer {
    child: Child,
    /// STARTTLS required, then AUTH PLAIN/LOGIN as [`SMTP_USER`].
    pub starttls_port: u16,
    /// TLS from the first byte, then the same login.
    pub implicit_port: u16,
    /// Plain text, no STARTTLS offered, no login.
    pub plain_port: u16,
    /// The certificate the server shows, for channels to trust as their CA.
    pub ca_pem: String,
    out: PathBuf,
    log: PathBuf,
    /// Holds the messages and the log.
    _dir: tempfile::TempDir,
    /// Holds the certificate files the server reads.
    _certificate: TestCertificate,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits in the workspace")
        .to_path_buf()
}

/// The Python that has aiosmtpd.
pub fn python() -> PathBuf {
    std::env::var_os("MONITOR_TEST_SMTP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/smtp/bin/python"))
}

impl SmtpServer {
    /// Starts the server refusing `reject` (recipient addresses) with 550.
    pub async fn start(reject: &[&str]) -> SmtpServer {
        SmtpServer::start_failing(reject, 0).await
    }

    /// As [`SmtpServer::start`], answering the first `fail_first` messages
    /// 451 after DATA (a transient refusal; they are recorded with it).
    pub async fn start_failing(reject: &[&str], fail_first: usize) -> SmtpServer {
        let python = python();
        assert!(
            python.exists(),
            "the SMTP test server needs Python with aiosmtpd at {}: run scripts/test once (it installs it), \
             or set MONITOR_TEST_SMTP_PYTHON",
            python.display()
        );
        let certificate = TestCertificate::new();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let out = dir.path().join("received");
        std::fs::create_dir(&out).expect("creating the message directory");
        let log = dir.path().join("smtp.log");
        let mut command = Command::new(&python);
        command
            .arg(workspace_root().join("tests/smtp/server.py"))
            .arg("--cert")
            .arg(certificate.cert_path())
            .arg("--key")
            .arg(certificate.key_path())
            .args(["--user", SMTP_USER, "--password", SMTP_PASSWORD])
            .arg("--out")
            .arg(&out);
        for address in reject {
            command.args(["--reject", address]);
        }
        command.args(["--fail-first", &fail_first.to_string()]);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("creating the SMTP server's log"))
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {}: {err}", python.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        let read = tokio::time::timeout(Duration::from_secs(30), BufReader::new(stdout).read_line(&mut line)).await;
        let ports: serde_json::Value = match read {
            Ok(Ok(n)) if n > 0 => serde_json::from_str(&line).expect("the SMTP server's ready line is JSON"),
            _ => panic!(
                "the SMTP test server did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            ),
        };
        let port = |name: &str| {
            ports["ready"][name]
                .as_u64()
                .and_then(|port| u16::try_from(port).ok())
                .unwrap_or_else(|| panic!("no {name} port in {line}"))
        };
        SmtpServer {
            starttls_port: port("starttls"),
            implicit_port: port("implicit"),
            plain_port: port("plain"),
            ca_pem: certificate.cert_pem.clone(),
            child,
            out,
            log,
            _dir: dir,
            _certificate: certificate,
        }
    }

    /// What it has logged (aiosmtpd's lines).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Every message received so far, in order.
    pub fn received(&self) -> Vec<ReceivedMail> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .expect("reading the message directory")
            .filter_map(|entry| entry.ok().map(|entry| entry.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|path| {
                let text = std::fs::read_to_string(path).expect("reading a received message");
                serde_json::from_str(&text).expect("a received message is JSON")
            })
            .collect()
    }

    /// Waits until at least `count` messages arrived (at most `limit`).
    pub async fn wait_for(&self, count: usize, limit: Duration) -> Vec<ReceivedMail> {
        crate::wait_until(&format!("{count} messages at the SMTP server"), limit, || async {
            let received = self.received();
            if received.len() >= count {
                Ok(received)
            } else {
                Err(format!("{} so far; log:\n{}", received.len(), self.log()))
            }
        })
        .await
    }
}
