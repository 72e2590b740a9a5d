//! What the cluster's processes wrote to the store they share, read by the
//! test itself: who owns a session, at which epoch, and who saved which
//! screen. Failover tests check these rather than what processes say.

use std::time::Duration;

use anyhow::{Context, Result};
use store::SessionRecord;
use testkit::wait_until;

use super::Cluster;

/// A persisted screen as text.
#[derive(Clone, Debug)]
pub struct SavedView {
    pub saved_by: String,
    pub saved_at: store::Millis,
    pub rows: Vec<String>,
}

impl SavedView {
    pub fn has_line(&self, line: &str) -> bool {
        self.rows.iter().any(|r| r.trim_end() == line)
    }
}

impl Cluster {
    /// The session's record in the store.
    pub async fn session(&self, id: &str) -> Result<SessionRecord> {
        self.store
            .get_session(id)
            .await?
            .with_context(|| format!("no session {id} in the store"))
    }

    /// The host that owns `id` and its epoch, per the store.
    pub async fn owner(&self, id: &str) -> Result<(String, u64)> {
        let record = self.session(id).await?;
        Ok((record.owner_host, record.epoch))
    }

    /// The persisted screen of a session: who saved it and its rows as
    /// text; `None` while nothing is saved.
    pub async fn saved_screen(&self, id: &str) -> Result<Option<SavedView>> {
        saved_screen(self.store.as_ref(), id).await
    }

    /// Waits until the store holds a screen of `id` with a row equal to
    /// `line`: the failover tests kill a host only after that, because a
    /// restore shows the last persisted screen (DESIGN.md promise 2).
    pub async fn wait_persisted(&self, id: &str, line: &str) -> Result<SavedView> {
        wait_persisted(self.store.as_ref(), id, line).await
    }

    /// The id of the test user's sign-in, as tickets carry it.
    pub fn login_id(&self) -> Result<[u8; 32]> {
        let value = self
            .cookie
            .split_once('=')
            .map(|(_, v)| v)
            .context("no sign-in cookie")?;
        let token =
            auth::login::LoginToken::parse(value).context("an unreadable sign-in cookie")?;
        Ok(token.id().0)
    }
}

/// The persisted screen of session `id` in `store`: who saved it and its
/// rows as text; `None` while nothing is saved.
pub async fn saved_screen(store: &dyn store::Store, id: &str) -> Result<Option<SavedView>> {
    let Some(stored) = store.load_screen(id).await? else {
        return Ok(None);
    };
    let screen = host_server::persist::decode_screen(&stored.screen)
        .map_err(anyhow::Error::msg)
        .context("decoding the saved screen")?;
    Ok(Some(SavedView {
        saved_by: stored.saved_by,
        saved_at: stored.saved_at,
        rows: screen.rows.iter().map(|l| l.text()).collect(),
    }))
}

/// Waits until `store` holds a screen of `id` with a row equal to `line`
/// (while it cannot be read, it does not yet).
pub async fn wait_persisted(store: &dyn store::Store, id: &str, line: &str) -> Result<SavedView> {
    wait_persisted_within(store, id, line, Duration::from_secs(20)).await
}

/// [`wait_persisted`] with its own patience.
pub async fn wait_persisted_within(
    store: &dyn store::Store,
    id: &str,
    line: &str,
    timeout: Duration,
) -> Result<SavedView> {
    wait_until(
        timeout,
        &format!("the store to hold a screen with {line:?}"),
        || async {
            // A store coming back from an outage is "not yet", not a
            // failure: the wait is for what the hosts catch up on.
            Ok(match saved_screen(store, id).await {
                Ok(Some(view)) if view.has_line(line) => Ok(view),
                Ok(Some(view)) => Err(view.rows.join("\n")),
                Ok(None) => Err("nothing saved".into()),
                Err(err) => Err(format!("{err:#}")),
            })
        },
    )
    .await
}

/// Every event of `session`'s recording in `store`, in order, read a page
/// of blocks at a time as the directory reads them.
pub async fn recorded_events(
    store: &dyn store::Store,
    session: &str,
) -> Result<Vec<host_server::recording::TimedEvent>> {
    let mut events = Vec::new();
    let mut after = None;
    loop {
        let blocks = store.recording_blocks(session, after, 256).await?;
        let Some(last) = blocks.last() else {
            return Ok(events);
        };
        after = Some(last.seq);
        for block in &blocks {
            events.extend(host_server::recording::decode_block(&block.data)?);
        }
    }
}
