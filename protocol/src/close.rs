//! WebSocket close codes with which a host refuses or ends a connection.
//!
//! Errors travel as close frames rather than as messages because a client of
//! another protocol version could not decode a message, but every client can
//! read a close code and its reason text.

/// Application close codes (RFC 6455 reserves 4000-4999 for applications).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// Normal end, e.g. the user closed the page.
    Normal,
    /// The host is shutting down or draining.
    GoingAway,
    /// The message was larger than the limit (the standard 1009).
    TooBig,
    /// The first message was not a well-formed hello.
    BadHello,
    /// The ticket was missing, forged, expired, or not for this host,
    /// session or epoch; or its sign-in has ended.
    Unauthorized,
    /// Client and host speak different protocol versions.
    VersionMismatch,
    /// A message after the hello could not be decoded.
    Malformed,
    /// The session's program exited.
    SessionEnded,
    /// The session was attached from another connection.
    Replaced,
    /// No hello arrived in time.
    HandshakeTimeout,
    /// The host has no room for another session.
    Overloaded,
    /// The session's ownership moved away from this host.
    SessionLost,
    /// The host could not start the session's program.
    SpawnFailed,
    /// The client's address already holds the most connections allowed.
    TooManyConnections,
    /// The sign-in behind the connection ended while it was open: the user
    /// signed out, or an operator reset the password or disabled the
    /// account.
    SignedOut,
    /// The user already runs the most sessions allowed.
    TooManySessions,
    /// The account was disabled while the connection was open.
    AccountDisabled,
    /// A viewer's share link was revoked by the session's owner, or it
    /// expired, while the viewer watched (version 7).
    ShareRevoked,
}

impl CloseCode {
    const TABLE: [(CloseCode, u16); 18] = [
        (CloseCode::Normal, 1000),
        (CloseCode::GoingAway, 1001),
        (CloseCode::TooBig, 1009),
        (CloseCode::BadHello, 4000),
        (CloseCode::Unauthorized, 4001),
        (CloseCode::VersionMismatch, 4002),
        (CloseCode::Malformed, 4003),
        (CloseCode::SessionEnded, 4004),
        (CloseCode::Replaced, 4005),
        (CloseCode::HandshakeTimeout, 4006),
        (CloseCode::Overloaded, 4007),
        (CloseCode::SessionLost, 4008),
        (CloseCode::SpawnFailed, 4009),
        (CloseCode::TooManyConnections, 4010),
        (CloseCode::SignedOut, 4011),
        (CloseCode::TooManySessions, 4012),
        (CloseCode::AccountDisabled, 4013),
        (CloseCode::ShareRevoked, 4014),
    ];

    pub fn code(self) -> u16 {
        Self::TABLE
            .iter()
            .find(|(c, _)| *c == self)
            .map_or(1011, |(_, n)| *n)
    }

    pub fn from_code(code: u16) -> Option<CloseCode> {
        Self::TABLE
            .iter()
            .find(|(_, n)| *n == code)
            .map(|(c, _)| *c)
    }

    /// Whether a client should try again on its own after this close (for
    /// `GoingAway` and `SessionLost` by asking the directory where the
    /// session lives now).
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            CloseCode::GoingAway | CloseCode::HandshakeTimeout | CloseCode::SessionLost
        )
    }

    /// What the user is told, in words that say what to do next.
    pub fn advice(self) -> &'static str {
        match self {
            CloseCode::Normal => "the connection was closed",
            CloseCode::GoingAway => "the host is shutting down; reconnecting",
            CloseCode::TooBig => "a message was larger than the host accepts; reload the page",
            CloseCode::BadHello => "the client sent an invalid greeting; reload the page",
            CloseCode::Unauthorized => {
                "your sign-in is not valid for this session any more; reload the page to sign in again"
            }
            CloseCode::VersionMismatch => {
                "this page is older or newer than the host; reload the page"
            }
            CloseCode::Malformed => {
                "the client sent a message the host could not read; reload the page"
            }
            CloseCode::SessionEnded => "the program exited; press Enter to start a new session",
            CloseCode::Replaced => "this session was opened on another terminal",
            CloseCode::HandshakeTimeout => "the greeting took too long; reconnecting",
            CloseCode::Overloaded => "the host has no room for another session; try again later",
            CloseCode::SessionLost => "this host no longer owns the session; reconnecting",
            CloseCode::SpawnFailed => {
                "the host could not start your program; ask the operator to check its logs"
            }
            CloseCode::TooManyConnections => {
                "too many terminals are open from your address; close some and reload"
            }
            CloseCode::SignedOut => {
                "you signed out, or your password was changed; reload the page to sign in again"
            }
            CloseCode::AccountDisabled => {
                "your account was disabled; ask the operator to enable it again"
            }
            CloseCode::TooManySessions => {
                "you already run the most sessions allowed; end one on /sessions, then press Enter"
            }
            CloseCode::ShareRevoked => {
                "the owner stopped sharing this session, or the link expired; ask them for a new link"
            }
        }
    }
}
