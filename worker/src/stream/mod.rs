//! Reading the results topic as a consumer group whose progress is stored in
//! PostgreSQL in the same transaction as what it derives from the messages:
//! the generic half of the aggregate role, for any second consumer of the
//! topic (an alert evaluator keeping its rule state in PostgreSQL) to reuse.
//!
//! - [`consumer`]: [`FencedConsumer`], the group member: subscribing, where
//!   each partition's reading stands against its stored offset (admit,
//!   skip a replay, seek back), the progress a flush stores and fences on,
//!   and the advisory Kafka commit after it.
//! - [`events`]: its librdkafka callbacks: owned partitions, revocations,
//!   lag gauges.
//! - [`decode`](mod@decode): a message value to a `CheckResult`, or why it is [`Poison`].
//! - [`dead_letter`]: [`DeadLetters`], where refused messages go.
//! - [`args`]: [`StoreConsumerArgs`], the settings such a consumer takes.
//!
//! The transaction itself is `monitor_store::models::consumer_offsets`
//! (`fence`, then the consumer's writes, then `store_next`).

pub mod args;
pub mod consumer;
pub mod dead_letter;
pub mod decode;
pub mod events;

pub use args::StoreConsumerArgs;
pub use consumer::{Admission, FencedConsumer};
pub use dead_letter::DeadLetters;
pub use decode::{Poison, decode};
