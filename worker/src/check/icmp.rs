//! The ICMP ping check: `count` echo requests to one address, the n-th
//! due `n * interval` after the check started, each awaiting its reply
//! until the deadline; then the share lost and the round trips judged.
//!
//! Requests due at or after the deadline are not sent, so `sent` may be
//! less than `count` when the timeout is short. Only an echo reply from
//! the address pinged, with the request's identifier (raw sockets) and
//! sequence number, counts as received; an ICMP error (destination
//! unreachable, time exceeded) for a request is remembered for the
//! message. Host names resolve through [`lookup`] (the blocklist applies,
//! the first allowed address is pinged), literals are checked by
//! [`check_address`].

mod socket;

use std::net::IpAddr;
use std::time::Duration;

use futures::future::join_all;
use monitor_core::icmp::{effective_count, effective_interval};
use monitor_proto::v1::{
    AssertionResult, CheckOutcome, CheckResult, IcmpAssertions, IcmpCheck, IcmpResult, check_result,
};
use surge_ping::{Client, IcmpPacket, PingIdentifier, PingSequence, SurgeError};
use tokio::time::Instant;

use socket::Family;
pub(super) use socket::Pingers;

use super::resolve::{check_address, lookup};
use super::{Failure, Shared};

/// Bytes after the echo header (as ping sends by default).
const PAYLOAD: [u8; 56] = [0x6d; 56];
/// Tries for a sequence number when one is still awaited (after 65536
/// echoes to the same address in flight at once, which is not expected).
const SEQUENCE_TRIES: usize = 4;

pub(super) async fn run(shared: &Shared, check: &IcmpCheck, started: Instant, deadline: Instant) -> CheckResult {
    let count = effective_count(check.count);
    let interval = effective_interval(
        check
            .interval
            .as_ref()
            .and_then(|interval| Duration::try_from(*interval).ok()),
    );
    let mut seen = IcmpResult::default();
    let ended = ping(shared, check, count, interval, started, deadline, &mut seen).await;
    let duration = started.elapsed();
    let (failure, assertions) = match ended {
        Err(failure) => (Some(failure), Vec::new()),
        Ok(echoes) => {
            seen.sent = echoes.sent;
            seen.received = u32::try_from(echoes.round_trips.len()).unwrap_or(u32::MAX);
            if let Some(stats) = RoundTrips::of(&echoes.round_trips) {
                seen.min_rtt = Some(stats.min.into());
                seen.avg_rtt = Some(stats.avg.into());
                seen.max_rtt = Some(stats.max.into());
            }
            if echoes.sent == 0 {
                let failure = echoes
                    .send_error
                    .unwrap_or_else(|| Failure::timeout(deadline - started));
                (Some(failure), Vec::new())
            } else {
                let results = evaluate(check.assertions.as_ref(), &echoes);
                let failure = super::first_failed(&results);
                (failure, results)
            }
        }
    };
    super::finished(duration, failure, assertions, check_result::Detail::Icmp(seen))
}

/// How the echoes went.
#[derive(Debug, Default)]
struct Echoes {
    /// Requests that went out.
    sent: u32,
    /// The round trip of each reply, in order of the requests.
    round_trips: Vec<Duration>,
    /// The first request that could not be sent, and why.
    send_error: Option<Failure>,
    /// The first ICMP error received for a request ("destination
    /// unreachable from 192.0.2.1").
    icmp_error: Option<String>,
}

/// One request's end.
enum Echo {
    /// The reply arrived after this long.
    Replied(Duration),
    /// Sent; no reply before the deadline.
    Lost,
    /// Sent; an ICMP error came back instead (what and from where).
    Refused(String),
    /// Not sent.
    NotSent(Failure),
}

/// Resolves, opens the client and sends the echoes; `seen` gets the
/// address and socket kind as soon as they are known.
async fn ping(
    shared: &Shared,
    check: &IcmpCheck,
    count: u32,
    interval: Duration,
    started: Instant,
    deadline: Instant,
    seen: &mut IcmpResult,
) -> Result<Echoes, Failure> {
    let address = tokio::time::timeout_at(deadline, address(shared, &check.host))
        .await
        .map_err(|_elapsed| Failure::timeout(deadline - started))??;
    seen.address = address.to_string();
    let family = if address.is_ipv4() { Family::V4 } else { Family::V6 };
    let (client, kind) = shared.pingers.client(family)?;
    seen.socket = kind.name().to_owned();

    let identifier = PingIdentifier(rand::random());
    let due = planned_sends(count, interval, deadline - started);
    let echoes = (0..due).map(|n| {
        let client = client.clone();
        async move {
            tokio::time::sleep_until(started + interval * n).await;
            echo(&client, &shared.pingers, address, identifier, deadline).await
        }
    });
    let mut echoes_seen = Echoes::default();
    for echo in join_all(echoes).await {
        match echo {
            Echo::Replied(round_trip) => {
                echoes_seen.sent += 1;
                echoes_seen.round_trips.push(round_trip);
            }
            Echo::Lost => echoes_seen.sent += 1,
            Echo::Refused(what) => {
                echoes_seen.sent += 1;
                echoes_seen.icmp_error.get_or_insert(what);
            }
            Echo::NotSent(failure) => {
                echoes_seen.send_error.get_or_insert(failure);
            }
        }
    }
    Ok(echoes_seen)
}

/// The requests due before the deadline: the n-th leaves `n * interval`
/// after the start, so with `timeout` left for the whole check.
fn planned_sends(count: u32, interval: Duration, timeout: Duration) -> u32 {
    (0..count).take_while(|n| interval * *n < timeout).count() as u32
}

/// The address to ping: a literal (IPv6 may be bracketed) checked against
/// the blocklist, or the first allowed address the name resolves to.
async fn address(shared: &Shared, host: &str) -> Result<IpAddr, Failure> {
    let host = host.trim();
    if host.is_empty() {
        return Err(Failure::new(CheckOutcome::Connect, "no host to ping"));
    }
    let literal = host
        .strip_prefix('[')
        .and_then(|host| host.strip_suffix(']'))
        .unwrap_or(host)
        .parse::<IpAddr>()
        // An IPv4 address written as IPv6 (::ffff:192.0.2.1) is pinged over IPv4.
        .map(|address| address.to_canonical());
    match literal {
        Ok(address) => {
            check_address(&shared.blocklist, address).map_err(|error| error.to_failure())?;
            Ok(address)
        }
        Err(_) => {
            let resolved = lookup(&shared.blocklist, host, 0)
                .await
                .map_err(|error| error.to_failure())?;
            Ok(resolved[0].ip())
        }
    }
}

/// Sends one request and awaits its reply until the deadline.
async fn echo(
    client: &Client,
    pingers: &Pingers,
    address: IpAddr,
    identifier: PingIdentifier,
    deadline: Instant,
) -> Echo {
    let mut pinger = client.pinger(address, identifier).await;
    pinger.timeout(deadline.saturating_duration_since(Instant::now()));
    for _ in 0..SEQUENCE_TRIES {
        let sequence = PingSequence(pingers.next_sequence());
        return match pinger.ping(sequence, &PAYLOAD).await {
            Ok((packet, round_trip)) => match icmp_error(&packet) {
                None => Echo::Replied(round_trip),
                Some(what) => Echo::Refused(what),
            },
            Err(SurgeError::Timeout { .. }) => Echo::Lost,
            Err(SurgeError::IdenticalRequests { .. }) => continue,
            Err(SurgeError::IOError(error)) => Echo::NotSent(send_failure(&error, address)),
            Err(other) => Echo::NotSent(Failure::new(
                CheckOutcome::Connect,
                format!("cannot ping {address}: {other}"),
            )),
        };
    }
    Echo::NotSent(Failure::new(
        CheckOutcome::Connect,
        format!("cannot ping {address}: no free sequence number"),
    ))
}

/// The ICMP error a reply is, or `None` for an echo reply.
fn icmp_error(packet: &IcmpPacket) -> Option<String> {
    let (what, source) = match packet {
        IcmpPacket::V4(packet) => {
            let what = match packet.get_icmp_type().0 {
                0 => return None,
                3 => "destination unreachable".to_owned(),
                11 => "time exceeded".to_owned(),
                other => format!("ICMP type {other}"),
            };
            (what, IpAddr::from(packet.get_source()))
        }
        IcmpPacket::V6(packet) => {
            let what = match packet.get_icmpv6_type().0 {
                129 => return None,
                1 => "destination unreachable".to_owned(),
                3 => "time exceeded".to_owned(),
                other => format!("ICMPv6 type {other}"),
            };
            (what, IpAddr::from(packet.get_source()))
        }
    };
    Some(format!("{what} from {source}"))
}

fn send_failure(error: &std::io::Error, address: IpAddr) -> Failure {
    use std::io::ErrorKind;
    let message = match error.kind() {
        ErrorKind::HostUnreachable => format!("host unreachable ({address})"),
        ErrorKind::NetworkUnreachable => format!("network unreachable ({address})"),
        _ => format!("cannot send an echo request to {address}: {error}"),
    };
    Failure::new(CheckOutcome::Connect, message)
}

/// Minimum, mean and maximum of the round trips.
struct RoundTrips {
    min: Duration,
    avg: Duration,
    max: Duration,
}

impl RoundTrips {
    fn of(round_trips: &[Duration]) -> Option<Self> {
        let min = *round_trips.iter().min()?;
        let max = *round_trips.iter().max()?;
        let total: Duration = round_trips.iter().sum();
        let avg = total / u32::try_from(round_trips.len()).unwrap_or(u32::MAX);
        Some(Self { min, avg, max })
    }
}

/// "loss" always (unset: at least one reply), then "avg_rtt" when set.
fn evaluate(assertions: Option<&IcmpAssertions>, echoes: &Echoes) -> Vec<AssertionResult> {
    let default = IcmpAssertions::default();
    let assertions = assertions.unwrap_or(&default);
    let sent = echoes.sent;
    let received = u32::try_from(echoes.round_trips.len()).unwrap_or(u32::MAX);
    let lost_percent = if sent == 0 {
        100.0
    } else {
        f64::from(sent - received.min(sent)) * 100.0 / f64::from(sent)
    };
    let mut seen = format!("received {received} of {sent}");
    if received < sent {
        seen.push_str(&format!(" ({} loss", percent(lost_percent)));
        if let Some(what) = &echoes.icmp_error {
            seen.push_str(&format!("; {what}"));
        }
        seen.push(')');
    }
    let (passed, detail) = match assertions.max_loss_percent {
        None => (received > 0, seen),
        Some(max) if !max.is_finite() => (false, format!("{seen}; the loss limit {max} is not a number")),
        Some(max) => {
            let passed = lost_percent <= max;
            let verb = if passed { "within" } else { "more than" };
            (passed, format!("{seen}, {verb} {} allowed", percent(max)))
        }
    };
    let mut results = vec![AssertionResult {
        name: "loss".to_owned(),
        passed,
        detail,
    }];
    if let Some(max) = assertions.max_avg_rtt {
        let max = Duration::try_from(max).unwrap_or(Duration::ZERO);
        let (passed, detail) = match RoundTrips::of(&echoes.round_trips) {
            None => (
                false,
                format!("no reply, so no average round trip to compare with {}", rtt(max)),
            ),
            Some(stats) => {
                let passed = stats.avg <= max;
                let verb = if passed { "within" } else { "more than" };
                (
                    passed,
                    format!("average round trip {}, {verb} {}", rtt(stats.avg), rtt(max)),
                )
            }
        };
        results.push(AssertionResult {
            name: "avg_rtt".to_owned(),
            passed,
            detail,
        });
    }
    results
}

/// `33.3%`, `0%`, `100%`.
fn percent(value: f64) -> String {
    let text = format!("{value:.1}");
    format!("{}%", text.strip_suffix(".0").unwrap_or(&text))
}

/// A round trip for people: `850ns`, `42.5µs`, `1.234ms`, `2.5s`.
fn rtt(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    let trimmed = |value: f64, unit: &str| {
        let text = format!("{value:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        format!("{text}{unit}")
    };
    if nanos < 1_000 {
        format!("{nanos}ns")
    } else if nanos < 1_000_000 {
        trimmed(nanos as f64 / 1e3, "µs")
    } else if nanos < 1_000_000_000 {
        trimmed(nanos as f64 / 1e6, "ms")
    } else {
        trimmed(duration.as_secs_f64(), "s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn echoes(sent: u32, round_trips_ms: &[u64]) -> Echoes {
        Echoes {
            sent,
            round_trips: round_trips_ms.iter().map(|&ms| Duration::from_millis(ms)).collect(),
            ..Echoes::default()
        }
    }

    fn proto(duration: Duration) -> pbjson_types::Duration {
        duration.into()
    }

    #[test]
    fn requests_due_before_the_deadline_are_sent() {
        let ms = Duration::from_millis;
        assert_eq!(planned_sends(3, ms(200), ms(10_000)), 3);
        assert_eq!(planned_sends(5, ms(100), ms(250)), 3);
        assert_eq!(planned_sends(5, ms(100), ms(200)), 2);
        assert_eq!(planned_sends(1, ms(1000), ms(1)), 1);
    }

    #[test]
    fn without_a_limit_only_no_reply_at_all_fails() {
        let results = evaluate(None, &echoes(3, &[1, 2]));
        assert_eq!(results.len(), 1);
        assert!(results[0].passed);
        assert_eq!(results[0].detail, "received 2 of 3 (33.3% loss)");

        let mut none = echoes(3, &[]);
        none.icmp_error = Some("destination unreachable from 192.0.2.1".into());
        let results = evaluate(None, &none);
        assert!(!results[0].passed);
        assert_eq!(
            results[0].detail,
            "received 0 of 3 (100% loss; destination unreachable from 192.0.2.1)"
        );
    }

    #[test]
    fn the_loss_limit_is_a_percentage() {
        let limit = |max: f64| IcmpAssertions {
            max_loss_percent: Some(max),
            ..IcmpAssertions::default()
        };
        let results = evaluate(Some(&limit(50.0)), &echoes(4, &[1, 1]));
        assert!(results[0].passed);
        assert_eq!(results[0].detail, "received 2 of 4 (50% loss), within 50% allowed");
        let results = evaluate(Some(&limit(10.0)), &echoes(4, &[1, 1, 1]));
        assert!(!results[0].passed);
        assert_eq!(results[0].detail, "received 3 of 4 (25% loss), more than 10% allowed");
        let results = evaluate(Some(&limit(0.0)), &echoes(2, &[1, 1]));
        assert!(results[0].passed);
        assert_eq!(results[0].detail, "received 2 of 2, within 0% allowed");
        assert!(!evaluate(Some(&limit(f64::NAN)), &echoes(2, &[1, 1]))[0].passed);
    }

    #[test]
    fn the_average_round_trip_is_compared_with_its_limit() {
        let limit = |max: Duration| IcmpAssertions {
            max_avg_rtt: Some(proto(max)),
            ..IcmpAssertions::default()
        };
        let results = evaluate(Some(&limit(Duration::from_millis(3))), &echoes(3, &[1, 2, 6]));
        let names: Vec<_> = results
            .iter()
            .map(|result| (result.name.as_str(), result.passed))
            .collect();
        assert_eq!(names, [("loss", true), ("avg_rtt", true)]);
        assert_eq!(results[1].detail, "average round trip 3ms, within 3ms");

        let results = evaluate(Some(&limit(Duration::from_nanos(1))), &echoes(1, &[1]));
        assert!(!results[1].passed);
        assert_eq!(results[1].detail, "average round trip 1ms, more than 1ns");

        let results = evaluate(Some(&limit(Duration::from_millis(1))), &echoes(2, &[]));
        assert!(!results[1].passed);
        assert_eq!(
            results[1].detail,
            "no reply, so no average round trip to compare with 1ms"
        );
    }

    #[test]
    fn round_trips_read_naturally() {
        assert_eq!(rtt(Duration::from_nanos(850)), "850ns");
        assert_eq!(rtt(Duration::from_nanos(42_500)), "42.5µs");
        assert_eq!(rtt(Duration::from_micros(1_234)), "1.234ms");
        assert_eq!(rtt(Duration::from_millis(2_500)), "2.5s");
        assert_eq!(percent(100.0 / 3.0), "33.3%");
        assert_eq!(percent(100.0), "100%");
    }

    #[test]
    fn statistics_over_the_replies() {
        let stats = RoundTrips::of(&[Duration::from_millis(1), Duration::from_millis(5)]).unwrap();
        assert_eq!(
            (stats.min, stats.avg, stats.max),
            (
                Duration::from_millis(1),
                Duration::from_millis(3),
                Duration::from_millis(5)
            )
        );
        assert!(RoundTrips::of(&[]).is_none());
    }
}
