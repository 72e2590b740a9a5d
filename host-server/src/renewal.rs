//! The task that keeps this host's lease in the store, and what follows
//! from each renewal: whether new sessions may start here, an operator's
//! drain or its lifting, and the ownership check after a lapse.
//!
//! The host renews against the store itself, on the store's clock; no
//! directory stands between a host and its lease, so a directory outage
//! changes nothing here. When the store cannot be reached either, the lease
//! lapses (by `LeaseKeeper`'s conservative count, before the store's own
//! expiry) and the host stops taking *new* sessions, but it never ends a
//! live one for that: what ends a session here is a fenced write, which
//! only the store can answer, so a host cut off from the store keeps
//! serving until the store is back and says otherwise.
//!
//! Why that is safe, in short (ARCHITECTURE.md has the whole argument):
//! every write about a session is conditional on the writer's epoch, a
//! directory moves a session only by raising its epoch, and it does so
//! only after the owner's lease expired by the store's clock (or on proof
//! that the owner's process is gone). So a host cut off can write nothing
//! while it is cut off, and its first write after is refused if the
//! session moved; the renewal that ends a lapse also checks every session
//! against its record, which catches the sessions with nothing to write.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use store::Store;

use crate::AppState;
use crate::lease::{LeaseAction, LeaseKeeper};
use crate::standing::LeaseState;

/// How a host keeps its lease.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Where clients and directories reach this host; stored with the
    /// lease so placement can send clients here.
    pub public_url: String,
    /// The secret this host was enrolled with (`directory host add`);
    /// `None` where no host is enrolled, which only loopback urls may do.
    pub secret: Option<crate::host_token::HostSecret>,
    pub ttl: Duration,
    pub renew_every: Duration,
}

/// Longest the shutdown's one renewal may take: the drain goes on without
/// it (directories then learn of the drain from the clients it sends them).
const SHUTDOWN_RENEWAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Renews the lease for as long as the host runs.
pub async fn keep_lease(state: AppState, store: Arc<dyn Store>, config: LeaseConfig) {
    let mut keeper = LeaseKeeper::new(config.ttl, config.renew_every);
    let standing = state.standing.clone();
    // Sessions must be checked against the store once it answers again;
    // a check that fails sets it again.
    let check_due = Arc::new(AtomicBool::new(false));
    loop {
        let now = Instant::now();
        if standing.lease() == LeaseState::Live && !keeper.is_valid(now) {
            standing.set_lease_live(false);
            check_due.store(true, Ordering::SeqCst);
            tracing::warn!(
                failures = keeper.failures(),
                sessions = state.registry.len(),
                "lease lapsed: the store did not renew it in time; live sessions go on, \
                 new sessions are refused until it does"
            );
        }
        let wake = match keeper.poll(now) {
            LeaseAction::Renew => {
                // A renewal that hangs is abandoned, so a silent store
                // cannot keep the loop from counting; a slow one (a busy
                // SQLite file) is given whatever the last grant still
                // covers, so it is abandoned exactly when the lease would
                // lapse anyway, and never sooner than the renew interval.
                let covered = keeper
                    .valid_until()
                    .map_or(Duration::ZERO, |until| until.saturating_duration_since(now));
                let patience = covered.max(config.renew_every);
                let renewal =
                    tokio::time::timeout(patience, renew(&state, store.as_ref(), &config))
                        .await
                        .unwrap_or_else(|_| {
                            Err(store::StoreError::Unavailable(format!(
                                "no answer from the store within {patience:?}"
                            )))
                        });
                match renewal {
                    Ok(renewal) => {
                        keeper.on_granted(now);
                        if check_due.swap(false, Ordering::SeqCst) || renewal.lapsed {
                            spawn_ownership_check(&state, check_due.clone());
                        }
                        if keeper.is_valid(Instant::now()) && !standing.set_lease_live(true) {
                            tracing::info!("lease granted; taking new sessions");
                        }
                        follow_operator(&state, renewal.host.drain_requested);
                    }
                    Err(error @ store::StoreError::NotEnrolled { .. }) => {
                        // Not an outage: the operator must act. Said at
                        // the first refusal and every 60th after, since
                        // nothing will change until they do.
                        if keeper.failures().is_multiple_of(60) {
                            tracing::error!(%error, "the store refused this host's lease; it takes no new sessions");
                        }
                        keeper.on_failed(Instant::now());
                    }
                    Err(error) => {
                        if keeper.failures() == 0 {
                            tracing::warn!(%error, "lease renewal failed; retrying");
                        }
                        keeper.on_failed(Instant::now());
                    }
                }
                continue;
            }
            LeaseAction::WaitUntil(at) => at,
        };
        let deadline = match keeper.valid_until() {
            Some(until) if standing.lease() == LeaseState::Live => wake.min(until),
            _ => wake,
        };
        tokio::time::sleep_until(deadline.into()).await;
    }
}

async fn renew(
    state: &AppState,
    store: &dyn Store,
    config: &LeaseConfig,
) -> store::Result<store::LeaseRenewal> {
    let load = u32::try_from(state.registry.len()).unwrap_or(u32::MAX);
    store
        .renew_lease(
            state.registry.host(),
            config.secret.as_ref().map(|secret| secret.0.as_str()),
            &config.public_url,
            u64::try_from(config.ttl.as_millis()).unwrap_or(u64::MAX),
            load,
            state.standing.is_shutting_down(),
        )
        .await
}

/// Drains on an operator's word, and serves again when it is lifted.
fn follow_operator(state: &AppState, requested: bool) {
    let was = state.standing.set_drain_requested(requested);
    match (was, requested) {
        (false, true) => {
            tracing::info!(
                sessions = state.registry.len(),
                "an operator asked for this host to be drained; moving every session"
            );
            let registry = state.registry.clone();
            tokio::spawn(async move {
                registry.terminate_all(protocol::CloseCode::GoingAway).await;
                tracing::info!("drained on the operator's request");
            });
        }
        (true, false) => tracing::info!("the operator lifted the drain; taking sessions again"),
        _ => {}
    }
}

/// After a lapse, ends every session whose record has moved on; a check
/// the store fails is due again at the next renewal.
fn spawn_ownership_check(state: &AppState, check_due: Arc<AtomicBool>) {
    if state.registry.is_empty() {
        // Nothing to check (a host started again after its lease ran out).
        return;
    }
    let registry = state.registry.clone();
    tokio::spawn(async move {
        match registry.end_moved_sessions().await {
            Ok(0) => tracing::info!("lease back: every session here is still this host's"),
            Ok(ended) => tracing::warn!(
                ended,
                "lease back: sessions had moved to other hosts meanwhile and were ended here"
            ),
            Err(error) => {
                check_due.store(true, Ordering::SeqCst);
                tracing::warn!(%error, "lease back, but checking the sessions' records failed; retrying")
            }
        }
    });
}

/// Tells the store this process is shutting down, so directories stop
/// placing sessions here and move ours as their clients ask; bounded, since
/// a drain must not wait on a store that is down.
pub async fn announce_shutdown(state: &AppState, store: &dyn Store, config: &LeaseConfig) {
    let renewal = tokio::time::timeout(SHUTDOWN_RENEWAL_TIMEOUT, renew(state, store, config)).await;
    match renewal {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::warn!(%error, "could not record the shutdown in the store"),
        Err(_) => tracing::warn!("the store did not answer the shutdown's renewal in time"),
    }
}
