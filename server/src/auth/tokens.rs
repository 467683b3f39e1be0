//! The configured credentials and what a presented one is.
//!
//! API tokens come from `MONITOR_API_TOKENS` (`role:token,role:token`) and/or
//! a file (`role:token` per line, `#` comments); roles nest (`admin` ⊇
//! `write` ⊇ `read`). An entry may name its holder, `role/name:token`
//! (`write/alice:…`): the name is what the API records as the actor
//! (`created_by`, `acknowledged_by`, …). An entry without one is called by
//! its role and position, `write#2` (the second entry), never by anything
//! taken from the token. The name sits before the first `:` because tokens
//! may themselves contain `:`. Worker tokens come from `MONITOR_WORKER_TOKENS`
//! (`ID_PATTERN:token,…`): each names the worker identities it may connect
//! as (`probe-eu-1`, `probe-*`, `*`). Tokens are compared in constant time
//! and never logged or printed.

use std::{fmt, path::Path, sync::Arc};

use axum::http::{HeaderMap, header};
use subtle::ConstantTimeEq;

/// Shortest token accepted, so a guessable token cannot be configured by mistake.
pub const MIN_TOKEN_CHARS: usize = 16;

/// Longest token name accepted.
pub const MAX_NAME_CHARS: usize = 64;

/// The actor recorded for requests while no API token is configured (dev mode).
pub const ANONYMOUS: &str = "anonymous";

/// Longest worker-id pattern accepted (worker ids are at most 128 characters).
const MAX_PATTERN_CHARS: usize = 128;

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

/// Why `name` is unfit as a token name, if it is: 1 to [`MAX_NAME_CHARS`]
/// of letters, digits, '.', '_', '-', '@' (so it reads plainly in logs and
/// can never look like a default `role#n` name).
fn check_name(name: &str) -> Result<(), String> {
    let fits = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if fits {
        Ok(())
    } else {
        Err(format!(
            "token name {name:?} must be 1 to {MAX_NAME_CHARS} characters of letters, digits, '.', '_', '-', '@'"
        ))
    }
}

/// What an API token may do. Ordered: a higher role includes the lower ones.
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

/// Worker identities a worker token may use: a glob over the worker id in
/// which `*` stands for any run of characters (`probe-*`, `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdPattern(String);

impl IdPattern {
    fn parse(text: &str) -> Result<IdPattern, String> {
        if text.is_empty() || text.chars().count() > MAX_PATTERN_CHARS {
            return Err(format!("worker id pattern must be 1 to {MAX_PATTERN_CHARS} characters"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("worker id pattern must not contain whitespace".into());
        }
        Ok(IdPattern(text.to_owned()))
    }

    /// Whether `worker_id` is one of the identities this pattern names.
    pub fn matches(&self, worker_id: &str) -> bool {
        let mut parts = self.0.split('*');
        // split always yields at least one part.
        let first = parts.next().unwrap_or_default();
        let Some(mut rest) = worker_id.strip_prefix(first) else {
            return false;
        };
        let parts: Vec<&str> = parts.collect();
        let Some((last, middle)) = parts.split_last() else {
            return rest.is_empty(); // no `*`: an exact id
        };
        for part in middle {
            match rest.find(part) {
                Some(at) => rest = &rest[at + part.len()..],
                None => return false,
            }
        }
        rest.ends_with(last)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The worker identities a presented credential may connect as; stored in
/// the request's extensions for `WorkerService.Connect`, which refuses a
/// hello under any other identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerGrant {
    /// No worker tokens are configured (dev mode): any identity.
    Any,
    /// The patterns of every configured entry with the presented token.
    Ids(Vec<IdPattern>),
}

impl WorkerGrant {
    pub fn allows(&self, worker_id: &str) -> bool {
        match self {
            WorkerGrant::Any => true,
            WorkerGrant::Ids(patterns) => patterns.iter().any(|p| p.matches(worker_id)),
        }
    }

    /// The allowed patterns, for an error message (tokens are never shown).
    pub fn describe(&self) -> String {
        match self {
            WorkerGrant::Any => "*".into(),
            WorkerGrant::Ids(patterns) => patterns.iter().map(IdPattern::as_str).collect::<Vec<_>>().join(", "),
        }
    }
}

/// What the credentials of a request are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// No `authorization` header.
    Missing,
    /// An `authorization` header that is not `Bearer <token>`.
    Malformed,
    /// A bearer token nobody configured.
    Unknown,
    Api(ApiCaller),
    Worker(WorkerGrant),
}

/// Who presented a valid API token: its role, and its name for the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiCaller {
    pub role: Role,
    /// The entry's name, or `role#position` for an unnamed entry.
    pub name: String,
}

/// Who a request acts as, in the request's extensions for every API call
/// the access middleware lets through: the token's name, or
/// [`ANONYMOUS`] when none is needed (dev mode, public operations).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

impl Actor {
    pub fn anonymous() -> Actor {
        Actor(ANONYMOUS.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One configured API token.
#[derive(Clone)]
struct ApiToken {
    token: Vec<u8>,
    role: Role,
    /// None: called `role#position`.
    name: Option<String>,
}

/// One configured worker token and the identities it may use.
#[derive(Clone)]
struct WorkerToken {
    token: Vec<u8>,
    ids: IdPattern,
}

/// The configured tokens.
#[derive(Clone, Default)]
pub struct Tokens {
    /// API tokens, their roles and names, in configuration order.
    entries: Arc<Vec<ApiToken>>,
    /// Tokens probe workers present; they grant nothing on the API.
    workers: Arc<Vec<WorkerToken>>,
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
    /// Parses `role:token` or `role/name:token` entries separated by commas
    /// or newlines; blank entries and `#` comment lines are skipped. `source_name` names the
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
                let Some((role_and_name, token)) = entry.split_once(':') else {
                    return Err(error(format!(
                        "{at} must be role:token or role/name:token (role is read, write or admin)"
                    )));
                };
                let (role, name) = match role_and_name.split_once('/') {
                    Some((role, name)) => (role, Some(name.trim())),
                    None => (role_and_name, None),
                };
                if let Some(name) = name {
                    check_name(name).map_err(|problem| error(format!("{at}: {problem}")))?;
                }
                let role = Role::parse(role.trim()).ok_or_else(|| {
                    error(format!(
                        "{at} has unknown role {:?}; use read, write or admin",
                        role.trim()
                    ))
                })?;
                let token = token.trim();
                check_token(token).map_err(|problem| error(format!("{at}: {problem}")))?;
                entries.push(ApiToken {
                    token: token.as_bytes().to_vec(),
                    role,
                    name: name.map(str::to_owned),
                });
            }
        }
        Ok(Tokens {
            entries: Arc::new(entries),
            workers: Arc::default(),
        })
    }

    /// Adds probe-worker tokens: `ID_PATTERN:token` entries, comma-separated
    /// (`probe-eu-1:…`, `probe-*:…`, `*:…` for any identity). A token that is
    /// also an API token is refused, so no credential is both. `source_name`
    /// names the variable in errors.
    pub fn with_worker_tokens(mut self, source_name: &str, text: &str) -> Result<Tokens, TokenConfigError> {
        let error = |message: String| TokenConfigError {
            source_name: source_name.to_owned(),
            message,
        };
        let mut workers = Vec::new();
        for (i, entry) in text.split(',').map(str::trim).filter(|t| !t.is_empty()).enumerate() {
            let at = format!("entry {}", i + 1);
            let Some((pattern, token)) = entry.split_once(':') else {
                return Err(error(format!(
                    "{at} must be WORKER_ID_PATTERN:TOKEN, naming the worker ids the token may connect as \
                     (e.g. probe-*:<token>, or *:<token> for any id)"
                )));
            };
            let ids = IdPattern::parse(pattern.trim()).map_err(|problem| error(format!("{at}: {problem}")))?;
            let token = token.trim();
            check_token(token).map_err(|problem| error(format!("{at}: {problem}")))?;
            if self
                .entries
                .iter()
                .any(|api| bool::from(api.token.as_slice().ct_eq(token.as_bytes())))
            {
                return Err(error(format!(
                    "{at}: this token is also an API token; give workers their own tokens"
                )));
            }
            workers.push(WorkerToken {
                token: token.as_bytes().to_vec(),
                ids,
            });
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

    /// No API tokens: the API is open (dev mode), except the database reset.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn has_admin(&self) -> bool {
        self.entries.iter().any(|entry| entry.role == Role::Admin)
    }

    /// The names of the configured API tokens, in order (unnamed entries
    /// as `role#position`), for start-up logs.
    pub fn names(&self) -> Vec<String> {
        (0..self.entries.len()).map(|i| self.name_at(i)).collect()
    }

    fn name_at(&self, index: usize) -> String {
        let entry = &self.entries[index];
        match &entry.name {
            Some(name) => name.clone(),
            None => format!("{}#{}", entry.role.as_str(), index + 1),
        }
    }

    /// The role and name of `presented`, comparing against every token in
    /// constant time (no early exit on the first match, so timing does not
    /// tell which or how many tokens exist). A token listed twice has its
    /// highest role, and the name of the first entry with that role.
    pub fn caller_of(&self, presented: &[u8]) -> Option<ApiCaller> {
        let mut found: Option<(Role, usize)> = None;
        for (index, entry) in self.entries.iter().enumerate() {
            if bool::from(entry.token.as_slice().ct_eq(presented)) {
                found = match found {
                    Some((role, at)) if role >= entry.role => Some((role, at)),
                    _ => Some((entry.role, index)),
                };
            }
        }
        found.map(|(role, index)| ApiCaller {
            role,
            name: self.name_at(index),
        })
    }

    /// The identities a worker token may use, if `presented` is one (every
    /// entry compared, in constant time each).
    fn worker_grant_of(&self, presented: &[u8]) -> Option<WorkerGrant> {
        let mut patterns = Vec::new();
        for entry in self.workers.iter() {
            if bool::from(entry.token.as_slice().ct_eq(presented)) {
                patterns.push(entry.ids.clone());
            }
        }
        (!patterns.is_empty()).then_some(WorkerGrant::Ids(patterns))
    }

    /// What the request's `authorization` header presents.
    pub fn credential(&self, headers: &HeaderMap) -> Credential {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Credential::Missing;
        };
        let Some(token) = bearer(value) else {
            return Credential::Malformed;
        };
        if let Some(caller) = self.caller_of(token.as_bytes()) {
            return Credential::Api(caller);
        }
        match self.worker_grant_of(token.as_bytes()) {
            Some(grant) => Credential::Worker(grant),
            None => Credential::Unknown,
        }
    }
}

/// The token of an `authorization: Bearer` header.
fn bearer(value: &axum::http::HeaderValue) -> Option<&str> {
    let value = value.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)?;
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
pub(crate) mod tests {
    use axum::http::HeaderValue;

    use super::*;

    pub const READ: &str = "read-token-0123456789";
    pub const WRITE: &str = "write-token-0123456789";
    pub const ADMIN: &str = "admin-token-0123456789";
    pub const WORKER: &str = "worker-token-0123456789";

    pub fn tokens() -> Tokens {
        Tokens::parse(
            "test",
            &format!("read:{READ}, write:{WRITE}\n# comment\nadmin:{ADMIN}\n"),
        )
        .unwrap()
        .with_worker_tokens("MONITOR_WORKER_TOKENS", &format!("probe-*:{WORKER}"))
        .unwrap()
    }

    pub fn bearer_header(token: &str) -> HeaderMap {
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
        assert!(!format!("{:?}", tokens()).contains(WORKER));
    }

    fn api(role: Role, name: &str) -> Credential {
        Credential::Api(ApiCaller {
            role,
            name: name.to_owned(),
        })
    }

    #[test]
    fn entries_may_name_their_holder() {
        let tokens = Tokens::parse(
            "MONITOR_API_TOKENS",
            &format!("read:{READ}, write/alice:{WRITE}\nadmin/ops.bot@example-1:{ADMIN}"),
        )
        .unwrap();
        assert_eq!(tokens.credential(&bearer_header(READ)), api(Role::Read, "read#1"));
        assert_eq!(tokens.credential(&bearer_header(WRITE)), api(Role::Write, "alice"));
        assert_eq!(
            tokens.credential(&bearer_header(ADMIN)),
            api(Role::Admin, "ops.bot@example-1")
        );
        assert_eq!(tokens.names(), ["read#1", "alice", "ops.bot@example-1"]);
        // A token may contain ':'; only the part before the first one is
        // role and name, so old entries keep their tokens.
        let colons = Tokens::parse("t", "write:abc:def:0123456789abcdef").unwrap();
        assert_eq!(
            colons.credential(&bearer_header("abc:def:0123456789abcdef")),
            api(Role::Write, "write#1")
        );
        for (text, expected) in [
            (format!("write/:{WRITE}"), "token name \"\" must be 1 to 64"),
            (format!("write/a b:{WRITE}"), "token name \"a b\""),
            (format!("write/read#1:{WRITE}"), "token name \"read#1\""),
            (format!("write/{}:{WRITE}", "n".repeat(65)), "must be 1 to 64"),
            (format!("boss/alice:{WRITE}"), "unknown role \"boss\""),
        ] {
            let err = Tokens::parse("MONITOR_API_TOKENS", &text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains(WRITE), "token echoed: {err}");
        }
    }

    #[test]
    fn unnamed_entries_are_called_by_role_and_position_across_sources() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, format!("# ops\nwrite:{WRITE}\nread/grafana:{ADMIN}\n")).unwrap();
        let tokens = Tokens::load(Some(&format!("read:{READ}")), Some(&file)).unwrap();
        assert_eq!(tokens.names(), ["read#1", "write#2", "grafana"]);
        assert_eq!(tokens.credential(&bearer_header(WRITE)), api(Role::Write, "write#2"));
        // The same token twice: its highest role, named by that entry.
        let twice = Tokens::parse("t", &format!("read/low:{READ},write/high:{READ}")).unwrap();
        assert_eq!(twice.credential(&bearer_header(READ)), api(Role::Write, "high"));
    }

    #[test]
    fn credentials_are_told_apart() {
        let tokens = tokens();
        assert_eq!(tokens.credential(&HeaderMap::new()), Credential::Missing);
        assert_eq!(tokens.credential(&bearer_header(READ)), api(Role::Read, "read#1"));
        assert_eq!(tokens.credential(&bearer_header(ADMIN)), api(Role::Admin, "admin#3"));
        assert_eq!(
            tokens.credential(&bearer_header("nope-nope-nope-nope")),
            Credential::Unknown
        );
        let mut basic = HeaderMap::new();
        basic.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(tokens.credential(&basic), Credential::Malformed);
        let mut empty = HeaderMap::new();
        empty.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(tokens.credential(&empty), Credential::Malformed);
        let Credential::Worker(grant) = tokens.credential(&bearer_header(WORKER)) else {
            panic!("a worker token");
        };
        assert!(grant.allows("probe-1") && grant.allows("probe-") && !grant.allows("other"));
    }

    #[test]
    fn worker_tokens_name_their_identities() {
        let tokens = Tokens::default()
            .with_worker_tokens(
                "MONITOR_WORKER_TOKENS",
                &format!("probe-eu-1:{WORKER}, probe-us-*:{WORKER}, *:any-worker-token-0123"),
            )
            .unwrap();
        let Credential::Worker(grant) = tokens.credential(&bearer_header(WORKER)) else {
            panic!("a worker token");
        };
        assert!(grant.allows("probe-eu-1"));
        assert!(grant.allows("probe-us-7"));
        assert!(!grant.allows("probe-eu-2"));
        assert!(!grant.allows("probe-eu-1x"));
        assert_eq!(grant.describe(), "probe-eu-1, probe-us-*");
        let Credential::Worker(any) = tokens.credential(&bearer_header("any-worker-token-0123")) else {
            panic!("a worker token");
        };
        assert!(any.allows("whatever"));

        for (text, expected) in [
            (WORKER.to_owned(), "must be WORKER_ID_PATTERN:TOKEN"),
            (format!(":{WORKER}"), "pattern must be 1 to"),
            ("probe-*:short".to_owned(), "at least 16"),
            (format!("probe-*:{READ}"), "also an API token"),
        ] {
            let err = super::tests::tokens_with_api()
                .with_worker_tokens("MONITOR_WORKER_TOKENS", &text)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("MONITOR_WORKER_TOKENS: "), "{err}");
            assert!(err.contains(expected), "{text}: {err}");
            assert!(!err.contains("0123456789"), "token echoed: {err}");
        }
    }

    fn tokens_with_api() -> Tokens {
        Tokens::parse("test", &format!("read:{READ}")).unwrap()
    }

    #[test]
    fn id_patterns_match_as_globs() {
        let p = |text: &str| IdPattern::parse(text).unwrap();
        assert!(p("a").matches("a") && !p("a").matches("ab") && !p("a").matches(""));
        assert!(p("*").matches("") && p("*").matches("anything"));
        assert!(p("a*").matches("a") && p("a*").matches("abc") && !p("a*").matches("ba"));
        assert!(p("*z").matches("xyz") && !p("*z").matches("zy"));
        assert!(p("a*m*z").matches("a-m-z") && p("a*m*z").matches("amz") && !p("a*m*z").matches("a-z"));
        assert!(!p("ab*ba").matches("aba"), "prefix and suffix may not overlap");
        assert!(IdPattern::parse("a b").is_err());
        assert!(IdPattern::parse(&"x".repeat(129)).is_err());
    }
}
