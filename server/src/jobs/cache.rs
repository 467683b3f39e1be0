//! A read cache of jobs behind GetJob (and GetJobStatus), kept coherent with
//! PostgreSQL by the `monitor_jobs` notifications a trigger sends for every
//! committed change (migration 4), so it stays right with several server
//! replicas and with changes made by SQL.
//!
//! The rules that keep it from serving a stale job:
//! - It caches only while [`follow`] is subscribed. Until the `LISTEN`
//!   succeeds, and from the moment the subscription breaks, it is empty and
//!   every read goes to the database.
//! - Every invalidation bumps a generation. A read takes the generation
//!   before it queries the database ([`JobCache::ticket`]) and stores its
//!   result only if no invalidation happened meanwhile
//!   ([`JobCache::insert`]), so a row read just before a change cannot
//!   outlive the change's notification.
//! - This replica's own writes invalidate at once, without waiting for the
//!   notification, so a client reads its own writes.
//!
//! Another replica's change is seen once its notification arrives, usually
//! within a millisecond of its commit.
//!
//! It holds jobs as answers show them, secrets redacted
//! ([`super::secrets::redact`]): it feeds GetJob and GetJobStatus and
//! nothing else. The worker registry reads the stored rows itself
//! (`WorkerRegistry::refresh_jobs`), so assignments carry the real values.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use futures::StreamExt as _;
use monitor_proto::v1::Job;
use monitor_store::{DbConn, DbPool, diesel_async::AsyncPgConnection, models::job};
use uuid::Uuid;

/// Most jobs held; past this the cache starts over (a full cache of this
/// size is a few tens of MiB).
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
struct State {
    /// Whether the change subscription is up (caching allowed).
    live: bool,
    /// Bumped by every invalidation.
    generation: u64,
    jobs: HashMap<Uuid, Job>,
}

/// Jobs by id; cheap to clone (shared).
#[derive(Clone, Debug, Default)]
pub struct JobCache(Arc<RwLock<State>>);

impl JobCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached job.
    pub fn get(&self, id: Uuid) -> Option<Job> {
        self.read().jobs.get(&id).cloned()
    }

    /// Taken before reading a job from the database; `None` while caching
    /// is off.
    pub fn ticket(&self) -> Option<u64> {
        let state = self.read();
        state.live.then_some(state.generation)
    }

    /// Stores a job read with `ticket`, unless an invalidation came since.
    pub fn insert(&self, ticket: u64, id: Uuid, job: Job) {
        let mut state = self.write();
        if !state.live || state.generation != ticket {
            return;
        }
        if state.jobs.len() >= MAX_ENTRIES && !state.jobs.contains_key(&id) {
            state.jobs.clear();
        }
        state.jobs.insert(id, job);
    }

    /// Drops one job (it changed or went away).
    pub fn invalidate(&self, id: Uuid) {
        let mut state = self.write();
        state.generation += 1;
        state.jobs.remove(&id);
    }

    /// Drops every job.
    pub fn clear(&self) {
        let mut state = self.write();
        state.generation += 1;
        state.jobs.clear();
    }

    /// Drops every job and turns caching on or off.
    pub fn reset(&self, live: bool) {
        let mut state = self.write();
        state.generation += 1;
        state.jobs.clear();
        state.live = live;
    }

    /// Jobs held now.
    pub fn len(&self) -> usize {
        self.read().jobs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the change subscription is up.
    pub fn is_live(&self) -> bool {
        self.read().live
    }
}

/// How often an idle subscription proves its connection works (a dead
/// peer can otherwise go unnoticed for the OS keepalive's two hours) and
/// that the triggers are still in place.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Keeps `cache` coherent for as long as the task runs: subscribes to job
/// changes on a connection of its own (taken out of `pool`) and invalidates
/// what each notification names. Caching is on only while that subscription
/// works and the triggers that send the notifications are in place (checked
/// at subscription and every [`HEARTBEAT`]); otherwise it is off and the
/// task tries again, backing off up to 30 s.
pub async fn follow(cache: JobCache, pool: DbPool) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match pool.get().await {
            // Out of the pool for good: it stays subscribed.
            Ok(pooled) => match subscribe(&cache, DbConn::take(pooled)).await {
                Ok(()) => backoff = Duration::from_millis(250),
                Err(why) => tracing::warn!(reason = why, "job cache off"),
            },
            Err(err) => tracing::debug!(error = %err, "no database connection for the job change subscription"),
        }
        cache.reset(false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Turns caching on and applies notifications until the subscription stops
/// working; `Ok` when it had been working (so the caller retries at once).
async fn subscribe(cache: &JobCache, mut conn: AsyncPgConnection) -> Result<(), String> {
    job::listen_for_changes(&mut conn)
        .await
        .map_err(|err| format!("cannot subscribe to job changes: {err}"))?;
    triggers_in_place(&mut conn).await?;
    // Anything read before the subscription may be stale.
    cache.reset(true);
    tracing::debug!("job cache follows job changes");
    loop {
        {
            let heartbeat = tokio::time::sleep(HEARTBEAT);
            tokio::pin!(heartbeat);
            let mut changes = std::pin::pin!(conn.notifications_stream());
            loop {
                tokio::select! {
                    change = changes.next() => match change {
                        Some(Ok(change)) => match Uuid::parse_str(&change.payload) {
                            Ok(id) => cache.invalidate(id),
                            Err(_) => cache.clear(),
                        },
                        Some(Err(err)) => return Err(format!("job change subscription failed: {err}")),
                        None => return Err("job change subscription ended".into()),
                    },
                    () = &mut heartbeat => break,
                }
            }
        }
        // Notifications that arrive meanwhile wait in the connection.
        triggers_in_place(&mut conn).await?;
    }
}

/// Checks, within 5 s, that the connection answers and both triggers fire.
async fn triggers_in_place(conn: &mut AsyncPgConnection) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(5), job::change_triggers_enabled(conn)).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => {
            Err("the jobs table has no enabled change triggers (apply the migrations: monitor-server migrate)".into())
        }
        Ok(Err(err)) => Err(format!("the job change subscription's connection failed: {err}")),
        Err(_) => Err("the job change subscription's connection did not answer within 5 s".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(name: &str) -> Job {
        Job {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn caches_only_while_live_and_without_intervening_changes() {
        let cache = JobCache::default();
        let id = Uuid::from_u128(1);
        assert_eq!(cache.ticket(), None, "off until the subscription is up");
        cache.reset(true);

        let ticket = cache.ticket().unwrap();
        cache.insert(ticket, id, job("a"));
        assert_eq!(cache.get(id).unwrap().name, "a");

        // A change notified while a read was in flight: the read's result
        // is not kept, even for another job.
        let ticket = cache.ticket().unwrap();
        cache.invalidate(Uuid::from_u128(2));
        cache.insert(ticket, id, job("stale"));
        assert_eq!(cache.get(id).unwrap().name, "a");

        cache.invalidate(id);
        assert!(cache.get(id).is_none());

        let ticket = cache.ticket().unwrap();
        cache.reset(false);
        cache.insert(ticket, id, job("b"));
        assert!(cache.is_empty(), "nothing is cached once the subscription broke");
        assert!(!cache.is_live());
    }
}
