//! What only the worker crate's integration tests share: `monitor-worker`
//! processes of this crate's binary with the flags a probe or an
//! aggregator needs, and the rollups they wrote. The server, the mock, the
//! broker and the waiting come from `monitor_testkit`.
//!
//! Each test binary includes this module (`mod common;`) and uses a part of
//! it, so unused items are expected.
#![allow(dead_code)]

pub mod checks;

use std::{net::SocketAddr, path::Path};

use monitor_store::testing::TestDb;
use monitor_testkit::{
    fresh,
    worker::{self, WorkerProcess},
};

/// This crate's `monitor-worker` binary, as cargo built it for the tests.
pub fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_monitor-worker"))
}

pub fn spawn_worker(role: &str, args: &[&str]) -> WorkerProcess {
    spawn_worker_env(role, args, &[])
}

/// A `monitor-worker ROLE` with `args` and the environment variables `env`
/// (as an operator sets KAFKA_* settings).
pub fn spawn_worker_env(role: &str, args: &[&str], env: &[(&str, &str)]) -> WorkerProcess {
    worker::spawn_worker(binary(), role, args, env)
}

/// An aggregator of `topic` on `brokers` (plaintext) in a fresh group,
/// rolling up by the minute.
pub fn spawn_aggregator(database_url: &str, brokers: &str, topic: &str) -> WorkerProcess {
    spawn_aggregator_with(database_url, topic, &fresh("group"), &["--kafka-brokers", brokers])
}

/// An aggregator of `topic` in `group`, reaching Kafka with the `kafka`
/// flags (brokers, TLS, SASL).
pub fn spawn_aggregator_with(database_url: &str, topic: &str, group: &str, kafka: &[&str]) -> WorkerProcess {
    let dlq = fresh("dlq");
    let args = [
        &[
            "--database-url",
            database_url,
            "--kafka-topic",
            topic,
            "--group-id",
            group,
            "--dlq-topic",
            &dlq,
            "--flush-interval-ms",
            "200",
            "--granularities",
            "1m",
        ][..],
        kafka,
    ]
    .concat();
    spawn_worker("aggregate", &args)
}

/// A probe worker of `server` producing to a fresh topic on `brokers`.
pub fn spawn_probe(server: SocketAddr, brokers: &str, worker_id: &str) -> WorkerProcess {
    spawn_probe_with(&format!("http://{server}"), brokers, worker_id, &[])
}

/// A probe worker of the control plane at `url`, with `extra` flags.
pub fn spawn_probe_with(url: &str, brokers: &str, worker_id: &str, extra: &[&str]) -> WorkerProcess {
    let topic = fresh("checks");
    let args = [
        &[
            "--server",
            url,
            "--worker-id",
            worker_id,
            "--kafka-brokers",
            brokers,
            "--kafka-topic",
            &topic,
            "--topic-partitions",
            "1",
        ][..],
        extra,
    ]
    .concat();
    spawn_worker("probe", &args)
}

/// Every rollup row in `db`.
pub async fn stored_rows(db: &TestDb) -> Vec<monitor_store::models::job_metrics::MetricRow> {
    use diesel::{QueryDsl, SelectableHelper};
    use monitor_store::{diesel_async::RunQueryDsl, models::job_metrics::MetricRow};
    let pool = db.pool();
    let mut conn = pool.get().await.unwrap();
    monitor_store::schema::job_metrics::table
        .select(MetricRow::as_select())
        .load(&mut conn)
        .await
        .unwrap()
}
