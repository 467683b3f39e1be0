//! The notification dispatcher of the alert role: delivers the outbox to
//! the channels each row names.
//!
//! Every `poll` it claims what is due (`notification_delivery::claim`: it
//! locks channels with `FOR UPDATE SKIP LOCKED`, counts the attempt and
//! leases the rows): single deliveries, and for a channel with a
//! `group_wait` batches (everything due to it within that wait of the
//! first, sent as one message). It sends each claim's one message at once
//! and records each attempt and what follows
//! (`notification_delivery::finish`, fenced on the attempt number). The
//! decisions (retry when, give up) are `monitor_notify::retry`'s pure
//! functions; this loop only does I/O. A dispatcher killed while sending
//! leaves its rows to come due again when their lease ends, so a row is
//! sent again at most once more per crash, with the same delivery id (a
//! batch keeps its members and its id, `group:<batch>:<channel>`).

use std::{collections::HashMap, time::Duration};

use chrono::Utc;
use monitor_core::blocklist::Blocklist;
use monitor_notify::{
    delivery_id,
    payload::IncidentNotice,
    retry::{Decision, RetryPolicy, decide},
    send::Sender,
    settings::ChannelSettings,
};
use monitor_store::{
    DbPool, StoreError,
    models::{
        incident::{IncidentRow, OutboxRow},
        notification_channel::{self, ChannelRow},
        notification_delivery::{self, Attempt, Claim, Next},
    },
    schema::{incidents, notification_outbox},
};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tokio::sync::watch;
use uuid::Uuid;

/// The dispatcher's settings.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// How often due deliveries are looked for.
    pub poll: Duration,
    /// Most channels served, and most single deliveries claimed, per poll
    /// (all sent at once).
    pub batch: i64,
    /// A claimed delivery is due again after this long if its dispatcher
    /// never records the attempt (longer than the send timeout).
    pub lease: Duration,
    /// Longest one attempt may take.
    pub send_timeout: Duration,
    pub retry: RetryPolicy,
    /// Networks channel URLs may not reach (as the server's).
    pub blocklist: Blocklist,
    /// Base of the incident links in payloads, e.g.
    /// `https://monitor.example.com/ui/` (None: no links).
    pub dashboard_url: Option<String>,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            poll: Duration::from_millis(500),
            batch: 50,
            lease: Duration::from_secs(60),
            send_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            blocklist: Blocklist::default(),
            dashboard_url: None,
        }
    }
}

/// Metrics are labelled by channel kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// The per-channel metric is labelled by channel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabels {
    pub channel_id: String,
    pub kind: String,
}

/// What the dispatcher counts.
#[derive(Clone)]
pub struct DispatchMetrics {
    /// Failed attempts in a row this dispatcher made to a channel since
    /// its last delivered one: a channel that keeps failing shows here
    /// (with several dispatchers, take the max over them).
    pub consecutive_failures: Family<ChannelLabels, Gauge>,
    pub sent: Family<KindLabels, Counter>,
    pub failed: Family<KindLabels, Counter>,
    pub retried: Family<KindLabels, Counter>,
    pub given_up: Family<KindLabels, Counter>,
    pub latency: Family<KindLabels, Histogram>,
}

impl Default for DispatchMetrics {
    fn default() -> Self {
        DispatchMetrics {
            consecutive_failures: Family::default(),
            sent: Family::default(),
            failed: Family::default(),
            retried: Family::default(),
            given_up: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
            }),
        }
    }
}

impl DispatchMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = DispatchMetrics::default();
        registry.register(
            "notify_sent",
            "Notifications the far end accepted (2xx)",
            metrics.sent.clone(),
        );
        registry.register(
            "notify_failed",
            "Attempts that failed (no answer or not 2xx)",
            metrics.failed.clone(),
        );
        registry.register(
            "notify_retried",
            "Failed attempts scheduled again",
            metrics.retried.clone(),
        );
        registry.register(
            "notify_given_up",
            "Deliveries given up (refused for good or out of time)",
            metrics.given_up.clone(),
        );
        registry.register(
            "notify_channel_consecutive_failures",
            "Failed attempts in a row to a channel since its last delivery (this dispatcher's)",
            metrics.consecutive_failures.clone(),
        );
        registry.register(
            "notify_latency_seconds",
            "Duration of one attempt",
            metrics.latency.clone(),
        );
        metrics
    }
}

/// Delivers the outbox.
pub struct Dispatcher {
    pool: DbPool,
    sender: Sender,
    config: DispatchConfig,
    metrics: DispatchMetrics,
}

impl Dispatcher {
    pub fn new(pool: DbPool, config: DispatchConfig, metrics: DispatchMetrics) -> anyhow::Result<Dispatcher> {
        let sender = Sender::new(config.blocklist.clone(), config.send_timeout)?;
        Ok(Dispatcher {
            pool,
            sender,
            config,
            metrics,
        })
    }

    /// Polls until `shutdown`; attempts in flight then finish first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut timer = tokio::time::interval(self.config.poll);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !*shutdown.borrow() {
            tokio::select! {
                _ = shutdown.wait_for(|stop| *stop) => break,
                _ = timer.tick() => {}
            }
            match self.dispatch_once().await {
                // A full batch: more are probably due, go on at once.
                Ok(claimed) if claimed as i64 >= self.config.batch => timer.reset_immediately(),
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "notification dispatch failed; retrying at the next poll"),
            }
        }
    }

    /// Claims what is due, sends each claim's message at once and records
    /// the attempts; how many claims there were.
    pub async fn dispatch_once(&self) -> Result<usize, StoreError> {
        let claims = {
            let mut conn = self.pool.get().await?;
            notification_delivery::claim(&mut conn, self.config.lease, self.config.batch).await?
        };
        if claims.is_empty() {
            return Ok(0);
        }
        let count = claims.len();
        // Unsent claims come back when their lease ends.
        let context = self.load(&claims).await?;
        let attempts = futures::future::join_all(claims.into_iter().map(|claim| self.attempt(claim, &context))).await;
        self.record(attempts.into_iter().flatten().collect()).await;
        Ok(count)
    }

    /// What the claims' messages are made of, in three queries.
    async fn load(&self, claims: &[Claim]) -> Result<Context, StoreError> {
        use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
        use monitor_store::diesel_async::RunQueryDsl;
        let outbox_ids: Vec<i64> = claims.iter().flat_map(Claim::outbox_ids).collect();
        let mut channel_ids: Vec<Uuid> = claims.iter().map(|claim| claim.channel_id).collect();
        channel_ids.sort();
        channel_ids.dedup();
        let mut conn = self.pool.get().await?;
        let rows: HashMap<i64, OutboxRow> = notification_outbox::table
            .filter(notification_outbox::id.eq_any(&outbox_ids))
            .select(OutboxRow::as_select())
            .load(&mut conn)
            .await?
            .into_iter()
            .map(|row: OutboxRow| (row.id, row))
            .collect();
        let channels = notification_channel::get_many(&mut conn, &channel_ids)
            .await?
            .into_iter()
            .map(|channel| (channel.id, channel))
            .collect();
        let incident_ids: Vec<Uuid> = rows.values().map(|row| row.incident_id).collect();
        let incidents = incidents::table
            .filter(incidents::id.eq_any(&incident_ids))
            .select(IncidentRow::as_select())
            .load(&mut conn)
            .await?
            .into_iter()
            .map(|incident: IncidentRow| (incident.id, incident))
            .collect();
        Ok(Context {
            rows,
            channels,
            incidents,
        })
    }

    /// What `row` tells of `incident`, as channels receive it.
    fn notice(&self, row: &OutboxRow, incident: &IncidentRow) -> IncidentNotice {
        IncidentNotice {
            event: row.event.clone(),
            dedup_key: row.dedup_key.clone(),
            occurred_at: row.created_at,
            incident_id: incident.id,
            cause: incident.cause.clone(),
            severity: incident.severity.clone(),
            job_id: incident.job_id,
            job_name: incident.job_name.clone(),
            rule_id: incident.rule_id,
            rule_name: incident.rule_name.clone(),
            failing_locations: incident.failing_locations.iter().flatten().cloned().collect(),
            first_failure: incident.first_failure.clone(),
            opened_at: incident.opened_at,
            acknowledged_at: incident.acknowledged_at,
            acknowledged_by: incident.acknowledged_by.clone(),
            resolved_at: incident.resolved_at,
            resolved_by: incident.resolved_by.clone(),
            dashboard_url: self
                .config
                .dashboard_url
                .as_ref()
                .map(|base| format!("{}/#/incidents/{}", base.trim_end_matches('/'), incident.id)),
        }
    }

    /// Sends `claim`'s message and decides what follows; None when there is
    /// nothing left to send (its outbox rows or channel went since).
    async fn attempt(&self, claim: Claim, context: &Context) -> Option<Made> {
        let channel = context.channels.get(&claim.channel_id)?;
        let rows: Vec<&OutboxRow> = claim
            .members
            .iter()
            .filter_map(|member| context.rows.get(&member.outbox_id))
            .collect();
        let notices: Vec<IncidentNotice> = rows
            .iter()
            .filter_map(|row| Some(self.notice(row, context.incidents.get(&row.incident_id)?)))
            .collect();
        if notices.is_empty() {
            return None;
        }
        let labels = KindLabels {
            kind: channel.kind.clone(),
        };
        let now = Utc::now();
        let elapsed = (now - claim.first_due()).to_std().unwrap_or_default();
        let (attempt, decision) = match ChannelSettings::from_stored(&channel.kind, &channel.settings) {
            Err(err) => (
                Attempt {
                    at: now,
                    http_status: None,
                    error: err.to_string(),
                    reply: String::new(),
                    duration_ms: 0,
                },
                Decision::GiveUp("the channel's stored settings are unreadable".into()),
            ),
            Ok(settings) => {
                let id = match (&claim.batch_id, rows.as_slice()) {
                    (Some(batch_id), [_, _, ..]) => format!("group:{batch_id}:{}", channel.id),
                    _ => delivery_id(&rows[0].dedup_key, channel.id),
                };
                let sent = self.sender.deliver(&settings, &notices, &id, now).await;
                self.metrics
                    .latency
                    .get_or_create(&labels)
                    .observe(sent.duration.as_secs_f64());
                let decision = decide(
                    &self.config.retry,
                    u32::try_from(claim.attempt).unwrap_or(1),
                    &sent.answer,
                    elapsed,
                    rand::random::<f64>(),
                );
                (
                    Attempt {
                        at: now,
                        http_status: sent.status().map(i32::from),
                        error: sent.error.clone(),
                        reply: sent.body_excerpt.clone(),
                        duration_ms: i64::try_from(sent.duration.as_millis()).unwrap_or(i64::MAX),
                    },
                    decision,
                )
            }
        };
        let what = match rows.as_slice() {
            [row] => format!("{} notification", row.event),
            rows => format!("grouped notification of {} events", rows.len()),
        };
        let next = match &decision {
            Decision::Delivered => Next::Delivered,
            Decision::Retry(wait) => Next::Retry(*wait),
            Decision::GiveUp(reason) => Next::GiveUp {
                detail: format!(
                    "{what} to channel {:?} ({}) given up after {} attempt(s): {reason}; last error: {}",
                    channel.name, channel.id, claim.attempt, attempt.error
                ),
            },
        };
        Some(Made {
            claim,
            kind: channel.kind.clone(),
            attempt,
            decision,
            next,
        })
    }

    /// Counts the attempts and records them in one transaction (one commit
    /// for the whole poll); if that fails, each on its own, so one bad
    /// record does not send the others again.
    async fn record(&self, made: Vec<Made>) {
        for one in &made {
            let labels = KindLabels { kind: one.kind.clone() };
            let failures = self.metrics.consecutive_failures.get_or_create(&ChannelLabels {
                channel_id: one.claim.channel_id.to_string(),
                kind: one.kind.clone(),
            });
            match &one.decision {
                Decision::Delivered => {
                    failures.set(0);
                    self.metrics.sent.get_or_create(&labels).inc();
                }
                Decision::Retry(_) => {
                    failures.inc();
                    self.metrics.failed.get_or_create(&labels).inc();
                    self.metrics.retried.get_or_create(&labels).inc();
                }
                Decision::GiveUp(_) => {
                    failures.inc();
                    self.metrics.failed.get_or_create(&labels).inc();
                    self.metrics.given_up.get_or_create(&labels).inc();
                }
            }
        }
        let finishes: Vec<(&Claim, &Attempt, &Next)> =
            made.iter().map(|one| (&one.claim, &one.attempt, &one.next)).collect();
        let recorded = match self.pool.get().await {
            Ok(mut conn) => notification_delivery::finish_all(&mut conn, &finishes).await,
            Err(err) => Err(err.into()),
        };
        let recorded = match recorded {
            Ok(recorded) => recorded.into_iter().map(Ok).collect(),
            Err(err) => {
                tracing::warn!(error = %err, "recording a poll's attempts together failed; recording each alone");
                let mut each = Vec::with_capacity(finishes.len());
                for finish in &finishes {
                    each.push(match self.pool.get().await {
                        Ok(mut conn) => notification_delivery::finish_all(&mut conn, &[*finish])
                            .await
                            .map(|recorded| recorded[0]),
                        Err(err) => Err(err.into()),
                    });
                }
                each
            }
        };
        for (one, recorded) in made.iter().zip(recorded) {
            let claim = &one.claim;
            match recorded {
                Ok(recorded) => tracing::info!(
                    outbox_ids = ?claim.outbox_ids(),
                    batch_id = ?claim.batch_id,
                    channel_id = %claim.channel_id,
                    attempt = claim.attempt,
                    status = ?one.attempt.http_status,
                    error = %one.attempt.error,
                    outcome = ?one.decision,
                    fenced = !recorded,
                    "notification attempt"
                ),
                // The lease brings the delivery back.
                Err(err) => tracing::warn!(
                    outbox_ids = ?claim.outbox_ids(),
                    channel_id = %claim.channel_id,
                    error = %err,
                    "notification attempt not recorded"
                ),
            }
        }
    }
}

/// What a poll's messages are made of.
struct Context {
    rows: HashMap<i64, OutboxRow>,
    channels: HashMap<Uuid, ChannelRow>,
    incidents: HashMap<Uuid, IncidentRow>,
}

/// One attempt made, to be counted and recorded.
struct Made {
    claim: Claim,
    kind: String,
    attempt: Attempt,
    decision: Decision,
    next: Next,
}
