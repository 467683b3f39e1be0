//! Opaque page tokens: the last id (or, for listings ordered otherwise, the
//! last sort key) of the previous page plus a fingerprint of the filters, so
//! a token reused with other filters is rejected instead of silently
//! skipping or repeating items. ListJobs and the alerting lists use them.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::ApiError;

const PREFIX: &str = "v1";
/// Tokens holding a sort key rather than an id.
const KEY_PREFIX: &str = "k1";

/// A fingerprint of the filters a listing was made with.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// The token that continues after `last_id` under `filters`.
pub fn encode(last_id: Uuid, filters: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}:{last_id}:{filters}"))
}

/// The id to continue after, if `token` was issued for the same `filters`.
pub fn decode(token: &str, filters: &str) -> Result<Uuid, ApiError> {
    let invalid = || ApiError::invalid("page_token", "is not a page token issued by this server");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let mut parts = raw.splitn(3, ':');
    let (Some(PREFIX), Some(id), Some(issued_for)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    if issued_for != filters {
        return Err(ApiError::invalid(
            "page_token",
            "was issued for different filters; start again without a token",
        ));
    }
    Ok(id)
}

/// The token that continues after the item with sort key `key` under
/// `filters` (a [`fingerprint`], which holds no `:`).
pub fn encode_key(key: &str, filters: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{KEY_PREFIX}:{filters}:{key}"))
}

/// The sort key to continue after, if `token` was issued by [`encode_key`]
/// for the same `filters`.
pub fn decode_key(token: &str, filters: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::invalid("page_token", "is not a page token issued by this server");
    let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let raw = String::from_utf8(raw).map_err(|_| invalid())?;
    let mut parts = raw.splitn(3, ':');
    let (Some(KEY_PREFIX), Some(issued_for), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(invalid());
    };
    if issued_for != filters {
        return Err(ApiError::invalid(
            "page_token",
            "was issued for different filters; start again without a token",
        ));
    }
    Ok(key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejections() {
        let id = Uuid::now_v7();
        let filters = fingerprint(&["running", "a=b"]);
        let token = encode(id, &filters);
        assert_eq!(decode(&token, &filters).unwrap(), id);
        let other = fingerprint(&["stopped", "a=b"]);
        assert_ne!(filters, other);
        assert!(
            decode(&token, &other)
                .unwrap_err()
                .to_string()
                .contains("different filters")
        );
        let keyed = encode_key("a:name/with:colons", &filters);
        assert_eq!(decode_key(&keyed, &filters).unwrap(), "a:name/with:colons");
        assert!(
            decode_key(&keyed, &other)
                .unwrap_err()
                .to_string()
                .contains("different filters")
        );
        assert!(decode_key(&token, &filters).is_err(), "an id token is not a key token");
        assert!(decode(&keyed, &filters).is_err(), "a key token is not an id token");
        for bad in ["", "!!!", "djE6bm90LWEtdXVpZDp4", &URL_SAFE_NO_PAD.encode("v2:x:y")] {
            assert!(
                decode(bad, &filters)
                    .unwrap_err()
                    .to_string()
                    .contains("not a page token"),
                "{bad}"
            );
        }
    }
}
