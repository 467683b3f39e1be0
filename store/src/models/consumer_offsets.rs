//! `consumer_offsets`: the next Kafka offset per (group, topic, partition),
//! kept in PostgreSQL so that a consumer stores its progress in the same
//! transaction as the state it derived from the messages. A crash or a
//! replay then never counts a message twice or loses one.
//!
//! A flush of such a consumer is one transaction: [`fence`] (lock the
//! partitions, check their stored offsets are still the ones this member
//! started from), the consumer's own writes, then [`store_next`]. The
//! aggregator's rollups ([`super::job_metrics::flush`]) are written so; an
//! alert evaluator keeping its rule state in PostgreSQL would be too, under
//! its own group id.

use std::collections::HashMap;

use diesel::{
    ExpressionMethods, QueryDsl,
    sql_types::{Array, BigInt, Integer, Text},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{StoreError, schema::consumer_offsets};

/// The next offset of one partition, as this consumer expects to find it
/// stored (`expected`, None when none was stored) and as it writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProgress {
    /// The partition of the group's topic.
    pub partition: i32,
    /// What the fence expects to find stored: a different value means
    /// another member wrote the partition since this one read it.
    pub expected: Option<i64>,
    /// The first offset not yet accounted for, stored by the flush.
    pub next_offset: i64,
}

/// Serialises flushes of the same partitions, also where no offset row
/// exists yet (which `SELECT .. FOR UPDATE` cannot lock): without it two
/// members that both expect "nothing stored" would both pass the fence and
/// both count the same messages. Partitions are locked in ascending order.
const LOCK_PARTITIONS: &str = "
SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2), p) FROM UNNEST($3::int4[]) AS p";

const UPSERT_OFFSETS: &str = "
INSERT INTO consumer_offsets (group_id, topic, partition, next_offset)
SELECT $1, $2, * FROM UNNEST($3::int4[], $4::int8[])
ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now()";

/// Inside the flush's transaction, before its writes: locks the partitions
/// of `progress` until the transaction ends and returns those whose stored
/// offset is not the `expected` one (two statements). When any is returned
/// the flush is fenced: it must write nothing, and its member drops the
/// pending state of the partitions it flushed.
pub async fn fence(
    conn: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
    progress: &[PartitionProgress],
) -> Result<Vec<i32>, StoreError> {
    let mut partitions: Vec<i32> = progress.iter().map(|p| p.partition).collect();
    partitions.sort_unstable();
    diesel::sql_query(LOCK_PARTITIONS)
        .bind::<Text, _>(group)
        .bind::<Text, _>(topic)
        .bind::<Array<Integer>, _>(&partitions)
        .execute(conn)
        .await?;
    let stored: Vec<(i32, i64)> = consumer_offsets::table
        .filter(consumer_offsets::group_id.eq(group))
        .filter(consumer_offsets::topic.eq(topic))
        .filter(consumer_offsets::partition.eq_any(&partitions))
        .select((consumer_offsets::partition, consumer_offsets::next_offset))
        .for_update()
        .load(conn)
        .await?;
    let stored: HashMap<i32, i64> = stored.into_iter().collect();
    Ok(progress
        .iter()
        .filter(|p| stored.get(&p.partition).copied() != p.expected)
        .map(|p| p.partition)
        .collect())
}

/// Inside the flush's transaction, after its writes: stores the partitions'
/// next offsets (one statement).
pub async fn store_next(
    conn: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
    progress: &[PartitionProgress],
) -> Result<(), StoreError> {
    let partitions: Vec<i32> = progress.iter().map(|p| p.partition).collect();
    let offsets: Vec<i64> = progress.iter().map(|p| p.next_offset).collect();
    diesel::sql_query(UPSERT_OFFSETS)
        .bind::<Text, _>(group)
        .bind::<Text, _>(topic)
        .bind::<Array<Integer>, _>(&partitions)
        .bind::<Array<BigInt>, _>(&offsets)
        .execute(conn)
        .await?;
    Ok(())
}

/// The stored next offsets of `partitions` (absent: none stored yet).
pub async fn stored_offsets(
    conn: &mut AsyncPgConnection,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<HashMap<i32, i64>, StoreError> {
    let rows: Vec<(i32, i64)> = consumer_offsets::table
        .filter(consumer_offsets::group_id.eq(group))
        .filter(consumer_offsets::topic.eq(topic))
        .filter(consumer_offsets::partition.eq_any(partitions))
        .select((consumer_offsets::partition, consumer_offsets::next_offset))
        .load(conn)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Deletes every stored offset, of every group (database reset).
pub async fn delete_all(conn: &mut AsyncPgConnection) -> Result<usize, StoreError> {
    Ok(diesel::delete(consumer_offsets::table).execute(conn).await?)
}
