//! Request bodies and query strings of the REST gateway, decoded into the
//! proto messages with their canonical proto3 JSON mapping (pbjson), with
//! errors that say what is wrong and where.

use axum::{
    body::Body,
    http::{HeaderMap, header},
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Reads at most `limit` bytes of a JSON body.
pub async fn read_json_bytes(headers: &HeaderMap, body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    crate::auth::policy::check_content_type(crate::auth::policy::Payload::Json, content_type)?;
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        if error_chain(&err).any(|text| text.contains("length limit exceeded")) {
            ApiError::PayloadTooLarge(format!("request body is larger than {limit} bytes"))
        } else {
            ApiError::invalid("body", format!("could not read the request body: {err}"))
        }
    })
}

/// The messages of an error and its sources.
fn error_chain<'a>(err: &'a (dyn std::error::Error + 'static)) -> impl Iterator<Item = String> + 'a {
    std::iter::successors(Some(err), |e| e.source()).map(ToString::to_string)
}

/// Decodes JSON into a proto message; errors name the line and column of
/// malformed JSON, or the path of the field that does not fit.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(path_error)?;
    deserializer
        .end()
        .map_err(|err| ApiError::invalid("body", format!("malformed JSON: {err}")))?;
    Ok(value)
}

/// Decodes an already-parsed JSON value into a proto message.
pub fn decode_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(path_error)
}

fn path_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::invalid("body", format!("malformed JSON: {inner}"));
    }
    // serde_json appends the position; the path says more to a reader.
    let message = inner.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message).to_owned();
    if path.is_empty() || path == "." {
        ApiError::invalid("body", message)
    } else {
        ApiError::invalid(path, message)
    }
}

/// The `key=value` pairs of a query string, percent-decoded.
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `camelCase` → `snake_case`, so query parameters and mask paths may use
/// either spelling, like proto3 JSON field names.
pub fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for ch in name.chars() {
        if ch.is_ascii_uppercase() {
            out.push('_');
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use monitor_proto::v1::Job;

    use super::*;

    #[test]
    fn decode_errors_say_where() {
        let err = decode::<Job>(b"{\"name\": \"x\",\n \"interval\": }").unwrap_err();
        assert!(err.to_string().contains("line 2 column"), "{err}");
        let err = decode::<Job>(br#"{"nmae": "x"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `nmae`"), "{err}");
        let err = decode::<Job>(br#"{"interval": "ten"}"#).unwrap_err();
        assert_eq!(err.violations()[0].field, "interval", "{err}");
        let err = decode::<Job>(br#"{"name": "x"} trailing"#).unwrap_err();
        assert!(err.to_string().contains("malformed JSON"), "{err}");
        assert_eq!(decode::<Job>(br#"{"name": "x"}"#).unwrap().name, "x");
    }

    #[test]
    fn names_and_queries() {
        assert_eq!(snake_case("desiredState"), "desired_state");
        assert_eq!(snake_case("page_size"), "page_size");
        assert_eq!(
            query_pairs(Some("labelSelector=env%3Dprod&labelSelector=a%3Db&x")),
            [
                ("labelSelector".into(), "env=prod".into()),
                ("labelSelector".into(), "a=b".into()),
                ("x".into(), "".into())
            ]
        );
    }
}
