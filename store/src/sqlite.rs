//! The embedded backend: one SQLite file on one machine, shared by every
//! host and directory process there.
//!
//! Several processes may open the same file at once, so the connection
//! settings matter more than usual: write-ahead logging lets readers run
//! beside the one writer, a busy timeout makes a writer wait for the lock
//! instead of failing, and every transaction that writes starts with
//! `BEGIN IMMEDIATE`. A deferred transaction that reads first and writes
//! later can fail with `SQLITE_BUSY` no matter the timeout (it cannot
//! upgrade its read snapshot once another process has committed), so we
//! take the write lock up front and keep transactions short.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::sql::{self, from_sqlx};
use crate::{Result, StoreError};

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection idle this long is closed, with its page cache: the pool
/// grows under load and must not keep that memory once the load is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// SQLite runs one writer at a time; a few connections let reads proceed
/// beside it without queueing.
const MAX_CONNECTIONS: u32 = 4;
/// Opening a fresh file from several processes at once races twice: on
/// switching it to WAL (which needs the file to itself, and fails with
/// "database is locked" at once rather than waiting) and on the first
/// migration. The loser retries the whole open and finds the work done.
const OPEN_ATTEMPTS: u32 = 10;

/// A session store in one SQLite file.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One connection for lease renewals alone: a host's lease must not
    /// wait for a pooled connection behind a hundred sessions' screens.
    lease_pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and brings
    /// its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(SqliteConnectOptions::new().filename(path)).await
    }

    /// Opens a database named by a `sqlite:` URL, e.g.
    /// `sqlite:///var/lib/thinline/store.db`.
    pub async fn open_url(url: &str) -> Result<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(format!("invalid sqlite url: {e}")))?;
        Self::open_with(options).await
    }

    async fn open_with(options: SqliteConnectOptions) -> Result<SqliteStore> {
        // `synchronous = NORMAL` under WAL loses nothing when a process is
        // killed; only an operating-system crash may lose the last commits.
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let mut attempt = 1;
        loop {
            match Self::connect_and_migrate(options.clone()).await {
                Ok(store) => return Ok(store),
                Err(_) if attempt < OPEN_ATTEMPTS => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn connect_and_migrate(options: SqliteConnectOptions) -> Result<SqliteStore> {
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .idle_timeout(IDLE_TIMEOUT)
            .connect_with(options.clone())
            .await
            .map_err(from_sqlx)?;
        if let Err(error) = migrate(&pool).await {
            pool.close().await;
            return Err(error);
        }
        let lease_pool = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy_with(options);
        Ok(SqliteStore { pool, lease_pool })
    }

    /// Closes every pooled connection; later calls fail as unavailable.
    pub async fn close(&self) {
        self.pool.close().await;
        self.lease_pool.close().await;
    }
}

async fn migrate(pool: &SqlitePool) -> Result<()> {
    let mut migrator = sqlx::migrate!("migrations/sqlite");
    // A host from before a rolling upgrade must still open a database that
    // a newer host has migrated; migrations only ever add.
    migrator.set_ignore_missing(true);
    migrator.run(pool).await.map_err(sql::from_migrate)
}

crate::sql::impl_store!(SqliteStore {
    kind: "sqlite",
    now: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
    // Take the write lock up front (see the module comment).
    begin_write: "BEGIN IMMEDIATE",
    // A deferred transaction reads from one snapshot of the file.
    begin_read: "BEGIN",
    database: sqlx::Sqlite,
    // BEGIN IMMEDIATE already holds the one write lock: nothing to add.
    share_lock: "",
    update_lock: "",
});
