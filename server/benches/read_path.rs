//! Read-path load: requests/s and p50/p99 latency of GetJob and ListJobs,
//! with `grpc.health.v1.Health/Check` (no database work) measured in the same
//! run as the reference, and REST `GET /v1/jobs/{id}` (HTTP/1.1 keep-alive)
//! against gRPC GetJob. Prints a table and both ratios.
//!
//! `cargo bench -p monitor-server --bench read_path -- [--seconds 10] [--concurrency 32] [--connections 4] [--jobs 1000] [--pool 16]`
//!
//! The server runs in this process on port 0 over a fresh database (the
//! same code path as `monitor-server`), so client and server share the
//! machine's cores, as they would with any local load generator.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use monitor_proto::v1::{GetJobRequest, ListJobsRequest, job_service_client::JobServiceClient};
use monitor_store::testing::TestDb;
use monitor_testkit::{
    jobs::{http_job, secs},
    server::TestServer,
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};

struct Options {
    seconds: u64,
    concurrency: usize,
    connections: usize,
    jobs: usize,
    pool: usize,
}

fn options() -> Options {
    let mut options = Options {
        seconds: 10,
        concurrency: 32,
        connections: 4,
        jobs: 1000,
        pool: 16,
    };
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> usize {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a positive number"))
        };
        match flag.as_str() {
            "--seconds" => options.seconds = value("--seconds") as u64,
            "--concurrency" => options.concurrency = value("--concurrency").max(1),
            "--connections" => options.connections = value("--connections").max(1),
            "--jobs" => options.jobs = value("--jobs").max(1),
            "--pool" => options.pool = value("--pool").max(1),
            other => panic!("unknown argument {other}; see the file header for usage"),
        }
    }
    options
}

struct Figures {
    name: &'static str,
    requests: u64,
    errors: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

impl Figures {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs `call` from `concurrency` tasks spread over `channels` for `duration`.
async fn measure<F, Fut>(name: &'static str, channels: &[Channel], options: &Options, call: F) -> Figures
where
    F: Fn(Channel, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let deadline = Instant::now() + Duration::from_secs(options.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..options.concurrency {
        let channel = channels[worker % channels.len()].clone();
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let (mut ok, mut errors, mut i) = (0u64, 0u64, worker);
            while Instant::now() < deadline {
                let t = Instant::now();
                if call(channel.clone(), i).await {
                    ok += 1;
                    latency.record(t.elapsed().as_micros().max(1) as u64).unwrap();
                } else {
                    errors += 1;
                }
                i += STRIDE;
            }
            (ok, errors, latency)
        }));
    }
    let mut figures = Figures {
        name,
        requests: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latency: Histogram::new_with_bounds(1, 60_000_000, 3).unwrap(),
    };
    for task in tasks {
        let (ok, errors, latency) = task.await.unwrap();
        figures.requests += ok;
        figures.errors += errors;
        figures.latency.add(latency).unwrap();
    }
    figures.elapsed = started.elapsed();
    figures
}

/// Step between the jobs one caller reads, so callers spread over all jobs.
const STRIDE: usize = 7;

fn print(figures: &Figures, reference: f64) {
    println!(
        "{:<22} {:>10.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {:>4}  ratio vs health {:>5.2}",
        figures.name,
        figures.rate(),
        figures.latency.value_at_quantile(0.50) as f64 / 1000.0,
        figures.latency.value_at_quantile(0.99) as f64 / 1000.0,
        figures.errors,
        figures.rate() / reference,
    );
}

#[tokio::main]
async fn main() {
    let options = options();
    let db = Arc::new(TestDb::new().await);
    let pool = monitor_store::connect(&db.url, options.pool).unwrap();
    let server = TestServer::builder().database(db).pool(pool).start().await;
    let addr = server.addr;

    let mut channels = Vec::new();
    for _ in 0..options.connections {
        channels.push(
            Channel::from_shared(format!("http://{addr}"))
                .unwrap()
                .connect()
                .await
                .unwrap(),
        );
    }
    let mut ids = Vec::with_capacity(options.jobs);
    for i in 0..options.jobs {
        let job = monitor_proto::v1::Job {
            interval: secs(60),
            labels: [("bench".to_owned(), (i % 10).to_string())].into(),
            ..http_job(
                &format!("bench-{i:05}"),
                &format!("http://127.0.0.1:8081/website_mock?n={i}"),
            )
        };
        ids.push(server.create(job).await.id);
    }
    // Wait for the health watcher's first successful probe.
    server.wait_health("", ServingStatus::Serving).await;
    let ids = Arc::new(ids);

    println!(
        "read path: {} s per phase, {} concurrent callers over {} HTTP/2 connections, {} jobs, pool of {}, {} cores",
        options.seconds,
        options.concurrency,
        options.connections,
        options.jobs,
        options.pool,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    let health = measure("Health/Check", &channels, &options, |channel, _| async move {
        HealthClient::new(channel)
            .check(HealthCheckRequest::default())
            .await
            .is_ok()
    })
    .await;
    let get_ids = ids.clone();
    let get = measure("GetJob", &channels, &options, move |channel, i| {
        let id = get_ids[i % get_ids.len()].clone();
        async move {
            JobServiceClient::new(channel)
                .get_job(GetJobRequest { id })
                .await
                .is_ok()
        }
    })
    .await;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(options.concurrency)
        .build()
        .unwrap();
    let rest_ids = ids.clone();
    let rest = measure("REST GET /v1/jobs/{id}", &channels, &options, move |_, i| {
        let url = format!("http://{addr}/v1/jobs/{}", rest_ids[i % rest_ids.len()]);
        let http = http.clone();
        async move {
            match http.get(url).send().await {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            }
        }
    })
    .await;
    let list = measure("ListJobs (page of 50)", &channels, &options, |channel, _| async move {
        JobServiceClient::new(channel)
            .list_jobs(ListJobsRequest {
                page_size: 50,
                ..Default::default()
            })
            .await
            .is_ok()
    })
    .await;
    let reference = health.rate();
    for figures in [&health, &get, &rest, &list] {
        print(figures, reference);
    }
    println!("GetJob / Health/Check = {:.2} (target >= 0.50)", get.rate() / reference);
    println!(
        "REST GetJob / gRPC GetJob = {:.2} (target >= 0.70); p99 {:.2} ms vs {:.2} ms",
        rest.rate() / get.rate(),
        rest.latency.value_at_quantile(0.99) as f64 / 1000.0,
        get.latency.value_at_quantile(0.99) as f64 / 1000.0
    );
    server.shutdown().await;
}
