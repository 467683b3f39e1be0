//! Every rule a job definition must satisfy, checked before anything is
//! written. Violations are collected (not just the first), each naming the
//! field relative to the job (`http.url`); callers prefix the path with where
//! the job came from (`job.`, `jobs[3].`).

use std::{collections::HashMap, time::Duration};

use monitor_proto::v1::{HttpCheck, HttpMethod, Job, JobState, TcpCheck, job::Check};
use monitor_store::models::job::{JobFields, STATE_RUNNING, STATE_STOPPED};

use crate::error::{ApiError, FieldViolation};

pub const MAX_NAME_CHARS: usize = 128;
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);
pub const MAX_LABELS: usize = 64;
pub const MAX_LABEL_KEY_CHARS: usize = 63;
pub const MAX_LABEL_VALUE_CHARS: usize = 256;
pub const MAX_URL_CHARS: usize = 2048;
pub const MAX_HEADERS: usize = 32;
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
pub const MAX_HEADERS_TOTAL_BYTES: usize = 16 * 1024;
pub const MAX_BODY_BYTES: usize = 64 * 1024;
pub const MAX_STATUS_RANGES: usize = 32;
pub const MAX_ASSERTION_TEXT_CHARS: usize = 1024;

pub const MAX_LOCATIONS: usize = 16;
pub const MAX_HOST_CHARS: usize = 253;

/// Check kind stored for [`Check::Http`].
pub const KIND_HTTP: &str = "http";
/// Check kind stored for [`Check::Tcp`].
pub const KIND_TCP: &str = "tcp";

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
            v.push(FieldViolation::new("check", "one check kind must be set (http or tcp)"));
            None
        }
        Some(Check::Http(http)) => validate_http(http, timeout, &mut v).map(|spec| (KIND_HTTP, spec)),
        Some(Check::Tcp(tcp)) => validate_tcp(tcp, &mut v).map(|spec| (KIND_TCP, spec)),
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

fn validate_name(name: &str, v: &mut Vec<FieldViolation>) {
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

/// Whether `key` may name a label: 1..=63 of `[A-Za-z0-9._/-]`, starting
/// with a letter or digit.
pub fn is_label_key(key: &str) -> bool {
    key.len() <= MAX_LABEL_KEY_CHARS
        && key.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
}

fn validate_labels(labels: &HashMap<String, String>, v: &mut Vec<FieldViolation>) {
    if labels.len() > MAX_LABELS {
        v.push(FieldViolation::new(
            "labels",
            format!("at most {MAX_LABELS} labels (got {})", labels.len()),
        ));
    }
    let mut keys: Vec<_> = labels.keys().collect();
    keys.sort();
    for key in keys {
        if !is_label_key(key) {
            v.push(FieldViolation::new(
                format!("labels[{key:?}]"),
                "key must be 1 to 63 characters of letters, digits, '.', '_', '/', '-', starting with a letter or digit",
            ));
        }
        let value = &labels[key];
        if value.chars().count() > MAX_LABEL_VALUE_CHARS {
            v.push(FieldViolation::new(
                format!("labels[{key:?}]"),
                format!("value must be at most {MAX_LABEL_VALUE_CHARS} characters"),
            ));
        } else if value.chars().any(char::is_control) {
            v.push(FieldViolation::new(
                format!("labels[{key:?}]"),
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

fn to_std_duration(field: &str, value: &pbjson_types::Duration, v: &mut Vec<FieldViolation>) -> Option<Duration> {
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
                "must be 1 to 63 characters of letters, digits, '.', '_', '/', '-', starting with a letter or digit",
            ));
        } else if locations[..i].contains(location) {
            v.push(FieldViolation::new(
                format!("locations[{i}]"),
                format!("{location:?} is listed twice"),
            ));
        }
    }
}

fn validate_tcp(tcp: &TcpCheck, v: &mut Vec<FieldViolation>) -> Option<serde_json::Value> {
    let before = v.len();
    let host = tcp.host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        v.push(FieldViolation::new("tcp.host", "is required"));
    } else if host.len() > MAX_HOST_CHARS {
        v.push(FieldViolation::new(
            "tcp.host",
            format!("must be at most {MAX_HOST_CHARS} characters"),
        ));
    } else if host.parse::<std::net::IpAddr>().is_err() && url::Host::parse(host).is_err() {
        v.push(FieldViolation::new(
            "tcp.host",
            format!("{:?} is not a host name or IP address", tcp.host),
        ));
    }
    if !(1..=65535).contains(&tcp.port) {
        v.push(FieldViolation::new("tcp.port", "must be 1 to 65535"));
    }
    if v.len() > before {
        return None;
    }
    Some(serde_json::to_value(tcp).expect("TcpCheck serialises"))
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
    validate_url(&http.url, v);
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
    validate_headers(http, v);
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
        if assertions.body_contains.chars().count() > MAX_ASSERTION_TEXT_CHARS {
            v.push(FieldViolation::new(
                "http.assertions.body_contains",
                format!("must be at most {MAX_ASSERTION_TEXT_CHARS} characters"),
            ));
        }
        if assertions.body_regex.chars().count() > MAX_ASSERTION_TEXT_CHARS {
            v.push(FieldViolation::new(
                "http.assertions.body_regex",
                format!("must be at most {MAX_ASSERTION_TEXT_CHARS} characters"),
            ));
        } else if !assertions.body_regex.is_empty()
            && let Err(err) = regex::RegexBuilder::new(&assertions.body_regex)
                .size_limit(1 << 20)
                .build()
        {
            v.push(FieldViolation::new(
                "http.assertions.body_regex",
                format!("is not a valid regular expression: {}", last_line(&err.to_string())),
            ));
        }
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
    }
    if v.len() > before {
        return None;
    }
    let mut normalised = http.clone();
    normalised.method = method as i32;
    Some(serde_json::to_value(&normalised).expect("HttpCheck serialises"))
}

/// The last non-empty line: regex errors end with the one-line reason.
fn last_line(text: &str) -> String {
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_owned()
}

fn validate_url(raw: &str, v: &mut Vec<FieldViolation>) {
    if raw.is_empty() {
        v.push(FieldViolation::new("http.url", "is required"));
        return;
    }
    if raw.len() > MAX_URL_CHARS {
        v.push(FieldViolation::new(
            "http.url",
            format!("must be at most {MAX_URL_CHARS} characters"),
        ));
        return;
    }
    match url::Url::parse(raw) {
        Err(err) => v.push(FieldViolation::new(
            "http.url",
            format!("is not an absolute URL: {err}"),
        )),
        Ok(url) if !matches!(url.scheme(), "http" | "https") => v.push(FieldViolation::new(
            "http.url",
            format!("scheme must be http or https (got {:?})", url.scheme()),
        )),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => {
            v.push(FieldViolation::new("http.url", "must name a host"))
        }
        Ok(_) => {}
    }
}

fn validate_headers(http: &HttpCheck, v: &mut Vec<FieldViolation>) {
    if http.headers.len() > MAX_HEADERS {
        v.push(FieldViolation::new(
            "http.headers",
            format!("at most {MAX_HEADERS} headers (got {})", http.headers.len()),
        ));
    }
    let mut total = 0;
    for (i, header) in http.headers.iter().enumerate() {
        total += header.name.len() + header.value.len();
        if http::HeaderName::from_bytes(header.name.as_bytes()).is_err() {
            v.push(FieldViolation::new(
                format!("http.headers[{i}].name"),
                format!("{:?} is not a valid header name", header.name),
            ));
        }
        if header.value.len() > MAX_HEADER_VALUE_BYTES {
            v.push(FieldViolation::new(
                format!("http.headers[{i}].value"),
                format!("must be at most {MAX_HEADER_VALUE_BYTES} bytes"),
            ));
        } else if http::HeaderValue::from_str(&header.value).is_err() {
            v.push(FieldViolation::new(
                format!("http.headers[{i}].value"),
                "must be visible ASCII, spaces or tabs (no line breaks)",
            ));
        }
    }
    if http.secret_headers.len() > MAX_HEADERS {
        v.push(FieldViolation::new(
            "http.secret_headers",
            format!("at most {MAX_HEADERS} names (got {})", http.secret_headers.len()),
        ));
    }
    for (i, name) in http.secret_headers.iter().enumerate() {
        total += name.len();
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            v.push(FieldViolation::new(
                format!("http.secret_headers[{i}]"),
                format!("{name:?} is not a valid header name"),
            ));
        }
    }
    if total > MAX_HEADERS_TOTAL_BYTES {
        v.push(FieldViolation::new(
            "http.headers",
            format!("names and values (with secret_headers) must total at most {MAX_HEADERS_TOTAL_BYTES} bytes (got {total})"),
        ));
    }
}
