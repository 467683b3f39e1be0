//! The job catalog: the domain operations behind JobService, shared by the
//! gRPC service, the REST gateway and the jobs-file import.
//!
//! Methods take and return `monitor.v1` messages, so every surface speaks
//! the same contract; SQL stays in `monitor_store`, rules in [`validate`].
//! Every job a method returns has its secrets redacted ([`secrets`]); the
//! worker registry reads the stored rows itself, with the real values.
//!
//! Beside the catalog: ListJobs' filters and page tokens (`list_filter`,
//! [`page_token`]), job status from the fleet's placements ([`status`]),
//! ListJobSummaries (`summaries`), the rules of each check kind beyond
//! HTTP and TCP (`kinds`, used by [`validate`]), QueryMetrics' parsing and maths
//! ([`metrics`]), the GetJob cache ([`cache`]) and row conversion
//! ([`convert`]).

pub mod cache;
pub mod convert;
mod kinds;
mod list_filter;
pub mod metrics;
pub mod page_token;
pub mod secrets;
pub mod status;
mod summaries;
pub mod validate;

use monitor_proto::v1::{
    CreateJobRequest, DeleteJobRequest, GetJobRequest, Job, JobState, JobStatus, ListJobsRequest, ListJobsResponse,
    QueryMetricsRequest, QueryMetricsResponse, UpdateJobRequest,
};
use monitor_store::{
    DbConn, DbPool, StoreError,
    diesel_async::AsyncConnection,
    models::{
        job::{self, JobCounts, JobFields, STATE_RUNNING, STATE_STOPPED},
        job_metrics,
    },
    rollup::Rollup,
};
use tracing::instrument;
use uuid::Uuid;

use crate::{error::ApiError, fleet::WorkerRegistry};
use convert::job_from_row;
use list_filter::list_filter;
pub use summaries::SUMMARY_GRANULARITY;
use validate::validate_job;

/// Default and largest ListJobs page sizes.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 1000;

/// Fields UpdateJob may name in its update mask.
pub const UPDATABLE_FIELDS: &[&str] = &[
    "name",
    "labels",
    "interval",
    "timeout",
    "desired_state",
    "locations",
    "http",
    "tcp",
    "dns",
    "icmp",
    "grpc_health",
    "websocket",
];

/// The members of `Job.check` UpdateJob takes (each built kind's name):
/// naming any of them replaces the check.
const CHECK_FIELDS: &[&str] = &["http", "tcp", "dns", "icmp", "grpc_health", "websocket"];

/// Jobs in PostgreSQL, behind the API's rules.
#[derive(Clone)]
pub struct JobCatalog {
    pool: DbPool,
    /// Jobs by id for GetJob, coherent through PostgreSQL notifications
    /// while [`cache::follow`] runs (off otherwise).
    cache: cache::JobCache,
    /// Told about every change, so workers hear of it at once.
    workers: WorkerRegistry,
}

/// Result of StartJob / StopJob: the answer with its message for people
/// (built from the store's `job::DesiredStateUpdate`).
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    pub job: Job,
    pub changed: bool,
    pub message: String,
}

/// What a database reset deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub jobs: i64,
    /// Rollup rows (`job_metrics`); stored consumer offsets go with them.
    pub rollups: i64,
}

/// Parses an API job id.
pub fn parse_id(field: &str, id: &str) -> Result<Uuid, ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Uuid::parse_str(id).map_err(|_| ApiError::invalid(field, format!("{id:?} is not a job id (a UUID)")))
}

/// A stored row as API answers show it: secrets redacted.
fn answer(row: job::JobRow) -> Result<Job, ApiError> {
    job_from_row(row).map(secrets::redact)
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::NotFound(format!("job {id} not found"))
}

/// Maps a store error about job `id` (or the job named `name`).
fn job_error(err: StoreError, id: Option<Uuid>, name: Option<&str>) -> ApiError {
    match err {
        StoreError::NotFound => match id {
            Some(id) => not_found(id),
            None => ApiError::NotFound("job not found".into()),
        },
        StoreError::UniqueViolation { constraint } if constraint == "jobs_name_key" => {
            ApiError::AlreadyExists(format!("a job named {:?} already exists", name.unwrap_or_default()))
        }
        StoreError::VersionConflict { current } => ApiError::Aborted(format!(
            "job {} was changed concurrently and is now at version {current}; read it again and retry",
            id.map(|id| id.to_string()).unwrap_or_default()
        )),
        other => ApiError::from_store(other),
    }
}

impl JobCatalog {
    pub fn new(pool: DbPool, workers: WorkerRegistry) -> Self {
        JobCatalog {
            pool,
            workers,
            cache: cache::JobCache::default(),
        }
    }

    /// The read cache, for the task that keeps it coherent.
    pub fn cache(&self) -> &cache::JobCache {
        &self.cache
    }

    /// The worker registry, for server info.
    pub fn workers(&self) -> &WorkerRegistry {
        &self.workers
    }

    /// The pool, for health checks.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    async fn conn(&self) -> Result<DbConn, ApiError> {
        self.pool.get().await.map_err(|err| ApiError::from_store(err.into()))
    }

    #[instrument(skip_all)]
    pub async fn create(&self, request: CreateJobRequest) -> Result<Job, ApiError> {
        let mut job = request.job.ok_or_else(|| ApiError::invalid("job", "is required"))?;
        secrets::restore(&mut job, None).map_err(|err| err.within("job."))?;
        let valid = validate_job(&job).map_err(|err| err.within("job."))?;
        let mut conn = self.conn().await?;
        let row = job::insert(&mut conn, &valid.fields)
            .await
            .map_err(|err| job_error(err, None, Some(&job.name)))?;
        tracing::info!(job_id = %row.id, name = %row.name, "job created");
        self.workers.wake();
        answer(row)
    }

    #[instrument(skip_all)]
    pub async fn get(&self, request: GetJobRequest) -> Result<Job, ApiError> {
        let id = parse_id("id", &request.id)?;
        if let Some(job) = self.cache.get(id) {
            return Ok(job);
        }
        let ticket = self.cache.ticket();
        let mut conn = self.conn().await?;
        let row = job::get(&mut conn, id)
            .await
            .map_err(|err| job_error(err, Some(id), None))?;
        // The cache holds answers (redacted): it feeds GetJob and GetJobStatus only.
        let job = answer(row)?;
        if let Some(ticket) = ticket {
            self.cache.insert(ticket, id, job.clone());
        }
        Ok(job)
    }

    #[instrument(skip_all)]
    pub async fn list(&self, request: ListJobsRequest) -> Result<ListJobsResponse, ApiError> {
        let page_size = match i64::from(request.page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n if n < 0 => return Err(ApiError::invalid("page_size", "must not be negative")),
            n => n.min(MAX_PAGE_SIZE),
        };
        let (filter, fingerprint) = list_filter(&request)?;
        let after = if request.page_token.is_empty() {
            None
        } else {
            Some(page_token::decode(&request.page_token, &fingerprint)?)
        };
        let mut conn = self.conn().await?;
        let mut rows = job::list(&mut conn, &filter, after, page_size + 1)
            .await
            .map_err(ApiError::from_store)?;
        let next_page_token = if rows.len() as i64 > page_size {
            rows.truncate(page_size as usize);
            rows.last()
                .map(|row| page_token::encode(row.id, &fingerprint))
                .unwrap_or_default()
        } else {
            String::new()
        };
        let total_size = job::count(&mut conn, &filter).await.map_err(ApiError::from_store)?;
        let jobs = rows.into_iter().map(answer).collect::<Result<_, _>>()?;
        Ok(ListJobsResponse {
            jobs,
            next_page_token,
            total_size,
        })
    }

    #[instrument(skip_all)]
    pub async fn update(&self, request: UpdateJobRequest) -> Result<Job, ApiError> {
        let changes = request.job.ok_or_else(|| ApiError::invalid("job", "is required"))?;
        let id = parse_id("job.id", &changes.id)?;
        if changes.version <= 0 {
            return Err(ApiError::invalid(
                "job.version",
                "is required: send the version you read (optimistic concurrency)",
            ));
        }
        let paths = request.update_mask.map(|mask| mask.paths).unwrap_or_default();
        for (i, path) in paths.iter().enumerate() {
            if !UPDATABLE_FIELDS.contains(&path.as_str()) {
                return Err(ApiError::invalid(
                    format!("update_mask.paths[{i}]"),
                    format!("{path:?} cannot be updated; use one of {}", UPDATABLE_FIELDS.join(", ")),
                ));
            }
        }
        let mut conn = self.conn().await?;
        let current = job::get(&mut conn, id)
            .await
            .map_err(|err| job_error(err, Some(id), None))?;
        if current.version != changes.version {
            return Err(job_error(
                StoreError::VersionConflict {
                    current: current.version,
                },
                Some(id),
                None,
            ));
        }
        let current_fields = fields_of(&current);
        let stored = job_from_row(current.clone())?;
        let mut merged = stored.clone();
        let replace_all = paths.is_empty();
        let wants = |field: &str| replace_all || paths.iter().any(|p| p == field);
        if wants("name") {
            merged.name = changes.name.clone();
        }
        if wants("labels") {
            merged.labels = changes.labels.clone();
        }
        if wants("interval") {
            merged.interval = changes.interval;
        }
        if wants("timeout") {
            merged.timeout = changes.timeout;
        }
        if wants("desired_state") {
            // A full replace without a state keeps the current one.
            if !(replace_all && changes.desired_state == JobState::Unspecified as i32) {
                merged.desired_state = changes.desired_state;
            }
        }
        if wants("locations") {
            merged.locations = changes.locations.clone();
        }
        // The check kind is one field: naming either member replaces it.
        if CHECK_FIELDS.iter().any(|field| wants(field)) {
            merged.check = changes.check.clone();
            // A secret sent back as the marker keeps the stored value.
            secrets::restore(&mut merged, Some(&stored)).map_err(|err| err.within("job."))?;
        }
        let valid = validate_job(&merged).map_err(|err| err.within("job."))?;
        if valid.fields == current_fields {
            return answer(current);
        }
        let row = job::update(&mut conn, id, changes.version, &valid.fields)
            .await
            .map_err(|err| job_error(err, Some(id), Some(&merged.name)))?;
        self.cache.invalidate(id);
        tracing::info!(job_id = %id, version = row.version, "job updated");
        self.workers.wake();
        answer(row)
    }

    #[instrument(skip_all)]
    pub async fn delete(&self, request: DeleteJobRequest) -> Result<(), ApiError> {
        let id = parse_id("id", &request.id)?;
        if request.version < 0 {
            return Err(ApiError::invalid("version", "must not be negative"));
        }
        let expected = (request.version > 0).then_some(request.version);
        let mut conn = self.conn().await?;
        job::delete(&mut conn, id, expected)
            .await
            .map_err(|err| job_error(err, Some(id), None))?;
        self.cache.invalidate(id);
        tracing::info!(job_id = %id, "job deleted");
        self.workers.wake();
        Ok(())
    }

    /// Sets the desired state; idempotent, and says whether anything changed.
    #[instrument(skip_all)]
    pub async fn set_running(&self, id: &str, running: bool) -> Result<StateChange, ApiError> {
        let id = parse_id("id", id)?;
        let state = if running { STATE_RUNNING } else { STATE_STOPPED };
        let mut conn = self.conn().await?;
        let change = job::set_desired_state(&mut conn, id, state)
            .await
            .map_err(|err| job_error(err, Some(id), None))?;
        let message = match (running, change.changed) {
            (true, true) => "job started",
            (true, false) => "job was already running; nothing changed",
            (false, true) => "job stopped",
            (false, false) => "job was already stopped; nothing changed",
        };
        if change.changed {
            self.cache.invalidate(id);
            tracing::info!(job_id = %id, state, "job state changed");
            self.workers.wake();
        }
        Ok(StateChange {
            job: answer(change.job)?,
            changed: change.changed,
            message: message.into(),
        })
    }

    #[instrument(skip_all)]
    pub async fn status(&self, id: &str) -> Result<JobStatus, ApiError> {
        let job = self.get(GetJobRequest { id: id.to_owned() }).await?;
        Ok(self.status_of(&job, parse_id("id", id)?))
    }

    /// Where a job read from the store (with id `job_id`) stands, from the
    /// worker registry.
    fn status_of(&self, job: &Job, job_id: Uuid) -> JobStatus {
        status::status_of(job, self.workers.placements(job_id, &job.locations))
    }

    /// Job counts by desired state.
    pub async fn counts(&self) -> Result<JobCounts, ApiError> {
        let mut conn = self.conn().await?;
        job::counts(&mut conn).await.map_err(ApiError::from_store)
    }

    /// The job's rollups over a time range (QueryMetrics): one point per
    /// stored bucket and the exact merge of them all as the summary.
    #[instrument(skip_all)]
    pub async fn query_metrics(&self, request: QueryMetricsRequest) -> Result<QueryMetricsResponse, ApiError> {
        let query = metrics::parse_query(&request, chrono::Utc::now())?;
        let mut conn = self.conn().await?;
        job::get(&mut conn, query.job_id)
            .await
            .map_err(|err| job_error(err, Some(query.job_id), None))?;
        let rows = job_metrics::query(
            &mut conn,
            query.job_id,
            &query.location,
            &query.granularity,
            query.start,
            query.end,
        )
        .await
        .map_err(ApiError::from_store)?;
        let mut total = Rollup::default();
        let points = rows
            .iter()
            .map(|row| {
                let rollup = row.rollup();
                total.merge(&rollup);
                metrics::point(row.dt, metrics::figures(&rollup, query.aggregates))
            })
            .collect();
        Ok(QueryMetricsResponse {
            points,
            summary: Some(metrics::summary(metrics::figures(&total, query.aggregates))),
            granularity: query.granularity,
            start_time: Some(query.start.into()),
            end_time: Some(query.end.into()),
            location: query.location,
        })
    }

    /// Deletes every job, rollup and stored consumer offset, in one
    /// transaction (database reset).
    #[instrument(skip_all)]
    pub async fn delete_all(&self) -> Result<Deleted, ApiError> {
        let mut conn = self.conn().await?;
        let deleted = conn
            .transaction(async |conn| {
                let jobs = job::delete_all(conn).await?;
                let rollups = job_metrics::delete_all(conn).await?;
                Ok::<_, StoreError>(Deleted {
                    jobs,
                    rollups: i64::try_from(rollups).unwrap_or(i64::MAX),
                })
            })
            .await
            .map_err(ApiError::from_store)?;
        self.cache.clear();
        tracing::warn!(
            deleted.jobs,
            deleted.rollups,
            "all jobs and rollups deleted (database reset)"
        );
        self.workers.wake();
        Ok(deleted)
    }
}

/// The stored fields of a row, for comparing with a validated change.
pub fn fields_of(row: &job::JobRow) -> JobFields {
    JobFields {
        name: row.name.clone(),
        labels: row.labels.clone(),
        check_kind: row.check_kind.clone(),
        check_spec: row.check_spec.clone(),
        interval_ms: row.interval_ms,
        timeout_ms: row.timeout_ms,
        desired_state: row.desired_state.clone(),
        locations: row.locations.clone(),
    }
}
