//! The results consumer's librdkafka callbacks ([`ConsumerEvents`]): which
//! partitions this member owns, revocations forwarded to the consuming loop,
//! and the per-partition lag gauges from librdkafka's statistics. Apart from
//! the rest of the consumer because librdkafka calls them on its own
//! schedule (inside `recv`), so they only record and forward.

use std::{
    collections::BTreeSet,
    sync::{Mutex, MutexGuard},
};

use prometheus_client::metrics::{family::Family, gauge::Gauge};
use rdkafka::{
    ClientContext, Statistics, TopicPartitionList,
    consumer::{ConsumerContext, Rebalance},
};
use tokio::sync::mpsc;

use crate::{kafka::ErrorLog, telemetry::PartitionLabels};

/// The consumer's callbacks: forwards revocations to the consuming loop and
/// turns librdkafka's statistics into the per-partition lag gauges.
///
/// Lag comes from the statistics' `consumer_lag` rather than from our own
/// `fetch_watermarks` calls: librdkafka already learns each fetched
/// partition's high watermark from every fetch response, so reading it costs
/// no request, and the statistics arrive on the consumer's own queue
/// (served by `recv`), so nothing blocks the runtime. `consumer_lag` is the
/// high watermark (the last stable offset under the default
/// `isolation.level=read_committed`, the same for our non-transactional
/// producers) minus the committed offset. The consumer commits to Kafka
/// only after a flush has stored its state and offsets in PostgreSQL
/// ([`super::FencedConsumer::committed`]), so it counts exactly the messages
/// not yet in that state (the aggregator's: not yet in the rollups), and it
/// is the number Kafka's own tools (kafka-consumer-groups, Burrow) show for the
/// group. librdkafka reports -1 while either end is unknown (no commit yet,
/// no fetch answered yet): the gauge is then left out rather than guessed.
pub struct ConsumerEvents {
    /// Where revocations go: the consuming loop flushes their pending state.
    revoked: mpsc::UnboundedSender<Vec<i32>>,
    /// The results topic, the only one subscribed (and the gauges' label).
    topic: String,
    /// Partitions this member owns now, maintained from the rebalances.
    owned: Mutex<BTreeSet<i32>>,
    /// Where the lag goes: replaced when the consumer's owner registers its metrics.
    lag: Mutex<Family<PartitionLabels, Gauge>>,
    /// The client's errors, logged without flooding during an outage.
    errors: ErrorLog,
}

impl ConsumerEvents {
    /// Callbacks for a consumer of `topic` that send revocations to
    /// `revoked` and set `lag`.
    pub fn new(topic: &str, revoked: mpsc::UnboundedSender<Vec<i32>>, lag: Family<PartitionLabels, Gauge>) -> Self {
        ConsumerEvents {
            revoked,
            topic: topic.to_owned(),
            owned: Mutex::new(BTreeSet::new()),
            lag: Mutex::new(lag),
            errors: ErrorLog::default(),
        }
    }

    /// The partitions this member owns now (held: rebalances wait).
    pub fn owned(&self) -> MutexGuard<'_, BTreeSet<i32>> {
        self.owned.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the lag in `lag` from now on (registered metrics replacing the
    /// unregistered ones the consumer started with).
    pub fn report_lag_to(&self, lag: Family<PartitionLabels, Gauge>) {
        *self.lag.lock().unwrap_or_else(|p| p.into_inner()) = lag;
    }

    fn labels(&self, partition: i32) -> PartitionLabels {
        PartitionLabels {
            topic: self.topic.clone(),
            partition,
        }
    }
}

impl ClientContext for ConsumerEvents {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.errors.report(&error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let owned = self.owned().clone();
        let partitions = statistics.topics.get(&self.topic).map(|topic| &topic.partitions);
        let lag = self.lag.lock().unwrap_or_else(|p| p.into_inner());
        for partition in owned {
            let known = partitions
                .and_then(|partitions| partitions.get(&partition))
                .map(|p| p.consumer_lag)
                .filter(|lag| *lag >= 0);
            match known {
                Some(value) => {
                    lag.get_or_create(&self.labels(partition)).set(value);
                }
                None => {
                    lag.remove(&self.labels(partition));
                }
            }
        }
    }
}

impl ConsumerEvents {
    /// The partitions of the results topic in a rebalance's list.
    fn ours(&self, partitions: &TopicPartitionList) -> Vec<i32> {
        partitions
            .elements()
            .iter()
            .filter(|e| e.topic() == self.topic)
            .map(|e| e.partition())
            .collect()
    }
}

impl ConsumerContext for ConsumerEvents {
    fn pre_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            let revoked = self.ours(partitions);
            tracing::info!(?revoked, "partitions revoked: flushing their state");
            let mut owned = self.owned();
            let lag = self.lag.lock().unwrap_or_else(|p| p.into_inner());
            for partition in &revoked {
                owned.remove(partition);
                lag.remove(&self.labels(*partition));
            }
            let _ = self.revoked.send(revoked);
        }
    }

    fn post_rebalance(&self, _consumer: &rdkafka::consumer::BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let assigned = self.ours(partitions);
            tracing::info!(?assigned, "partitions assigned");
            // Added, not replaced: with a cooperative assignor the list is
            // only the increment (with the default eager one, everything
            // was revoked first).
            self.owned().extend(assigned);
        }
    }
}
