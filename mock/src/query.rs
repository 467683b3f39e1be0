//! Query strings: every route names the parameters it accepts, and anything
//! else (a typo such as `?stauts=500`) is refused rather than ignored, so a
//! test never silently gets the default it did not ask for.

use std::borrow::Cow;

use crate::error::RequestError;
use crate::limits::InvalidValue;

/// The decoded parameters of one request, each under its accepted name.
pub(crate) struct Query<'a> {
    /// At most one value per name (repeats are refused).
    pairs: Vec<(&'static str, Cow<'a, str>)>,
}

impl<'a> Query<'a> {
    /// Decodes `query`, refusing names outside `accepted` and repeats.
    pub(crate) fn parse(query: Option<&'a str>, accepted: &'static [&'static str]) -> Result<Self, RequestError> {
        let mut pairs = Vec::new();
        let Some(query) = query.filter(|query| !query.is_empty()) else {
            return Ok(Self { pairs });
        };
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let Some(&known) = accepted.iter().find(|known| **known == name) else {
                return Err(RequestError::UnknownParameter {
                    parameter: name.into_owned(),
                    accepted: if accepted.is_empty() {
                        "none".to_owned()
                    } else {
                        accepted.join(", ")
                    },
                });
            };
            if pairs.iter().any(|(seen, _)| *seen == known) {
                return Err(RequestError::RepeatedParameter { parameter: known });
            }
            pairs.push((known, value));
        }
        Ok(Self { pairs })
    }

    /// Parses parameter `name` with `parse`, naming it in any error.
    pub(crate) fn get<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Result<Option<T>, RequestError> {
        self.pairs
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, value)| {
                parse(value).map_err(|problem| RequestError::InvalidParameter {
                    parameter: name,
                    problem,
                })
            })
            .transpose()
    }

    /// Like [`Query::get`], for a parameter the route cannot do without.
    pub(crate) fn require<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
    ) -> Result<T, RequestError> {
        self.get(name, parse)?
            .ok_or(RequestError::MissingParameter { parameter: name })
    }
}

/// Parses a path segment such as the `{code}` of `/status/{code}`, naming it
/// in any error.
pub(crate) fn path_segment<T>(
    name: &'static str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, InvalidValue>,
) -> Result<T, RequestError> {
    parse(value).map_err(|problem| RequestError::InvalidParameter {
        parameter: name,
        problem,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits;

    const ACCEPTED: &[&str] = &["status", "delay_ms"];

    #[test]
    fn decodes_accepted_parameters() {
        let query = Query::parse(Some("status=%35%30%30&delay_ms=+7"), ACCEPTED).unwrap();
        assert_eq!(
            query.get("status", limits::final_status).unwrap(),
            Some(http::StatusCode::INTERNAL_SERVER_ERROR)
        );
        assert_eq!(query.get("delay_ms", limits::whole_number).unwrap(), Some(7));
        let empty = Query::parse(Some(""), ACCEPTED).unwrap();
        assert_eq!(empty.get("status", limits::final_status).unwrap(), None);
    }

    #[test]
    fn refuses_unknown_and_repeated_parameters() {
        let error = Query::parse(Some("stauts=500"), ACCEPTED).err().unwrap();
        assert_eq!(
            error.to_string(),
            "unknown query parameter `stauts`; this route accepts: status, delay_ms"
        );
        let error = Query::parse(Some("status=200&status=500"), ACCEPTED).err().unwrap();
        assert_eq!(error.to_string(), "query parameter `status` is given more than once");
        let error = Query::parse(Some("x=1"), &[]).err().unwrap();
        assert!(error.to_string().ends_with("accepts: none"), "{error}");
    }

    #[test]
    fn names_the_parameter_in_value_errors() {
        let query = Query::parse(Some("delay_ms=-3"), ACCEPTED).unwrap();
        let error = query.get("delay_ms", limits::whole_number).unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid parameter `delay_ms`: '-3' is negative; only 0 and above are allowed"
        );
        let error = query.require("status", limits::final_status).unwrap_err();
        assert_eq!(error.to_string(), "missing query parameter `status`");
    }
}
