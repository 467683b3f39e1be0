//! SOCKS5 (RFC 1928): the client side every check that goes through a
//! proxy uses ([`connect_via`]), and the SOCKS5 check, healthy when the
//! proxy takes the login (if any) and reports the target connected.
//!
//! The proxy's own address is resolved and checked against the blocklist
//! like any target. A target given as an IP literal is checked too; a
//! target name is sent to the proxy unresolved (ATYP domain), since the
//! proxy resolves it in its own network, where the worker's blocklist
//! cannot follow (the operator who allows a proxy allows what it reaches).
//! Authentication: none, or RFC 1929 user name and password when the
//! proxy names a user.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use monitor_proto::v1::{CheckOutcome, CheckResult, Socks5Check, Socks5Proxy, Socks5Result, check_result};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::Failure;
use super::blocklist::Blocklist;
use super::connect::{self, ip_literal};
use super::resolve::check_address;

const VERSION: u8 = 5;
const METHOD_NONE: u8 = 0x00;
const METHOD_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE_METHOD: u8 = 0xff;
/// RFC 1929's sub-negotiation version.
const PASSWORD_VERSION: u8 = 1;
const COMMAND_CONNECT: u8 = 1;
const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;
/// RFC 1928 6: the reply that means the target is connected.
const REPLY_SUCCEEDED: u8 = 0;

/// How the way through a proxy went; every field is set once
/// [`connect_via`] succeeds, and as far as it got when it fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Socks5Trace {
    /// The proxy's address connected to.
    pub(super) proxy_address: Option<SocketAddr>,
    /// The TCP connect to the proxy.
    pub(super) connect_time: Option<Duration>,
    /// Connected to the proxy until it reported the target reached.
    pub(super) handshake_time: Option<Duration>,
    /// The proxy's reply to CONNECT: "succeeded" or its failure's name.
    pub(super) reply: String,
}

impl Socks5Trace {
    /// The connect and the handshake: the time to a connected target.
    pub(super) fn total_connect_time(&self) -> Option<Duration> {
        Some(self.connect_time? + self.handshake_time.unwrap_or_default())
    }
}

/// Connects to `target_host:target_port` through `proxy`. The returned
/// stream carries the target's bytes. Failures: DNS, BLOCKED or CONNECT
/// for the proxy's address (and BLOCKED for a target IP literal), PROXY
/// when the proxy refuses the login or cannot reach the target,
/// PROTOCOL_ERROR when it does not speak SOCKS5. Not bounded in time: the
/// caller bounds it by the check's deadline.
pub(super) async fn connect_via(
    blocklist: &Blocklist,
    proxy: &Socks5Proxy,
    target_host: &str,
    target_port: u16,
) -> Result<(TcpStream, Socks5Trace), Failure> {
    let mut trace = Socks5Trace::default();
    let stream = connect_recording(blocklist, proxy, target_host, target_port, &mut trace).await?;
    Ok((stream, trace))
}

/// [`connect_via`], recording progress in `trace` (kept when the caller's
/// deadline cuts this short or it fails).
async fn connect_recording(
    blocklist: &Blocklist,
    proxy: &Socks5Proxy,
    target_host: &str,
    target_port: u16,
    trace: &mut Socks5Trace,
) -> Result<TcpStream, Failure> {
    let target = Target::new(blocklist, target_host, target_port)?;
    let proxy_port = connect::port(proxy.port)
        .map_err(|_| Failure::new(CheckOutcome::Connect, format!("invalid proxy port {}", proxy.port)))?;
    let connected = connect::connect(blocklist, &proxy.host, proxy_port)
        .await
        .map_err(|failure| Failure::new(failure.outcome, format!("proxy: {}", failure.error)))?;
    trace.proxy_address = Some(connected.address);
    trace.connect_time = Some(connected.connect_time);
    let mut stream = connected.stream;
    let handshake_started = Instant::now();
    let reply = handshake(&mut stream, proxy, &target).await?;
    trace.reply = reply_name(reply).into_owned();
    if reply != REPLY_SUCCEEDED {
        return Err(Failure::new(
            CheckOutcome::Proxy,
            format!("the proxy could not reach {target}: {}", trace.reply),
        ));
    }
    trace.handshake_time = Some(handshake_started.elapsed());
    Ok(stream)
}

/// Where the proxy is asked to connect.
struct Target {
    /// As sent: an address, or a name for the proxy to resolve.
    address: TargetAddress,
    port: u16,
}

enum TargetAddress {
    Ip(IpAddr),
    Name(String),
}

impl Target {
    /// An IP literal must not be blocklisted; a name must fit SOCKS5's
    /// one-byte length.
    fn new(blocklist: &Blocklist, host: &str, port: u16) -> Result<Self, Failure> {
        let host = host.trim();
        if host.is_empty() {
            return Err(Failure::new(CheckOutcome::Connect, "no target host to reach"));
        }
        if port == 0 {
            return Err(Failure::new(CheckOutcome::Connect, "invalid target port 0"));
        }
        let address = match ip_literal(host) {
            Some(address) => {
                check_address(blocklist, address).map_err(|error| error.to_failure())?;
                TargetAddress::Ip(address)
            }
            None if host.len() > 255 => {
                return Err(Failure::new(
                    CheckOutcome::Connect,
                    "the target host name is longer than 255 bytes",
                ));
            }
            None => TargetAddress::Name(host.to_owned()),
        };
        Ok(Self { address, port })
    }

    /// DST.ADDR and DST.PORT of the request, with their ATYP.
    fn encode(&self, request: &mut Vec<u8>) {
        match &self.address {
            TargetAddress::Ip(IpAddr::V4(address)) => {
                request.push(ATYP_IPV4);
                request.extend_from_slice(&address.octets());
            }
            TargetAddress::Ip(IpAddr::V6(address)) => {
                request.push(ATYP_IPV6);
                request.extend_from_slice(&address.octets());
            }
            TargetAddress::Name(name) => {
                request.push(ATYP_DOMAIN);
                // At most 255 bytes (checked in `new`).
                request.push(name.len() as u8);
                request.extend_from_slice(name.as_bytes());
            }
        }
        request.extend_from_slice(&self.port.to_be_bytes());
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.address {
            TargetAddress::Ip(address) => write!(f, "{}", SocketAddr::new(*address, self.port)),
            TargetAddress::Name(name) => write!(f, "{name}:{}", self.port),
        }
    }
}

/// Method selection, the login if one is chosen, and CONNECT; returns the
/// proxy's reply code.
async fn handshake(stream: &mut TcpStream, proxy: &Socks5Proxy, target: &Target) -> Result<u8, Failure> {
    let login = !proxy.username.is_empty();
    let greeting: &[u8] = if login {
        &[VERSION, 2, METHOD_NONE, METHOD_PASSWORD]
    } else {
        &[VERSION, 1, METHOD_NONE]
    };
    stream
        .write_all(greeting)
        .await
        .map_err(|error| not_socks5(&format!("sending the greeting failed ({error})")))?;
    let mut chosen = [0_u8; 2];
    read_greeting_answer(stream, &mut chosen).await?;
    match chosen[1] {
        METHOD_NONE => {}
        METHOD_PASSWORD if login => log_in(stream, proxy).await?,
        NO_ACCEPTABLE_METHOD if login => {
            return Err(Failure::new(
                CheckOutcome::Proxy,
                "the proxy accepts neither no authentication nor a user name and password",
            ));
        }
        NO_ACCEPTABLE_METHOD => {
            return Err(Failure::new(
                CheckOutcome::Proxy,
                "the proxy requires authentication (set a user name and password)",
            ));
        }
        other => {
            return Err(Failure::new(
                CheckOutcome::ProtocolError,
                format!("the proxy chose authentication method {other:#04x}, which was not offered"),
            ));
        }
    }

    let mut request = vec![VERSION, COMMAND_CONNECT, 0];
    target.encode(&mut request);
    stream
        .write_all(&request)
        .await
        .map_err(|error| proxy_closed("sending the request", &error))?;
    let mut head = [0_u8; 4];
    stream
        .read_exact(&mut head)
        .await
        .map_err(|error| proxy_closed("waiting for the reply", &error))?;
    if head[0] != VERSION {
        return Err(Failure::new(
            CheckOutcome::ProtocolError,
            format!("the proxy's reply has version {} instead of 5", head[0]),
        ));
    }
    // BND.ADDR and BND.PORT are read and dropped: checks do not use them.
    let bound = match head[3] {
        ATYP_IPV4 => 4 + 2,
        ATYP_IPV6 => 16 + 2,
        ATYP_DOMAIN => {
            let mut length = [0_u8; 1];
            stream
                .read_exact(&mut length)
                .await
                .map_err(|error| proxy_closed("reading the reply", &error))?;
            usize::from(length[0]) + 2
        }
        // A failure reply may carry no usable address; its code counts.
        _ if head[1] != REPLY_SUCCEEDED => 0,
        other => {
            return Err(Failure::new(
                CheckOutcome::ProtocolError,
                format!("the proxy's reply has unknown address type {other}"),
            ));
        }
    };
    let mut rest = vec![0_u8; bound];
    stream
        .read_exact(&mut rest)
        .await
        .map_err(|error| proxy_closed("reading the reply", &error))?;
    Ok(head[1])
}

/// The proxy's answer to the greeting: anything but version 5 means the
/// peer is not a SOCKS5 proxy.
async fn read_greeting_answer(stream: &mut TcpStream, chosen: &mut [u8; 2]) -> Result<(), Failure> {
    let mut read = 0;
    while read < chosen.len() {
        match stream.read(&mut chosen[read..]).await {
            Ok(0) => {
                return Err(not_socks5(if read == 0 {
                    "it closed the connection without answering"
                } else {
                    "its answer was cut short"
                }));
            }
            Ok(count) => read += count,
            Err(error) => return Err(not_socks5(&format!("reading its answer failed ({error})"))),
        }
        if chosen[0] != VERSION {
            // One byte: how many more came with it is up to the network.
            return Err(not_socks5(&format!(
                "its answer starts with {}",
                shown_bytes(&chosen[..1])
            )));
        }
    }
    Ok(())
}

/// RFC 1929: the user name and password, and the verdict.
async fn log_in(stream: &mut TcpStream, proxy: &Socks5Proxy) -> Result<(), Failure> {
    let (user, password) = (proxy.username.as_bytes(), proxy.password.as_bytes());
    let (Ok(user_length), Ok(password_length)) = (u8::try_from(user.len()), u8::try_from(password.len())) else {
        return Err(Failure::new(
            CheckOutcome::Proxy,
            "the proxy's user name and password must be at most 255 bytes each",
        ));
    };
    let mut login = Vec::with_capacity(3 + user.len() + password.len());
    login.extend_from_slice(&[PASSWORD_VERSION, user_length]);
    login.extend_from_slice(user);
    login.push(password_length);
    login.extend_from_slice(password);
    stream
        .write_all(&login)
        .await
        .map_err(|error| proxy_closed("sending the login", &error))?;
    let mut verdict = [0_u8; 2];
    stream
        .read_exact(&mut verdict)
        .await
        .map_err(|error| proxy_closed("waiting for the login's answer", &error))?;
    if verdict[0] != PASSWORD_VERSION {
        return Err(Failure::new(
            CheckOutcome::ProtocolError,
            format!("the proxy answered the login with version {}", verdict[0]),
        ));
    }
    if verdict[1] != 0 {
        return Err(Failure::new(
            CheckOutcome::Proxy,
            format!("the proxy refused the login of user {:?}", proxy.username),
        ));
    }
    Ok(())
}

fn not_socks5(why: &str) -> Failure {
    Failure::new(CheckOutcome::ProtocolError, format!("not a SOCKS5 proxy: {why}"))
}

/// The proxy went away after it had spoken SOCKS5 (some refuse that way).
fn proxy_closed(while_doing: &str, error: &std::io::Error) -> Failure {
    let what = match error.kind() {
        std::io::ErrorKind::UnexpectedEof => "the proxy closed the connection".to_owned(),
        std::io::ErrorKind::ConnectionReset => "the proxy reset the connection".to_owned(),
        _ => format!("the connection to the proxy failed ({error})"),
    };
    Failure::new(CheckOutcome::Proxy, format!("{what} {while_doing}"))
}

/// Bytes from a peer that is not a proxy, as text when they are text.
fn shown_bytes(bytes: &[u8]) -> String {
    if bytes.iter().all(|byte| byte.is_ascii_graphic() || *byte == b' ') {
        format!("{:?}", String::from_utf8_lossy(bytes))
    } else {
        bytes
            .iter()
            .map(|byte| format!("{byte:#04x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// RFC 1928 6, in the words results show.
fn reply_name(code: u8) -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed(match code {
        REPLY_SUCCEEDED => "succeeded",
        1 => "general failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        other => return std::borrow::Cow::Owned(format!("unassigned reply {other:#04x}")),
    })
}

/// The SOCKS5 check: reach the target through the proxy, then close.
pub(super) async fn run(
    blocklist: &Blocklist,
    check: &Socks5Check,
    started: Instant,
    deadline: Instant,
) -> CheckResult {
    let mut trace = Socks5Trace::default();
    let default_proxy = Socks5Proxy::default();
    let proxy = check.proxy.as_ref().unwrap_or(&default_proxy);
    let attempt = async {
        let port = u16::try_from(check.target_port).map_err(|_| {
            Failure::new(
                CheckOutcome::Connect,
                format!("invalid target port {}", check.target_port),
            )
        })?;
        connect_recording(blocklist, proxy, &check.target_host, port, &mut trace).await
    };
    let ended = tokio::time::timeout_at(deadline, attempt).await;
    let duration = started.elapsed();
    let failure = match ended {
        Err(_elapsed) => Some(Failure::timeout(deadline - started)),
        Ok(Err(failure)) => Some(failure),
        Ok(Ok(_stream)) => None,
    };
    let detail = Socks5Result {
        proxy_address: trace
            .proxy_address
            .map(|address| address.to_string())
            .unwrap_or_default(),
        connect_time: trace.connect_time.map(Into::into),
        handshake_time: trace.handshake_time.map(Into::into),
        reply: trace.reply,
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
        detail: Some(check_result::Detail::Socks5(detail)),
        ..result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(host: &str, port: u16) -> Result<Target, Failure> {
        Target::new(&Blocklist::default(), host, port)
    }

    fn encoded(target: &Target) -> Vec<u8> {
        let mut request = Vec::new();
        target.encode(&mut request);
        request
    }

    #[test]
    fn targets_are_sent_by_address_type() {
        assert_eq!(
            encoded(&target("93.184.215.14", 80).unwrap()),
            [1, 93, 184, 215, 14, 0, 80]
        );
        let v6 = encoded(&target("[2606:4700::1111]", 443).unwrap());
        assert_eq!(v6[0], ATYP_IPV6);
        assert_eq!(v6.len(), 1 + 16 + 2);
        assert_eq!(&v6[17..], &443_u16.to_be_bytes());
        assert_eq!(
            encoded(&target("db.internal", 5432).unwrap()),
            [&[3, 11][..], b"db.internal", &5432_u16.to_be_bytes()].concat()
        );
        assert_eq!(target("db.internal", 5432).unwrap().to_string(), "db.internal:5432");
    }

    #[test]
    fn blocked_literals_and_bad_targets_are_refused_before_connecting() {
        let failure = target("169.254.169.254", 80).err().unwrap();
        assert_eq!(failure.outcome, CheckOutcome::Blocked);
        assert_eq!(target(" ", 80).err().unwrap().error, "no target host to reach");
        assert_eq!(target("x", 0).err().unwrap().error, "invalid target port 0");
        let long = "a".repeat(256);
        assert_eq!(target(&long, 80).err().unwrap().outcome, CheckOutcome::Connect);
        // A name is the proxy's to resolve, even one that would be blocked here.
        assert!(target("localhost", 80).is_ok());
    }

    #[test]
    fn replies_have_names() {
        let names: Vec<_> = (0..=9).map(reply_name).collect();
        assert_eq!(
            names,
            [
                "succeeded",
                "general failure",
                "connection not allowed by ruleset",
                "network unreachable",
                "host unreachable",
                "connection refused",
                "TTL expired",
                "command not supported",
                "address type not supported",
                "unassigned reply 0x09",
            ]
        );
    }

    #[test]
    fn non_socks_answers_are_shown_readably() {
        assert_eq!(shown_bytes(b"HT"), "\"HT\"");
        assert_eq!(shown_bytes(&[4, 0x5a]), "0x04 0x5a");
    }

    #[test]
    fn the_total_connect_time_adds_the_handshake() {
        let trace = Socks5Trace {
            connect_time: Some(Duration::from_millis(3)),
            handshake_time: Some(Duration::from_millis(4)),
            ..Socks5Trace::default()
        };
        assert_eq!(trace.total_connect_time(), Some(Duration::from_millis(7)));
        assert_eq!(Socks5Trace::default().total_connect_time(), None);
    }
}
