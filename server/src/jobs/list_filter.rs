//! ListJobs' filters (desired state, label selectors, name substring) as
//! the store's filter, and the fingerprint a page token carries so a token
//! is only good for the filters it was issued under.

use monitor_core::labels::is_label_key;
use monitor_proto::v1::{JobState, ListJobsRequest};
use monitor_store::models::job::{JobFilter, STATE_RUNNING, STATE_STOPPED};

use super::page_token;
use crate::error::{ApiError, FieldViolation};

/// The store filter for a ListJobs request and the fingerprint its page
/// tokens carry.
pub(super) fn list_filter(request: &ListJobsRequest) -> Result<(JobFilter, String), ApiError> {
    let desired_state = match JobState::try_from(request.state) {
        Ok(JobState::Unspecified) => None,
        Ok(JobState::Running) => Some(STATE_RUNNING.to_owned()),
        Ok(JobState::Stopped) => Some(STATE_STOPPED.to_owned()),
        Err(_) => return Err(ApiError::invalid("state", format!("unknown state {}", request.state))),
    };
    let mut labels = serde_json::Map::new();
    let mut violations = Vec::new();
    for (i, selector) in request.label_selector.iter().enumerate() {
        match selector.split_once('=') {
            Some((key, value)) if is_label_key(key) => {
                labels.insert(key.to_owned(), value.into());
            }
            _ => violations.push(FieldViolation::new(
                format!("label_selector[{i}]"),
                format!("{selector:?} must be key=value with a valid label key"),
            )),
        }
    }
    if !violations.is_empty() {
        return Err(ApiError::InvalidArgument(violations));
    }
    let mut selectors = request.label_selector.clone();
    selectors.sort();
    let fingerprint = page_token::fingerprint(&[
        desired_state.as_deref().unwrap_or(""),
        &selectors.join("\u{1}"),
        &request.name_contains,
    ]);
    let filter = JobFilter {
        desired_state,
        labels: (!labels.is_empty()).then_some(serde_json::Value::Object(labels)),
        name_contains: (!request.name_contains.is_empty()).then(|| request.name_contains.clone()),
    };
    Ok((filter, fingerprint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(state: JobState, selectors: &[&str], name_contains: &str) -> ListJobsRequest {
        ListJobsRequest {
            state: state as i32,
            label_selector: selectors.iter().map(|s| (*s).to_owned()).collect(),
            name_contains: name_contains.into(),
            ..Default::default()
        }
    }

    #[test]
    fn no_filters_match_every_job() {
        assert_eq!(
            list_filter(&request(JobState::Unspecified, &[], "")),
            Ok((JobFilter::default(), page_token::fingerprint(&["", "", ""])))
        );
    }

    #[test]
    fn state_labels_and_name_become_the_store_filter() {
        let (filter, fingerprint) = list_filter(&request(JobState::Running, &["team=web", "tier=1"], "shop")).unwrap();
        assert_eq!(
            filter,
            JobFilter {
                desired_state: Some(STATE_RUNNING.into()),
                labels: Some(serde_json::json!({"team": "web", "tier": "1"})),
                name_contains: Some("shop".into()),
            }
        );
        assert_eq!(
            fingerprint,
            page_token::fingerprint(&[STATE_RUNNING, "team=web\u{1}tier=1", "shop"])
        );
        let stopped = list_filter(&request(JobState::Stopped, &[], "")).unwrap().0;
        assert_eq!(stopped.desired_state.as_deref(), Some(STATE_STOPPED));
    }

    #[test]
    fn the_fingerprint_ignores_the_order_of_selectors_but_not_the_filters() {
        let fingerprint = |state, selectors: &[&str], name| list_filter(&request(state, selectors, name)).unwrap().1;
        let one = fingerprint(JobState::Running, &["a=1", "b=2"], "x");
        assert_eq!(one, fingerprint(JobState::Running, &["b=2", "a=1"], "x"));
        assert_ne!(one, fingerprint(JobState::Stopped, &["a=1", "b=2"], "x"));
        assert_ne!(one, fingerprint(JobState::Running, &["a=1"], "x"));
        assert_ne!(one, fingerprint(JobState::Running, &["a=1", "b=2"], "y"));
    }

    #[test]
    fn an_unknown_state_is_named() {
        let mut unknown = request(JobState::Unspecified, &[], "");
        unknown.state = 7;
        assert_eq!(
            list_filter(&unknown),
            Err(ApiError::invalid("state", "unknown state 7"))
        );
    }

    #[test]
    fn every_malformed_selector_is_named() {
        let selectors = ["no-value", "-bad=1", "ok=1", "=1"];
        assert_eq!(
            list_filter(&request(JobState::Unspecified, &selectors, "")),
            Err(ApiError::InvalidArgument(vec![
                FieldViolation::new(
                    "label_selector[0]",
                    "\"no-value\" must be key=value with a valid label key"
                ),
                FieldViolation::new(
                    "label_selector[1]",
                    "\"-bad=1\" must be key=value with a valid label key"
                ),
                FieldViolation::new("label_selector[3]", "\"=1\" must be key=value with a valid label key"),
            ]))
        );
    }
}
