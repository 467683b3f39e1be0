//! What only the mock's own tests share: the `monitor-mock` binary started
//! as a process, and the error body it answers bad input with. The mock
//! in-process comes from `monitor_testkit::mock`.

#![allow(dead_code)] // each test binary uses a different part of this

use std::process::{Child, Command, Stdio};

/// The binary on port 0 with `args`, an environment of `env` only (plus
/// `RUST_LOG=info` and no colours), its log on a pipe from stdout.
pub fn spawn_binary(args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_monitor-mock"))
        .arg("--listen=127.0.0.1:0")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts")
}

/// The JSON error body of a refused request.
#[derive(Debug, serde::Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub parameter: Option<String>,
}
