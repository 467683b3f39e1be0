//! Probe throughput: one `monitor-worker probe` (release build, its own
//! process) running N jobs at a 1 s interval against the mock website, with
//! the control plane and the mock in this process and the broker at
//! KAFKA_BROKERS. Prints checks/s sustained (counted by the mock), p50/p99
//! lateness against the schedule (from the worker's exit summary), the
//! worker's RSS, and, as the reference measured in the same run, wrk's req/s
//! on the same mock route.
//!
//! `cargo bench -p monitor-worker --bench probe_load -- [--jobs 10000] [--seconds 20]`
//! Max-rate mode: raise `--jobs` (e.g. 30000) until checks/s stops following.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use monitor_store::{
    models::job::{JobFields, STATE_RUNNING},
    testing::TestDb,
};
use monitor_testkit::{fresh, kafka::shared_brokers, mock::MockServer, server::TestServer, worker::spawn_worker};

struct Options {
    jobs: usize,
    seconds: u64,
}

fn options() -> Options {
    let mut options = Options {
        jobs: 10_000,
        seconds: 20,
    };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--jobs" => options.jobs = value.max(1) as usize,
            "--seconds" => options.seconds = value.max(5),
            other => panic!("unknown argument {other}"),
        }
    }
    options
}

/// Requests the mock served on its `/website_mock` route.
async fn mock_total(mock: &MockServer) -> u64 {
    let stats = mock.stats().await;
    stats.by_route.get("website_mock").map_or(0, |route| route.total)
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
    let mock = MockServer::start(&["--latency-ms", "0"]).await;
    let target = mock.url("/website_mock");

    let db = Arc::new(TestDb::new().await);
    let pool = db.pool();
    {
        let mut conn = pool.get().await.unwrap();
        for i in 0..options.jobs {
            let fields = JobFields {
                name: format!("bench-{i:06}"),
                labels: serde_json::json!({}),
                check_kind: "http".into(),
                check_spec: serde_json::json!({"url": target, "method": "HTTP_METHOD_GET"}),
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
    let started = Instant::now();
    while mock_total(&mock).await < options.jobs as u64 && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (before, t0) = (mock_total(&mock).await, Instant::now());
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    let (after, elapsed) = (mock_total(&mock).await, t0.elapsed());
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
        "probe: {} jobs at a 1 s interval, one worker, {} s window, {cores} cores",
        options.jobs, options.seconds
    );
    println!(
        "checks/s sustained (mock-counted)   {rate:>10.0}   (the schedule asks {})",
        options.jobs
    );
    println!(
        "lateness p50 / p99 / max            {:.1} / {:.1} / {:.1} ms",
        field("lateness_p50_us") as f64 / 1000.0,
        field("lateness_p99_us") as f64 / 1000.0,
        field("lateness_max_us") as f64 / 1000.0
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
