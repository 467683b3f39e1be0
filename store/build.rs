//! Exposes a hash of `migrations/` as `MIGRATIONS_HASH`, so test templates
//! are rebuilt whenever a migration changes.

use std::{fs, path::Path};

use sha2::{Digest, Sha256};

fn hash_dir(dir: &Path, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        hasher.update(entry.file_name().as_encoded_bytes());
        if path.is_dir() {
            hash_dir(&path, hasher)?;
        } else {
            hasher.update(fs::read(&path)?);
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    println!("cargo:rerun-if-changed=../migrations");
    let mut hasher = Sha256::new();
    hash_dir(Path::new("../migrations"), &mut hasher)?;
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=MIGRATIONS_HASH={hex}");
    Ok(())
}
