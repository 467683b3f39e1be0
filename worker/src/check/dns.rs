//! The DNS check: one query of the job's type for the job's name, sent to
//! the job's server (or the system's, see [`system`]) over UDP or TCP, and
//! the reply judged by its response code and answer records.
//!
//! The exchange is ours (hickory-proto only encodes and decodes), so every
//! way it can go wrong has its outcome: no reply before the deadline is
//! TIMEOUT; an ICMP port unreachable (a UDP `recv` refused) or a refused
//! TCP connect is CONNECT; a reply that does not decode, is not a response
//! or carries another id is PROTOCOL_ERROR. A UDP reply with the TC bit
//! is asked again over TCP, as resolvers do. A wrong rcode or answer is an
//! assertion failure.

mod answers;
mod system;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use monitor_core::dns::{parse_server, rcode_name};
use monitor_proto::v1::{CheckOutcome, CheckResult, DnsCheck, DnsRecordType, DnsResult, DnsTransport, check_result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

pub(super) use system::{RESOLV_CONF, SystemNameserver};

use super::blocklist::Blocklist;
use super::resolve::check_address;
use super::{Failure, Shared, human_duration};

/// The UDP payload size the query advertises (EDNS), the value of DNS
/// flag day 2020: large enough for most answers, small enough not to be
/// fragmented.
const EDNS_PAYLOAD: u16 = 1232;
/// A UDP reply is read into this many bytes (more than advertised).
const UDP_BUFFER_BYTES: usize = 4096;
/// Answers kept in the result (assertions see all of them).
const MAX_ANSWERS: usize = 64;

pub(super) async fn run(shared: &Shared, check: &DnsCheck, started: Instant, deadline: Instant) -> CheckResult {
    let mut seen = DnsResult::default();
    let ended = tokio::time::timeout_at(deadline, query(shared, check, &mut seen)).await;
    let duration = started.elapsed();
    let (failure, assertions) = match ended {
        Err(_elapsed) if seen.server.is_empty() => (Some(Failure::timeout(deadline - started)), Vec::new()),
        Err(_elapsed) => {
            let error = format!(
                "timed out after {} waiting for {}",
                human_duration(deadline - started),
                seen.server
            );
            (Some(Failure::new(CheckOutcome::Timeout, error)), Vec::new())
        }
        Ok(Err(failure)) => (Some(failure), Vec::new()),
        Ok(Ok(Answered { asked, answers })) => {
            let results = answers::evaluate(check.assertions.as_ref(), asked, &seen.rcode, &answers, &shared.regexes);
            let failure = super::first_failed(&results);
            (failure, results)
        }
    };
    super::finished(duration, failure, assertions, check_result::Detail::Dns(seen))
}

/// A reply that arrived and decoded.
struct Answered {
    /// The type queried (what the answers are of).
    asked: RecordType,
    /// Every answer of that type, in presentation form.
    answers: Vec<String>,
}

/// The query and its reply, recording in `seen` what is known so far (the
/// server before sending, the rest once the reply is in).
async fn query(shared: &Shared, check: &DnsCheck, seen: &mut DnsResult) -> Result<Answered, Failure> {
    let name = answers::query_name(&check.name).map_err(|error| Failure::new(CheckOutcome::ProtocolError, error))?;
    let asked = record_type(check.record_type)?;
    let tcp = match DnsTransport::try_from(check.transport) {
        Ok(DnsTransport::Unspecified | DnsTransport::Udp) => false,
        Ok(DnsTransport::Tcp) => true,
        Err(_) => {
            return Err(Failure::new(
                CheckOutcome::ProtocolError,
                format!("unknown transport {}", check.transport),
            ));
        }
    };
    let server = server(&shared.blocklist, &shared.dns_system, check)?;
    seen.server = server.to_string();

    let id = rand::random::<u16>();
    let request = request(id, name, asked)
        .to_vec()
        .map_err(|error| Failure::new(CheckOutcome::ProtocolError, format!("cannot encode the query: {error}")))?;
    let (mut reply, mut query_time) = if tcp {
        exchange_tcp(server, &request).await?
    } else {
        exchange_udp(server, &request).await?
    };
    let mut message = decode(&reply, id)?;
    if !tcp && message.truncated() {
        (reply, query_time) = exchange_tcp(server, &request).await?;
        message = decode(&reply, id)?;
    }
    seen.query_time = Some(query_time.into());
    seen.rcode = rcode_name(rcode(&message)).into_owned();
    let answers: Vec<String> = message
        .answers()
        .iter()
        .filter_map(|record| answers::present(record, asked))
        .collect();
    seen.answers = answers.iter().take(MAX_ANSWERS).cloned().collect();
    Ok(Answered { asked, answers })
}

/// The contract's record type as hickory's; unspecified means A.
fn record_type(value: i32) -> Result<RecordType, Failure> {
    Ok(match DnsRecordType::try_from(value) {
        Ok(DnsRecordType::Unspecified | DnsRecordType::A) => RecordType::A,
        Ok(DnsRecordType::Aaaa) => RecordType::AAAA,
        Ok(DnsRecordType::Cname) => RecordType::CNAME,
        Ok(DnsRecordType::Mx) => RecordType::MX,
        Ok(DnsRecordType::Txt) => RecordType::TXT,
        Ok(DnsRecordType::Ns) => RecordType::NS,
        Ok(DnsRecordType::Soa) => RecordType::SOA,
        Err(_) => {
            return Err(Failure::new(
                CheckOutcome::ProtocolError,
                format!("unknown record type {value}"),
            ));
        }
    })
}

/// The job's server, checked against the blocklist, or the system's (the
/// worker's own configuration, not checked).
fn server(blocklist: &Blocklist, system: &SystemNameserver, check: &DnsCheck) -> Result<SocketAddr, Failure> {
    let text = check.server.trim();
    if text.is_empty() {
        return system.get().map_err(|error| Failure::new(CheckOutcome::Connect, error));
    }
    let address =
        parse_server(text).map_err(|error| Failure::new(CheckOutcome::Connect, format!("invalid server: {error}")))?;
    check_address(blocklist, address.ip()).map_err(|error| error.to_failure())?;
    Ok(address)
}

/// A standard query asking for recursion, with EDNS for larger UDP replies.
fn request(id: u16, name: Name, asked: RecordType) -> Message {
    let mut message = Message::new();
    message
        .set_id(id)
        .set_message_type(MessageType::Query)
        .set_op_code(OpCode::Query)
        .set_recursion_desired(true)
        .add_query(Query::query(name, asked));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    message.set_edns(edns);
    message
}

/// Sends `request` in one datagram from a socket connected to `server`
/// (so only its replies are read, and an ICMP port unreachable surfaces as
/// a refused `recv`); returns the reply and the time it took.
async fn exchange_udp(server: SocketAddr, request: &[u8]) -> Result<(Vec<u8>, Duration), Failure> {
    let local: SocketAddr = if server.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local)
        .await
        .map_err(|error| Failure::new(CheckOutcome::Connect, format!("cannot open a UDP socket: {error}")))?;
    let target = format!("udp {server}");
    socket
        .connect(server)
        .await
        .map_err(|error| io_failure(&error, &target))?;
    let sent = Instant::now();
    socket
        .send(request)
        .await
        .map_err(|error| io_failure(&error, &target))?;
    let mut reply = vec![0; UDP_BUFFER_BYTES];
    let length = socket
        .recv(&mut reply)
        .await
        .map_err(|error| io_failure(&error, &target))?;
    let query_time = sent.elapsed();
    reply.truncate(length);
    Ok((reply, query_time))
}

/// Sends `request` over a new TCP connection (RFC 1035 4.2.2: each message
/// after its two-byte length) and reads one reply; the time is from the
/// request sent (after the connect) to the reply read.
async fn exchange_tcp(server: SocketAddr, request: &[u8]) -> Result<(Vec<u8>, Duration), Failure> {
    let target = format!("tcp {server}");
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(|error| io_failure(&error, &target))?;
    let length = u16::try_from(request.len())
        .map_err(|_| Failure::new(CheckOutcome::ProtocolError, "the query is too long for TCP"))?;
    let mut framed = Vec::with_capacity(2 + request.len());
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(request);
    let sent = Instant::now();
    stream
        .write_all(&framed)
        .await
        .map_err(|error| io_failure(&error, &target))?;
    let mut length = [0; 2];
    stream
        .read_exact(&mut length)
        .await
        .map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => Failure::new(
                CheckOutcome::ProtocolError,
                format!("the server closed the connection without answering ({target})"),
            ),
            _ => io_failure(&error, &target),
        })?;
    let mut reply = vec![0; usize::from(u16::from_be_bytes(length))];
    stream
        .read_exact(&mut reply)
        .await
        .map_err(|error| match error.kind() {
            io::ErrorKind::UnexpectedEof => Failure::new(
                CheckOutcome::ProtocolError,
                format!("the reply was cut short ({target})"),
            ),
            _ => io_failure(&error, &target),
        })?;
    Ok((reply, sent.elapsed()))
}

/// A socket error, naming the transport and address.
fn io_failure(error: &io::Error, target: &str) -> Failure {
    let message = match error.kind() {
        io::ErrorKind::ConnectionRefused => format!("connection refused ({target})"),
        io::ErrorKind::ConnectionReset => format!("connection reset ({target})"),
        io::ErrorKind::HostUnreachable => format!("host unreachable ({target})"),
        io::ErrorKind::NetworkUnreachable => format!("network unreachable ({target})"),
        _ => format!("{target}: {error}"),
    };
    Failure::new(CheckOutcome::Connect, message)
}

/// The reply as a message, when it is a DNS response to our query.
fn decode(reply: &[u8], id: u16) -> Result<Message, Failure> {
    let message = Message::from_vec(reply).map_err(|error| {
        Failure::new(
            CheckOutcome::ProtocolError,
            format!("the reply ({} bytes) is not a DNS message: {error}", reply.len()),
        )
    })?;
    if message.id() != id {
        return Err(Failure::new(
            CheckOutcome::ProtocolError,
            format!("the reply's id {} does not match the query's {id}", message.id()),
        ));
    }
    if message.message_type() != MessageType::Response {
        return Err(Failure::new(
            CheckOutcome::ProtocolError,
            "the reply is a query, not a response",
        ));
    }
    Ok(message)
}

/// The full response code: the header's four bits and EDNS's upper eight.
fn rcode(message: &Message) -> u16 {
    let high = message.extensions().as_ref().map_or(0, Edns::rcode_high);
    u16::from(ResponseCode::from(high, message.response_code().low()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(server: &str) -> DnsCheck {
        DnsCheck {
            name: "example.com".into(),
            server: server.into(),
            ..DnsCheck::default()
        }
    }

    #[test]
    fn explicit_servers_are_blocklisted_the_system_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 127.0.0.53\n").unwrap();
        let system = SystemNameserver::new(&path);
        let blocklist = Blocklist::default();

        assert_eq!(
            server(&blocklist, &system, &check("")),
            Ok("127.0.0.53:53".parse().unwrap())
        );
        assert_eq!(
            server(&blocklist, &system, &check("192.0.2.53:5353")),
            Ok("192.0.2.53:5353".parse().unwrap())
        );
        let refused = server(&blocklist, &system, &check("127.0.0.53")).unwrap_err();
        assert_eq!(refused.outcome, CheckOutcome::Blocked);
        let invalid = server(&blocklist, &system, &check("dns.example")).unwrap_err();
        assert_eq!(invalid.outcome, CheckOutcome::Connect);
        assert!(invalid.error.starts_with("invalid server: "), "{}", invalid.error);
    }

    #[test]
    fn record_types_map_and_unspecified_is_a() {
        assert_eq!(record_type(0), Ok(RecordType::A));
        assert_eq!(record_type(DnsRecordType::Soa as i32), Ok(RecordType::SOA));
        assert_eq!(record_type(42).unwrap_err().error, "unknown record type 42");
    }

    #[test]
    fn replies_must_be_responses_to_our_query() {
        let query = request(7, Name::from_ascii("example.com.").unwrap(), RecordType::A);
        let bytes = query.to_vec().unwrap();
        assert_eq!(
            decode(&bytes, 7).unwrap_err().error,
            "the reply is a query, not a response"
        );
        assert_eq!(
            decode(&bytes, 8).unwrap_err().error,
            "the reply's id 7 does not match the query's 8"
        );
        let garbage = decode(b"oops", 7).unwrap_err();
        assert_eq!(garbage.outcome, CheckOutcome::ProtocolError);
        assert!(
            garbage.error.starts_with("the reply (4 bytes) is not a DNS message: "),
            "{}",
            garbage.error
        );

        let mut response = query.clone();
        response.set_message_type(MessageType::Response);
        response.set_response_code(ResponseCode::NXDomain);
        let decoded = decode(&response.to_vec().unwrap(), 7).unwrap();
        assert_eq!(rcode_name(rcode(&decoded)), "NXDOMAIN");
    }
}
