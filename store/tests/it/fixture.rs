//! One database per test, for each backend, so tests run in parallel
//! without seeing each other's sessions.

use std::sync::Arc;

use async_trait::async_trait;
use store::{MemoryStore, PgStore, SqliteStore, Store};

#[async_trait]
pub trait Fixture: Sized {
    /// A fresh, empty database, or `None` when this backend is not
    /// available here (PostgreSQL without `DATABASE_URL`).
    async fn create() -> Option<Self>;
    /// A new store over this database; each call is a separate pool.
    async fn open(&self) -> Arc<dyn Store>;
    /// Cleans up after a test that passed.
    async fn finish(self) {}
}

pub struct SqliteDb {
    // Kept so the directory outlives the test.
    _dir: tempfile::TempDir,
    pub path: std::path::PathBuf,
}

#[async_trait]
impl Fixture for SqliteDb {
    async fn create() -> Option<Self> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");
        Some(SqliteDb { _dir: dir, path })
    }

    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(SqliteStore::open(&self.path).await.expect("open sqlite"))
    }
}

pub struct PgDb {
    pub url: String,
    pub schema: String,
}

/// The PostgreSQL server to test against, if any.
pub fn database_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("DATABASE_URL is not set: skipping the PostgreSQL backend");
            None
        }
    }
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    format!("store_it_{:016x}", rand::random::<u64>())
}

#[async_trait]
impl Fixture for PgDb {
    async fn create() -> Option<Self> {
        Some(PgDb {
            url: database_url()?,
            schema: fresh_schema(),
        })
    }

    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(
            PgStore::connect_in_schema(&self.url, &self.schema)
                .await
                .expect("connect to postgres"),
        )
    }

    async fn finish(self) {
        drop_schema(&self.url, &self.schema).await;
    }
}

pub async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Connection as _;
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("connect to drop schema");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .expect("drop schema");
}

pub struct MemoryDb {
    store: Arc<MemoryStore>,
}

#[async_trait]
impl Fixture for MemoryDb {
    async fn create() -> Option<Self> {
        Some(MemoryDb {
            store: Arc::new(MemoryStore::new()),
        })
    }

    /// Memory has no second process to open it from: every "instance" is
    /// the same store.
    async fn open(&self) -> Arc<dyn Store> {
        self.store.clone()
    }
}
