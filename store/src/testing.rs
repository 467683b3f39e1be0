//! A fresh, migrated database per test, so tests run in parallel (also across
//! the processes nextest starts) without seeing each other's rows.
//!
//! The first test to run migrates a template database named after a hash of
//! `migrations/`; every test then gets `CREATE DATABASE .. TEMPLATE ..`, which
//! is much faster than migrating each time. The copy is dropped when the
//! [`TestDb`] is dropped.

use diesel::ConnectionError;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{DbPool, StoreError, connect, migrations};

/// The server-level URL tests connect through: `TEST_DATABASE_URL`, else
/// `DATABASE_URL`, else the local trust-auth default.
pub fn base_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("database URL must parse");
    parsed.set_path(&format!("/{database}"));
    parsed.to_string()
}

/// A database that exists for one test.
pub struct TestDb {
    /// Connection URL of this test's database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl std::fmt::Debug for TestDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDb").field("name", &self.name).finish()
    }
}

async fn admin_connection(admin_url: &str) -> Result<AsyncPgConnection, ConnectionError> {
    AsyncPgConnection::establish(admin_url).await
}

async fn exec(conn: &mut AsyncPgConnection, sql: &str) -> Result<(), StoreError> {
    diesel::sql_query(sql).execute(conn).await?;
    Ok(())
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

impl TestDb {
    /// Creates a migrated database for one test.
    pub async fn new() -> TestDb {
        let base = base_url();
        let admin_url = with_database(&base, "postgres");
        let template = format!("monitor_tpl_{}", env!("MIGRATIONS_HASH"));
        let mut admin = admin_connection(&admin_url)
            .await
            .unwrap_or_else(|err| panic!("tests need PostgreSQL at {admin_url}: {err}"));
        ensure_template(&mut admin, &admin_url, &template)
            .await
            .expect("template database");
        let name = format!("monitor_test_{}", uuid::Uuid::now_v7().simple());
        let mut attempt = 0;
        loop {
            let created = exec(&mut admin, &format!("CREATE DATABASE {name} TEMPLATE {template}")).await;
            match created {
                Ok(()) => break,
                // Another test may be copying the same template this instant.
                Err(err) if attempt < 50 && err.to_string().contains("being accessed") => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(err) => panic!("create test database {name}: {err}"),
            }
        }
        TestDb {
            url: with_database(&base, &name),
            name,
            admin_url,
        }
    }

    /// A database for one test migrated only up to the migration directory
    /// `last` (see [`migrations::run_until`]), to test a later migration
    /// over rows in the older shape.
    pub async fn at_migration(last: &str) -> TestDb {
        let base = base_url();
        let admin_url = with_database(&base, "postgres");
        let mut admin = admin_connection(&admin_url)
            .await
            .unwrap_or_else(|err| panic!("tests need PostgreSQL at {admin_url}: {err}"));
        let name = format!("monitor_test_{}", uuid::Uuid::now_v7().simple());
        exec(&mut admin, &format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|err| panic!("create test database {name}: {err}"));
        let db = TestDb {
            url: with_database(&base, &name),
            name,
            admin_url,
        };
        migrations::run_until(&db.url, last)
            .await
            .unwrap_or_else(|err| panic!("migrate up to {last}: {err}"));
        db
    }

    /// A small pool on this test's database.
    pub fn pool(&self) -> DbPool {
        connect(&self.url, 4).expect("pool")
    }

    /// Name of this test's database.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Creates and migrates `template` once, serialised across processes by an
/// advisory lock. It is built under a temporary name and renamed when
/// complete, so a crash never leaves a half-migrated template behind.
async fn ensure_template(admin: &mut AsyncPgConnection, admin_url: &str, template: &str) -> Result<(), StoreError> {
    exec(admin, "SELECT pg_advisory_lock(727274)").await?;
    let result = async {
        let found: Exists = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
            .bind::<diesel::sql_types::Text, _>(template)
            .get_result(admin)
            .await?;
        if found.exists {
            return Ok(());
        }
        let building = format!("{template}_building");
        exec(admin, &format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)")).await?;
        exec(admin, &format!("CREATE DATABASE {building}")).await?;
        migrations::run_pending(&with_database(admin_url, &building)).await?;
        exec(admin, &format!("ALTER DATABASE {building} RENAME TO {template}")).await?;
        Ok(())
    }
    .await;
    exec(admin, "SELECT pg_advisory_unlock(727274)").await?;
    result
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop cannot be async and may run inside a runtime: use a plain
        // thread with a blocking connection.
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime.block_on(async {
                let mut conn = admin_connection(&admin_url).await.map_err(|err| err.to_string())?;
                exec(&mut conn, &sql).await.map_err(|err| err.to_string())
            })
        })
        .join();
        if let Ok(Err(err)) = dropped {
            eprintln!("warning: could not drop test database {}: {err}", self.name);
        }
    }
}
