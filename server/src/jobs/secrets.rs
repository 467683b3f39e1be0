//! Write-only secrets of job specs: the values of secret headers (see
//! [`is_secret_header`]) of HTTP and WebSocket checks, of secret metadata
//! of gRPC health checks, the userinfo of HTTP and WebSocket URLs and the
//! password of a SOCKS5 proxy (`http.proxy`, `tcp.proxy`, `socks5.proxy`)
//! are stored and sent to the workers as they are, but every API answer shows
//! [`REDACTED`] instead ([`redact`]). A write that sends the marker back
//! keeps the stored value ([`restore`]), so a client can read a job, change
//! another field and write it back; a new value replaces the stored one.
//! Every kind goes through the same code: [`Secrets`] is what a kind's
//! spec holds of them.
//!
//! Two rules keep the marker from becoming a way to read a secret:
//! - A secret is kept only while the check's destination stays the stored
//!   one (the URL's origin: scheme, host, port; for gRPC host, port and
//!   TLS); otherwise a writer could send the stored credentials to a
//!   server of their own. A new destination needs the values sent again.
//!   So does loosening what protects them on the way (following
//!   redirects, skipping certificate checks).
//! - The marker is kept only in a header that is still secret in the
//!   written spec, so dropping a name from `secret_headers` cannot turn a
//!   stored secret into a visible value.
//! - A proxy password is kept only while the proxy's host and port stay
//!   the stored ones, and an HTTP check's kept headers and userinfo only
//!   while its proxy does (a proxy of the writer's own would see them).
//!
//! The marker itself is never stored: where no stored value exists (a
//! create, a new header) it is refused, naming the field.

use monitor_proto::{
    secret::{REDACTED, SECRET_HEADERS, has_userinfo, is_secret_header, redact_userinfo},
    v1::{HttpHeader, Job, Socks5Proxy, job::Check},
};

use crate::error::{ApiError, FieldViolation};

/// The job as every API answer shows it: secret header (and metadata)
/// values and URL userinfo replaced by [`REDACTED`].
pub fn redact(mut job: Job) -> Job {
    if let Some(proxy) = job.check.as_mut().and_then(proxy_of) {
        redact_proxy(proxy);
    }
    if let Some(parts) = job.check.as_mut().and_then(SecretPartsMut::of) {
        if let Some(url) = parts.url {
            *url = redact_userinfo(url).into_owned();
        }
        for header in parts.headers {
            if is_secret_header(&header.name, parts.marked) {
                header.value = REDACTED.to_owned();
            }
        }
    }
    job
}

/// Puts the stored secrets back where `job` (written by a client) sends
/// the marker. `stored` is the job as stored (update, import), `None` for a
/// new job, which has nothing to keep. Violations name fields relative to
/// the job (`http.headers[2].value`, `http.url`).
pub fn restore(job: &mut Job, stored: Option<&Job>) -> Result<(), ApiError> {
    let proxy_violations = restore_proxy_of(job, stored);
    let Some(written) = job.check.as_ref().and_then(Secrets::of) else {
        return if proxy_violations.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InvalidArgument(proxy_violations))
        };
    };
    // `Some(None)`: a stored job without a check of this kind.
    let stored = stored.map(|job| {
        job.check
            .as_ref()
            .and_then(Secrets::of)
            .filter(|stored| stored.kind == written.kind)
    });
    let (kept, mut violations) = plan(&written, stored.as_ref().map(Option::as_ref));
    violations.splice(0..0, proxy_violations);
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations));
    }
    if let Some(parts) = job.check.as_mut().and_then(SecretPartsMut::of) {
        if let (Some(url), Some(kept_url)) = (parts.url, kept.url) {
            *url = kept_url;
        }
        for (i, value) in kept.values {
            parts.headers[i].value = value;
        }
    }
    Ok(())
}

/// What a check of some kind holds of secrets, read-only.
struct Secrets<'a> {
    /// The kind's field prefix: `http`, `websocket`, `grpc_health`.
    kind: &'static str,
    /// The URL whose userinfo is secret (kinds with a URL).
    url: Option<&'a str>,
    /// Headers or metadata, some of whose values are secret.
    headers: &'a [HttpHeader],
    /// The further names marked secret (`secret_headers`, `secret_metadata`).
    marked: &'a [String],
    /// How the spec names these, for messages.
    naming: &'static Naming,
    /// Where the secrets go; `None` when it cannot be told (an invalid
    /// URL, refused by validation anyway).
    destination: Option<Destination>,
    /// Settings that would let kept secrets reach someone else when turned
    /// on: (field, on).
    loosenings: Vec<(&'static str, bool)>,
    /// The proxy the secrets go through, as (host, port); a new one needs
    /// them sent again.
    proxy: Option<(String, u32)>,
}

/// How a kind's spec names its headers, for messages.
struct Naming {
    /// `headers`, `metadata`.
    list: &'static str,
    /// `secret_headers`, `secret_metadata`.
    marked: &'static str,
    /// One entry: `header`, `metadata`.
    entry: &'static str,
    /// A secret entry: `a secret header`, `secret metadata`.
    secret_entry: &'static str,
}

const HEADERS: Naming = Naming {
    list: "headers",
    marked: "secret_headers",
    entry: "header",
    secret_entry: "a secret header",
};

const METADATA: Naming = Naming {
    list: "metadata",
    marked: "secret_metadata",
    entry: "metadata",
    secret_entry: "secret metadata",
};

/// Where a check's secrets go, as compared between the written and the
/// stored spec and shown in messages.
#[derive(PartialEq)]
struct Destination {
    /// The parts that must not change, with the field each is written in
    /// (the first that differs is named).
    parts: Vec<(String, String)>,
    /// The whole destination for people: an origin, `host:port over TLS`.
    shown: String,
    /// What it is called: `origin`, `target`.
    noun: &'static str,
}

impl<'a> Secrets<'a> {
    fn of(check: &'a Check) -> Option<Self> {
        Some(match check {
            Check::Http(http) => Secrets {
                kind: "http",
                url: Some(&http.url),
                headers: &http.headers,
                marked: &http.secret_headers,
                naming: &HEADERS,
                destination: url_origin("http.url", &http.url),
                loosenings: vec![
                    ("http.follow_redirects", http.follow_redirects),
                    ("http.insecure_skip_tls_verify", http.insecure_skip_tls_verify),
                ],
                proxy: http.proxy.as_ref().map(endpoint_key),
            },
            Check::Websocket(websocket) => Secrets {
                kind: "websocket",
                url: Some(&websocket.url),
                headers: &websocket.headers,
                marked: &websocket.secret_headers,
                naming: &HEADERS,
                destination: url_origin("websocket.url", &websocket.url),
                loosenings: vec![("websocket.insecure_skip_tls_verify", websocket.insecure_skip_tls_verify)],
                proxy: None,
            },
            Check::GrpcHealth(grpc) => {
                let host = grpc.host.trim().to_ascii_lowercase();
                let over = if grpc.tls { "over TLS" } else { "in plaintext" };
                Secrets {
                    kind: "grpc_health",
                    url: None,
                    headers: &grpc.metadata,
                    marked: &grpc.secret_metadata,
                    naming: &METADATA,
                    destination: Some(Destination {
                        shown: format!("{host}:{} {over}", grpc.port),
                        parts: vec![
                            ("grpc_health.host".to_owned(), host),
                            ("grpc_health.port".to_owned(), grpc.port.to_string()),
                            ("grpc_health.tls".to_owned(), grpc.tls.to_string()),
                        ],
                        noun: "target",
                    }),
                    loosenings: vec![("grpc_health.insecure_skip_tls_verify", grpc.insecure_skip_tls_verify)],
                    proxy: None,
                }
            }
            Check::Tcp(_) | Check::Dns(_) | Check::Icmp(_) | Check::Tls(_) | Check::Ssh(_) | Check::Socks5(_) => {
                return None;
            }
        })
    }

    fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.kind)
    }
}

/// The origin of a URL (scheme, host, port), pinned on `field`.
fn url_origin(field: &str, raw: &str) -> Option<Destination> {
    let origin = url::Url::parse(raw).ok()?.origin().ascii_serialization();
    Some(Destination {
        parts: vec![(field.to_owned(), origin.clone())],
        shown: origin,
        noun: "origin",
    })
}

/// The same fields as [`Secrets`], writable, to redact or restore them.
struct SecretPartsMut<'a> {
    url: Option<&'a mut String>,
    headers: &'a mut [HttpHeader],
    marked: &'a [String],
}

impl<'a> SecretPartsMut<'a> {
    fn of(check: &'a mut Check) -> Option<Self> {
        Some(match check {
            Check::Http(http) => SecretPartsMut {
                url: Some(&mut http.url),
                headers: &mut http.headers,
                marked: &http.secret_headers,
            },
            Check::Websocket(websocket) => SecretPartsMut {
                url: Some(&mut websocket.url),
                headers: &mut websocket.headers,
                marked: &websocket.secret_headers,
            },
            Check::GrpcHealth(grpc) => SecretPartsMut {
                url: None,
                headers: &mut grpc.metadata,
                marked: &grpc.secret_metadata,
            },
            Check::Tcp(_) | Check::Dns(_) | Check::Icmp(_) | Check::Tls(_) | Check::Ssh(_) | Check::Socks5(_) => {
                return None;
            }
        })
    }
}

/// The stored values the written spec keeps.
#[derive(Default)]
struct Kept {
    /// The URL with the stored userinfo.
    url: Option<String>,
    /// Header (or metadata) index → the stored value.
    values: Vec<(usize, String)>,
}

/// What to keep for `written`, and why not where it cannot. `stored`:
/// `None` for a new job, `Some(None)` for a stored job without a check of
/// this kind.
fn plan(written: &Secrets<'_>, stored: Option<Option<&Secrets<'_>>>) -> (Kept, Vec<FieldViolation>) {
    let mut v = Vec::new();
    let mut kept = Kept::default();
    let new_job = stored.is_none();
    let stored = stored.flatten();

    if let Some(url) = written.url {
        let field = written.field("url");
        match url_marker(url) {
            UrlMarker::None => {}
            UrlMarker::Userinfo => match stored.and_then(|stored| stored.url).filter(|stored| has_userinfo(stored)) {
                Some(stored_url) => kept.url = Some(with_userinfo_of(url, stored_url)),
                None => v.push(FieldViolation::new(
                    field,
                    format!(
                        "has the redaction marker {REDACTED:?} as its userinfo, {}",
                        nothing_to_keep(new_job, "user name and password")
                    ),
                )),
            },
            UrlMarker::Partial { scheme } => v.push(FieldViolation::new(
                field,
                format!(
                    "has the redaction marker {REDACTED:?} in only part of its userinfo: send the userinfo back as answers show it ({scheme}://{REDACTED}@host/) to keep the stored one, or a new user name and password"
                ),
            )),
        }
    }

    let naming = written.naming;
    for (i, header) in written.headers.iter().enumerate() {
        if header.value != REDACTED {
            continue;
        }
        let field = written.field(&format!("{}[{i}].value", naming.list));
        let name = &header.name;
        if !is_secret_header(name, written.marked) {
            v.push(FieldViolation::new(
                field,
                format!(
                    "is the redaction marker {REDACTED:?}, but {name:?} is not {} here (one of {} or named in {}): send its value",
                    naming.secret_entry,
                    SECRET_HEADERS.join(", "),
                    naming.marked,
                ),
            ));
            continue;
        }
        // The n-th entry of a name keeps the n-th stored one of that name.
        let same_name = |header: &&HttpHeader| header.name.eq_ignore_ascii_case(name);
        let occurrence = written.headers[..i].iter().filter(same_name).count();
        match stored.and_then(|stored| stored.headers.iter().filter(same_name).nth(occurrence)) {
            Some(stored_header) => kept.values.push((i, stored_header.value.clone())),
            None => v.push(FieldViolation::new(
                field,
                format!(
                    "is the redaction marker {REDACTED:?}, {}",
                    nothing_to_keep(new_job, &format!("value of {} {name:?}", naming.entry))
                ),
            )),
        }
    }

    let keeps_any = kept.url.is_some() || !kept.values.is_empty();
    if keeps_any && let Some(stored) = stored {
        if let (Some(now), Some(before)) = (&written.destination, &stored.destination)
            && now != before
        {
            let field = now
                .parts
                .iter()
                .zip(&before.parts)
                .find(|(now, before)| now != before)
                .map_or_else(|| written.kind.to_owned(), |(now, _)| now.0.clone());
            v.push(FieldViolation::new(
                field,
                format!(
                    "moves the job to {} while keeping stored secrets ({REDACTED:?}) that belong to {}: send the secret values again for the new {}",
                    now.shown, before.shown, now.noun
                ),
            ));
        }
        // A proxy sees what goes through it (all of it for http://, with a
        // certificate it can forge when verification is off): kept
        // secrets stay with the stored proxy, or with none.
        if let Some(proxy) = &written.proxy
            && stored.proxy.as_ref() != Some(proxy)
        {
            v.push(FieldViolation::new(
                written.field("proxy"),
                format!(
                    "routes the request through a new proxy while stored secrets are kept ({REDACTED:?}): send the secret values again with this change"
                ),
            ));
        }
        // Following redirects or skipping certificate checks would let the
        // kept secrets reach another host (an open redirect on the same
        // origin, a man in the middle): loosening either needs them anew.
        for ((field, on), (_, was_on)) in written.loosenings.iter().zip(&stored.loosenings) {
            if *on && !*was_on {
                v.push(FieldViolation::new(
                    *field,
                    format!(
                        "is turned on while stored secrets are kept ({REDACTED:?}): send the secret values again with this change"
                    ),
                ));
            }
        }
    }
    (kept, v)
}

/// Puts the stored proxy password back where `proxy` (under `field`)
/// sends the marker, as long as the proxy is the stored one. `stored`:
/// `None` for a new job, `Some(None)` for a stored job without a proxy
/// (of this kind).
fn restore_proxy(
    field: &str,
    proxy: Option<&mut Socks5Proxy>,
    stored: Option<Option<&Socks5Proxy>>,
) -> Vec<FieldViolation> {
    let Some(proxy) = proxy.filter(|proxy| proxy.password == REDACTED) else {
        return Vec::new();
    };
    let new_job = stored.is_none();
    match stored.flatten().filter(|stored| !stored.password.is_empty()) {
        None => vec![FieldViolation::new(
            format!("{field}.password"),
            format!(
                "is the redaction marker {REDACTED:?}, {}",
                nothing_to_keep(new_job, "proxy password")
            ),
        )],
        Some(stored) if !same_proxy(proxy, stored) => vec![FieldViolation::new(
            format!("{field}.host"),
            format!(
                "moves the proxy to {} while keeping the stored password ({REDACTED:?}) of the proxy at {}: send the password again for the new proxy",
                endpoint(proxy),
                endpoint(stored)
            ),
        )],
        Some(stored) => {
            proxy.password = stored.password.clone();
            Vec::new()
        }
    }
}

/// The same proxy endpoint (host names compare case-insensitively).
fn same_proxy(proxy: &Socks5Proxy, stored: &Socks5Proxy) -> bool {
    proxy.host.eq_ignore_ascii_case(&stored.host) && proxy.port == stored.port
}

fn endpoint(proxy: &Socks5Proxy) -> String {
    format!("{}:{}", proxy.host, proxy.port)
}

/// The check's proxy, for the kinds that may have one.
fn proxy_of(check: &mut Check) -> Option<&mut Socks5Proxy> {
    match check {
        Check::Http(http) => http.proxy.as_mut(),
        Check::Tcp(tcp) => tcp.proxy.as_mut(),
        Check::Socks5(socks5) => socks5.proxy.as_mut(),
        _ => None,
    }
}

fn redact_proxy(proxy: &mut Socks5Proxy) {
    if !proxy.password.is_empty() {
        proxy.password = REDACTED.to_owned();
    }
}

/// [`restore_proxy`] for the written job's proxy, against the stored
/// job's proxy of the same kind.
fn restore_proxy_of(job: &mut Job, stored: Option<&Job>) -> Vec<FieldViolation> {
    let Some(check) = job.check.as_mut() else {
        return Vec::new();
    };
    let field = match check {
        Check::Http(_) => "http.proxy",
        Check::Tcp(_) => "tcp.proxy",
        Check::Socks5(_) => "socks5.proxy",
        _ => return Vec::new(),
    };
    let stored = stored.map(|stored| match (&*check, stored.check.as_ref()) {
        (Check::Http(_), Some(Check::Http(stored))) => stored.proxy.as_ref(),
        (Check::Tcp(_), Some(Check::Tcp(stored))) => stored.proxy.as_ref(),
        (Check::Socks5(_), Some(Check::Socks5(stored))) => stored.proxy.as_ref(),
        _ => None,
    });
    restore_proxy(field, proxy_of(check), stored)
}

/// A proxy's endpoint as compared: the host case-insensitively, the port.
fn endpoint_key(proxy: &Socks5Proxy) -> (String, u32) {
    (proxy.host.to_ascii_lowercase(), proxy.port)
}

/// Why a marker cannot be kept: there is no stored `what`.
fn nothing_to_keep(new_job: bool, what: &str) -> String {
    if new_job {
        format!("which stands for a stored value, and a new job has none: send the {what} itself")
    } else {
        format!("but the job has no stored {what} to keep: send the {what} itself")
    }
}

enum UrlMarker {
    /// No marker in the userinfo.
    None,
    /// The userinfo is the marker, as answers show it (`https://***@host/`).
    Userinfo,
    /// The marker is only part of the userinfo (`https://user:***@host/`).
    Partial { scheme: String },
}

fn url_marker(raw: &str) -> UrlMarker {
    let Ok(url) = url::Url::parse(raw) else {
        return UrlMarker::None;
    };
    match (url.username(), url.password()) {
        (REDACTED, None) => UrlMarker::Userinfo,
        (REDACTED, Some(_)) | (_, Some(REDACTED)) => UrlMarker::Partial {
            scheme: url.scheme().to_owned(),
        },
        _ => UrlMarker::None,
    }
}

/// `raw` (whose userinfo is the marker) with the userinfo of `stored`.
/// When nothing else changed this is `stored` as written, so a round trip
/// leaves the stored spec byte for byte unchanged.
fn with_userinfo_of(raw: &str, stored: &str) -> String {
    if raw == redact_userinfo(stored) {
        return stored.to_owned();
    }
    let (Ok(mut url), Ok(stored)) = (url::Url::parse(raw), url::Url::parse(stored)) else {
        return stored.to_owned();
    };
    // Both have a host (they have userinfo), so neither setter can fail.
    let _ = url.set_username(stored.username());
    let _ = url.set_password(stored.password());
    url.into()
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::{GrpcHealthCheck, HttpCheck, WebSocketCheck};

    use super::*;

    fn header(name: &str, value: &str) -> HttpHeader {
        HttpHeader {
            name: name.into(),
            value: value.into(),
        }
    }

    fn job(url: &str, headers: Vec<HttpHeader>, secret_headers: &[&str]) -> Job {
        Job {
            name: "j".into(),
            check: Some(Check::Http(HttpCheck {
                url: url.into(),
                headers,
                secret_headers: secret_headers.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn http(job: &Job) -> &HttpCheck {
        match &job.check {
            Some(Check::Http(http)) => http,
            _ => panic!("not http"),
        }
    }

    fn stored() -> Job {
        job(
            "https://user:pw@Shop.example/health",
            vec![
                header("Authorization", "Bearer t0ken"),
                header("Cookie", "a=1"),
                header("Cookie", "b=2"),
                header("X-Custom", "c"),
                header("Accept", "text/plain"),
            ],
            &["x-custom"],
        )
    }

    fn violations(err: ApiError) -> Vec<FieldViolation> {
        match err {
            ApiError::InvalidArgument(v) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn answers_show_the_marker_for_secrets_only() {
        let shown = redact(stored());
        let shown = http(&shown);
        assert_eq!(shown.url, "https://***@shop.example/health");
        let values: Vec<&str> = shown.headers.iter().map(|h| h.value.as_str()).collect();
        assert_eq!(values, [REDACTED, REDACTED, REDACTED, REDACTED, "text/plain"]);
        // Without userinfo the URL stays as written.
        let plain = redact(job("https://Shop.example", vec![], &[]));
        assert_eq!(http(&plain).url, "https://Shop.example");
    }

    #[test]
    fn a_round_trip_keeps_the_stored_spec_exactly() {
        let mut back = redact(stored());
        restore(&mut back, Some(&stored())).unwrap();
        assert_eq!(back, stored());
    }

    #[test]
    fn new_values_replace_and_markers_keep_by_name_and_occurrence() {
        let mut changed = job(
            "https://***@shop.example/other-path",
            vec![
                header("cookie", REDACTED),
                header("COOKIE", REDACTED),
                header("Authorization", "Bearer new"),
                header("x-custom", REDACTED),
            ],
            &["X-Custom"],
        );
        restore(&mut changed, Some(&stored())).unwrap();
        let changed = http(&changed);
        assert_eq!(changed.url, "https://user:pw@shop.example/other-path");
        let values: Vec<&str> = changed.headers.iter().map(|h| h.value.as_str()).collect();
        assert_eq!(values, ["a=1", "b=2", "Bearer new", "c"]);
    }

    #[test]
    fn a_new_job_cannot_send_the_marker() {
        let mut new = job(
            "https://***@shop.example/",
            vec![header("Accept", "x"), header("Authorization", REDACTED)],
            &[],
        );
        let v = violations(restore(&mut new, None).unwrap_err());
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["http.url", "http.headers[1].value"]);
        assert!(v[1].description.contains("a new job has none"), "{}", v[1].description);
    }

    #[test]
    fn the_marker_is_refused_where_nothing_secret_is_stored() {
        // A header the stored job does not have, and one more Cookie than stored.
        let mut more = job(
            "https://shop.example/",
            vec![
                header("X-Api-Key", REDACTED),
                header("Cookie", REDACTED),
                header("Cookie", REDACTED),
                header("Cookie", REDACTED),
            ],
            &[],
        );
        let v = violations(restore(&mut more, Some(&stored())).unwrap_err());
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["http.headers[0].value", "http.headers[3].value"]);
        assert!(v[0].description.contains("\"X-Api-Key\""), "{}", v[0].description);
    }

    #[test]
    fn unmarking_a_header_does_not_reveal_it() {
        let mut unmarked = job(
            "https://***@shop.example/health",
            vec![header("X-Custom", REDACTED)],
            &[],
        );
        let v = violations(restore(&mut unmarked, Some(&stored())).unwrap_err());
        assert_eq!(v[0].field, "http.headers[0].value");
        assert!(v[0].description.contains("not a secret header"), "{}", v[0].description);
    }

    #[test]
    fn secrets_stay_with_their_origin() {
        for url in ["https://***@evil.example/health", "http://***@shop.example/health"] {
            let mut moved = job(url, vec![], &[]);
            let v = violations(restore(&mut moved, Some(&stored())).unwrap_err());
            assert_eq!(v[0].field, "http.url", "{url}");
            assert!(
                v[0].description.contains("https://shop.example"),
                "{}",
                v[0].description
            );
        }
        let mut header_moved = job("https://evil.example/", vec![header("Authorization", REDACTED)], &[]);
        assert!(restore(&mut header_moved, Some(&stored())).is_err());
        // New values may go anywhere.
        let mut fresh = job("https://u:new@evil.example/", vec![header("Authorization", "x")], &[]);
        restore(&mut fresh, Some(&stored())).unwrap();
    }

    #[test]
    fn loosening_redirects_or_tls_checks_needs_the_secrets_anew() {
        let loosenings: [fn(&mut HttpCheck); 2] = [
            |http| http.follow_redirects = true,
            |http| http.insecure_skip_tls_verify = true,
        ];
        for loosen in loosenings {
            let mut looser = job("https://***@shop.example/health", vec![], &[]);
            if let Some(Check::Http(http)) = looser.check.as_mut() {
                loosen(http);
            }
            let v = violations(restore(&mut looser, Some(&stored())).unwrap_err());
            assert_eq!(v.len(), 1, "{v:?}");
            assert!(v[0].field.starts_with("http."), "{v:?}");
            assert!(v[0].description.contains("send the secret values again"), "{v:?}");
        }
        // With new values the same change is fine.
        let mut fresh = job("https://u:new@shop.example/health", vec![], &[]);
        if let Some(Check::Http(http)) = fresh.check.as_mut() {
            http.follow_redirects = true;
        }
        restore(&mut fresh, Some(&stored())).unwrap();
    }

    #[test]
    fn a_partly_redacted_userinfo_is_refused() {
        for url in ["https://user:***@shop.example/", "https://***:pw@shop.example/"] {
            let mut partial = job(url, vec![], &[]);
            let v = violations(restore(&mut partial, Some(&stored())).unwrap_err());
            assert_eq!(v[0].field, "http.url", "{url}");
        }
    }

    fn websocket_job(url: &str, headers: Vec<HttpHeader>, secret_headers: &[&str]) -> Job {
        Job {
            name: "j".into(),
            check: Some(Check::Websocket(WebSocketCheck {
                url: url.into(),
                headers,
                secret_headers: secret_headers.iter().map(|s| s.to_string()).collect(),
                send: "ping".into(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn websocket(job: &Job) -> &WebSocketCheck {
        match &job.check {
            Some(Check::Websocket(websocket)) => websocket,
            _ => panic!("not websocket"),
        }
    }

    fn stored_websocket() -> Job {
        websocket_job(
            "wss://user:pw@Chat.example/live",
            vec![
                header("Authorization", "Bearer t0ken"),
                header("X-Session", "s"),
                header("Origin", "o"),
            ],
            &["x-session"],
        )
    }

    #[test]
    fn websocket_userinfo_and_secret_headers_are_write_only() {
        let shown = redact(stored_websocket());
        let check = websocket(&shown);
        assert_eq!(check.url, "wss://***@chat.example/live");
        let values: Vec<&str> = check.headers.iter().map(|h| h.value.as_str()).collect();
        assert_eq!(values, [REDACTED, REDACTED, "o"]);
        assert_eq!(check.send, "ping");

        let mut back = shown.clone();
        restore(&mut back, Some(&stored_websocket())).unwrap();
        assert_eq!(back, stored_websocket());

        let v = violations(restore(&mut shown.clone(), None).unwrap_err());
        let fields: Vec<&str> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "websocket.url",
                "websocket.headers[0].value",
                "websocket.headers[1].value"
            ]
        );
    }

    #[test]
    fn websocket_secrets_stay_with_their_origin_and_certificate_checks() {
        let mut moved = websocket_job("wss://***@evil.example/live", vec![], &[]);
        let v = violations(restore(&mut moved, Some(&stored_websocket())).unwrap_err());
        assert_eq!(v[0].field, "websocket.url");
        assert!(
            v[0].description.contains("wss://evil.example") && v[0].description.contains("wss://chat.example"),
            "{}",
            v[0].description
        );
        let mut looser = websocket_job("wss://***@chat.example/live", vec![], &[]);
        if let Some(Check::Websocket(websocket)) = looser.check.as_mut() {
            websocket.insecure_skip_tls_verify = true;
        }
        let v = violations(restore(&mut looser, Some(&stored_websocket())).unwrap_err());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].field, "websocket.insecure_skip_tls_verify");
        let mut partial = websocket_job("wss://user:***@chat.example/live", vec![], &[]);
        let v = violations(restore(&mut partial, Some(&stored_websocket())).unwrap_err());
        assert!(v[0].description.contains("(wss://***@host/)"), "{}", v[0].description);
    }

    fn grpc_job(host: &str, tls: bool, metadata: Vec<HttpHeader>, secret_metadata: &[&str]) -> Job {
        Job {
            name: "j".into(),
            check: Some(Check::GrpcHealth(GrpcHealthCheck {
                host: host.into(),
                port: 443,
                tls,
                metadata,
                secret_metadata: secret_metadata.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })),
            ..Default::default()
        }
    }

    fn grpc(job: &Job) -> &GrpcHealthCheck {
        match &job.check {
            Some(Check::GrpcHealth(grpc)) => grpc,
            _ => panic!("not grpc_health"),
        }
    }

    fn stored_grpc() -> Job {
        grpc_job(
            "Grpc.shop.example",
            true,
            vec![
                header("authorization", "Bearer t0ken"),
                header("x-api-key", "k"),
                header("cookie", "c=1"),
                header("x-session", "s"),
                header("x-tenant", "shop"),
            ],
            &["X-Session"],
        )
    }

    #[test]
    fn grpc_metadata_of_secret_names_is_write_only() {
        let shown = redact(stored_grpc());
        let values: Vec<&str> = grpc(&shown).metadata.iter().map(|h| h.value.as_str()).collect();
        assert_eq!(values, [REDACTED, REDACTED, REDACTED, REDACTED, "shop"]);
        assert_eq!(grpc(&shown).host, "Grpc.shop.example");

        let mut back = shown.clone();
        restore(&mut back, Some(&stored_grpc())).unwrap();
        assert_eq!(back, stored_grpc());

        // A new value replaces; the host's case does not move the target.
        let mut changed = grpc_job(
            "grpc.shop.example",
            true,
            vec![header("Authorization", "Bearer new"), header("X-Api-Key", REDACTED)],
            &[],
        );
        restore(&mut changed, Some(&stored_grpc())).unwrap();
        let values: Vec<&str> = grpc(&changed).metadata.iter().map(|h| h.value.as_str()).collect();
        assert_eq!(values, ["Bearer new", "k"]);
    }

    #[test]
    fn grpc_markers_need_a_stored_secret_of_that_name() {
        let mut new = grpc_job("grpc.shop.example", true, vec![header("authorization", REDACTED)], &[]);
        let v = violations(restore(&mut new, None).unwrap_err());
        assert_eq!(v[0].field, "grpc_health.metadata[0].value");
        assert!(v[0].description.contains("a new job has none"), "{}", v[0].description);
        assert!(
            v[0].description.contains("value of metadata \"authorization\""),
            "{}",
            v[0].description
        );

        let mut unmarked = grpc_job("grpc.shop.example", true, vec![header("x-session", REDACTED)], &[]);
        let v = violations(restore(&mut unmarked, Some(&stored_grpc())).unwrap_err());
        assert_eq!(v[0].field, "grpc_health.metadata[0].value");
        assert!(
            v[0].description.contains("is not secret metadata here") && v[0].description.contains("secret_metadata"),
            "{}",
            v[0].description
        );

        // The stored job was an HTTP check: nothing of gRPC to keep.
        let mut other_kind = grpc_job("shop.example", true, vec![header("authorization", REDACTED)], &[]);
        let http_job = job("https://shop.example/", vec![header("Authorization", "Bearer t")], &[]);
        let v = violations(restore(&mut other_kind, Some(&http_job)).unwrap_err());
        assert!(
            v[0].description.contains("no stored value of metadata"),
            "{}",
            v[0].description
        );
    }

    #[test]
    fn grpc_secrets_stay_with_their_target_and_its_tls() {
        let kept = vec![header("authorization", REDACTED)];
        let mut moved = grpc_job("evil.example", true, kept.clone(), &[]);
        let v = violations(restore(&mut moved, Some(&stored_grpc())).unwrap_err());
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].field, "grpc_health.host");
        assert_eq!(
            v[0].description,
            "moves the job to evil.example:443 over TLS while keeping stored secrets (\"***\") that belong to grpc.shop.example:443 over TLS: send the secret values again for the new target"
        );
        let mut plaintext = grpc_job("grpc.shop.example", false, kept.clone(), &[]);
        let v = violations(restore(&mut plaintext, Some(&stored_grpc())).unwrap_err());
        assert_eq!(v[0].field, "grpc_health.tls");
        assert!(v[0].description.contains("in plaintext"), "{}", v[0].description);
        let mut looser = grpc_job("grpc.shop.example", true, kept, &[]);
        if let Some(Check::GrpcHealth(grpc)) = looser.check.as_mut() {
            grpc.insecure_skip_tls_verify = true;
        }
        let v = violations(restore(&mut looser, Some(&stored_grpc())).unwrap_err());
        assert_eq!(v[0].field, "grpc_health.insecure_skip_tls_verify");
        // New values may go anywhere.
        let mut fresh = grpc_job("evil.example", false, vec![header("authorization", "x")], &[]);
        restore(&mut fresh, Some(&stored_grpc())).unwrap();
    }

    #[test]
    fn tcp_checks_have_nothing_to_restore() {
        let mut tcp = Job {
            check: Some(Check::Tcp(Default::default())),
            ..Default::default()
        };
        restore(&mut tcp, None).unwrap();
        assert_eq!(redact(tcp.clone()), tcp);
    }

    #[test]
    fn tcp_checks_without_a_proxy_have_nothing_to_restore() {
        let mut tcp = Job {
            check: Some(Check::Tcp(Default::default())),
            ..Default::default()
        };
        restore(&mut tcp, None).unwrap();
        assert_eq!(redact(tcp.clone()), tcp);
    }

    fn proxy(host: &str, port: u32, password: &str) -> Socks5Proxy {
        Socks5Proxy {
            host: host.into(),
            port,
            username: "probe".into(),
            password: password.into(),
        }
    }

    /// A job of each kind that has a proxy, going through `proxy`.
    fn proxied(proxy: Socks5Proxy) -> [Job; 3] {
        let job = |check| Job {
            name: "j".into(),
            check: Some(check),
            ..Default::default()
        };
        [
            job(Check::Http(HttpCheck {
                url: "https://shop.example/".into(),
                proxy: Some(proxy.clone()),
                ..Default::default()
            })),
            job(Check::Tcp(monitor_proto::v1::TcpCheck {
                host: "db.example".into(),
                port: 5432,
                proxy: Some(proxy.clone()),
                ..Default::default()
            })),
            job(Check::Socks5(monitor_proto::v1::Socks5Check {
                proxy: Some(proxy),
                target_host: "example.com".into(),
                target_port: 443,
            })),
        ]
    }

    fn proxy_of(job: &Job) -> &Socks5Proxy {
        match &job.check {
            Some(Check::Http(http)) => http.proxy.as_ref(),
            Some(Check::Tcp(tcp)) => tcp.proxy.as_ref(),
            Some(Check::Socks5(socks5)) => socks5.proxy.as_ref(),
            _ => None,
        }
        .expect("a proxy")
    }

    fn kind_field(job: &Job) -> &'static str {
        match &job.check {
            Some(Check::Http(_)) => "http.proxy",
            Some(Check::Tcp(_)) => "tcp.proxy",
            _ => "socks5.proxy",
        }
    }

    #[test]
    fn proxy_passwords_are_shown_as_the_marker_and_kept_by_it() {
        for stored in proxied(proxy("proxy.example", 1080, "s0cks")) {
            let shown = redact(stored.clone());
            assert_eq!(proxy_of(&shown).password, REDACTED, "{}", kind_field(&stored));
            assert_eq!(proxy_of(&shown).username, "probe");
            assert_eq!(proxy_of(&shown).host, "proxy.example");
            let mut back = shown;
            restore(&mut back, Some(&stored)).unwrap();
            assert_eq!(back, stored);
        }
        // No password: nothing to hide.
        for plain in proxied(proxy("proxy.example", 1080, "")) {
            assert_eq!(redact(plain.clone()), plain);
        }
        // A new password replaces the stored one.
        let [stored, ..] = proxied(proxy("proxy.example", 1080, "s0cks"));
        let [mut fresh, ..] = proxied(proxy("PROXY.example", 1080, "new"));
        restore(&mut fresh, Some(&stored)).unwrap();
        assert_eq!(proxy_of(&fresh).password, "new");
    }

    #[test]
    fn a_proxy_password_stays_with_its_proxy() {
        let stored = proxied(proxy("proxy.example", 1080, "s0cks"));
        for (host, port) in [("evil.example", 1080), ("proxy.example", 1081)] {
            let moved = proxied(proxy(host, port, REDACTED));
            for (mut moved, stored) in moved.into_iter().zip(&stored) {
                let field = kind_field(stored);
                let v = violations(restore(&mut moved, Some(stored)).unwrap_err());
                assert_eq!(v.len(), 1, "{v:?}");
                assert_eq!(v[0].field, format!("{field}.host"));
                assert!(
                    v[0].description
                        .contains(&format!("to {host}:{port} while keeping the stored password")),
                    "{}",
                    v[0].description
                );
                assert!(v[0].description.contains("proxy.example:1080"), "{}", v[0].description);
            }
        }
        // The host's case is not a move.
        for (mut same, stored) in proxied(proxy("Proxy.Example", 1080, REDACTED)).into_iter().zip(&stored) {
            restore(&mut same, Some(stored)).unwrap();
            assert_eq!(proxy_of(&same).password, "s0cks");
        }
    }

    #[test]
    fn the_proxy_marker_needs_a_stored_password() {
        for mut new in proxied(proxy("proxy.example", 1080, REDACTED)) {
            let field = kind_field(&new);
            let v = violations(restore(&mut new, None).unwrap_err());
            assert_eq!(v[0].field, format!("{field}.password"));
            assert!(v[0].description.contains("a new job has none"), "{}", v[0].description);
        }
        let stored = proxied(proxy("proxy.example", 1080, ""));
        for (mut marked, stored) in proxied(proxy("proxy.example", 1080, REDACTED)).into_iter().zip(&stored) {
            let v = violations(restore(&mut marked, Some(stored)).unwrap_err());
            assert!(
                v[0].description.contains("no stored proxy password"),
                "{}",
                v[0].description
            );
        }
    }

    #[test]
    fn kept_http_secrets_stay_off_a_new_proxy() {
        let with_proxy = |proxy: Option<Socks5Proxy>| {
            let mut job = stored();
            if let Some(Check::Http(http)) = job.check.as_mut() {
                http.proxy = proxy;
            }
            job
        };
        // Adding a proxy, or pointing it elsewhere, while keeping secrets.
        let original = with_proxy(Some(proxy("proxy.example", 1080, "")));
        for (stored, moved) in [
            (stored(), Some(proxy("evil.example", 1080, ""))),
            (original.clone(), Some(proxy("evil.example", 1080, ""))),
        ] {
            // The stored secrets as answers show them, the proxy changed.
            let mut back = redact(with_proxy(moved));
            let v = violations(restore(&mut back, Some(&stored)).unwrap_err());
            assert_eq!(v.len(), 1, "{v:?}");
            assert_eq!(v[0].field, "http.proxy");
            assert!(v[0].description.contains("send the secret values again"), "{v:?}");
        }
        // Keeping the stored proxy, or dropping it, is fine.
        let mut same = redact(original.clone());
        restore(&mut same, Some(&original)).unwrap();
        assert_eq!(same, original);
        let mut dropped = redact(with_proxy(None));
        restore(&mut dropped, Some(&original)).unwrap();
    }
}
