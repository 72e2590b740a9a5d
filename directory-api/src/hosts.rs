//! The host registry as the directory shows it, and operators' drains.

use serde::{Deserialize, Serialize};

/// Who wants a host drained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DrainOwner {
    /// An operator's drain, kept until lifted.
    Operator,
    /// The host's process is stopping; its next start serves again.
    Shutdown,
}

/// One registered host, live or not, as `GET /v1/hosts` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Host {
    pub id: String,
    pub url: String,
    /// Its running sessions, as it last reported them.
    pub load: u32,
    /// The host takes no sessions and is moving its own elsewhere.
    pub draining: bool,
    /// Who wants it drained; `null` while it serves.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub drain: Option<DrainOwner>,
    /// When its lease runs out: milliseconds since the Unix epoch, on the
    /// store's clock (as every time in this API).
    pub lease_expires_at: i64,
    /// `lease_expires_at` is after the store's now.
    pub live: bool,
}

/// The answer to an operator's drain or its lifting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DrainAnswer {
    pub id: String,
    /// Whether an operator's drain now stands.
    pub drain_requested: bool,
}
