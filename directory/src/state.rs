//! What every handler shares: the directory's configuration and the
//! state built from it once at start.
//!
//! It sits low in the directory's layers (only the pure `origins` below
//! it) because every handler takes [`AppState`]; nothing here knows a
//! route or a page.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auth::device::DeviceKey;
use auth::limit::{LoginLimiter, LoginLimits};
use auth::password_pool::PasswordPool;
use auth::ticket::TicketSigner;
use axum::http::HeaderName;
use directory_api::RecordingPolicy;
use store::Store;

use crate::origins::origin;

/// How long a sign-in lasts: a working day, then the password again.
pub const LOGIN_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// How long a share link lasts unless told otherwise
/// (`--share-ttl-hours`).
pub const SHARE_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The longest a share link may last: the store's own bound.
pub const MAX_SHARE_LIFETIME: Duration = Duration::from_millis(store::MAX_SHARE_TTL_MS);

/// What a recording keeps at most unless told otherwise
/// (`--recording-max-mb`): 64 MiB of compressed blocks.
pub const RECORDING_MAX_BYTES: u64 = 64 << 20;

/// How long recordings are kept after their last write unless told
/// otherwise (`--recording-retention-days`).
pub const RECORDING_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Whether and how sessions are recorded on this deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordingConfig {
    /// Off, on for users who asked, or on for every session (audit).
    pub policy: RecordingPolicy,
    /// What tickets tell hosts to keep at most of one recording; the host
    /// stops recording there, with a marker saying so.
    pub max_bytes: u64,
    /// Recordings last written longer ago than this (by the store's clock)
    /// are deleted by the retention sweep.
    pub retention: Duration,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            policy: RecordingPolicy::OptIn,
            max_bytes: RECORDING_MAX_BYTES,
            retention: RECORDING_RETENTION,
        }
    }
}

/// How the directory behaves; everything else it reads from the store.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    /// This replica's url as browsers reach it, listed first by
    /// `/v1/config`. `None`: the url the client used (its Host header).
    pub public_url: Option<String>,
    /// The other directory replicas' urls.
    pub peers: Vec<String>,
    /// How long probing an owner's `/healthz` may take. A probe that times
    /// out is no evidence, so this bounds how long a report waits, not
    /// whether a session moves.
    pub probe_timeout: Duration,
    /// What `retry_owner` answers tell clients to wait before retrying.
    pub retry_after: Duration,
    /// Folder served at `/`, if any.
    pub static_dir: Option<PathBuf>,
    /// The page's `connect-src` sources; empty means every live host's
    /// origins, computed per request.
    pub connect_src: Vec<String>,
    /// The secret this directory presents to a host to end a session
    /// there (`THINLINE_HOST_TOKEN`; hosts check it).
    pub host_token: Option<HostToken>,
    /// The secret an operator presents to drain or undrain a host over
    /// HTTP (`THINLINE_OPERATOR_TOKEN`). Hosts never hold it, so no host
    /// can drain another. `None` turns the HTTP drain API off; `directory
    /// host drain --store` works either way.
    pub operator_token: Option<HostToken>,
    /// Signs the tickets hosts admit browsers with. Every replica must use
    /// the same key (hosts know its public half); the default is a fresh
    /// key, fine for tests only, so the binary always sets one.
    pub ticket_signer: Arc<TicketSigner>,
    /// Whether browsers reach this replica over TLS (its own, or a proxy's
    /// in front of an `https://` public url): cookies get `Secure` and
    /// answers `Strict-Transport-Security`.
    pub tls: bool,
    /// Origins allowed to POST (forms and `/v1`) and to call the API across
    /// origins, exactly (`scheme://host[:port]`). Empty: the origins of
    /// `public_url` and `peers`.
    pub allowed_origins: Vec<String>,
    /// Peer addresses of reverse proxies that authenticate users
    /// themselves. Only requests from these addresses may name a user in
    /// `proxy_user_header`, and only for them is `X-Forwarded-For` read.
    pub trusted_proxies: Vec<IpAddr>,
    /// The header a trusted proxy names the signed-in user in (e.g.
    /// `X-Remote-User`). `None` turns proxy sign-in off.
    pub proxy_user_header: Option<HeaderName>,
    /// Running sessions one user may have; a new one beyond it is refused.
    pub max_sessions_per_user: usize,
    /// How long a new share link opens its session (at most
    /// [`MAX_SHARE_LIFETIME`]; the store cuts anything longer).
    pub share_ttl: Duration,
    /// The HTTP edge's connection limits and deadlines (`auth::serve`).
    pub http: auth::serve::ServeOptions,
    /// Sign-in attempts allowed per client address, per user name at an
    /// address, per user name for browsers without its device cookie, and
    /// per device cookie (`auth::limit`).
    pub login_limits: LoginLimits,
    /// TLS trust for probing and calling `https://` hosts (`--host-ca`).
    /// `None`: https hosts cannot be probed (no evidence either way) and
    /// are not told when a session ends.
    pub host_tls: Option<Arc<rustls::ClientConfig>>,
    /// Session recording: the policy tickets carry, and retention.
    pub recording: RecordingConfig,
}

/// The hosts' shared secret; its `Debug` never shows it.
#[derive(Clone)]
pub struct HostToken(pub String);

impl std::fmt::Debug for HostToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostToken(..)")
    }
}

impl HostToken {
    /// Whether an `Authorization` header carries this token as a bearer
    /// credential; compared in time independent of where they differ.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        auth::constant_time_eq(given.as_bytes(), self.0.as_bytes())
    }
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            public_url: None,
            peers: Vec::new(),
            probe_timeout: Duration::from_millis(300),
            retry_after: Duration::from_millis(250),
            static_dir: None,
            connect_src: Vec::new(),
            host_token: None,
            operator_token: None,
            ticket_signer: Arc::new(TicketSigner::generate()),
            tls: false,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            proxy_user_header: None,
            max_sessions_per_user: 10,
            share_ttl: SHARE_LIFETIME,
            http: auth::serve::ServeOptions::default(),
            login_limits: LoginLimits::default(),
            host_tls: None,
            recording: RecordingConfig::default(),
        }
    }
}

impl DirectoryConfig {
    /// The exact origins allowed to POST: the configured list, or this
    /// replica's and its peers' origins.
    pub fn origin_allowlist(&self) -> Vec<String> {
        let urls: Vec<&String> = if self.allowed_origins.is_empty() {
            self.public_url.iter().chain(&self.peers).collect()
        } else {
            self.allowed_origins.iter().collect()
        };
        let mut origins: Vec<String> = urls.into_iter().filter_map(|u| origin(u)).collect();
        origins.dedup();
        origins
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<DirectoryConfig>,
    /// Counts sign-in attempts in this process.
    pub limiter: Arc<LoginLimiter>,
    /// Signs and checks device cookies; derived from the ticket key, so
    /// every replica accepts the ones any replica set.
    pub devices: Arc<DeviceKey>,
    /// [`DirectoryConfig::origin_allowlist`], computed once.
    pub allowed_origins: Arc<Vec<String>>,
    /// The few threads that check passwords (see `auth::password_pool`).
    pub passwords: Arc<PasswordPool>,
}

/// Threads checking passwords at once: each argon2id check holds 19 MiB,
/// so this bounds what sign-ins can take, whatever arrives.
pub const PASSWORD_THREADS: usize = 2;
/// Checks that may wait for a thread; beyond that a sign-in is told to try
/// again in a second. At ~20 ms a check this is under half a second of
/// waiting.
pub const PASSWORD_QUEUE: usize = 32;

impl AppState {
    /// Whether `user`'s new sessions are recorded: never under the `off`
    /// policy, always under `always`, and as the user chose under
    /// `opt-in` (the only case that reads the store).
    pub async fn records_new_sessions(&self, user: &str) -> store::Result<bool> {
        match self.config.recording.policy {
            RecordingPolicy::Off => Ok(false),
            RecordingPolicy::Always => Ok(true),
            RecordingPolicy::OptIn => self.store.recording_opt_in(user).await,
        }
    }

    /// Fails only if the password threads cannot be started.
    pub fn new(store: Arc<dyn Store>, config: DirectoryConfig) -> std::io::Result<AppState> {
        Ok(AppState {
            store,
            limiter: Arc::new(LoginLimiter::new(config.login_limits)),
            devices: Arc::new(DeviceKey::from_ticket_signer(&config.ticket_signer)),
            allowed_origins: Arc::new(config.origin_allowlist()),
            config: Arc::new(config),
            passwords: Arc::new(PasswordPool::new(PASSWORD_THREADS, PASSWORD_QUEUE)?),
        })
    }
}
