//! `--log-format` / `MONITOR_LOG_FORMAT` on the real binary: JSON lines a
//! log collector can parse, and a bad value refused with the flag named.

mod common;

use std::{
    io::{BufRead as _, BufReader},
    process::Command,
};

/// Starts the binary on a free port with `args` and `env`, returns its first
/// log line (the start-up line) and stops it.
fn first_log_line(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut child = common::spawn_binary(args, env);
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("a log line");
    child.kill().unwrap();
    child.wait().unwrap();
    line
}

fn assert_json_start_line(line: &str) {
    let record: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|err| panic!("not a JSON log line ({err}): {line}"));
    assert_eq!(record["level"], "INFO", "{line}");
    assert_eq!(record["fields"]["message"], "mock website listening", "{line}");
    assert!(
        record["fields"]["http"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{line}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    assert_json_start_line(&first_log_line(&["--log-format", "json"], &[]));
}

#[test]
fn the_environment_sets_the_format_and_the_flag_wins() {
    assert_json_start_line(&first_log_line(&[], &[("MONITOR_LOG_FORMAT", "json")]));
    let text = first_log_line(&["--log-format=text"], &[("MONITOR_LOG_FORMAT", "json")]);
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_err(), "{text}");
    assert!(text.contains("mock website listening"), "{text}");
}

#[test]
fn a_bad_format_is_refused_naming_the_flag() {
    for (args, env) in [
        (&["--log-format", "yaml"][..], None),
        (&[][..], Some(("MONITOR_LOG_FORMAT", "logfmt"))),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_monitor-mock"))
            .args(args)
            .env_clear()
            .envs(env)
            .output()
            .expect("the binary runs");
        assert!(!output.status.success(), "{args:?} {env:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--log-format"), "{args:?} {env:?}: {stderr}");
    }
}
