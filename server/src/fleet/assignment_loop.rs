//! The assignment loop: on a wake-up, a timer or a heartbeat tick it reads
//! the running jobs, keeps the lease and the epochs in the database, runs
//! one pass of `reconcile` and delivers what it decided.

use std::{collections::HashSet, sync::Arc, time::Instant};

use monitor_proto::v1::{ServerHeartbeat, connect_response};
use monitor_store::{DbPool, models::job};
use uuid::Uuid;

use super::{WorkerRegistry, reconcile::reconcile};
use crate::jobs::convert::job_from_row;

impl WorkerRegistry {
    /// Replaces the running-job cache from the database, reading only jobs
    /// that are new or changed.
    async fn refresh_jobs(&self, pool: &DbPool) -> Result<(), monitor_store::StoreError> {
        let mut conn = pool.get().await?;
        let versions = job::running_versions(&mut conn).await?;
        let stale: Vec<Uuid> = {
            let shared = self.lock();
            versions
                .iter()
                .filter(|(id, version)| shared.state.jobs.get(id).is_none_or(|j| j.version != *version))
                .map(|(id, _)| *id)
                .collect()
        };
        let fresh = if stale.is_empty() {
            Vec::new()
        } else {
            job::get_many(&mut conn, &stale).await?
        };
        let running: HashSet<Uuid> = versions.iter().map(|(id, _)| *id).collect();
        let mut shared = self.lock();
        let state = &mut shared.state;
        state.jobs_loaded = true;
        state.jobs.retain(|id, _| running.contains(id));
        for row in fresh {
            let id = row.id;
            match job_from_row(row) {
                Ok(job) => {
                    state.jobs.insert(id, Arc::new(job));
                }
                Err(err) => tracing::error!(job_id = %id, error = %err, "cannot schedule an unreadable job"),
            }
        }
        Ok(())
    }

    /// One assignment pass; hands out new assignments only when
    /// `may_assign`. Returns how many messages it sent.
    pub fn reconcile(&self, may_assign: bool) -> usize {
        let silence_limit = self.inner.config.silence_limit();
        let mut shared = self.lock();
        let messages = reconcile(&mut shared.state, Instant::now(), silence_limit, may_assign);
        // Streams found silent are ended.
        shared.end_stale_streams();
        let sent = messages.len();
        shared.deliver(messages);
        sent
    }

    /// Sends every connected worker a heartbeat.
    fn heartbeat(&self) {
        let shared = self.lock();
        let beats = shared
            .state
            .workers
            .keys()
            .map(|id| (id.clone(), connect_response::Kind::Heartbeat(ServerHeartbeat {})));
        shared.deliver(beats);
    }

    /// Runs the assignment loop and the heartbeats until the task is aborted.
    pub async fn run(self, pool: DbPool) {
        let config = self.inner.config;
        let mut heartbeat = tokio::time::interval(config.heartbeat_interval);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A timer of its own (not a sleep made anew each turn), so frequent
        // heartbeats cannot keep putting the pass off.
        let mut pass = tokio::time::interval(config.reconcile_interval);
        pass.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut db_ok = true;
        loop {
            tokio::select! {
                _ = self.inner.wake.notified() => {}
                _ = pass.tick() => {}
                _ = heartbeat.tick() => { self.heartbeat(); continue; }
            }
            match self.refresh_jobs(&pool).await {
                Ok(()) => {
                    if !db_ok {
                        tracing::info!("assignment loop reads the database again");
                    }
                    db_ok = true;
                }
                Err(err) => {
                    // Keep the last known jobs; workers keep running them.
                    if db_ok {
                        tracing::warn!(error = %err, "assignment loop cannot read jobs; keeping the last known set");
                    }
                    db_ok = false;
                }
            }
            // Nothing is handed out before the previous process's lease is
            // known (retried while the database is down).
            let wanted = self.lock().state.assignments_wanted();
            let may_assign =
                self.grace_known(&pool).await && self.keep_lease(&pool).await && self.keep_epochs(&pool, wanted).await;
            self.reconcile(may_assign);
        }
    }
}
