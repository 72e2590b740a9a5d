//! Session recordings: what the owner's page, player and scripts ask of the
//! directory about the recordings of their own sessions, and what it
//! answers.
//!
//! A recording is named by its session's id. Hosts write it (the ticket
//! tells them to, by the deployment's policy and the owner's choice); the
//! directory lists it, replays it into frames for the player
//! (`GET /v1/recordings/{id}/frames`, a binary answer that is not JSON and
//! so has no type here), exports it and deletes it, for its owner only.

use protocol::SessionId;
use serde::{Deserialize, Serialize};

/// Whether sessions are recorded on this deployment (`--recording`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum RecordingPolicy {
    /// Nothing is recorded.
    Off,
    /// A user's new sessions are recorded once they asked for it
    /// (`PUT /v1/recordings/preference`).
    #[default]
    OptIn,
    /// Every new session is recorded, whatever its user says (audit).
    Always,
}

/// `GET /v1/recordings`: the policy, what it means for the caller, and
/// the caller's recordings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recordings {
    pub policy: RecordingPolicy,
    /// Whether the caller's new sessions are recorded: always under
    /// `always`, never under `off`, and as the caller chose under `opt-in`.
    pub record_new_sessions: bool,
    /// Newest first.
    pub recordings: Vec<Recording>,
}

/// One of the caller's recordings, as `GET /v1/recordings` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recording {
    /// The recorded session's id, which names the recording too.
    #[serde(with = "crate::session_id")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::session_id_in_answer))]
    pub session: SessionId,
    /// When recording started: milliseconds since the Unix epoch, on the
    /// store's clock.
    pub started_at_ms: i64,
    /// When a host last wrote to it, on the same clock.
    pub updated_at_ms: i64,
    /// From the start to its last event.
    pub duration_ms: u64,
    /// What it takes in the store (compressed).
    pub bytes: u64,
    /// The terminal's size when recording started.
    pub cols: u16,
    pub rows: u16,
    /// The session's title, else its program, while the session's record
    /// exists; `null` after that. Whatever the program printed: show it as
    /// text.
    pub title: Option<String>,
    /// Whether its session still runs (and so it may still grow).
    pub running: bool,
}

/// `PUT /v1/recordings/preference`: whether the caller's new sessions are
/// recorded (only where the policy is `opt-in`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecordingPreference {
    pub record_new_sessions: bool,
}

/// `POST /recordings/preference`, the recordings page's form, as
/// `application/x-www-form-urlencoded`: the checkbox is sent (with any
/// value) only when ticked, and unticked turns recording off.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordingPreferenceForm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_new_sessions: Option<String>,
}

impl RecordingPreferenceForm {
    /// The checkbox's name, for the page that draws the form.
    pub const RECORD_NEW_SESSIONS: &'static str = "record_new_sessions";
}

/// A moment worth a mark on the player's timeline: a failover, a restore,
/// or why recording stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordingMarker {
    /// Milliseconds since the recording started.
    pub at_ms: u64,
    /// What happened, in words the host wrote.
    pub text: String,
}

/// `GET /v1/recordings/{id}`: what the player needs before it asks for
/// frames.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecordingDetail {
    #[serde(with = "crate::session_id")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::session_id_in_answer))]
    pub session: SessionId,
    /// The terminal's size when recording started; the frames start at it.
    pub cols: u16,
    pub rows: u16,
    /// Milliseconds since the Unix epoch, on the store's clock.
    pub started_at_ms: i64,
    pub duration_ms: u64,
    pub bytes: u64,
    /// As in [`Recording::title`].
    pub title: Option<String>,
    /// In time order.
    pub markers: Vec<RecordingMarker>,
}

/// The most of a recording one `GET /v1/recordings/{id}/frames` replays:
/// a longer window is cut to this many milliseconds after `from_ms`.
pub const MAX_FRAME_WINDOW_MS: u64 = 120_000;

/// The most frames one window holds; the replay coalesces beyond it.
pub const MAX_FRAMES: usize = 4000;

/// The query of `GET /v1/recordings/{id}/frames`: which stretch of the
/// recording to replay, in milliseconds since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct FramesQuery {
    /// Where the window starts (0 when left out); its first frame is the
    /// whole screen at that moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)
    )]
    pub from_ms: Option<u64>,
    /// Where it ends: at most 120 s after from_ms, which is also what
    /// leaving it out asks for. Before from_ms, the window is that one
    /// moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        param(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)
    )]
    pub to_ms: Option<u64>,
}

/// The latest time a window may name: the document's integers are
/// 64-bit signed (`int64`), and no recording comes near it.
pub const MAX_RECORDING_MS: u64 = i64::MAX.unsigned_abs();

impl FramesQuery {
    /// Why this query names no window, in words for the user; `None` when
    /// it does.
    pub fn invalid(&self) -> Option<String> {
        [("from_ms", self.from_ms), ("to_ms", self.to_ms)]
            .into_iter()
            .find(|(_, ms)| ms.is_some_and(|ms| ms > MAX_RECORDING_MS))
            .map(|(name, _)| format!("{name} is beyond any recording: at most {MAX_RECORDING_MS}"))
    }

    /// The window asked for, as `(from, to)` with `from <= to` and at most
    /// [`MAX_FRAME_WINDOW_MS`] between them.
    pub fn window(self) -> (u64, u64) {
        let from = self.from_ms.unwrap_or(0);
        let longest = from.saturating_add(MAX_FRAME_WINDOW_MS);
        let to = self.to_ms.unwrap_or(longest).clamp(from, longest);
        (from, to)
    }
}

/// What a recording is exported as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// asciicast v2 (asciinema's `.cast`).
    #[default]
    Cast,
    /// asciicast v3.
    Cast3,
    /// The text the program wrote, without its escape sequences.
    Txt,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 3] = [ExportFormat::Cast, ExportFormat::Cast3, ExportFormat::Txt];

    /// The name the query and the links use.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Cast => "cast",
            ExportFormat::Cast3 => "cast3",
            ExportFormat::Txt => "txt",
        }
    }
}

/// The query of `GET /v1/recordings/{id}/export`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ExportQuery {
    /// cast (asciicast v2, the default), cast3 (asciicast v3) or txt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(inline))]
    pub format: Option<ExportFormat>,
}
