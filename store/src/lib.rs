//! The shared user-data backend.
//!
//! No host holds the only copy of anything permanent: session records, the
//! last screen of every session and its scrollback live behind the [`Store`]
//! trait, implemented for SQLite (the embedded default, one machine) and
//! PostgreSQL (production), plus an in-memory store for unit tests. All
//! three pass the same conformance suite (`store/tests/it`).
//!
//! Every write to a session is fenced by its epoch: the write names the
//! epoch its writer believes current and is refused with
//! [`StoreError::Fenced`] when ownership has moved on. A host that sees
//! `Fenced` has lost the session and must stop serving it.
//!
//! # Why sqlx
//!
//! Both SQL backends use [sqlx](https://docs.rs/sqlx): one async API over
//! SQLite and PostgreSQL, so the two backends run the very same statements
//! (see `sql.rs`) and differ only in how they connect, read the clock and
//! begin transactions. Queries are plain strings checked by the conformance
//! suite rather than by sqlx's compile-time macros, so building needs no
//! database and no `DATABASE_URL`. Schema migrations are embedded in the
//! binary with `sqlx::migrate!` and applied, versioned, whenever a store is
//! opened, so a fresh file or an empty schema is ready with no extra step.
//! On PostgreSQL a store whose schema is up to date only reads the
//! migrations table, so servers whose roles may not change the schema open
//! it; a role that may not migrate a schema that is behind gets an error
//! saying so. `store/roles/postgres.sql` makes those roles: an owner that
//! migrates, and directories and hosts granted only the rows and columns
//! their statements touch.
//!
//! # Host leases
//!
//! The store also keeps the host registry the directory serves from: one
//! [`HostRecord`] per session host, whose lease each host renews here
//! itself, against the backend's clock, so no directory stands between a
//! host and its lease. Liveness is always judged against [`Store::now`],
//! never the caller's clock, so a directory replica with a skewed clock
//! cannot declare a healthy host dead. A host's record also says whether it
//! is draining and on whose word ([`Drain`]): an operator's drain lasts
//! until the operator lifts it, a shutdown's ends with the process.
//!
//! # Accounts and logins
//!
//! Sign-in state lives here too, so any directory replica can check it.
//! An [`Account`] is a user name with an argon2 password hash (hashing and
//! verifying are the `auth` crate's business; the store only keeps the
//! string) and a `disabled` flag. A [`Login`] is one browser's sign-in,
//! keyed by the hash of its cookie secret (never the secret) and expiring
//! by the backend's clock. [`Store::get_login`] answers only for a live
//! login, so expiry, disabling an account and changing its password take
//! effect at once for every replica and host. Changing the password or
//! disabling the account also deletes the account's logins in the same
//! transaction. Accounts are separate from [`User`] records, which hosts
//! upsert for session owners and which hold no credentials.
//!
//! User names are checked by callers with [`valid_user_name`]; the store
//! keeps whatever it is given, except for Unix identities.
//!
//! # Unix identities
//!
//! Every user's sessions run as one [`UnixIdentity`], the same uid and gid
//! on every host, so the files a session leaves behind keep their owner
//! when the session moves to another host. The store hands it out:
//! [`Store::unix_identity`] gives a user who has none the lowest free uid
//! of the hosts' [`UidRange`], once, and the same answer ever after, to
//! every host, however many ask at once. An operator may map a user to an
//! existing system user instead ([`Store::map_unix_identity`]). Identities
//! are keyed by the user name as tickets and session owners carry it, not
//! by [`Account`]: a host may serve a user who has no password account. No
//! identity is ever uid or gid 0 (root) or [`u32::MAX`] (`(uid_t) -1`,
//! which `setresuid(2)` reads as "leave unchanged"), and these methods
//! refuse names that [`valid_user_name`] refuses.

//!
//! # Share links
//!
//! An owner may let another signed-in user watch a running session: a
//! [`ShareRecord`] is kept by the sha256 of the link's secret token (the
//! token itself is never stored), expires by the backend's clock and can be
//! revoked. [`Store::live_shares`] is what a host rechecks, for every
//! viewer it serves, so a revoked or expired link, or an ended session,
//! closes the viewer's socket everywhere at once.
//!
//! # Session recordings
//!
//! A session may be recorded: its host makes one [`RecordingRecord`] for
//! it ([`Store::create_recording`]) and appends [`RecordingBlock`]s in the
//! fenced screen write, so only the session's current owner records, and a
//! retried write counts nothing twice. A recording is kept by the session's
//! id but outlives the session's row, until its owner deletes it or the
//! retention ([`Store::delete_recordings_before`], by the backend's time
//! of its last block) does; its blocks always go with it.

use async_trait::async_trait;

mod enrolment;
mod memory;
mod postgres;
mod sql;
mod sqlite;

pub use enrolment::{HostEnrolment, hash_host_secret, is_loopback_url};
pub use memory::MemoryStore;
pub use postgres::{PgStore, PgStoreBuilder};
pub use sqlite::SqliteStore;

/// Opens the store a `--store` setting names: `postgres://...` (or
/// `postgresql://...`) for PostgreSQL, otherwise `sqlite:PATH` or a bare
/// path for an SQLite file, whose folder is created if missing. Migrations
/// are applied either way (on PostgreSQL, when the schema is behind and
/// the role may migrate it; see [`PgStore::connect`]). `application` names
/// the process to the server (PostgreSQL's `application_name`), e.g.
/// `thinline-host h1`.
pub async fn open(spec: &str, application: &str) -> Result<std::sync::Arc<dyn Store>> {
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let store = PgStore::builder(spec)
            .application_name(application)
            .connect()
            .await?;
        return Ok(std::sync::Arc::new(store));
    }
    let path = std::path::Path::new(spec.strip_prefix("sqlite:").unwrap_or(spec));
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", parent.display()))
        })?;
    }
    Ok(std::sync::Arc::new(SqliteStore::open(path).await?))
}

/// A session's id as 32 lowercase hex digits (the same text as
/// `protocol::SessionId`'s `Display`; the store does not depend on the
/// protocol crate).
pub type SessionKey = String;

/// Milliseconds since the Unix epoch, always read from the backend's clock
/// so that hosts with skewed clocks agree.
pub type Millis = i64;

/// A session owner as hosts record it (no credentials; see [`Account`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionState {
    /// A program is (or should be) running for it.
    Running,
    /// The program exited or the user ended it; never restored.
    Ended,
}

/// A session's record. Timestamps are filled in by the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionKey,
    pub owner: String,
    pub program: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub env: Vec<(String, String)>,
    pub cols: u16,
    pub rows: u16,
    pub title: Option<String>,
    /// The foreground command at the last persist (e.g. `vim notes.txt`).
    pub foreground: Option<String>,
    pub state: SessionState,
    pub owner_host: String,
    pub epoch: u64,
    pub created_at: Millis,
    pub last_active: Millis,
}

/// What a host updates about a session as it runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionUpdate {
    pub cwd: Option<String>,
    pub cols: Option<u16>,
    pub rows: Option<u16>,
    /// `Some(None)` clears the title.
    pub title: Option<Option<String>>,
    pub foreground: Option<Option<String>>,
    pub state: Option<SessionState>,
}

/// A sealed, immutable block of scrollback lines, numbered per session from
/// 0 upwards. `data` is opaque to the store (the host stores
/// `protocol::CompressedLines` encoded with postcard).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrollbackBlock {
    pub seq: u64,
    pub lines: u32,
    pub data: Vec<u8>,
}

/// One durable write of a session's screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScreenWrite {
    /// The visible grid, cursor, modes and the unsealed scrollback tail,
    /// opaque to the store; replaces the previous one.
    pub screen: Vec<u8>,
    /// Newly sealed blocks, appended. Writing a block whose `seq` is already
    /// stored is a no-op, so a retried write is harmless.
    pub new_blocks: Vec<ScrollbackBlock>,
    /// After appending, the oldest blocks are deleted while the remaining
    /// ones still hold at least this many lines.
    pub keep_lines: u32,
    /// Blocks of the session's recording, appended in the same fenced
    /// transaction (so a host that lost the session records nothing more).
    /// Writing a block whose `seq` is already stored is a no-op; blocks of
    /// a recording that does not exist (never made, or deleted by its
    /// owner) are dropped without an error.
    pub recording: Vec<RecordingBlock>,
}

/// One block of a session's recording: output, resizes and markers between
/// `start_ms` and `end_ms` (milliseconds since the recording started).
/// `data` is opaque to the store (`host_server::recording`'s encoding).
/// Numbered by the host that wrote it, `epoch << 32 | n`, so every host a
/// session moves to writes after its predecessors and a retried write is
/// harmless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingBlock {
    pub seq: u64,
    pub start_ms: u64,
    pub end_ms: u64,
    pub data: Vec<u8>,
}

/// A session's recording: at most one per session, named by the session's
/// id, kept after the session ends until its owner deletes it or it
/// outlives the retention.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordingRecord {
    /// The recorded session's id.
    pub session: String,
    pub owner: String,
    /// Backend time the recording was made.
    pub started_at: Millis,
    /// Backend time of the last block written (`started_at` before any).
    pub updated_at: Millis,
    /// The terminal's size when recording started.
    pub cols: u16,
    pub rows: u16,
    /// The most block bytes its hosts may write; they stop recording there.
    pub max_bytes: u64,
    /// Block bytes stored so far.
    pub bytes: u64,
    /// Blocks stored so far.
    pub blocks: u64,
    /// The largest `end_ms` of its blocks.
    pub duration_ms: u64,
}

/// A session's last durable screen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredScreen {
    pub screen: Vec<u8>,
    /// Oldest first.
    pub blocks: Vec<ScrollbackBlock>,
    /// Backend time of the write.
    pub saved_at: Millis,
    /// The host that wrote it.
    pub saved_by: String,
    /// The session epoch the write was fenced by: every write is refused
    /// unless it names the current epoch, so this is the epoch of the
    /// session's owner at the time (0 for screens saved before the store
    /// kept it).
    pub epoch: u64,
}

/// The longest lease a renewal may grant. Callers (the directory) clamp to
/// far less; this bound only keeps `now + ttl` from overflowing.
pub const MAX_LEASE_TTL_MS: u64 = 24 * 3600 * 1000;

/// A session host as the registry knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostRecord {
    pub id: String,
    /// Where clients and the directory reach the host, e.g.
    /// `http://127.0.0.1:8081`.
    pub url: String,
    /// Sessions the host runs, as it last reported.
    pub load: u32,
    /// An operator asked for this host to be drained
    /// ([`Store::set_drain_requested`]). It outlives the host's restarts:
    /// only the operator lifts it, and renewals never touch it.
    pub drain_requested: bool,
    /// The host's own process is shutting down (SIGTERM) and handing its
    /// sessions over. Every renewal replaces it, so a host started again
    /// under the same id serves again.
    pub shutting_down: bool,
    /// Backend time after which the host must not be considered alive. The
    /// lease is live while `lease_expires_at > now` by the backend's clock.
    pub lease_expires_at: Millis,
    /// Backend time of the host's first registration; renewals keep it.
    pub registered_at: Millis,
}

impl HostRecord {
    /// Whether the lease is live at `now`, a reading of the backend's clock.
    pub fn is_live(&self, now: Millis) -> bool {
        self.lease_expires_at > now
    }

    /// Why the host takes no sessions, if it is draining; an operator's
    /// request is named first, since it outlives the host's own shutdown.
    pub fn drain(&self) -> Option<Drain> {
        if self.drain_requested {
            Some(Drain::Operator)
        } else if self.shutting_down {
            Some(Drain::Shutdown)
        } else {
            None
        }
    }

    /// Whether the host is handing its sessions over and takes no new ones.
    pub fn is_draining(&self) -> bool {
        self.drain().is_some()
    }
}

/// Who wants a host drained: the two have different lifetimes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// An operator asked; it lasts until the operator lifts it.
    Operator,
    /// The host's process is shutting down; it ends with that process.
    Shutdown,
}

impl Drain {
    /// The word the host list and `/healthz` show.
    pub fn as_str(self) -> &'static str {
        match self {
            Drain::Operator => "operator",
            Drain::Shutdown => "shutdown",
        }
    }
}

/// What a lease renewal found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRenewal {
    /// The host's record after the renewal.
    pub host: HostRecord,
    /// The host's previous lease had run out by the backend's clock before
    /// this renewal arrived (a first registration has not). While it was
    /// out, a directory may have moved the host's sessions elsewhere, so the
    /// host must check that each session it runs is still its own.
    pub lapsed: bool,
}

/// The longest login [`Store::create_login`] grants; a longer `ttl_ms` is
/// cut to this. Callers (the directory) ask for far less; this bound only
/// keeps `now + ttl` from overflowing.
pub const MAX_LOGIN_TTL_MS: u64 = 90 * 24 * 3600 * 1000;

/// The longest user name [`valid_user_name`] accepts, in characters.
pub const MAX_USER_NAME_LEN: usize = 64;

/// How many ids one [`Store::live_logins`] or [`Store::live_shares`]
/// query binds: well under
/// SQLite's 32,766 and PostgreSQL's 65,535 parameters.
pub const LIVE_LOGINS_CHUNK: usize = 1000;

/// Whether `name` may name an account: 1 to [`MAX_USER_NAME_LEN`]
/// characters of `a-z`, `0-9`, `.`, `_` and `-`, starting with a letter or
/// a digit (so it is never `.`, `..` or an option like `-x`, and is safe in
/// paths, logs and URLs). Upper case is refused rather than folded, so one
/// person cannot hold `ada` and `Ada`.
pub fn valid_user_name(name: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b);
    match name.as_bytes() {
        [first, ..] if name.len() <= MAX_USER_NAME_LEN => {
            (first.is_ascii_lowercase() || first.is_ascii_digit()) && name.bytes().all(allowed)
        }
        _ => false,
    }
}

/// A user who can sign in.
#[derive(Clone, PartialEq, Eq)]
pub struct Account {
    /// The user name, as [`valid_user_name`] accepts it; also the `owner`
    /// of the user's sessions.
    pub name: String,
    /// An argon2id PHC string, made and checked by the `auth` crate.
    pub password_hash: String,
    /// A disabled account cannot sign in and has no live logins.
    pub disabled: bool,
    /// Backend time of [`Store::create_account`].
    pub created_at: Millis,
}

/// Leaves the password hash out, so logging an account never hands it to
/// an offline cracker.
impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("password_hash", &"<redacted>")
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// One sign-in: what a browser's login cookie stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login {
    /// The login's id: 64 lowercase hex digits, the sha256 of the cookie
    /// secret (`auth::login::LoginId`). Not secret: tickets carry it.
    pub id: String,
    /// The account's name.
    pub user: String,
    /// Backend time of [`Store::create_login`].
    pub created_at: Millis,
    /// Backend time from which the login is no longer live.
    pub expires_at: Millis,
}

/// The longest share link [`Store::create_share`] grants; a longer `ttl_ms`
/// is cut to this. A share lets someone else watch a session, so it is
/// kept short: the directory's `--share-ttl-hours` is at most this too.
pub const MAX_SHARE_TTL_MS: u64 = 7 * 24 * 3600 * 1000;

/// A share link of a session: lets another signed-in user watch it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRecord {
    /// 32 lowercase hex digits; public (listing, revoking, the host's watch).
    pub id: String,
    /// SHA-256 of the link's secret token, 64 lowercase hex digits; the
    /// token itself is never stored.
    pub token_hash: String,
    pub session: String,
    /// The session's owner, who made the link and alone may revoke it.
    pub owner: String,
    /// Whether the viewer's keys reach the program, or they only watch.
    pub may_type: bool,
    /// Backend time of [`Store::create_share`].
    pub created_at: Millis,
    /// Backend time from which the link no longer opens the session.
    pub expires_at: Millis,
    /// The owner revoked it ([`Store::revoke_share`]); it stays listed.
    pub revoked: bool,
}

impl ShareRecord {
    /// Whether the link still opens its session at `now` (a reading of the
    /// backend's clock), as far as the link itself goes: not revoked, not
    /// expired. Whether the session still runs is the session record's.
    pub fn is_live(&self, now: Millis) -> bool {
        !self.revoked && self.expires_at > now
    }
}

/// The highest uid or gid the store gives or accepts. `u32::MAX` is
/// `(uid_t) -1`, which `setresuid(2)` and `chown(2)` read as "leave
/// unchanged": a session told to run as it would keep the host's own
/// identity, root's included.
pub const MAX_UNIX_ID: u32 = u32::MAX - 1;

/// The uid and gid a user's sessions run as, on every host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnixIdentity {
    /// Never 0 and at most [`MAX_UNIX_ID`]; no two users share one.
    pub uid: u32,
    /// Never 0 and at most [`MAX_UNIX_ID`]; the uid, unless an operator
    /// mapped the user to a system user with another primary group.
    pub gid: u32,
    /// An operator mapped the user to an existing system user
    /// ([`Store::map_unix_identity`]) rather than the store allocating it
    /// from a [`UidRange`].
    pub mapped: bool,
}

/// The uids [`Store::unix_identity`] allocates from, both ends included,
/// written `FIRST-LAST` (e.g. `200000-299999`) in settings. Pick a range
/// no system user or group of any host uses: an allocated gid is the uid.
///
/// Parsing refuses what no range may be; a range built from its fields
/// is checked again by the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UidRange {
    pub first: u32,
    pub last: u32,
}

impl UidRange {
    /// Whether `uid` is in the range.
    pub fn contains(self, uid: u32) -> bool {
        (self.first..=self.last).contains(&uid)
    }

    /// The range, or why it cannot be allocated from.
    pub fn checked(self) -> std::result::Result<UidRange, UidRangeError> {
        let refuse = |reason: &str| UidRangeError {
            text: self.to_string(),
            reason: reason.to_owned(),
        };
        if self.first == 0 {
            Err(refuse("it starts at 0, which is root"))
        } else if self.first > self.last {
            Err(refuse("FIRST is greater than LAST"))
        } else if self.last > MAX_UNIX_ID {
            Err(refuse("4294967295 is (uid_t) -1, which is no uid"))
        } else {
            Ok(self)
        }
    }
}

impl std::fmt::Display for UidRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl std::str::FromStr for UidRange {
    type Err = UidRangeError;

    fn from_str(text: &str) -> std::result::Result<UidRange, UidRangeError> {
        let refuse = |reason: String| UidRangeError {
            text: text.to_owned(),
            reason,
        };
        let Some((first, last)) = text.split_once('-') else {
            return Err(refuse("it is not two numbers joined by '-'".to_owned()));
        };
        // Digits only: `u32::from_str` would also take a leading `+`.
        let number = |part: &str| {
            part.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| part.parse::<u32>().ok())
                .flatten()
                .ok_or_else(|| refuse(format!("{part:?} is not a number from 0 to {}", u32::MAX)))
        };
        UidRange {
            first: number(first)?,
            last: number(last)?,
        }
        .checked()
        .map_err(|error| refuse(error.reason))
    }
}

/// Why a [`UidRange`] is refused; says what a range looks like.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid uid range {text:?}: {reason}; use FIRST-LAST, e.g. 200000-299999, \
     with 1 <= FIRST <= LAST <= 4294967294"
)]
pub struct UidRangeError {
    text: String,
    reason: String,
}

/// Refuses what no session may run as: root, or `(uid_t) -1`.
pub(crate) fn check_unix_ids(uid: u32, gid: u32) -> Result<()> {
    for (what, id) in [("uid", uid), ("gid", gid)] {
        if id == 0 || id > MAX_UNIX_ID {
            return Err(StoreError::UnusableUnixId { what, id });
        }
    }
    Ok(())
}

/// Refuses a user name that [`valid_user_name`] refuses.
pub(crate) fn check_user_name(name: &str) -> Result<()> {
    if valid_user_name(name) {
        Ok(())
    } else {
        Err(StoreError::InvalidUserName(name.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The write named an epoch that is no longer the session's: another
    /// host owns it now.
    #[error("session {session} has moved past epoch {epoch}; this host no longer owns it")]
    Fenced { session: SessionKey, epoch: u64 },
    /// No session (or, from the host methods, no host; from the account
    /// and login methods, no account) with this id or name.
    #[error("no session, host or account named {0}")]
    NotFound(SessionKey),
    /// The session has ended, so what was asked (a share link) is
    /// pointless.
    #[error("session {0} has ended")]
    SessionEnded(SessionKey),
    /// A session, account or login with this id or name already exists.
    #[error("a session, account or login named {0} already exists")]
    Duplicate(SessionKey),
    /// The backend could not be reached or failed; retrying may help.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back (a bug or tampering).
    #[error("corrupt data in the store: {0}")]
    Corrupt(String),
    /// A name that [`valid_user_name`] refuses, given to a method that
    /// checks it (the Unix identity methods).
    #[error(
        "invalid user name {0:?}: use 1 to {max} characters of a-z, 0-9, '.', '_' and '-', \
         starting with a letter or a digit",
        max = MAX_USER_NAME_LEN
    )]
    InvalidUserName(String),
    /// A uid or gid no session may run as: 0 (root) or `u32::MAX`.
    #[error(
        "refusing {what} {id}: a session must never run as root (0) or as (uid_t) -1 (4294967295)"
    )]
    UnusableUnixId { what: &'static str, id: u32 },
    /// The uid is already another user's identity.
    #[error("uid {uid} is already the identity of {name}; every user needs a uid of their own")]
    UidTaken { uid: u32, name: String },
    /// The range given to [`Store::unix_identity`] cannot be allocated
    /// from (a range built from its fields, not parsed).
    #[error(transparent)]
    InvalidUidRange(#[from] UidRangeError),
    /// Every uid of the range is someone's identity already.
    #[error("every uid in {range} is taken: widen --uid-range to give new users an identity")]
    UidRangeExhausted { range: UidRange },
    /// The owner already runs the most sessions allowed
    /// ([`Store::claim_session`]).
    #[error("{owner} already runs {running} sessions, the most allowed ({max}); end one first")]
    TooManySessions {
        owner: String,
        running: u64,
        max: u32,
    },
    /// The database refused this role the statement: PostgreSQL's SQLSTATE
    /// 42501 (`insufficient_privilege`), as when a host's role
    /// (`store/roles/postgres.sql`) tries to write a sign-in. Not
    /// transient: only a change of the role's grants changes the answer.
    #[error(
        "the store's database refused this role: {0} (SQLSTATE 42501; \
         the roles' grants are in store/roles/postgres.sql)"
    )]
    Denied(String),
    /// A host's renewal was refused by the operator's enrolments (see
    /// [`Store::enrol_host`]): `why` says what to do.
    #[error("host {host} may not hold a lease: {why}")]
    NotEnrolled { host: String, why: String },
}

impl StoreError {
    /// Whether the same write may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which backend this is, for logs and health ("sqlite", "postgres").
    fn kind(&self) -> &'static str;

    /// The backend's clock.
    async fn now(&self) -> Result<Millis>;

    async fn put_user(&self, user: &User) -> Result<()>;
    async fn get_user(&self, id: &str) -> Result<Option<User>>;

    /// Inserts a new session; its `created_at`/`last_active` are set to the
    /// backend's now, the given values are ignored.
    async fn create_session(&self, record: &SessionRecord) -> Result<()>;

    /// Creates a new session as [`Store::create_session`] does (and its
    /// owner's `users` row), only while the owner runs fewer than
    /// `max_running` sessions (state `Running`), in one transaction that
    /// orders it against every other claim for that owner: however many
    /// hosts start sessions at once, at most `max_running` succeed.
    /// `TooManySessions` otherwise, and nothing is written.
    async fn claim_session(&self, record: &SessionRecord, max_running: u32) -> Result<()>;
    async fn get_session(&self, id: &str) -> Result<Option<SessionRecord>>;
    /// Sessions of one owner, or all with `None`, newest first.
    async fn list_sessions(&self, owner: Option<&str>) -> Result<Vec<SessionRecord>>;

    /// Applies `update` and bumps `last_active`, only if `epoch` is current.
    async fn update_session(&self, id: &str, epoch: u64, update: &SessionUpdate) -> Result<()>;

    /// Writes the screen and appends scrollback in one transaction, only if
    /// `epoch` is current; also bumps `last_active`.
    async fn save_screen(
        &self,
        id: &str,
        epoch: u64,
        host: &str,
        write: &ScreenWrite,
    ) -> Result<()>;
    async fn load_screen(&self, id: &str) -> Result<Option<StoredScreen>>;

    /// Moves a session to `new_host`: one conditional update that succeeds
    /// only if the session is still at `expected_epoch`, and returns the new
    /// epoch (`expected_epoch + 1`). Of two concurrent takeovers exactly one
    /// wins; the other gets `Fenced`.
    async fn take_over(&self, id: &str, expected_epoch: u64, new_host: &str) -> Result<u64>;

    /// Registers or renews a host's lease, as the host itself does against
    /// this store (never through a directory): the lease runs until the
    /// backend's now plus `ttl_ms` (at most [`MAX_LEASE_TTL_MS`]); `url`,
    /// `load` and `shutting_down` are replaced; an operator's
    /// `drain_requested` is kept (a new host starts without one). Says
    /// whether the previous lease had lapsed.
    ///
    /// Only an enrolled host with its own secret and url renews; with no
    /// host enrolled at all, any host with a loopback url may. Otherwise
    /// `NotEnrolled`, and nothing is written.
    async fn renew_lease(
        &self,
        id: &str,
        secret: Option<&str>,
        url: &str,
        ttl_ms: u64,
        load: u32,
        shutting_down: bool,
    ) -> Result<LeaseRenewal>;

    /// Enrols host `id` at `url` with `secret` (its sha256 is stored), or
    /// enrols it again with a new url or secret, which revokes the old
    /// ones. Either way the host's current lease ends now, so the next
    /// lease is taken with this enrolment.
    async fn enrol_host(&self, id: &str, url: &str, secret: &str) -> Result<()>;

    /// Removes a host's enrolment (its secret stops working) and ends its
    /// lease now. `NotFound` if it was not enrolled.
    async fn remove_host_enrolment(&self, id: &str) -> Result<()>;

    /// Every enrolled host, ordered by id.
    async fn list_host_enrolments(&self) -> Result<Vec<HostEnrolment>>;

    /// Every host ever registered, live or not, ordered by id.
    async fn list_hosts(&self) -> Result<Vec<HostRecord>>;

    async fn get_host(&self, id: &str) -> Result<Option<HostRecord>>;

    /// An operator's drain of a host, or its lifting; `NotFound` if the
    /// host never registered. The host learns it from its next renewal, and
    /// it lasts across the host's restarts until lifted.
    async fn set_drain_requested(&self, id: &str, requested: bool) -> Result<()>;

    /// Creates an enabled account stamped with the backend's now;
    /// `Duplicate` if the name is taken (disabled accounts included).
    async fn create_account(&self, name: &str, password_hash: &str) -> Result<()>;

    async fn get_account(&self, name: &str) -> Result<Option<Account>>;

    /// Every account, enabled or not, ordered by name (bytewise).
    async fn list_accounts(&self) -> Result<Vec<Account>>;

    /// Replaces the password hash and deletes all the account's logins in
    /// one transaction, so no browser stays signed in with the old
    /// password. `NotFound` if there is no such account.
    async fn set_password(&self, name: &str, password_hash: &str) -> Result<()>;

    /// Disables or re-enables an account; disabling deletes all its logins
    /// in the same transaction. `NotFound` if there is no such account.
    async fn set_disabled(&self, name: &str, disabled: bool) -> Result<()>;

    /// Records a sign-in of `user` with id `id` (the hex [`Login::id`]),
    /// live until the backend's now plus `ttl_ms` (at most
    /// [`MAX_LOGIN_TTL_MS`]). `NotFound` if there is no such account,
    /// `Duplicate` if the id exists. A login made for a disabled account is
    /// stored but never live. Also deletes the user's expired logins.
    async fn create_login(&self, id: &str, user: &str, ttl_ms: u64) -> Result<Login>;

    /// Only a live login: exists, not expired by the backend clock, its
    /// account exists and is not disabled. `None` otherwise, whichever the
    /// reason, so a caller cannot tell an expired login from a forged id.
    async fn get_login(&self, id: &str) -> Result<Option<Login>>;

    /// Of `ids`, the ones [`Store::get_login`] would answer for, in no
    /// particular order and each once: one query per
    /// [`LIVE_LOGINS_CHUNK`] ids, so a host can recheck every sign-in
    /// behind its open terminals in one round trip.
    async fn live_logins(&self, ids: &[String]) -> Result<Vec<String>>;

    /// Whether account `name` is disabled; `None` if there is no such
    /// account. Reads nothing but that flag (a host's role may read no
    /// more of an account).
    async fn account_disabled(&self, name: &str) -> Result<Option<bool>>;

    /// Deletes a login (sign-out); a missing one is not an error.
    async fn end_login(&self, id: &str) -> Result<()>;

    /// The account's terminal settings: the JSON document `put_settings`
    /// last stored, or `None` if the user never saved any. The store does
    /// not read it; the directory validates it before storing.
    async fn get_settings(&self, account: &str) -> Result<Option<String>>;

    /// Replaces the account's settings with `body`. `NotFound` if there is
    /// no such account.
    async fn put_settings(&self, account: &str, body: &str) -> Result<()>;

    /// The user (or directory) ends a session: one conditional update sets
    /// its state to `Ended` and its epoch to epoch + 1, whatever it was,
    /// and returns the new epoch. The host serving it is fenced from then
    /// on (its next write gets `Fenced`), which is how it learns to hang
    /// up. `NotFound` if there is no such session.
    async fn end_session(&self, id: &str) -> Result<u64>;

    /// The Unix identity of user `name`: the one already given, whatever
    /// `range` says now (an identity never changes by itself), or else the
    /// lowest uid of `range` that no user holds, with the gid equal to it,
    /// recorded before it is returned. Every caller on every host gets the
    /// same answer for the same name, also when several ask at once.
    /// `InvalidUserName` unless [`valid_user_name`] accepts `name`,
    /// `InvalidUidRange` for a range that includes 0 or `u32::MAX`,
    /// `UidRangeExhausted` when no uid of the range is free.
    async fn unix_identity(&self, name: &str, range: UidRange) -> Result<UnixIdentity>;

    /// An operator's mapping of user `name` to an existing system user:
    /// from now on `name`'s identity is `uid` and `gid`, marked mapped,
    /// replacing any identity it had. `InvalidUserName` as above,
    /// `UnusableUnixId` for 0 (root) or `u32::MAX`, `UidTaken` if another
    /// user holds `uid`.
    async fn map_unix_identity(&self, name: &str, uid: u32, gid: u32) -> Result<()>;

    /// Every identity given, by user name (bytewise).
    async fn list_unix_identities(&self) -> Result<Vec<(String, UnixIdentity)>>;

    /// Records a share link `id` of `session` whose token hashes to
    /// `token_hash`, made now by the backend's clock and live for `ttl_ms`
    /// (at most [`MAX_SHARE_TTL_MS`]). `NotFound` unless the session exists
    /// and is `owner`'s (the same answer either way, so nobody learns of
    /// another user's session), `SessionEnded` if it has ended,
    /// `Duplicate` if the id or the hash exists.
    async fn create_share(
        &self,
        id: &str,
        token_hash: &str,
        session: &str,
        owner: &str,
        may_type: bool,
        ttl_ms: u64,
    ) -> Result<ShareRecord>;

    /// The share whose token hashes to `token_hash`, live or not (the
    /// caller says why one is refused).
    async fn share_by_token(&self, token_hash: &str) -> Result<Option<ShareRecord>>;

    /// Every share `owner` made, revoked and expired ones included, newest
    /// first.
    async fn list_shares(&self, owner: &str) -> Result<Vec<ShareRecord>>;

    /// Revokes `owner`'s share `id` for good; revoking it again is no
    /// error. `NotFound` if `owner` has no share `id`.
    async fn revoke_share(&self, owner: &str, id: &str) -> Result<()>;

    /// Of the share `ids`, those still live: not revoked, not expired by
    /// the backend's clock, their session still running. Sorted and each
    /// once, one query per [`LIVE_LOGINS_CHUNK`] ids, so a host rechecks
    /// every share behind its viewers' sockets in one round trip.
    async fn live_shares(&self, ids: &[String]) -> Result<Vec<String>>;

    /// Makes the recording of `session`, owned by `owner`, started now by
    /// the backend's clock at size `cols` x `rows`, to hold at most
    /// `max_bytes` of blocks. `Duplicate` if the session has one already
    /// (a retried write: the caller carries on).
    async fn create_recording(
        &self,
        session: &str,
        owner: &str,
        cols: u16,
        rows: u16,
        max_bytes: u64,
    ) -> Result<()>;

    /// The recording of `session`, if it has one.
    async fn get_recording(&self, session: &str) -> Result<Option<RecordingRecord>>;

    /// `owner`'s recordings, newest first.
    async fn list_recordings(&self, owner: &str) -> Result<Vec<RecordingRecord>>;

    /// Up to `limit` blocks of `session`'s recording with `seq` above
    /// `after` (all, with `None`), in `seq` order.
    async fn recording_blocks(
        &self,
        session: &str,
        after: Option<u64>,
        limit: u32,
    ) -> Result<Vec<RecordingBlock>>;

    /// Deletes `owner`'s recording of `session` and all its blocks.
    /// `NotFound` if `owner` has no recording of `session` (the same
    /// answer for another user's).
    async fn delete_recording(&self, owner: &str, session: &str) -> Result<()>;

    /// Deletes every recording (with its blocks) last written before
    /// `cutoff` by the backend's clock; says how many.
    async fn delete_recordings_before(&self, cutoff: Millis) -> Result<u64>;

    /// Whether account `name` asked for its new sessions to be recorded
    /// (the deployment's "opt-in" policy). False for an unknown name.
    async fn recording_opt_in(&self, name: &str) -> Result<bool>;

    /// Sets what [`Store::recording_opt_in`] answers. `NotFound` for an
    /// unknown account.
    async fn set_recording_opt_in(&self, name: &str, on: bool) -> Result<()>;
}
