//! The ICMP ping check against this host's own stack: 127.0.0.1 and ::1
//! answer every echo (the kernel replies), with loopback opened in the
//! test's blocklist. Which socket kind is used depends on the machine
//! (raw as root when `net.ipv4.ping_group_range` excludes us, as on CI);
//! the tests change no sysctl. NOT_PERMITTED, which needs a machine that
//! allows neither kind, is a unit test of the classification.

use std::time::Duration;

use monitor_proto::v1::{CheckOutcome, CheckResult, IcmpAssertions, IcmpCheck, IcmpResult, Job, check_result, job};
use monitor_worker::check::{Blocklist, CheckConfig, CheckRunner};

/// Long enough that only the checks meant to run out of time do.
const GENEROUS: Duration = Duration::from_secs(10);

fn runner_opening(networks: &[&str]) -> CheckRunner {
    CheckRunner::new(CheckConfig {
        blocklist: Blocklist::with_defaults([], networks.iter().map(|net| net.parse().unwrap()).collect()),
        ..CheckConfig::default()
    })
    .expect("runner builds")
}

/// A worker started with `--allow-net 127.0.0.0/8,::1/128`.
fn runner() -> CheckRunner {
    runner_opening(&["127.0.0.0/8", "::1/128"])
}

fn ping(host: &str, count: u32, interval: Duration) -> IcmpCheck {
    IcmpCheck {
        host: host.to_owned(),
        count,
        interval: Some(interval.into()),
        ..IcmpCheck::default()
    }
}

async fn run_with(runner: &CheckRunner, check: IcmpCheck, timeout: Duration) -> CheckResult {
    let job = Job {
        timeout: Some(timeout.into()),
        check: Some(job::Check::Icmp(check)),
        ..Job::default()
    };
    runner.run(&job).await
}

fn detail(result: &CheckResult) -> &IcmpResult {
    match &result.detail {
        Some(check_result::Detail::Icmp(detail)) => detail,
        other => panic!("not an ICMP result: {other:?}"),
    }
}

fn assertion_names(result: &CheckResult) -> Vec<(&str, bool)> {
    result
        .assertions
        .iter()
        .map(|assertion| (assertion.name.as_str(), assertion.passed))
        .collect()
}

fn assert_all_replied(result: &CheckResult, address: &str, count: u32) {
    assert_eq!(result.outcome(), CheckOutcome::Ok, "{result:?}");
    assert_eq!(result.error, "");
    let seen = detail(result);
    assert_eq!(seen.address, address);
    assert_eq!((seen.sent, seen.received), (count, count), "{seen:?}");
    assert!(["dgram", "raw"].contains(&seen.socket.as_str()), "{seen:?}");
    let as_std = |rtt: Option<pbjson_types::Duration>| Duration::try_from(rtt.expect("a round trip")).unwrap();
    let (min, avg, max) = (as_std(seen.min_rtt), as_std(seen.avg_rtt), as_std(seen.max_rtt));
    assert!(min > Duration::ZERO && min <= avg && avg <= max, "{seen:?}");
    assert_eq!(assertion_names(result), [("loss", true)]);
}

#[tokio::test]
async fn loopback_answers_every_echo_with_the_defaults() {
    // count 0 and no interval: three requests, 200 ms apart.
    let check = IcmpCheck {
        host: "127.0.0.1".into(),
        ..IcmpCheck::default()
    };
    let result = run_with(&runner(), check, GENEROUS).await;
    assert_all_replied(&result, "127.0.0.1", 3);
    assert_eq!(result.assertions[0].detail, "received 3 of 3");
}

#[tokio::test]
async fn ipv6_loopback_answers_too() {
    let result = run_with(&runner(), ping("[::1]", 2, Duration::from_millis(10)), GENEROUS).await;
    assert_all_replied(&result, "::1", 2);
}

#[tokio::test]
async fn an_ipv4_address_written_as_ipv6_is_pinged_over_ipv4() {
    let result = run_with(
        &runner(),
        ping("::ffff:127.0.0.1", 1, Duration::from_millis(10)),
        GENEROUS,
    )
    .await;
    assert_all_replied(&result, "127.0.0.1", 1);
}

#[tokio::test]
async fn a_loss_limit_of_zero_holds_on_loopback() {
    let check = IcmpCheck {
        assertions: Some(IcmpAssertions {
            max_loss_percent: Some(0.0),
            ..IcmpAssertions::default()
        }),
        ..ping("127.0.0.1", 5, Duration::from_millis(10))
    };
    let result = run_with(&runner(), check, GENEROUS).await;
    assert_all_replied(&result, "127.0.0.1", 5);
    assert_eq!(result.assertions[0].detail, "received 5 of 5, within 0% allowed");
}

/// 0.0.0.0 ("this host") is delivered by Linux to the host itself, and the
/// reply comes from 127.0.0.1, not from the address pinged, so it does not
/// count: an address that never answers, without a packet leaving the
/// machine. 5 requests 100 ms apart within 250 ms: the ones due at 0, 100
/// and 200 ms are sent, those due at 300 and 400 ms are not.
#[tokio::test]
async fn no_reply_at_all_fails_the_loss_assertion() {
    let runner = runner_opening(&["0.0.0.0/32"]);
    let result = run_with(
        &runner,
        ping("0.0.0.0", 5, Duration::from_millis(100)),
        Duration::from_millis(250),
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(result.error, "received 0 of 3 (100% loss)");
    let seen = detail(&result);
    assert_eq!((seen.address.as_str(), seen.sent, seen.received), ("0.0.0.0", 3, 0));
    assert!(seen.min_rtt.is_none() && seen.avg_rtt.is_none() && seen.max_rtt.is_none());
    assert_eq!(assertion_names(&result), [("loss", false)]);

    let limited = IcmpCheck {
        assertions: Some(IcmpAssertions {
            max_loss_percent: Some(50.0),
            ..IcmpAssertions::default()
        }),
        ..ping("0.0.0.0", 2, Duration::from_millis(10))
    };
    let result = run_with(&runner, limited, Duration::from_millis(100)).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(result.error, "received 0 of 2 (100% loss), more than 50% allowed");
}

#[tokio::test]
async fn an_average_round_trip_above_the_limit_fails() {
    // Any round trip takes more than a nanosecond.
    let check = IcmpCheck {
        assertions: Some(IcmpAssertions {
            max_avg_rtt: Some(Duration::from_nanos(1).into()),
            ..IcmpAssertions::default()
        }),
        ..ping("127.0.0.1", 2, Duration::from_millis(10))
    };
    let result = run_with(&runner(), check, GENEROUS).await;
    assert_eq!(result.outcome(), CheckOutcome::AssertionFailed, "{result:?}");
    assert_eq!(assertion_names(&result), [("loss", true), ("avg_rtt", false)]);
    assert!(result.error.starts_with("average round trip "), "{}", result.error);
    assert!(result.error.ends_with(", more than 1ns"), "{}", result.error);
    assert_eq!((detail(&result).sent, detail(&result).received), (2, 2));
}

#[tokio::test]
async fn loopback_is_blocked_without_allow_net() {
    let default_runner = CheckRunner::new(CheckConfig::default()).expect("runner builds");
    let result = run_with(
        &default_runner,
        ping("127.0.0.1", 1, Duration::from_millis(10)),
        GENEROUS,
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Blocked, "{result:?}");
    assert_eq!(
        result.error,
        "address 127.0.0.1 is in blocked network 127.0.0.0/8 \
         (a worker started with --allow-net 127.0.0.0/8 may contact it)"
    );
    let seen = detail(&result);
    assert_eq!((seen.sent, seen.received), (0, 0));
    assert!(result.assertions.is_empty());
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_failure() {
    let result = run_with(
        &runner(),
        ping("nonexistent.invalid", 1, Duration::from_millis(10)),
        GENEROUS,
    )
    .await;
    assert_eq!(result.outcome(), CheckOutcome::Dns, "{result:?}");
    assert!(
        result.error.starts_with("could not resolve nonexistent.invalid"),
        "{}",
        result.error
    );
    assert_eq!(detail(&result).address, "");
}
