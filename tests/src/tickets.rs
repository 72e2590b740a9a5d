//! Credentials for the tests: the harness plays the directory's part.
//!
//! One Ed25519 key per test process signs every ticket; hosts are started
//! with its public key, clusters' directories with its seed. Accounts and
//! sign-ins are real rows in the store the processes use, so a host that
//! checks a ticket's sign-in finds it exactly as it would in production.

use std::sync::OnceLock;

use anyhow::{Context, Result};
use auth::login::LoginToken;
use auth::ticket::{Claims, MAX_LIFETIME_MS, TicketSigner, now_ms};
use protocol::SessionId;
use store::{Store, StoreError};

/// The user every test acts as unless it says otherwise.
pub const TEST_USER: &str = "alice";

/// Her password (tests only; real passwords never appear in a repository).
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// This test process's ticket key.
pub fn signer() -> &'static TicketSigner {
    static SIGNER: OnceLock<TicketSigner> = OnceLock::new();
    SIGNER.get_or_init(TicketSigner::generate)
}

/// What hosts get as `THINLINE_TICKET_PUBLIC_KEY`.
pub fn public_key() -> String {
    signer().public_key().to_base64()
}

/// What directories get as `THINLINE_TICKET_KEY`.
pub fn secret_key() -> String {
    signer().to_base64()
}

/// Who a ticket is for and where it may be used.
#[derive(Clone, Debug)]
pub struct Grant {
    pub user: String,
    pub session: SessionId,
    pub host: String,
    pub epoch: u64,
    pub login: [u8; 32],
}

impl Grant {
    /// The claims of a ticket valid from now for `MAX_LIFETIME_MS`.
    pub fn claims(&self) -> Claims {
        let now = now_ms();
        Claims {
            user: self.user.clone(),
            session: self.session.0,
            host: self.host.clone(),
            epoch: self.epoch,
            login: self.login,
            max_sessions: 10,
            share: None,
            record: None,
            issued_at_ms: now,
            expires_at_ms: now + MAX_LIFETIME_MS,
        }
    }

    /// A ticket signed with this process's key.
    pub fn ticket(&self) -> String {
        sign(&self.claims())
    }
}

/// Signs `claims`; panics only if a test asks for an unsignable ticket,
/// which is a bug in the test.
pub fn sign(claims: &Claims) -> String {
    signer()
        .sign(claims)
        .unwrap_or_else(|e| panic!("the test asked for an unsignable ticket: {e}"))
}

/// A fresh random session id.
pub fn new_session_id() -> SessionId {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).unwrap_or_else(|e| panic!("no randomness: {e}"));
    SessionId(id)
}

/// Creates `user` (if missing) with [`TEST_PASSWORD`] and a sign-in for
/// them; returns the sign-in's id, as a ticket carries it.
pub async fn sign_in(store: &dyn Store, user: &str) -> Result<[u8; 32]> {
    ensure_account(store, user, TEST_PASSWORD).await?;
    let token = LoginToken::generate();
    let id = token.id();
    store
        .create_login(&id.to_string(), user, 3_600_000)
        .await
        .with_context(|| format!("signing {user} in"))?;
    Ok(id.0)
}

/// Creates `user` with `password` unless the account exists.
pub async fn ensure_account(store: &dyn Store, user: &str, password: &str) -> Result<()> {
    let hash = auth::password::hash(password).context("hashing a test password")?;
    match store.create_account(user, &hash).await {
        Ok(()) | Err(StoreError::Duplicate(_)) => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating the account {user}")),
    }
}
