//! The host's running sessions by id, and how they start: fresh, or
//! restored from the store after their previous host was lost.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use protocol::{CompressedLines, SessionId, Size};
use store::{SessionRecord, SessionState, Store, StoreError};

use crate::emulator::SCROLLBACK_LINES;
use crate::metrics::Metrics;
use crate::persist::{self, PersistQueue, Persister};
use crate::pty::{ProgramSpec, SpawnError};
use crate::scrollback::Scrollback;
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
    #[error("the session belongs to host {0}")]
    NotOurs(String),
}

/// The outcome of asking for a session this host does not run.
#[derive(Debug)]
pub enum Restore {
    Restored(SessionHandle),
    /// The session runs on (or belongs to) another host.
    NotOurs(String),
    /// No running session by that id: start a new one.
    Nothing,
}

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

pub struct Registry {
    sessions: Mutex<HashMap<SessionId, SessionHandle>>,
    config: SessionConfig,
    store: Option<StoreConfig>,
    max_sessions: usize,
    metrics: Arc<Metrics>,
    /// Serialises restores so two clients asking for the same lost session
    /// at once cause one takeover, not two.
    restoring: tokio::sync::Mutex<()>,
}

/// The user every session belongs to until accounts arrive.
pub const LOCAL_USER: &str = "local";

impl Registry {
    pub fn new(
        config: SessionConfig,
        store: Option<StoreConfig>,
        max_sessions: usize,
        metrics: Arc<Metrics>,
    ) -> Arc<Registry> {
        Arc::new(Registry {
            sessions: Mutex::new(HashMap::new()),
            config,
            store,
            max_sessions,
            metrics,
            restoring: tokio::sync::Mutex::new(()),
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

    pub fn store_kind(&self) -> Option<&'static str> {
        self.store.as_ref().map(|s| s.store.kind())
    }

    /// The program for a new session of `user`, in their home under the
    /// shared root when there is one.
    fn program_for(&self, user: &str) -> ProgramSpec {
        let mut program = self.config.program.clone();
        if let Some(root) = self.store.as_ref().and_then(|s| s.home_root.as_ref()) {
            let home = root.join(user);
            if let Err(error) = std::fs::create_dir_all(&home) {
                tracing::warn!(home = %home.display(), %error, "cannot create the home directory");
            }
            program
                .env
                .push(("HOME".into(), home.display().to_string()));
            program.cwd = Some(home);
        }
        if program.program.file_name().is_some_and(|n| n == "bash") {
            // Append each command to the history file as it runs, so a
            // host that dies does not take the shell's history with it.
            program
                .env
                .push(("PROMPT_COMMAND".into(), "history -a".into()));
        }
        program
    }

    fn check_room(&self) -> Result<(), StartError> {
        if self.len() >= self.max_sessions {
            return Err(StartError::Full(self.max_sessions));
        }
        Ok(())
    }

    /// Starts a new session with a fresh random id.
    pub fn start(self: &Arc<Self>, size: Size) -> Result<SessionHandle, StartError> {
        self.check_room()?;
        let id = new_session_id();
        let program = self.program_for(LOCAL_USER);
        let persistence = self.store.as_ref().map(|store| {
            let queue = Arc::new(PersistQueue::default());
            queue.create(SessionRecord {
                id: id.to_string(),
                owner: LOCAL_USER.into(),
                program: program.program.display().to_string(),
                args: program.args.clone(),
                cwd: program
                    .cwd
                    .as_ref()
                    .map(|c| c.display().to_string())
                    .unwrap_or_default(),
                env: program.env.clone(),
                cols: size.cols,
                rows: size.rows,
                title: None,
                foreground: None,
                state: SessionState::Running,
                owner_host: self.config.host.clone(),
                epoch: 1,
                created_at: 0,
                last_active: 0,
            });
            self.persister(store.store.clone(), id, 1, queue)
        });
        self.launch(SessionStart {
            id,
            size,
            program,
            epoch: 1,
            persistence,
            restored: None,
        })
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
                    .send(session::SessionCmd::Terminate {
                        close: protocol::CloseCode::SessionLost,
                    })
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
        let handle = session::start(start, &self.config, self.metrics.clone(), move || {
            if let Some(registry) = registry.upgrade() {
                registry.lock().remove(&id);
            }
        })?;
        sessions.insert(id, handle.clone());
        Ok(handle)
    }

    /// Restores a session this host does not run from the store: one the
    /// directory moved here (the record names this host), or, with `adopt`,
    /// any running one, taken over from its previous host.
    pub async fn restore(
        self: &Arc<Self>,
        id: SessionId,
        size: Size,
    ) -> Result<Restore, StartError> {
        let Some(store_config) = self.store.as_ref() else {
            return Ok(Restore::Nothing);
        };
        let store = store_config.store.clone();
        let _one_at_a_time = self.restoring.lock().await;
        if let Some(handle) = self.get(&id) {
            return Ok(Restore::Restored(handle));
        }
        let key = id.to_string();
        let Some(record) = store.get_session(&key).await? else {
            return Ok(Restore::Nothing);
        };
        if record.state != SessionState::Running {
            return Ok(Restore::Nothing);
        }
        self.check_room()?;
        let epoch = if record.owner_host == self.config.host {
            // The directory already moved it here and bumped the epoch.
            record.epoch
        } else if store_config.adopt {
            store
                .take_over(&key, record.epoch, &self.config.host)
                .await?
        } else {
            return Ok(Restore::NotOurs(record.owner_host));
        };
        let saved = store.load_screen(&key).await?;
        // The record may already name this host (the directory moved it);
        // the host that last saved the screen is the one that was lost.
        let from = saved
            .as_ref()
            .map_or(record.owner_host.as_str(), |s| s.saved_by.as_str());
        tracing::info!(session = %id, %from, epoch, "restoring a session from the store");
        let (scrollback, mut preface) = match &saved {
            Some(stored) => restored_view(stored)?,
            None => (Scrollback::new(SCROLLBACK_LINES), Vec::new()),
        };
        let mut program = self.program_for(&record.owner);
        program.program = record.program.clone().into();
        program.args = record.args.clone();
        program.login = self.config.program.login && program.program == self.config.program.program;
        for (key, value) in &record.env {
            if !program.env.iter().any(|(k, _)| k == key) {
                program.env.push((key.clone(), value.clone()));
            }
        }
        if !record.cwd.is_empty() && std::path::Path::new(&record.cwd).is_dir() {
            program.cwd = Some(record.cwd.clone().into());
        }
        let program_name = program
            .program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let cwd = program
            .cwd
            .as_ref()
            .map(|c| c.display().to_string())
            .unwrap_or_default();
        preface.extend_from_slice(
            persist::restore_notice(
                &saved
                    .as_ref()
                    .map_or(record.owner_host.clone(), |s| s.saved_by.clone()),
                saved.as_ref().map_or(record.last_active, |s| s.saved_at),
                record.foreground.as_deref(),
                &program_name,
                &cwd,
            )
            .as_bytes(),
        );
        let queue = Arc::new(PersistQueue::default());
        let persistence = self.persister(store, id, epoch, queue);
        self.launch(SessionStart {
            id,
            size,
            program,
            epoch,
            persistence: Some(persistence),
            restored: Some((scrollback, preface)),
        })
        .map(Restore::Restored)
    }

    /// Asks every session to hang up its program and close its client
    /// with `close`; each persists its last state first.
    pub async fn terminate_all(&self, close: protocol::CloseCode) {
        let handles: Vec<SessionHandle> = self.lock().values().cloned().collect();
        for handle in handles {
            let _ = handle
                .tx
                .send(session::SessionCmd::Terminate { close })
                .await;
        }
        // Wait (bounded) for the sessions to finish persisting and leave.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// The scrollback and the bytes that redraw the saved screen.
fn restored_view(stored: &store::StoredScreen) -> Result<(Scrollback, Vec<u8>), StoreError> {
    let saved = persist::decode_screen(&stored.screen).map_err(StoreError::Corrupt)?;
    let blocks: Vec<(u64, CompressedLines)> = stored
        .blocks
        .iter()
        .map(|b| persist::decode_block(&b.data).map(|block| (b.seq, block)))
        .collect::<Result<_, _>>()
        .map_err(StoreError::Corrupt)?;
    let scrollback =
        Scrollback::restore(SCROLLBACK_LINES, blocks, saved.next_block_seq, saved.tail);
    // Redraw the screen down to the last non-blank row (or the cursor), so
    // the notice and the new prompt follow the old output directly.
    let last_used = saved
        .rows
        .iter()
        .rposition(|line| !line.runs.is_empty())
        .map_or(0, |i| i + 1)
        .max(usize::from(saved.cursor.row));
    let preface = persist::render_ansi(&saved.rows[..last_used.min(saved.rows.len())]);
    Ok((scrollback, preface))
}

pub fn new_session_id() -> SessionId {
    let mut bytes = [0u8; 16];
    // Without an OS random source no id (and no token) can be trusted; this
    // fails only on a broken system, where refusing to run is right.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    SessionId(bytes)
}
