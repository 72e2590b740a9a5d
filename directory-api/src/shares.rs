//! Share links: an owner lets another signed-in user watch one running
//! session. What the owner's page and scripts send to make, list and
//! revoke them, and what a viewer's page sends to redeem one.
//!
//! A link is `{page origin}/#share=TOKEN`: the token travels only in the
//! fragment, which browsers never send to a server, and is redeemed (in a
//! JSON body, never a URL) for an HttpOnly cookie. Only the directory's
//! answer to making a link carries the token; nothing lists it again.

use core::fmt;

use protocol::SessionId;
use serde::{Deserialize, Serialize};

/// What a link's fragment starts with; the token follows.
pub const SHARE_FRAGMENT_PREFIX: &str = "#share=";

/// `POST /v1/sessions/{id}/shares`: a share link of one of the caller's
/// running sessions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ShareRequest {
    /// Whether the viewer's keys reach the program; otherwise they only
    /// watch.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(default = false))]
    pub may_type: bool,
}

/// The answer to making a share link: the only time its token is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShareCreated {
    /// The share's id: public, for listing and revoking it.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::share_id))]
    pub id: String,
    /// The link's secret. Put it in a link's fragment and nowhere else:
    /// never in a query, a path or a log.
    pub token: String,
    /// `#share=` and the token: append it to the page's origin and `/`.
    pub link_fragment: String,
    /// When the link stops opening the session: milliseconds since the
    /// Unix epoch, on the store's clock.
    pub expires_at: i64,
    pub may_type: bool,
}

impl ShareCreated {
    /// The fragment of a link carrying `token`.
    pub fn fragment(token: &str) -> String {
        format!("{SHARE_FRAGMENT_PREFIX}{token}")
    }
}

/// Never shows the token.
impl fmt::Debug for ShareCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareCreated")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .field("may_type", &self.may_type)
            .finish_non_exhaustive()
    }
}

/// Whether a share link still opens its session, and if not, why not.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ShareState {
    /// It opens the session.
    Live,
    /// Its owner revoked it.
    Revoked,
    /// Its time ran out.
    Expired,
    /// Its session ended.
    Ended,
}

/// One of the caller's share links, as `GET /v1/shares` lists it (never
/// with its token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Share {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::share_id))]
    pub id: String,
    /// The session it shares.
    #[serde(with = "crate::session_id")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::session_id_in_answer))]
    pub session: SessionId,
    pub may_type: bool,
    /// Milliseconds since the Unix epoch, on the store's clock.
    pub created_at: i64,
    /// Milliseconds since the Unix epoch, on the store's clock.
    pub expires_at: i64,
    pub state: ShareState,
}

/// `POST /v1/shares/redeem`: the token from a link's fragment, for the
/// cookie that lets the caller open the session it shares.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    pub token: String,
}

/// Never shows the token.
impl fmt::Debug for RedeemRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedeemRequest").finish_non_exhaustive()
    }
}

/// The answer to a redeemed link: the session to open (as
/// `POST /v1/placement {"session": ...}` does), whose it is, and what the
/// viewer may do. The cookie comes with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Redeemed {
    #[serde(with = "crate::session_id")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::session_id_in_answer))]
    pub session: SessionId,
    /// The user whose session it is.
    pub owner: String,
    pub may_type: bool,
}

/// `POST /sessions/{id}/share`, the sessions page's form, as
/// `application/x-www-form-urlencoded`: the checkbox is sent (with any
/// value) only when ticked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShareForm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_type: Option<String>,
}

impl ShareForm {
    /// The checkbox's name, for the page that draws the form.
    pub const MAY_TYPE: &'static str = "may_type";
}
