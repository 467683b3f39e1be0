//! A DNS answer as people read it, and what counts as a healthy one: the
//! records of the asked type in presentation form ("192.0.2.1", "10
//! mail.example.com.", a TXT record's text) and the job's assertions
//! ("rcode", "answers_contain", "answers_equal", "answer_regex"), each
//! reported with what was expected and seen.

use std::collections::BTreeSet;
use std::net::IpAddr;

use hickory_proto::rr::{Name, RData, Record, RecordType};
use monitor_proto::v1::{AssertionResult, DnsAssertions};

use super::super::assertions::{RegexCache, clipped};

/// Answers listed in a detail; the rest are counted.
const MAX_LISTED: usize = 8;

/// `record` in presentation form, when it is of `asked` type (CNAME, NS,
/// MX and SOA names in ASCII with their trailing dot).
pub(super) fn present(record: &Record, asked: RecordType) -> Option<String> {
    if record.record_type() != asked {
        return None;
    }
    let text = match record.data() {
        RData::A(address) => address.0.to_string(),
        RData::AAAA(address) => address.0.to_string(),
        RData::CNAME(target) => target.0.to_ascii(),
        RData::NS(target) => target.0.to_ascii(),
        RData::MX(mx) => format!("{} {}", mx.preference(), mx.exchange().to_ascii()),
        RData::TXT(txt) => txt.to_string(),
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            soa.mname().to_ascii(),
            soa.rname().to_ascii(),
            soa.serial(),
            soa.refresh(),
            soa.retry(),
            soa.expire(),
            soa.minimum()
        ),
        _ => return None,
    };
    Some(text)
}

/// The form two answers are compared in: addresses as parsed (so
/// `2001:DB8::1` is `2001:db8::1`), names in lower case without their
/// trailing dot, whitespace collapsed; TXT text as it is.
fn comparable(asked: RecordType, text: &str) -> String {
    let name = |token: &str| token.trim_end_matches('.').to_ascii_lowercase();
    let tokens: Vec<&str> = text.split_whitespace().collect();
    match asked {
        RecordType::A | RecordType::AAAA => text
            .trim()
            .parse::<IpAddr>()
            .map_or_else(|_| text.trim().to_owned(), |address| address.to_string()),
        RecordType::CNAME | RecordType::NS => name(text.trim()),
        RecordType::MX => match tokens.as_slice() {
            [preference, exchange] => format!("{preference} {}", name(exchange)),
            _ => tokens.join(" ").to_ascii_lowercase(),
        },
        RecordType::SOA => tokens
            .iter()
            .enumerate()
            .map(|(i, token)| if i < 2 { name(token) } else { (*token).to_owned() })
            .collect::<Vec<_>>()
            .join(" "),
        _ => text.to_owned(),
    }
}

/// Whether `name` is a valid query name, as the worker sends it: the
/// job's text (a trailing dot allowed, IDNs as punycode) made absolute.
pub(super) fn query_name(text: &str) -> Result<Name, String> {
    let mut name = Name::from_utf8(text.trim()).map_err(|error| format!("invalid name {text:?}: {error}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Every applicable assertion, in order: the rcode always, then each set
/// answer condition.
pub(super) fn evaluate(
    assertions: Option<&DnsAssertions>,
    asked: RecordType,
    rcode: &str,
    answers: &[String],
    regexes: &RegexCache,
) -> Vec<AssertionResult> {
    let default = DnsAssertions::default();
    let assertions = assertions.unwrap_or(&default);
    let mut results = Vec::with_capacity(4);
    let expected = if assertions.rcode.trim().is_empty() {
        "NOERROR".to_owned()
    } else {
        assertions.rcode.trim().to_ascii_uppercase()
    };
    let passed = expected == rcode;
    results.push(AssertionResult {
        name: "rcode".to_owned(),
        passed,
        detail: if passed {
            format!("rcode {rcode}")
        } else {
            format!("rcode {rcode}, expected {expected}")
        },
    });
    let seen: BTreeSet<String> = answers.iter().map(|answer| comparable(asked, answer)).collect();
    if !assertions.answers_contain.is_empty() {
        let missing: Vec<&String> = assertions
            .answers_contain
            .iter()
            .filter(|wanted| !seen.contains(&comparable(asked, wanted)))
            .collect();
        let passed = missing.is_empty();
        results.push(AssertionResult {
            name: "answers_contain".to_owned(),
            passed,
            detail: if passed {
                format!("answers contain {}", listed(&assertions.answers_contain))
            } else {
                format!("answers {} do not contain {}", listed(answers), listed(&missing))
            },
        });
    }
    if !assertions.answers_equal.is_empty() {
        let wanted: BTreeSet<String> = assertions
            .answers_equal
            .iter()
            .map(|wanted| comparable(asked, wanted))
            .collect();
        let passed = wanted == seen;
        results.push(AssertionResult {
            name: "answers_equal".to_owned(),
            passed,
            detail: if passed {
                format!("answers are {}", listed(answers))
            } else {
                format!(
                    "answers {}, expected {}",
                    listed(answers),
                    listed(&assertions.answers_equal)
                )
            },
        });
    }
    if !assertions.answer_regex.is_empty() {
        results.push(answer_regex(&assertions.answer_regex, answers, regexes));
    }
    results
}

fn answer_regex(pattern: &str, answers: &[String], regexes: &RegexCache) -> AssertionResult {
    let (passed, detail) = match regexes.get(pattern) {
        Ok(regex) => match answers.iter().find(|answer| regex.is_match(answer)) {
            Some(answer) => (true, format!("answer {answer:?} matches /{}/", clipped(pattern))),
            None => (
                false,
                format!("no answer of {} matches /{}/", listed(answers), clipped(pattern)),
            ),
        },
        Err(error) => (false, format!("invalid regex /{}/: {error}", clipped(pattern))),
    };
    AssertionResult {
        name: "answer_regex".to_owned(),
        passed,
        detail,
    }
}

/// `[a, b, c]`, at most [`MAX_LISTED`] of them and then how many more.
fn listed<T: AsRef<str>>(items: &[T]) -> String {
    let shown: Vec<&str> = items.iter().take(MAX_LISTED).map(AsRef::as_ref).collect();
    let more = items.len().saturating_sub(MAX_LISTED);
    if more == 0 {
        format!("[{}]", shown.join(", "))
    } else {
        format!("[{}, and {more} more]", shown.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, SOA, TXT};

    use super::*;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn record(rdata: RData) -> Record {
        Record::from_rdata(name("example.com."), 300, rdata)
    }

    #[test]
    fn records_are_shown_in_presentation_form() {
        let cases = [
            (RData::A(A(Ipv4Addr::new(192, 0, 2, 1))), RecordType::A, "192.0.2.1"),
            (
                RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))),
                RecordType::AAAA,
                "2001:db8::1",
            ),
            (
                RData::CNAME(CNAME(name("www.example.com."))),
                RecordType::CNAME,
                "www.example.com.",
            ),
            (
                RData::NS(NS(name("ns1.example.com."))),
                RecordType::NS,
                "ns1.example.com.",
            ),
            (
                RData::MX(MX::new(10, name("mail.example.com."))),
                RecordType::MX,
                "10 mail.example.com.",
            ),
            (
                RData::TXT(TXT::new(vec!["v=spf1 ".into(), "-all".into()])),
                RecordType::TXT,
                "v=spf1 -all",
            ),
            (
                RData::SOA(SOA::new(
                    name("ns1.example.com."),
                    name("hostmaster.example.com."),
                    2024010101,
                    3600,
                    600,
                    86400,
                    300,
                )),
                RecordType::SOA,
                "ns1.example.com. hostmaster.example.com. 2024010101 3600 600 86400 300",
            ),
        ];
        for (rdata, asked, shown) in cases {
            assert_eq!(present(&record(rdata), asked).as_deref(), Some(shown));
        }
        // Records of another type (a CNAME before the A records) are not answers.
        let alias = record(RData::CNAME(CNAME(name("www.example.com."))));
        assert_eq!(present(&alias, RecordType::A), None);
    }

    #[test]
    fn names_compare_without_case_and_trailing_dot_addresses_as_addresses() {
        assert_eq!(comparable(RecordType::CNAME, "WWW.Example.com"), "www.example.com");
        assert_eq!(
            comparable(RecordType::MX, "10  Mail.example.com."),
            "10 mail.example.com"
        );
        assert_eq!(comparable(RecordType::AAAA, "2001:DB8:0::1"), "2001:db8::1");
        assert_eq!(
            comparable(RecordType::SOA, "NS1.example.com hostmaster.example.com. 1 2 3 4 5"),
            "ns1.example.com hostmaster.example.com 1 2 3 4 5"
        );
        // TXT is text, not a name.
        assert_eq!(comparable(RecordType::TXT, "Hello."), "Hello.");
    }

    #[test]
    fn the_rcode_defaults_to_noerror_and_is_always_judged() {
        let regexes = RegexCache::default();
        let results = evaluate(None, RecordType::A, "NXDOMAIN", &[], &regexes);
        assert_eq!(results.len(), 1);
        assert!(!results[0].passed);
        assert_eq!(results[0].detail, "rcode NXDOMAIN, expected NOERROR");

        let expect_nxdomain = DnsAssertions {
            rcode: "nxdomain".into(),
            ..DnsAssertions::default()
        };
        let results = evaluate(Some(&expect_nxdomain), RecordType::A, "NXDOMAIN", &[], &regexes);
        assert!(results[0].passed);
        assert_eq!(results[0].detail, "rcode NXDOMAIN");
    }

    #[test]
    fn answer_conditions_in_order_with_what_was_seen() {
        let regexes = RegexCache::default();
        let answers = vec!["10 mail.example.com.".to_owned(), "20 backup.example.com.".to_owned()];
        let assertions = DnsAssertions {
            rcode: String::new(),
            answers_contain: vec!["10 MAIL.example.com".into(), "30 other.example.com.".into()],
            answers_equal: vec!["20 backup.example.com".into(), "10 mail.example.com.".into()],
            answer_regex: "^20 ".into(),
        };
        let results = evaluate(Some(&assertions), RecordType::MX, "NOERROR", &answers, &regexes);
        let names: Vec<_> = results.iter().map(|result| result.name.as_str()).collect();
        assert_eq!(names, ["rcode", "answers_contain", "answers_equal", "answer_regex"]);
        let passed: Vec<_> = results.iter().map(|result| result.passed).collect();
        assert_eq!(passed, [true, false, true, true]);
        assert_eq!(
            results[1].detail,
            "answers [10 mail.example.com., 20 backup.example.com.] do not contain [30 other.example.com.]"
        );
        assert_eq!(
            results[2].detail,
            "answers are [10 mail.example.com., 20 backup.example.com.]"
        );
        assert_eq!(results[3].detail, "answer \"20 backup.example.com.\" matches /^20 /");
    }

    #[test]
    fn equality_ignores_order_and_duplicates_but_not_extra_answers() {
        let regexes = RegexCache::default();
        let answers = vec!["192.0.2.1".to_owned(), "192.0.2.2".to_owned()];
        let equal = |wanted: &[&str]| {
            let assertions = DnsAssertions {
                answers_equal: wanted.iter().map(|&text| text.to_owned()).collect(),
                ..DnsAssertions::default()
            };
            evaluate(Some(&assertions), RecordType::A, "NOERROR", &answers, &regexes).remove(1)
        };
        assert!(equal(&["192.0.2.2", "192.0.2.1", "192.0.2.2"]).passed);
        let failed = equal(&["192.0.2.1"]);
        assert!(!failed.passed);
        assert_eq!(failed.detail, "answers [192.0.2.1, 192.0.2.2], expected [192.0.2.1]");
    }

    #[test]
    fn a_regex_without_a_match_or_that_does_not_compile_fails() {
        let regexes = RegexCache::default();
        let result = answer_regex("^10\\.", &["192.0.2.1".to_owned()], &regexes);
        assert!(!result.passed);
        assert_eq!(result.detail, "no answer of [192.0.2.1] matches /^10\\./");
        let result = answer_regex("(", &[], &regexes);
        assert!(
            !result.passed && result.detail.starts_with("invalid regex /(/"),
            "{}",
            result.detail
        );
    }

    #[test]
    fn long_answer_lists_are_clipped() {
        let answers: Vec<String> = (0..10).map(|i| format!("192.0.2.{i}")).collect();
        assert_eq!(
            listed(&answers),
            "[192.0.2.0, 192.0.2.1, 192.0.2.2, 192.0.2.3, 192.0.2.4, 192.0.2.5, 192.0.2.6, 192.0.2.7, and 2 more]"
        );
    }

    #[test]
    fn query_names_are_made_absolute() {
        assert_eq!(query_name("www.example.com").unwrap().to_ascii(), "www.example.com.");
        assert_eq!(query_name("www.example.com.").unwrap().to_ascii(), "www.example.com.");
        assert!(query_name(&format!("{}.com", "a".repeat(64))).is_err());
    }
}
