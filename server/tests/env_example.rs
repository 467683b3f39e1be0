//! `.env.example` documents exactly the variables the processes read: this
//! fails when a setting is added or removed on one side only.

use std::{collections::BTreeSet, fs, path::Path};

/// Variables the programs read: clap `env = "..."` attributes and
/// `env::var("...")` calls outside tests, plus RUST_LOG (read by tracing's
/// EnvFilter) and DATABASE_URL's test-only sibling excluded.
fn read_by_programs(root: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::from(["RUST_LOG".to_owned()]);
    for crate_dir in [
        "server/src",
        "worker/src",
        "mock/src",
        "store/src",
        "core/src",
        "proto/src",
    ] {
        let mut stack = vec![root.join(crate_dir)];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("testing.rs") {
                    continue;
                }
                let text = fs::read_to_string(&path).unwrap();
                // Code after `#[cfg(test)]` is test-only.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for marker in ["env = \"", "env::var(\""] {
                    for part in code.split(marker).skip(1) {
                        let name: String = part
                            .chars()
                            .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                            .collect();
                        if !name.is_empty() && name != "HOSTNAME" {
                            names.insert(name);
                        }
                    }
                }
            }
        }
    }
    names
}

fn documented(root: &Path) -> BTreeSet<String> {
    fs::read_to_string(root.join(".env.example"))
        .unwrap()
        .lines()
        .filter_map(|line| {
            let line = line.trim_start_matches('#').trim();
            let (name, _) = line.split_once('=')?;
            (!name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .then(|| name.to_owned())
        })
        .collect()
}

#[test]
fn env_example_lists_every_variable_and_nothing_else() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let read = read_by_programs(&root);
    let listed = documented(&root);
    let undocumented: Vec<_> = read.difference(&listed).collect();
    let unread: Vec<_> = listed.difference(&read).collect();
    assert!(
        undocumented.is_empty(),
        "read but missing from .env.example: {undocumented:?}"
    );
    assert!(
        unread.is_empty(),
        "listed in .env.example but read by no process: {unread:?}"
    );
    assert!(read.len() > 40, "the scan found the settings: {read:?}");
}

/// Runs `monitor-server --help`-free start-up in `dir` and returns its stderr.
fn start_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_monitor-server"))
        .args(args)
        .current_dir(dir)
        .env_remove("MONITOR_LISTEN")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn dotenv_is_read_and_bad_values_name_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(".env"), "MONITOR_LISTEN=not-an-address\n").unwrap();
    let (ok, stderr) = start_in(dir.path(), &[]);
    assert!(!ok);
    assert!(
        stderr.contains("--listen") && stderr.contains("not-an-address"),
        "{stderr}"
    );

    fs::write(dir.path().join(".env"), "MONITOR_DB_POOL_SIZE=\"unterminated\n").unwrap();
    let (ok, stderr) = start_in(dir.path(), &[]);
    assert!(!ok);
    assert!(stderr.contains(".env"), "a malformed .env is named: {stderr}");

    // Checked before the database is touched (none answers on port 1).
    fs::write(
        dir.path().join(".env"),
        "MONITOR_UI_DIR=/nonexistent-ui-dir\nDATABASE_URL=postgres://postgres@127.0.0.1:1/monitor\n",
    )
    .unwrap();
    let (ok, stderr) = start_in(dir.path(), &[]);
    assert!(!ok);
    assert!(
        stderr.contains("MONITOR_UI_DIR") && stderr.contains("has no index.html"),
        "{stderr}"
    );

    fs::write(dir.path().join(".env"), "DATABASE_URL=mysql://h/db\n").unwrap();
    let (ok, stderr) = start_in(dir.path(), &["migrate"]);
    assert!(!ok);
    assert!(
        stderr.contains("--database-url") && stderr.contains("scheme"),
        "{stderr}"
    );
}

#[test]
fn tls_settings_are_both_or_neither_and_checked_before_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.pem");
    fs::write(&garbage, "not a certificate\n").unwrap();
    let garbage = garbage.to_str().unwrap();
    let (ok, stderr) = start_in(dir.path(), &["--tls-cert", garbage]);
    assert!(!ok);
    assert!(stderr.contains("--tls-key"), "the missing half is named: {stderr}");
    let (ok, stderr) = start_in(dir.path(), &["--tls-key", garbage]);
    assert!(!ok);
    assert!(stderr.contains("--tls-cert"), "the missing half is named: {stderr}");

    // None answers on port 1: these stop before the database is touched.
    let db = "--database-url=postgres://postgres@127.0.0.1:1/monitor";
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let (ok, stderr) = start_in(dir.path(), &[db, "--tls-cert", missing, "--tls-key", garbage]);
    assert!(!ok);
    assert!(
        stderr.contains("MONITOR_TLS_CERT") && stderr.contains("cannot read"),
        "{stderr}"
    );
    let issued = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    fs::write(&cert, issued.cert.pem()).unwrap();
    let (ok, stderr) = start_in(
        dir.path(),
        &[db, "--tls-cert", cert.to_str().unwrap(), "--tls-key", garbage],
    );
    assert!(!ok);
    assert!(
        stderr.contains("MONITOR_TLS_KEY") && stderr.contains("private key"),
        "{stderr}"
    );
}
