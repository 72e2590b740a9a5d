//! The production backend: PostgreSQL, shared by every host and directory
//! replica.
//!
//! Fencing relies on PostgreSQL's row locks under the default READ
//! COMMITTED isolation: a conditional `UPDATE sessions ... WHERE epoch = $2`
//! that finds the row locked by a concurrent takeover waits for it, then
//! re-checks the condition against the committed row, so of two racing
//! writers exactly one matches. No advisory locks are used for safety (they
//! do not survive poolers or failover).

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::sql::{self, from_sqlx};
use crate::{Result, StoreError};

/// A session store in a PostgreSQL database (optionally in one schema).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// One connection for lease renewals alone: a host's lease must not
    /// wait for a pooled connection behind a hundred sessions' screens.
    lease_pool: PgPool,
}

/// How to connect a [`PgStore`]; start from [`PgStore::builder`].
#[derive(Clone, Debug)]
pub struct PgStoreBuilder {
    url: String,
    schema: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
}

impl PgStore {
    /// Connects with a small pool and brings the schema up to date.
    pub async fn connect(url: &str) -> Result<PgStore> {
        Self::builder(url).connect().await
    }

    /// Connects with every pooled connection's `search_path` set to
    /// `schema`, which is created if missing. Lets several deployments (or
    /// tests) share one database without seeing each other's tables.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<PgStore> {
        Self::builder(url).schema(schema).connect().await
    }

    pub fn builder(url: &str) -> PgStoreBuilder {
        PgStoreBuilder {
            url: url.to_owned(),
            schema: None,
            max_connections: 5,
            acquire_timeout: Duration::from_secs(5),
        }
    }

    /// Closes every pooled connection; later calls fail as unavailable.
    pub async fn close(&self) {
        self.pool.close().await;
        self.lease_pool.close().await;
    }
}

impl PgStoreBuilder {
    /// Keeps this store's tables in `schema` (letters, digits and `_`).
    pub fn schema(mut self, schema: &str) -> Self {
        self.schema = Some(schema.to_owned());
        self
    }

    pub fn max_connections(mut self, max_connections: u32) -> Self {
        self.max_connections = max_connections.max(1);
        self
    }

    /// How long connecting, and later each wait for a pooled connection,
    /// may take before the store reports itself unavailable.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.acquire_timeout = timeout;
        self
    }

    pub async fn connect(self) -> Result<PgStore> {
        let options = PgConnectOptions::from_str(&self.url)
            .map_err(|e| StoreError::Unavailable(format!("invalid postgres url: {e}")))?;
        let mut pool_options = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout);
        let schema = match &self.schema {
            Some(schema) => Some(quoted_schema(schema)?),
            None => None,
        };
        if let Some(quoted) = &schema {
            // A session setting, not a startup parameter, so that it also
            // works behind connection poolers in session mode.
            let search_path: Arc<str> = Arc::from(quoted.as_str());
            pool_options = pool_options.after_connect(move |conn, _meta| {
                let search_path = Arc::clone(&search_path);
                Box::pin(async move {
                    sqlx::query("SELECT set_config('search_path', $1, false)")
                        .bind(&*search_path)
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options
            .clone()
            .connect_with(options.clone())
            .await
            .map_err(from_sqlx)?;
        if let Some(quoted) = &schema {
            let created = sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {quoted}"
            )))
            .execute(&pool)
            .await;
            match created {
                Ok(_) => {}
                // Two processes creating the same schema at once: the loser
                // finds it there, which is all it wanted.
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
                Err(error) => return Err(from_sqlx(error)),
            }
        }
        let mut migrator = sqlx::migrate!("migrations/postgres");
        // A host from before a rolling upgrade must still connect to a
        // database that a newer host has migrated; migrations only ever add.
        // Concurrent migrators serialize on sqlx's advisory lock.
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await.map_err(sql::from_migrate)?;
        // Connected lazily, so a host whose store is down at a renewal
        // still starts; the renewal reports the store unavailable.
        let lease_pool = pool_options.max_connections(1).connect_lazy_with(options);
        Ok(PgStore { pool, lease_pool })
    }
}

/// The schema name as a quoted identifier. Only plain names are accepted,
/// since the name ends up in SQL text.
fn quoted_schema(schema: &str) -> Result<String> {
    let plain = !schema.is_empty()
        && schema.len() <= 63
        && schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain {
        return Err(StoreError::Unavailable(format!(
            "invalid schema name {schema:?}: use up to 63 letters, digits and underscores"
        )));
    }
    Ok(format!("\"{schema}\""))
}

sql::impl_store!(PgStore {
    kind: "postgres",
    now: "(extract(epoch from clock_timestamp()) * 1000)::bigint",
    // READ COMMITTED: the first statement of every write transaction takes
    // the row lock that orders it against its rivals (the fenced `UPDATE
    // sessions` against takeovers, the `UPDATE accounts` of a password
    // change against sign-ins).
    begin_write: "BEGIN",
    // One snapshot for the screen and its blocks.
    begin_read: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    // Blocks writers of the row (a password change) until commit, while
    // other readers, and other logins of the same user, go on.
    share_lock: " FOR SHARE",
});
