//! Kafka for tests: the shared broker's address, topics, and the clients a
//! test uses to feed or read a topic beside the workers; [`cluster`] starts
//! private brokers a test may kill.
//!
//! Every test uses topics and groups of its own ([`crate::fresh`]), so tests
//! share the broker at `KAFKA_BROKERS` and still run in parallel.

pub mod cluster;

use std::time::Duration;

pub use cluster::{KafkaCluster, KafkaOptions, SCRAM_PASSWORD, SCRAM_USER, TlsFiles};
use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::BaseConsumer,
    error::RDKafkaErrorCode,
    producer::FutureProducer,
};

/// How long a topic creation may take before the test fails.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared broker (`KAFKA_BROKERS`, default `127.0.0.1:9092`), for tests
/// that never stop it.
pub fn shared_brokers() -> String {
    std::env::var("KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// Creates `topic` on `brokers` (plaintext) with `partitions` and
/// `replication` copies; a topic that exists already is left alone.
pub async fn create_topic(brokers: &str, topic: &str, partitions: i32, replication: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("a Kafka admin client");
    let options = AdminOptions::new()
        .operation_timeout(Some(TOPIC_TIMEOUT))
        .request_timeout(Some(TOPIC_TIMEOUT));
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(replication));
    let results = admin
        .create_topics([&new_topic], &options)
        .await
        .unwrap_or_else(|err| panic!("creating topic {topic} on {brokers}: {err}"));
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => panic!("creating topic {name} on {brokers}: {code}"),
        }
    }
}

/// A producer batching and compressing as a probe does (idempotent, linger
/// 5 ms, lz4), so records share batches and a consumer resuming after a
/// crash may start inside one.
pub fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        .create()
        .expect("a Kafka producer")
}

/// A consumer in a fresh group that reads from the earliest offset and
/// commits nothing: an independent reader that disturbs no worker.
pub fn reader(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", crate::fresh("test-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a Kafka consumer")
}
