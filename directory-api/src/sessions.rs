//! Placement, unreachable-owner reports, the session list and ending a
//! session: what a signed-in user's page and the tests say to the
//! directory about sessions, and what it answers.

use protocol::SessionId;
use serde::{Deserialize, Serialize};

/// `POST /v1/placement`: where to open a session.
///
/// Both members are optional: `{}` asks for the user's most recently
/// active running session (hot desking) or a new one; `{"new": true}`
/// for a new one; `{"session": ID}` for that one. A session together with
/// `new: true` is refused (400), and so is any other member: a client that
/// misspells a member must hear about it, not get a default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PlacementRequest {
    /// The session to open; `None` with `new` unset picks the user's most
    /// recently active running session.
    #[serde(
        default,
        with = "crate::session_id::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::session_id_in_request_or_null))]
    pub session: Option<SessionId>,
    /// Start a new session even if the user has running ones.
    #[serde(default, skip_serializing_if = "is_false")]
    #[cfg_attr(feature = "openapi", schema(default = false))]
    pub new: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Where a session lives, with the ticket to attach to it there: the
/// answer to a placement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Placement {
    /// Minted by the directory for a new session.
    #[serde(with = "crate::session_id")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::session_id_in_answer))]
    pub session: SessionId,
    /// The host's id.
    pub host: String,
    /// The host's HTTP url; its WebSocket is `/ws` there.
    pub url: String,
    /// The session's epoch at `host`; 1 for a new session.
    pub epoch: u64,
    /// For the WebSocket hello, and nowhere else: never put it in a URL.
    pub ticket: String,
    /// How long the ticket is valid from now.
    pub ticket_expires_in_ms: u64,
}

/// `POST /v1/sessions/{id}/unreachable`: the client cannot reach `host`,
/// which it believed served the session at `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UnreachableRequest {
    /// The host the client cannot reach.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::host_id))]
    pub host: String,
    /// The highest epoch the client has seen.
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 18_446_744_073_709_551_615_u64)
    )]
    pub epoch: u64,
}

/// `POST /v1/sessions/{id}/ticket`: a fresh ticket for the host the client
/// is attached to right now, at the epoch it was welcomed at.
///
/// A live page renews its ticket this way, so that a reconnect after a
/// drop needs no directory. Unlike a placement, a renewal never moves the
/// session off the host the page is attached to: a working connection is
/// better evidence that the host lives than any lease, whose renewal a busy
/// store may only have delayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenewalRequest {
    /// The host the client is attached to.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::host_id))]
    pub host: String,
    /// The epoch that host welcomed the client at.
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 18_446_744_073_709_551_615_u64)
    )]
    pub epoch: u64,
}

/// The directory's decision on an unreachable owner, with a fresh ticket
/// for the host it names. `decision` tells the two apart on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum UnreachableAnswer {
    /// The owner's lease is live and nothing shows it is gone: retry it
    /// after `retry_after_ms`, and report again if it still fails.
    RetryOwner {
        host: String,
        url: String,
        epoch: u64,
        retry_after_ms: u64,
        /// For the host named here, at this epoch.
        ticket: String,
        ticket_expires_in_ms: u64,
    },
    /// The session is (now) served by `host` at `epoch`.
    Moved {
        host: String,
        url: String,
        epoch: u64,
        /// For the host named here, at this epoch.
        ticket: String,
        ticket_expires_in_ms: u64,
    },
}

/// Whether a session's program runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SessionState {
    Running,
    Ended,
}

/// One of the caller's sessions, as `GET /v1/sessions` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    #[serde(with = "crate::session_id")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::session_id_in_answer))]
    pub id: SessionId,
    pub owner: String,
    /// The host serving it (or that served it last).
    pub owner_host: String,
    pub epoch: u64,
    pub state: SessionState,
    /// What its program set as the terminal's title; `null` if nothing.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub title: Option<String>,
    /// The command in the foreground; `null` at a shell's prompt.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub foreground: Option<String>,
    /// The working directory it restarts in after a failover.
    pub cwd: String,
    /// Milliseconds since the Unix epoch, on the store's clock.
    pub created_at: i64,
    /// When a client last typed or resized: milliseconds since the Unix
    /// epoch, on the store's clock.
    pub last_active: i64,
}

/// `state` of an [`EndAnswer`]: always `ended`, the one value an ended
/// session can have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EndedState {
    #[default]
    Ended,
}

/// The answer to `POST /v1/sessions/{id}/end`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndAnswer {
    #[serde(with = "crate::session_id")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::session_id_in_answer))]
    pub session: SessionId,
    pub state: EndedState,
    /// The epoch after ending, which fences the host that served it.
    pub epoch: u64,
}
