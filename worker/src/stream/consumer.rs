//! [`FencedConsumer`]: a consumer-group member of the results topic whose
//! progress lives in PostgreSQL (`consumer_offsets`) beside the state it
//! derives from the messages, not in Kafka.
//!
//! Per partition it knows the offset stored when its owner's pending state
//! started (`expected`, what the next flush's fence checks) and the next
//! offset to account for. It places every message against them: the next
//! one is admitted, a replayed one is a duplicate, and when Kafka resumed
//! past the stored offset it seeks back. Its owner writes a flush as one
//! transaction (`consumer_offsets::fence`, its own writes,
//! `consumer_offsets::store_next`) with the progress from
//! [`FencedConsumer::take_progress`], then reports how it ended
//! ([`FencedConsumer::committed`] or [`FencedConsumer::forget`]). Kafka's own
//! committed offsets follow the database, for lag only.

use std::{collections::HashMap, time::Duration};

use monitor_store::{
    DbPool,
    models::consumer_offsets::{self, PartitionProgress},
};
use prometheus_client::metrics::{family::Family, gauge::Gauge};
use rdkafka::{
    ClientConfig, Message, Offset, TopicPartitionList,
    consumer::{CommitMode, Consumer, StreamConsumer},
    error::KafkaError,
    message::OwnedMessage,
};
use tokio::sync::mpsc;

use super::events::ConsumerEvents;
use crate::telemetry::PartitionLabels;

/// How often librdkafka reports its statistics, from which the lag gauges
/// are set.
const STATISTICS_INTERVAL: Duration = Duration::from_secs(5);

/// Where one partition's reading stands.
#[derive(Debug)]
struct Position {
    /// The offset stored in the database when this state started (None:
    /// nothing stored yet); the flush checks it is unchanged.
    expected: Option<i64>,
    /// The next offset to account for.
    next_offset: i64,
}

/// What [`FencedConsumer::admit`] made of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The next message of its partition, accounted for from now on: the
    /// owner adds it to its pending state or dead-letters it.
    Next,
    /// Already accounted for (replay after a crash or a seek): skip it.
    Duplicate,
    /// Reading had resumed past the stored offset; the consumer sought back
    /// to it, so this message comes again: skip it.
    SoughtBack,
    /// Seeking back failed: the partition's position was dropped and is
    /// reloaded from the stored offset; the owner drops the partition's
    /// pending state too.
    Dropped,
}

/// A group member of one topic with its offsets kept in PostgreSQL.
pub struct FencedConsumer {
    /// Subscribed to the topic; never commits by itself.
    consumer: StreamConsumer<ConsumerEvents>,
    /// Where the stored offsets are read.
    pool: DbPool,
    /// The consumer group, also the key of its rows in `consumer_offsets`.
    group: String,
    /// The topic read.
    topic: String,
    /// Positions of partitions with messages since their assignment.
    positions: HashMap<i32, Position>,
    /// Stored offsets of partitions seen since their assignment.
    stored: HashMap<i32, Option<i64>>,
}

impl FencedConsumer {
    /// Joins `group` on `topic` with the client settings `base`. Revocations
    /// arrive on the returned receiver (the owner flushes those partitions'
    /// state, then calls [`Self::forget`]); lag is set in `lag`. With
    /// `report_eof`, [`Self::recv`] returns `KafkaError::PartitionEOF` each
    /// time reading reaches the end of a partition (how an owner learns it
    /// is up to date).
    pub fn subscribe(
        base: &ClientConfig,
        topic: &str,
        group: &str,
        session_timeout_ms: u64,
        report_eof: bool,
        pool: DbPool,
        lag: Family<PartitionLabels, Gauge>,
    ) -> anyhow::Result<(Self, mpsc::UnboundedReceiver<Vec<i32>>)> {
        let (revoked_tx, revoked) = mpsc::unbounded_channel();
        let events = ConsumerEvents::new(topic, revoked_tx, lag);
        let consumer: StreamConsumer<ConsumerEvents> = base
            .clone()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", session_timeout_ms.to_string())
            .set("heartbeat.interval.ms", (session_timeout_ms / 3).to_string())
            .set("statistics.interval.ms", STATISTICS_INTERVAL.as_millis().to_string())
            .set("enable.partition.eof", report_eof.to_string())
            .create_with_context(events)?;
        consumer.subscribe(&[topic])?;
        let fenced = FencedConsumer {
            consumer,
            pool,
            group: group.to_owned(),
            topic: topic.to_owned(),
            positions: HashMap::new(),
            stored: HashMap::new(),
        };
        Ok((fenced, revoked))
    }

    /// Sets the lag in `lag` from now on.
    pub fn report_lag_to(&self, lag: Family<PartitionLabels, Gauge>) {
        self.consumer.context().report_lag_to(lag);
    }

    /// The next message (its callbacks run meanwhile).
    pub async fn recv(&self) -> Result<OwnedMessage, KafkaError> {
        self.consumer.recv().await.map(|m| m.detach())
    }

    /// The partitions this member owns now.
    pub fn owned(&self) -> std::collections::BTreeSet<i32> {
        self.consumer.context().owned().clone()
    }

    /// How many partitions the topic has (None: the broker did not say
    /// within 2 s). Blocks the thread meanwhile.
    pub fn partition_count(&self) -> Option<usize> {
        let metadata =
            tokio::task::block_in_place(|| self.consumer.fetch_metadata(Some(&self.topic), Duration::from_secs(2)))
                .ok()?;
        let topic = metadata.topics().iter().find(|t| t.name() == self.topic)?;
        (!topic.partitions().is_empty()).then_some(topic.partitions().len())
    }

    /// What a flush of `partition` must find stored, when known without
    /// reading the database: Some(None) means nothing is stored yet; None
    /// means not read yet ([`Self::stored_offset`] reads it).
    pub fn held(&self, partition: i32) -> Option<Option<i64>> {
        match self.positions.get(&partition) {
            Some(position) => Some(position.expected),
            None => self.stored.get(&partition).copied(),
        }
    }

    /// Forgets `partitions` (see [`Self::forget`]) and seeks them back to
    /// their stored offsets at once, so what was read since is read again
    /// even if nothing new arrives (when seeking fails, the next message
    /// read there seeks back instead).
    pub async fn rewind(&mut self, partitions: &[i32]) {
        self.forget(partitions);
        for partition in partitions {
            let target = match self.stored_offset(*partition).await {
                Some(stored) => Offset::Offset(stored),
                None => Offset::Beginning,
            };
            if let Err(err) = self
                .consumer
                .seek(&self.topic, *partition, target, Duration::from_secs(5))
            {
                tracing::debug!(partition, error = %err, "seek back failed; the next message read seeks back");
            }
        }
    }

    /// The stored offset of `partition`, read once per assignment; retries
    /// while the database is down (the consumer waits meanwhile).
    pub async fn stored_offset(&mut self, partition: i32) -> Option<i64> {
        if let Some(stored) = self.stored.get(&partition) {
            return *stored;
        }
        let mut wait = Duration::from_millis(100);
        loop {
            let read = async {
                let mut conn = self.pool.get().await?;
                consumer_offsets::stored_offsets(&mut conn, &self.group, &self.topic, &[partition]).await
            };
            match read.await {
                Ok(offsets) => {
                    let stored = offsets.get(&partition).copied();
                    self.stored.insert(partition, stored);
                    return stored;
                }
                Err(err) => {
                    tracing::warn!(partition, error = %err, "cannot read stored offsets; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Places `message` against its partition's stored and next offsets.
    pub async fn admit(&mut self, message: &OwnedMessage) -> Admission {
        let (partition, offset) = (message.partition(), message.offset());
        let stored = self.stored_offset(partition).await;
        if !self.positions.contains_key(&partition)
            && let Some(stored) = stored.filter(|stored| offset < *stored)
        {
            // Normal after a crash (a replay); after the topic was deleted and
            // created again it means the stored offsets are stale (README).
            tracing::info!(
                partition,
                offset,
                stored,
                "skipping messages below the offset stored with the rollups (already counted)"
            );
        }
        let position = self.positions.entry(partition).or_insert_with(|| Position {
            expected: stored,
            next_offset: stored.unwrap_or(offset),
        });
        if offset < position.next_offset {
            return Admission::Duplicate;
        }
        if offset > position.next_offset {
            // Kafka resumed past what the database accounts for: go back to
            // the stored offset (retrying while the fetcher settles).
            let target = position.next_offset;
            tracing::warn!(
                partition,
                offset,
                target,
                "reading resumed past the stored offset; seeking back"
            );
            for attempt in 1..=50 {
                match self
                    .consumer
                    .seek(&self.topic, partition, Offset::Offset(target), Duration::from_secs(5))
                {
                    Ok(()) => return Admission::SoughtBack,
                    Err(err) => {
                        tracing::warn!(partition, attempt, error = %err, "seek failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            tracing::error!(
                partition,
                "could not seek back; dropping the partition's state to reload it"
            );
            self.forget(&[partition]);
            return Admission::Dropped;
        }
        position.next_offset = offset + 1;
        Admission::Next
    }

    /// The progress of the `wanted` partitions that moved since the last
    /// flush taken, for the next flush; their positions from now on assume
    /// it will commit (if it does not, [`Self::forget`] them: they are
    /// re-read from their stored offsets).
    pub fn take_progress(&mut self, wanted: impl Fn(i32) -> bool) -> Vec<PartitionProgress> {
        let progress: Vec<PartitionProgress> = self
            .positions
            .iter()
            .filter(|(p, s)| wanted(**p) && s.expected != Some(s.next_offset))
            .map(|(p, s)| PartitionProgress {
                partition: *p,
                expected: s.expected,
                next_offset: s.next_offset,
            })
            .collect();
        for (_, position) in self.positions.iter_mut().filter(|(p, _)| wanted(**p)) {
            position.expected = Some(position.next_offset);
        }
        progress
    }

    /// Records that a flush of `progress` committed, and commits its offsets
    /// to Kafka (advisory, for lag and Kafka's tools).
    pub fn committed(&mut self, progress: &[PartitionProgress]) {
        // Kafka offsets only for partitions still owned: a late
        // commit of a revoked one could move the group's offset back
        // behind the new owner's.
        let owned = self.consumer.context().owned();
        let mut commit = TopicPartitionList::new();
        for p in progress {
            self.stored.insert(p.partition, Some(p.next_offset));
            if !owned.contains(&p.partition) {
                continue;
            }
            let _ = commit.add_partition_offset(&self.topic, p.partition, Offset::Offset(p.next_offset));
        }
        drop(owned);
        if commit.count() > 0
            && let Err(err) = self.consumer.commit(&commit, CommitMode::Async)
        {
            tracing::debug!(error = %err, "Kafka offset commit failed (advisory; the database holds the truth)");
        }
    }

    /// Drops the positions of `partitions` (revoked, or their flush was
    /// fenced or not written): they are reloaded from the stored offsets.
    pub fn forget(&mut self, partitions: &[i32]) {
        for partition in partitions {
            self.positions.remove(partition);
            self.stored.remove(partition);
        }
    }
}
