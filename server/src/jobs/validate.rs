//! Every rule a job definition must satisfy, checked before anything is
//! written. Violations are collected (not just the first), each naming the
//! field relative to the job (`http.url`); callers prefix the path with where
//! the job came from (`job.`, `jobs[3].`).

use std::{collections::HashMap, time::Duration};

use monitor_core::labels::{LABEL_KEY_RULE, MAX_LABEL_VALUE_CHARS, is_label_key};
use monitor_proto::v1::{
    HeaderAssertion, HeaderCondition, HttpCheck, HttpHeader, HttpMethod, Job, JobState, JsonCondition,
    JsonPathAssertion, TcpCheck, job::Check,
};
use monitor_store::models::job::{JobFields, STATE_RUNNING, STATE_STOPPED};

use super::convert::check_kind;
use super::kinds;
use crate::error::{ApiError, FieldViolation};

pub const MAX_NAME_CHARS: usize = 128;
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
/// Labels on one job (a worker may carry fewer, see `fleet::hello`); keys
/// and values follow `monitor_core::labels`.
pub const MAX_LABELS: usize = 64;
pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_HEADERS: usize = 32;
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
pub const MAX_HEADERS_TOTAL_BYTES: usize = 16 * 1024;
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_STATUS_RANGES: usize = 32;
pub const MAX_ASSERTION_TEXT_CHARS: usize = 1024;

/// Text a TCP check sends once connected (the contract's limit).
pub const MAX_TCP_SEND_BYTES: usize = 4096;
/// Compiled size of an assertion's regular expression (the workers refuse
/// larger ones too).
pub const MAX_REGEX_COMPILED_BYTES: usize = 1 << 20;

pub const MAX_LOCATIONS: usize = 16;
pub const MAX_HOST_CHARS: usize = 253;

/// A validated job, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidJob {
    pub fields: JobFields,
    /// The desired state was left unspecified (create: stopped; import: keep).
    pub state_unspecified: bool,
}

/// Checks a job definition and turns it into the columns to store.
/// Output-only fields (id, version, timestamps) are ignored here.
pub fn validate_job(job: &Job) -> Result<ValidJob, ApiError> {
    let mut v = Vec::new();
    validate_name(&job.name, &mut v);
    validate_labels(&job.labels, &mut v);
    let interval = duration_field("interval", job.interval.as_ref(), &mut v);
    let timeout = duration_field("timeout", job.timeout.as_ref(), &mut v);
    if let Some(interval) = interval {
        if interval < MIN_INTERVAL {
            v.push(FieldViolation::new("interval", "must be at least 1s"));
        } else if interval > MAX_INTERVAL {
            v.push(FieldViolation::new("interval", "must be at most 24h (86400s)"));
        }
    }
    if let Some(timeout) = timeout {
        if timeout.is_zero() {
            v.push(FieldViolation::new("timeout", "must be greater than zero"));
        } else if timeout > MAX_TIMEOUT {
            v.push(FieldViolation::new("timeout", "must be at most 60s"));
        } else if let Some(interval) = interval
            && timeout > interval
        {
            v.push(FieldViolation::new("timeout", "must not exceed the interval"));
        }
    }
    let state_unspecified = job.desired_state == JobState::Unspecified as i32;
    let desired_state = match JobState::try_from(job.desired_state) {
        Ok(JobState::Running) => STATE_RUNNING,
        Ok(JobState::Stopped | JobState::Unspecified) => STATE_STOPPED,
        Err(_) => {
            v.push(FieldViolation::new(
                "desired_state",
                format!(
                    "unknown state {}; use JOB_STATE_RUNNING or JOB_STATE_STOPPED",
                    job.desired_state
                ),
            ));
            STATE_STOPPED
        }
    };
    validate_locations(&job.locations, &mut v);
    let check = match &job.check {
        None => {
            v.push(FieldViolation::new(
                "check",
                "one check kind must be set (http, tcp, dns, icmp, tls, grpc_health, websocket, ssh or socks5)",
            ));
            None
        }
        Some(check) => validate_check(check, timeout, &mut v).map(|spec| (check_kind(check), spec)),
    };
    if !v.is_empty() {
        return Err(ApiError::InvalidArgument(v));
    }
    let (Some(interval), Some(timeout), Some((kind, spec))) = (interval, timeout, check) else {
        unreachable!("a missing field is always a violation");
    };
    Ok(ValidJob {
        fields: JobFields {
            name: job.name.clone(),
            labels: serde_json::to_value(&job.labels).expect("string map serialises"),
            check_kind: kind.to_owned(),
            check_spec: spec,
            interval_ms: millis(interval),
            timeout_ms: millis(timeout),
            desired_state: desired_state.to_owned(),
            locations: serde_json::to_value(&job.locations).expect("string list serialises"),
        },
        state_unspecified,
    })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A job's or an alert rule's name: 1 to [`MAX_NAME_CHARS`] characters,
/// printable, no surrounding whitespace.
pub(crate) fn validate_name(name: &str, v: &mut Vec<FieldViolation>) {
    let chars = name.chars().count();
    if chars == 0 {
        v.push(FieldViolation::new("name", "must not be empty"));
    } else if chars > MAX_NAME_CHARS {
        v.push(FieldViolation::new(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters (got {chars})"),
        ));
    } else if name.trim() != name {
        v.push(FieldViolation::new("name", "must not start or end with whitespace"));
    } else if name.chars().any(char::is_control) {
        v.push(FieldViolation::new("name", "must not contain control characters"));
    }
}

fn validate_labels(labels: &HashMap<String, String>, v: &mut Vec<FieldViolation>) {
    validate_label_map("labels", labels, v);
}

/// Labels, or a label selector, under `field`: at most [`MAX_LABELS`], keys
/// and values as `monitor_core::labels` has them.
pub(crate) fn validate_label_map(field: &str, labels: &HashMap<String, String>, v: &mut Vec<FieldViolation>) {
    if labels.len() > MAX_LABELS {
        v.push(FieldViolation::new(
            field,
            format!("at most {MAX_LABELS} labels (got {})", labels.len()),
        ));
    }
    let mut keys: Vec<_> = labels.keys().collect();
    keys.sort();
    for key in keys {
        if !is_label_key(key) {
            v.push(FieldViolation::new(
                format!("{field}[{key:?}]"),
                format!("key must be {LABEL_KEY_RULE}"),
            ));
        }
        let value = &labels[key];
        if value.chars().count() > MAX_LABEL_VALUE_CHARS {
            v.push(FieldViolation::new(
                format!("{field}[{key:?}]"),
                format!("value must be at most {MAX_LABEL_VALUE_CHARS} characters"),
            ));
        } else if value.chars().any(char::is_control) {
            v.push(FieldViolation::new(
                format!("{field}[{key:?}]"),
                "value must not contain control characters",
            ));
        }
    }
}

/// Reads a required protobuf Duration, rejecting negative and malformed ones
/// and sub-millisecond precision (intervals are stored in milliseconds).
fn duration_field(
    field: &str,
    value: Option<&pbjson_types::Duration>,
    v: &mut Vec<FieldViolation>,
) -> Option<Duration> {
    let Some(value) = value else {
        v.push(FieldViolation::new(field, "is required (e.g. \"30s\")"));
        return None;
    };
    to_std_duration(field, value, v)
}

/// A protobuf Duration as a std one: not negative, whole milliseconds.
pub(crate) fn to_std_duration(
    field: &str,
    value: &pbjson_types::Duration,
    v: &mut Vec<FieldViolation>,
) -> Option<Duration> {
    if value.seconds < 0 || value.nanos < 0 {
        v.push(FieldViolation::new(field, "must not be negative"));
        return None;
    }
    if value.nanos >= 1_000_000_000 {
        v.push(FieldViolation::new(field, "nanos must be below 1e9"));
        return None;
    }
    if value.nanos % 1_000_000 != 0 {
        v.push(FieldViolation::new(field, "must be a whole number of milliseconds"));
        return None;
    }
    // Anything beyond a day is rejected by the range checks; cap to avoid overflow.
    let seconds = u64::try_from(value.seconds).unwrap_or(u64::MAX).min(10 * 365 * 86_400);
    Some(Duration::new(seconds, value.nanos.unsigned_abs()))
}

fn validate_locations(locations: &[String], v: &mut Vec<FieldViolation>) {
    if locations.len() > MAX_LOCATIONS {
        v.push(FieldViolation::new(
            "locations",
            format!("at most {MAX_LOCATIONS} locations"),
        ));
    }
    for (i, location) in locations.iter().enumerate() {
        if !is_label_key(location) {
            v.push(FieldViolation::new(
                format!("locations[{i}]"),
                format!("must be {LABEL_KEY_RULE}"),
            ));
        } else if locations[..i].contains(location) {
            v.push(FieldViolation::new(
                format!("locations[{i}]"),
                format!("{location:?} is listed twice"),
            ));
        }
    }
}

/// Validates the check of whichever kind and returns the spec to store
/// (the check's proto JSON).
fn validate_check(check: &Check, timeout: Option<Duration>, v: &mut Vec<FieldViolation>) -> Option<serde_json::Value> {
    match check {
        Check::Http(http) => validate_http(http, timeout, v),
        Check::Tcp(tcp) => validate_tcp(tcp, v),
        Check::Dns(dns) => kinds::dns::validate(dns, v),
        Check::Icmp(icmp) => kinds::icmp::validate(icmp, timeout, v),
        Check::Tls(tls) => kinds::tls::validate(tls, v),
        Check::Ssh(ssh) => kinds::ssh::validate(ssh, v),
        Check::Socks5(socks5) => kinds::socks5::validate(socks5, v),
        Check::GrpcHealth(grpc) => kinds::grpc_health::validate(grpc, v),
        Check::Websocket(websocket) => kinds::websocket::validate(websocket, v),
    }
}

/// A host name or IP address (an IPv6 literal may be bracketed), required.
pub(super) fn validate_host(field: &str, host: &str, v: &mut Vec<FieldViolation>) {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.is_empty() {
        v.push(FieldViolation::new(field, "is required"));
    } else if bare.len() > MAX_HOST_CHARS {
        v.push(FieldViolation::new(
            field,
            format!("must be at most {MAX_HOST_CHARS} characters"),
        ));
    } else if bare.parse::<std::net::IpAddr>().is_err() && url::Host::parse(bare).is_err() {
        v.push(FieldViolation::new(
            field,
            format!("{host:?} is not a host name or IP address"),
        ));
    }
}

/// A port, 1 to 65535.
pub(super) fn validate_port(field: &str, port: u32, v: &mut Vec<FieldViolation>) {
    if !(1..=65535).contains(&port) {
        v.push(FieldViolation::new(field, "must be 1 to 65535"));
    }
}

/// The check's spec as stored, or `None` when a violation was added since
/// `before` (the length of `v` when the check's validation began).
pub(super) fn spec_unless_violated<T: serde::Serialize>(
    check: &T,
    before: usize,
    v: &[FieldViolation],
) -> Option<serde_json::Value> {
    if v.len() > before {
        return None;
    }
    Some(serde_json::to_value(check).expect("a proto message serialises"))
}

fn validate_tcp(tcp: &TcpCheck, v: &mut Vec<FieldViolation>) -> Option<serde_json::Value> {
    let before = v.len();
    validate_host("tcp.host", &tcp.host, v);
    validate_port("tcp.port", tcp.port, v);
    if tcp.send.len() > MAX_TCP_SEND_BYTES {
        v.push(FieldViolation::new(
            "tcp.send",
            format!("must be at most {MAX_TCP_SEND_BYTES} bytes (got {})", tcp.send.len()),
        ));
    }
    validate_assertion_text("tcp.expect_contains", &tcp.expect_contains, v);
    validate_regex("tcp.expect_regex", &tcp.expect_regex, v);
    if let Some(proxy) = &tcp.proxy {
        kinds::socks5::validate_proxy("tcp.proxy", proxy, v);
    }
    spec_unless_violated(tcp, before, v)
}

/// Text an assertion looks for: at most [`MAX_ASSERTION_TEXT_CHARS`].
pub(super) fn validate_assertion_text(field: &str, text: &str, v: &mut Vec<FieldViolation>) {
    if text.chars().count() > MAX_ASSERTION_TEXT_CHARS {
        v.push(FieldViolation::new(
            field,
            format!("must be at most {MAX_ASSERTION_TEXT_CHARS} characters"),
        ));
    }
}

/// An assertion's regular expression (empty: none): bounded like
/// [`validate_assertion_text`] and compiling within
/// [`MAX_REGEX_COMPILED_BYTES`].
pub(super) fn validate_regex(field: &str, pattern: &str, v: &mut Vec<FieldViolation>) {
    if pattern.chars().count() > MAX_ASSERTION_TEXT_CHARS {
        v.push(FieldViolation::new(
            field,
            format!("must be at most {MAX_ASSERTION_TEXT_CHARS} characters"),
        ));
    } else if !pattern.is_empty()
        && let Err(err) = regex::RegexBuilder::new(pattern)
            .size_limit(MAX_REGEX_COMPILED_BYTES)
            .build()
    {
        v.push(FieldViolation::new(
            field,
            format!("is not a valid regular expression: {}", last_line(&err.to_string())),
        ));
    }
}

/// Methods that may carry a request body.
fn takes_body(method: HttpMethod) -> bool {
    matches!(
        method,
        HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch | HttpMethod::Delete | HttpMethod::Options
    )
}

fn validate_http(
    http: &HttpCheck,
    timeout: Option<Duration>,
    v: &mut Vec<FieldViolation>,
) -> Option<serde_json::Value> {
    let before = v.len();
    validate_url("http.url", &http.url, &["http", "https"], v);
    let method = match HttpMethod::try_from(http.method) {
        Ok(HttpMethod::Unspecified) => HttpMethod::Get,
        Ok(method) => method,
        Err(_) => {
            v.push(FieldViolation::new(
                "http.method",
                format!(
                    "unknown method {}; use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS",
                    http.method
                ),
            ));
            HttpMethod::Get
        }
    };
    validate_headers(
        &HeaderNaming::HTTP_CHECK.at("http"),
        &http.headers,
        &http.secret_headers,
        v,
    );
    if http.body.len() > MAX_BODY_BYTES {
        v.push(FieldViolation::new(
            "http.body",
            format!("must be at most {MAX_BODY_BYTES} bytes (got {})", http.body.len()),
        ));
    } else if !http.body.is_empty() && !takes_body(method) {
        v.push(FieldViolation::new(
            "http.body",
            format!(
                "{} requests cannot carry a body",
                method.as_str_name().trim_start_matches("HTTP_METHOD_")
            ),
        ));
    }
    if let Some(assertions) = &http.assertions {
        if assertions.accepted_status.len() > MAX_STATUS_RANGES {
            v.push(FieldViolation::new(
                "http.assertions.accepted_status",
                format!("at most {MAX_STATUS_RANGES} ranges"),
            ));
        }
        for (i, range) in assertions.accepted_status.iter().enumerate() {
            let field = format!("http.assertions.accepted_status[{i}]");
            if !(100..=599).contains(&range.min) || !(100..=599).contains(&range.max) {
                v.push(FieldViolation::new(field, "status codes must be within 100..=599"));
            } else if range.min > range.max {
                v.push(FieldViolation::new(field, "min must not exceed max"));
            }
        }
        validate_assertion_text("http.assertions.body_contains", &assertions.body_contains, v);
        validate_regex("http.assertions.body_regex", &assertions.body_regex, v);
        if let Some(max) = &assertions.max_response_time
            && let Some(max) = to_std_duration("http.assertions.max_response_time", max, v)
        {
            if max.is_zero() {
                v.push(FieldViolation::new(
                    "http.assertions.max_response_time",
                    "must be greater than zero",
                ));
            } else if let Some(timeout) = timeout
                && max > timeout
            {
                v.push(FieldViolation::new(
                    "http.assertions.max_response_time",
                    "must not exceed the timeout",
                ));
            }
        }
        validate_header_assertions(&assertions.headers, v);
        validate_json_path_assertions(&assertions.json_path, v);
        if assertions.cert_min_days_remaining > MAX_CERT_DAYS {
            v.push(FieldViolation::new(
                "http.assertions.cert_min_days_remaining",
                format!("must be at most {MAX_CERT_DAYS}"),
            ));
        } else if assertions.cert_min_days_remaining > 0 && http.url.starts_with("http:") && !http.follow_redirects {
            v.push(FieldViolation::new(
                "http.assertions.cert_min_days_remaining",
                "needs an https:// URL (or follow_redirects to reach one)",
            ));
        }
    }
    if let Some(proxy) = &http.proxy {
        kinds::socks5::validate_proxy("http.proxy", proxy, v);
    }
    if v.len() > before {
        return None;
    }
    let mut normalised = http.clone();
    normalised.method = method as i32;
    Some(serde_json::to_value(&normalised).expect("HttpCheck serialises"))
}

/// Conditions on one check's response headers or JSON body, at most.
pub const MAX_ASSERTION_ROWS: usize = 32;
/// A certificate expiry condition, in days, at most (10 years).
pub const MAX_CERT_DAYS: u32 = 3650;

/// Refuses more than [`MAX_ASSERTION_ROWS`] condition rows under `field`.
fn too_many_rows(field: &str, rows: usize, v: &mut Vec<FieldViolation>) -> bool {
    let too_many = rows > MAX_ASSERTION_ROWS;
    if too_many {
        v.push(FieldViolation::new(
            field,
            format!("at most {MAX_ASSERTION_ROWS} conditions (got {rows})"),
        ));
    }
    too_many
}

fn validate_header_assertions(rows: &[HeaderAssertion], v: &mut Vec<FieldViolation>) {
    if too_many_rows("http.assertions.headers", rows.len(), v) {
        return;
    }
    for (i, row) in rows.iter().enumerate() {
        let field = |name: &str| format!("http.assertions.headers[{i}].{name}");
        if row.name.is_empty() {
            v.push(FieldViolation::new(field("name"), "is required"));
        } else if http::HeaderName::from_bytes(row.name.as_bytes()).is_err() {
            v.push(FieldViolation::new(
                field("name"),
                format!("{:?} is not a valid header name", row.name),
            ));
        }
        match HeaderCondition::try_from(row.condition) {
            Ok(HeaderCondition::Unspecified) => v.push(FieldViolation::new(
                field("condition"),
                "is required: HEADER_CONDITION_EXISTS, ABSENT, EQUALS or REGEX",
            )),
            Ok(HeaderCondition::Exists | HeaderCondition::Absent) => {
                if !row.value.is_empty() {
                    v.push(FieldViolation::new(
                        field("value"),
                        "must be empty for EXISTS and ABSENT",
                    ));
                }
            }
            Ok(HeaderCondition::Equals) => validate_assertion_text(&field("value"), &row.value, v),
            Ok(HeaderCondition::Regex) => {
                if row.value.is_empty() {
                    v.push(FieldViolation::new(field("value"), "is required for REGEX"));
                }
                validate_regex(&field("value"), &row.value, v);
            }
            Err(_) => v.push(FieldViolation::new(
                field("condition"),
                format!("unknown condition {}", row.condition),
            )),
        }
    }
}

fn validate_json_path_assertions(rows: &[JsonPathAssertion], v: &mut Vec<FieldViolation>) {
    if too_many_rows("http.assertions.json_path", rows.len(), v) {
        return;
    }
    for (i, row) in rows.iter().enumerate() {
        let field = |name: &str| format!("http.assertions.json_path[{i}].{name}");
        if row.path.is_empty() {
            v.push(FieldViolation::new(field("path"), "is required (e.g. $.status)"));
        } else if row.path.chars().count() > MAX_ASSERTION_TEXT_CHARS {
            v.push(FieldViolation::new(
                field("path"),
                format!("must be at most {MAX_ASSERTION_TEXT_CHARS} characters"),
            ));
        } else if let Err(err) = serde_json_path::JsonPath::parse(&row.path) {
            v.push(FieldViolation::new(
                field("path"),
                format!("is not an RFC 9535 JSONPath query: {err}"),
            ));
        }
        validate_assertion_text(&field("value"), &row.value, v);
        let numeric = || serde_json::from_str::<serde_json::Value>(&row.value).is_ok_and(|value| value.is_number());
        match JsonCondition::try_from(row.condition) {
            Ok(JsonCondition::Unspecified) => v.push(FieldViolation::new(
                field("condition"),
                "is required: JSON_CONDITION_EXISTS, EQUALS, NOT_EQUALS, CONTAINS, LESS_THAN, \
                 LESS_OR_EQUAL, GREATER_THAN or GREATER_OR_EQUAL",
            )),
            Ok(JsonCondition::Exists) => {
                if !row.value.is_empty() {
                    v.push(FieldViolation::new(field("value"), "must be empty for EXISTS"));
                }
            }
            Ok(JsonCondition::Equals | JsonCondition::NotEquals | JsonCondition::Contains) => {}
            Ok(
                JsonCondition::LessThan
                | JsonCondition::LessOrEqual
                | JsonCondition::GreaterThan
                | JsonCondition::GreaterOrEqual,
            ) => {
                if !numeric() {
                    v.push(FieldViolation::new(
                        field("value"),
                        format!("{:?} is not a number; numeric comparisons need one", row.value),
                    ));
                }
            }
            Err(_) => v.push(FieldViolation::new(
                field("condition"),
                format!("unknown condition {}", row.condition),
            )),
        }
    }
}

/// The last non-empty line: regex errors end with the one-line reason.
fn last_line(text: &str) -> String {
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_owned()
}

/// An absolute URL of one of `schemes` with a host, at most
/// [`MAX_URL_CHARS`]; userinfo is allowed (it is a secret, see `secrets`).
pub(super) fn validate_url(field: &str, raw: &str, schemes: &[&str], v: &mut Vec<FieldViolation>) {
    if raw.is_empty() {
        v.push(FieldViolation::new(field, "is required"));
        return;
    }
    if raw.len() > MAX_URL_CHARS {
        v.push(FieldViolation::new(
            field,
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
        return;
    }
    match url::Url::parse(raw) {
        Err(err) => v.push(FieldViolation::new(field, format!("is not an absolute URL: {err}"))),
        Ok(url) if !schemes.contains(&url.scheme()) => v.push(FieldViolation::new(
            field,
            format!("scheme must be {} (got {:?})", schemes.join(" or "), url.scheme()),
        )),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => v.push(FieldViolation::new(field, "must name a host")),
        Ok(_) => {}
    }
}

/// Where a list of headers (or gRPC metadata) and its secret names sit in
/// a spec, and what messages call them.
pub(super) struct HeaderFields {
    /// `http.headers`, `grpc_health.metadata`.
    pub(super) list: String,
    /// `http.secret_headers`, `grpc_health.secret_metadata`.
    pub(super) secret_names: String,
    /// What the entries are called in a count: "headers", "entries".
    pub(super) plural: &'static str,
    /// What a name is called: "header name", "metadata name".
    pub(super) name: &'static str,
}

/// A [`HeaderFields`] before the kind's prefix is known.
pub(super) struct HeaderNaming {
    list: &'static str,
    secret_names: &'static str,
    plural: &'static str,
    name: &'static str,
}

impl HeaderNaming {
    /// `headers` and `secret_headers` (HTTP and WebSocket checks).
    pub(super) const HTTP_CHECK: HeaderNaming = HeaderNaming {
        list: "headers",
        secret_names: "secret_headers",
        plural: "headers",
        name: "header name",
    };
    /// `metadata` and `secret_metadata` (gRPC health checks).
    pub(super) const GRPC_METADATA: HeaderNaming = HeaderNaming {
        list: "metadata",
        secret_names: "secret_metadata",
        plural: "entries",
        name: "metadata name",
    };

    /// The fields under the kind `prefix` (`http`).
    pub(super) fn at(&self, prefix: &str) -> HeaderFields {
        HeaderFields {
            list: format!("{prefix}.{}", self.list),
            secret_names: format!("{prefix}.{}", self.secret_names),
            plural: self.plural,
            name: self.name,
        }
    }
}

/// Headers (or metadata) and the names marked secret: at most
/// [`MAX_HEADERS`] of each, valid names, values of visible ASCII within
/// [`MAX_HEADER_VALUE_BYTES`], all of it within [`MAX_HEADERS_TOTAL_BYTES`].
pub(super) fn validate_headers(
    fields: &HeaderFields,
    headers: &[HttpHeader],
    secret_names: &[String],
    v: &mut Vec<FieldViolation>,
) {
    let HeaderFields {
        list,
        secret_names: secret_field,
        plural,
        name: name_noun,
    } = fields;
    if headers.len() > MAX_HEADERS {
        v.push(FieldViolation::new(
            list.as_str(),
            format!("at most {MAX_HEADERS} {plural} (got {})", headers.len()),
        ));
    }
    let mut total = 0;
    for (i, header) in headers.iter().enumerate() {
        total += header.name.len() + header.value.len();
        if http::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
            v.push(FieldViolation::new(
                format!("{list}[{i}].name"),
                format!("{:?} is not a valid {name_noun}", header.name),
            ));
        }
        if header.value.len() > MAX_HEADER_VALUE_BYTES {
            v.push(FieldViolation::new(
                format!("{list}[{i}].value"),
                format!("must be at most {MAX_HEADER_VALUE_BYTES} bytes"),
            ));
        } else if http::HeaderValue::from_str(&header.value).is_err() {
            v.push(FieldViolation::new(
                format!("{list}[{i}].value"),
                "must be visible ASCII, spaces or tabs (no line breaks)",
            ));
        }
    }
    if secret_names.len() > MAX_HEADERS {
        v.push(FieldViolation::new(
            secret_field.as_str(),
            format!("at most {MAX_HEADERS} names (got {})", secret_names.len()),
        ));
    }
    for (i, name) in secret_names.iter().enumerate() {
        total += name.len();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            v.push(FieldViolation::new(
                format!("{secret_field}[{i}]"),
                format!("{name:?} is not a valid {name_noun}"),
            ));
        }
    }
    if total > MAX_HEADERS_TOTAL_BYTES {
        let secret_short = secret_field.rsplit('.').next().unwrap_or(secret_field);
        v.push(FieldViolation::new(
            list.as_str(),
            format!(
                "names and values (with {secret_short}) must total at most {MAX_HEADERS_TOTAL_BYTES} bytes (got {total})"
            ),
        ));
    }
}

#[cfg(test)]
mod tests {
    use monitor_core::labels::MAX_LABEL_KEY_CHARS;
    use monitor_proto::v1::{HttpAssertions, HttpHeader, StatusRange};

    use super::*;

    fn seconds(seconds: i64) -> Option<pbjson_types::Duration> {
        Some(pbjson_types::Duration { seconds, nanos: 0 })
    }

    fn http(url: &str) -> Check {
        Check::Http(HttpCheck {
            url: url.into(),
            ..Default::default()
        })
    }

    /// A valid job: an HTTP check every 30 s with a 5 s timeout.
    fn valid() -> Job {
        Job {
            name: "shop".into(),
            labels: HashMap::from([("team".to_owned(), "web".to_owned())]),
            interval: seconds(30),
            timeout: seconds(5),
            desired_state: JobState::Running as i32,
            locations: vec!["eu".into(), "us".into()],
            check: Some(http("https://shop.example/health")),
            ..Default::default()
        }
    }

    /// The violations of the valid job after `change`.
    fn violations(change: impl FnOnce(&mut Job)) -> Vec<FieldViolation> {
        let mut job = valid();
        change(&mut job);
        match validate_job(&job) {
            Err(ApiError::InvalidArgument(violations)) => violations,
            other => panic!("expected violations, got {other:?}"),
        }
    }

    /// The violations of the valid job with its HTTP check changed.
    fn http_violations(change: impl FnOnce(&mut HttpCheck)) -> Vec<FieldViolation> {
        violations(|job| {
            let Some(Check::Http(http)) = &mut job.check else {
                unreachable!()
            };
            change(http);
        })
    }

    fn assertions(change: impl FnOnce(&mut HttpAssertions)) -> Vec<FieldViolation> {
        http_violations(|http| {
            let mut assertions = HttpAssertions::default();
            change(&mut assertions);
            http.assertions = Some(assertions);
        })
    }

    fn one(field: &str, description: &str) -> Vec<FieldViolation> {
        vec![FieldViolation::new(field, description)]
    }

    #[test]
    fn a_valid_http_job_becomes_its_columns() {
        let job = valid();
        let valid = validate_job(&job).unwrap();
        let mut normalised = HttpCheck {
            url: "https://shop.example/health".into(),
            ..Default::default()
        };
        normalised.method = HttpMethod::Get as i32;
        assert_eq!(
            valid,
            ValidJob {
                fields: JobFields {
                    name: "shop".into(),
                    labels: serde_json::json!({"team": "web"}),
                    check_kind: "http".into(),
                    check_spec: serde_json::to_value(&normalised).unwrap(),
                    interval_ms: 30_000,
                    timeout_ms: 5_000,
                    desired_state: STATE_RUNNING.into(),
                    locations: serde_json::json!(["eu", "us"]),
                },
                state_unspecified: false,
            }
        );
    }

    #[test]
    fn a_valid_tcp_job_without_a_state_is_stored_stopped() {
        let tcp = TcpCheck {
            host: "[::1]".into(),
            port: 5432,
            ..Default::default()
        };
        let mut job = valid();
        job.check = Some(Check::Tcp(tcp.clone()));
        job.desired_state = JobState::Unspecified as i32;
        job.interval = Some(pbjson_types::Duration {
            seconds: 1,
            nanos: 500_000_000,
        });
        job.timeout = Some(pbjson_types::Duration {
            seconds: 1,
            nanos: 500_000_000,
        });
        let valid = validate_job(&job).unwrap();
        assert_eq!(
            (valid.fields.check_kind.as_str(), &valid.fields.check_spec),
            ("tcp", &serde_json::to_value(&tcp).unwrap())
        );
        assert_eq!(
            (valid.fields.interval_ms, valid.fields.timeout_ms),
            (1_500, 1_500),
            "a timeout may equal the interval"
        );
        assert_eq!(
            (valid.fields.desired_state.as_str(), valid.state_unspecified),
            (STATE_STOPPED, true)
        );
        job.desired_state = JobState::Stopped as i32;
        assert!(!validate_job(&job).unwrap().state_unspecified);
    }

    #[test]
    fn the_largest_values_are_accepted() {
        let mut job = valid();
        job.name = "n".repeat(MAX_NAME_CHARS);
        job.labels = (0..MAX_LABELS)
            .map(|i| (format!("k{i}"), "v".repeat(MAX_LABEL_VALUE_CHARS)))
            .collect();
        job.labels.insert("k".repeat(MAX_LABEL_KEY_CHARS), String::new());
        job.labels.remove("k0");
        job.interval = seconds(86_400);
        job.timeout = seconds(60);
        job.locations = (0..MAX_LOCATIONS).map(|i| format!("l{i}")).collect();
        job.check = Some(Check::Http(HttpCheck {
            url: format!("https://shop.example/{}", "p".repeat(MAX_URL_CHARS - 21)),
            method: HttpMethod::Post as i32,
            body: vec![b'x'; MAX_BODY_BYTES],
            assertions: Some(HttpAssertions {
                accepted_status: vec![StatusRange { min: 100, max: 599 }; MAX_STATUS_RANGES],
                body_contains: "c".repeat(MAX_ASSERTION_TEXT_CHARS),
                body_regex: "r".repeat(MAX_ASSERTION_TEXT_CHARS),
                max_response_time: seconds(60),
                ..Default::default()
            }),
            ..Default::default()
        }));
        let Some(Check::Http(http)) = &job.check else {
            unreachable!()
        };
        assert_eq!(http.url.len(), MAX_URL_CHARS);
        assert!(validate_job(&job).is_ok(), "{:?}", validate_job(&job));
    }

    #[test]
    fn the_name_must_be_present_bounded_trimmed_and_printable() {
        assert_eq!(violations(|j| j.name.clear()), one("name", "must not be empty"));
        assert_eq!(
            violations(|j| j.name = "n".repeat(129)),
            one("name", "must be at most 128 characters (got 129)")
        );
        assert_eq!(
            violations(|j| j.name = " shop".into()),
            one("name", "must not start or end with whitespace")
        );
        assert_eq!(
            violations(|j| j.name = "sh\u{0}op".into()),
            one("name", "must not contain control characters")
        );
    }

    #[test]
    fn labels_are_bounded_with_valid_keys_and_printable_values() {
        assert_eq!(
            violations(|j| j.labels = (0..65).map(|i| (format!("k{i}"), String::new())).collect()),
            one("labels", "at most 64 labels (got 65)")
        );
        let key_rule =
            "key must be 1 to 63 characters of letters, digits, '.', '_', '/', '-', starting with a letter or digit";
        for key in ["", "-team", "te am", "k".repeat(64).as_str()] {
            assert_eq!(
                violations(|j| j.labels = HashMap::from([(key.to_owned(), "v".to_owned())])),
                one(&format!("labels[{key:?}]"), key_rule),
                "{key:?}"
            );
        }
        assert_eq!(
            violations(|j| {
                j.labels.insert("team".into(), "v".repeat(257));
            }),
            one("labels[\"team\"]", "value must be at most 256 characters")
        );
        assert_eq!(
            violations(|j| {
                j.labels.insert("team".into(), "w\neb".into());
            }),
            one("labels[\"team\"]", "value must not contain control characters")
        );
    }

    #[test]
    fn interval_and_timeout_are_required_durations() {
        assert_eq!(
            violations(|j| j.interval = None),
            one("interval", "is required (e.g. \"30s\")")
        );
        assert_eq!(
            violations(|j| j.timeout = None),
            one("timeout", "is required (e.g. \"30s\")")
        );
        assert_eq!(
            violations(|j| j.interval = seconds(-1)),
            one("interval", "must not be negative")
        );
        let nanos = |nanos| Some(pbjson_types::Duration { seconds: 1, nanos });
        assert_eq!(
            violations(|j| j.timeout = nanos(-1)),
            one("timeout", "must not be negative")
        );
        assert_eq!(
            violations(|j| j.timeout = nanos(1_000_000_000)),
            one("timeout", "nanos must be below 1e9")
        );
        assert_eq!(
            violations(|j| j.timeout = nanos(1_500)),
            one("timeout", "must be a whole number of milliseconds")
        );
    }

    #[test]
    fn the_interval_is_one_second_to_a_day() {
        assert_eq!(
            violations(|j| {
                j.interval = Some(pbjson_types::Duration {
                    seconds: 0,
                    nanos: 999_000_000,
                });
                j.timeout = j.interval;
            }),
            one("interval", "must be at least 1s")
        );
        assert_eq!(
            violations(|j| j.interval = seconds(86_401)),
            one("interval", "must be at most 24h (86400s)")
        );
        assert_eq!(
            violations(|j| j.interval = seconds(i64::MAX)),
            one("interval", "must be at most 24h (86400s)")
        );
    }

    #[test]
    fn the_timeout_is_positive_at_most_a_minute_and_within_the_interval() {
        assert_eq!(
            violations(|j| j.timeout = seconds(0)),
            one("timeout", "must be greater than zero")
        );
        assert_eq!(
            violations(|j| {
                j.interval = seconds(120);
                j.timeout = seconds(61);
            }),
            one("timeout", "must be at most 60s")
        );
        assert_eq!(
            violations(|j| j.timeout = seconds(31)),
            one("timeout", "must not exceed the interval")
        );
    }

    #[test]
    fn an_unknown_desired_state_is_named() {
        assert_eq!(
            violations(|j| j.desired_state = 9),
            one(
                "desired_state",
                "unknown state 9; use JOB_STATE_RUNNING or JOB_STATE_STOPPED"
            )
        );
    }

    #[test]
    fn locations_are_bounded_valid_and_distinct() {
        assert_eq!(
            violations(|j| j.locations = (0..17).map(|i| format!("l{i}")).collect()),
            one("locations", "at most 16 locations")
        );
        assert_eq!(
            violations(|j| j.locations = vec!["eu".into(), "eu west".into()]),
            one(
                "locations[1]",
                "must be 1 to 63 characters of letters, digits, '.', '_', '/', '-', starting with a letter or digit"
            )
        );
        assert_eq!(
            violations(|j| j.locations = vec!["eu".into(), "us".into(), "eu".into()]),
            one("locations[2]", "\"eu\" is listed twice")
        );
    }

    fn with_assertions(assertions: HttpAssertions) -> impl FnOnce(&mut Job) {
        move |job: &mut Job| {
            let Some(Check::Http(http)) = &mut job.check else {
                unreachable!("valid() is an HTTP job")
            };
            http.assertions = Some(assertions);
        }
    }

    #[test]
    fn header_and_json_conditions_are_checked_row_by_row() {
        let header = |name: &str, condition: HeaderCondition, value: &str| HeaderAssertion {
            name: name.into(),
            condition: condition as i32,
            value: value.into(),
        };
        let json = |path: &str, condition: JsonCondition, value: &str| JsonPathAssertion {
            path: path.into(),
            condition: condition as i32,
            value: value.into(),
        };
        let good = HttpAssertions {
            headers: vec![
                header("Content-Type", HeaderCondition::Regex, "^application/json"),
                header("Set-Cookie", HeaderCondition::Absent, ""),
            ],
            json_path: vec![
                json("$.status", JsonCondition::Equals, "ok"),
                json("$.checks[?@.name == 'db'].latency", JsonCondition::LessThan, "250"),
                json("$.version", JsonCondition::Exists, ""),
            ],
            cert_min_days_remaining: 14,
            ..HttpAssertions::default()
        };
        let mut job = valid();
        with_assertions(good)(&mut job);
        assert!(validate_job(&job).is_ok());

        let bad = HttpAssertions {
            headers: vec![
                header("bad header", HeaderCondition::Exists, ""),
                header("X-A", HeaderCondition::Unspecified, ""),
                header("X-B", HeaderCondition::Regex, "("),
                header("X-C", HeaderCondition::Absent, "x"),
            ],
            json_path: vec![
                json("status", JsonCondition::Equals, "ok"),
                json("$.n", JsonCondition::GreaterThan, "many"),
                json("$.n", JsonCondition::Exists, "1"),
                json("", JsonCondition::Equals, "1"),
            ],
            cert_min_days_remaining: 4000,
            ..HttpAssertions::default()
        };
        let fields: Vec<String> = violations(with_assertions(bad))
            .into_iter()
            .map(|violation| violation.field)
            .collect();
        assert_eq!(
            fields,
            [
                "http.assertions.headers[0].name",
                "http.assertions.headers[1].condition",
                "http.assertions.headers[2].value",
                "http.assertions.headers[3].value",
                "http.assertions.json_path[0].path",
                "http.assertions.json_path[1].value",
                "http.assertions.json_path[2].value",
                "http.assertions.json_path[3].path",
                "http.assertions.cert_min_days_remaining",
            ]
        );
        let too_many = HttpAssertions {
            headers: vec![header("X-A", HeaderCondition::Exists, ""); MAX_ASSERTION_ROWS + 1],
            ..HttpAssertions::default()
        };
        assert_eq!(
            violations(with_assertions(too_many)),
            one("http.assertions.headers", "at most 32 conditions (got 33)")
        );
    }

    #[test]
    fn a_certificate_condition_needs_https() {
        let change = |job: &mut Job| {
            with_assertions(HttpAssertions {
                cert_min_days_remaining: 7,
                ..HttpAssertions::default()
            })(job);
            let Some(Check::Http(http)) = &mut job.check else {
                unreachable!()
            };
            http.url = "http://shop.example/".into();
        };
        assert_eq!(
            violations(change),
            one(
                "http.assertions.cert_min_days_remaining",
                "needs an https:// URL (or follow_redirects to reach one)"
            )
        );
    }

    #[test]
    fn a_check_kind_is_required() {
        assert_eq!(
            violations(|j| j.check = None),
            one(
                "check",
                "one check kind must be set (http, tcp, dns, icmp, tls, grpc_health, websocket, ssh or socks5)"
            )
        );
    }

    #[test]
    fn a_tcp_check_needs_a_host_and_a_port() {
        let tcp = |host: &str, port: u32| {
            violations(|j| {
                j.check = Some(Check::Tcp(TcpCheck {
                    host: host.into(),
                    port,
                    ..Default::default()
                }))
            })
        };
        assert_eq!(tcp("", 80), one("tcp.host", "is required"));
        assert_eq!(tcp("[]", 80), one("tcp.host", "is required"));
        assert_eq!(
            tcp(&"h".repeat(254), 80),
            one("tcp.host", "must be at most 253 characters")
        );
        assert_eq!(
            tcp("bad host", 80),
            one("tcp.host", "\"bad host\" is not a host name or IP address")
        );
        assert_eq!(tcp("db.internal", 0), one("tcp.port", "must be 1 to 65535"));
        assert_eq!(tcp("10.0.0.1", 65_536), one("tcp.port", "must be 1 to 65535"));
    }

    #[test]
    fn a_tcp_check_sends_and_expects_within_bounds() {
        let tcp_job = |change: fn(&mut TcpCheck)| {
            let mut tcp = TcpCheck {
                host: "mail.example".into(),
                port: 25,
                ..Default::default()
            };
            change(&mut tcp);
            Job {
                check: Some(Check::Tcp(tcp)),
                ..valid()
            }
        };
        let tcp = |change: fn(&mut TcpCheck)| violations(|j| *j = tcp_job(change));
        let largest = tcp_job(|t| {
            t.send = "x".repeat(MAX_TCP_SEND_BYTES);
            t.expect_contains = "c".repeat(MAX_ASSERTION_TEXT_CHARS);
            t.expect_regex = "^220 ".into();
            t.proxy = Some(monitor_proto::v1::Socks5Proxy {
                host: "proxy.example".into(),
                port: 1080,
                ..Default::default()
            });
        });
        assert!(validate_job(&largest).is_ok(), "{:?}", validate_job(&largest));
        assert_eq!(
            tcp(|t| t.send = "x".repeat(4097)),
            one("tcp.send", "must be at most 4096 bytes (got 4097)")
        );
        assert_eq!(
            tcp(|t| t.expect_contains = "c".repeat(1025)),
            one("tcp.expect_contains", "must be at most 1024 characters")
        );
        assert_eq!(
            tcp(|t| t.expect_regex = "r".repeat(1025)),
            one("tcp.expect_regex", "must be at most 1024 characters")
        );
        assert_eq!(
            tcp(|t| t.expect_regex = "(unclosed".into()),
            one(
                "tcp.expect_regex",
                "is not a valid regular expression: error: unclosed group"
            )
        );
        assert_eq!(
            tcp(|t| {
                t.proxy = Some(monitor_proto::v1::Socks5Proxy {
                    host: "proxy.example".into(),
                    port: 0,
                    ..Default::default()
                })
            }),
            one("tcp.proxy.port", "must be 1 to 65535")
        );
    }

    #[test]
    fn an_http_proxy_is_validated() {
        assert_eq!(
            http_violations(|h| {
                h.proxy = Some(monitor_proto::v1::Socks5Proxy {
                    host: String::new(),
                    port: 1080,
                    ..Default::default()
                })
            }),
            one("http.proxy.host", "is required")
        );
    }

    #[test]
    fn the_url_is_an_absolute_http_url_with_a_host() {
        let url = |raw: String| http_violations(|h| h.url = raw);
        assert_eq!(url(String::new()), one("http.url", "is required"));
        assert_eq!(
            url(format!("https://shop.example/{}", "p".repeat(MAX_URL_CHARS))),
            one("http.url", "must be at most 2048 characters")
        );
        assert_eq!(
            url("/health".into()),
            one("http.url", "is not an absolute URL: relative URL without a base")
        );
        assert_eq!(
            url("ftp://shop.example/".into()),
            one("http.url", "scheme must be http or https (got \"ftp\")")
        );
        // The url crate refuses an http(s) URL without a host itself.
        assert_eq!(
            url("http://".into()),
            one("http.url", "is not an absolute URL: empty host")
        );
    }

    #[test]
    fn the_method_must_be_known_and_a_body_needs_one_that_takes_it() {
        assert_eq!(
            http_violations(|h| h.method = 42),
            one(
                "http.method",
                "unknown method 42; use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"
            )
        );
        assert_eq!(
            http_violations(|h| h.body = b"{}".to_vec()),
            one("http.body", "GET requests cannot carry a body")
        );
        assert_eq!(
            http_violations(|h| {
                h.method = HttpMethod::Head as i32;
                h.body = b"{}".to_vec();
            }),
            one("http.body", "HEAD requests cannot carry a body")
        );
        for method in [
            HttpMethod::Post,
            HttpMethod::Put,
            HttpMethod::Patch,
            HttpMethod::Delete,
            HttpMethod::Options,
        ] {
            let mut job = valid();
            job.check = Some(Check::Http(HttpCheck {
                url: "https://shop.example/".into(),
                method: method as i32,
                body: b"{}".to_vec(),
                ..Default::default()
            }));
            assert!(validate_job(&job).is_ok(), "{method:?}");
        }
        assert_eq!(
            http_violations(|h| {
                h.method = HttpMethod::Post as i32;
                h.body = vec![0; MAX_BODY_BYTES + 1];
            }),
            one("http.body", "must be at most 65536 bytes (got 65537)")
        );
    }

    #[test]
    fn headers_are_bounded_and_well_formed() {
        let header = |name: &str, value: &str| HttpHeader {
            name: name.into(),
            value: value.into(),
        };
        assert_eq!(
            http_violations(|h| h.headers = vec![header("x-a", "1"); 33]),
            one("http.headers", "at most 32 headers (got 33)")
        );
        assert_eq!(
            http_violations(|h| h.headers = vec![header("x-a", "1"), header("bad name", "1")]),
            one("http.headers[1].name", "\"bad name\" is not a valid header name")
        );
        assert_eq!(
            http_violations(|h| h.headers = vec![header("x-a", &"v".repeat(4097))]),
            one("http.headers[0].value", "must be at most 4096 bytes")
        );
        assert_eq!(
            http_violations(|h| h.headers = vec![header("x-a", "1\r\nx-b: 2")]),
            one(
                "http.headers[0].value",
                "must be visible ASCII, spaces or tabs (no line breaks)"
            )
        );
        assert_eq!(
            http_violations(|h| h.secret_headers = vec!["authorization".into(); 33]),
            one("http.secret_headers", "at most 32 names (got 33)")
        );
        assert_eq!(
            http_violations(|h| h.secret_headers = vec!["x-token".into(), "x token".into()]),
            one("http.secret_headers[1]", "\"x token\" is not a valid header name")
        );
        // Five values of 4000 bytes: each within its bound, together not.
        let total = 5 * (3 + 4000) + "x-secret".len();
        assert_eq!(
            http_violations(|h| {
                h.headers = vec![header("x-a", &"v".repeat(4000)); 5];
                h.secret_headers = vec!["x-secret".into()];
            }),
            one(
                "http.headers",
                &format!("names and values (with secret_headers) must total at most 16384 bytes (got {total})")
            )
        );
    }

    #[test]
    fn status_ranges_are_bounded_ordered_and_real_codes() {
        let range = |min, max| StatusRange { min, max };
        assert_eq!(
            assertions(|a| a.accepted_status = vec![range(200, 299); 33]),
            one("http.assertions.accepted_status", "at most 32 ranges")
        );
        for (min, max) in [(99, 200), (200, 600), (0, 0)] {
            assert_eq!(
                assertions(|a| a.accepted_status = vec![range(200, 200), range(min, max)]),
                one(
                    "http.assertions.accepted_status[1]",
                    "status codes must be within 100..=599"
                ),
                "{min}..={max}"
            );
        }
        assert_eq!(
            assertions(|a| a.accepted_status = vec![range(300, 200)]),
            one("http.assertions.accepted_status[0]", "min must not exceed max")
        );
    }

    #[test]
    fn body_assertions_are_bounded_and_the_regex_compiles() {
        assert_eq!(
            assertions(|a| a.body_contains = "c".repeat(1025)),
            one("http.assertions.body_contains", "must be at most 1024 characters")
        );
        assert_eq!(
            assertions(|a| a.body_regex = "r".repeat(1025)),
            one("http.assertions.body_regex", "must be at most 1024 characters")
        );
        assert_eq!(
            assertions(|a| a.body_regex = "(unclosed".into()),
            one(
                "http.assertions.body_regex",
                "is not a valid regular expression: error: unclosed group"
            )
        );
        // Within the text bound but too large once compiled.
        let huge = assertions(|a| a.body_regex = r"\w{1000}\w{1000}".into());
        assert_eq!(huge.len(), 1, "{huge:?}");
        assert_eq!(huge[0].field, "http.assertions.body_regex");
        assert!(
            huge[0].description.starts_with("is not a valid regular expression: "),
            "{huge:?}"
        );
    }

    #[test]
    fn the_response_time_bound_is_positive_and_within_the_timeout() {
        let field = "http.assertions.max_response_time";
        assert_eq!(
            assertions(|a| a.max_response_time = seconds(0)),
            one(field, "must be greater than zero")
        );
        assert_eq!(
            assertions(|a| a.max_response_time = seconds(6)),
            one(field, "must not exceed the timeout")
        );
        assert_eq!(
            assertions(|a| a.max_response_time = seconds(-1)),
            one(field, "must not be negative")
        );
    }

    #[test]
    fn every_violation_is_reported_at_once() {
        let found = violations(|j| {
            j.name.clear();
            j.interval = None;
            j.desired_state = 9;
            j.check = Some(http(""));
        });
        let fields: Vec<_> = found.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["name", "interval", "desired_state", "http.url"]);
    }
}
