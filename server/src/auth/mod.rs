//! Who may do what: bearer tokens with three roles on the API (the same on
//! native gRPC, grpc-web and REST), worker tokens bound to worker
//! identities, and one policy table keyed by the operation a request will
//! reach.
//!
//! - [`tokens`]: the configured credentials and what a presented one is.
//! - [`policy`]: every operation and its requirement; the decision.
//! - [`middleware`]: applies the decision to each request before it reaches
//!   a service.
//!
//! Without API tokens the server runs in dev mode: the API is open except
//! the database reset, which stays disabled until an admin token exists;
//! without worker tokens any client may connect as any worker. Off
//! loopback, the server refuses to start that way unless told
//! `--insecure-open` ([`crate::config`]).

pub mod middleware;
pub mod policy;
pub mod tokens;

pub use middleware::require_token;
pub use tokens::{Actor, ApiCaller, Credential, Role, TokenConfigError, Tokens, WorkerGrant};

/// Refuses to serve on a non-loopback `listen` address without API tokens
/// or without worker tokens, unless `insecure_open` says that is meant:
/// otherwise anyone who reaches the port could wipe the jobs or pose as a
/// worker. Loopback keeps the open dev mode.
pub fn check_exposure(listen: std::net::SocketAddr, tokens: &Tokens, insecure_open: bool) -> Result<(), String> {
    if listen.ip().is_loopback() || insecure_open {
        return Ok(());
    }
    let missing: Vec<&str> = [
        (
            tokens.is_empty(),
            "API tokens (MONITOR_API_TOKENS or MONITOR_API_TOKENS_FILE)",
        ),
        (!tokens.has_worker_tokens(), "worker tokens (MONITOR_WORKER_TOKENS)"),
    ]
    .into_iter()
    .filter_map(|(missing, what)| missing.then_some(what))
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "MONITOR_LISTEN is {listen}, which is not a loopback address, but no {} are configured: anyone who \
         reaches the port could use the API or connect as a worker. Configure them, listen on 127.0.0.1, or \
         pass --insecure-open (MONITOR_INSECURE_OPEN=true) to serve open on purpose",
        missing.join(" and no ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_off_loopback_needs_insecure_open() {
        let open = Tokens::default();
        let loopback = "127.0.0.1:8080".parse().unwrap();
        let v6_loopback = "[::1]:8080".parse().unwrap();
        let everywhere = "0.0.0.0:8080".parse().unwrap();
        assert!(check_exposure(loopback, &open, false).is_ok());
        assert!(check_exposure(v6_loopback, &open, false).is_ok());
        let err = check_exposure(everywhere, &open, false).unwrap_err();
        assert!(
            err.contains("MONITOR_API_TOKENS") && err.contains("MONITOR_WORKER_TOKENS"),
            "{err}"
        );
        assert!(err.contains("--insecure-open"), "{err}");
        assert!(check_exposure(everywhere, &open, true).is_ok());
        let api_only = Tokens::parse("t", "admin:admin-token-0123456789").unwrap();
        let err = check_exposure(everywhere, &api_only, false).unwrap_err();
        assert!(
            !err.contains("MONITOR_API_TOKENS") && err.contains("MONITOR_WORKER_TOKENS"),
            "{err}"
        );
        let both = api_only
            .with_worker_tokens("w", "probe-*:worker-token-0123456789")
            .unwrap();
        assert!(check_exposure(everywhere, &both, false).is_ok());
    }
}
