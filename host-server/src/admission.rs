//! Who may open a terminal on this host: the decision after the hello,
//! sans IO.
//!
//! A connection is admitted by a ticket the directory signed for one user,
//! one session, one host and one epoch (see `auth::ticket`). The checks run
//! in this order, and every one must pass before anything is started:
//!
//! 1. [`verify_ticket`]: the signature and the time window, then that the
//!    ticket names this host and the session the hello asks for.
//! 2. [`check_login`]: the sign-in the ticket came from is still live (not
//!    signed out, expired or disabled), when the host has a store.
//! 3. [`decide`]: the epoch and owner against what this host knows of the
//!    session: running here, recorded in the store, or unknown. The answer
//!    says what to do: attach, restore, or start. A viewer's ticket (one
//!    with a share grant) names the owner it was shared by, which must be
//!    the session's; it attaches or restores, and never starts a session.
//!    (The host also watches the share itself while the viewer is
//!    connected: `logins::LoginWatch`.)
//!
//! The IO (reading the registry and the store, starting programs) is the
//! caller's; everything here is a plain function of its inputs, so every
//! refusal has a unit test below.

use auth::ticket::{Claims, TicketError, TicketVerifier};
use protocol::{CloseCode, SessionId};

/// What this host knows about the session a ticket names.
#[derive(Clone, Copy, Debug)]
pub enum Known<'a> {
    /// The session runs here, owned by `owner` at `epoch`.
    Running { owner: &'a str, epoch: u64 },
    /// It does not run here, but the store has its record.
    Recorded(RecordView<'a>),
    /// Neither: no running session and no record (or no store at all).
    Unknown,
}

/// The fields of a store record that admission looks at.
#[derive(Clone, Copy, Debug)]
pub struct RecordView<'a> {
    pub owner: &'a str,
    pub owner_host: &'a str,
    pub epoch: u64,
    /// False once the session ended (its program exited or its user ended
    /// it); an ended session is never brought back.
    pub running: bool,
}

impl<'a> RecordView<'a> {
    pub fn of(record: &'a store::SessionRecord) -> RecordView<'a> {
        RecordView {
            owner: &record.owner,
            owner_host: &record.owner_host,
            epoch: record.epoch,
            running: record.state == store::SessionState::Running,
        }
    }
}

/// What to do with an admitted connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Attach to the session running here.
    Attach,
    /// Bring the session back from the store. `take_over`: its record names
    /// another host and this one adopts it (`--adopt-sessions`), which
    /// raises the epoch; otherwise the directory already moved it here.
    Restore { take_over: bool },
    /// Start a brand-new session with the ticket's id and user.
    Start,
}

/// Why a connection was refused. The text is for the host's log (never the
/// client's, which gets a close code); it never contains the ticket.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("ticket refused: {0}")]
    Ticket(#[from] TicketError),
    #[error("the ticket is for host {ticket}, not this host ({here})")]
    WrongHost { ticket: String, here: String },
    #[error("the ticket is for session {ticket}, but the hello asked for {hello}")]
    WrongSession { ticket: SessionId, hello: SessionId },
    #[error("the ticket names a user this host cannot serve")]
    BadUserName,
    #[error("the ticket is for user {ticket}, but the session belongs to {owner}")]
    WrongOwner { ticket: String, owner: String },
    #[error("the ticket names epoch {ticket}, but the session is at epoch {current} here")]
    WrongEpoch { ticket: u64, current: u64 },
    #[error(
        "the ticket names epoch {0} for a session nobody has recorded; a new session has epoch 1"
    )]
    NewSessionEpoch(u64),
    #[error("the session's record names host {0}, and this host does not adopt sessions")]
    NotOurs(String),
    #[error("the session has ended")]
    Ended,
    #[error(
        "a viewer's ticket names a session that is not running or recorded; viewers never start one"
    )]
    ViewerCannotStart,
    #[error(
        "the sign-in the ticket came from has ended (signed out, expired, or the account disabled)"
    )]
    LoginEnded,
    #[error("the sign-in belongs to {login}, but the ticket names {ticket}")]
    LoginOfAnotherUser { login: String, ticket: String },
    #[error("{user} already runs {running} sessions, the most allowed ({max})")]
    TooManySessions {
        user: String,
        running: u64,
        max: u32,
    },
}

impl Refusal {
    /// The close code the client gets: 4001 for anything about the ticket
    /// (the client fetches a fresh one once, then tells the user), 4004 for
    /// a session that is over, 4012 for one past the user's cap.
    pub fn close_code(&self) -> CloseCode {
        match self {
            Refusal::Ended => CloseCode::SessionEnded,
            Refusal::TooManySessions { .. } => CloseCode::TooManySessions,
            _ => CloseCode::Unauthorized,
        }
    }
}

/// Step 1: the ticket is genuine, current, and names this host and the
/// session the hello asks for.
pub fn verify_ticket(
    verifier: &TicketVerifier,
    ticket: &str,
    now_ms: u64,
    host: &str,
    hello_session: SessionId,
) -> Result<Claims, Refusal> {
    let claims = verifier.verify(ticket, now_ms)?;
    if claims.host != host {
        return Err(Refusal::WrongHost {
            ticket: claims.host,
            here: host.into(),
        });
    }
    let ticket_session = SessionId(claims.session);
    if ticket_session != hello_session {
        return Err(Refusal::WrongSession {
            ticket: ticket_session,
            hello: hello_session,
        });
    }
    // The name becomes a folder under the shared home root; the directory
    // validates it already, this host does not rely on that.
    if !store::valid_user_name(&claims.user) {
        return Err(Refusal::BadUserName);
    }
    Ok(claims)
}

/// What the store said about the ticket's login.
#[derive(Clone, Copy, Debug)]
pub enum LoginLookup<'a> {
    /// A live login of `user`.
    Live { user: &'a str },
    /// No live login by that id: signed out, expired, or its account
    /// disabled (or the store could not read it back).
    Missing,
    /// The store could not be asked (down, or too slow).
    Unavailable,
}

/// Step 2's verdict when it admits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginVerdict {
    Live,
    /// Admitted on the ticket alone because the store was unavailable; the
    /// caller logs a warning.
    Unchecked,
}

/// Step 2: the sign-in behind the ticket is still live and is the same
/// user's.
///
/// An unavailable store admits: the ticket itself proves a sign-in at most
/// `auth::ticket::MAX_LIFETIME_MS` old, and refusing would turn a store
/// outage into an outage of every terminal (DESIGN.md promise 4). The cost
/// is that a sign-out is not enforced for that minute.
pub fn check_login(claims: &Claims, lookup: LoginLookup<'_>) -> Result<LoginVerdict, Refusal> {
    match lookup {
        LoginLookup::Live { user } if user == claims.user => Ok(LoginVerdict::Live),
        LoginLookup::Live { user } => Err(Refusal::LoginOfAnotherUser {
            login: user.into(),
            ticket: claims.user.clone(),
        }),
        LoginLookup::Missing => Err(Refusal::LoginEnded),
        LoginLookup::Unavailable => Ok(LoginVerdict::Unchecked),
    }
}

/// Step 3: the ticket's user owns the session and its epoch is the one
/// this host would serve it at.
///
/// `adopt` (`--adopt-sessions`) lets a host take over a running session
/// whose record names another host; the ticket must then name the
/// record's epoch (the one the signer saw), and the takeover raises it.
pub fn decide(claims: &Claims, known: Known<'_>, adopt: bool) -> Result<Admit, Refusal> {
    // A viewer's ticket names its owner in the grant; `user` is the viewer.
    let ticket_owner = claims
        .share
        .as_ref()
        .map_or(&claims.user, |grant| &grant.owner);
    let check_owner = |owner: &str| {
        if owner == ticket_owner {
            Ok(())
        } else {
            Err(Refusal::WrongOwner {
                ticket: ticket_owner.clone(),
                owner: owner.into(),
            })
        }
    };
    let check_epoch = |current: u64| {
        if claims.epoch == current {
            Ok(())
        } else {
            Err(Refusal::WrongEpoch {
                ticket: claims.epoch,
                current,
            })
        }
    };
    match known {
        Known::Running { owner, epoch } => {
            check_owner(owner)?;
            check_epoch(epoch)?;
            Ok(Admit::Attach)
        }
        Known::Recorded(record) => {
            // Ownership first: whether another user's session has ended is
            // none of this user's business.
            check_owner(record.owner)?;
            if !record.running {
                return Err(Refusal::Ended);
            }
            // `claims.host` is this host: `verify_ticket` checked it.
            let take_over = if record.owner_host == claims.host {
                false
            } else if adopt {
                true
            } else {
                return Err(Refusal::NotOurs(record.owner_host.into()));
            };
            check_epoch(record.epoch)?;
            Ok(Admit::Restore { take_over })
        }
        Known::Unknown if claims.share.is_some() => Err(Refusal::ViewerCannotStart),
        Known::Unknown if claims.epoch == 1 => Ok(Admit::Start),
        Known::Unknown => Err(Refusal::NewSessionEpoch(claims.epoch)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use auth::ticket::{TicketSigner, TicketVerifier, now_ms};

    const HOST: &str = "h1";
    const SESSION: SessionId = SessionId([7; 16]);

    fn claims(now: u64) -> Claims {
        Claims {
            user: "alice".into(),
            session: SESSION.0,
            host: HOST.into(),
            epoch: 1,
            login: [3; 32],
            max_sessions: 10,
            share: None,
            record: None,
            issued_at_ms: now,
            expires_at_ms: now + 60_000,
        }
    }

    fn setup() -> (TicketSigner, TicketVerifier, u64) {
        let signer = TicketSigner::generate();
        let verifier = TicketVerifier::new(vec![signer.public_key()]);
        (signer, verifier, now_ms())
    }

    #[test]
    fn a_genuine_ticket_for_this_host_and_session_passes() {
        let (signer, verifier, now) = setup();
        let ticket = signer.sign(&claims(now)).unwrap();
        let verified = verify_ticket(&verifier, &ticket, now, HOST, SESSION).unwrap();
        assert_eq!(verified, claims(now));
    }

    #[test]
    fn a_forged_ticket_is_refused() {
        let (_, verifier, now) = setup();
        let forger = TicketSigner::generate();
        let ticket = forger.sign(&claims(now)).unwrap();
        let refused = verify_ticket(&verifier, &ticket, now, HOST, SESSION).unwrap_err();
        assert!(
            matches!(refused, Refusal::Ticket(TicketError::BadSignature)),
            "{refused}"
        );
        assert_eq!(refused.close_code(), CloseCode::Unauthorized);
        for garbage in ["", "not a ticket", &"A".repeat(5000)] {
            let refused = verify_ticket(&verifier, garbage, now, HOST, SESSION).unwrap_err();
            assert!(matches!(refused, Refusal::Ticket(_)), "{refused}");
        }
    }

    #[test]
    fn a_ticket_with_a_changed_claim_is_refused() {
        let (signer, verifier, now) = setup();
        let ticket = signer.sign(&claims(now)).unwrap();
        // Flip one character in the middle of the claims.
        let mut chars: Vec<char> = ticket.chars().collect();
        let middle = chars.len() / 3;
        chars[middle] = if chars[middle] == 'A' { 'B' } else { 'A' };
        let tampered: String = chars.into_iter().collect();
        assert!(matches!(
            verify_ticket(&verifier, &tampered, now, HOST, SESSION),
            Err(Refusal::Ticket(_))
        ));
    }

    #[test]
    fn an_expired_ticket_is_refused() {
        let (signer, verifier, now) = setup();
        let ticket = signer.sign(&claims(now)).unwrap();
        let later = now + 60_000 + auth::ticket::CLOCK_SKEW_MS + 1;
        let refused = verify_ticket(&verifier, &ticket, later, HOST, SESSION).unwrap_err();
        assert!(
            matches!(refused, Refusal::Ticket(TicketError::Expired)),
            "{refused}"
        );
    }

    #[test]
    fn a_ticket_for_another_host_is_refused() {
        let (signer, verifier, now) = setup();
        let ticket = signer.sign(&claims(now)).unwrap();
        let refused = verify_ticket(&verifier, &ticket, now, "h2", SESSION).unwrap_err();
        assert!(matches!(refused, Refusal::WrongHost { .. }), "{refused}");
    }

    #[test]
    fn a_ticket_for_another_session_is_refused() {
        let (signer, verifier, now) = setup();
        let ticket = signer.sign(&claims(now)).unwrap();
        let other = SessionId([8; 16]);
        let refused = verify_ticket(&verifier, &ticket, now, HOST, other).unwrap_err();
        assert!(matches!(refused, Refusal::WrongSession { .. }), "{refused}");
    }

    #[test]
    fn a_ticket_naming_an_unusable_user_is_refused() {
        let (signer, verifier, now) = setup();
        for user in ["", "../etc", "Alice", "a/b"] {
            let ticket = signer
                .sign(&Claims {
                    user: user.into(),
                    ..claims(now)
                })
                .unwrap();
            let refused = verify_ticket(&verifier, &ticket, now, HOST, SESSION).unwrap_err();
            assert!(matches!(refused, Refusal::BadUserName), "{user}: {refused}");
        }
    }

    #[test]
    fn the_refusal_never_shows_the_ticket() {
        let (signer, verifier, now) = setup();
        let ticket = signer.sign(&claims(now)).unwrap();
        for refused in [
            verify_ticket(&verifier, &ticket, now, "h2", SESSION).unwrap_err(),
            verify_ticket(&verifier, &ticket, now + 3_600_000, HOST, SESSION).unwrap_err(),
        ] {
            let text = format!("{refused} {refused:?}");
            assert!(!text.contains(&ticket), "{text}");
        }
    }

    fn at_epoch(epoch: u64) -> Claims {
        Claims {
            epoch,
            ..claims(now_ms())
        }
    }

    fn record(owner: &'static str, owner_host: &'static str, epoch: u64) -> Known<'static> {
        Known::Recorded(RecordView {
            owner,
            owner_host,
            epoch,
            running: true,
        })
    }

    #[test]
    fn a_running_session_admits_its_owner_at_its_epoch() {
        let running = Known::Running {
            owner: "alice",
            epoch: 3,
        };
        assert_eq!(decide(&at_epoch(3), running, false).unwrap(), Admit::Attach);
        let refused = decide(&at_epoch(2), running, false).unwrap_err();
        assert!(
            matches!(
                refused,
                Refusal::WrongEpoch {
                    ticket: 2,
                    current: 3
                }
            ),
            "{refused}"
        );
        assert!(matches!(
            decide(&at_epoch(4), running, true),
            Err(Refusal::WrongEpoch { .. })
        ));
    }

    #[test]
    fn another_users_ticket_never_attaches_even_with_the_right_id() {
        let running = Known::Running {
            owner: "bob",
            epoch: 1,
        };
        let refused = decide(&at_epoch(1), running, true).unwrap_err();
        assert!(matches!(refused, Refusal::WrongOwner { .. }), "{refused}");
        assert_eq!(refused.close_code(), CloseCode::Unauthorized);
        let recorded = record("bob", HOST, 1);
        assert!(matches!(
            decide(&at_epoch(1), recorded, true),
            Err(Refusal::WrongOwner { .. })
        ));
        // Not even whether bob's session ended is told.
        let ended = Known::Recorded(RecordView {
            owner: "bob",
            owner_host: HOST,
            epoch: 1,
            running: false,
        });
        assert!(matches!(
            decide(&at_epoch(1), ended, true),
            Err(Refusal::WrongOwner { .. })
        ));
    }

    /// bob's ticket for a share of alice's session.
    fn viewer(epoch: u64, owner: &str) -> Claims {
        Claims {
            user: "bob".into(),
            share: Some(auth::ticket::ShareGrant {
                id: [9; 16],
                owner: owner.into(),
                may_type: false,
            }),
            ..at_epoch(epoch)
        }
    }

    #[test]
    fn a_viewer_watches_the_owner_named_in_its_grant_and_never_starts_a_session() {
        let running = Known::Running {
            owner: "alice",
            epoch: 2,
        };
        assert_eq!(
            decide(&viewer(2, "alice"), running, false).unwrap(),
            Admit::Attach
        );
        // The grant must name the session's owner, at its epoch.
        for (claims, known) in [
            (viewer(2, "carol"), running),
            (viewer(2, "bob"), running),
            (viewer(2, "carol"), record("alice", HOST, 2)),
        ] {
            let refused = decide(&claims, known, true).unwrap_err();
            assert!(matches!(refused, Refusal::WrongOwner { .. }), "{refused}");
        }
        assert!(matches!(
            decide(&viewer(1, "alice"), running, false),
            Err(Refusal::WrongEpoch { .. })
        ));
        // A viewer follows a failover: the moved session is restored.
        assert_eq!(
            decide(&viewer(3, "alice"), record("alice", HOST, 3), false).unwrap(),
            Admit::Restore { take_over: false }
        );
        // Nothing recorded: a viewer's ticket starts nothing, at any epoch.
        let refused = decide(&viewer(1, "alice"), Known::Unknown, true).unwrap_err();
        assert!(matches!(refused, Refusal::ViewerCannotStart), "{refused}");
        assert_eq!(refused.close_code(), CloseCode::Unauthorized);
    }

    #[test]
    fn a_recorded_session_moved_here_is_restored_at_its_epoch() {
        assert_eq!(
            decide(&at_epoch(2), record("alice", HOST, 2), false).unwrap(),
            Admit::Restore { take_over: false }
        );
        assert!(matches!(
            decide(&at_epoch(1), record("alice", HOST, 2), false),
            Err(Refusal::WrongEpoch {
                ticket: 1,
                current: 2
            })
        ));
    }

    #[test]
    fn a_record_naming_another_host_is_adopted_only_when_allowed() {
        let elsewhere = record("alice", "h0", 4);
        let refused = decide(&at_epoch(4), elsewhere, false).unwrap_err();
        assert!(
            matches!(refused, Refusal::NotOurs(ref h) if h == "h0"),
            "{refused}"
        );
        assert_eq!(
            decide(&at_epoch(4), elsewhere, true).unwrap(),
            Admit::Restore { take_over: true }
        );
        assert!(matches!(
            decide(&at_epoch(3), elsewhere, true),
            Err(Refusal::WrongEpoch { .. })
        ));
    }

    #[test]
    fn an_ended_session_is_never_restored() {
        let ended = Known::Recorded(RecordView {
            owner: "alice",
            owner_host: HOST,
            epoch: 2,
            running: false,
        });
        let refused = decide(&at_epoch(2), ended, true).unwrap_err();
        assert!(matches!(refused, Refusal::Ended), "{refused}");
        assert_eq!(refused.close_code(), CloseCode::SessionEnded);
    }

    #[test]
    fn a_new_session_starts_only_at_epoch_one() {
        assert_eq!(
            decide(&at_epoch(1), Known::Unknown, false).unwrap(),
            Admit::Start
        );
        for epoch in [0, 2, 9] {
            let refused = decide(&at_epoch(epoch), Known::Unknown, true).unwrap_err();
            assert!(
                matches!(refused, Refusal::NewSessionEpoch(e) if e == epoch),
                "{refused}"
            );
        }
    }

    #[test]
    fn the_login_must_be_live_and_the_same_users() {
        let claims = claims(now_ms());
        assert_eq!(
            check_login(&claims, LoginLookup::Live { user: "alice" }).unwrap(),
            LoginVerdict::Live
        );
        assert!(matches!(
            check_login(&claims, LoginLookup::Live { user: "bob" }),
            Err(Refusal::LoginOfAnotherUser { .. })
        ));
        let ended = check_login(&claims, LoginLookup::Missing).unwrap_err();
        assert!(matches!(ended, Refusal::LoginEnded), "{ended}");
        assert_eq!(ended.close_code(), CloseCode::Unauthorized);
    }

    #[test]
    fn an_unavailable_store_admits_on_the_ticket_alone() {
        assert_eq!(
            check_login(&claims(now_ms()), LoginLookup::Unavailable).unwrap(),
            LoginVerdict::Unchecked
        );
    }
}
