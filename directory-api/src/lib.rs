//! The directory's HTTP JSON API, defined once as types.
//!
//! Before this crate the same JSON was described five times (the
//! directory's serde structs, a hand-written OpenAPI document, the browser
//! client's reader, the end-to-end tests' `answer["…"]` lookups), and
//! nothing tied them together. Now every request and answer of every route
//! is a type here: the directory serialises them, generates its
//! `/v1/openapi.json` from them (feature `openapi`, utoipa's `ToSchema`),
//! the tests deserialise them, and the browser client's small reader is
//! held to them by a contract test that feeds it each answer serialised
//! from these types.
//!
//! Like `protocol`, this crate does no IO and builds for
//! `wasm32-unknown-unknown`: it depends on `protocol` and `serde` alone
//! (and utoipa with `serde_json` behind `openapi`, which only the directory
//! turns on). Session ids are `protocol::SessionId`, written on the wire as
//! 32 lowercase hex digits ([`session_id`]); closed sets of values are
//! enums. Every type is both `Serialize` and `Deserialize`, so a server and
//! a client, or a test on either side, use the same one.

mod hosts;
pub mod ids;
#[cfg(feature = "openapi")]
pub mod openapi;
mod recordings;
mod service;
pub mod session_id;
mod sessions;
mod settings;
mod shares;

pub use hosts::{DrainAnswer, DrainOwner, Host};
pub use ids::{
    HOST_ID_PATTERN, MAX_HOST_ID_LEN, SESSION_ID_PATTERN, SHARE_ID_PATTERN, valid_host_id,
    valid_share_id,
};
pub use recordings::{
    ExportFormat, ExportQuery, FramesQuery, MAX_FRAME_WINDOW_MS, MAX_FRAMES, MAX_RECORDING_MS,
    Recording, RecordingDetail, RecordingMarker, RecordingPolicy, RecordingPreference,
    RecordingPreferenceForm, Recordings,
};
pub use service::{
    ClientConfig, Degraded, DegradedStatus, ErrorAnswer, Healthy, HealthyStatus, HostHealth,
    LoginForm, Me, StoreKind,
};
pub use sessions::{
    EndAnswer, EndedState, Placement, PlacementRequest, RenewalRequest, Session, SessionState,
    UnreachableAnswer, UnreachableRequest,
};
pub use settings::{
    Bell, CursorStyle, DEFAULT_FONT_SIZE, FONT_SIZES, MAX_FONT_FAMILY_LEN, Prediction, Settings,
    ThemeName, valid_font_family,
};
pub use shares::{
    RedeemRequest, Redeemed, SHARE_FRAGMENT_PREFIX, Share, ShareCreated, ShareForm, ShareRequest,
    ShareState,
};

#[cfg(test)]
mod tests;
