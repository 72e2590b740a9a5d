//! One database per test, for each backend, so tests run in parallel
//! without seeing each other's sessions.

use std::sync::Arc;

use async_trait::async_trait;
use store::{MemoryStore, PgStore, SqliteStore, Store};
use testkit::pg::FreshDatabase;

#[async_trait]
pub trait Fixture: Sized {
    /// A fresh, empty database, or `None` when this backend is not
    /// available here (PostgreSQL without `DATABASE_URL`).
    async fn create() -> Option<Self>;
    /// A new store over this database; each call is a separate pool.
    async fn open(&self) -> Arc<dyn Store>;
    /// Ends the test's use of the database (each drops its own with it,
    /// whether the test passed or not).
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

/// A fresh PostgreSQL database of its own, dropped with the value.
pub struct PgDb {
    db: FreshDatabase,
}

/// A fresh database on `DATABASE_URL`'s server for a PostgreSQL-only test,
/// or `None` (with a note) when it is not set.
pub async fn fresh_database() -> Option<FreshDatabase> {
    FreshDatabase::from_env("store_it")
        .await
        .expect("creating a test database")
}

#[async_trait]
impl Fixture for PgDb {
    async fn create() -> Option<Self> {
        Some(PgDb {
            db: fresh_database().await?,
        })
    }

    async fn open(&self) -> Arc<dyn Store> {
        Arc::new(
            PgStore::connect(&self.db.url())
                .await
                .expect("connect to postgres"),
        )
    }
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
