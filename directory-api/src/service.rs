//! The rest of the directory's answers: errors, who is signed in, the
//! replicas, health, the sign-in form, and the one thing the directory
//! reads from a host.

use core::fmt;

use serde::{Deserialize, Serialize};

/// Every refusal's body, whatever the status: what went wrong and what to
/// do, in words for the person who sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorAnswer {
    /// What went wrong and what to do.
    pub error: String,
}

/// `GET /v1/me`: who is signed in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub user: String,
}

/// `GET /v1/config`: what the browser client needs to know of the
/// service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientConfig {
    /// Every directory replica's url: this replica first, then its peers.
    pub directories: Vec<String>,
}

/// The kind of store behind a directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Sqlite,
    Postgres,
    Memory,
}

impl StoreKind {
    /// The kind a store calls itself (`Store::kind`), if it is one of
    /// these. Read through serde, so the names are written once, above.
    pub fn from_name(name: &str) -> Option<StoreKind> {
        use serde::de::IntoDeserializer as _;
        let text: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
            name.into_deserializer();
        StoreKind::deserialize(text).ok()
    }
}

/// `status` of a [`Healthy`] answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HealthyStatus {
    #[default]
    Ok,
}

/// `GET /healthz` (200): the directory and its store answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Healthy {
    pub status: HealthyStatus,
    pub store: StoreKind,
}

/// `status` of a [`Degraded`] answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum DegradedStatus {
    #[default]
    Degraded,
}

/// `GET /healthz` (503): the directory runs but its store does not answer,
/// so it can place and move nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Degraded {
    pub status: DegradedStatus,
    pub store: StoreKind,
    pub error: String,
}

/// The one member of a host's `GET /healthz` answer the directory relies
/// on: which host answered. Probing an owner's address and finding another
/// host there is proof the owner is gone; the other members (sessions,
/// lease, limits) are for operators and are ignored here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHealth {
    pub host: String,
}

/// `POST /login`, as `application/x-www-form-urlencoded`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginForm {
    pub user: String,
    #[cfg_attr(feature = "openapi", schema(format = Password))]
    pub password: String,
}

impl LoginForm {
    /// The form's field names, for the page that draws the form: the same
    /// names this type reads.
    pub const USER: &'static str = "user";
    pub const PASSWORD: &'static str = "password";
}

/// Never shows the password.
impl fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginForm")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}
