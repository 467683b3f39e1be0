//! Probe throughput: one `monitor-worker probe` (release build, its own
//! process) running N jobs at a 1 s interval against the mock website, with
//! the control plane and the mock in this process and the broker at
//! KAFKA_BROKERS. Prints checks/s sustained (counted by the mock), p50/p99
//! lateness against the schedule (from the worker's exit summary), the
//! worker's RSS, and, as the reference measured in the same run, wrk's req/s
//! on the same mock route.
//!
//! `cargo bench -p monitor-worker --bench probe_load -- [--jobs 10000] [--seconds 20] [--mix 1 | --kind tls]`
//! Max-rate mode: raise `--jobs` (e.g. 30000) until checks/s stops following.
//! `--mix 1`: the jobs cycle through every check kind (HTTP, TCP, DNS, ICMP,
//! TLS, gRPC health, WebSocket, SSH, SOCKS5) against the mock's listeners;
//! checks/s is then counted by the worker's own counter (`checks_total`),
//! since only HTTP requests reach the mock's route counts. `--kind K`: every
//! job of kind K (one of [`KINDS`]), for what one kind costs per check.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use monitor_store::{
    models::job::{JobFields, STATE_RUNNING},
    testing::TestDb,
};
use monitor_testkit::{
    fresh, kafka::shared_brokers, mock::MockServer, mock_dns::MockDns, server::TestServer, worker::spawn_worker,
};

struct Options {
    jobs: usize,
    seconds: u64,
    mix: bool,
    /// With `--kind`: every job of this one kind (its index in [`KINDS`]).
    kind: Option<usize>,
}

impl Options {
    /// Whether some jobs are not HTTP, so the mock's route count misses them.
    fn worker_counted(&self) -> bool {
        self.mix || self.kind.is_some_and(|kind| kind != 0)
    }
}

/// The kinds `--mix` cycles through, in order.
const KINDS: [&str; 9] = [
    "http",
    "tcp",
    "dns",
    "icmp",
    "tls",
    "grpc_health",
    "websocket",
    "ssh",
    "socks5",
];

fn options() -> Options {
    let mut options = Options {
        jobs: 10_000,
        seconds: 20,
        mix: false,
        kind: None,
    };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let text = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        if flag == "--kind" {
            let index = KINDS.iter().position(|kind| kind == text);
            options.kind = Some(index.unwrap_or_else(|| panic!("--kind is one of {KINDS:?}, not {text:?}")));
            continue;
        }
        let value = text.parse::<u64>().unwrap_or_else(|_| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--jobs" => options.jobs = value.max(1) as usize,
            "--seconds" => options.seconds = value.max(5),
            "--mix" => options.mix = value != 0,
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

/// The check of job `i`: HTTP only, each kind in turn (`--mix`), or one
/// kind (`--kind`).
fn check_of(i: usize, options: &Options, mock: &MockServer, dns: &MockDns) -> (&'static str, serde_json::Value) {
    use serde_json::json;
    let http = mock.url("/website_mock");
    let kind = match (options.kind, options.mix) {
        (Some(kind), _) => kind,
        (None, true) => i % KINDS.len(),
        (None, false) => 0,
    };
    let port = |address: Option<std::net::SocketAddr>| address.expect("listener started").port();
    match kind {
        0 => ("http", json!({"url": http, "method": "HTTP_METHOD_GET"})),
        1 => ("tcp", json!({"host": "127.0.0.1", "port": mock.address.port()})),
        2 => (
            "dns",
            json!({"name": "www.mock.test", "server": dns.address.to_string(), "recordType": "DNS_RECORD_TYPE_A"}),
        ),
        3 => ("icmp", json!({"host": "127.0.0.1", "count": 1})),
        4 => (
            "tls",
            json!({"host": "127.0.0.1", "port": port(mock.tls_address), "assertions": {"allowUntrustedChain": true}}),
        ),
        5 => (
            "grpc_health",
            json!({"host": "127.0.0.1", "port": port(mock.grpc_address)}),
        ),
        6 => (
            "websocket",
            json!({"url": mock.ws_url("/ws/echo"), "send": "ping", "expectContains": "ping"}),
        ),
        7 => ("ssh", json!({"host": "127.0.0.1", "port": port(mock.ssh_address)})),
        _ => (
            "socks5",
            json!({"proxy": {"host": "127.0.0.1", "port": port(mock.socks5_address)},
                   "targetHost": "127.0.0.1", "targetPort": mock.address.port()}),
        ),
    }
}

/// Checks the worker has completed, by its own counter.
async fn worker_checks(worker: &monitor_testkit::worker::WorkerProcess) -> u64 {
    match worker.metrics().await {
        Ok(scrape) => monitor_testkit::metrics::sum(&scrape, "monitor_probe_checks_total", &[]) as u64,
        Err(_) => 0,
    }
}

/// Requests the mock served on its `/website_mock` route.
async fn mock_total(mock: &MockServer) -> u64 {
    let stats = mock.stats().await;
    stats.by_route.get("website_mock").map_or(0, |route| route.total)
}

/// CPU time (user + system) a process has used so far, from
/// `/proc/<pid>/stat` (fields 14 and 15, in clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; the fields after it do not.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<u64> = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    ticks.iter().sum::<u64>() as f64 / 100.0
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let options = options();
    let brokers = shared_brokers();
    let (mock, _certificate) = MockServer::start_with_grpc(
        &[
            "--latency-ms",
            "0",
            "--ssh-listen=127.0.0.1:0",
            "--socks5-listen=127.0.0.1:0",
        ],
        Some(&monitor_testkit::mock::tls_config(-1, 30)),
    )
    .await;
    let dns = MockDns::start().await;
    let target = mock.url("/website_mock");

    let db = Arc::new(TestDb::new().await);
    let pool = db.pool();
    {
        let mut conn = pool.get().await.unwrap();
        for i in 0..options.jobs {
            let (kind, spec) = check_of(i, &options, &mock, &dns);
            let fields = JobFields {
                name: format!("bench-{i:06}"),
                labels: serde_json::json!({}),
                check_kind: kind.into(),
                check_spec: spec,
                interval_ms: 1000,
                timeout_ms: 1000,
                desired_state: STATE_RUNNING.into(),
                locations: serde_json::json!([]),
            };
            monitor_store::models::job::insert(&mut conn, &fields).await.unwrap();
        }
    }
    let server = TestServer::builder().database(db).start().await;

    let (url, topic) = (server.url(""), fresh("monitor.checks.bench"));
    let args = [
        &["--server", &url, "--worker-id", "bench"][..],
        &[
            "--kafka-brokers",
            &brokers,
            "--kafka-topic",
            &topic,
            "--max-in-flight",
            "4000",
        ],
        // The mock listens on 127.0.0.1, blocked unless opened.
        &["--allow-net", "127.0.0.0/8"],
    ]
    .concat();
    let binary = Path::new(env!("CARGO_BIN_EXE_monitor-worker"));
    let mut worker = spawn_worker(binary, "probe", &args, &[("RUST_LOG", "info")]);
    let pid = worker.pid();

    // Let the worker take every job and settle for two intervals.
    let counted = async |worker: &monitor_testkit::worker::WorkerProcess| {
        if options.worker_counted() {
            worker_checks(worker).await
        } else {
            mock_total(&mock).await
        }
    };
    let started = Instant::now();
    while counted(&worker).await < options.jobs as u64 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (before, t0) = (counted(&worker).await, Instant::now());
    let (worker_cpu0, own_cpu0) = (cpu_seconds(pid), cpu_seconds(std::process::id()));
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    let (after, elapsed) = (counted(&worker).await, t0.elapsed());
    let worker_cpu = cpu_seconds(pid) - worker_cpu0;
    let own_cpu = cpu_seconds(std::process::id()) - own_cpu0;
    let outcomes = match worker.metrics().await {
        Ok(scrape) => {
            let mut failed: Vec<String> = scrape
                .samples
                .iter()
                .filter(|sample| sample.metric == "monitor_probe_checks_total")
                .filter(|sample| sample.labels.get("outcome") != Some("CHECK_OUTCOME_OK"))
                .map(|sample| {
                    format!(
                        "{}/{}={}",
                        sample.labels.get("kind").unwrap_or("?"),
                        sample.labels.get("outcome").unwrap_or("?"),
                        monitor_testkit::metrics::value(sample)
                    )
                })
                .collect();
            failed.sort();
            failed
        }
        Err(error) => vec![format!("metrics unreadable: {error}")],
    };
    let rss = rss_kib(pid, "VmRSS:");
    let peak = rss_kib(pid, "VmHWM:");
    worker.stop().await;
    let text = worker.log();
    let summary = text
        .lines()
        .find(|l| l.contains("probe summary"))
        .unwrap_or("")
        .to_owned();
    let field = |name: &str| -> u64 {
        summary
            .split_whitespace()
            .find_map(|part| part.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches(|c: char| !c.is_ascii_digit()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };

    // The reference: wrk on the same route of the same mock, same run.
    let wrk = std::process::Command::new("wrk")
        .args(["-t2", "-c64", "-d5s", &target])
        .output();
    let wrk_rate = wrk
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|out| out.lines().find(|l| l.starts_with("Requests/sec:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<f64>().ok()));

    let rate = (after - before) as f64 / elapsed.as_secs_f64();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "probe: {} jobs ({}) at a 1 s interval, one worker, {} s window, {cores} cores",
        options.jobs,
        match (options.kind, options.mix) {
            (Some(kind), _) => KINDS[kind],
            (None, true) => "every kind in turn",
            (None, false) => "http",
        },
        options.seconds
    );
    let counter = if options.worker_counted() {
        "worker-counted"
    } else {
        "mock-counted"
    };
    println!(
        "checks/s sustained ({counter})   {rate:>10.0}   (the schedule asks {})",
        options.jobs
    );
    if outcomes.is_empty() {
        println!("checks not OK                       none");
    } else {
        println!("checks not OK (kind/outcome=count)  {}", outcomes.join(" "));
    }
    println!(
        "lateness p50 / p99 / max            {:.1} / {:.1} / {:.1} ms",
        field("lateness_p50_us") as f64 / 1000.0,
        field("lateness_p99_us") as f64 / 1000.0,
        field("lateness_max_us") as f64 / 1000.0
    );
    let checks = (after - before).max(1) as f64;
    println!(
        "worker CPU per check / share       {:.0} µs / {:.0} % of one core (mock + control plane: {:.0} %)",
        worker_cpu / checks * 1e6,
        worker_cpu / elapsed.as_secs_f64() * 100.0,
        own_cpu / elapsed.as_secs_f64() * 100.0
    );
    println!(
        "results delivered / failed          {} / {}",
        field("delivered"),
        field("failed")
    );
    println!(
        "worker RSS at end / peak            {:.1} / {:.1} MiB",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    match wrk_rate {
        Some(reference) => {
            println!(
                "wrk on the same route (reference)   {reference:>10.0} req/s   ratio {:.2}",
                rate / reference
            )
        }
        None => println!("wrk on the same route (reference)   not run: install wrk (apt-get install wrk)"),
    }
    if summary.is_empty() {
        println!("warning: no probe summary in the worker log:\n{text}");
    }
}
