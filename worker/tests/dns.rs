//! The DNS check against the mock's DNS responder (zone mock.test.),
//! started in-process on its own port by each test: every record type
//! shown, each assertion passing and failing, UDP and TCP, and each way a
//! server can fail to answer.

use std::time::Duration;

use monitor_proto::v1::{
    CheckOutcome, CheckResult, DnsAssertions, DnsCheck, DnsRecordType, DnsResult, DnsTransport, Job, check_result, job,
};
use monitor_testkit::free_port;
use monitor_testkit::mock_dns::{GARBAGE, GARBAGE_REPLY, MockDns, SILENT, TRUNCATED, WRONG_ID};
use monitor_worker::check::{Blocklist, CheckConfig, CheckRunner};

/// Long enough that only the checks meant to time out do.
const GENEROUS: Duration = Duration::from_secs(10);

/// A worker with loopback opened (`--allow-net 127.0.0.0/8`): the mock
/// listens there.
fn runner() -> CheckRunner {
    CheckRunner::new(CheckConfig {
        blocklist: Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()]),
        ..CheckConfig::default()
    })
    .expect("runner builds")
}

fn query(dns: &MockDns, name: &str, record_type: DnsRecordType) -> DnsCheck {
    DnsCheck {
        name: name.to_owned(),
        record_type: record_type as i32,
        server: dns.address.to_string(),
        ..DnsCheck::default()
    }
}

fn over_tcp(check: DnsCheck) -> DnsCheck {
    DnsCheck {
        transport: DnsTransport::Tcp as i32,
        ..check
    }
}

fn asserting(check: DnsCheck, assertions: DnsAssertions) -> DnsCheck {
    DnsCheck {
        assertions: Some(assertions),
        ..check
    }
}

async fn run_with(runner: &CheckRunner, check: DnsCheck, timeout: Duration) -> CheckResult {
    let job = Job {
        timeout: Some(timeout.into()),
        check: Some(job::Check::Dns(check)),
        ..Job::default()
    };
    runner.run(&job).await
}

async fn run(check: DnsCheck) -> CheckResult {
    run_with(&runner(), check, GENEROUS).await
}

fn detail(result: &CheckResult) -> &DnsResult {
    match &result.detail {
        Some(check_result::Detail::Dns(detail)) => detail,
        other => panic!("not a DNS result: {other:?}"),
    }
}

fn assertion_names(result: &CheckResult) -> Vec<(&str, bool)> {
    result
        .assertions
        .iter()
        .map(|assertion| (assertion.name.as_str(), assertion.passed))
        .collect()
}

#[tokio::test]
async fn every_record_type_is_answered_and_shown() {
    let dns = MockDns::start().await;
    let cases: [(&str, DnsRecordType, &[&str]); 8] = [
        ("www.mock.test", DnsRecordType::A, &["192.0.2.10", "192.0.2.11"]),
        // Unspecified is A; the CNAME in front of the A records is not an answer.
        (
            "alias.mock.test.",
            DnsRecordType::Unspecified,
            &["192.0.2.10", "192.0.2.11"],
        ),
        ("www.mock.test", DnsRecordType::Aaaa, &["2001:db8::10"]),
        ("alias.mock.test", DnsRecordType::Cname, &["www.mock.test."]),
        (
            "mock.test",
            DnsRecordType::Mx,
            &["10 mail.mock.test.", "20 backup-mail.mock.test."],
        ),
        ("mock.test", DnsRecordType::Txt, &["v=spf1 -all"]),
        ("mock.test", DnsRecordType::Ns, &["ns1.mock.test.", "ns2.mock.test."]),
        (
            "mock.test",
            DnsRecordType::Soa,
            &["ns1.mock.test. hostmaster.mock.test. 2024010101 3600 600 86400 300"],
        ),
    ];
    for (name, record_type, answers) in cases {
        let result = run(query(&dns, name, record_type)).await;
        assert_eq!(result.outcome(), CheckOutcome::Ok, "{name} {record_type:?}: {result:?}");
        assert_eq!(result.error, "");
        let seen = detail(&result);
        assert_eq!(seen.rcode, "NOERROR");
        assert_eq!(seen.answers, answers, "{name} {record_type:?}");
        assert_eq!(seen.server, dns.address.to_string());
        assert!(seen.query_time.is_some(), "{seen:?}");
        assert_eq!(assertion_names(&result), [("rcode", true)]);
    }
}

#[tokio::test]
async fn udp_and_tcp_give_the_same_answer() {
    let dns = MockDns::start().await;
    for check in [
        query(&dns, "www.mock.test", DnsRecordType::A),
        over_tcp(query(&dns, "www.mock.test", DnsRecordType::A)),
    ] {
        let tcp = check.transport == DnsTransport::Tcp as i32;
        let result = run(check).await;
        assert_eq!(result.outcome(), CheckOutcome::Ok, "tcp {tcp}: {result:?}");
        assert_eq!(detail(&result).answers, ["192.0.2.10", "192.0.2.11"], "tcp {tcp}");
    }
}

#[tokio::test]
async fn a_truncated_udp_reply_is_asked_again_over_tcp() {
    let dns = MockDns::start().await;
    let result = run(query(&dns, TRUNCATED, DnsRecordType::A)).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(detail(&result).answers, ["192.0.2.99"]);
}

#[tokio::test]
async fn nxdomain_passes_when_expected_and_fails_when_not() {
    let dns = MockDns::start().await;
    let missing = query(&dns, "nope.mock.test", DnsRecordType::A);

    let result = run(missing.clone()).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(result.error, "rcode NXDOMAIN, expected NOERROR");
    assert_eq!(detail(&result).rcode, "NXDOMAIN");
    assert!(detail(&result).answers.is_empty());
    assert_eq!(assertion_names(&result), [("rcode", false)]);

    let expected = DnsAssertions {
        rcode: "NXDOMAIN".into(),
        ..DnsAssertions::default()
    };
    let result = run(asserting(missing, expected)).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(assertion_names(&result), [("rcode", true)]);

    // A name outside the zone: the server refuses it.
    let result = run(query(&dns, "example.com", DnsRecordType::A)).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(result.error, "rcode REFUSED, expected NOERROR");
}

#[tokio::test]
async fn answers_contain_passes_and_fails() {
    let dns = MockDns::start().await;
    let mx = query(&dns, "mock.test", DnsRecordType::Mx);
    let contain = |wanted: &[&str]| DnsAssertions {
        answers_contain: wanted.iter().map(|&text| text.to_owned()).collect(),
        ..DnsAssertions::default()
    };

    // Names compare without case and trailing dot.
    let result = run(asserting(mx.clone(), contain(&["10 MAIL.mock.test"]))).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(assertion_names(&result), [("rcode", true), ("answers_contain", true)]);

    let result = run(asserting(mx, contain(&["10 mail.mock.test.", "30 other.mock.test."]))).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(
        result.error,
        "answers [10 mail.mock.test., 20 backup-mail.mock.test.] do not contain [30 other.mock.test.]"
    );
    assert_eq!(assertion_names(&result), [("rcode", true), ("answers_contain", false)]);
}

#[tokio::test]
async fn answers_equal_passes_and_fails() {
    let dns = MockDns::start().await;
    let a = query(&dns, "www.mock.test", DnsRecordType::A);
    let equal = |wanted: &[&str]| DnsAssertions {
        answers_equal: wanted.iter().map(|&text| text.to_owned()).collect(),
        ..DnsAssertions::default()
    };

    let result = run(asserting(a.clone(), equal(&["192.0.2.11", "192.0.2.10"]))).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(assertion_names(&result), [("rcode", true), ("answers_equal", true)]);

    let result = run(asserting(a, equal(&["192.0.2.10"]))).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(result.error, "answers [192.0.2.10, 192.0.2.11], expected [192.0.2.10]");
}

#[tokio::test]
async fn answer_regex_passes_and_fails() {
    let dns = MockDns::start().await;
    let txt = query(&dns, "mock.test", DnsRecordType::Txt);
    let regex = |pattern: &str| DnsAssertions {
        answer_regex: pattern.to_owned(),
        ..DnsAssertions::default()
    };

    let result = run(asserting(txt.clone(), regex("^v=spf1 .*-all$"))).await;
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(assertion_names(&result), [("rcode", true), ("answer_regex", true)]);

    let result = run(asserting(txt, regex("^v=DMARC1"))).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(result.error, "no answer of [v=spf1 -all] matches /^v=DMARC1/");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let dns = MockDns::start().await;
    let timeout = Duration::from_millis(300);
    for check in [
        query(&dns, SILENT, DnsRecordType::A),
        over_tcp(query(&dns, SILENT, DnsRecordType::A)),
    ] {
        let result = run_with(&runner(), check, timeout).await;
        assert_eq!(result.outcome(), CheckOutcome::Timeout, "{result:?}");
        assert_eq!(
            result.error,
            format!("timed out after 300ms waiting for {}", dns.address)
        );
        let seen = detail(&result);
        assert_eq!(seen.server, dns.address.to_string());
        assert_eq!(seen.rcode, "");
        assert!(seen.query_time.is_none());
    }
}

#[tokio::test]
async fn a_reply_that_is_not_dns_is_a_protocol_error() {
    let dns = MockDns::start().await;
    for check in [
        query(&dns, GARBAGE, DnsRecordType::A),
        over_tcp(query(&dns, GARBAGE, DnsRecordType::A)),
    ] {
        let result = run(check).await;
        assert_eq!(result.outcome(), CheckOutcome::ProtocolError, "{result:?}");
        assert!(
            result.error.starts_with(&format!(
                "the reply ({} bytes) is not a DNS message: ",
                GARBAGE_REPLY.len()
            )),
            "{}",
            result.error
        );
    }
}

#[tokio::test]
async fn a_reply_with_another_id_is_a_protocol_error() {
    let dns = MockDns::start().await;
    let result = run(query(&dns, WRONG_ID, DnsRecordType::A)).await;
    assert_eq!(result.outcome(), CheckOutcome::ProtocolError, "{result:?}");
    assert!(result.error.starts_with("the reply's id "), "{}", result.error);
    assert!(
        result.error.contains(" does not match the query's "),
        "{}",
        result.error
    );
}

#[tokio::test]
async fn a_closed_tcp_port_is_a_connect_failure() {
    let port = free_port();
    let check = DnsCheck {
        name: "www.mock.test".into(),
        server: format!("127.0.0.1:{port}"),
        transport: DnsTransport::Tcp as i32,
        ..DnsCheck::default()
    };
    let result = run(check).await;
    assert_eq!(result.outcome(), CheckOutcome::Connect, "{result:?}");
    assert_eq!(result.error, format!("connection refused (tcp 127.0.0.1:{port})"));
    assert_eq!(detail(&result).server, format!("127.0.0.1:{port}"));
}

#[tokio::test]
async fn a_closed_udp_port_is_a_connect_failure() {
    // A UDP port nothing listens on: the kernel answers the query with
    // ICMP port unreachable, which the connected socket's recv reports.
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|socket| socket.local_addr())
        .expect("binding 127.0.0.1:0")
        .port();
    let check = DnsCheck {
        name: "www.mock.test".into(),
        server: format!("127.0.0.1:{port}"),
        transport: DnsTransport::Udp as i32,
        ..DnsCheck::default()
    };
    let result = run(check).await;
    assert_eq!(result.outcome(), CheckOutcome::Connect, "{result:?}");
    assert_eq!(result.error, format!("connection refused (udp 127.0.0.1:{port})"));
}

#[tokio::test]
async fn a_loopback_server_is_blocked_without_allow_net() {
    let dns = MockDns::start().await;
    let default_runner = CheckRunner::new(CheckConfig::default()).expect("runner builds");
    let result = run_with(
        &default_runner,
        query(&dns, "www.mock.test", DnsRecordType::A),
        GENEROUS,
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert_eq!(
        result.error,
        "address 127.0.0.1 is in blocked network 127.0.0.0/8 \
         (a worker started with --allow-net 127.0.0.0/8 may contact it)"
    );
    assert!(result.assertions.is_empty());
    assert_eq!(detail(&result), &DnsResult::default());
}
