//! Kafka for tests: the shared broker's address, topics, and the clients a
//! test uses to feed or read a topic beside the workers; [`cluster`] starts
//! private brokers a test may kill.
//!
//! Every test uses topics and groups of its own ([`crate::fresh`]), so tests
//! share the broker at `KAFKA_BROKERS` and still run in parallel.

pub mod cluster;

use std::time::{Duration, Instant};

pub use cluster::{KafkaCluster, KafkaOptions, SCRAM_PASSWORD, SCRAM_USER, TlsFiles};
use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    consumer::{BaseConsumer, Consumer},
    error::RDKafkaErrorCode,
    producer::{BaseRecord, DefaultProducerContext, FutureProducer, ThreadedProducer},
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

/// A producer for filling a benchmark's topic fast (linger 20 ms, batches
/// of 10 000, lz4, a queue of a million), with the client settings `config`.
pub fn bulk_producer(config: &ClientConfig) -> ThreadedProducer<DefaultProducerContext> {
    config
        .clone()
        .set("linger.ms", "20")
        .set("batch.num.messages", "10000")
        .set("compression.type", "lz4")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("a Kafka producer")
}

/// Sends `payload` keyed `key` to `topic`, waiting while the producer's
/// queue is full.
pub fn send_waiting(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &[u8], payload: &[u8]) {
    let mut record = BaseRecord::to(topic).key(key).payload(payload);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// The benchmarks' reference: a bare consumer in a fresh group that only
/// counts `messages` of `topic` (within 10 minutes); how many it counted
/// and how long from the first to the last.
pub fn bare_consume(config: &ClientConfig, topic: &str, messages: usize) -> (usize, Duration) {
    let bare: BaseConsumer = config
        .clone()
        .set("group.id", crate::fresh("bare"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a Kafka consumer");
    bare.subscribe(&[topic]).expect("subscribing");
    let (mut counted, mut first) = (0usize, None);
    let deadline = Instant::now() + Duration::from_secs(600);
    while counted < messages && Instant::now() < deadline {
        if let Some(Ok(_)) = bare.poll(Duration::from_millis(100)) {
            first.get_or_insert_with(Instant::now);
            counted += 1;
        }
    }
    (counted, first.map(|f| f.elapsed()).unwrap_or_default())
}
