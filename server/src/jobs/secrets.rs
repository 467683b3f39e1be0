//! Write-only secrets of job specs: the values of an HTTP check's secret
//! headers (see [`is_secret_header`]) and its URL's userinfo, and the
//! password of a SOCKS5 proxy (`http.proxy`, `tcp.proxy`, `socks5.proxy`),
//! are stored and sent to the workers as they are, but every API answer
//! shows [`REDACTED`] instead ([`redact`]). A write that sends the marker
//! back keeps the stored value ([`restore`]), so a client can read a job,
//! change another field and write it back; a new value replaces the stored
//! one.
//!
//! These rules keep the marker from becoming a way to read a secret:
//! - A secret is kept only while the URL's origin (scheme, host, port) stays
//!   the stored one; otherwise a writer could send the stored credentials to
//!   a server of their own. A new origin needs the values sent again.
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
    v1::{HttpCheck, Job, Socks5Proxy, job::Check},
};

use crate::error::{ApiError, FieldViolation};

/// The job as every API answer shows it: secret header values and the
/// URL's userinfo replaced by [`REDACTED`].
pub fn redact(mut job: Job) -> Job {
    match &mut job.check {
        Some(Check::Http(http)) => redact_http(http),
        Some(Check::Tcp(tcp)) => redact_proxy(tcp.proxy.as_mut()),
        Some(Check::Socks5(socks5)) => redact_proxy(socks5.proxy.as_mut()),
        _ => {}
    }
    job
}

fn redact_proxy(proxy: Option<&mut Socks5Proxy>) {
    if let Some(proxy) = proxy
        && !proxy.password.is_empty()
    {
        proxy.password = REDACTED.to_owned();
    }
}

fn redact_http(http: &mut HttpCheck) {
    redact_proxy(http.proxy.as_mut());
    http.url = redact_userinfo(&http.url).into_owned();
    let HttpCheck {
        headers,
        secret_headers,
        ..
    } = http;
    for header in headers {
        if is_secret_header(&header.name, secret_headers) {
            header.value = REDACTED.to_owned();
        }
    }
}

/// Puts the stored secrets back where `job` (written by a client) sends
/// the marker. `stored` is the job as stored (update, import), `None` for a
/// new job, which has nothing to keep. Violations name fields relative to
/// the job (`http.headers[2].value`, `http.url`).
pub fn restore(job: &mut Job, stored: Option<&Job>) -> Result<(), ApiError> {
    let stored_check = stored.map(|job| job.check.as_ref());
    let violations = match &mut job.check {
        Some(Check::Http(http)) => {
            let stored = stored_check.map(|check| match check {
                Some(Check::Http(stored)) => Some(stored),
                _ => None,
            });
            restore_http(http, stored)
        }
        Some(Check::Tcp(tcp)) => {
            let stored = stored_check.map(|check| match check {
                Some(Check::Tcp(stored)) => stored.proxy.as_ref(),
                _ => None,
            });
            restore_proxy("tcp.proxy", tcp.proxy.as_mut(), stored)
        }
        Some(Check::Socks5(socks5)) => {
            let stored = stored_check.map(|check| match check {
                Some(Check::Socks5(stored)) => stored.proxy.as_ref(),
                _ => None,
            });
            restore_proxy("socks5.proxy", socks5.proxy.as_mut(), stored)
        }
        _ => Vec::new(),
    };
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(violations))
    }
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

/// `stored`: `None` for a new job, `Some(None)` for a stored job without
/// an HTTP check.
fn restore_http(http: &mut HttpCheck, stored: Option<Option<&HttpCheck>>) -> Vec<FieldViolation> {
    let new_job = stored.is_none();
    let mut v = restore_proxy(
        "http.proxy",
        http.proxy.as_mut(),
        stored.map(|stored| stored.and_then(|stored| stored.proxy.as_ref())),
    );
    let stored = stored.flatten();
    let mut kept = false;

    match url_marker(&http.url) {
        UrlMarker::None => {}
        UrlMarker::Userinfo => match stored.filter(|stored| has_userinfo(&stored.url)) {
            Some(stored) => {
                http.url = with_userinfo_of(&http.url, &stored.url);
                kept = true;
            }
            None => v.push(FieldViolation::new(
                "http.url",
                format!(
                    "has the redaction marker {REDACTED:?} as its userinfo, {}",
                    nothing_to_keep(new_job, "user name and password")
                ),
            )),
        },
        UrlMarker::Partial => v.push(FieldViolation::new(
            "http.url",
            format!(
                "has the redaction marker {REDACTED:?} in only part of its userinfo: send the userinfo back as answers show it (https://{REDACTED}@host/) to keep the stored one, or a new user name and password"
            ),
        )),
    }

    for i in 0..http.headers.len() {
        if http.headers[i].value != REDACTED {
            continue;
        }
        let field = format!("http.headers[{i}].value");
        let name = http.headers[i].name.clone();
        if !is_secret_header(&name, &http.secret_headers) {
            v.push(FieldViolation::new(
                field,
                format!(
                    "is the redaction marker {REDACTED:?}, but {name:?} is not a secret header here (one of {} or named in secret_headers): send its value",
                    SECRET_HEADERS.join(", ")
                ),
            ));
            continue;
        }
        // The n-th header of a name keeps the n-th stored one of that name.
        let same_name = |header: &&monitor_proto::v1::HttpHeader| header.name.eq_ignore_ascii_case(&name);
        let occurrence = http.headers[..i].iter().filter(same_name).count();
        match stored.and_then(|stored| stored.headers.iter().filter(same_name).nth(occurrence)) {
            Some(kept_header) => {
                http.headers[i].value = kept_header.value.clone();
                kept = true;
            }
            None => v.push(FieldViolation::new(
                field,
                format!(
                    "is the redaction marker {REDACTED:?}, {}",
                    nothing_to_keep(new_job, &format!("value of header {name:?}"))
                ),
            )),
        }
    }

    if kept && let Some(stored) = stored {
        let origin = |raw: &str| url::Url::parse(raw).ok().map(|url| url.origin());
        if let (Some(now), Some(before)) = (origin(&http.url), origin(&stored.url))
            && now != before
        {
            v.push(FieldViolation::new(
                "http.url",
                format!(
                    "moves the job to {} while keeping stored secrets ({REDACTED:?}) that belong to {}: send the secret values again for the new origin",
                    now.ascii_serialization(),
                    before.ascii_serialization()
                ),
            ));
        }
        // A proxy sees what goes through it (all of it for http://, with a
        // certificate it can forge when verification is off): kept
        // secrets stay with the stored proxy, or with none.
        let proxy_changed = match (&http.proxy, &stored.proxy) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(proxy), Some(stored)) => !same_proxy(proxy, stored),
        };
        if proxy_changed {
            v.push(FieldViolation::new(
                "http.proxy",
                format!(
                    "routes the request through a new proxy while stored secrets are kept ({REDACTED:?}): send the secret values again with this change"
                ),
            ));
        }
        // Following redirects or skipping certificate checks would let the
        // kept secrets reach another host (an open redirect on the same
        // origin, a man in the middle): loosening either needs them anew.
        for (field, loosened) in [
            (
                "http.follow_redirects",
                http.follow_redirects && !stored.follow_redirects,
            ),
            (
                "http.insecure_skip_tls_verify",
                http.insecure_skip_tls_verify && !stored.insecure_skip_tls_verify,
            ),
        ] {
            if loosened {
                v.push(FieldViolation::new(
                    field,
                    format!(
                        "is turned on while stored secrets are kept ({REDACTED:?}): send the secret values again with this change"
                    ),
                ));
            }
        }
    }
    v
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
    Partial,
}

fn url_marker(raw: &str) -> UrlMarker {
    let Ok(url) = url::Url::parse(raw) else {
        return UrlMarker::None;
    };
    match (url.username(), url.password()) {
        (REDACTED, None) => UrlMarker::Userinfo,
        (REDACTED, Some(_)) | (_, Some(REDACTED)) => UrlMarker::Partial,
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
    use monitor_proto::v1::HttpHeader;

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
