//! The web dashboard at `/ui/`: a single-page app built from `server/ui/`
//! (`scripts/build-ui`) whose output in `server/ui/dist/` is embedded in the
//! binary, so the server binary is the whole deployment. The app calls the
//! REST gateway like any other browser client.
//!
//! `--ui-dir` serves the same file names from a directory instead, to work
//! on the dashboard without rebuilding the server.

use std::{collections::HashMap, path::PathBuf, sync::Arc};

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{MethodRouter, get},
};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The dashboard's files: name, content type, and the embedded bytes.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../ui/dist/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../ui/dist/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../ui/dist/app.css"),
    ),
    (
        "LICENSES.txt",
        "text/plain; charset=utf-8",
        include_bytes!("../ui/dist/LICENSES.txt"),
    ),
];

/// Only same-origin scripts, styles and API calls; uPlot sets element
/// styles, hence inline styles.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Where the dashboard's files come from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UiSource {
    /// The files built into the binary.
    #[default]
    Embedded,
    /// The same file names, read from this directory on every request.
    Directory(PathBuf),
}

impl UiSource {
    /// Checks that a directory source holds the app's entry page, so a
    /// mistyped `--ui-dir` stops start-up instead of serving 404s.
    pub fn check(&self) -> Result<(), String> {
        match self {
            UiSource::Embedded => Ok(()),
            UiSource::Directory(dir) if dir.join("index.html").is_file() => Ok(()),
            UiSource::Directory(dir) => Err(format!(
                "{} has no index.html (build the dashboard with scripts/build-ui, or point at server/ui/dist)",
                dir.display()
            )),
        }
    }
}

/// One file ready to serve.
#[derive(Clone)]
struct Asset {
    content_type: &'static str,
    bytes: bytes::Bytes,
    etag: HeaderValue,
}

impl Asset {
    fn new(content_type: &'static str, bytes: bytes::Bytes) -> Self {
        let digest = Sha256::digest(&bytes);
        let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        // Weak: the compression layer may send the same file gzipped.
        let etag = HeaderValue::from_str(&format!("W/\"{hex}\"")).expect("hex digits are a valid header value");
        Asset {
            content_type,
            bytes,
            etag,
        }
    }

    /// The file, or 304 when the browser's copy is current. Browsers
    /// revalidate on every load (`no-cache`), so a new server version is
    /// picked up at once and an unchanged one costs a 304.
    fn respond(&self, request_headers: &HeaderMap) -> Response {
        let current = request_headers
            .get(header::IF_NONE_MATCH)
            .and_then(|tags| tags.to_str().ok())
            .is_some_and(|tags| matches_any(tags, &self.etag));
        let mut response = if current {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            self.bytes.clone().into_response()
        };
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        response
    }
}

/// Whether an `If-None-Match` list (`*`, or tags, weak or strong) names
/// `etag`, compared weakly as RFC 9110 asks for this header.
fn matches_any(tags: &str, etag: &HeaderValue) -> bool {
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(etag.to_str().unwrap_or_default());
    tags.split(',').any(|tag| tag.trim() == "*" || opaque(tag) == ours)
}

#[derive(Clone)]
struct UiState {
    source: UiSource,
    /// The embedded files with their ETags, computed once.
    embedded: Arc<HashMap<&'static str, Asset>>,
}

impl UiState {
    async fn asset(&self, name: &str) -> Result<Asset, ApiError> {
        let Some((_, content_type, _)) = FILES.iter().find(|(file, _, _)| *file == name) else {
            return Err(not_found(name));
        };
        match &self.source {
            UiSource::Embedded => self.embedded.get(name).cloned().ok_or_else(|| not_found(name)),
            UiSource::Directory(dir) => {
                let path = dir.join(name);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Asset::new(content_type, bytes.into())),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(not_found(name)),
                    Err(err) => Err(ApiError::Internal(format!(
                        "dashboard file {} cannot be read: {err}",
                        path.display()
                    ))),
                }
            }
        }
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!(
        "the dashboard has no file {name:?}; open /ui/ for the dashboard"
    ))
}

/// `/ui` (redirects to `/ui/`), `/ui/` (the app) and `/ui/{file}`.
pub fn router(source: UiSource) -> Router {
    let embedded = FILES
        .iter()
        .map(|(name, content_type, bytes)| (*name, Asset::new(content_type, bytes::Bytes::from_static(bytes))))
        .collect();
    let state = UiState {
        source,
        embedded: Arc::new(embedded),
    };
    routes()
        .into_iter()
        .fold(Router::new(), |router, (pattern, handlers)| {
            router.route(pattern, handlers)
        })
        .with_state(state)
}

/// The dashboard's routes and their handlers.
fn routes() -> Vec<(&'static str, MethodRouter<UiState>)> {
    vec![
        ("/ui", get(|| async { Redirect::permanent("/ui/") })),
        ("/ui/", get(index)),
        ("/ui/{file}", get(file)),
    ]
}

/// The patterns of the dashboard's routes, for the access-policy walk.
pub fn route_patterns() -> Vec<&'static str> {
    routes().into_iter().map(|(pattern, _)| pattern).collect()
}

async fn index(State(state): State<UiState>, headers: HeaderMap) -> Response {
    serve(&state, "index.html", &headers).await
}

async fn file(State(state): State<UiState>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&state, &name, &headers).await
}

async fn serve(state: &UiState, name: &str, headers: &HeaderMap) -> Response {
    match state.asset(name).await {
        Ok(asset) => asset.respond(headers),
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_is_present() {
        for (name, _, bytes) in FILES {
            assert!(!bytes.is_empty(), "{name} is empty: run scripts/build-ui");
        }
        let index = std::str::from_utf8(FILES[0].2).unwrap();
        assert!(index.contains("app.js"), "index.html must load app.js");
    }

    #[test]
    fn if_none_match_is_compared_weakly_over_a_list() {
        let etag = HeaderValue::from_static("W/\"abc\"");
        assert!(matches_any("W/\"abc\"", &etag));
        assert!(matches_any("\"abc\"", &etag));
        assert!(matches_any("\"x\", W/\"abc\"", &etag));
        assert!(matches_any("*", &etag));
        assert!(!matches_any("\"abcd\"", &etag));
        assert!(!matches_any("", &etag));
    }

    #[test]
    fn a_directory_without_index_is_refused() {
        let dir = std::env::temp_dir().join(format!("monitor-ui-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = UiSource::Directory(dir.clone()).check().unwrap_err();
        assert!(err.contains("has no index.html"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(UiSource::Embedded.check(), Ok(()));
    }
}
