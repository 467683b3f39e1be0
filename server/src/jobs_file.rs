//! Importing `jobs.json`: example or declared jobs, applied idempotently by
//! name. Missing jobs are created, changed ones updated, others left alone
//! (never deleted). The whole file is checked before anything is written and
//! applied in one transaction, so a bad file changes nothing.
//!
//! Format: `{"jobs": [<Job in proto3 JSON>, ...]}`, the same JSON the API
//! speaks. A job without `desiredState` is created stopped and keeps its
//! current state when updated.

use std::{collections::HashSet, path::Path};

use monitor_proto::v1::Job;
use monitor_store::diesel_async::AsyncConnection;
use monitor_store::{
    DbPool, StoreError,
    models::job::{self, JobFields},
};

use crate::jobs::{fields_of, validate::validate_job};

/// Why a jobs file was refused.
#[derive(Debug, thiserror::Error)]
pub enum JobsFileError {
    #[error("cannot read jobs file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("jobs file {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("jobs file {path}: importing failed: {source}")]
    Store { path: String, source: StoreError },
}

/// What an import did, by job name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
}

/// One job of the file, checked.
#[derive(Debug, Clone)]
pub struct DeclaredJob {
    fields: JobFields,
    /// The file did not set a desired state.
    keep_state: bool,
}

/// Parses and validates a jobs file's text; `path` only names it in errors.
pub fn parse(path: &str, text: &str) -> Result<Vec<DeclaredJob>, JobsFileError> {
    let invalid = |message: String| JobsFileError::Invalid {
        path: path.to_owned(),
        message,
    };
    let document: serde_json::Value =
        serde_json::from_str(text).map_err(|err| invalid(format!("not valid JSON: {err}")))?;
    let serde_json::Value::Object(mut top) = document else {
        return Err(invalid("must be a JSON object with a \"jobs\" array".into()));
    };
    if let Some(unknown) = top.keys().find(|key| key.as_str() != "jobs") {
        return Err(invalid(format!(
            "unknown top-level field {unknown:?}; only \"jobs\" is allowed"
        )));
    }
    let Some(serde_json::Value::Array(entries)) = top.remove("jobs") else {
        return Err(invalid("\"jobs\" must be an array of jobs".into()));
    };
    let mut names = HashSet::new();
    let mut declared = Vec::with_capacity(entries.len());
    for (index, entry) in entries.into_iter().enumerate() {
        let label = match entry.get("name").and_then(|name| name.as_str()) {
            Some(name) => format!("jobs[{index}] ({name:?})"),
            None => format!("jobs[{index}]"),
        };
        if let Some(object) = entry.as_object() {
            for output_only in ["id", "version", "createTime", "updateTime", "stateChangeTime"] {
                if object.contains_key(output_only) {
                    return Err(invalid(format!(
                        "{label}: field {output_only:?} is set by the server; remove it"
                    )));
                }
            }
        }
        let job: Job = serde_path_to_error::deserialize(entry).map_err(|err| {
            let path = err.path().to_string();
            let cause = err.into_inner();
            if path == "." || path.is_empty() {
                invalid(format!("{label}: {cause}"))
            } else {
                invalid(format!("{label}: field {path}: {cause}"))
            }
        })?;
        let valid = validate_job(&job).map_err(|err| {
            let problems: Vec<String> = err.violations().iter().map(ToString::to_string).collect();
            invalid(format!("{label}: {}", problems.join("; ")))
        })?;
        if !names.insert(job.name.clone()) {
            return Err(invalid(format!(
                "{label}: the name {:?} appears more than once",
                job.name
            )));
        }
        declared.push(DeclaredJob {
            fields: valid.fields,
            keep_state: valid.state_unspecified,
        });
    }
    Ok(declared)
}

/// Reads, checks and applies a jobs file.
pub async fn import_file(pool: &DbPool, path: &Path) -> Result<ImportReport, JobsFileError> {
    let shown = path.display().to_string();
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|source| JobsFileError::Read {
            path: shown.clone(),
            source,
        })?;
    let declared = parse(&shown, &text)?;
    apply(pool, declared)
        .await
        .map_err(|source| JobsFileError::Store { path: shown, source })
}

/// Applies checked jobs in one transaction.
pub async fn apply(pool: &DbPool, declared: Vec<DeclaredJob>) -> Result<ImportReport, StoreError> {
    let mut conn = pool.get().await?;
    conn.transaction(async move |conn| {
        let mut report = ImportReport::default();
        for DeclaredJob { mut fields, keep_state } in declared {
            let name = fields.name.clone();
            match job::find_by_name(conn, &fields.name).await? {
                None => {
                    job::insert(conn, &fields).await?;
                    report.created.push(name);
                }
                Some(existing) => {
                    if keep_state {
                        fields.desired_state = existing.desired_state.clone();
                    }
                    if fields_of(&existing) == fields {
                        report.unchanged.push(name);
                    } else {
                        job::update(conn, existing.id, existing.version, &fields).await?;
                        report.updated.push(name);
                    }
                }
            }
        }
        Ok(report)
    })
    .await
}
