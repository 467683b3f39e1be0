//! Bearer-token authentication with three roles, the same on native gRPC,
//! grpc-web and REST.
//!
//! Tokens come from `MONITOR_API_TOKENS` (`role:token,role:token`) and/or a
//! file (`role:token` per line, `#` comments). Roles nest: `admin` may do what
//! `write` may, `write` what `read` may. Without tokens the server runs in dev
//! mode: everything is open except the database reset, which stays disabled
//! until an admin token exists. Tokens are compared in constant time and never
//! logged.

use std::{fmt, path::Path, sync::Arc};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::Response,
};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Shortest token accepted, so a guessable token cannot be configured by mistake.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Why `token` is unfit to configure, if it is (never echoes the token).
fn check_token(token: &str) -> Result<(), String> {
    if token.chars().count() < MIN_TOKEN_CHARS {
        return Err(format!("token must be at least {MIN_TOKEN_CHARS} characters"));
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("token must not contain whitespace".into());
    }
    Ok(())
}

/// What a token may do. Ordered: a higher role includes the lower ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Read,
    Write,
    Admin,
}

impl Role {
    fn parse(text: &str) -> Option<Role> {
        match text {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Health, reflection, API description: open to anyone.
    Public,
    Requires(Role),
    /// The database reset while no admin token is configured.
    Disabled,
    /// A probe worker's stream: needs a worker token when any is configured.
    Worker,
}

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Arc<Vec<(Vec<u8>, Role)>>,
    /// Tokens probe workers present; they grant nothing on the API.
    workers: Arc<Vec<Vec<u8>>>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the tokens themselves.
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .field("worker_tokens", &self.workers.len())
            .finish()
    }
}

/// Why a token configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{source_name}: {message}")]
pub struct TokenConfigError {
    /// The variable or file the bad entry came from.
    pub source_name: String,
    pub message: String,
}

impl Tokens {
    /// Parses `role:token` entries separated by commas or newlines; blank
    /// entries and `#` comment lines are skipped. `source_name` names the
    /// variable or file in errors (the token is never echoed).
    pub fn parse(source_name: &str, text: &str) -> Result<Tokens, TokenConfigError> {
        let error = |message: String| TokenConfigError {
            source_name: source_name.to_owned(),
            message,
        };
        let mut entries = Vec::new();
        for (line_no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            for entry in line.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                let at = format!("entry {} on line {}", entries.len() + 1, line_no + 1);
                let Some((role, token)) = entry.split_once(':') else {
                    return Err(error(format!("{at} must be role:token (role is read, write or admin)")));
                };
                let role = Role::parse(role.trim()).ok_or_else(|| {
                    error(format!(
                        "{at} has unknown role {:?}; use read, write or admin",
                        role.trim()
                    ))
                })?;
                let token = token.trim();
                check_token(token).map_err(|problem| error(format!("{at}: {problem}")))?;
                entries.push((token.as_bytes().to_vec(), role));
            }
        }
        Ok(Tokens {
            entries: Arc::new(entries),
            workers: Arc::default(),
        })
    }

    /// Adds probe-worker tokens (comma-separated, each at least 16
    /// characters); `source_name` names the variable in errors.
    pub fn with_worker_tokens(mut self, source_name: &str, text: &str) -> Result<Tokens, TokenConfigError> {
        let mut workers = Vec::new();
        for (i, token) in text.split(',').map(str::trim).filter(|t| !t.is_empty()).enumerate() {
            let error = |message: String| TokenConfigError {
                source_name: source_name.to_owned(),
                message,
            };
            check_token(token).map_err(|problem| error(format!("token {}: {problem}", i + 1)))?;
            workers.push(token.as_bytes().to_vec());
        }
        self.workers = Arc::new(workers);
        Ok(self)
    }

    pub fn has_worker_tokens(&self) -> bool {
        !self.workers.is_empty()
    }

    /// Tokens from the environment value and/or file, merged.
    pub fn load(env_value: Option<&str>, file: Option<&Path>) -> Result<Tokens, TokenConfigError> {
        let mut entries = Vec::new();
        if let Some(value) = env_value {
            entries.extend(Tokens::parse("MONITOR_API_TOKENS", value)?.entries.iter().cloned());
        }
        if let Some(path) = file {
            let name = format!("MONITOR_API_TOKENS_FILE ({})", path.display());
            let text = std::fs::read_to_string(path).map_err(|err| TokenConfigError {
                source_name: name.clone(),
                message: err.to_string(),
            })?;
            entries.extend(Tokens::parse(&name, &text)?.entries.iter().cloned());
        }
        Ok(Tokens {
            entries: Arc::new(entries),
            workers: Arc::default(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn has_admin(&self) -> bool {
        self.entries.iter().any(|(_, role)| *role == Role::Admin)
    }

    /// The role of `presented`, comparing against every token in constant
    /// time (no early exit on the first match, so timing does not tell which
    /// or how many tokens exist).
    pub fn role_of(&self, presented: &[u8]) -> Option<Role> {
        let mut found = None;
        for (token, role) in self.entries.iter() {
            if bool::from(token.as_slice().ct_eq(presented)) {
                found = Some(found.map_or(*role, |r: Role| r.max(*role)));
            }
        }
        found
    }

    /// Decides a request: Ok when allowed, else the error to send.
    pub fn authorize(&self, access: Access, headers: &HeaderMap) -> Result<(), ApiError> {
        let needed = match access {
            Access::Public => return Ok(()),
            Access::Worker => return self.authorize_worker(headers),
            Access::Disabled if !self.has_admin() => {
                return Err(ApiError::PermissionDenied(
                    "database reset is disabled: configure an admin token (MONITOR_API_TOKENS) to enable it".into(),
                ));
            }
            Access::Disabled => Role::Admin,
            Access::Requires(role) => role,
        };
        if self.is_empty() {
            return Ok(());
        }
        if !headers.contains_key(header::AUTHORIZATION) {
            return Err(ApiError::Unauthenticated(
                "missing credentials: send the header 'authorization: Bearer <token>'".into(),
            ));
        }
        let token = bearer(headers)
            .ok_or_else(|| ApiError::Unauthenticated("the authorization header must be 'Bearer <token>'".into()))?;
        match self.role_of(token.as_bytes()) {
            None => Err(ApiError::Unauthenticated("unknown token".into())),
            Some(role) if role >= needed => Ok(()),
            Some(role) => Err(ApiError::PermissionDenied(format!(
                "this needs the {} role; the token has {}",
                needed.as_str(),
                role.as_str()
            ))),
        }
    }
}

impl Tokens {
    fn authorize_worker(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.workers.is_empty() {
            return Ok(());
        }
        let token = bearer(headers).ok_or_else(|| {
            ApiError::Unauthenticated("probe workers must send 'authorization: Bearer <worker token>'".into())
        })?;
        let mut known = false;
        for candidate in self.workers.iter() {
            known |= bool::from(candidate.as_slice().ct_eq(token.as_bytes()));
        }
        if known {
            Ok(())
        } else {
            Err(ApiError::Unauthenticated("unknown worker token".into()))
        }
    }
}

/// The token of an `authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
}

/// What the gRPC method at `path` (`/package.Service/Method`) needs.
pub fn grpc_access(path: &str, tokens: &Tokens) -> Access {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let (service, method) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    match service {
        "monitor.v1.JobService" => match method {
            "GetJob" | "ListJobs" | "GetJobStatus" | "QueryMetrics" | "ListJobSummaries" => {
                Access::Requires(Role::Read)
            }
            _ => Access::Requires(Role::Write),
        },
        "monitor.v1.WorkerService" => match method {
            "Connect" => Access::Worker,
            _ => Access::Requires(Role::Read),
        },
        "monitor.v1.AdminService" => match method {
            "ResetDatabase" => reset_access(tokens),
            _ => Access::Requires(Role::Read),
        },
        // Health and reflection stay open, as load balancers and grpcurl expect.
        _ => Access::Public,
    }
}

fn reset_access(tokens: &Tokens) -> Access {
    if tokens.has_admin() {
        Access::Requires(Role::Admin)
    } else {
        Access::Disabled
    }
}

/// What the REST or legacy route `method path` needs.
pub fn http_access(method: &Method, path: &str, tokens: &Tokens) -> Access {
    if path == "/v1/openapi.json"
        || path == "/healthz"
        || path == "/readyz"
        || path == "/metrics"
        || path == "/ui"
        || path.starts_with("/ui/")
    {
        return Access::Public;
    }
    if path == "/v1/admin/reset" || path == "/db/init" {
        // Other methods get 405 from the router, whoever asks.
        return if *method == Method::POST {
            reset_access(tokens)
        } else {
            Access::Public
        };
    }
    let state_change = path.ends_with("/start") || path.ends_with("/stop");
    if *method == Method::GET && !state_change || *method == Method::HEAD || *method == Method::OPTIONS {
        return Access::Requires(Role::Read);
    }
    Access::Requires(Role::Write)
}

fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// Middleware: checks every request against the tokens before it reaches a
/// service. gRPC (and grpc-web, already translated) gets a gRPC status; REST
/// gets the JSON error.
pub async fn require_token(State(tokens): State<Tokens>, request: Request, next: Next) -> Response {
    let grpc = is_grpc(request.headers());
    let access = if grpc {
        grpc_access(request.uri().path(), &tokens)
    } else {
        http_access(request.method(), request.uri().path(), &tokens)
    };
    match tokens.authorize(access, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(err) => {
            tracing::info!(path = %request.uri().path(), code = ?err.code(), "request refused");
            if grpc {
                crate::error::grpc_response(err)
            } else {
                crate::error::http_response(err)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const READ: &str = "read-token-0123456789";
    const WRITE: &str = "write-token-0123456789";
    const ADMIN: &str = "admin-token-0123456789";

    fn tokens() -> Tokens {
        Tokens::parse(
            "test",
            &format!("read:{READ}, write:{WRITE}\n# comment\nadmin:{ADMIN}\n"),
        )
        .unwrap()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn parses_and_refuses_bad_entries_without_echoing_tokens() {
        assert_eq!(tokens().entries.len(), 3);
        for (text, expected) in [
            ("read", "must be role:token"),
            ("root:0123456789abcdef", "unknown role \"root\""),
            ("read:short", "at least 16"),
            ("read:0123456789 abcdef", "whitespace"),
        ] {
            let err = Tokens::parse("MONITOR_API_TOKENS", text).unwrap_err().to_string();
            assert!(err.starts_with("MONITOR_API_TOKENS: "), "{err}");
            assert!(err.contains(expected), "{err}");
            assert!(!err.contains("0123456789abcdef"), "token echoed: {err}");
        }
        assert!(format!("{:?}", tokens()).contains("count: 3"));
        assert!(!format!("{:?}", tokens()).contains(READ));
    }

    #[test]
    fn roles_nest_and_bad_credentials_are_refused() {
        let tokens = tokens();
        let read = Access::Requires(Role::Read);
        let write = Access::Requires(Role::Write);
        let admin = Access::Requires(Role::Admin);
        assert!(tokens.authorize(read, &bearer(READ)).is_ok());
        assert!(tokens.authorize(read, &bearer(ADMIN)).is_ok());
        assert!(tokens.authorize(write, &bearer(WRITE)).is_ok());
        assert!(matches!(
            tokens.authorize(write, &bearer(READ)),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(matches!(
            tokens.authorize(admin, &bearer(WRITE)),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(matches!(
            tokens.authorize(read, &HeaderMap::new()),
            Err(ApiError::Unauthenticated(_))
        ));
        assert!(matches!(
            tokens.authorize(read, &bearer("nope-nope-nope-nope")),
            Err(ApiError::Unauthenticated(_))
        ));
        let mut basic = HeaderMap::new();
        basic.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(matches!(
            tokens.authorize(read, &basic),
            Err(ApiError::Unauthenticated(_))
        ));
        assert!(tokens.authorize(Access::Public, &HeaderMap::new()).is_ok());
    }

    #[test]
    fn worker_tokens_are_separate_from_api_tokens() {
        let tokens = tokens()
            .with_worker_tokens("MONITOR_WORKER_TOKENS", "worker-token-0123456789")
            .unwrap();
        assert!(
            tokens
                .authorize(Access::Worker, &bearer("worker-token-0123456789"))
                .is_ok()
        );
        assert!(matches!(
            tokens.authorize(Access::Worker, &bearer(ADMIN)),
            Err(ApiError::Unauthenticated(_))
        ));
        assert!(matches!(
            tokens.authorize(Access::Worker, &HeaderMap::new()),
            Err(ApiError::Unauthenticated(_))
        ));
        assert!(
            tokens
                .authorize(Access::Requires(Role::Read), &bearer("worker-token-0123456789"))
                .is_err(),
            "a worker token grants nothing on the API"
        );
        assert!(
            Tokens::default().authorize(Access::Worker, &HeaderMap::new()).is_ok(),
            "open without worker tokens"
        );
        let err = Tokens::default()
            .with_worker_tokens("MONITOR_WORKER_TOKENS", "short")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("MONITOR_WORKER_TOKENS:") && err.contains("16"), "{err}");
    }

    #[test]
    fn dev_mode_is_open_but_reset_stays_disabled() {
        let open = Tokens::default();
        assert!(open.authorize(Access::Requires(Role::Admin), &HeaderMap::new()).is_ok());
        assert_eq!(
            grpc_access("/monitor.v1.AdminService/ResetDatabase", &open),
            Access::Disabled
        );
        assert!(matches!(
            open.authorize(Access::Disabled, &HeaderMap::new()),
            Err(ApiError::PermissionDenied(_))
        ));
        let without_admin = Tokens::parse("t", &format!("write:{WRITE}")).unwrap();
        assert_eq!(http_access(&Method::POST, "/db/init", &without_admin), Access::Disabled);
        assert_eq!(
            http_access(&Method::POST, "/db/init", &tokens()),
            Access::Requires(Role::Admin)
        );
        assert_eq!(http_access(&Method::GET, "/db/init", &tokens()), Access::Public);
    }

    #[test]
    fn routes_map_to_roles() {
        let t = tokens();
        assert_eq!(
            grpc_access("/monitor.v1.JobService/GetJob", &t),
            Access::Requires(Role::Read)
        );
        assert_eq!(
            grpc_access("/monitor.v1.JobService/QueryMetrics", &t),
            Access::Requires(Role::Read)
        );
        assert_eq!(
            http_access(&Method::GET, "/v1/jobs/x/metrics", &t),
            Access::Requires(Role::Read)
        );
        assert_eq!(
            grpc_access("/monitor.v1.JobService/StartJob", &t),
            Access::Requires(Role::Write)
        );
        assert_eq!(
            grpc_access("/monitor.v1.AdminService/GetServerInfo", &t),
            Access::Requires(Role::Read)
        );
        assert_eq!(grpc_access("/grpc.health.v1.Health/Check", &t), Access::Public);
        assert_eq!(grpc_access("/monitor.v1.WorkerService/Connect", &t), Access::Worker);
        assert_eq!(
            grpc_access("/monitor.v1.WorkerService/ListWorkers", &t),
            Access::Requires(Role::Read)
        );
        assert_eq!(http_access(&Method::GET, "/v1/jobs", &t), Access::Requires(Role::Read));
        assert_eq!(
            http_access(&Method::GET, "/job/x/start", &t),
            Access::Requires(Role::Write)
        );
        assert_eq!(
            http_access(&Method::PATCH, "/v1/jobs/x", &t),
            Access::Requires(Role::Write)
        );
        assert_eq!(http_access(&Method::GET, "/v1/openapi.json", &t), Access::Public);
    }
}
