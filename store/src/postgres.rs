//! The production backend: PostgreSQL, shared by every host and directory
//! replica.
//!
//! Fencing relies on PostgreSQL's row locks under the default READ
//! COMMITTED isolation: a conditional `UPDATE sessions ... WHERE epoch = $2`
//! that finds the row locked by a concurrent takeover waits for it, then
//! re-checks the condition against the committed row, so of two racing
//! writers exactly one matches. No advisory locks are used for safety (they
//! do not survive poolers or failover).
//!
//! A row lock is only as good as the process holding it. A host that
//! freezes inside a transaction (a paused VM, a SIGSTOP, a partition that
//! leaves its TCP connection open) would keep its session's row locked, and
//! the takeover that must fence it would wait behind it for as long as the
//! freeze lasts. Every connection therefore has PostgreSQL end a transaction
//! left idle for [`STALLED_TRANSACTION_TIMEOUT`]: the frozen holder's work
//! rolls back, its locks go, and when it wakes its next statement fails on
//! a closed connection, as if the store had been down.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::sql::{self, from_sqlx};
use crate::{Result, StoreError};

/// How long a transaction may wait for its client's next statement before
/// PostgreSQL ends it and frees its locks (`idle_in_transaction_session_timeout`).
/// Ours never wait on anything but the database between statements, so a
/// live one is idle for milliseconds; this bound only ever ends frozen
/// ones. It is shorter than any sensible lease, so a frozen host's locks
/// are gone by the time its lease lets a takeover start.
pub const STALLED_TRANSACTION_TIMEOUT: Duration = Duration::from_secs(3);

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
    application_name: Option<String>,
    max_connections: u32,
    acquire_timeout: Duration,
}

impl PgStore {
    /// Connects with a small pool and brings the schema up to date: when it
    /// is, only reads `_sqlx_migrations`, so a role without DDL rights
    /// opens it; when it is not and the role may not create tables there,
    /// fails saying so (see `store/roles/postgres.sql`).
    pub async fn connect(url: &str) -> Result<PgStore> {
        Self::builder(url).connect().await
    }

    /// Connects with every pooled connection's `search_path` set to
    /// `schema`, which is created if missing (a role that may not create
    /// schemas needs it made already). Lets several deployments (or
    /// tests) share one database without seeing each other's tables.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<PgStore> {
        Self::builder(url).schema(schema).connect().await
    }

    pub fn builder(url: &str) -> PgStoreBuilder {
        PgStoreBuilder {
            url: url.to_owned(),
            schema: None,
            application_name: None,
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

    /// Names this process's connections in `pg_stat_activity` (and in the
    /// server's log), so an operator can tell which host or directory holds
    /// a lock or a connection slot.
    pub fn application_name(mut self, name: &str) -> Self {
        self.application_name = Some(name.to_owned());
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
        let mut options = PgConnectOptions::from_str(&self.url)
            .map_err(|e| StoreError::Unavailable(format!("invalid postgres url: {e}")))?;
        if let Some(name) = &self.application_name {
            options = options.application_name(name);
        }
        let schema = match &self.schema {
            Some(schema) => Some(quoted_schema(schema)?),
            None => None,
        };
        // Session settings, not startup parameters, so that they also work
        // behind connection poolers in session mode.
        let search_path: Option<Arc<str>> = schema.as_deref().map(Arc::from);
        let stalled = format!("{}ms", STALLED_TRANSACTION_TIMEOUT.as_millis());
        let pool_options = PgPoolOptions::new()
            .max_connections(self.max_connections)
            .acquire_timeout(self.acquire_timeout)
            .after_connect(move |conn, _meta| {
                let search_path = search_path.clone();
                let stalled = stalled.clone();
                Box::pin(async move {
                    sqlx::query(
                        "SELECT set_config('idle_in_transaction_session_timeout', $1, false)",
                    )
                    .bind(&stalled)
                    .execute(&mut *conn)
                    .await?;
                    if let Some(search_path) = search_path {
                        sqlx::query("SELECT set_config('search_path', $1, false)")
                            .bind(&*search_path)
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            });
        let pool = pool_options
            .clone()
            .connect_with(options.clone())
            .await
            .map_err(from_sqlx)?;
        if let Err(error) = prepare(&pool, self.schema.as_deref(), schema.as_deref()).await {
            // Closed at once rather than when the last handle drops, so
            // no connection of a failed open lingers on the server.
            pool.close().await;
            return Err(error);
        }
        // Connected lazily, so a host whose store is down at a renewal
        // still starts; the renewal reports the store unavailable.
        let lease_pool = pool_options.max_connections(1).connect_lazy_with(options);
        Ok(PgStore { pool, lease_pool })
    }
}

/// Makes the schema ready: creates it if missing, then applies the
/// migrations this build has that it lacks. Both steps change nothing when
/// there is nothing to do, and then need no right beyond reading
/// `_sqlx_migrations`: a directory or host whose role may not create
/// tables (`store/roles/postgres.sql`) opens a schema its owner migrated,
/// and one that finds the schema behind says so instead of failing on the
/// first `CREATE`.
async fn prepare(pool: &PgPool, schema: Option<&str>, quoted: Option<&str>) -> Result<()> {
    if let (Some(schema), Some(quoted)) = (schema, quoted) {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)")
                .bind(schema)
                .fetch_one(pool)
                .await
                .map_err(from_sqlx)?;
        if !exists {
            let created = sqlx::query(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {quoted}"
            )))
            .execute(pool)
            .await;
            match created {
                Ok(_) => {}
                // Two processes creating the same schema at once: the loser
                // finds it there, which is all it wanted.
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {}
                Err(error) => return Err(from_sqlx(error)),
            }
        }
    }
    let mut migrator = sqlx::migrate!("migrations/postgres");
    // A host from before a rolling upgrade must still connect to a
    // database that a newer host has migrated; migrations only ever add.
    migrator.set_ignore_missing(true);
    let applied = applied_migrations(pool).await?;
    if missing_migrations(&applied, &migrator)?.is_empty() {
        return Ok(());
    }
    let (role, at, may_migrate): (String, Option<String>, Option<bool>) = sqlx::query_as(
        "SELECT current_user::text, current_schema()::text, \
         has_schema_privilege(current_schema(), 'CREATE')",
    )
    .fetch_one(pool)
    .await
    .map_err(from_sqlx)?;
    if may_migrate != Some(true) {
        let version = applied
            .iter()
            .map(|applied| applied.version)
            .max()
            .map_or_else(|| "empty".to_owned(), |v| format!("at version {v}"));
        let needs = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        let at = at.map_or_else(
            || "(none this role may use)".to_owned(),
            |s| format!("{s:?}"),
        );
        return Err(StoreError::Unavailable(format!(
            "the store's schema {at} is {version}, this build needs version {needs}, and role \
             {role:?} may not migrate it (no CREATE on the schema): migrate it as the schema's \
             owner first, e.g. with any `directory` command given the owner's --store \
             (store/roles/postgres.sql), then start this server again"
        )));
    }
    // Concurrent migrators serialize on sqlx's advisory lock.
    migrator.run(pool).await.map_err(sql::from_migrate)
}

/// A row of `_sqlx_migrations`, as far as the check reads it.
#[derive(sqlx::FromRow)]
struct AppliedMigration {
    version: i64,
    success: bool,
    checksum: Vec<u8>,
}

/// What `_sqlx_migrations` records (nothing when the table does not exist).
async fn applied_migrations(pool: &PgPool) -> Result<Vec<AppliedMigration>> {
    let table: Option<String> = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations')::text")
        .fetch_one(pool)
        .await
        .map_err(from_sqlx)?;
    if table.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query_as("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .map_err(from_sqlx)
}

/// The versions of this build's migrations that `applied` lacks, in
/// order. Refuses, as sqlx would, a schema where a migration failed half
/// way or where one that was applied differs from this build's.
fn missing_migrations(
    applied: &[AppliedMigration],
    migrator: &sqlx::migrate::Migrator,
) -> Result<Vec<i64>> {
    use sqlx::migrate::MigrateError;
    if let Some(dirty) = applied.iter().find(|applied| !applied.success) {
        return Err(sql::from_migrate(MigrateError::Dirty(dirty.version)));
    }
    let mut missing = Vec::new();
    for migration in migrator.iter() {
        if migration.migration_type.is_down_migration() {
            continue;
        }
        match applied.iter().find(|a| a.version == migration.version) {
            Some(applied) if *applied.checksum != *migration.checksum => {
                return Err(sql::from_migrate(MigrateError::VersionMismatch(
                    migration.version,
                )));
            }
            Some(_) => {}
            None => missing.push(migration.version),
        }
    }
    Ok(missing)
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
    database: sqlx::Postgres,
    // Blocks writers of the row (a password change) until commit, while
    // other readers, and other logins of the same user, go on.
    share_lock: " FOR SHARE",
    // Blocks writers and deleters of the row (a recording's owner
    // deleting it) until commit.
    update_lock: " FOR UPDATE",
});
