//! The SSH check: connect and read the server's identification line
//! (RFC 4253 4.2, `SSH-2.0-OpenSSH_9.6`), then judge it. No key exchange,
//! no login.
//!
//! The worker sends its own identification first, as both sides may (a
//! server that is not SSH then usually answers with an error and closes,
//! instead of waiting for the timeout). Lines before the identification
//! that do not start with "SSH-" are skipped, as the RFC allows; each line
//! may be at most [`MAX_LINE_BYTES`] long, and at most
//! [`MAX_PREAMBLE_BYTES`] are read in all.

use std::time::Duration;

use monitor_proto::v1::{AssertionResult, CheckOutcome, CheckResult, SshCheck, SshResult, check_result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::assertions::{RegexCache, text_contains, text_matches};
use super::connect;
use super::{Failure, Shared, human_duration};

/// The port when the job names none.
const DEFAULT_PORT: u16 = 22;
/// RFC 4253 4.2: the identification line, CR LF included.
const MAX_LINE_BYTES: usize = 255;
/// Lines read before giving up on finding the identification.
const MAX_PREAMBLE_BYTES: usize = 8 * 1024;
/// What the worker says it is (no spaces or '-' in the software version).
const CLIENT_IDENTIFICATION: &str = concat!("SSH-2.0-MonitorWorker_", env!("CARGO_PKG_VERSION"), "\r\n");

/// What the check saw before it ended, however it ended.
#[derive(Default)]
struct Seen {
    address: String,
    connect_time: Option<Duration>,
    connected: bool,
    /// The identification line, without CR LF.
    banner: String,
    banner_time: Option<Duration>,
}

pub(super) async fn run(shared: &Shared, check: &SshCheck, started: Instant, deadline: Instant) -> CheckResult {
    let mut seen = Seen::default();
    let ended = tokio::time::timeout_at(deadline, identify(shared, check, &mut seen)).await;
    let duration = started.elapsed();
    let (failure, assertions) = match ended {
        Err(_elapsed) if seen.connected => (
            Some(Failure::new(
                CheckOutcome::Timeout,
                format!(
                    "connected, but no SSH identification line arrived within {}",
                    human_duration(deadline - started)
                ),
            )),
            Vec::new(),
        ),
        Err(_elapsed) => (Some(Failure::timeout(deadline - started)), Vec::new()),
        Ok(Err(failure)) => (Some(failure), Vec::new()),
        Ok(Ok(())) => {
            let results = banner_assertions(check, &seen.banner, &shared.regexes);
            let failure = super::first_failed(&results);
            (failure, results)
        }
    };
    let detail = SshResult {
        banner: seen.banner,
        connect_time: seen.connect_time.map(Into::into),
        banner_time: seen.banner_time.map(Into::into),
        address: seen.address,
    };
    let result = match failure {
        Some(failure) => failure.into_result(duration),
        None => CheckResult {
            duration: Some(duration.into()),
            outcome: CheckOutcome::Ok.into(),
            ..CheckResult::default()
        },
    };
    CheckResult {
        assertions,
        detail: Some(check_result::Detail::Ssh(detail)),
        ..result
    }
}

fn banner_assertions(check: &SshCheck, banner: &str, regexes: &RegexCache) -> Vec<AssertionResult> {
    let mut results = Vec::with_capacity(2);
    if !check.banner_contains.is_empty() {
        results.push(text_contains("banner", "banner", banner, &check.banner_contains));
    }
    if !check.banner_regex.is_empty() {
        results.push(text_matches("banner", "banner", banner, &check.banner_regex, regexes));
    }
    results
}

async fn identify(shared: &Shared, check: &SshCheck, seen: &mut Seen) -> Result<(), Failure> {
    let port = port(check.port)?;
    let connected = connect::connect(&shared.blocklist, &check.host, port).await?;
    seen.address = connected.address.to_string();
    seen.connect_time = Some(connected.connect_time);
    seen.connected = true;
    let connected_at = Instant::now();
    let mut stream = connected.stream;
    // A server that hung up at once shows in the read below.
    let _ = stream.write_all(CLIENT_IDENTIFICATION.as_bytes()).await;
    seen.banner = read_identification(&mut stream).await?;
    seen.banner_time = Some(connected_at.elapsed());
    Ok(())
}

/// The job's port; 0 means [`DEFAULT_PORT`].
fn port(port: u32) -> Result<u16, Failure> {
    match port {
        0 => Ok(DEFAULT_PORT),
        port => connect::port(port),
    }
}

/// Reads lines until one starts with "SSH-" and returns it without CR LF.
async fn read_identification(stream: &mut TcpStream) -> Result<String, Failure> {
    let mut preamble = Preamble::default();
    let mut buffer = [0_u8; 1024];
    loop {
        let read = match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return Err(preamble.closed()),
            Ok(read) => read,
        };
        if let Some(banner) = preamble.push(&buffer[..read])? {
            return Ok(banner);
        }
    }
}

/// The lines received so far: a pure core, fed what arrives.
#[derive(Default)]
struct Preamble {
    /// The line being received.
    line: Vec<u8>,
    /// Bytes received in all.
    total: usize,
    /// The first line, for messages.
    first_line: Option<String>,
}

impl Preamble {
    /// Takes received bytes; returns the identification once its line is
    /// complete, fails when a limit is passed.
    fn push(&mut self, bytes: &[u8]) -> Result<Option<String>, Failure> {
        for &byte in bytes {
            self.total += 1;
            self.line.push(byte);
            if byte == b'\n' {
                let line = String::from_utf8_lossy(&self.line)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                self.line.clear();
                if line.starts_with("SSH-") {
                    return Ok(Some(line));
                }
                self.first_line.get_or_insert(line);
            } else if self.line.len() >= MAX_LINE_BYTES {
                return Err(not_ssh(format!(
                    "a line longer than {MAX_LINE_BYTES} bytes ({})",
                    shown(&String::from_utf8_lossy(&self.line))
                )));
            }
            if self.total >= MAX_PREAMBLE_BYTES {
                return Err(not_ssh(format!(
                    "no identification line in the first {} KiB{}",
                    MAX_PREAMBLE_BYTES / 1024,
                    self.began_with()
                )));
            }
        }
        Ok(None)
    }

    /// The failure when the server closed before identifying itself.
    fn closed(&self) -> Failure {
        if self.total == 0 {
            return not_ssh("the server closed the connection without sending an identification line".to_owned());
        }
        let partial = String::from_utf8_lossy(&self.line);
        let began = match &self.first_line {
            Some(_) => self.began_with(),
            None => format!(" (it sent {})", shown(partial.trim_end())),
        };
        not_ssh(format!(
            "the server closed the connection without an identification line{began}"
        ))
    }

    fn began_with(&self) -> String {
        match &self.first_line {
            Some(line) => format!(" (it began with {})", shown(line)),
            None => String::new(),
        }
    }
}

fn not_ssh(why: String) -> Failure {
    Failure::new(CheckOutcome::ProtocolError, format!("not SSH: {why}"))
}

/// A line from the server, quoted and clipped, for messages.
fn shown(line: &str) -> String {
    let clipped = match line.char_indices().nth(80) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    };
    format!("{clipped:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identification_follows_skipped_lines() {
        let mut preamble = Preamble::default();
        assert_eq!(preamble.push(b"Welcome\r\nSSH-2.0-Open").unwrap(), None);
        assert_eq!(
            preamble.push(b"SSH_9.6 Ubuntu\r\n\0\0\0").unwrap().as_deref(),
            Some("SSH-2.0-OpenSSH_9.6 Ubuntu")
        );
        let mut bare = Preamble::default();
        assert_eq!(bare.push(b"SSH-1.99-x\n").unwrap().as_deref(), Some("SSH-1.99-x"));
    }

    #[test]
    fn limits_make_protocol_errors() {
        let mut long = Preamble::default();
        let failure = long.push(&[b'a'; MAX_LINE_BYTES]).unwrap_err();
        assert_eq!(failure.outcome, CheckOutcome::ProtocolError);
        assert!(
            failure.error.starts_with("not SSH: a line longer than 255 bytes"),
            "{}",
            failure.error
        );

        let mut chatty = Preamble::default();
        let lines = "x\r\n".repeat(MAX_PREAMBLE_BYTES / 3 + 1);
        let failure = chatty.push(lines.as_bytes()).unwrap_err();
        assert_eq!(
            failure.error,
            "not SSH: no identification line in the first 8 KiB (it began with \"x\")"
        );
    }

    #[test]
    fn a_close_says_what_came_before() {
        assert_eq!(
            Preamble::default().closed().error,
            "not SSH: the server closed the connection without sending an identification line"
        );
        let mut http = Preamble::default();
        http.push(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .unwrap();
        assert_eq!(
            http.closed().error,
            "not SSH: the server closed the connection without an identification line \
             (it began with \"HTTP/1.1 400 Bad Request\")"
        );
        let mut partial = Preamble::default();
        partial.push(b"SSH-2.0-cut").unwrap();
        assert_eq!(
            partial.closed().error,
            "not SSH: the server closed the connection without an identification line (it sent \"SSH-2.0-cut\")"
        );
    }

    #[test]
    fn port_zero_means_22() {
        assert_eq!(port(0).unwrap(), 22);
        assert_eq!(port(2222).unwrap(), 2222);
        assert_eq!(port(70_000).unwrap_err().error, "invalid port 70000");
    }

    #[test]
    fn the_client_identification_is_valid() {
        let software = CLIENT_IDENTIFICATION
            .strip_prefix("SSH-2.0-")
            .unwrap()
            .strip_suffix("\r\n")
            .unwrap();
        assert!(software.bytes().all(|byte| byte.is_ascii_graphic() && byte != b'-'));
    }
}
