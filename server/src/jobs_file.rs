//! Importing `jobs.json`: example or declared jobs, applied idempotently by
//! name. Missing jobs are created, changed ones updated, others left alone
//! (never deleted). The whole file is checked before anything is written and
//! applied in one transaction, so a bad file changes nothing.
//!
//! Format: `{"jobs": [<Job in proto3 JSON>, ...]}`, the same JSON the API
//! speaks. A job without `desiredState` is created stopped and keeps its
//! current state when updated. A secret written as the redaction marker
//! (as answers show it) keeps the stored value, so an exported job imports
//! as unchanged; for a job not stored yet the marker is refused.

use std::{collections::HashSet, path::Path};

use monitor_proto::v1::Job;
use monitor_store::diesel_async::AsyncConnection;
use monitor_store::{
    DbPool, StoreError,
    models::job::{self, JobFields},
};

use crate::jobs::{convert::job_from_row, fields_of, secrets, validate::validate_job};

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
    /// `jobs[3] ("name")`, for errors.
    label: String,
    /// As written; secrets sent as the marker are restored when applied.
    job: Job,
    fields: JobFields,
    /// The file did not set a desired state.
    keep_state: bool,
}

/// Why applying failed inside the import's transaction.
enum Refused {
    Store(StoreError),
    /// A job's secrets could not be restored (`label: problems`).
    Invalid(String),
}

impl From<StoreError> for Refused {
    fn from(err: StoreError) -> Self {
        Refused::Store(err)
    }
}

impl From<monitor_store::diesel_error::Error> for Refused {
    fn from(err: monitor_store::diesel_error::Error) -> Self {
        Refused::Store(err.into())
    }
}

/// `label: field: problem; ...` for a refused job.
fn describe(label: &str, err: &crate::error::ApiError) -> String {
    match err.violations() {
        [] => format!("{label}: {err}"),
        violations => {
            let problems: Vec<String> = violations.iter().map(ToString::to_string).collect();
            format!("{label}: {}", problems.join("; "))
        }
    }
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
        let valid = validate_job(&job).map_err(|err| invalid(describe(&label, &err)))?;
        if !names.insert(job.name.clone()) {
            return Err(invalid(format!(
                "{label}: the name {:?} appears more than once",
                job.name
            )));
        }
        declared.push(DeclaredJob {
            label,
            job,
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
    apply(pool, &shown, declared).await
}

/// Applies checked jobs in one transaction; `path` only names the file in
/// errors.
pub async fn apply(pool: &DbPool, path: &str, declared: Vec<DeclaredJob>) -> Result<ImportReport, JobsFileError> {
    let store_error = |source| JobsFileError::Store {
        path: path.to_owned(),
        source,
    };
    let mut conn = pool.get().await.map_err(|err| store_error(err.into()))?;
    let applied = conn
        .transaction(async move |conn| {
            let mut report = ImportReport::default();
            for declared in declared {
                let name = declared.fields.name.clone();
                let existing = job::find_by_name(conn, &name).await?;
                let (mut fields, keep_state) = restore_secrets(declared, existing.as_ref())?;
                match existing {
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
        .await;
    applied.map_err(|refused| match refused {
        Refused::Store(source) => store_error(source),
        Refused::Invalid(message) => JobsFileError::Invalid {
            path: path.to_owned(),
            message,
        },
    })
}

/// The columns to store for a declared job, with the secrets it sends as
/// the marker taken from the stored job of its name (`existing`), and
/// whether it keeps the stored state.
fn restore_secrets(declared: DeclaredJob, existing: Option<&job::JobRow>) -> Result<(JobFields, bool), Refused> {
    let DeclaredJob {
        label,
        mut job,
        fields,
        keep_state,
    } = declared;
    let stored = match existing {
        Some(row) => Some(job_from_row(row.clone()).map_err(|err| Refused::Invalid(describe(&label, &err)))?),
        None => None,
    };
    let before = job.clone();
    secrets::restore(&mut job, stored.as_ref()).map_err(|err| Refused::Invalid(describe(&label, &err)))?;
    if job == before {
        return Ok((fields, keep_state));
    }
    let valid = validate_job(&job).map_err(|err| Refused::Invalid(describe(&label, &err)))?;
    Ok((valid.fields, keep_state))
}
