//! Open terminals end when their sign-in does.
//!
//! A ticket admits a socket once; the sign-in behind it can end while the
//! socket is open (the user signs out, an operator resets the password or
//! disables the account). Every open socket is registered here under its
//! login id, and one task per host asks the store every
//! [`RECHECK_INTERVAL`] which of those sign-ins are still live, in one
//! query for all of them ([`store::Store::live_logins`]). A socket whose
//! sign-in is gone is closed with `CloseCode::AccountDisabled` if its
//! account is now disabled, else `CloseCode::SignedOut` (a sign-out or a
//! new password); its session runs on, detached, for the user's next
//! sign-in to pick up.
//!
//! A viewer's socket (admitted by a share link's ticket) is also watched
//! under its share: the same task asks which of the shares behind open
//! sockets are still live ([`store::Store::live_shares`]: not revoked, not
//! expired, its session running) and closes the viewers of the others
//! with `CloseCode::ShareRevoked`, so a revocation reaches a watcher
//! within [`RECHECK_INTERVAL`] whichever host it watches on.
//!
//! A store that cannot answer ends nothing: hosts ride out store outages,
//! and a sign-out is enforced from the store's return on, as admission
//! does (`ws::check_login`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::registry::STORE_READ_TIMEOUT;

/// How often the sign-ins behind open sockets are checked again: the
/// longest a terminal outlives its sign-out, plus one store round trip.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Why a sign-in ended, as far as the host can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Signed out, or the password was changed.
    SignedOut,
    /// The account is disabled (or gone).
    Disabled,
    /// The share link the viewer watches by was revoked or expired.
    ShareRevoked,
}

impl Ending {
    pub fn close_code(self) -> protocol::CloseCode {
        match self {
            Ending::SignedOut => protocol::CloseCode::SignedOut,
            Ending::Disabled => protocol::CloseCode::AccountDisabled,
            Ending::ShareRevoked => protocol::CloseCode::ShareRevoked,
        }
    }
}

/// The sockets of one sign-in: its user, and each socket's channel.
#[derive(Debug, Default)]
struct Sockets {
    user: String,
    conns: HashMap<u64, Socket>,
}

/// One socket: where to tell it, and the share it watches by, if any.
#[derive(Debug)]
struct Socket {
    tx: oneshot::Sender<Ending>,
    share: Option<String>,
}

/// The open sockets by the login id that admitted them.
#[derive(Debug, Default)]
pub struct LoginWatch {
    sockets: Mutex<HashMap<String, Sockets>>,
}

/// One socket's place in the watch; dropping it (the socket closed)
/// removes it.
#[derive(Debug)]
pub struct Watched {
    watch: Arc<LoginWatch>,
    login: String,
    conn: u64,
    ended: oneshot::Receiver<Ending>,
}

impl Watched {
    /// Completes when the sign-in has ended, saying why; never, while it
    /// lives.
    pub async fn ended(&mut self) -> Ending {
        match (&mut self.ended).await {
            Ok(ending) => ending,
            // The watch let go without a verdict (only if it is dropped
            // itself): that is no sign-out.
            Err(_) => std::future::pending().await,
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let mut sockets = self.watch.sockets();
        if let Some(of_login) = sockets.get_mut(&self.login) {
            of_login.conns.remove(&self.conn);
            if of_login.conns.is_empty() {
                sockets.remove(&self.login);
            }
        }
    }
}

impl LoginWatch {
    pub fn new() -> Arc<LoginWatch> {
        Arc::new(LoginWatch::default())
    }

    fn sockets(&self) -> MutexGuard<'_, HashMap<String, Sockets>> {
        // Nothing under the lock can panic halfway through a change.
        self.sockets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers socket `conn` of `user`, admitted by sign-in `login` (the
    /// hex login id the store knows).
    pub fn watch(self: &Arc<Self>, login: String, user: &str, conn: u64) -> Watched {
        self.watch_viewer(login, user, conn, None)
    }

    /// As `watch`, for a viewer admitted by `share` (the share's id as the
    /// store keeps it): the socket also ends when the share does.
    pub fn watch_viewer(
        self: &Arc<Self>,
        login: String,
        user: &str,
        conn: u64,
        share: Option<String>,
    ) -> Watched {
        let (tx, rx) = oneshot::channel();
        let mut sockets = self.sockets();
        let of_login = sockets.entry(login.clone()).or_default();
        of_login.user = user.to_owned();
        of_login.conns.insert(conn, Socket { tx, share });
        drop(sockets);
        Watched {
            watch: Arc::clone(self),
            login,
            conn,
            ended: rx,
        }
    }

    /// The login ids behind open sockets, each once.
    pub fn logins(&self) -> Vec<String> {
        self.sockets().keys().cloned().collect()
    }

    /// The shares behind open viewers' sockets, each once.
    pub fn shares(&self) -> Vec<String> {
        let mut shares: Vec<String> = self
            .sockets()
            .values()
            .flat_map(|of_login| of_login.conns.values())
            .filter_map(|socket| socket.share.clone())
            .collect();
        shares.sort_unstable();
        shares.dedup();
        shares
    }

    /// The store said that of the shares `asked`, only `live` are live:
    /// every viewer of the others is told to close. Returns how many.
    pub fn end_revoked(&self, asked: &[String], live: &[String]) -> usize {
        let ended: HashSet<&str> = asked
            .iter()
            .map(String::as_str)
            .filter(|share| !live.iter().any(|l| l == share))
            .collect();
        if ended.is_empty() {
            return 0;
        }
        let mut sockets = self.sockets();
        let mut told = 0;
        for of_login in sockets.values_mut() {
            let revoked: Vec<u64> = of_login
                .conns
                .iter()
                .filter(|(_, socket)| socket.share.as_deref().is_some_and(|s| ended.contains(s)))
                .map(|(conn, _)| *conn)
                .collect();
            for conn in revoked {
                if let Some(socket) = of_login.conns.remove(&conn) {
                    told += usize::from(socket.tx.send(Ending::ShareRevoked).is_ok());
                }
            }
        }
        sockets.retain(|_, of_login| !of_login.conns.is_empty());
        told
    }

    /// How many sockets are watched.
    pub fn len(&self) -> usize {
        self.sockets()
            .values()
            .map(|of_login| of_login.conns.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets().is_empty()
    }

    /// The store said that of `asked`, only `live` are live: the users of
    /// the others, each once.
    fn users_of_ended(&self, asked: &[String], live: &[String]) -> Vec<String> {
        let live: HashSet<&str> = live.iter().map(String::as_str).collect();
        let sockets = self.sockets();
        let mut users: Vec<String> = asked
            .iter()
            .filter(|login| !live.contains(login.as_str()))
            .filter_map(|login| sockets.get(login).map(|of_login| of_login.user.clone()))
            .collect();
        users.sort_unstable();
        users.dedup();
        users
    }

    /// The store said that of `asked`, only `live` are live: every socket
    /// of the others is told to close, as `disabled` users' or as signed
    /// out. A login registered after the question was asked is left for
    /// the next one. Returns how many sockets were told.
    pub fn end_all_but(&self, asked: &[String], live: &[String], disabled: &[String]) -> usize {
        let live: HashSet<&str> = live.iter().map(String::as_str).collect();
        let mut sockets = self.sockets();
        let mut told = 0;
        for login in asked.iter().filter(|login| !live.contains(login.as_str())) {
            let Some(of_login) = sockets.remove(login) else {
                continue;
            };
            let ending = if disabled.contains(&of_login.user) {
                Ending::Disabled
            } else {
                Ending::SignedOut
            };
            for (_, socket) in of_login.conns {
                // A socket already closing has dropped its receiver.
                told += usize::from(socket.tx.send(ending).is_ok());
            }
        }
        told
    }

    /// Asks the store about every watched sign-in once and closes the
    /// sockets of those that ended, saying whether the account was
    /// disabled; a store that does not answer in `STORE_READ_TIMEOUT` ends
    /// nothing.
    pub async fn recheck(&self, store: &dyn store::Store) -> Result<usize, RecheckError> {
        let shares = self.shares();
        let mut told = 0;
        if !shares.is_empty() {
            let live = bounded(store.live_shares(&shares)).await?;
            told += self.end_revoked(&shares, &live);
        }
        let asked = self.logins();
        if asked.is_empty() {
            return Ok(told);
        }
        let live = bounded(store.live_logins(&asked)).await?;
        let mut disabled = Vec::new();
        for user in self.users_of_ended(&asked, &live) {
            // A user whose account is gone counts as disabled.
            if bounded(store.account_disabled(&user)).await? != Some(false) {
                disabled.push(user);
            }
        }
        Ok(told + self.end_all_but(&asked, &live, &disabled))
    }
}

async fn bounded<T>(
    call: impl std::future::Future<Output = store::Result<T>>,
) -> Result<T, RecheckError> {
    tokio::time::timeout(STORE_READ_TIMEOUT, call)
        .await
        .map_err(|_| RecheckError::Timeout)?
        .map_err(RecheckError::Store)
}

#[derive(Debug, thiserror::Error)]
pub enum RecheckError {
    #[error("the store did not answer within {}s", STORE_READ_TIMEOUT.as_secs())]
    Timeout,
    #[error(transparent)]
    Store(store::StoreError),
}

/// Rechecks every [`RECHECK_INTERVAL`] for as long as the host runs.
pub async fn keep_checking(watch: Arc<LoginWatch>, store: Arc<dyn store::Store>) {
    let mut ticks = tokio::time::interval(RECHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Reported once per outage, not every tick.
    let mut failing = false;
    loop {
        ticks.tick().await;
        match watch.recheck(store.as_ref()).await {
            Ok(closed) => {
                if failing {
                    tracing::info!("sign-ins of open terminals are checked again");
                    failing = false;
                }
                if closed > 0 {
                    tracing::info!(closed, "closed terminals whose sign-in ended");
                }
            }
            Err(error) => {
                if !failing {
                    tracing::warn!(%error, "could not check the sign-ins of open terminals; they stay open until the store answers");
                    failing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};
    use store::Store;

    fn login(n: u8) -> String {
        format!("{n:064x}")
    }

    /// Why the socket was told its sign-in ended, if it was, without
    /// waiting.
    fn told_why(watched: &mut Watched) -> Option<Ending> {
        let mut cx = Context::from_waker(Waker::noop());
        let ended = pin!(watched.ended());
        match ended.poll(&mut cx) {
            Poll::Ready(ending) => Some(ending),
            Poll::Pending => None,
        }
    }

    fn told(watched: &mut Watched) -> bool {
        told_why(watched).is_some()
    }

    #[test]
    fn only_sockets_of_ended_sign_ins_are_told() {
        let watch = LoginWatch::new();
        let mut a1 = watch.watch(login(1), "ada", 1);
        let mut a2 = watch.watch(login(1), "ada", 2);
        let mut b = watch.watch(login(2), "ada", 3);
        assert_eq!(watch.len(), 3);
        let mut asked = watch.logins();
        asked.sort();
        assert_eq!(asked, [login(1), login(2)]);

        assert_eq!(watch.end_all_but(&asked, &[login(2)], &[]), 2);
        assert!(told(&mut a1) && told(&mut a2));
        assert!(!told(&mut b));
        assert_eq!(watch.logins(), [login(2)]);
        // Told once: the next answer has nothing more to end.
        assert_eq!(watch.end_all_but(&asked, &[login(2)], &[]), 0);
    }

    #[test]
    fn a_socket_registered_after_the_question_waits_for_the_next() {
        let watch = LoginWatch::new();
        let _a = watch.watch(login(1), "ada", 1);
        let asked = watch.logins();
        let mut late = watch.watch(login(3), "ada", 2);
        assert_eq!(watch.end_all_but(&asked, &[], &[]), 1);
        assert!(!told(&mut late));
        assert_eq!(watch.logins(), [login(3)]);
    }

    #[test]
    fn a_closed_socket_leaves_the_watch() {
        let watch = LoginWatch::new();
        let a = watch.watch(login(1), "ada", 1);
        let b = watch.watch(login(1), "ada", 2);
        drop(a);
        assert_eq!((watch.len(), watch.logins()), (1, vec![login(1)]));
        drop(b);
        assert!(watch.is_empty());
        // A socket that closed as its sign-in ended is not counted as told.
        let c = watch.watch(login(4), "ada", 3);
        let asked = watch.logins();
        let (tx, rx) = oneshot::channel();
        drop(rx);
        if let Some(of_login) = watch.sockets().get_mut(&login(4)) {
            of_login.conns.insert(3, Socket { tx, share: None });
        }
        assert_eq!(watch.end_all_but(&asked, &[], &[]), 0);
        drop(c);
        assert!(watch.is_empty());
    }

    #[tokio::test]
    async fn the_store_decides_which_sign_ins_ended() {
        let store = store::MemoryStore::new();
        store.create_account("ada", "hash").await.unwrap();
        store.create_login(&login(1), "ada", 60_000).await.unwrap();
        store.create_login(&login(2), "ada", 60_000).await.unwrap();
        let watch = LoginWatch::new();
        let mut kept = watch.watch(login(1), "ada", 1);
        let mut out = watch.watch(login(2), "ada", 2);
        let mut forged = watch.watch(login(9), "ada", 3);

        assert_eq!(watch.recheck(&store).await.unwrap(), 1);
        assert!(told(&mut forged));
        assert!(!told(&mut kept) && !told(&mut out));

        store.end_login(&login(2)).await.unwrap();
        assert_eq!(watch.recheck(&store).await.unwrap(), 1);
        assert_eq!(told_why(&mut out), Some(Ending::SignedOut));
        assert!(!told(&mut kept));

        store.set_disabled("ada", true).await.unwrap();
        assert_eq!(watch.recheck(&store).await.unwrap(), 1);
        assert_eq!(told_why(&mut kept), Some(Ending::Disabled));
        assert!(watch.is_empty());
    }

    #[tokio::test]
    async fn viewers_of_a_revoked_or_expired_share_are_told_and_nobody_else() {
        let store = store::MemoryStore::new();
        for user in ["ada", "bob"] {
            store.create_account(user, "hash").await.unwrap();
        }
        store.create_login(&login(1), "ada", 60_000).await.unwrap();
        store.create_login(&login(2), "bob", 60_000).await.unwrap();
        let record = crate::registry::launch::new_record(
            protocol::SessionId([5; 16]),
            "ada",
            &crate::sandbox::ProgramSpec {
                program: "/bin/sh".into(),
                args: Vec::new(),
                login: false,
                cwd: None,
                home: None,
                env: Vec::new(),
                download_key: None,
            },
            protocol::Size { cols: 80, rows: 24 },
            "h1",
        );
        store.create_session(&record).await.unwrap();
        let share = |n: u8| format!("{n:032x}");
        for (n, ttl) in [(1, 60_000), (2, 60_000), (3, 1)] {
            store
                .create_share(&share(n), &login(n), &record.id, "ada", false, ttl)
                .await
                .unwrap();
        }
        let watch = LoginWatch::new();
        let mut owner = watch.watch(login(1), "ada", 1);
        let mut kept = watch.watch_viewer(login(2), "bob", 2, Some(share(1)));
        let mut revoked = watch.watch_viewer(login(2), "bob", 3, Some(share(2)));
        let mut expired = watch.watch_viewer(login(2), "bob", 4, Some(share(3)));
        let mut unknown = watch.watch_viewer(login(2), "bob", 5, Some(share(9)));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert_eq!(watch.recheck(&store).await.unwrap(), 2, "expired, unknown");
        assert_eq!(told_why(&mut expired), Some(Ending::ShareRevoked));
        assert_eq!(told_why(&mut unknown), Some(Ending::ShareRevoked));

        store.revoke_share("ada", &share(2)).await.unwrap();
        assert_eq!(watch.recheck(&store).await.unwrap(), 1);
        assert_eq!(told_why(&mut revoked), Some(Ending::ShareRevoked));
        assert_eq!(
            Ending::ShareRevoked.close_code(),
            protocol::CloseCode::ShareRevoked
        );
        assert!(!told(&mut kept) && !told(&mut owner));
        assert_eq!(watch.shares(), [share(1)]);

        // The session ending ends its shares.
        store.end_session(&record.id).await.unwrap();
        assert_eq!(watch.recheck(&store).await.unwrap(), 1);
        assert_eq!(told_why(&mut kept), Some(Ending::ShareRevoked));
        assert!(!told(&mut owner));
    }

    #[test]
    fn a_dropped_watch_is_no_sign_out() {
        let watch = LoginWatch::new();
        let mut a = watch.watch(login(1), "ada", 1);
        watch.sockets().clear();
        assert!(!told(&mut a));
    }
}
