//! The host's running sessions by id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use protocol::{SessionId, Size};

use crate::metrics::Metrics;
use crate::pty::SpawnError;
use crate::session::{self, SessionConfig, SessionHandle};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("this host already runs its limit of {0} sessions")]
    Full(usize),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

pub struct Registry {
    sessions: Mutex<HashMap<SessionId, SessionHandle>>,
    config: SessionConfig,
    max_sessions: usize,
    metrics: Arc<Metrics>,
}

impl Registry {
    pub fn new(config: SessionConfig, max_sessions: usize, metrics: Arc<Metrics>) -> Arc<Registry> {
        Arc::new(Registry {
            sessions: Mutex::new(HashMap::new()),
            config,
            max_sessions,
            metrics,
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

    /// Starts a new session with a fresh random id.
    pub fn start(self: &Arc<Self>, size: Size) -> Result<SessionHandle, StartError> {
        let mut sessions = self.lock();
        if sessions.len() >= self.max_sessions {
            return Err(StartError::Full(self.max_sessions));
        }
        let id = new_session_id();
        let registry = Arc::downgrade(self);
        let handle = session::start(id, size, &self.config, self.metrics.clone(), move || {
            if let Some(registry) = registry.upgrade() {
                registry.lock().remove(&id);
            }
        })?;
        sessions.insert(id, handle.clone());
        Ok(handle)
    }

    /// Asks every session to hang up its program and close its client
    /// with `close`.
    pub async fn terminate_all(&self, close: protocol::CloseCode) {
        let handles: Vec<SessionHandle> = self.lock().values().cloned().collect();
        for handle in handles {
            let _ = handle
                .tx
                .send(session::SessionCmd::Terminate { close })
                .await;
        }
    }
}

pub fn new_session_id() -> SessionId {
    let mut bytes = [0u8; 16];
    // Without an OS random source no id (and no token) can be trusted; this
    // fails only on a broken system, where refusing to run is right.
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    SessionId(bytes)
}
