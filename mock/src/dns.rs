//! The DNS responder: an authoritative server for the fixed zone
//! [`ZONE`] on UDP and TCP of one port, for testing the DNS check.
//!
//! Every record is in [`RECORDS`] (the README lists them too). A name of
//! the zone without records is NXDOMAIN, a name with records of other
//! types only is NOERROR without answers (both with the SOA in the
//! authority section, as RFC 2308 has it), a name outside the zone is
//! REFUSED. Names that behave otherwise on purpose: [`SILENT`] never
//! answers, [`GARBAGE`] answers bytes that are not a DNS message,
//! [`WRONG_ID`] answers with an id that is not the query's, and
//! [`TRUNCATED`] answers over UDP with the TC bit and no records (the
//! client must ask again over TCP, where its A record is).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// The zone answered for.
pub const ZONE: &str = "mock.test.";
/// A name whose queries are never answered (the check times out).
pub const SILENT: &str = "silent.mock.test.";
/// A name whose queries are answered with bytes that are not DNS.
pub const GARBAGE: &str = "garbage.mock.test.";
/// A name whose queries are answered with another id than theirs.
pub const WRONG_ID: &str = "wrong-id.mock.test.";
/// A name answered over TCP only: over UDP the reply is truncated (TC).
pub const TRUNCATED: &str = "truncated.mock.test.";
/// What [`GARBAGE`] answers.
pub const GARBAGE_REPLY: &[u8] = b"this is not a DNS message";

/// Every record of the zone: owner, type, and the data in presentation
/// form (as the DNS check shows answers). TTLs are all [`TTL`].
pub const RECORDS: &[(&str, RecordType, &str)] = &[
    (
        "mock.test.",
        RecordType::SOA,
        "ns1.mock.test. hostmaster.mock.test. 2024010101 3600 600 86400 300",
    ),
    ("mock.test.", RecordType::NS, "ns1.mock.test."),
    ("mock.test.", RecordType::NS, "ns2.mock.test."),
    ("mock.test.", RecordType::MX, "10 mail.mock.test."),
    ("mock.test.", RecordType::MX, "20 backup-mail.mock.test."),
    ("mock.test.", RecordType::TXT, "v=spf1 -all"),
    ("www.mock.test.", RecordType::A, "192.0.2.10"),
    ("www.mock.test.", RecordType::A, "192.0.2.11"),
    ("www.mock.test.", RecordType::AAAA, "2001:db8::10"),
    ("alias.mock.test.", RecordType::CNAME, "www.mock.test."),
    ("ns1.mock.test.", RecordType::A, "192.0.2.53"),
    ("ns2.mock.test.", RecordType::A, "192.0.2.54"),
    ("mail.mock.test.", RecordType::A, "192.0.2.25"),
    ("truncated.mock.test.", RecordType::A, "192.0.2.99"),
];

/// Time to live of every record.
pub const TTL: u32 = 300;

/// The UDP socket and TCP listener of one port.
pub struct DnsListener {
    udp: UdpSocket,
    tcp: TcpListener,
}

impl DnsListener {
    /// Binds UDP and TCP on `ip`:`port`; with port 0, one port the kernel
    /// picks that is free for both.
    pub async fn bind(ip: IpAddr, port: u16) -> io::Result<Self> {
        // A port free for UDP may be taken for TCP; try a few.
        let attempts = if port == 0 { 16 } else { 1 };
        let mut last_error = None;
        for _ in 0..attempts {
            let udp = UdpSocket::bind((ip, port)).await?;
            let bound = udp.local_addr()?;
            match TcpListener::bind(bound).await {
                Ok(tcp) => return Ok(Self { udp, tcp }),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
    }

    /// The address both listen on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

/// Answers on `listener` until `shutdown` completes; connections still
/// open then are dropped (queries are answered at once, so nothing is in
/// flight but [`SILENT`]'s).
pub async fn serve(listener: DnsListener, shutdown: impl Future<Output = ()>) {
    let zone = Arc::new(Zone::new());
    let address = listener
        .local_addr()
        .map_or_else(|_| "unknown".to_owned(), |a| a.to_string());
    info!(dns = %address, zone = ZONE, "mock DNS responder listening (UDP and TCP)");
    let DnsListener { udp, tcp } = listener;
    let mut connections = JoinSet::new();
    let mut buffer = vec![0; 4096];
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            received = udp.recv_from(&mut buffer) => match received {
                Ok((length, peer)) => {
                    if let Some(reply) = zone.respond(&buffer[..length], Transport::Udp)
                        && let Err(error) = udp.send_to(&reply, peer).await
                    {
                        debug!(%peer, %error, "sending a DNS reply failed");
                    }
                }
                // An ICMP error for an earlier reply; nothing to do.
                Err(error) => debug!(%error, "receiving a DNS query failed"),
            },
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_tcp(stream, peer, Arc::clone(&zone)));
                }
                Err(error) => {
                    warn!(%error, "accepting a DNS connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next() => {}
        }
    }
    connections.shutdown().await;
    info!("mock DNS responder stopped");
}

/// Answers every query on one connection until the client closes it.
async fn serve_tcp(mut stream: TcpStream, peer: SocketAddr, zone: Arc<Zone>) {
    loop {
        let mut length = [0; 2];
        if stream.read_exact(&mut length).await.is_err() {
            return;
        }
        let mut query = vec![0; usize::from(u16::from_be_bytes(length))];
        if stream.read_exact(&mut query).await.is_err() {
            return;
        }
        let Some(reply) = zone.respond(&query, Transport::Tcp) else {
            continue;
        };
        let Ok(length) = u16::try_from(reply.len()) else {
            return;
        };
        let mut framed = length.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if let Err(error) = stream.write_all(&framed).await {
            debug!(%peer, %error, "sending a DNS reply over TCP failed");
            return;
        }
    }
}

/// How a query came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

/// The records, parsed once.
struct Zone {
    apex: Name,
    records: Vec<Record>,
    soa: Record,
}

impl Zone {
    fn new() -> Self {
        let records: Vec<Record> = RECORDS
            .iter()
            .map(|(owner, record_type, data)| Record::from_rdata(name(owner), TTL, rdata(*record_type, data)))
            .collect();
        let soa = records
            .iter()
            .find(|record| record.record_type() == RecordType::SOA)
            .expect("the zone has an SOA record")
            .clone();
        Self {
            apex: name(ZONE),
            records,
            soa,
        }
    }

    /// The reply to the datagram or TCP message `query`, or nothing (a
    /// query that does not decode, or [`SILENT`]'s).
    fn respond(&self, query: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let request = match Message::from_vec(query) {
            Ok(request) => request,
            Err(error) => {
                debug!(%error, "ignoring a query that is not a DNS message");
                return None;
            }
        };
        let mut reply = Message::new();
        reply
            .set_id(request.id())
            .set_message_type(MessageType::Response)
            .set_op_code(request.op_code())
            .set_recursion_desired(request.recursion_desired())
            .add_queries(request.queries().iter().cloned());
        let question = match request.queries() {
            [question] if request.message_type() == MessageType::Query && request.op_code() == OpCode::Query => {
                question
            }
            _ => {
                reply.set_response_code(ResponseCode::NotImp);
                return reply.to_vec().ok();
            }
        };
        let owner = question.name().to_lowercase();
        if owner == name(SILENT) {
            return None;
        }
        if owner == name(GARBAGE) {
            return Some(GARBAGE_REPLY.to_vec());
        }
        if owner == name(WRONG_ID) {
            reply.set_id(request.id().wrapping_add(1));
            return reply.to_vec().ok();
        }
        if owner == name(TRUNCATED) && transport == Transport::Udp {
            reply.set_authoritative(true).set_truncated(true);
            return reply.to_vec().ok();
        }
        if !self.apex.zone_of(&owner) {
            reply.set_response_code(ResponseCode::Refused);
            return reply.to_vec().ok();
        }
        reply.set_authoritative(true);
        let asked = question.query_type();
        let answers = self.answers(&owner, asked);
        if answers.is_empty() {
            // NXDOMAIN when nothing is there, NODATA when other types are.
            if !self.records.iter().any(|record| *record.name() == owner) {
                reply.set_response_code(ResponseCode::NXDomain);
            }
            reply.add_name_server(self.soa.clone());
        }
        reply.add_answers(answers);
        reply.to_vec().ok()
    }

    /// The records of `asked` type at `owner`, following a CNAME there
    /// (within the zone) when another type is asked.
    fn answers(&self, owner: &Name, asked: RecordType) -> Vec<Record> {
        let mut answers = Vec::new();
        let mut owner = owner.clone();
        // A chain of at most a few links (the zone has one).
        for _ in 0..8 {
            let here: Vec<&Record> = self.records.iter().filter(|record| *record.name() == owner).collect();
            let matching: Vec<Record> = here
                .iter()
                .filter(|record| record.record_type() == asked)
                .map(|record| (*record).clone())
                .collect();
            if !matching.is_empty() || asked == RecordType::CNAME {
                answers.extend(matching);
                return answers;
            }
            match here.iter().find_map(|record| match record.data() {
                RData::CNAME(target) => Some((record, target.0.clone())),
                _ => None,
            }) {
                Some((alias, target)) => {
                    answers.push((*alias).clone());
                    owner = target.to_lowercase();
                }
                None => return answers,
            }
        }
        answers
    }
}

fn name(text: &str) -> Name {
    Name::from_ascii(text).expect("the zone's names are valid")
}

/// A record's data from its presentation form in [`RECORDS`].
fn rdata(record_type: RecordType, data: &str) -> RData {
    let words: Vec<&str> = data.split_whitespace().collect();
    let number = |word: &str| word.parse::<u32>().expect("the zone's numbers are valid");
    match (record_type, words.as_slice()) {
        (RecordType::A, _) => RData::A(A(data.parse().expect("an IPv4 address"))),
        (RecordType::AAAA, _) => RData::AAAA(AAAA(data.parse().expect("an IPv6 address"))),
        (RecordType::CNAME, _) => RData::CNAME(CNAME(name(data))),
        (RecordType::NS, _) => RData::NS(NS(name(data))),
        (RecordType::MX, [preference, exchange]) => {
            RData::MX(MX::new(preference.parse().expect("an MX preference"), name(exchange)))
        }
        (RecordType::TXT, _) => RData::TXT(TXT::new(vec![data.to_owned()])),
        (RecordType::SOA, [mname, rname, serial, refresh, retry, expire, minimum]) => RData::SOA(SOA::new(
            name(mname),
            name(rname),
            number(serial),
            i32::try_from(number(refresh)).expect("a refresh time"),
            i32::try_from(number(retry)).expect("a retry time"),
            i32::try_from(number(expire)).expect("an expire time"),
            number(minimum),
        )),
        _ => panic!("no record data form for {record_type} {data:?}"),
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::Query;

    use super::*;

    fn ask(zone: &Zone, owner: &str, record_type: RecordType) -> Option<Vec<u8>> {
        ask_over(zone, owner, record_type, Transport::Udp)
    }

    fn ask_over(zone: &Zone, owner: &str, record_type: RecordType, transport: Transport) -> Option<Vec<u8>> {
        let mut query = Message::new();
        query
            .set_id(42)
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .add_query(Query::query(name(owner), record_type));
        zone.respond(&query.to_vec().unwrap(), transport)
    }

    fn reply(zone: &Zone, owner: &str, record_type: RecordType) -> Message {
        Message::from_vec(&ask(zone, owner, record_type).expect("an answer")).unwrap()
    }

    fn types(records: &[Record]) -> Vec<RecordType> {
        records.iter().map(Record::record_type).collect()
    }

    #[test]
    fn every_record_type_is_answered_authoritatively() {
        let zone = Zone::new();
        for (owner, record_type, count) in [
            ("mock.test.", RecordType::SOA, 1),
            ("mock.test.", RecordType::NS, 2),
            ("mock.test.", RecordType::MX, 2),
            ("mock.test.", RecordType::TXT, 1),
            ("WWW.Mock.Test.", RecordType::A, 2),
            ("www.mock.test.", RecordType::AAAA, 1),
            ("alias.mock.test.", RecordType::CNAME, 1),
        ] {
            let message = reply(&zone, owner, record_type);
            assert_eq!(message.id(), 42);
            assert!(message.authoritative());
            assert_eq!(message.response_code(), ResponseCode::NoError);
            assert_eq!(
                types(message.answers()),
                vec![record_type; count],
                "{owner} {record_type}"
            );
        }
    }

    #[test]
    fn an_alias_is_followed_for_other_types() {
        let message = reply(&Zone::new(), "alias.mock.test.", RecordType::A);
        assert_eq!(
            types(message.answers()),
            [RecordType::CNAME, RecordType::A, RecordType::A]
        );
    }

    #[test]
    fn unknown_names_missing_types_and_other_zones() {
        let zone = Zone::new();
        let missing = reply(&zone, "nope.mock.test.", RecordType::A);
        assert_eq!(missing.response_code(), ResponseCode::NXDomain);
        assert_eq!(types(missing.name_servers()), [RecordType::SOA]);

        let nodata = reply(&zone, "www.mock.test.", RecordType::MX);
        assert_eq!(nodata.response_code(), ResponseCode::NoError);
        assert!(nodata.answers().is_empty());
        assert_eq!(types(nodata.name_servers()), [RecordType::SOA]);

        let elsewhere = reply(&zone, "example.com.", RecordType::A);
        assert_eq!(elsewhere.response_code(), ResponseCode::Refused);
        assert!(!elsewhere.authoritative());
    }

    #[test]
    fn the_misbehaving_names_misbehave() {
        let zone = Zone::new();
        assert_eq!(ask(&zone, SILENT, RecordType::A), None);
        assert_eq!(ask(&zone, GARBAGE, RecordType::A).as_deref(), Some(GARBAGE_REPLY));
        assert_eq!(reply(&zone, WRONG_ID, RecordType::A).id(), 43);
        assert_eq!(zone.respond(b"junk", Transport::Udp), None);

        let truncated = Message::from_vec(&ask(&zone, TRUNCATED, RecordType::A).unwrap()).unwrap();
        assert!(truncated.truncated() && truncated.answers().is_empty());
        let full = Message::from_vec(&ask_over(&zone, TRUNCATED, RecordType::A, Transport::Tcp).unwrap()).unwrap();
        assert!(!full.truncated());
        assert_eq!(types(full.answers()), [RecordType::A]);
    }

    #[tokio::test]
    async fn udp_and_tcp_share_one_port() {
        let listener = DnsListener::bind("127.0.0.1".parse().unwrap(), 0).await.unwrap();
        let address = listener.local_addr().unwrap();
        assert_eq!(listener.tcp.local_addr().unwrap(), address);
    }
}
