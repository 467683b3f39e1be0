//! The HTTP check: send the job's request, follow redirects if asked, read
//! the body (keeping only what assertions need), then judge the answer.
//!
//! Four reqwest clients are built once, one per (follow_redirects,
//! insecure_skip_tls_verify), and share nothing but the blocklist; each
//! keeps its own connection pool. A check through a SOCKS5 proxy gets a
//! client of its own per proxy, built on first use. Where the time went
//! (DNS, connect, TLS, first byte, transfer) is marked by `phases`. Redirects are followed by reqwest under a
//! policy that refuses blocklisted IP literals and stops after 10 hops; host
//! names are filtered by the clients' resolver. The redirect policy is
//! shared by every check, so it counts hops in a task-local scoped to the
//! check's future.

use std::cell::Cell;
use std::collections::HashMap;
use std::error::Error as StdError;
use std::io;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use monitor_proto::v1::{
    CertificateInfo, CheckOutcome, CheckResult, HttpCheck, HttpMethod, HttpResult, Socks5Proxy, check_result,
};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::redirect::Policy;
use reqwest::{Method, Url, Version};
use rustls::ClientConfig;
use rustls::client::Resumption;
use tokio::time::Instant;
use url::Host;

use super::assertions::{self, Answer};
use super::blocklist::Blocklist;
use super::phases::{self, MarkConnectLayer, MarkingSessionStore};
use super::resolve::{AddressError, FilteringResolver, check_address};
use super::{CheckSetupError, Failure, Shared, certificate, tls};

/// Idle connections kept per target host (per client). Beyond it a
/// connection is closed after its answer and the next check opens a new
/// one: with many jobs on one host, a limit below the checks in flight
/// there turns into connection churn (at 64, 10 000 jobs on the mock left
/// 20 000 sockets in TIME_WAIT and most checks timing out).
const MAX_IDLE_PER_HOST: usize = 1024;

/// Redirects followed before the check fails (the contract's limit).
const MAX_REDIRECTS: usize = 10;

/// Proxied clients kept; the cache starts over when full (proxies change
/// rarely, so this only bounds growth).
const MAX_PROXIED_CLIENTS: usize = 256;

tokio::task_local! {
    /// Redirects followed so far by the check being polled. A scope
    /// belongs to one future, so checks joined in one task count apart.
    static REDIRECTS: Cell<u32>;
}

/// The HTTP clients, by (follow_redirects, insecure_skip_tls_verify), and
/// those through proxies.
pub(super) struct Clients {
    /// Indexed by [`Clients::index`].
    by_mode: [reqwest::Client; 4],
    /// Through a SOCKS5 proxy, by proxy and mode.
    proxied: Mutex<HashMap<ProxyKey, reqwest::Client>>,
    /// What every client is built from.
    builder: ClientBuilder,
}

/// A proxied client's key: the mode and the proxy with its login.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ProxyKey {
    follow_redirects: bool,
    insecure_skip_tls_verify: bool,
    host: String,
    port: u32,
    username: String,
    password: String,
}

/// The settings shared by every client.
struct ClientBuilder {
    user_agent: String,
    blocklist: Arc<Blocklist>,
    verifying: ClientConfig,
    insecure: ClientConfig,
}

impl ClientBuilder {
    fn build(
        &self,
        follow_redirects: bool,
        insecure_skip_tls_verify: bool,
        proxy: Option<reqwest::Proxy>,
    ) -> Result<reqwest::Client, reqwest::Error> {
        let redirect = if follow_redirects {
            redirect_policy(Arc::clone(&self.blocklist))
        } else {
            Policy::none()
        };
        let tls = if insecure_skip_tls_verify {
            &self.insecure
        } else {
            &self.verifying
        };
        let builder = reqwest::Client::builder()
            .user_agent(&self.user_agent)
            .referer(false)
            .redirect(redirect)
            .dns_resolver(FilteringResolver {
                blocklist: Arc::clone(&self.blocklist),
            })
            .tls_backend_preconfigured(tls.clone())
            .tls_info(true)
            .connector_layer(MarkConnectLayer)
            // Idle keep-alive connections cost buffers; thousands of jobs
            // on one host would otherwise keep one each.
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .tcp_nodelay(true);
        match proxy {
            Some(proxy) => builder.proxy(proxy),
            // The environment's proxy would resolve names itself, past the blocklist.
            None => builder.no_proxy(),
        }
        .build()
    }
}

impl Clients {
    pub(super) fn new(user_agent: &str, blocklist: &Arc<Blocklist>) -> Result<Self, CheckSetupError> {
        let marking = |mut config: ClientConfig| {
            config.resumption = Resumption::store(Arc::new(MarkingSessionStore::new()));
            config
        };
        let builder = ClientBuilder {
            user_agent: user_agent.to_owned(),
            blocklist: Arc::clone(blocklist),
            verifying: marking(tls::verifying_config()?),
            insecure: marking(tls::insecure_config()?),
        };
        Ok(Self {
            by_mode: [
                builder.build(false, false, None)?,
                builder.build(false, true, None)?,
                builder.build(true, false, None)?,
                builder.build(true, true, None)?,
            ],
            proxied: Mutex::new(HashMap::new()),
            builder,
        })
    }

    fn index(follow_redirects: bool, insecure_skip_tls_verify: bool) -> usize {
        usize::from(follow_redirects) * 2 + usize::from(insecure_skip_tls_verify)
    }

    /// The client for the check's mode and proxy.
    fn get(&self, check: &HttpCheck) -> Result<reqwest::Client, Failure> {
        let (follow, insecure) = (check.follow_redirects, check.insecure_skip_tls_verify);
        let Some(proxy) = check.proxy.as_ref().filter(|proxy| !proxy.host.is_empty()) else {
            return Ok(self.by_mode[Self::index(follow, insecure)].clone());
        };
        let key = ProxyKey {
            follow_redirects: follow,
            insecure_skip_tls_verify: insecure,
            host: proxy.host.clone(),
            port: proxy.port,
            username: proxy.username.clone(),
            password: proxy.password.clone(),
        };
        let mut proxied = self.proxied.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = proxied.get(&key) {
            return Ok(client.clone());
        }
        let url = proxy_url(proxy, &self.builder.blocklist)?;
        let client = reqwest::Proxy::all(url)
            .and_then(|proxy| self.builder.build(follow, insecure, Some(proxy)))
            .map_err(|error| Failure::new(CheckOutcome::Proxy, format!("cannot use the SOCKS5 proxy: {error}")))?;
        if proxied.len() >= MAX_PROXIED_CLIENTS {
            proxied.clear();
        }
        proxied.insert(key, client.clone());
        Ok(client)
    }
}

/// `socks5h://user:password@host:port`: target names are resolved by the
/// proxy; the proxy's own name goes through the clients' resolver (and so
/// the blocklist), an address literal is checked here.
fn proxy_url(proxy: &Socks5Proxy, blocklist: &Blocklist) -> Result<Url, Failure> {
    let bare = proxy.host.trim_start_matches('[').trim_end_matches(']');
    let host = match bare.parse::<IpAddr>() {
        Ok(address) => {
            check_address(blocklist, address).map_err(|error| error.to_failure())?;
            match address {
                IpAddr::V4(_) => bare.to_owned(),
                IpAddr::V6(_) => format!("[{bare}]"),
            }
        }
        Err(_) => bare.to_owned(),
    };
    let invalid = || Failure::new(CheckOutcome::Proxy, format!("invalid SOCKS5 proxy {:?}", proxy.host));
    let mut url = Url::parse(&format!("socks5h://{host}:{}", proxy.port)).map_err(|_| invalid())?;
    if !proxy.username.is_empty() {
        url.set_username(&proxy.username).map_err(|()| invalid())?;
        url.set_password(Some(&proxy.password)).map_err(|()| invalid())?;
    }
    Ok(url)
}

/// Follows at most [`MAX_REDIRECTS`] hops, never to a blocklisted IP
/// literal, and counts hops in [`REDIRECTS`].
fn redirect_policy(blocklist: Arc<Blocklist>) -> Policy {
    Policy::custom(move |attempt| {
        // `previous` holds every URL requested so far, so its length is
        // the number of this hop.
        let hop = attempt.previous().len();
        if hop > MAX_REDIRECTS {
            return attempt.error(TooManyRedirects);
        }
        if let Err(error) = check_url_host(&blocklist, attempt.url()) {
            return attempt.error(error);
        }
        let _ = REDIRECTS.try_with(|redirects| redirects.set(u32::try_from(hop).unwrap_or(u32::MAX)));
        attempt.follow()
    })
}

#[derive(Debug, thiserror::Error)]
#[error("too many redirects (more than {MAX_REDIRECTS})")]
struct TooManyRedirects;

/// Refuses a URL whose host is a blocklisted IP literal (those never reach
/// the resolver).
fn check_url_host(blocklist: &Blocklist, url: &Url) -> Result<(), AddressError> {
    match url.host() {
        Some(Host::Ipv4(address)) => check_address(blocklist, address.into()),
        Some(Host::Ipv6(address)) => check_address(blocklist, address.into()),
        Some(Host::Domain(_)) | None => Ok(()),
    }
}

/// What the check saw before it ended, however it ended.
struct Seen {
    /// Status of the final answer; 0 until one arrives.
    status: u16,
    /// Start of the check to the final answer's headers.
    first_byte_time: Option<std::time::Duration>,
    /// The job's URL until an answer names the URL that gave it.
    final_url: String,
    /// Redirects followed to reach the final answer.
    redirects: u32,
    /// The stored prefix of the body (only when a body assertion needs it).
    body: Vec<u8>,
    /// Every body byte received, stored or not.
    body_bytes: u64,
    /// False until the body is read (never for HEAD).
    body_read: bool,
    /// When the final request was sent and its headers arrived.
    request_start: Option<Instant>,
    headers_at: Option<Instant>,
    /// When the body ended.
    body_end: Option<Instant>,
    /// "HTTP/1.1", "HTTP/2".
    version: &'static str,
    /// The final answer's headers (only when a header assertion needs them).
    headers: HeaderMap,
    /// HTTPS: the server's leaf certificate.
    certificate: Option<CertificateInfo>,
}

pub(super) async fn run(shared: &Shared, check: &HttpCheck, started: Instant, deadline: Instant) -> CheckResult {
    let mut seen = Seen {
        status: 0,
        first_byte_time: None,
        // Until an answer names it; never the credentials of the check's URL.
        final_url: monitor_proto::secret::redact_userinfo(&check.url).into_owned(),
        redirects: 0,
        body: Vec::new(),
        body_bytes: 0,
        body_read: false,
        request_start: None,
        headers_at: None,
        body_end: None,
        version: "",
        headers: HeaderMap::new(),
        certificate: None,
    };
    let exchange = REDIRECTS.scope(
        Cell::new(0),
        tokio::time::timeout_at(deadline, exchange(shared, check, started, &mut seen)),
    );
    let (ended, marks) = phases::scope(exchange).await;
    let duration = started.elapsed();
    let (failure, assertions) = match ended {
        Err(_elapsed) => (Some(Failure::timeout(deadline - started)), Vec::new()),
        Ok(Err(failure)) => (Some(failure), Vec::new()),
        Ok(Ok(())) => {
            let answer = Answer {
                status: seen.status,
                body: &seen.body,
                body_bytes: seen.body_bytes,
                body_read: seen.body_read,
                duration,
                headers: &seen.headers,
                certificate: seen.certificate.as_ref(),
                now_unix: chrono::Utc::now().timestamp(),
            };
            let results = assertions::evaluate(check.assertions.as_ref(), &answer, &shared.regexes);
            let failure = super::first_failed(&results);
            (failure, results)
        }
    };
    let (outcome, error) = failure.map_or((CheckOutcome::Ok, String::new()), |failure| {
        (failure.outcome, failure.error)
    });
    let timing = match (seen.request_start, seen.headers_at) {
        (Some(request_start), Some(headers_at)) => Some(marks.timing(request_start, headers_at, seen.body_end)),
        _ => None,
    };
    CheckResult {
        duration: Some(duration.into()),
        outcome: outcome.into(),
        error,
        assertions,
        detail: Some(check_result::Detail::Http(HttpResult {
            status_code: u32::from(seen.status),
            body_bytes: seen.body_bytes,
            first_byte_time: seen.first_byte_time.map(Into::into),
            final_url: seen.final_url,
            redirects: seen.redirects,
            timing,
            http_version: seen.version.to_owned(),
            certificate: seen.certificate,
            connection_reused: seen.headers_at.is_some() && !marks.connected_here(),
        })),
        ..CheckResult::default()
    }
}

/// The request and the body read, recording progress in `seen` (kept when
/// the deadline cuts this short).
async fn exchange(shared: &Shared, check: &HttpCheck, started: Instant, seen: &mut Seen) -> Result<(), Failure> {
    let url = Url::parse(&check.url).map_err(|error| {
        Failure::new(
            CheckOutcome::HttpError,
            format!(
                "invalid URL {:?}: {error}",
                monitor_proto::secret::redact_userinfo(&check.url)
            ),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Failure::new(
            CheckOutcome::HttpError,
            format!("unsupported URL scheme {:?}", url.scheme()),
        ));
    }
    check_url_host(&shared.blocklist, &url).map_err(|error| error.to_failure())?;

    let method = method(check.method());
    let client = shared.clients.get(check)?;
    let mut request = client.request(method.clone(), url.clone());
    for header in &check.headers {
        let name = HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| {
            Failure::new(
                CheckOutcome::HttpError,
                format!("invalid header name {:?}", header.name),
            )
        })?;
        let value = HeaderValue::from_str(&header.value).map_err(|_| {
            Failure::new(
                CheckOutcome::HttpError,
                format!("invalid value for header {:?}", header.name),
            )
        })?;
        request = request.header(name, value);
    }
    if !check.body.is_empty() && method != Method::GET && method != Method::HEAD {
        request = request.body(check.body.clone());
    }

    let proxied = check.proxy.as_ref().is_some_and(|proxy| !proxy.host.is_empty());
    seen.request_start = Some(Instant::now());
    let mut response = request.send().await.map_err(|error| classify(&error, &url, proxied))?;
    let headers_at = Instant::now();
    seen.headers_at = Some(headers_at);
    seen.first_byte_time = Some(headers_at - started);
    seen.version = version_name(response.version());
    if assertions::wants_headers(check.assertions.as_ref()) {
        seen.headers = response.headers().clone();
    }
    seen.certificate = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(reqwest::tls::TlsInfo::peer_certificate)
        .map(certificate::describe);
    seen.status = response.status().as_u16();
    seen.redirects = REDIRECTS.try_with(Cell::get).unwrap_or(0);
    seen.final_url.clear();
    seen.final_url.push_str(response.url().as_str());

    if method == Method::HEAD {
        seen.body_end = Some(headers_at);
        return Ok(());
    }
    seen.body_read = true;
    let keep = if assertions::wants_body(check.assertions.as_ref()) {
        shared.max_body_bytes
    } else {
        0
    };
    while let Some(chunk) = response.chunk().await.map_err(|error| {
        let failure = classify(&error, &url, proxied);
        Failure::new(failure.outcome, format!("reading the body: {}", failure.error))
    })? {
        seen.body_bytes += chunk.len() as u64;
        let room = keep.saturating_sub(seen.body.len());
        seen.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    seen.body_end = Some(Instant::now());
    Ok(())
}

fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
}

fn method(method: HttpMethod) -> Method {
    match method {
        HttpMethod::Unspecified | HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
        HttpMethod::Options => Method::OPTIONS,
    }
}

/// Which outcome a failed request is, from the errors it wraps.
///
/// reqwest says whether it failed while connecting (`is_connect`: DNS, TCP
/// or TLS), following a redirect, or later. The cause chain holds our own
/// errors (from the resolver and the redirect policy), the rustls error of
/// a failed handshake (inside nested `io::Error`s, whose `source` skips
/// the error they wrap, so those are opened with `get_ref`), and the OS
/// error of a failed connect (the innermost `io::Error` kind counts).
fn classify(error: &reqwest::Error, url: &Url, proxied: bool) -> Failure {
    let mut io_kind = None;
    let mut innermost: &(dyn StdError + 'static) = error;
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(address) = current.downcast_ref::<AddressError>() {
            let mut failure = address.to_failure();
            if error.is_redirect() {
                failure.error = format!("redirect refused: {}", failure.error);
            }
            return failure;
        }
        if current.is::<TooManyRedirects>() {
            return Failure::new(CheckOutcome::HttpError, current.to_string());
        }
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return tls_failure(tls, url);
        }
        innermost = current;
        cause = match current.downcast_ref::<io::Error>() {
            Some(io) => {
                io_kind = Some(io.kind());
                // Not `source`: that skips the error the io::Error wraps.
                match io.get_ref() {
                    Some(inner) => Some(inner as &(dyn StdError + 'static)),
                    None => None,
                }
            }
            None => current.source(),
        };
    }

    let target = target(url);
    if error.is_connect() {
        let closed = matches!(
            io_kind,
            Some(
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            )
        );
        return match io_kind {
            Some(io::ErrorKind::ConnectionRefused) => {
                Failure::new(CheckOutcome::Connect, format!("connection refused ({target})"))
            }
            Some(io::ErrorKind::HostUnreachable) => {
                Failure::new(CheckOutcome::Connect, format!("host unreachable ({target})"))
            }
            Some(io::ErrorKind::NetworkUnreachable) => {
                Failure::new(CheckOutcome::Connect, format!("network unreachable ({target})"))
            }
            Some(io::ErrorKind::TimedOut) => {
                Failure::new(CheckOutcome::Connect, format!("connect timed out ({target})"))
            }
            // Through a proxy, a connect that did not fail in the OS failed
            // in the SOCKS5 exchange (a refused login, a target the proxy
            // could not reach).
            None if proxied => Failure::new(CheckOutcome::Proxy, format!("SOCKS5 proxy: {innermost}")),
            // TCP connected, then the server hung up: the handshake failed.
            _ if closed && url.scheme() == "https" => Failure::new(
                CheckOutcome::Tls,
                format!("TLS handshake failed: connection closed by the server ({target})"),
            ),
            _ => Failure::new(
                CheckOutcome::Connect,
                format!("cannot connect to {target}: {innermost}"),
            ),
        };
    }
    let message = match io_kind {
        Some(io::ErrorKind::ConnectionReset) => "connection reset by the server".to_owned(),
        Some(io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe) => {
            "connection closed by the server".to_owned()
        }
        _ => innermost.to_string(),
    };
    Failure::new(CheckOutcome::HttpError, message)
}

fn tls_failure(error: &rustls::Error, url: &Url) -> Failure {
    Failure::new(CheckOutcome::Tls, tls::describe(error, url.host_str().unwrap_or("")))
}

/// `host:port` of a URL, for messages.
fn target(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_become_socks5h_urls_and_literals_are_checked() {
        let blocklist = Blocklist::default();
        let proxy = |host: &str| Socks5Proxy {
            host: host.to_owned(),
            port: 1080,
            username: "probe".to_owned(),
            password: "p@ss word".to_owned(),
        };
        let url = proxy_url(&proxy("proxy.example"), &blocklist).unwrap();
        assert_eq!(url.as_str(), "socks5h://probe:p%40ss%20word@proxy.example:1080");
        let url = proxy_url(&proxy("[2001:db8::1]"), &blocklist).unwrap();
        assert_eq!(url.host_str(), Some("[2001:db8::1]"));
        let refused = proxy_url(&proxy("169.254.169.254"), &blocklist).unwrap_err();
        assert_eq!(refused.outcome, CheckOutcome::Blocked);
    }

    #[test]
    fn versions_are_named() {
        assert_eq!(version_name(Version::HTTP_11), "HTTP/1.1");
        assert_eq!(version_name(Version::HTTP_2), "HTTP/2");
    }

    #[test]
    fn each_mode_has_its_own_client() {
        let indexes = [(false, false), (false, true), (true, false), (true, true)]
            .map(|(follow, insecure)| Clients::index(follow, insecure));
        assert_eq!(indexes, [0, 1, 2, 3]);
    }

    #[test]
    fn literal_hosts_are_checked_in_every_spelling() {
        let blocklist = Blocklist::default();
        for blocked in [
            "http://169.254.169.254/latest/meta-data/",
            "http://169.254.169.254:8080/",
            "http://0xa9fea9fe/",
            "http://[::ffff:169.254.169.254]/",
            "https://[fe80::1]/",
            "http://[fd00:ec2::254]/",
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://127.1/",
            "http://[::1]:8080/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://10.0.0.1/",
        ] {
            let url = Url::parse(blocked).unwrap();
            assert!(check_url_host(&blocklist, &url).is_err(), "{blocked}");
        }
        for allowed in [
            "http://93.184.215.14/",
            "http://example.com/",
            "http://[2606:4700::1111]:8080/",
        ] {
            let url = Url::parse(allowed).unwrap();
            assert_eq!(check_url_host(&blocklist, &url), Ok(()), "{allowed}");
        }
        let loopback = Blocklist::with_defaults([], vec!["127.0.0.0/8".parse().unwrap()]);
        for allowed in ["http://127.0.0.1/", "http://[::ffff:127.0.0.1]/"] {
            let url = Url::parse(allowed).unwrap();
            assert_eq!(check_url_host(&loopback, &url), Ok(()), "{allowed}");
        }
    }

    #[test]
    fn methods_map_and_unspecified_is_get() {
        assert_eq!(method(HttpMethod::Unspecified), Method::GET);
        assert_eq!(method(HttpMethod::Head), Method::HEAD);
        assert_eq!(method(HttpMethod::Options), Method::OPTIONS);
    }

    #[test]
    fn targets_name_host_and_port() {
        assert_eq!(target(&Url::parse("https://example.com/x").unwrap()), "example.com:443");
        assert_eq!(target(&Url::parse("http://[::1]:8080/").unwrap()), "[::1]:8080");
    }
}
