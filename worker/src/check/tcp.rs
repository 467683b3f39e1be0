//! The TCP check: healthy when a connection to host:port is established
//! before the deadline, directly or through a SOCKS5 proxy. Telnet-style,
//! it may then send a text and expect an answer: what the peer sends is
//! read (at most [`MAX_RECEIVED_BYTES`]) until the expectations hold, the
//! peer closes, or the deadline, and the expectations are judged on it.

use std::time::Duration;

use monitor_proto::v1::{AssertionResult, CheckOutcome, CheckResult, TcpCheck, TcpResult, check_result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::assertions::{RegexCache, text_contains, text_matches};
use super::connect::{self, Connected};
use super::{Failure, Shared, socks5};

/// What is kept of the peer's answer (the contract's limit).
const MAX_RECEIVED_BYTES: usize = 4096;

/// What the check saw before it ended, however it ended.
#[derive(Default)]
struct Seen {
    /// The address connected to (the proxy's, through a proxy).
    address: String,
    /// Until the target was connected (through a proxy: connect and handshake).
    connect_time: Option<Duration>,
    /// When the connection was up.
    connected_at: Option<Instant>,
    /// What the peer sent, when an answer is expected.
    received: Vec<u8>,
    /// Connected until the answer was complete (matched, closed or full).
    response_time: Option<Duration>,
}

pub(super) async fn run(shared: &Shared, check: &TcpCheck, started: Instant, deadline: Instant) -> CheckResult {
    let mut seen = Seen::default();
    let ended = tokio::time::timeout_at(deadline, exchange(shared, check, &mut seen)).await;
    let duration = started.elapsed();
    let expects = expects_answer(check);
    let (failure, assertions) = match ended {
        // Something arrived but not what was expected: judge what did.
        Err(_elapsed) if expects && !seen.received.is_empty() => judged(check, &seen, &shared.regexes),
        Err(_elapsed) if expects && seen.connected_at.is_some() => (
            Some(Failure::new(
                CheckOutcome::Timeout,
                format!(
                    "connected, but no answer arrived within {}",
                    super::human_duration(deadline - started)
                ),
            )),
            Vec::new(),
        ),
        Err(_elapsed) => (Some(Failure::timeout(deadline - started)), Vec::new()),
        Ok(Err(failure)) => (Some(failure), Vec::new()),
        Ok(Ok(())) if expects => judged(check, &seen, &shared.regexes),
        Ok(Ok(())) => (None, Vec::new()),
    };
    let detail = TcpResult {
        connect_time: seen.connect_time.map(Into::into),
        address: seen.address,
        received: String::from_utf8_lossy(&seen.received).into_owned(),
        response_time: seen.response_time.map(Into::into),
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
        detail: Some(check_result::Detail::Tcp(detail)),
        ..result
    }
}

fn expects_answer(check: &TcpCheck) -> bool {
    !check.expect_contains.is_empty() || !check.expect_regex.is_empty()
}

/// The expectations on what was received, and the failure of the first
/// that does not hold.
fn judged(check: &TcpCheck, seen: &Seen, regexes: &RegexCache) -> (Option<Failure>, Vec<AssertionResult>) {
    let results = expectations(check, &String::from_utf8_lossy(&seen.received), regexes);
    let failure = super::first_failed(&results);
    (failure, results)
}

fn expectations(check: &TcpCheck, received: &str, regexes: &RegexCache) -> Vec<AssertionResult> {
    let mut results = Vec::with_capacity(2);
    if !check.expect_contains.is_empty() {
        results.push(text_contains(
            "expect_contains",
            "the answer",
            received,
            &check.expect_contains,
        ));
    }
    if !check.expect_regex.is_empty() {
        results.push(text_matches(
            "expect_regex",
            "the answer",
            received,
            &check.expect_regex,
            regexes,
        ));
    }
    results
}

/// Connect, send, read: progress goes to `seen` (kept when the deadline
/// cuts this short).
async fn exchange(shared: &Shared, check: &TcpCheck, seen: &mut Seen) -> Result<(), Failure> {
    let port = connect::port(check.port)?;
    let mut stream = match &check.proxy {
        None => {
            let Connected {
                stream,
                address,
                connect_time,
            } = connect::connect(&shared.blocklist, &check.host, port).await?;
            seen.address = address.to_string();
            seen.connect_time = Some(connect_time);
            stream
        }
        Some(proxy) => {
            let (stream, trace) = socks5::connect_via(&shared.blocklist, proxy, &check.host, port).await?;
            seen.address = trace
                .proxy_address
                .map(|address| address.to_string())
                .unwrap_or_default();
            seen.connect_time = trace.total_connect_time();
            stream
        }
    };
    let connected_at = Instant::now();
    seen.connected_at = Some(connected_at);
    if !check.send.is_empty() {
        stream
            .write_all(check.send.as_bytes())
            .await
            .map_err(|error| Failure::new(CheckOutcome::Connect, format!("sending failed: {}", io_words(&error))))?;
    }
    if expects_answer(check) {
        read_answer(&mut stream, check, &shared.regexes, seen).await?;
        seen.response_time = Some(connected_at.elapsed());
    }
    Ok(())
}

/// Reads until the expectations hold, the peer closes (or resets after
/// sending something), or [`MAX_RECEIVED_BYTES`] arrived.
async fn read_answer(
    stream: &mut TcpStream,
    check: &TcpCheck,
    regexes: &RegexCache,
    seen: &mut Seen,
) -> Result<(), Failure> {
    let mut buffer = [0_u8; MAX_RECEIVED_BYTES];
    while seen.received.len() < MAX_RECEIVED_BYTES {
        let room = MAX_RECEIVED_BYTES - seen.received.len();
        match stream.read(&mut buffer[..room]).await {
            Ok(0) => return Ok(()),
            Ok(read) => {
                seen.received.extend_from_slice(&buffer[..read]);
                let received = String::from_utf8_lossy(&seen.received);
                if expectations(check, &received, regexes)
                    .iter()
                    .all(|result| result.passed)
                {
                    return Ok(());
                }
            }
            Err(_) if !seen.received.is_empty() => return Ok(()),
            Err(error) => {
                return Err(Failure::new(
                    CheckOutcome::Connect,
                    format!("reading the answer failed: {}", io_words(&error)),
                ));
            }
        }
    }
    Ok(())
}

fn io_words(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionReset => "connection reset by the peer".to_owned(),
        std::io::ErrorKind::BrokenPipe => "the peer closed the connection".to_owned(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expecting(contains: &str, regex: &str) -> TcpCheck {
        TcpCheck {
            expect_contains: contains.to_owned(),
            expect_regex: regex.to_owned(),
            ..TcpCheck::default()
        }
    }

    #[test]
    fn only_set_expectations_are_evaluated_in_order() {
        let regexes = RegexCache::default();
        assert!(!expects_answer(&TcpCheck::default()));
        assert!(expectations(&TcpCheck::default(), "x", &regexes).is_empty());
        let results = expectations(&expecting("ready", "^220 "), "220 ready", &regexes);
        let names: Vec<_> = results
            .iter()
            .map(|result| (result.name.as_str(), result.passed))
            .collect();
        assert_eq!(names, [("expect_contains", true), ("expect_regex", true)]);
        let results = expectations(&expecting("", "^250"), "220 ready", &regexes);
        assert_eq!(results.len(), 1);
        assert!(!results[0].passed);
    }

    #[test]
    fn the_first_failed_expectation_is_the_error() {
        let seen = Seen {
            received: b"220 ready\r\n".to_vec(),
            ..Seen::default()
        };
        let (failure, results) = judged(&expecting("busy", "^5"), &seen, &RegexCache::default());
        assert_eq!(results.len(), 2);
        let failure = failure.unwrap();
        assert_eq!(failure.outcome, CheckOutcome::AssertionFailed);
        assert_eq!(
            failure.error,
            "the answer \"220 ready\\r\\n\" does not contain \"busy\""
        );
    }
}
