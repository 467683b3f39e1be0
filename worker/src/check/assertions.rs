//! What counts as a healthy HTTP answer: the job's assertions, evaluated in
//! the contract's order ("status", "body_contains", "body_regex",
//! "max_response_time", then each "header" and "json_path" condition and
//! "cert_days_remaining"), each reported with what was expected and seen;
//! the substring and regex assertions on other answers (a TCP answer, an
//! SSH banner); and the compiled-regex cache every check shares.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use monitor_proto::v1::{
    AssertionResult, CertificateInfo, HeaderAssertion, HeaderCondition, HttpAssertions, JsonCondition,
    JsonPathAssertion, StatusRange,
};
use regex::{Regex, RegexBuilder};
use reqwest::header::HeaderMap;
use serde_json::Value;
use serde_json_path::JsonPath;

use super::{certificate, human_duration};

/// Compiled program size a `body_regex` may take; larger ones are refused
/// (a pattern like `a{1000}{1000}` would otherwise eat memory per job).
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Lazy DFA cache per pattern and thread.
const REGEX_DFA_SIZE_LIMIT: usize = 1 << 20;
/// Patterns kept compiled; the cache starts over when full (jobs change
/// rarely, so this is only a bound against unbounded growth).
const MAX_CACHED_REGEXES: usize = 4096;
/// Longest pattern or needle quoted in a detail.
const MAX_QUOTED_CHARS: usize = 80;

/// What the check saw, as far as assertions care.
pub(super) struct Answer<'a> {
    pub(super) status: u16,
    /// The stored prefix of the body (empty when not read).
    pub(super) body: &'a [u8],
    /// All body bytes received, stored or not.
    pub(super) body_bytes: u64,
    /// False for HEAD, whose answer has no body.
    pub(super) body_read: bool,
    /// Start of the check to the end of the body.
    pub(super) duration: Duration,
    /// The final answer's headers (empty unless a header assertion wants them).
    pub(super) headers: &'a HeaderMap,
    /// HTTPS: the server's certificate.
    pub(super) certificate: Option<&'a CertificateInfo>,
    /// Now, for certificate expiry (Unix seconds).
    pub(super) now_unix: i64,
}

/// Whether the answer's body is needed at all (else it is only counted).
pub(super) fn wants_body(assertions: Option<&HttpAssertions>) -> bool {
    assertions.is_some_and(|assertions| {
        !assertions.body_contains.is_empty() || !assertions.body_regex.is_empty() || !assertions.json_path.is_empty()
    })
}

/// Whether the answer's headers are needed.
pub(super) fn wants_headers(assertions: Option<&HttpAssertions>) -> bool {
    assertions.is_some_and(|assertions| !assertions.headers.is_empty())
}

/// Every applicable assertion, in order.
pub(super) fn evaluate(
    assertions: Option<&HttpAssertions>,
    answer: &Answer<'_>,
    regexes: &RegexCache,
) -> Vec<AssertionResult> {
    let default = HttpAssertions::default();
    let assertions = assertions.unwrap_or(&default);
    let mut results = Vec::with_capacity(4);
    results.push(status(&assertions.accepted_status, answer.status));
    if !assertions.body_contains.is_empty() || !assertions.body_regex.is_empty() {
        let body = String::from_utf8_lossy(answer.body);
        if !assertions.body_contains.is_empty() {
            results.push(body_contains(&assertions.body_contains, &body, answer));
        }
        if !assertions.body_regex.is_empty() {
            results.push(body_regex(&assertions.body_regex, &body, answer, regexes));
        }
    }
    if let Some(max) = assertions.max_response_time {
        // A negative maximum cannot be met; treat it as zero.
        let max = Duration::try_from(max).unwrap_or(Duration::ZERO);
        results.push(max_response_time(max, answer.duration));
    }
    for condition in &assertions.headers {
        results.push(header(condition, answer.headers, regexes));
    }
    if !assertions.json_path.is_empty() {
        let document = serde_json::from_slice::<Value>(answer.body).map_err(|error| {
            if (answer.body.len() as u64) < answer.body_bytes {
                format!("{} is not JSON: {error}", body_name(answer))
            } else {
                format!("body is not JSON: {error}")
            }
        });
        for condition in &assertions.json_path {
            results.push(json_path(condition, document.as_ref()));
        }
    }
    if assertions.cert_min_days_remaining > 0 {
        results.push(match answer.certificate {
            Some(leaf) => certificate::days_assertion(assertions.cert_min_days_remaining, leaf, answer.now_unix),
            None => AssertionResult {
                name: "cert_days_remaining".to_owned(),
                passed: false,
                detail: "no certificate: the answer did not come over HTTPS".to_owned(),
            },
        });
    }
    results
}

fn header(condition: &HeaderAssertion, headers: &HeaderMap, regexes: &RegexCache) -> AssertionResult {
    let name = &condition.name;
    let values: Vec<String> = headers
        .get_all(name.as_str())
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    let shown = || values.iter().map(|value| quoted(value)).collect::<Vec<_>>().join(", ");
    let (passed, detail) = match condition.condition() {
        HeaderCondition::Exists | HeaderCondition::Unspecified => {
            if values.is_empty() {
                (false, format!("header {name} is absent, expected present"))
            } else {
                (true, format!("header {name} is present ({})", shown()))
            }
        }
        HeaderCondition::Absent => {
            if values.is_empty() {
                (true, format!("header {name} is absent"))
            } else {
                (false, format!("header {name} is {}, expected absent", shown()))
            }
        }
        HeaderCondition::Equals => {
            let passed = values.iter().any(|value| value == &condition.value);
            let seen = if values.is_empty() {
                "absent".to_owned()
            } else {
                shown()
            };
            (
                passed,
                format!("header {name} is {seen}, expected {}", quoted(&condition.value)),
            )
        }
        HeaderCondition::Regex => match regexes.get(&condition.value) {
            Ok(regex) => {
                let passed = values.iter().any(|value| regex.is_match(value));
                let seen = if values.is_empty() {
                    "absent".to_owned()
                } else {
                    shown()
                };
                let verb = if passed { "matches" } else { "expected to match" };
                (
                    passed,
                    format!("header {name} is {seen}, {verb} /{}/", clipped(&condition.value)),
                )
            }
            Err(error) => (false, format!("invalid regex /{}/: {error}", clipped(&condition.value))),
        },
    };
    AssertionResult {
        name: "header".to_owned(),
        passed,
        detail,
    }
}

fn json_path(condition: &JsonPathAssertion, document: Result<&Value, &String>) -> AssertionResult {
    let result = |passed: bool, detail: String| AssertionResult {
        name: "json_path".to_owned(),
        passed,
        detail,
    };
    let path = clipped(&condition.path);
    let document = match document {
        Ok(document) => document,
        Err(error) => return result(false, format!("{path}: {error}")),
    };
    let query = match JsonPath::parse(&condition.path) {
        Ok(query) => query,
        Err(error) => return result(false, format!("invalid JSONPath {path}: {error}")),
    };
    let selected = query.query(document).all();
    let which = JsonCondition::try_from(condition.condition).unwrap_or(JsonCondition::Unspecified);
    if selected.is_empty() {
        return result(false, format!("{path} selects nothing"));
    }
    let shown = |values: &[&Value]| {
        let text = values
            .iter()
            .map(|value| value.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        clipped(&text).into_owned()
    };
    if matches!(which, JsonCondition::Exists | JsonCondition::Unspecified) {
        return result(true, format!("{path} is {}", shown(&selected)));
    }
    let operand = operand(&condition.value);
    let failing: Vec<&Value> = selected
        .iter()
        .copied()
        .filter(|value| !json_holds(which, value, &operand))
        .collect();
    let expected = match which {
        JsonCondition::Equals => format!("equal to {operand}"),
        JsonCondition::NotEquals => format!("not equal to {operand}"),
        JsonCondition::Contains => format!("containing {operand}"),
        JsonCondition::LessThan => format!("< {operand}"),
        JsonCondition::LessOrEqual => format!("<= {operand}"),
        JsonCondition::GreaterThan => format!("> {operand}"),
        JsonCondition::GreaterOrEqual => format!(">= {operand}"),
        JsonCondition::Exists | JsonCondition::Unspecified => unreachable!("handled above"),
    };
    if failing.is_empty() {
        result(true, format!("{path} is {}, expected {expected}", shown(&selected)))
    } else {
        result(false, format!("{path} is {}, expected {expected}", shown(&failing)))
    }
}

/// The operand as JSON when it parses as JSON, else as a string.
fn operand(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn json_holds(condition: JsonCondition, value: &Value, operand: &Value) -> bool {
    let numbers = value.as_f64().zip(operand.as_f64());
    match condition {
        JsonCondition::Equals => json_equal(value, operand),
        JsonCondition::NotEquals => !json_equal(value, operand),
        JsonCondition::Contains => match (value, operand) {
            (Value::String(text), Value::String(needle)) => text.contains(needle.as_str()),
            (Value::String(text), other) => text.contains(&other.to_string()),
            (Value::Array(items), operand) => items.iter().any(|item| json_equal(item, operand)),
            _ => false,
        },
        JsonCondition::LessThan => numbers.is_some_and(|(a, b)| a < b),
        JsonCondition::LessOrEqual => numbers.is_some_and(|(a, b)| a <= b),
        JsonCondition::GreaterThan => numbers.is_some_and(|(a, b)| a > b),
        JsonCondition::GreaterOrEqual => numbers.is_some_and(|(a, b)| a >= b),
        JsonCondition::Exists | JsonCondition::Unspecified => true,
    }
}

/// Equality with numbers compared by value (1 == 1.0).
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

fn status(accepted: &[StatusRange], status: u16) -> AssertionResult {
    let status = u32::from(status);
    let (passed, expected) = if accepted.is_empty() {
        ((200..=399).contains(&status), Cow::Borrowed("200..=399"))
    } else {
        let passed = accepted.iter().any(|range| (range.min..=range.max).contains(&status));
        let expected = accepted
            .iter()
            .map(|range| {
                if range.min == range.max {
                    range.min.to_string()
                } else {
                    format!("{}..={}", range.min, range.max)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        (passed, Cow::Owned(expected))
    };
    AssertionResult {
        name: "status".to_owned(),
        passed,
        detail: format!("status {status}, expected {expected}"),
    }
}

fn body_contains(needle: &str, body: &str, answer: &Answer<'_>) -> AssertionResult {
    let passed = body.contains(needle);
    let verb = if passed { "contains" } else { "does not contain" };
    AssertionResult {
        name: "body_contains".to_owned(),
        passed,
        detail: format!("{} {verb} {}", body_name(answer), quoted(needle)),
    }
}

fn body_regex(pattern: &str, body: &str, answer: &Answer<'_>, regexes: &RegexCache) -> AssertionResult {
    let (passed, detail) = match regexes.get(pattern) {
        Ok(regex) => {
            let passed = regex.is_match(body);
            let verb = if passed { "matches" } else { "does not match" };
            (passed, format!("{} {verb} /{}/", body_name(answer), clipped(pattern)))
        }
        Err(error) => (false, format!("invalid regex /{}/: {error}", clipped(pattern))),
    };
    AssertionResult {
        name: "body_regex".to_owned(),
        passed,
        detail,
    }
}

fn max_response_time(max: Duration, took: Duration) -> AssertionResult {
    let passed = took <= max;
    let comparison = if passed { "within" } else { "more than" };
    AssertionResult {
        name: "max_response_time".to_owned(),
        passed,
        detail: format!("took {}, {comparison} {}", human_duration(took), human_duration(max)),
    }
}

/// `name`: `text` (what the peer sent, called `what` in the detail)
/// contains `needle`. For answers other than HTTP bodies (TCP, SSH).
pub(super) fn text_contains(name: &str, what: &str, text: &str, needle: &str) -> AssertionResult {
    let passed = text.contains(needle);
    let verb = if passed { "contains" } else { "does not contain" };
    AssertionResult {
        name: name.to_owned(),
        passed,
        detail: format!("{what} {} {verb} {}", quoted(text), quoted(needle)),
    }
}

/// `name`: `text` matches `pattern` (compiled through `regexes`).
pub(super) fn text_matches(name: &str, what: &str, text: &str, pattern: &str, regexes: &RegexCache) -> AssertionResult {
    let (passed, detail) = match regexes.get(pattern) {
        Ok(regex) => {
            let passed = regex.is_match(text);
            let verb = if passed { "matches" } else { "does not match" };
            (passed, format!("{what} {} {verb} /{}/", quoted(text), clipped(pattern)))
        }
        Err(error) => (false, format!("invalid regex /{}/: {error}", clipped(pattern))),
    };
    AssertionResult {
        name: name.to_owned(),
        passed,
        detail,
    }
}

/// "body", or what part of it was searched.
fn body_name(answer: &Answer<'_>) -> Cow<'static, str> {
    if !answer.body_read {
        Cow::Borrowed("body (not read for HEAD)")
    } else if (answer.body.len() as u64) < answer.body_bytes {
        Cow::Owned(format!(
            "body (first {} of {} bytes)",
            answer.body.len(),
            answer.body_bytes
        ))
    } else {
        Cow::Borrowed("body")
    }
}

/// `text`, cut after [`MAX_QUOTED_CHARS`] characters (with an ellipsis).
pub(super) fn clipped(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

/// [`clipped`] `text` in quotes.
pub(super) fn quoted(text: &str) -> String {
    format!("{:?}", clipped(text))
}

/// `body_regex` patterns compiled once per pattern text and shared by all
/// checks. Hits take a read lock only; compiled regexes are shared through
/// an `Arc` (cloning a `Regex` would give each clone an empty match cache).
#[derive(Default)]
pub(super) struct RegexCache {
    compiled: RwLock<HashMap<Box<str>, CompiledRegex>>,
}

/// A compiled pattern, or why it does not compile (remembered too, so a
/// bad pattern is not recompiled every check).
type CompiledRegex = Result<Arc<Regex>, Arc<str>>;

impl RegexCache {
    pub(super) fn get(&self, pattern: &str) -> CompiledRegex {
        if let Some(compiled) = self
            .compiled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(pattern)
        {
            return compiled.clone();
        }
        let compiled: CompiledRegex = RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
            .build()
            .map(Arc::new)
            .map_err(|error| match error {
                regex::Error::CompiledTooBig(limit) => Arc::from(format!("compiled size exceeds {limit} bytes")),
                other => Arc::from(other.to_string()),
            });
        let mut cache = self.compiled.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_REGEXES {
            cache.clear();
        }
        cache.insert(pattern.into(), compiled.clone());
        compiled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &[u8]) -> Answer<'_> {
        Answer {
            status,
            body,
            body_bytes: body.len() as u64,
            body_read: true,
            duration: Duration::from_millis(50),
            headers: Box::leak(Box::new(HeaderMap::new())),
            certificate: None,
            now_unix: 0,
        }
    }

    fn json(path: &str, condition: JsonCondition, value: &str) -> JsonPathAssertion {
        JsonPathAssertion {
            path: path.to_owned(),
            condition: condition as i32,
            value: value.to_owned(),
        }
    }

    fn json_results(body: &[u8], conditions: Vec<JsonPathAssertion>) -> Vec<(bool, String)> {
        let assertions = HttpAssertions {
            json_path: conditions,
            ..HttpAssertions::default()
        };
        evaluate(Some(&assertions), &answer(200, body), &RegexCache::default())
            .into_iter()
            .skip(1)
            .map(|result| (result.passed, result.detail))
            .collect()
    }

    #[test]
    fn json_path_conditions_hold_for_every_value_selected() {
        let body = br#"{"status":"ok","count":3,"ratio":0.5,"tags":["a","b"],"checks":[{"name":"db","ok":true},{"name":"cache","ok":false}]}"#;
        let results = json_results(
            body,
            vec![
                json("$.status", JsonCondition::Equals, "ok"),
                json("$.status", JsonCondition::Equals, "\"ok\""),
                json("$.count", JsonCondition::Equals, "3.0"),
                json("$.count", JsonCondition::GreaterOrEqual, "3"),
                json("$.ratio", JsonCondition::LessThan, "0.5"),
                json("$.tags", JsonCondition::Contains, "b"),
                json("$.checks[?@.name == 'db'].ok", JsonCondition::Equals, "true"),
                json("$.checks[*].ok", JsonCondition::Equals, "true"),
                json("$.missing", JsonCondition::Exists, ""),
                json("$.status", JsonCondition::NotEquals, "down"),
            ],
        );
        let passed: Vec<bool> = results.iter().map(|(passed, _)| *passed).collect();
        assert_eq!(
            passed,
            [true, true, true, true, false, true, true, false, false, true],
            "{results:#?}"
        );
        assert_eq!(results[4].1, "$.ratio is 0.5, expected < 0.5");
        assert_eq!(results[7].1, "$.checks[*].ok is false, expected equal to true");
        assert_eq!(results[8].1, "$.missing selects nothing");
    }

    #[test]
    fn a_body_that_is_not_json_fails_each_json_condition() {
        let results = json_results(b"<html>", vec![json("$.a", JsonCondition::Exists, "")]);
        assert!(!results[0].0);
        assert!(results[0].1.starts_with("$.a: body is not JSON"), "{}", results[0].1);
    }

    #[test]
    fn header_conditions_match_any_value_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.append("content-type", "application/json; charset=utf-8".parse().unwrap());
        headers.append("x-served-by", "a".parse().unwrap());
        headers.append("x-served-by", "b".parse().unwrap());
        let condition = |name: &str, condition: HeaderCondition, value: &str| HeaderAssertion {
            name: name.to_owned(),
            condition: condition as i32,
            value: value.to_owned(),
        };
        let regexes = RegexCache::default();
        let check = |assertion: HeaderAssertion| {
            let result = header(&assertion, &headers, &regexes);
            (result.passed, result.detail)
        };
        assert_eq!(
            check(condition("Content-Type", HeaderCondition::Exists, "")),
            (
                true,
                "header Content-Type is present (\"application/json; charset=utf-8\")".to_owned()
            )
        );
        assert!(!check(condition("Set-Cookie", HeaderCondition::Exists, "")).0);
        assert!(check(condition("Set-Cookie", HeaderCondition::Absent, "")).0);
        assert!(check(condition("X-Served-By", HeaderCondition::Equals, "b")).0);
        assert_eq!(
            check(condition("X-Served-By", HeaderCondition::Equals, "c")),
            (false, "header X-Served-By is \"a\", \"b\", expected \"c\"".to_owned())
        );
        assert!(check(condition("content-type", HeaderCondition::Regex, "^application/json")).0);
        assert!(!check(condition("content-type", HeaderCondition::Regex, "^text/")).0);
    }

    fn range(min: u32, max: u32) -> StatusRange {
        StatusRange { min, max }
    }

    #[test]
    fn status_defaults_to_success_and_redirects() {
        let regexes = RegexCache::default();
        for (code, passed) in [(200, true), (302, true), (399, true), (199, false), (404, false)] {
            let results = evaluate(None, &answer(code, b""), &regexes);
            assert_eq!(results.len(), 1);
            assert_eq!(results[0].name, "status");
            assert_eq!(results[0].passed, passed, "{code}");
        }
        let results = evaluate(None, &answer(500, b""), &regexes);
        assert_eq!(results[0].detail, "status 500, expected 200..=399");
    }

    #[test]
    fn status_ranges_accept_any_match() {
        let assertions = HttpAssertions {
            accepted_status: vec![range(200, 204), range(404, 404)],
            ..HttpAssertions::default()
        };
        let regexes = RegexCache::default();
        let check = |code| evaluate(Some(&assertions), &answer(code, b""), &regexes).remove(0);
        assert!(check(204).passed);
        assert!(check(404).passed);
        let failed = check(500);
        assert!(!failed.passed);
        assert_eq!(failed.detail, "status 500, expected 200..=204, 404");
    }

    #[test]
    fn all_assertions_in_order() {
        let assertions = HttpAssertions {
            accepted_status: Vec::new(),
            body_contains: "world".to_owned(),
            body_regex: "^hello\\s+w".to_owned(),
            max_response_time: Some(pbjson_types::Duration {
                seconds: 0,
                nanos: 10_000_000,
            }),
            ..HttpAssertions::default()
        };
        let results = evaluate(Some(&assertions), &answer(200, b"hello world"), &RegexCache::default());
        let names: Vec<_> = results.iter().map(|result| result.name.as_str()).collect();
        assert_eq!(names, ["status", "body_contains", "body_regex", "max_response_time"]);
        let passed: Vec<_> = results.iter().map(|result| result.passed).collect();
        assert_eq!(passed, [true, true, true, false]);
        assert_eq!(results[1].detail, "body contains \"world\"");
        assert_eq!(results[2].detail, "body matches /^hello\\s+w/");
        assert_eq!(results[3].detail, "took 50ms, more than 10ms");
    }

    #[test]
    fn body_failures_say_what_was_searched() {
        let assertions = HttpAssertions {
            body_contains: "missing".to_owned(),
            body_regex: "[0-9]{3}".to_owned(),
            ..HttpAssertions::default()
        };
        let regexes = RegexCache::default();
        let mut truncated = answer(200, b"abc");
        truncated.body_bytes = 10;
        let results = evaluate(Some(&assertions), &truncated, &regexes);
        assert!(!results[1].passed && !results[2].passed);
        assert_eq!(
            results[1].detail,
            "body (first 3 of 10 bytes) does not contain \"missing\""
        );
        assert_eq!(
            results[2].detail,
            "body (first 3 of 10 bytes) does not match /[0-9]{3}/"
        );

        let head = Answer {
            body_read: false,
            ..answer(200, b"")
        };
        let results = evaluate(Some(&assertions), &head, &regexes);
        assert_eq!(
            results[1].detail,
            "body (not read for HEAD) does not contain \"missing\""
        );
    }

    #[test]
    fn bad_and_huge_patterns_fail_the_assertion_and_are_cached() {
        let regexes = RegexCache::default();
        let invalid = regexes.get("(unclosed").unwrap_err();
        assert!(invalid.contains("unclosed"), "{invalid}");
        let huge = regexes.get("\\w{1000}{1000}").unwrap_err();
        assert!(huge.contains("compiled size exceeds"), "{huge}");
        assert!(Arc::ptr_eq(&regexes.get("a+").unwrap(), &regexes.get("a+").unwrap()));

        let assertions = HttpAssertions {
            body_regex: "(unclosed".to_owned(),
            ..HttpAssertions::default()
        };
        let results = evaluate(Some(&assertions), &answer(200, b"x"), &regexes);
        assert!(!results[1].passed);
        assert!(
            results[1].detail.starts_with("invalid regex /(unclosed/"),
            "{}",
            results[1].detail
        );
    }

    #[test]
    fn bodies_are_wanted_only_for_body_assertions() {
        assert!(!wants_body(None));
        assert!(!wants_body(Some(&HttpAssertions::default())));
        assert!(wants_body(Some(&HttpAssertions {
            body_regex: "x".to_owned(),
            ..HttpAssertions::default()
        })));
    }

    #[test]
    fn text_assertions_quote_what_was_seen() {
        let result = text_contains("banner", "banner", "SSH-2.0-OpenSSH_9.6", "OpenSSH");
        assert!(result.passed);
        assert_eq!(result.name, "banner");
        assert_eq!(result.detail, "banner \"SSH-2.0-OpenSSH_9.6\" contains \"OpenSSH\"");
        let result = text_contains("expect_contains", "the answer", "220 ready\r\n", "250");
        assert!(!result.passed);
        assert_eq!(result.detail, "the answer \"220 ready\\r\\n\" does not contain \"250\"");

        let regexes = RegexCache::default();
        let result = text_matches("expect_regex", "the answer", "220 ready", "^2[0-9]{2} ", &regexes);
        assert!(result.passed);
        assert_eq!(result.detail, "the answer \"220 ready\" matches /^2[0-9]{2} /");
        let result = text_matches("banner", "banner", "SSH-1.99-x", "^SSH-2\\.0-", &regexes);
        assert!(!result.passed);
        let result = text_matches("banner", "banner", "x", "(", &regexes);
        assert!(!result.passed);
        assert!(result.detail.starts_with("invalid regex /(/"), "{}", result.detail);
    }

    #[test]
    fn long_needles_are_clipped_in_details() {
        let needle = "x".repeat(200);
        let result = body_contains(&needle, "", &answer(200, b""));
        assert!(result.detail.len() < 120, "{}", result.detail);
        assert!(result.detail.ends_with("…\""), "{}", result.detail);
    }
}
