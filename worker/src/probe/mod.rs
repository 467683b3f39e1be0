//! The `probe` role: holds one stream to the control plane, runs the
//! assigned checks on schedule and publishes every result to Kafka.

pub mod producer;
pub mod scheduler;
pub mod session;

use std::{collections::HashMap, net::IpAddr, time::Duration};

use clap::Args;
use ipnet::IpNet;
use rustls::pki_types::{CertificateDer, pem::PemObject as _};
use tokio::sync::watch;
use tonic::transport::ClientTlsConfig;

use crate::{
    check::{Blocklist, CheckConfig, CheckRunner},
    kafka::{BrokerCheck, KafkaArgs, ensure_topic},
    telemetry::{ProbeMetrics, Readiness},
};
use producer::ResultProducer;
use scheduler::Scheduler;
use session::SessionConfig;

#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// The control plane's gRPC address (https:// for TLS).
    #[arg(long, env = "MONITOR_SERVER", default_value = "http://127.0.0.1:8080", value_parser = parse_server)]
    pub server: String,
    /// CA certificate(s), PEM, that an https:// control plane's certificate must chain to
    /// (instead of the system's trusted roots).
    #[arg(long, env = "MONITOR_SERVER_CA_FILE")]
    pub server_ca_file: Option<std::path::PathBuf>,
    /// Stable identity of this worker (defaults to the host name, e.g. the pod name).
    #[arg(long, env = "MONITOR_WORKER_ID")]
    pub worker_id: Option<String>,
    /// Token the control plane expects from workers (its MONITOR_WORKER_TOKENS).
    #[arg(long, env = "MONITOR_WORKER_TOKEN", hide_env_values = true)]
    pub token: Option<monitor_proto::secret::Secret>,
    /// Labels, comma-separated key=value; `location=<name>` places jobs that name locations.
    #[arg(long, env = "MONITOR_WORKER_LABELS", value_delimiter = ',', value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Relative share of jobs this worker takes (1 to 10000).
    #[arg(long, env = "MONITOR_WORKER_CAPACITY", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub capacity: u32,
    /// Largest number of checks in flight at once.
    #[arg(long, env = "MONITOR_WORKER_MAX_IN_FLIGHT", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_in_flight: u32,
    /// Networks the worker refuses to contact, comma-separated CIDRs, in addition to the
    /// default cloud-metadata, link-local, loopback, private, carrier-grade NAT and NAT64 ranges.
    #[arg(long, env = "MONITOR_WORKER_BLOCKLIST", value_delimiter = ',', value_parser = parse_network)]
    pub blocklist: Vec<IpNet>,
    /// Networks the worker may contact although a blocked network contains them, comma-separated
    /// CIDRs (e.g. 127.0.0.0/8 for a site on this machine); the more specific network decides,
    /// an allowed one as specific as a blocked one wins.
    #[arg(long, env = "MONITOR_WORKER_ALLOW_NET", value_delimiter = ',', value_parser = parse_network)]
    pub allow_net: Vec<IpNet>,
    /// Partitions of the results topic when this worker creates it.
    #[arg(long, env = "KAFKA_TOPIC_PARTITIONS", default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=10_000))]
    pub topic_partitions: i32,
    /// Replication factor of the results topic when this worker creates it.
    #[arg(long, env = "KAFKA_TOPIC_REPLICATION", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=16))]
    pub topic_replication: i32,
    /// Address of this worker's /metrics, /healthz and /readyz (off when unset).
    #[arg(long, env = "MONITOR_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

fn parse_server(raw: &str) -> Result<String, String> {
    let url =
        url::Url::parse(raw).map_err(|err| format!("{raw:?} is not a URL ({err}); e.g. http://127.0.0.1:8080"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{raw:?} must be http(s)://host:port"));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

/// A CIDR network (`10.0.0.0/8`), or one address (`100.100.100.200`) as a
/// network of its own.
fn parse_network(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{raw:?} is not a network in CIDR notation, e.g. 10.0.0.0/8 or fd00::/8"))
}

fn parse_label(raw: &str) -> Result<(String, String), String> {
    let (key, value) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?} must be key=value"))?;
    if !monitor_core::labels::is_label_key(key) {
        return Err(format!("{key:?} is not a valid label key"));
    }
    if !monitor_core::labels::is_label_value(value) {
        return Err(format!(
            "the value of {key:?} must be at most {} printable characters",
            monitor_core::labels::MAX_LABEL_VALUE_CHARS
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// The `--labels` as the hello carries them: at most
/// [`monitor_core::labels::MAX_WORKER_LABELS`], each key once, so the
/// control plane never refuses a worker that started.
fn hello_labels(labels: &[(String, String)]) -> anyhow::Result<HashMap<String, String>> {
    const SETTING: &str = "MONITOR_WORKER_LABELS / --labels";
    let limit = monitor_core::labels::MAX_WORKER_LABELS;
    if labels.len() > limit {
        anyhow::bail!("{SETTING}: at most {limit} labels (got {})", labels.len());
    }
    let mut unique = HashMap::new();
    for (key, value) in labels {
        if unique.insert(key.clone(), value.clone()).is_some() {
            anyhow::bail!("{SETTING}: {key:?} is given more than once");
        }
    }
    Ok(unique)
}

impl ProbeArgs {
    /// How this worker runs checks: `--blocklist` adds to the default
    /// networks, `--allow-net` opens exceptions.
    pub fn check_config(&self) -> CheckConfig {
        CheckConfig {
            blocklist: Blocklist::with_defaults(self.blocklist.iter().copied(), self.allow_net.clone()),
            ..CheckConfig::default()
        }
    }
}

/// How the control plane is verified: None for http://; for https://, the
/// CA in `ca_file` or else the system's roots. A CA file that cannot be
/// used, or one given for http://, stops start-up naming the variable.
pub fn server_tls(server: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<Option<ClientTlsConfig>> {
    const SETTING: &str = "MONITOR_SERVER_CA_FILE / --server-ca-file";
    let https = server.starts_with("https://");
    let Some(path) = ca_file else {
        return Ok(https.then(|| ClientTlsConfig::new().with_native_roots()));
    };
    if !https {
        anyhow::bail!("{SETTING} is set but MONITOR_SERVER ({server}) is not https://");
    }
    let pem = std::fs::read(path).map_err(|err| anyhow::anyhow!("{SETTING} {}: cannot read: {err}", path.display()))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| anyhow::anyhow!("{SETTING} {}: not PEM certificates: {err}", path.display()))?;
    if certificates.is_empty() {
        anyhow::bail!("{SETTING} {}: holds no PEM CERTIFICATE block", path.display());
    }
    Ok(Some(
        ClientTlsConfig::new().ca_certificate(tonic::transport::Certificate::from_pem(pem)),
    ))
}

/// Whether a token sent to `server` would cross the network unencrypted:
/// plain `http://` to a host that is not loopback.
fn token_in_clear(server: &str) -> bool {
    let Ok(url) = url::Url::parse(server) else { return false };
    if url.scheme() != "http" {
        return false;
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) => !ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => !ip.is_loopback(),
        Some(url::Host::Domain(name)) => name != "localhost",
        None => false,
    }
}

/// The default worker id: the host name (the pod name on Kubernetes).
pub fn default_worker_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("worker-{}", std::process::id()))
}

/// Runs the probe until `shutdown` flips to true, then drains: jobs are
/// handed back, results in the producer's queue flushed.
pub async fn run(args: ProbeArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let client_config = args.kafka.client_config()?;
    let tls = server_tls(&args.server, args.server_ca_file.as_deref())?;
    let labels = hello_labels(&args.labels)?;
    if args.token.is_some() && token_in_clear(&args.server) {
        tracing::warn!(
            server = args.server,
            "the worker token goes to a non-loopback control plane over plain http://: use https:// (MONITOR_SERVER)"
        );
    }
    let worker_id = args.worker_id.clone().unwrap_or_else(default_worker_id);
    if !args.allow_net.is_empty() {
        tracing::info!(networks = ?args.allow_net, "networks opened to checks (--allow-net)");
    }
    let runner = CheckRunner::new(args.check_config())?;
    let mut registry = prometheus_client::registry::Registry::with_prefix("monitor_probe");
    let metrics = ProbeMetrics::register(&mut registry);
    // Ready while the control-plane stream is up and a broker answers.
    let ready = Readiness::default();
    let stream_up = ready.dependency("control-plane stream down");
    let broker = BrokerCheck::spawn_watch(&args.kafka, ready.dependency("broker unreachable"))?;
    let telemetry = args.metrics_listen.map(|address| {
        let mut stop = shutdown.clone();
        tokio::spawn(crate::telemetry::serve(address, registry, ready.clone(), async move {
            let _ = stop.wait_for(|done| *done).await;
        }))
    });
    let producer = ResultProducer::new(client_config.clone(), &args.kafka.kafka_topic, metrics.clone())?;
    // A broker that is down at start must not stop the worker: create the
    // topic in the background, retrying, while the producer queues.
    let topic = args.kafka.kafka_topic.clone();
    let (partitions, replication) = (args.topic_partitions, args.topic_replication);
    let topic_task = tokio::spawn(async move {
        let mut wait = Duration::from_millis(500);
        loop {
            match ensure_topic(&client_config, &topic, partitions, replication).await {
                Ok(()) => return,
                Err(err) => tracing::warn!(topic, error = %err, "cannot create the results topic yet; retrying"),
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    });
    let scheduler = Scheduler::new(
        worker_id.clone(),
        runner,
        producer.clone(),
        args.max_in_flight as usize,
        metrics.clone(),
    );
    // Gauges sampled once a second.
    let sampler = {
        let (scheduler, producer, metrics) = (scheduler.clone(), producer.clone(), metrics.clone());
        tokio::spawn(async move {
            loop {
                metrics.queue_depth.set(i64::from(producer.in_flight()));
                metrics.assignments.set(scheduler.len() as i64);
                metrics.in_flight.set(scheduler.in_flight() as i64);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    let config = SessionConfig {
        server: args.server.clone(),
        worker_id,
        capacity: args.capacity,
        labels,
        token: args.token.clone(),
        backoff_min: Duration::from_millis(250),
        backoff_max: Duration::from_secs(30),
        default_lease: Duration::from_secs(15),
        tls,
    };
    session::run(config, scheduler.clone(), shutdown, stream_up).await;
    topic_task.abort();
    broker.abort();
    sampler.abort();
    scheduler.wait_idle(Duration::from_secs(10)).await;
    let pending = producer.in_flight();
    tracing::info!(pending, "flushing results to Kafka");
    let flushed = tokio::task::spawn_blocking(move || producer.flush(Duration::from_secs(30))).await?;
    match flushed {
        Ok(()) => tracing::info!("all results delivered"),
        Err(err) => tracing::error!(error = %err, "results still queued at exit were not delivered"),
    }
    let (p50, p99, max) = {
        let lateness = scheduler.lateness();
        let histogram = lateness.lock().unwrap_or_else(|p| p.into_inner());
        (
            histogram.value_at_quantile(0.5),
            histogram.value_at_quantile(0.99),
            histogram.max(),
        )
    };
    // One summary line at exit (the probe benchmark reads it).
    tracing::info!(
        checks = scheduler.completed(),
        delivered = metrics.delivered.get(),
        failed = metrics.delivery_failures.get(),
        lateness_p50_us = p50,
        lateness_p99_us = p99,
        lateness_max_us = max,
        "probe summary"
    );
    if let Some(telemetry) = telemetry {
        telemetry.abort();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    /// The role's flags on their own.
    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        args: ProbeArgs,
    }

    fn parse(flags: &[&str]) -> Result<ProbeArgs, clap::Error> {
        Flags::try_parse_from(std::iter::once("probe").chain(flags.iter().copied())).map(|flags| flags.args)
    }

    fn network_of(config: &CheckConfig, address: &str) -> Option<String> {
        config
            .blocklist
            .network_of(address.parse().unwrap())
            .map(|net| net.to_string())
    }

    #[test]
    fn labels_are_checked_as_the_hello_will_be() {
        assert_eq!(
            parse_label("location=eu-1").unwrap(),
            ("location".into(), "eu-1".into())
        );
        assert!(parse_label("nokey").unwrap_err().contains("key=value"));
        assert!(parse_label("-bad=v").unwrap_err().contains("not a valid label key"));
        let long = format!("k={}", "v".repeat(257));
        assert!(
            parse_label(&long)
                .unwrap_err()
                .contains("at most 256 printable characters")
        );
        assert!(parse_label("k=a\u{7}b").is_err());
        let pair = |k: &str| (k.to_owned(), "v".to_owned());
        assert_eq!(hello_labels(&[pair("a"), pair("b")]).unwrap().len(), 2);
        let twice = hello_labels(&[pair("a"), pair("a")]).unwrap_err().to_string();
        assert!(twice.contains("\"a\" is given more than once"), "{twice}");
        let many: Vec<_> = (0..33).map(|i| pair(&format!("k{i}"))).collect();
        let err = hello_labels(&many).unwrap_err().to_string();
        assert!(
            err.contains("MONITOR_WORKER_LABELS") && err.contains("at most 32 labels (got 33)"),
            "{err}"
        );
    }

    #[test]
    fn blocklist_adds_to_the_defaults_and_allow_net_opens() {
        let config = parse(&[]).unwrap().check_config();
        assert_eq!(network_of(&config, "127.0.0.1").as_deref(), Some("127.0.0.0/8"));

        let config = parse(&[
            "--blocklist",
            "203.0.113.0/24, 2001:db8::/32",
            "--allow-net",
            "127.0.0.0/8,::1",
        ])
        .unwrap()
        .check_config();
        assert_eq!(network_of(&config, "203.0.113.9").as_deref(), Some("203.0.113.0/24"));
        assert_eq!(network_of(&config, "2001:db8::9").as_deref(), Some("2001:db8::/32"));
        assert_eq!(
            network_of(&config, "169.254.169.254").as_deref(),
            Some("169.254.169.254/32")
        );
        assert_eq!(network_of(&config, "10.0.0.1").as_deref(), Some("10.0.0.0/8"));
        assert_eq!(network_of(&config, "127.0.0.1"), None);
        assert_eq!(network_of(&config, "::1"), None);
    }

    #[test]
    fn an_invalid_network_names_the_flag() {
        for flag in ["--blocklist", "--allow-net"] {
            for value in ["127.0.0.0/33", "localhost", "10.0.0.0/8,"] {
                let error = parse(&[flag, value]).err().unwrap().to_string();
                assert!(error.contains(flag), "{error}");
                assert!(error.contains("is not a network in CIDR notation"), "{error}");
            }
        }
    }

    #[test]
    fn tokens_in_clear_are_told_apart() {
        assert!(token_in_clear("http://monitor.example:8080"));
        assert!(token_in_clear("http://10.0.0.5:8080"));
        assert!(!token_in_clear("http://127.0.0.1:8080"));
        assert!(!token_in_clear("http://localhost:8080"));
        assert!(!token_in_clear("http://[::1]:8080"));
        assert!(!token_in_clear("https://monitor.example"));
    }

    #[test]
    fn the_server_ca_file_is_checked_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let issued = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&ca, issued.cert.pem()).unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "not a certificate").unwrap();

        assert!(server_tls("http://127.0.0.1:8080", None).unwrap().is_none());
        assert!(server_tls("https://monitor.example", None).unwrap().is_some());
        assert!(server_tls("https://127.0.0.1:8443", Some(&ca)).unwrap().is_some());
        for (server, file, says) in [
            ("http://127.0.0.1:8080", ca.clone(), "is not https://"),
            ("https://127.0.0.1:8443", dir.path().join("missing.pem"), "cannot read"),
            ("https://127.0.0.1:8443", garbage, "no PEM CERTIFICATE"),
        ] {
            let err = server_tls(server, Some(&file)).unwrap_err().to_string();
            assert!(err.contains("MONITOR_SERVER_CA_FILE") && err.contains(says), "{err}");
        }
    }
}
