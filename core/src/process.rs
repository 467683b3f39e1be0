//! What every binary (`monitor-server`, `monitor-worker`, `monitor-mock`)
//! does at start and at the end, the same way: read `.env`, log in the
//! format `--log-format` / `MONITOR_LOG_FORMAT` names with the `RUST_LOG`
//! filter, and notice SIGINT or SIGTERM. Each binary words its own log line
//! about the shutdown it then runs (finishing requests, draining).

use std::io::IsTerminal as _;

use tracing_subscriber::{EnvFilter, fmt::writer::BoxMakeWriter};

/// A `.env` file that exists but cannot be read or parsed. Start-up stops
/// with it (`.env: …`), since a setting in it was meant to apply.
#[derive(Debug, thiserror::Error)]
#[error(".env: {0}")]
pub struct DotenvError(dotenvy::Error);

/// Reads `.env` from the working directory (or a parent) when there is one;
/// variables already set in the environment win over the file's.
pub fn load_dotenv() -> Result<(), DotenvError> {
    loaded(dotenvy::dotenv())
}

/// A missing file is no error; any other failure is.
fn loaded<T>(result: Result<T, dotenvy::Error>) -> Result<(), DotenvError> {
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.not_found() => Ok(()),
        Err(err) => Err(DotenvError(err)),
    }
}

/// How log lines are written: `text` for people, `json` (one object per
/// line) for log collectors. Every binary reads it from `--log-format` /
/// `MONITOR_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where log lines go. The worker logs to stderr (its tests and supervisors
/// read it there); the server and the mock log to stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    Stdout,
    Stderr,
}

/// Installs the process's tracing subscriber: `RUST_LOG` as the filter
/// (`info` when unset or invalid), colours only when the output is a
/// terminal. Call once, at start.
pub fn init_tracing(format: LogFormat, output: LogOutput) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, terminal) = match output {
        LogOutput::Stdout => (BoxMakeWriter::new(std::io::stdout), std::io::stdout().is_terminal()),
        LogOutput::Stderr => (BoxMakeWriter::new(std::io::stderr), std::io::stderr().is_terminal()),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(terminal);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The signal that asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM (what `kill`, Docker and Kubernetes send).
    Terminate,
}

/// Completes on the first SIGINT or SIGTERM (Ctrl-C only, off Unix). The
/// handlers are installed when it is first polled; one that cannot be
/// installed is logged and that signal never completes it.
pub async fn shutdown_signal() -> Signal {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => Signal::Interrupt,
        () = terminate => Signal::Terminate,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::ValueEnum as _;

    use super::*;

    #[test]
    fn a_missing_env_file_is_no_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(loaded(dotenvy::from_path(dir.path().join(".env"))).is_ok());
    }

    #[test]
    fn an_env_file_sets_what_the_environment_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "MONITOR_CORE_TEST_DOTENV_SET=from-file\nPATH=from-file\n").unwrap();
        assert!(loaded(dotenvy::from_path(&path)).is_ok());
        assert_eq!(std::env::var("MONITOR_CORE_TEST_DOTENV_SET").unwrap(), "from-file");
        assert_ne!(std::env::var("PATH").unwrap(), "from-file", "the environment wins");
    }

    #[test]
    fn a_malformed_env_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        std::fs::write(&path, "MONITOR_CORE_TEST_DOTENV_BAD=\"unterminated\n").unwrap();
        let err = loaded(dotenvy::from_path(&path)).unwrap_err().to_string();
        assert!(err.starts_with(".env: "), "{err}");
        assert!(std::env::var("MONITOR_CORE_TEST_DOTENV_BAD").is_err());
    }

    #[test]
    fn log_formats_are_text_and_json_only() {
        assert_eq!(LogFormat::from_str("text", false), Ok(LogFormat::Text));
        assert_eq!(LogFormat::from_str("json", false), Ok(LogFormat::Json));
        for bad in ["", "JSON", "xml", "logfmt"] {
            assert!(LogFormat::from_str(bad, false).is_err(), "{bad:?}");
        }
    }

    /// Sends `signal` to this test process (its handlers are installed).
    fn raise(signal: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{signal}"), std::process::id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sigterm_and_sigint_are_told_apart_and_nothing_else_stops() {
        let waiting = tokio::spawn(shutdown_signal());
        // Let it install its handlers before anything is sent.
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "no signal yet");
        raise("TERM");
        assert_eq!(waiting.await.unwrap(), Signal::Terminate);
        let waiting = tokio::spawn(shutdown_signal());
        tokio::task::yield_now().await;
        raise("INT");
        assert_eq!(waiting.await.unwrap(), Signal::Interrupt);
    }
}
