//! Kafka settings shared by both worker roles: brokers, topic, and TLS/SASL
//! as managed Kafka services hand them out (`ca.pem`, `service.cert`,
//! `service.key`, or a SASL user); and [`BrokerCheck`], whether a broker
//! answers, for `/readyz`.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use clap::{Args, ValueEnum};
use monitor_proto::secret::Secret;
use rdkafka::{
    ClientConfig, ClientContext,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    error::KafkaError,
    error::RDKafkaErrorCode,
    producer::{NoCustomPartitioner, Producer as _, ProducerContext, ThreadedProducer},
};
use tokio::task::JoinHandle;

use crate::telemetry::Dependency;

/// SASL mechanisms librdkafka supports without Kerberos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "PLAIN")]
    Plain,
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:9092")]
    pub kafka_brokers: String,
    /// Topic of the check results.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "monitor.checks")]
    pub kafka_topic: String,
    /// CA certificate (PEM) that signed the brokers' certificates; enables TLS.
    #[arg(long, env = "KAFKA_CA_FILE")]
    pub kafka_ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for TLS client authentication (e.g. service.cert).
    #[arg(long, env = "KAFKA_CERT_FILE", requires = "kafka_key_file")]
    pub kafka_cert_file: Option<PathBuf>,
    /// Client private key (PEM) for TLS client authentication (e.g. service.key).
    #[arg(long, env = "KAFKA_KEY_FILE", requires = "kafka_cert_file")]
    pub kafka_key_file: Option<PathBuf>,
    /// SASL mechanism; needs a user name and password.
    #[arg(long, env = "KAFKA_SASL_MECHANISM", value_enum, requires_all = ["kafka_sasl_username", "kafka_sasl_password"])]
    pub kafka_sasl_mechanism: Option<SaslMechanism>,
    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,
    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    /// Printed as `***` by `Debug`.
    pub kafka_sasl_password: Option<Secret>,
}

/// Why the Kafka settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum KafkaConfigError {
    #[error("{variable}: {message}")]
    Invalid { variable: &'static str, message: String },
}

impl KafkaArgs {
    /// Settings for a local broker without TLS (tests).
    pub fn plaintext(brokers: &str, topic: &str) -> KafkaArgs {
        KafkaArgs {
            kafka_brokers: brokers.to_owned(),
            kafka_topic: topic.to_owned(),
            kafka_ca_file: None,
            kafka_cert_file: None,
            kafka_key_file: None,
            kafka_sasl_mechanism: None,
            kafka_sasl_username: None,
            kafka_sasl_password: None,
        }
    }

    /// Checks the settings and returns the librdkafka client configuration.
    pub fn client_config(&self) -> Result<ClientConfig, KafkaConfigError> {
        if self.kafka_brokers.split(',').any(|b| {
            b.trim()
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        }) {
            return Err(KafkaConfigError::Invalid {
                variable: "KAFKA_BROKERS",
                message: format!("{:?} must be host:port[,host:port...]", self.kafka_brokers),
            });
        }
        if self.kafka_topic.is_empty()
            || self.kafka_topic.len() > 249
            || !self
                .kafka_topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(KafkaConfigError::Invalid {
                variable: "KAFKA_TOPIC",
                message: format!(
                    "{:?} is not a valid topic name (letters, digits, '.', '_', '-')",
                    self.kafka_topic
                ),
            });
        }
        for (variable, path) in [
            ("KAFKA_CA_FILE", &self.kafka_ca_file),
            ("KAFKA_CERT_FILE", &self.kafka_cert_file),
            ("KAFKA_KEY_FILE", &self.kafka_key_file),
        ] {
            if let Some(path) = path
                && !path.is_file()
            {
                return Err(KafkaConfigError::Invalid {
                    variable,
                    message: format!("{} is not a readable file", path.display()),
                });
            }
        }
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.kafka_brokers);
        let tls = self.kafka_ca_file.is_some() || self.kafka_cert_file.is_some();
        let sasl = self.kafka_sasl_mechanism.is_some();
        config.set(
            "security.protocol",
            match (tls, sasl) {
                (false, false) => "plaintext",
                (true, false) => "ssl",
                (false, true) => "sasl_plaintext",
                (true, true) => "sasl_ssl",
            },
        );
        if let Some(ca) = &self.kafka_ca_file {
            config.set("ssl.ca.location", ca.display().to_string());
        }
        if let (Some(cert), Some(key)) = (&self.kafka_cert_file, &self.kafka_key_file) {
            config.set("ssl.certificate.location", cert.display().to_string());
            config.set("ssl.key.location", key.display().to_string());
        }
        if let Some(mechanism) = self.kafka_sasl_mechanism {
            config.set("sasl.mechanism", mechanism.as_str());
            config.set("sasl.username", self.kafka_sasl_username.clone().unwrap_or_default());
            config.set(
                "sasl.password",
                self.kafka_sasl_password.as_ref().map_or("", Secret::expose),
            );
        }
        Ok(config)
    }
}

/// How long creating a topic may wait for the brokers.
pub const TOPIC_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Creates `topic` with `partitions` partitions unless it exists.
///
/// Gives up after [`TOPIC_REQUEST_TIMEOUT`] when no broker answers (the
/// callers retry), and logs its client's errors through [`ErrorLog`].
pub async fn ensure_topic(config: &ClientConfig, topic: &str, partitions: i32, replication: i32) -> anyhow::Result<()> {
    let admin: AdminClient<QuietClient> = config.create_with_context(QuietClient::default())?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let options = AdminOptions::new()
        .operation_timeout(Some(TOPIC_REQUEST_TIMEOUT))
        .request_timeout(Some(TOPIC_REQUEST_TIMEOUT));
    let results = admin.create_topics([&new_topic], &options).await?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic, partitions, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => anyhow::bail!("creating topic {name}: {code}"),
        }
    }
    Ok(())
}

/// Logs the errors a Kafka client reports without flooding: librdkafka
/// repeats an outage's error (e.g. `AllBrokersDown`) at every reconnect
/// attempt, dozens of times a second across a worker's clients. Each kind
/// of error is logged as a warning when it first appears, again at most
/// every [`ErrorLog::REPEAT_EVERY`] while it persists, and at debug level
/// in between; `/readyz` and the metrics carry the state meanwhile.
#[derive(Debug, Default)]
pub struct ErrorLog {
    /// When each kind of error was last logged as a warning.
    last: Mutex<std::collections::HashMap<String, Instant>>,
}

impl ErrorLog {
    pub const REPEAT_EVERY: Duration = Duration::from_secs(30);

    /// Logs an error reported by librdkafka, with the settings to check when
    /// it is a TLS or SASL failure.
    pub fn report(&self, error: &KafkaError, reason: &str) {
        let check = settings_to_check(error, reason).unwrap_or("");
        if self.first_in_a_while(&error.to_string(), Instant::now()) {
            tracing::warn!(%error, reason, check, "Kafka client error (repeats are logged at most every 30 s)");
        } else {
            tracing::debug!(%error, reason, check, "Kafka client error");
        }
    }

    /// Whether `kind` was not logged as a warning within
    /// [`Self::REPEAT_EVERY`]; records it if so.
    fn first_in_a_while(&self, kind: &str, now: Instant) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last
            .get(kind)
            .is_some_and(|at| now.duration_since(*at) < Self::REPEAT_EVERY)
        {
            return false;
        }
        // librdkafka has a few dozen error codes; forget old ones anyway.
        if last.len() >= 64 {
            last.clear();
        }
        last.insert(kind.to_owned(), now);
        true
    }
}

/// Which of our settings a TLS or SASL failure points at: librdkafka names
/// its own options (`ssl.ca.location`), the operator set ours.
fn settings_to_check(error: &KafkaError, reason: &str) -> Option<&'static str> {
    let code = error.rdkafka_error_code();
    if code == Some(RDKafkaErrorCode::Authentication) || reason.contains("SASL authentication") {
        Some("KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (and KAFKA_SASL_MECHANISM): the broker refused the login")
    } else if code == Some(RDKafkaErrorCode::SSL) || reason.contains("SSL handshake failed") {
        Some(
            "KAFKA_CA_FILE (the CA that signed the brokers' certificates) and, when the broker wants a client certificate, KAFKA_CERT_FILE and KAFKA_KEY_FILE: the TLS handshake failed",
        )
    } else {
        None
    }
}

/// A client context whose only job is [`ErrorLog`].
#[derive(Debug, Default)]
pub struct QuietClient {
    errors: ErrorLog,
}

impl ClientContext for QuietClient {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.report(&error, reason);
    }
}

impl ProducerContext<NoCustomPartitioner> for QuietClient {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: ()) {}
}

/// Whether a broker answers, asked with a metadata request for the results
/// topic (the smallest request that needs a working connection).
///
/// Why a request and not librdkafka's per-broker `state` statistics: the
/// client connects sparsely and a broker closes idle connections
/// (`connections.max.idle.ms`, 10 minutes on Kafka), so an idle producer can
/// show no broker `UP` while the cluster is fine; a request either gets
/// through now or it does not. It uses a client of its own that never sends
/// anything but these requests (its thread serves the client's log and
/// error events), with `allow.auto.create.topics=false`, so asking about a
/// topic the worker has not created yet never makes the broker create it
/// with its default partition count.
#[derive(Clone)]
pub struct BrokerCheck {
    /// Used for metadata requests only; never produces.
    client: Arc<ThreadedProducer<QuietClient>>,
    /// The results topic: the request asks about it alone.
    topic: Arc<str>,
    /// How long one request may wait for a broker to answer.
    timeout: Duration,
}

impl BrokerCheck {
    /// How often a worker asks, and how long one request may wait.
    pub const EVERY: Duration = Duration::from_secs(3);
    pub const TIMEOUT: Duration = Duration::from_secs(3);

    /// Keeps `dependency` up while a broker answers, asking every
    /// [`Self::EVERY`], until the returned task is aborted.
    pub fn spawn_watch(kafka: &KafkaArgs, dependency: Dependency) -> anyhow::Result<JoinHandle<()>> {
        let check = BrokerCheck::new(kafka, Self::TIMEOUT)?;
        Ok(tokio::spawn(crate::telemetry::watch(
            dependency,
            Self::EVERY,
            // librdkafka gives up after TIMEOUT; this only guards the pool.
            Self::TIMEOUT + Duration::from_secs(1),
            move || {
                let check = check.clone();
                async move { check.answers().await }
            },
        )))
    }

    pub fn new(kafka: &KafkaArgs, timeout: Duration) -> anyhow::Result<BrokerCheck> {
        let client: ThreadedProducer<QuietClient> = kafka
            .client_config()?
            .set("allow.auto.create.topics", "false")
            .create_with_context(QuietClient::default())?;
        Ok(BrokerCheck {
            client: Arc::new(client),
            topic: kafka.kafka_topic.as_str().into(),
            timeout,
        })
    }

    /// Asks once. librdkafka blocks the calling thread until the answer or
    /// the timeout, so the request runs on tokio's blocking pool.
    pub async fn answers(&self) -> bool {
        let check = self.clone();
        tokio::task::spawn_blocking(move || {
            match check.client.client().fetch_metadata(Some(&check.topic), check.timeout) {
                Ok(_) => true,
                Err(err) => {
                    tracing::debug!(error = %err, "no broker answered a metadata request");
                    false
                }
            }
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_and_sasl_failures_name_the_settings_to_check() {
        let ssl = KafkaError::Global(RDKafkaErrorCode::SSL);
        let ca = settings_to_check(&ssl, "ssl://127.0.0.1:9093/bootstrap: SSL handshake failed").unwrap();
        assert!(ca.contains("KAFKA_CA_FILE") && ca.contains("KAFKA_CERT_FILE"), "{ca}");
        let sasl = KafkaError::Global(RDKafkaErrorCode::Authentication);
        let login = settings_to_check(&sasl, "SASL authentication error: Authentication failed").unwrap();
        assert!(login.contains("KAFKA_SASL_PASSWORD"), "{login}");
        // The same words in the reason are enough when the code is generic.
        let transport = KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure);
        assert!(settings_to_check(&transport, "x: SSL handshake failed: certificate verify failed").is_some());
        assert_eq!(settings_to_check(&transport, "Connection refused"), None);
        assert_eq!(
            settings_to_check(
                &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
                "1/1 brokers are down"
            ),
            None
        );
    }

    #[test]
    fn a_repeated_error_is_logged_once_in_a_while() {
        let log = ErrorLog::default();
        let start = Instant::now();
        assert!(log.first_in_a_while("AllBrokersDown", start));
        assert!(!log.first_in_a_while("AllBrokersDown", start + Duration::from_millis(50)));
        assert!(!log.first_in_a_while("AllBrokersDown", start + Duration::from_secs(29)));
        assert!(log.first_in_a_while("AllBrokersDown", start + Duration::from_secs(30)));
        // Another kind of error is news, and kinds that alternate are each
        // logged once.
        assert!(log.first_in_a_while("BrokerTransportFailure", start + Duration::from_secs(31)));
        assert!(!log.first_in_a_while("AllBrokersDown", start + Duration::from_secs(32)));
        assert!(!log.first_in_a_while("BrokerTransportFailure", start + Duration::from_secs(33)));
    }

    #[test]
    fn settings_are_checked_and_mapped() {
        let args = KafkaArgs::plaintext("127.0.0.1:9092", "monitor.checks");
        let config = args.client_config().unwrap();
        assert_eq!(config.get("security.protocol"), Some("plaintext"));
        for (brokers, topic, variable) in [
            ("nohost", "t", "KAFKA_BROKERS"),
            ("h:notaport", "t", "KAFKA_BROKERS"),
            ("h:9092", "bad topic", "KAFKA_TOPIC"),
            ("h:9092", "", "KAFKA_TOPIC"),
        ] {
            let err = KafkaArgs::plaintext(brokers, topic)
                .client_config()
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(variable), "{err}");
        }
        let mut tls = KafkaArgs::plaintext("h:9092", "t");
        tls.kafka_ca_file = Some("/nonexistent/ca.pem".into());
        assert!(
            tls.client_config()
                .unwrap_err()
                .to_string()
                .starts_with("KAFKA_CA_FILE")
        );
        let dir = std::env::temp_dir();
        let ca = dir.join(format!("ca-{}.pem", std::process::id()));
        std::fs::write(&ca, "x").unwrap();
        tls.kafka_ca_file = Some(ca.clone());
        tls.kafka_sasl_mechanism = Some(SaslMechanism::ScramSha512);
        tls.kafka_sasl_username = Some("u".into());
        tls.kafka_sasl_password = Some(Secret::new("p"));
        let config = tls.client_config().unwrap();
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(config.get("sasl.password"), Some("p"));
        std::fs::remove_file(ca).unwrap();
    }

    #[test]
    fn debug_output_hides_the_sasl_password() {
        let mut args = KafkaArgs::plaintext("h:9092", "t");
        args.kafka_sasl_mechanism = Some(SaslMechanism::Plain);
        args.kafka_sasl_username = Some("monitor".into());
        args.kafka_sasl_password = Some(Secret::new("sasl-hunter2"));
        let shown = format!("{args:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("monitor") && shown.contains("***"), "{shown}");
    }
}
