//! The host's running sessions by id, and how a ticket reaches one:
//! attached to it running here, restored from the store after its previous
//! host was lost (`registry::restore`), or started fresh with the id and
//! owner the ticket names (its program set up by `registry::launch`).

pub(crate) mod launch;
mod restore;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth::ticket::Claims;
use protocol::{SessionId, Size};
use store::{SessionState, Store, StoreError};

use crate::admission::{self, Admit, Known, RecordView, Refusal};
use crate::metrics::Metrics;
use crate::persist::{self, NewRecording, PersistQueue, Persister};
use crate::pty::{Launcher, SandboxLauncher, SpawnError};
use crate::sandbox::Identity;
use crate::session::core::record::RecordingSetup;
use crate::session::{self, Persistence, SessionConfig, SessionHandle, SessionStart};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("this host already runs its limit of {0} sessions")]
    Full(usize),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("this host is draining and takes no sessions")]
    Draining,
    /// The session does not run here and the host may not start or restore
    /// one: it holds no live lease (it cannot reach the store).
    #[error("this host holds no lease and starts no session until the store renews it")]
    NoLease,
    #[error("session {0} already runs here")]
    AlreadyRunning(SessionId),
    /// The ticket does not admit to this session (see `admission`).
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// A session a ticket reached.
#[derive(Debug)]
pub struct Opened {
    pub handle: SessionHandle,
    /// Started for this ticket (a new session), rather than attached or
    /// restored.
    pub created: bool,
}

/// Longest admission waits for the store before it counts as unavailable.
pub const STORE_READ_TIMEOUT: Duration = Duration::from_secs(3);

/// Where user data lives.
pub struct StoreConfig {
    pub store: Arc<dyn Store>,
    /// Users' home directories live under this shared root, never on the
    /// host's private disk.
    pub home_root: Option<PathBuf>,
    /// Restore sessions whose previous host is gone when a client asks for
    /// them (until the directory decides this, an operator's choice).
    pub adopt: bool,
}

/// What [`Registry::end_if_over`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndOutcome {
    Ended,
    /// No such session runs here.
    NotHere,
    /// The store says the session is live here: nothing was ended.
    StillLive,
}

pub struct Registry {
    sessions: Mutex<HashMap<SessionId, SessionHandle>>,
    config: SessionConfig,
    /// Starts sessions' programs: in the sandbox of `config`.
    launcher: Arc<dyn Launcher>,
    store: Option<StoreConfig>,
    max_sessions: usize,
    metrics: Arc<Metrics>,
    /// One gate per session id being brought up, so two clients asking
    /// for the same session at once cause one start or takeover, not two,
    /// while other sessions never wait for it. An entry lives only while
    /// someone holds or waits for its gate.
    admitting: Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>,
    /// Unix identities the store gave this host's users: they never
    /// change, so a returning user starts a session even while the store
    /// is down.
    identities: Mutex<HashMap<String, Identity>>,
}

impl Registry {
    pub fn new(
        config: SessionConfig,
        store: Option<StoreConfig>,
        max_sessions: usize,
        metrics: Arc<Metrics>,
    ) -> Arc<Registry> {
        Arc::new(Registry {
            sessions: Mutex::new(HashMap::new()),
            launcher: Arc::new(SandboxLauncher::new(config.sandbox.clone())),
            config,
            store,
            max_sessions,
            metrics,
            admitting: Mutex::new(HashMap::new()),
            identities: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SessionHandle>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &SessionId) -> Option<SessionHandle> {
        self.lock().get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn host(&self) -> &str {
        &self.config.host
    }

    pub fn sandbox(&self) -> &crate::sandbox::Sandbox {
        &self.config.sandbox
    }

    /// Uploads and downloads in progress on this host.
    pub fn transfers(&self) -> &std::sync::Arc<crate::files::Transfers> {
        &self.config.transfers
    }

    pub fn store_kind(&self) -> Option<&'static str> {
        self.store.as_ref().map(|s| s.store.kind())
    }

    fn check_room(&self) -> Result<(), StartError> {
        if self.len() >= self.max_sessions {
            return Err(StartError::Full(self.max_sessions));
        }
        Ok(())
    }

    /// Whether sessions whose record names another host are taken over.
    fn adopts(&self) -> bool {
        self.store.as_ref().is_some_and(|s| s.adopt)
    }

    /// The store, if any, for code outside the registry (the login check).
    pub fn store(&self) -> Option<&Arc<dyn Store>> {
        self.store.as_ref().map(|s| &s.store)
    }

    /// Finds or brings up the session a verified ticket names (see
    /// `admission::decide` for the rules): the one running here, one
    /// restored from the store, or a new one with the ticket's id and user.
    /// Without `may_start` (the host holds no lease) only a session running
    /// here is found; anything else is `NoLease`.
    pub async fn open(
        self: &Arc<Self>,
        claims: &Claims,
        size: Size,
        may_start: bool,
    ) -> Result<Opened, StartError> {
        let id = SessionId(claims.session);
        if let Some(opened) = self.attach_running(claims, &id)? {
            return Ok(opened);
        }
        if !may_start {
            return Err(StartError::NoLease);
        }
        let gate = self.gate(id);
        let opened = {
            let _held = gate.lock().await;
            match self.attach_running(claims, &id)? {
                Some(opened) => Ok(opened),
                None => self.bring_up(claims, id, size).await,
            }
        };
        let mut admitting = self.admitting.lock().unwrap_or_else(|e| e.into_inner());
        // Ours and the map's: nobody else waits for this gate.
        if Arc::strong_count(&gate) == 2 {
            admitting.remove(&id);
        }
        opened
    }

    fn gate(&self, id: SessionId) -> Arc<tokio::sync::Mutex<()>> {
        let mut admitting = self.admitting.lock().unwrap_or_else(|e| e.into_inner());
        admitting.entry(id).or_default().clone()
    }

    fn attach_running(
        &self,
        claims: &Claims,
        id: &SessionId,
    ) -> Result<Option<Opened>, StartError> {
        // A session whose task is gone is no longer running, even before
        // its entry is removed.
        let Some(handle) = self.get(id).filter(|h| !h.tx.is_closed()) else {
            return Ok(None);
        };
        let known = Known::Running {
            owner: &handle.owner,
            epoch: handle.epoch,
        };
        admission::decide(claims, known, self.adopts())?;
        Ok(Some(Opened {
            handle,
            created: false,
        }))
    }

    /// Restores or starts a session that does not run here; called with
    /// its gate held.
    async fn bring_up(
        self: &Arc<Self>,
        claims: &Claims,
        id: SessionId,
        size: Size,
    ) -> Result<Opened, StartError> {
        // Whether the store answered: only then is a new session claimed
        // within the user's cap (a host cut off from it starts one anyway).
        let mut store_answered = self.store.is_some();
        let record = match &self.store {
            Some(config) => match bounded(config.store.get_session(&id.to_string())).await {
                Ok(record) => record,
                // The store is down. A ticket for a new session (epoch 1)
                // still starts one: the directory minted its id moments
                // ago, so there is no record to restore, and the persister
                // writes one when the store is back (promise 4: typing,
                // and starting a terminal, do not wait for the store).
                Err(error) if error.is_transient() && claims.epoch == 1 => {
                    tracing::warn!(session = %id, %error, "the store is unavailable: starting a new session without looking for a record or claiming it within the user's cap");
                    store_answered = false;
                    None
                }
                Err(error) => return Err(error.into()),
            },
            None => None,
        };
        let known = record
            .as_ref()
            .map_or(Known::Unknown, |r| Known::Recorded(RecordView::of(r)));
        match (admission::decide(claims, known, self.adopts())?, record) {
            (Admit::Restore { take_over }, Some(record)) => {
                let identity = self.identity(&record.owner).await?;
                // A viewer never sizes the session: a restore it brings
                // about keeps the size the owner last had.
                let size = if claims.share.is_some() {
                    Size {
                        cols: record.cols,
                        rows: record.rows,
                    }
                } else {
                    size
                };
                Ok(Opened {
                    handle: self.restore(record, take_over, size, identity).await?,
                    created: false,
                })
            }
            (Admit::Start, None) => {
                let identity = self.identity(&claims.user).await?;
                let cap = store_answered.then_some(claims.max_sessions);
                Ok(Opened {
                    handle: self.start(id, identity, size, cap, claims.record).await?,
                    created: true,
                })
            }
            (admit, _) => {
                // `decide` answers Restore only for a record and Start only
                // without one; anything else is a bug, refused, not a panic.
                tracing::error!(session = %id, ?admit, "admission answered inconsistently");
                Err(StartError::Store(StoreError::Corrupt(format!(
                    "admission answered {admit:?} for session {id}"
                ))))
            }
        }
    }

    /// Starts a new session `id` of `identity`'s user, at epoch 1. With
    /// `cap`, its record is first claimed in the store within the user's
    /// cap of running sessions (`Store::claim_session`), so no number of
    /// tickets can start more. With `record_max`, it is recorded, keeping at
    /// most that many bytes (on a host with a store: a recording lives
    /// there).
    async fn start(
        self: &Arc<Self>,
        id: SessionId,
        identity: Identity,
        size: Size,
        cap: Option<u32>,
        record_max: Option<u64>,
    ) -> Result<SessionHandle, StartError> {
        self.check_room()?;
        let program = self.program_for(&identity)?;
        let owner = identity.user.as_str();
        let record = launch::new_record(id, owner, &program, size, &self.config.host);
        let claimed = match (&self.store, cap) {
            (Some(store), Some(cap)) => {
                match bounded(store.store.claim_session(&record, cap)).await {
                    Ok(()) => true,
                    Err(StoreError::TooManySessions {
                        owner,
                        running,
                        max,
                    }) => {
                        return Err(StartError::Refused(Refusal::TooManySessions {
                            user: owner,
                            running,
                            max,
                        }));
                    }
                    Err(error) => return Err(error.into()),
                }
            }
            _ => false,
        };
        let mut recording = None;
        let persistence = self.store.as_ref().map(|store| {
            let queue = Arc::new(PersistQueue::default());
            if !claimed {
                // Written when the store is back.
                queue.create(record.clone());
            }
            if let Some(max_bytes) = record_max {
                queue.create_recording(NewRecording {
                    owner: owner.into(),
                    size,
                    max_bytes,
                });
                recording = Some(RecordingSetup {
                    at_ms: 0,
                    bytes: 0,
                    max_bytes,
                    marker: format!("recording started on host {}", self.config.host),
                });
            }
            self.persister(store.store.clone(), id, 1, queue)
        });
        let launched = self.launch(SessionStart {
            id,
            owner: owner.into(),
            identity: identity.clone(),
            size,
            program,
            epoch: 1,
            persistence,
            restored: None,
            rerun: None,
            recording,
        });
        if let (Err(_), true, Some(store)) = (&launched, claimed, &self.store) {
            // The claimed place is given back: the program never ran.
            let store = store.store.clone();
            let session = id.to_string();
            tokio::spawn(async move {
                if let Err(error) = bounded(store.end_session(&session)).await {
                    tracing::warn!(%session, %error, "could not end the record of a session that failed to start");
                }
            });
        }
        launched
    }

    fn persister(
        self: &Arc<Self>,
        store: Arc<dyn Store>,
        id: SessionId,
        epoch: u64,
        queue: Arc<PersistQueue>,
    ) -> Persistence {
        let persister = Persister {
            store,
            session: id.to_string(),
            epoch,
            host: self.config.host.clone(),
            queue: queue.clone(),
            metrics: self.metrics.clone(),
        };
        let registry = Arc::downgrade(self);
        tokio::spawn(async move {
            if persister.run().await == persist::PersistEnd::Lost
                && let Some(handle) = registry.upgrade().and_then(|r| r.get(&id))
            {
                let _ = handle
                    .tx
                    .send(session::SessionCmd::Core(session::Command::Terminate {
                        close: protocol::CloseCode::SessionLost,
                    }))
                    .await;
            }
        });
        Persistence {
            queue,
            interval: self.config.persist_interval,
            epoch,
        }
    }

    fn launch(self: &Arc<Self>, start: SessionStart) -> Result<SessionHandle, StartError> {
        let id = start.id;
        let registry = Arc::downgrade(self);
        let mut sessions = self.lock();
        if sessions.get(&id).is_some_and(|h| !h.tx.is_closed()) {
            return Err(StartError::AlreadyRunning(id));
        }
        let launcher = self.launcher.as_ref();
        let handle = session::start(
            start,
            &self.config,
            launcher,
            self.metrics.clone(),
            move || {
                if let Some(registry) = registry.upgrade() {
                    let mut sessions = registry.lock();
                    // Only this session's entry (its task, and so its command
                    // channel, is gone): a new session with the same id may
                    // already have taken its place.
                    if sessions.get(&id).is_some_and(|h| h.tx.is_closed()) {
                        sessions.remove(&id);
                    }
                }
            },
        )?;
        sessions.insert(id, handle.clone());
        Ok(handle)
    }

    /// Ends session `id` on a directory's word, but only if the store
    /// agrees it is over here (ended, or moved to another epoch or owner):
    /// the request is a hint to act now rather than at the session's next
    /// write, and whoever holds the token that sends it, another host
    /// included, cannot end a session the store says is live. Without a
    /// store there is nothing to ask, and the token is all.
    pub async fn end_if_over(&self, id: &SessionId) -> Result<EndOutcome, StoreError> {
        let Some(handle) = self.get(id) else {
            return Ok(EndOutcome::NotHere);
        };
        if let Some(config) = &self.store {
            let record = bounded(config.store.get_session(&id.to_string())).await?;
            let over = record.is_some_and(|record| {
                record.state == SessionState::Ended
                    || record.epoch != handle.epoch
                    || record.owner_host != self.config.host
            });
            if !over {
                return Ok(EndOutcome::StillLive);
            }
        }
        let close = protocol::CloseCode::SessionEnded;
        let sent = handle
            .tx
            .send(session::SessionCmd::Core(session::Command::Terminate {
                close,
            }))
            .await;
        Ok(if sent.is_ok() {
            EndOutcome::Ended
        } else {
            EndOutcome::NotHere
        })
    }

    /// Ends every session here whose store record has moved on: another
    /// epoch, another owner, or ended. A directory moves sessions only off
    /// a host whose lease ran out, so the host calls this when its lease is
    /// back after a lapse: a session that had nothing to write would never
    /// meet the fenced write that tells it. Returns how many were ended; a
    /// session without a record yet (started while the store was down)
    /// has not moved.
    pub async fn end_moved_sessions(&self) -> Result<usize, StoreError> {
        let Some(config) = &self.store else {
            return Ok(0);
        };
        let handles: Vec<SessionHandle> = self.lock().values().cloned().collect();
        let mut ended = 0;
        for handle in handles {
            let Some(record) = bounded(config.store.get_session(&handle.id.to_string())).await?
            else {
                continue;
            };
            let moved = record.epoch != handle.epoch
                || record.owner_host != self.config.host
                || record.state == SessionState::Ended;
            if moved {
                tracing::warn!(
                    session = %handle.id,
                    epoch = handle.epoch,
                    now_at = record.epoch,
                    owner = %record.owner_host,
                    "the session moved on while this host had no lease; ending it here"
                );
                ended += 1;
                let close = protocol::CloseCode::SessionLost;
                let _ = handle
                    .tx
                    .send(session::SessionCmd::Core(session::Command::Terminate {
                        close,
                    }))
                    .await;
            }
        }
        Ok(ended)
    }

    /// Asks every session to hang up its program and close its client
    /// with `close`; each persists its last state first.
    pub async fn terminate_all(&self, close: protocol::CloseCode) {
        let handles: Vec<SessionHandle> = self.lock().values().cloned().collect();
        for handle in handles {
            let _ = handle
                .tx
                .send(session::SessionCmd::Core(session::Command::Terminate {
                    close,
                }))
                .await;
        }
        // Wait (bounded) for the sessions to finish persisting and leave.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// A store call that gives up after `STORE_READ_TIMEOUT`: a store that
/// silently stops answering must not hold a client's admission forever.
async fn bounded<T>(call: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(STORE_READ_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "no answer from the store within {STORE_READ_TIMEOUT:?}"
            )))
        })
}

/// A fresh random session id. The directory mints the ids of real
/// sessions; this is for tests and tools that play the directory.
pub fn new_session_id() -> SessionId {
    let mut bytes = [0u8; 16];
    // Without an OS random source no id can be trusted; this fails only on
    // a broken system, where refusing to run is right.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    SessionId(bytes)
}
