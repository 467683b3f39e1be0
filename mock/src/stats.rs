//! What the mock has served since start or the last `POST /__reset`, kept
//! in atomics so concurrent requests never lose an increment and never wait
//! on each other, and the counters that define the request sequence.
//!
//! A request is counted once its outcome is decided: a response with its
//! status (just before it is written, so a client that has its answer can
//! read it from `/__stats`), or, for `/hang` and `/reset`, as it arrives
//! at the point of no answer (those have no status). The control routes
//! (`/__ping`, `/__stats`, `/__reset`, `/__cert.pem`) are not counted, so
//! health checks and polling don't disturb the figures.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

/// The counted routes: every traffic route, plus unknown paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    WebsiteMock,
    Status,
    Delay,
    Bytes,
    Redirect,
    Flaky,
    Hang,
    Reset,
    Echo,
    WebSocket,
    Hooks,
    NotFound,
}

impl Route {
    /// Every route, in declaration order (which is the counters' order).
    pub const ALL: [Route; 12] = [
        Route::WebsiteMock,
        Route::Status,
        Route::Delay,
        Route::Bytes,
        Route::Redirect,
        Route::Flaky,
        Route::Hang,
        Route::Reset,
        Route::Echo,
        Route::WebSocket,
        Route::Hooks,
        Route::NotFound,
    ];

    /// The key under `by_route` in `/__stats`.
    pub fn name(self) -> &'static str {
        match self {
            Route::WebsiteMock => "website_mock",
            Route::Status => "status",
            Route::Delay => "delay",
            Route::Bytes => "bytes",
            Route::Redirect => "redirect",
            Route::Flaky => "flaky",
            Route::Hang => "hang",
            Route::Reset => "reset",
            Route::Echo => "echo",
            Route::WebSocket => "websocket",
            Route::Hooks => "hooks",
            Route::NotFound => "not_found",
        }
    }
}

/// Methods counted by name; anything else is counted as `OTHER`.
const METHODS: [Method; 9] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::TRACE,
    Method::CONNECT,
];

/// One counter per status in 100..=599, indexed by `code - 100`.
struct StatusCounters([AtomicU64; 500]);

impl StatusCounters {
    fn new() -> Self {
        Self([const { AtomicU64::new(0) }; 500])
    }

    fn add(&self, status: StatusCode) {
        // StatusCode guarantees 100..=999; the mock only sends up to 599,
        // but a code above that must not panic, so it is just not counted.
        if let Some(counter) = self.0.get(usize::from(status.as_u16()) - 100) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        (100u16..)
            .zip(&self.0)
            .map(|(code, counter)| (code, counter.load(Ordering::Relaxed)))
            .filter(|&(_, count)| count > 0)
            .map(|(code, count)| (code.to_string(), count))
            .collect()
    }

    fn clear(&self) {
        self.0.iter().for_each(|counter| counter.store(0, Ordering::Relaxed));
    }
}

/// Counts for one route.
struct RouteCounters {
    /// Every counted request to the route, answered or not.
    total: AtomicU64,
    /// Answered requests by status.
    by_status: StatusCounters,
}

/// The served-request ledger and the sequence counters, shared by all
/// connections.
pub(crate) struct Stats {
    /// Every counted request.
    total: AtomicU64,
    /// Indexed like [`Route::ALL`].
    by_route: [RouteCounters; Route::ALL.len()],
    /// Answered requests by status, all routes together.
    by_status: StatusCounters,
    /// Indexed like [`METHODS`], then one slot for any other method.
    by_method: [AtomicU64; METHODS.len() + 1],
    /// The next `n` of the global `/website_mock` draw sequence.
    sequence: AtomicU64,
    /// Requests `/flaky` has taken since start or reset.
    flaky_requests: AtomicU64,
}

impl Stats {
    pub(crate) fn new() -> Self {
        Self {
            total: AtomicU64::new(0),
            by_route: std::array::from_fn(|_| RouteCounters {
                total: AtomicU64::new(0),
                by_status: StatusCounters::new(),
            }),
            by_status: StatusCounters::new(),
            by_method: [const { AtomicU64::new(0) }; METHODS.len() + 1],
            sequence: AtomicU64::new(0),
            flaky_requests: AtomicU64::new(0),
        }
    }

    /// Takes the next `n` of the global draw sequence.
    pub(crate) fn next_sequence(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed)
    }

    /// Takes the next ordinal (1-based) of `/flaky`.
    pub(crate) fn next_flaky(&self) -> u64 {
        self.flaky_requests.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Counts a request that got a response.
    pub(crate) fn record_response(&self, route: Route, method: &Method, status: StatusCode) {
        self.record_arrival(route, method);
        self.route(route).by_status.add(status);
        self.by_status.add(status);
    }

    /// Counts a request that will never get a response (`/hang`, `/reset`).
    pub(crate) fn record_unanswered(&self, route: Route, method: &Method) {
        self.record_arrival(route, method);
    }

    fn record_arrival(&self, route: Route, method: &Method) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.route(route).total.fetch_add(1, Ordering::Relaxed);
        let method_slot = METHODS
            .iter()
            .position(|known| known == method)
            .unwrap_or(METHODS.len());
        self.by_method[method_slot].fetch_add(1, Ordering::Relaxed);
    }

    fn route(&self, route: Route) -> &RouteCounters {
        // Route::ALL is in declaration order, so the discriminant is the index
        // (`route_indices_follow_declaration_order` checks it).
        &self.by_route[route as usize]
    }

    /// Zeroes every count and restarts both sequences. Requests in flight
    /// during a reset may land on either side of it.
    pub(crate) fn reset(&self) {
        self.total.store(0, Ordering::Relaxed);
        for route in &self.by_route {
            route.total.store(0, Ordering::Relaxed);
            route.by_status.clear();
        }
        self.by_status.clear();
        self.by_method
            .iter()
            .for_each(|counter| counter.store(0, Ordering::Relaxed));
        self.sequence.store(0, Ordering::Relaxed);
        self.flaky_requests.store(0, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, seed: u64) -> StatsSnapshot {
        let by_method = METHODS
            .iter()
            .map(Method::as_str)
            .chain(["OTHER"])
            .zip(&self.by_method)
            .map(|(name, counter)| (name.to_owned(), counter.load(Ordering::Relaxed)))
            .filter(|&(_, count)| count > 0)
            .collect();
        let by_route = Route::ALL
            .iter()
            .zip(&self.by_route)
            .map(|(route, counters)| {
                let counts = RouteSnapshot {
                    total: counters.total.load(Ordering::Relaxed),
                    by_status: counters.by_status.snapshot(),
                };
                (route.name().to_owned(), counts)
            })
            .collect();
        StatsSnapshot {
            seed,
            sequence: self.sequence.load(Ordering::Relaxed),
            flaky_requests: self.flaky_requests.load(Ordering::Relaxed),
            total: self.total.load(Ordering::Relaxed),
            by_status: self.by_status.snapshot(),
            by_method,
            by_route,
        }
    }
}

/// The body of `GET /__stats`. Maps omit zero counts, except `by_route`,
/// which lists every route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// The global seed, so a test can recompute the draws.
    pub seed: u64,
    /// How many draws the global sequence has handed out: the next
    /// `/website_mock` request gets draw `(seed, sequence)`.
    pub sequence: u64,
    /// Requests `/flaky` has taken.
    pub flaky_requests: u64,
    /// Every counted request; equals the sum of `by_status` plus the
    /// unanswered `/hang` and `/reset` requests.
    pub total: u64,
    /// Answered requests by status code (keys are decimal codes).
    pub by_status: BTreeMap<String, u64>,
    /// Counted requests by method name (`OTHER` for extension methods).
    pub by_method: BTreeMap<String, u64>,
    /// Per route (keys as [`Route::name`]).
    pub by_route: BTreeMap<String, RouteSnapshot>,
}

/// One route's counts in [`StatsSnapshot`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSnapshot {
    pub total: u64,
    pub by_status: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_indices_follow_declaration_order() {
        for (index, route) in Route::ALL.iter().enumerate() {
            assert_eq!(*route as usize, index, "{}", route.name());
        }
    }

    #[test]
    fn counts_responses_and_unanswered_requests() {
        let stats = Stats::new();
        stats.record_response(Route::WebsiteMock, &Method::GET, StatusCode::OK);
        stats.record_response(Route::WebsiteMock, &Method::POST, StatusCode::OK);
        stats.record_response(Route::Status, &Method::HEAD, StatusCode::IM_A_TEAPOT);
        stats.record_unanswered(Route::Hang, &Method::GET);
        let method = Method::from_bytes(b"PURGE").unwrap();
        stats.record_response(Route::NotFound, &method, StatusCode::NOT_FOUND);

        let snapshot = stats.snapshot(9);
        assert_eq!(snapshot.seed, 9);
        assert_eq!(snapshot.total, 5);
        let expected_status: BTreeMap<String, u64> = [("200".into(), 2), ("404".into(), 1), ("418".into(), 1)].into();
        assert_eq!(snapshot.by_status, expected_status);
        let expected_methods: BTreeMap<String, u64> = [
            ("GET".into(), 2),
            ("HEAD".into(), 1),
            ("OTHER".into(), 1),
            ("POST".into(), 1),
        ]
        .into();
        assert_eq!(snapshot.by_method, expected_methods);
        assert_eq!(snapshot.by_route.len(), Route::ALL.len());
        assert_eq!(snapshot.by_route["website_mock"].total, 2);
        assert_eq!(snapshot.by_route["website_mock"].by_status["200"], 2);
        assert_eq!(snapshot.by_route["hang"].total, 1);
        assert!(snapshot.by_route["hang"].by_status.is_empty());
        assert_eq!(snapshot.by_route["echo"].total, 0);
    }

    #[test]
    fn reset_zeroes_counts_and_restarts_sequences() {
        let stats = Stats::new();
        stats.record_response(Route::Flaky, &Method::GET, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(stats.next_sequence(), 0);
        assert_eq!(stats.next_sequence(), 1);
        assert_eq!(stats.next_flaky(), 1);
        stats.reset();
        let snapshot = stats.snapshot(0);
        assert_eq!(snapshot.total, 0);
        assert_eq!(snapshot.sequence, 0);
        assert_eq!(snapshot.flaky_requests, 0);
        assert!(snapshot.by_status.is_empty());
        assert!(snapshot.by_method.is_empty());
        assert!(snapshot.by_route.values().all(|route| route.total == 0));
        assert_eq!(stats.next_sequence(), 0);
        assert_eq!(stats.next_flaky(), 1);
    }

    #[test]
    fn concurrent_increments_are_never_lost() {
        let stats = Stats::new();
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..10_000 {
                        stats.record_response(Route::Echo, &Method::PUT, StatusCode::OK);
                        stats.next_sequence();
                    }
                });
            }
        });
        let snapshot = stats.snapshot(0);
        assert_eq!(snapshot.total, 80_000);
        assert_eq!(snapshot.sequence, 80_000);
        assert_eq!(snapshot.by_route["echo"].by_status["200"], 80_000);
        assert_eq!(snapshot.by_method["PUT"], 80_000);
    }
}
