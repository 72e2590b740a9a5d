//! A new session's program, set up: the Unix identity its user runs as
//! (the store's, the same on every host), the home under the shared root,
//! the variables the host adds, and the record a new session is claimed
//! with.

use protocol::{SessionId, Size};
use store::{SessionRecord, SessionState};

use super::{Registry, StartError, bounded};
use crate::pty::{ProgramSpec, SpawnError};
use crate::sandbox::{Identity, Isolation};

impl Registry {
    /// The Unix identity `user`'s sessions run as: allocated once by the
    /// store (per-user isolation), so the same on every host.
    pub(super) async fn identity(&self, user: &str) -> Result<Identity, StartError> {
        let sandbox = &self.config.sandbox;
        let store = match (&self.store, sandbox.isolation()) {
            (Some(config), Isolation::PerUser) => &config.store,
            _ => {
                return sandbox.local_identity(user).map_err(|reason| {
                    SpawnError::Sandbox {
                        user: user.into(),
                        source: std::io::Error::other(reason),
                    }
                    .into()
                });
            }
        };
        let cached = self
            .identities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(user)
            .cloned();
        if let Some(identity) = cached {
            return Ok(identity);
        }
        let given = bounded(store.unix_identity(user, sandbox.uid_range())).await?;
        let identity = Identity {
            user: user.into(),
            uid: given.uid,
            gid: given.gid,
        };
        self.identities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(user.into(), identity.clone());
        Ok(identity)
    }

    /// Learns every identity the store has given, so users this host has
    /// never served can still start sessions here while the store is down
    /// (a first-ever account needs the store to get one).
    pub async fn load_identities(&self) {
        let Some(config) = &self.store else { return };
        if self.config.sandbox.isolation() != Isolation::PerUser {
            return;
        }
        match bounded(config.store.list_unix_identities()).await {
            Ok(known) => {
                let mut identities = self.identities.lock().unwrap_or_else(|e| e.into_inner());
                for (user, given) in known {
                    identities.entry(user.clone()).or_insert(Identity {
                        user,
                        uid: given.uid,
                        gid: given.gid,
                    });
                }
                tracing::info!(
                    users = identities.len(),
                    "loaded the users' Unix identities"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "cannot load the users' Unix identities yet; each is read when its user first starts a session here")
            }
        }
    }

    /// The program for a new session of `identity`, in their home under
    /// the shared root when there is one.
    pub(super) fn program_for(&self, identity: &Identity) -> Result<ProgramSpec, StartError> {
        let mut program = self.config.program.clone();
        if let Some(root) = self.store.as_ref().and_then(|s| s.home_root.as_ref()) {
            let home = root.join(&identity.user);
            self.config
                .sandbox
                .prepare_home(&home, identity)
                .map_err(|source| SpawnError::Sandbox {
                    user: identity.user.clone(),
                    source: std::io::Error::new(
                        source.kind(),
                        format!("home {}: {source}", home.display()),
                    ),
                })?;
            program
                .env
                .push(("HOME".into(), home.display().to_string()));
            program.cwd = Some(home.clone());
            program.home = Some(home);
        }
        if program.program.file_name().is_some_and(|n| n == "bash") {
            // Append each command to the history file as it runs, so a
            // host that dies does not take the shell's history with it.
            program
                .env
                .push(("PROMPT_COMMAND".into(), "history -a".into()));
        }
        Ok(program)
    }
}

/// The store record a new session `id` of `owner` running `program` is
/// claimed with, at epoch 1 on `host`.
pub(crate) fn new_record(
    id: SessionId,
    owner: &str,
    program: &ProgramSpec,
    size: Size,
    host: &str,
) -> SessionRecord {
    SessionRecord {
        id: id.to_string(),
        owner: owner.into(),
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
        owner_host: host.into(),
        epoch: 1,
        created_at: 0,
        last_active: 0,
    }
}
