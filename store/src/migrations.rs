//! The `migrations/` directory, embedded at compile time so every binary can
//! bring its database up to date without the diesel CLI.

use diesel::Connection;
use diesel_async::{AsyncPgConnection, async_connection_wrapper::AsyncConnectionWrapper};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::StoreError;

/// Every migration of the workspace, in order.
pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations");

/// Applies every pending migration and returns the versions it applied
/// (empty when the database was already up to date).
pub async fn run_pending(database_url: &str) -> Result<Vec<String>, StoreError> {
    let url = database_url.to_owned();
    // The migration harness is synchronous; run it on a blocking thread over
    // an async connection wrapped as a sync one (no libpq needed).
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url)
            .map_err(|err| StoreError::Unavailable(err.to_string()))?;
        let applied = conn
            .run_pending_migrations(MIGRATIONS)
            .map_err(|err| StoreError::Migration(err.to_string()))?;
        Ok(applied.iter().map(ToString::to_string).collect())
    })
    .await
    .map_err(|err| StoreError::Migration(format!("migration task failed: {err}")))?
}
