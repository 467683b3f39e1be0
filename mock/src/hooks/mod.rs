//! The recording receiver: stands in for a webhook, Slack, Discord, Teams,
//! Telegram or PagerDuty, records every request, checks it against the
//! kind's documented shape ([`shape`]) and answers as the real service
//! would; a script makes it fail first (500, 429 with `Retry-After`, or
//! never answer), so retries can be tested against it.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /hooks/{kind}/{name}` | a delivery to receiver `name` as `webhook`, `slack`, `discord`, `teams` or `pagerduty` (any query string is kept, as Teams URLs carry one) |
//! | `POST /hooks/telegram/{name}/bot{token}/sendMessage` | a Telegram delivery (a channel's `api_url` is `…/hooks/telegram/{name}`) |
//! | `PUT /__hooks/{name}/script` | `{"fail_first": N, "status": 500}`, `{"fail_first": N, "status": 429, "retry_after": S}` or `{"fail_first": N, "hang": true}`: the next N deliveries to `name` fail so; 204 |
//! | `GET /__hooks/{name}/received` | [`HookLog`]: every delivery recorded since the last reset, oldest first |
//! | `DELETE /__hooks/{name}`, `DELETE /__hooks` | forget one receiver (its requests and script), or all; 204. `POST /__reset` forgets all too |
//!
//! Answers: webhook and Slack 200 `ok`; Discord 204; Teams 202; Telegram
//! 200 `{"ok": true, "result": {…}}`; PagerDuty 202 `{"status":
//! "success", "message": "Event processed", "dedup_key": …}`. A bad shape
//! is a 400 in the kind's error form with the reason (Telegram: `{"ok":
//! false, "error_code": 400, "description": …}`, 401 for a bad token). A
//! scripted 429 carries `Retry-After: S`, except for Telegram, which asks
//! for the wait in the body (`parameters.retry_after`) as Telegram does.
//!
//! Bounded: at most [`MAX_RECEIVERS`] names, the last
//! [`MAX_RECORDED_PER_RECEIVER`] requests of each (older ones are counted
//! in `dropped`), bodies up to [`MAX_HOOK_BODY_BYTES`] accepted (413 above)
//! and kept up to [`MAX_RECORDED_BODY_BYTES`].

pub mod shape;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::request::Parts;
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use shape::Kind;

use crate::error::RequestError;
use crate::routes::{Body, Site};
use crate::server::ConnectionControl;
use crate::stats::Route;

/// Most receiver names kept at once.
pub const MAX_RECEIVERS: usize = 64;
/// Most requests kept per receiver (the oldest go first).
pub const MAX_RECORDED_PER_RECEIVER: usize = 200;
/// Largest delivery body accepted.
pub const MAX_HOOK_BODY_BYTES: usize = 1024 * 1024;
/// Largest body kept in the log; longer ones are kept cut, as text.
pub const MAX_RECORDED_BODY_BYTES: usize = 64 * 1024;
/// Longest receiver name.
const MAX_NAME_CHARS: usize = 64;
/// Most failures one script may ask for.
const MAX_FAIL_FIRST: u32 = 1000;
/// Longest `retry_after` a script may ask for.
const MAX_RETRY_AFTER_SECONDS: u64 = 3600;

/// How the next deliveries to a receiver fail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// This many deliveries from now fail.
    pub fail_first: u32,
    /// With this status (400 to 599)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// ...and this `Retry-After` (seconds)...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// ...or by never answering (until the client gives up).
    #[serde(default)]
    pub hang: bool,
}

impl Script {
    fn check(&self) -> Result<(), String> {
        if self.fail_first == 0 || self.fail_first > MAX_FAIL_FIRST {
            return Err(format!("`fail_first` must be 1 to {MAX_FAIL_FIRST}"));
        }
        match (self.status, self.hang) {
            (Some(_), true) => return Err("give `status` or `hang`, not both".into()),
            (None, false) => return Err("give `status` (400 to 599) or `hang: true`".into()),
            (Some(status), false) if !(400..=599).contains(&status) => {
                return Err(format!("`status` {status} must be 400 to 599"));
            }
            _ => {}
        }
        match self.retry_after {
            Some(_) if self.hang => Err("`retry_after` goes with `status`, not `hang`".into()),
            Some(seconds) if seconds > MAX_RETRY_AFTER_SECONDS => Err(format!(
                "`retry_after` must be at most {MAX_RETRY_AFTER_SECONDS} seconds"
            )),
            _ => Ok(()),
        }
    }
}

/// One recorded delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookRequest {
    /// 1 for the receiver's first request since it was reset.
    pub n: u64,
    /// When it arrived (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// The same, in milliseconds since the Unix epoch.
    pub at_unix_ms: i64,
    pub kind: Kind,
    pub method: String,
    /// Path and query as received.
    pub path: String,
    /// Lower-case header names to their values, in order.
    pub headers: BTreeMap<String, Vec<String>>,
    /// The body: its JSON when it parses, else its text (lossy UTF-8).
    pub body: Value,
    /// The body was longer than the log keeps and is cut (as text).
    pub body_truncated: bool,
    /// Why the shape check refused it; None when the shape is right.
    pub problem: Option<String>,
    /// The status answered; None when the receiver did not answer (a hang).
    pub status: Option<u16>,
    /// The answer came from the script, not from the shape check.
    pub scripted: bool,
}

/// What `GET /__hooks/{name}/received` answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookLog {
    pub name: String,
    pub received: Vec<HookRequest>,
    /// Requests no longer kept (past [`MAX_RECORDED_PER_RECEIVER`]).
    pub dropped: u64,
    /// The script in force and how many failures it has left.
    pub script: Option<Script>,
    pub failures_left: u32,
}

#[derive(Default)]
struct Receiver {
    requests: u64,
    received: VecDeque<HookRequest>,
    dropped: u64,
    script: Option<Script>,
    failures_left: u32,
}

/// Every receiver's log and script.
#[derive(Default)]
pub(crate) struct Hooks {
    receivers: Mutex<BTreeMap<String, Receiver>>,
}

/// What a scripted failure does.
enum Failure {
    Status { status: u16, retry_after: Option<u64> },
    Hang,
}

impl Hooks {
    pub(crate) fn reset(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Receiver>> {
        // A panic while holding the lock leaves plain data; keep serving.
        self.receivers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn receiver<'a>(
        receivers: &'a mut BTreeMap<String, Receiver>,
        name: &str,
    ) -> Result<&'a mut Receiver, RequestError> {
        if !receivers.contains_key(name) && receivers.len() >= MAX_RECEIVERS {
            return Err(RequestError::InvalidBody {
                detail: format!("the mock keeps at most {MAX_RECEIVERS} receivers; DELETE /__hooks to forget them"),
            });
        }
        Ok(receivers.entry(name.to_owned()).or_default())
    }
}

/// A delivery path: `{kind}/{name}` or `telegram/{name}/bot{token}/sendMessage`.
struct Delivery<'a> {
    kind: Kind,
    name: &'a str,
    /// The bot token of a Telegram path.
    token: Option<&'a str>,
}

fn check_name(name: &str) -> Result<(), RequestError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RequestError::InvalidBody {
            detail: format!("receiver name {name:?} must be 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.'"),
        })
    }
}

/// Parses the part of a path after `/hooks/`; None when it is no delivery.
fn delivery(rest: &str) -> Option<Delivery<'_>> {
    let mut parts = rest.splitn(3, '/');
    let kind = Kind::of(parts.next()?)?;
    let name = parts.next().filter(|name| !name.is_empty())?;
    let tail = parts.next();
    match (kind, tail) {
        (Kind::Telegram, Some(tail)) => {
            let token = tail.strip_prefix("bot")?.strip_suffix("/sendMessage")?;
            Some(Delivery {
                kind,
                name,
                token: Some(token),
            })
        }
        (Kind::Telegram, None) | (_, Some(_)) => None,
        (_, None) => Some(Delivery {
            kind,
            name,
            token: None,
        }),
    }
}

fn now() -> (String, i64) {
    let at = time::OffsetDateTime::now_utc();
    let millis = (at.unix_timestamp_nanos() / 1_000_000) as i64;
    let text = at
        .replace_nanosecond(at.millisecond() as u32 * 1_000_000)
        .unwrap_or(at)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    (text, millis)
}

async fn read_body(body: Incoming) -> Result<Bytes, RequestError> {
    Limited::new(body, MAX_HOOK_BODY_BYTES)
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .map_err(|error| {
            if error.is::<LengthLimitError>() {
                RequestError::BodyTooLarge {
                    limit: MAX_HOOK_BODY_BYTES as u64,
                }
            } else {
                RequestError::BodyUnreadable {
                    detail: error.to_string(),
                }
            }
        })
}

/// Serves `POST /hooks/...`: records, checks and answers (or hangs).
pub(crate) async fn deliver(
    rest: &str,
    parts: &Parts,
    body: Incoming,
    site: &Site,
    connection: &ConnectionControl,
) -> Result<Response<Body>, RequestError> {
    let not_found = || RequestError::NotFound {
        path: parts.uri.path().to_owned(),
    };
    let Some(target) = delivery(rest) else {
        return Err(not_found());
    };
    check_name(target.name)?;
    if parts.method != Method::POST {
        return Err(RequestError::MethodNotAllowed {
            method: parts.method.to_string(),
            path: "/hooks/{kind}/{name}",
            allowed: "POST",
        });
    }
    let bytes = read_body(body).await?;
    let parsed = serde_json::from_slice::<Value>(&bytes);
    let problem = match &parsed {
        Ok(json) => shape::check(target.kind, json, target.token).err(),
        Err(error) => Some(format!("the body is not JSON: {error}")),
    };
    let (kept, body_truncated) = match parsed {
        Ok(json) if bytes.len() <= MAX_RECORDED_BODY_BYTES => (json, false),
        _ => {
            let cut = &bytes[..bytes.len().min(MAX_RECORDED_BODY_BYTES)];
            (
                Value::String(String::from_utf8_lossy(cut).into_owned()),
                bytes.len() > MAX_RECORDED_BODY_BYTES,
            )
        }
    };
    let mut headers = BTreeMap::<String, Vec<String>>::new();
    for (name, value) in &parts.headers {
        headers
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let (at, at_unix_ms) = now();
    let request_json = kept.clone();

    let (n, failure) = {
        let mut receivers = site.hooks.lock();
        let receiver = Hooks::receiver(&mut receivers, target.name)?;
        receiver.requests += 1;
        let failure = match &receiver.script {
            Some(script) if receiver.failures_left > 0 => {
                receiver.failures_left -= 1;
                Some(match script.status {
                    Some(status) => Failure::Status {
                        status,
                        retry_after: script.retry_after,
                    },
                    None => Failure::Hang,
                })
            }
            _ => None,
        };
        let status = match (&failure, &problem) {
            (Some(Failure::Hang), _) => None,
            (Some(Failure::Status { status, .. }), _) => Some(*status),
            (None, Some(_)) => Some(refusal_status(target.kind, target.token)),
            (None, None) => Some(success_status(target.kind)),
        };
        let record = HookRequest {
            n: receiver.requests,
            at,
            at_unix_ms,
            kind: target.kind,
            method: parts.method.to_string(),
            path: parts.uri.path_and_query().map_or_else(String::new, ToString::to_string),
            headers,
            body: kept,
            body_truncated,
            problem: problem.clone(),
            status,
            scripted: failure.is_some(),
        };
        if receiver.received.len() >= MAX_RECORDED_PER_RECEIVER {
            receiver.received.pop_front();
            receiver.dropped += 1;
        }
        receiver.received.push_back(record);
        (receiver.requests, failure)
    };
    tracing::debug!(kind = target.kind.name(), name = target.name, n, problem = ?problem, "hook request recorded");

    match failure {
        Some(Failure::Hang) => {
            site.stats.record_unanswered(Route::Hooks, &parts.method);
            site.shutdown.cancelled().await;
            connection.close();
            std::future::pending().await
        }
        Some(Failure::Status { status, retry_after }) => Ok(scripted(target.kind, status, retry_after, n)),
        None => Ok(match problem {
            Some(problem) => refusal(target.kind, target.token, &problem),
            None => success(target.kind, &request_json, n, at_unix_ms),
        }),
    }
}

fn success_status(kind: Kind) -> u16 {
    match kind {
        Kind::Webhook | Kind::Slack | Kind::Telegram => 200,
        Kind::Discord => 204,
        Kind::Teams | Kind::PagerDuty => 202,
    }
}

fn refusal_status(kind: Kind, token: Option<&str>) -> u16 {
    match (kind, token) {
        (Kind::Telegram, Some(token)) if !shape::is_bot_token(token) => 401,
        _ => 400,
    }
}

fn response(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if !content_type.is_empty() {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

fn json_answer(status: u16, value: &Value) -> Response<Body> {
    response(status, "application/json", value.to_string())
}

/// What the real service answers an accepted request.
fn success(kind: Kind, request: &Value, n: u64, at_unix_ms: i64) -> Response<Body> {
    match kind {
        Kind::Webhook | Kind::Slack => response(200, "text/plain; charset=utf-8", "ok"),
        Kind::Discord => response(204, "", Bytes::new()),
        Kind::Teams => response(202, "", Bytes::new()),
        Kind::Telegram => json_answer(
            200,
            &json!({
                "ok": true,
                "result": {
                    "message_id": n,
                    "date": at_unix_ms / 1000,
                    "chat": { "id": request["chat_id"] },
                    "text": request["text"],
                },
            }),
        ),
        Kind::PagerDuty => json_answer(
            202,
            &json!({
                "status": "success",
                "message": "Event processed",
                "dedup_key": request.get("dedup_key").cloned().unwrap_or_else(|| json!(format!("mock-{n}"))),
            }),
        ),
    }
}

/// What the real service answers a request of the wrong shape.
fn refusal(kind: Kind, token: Option<&str>, problem: &str) -> Response<Body> {
    let status = refusal_status(kind, token);
    match kind {
        Kind::Webhook => json_answer(status, &json!({ "error": problem })),
        Kind::Slack => response(
            status,
            "text/plain; charset=utf-8",
            format!("invalid_payload: {problem}"),
        ),
        Kind::Discord => json_answer(
            status,
            &json!({ "code": 50035, "message": format!("Invalid Form Body: {problem}") }),
        ),
        Kind::Teams => json_answer(
            status,
            &json!({ "error": { "code": "InvalidRequestContent", "message": problem } }),
        ),
        Kind::Telegram => json_answer(
            status,
            &json!({ "ok": false, "error_code": status, "description": problem }),
        ),
        Kind::PagerDuty => json_answer(
            status,
            &json!({ "status": "invalid event", "message": "Event object is invalid", "errors": [problem] }),
        ),
    }
}

/// A scripted failure, in the kind's error form.
fn scripted(kind: Kind, status: u16, retry_after: Option<u64>, n: u64) -> Response<Body> {
    let description = format!("scripted failure {status} (request {n})");
    let mut answer = match kind {
        Kind::Telegram => {
            let mut body = json!({ "ok": false, "error_code": status, "description": description });
            if let Some(seconds) = retry_after {
                body["parameters"] = json!({ "retry_after": seconds });
            }
            // Telegram asks for the wait in the body only.
            return json_answer(status, &body);
        }
        Kind::PagerDuty if status == 429 => json_answer(
            status,
            &json!({ "status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later." }),
        ),
        Kind::PagerDuty | Kind::Discord | Kind::Teams | Kind::Webhook => {
            json_answer(status, &json!({ "message": description }))
        }
        Kind::Slack => response(status, "text/plain; charset=utf-8", description),
    };
    if let Some(seconds) = retry_after {
        answer.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    answer
}

/// Serves `/__hooks...`.
pub(crate) async fn control(
    rest: &str,
    parts: &Parts,
    body: Incoming,
    site: &Site,
) -> Result<Response<Body>, RequestError> {
    let not_allowed = |path: &'static str, allowed: &'static str| RequestError::MethodNotAllowed {
        method: parts.method.to_string(),
        path,
        allowed,
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let no_content = || response(204, "", Bytes::new());
    match segments.as_slice() {
        [] if parts.method == Method::DELETE => {
            site.hooks.reset();
            Ok(no_content())
        }
        [] => Err(not_allowed("/__hooks", "DELETE")),
        [name] if parts.method == Method::DELETE => {
            check_name(name)?;
            site.hooks.lock().remove(*name);
            Ok(no_content())
        }
        [_] => Err(not_allowed("/__hooks/{name}", "DELETE")),
        [name, "script"] if parts.method == Method::PUT => {
            check_name(name)?;
            let bytes = read_body(body).await?;
            let script: Script = serde_json::from_slice(&bytes).map_err(|error| RequestError::InvalidBody {
                detail: format!("the script must be JSON like {{\"fail_first\": 2, \"status\": 500}}: {error}"),
            })?;
            script.check().map_err(|detail| RequestError::InvalidBody { detail })?;
            let mut receivers = site.hooks.lock();
            let receiver = Hooks::receiver(&mut receivers, name)?;
            receiver.failures_left = script.fail_first;
            receiver.script = Some(script);
            Ok(no_content())
        }
        [_, "script"] => Err(not_allowed("/__hooks/{name}/script", "PUT")),
        [name, "received"] if parts.method == Method::GET || parts.method == Method::HEAD => {
            check_name(name)?;
            let receivers = site.hooks.lock();
            let log = match receivers.get(*name) {
                Some(receiver) => HookLog {
                    name: (*name).to_owned(),
                    received: receiver.received.iter().cloned().collect(),
                    dropped: receiver.dropped,
                    script: receiver.script.clone(),
                    failures_left: receiver.failures_left,
                },
                None => HookLog {
                    name: (*name).to_owned(),
                    received: Vec::new(),
                    dropped: 0,
                    script: None,
                    failures_left: 0,
                },
            };
            Ok(json_answer(200, &serde_json::to_value(log).unwrap_or_default()))
        }
        [_, "received"] => Err(not_allowed("/__hooks/{name}/received", "GET, HEAD")),
        _ => Err(RequestError::NotFound {
            path: parts.uri.path().to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_paths_parse() {
        let slack = delivery("slack/ops").unwrap();
        assert_eq!((slack.kind, slack.name, slack.token), (Kind::Slack, "ops", None));
        let telegram = delivery("telegram/chat/bot123:abc/sendMessage").unwrap();
        assert_eq!(
            (telegram.kind, telegram.name, telegram.token),
            (Kind::Telegram, "chat", Some("123:abc"))
        );
        for bad in [
            "",
            "slack",
            "slack/",
            "nope/ops",
            "slack/ops/extra",
            "telegram/chat",
            "telegram/chat/sendMessage",
            "telegram/chat/bot1:a/getMe",
        ] {
            assert!(delivery(bad).is_none(), "{bad}");
        }
        assert!(check_name("ops-1.a_b").is_ok());
        assert!(check_name("bad name").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn scripts_are_checked() {
        let script = |json: &str| {
            serde_json::from_str::<Script>(json)
                .map_err(|e| e.to_string())
                .and_then(|s| s.check())
        };
        assert!(script(r#"{"fail_first": 2, "status": 500}"#).is_ok());
        assert!(script(r#"{"fail_first": 1, "status": 429, "retry_after": 3}"#).is_ok());
        assert!(script(r#"{"fail_first": 1, "hang": true}"#).is_ok());
        for bad in [
            r#"{"fail_first": 0, "status": 500}"#,
            r#"{"fail_first": 1}"#,
            r#"{"fail_first": 1, "status": 200}"#,
            r#"{"fail_first": 1, "status": 500, "hang": true}"#,
            r#"{"fail_first": 1, "hang": true, "retry_after": 1}"#,
            r#"{"fail_first": 1, "status": 429, "retry_after": 3601}"#,
            r#"{"fail_first": 1, "status": 500, "typo": 1}"#,
        ] {
            assert!(script(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_look_like_the_real_services() {
        assert_eq!(success(Kind::Discord, &json!({}), 1, 0).status(), 204);
        assert_eq!(success(Kind::Teams, &json!({}), 1, 0).status(), 202);
        assert_eq!(success(Kind::PagerDuty, &json!({"dedup_key": "d"}), 1, 0).status(), 202);
        assert_eq!(refusal(Kind::Telegram, Some("bad"), "Unauthorized").status(), 401);
        let limited = scripted(Kind::Slack, 429, Some(3), 1);
        assert_eq!(limited.headers()[RETRY_AFTER], "3");
        let telegram = scripted(Kind::Telegram, 429, Some(3), 1);
        assert!(telegram.headers().get(RETRY_AFTER).is_none());
    }
}
