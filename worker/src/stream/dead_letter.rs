//! The dead-letter queue: a topic that keeps the messages a consumer refuses
//! (with why, and where they came from), so that one bad message neither
//! stops a partition nor disappears. Sending waits until the broker has the
//! message, so a consumer moves its offset past it only once it is safe.

use std::{fmt::Display, time::Duration};

use rdkafka::{
    ClientConfig,
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};

use crate::kafka::{KafkaArgs, KafkaConfigError, QuietClient};

/// A consumer's dead-letter topic and the producer that writes to it.
pub struct DeadLetters {
    /// Idempotent, `acks=all`: a dead letter is written once and kept; its
    /// client errors go through [`crate::kafka::ErrorLog`].
    producer: FutureProducer<QuietClient>,
    /// The dead-letter topic.
    topic: String,
    /// The brokers and the consumed topic (named in every dead letter's
    /// headers); the topic is created with these settings when it is missing.
    kafka: KafkaArgs,
}

impl DeadLetters {
    /// A producer for `topic` from the consumer's client settings `base`.
    pub fn new(base: &ClientConfig, kafka: &KafkaArgs, topic: &str) -> anyhow::Result<Self> {
        let producer: FutureProducer<QuietClient> = base
            .clone()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .create_with_context(QuietClient::default())?;
        Ok(DeadLetters {
            producer,
            topic: topic.to_owned(),
            kafka: kafka.clone(),
        })
    }

    /// Creates the dead-letter topic unless it exists, so it is there before
    /// the first poison message; a broker that is down now is retried when
    /// one arrives.
    pub async fn ensure_topic(&self) -> Result<(), KafkaConfigError> {
        let config = self.kafka.client_config()?;
        if let Err(err) = crate::kafka::ensure_topic(&config, &self.topic, 1, 1).await {
            tracing::warn!(topic = self.topic, error = %err, "cannot create the dead-letter topic yet");
        }
        Ok(())
    }

    /// Sends a refused message to the DLQ topic, waiting until the broker
    /// has it (retrying, and creating the topic, while it cannot).
    pub async fn send(
        &self,
        partition: i32,
        offset: i64,
        key: Option<Vec<u8>>,
        payload: Option<Vec<u8>>,
        reason: &impl Display,
    ) {
        tracing::warn!(partition, offset, reason = %reason, "dead-lettering a message");
        let reason = reason.to_string();
        let (partition_text, offset_text) = (partition.to_string(), offset.to_string());
        let mut wait = Duration::from_millis(100);
        loop {
            let headers = OwnedHeaders::new()
                .insert(Header {
                    key: "reason",
                    value: Some(reason.as_str()),
                })
                .insert(Header {
                    key: "source-topic",
                    value: Some(self.kafka.kafka_topic.as_str()),
                })
                .insert(Header {
                    key: "source-partition",
                    value: Some(partition_text.as_str()),
                })
                .insert(Header {
                    key: "source-offset",
                    value: Some(offset_text.as_str()),
                });
            let mut record: FutureRecord<'_, Vec<u8>, Vec<u8>> = FutureRecord::to(&self.topic).headers(headers);
            if let Some(key) = &key {
                record = record.key(key);
            }
            if let Some(payload) = &payload {
                record = record.payload(payload);
            }
            match self.producer.send(record, Duration::from_secs(10)).await {
                Ok(_) => return,
                Err((err, _)) => {
                    tracing::warn!(error = %err, "dead-letter topic unavailable; retrying");
                    if let Ok(config) = self.kafka.client_config() {
                        let _ = crate::kafka::ensure_topic(&config, &self.topic, 1, 1).await;
                    }
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}
