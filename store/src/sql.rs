//! What the SQLite and PostgreSQL backends share: the row shapes both
//! schemas decode into, their conversion to the public types, and the
//! mapping from driver errors to [`StoreError`].
//!
//! Both schemas store every integer as a 64-bit signed integer so the same
//! row structs decode from either driver; the narrowing to `u16`/`u32`/`u64`
//! happens here, and a value that does not fit is reported as corrupt
//! instead of being truncated.

use crate::{
    Account, HostRecord, Login, MAX_LEASE_TTL_MS, MAX_LOGIN_TTL_MS, MAX_SHARE_TTL_MS,
    RecordingBlock, RecordingRecord, ScrollbackBlock, SessionKey, SessionRecord, SessionState,
    ShareRecord, StoreError, StoredScreen, UnixIdentity, User,
};

/// Deletes a session's oldest blocks while the newer ones still hold at
/// least `$2` lines: a block goes when the lines of the blocks after it add
/// up to `$2` or more. Runs unchanged on SQLite (3.25+) and PostgreSQL.
pub(crate) const TRIM_BLOCKS: &str = "DELETE FROM scrollback_blocks \
     WHERE session_id = $1 AND seq IN ( \
         SELECT seq FROM ( \
             SELECT seq, COALESCE(SUM(lines) OVER ( \
                 ORDER BY seq DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING \
             ), 0) AS newer_lines \
             FROM scrollback_blocks WHERE session_id = $1 \
         ) AS ranked WHERE newer_lines >= $2 \
     )";

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    name: String,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> User {
        User {
            id: row.id,
            name: row.name,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct SessionRow {
    id: String,
    owner: String,
    program: String,
    args: String,
    cwd: String,
    env: String,
    cols: i64,
    rows: i64,
    title: Option<String>,
    foreground: Option<String>,
    state: String,
    owner_host: String,
    epoch: i64,
    created_at: i64,
    last_active: i64,
}

impl SessionRow {
    pub(crate) fn into_record(self) -> Result<SessionRecord, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("session {}: {what}", self.id));
        let args = serde_json::from_str(&self.args)
            .map_err(|e| corrupt(&format!("args are not a json list of strings: {e}")))?;
        let env = serde_json::from_str(&self.env)
            .map_err(|e| corrupt(&format!("env is not a json list of pairs: {e}")))?;
        let cols = u16::try_from(self.cols).map_err(|_| corrupt("cols out of range"))?;
        let rows = u16::try_from(self.rows).map_err(|_| corrupt("rows out of range"))?;
        let state = parse_state(&self.state).ok_or_else(|| corrupt("unknown state"))?;
        let epoch = u64::try_from(self.epoch).map_err(|_| corrupt("negative epoch"))?;
        Ok(SessionRecord {
            id: self.id,
            owner: self.owner,
            program: self.program,
            args,
            cwd: self.cwd,
            env,
            cols,
            rows,
            title: self.title,
            foreground: self.foreground,
            state,
            owner_host: self.owner_host,
            epoch,
            created_at: self.created_at,
            last_active: self.last_active,
        })
    }
}

/// A record's fields in the form the schemas store them.
pub(crate) struct SessionParams {
    pub args: String,
    pub env: String,
    pub cols: i64,
    pub rows: i64,
    pub state: &'static str,
    pub epoch: i64,
}

impl SessionParams {
    pub(crate) fn new(record: &SessionRecord) -> Result<SessionParams, StoreError> {
        let encode = |e: serde_json::Error| {
            StoreError::Corrupt(format!("session {}: cannot encode as json: {e}", record.id))
        };
        Ok(SessionParams {
            args: serde_json::to_string(&record.args).map_err(encode)?,
            env: serde_json::to_string(&record.env).map_err(encode)?,
            cols: i64::from(record.cols),
            rows: i64::from(record.rows),
            state: state_text(record.state),
            epoch: i64::try_from(record.epoch).map_err(|_| {
                StoreError::Corrupt(format!("session {}: epoch out of range", record.id))
            })?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct HostRow {
    id: String,
    url: String,
    load: i64,
    /// The operator's drain: the column kept its old name (see migration
    /// 0004) so that migrations only ever add.
    draining: bool,
    shutting_down: bool,
    lease_expires_at: i64,
    registered_at: i64,
}

impl HostRow {
    pub(crate) fn into_record(self) -> Result<HostRecord, StoreError> {
        let load = u32::try_from(self.load)
            .map_err(|_| StoreError::Corrupt(format!("host {}: load out of range", self.id)))?;
        Ok(HostRecord {
            id: self.id,
            url: self.url,
            load,
            drain_requested: self.draining,
            shutting_down: self.shutting_down,
            lease_expires_at: self.lease_expires_at,
            registered_at: self.registered_at,
        })
    }
}

/// A lease's length as stored, capped so `now + ttl` cannot overflow.
pub(crate) fn ttl_param(ttl_ms: u64) -> i64 {
    i64::try_from(ttl_ms.min(MAX_LEASE_TTL_MS)).unwrap_or(i64::MAX)
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    name: String,
    password_hash: String,
    disabled: bool,
    created_at: i64,
}

impl From<AccountRow> for Account {
    fn from(row: AccountRow) -> Account {
        Account {
            name: row.name,
            password_hash: row.password_hash,
            disabled: row.disabled,
            created_at: row.created_at,
        }
    }
}

/// A `logins` row; the column is `user_name` because `user` is reserved
/// in PostgreSQL.
#[derive(sqlx::FromRow)]
pub(crate) struct LoginRow {
    id: String,
    user_name: String,
    created_at: i64,
    expires_at: i64,
}

impl From<LoginRow> for Login {
    fn from(row: LoginRow) -> Login {
        Login {
            id: row.id,
            user: row.user_name,
            created_at: row.created_at,
            expires_at: row.expires_at,
        }
    }
}

/// A login's length as stored, capped so `now + ttl` cannot overflow.
pub(crate) fn login_ttl_param(ttl_ms: u64) -> i64 {
    i64::try_from(ttl_ms.min(MAX_LOGIN_TTL_MS)).unwrap_or(i64::MAX)
}

/// A `shares` row; the session column is `session_id`, as in the other
/// tables that belong to a session.
#[derive(sqlx::FromRow)]
pub(crate) struct ShareRow {
    id: String,
    token_hash: String,
    session_id: String,
    owner: String,
    may_type: bool,
    created_at: i64,
    expires_at: i64,
    revoked: bool,
}

impl From<ShareRow> for ShareRecord {
    fn from(row: ShareRow) -> ShareRecord {
        ShareRecord {
            id: row.id,
            token_hash: row.token_hash,
            session: row.session_id,
            owner: row.owner,
            may_type: row.may_type,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked: row.revoked,
        }
    }
}

/// A share's length as stored, capped so `now + ttl` cannot overflow.
pub(crate) fn share_ttl_param(ttl_ms: u64) -> i64 {
    i64::try_from(ttl_ms.min(MAX_SHARE_TTL_MS)).unwrap_or(i64::MAX)
}

/// A `recordings` row; the session column is `session_id`, as in the
/// other tables that belong to a session.
#[derive(sqlx::FromRow)]
pub(crate) struct RecordingRow {
    session_id: String,
    owner: String,
    started_at: i64,
    updated_at: i64,
    cols: i64,
    rows: i64,
    max_bytes: i64,
    bytes: i64,
    blocks: i64,
    duration_ms: i64,
}

impl RecordingRow {
    pub(crate) fn into_record(self) -> Result<RecordingRecord, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!(
                "recording of {}: {what} out of range",
                self.session_id
            ))
        };
        let count = |what: &str, value: i64| u64::try_from(value).map_err(|_| corrupt(what));
        Ok(RecordingRecord {
            cols: u16::try_from(self.cols).map_err(|_| corrupt("cols"))?,
            rows: u16::try_from(self.rows).map_err(|_| corrupt("rows"))?,
            max_bytes: count("max_bytes", self.max_bytes)?,
            bytes: count("bytes", self.bytes)?,
            blocks: count("blocks", self.blocks)?,
            duration_ms: count("duration_ms", self.duration_ms)?,
            session: self.session_id,
            owner: self.owner,
            started_at: self.started_at,
            updated_at: self.updated_at,
        })
    }
}

/// A `recording_blocks` row, as [`recording_block_columns`] names it.
#[derive(sqlx::FromRow)]
pub(crate) struct RecordingBlockRow {
    seq: i64,
    start_ms: i64,
    end_ms: i64,
    data: Vec<u8>,
}

impl RecordingBlockRow {
    pub(crate) fn into_block(self, session: &str) -> Result<RecordingBlock, StoreError> {
        let corrupt = |what: &str| {
            StoreError::Corrupt(format!(
                "recording of {session}: block {}: {what} out of range",
                self.seq
            ))
        };
        Ok(RecordingBlock {
            seq: u64::try_from(self.seq).map_err(|_| corrupt("seq"))?,
            start_ms: u64::try_from(self.start_ms).map_err(|_| corrupt("start_ms"))?,
            end_ms: u64::try_from(self.end_ms).map_err(|_| corrupt("end_ms"))?,
            data: self.data,
        })
    }
}

/// A recording block's field as stored: like [`seq_param`], a value past
/// `i64::MAX` is refused rather than wrapped into a negative number (which
/// would also sort a late block first).
pub(crate) fn recording_param(session: &str, what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| {
        StoreError::Corrupt(format!(
            "recording of {session}: {what} {value} is past the largest storable, {}",
            i64::MAX
        ))
    })
}

/// A recording's `max_bytes` as stored: at most `i64::MAX` (so `u64::MAX`,
/// "no limit", stays as good as no limit); the in-memory store caps it
/// the same way.
pub(crate) fn max_bytes_param(max_bytes: u64) -> i64 {
    i64::try_from(max_bytes).unwrap_or(i64::MAX)
}

/// A `unix_identities` row.
#[derive(sqlx::FromRow)]
pub(crate) struct UnixIdentityRow {
    name: String,
    uid: i64,
    gid: i64,
    mapped: bool,
}

impl UnixIdentityRow {
    pub(crate) fn into_pair(self) -> Result<(String, UnixIdentity), StoreError> {
        let id = |what: &str, value: i64| {
            u32::try_from(value)
                .ok()
                .filter(|id| (1..=crate::MAX_UNIX_ID).contains(id))
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "unix identity of {}: {what} {value} out of range",
                        self.name
                    ))
                })
        };
        let identity = UnixIdentity {
            uid: id("uid", self.uid)?,
            gid: id("gid", self.gid)?,
            mapped: self.mapped,
        };
        Ok((self.name, identity))
    }
}

/// How many times [`Store::unix_identity`](crate::Store::unix_identity)
/// tries again after another host took the uid it was about to give.
/// Every lost race means another allocation committed, so a caller loses
/// at most as many times as there are concurrent allocators.
pub(crate) const UID_ALLOCATION_ATTEMPTS: u32 = 64;

/// Whether the database refused a write for a duplicate key.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

#[derive(sqlx::FromRow)]
pub(crate) struct ScreenRow {
    screen: Vec<u8>,
    saved_at: i64,
    saved_by: String,
    epoch: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct BlockRow {
    seq: i64,
    lines: i64,
    data: Vec<u8>,
}

pub(crate) fn stored_screen(
    id: &str,
    screen: ScreenRow,
    blocks: Vec<BlockRow>,
) -> Result<StoredScreen, StoreError> {
    let blocks = blocks
        .into_iter()
        .map(|row| {
            let corrupt = |what: &str| {
                StoreError::Corrupt(format!("session {id}: block {}: {what}", row.seq))
            };
            Ok(ScrollbackBlock {
                seq: u64::try_from(row.seq).map_err(|_| corrupt("negative seq"))?,
                lines: u32::try_from(row.lines).map_err(|_| corrupt("lines out of range"))?,
                data: row.data,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(StoredScreen {
        screen: screen.screen,
        blocks,
        saved_at: screen.saved_at,
        saved_by: screen.saved_by,
        epoch: epoch_from_row(id, screen.epoch)?,
    })
}

/// A block's `seq` as stored. Sequence numbers past `i64::MAX` cannot be
/// stored; they are refused rather than wrapped into negative numbers.
pub(crate) fn seq_param(id: &str, seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq)
        .map_err(|_| StoreError::Corrupt(format!("session {id}: block seq {seq} out of range")))
}

/// An epoch named by a writer, as stored. No stored epoch is negative (the
/// schemas check it), so an epoch too large to store becomes `-1`, which
/// matches no row and is refused like any other stale epoch.
pub(crate) fn epoch_param(epoch: u64) -> i64 {
    i64::try_from(epoch).unwrap_or(-1)
}

/// The new epoch returned by a takeover, as the trait reports it.
pub(crate) fn epoch_from_row(id: &str, epoch: i64) -> Result<u64, StoreError> {
    u64::try_from(epoch).map_err(|_| StoreError::Corrupt(format!("session {id}: negative epoch")))
}

pub(crate) fn state_text(state: SessionState) -> &'static str {
    match state {
        SessionState::Running => "running",
        SessionState::Ended => "ended",
    }
}

fn parse_state(text: &str) -> Option<SessionState> {
    match text {
        "running" => Some(SessionState::Running),
        "ended" => Some(SessionState::Ended),
        _ => None,
    }
}

/// Why a fenced write was refused, once we know whether the session exists.
pub(crate) fn refusal(id: &str, epoch: u64, exists: bool) -> StoreError {
    if exists {
        StoreError::Fenced {
            session: SessionKey::from(id),
            epoch,
        }
    } else {
        StoreError::NotFound(SessionKey::from(id))
    }
}

/// Maps a driver error: anything that could not be read back as the types
/// we stored is corruption; everything else (IO, TLS, pool timeouts, a
/// crashed SQLite worker, an error reported by the database) is treated as
/// the backend being unavailable, so callers retry instead of giving up,
/// except a refusal for want of privilege, which is [`StoreError::Denied`].
pub(crate) fn from_sqlx(error: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    match error {
        E::Decode(_)
        | E::ColumnDecode { .. }
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::TypeNotFound { .. }
        | E::RowNotFound => StoreError::Corrupt(error.to_string()),
        E::Migrate(error) => from_migrate(*error),
        // PostgreSQL's `insufficient_privilege`: this role's grants do not
        // allow the statement, and retrying will not change that.
        E::Database(db) if db.code().as_deref() == Some("42501") => {
            StoreError::Denied(db.message().to_owned())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Maps a migration error: a schema that does not match the migrations
/// compiled in is corruption (it will not heal by retrying); failing to run
/// them is unavailability.
pub(crate) fn from_migrate(error: sqlx::migrate::MigrateError) -> StoreError {
    use sqlx::migrate::MigrateError as M;
    match error {
        M::Execute(error) => from_sqlx(error),
        M::ExecuteMigration(error, version) => {
            StoreError::Unavailable(format!("migration {version} failed: {error}"))
        }
        other @ (M::VersionMismatch(_) | M::Dirty(_)) => {
            StoreError::Corrupt(format!("schema migrations: {other}"))
        }
        other => StoreError::Unavailable(format!("schema migrations: {other}")),
    }
}

/// The `sessions` columns in the order every `SELECT` names them and
/// [`SessionRow`] decodes them.
macro_rules! session_columns {
    () => {
        "id, owner, program, args, cwd, env, cols, \"rows\", title, foreground, state, \
         owner_host, epoch, created_at, last_active"
    };
}
pub(crate) use session_columns;

/// The `hosts` columns in the order [`HostRow`] decodes them.
macro_rules! host_columns {
    () => {
        "id, url, load, draining, shutting_down, lease_expires_at, registered_at"
    };
}
pub(crate) use host_columns;

/// The `accounts` columns in the order [`AccountRow`] decodes them.
macro_rules! account_columns {
    () => {
        "name, password_hash, disabled, created_at"
    };
}
pub(crate) use account_columns;

/// The `logins` columns in the order [`LoginRow`] decodes them.
macro_rules! login_columns {
    () => {
        "id, user_name, created_at, expires_at"
    };
}
pub(crate) use login_columns;

/// The `shares` columns in the order [`ShareRow`] decodes them.
macro_rules! share_columns {
    () => {
        "id, token_hash, session_id, owner, may_type, created_at, expires_at, revoked"
    };
}
pub(crate) use share_columns;

/// The `recordings` columns in the order [`RecordingRow`] decodes them.
macro_rules! recording_columns {
    () => {
        "session_id, owner, started_at, updated_at, cols, \"rows\", max_bytes, bytes, blocks, \
         duration_ms"
    };
}
pub(crate) use recording_columns;

/// The `recording_blocks` columns in the order [`RecordingBlockRow`]
/// decodes them.
macro_rules! recording_block_columns {
    () => {
        "seq, start_ms, end_ms, data"
    };
}
pub(crate) use recording_block_columns;

/// The `unix_identities` columns in the order [`UnixIdentityRow`] decodes
/// them.
macro_rules! unix_identity_columns {
    () => {
        "name, uid, gid, mapped"
    };
}
pub(crate) use unix_identity_columns;

/// The lowest uid from `$2` to `$3` that no row holds, as a one-row
/// (or, when all are taken, empty) table `free (uid)`: either `$2` itself
/// or the successor of a taken uid that is free. The free uid that is not
/// `$2` follows a taken one, so these candidates include the lowest. Each
/// candidate costs a probe of the uid index, so allocation stays cheap
/// however many identities exist.
macro_rules! lowest_free_uid {
    () => {
        "(SELECT candidate AS uid FROM ( \
             SELECT $2 AS candidate \
             WHERE NOT EXISTS (SELECT 1 FROM unix_identities WHERE uid = $2) \
             UNION ALL \
             SELECT taken.uid + 1 FROM unix_identities AS taken \
             WHERE taken.uid >= $2 AND taken.uid < $3 AND NOT EXISTS ( \
                 SELECT 1 FROM unix_identities AS next WHERE next.uid = taken.uid + 1 \
             ) \
         ) AS candidates ORDER BY candidate LIMIT 1) AS free"
    };
}
pub(crate) use lowest_free_uid;

/// Implements [`Store`](crate::Store) for a backend struct holding a sqlx
/// `pool`, and a `lease_pool` of one connection that only lease renewals
/// use. The two SQL backends run the very same statements (both accept
/// `$n` placeholders, `ON CONFLICT`, `RETURNING` and window functions); they
/// differ only in how they read the clock, how they start transactions (and
/// on which sqlx `database`), and how a read in a write transaction locks
/// its row against writers (`share_lock`) or against writers and deleters
/// too (`update_lock`), which the caller passes in as SQL text.
macro_rules! impl_store {
    ($store:ident {
        kind: $kind:literal,
        now: $now:literal,
        begin_write: $begin_write:literal,
        begin_read: $begin_read:literal,
        database: $database:ty,
        share_lock: $share_lock:literal,
        update_lock: $update_lock:literal $(,)?
    }) => {
        const _: () = {
            use $crate::sql::{
                self, AccountRow, BlockRow, HostRow, LoginRow, RecordingBlockRow, RecordingRow,
                ScreenRow, SessionParams, SessionRow, ShareRow, UnixIdentityRow, UserRow,
                account_columns, epoch_param, from_sqlx, host_columns, login_columns,
                lowest_free_uid, recording_block_columns, recording_columns, session_columns,
                share_columns, unix_identity_columns,
            };
            use $crate::{
                Account, HostRecord, LeaseRenewal, Login, Millis, RecordingBlock, RecordingRecord,
                Result, ScreenWrite, SessionRecord, SessionState, SessionUpdate, ShareRecord, Store,
                StoreError, StoredScreen, UidRange, UnixIdentity, User,
            };

            /// Ends a host's lease now, if it runs longer (`$1` = the id).
            const END_LEASE_NOW: &str = concat!(
                "UPDATE hosts SET lease_expires_at = ",
                $now,
                " WHERE id = $1 AND lease_expires_at > ",
                $now
            );

            impl $store {

                /// Whether the session exists, for telling `Fenced` from
                /// `NotFound` after a write matched no row.
                async fn exists(&self, id: &str) -> Result<bool> {
                    let row: Option<i64> =
                        sqlx::query_scalar("SELECT epoch FROM sessions WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(from_sqlx)?;
                    Ok(row.is_some())
                }

                /// `save_screen`'s recording part, in its transaction once
                /// the fence has passed: appends the blocks the session's
                /// recording does not hold yet and counts only those, so a
                /// retried write counts nothing twice. Without a recording
                /// (never made, or deleted) the blocks are dropped.
                async fn append_recording(
                    tx: &mut sqlx::Transaction<'_, $database>,
                    id: &str,
                    blocks: &[RecordingBlock],
                ) -> Result<()> {
                    // The row's lock makes a concurrent delete wait for
                    // this write (and then delete these blocks too), or
                    // this wait for the delete (and then find no row): no
                    // block is ever left without its recording, and no
                    // write fails on the foreign key. Writes to one
                    // session are already queued by the fence's lock on
                    // its `sessions` row.
                    let recording: Option<i64> = sqlx::query_scalar(concat!(
                        "SELECT blocks FROM recordings WHERE session_id = $1",
                        $update_lock
                    ))
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(from_sqlx)?;
                    if recording.is_none() {
                        return Ok(());
                    }
                    let (mut bytes, mut count, mut end_ms) = (0_i64, 0_i64, 0_i64);
                    for block in blocks {
                        let end = sql::recording_param(id, "end_ms", block.end_ms)?;
                        let size = i64::try_from(block.data.len()).unwrap_or(i64::MAX);
                        // No conflict target: naming one needs the right
                        // to read its columns, and a host never reads a
                        // block back. The key (session_id, seq) is the
                        // table's only unique constraint.
                        let inserted = sqlx::query(
                            "INSERT INTO recording_blocks (session_id, seq, start_ms, end_ms, data) \
                             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        )
                        .bind(id)
                        .bind(sql::recording_param(id, "block seq", block.seq)?)
                        .bind(sql::recording_param(id, "start_ms", block.start_ms)?)
                        .bind(end)
                        .bind(&block.data)
                        .execute(&mut **tx)
                        .await
                        .map_err(from_sqlx)?;
                        if inserted.rows_affected() > 0 {
                            bytes = bytes.saturating_add(size);
                            count += 1;
                            end_ms = end_ms.max(end);
                        }
                    }
                    if count == 0 {
                        return Ok(());
                    }
                    sqlx::query(concat!(
                        "UPDATE recordings SET bytes = bytes + $2, blocks = blocks + $3, \
                         duration_ms = CASE WHEN duration_ms < $4 THEN $4 ELSE duration_ms END, \
                         updated_at = ",
                        $now,
                        " WHERE session_id = $1"
                    ))
                    .bind(id)
                    .bind(bytes)
                    .bind(count)
                    .bind(end_ms)
                    .execute(&mut **tx)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(())
                }

                /// The identity already given to `name`, if any.
                async fn find_unix_identity(&self, name: &str) -> Result<Option<UnixIdentity>> {
                    let row: Option<UnixIdentityRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        unix_identity_columns!(),
                        " FROM unix_identities WHERE name = $1"
                    ))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(row.map(UnixIdentityRow::into_pair).transpose()?.map(|(_, id)| id))
                }
            }

            #[async_trait::async_trait]
            impl Store for $store {
                fn kind(&self) -> &'static str {
                    $kind
                }

                async fn now(&self) -> Result<Millis> {
                    sqlx::query_scalar(concat!("SELECT ", $now))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(from_sqlx)
                }

                async fn put_user(&self, user: &User) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO users (id, name) VALUES ($1, $2) \
                         ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                    )
                    .bind(&user.id)
                    .bind(&user.name)
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(())
                }

                async fn get_user(&self, id: &str) -> Result<Option<User>> {
                    let row: Option<UserRow> =
                        sqlx::query_as("SELECT id, name FROM users WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(from_sqlx)?;
                    Ok(row.map(User::from))
                }

                async fn create_session(&self, record: &SessionRecord) -> Result<()> {
                    self.claim_session(record, u32::MAX).await
                }

                async fn claim_session(&self, record: &SessionRecord, max_running: u32) -> Result<()> {
                    let params = SessionParams::new(record)?;
                    let mut tx = self.pool.begin_with($begin_write).await.map_err(from_sqlx)?;
                    // The owner's row, upserted first: on PostgreSQL the
                    // update locks it until commit, so claims for one owner
                    // queue here and each counts what the previous one
                    // wrote; on SQLite the write transaction already holds
                    // the one lock.
                    sqlx::query(
                        "INSERT INTO users (id, name) VALUES ($1, $1) \
                         ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                    )
                    .bind(&record.owner)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    let running: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM sessions WHERE owner = $1 AND state = $2 AND id <> $3",
                    )
                    .bind(&record.owner)
                    .bind(sql::state_text(SessionState::Running))
                    .bind(&record.id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    if running >= i64::from(max_running) {
                        tx.rollback().await.map_err(from_sqlx)?;
                        return Err(StoreError::TooManySessions {
                            owner: record.owner.clone(),
                            running: u64::try_from(running).unwrap_or(0),
                            max: max_running,
                        });
                    }
                    // The clock is read once: PostgreSQL's clock_timestamp()
                    // moves between two calls in one statement, and a new
                    // record's last activity is its creation.
                    let inserted = sqlx::query(concat!(
                        "INSERT INTO sessions (id, owner, program, args, cwd, env, cols, \"rows\", title, \
                         foreground, state, owner_host, epoch, created_at, last_active) \
                         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, clock.now, clock.now \
                         FROM (SELECT ",
                        $now,
                        " AS now) AS clock WHERE true ON CONFLICT (id) DO NOTHING"
                    ))
                    .bind(&record.id)
                    .bind(&record.owner)
                    .bind(&record.program)
                    .bind(&params.args)
                    .bind(&record.cwd)
                    .bind(&params.env)
                    .bind(params.cols)
                    .bind(params.rows)
                    .bind(&record.title)
                    .bind(&record.foreground)
                    .bind(params.state)
                    .bind(&record.owner_host)
                    .bind(params.epoch)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    if inserted.rows_affected() == 0 {
                        tx.rollback().await.map_err(from_sqlx)?;
                        return Err(StoreError::Duplicate(record.id.clone()));
                    }
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(())
                }

                async fn get_session(&self, id: &str) -> Result<Option<SessionRecord>> {
                    let row: Option<SessionRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        session_columns!(),
                        " FROM sessions WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    row.map(SessionRow::into_record).transpose()
                }

                async fn list_sessions(&self, owner: Option<&str>) -> Result<Vec<SessionRecord>> {
                    let rows: Vec<SessionRow> =
                        match owner {
                            Some(owner) => sqlx::query_as(concat!(
                                "SELECT ",
                                session_columns!(),
                                " FROM sessions WHERE owner = $1 ORDER BY created_at DESC, id DESC"
                            ))
                            .bind(owner)
                            .fetch_all(&self.pool)
                            .await,
                            None => {
                                sqlx::query_as(concat!(
                                    "SELECT ",
                                    session_columns!(),
                                    " FROM sessions ORDER BY created_at DESC, id DESC"
                                ))
                                .fetch_all(&self.pool)
                                .await
                            }
                        }
                        .map_err(from_sqlx)?;
                    rows.into_iter().map(SessionRow::into_record).collect()
                }

                async fn update_session(
                    &self,
                    id: &str,
                    epoch: u64,
                    update: &SessionUpdate,
                ) -> Result<()> {
                    let updated = sqlx::query(concat!(
                        "UPDATE sessions SET \
                         cwd = COALESCE($3, cwd), \
                         cols = COALESCE($4, cols), \
                         \"rows\" = COALESCE($5, \"rows\"), \
                         title = CASE WHEN $6 THEN $7 ELSE title END, \
                         foreground = CASE WHEN $8 THEN $9 ELSE foreground END, \
                         state = COALESCE($10, state), \
                         last_active = ",
                        $now,
                        " WHERE id = $1 AND epoch = $2"
                    ))
                    .bind(id)
                    .bind(epoch_param(epoch))
                    .bind(&update.cwd)
                    .bind(update.cols.map(i64::from))
                    .bind(update.rows.map(i64::from))
                    .bind(update.title.is_some())
                    .bind(update.title.clone().flatten())
                    .bind(update.foreground.is_some())
                    .bind(update.foreground.clone().flatten())
                    .bind(update.state.map(sql::state_text))
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    if updated.rows_affected() == 0 {
                        return Err(sql::refusal(id, epoch, self.exists(id).await?));
                    }
                    Ok(())
                }

                async fn save_screen(
                    &self,
                    id: &str,
                    epoch: u64,
                    host: &str,
                    write: &ScreenWrite,
                ) -> Result<()> {
                    let mut tx = self.pool.begin_with($begin_write).await.map_err(from_sqlx)?;
                    let fenced = sqlx::query(concat!(
                        "UPDATE sessions SET last_active = ",
                        $now,
                        " WHERE id = $1 AND epoch = $2"
                    ))
                    .bind(id)
                    .bind(epoch_param(epoch))
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    if fenced.rows_affected() == 0 {
                        let exists: Option<i64> =
                            sqlx::query_scalar("SELECT epoch FROM sessions WHERE id = $1")
                                .bind(id)
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(from_sqlx)?;
                        tx.rollback().await.map_err(from_sqlx)?;
                        return Err(sql::refusal(id, epoch, exists.is_some()));
                    }
                    sqlx::query(concat!(
                        "INSERT INTO screens (session_id, screen, saved_at, saved_by, epoch) VALUES ($1, $2, ",
                        $now,
                        ", $3, $4) ON CONFLICT (session_id) DO UPDATE SET screen = excluded.screen, \
                         saved_at = excluded.saved_at, saved_by = excluded.saved_by, epoch = excluded.epoch"
                    ))
                    .bind(id)
                    .bind(&write.screen)
                    .bind(host)
                    .bind(epoch_param(epoch))
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    for block in &write.new_blocks {
                        sqlx::query(
                            "INSERT INTO scrollback_blocks (session_id, seq, lines, data) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (session_id, seq) DO NOTHING",
                        )
                        .bind(id)
                        .bind(sql::seq_param(id, block.seq)?)
                        .bind(i64::from(block.lines))
                        .bind(&block.data)
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    }
                    sqlx::query(sql::TRIM_BLOCKS)
                        .bind(id)
                        .bind(i64::from(write.keep_lines))
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    if !write.recording.is_empty() {
                        Self::append_recording(&mut tx, id, &write.recording).await?;
                    }
                    tx.commit().await.map_err(from_sqlx)
                }

                async fn load_screen(&self, id: &str) -> Result<Option<StoredScreen>> {
                    // One read transaction, so the screen and its blocks come from the
                    // same write.
                    let mut tx = self.pool.begin_with($begin_read).await.map_err(from_sqlx)?;
                    let screen: Option<ScreenRow> = sqlx::query_as(
                        "SELECT screen, saved_at, saved_by, epoch FROM screens WHERE session_id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    let Some(screen) = screen else {
                        return Ok(None);
                    };
                    let blocks: Vec<BlockRow> = sqlx::query_as(
                        "SELECT seq, lines, data FROM scrollback_blocks WHERE session_id = $1 ORDER BY seq",
                    )
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    sql::stored_screen(id, screen, blocks).map(Some)
                }

                async fn take_over(
                    &self,
                    id: &str,
                    expected_epoch: u64,
                    new_host: &str,
                ) -> Result<u64> {
                    let epoch: Option<i64> = sqlx::query_scalar(
                        "UPDATE sessions SET epoch = epoch + 1, owner_host = $3 \
                         WHERE id = $1 AND epoch = $2 RETURNING epoch",
                    )
                    .bind(id)
                    .bind(epoch_param(expected_epoch))
                    .bind(new_host)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    match epoch {
                        Some(epoch) => sql::epoch_from_row(id, epoch),
                        None => Err(sql::refusal(id, expected_epoch, self.exists(id).await?)),
                    }
                }

                async fn renew_lease(
                    &self,
                    id: &str,
                    secret: Option<&str>,
                    url: &str,
                    ttl_ms: u64,
                    load: u32,
                    shutting_down: bool,
                ) -> Result<LeaseRenewal> {
                    // One write transaction, so the previous expiry read
                    // here is the one this renewal replaces. No row lock:
                    // only the host renews its own lease, and two renewals
                    // of one id at once (a misconfigured duplicate) would
                    // deadlock upgrading shared locks. On the lease's own
                    // connection, so it never queues behind the host's
                    // screen writes.
                    let mut tx = self.lease_pool.begin_with($begin_write).await.map_err(from_sqlx)?;
                    // The enrolment is read in the transaction that writes
                    // the lease, so a revocation and a renewal cannot
                    // interleave.
                    let own: Option<(String, String)> = sqlx::query_as(
                        "SELECT url, secret_hash FROM host_enrolments WHERE id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    let any = match own {
                        Some(_) => true,
                        None => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM host_enrolments")
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(from_sqlx)?
                            > 0,
                    };
                    let enrolled = $crate::enrolment::Enrolled {
                        own: own.as_ref().map(|(url, hash)| (url.as_str(), hash.as_str())),
                        any,
                    };
                    if let Err(refused) = $crate::enrolment::check_renewal(id, url, secret, enrolled) {
                        tx.rollback().await.map_err(from_sqlx)?;
                        return Err(refused);
                    }
                    let lapsed: Option<bool> = sqlx::query_scalar(concat!(
                        "SELECT lease_expires_at <= ",
                        $now,
                        " FROM hosts WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    let row: HostRow = sqlx::query_as(concat!(
                        // `draining` is left to its default (not drained),
                        // so a host's role needs no right to that column:
                        // only a directory sets it.
                        "INSERT INTO hosts (id, url, load, shutting_down, lease_expires_at, registered_at) \
                         VALUES ($1, $2, $3, $4, ",
                        $now,
                        " + $5, ",
                        $now,
                        ") ON CONFLICT (id) DO UPDATE SET url = excluded.url, load = excluded.load, \
                         shutting_down = excluded.shutting_down, \
                         lease_expires_at = excluded.lease_expires_at \
                         RETURNING ",
                        host_columns!()
                    ))
                    .bind(id)
                    .bind(url)
                    .bind(i64::from(load))
                    .bind(shutting_down)
                    .bind(sql::ttl_param(ttl_ms))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(LeaseRenewal {
                        host: row.into_record()?,
                        lapsed: lapsed.unwrap_or(false),
                    })
                }

                async fn list_hosts(&self) -> Result<Vec<HostRecord>> {
                    let rows: Vec<HostRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        host_columns!(),
                        " FROM hosts ORDER BY id"
                    ))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    rows.into_iter().map(HostRow::into_record).collect()
                }

                async fn get_host(&self, id: &str) -> Result<Option<HostRecord>> {
                    let row: Option<HostRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        host_columns!(),
                        " FROM hosts WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    row.map(HostRow::into_record).transpose()
                }

                async fn enrol_host(&self, id: &str, url: &str, secret: &str) -> Result<()> {
                    let mut tx = self.pool.begin_with($begin_write).await.map_err(from_sqlx)?;
                    // The update names the parameters, not `excluded`,
                    // so a directory's role writes secret hashes without
                    // the right to read them back.
                    sqlx::query(concat!(
                        "INSERT INTO host_enrolments (id, url, secret_hash, enrolled_at) VALUES ($1, $2, $3, ",
                        $now,
                        ") ON CONFLICT (id) DO UPDATE SET url = $2, secret_hash = $3, enrolled_at = ",
                        $now
                    ))
                    .bind(id)
                    .bind(url)
                    .bind($crate::hash_host_secret(secret))
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    // The lease taken under the old enrolment ends now.
                    sqlx::query(END_LEASE_NOW)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(())
                }

                async fn remove_host_enrolment(&self, id: &str) -> Result<()> {
                    let mut tx = self.pool.begin_with($begin_write).await.map_err(from_sqlx)?;
                    let removed = sqlx::query("DELETE FROM host_enrolments WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    if removed.rows_affected() == 0 {
                        tx.rollback().await.map_err(from_sqlx)?;
                        return Err(StoreError::NotFound(id.to_owned()));
                    }
                    // The lease taken under the old enrolment ends now.
                    sqlx::query(END_LEASE_NOW)
                        .bind(id)
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(())
                }

                async fn list_host_enrolments(&self) -> Result<Vec<$crate::HostEnrolment>> {
                    let rows: Vec<(String, String, i64)> = sqlx::query_as(
                        "SELECT id, url, enrolled_at FROM host_enrolments ORDER BY id",
                    )
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(rows
                        .into_iter()
                        .map(|(id, url, enrolled_at)| $crate::HostEnrolment { id, url, enrolled_at })
                        .collect())
                }

                async fn set_drain_requested(&self, id: &str, requested: bool) -> Result<()> {
                    let updated = sqlx::query("UPDATE hosts SET draining = $2 WHERE id = $1")
                        .bind(id)
                        .bind(requested)
                        .execute(&self.pool)
                        .await
                        .map_err(from_sqlx)?;
                    if updated.rows_affected() == 0 {
                        return Err(StoreError::NotFound(id.to_owned()));
                    }
                    Ok(())
                }

                async fn create_account(&self, name: &str, password_hash: &str) -> Result<()> {
                    let inserted = sqlx::query(concat!(
                        "INSERT INTO accounts (name, password_hash, disabled, created_at) \
                         VALUES ($1, $2, FALSE, ",
                        $now,
                        ") ON CONFLICT (name) DO NOTHING"
                    ))
                    .bind(name)
                    .bind(password_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    if inserted.rows_affected() == 0 {
                        return Err(StoreError::Duplicate(name.to_owned()));
                    }
                    Ok(())
                }

                async fn get_account(&self, name: &str) -> Result<Option<Account>> {
                    let row: Option<AccountRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        account_columns!(),
                        " FROM accounts WHERE name = $1"
                    ))
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(row.map(Account::from))
                }

                async fn list_accounts(&self) -> Result<Vec<Account>> {
                    let rows: Vec<AccountRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        account_columns!(),
                        " FROM accounts ORDER BY name"
                    ))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(rows.into_iter().map(Account::from).collect())
                }

                async fn set_password(&self, name: &str, password_hash: &str) -> Result<()> {
                    let mut tx = self.pool.begin_with($begin_write).await.map_err(from_sqlx)?;
                    let updated =
                        sqlx::query("UPDATE accounts SET password_hash = $2 WHERE name = $1")
                            .bind(name)
                            .bind(password_hash)
                            .execute(&mut *tx)
                            .await
                            .map_err(from_sqlx)?;
                    if updated.rows_affected() == 0 {
                        tx.rollback().await.map_err(from_sqlx)?;
                        return Err(StoreError::NotFound(name.to_owned()));
                    }
                    sqlx::query("DELETE FROM logins WHERE user_name = $1")
                        .bind(name)
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    tx.commit().await.map_err(from_sqlx)
                }

                async fn set_disabled(&self, name: &str, disabled: bool) -> Result<()> {
                    let mut tx = self.pool.begin_with($begin_write).await.map_err(from_sqlx)?;
                    let updated = sqlx::query("UPDATE accounts SET disabled = $2 WHERE name = $1")
                        .bind(name)
                        .bind(disabled)
                        .execute(&mut *tx)
                        .await
                        .map_err(from_sqlx)?;
                    if updated.rows_affected() == 0 {
                        tx.rollback().await.map_err(from_sqlx)?;
                        return Err(StoreError::NotFound(name.to_owned()));
                    }
                    if disabled {
                        sqlx::query("DELETE FROM logins WHERE user_name = $1")
                            .bind(name)
                            .execute(&mut *tx)
                            .await
                            .map_err(from_sqlx)?;
                    }
                    tx.commit().await.map_err(from_sqlx)
                }

                async fn create_login(&self, id: &str, user: &str, ttl_ms: u64) -> Result<Login> {
                    let mut tx = self.pool.begin_with($begin_write).await.map_err(from_sqlx)?;
                    // The share lock makes a concurrent `set_password` or
                    // `set_disabled` wait for this login to commit (and then
                    // delete it), or this wait for theirs: a login is never
                    // left over from before a password change.
                    let account: Option<bool> = sqlx::query_scalar(concat!(
                        "SELECT disabled FROM accounts WHERE name = $1",
                        $share_lock
                    ))
                    .bind(user)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    if account.is_none() {
                        tx.rollback().await.map_err(from_sqlx)?;
                        return Err(StoreError::NotFound(user.to_owned()));
                    }
                    // Housekeeping: the user's dead logins go as new ones
                    // come, so the table stays as small as the live set.
                    sqlx::query(concat!(
                        "DELETE FROM logins WHERE user_name = $1 AND expires_at <= ",
                        $now
                    ))
                    .bind(user)
                    .execute(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    // One clock reading for both times, so a login lasts
                    // exactly its ttl. (`WHERE TRUE` lets SQLite parse an
                    // upsert after a SELECT.)
                    let row: Option<LoginRow> = sqlx::query_as(concat!(
                        "INSERT INTO logins (id, user_name, created_at, expires_at) \
                         SELECT $1, $2, clock.now, clock.now + $3 FROM (SELECT ",
                        $now,
                        " AS now) AS clock WHERE TRUE ON CONFLICT (id) DO NOTHING RETURNING ",
                        login_columns!()
                    ))
                    .bind(id)
                    .bind(user)
                    .bind(sql::login_ttl_param(ttl_ms))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(from_sqlx)?;
                    let Some(row) = row else {
                        tx.rollback().await.map_err(from_sqlx)?;
                        return Err(StoreError::Duplicate(id.to_owned()));
                    };
                    tx.commit().await.map_err(from_sqlx)?;
                    Ok(Login::from(row))
                }

                async fn get_login(&self, id: &str) -> Result<Option<Login>> {
                    let row: Option<LoginRow> = sqlx::query_as(concat!(
                        "SELECT logins.id, logins.user_name, logins.created_at, logins.expires_at \
                         FROM logins JOIN accounts ON accounts.name = logins.user_name \
                         WHERE logins.id = $1 AND accounts.disabled = FALSE AND logins.expires_at > ",
                        $now
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(row.map(Login::from))
                }

                async fn live_logins(&self, ids: &[String]) -> Result<Vec<String>> {
                    let mut live = Vec::new();
                    for chunk in ids.chunks($crate::LIVE_LOGINS_CHUNK) {
                        let mut query = sqlx::QueryBuilder::new(
                            "SELECT logins.id FROM logins \
                             JOIN accounts ON accounts.name = logins.user_name \
                             WHERE accounts.disabled = FALSE AND logins.expires_at > ",
                        );
                        query.push($now).push(" AND logins.id IN (");
                        let mut list = query.separated(", ");
                        for id in chunk {
                            list.push_bind(id.as_str());
                        }
                        query.push(")");
                        let found: Vec<String> = query
                            .build_query_scalar()
                            .fetch_all(&self.pool)
                            .await
                            .map_err(from_sqlx)?;
                        live.extend(found);
                    }
                    live.sort_unstable();
                    live.dedup();
                    Ok(live)
                }

                async fn account_disabled(&self, name: &str) -> Result<Option<bool>> {
                    sqlx::query_scalar("SELECT disabled FROM accounts WHERE name = $1")
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(from_sqlx)
                }

                async fn get_settings(&self, account: &str) -> Result<Option<String>> {
                    sqlx::query_scalar("SELECT body FROM settings WHERE account = $1")
                        .bind(account)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(from_sqlx)
                }

                async fn put_settings(&self, account: &str, body: &str) -> Result<()> {
                    // One statement: the account's row, if any, feeds the
                    // upsert (SQLite needs the WHERE to parse ON CONFLICT
                    // after a SELECT), so no row written means no account.
                    let written = sqlx::query(concat!(
                        "INSERT INTO settings (account, body, updated_at) \
                         SELECT name, $2, ",
                        $now,
                        " FROM accounts WHERE name = $1 \
                         ON CONFLICT (account) DO UPDATE \
                         SET body = excluded.body, updated_at = excluded.updated_at"
                    ))
                    .bind(account)
                    .bind(body)
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    if written.rows_affected() == 0 {
                        return Err(StoreError::NotFound(account.to_owned()));
                    }
                    Ok(())
                }

                async fn end_login(&self, id: &str) -> Result<()> {
                    sqlx::query("DELETE FROM logins WHERE id = $1")
                        .bind(id)
                        .execute(&self.pool)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(())
                }

                async fn end_session(&self, id: &str) -> Result<u64> {
                    let epoch: Option<i64> = sqlx::query_scalar(
                        "UPDATE sessions SET state = $2, epoch = epoch + 1 \
                         WHERE id = $1 RETURNING epoch",
                    )
                    .bind(id)
                    .bind(sql::state_text(SessionState::Ended))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    match epoch {
                        Some(epoch) => sql::epoch_from_row(id, epoch),
                        None => Err(StoreError::NotFound(id.to_owned())),
                    }
                }

                async fn unix_identity(&self, name: &str, range: UidRange) -> Result<UnixIdentity> {
                    $crate::check_user_name(name)?;
                    let range = range.checked()?;
                    for _ in 0..sql::UID_ALLOCATION_ATTEMPTS {
                        if let Some(identity) = self.find_unix_identity(name).await? {
                            return Ok(identity);
                        }
                        // One statement, so it finds the free uid and
                        // takes it at once: SQLite runs it under the one
                        // write lock; on PostgreSQL a host that took the
                        // same uid meanwhile makes it fail on the uid's
                        // unique index (then we look again), and one that
                        // gave `name` an identity meanwhile makes it do
                        // nothing (then we read that one).
                        let inserted = sqlx::query_as::<_, UnixIdentityRow>(concat!(
                            "INSERT INTO unix_identities (name, uid, gid, mapped, created_at) \
                             SELECT $1, free.uid, free.uid, FALSE, ",
                            $now,
                            " FROM ",
                            lowest_free_uid!(),
                            // `WHERE TRUE` lets SQLite parse an upsert
                            // after a SELECT.
                            " WHERE TRUE ON CONFLICT (name) DO NOTHING RETURNING ",
                            unix_identity_columns!()
                        ))
                        .bind(name)
                        .bind(i64::from(range.first))
                        .bind(i64::from(range.last))
                        .fetch_optional(&self.pool)
                        .await;
                        match inserted {
                            Ok(Some(row)) => return Ok(row.into_pair()?.1),
                            Ok(None) => {
                                return match self.find_unix_identity(name).await? {
                                    Some(identity) => Ok(identity),
                                    None => Err(StoreError::UidRangeExhausted { range }),
                                };
                            }
                            Err(error) if sql::is_unique_violation(&error) => continue,
                            Err(error) => return Err(from_sqlx(error)),
                        }
                    }
                    Err(StoreError::Unavailable(format!(
                        "giving {name} a uid lost {} races with other hosts giving uids; retry",
                        sql::UID_ALLOCATION_ATTEMPTS
                    )))
                }

                async fn map_unix_identity(&self, name: &str, uid: u32, gid: u32) -> Result<()> {
                    $crate::check_user_name(name)?;
                    $crate::check_unix_ids(uid, gid)?;
                    let mapped = sqlx::query(concat!(
                        "INSERT INTO unix_identities (name, uid, gid, mapped, created_at) \
                         VALUES ($1, $2, $3, TRUE, ",
                        $now,
                        ") ON CONFLICT (name) DO UPDATE SET uid = excluded.uid, gid = excluded.gid, \
                         mapped = excluded.mapped, created_at = excluded.created_at"
                    ))
                    .bind(name)
                    .bind(i64::from(uid))
                    .bind(i64::from(gid))
                    .execute(&self.pool)
                    .await;
                    match mapped {
                        Ok(_) => Ok(()),
                        // Only the uid is unique besides the name, which
                        // the upsert handles.
                        Err(error) if sql::is_unique_violation(&error) => {
                            let holder: Option<String> = sqlx::query_scalar(
                                "SELECT name FROM unix_identities WHERE uid = $1",
                            )
                            .bind(i64::from(uid))
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(from_sqlx)?;
                            Err(StoreError::UidTaken {
                                uid,
                                // Identities are never deleted, but the
                                // holder may have been mapped elsewhere
                                // since.
                                name: holder.unwrap_or_else(|| "another user".to_owned()),
                            })
                        }
                        Err(error) => Err(from_sqlx(error)),
                    }
                }

                async fn list_unix_identities(&self) -> Result<Vec<(String, UnixIdentity)>> {
                    let rows: Vec<UnixIdentityRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        unix_identity_columns!(),
                        " FROM unix_identities ORDER BY name"
                    ))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    rows.into_iter().map(UnixIdentityRow::into_pair).collect()
                }

                async fn create_share(
                    &self,
                    id: &str,
                    token_hash: &str,
                    session: &str,
                    owner: &str,
                    may_type: bool,
                    ttl_ms: u64,
                ) -> Result<ShareRecord> {
                    // One statement: the session's row, only if it is the
                    // owner's and running, feeds the insert, and one clock
                    // reading gives both times. A session ended a moment
                    // later leaves a share that `live_shares` never counts.
                    let row: Option<ShareRow> = sqlx::query_as(concat!(
                        "INSERT INTO shares (id, token_hash, session_id, owner, may_type, \
                         created_at, expires_at) \
                         SELECT $1, $2, sessions.id, sessions.owner, $5, clock.now, clock.now + $6 \
                         FROM sessions, (SELECT ",
                        $now,
                        " AS now) AS clock \
                         WHERE sessions.id = $3 AND sessions.owner = $4 AND sessions.state = $7 \
                         ON CONFLICT DO NOTHING RETURNING ",
                        share_columns!()
                    ))
                    .bind(id)
                    .bind(token_hash)
                    .bind(session)
                    .bind(owner)
                    .bind(may_type)
                    .bind(sql::share_ttl_param(ttl_ms))
                    .bind(sql::state_text(SessionState::Running))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    if let Some(row) = row {
                        return Ok(ShareRecord::from(row));
                    }
                    // Nothing written: say why.
                    let found: Option<(String, String)> =
                        sqlx::query_as("SELECT owner, state FROM sessions WHERE id = $1")
                            .bind(session)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(from_sqlx)?;
                    Err(match found {
                        Some((found_owner, _)) if found_owner != owner => {
                            StoreError::NotFound(session.to_owned())
                        }
                        None => StoreError::NotFound(session.to_owned()),
                        Some((_, state)) if state != sql::state_text(SessionState::Running) => {
                            StoreError::SessionEnded(session.to_owned())
                        }
                        Some(_) => StoreError::Duplicate(id.to_owned()),
                    })
                }

                async fn share_by_token(&self, token_hash: &str) -> Result<Option<ShareRecord>> {
                    let row: Option<ShareRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        share_columns!(),
                        " FROM shares WHERE token_hash = $1"
                    ))
                    .bind(token_hash)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(row.map(ShareRecord::from))
                }

                async fn list_shares(&self, owner: &str) -> Result<Vec<ShareRecord>> {
                    let rows: Vec<ShareRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        share_columns!(),
                        " FROM shares WHERE owner = $1 ORDER BY created_at DESC, id DESC"
                    ))
                    .bind(owner)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    Ok(rows.into_iter().map(ShareRecord::from).collect())
                }

                async fn revoke_share(&self, owner: &str, id: &str) -> Result<()> {
                    let updated =
                        sqlx::query("UPDATE shares SET revoked = TRUE WHERE id = $1 AND owner = $2")
                            .bind(id)
                            .bind(owner)
                            .execute(&self.pool)
                            .await
                            .map_err(from_sqlx)?;
                    if updated.rows_affected() == 0 {
                        return Err(StoreError::NotFound(id.to_owned()));
                    }
                    Ok(())
                }

                async fn live_shares(&self, ids: &[String]) -> Result<Vec<String>> {
                    let mut live = Vec::new();
                    for chunk in ids.chunks($crate::LIVE_LOGINS_CHUNK) {
                        let mut query = sqlx::QueryBuilder::new(
                            "SELECT shares.id FROM shares \
                             JOIN sessions ON sessions.id = shares.session_id \
                             WHERE shares.revoked = FALSE AND sessions.state = ",
                        );
                        query
                            .push_bind(sql::state_text(SessionState::Running))
                            .push(" AND shares.expires_at > ")
                            .push($now)
                            .push(" AND shares.id IN (");
                        let mut list = query.separated(", ");
                        for id in chunk {
                            list.push_bind(id.as_str());
                        }
                        query.push(")");
                        let found: Vec<String> = query
                            .build_query_scalar()
                            .fetch_all(&self.pool)
                            .await
                            .map_err(from_sqlx)?;
                        live.extend(found);
                    }
                    live.sort_unstable();
                    live.dedup();
                    Ok(live)
                }

                async fn create_recording(
                    &self,
                    session: &str,
                    owner: &str,
                    cols: u16,
                    rows: u16,
                    max_bytes: u64,
                ) -> Result<()> {
                    // One clock reading for both times; the counters start
                    // at their defaults (0), so a host's role inserts no
                    // more columns than these.
                    let inserted = sqlx::query(concat!(
                        "INSERT INTO recordings (session_id, owner, started_at, updated_at, cols, \
                         \"rows\", max_bytes) \
                         SELECT $1, $2, clock.now, clock.now, $3, $4, $5 FROM (SELECT ",
                        $now,
                        " AS now) AS clock WHERE true ON CONFLICT (session_id) DO NOTHING"
                    ))
                    .bind(session)
                    .bind(owner)
                    .bind(i64::from(cols))
                    .bind(i64::from(rows))
                    .bind(sql::max_bytes_param(max_bytes))
                    .execute(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    if inserted.rows_affected() == 0 {
                        return Err(StoreError::Duplicate(session.to_owned()));
                    }
                    Ok(())
                }

                async fn get_recording(&self, session: &str) -> Result<Option<RecordingRecord>> {
                    let row: Option<RecordingRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        recording_columns!(),
                        " FROM recordings WHERE session_id = $1"
                    ))
                    .bind(session)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    row.map(RecordingRow::into_record).transpose()
                }

                async fn list_recordings(&self, owner: &str) -> Result<Vec<RecordingRecord>> {
                    let rows: Vec<RecordingRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        recording_columns!(),
                        " FROM recordings WHERE owner = $1 \
                         ORDER BY started_at DESC, session_id DESC"
                    ))
                    .bind(owner)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    rows.into_iter().map(RecordingRow::into_record).collect()
                }

                async fn recording_blocks(
                    &self,
                    session: &str,
                    after: Option<u64>,
                    limit: u32,
                ) -> Result<Vec<RecordingBlock>> {
                    // No stored seq is negative (the schemas check it), and
                    // none is above `i64::MAX`, so an `after` past it
                    // leaves nothing.
                    let after = after.map_or(-1, |after| i64::try_from(after).unwrap_or(i64::MAX));
                    let rows: Vec<RecordingBlockRow> = sqlx::query_as(concat!(
                        "SELECT ",
                        recording_block_columns!(),
                        " FROM recording_blocks WHERE session_id = $1 AND seq > $2 \
                         ORDER BY seq LIMIT $3"
                    ))
                    .bind(session)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(from_sqlx)?;
                    rows.into_iter().map(|row| row.into_block(session)).collect()
                }

                async fn delete_recording(&self, owner: &str, session: &str) -> Result<()> {
                    // One statement: the blocks go with the row (ON DELETE
                    // CASCADE), in its transaction.
                    let deleted =
                        sqlx::query("DELETE FROM recordings WHERE session_id = $1 AND owner = $2")
                            .bind(session)
                            .bind(owner)
                            .execute(&self.pool)
                            .await
                            .map_err(from_sqlx)?;
                    if deleted.rows_affected() == 0 {
                        return Err(StoreError::NotFound(session.to_owned()));
                    }
                    Ok(())
                }

                async fn delete_recordings_before(&self, cutoff: Millis) -> Result<u64> {
                    let deleted = sqlx::query("DELETE FROM recordings WHERE updated_at < $1")
                        .bind(cutoff)
                        .execute(&self.pool)
                        .await
                        .map_err(from_sqlx)?;
                    Ok(deleted.rows_affected())
                }

                async fn recording_opt_in(&self, name: &str) -> Result<bool> {
                    let on: Option<bool> =
                        sqlx::query_scalar("SELECT record_sessions FROM accounts WHERE name = $1")
                            .bind(name)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(from_sqlx)?;
                    Ok(on.unwrap_or(false))
                }

                async fn set_recording_opt_in(&self, name: &str, on: bool) -> Result<()> {
                    let updated =
                        sqlx::query("UPDATE accounts SET record_sessions = $2 WHERE name = $1")
                            .bind(name)
                            .bind(on)
                            .execute(&self.pool)
                            .await
                            .map_err(from_sqlx)?;
                    if updated.rows_affected() == 0 {
                        return Err(StoreError::NotFound(name.to_owned()));
                    }
                    Ok(())
                }
            }
        };
    };
}
pub(crate) use impl_store;
