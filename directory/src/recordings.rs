//! Session recordings over HTTP, for their owners: the list, a recording's
//! markers, its frames for the page's player, its export as asciicast or
//! text, deleting it, the owner's choice to be recorded, and the sweep
//! that deletes recordings past the retention.
//!
//! Hosts write recordings (the store's `RecordingRecord` and its blocks),
//! when an owner's ticket tells them to (`sessions.rs`); the directory
//! only reads and deletes them. It replays them with the host's own code
//! (`host_server::recording`): the frames the player draws come from the
//! same emulator that drew the live session, and an export is written
//! the way the host would. Decoding and replaying run on blocking threads,
//! never on the async runtime: a replay of a long recording is seconds of
//! CPU.
//!
//! A recording is its owner's alone. Another user's, or one that does not
//! exist, answers the same 404, and a share cookie (which lets its holder
//! watch a live session) grants nothing here. A block that cannot be
//! decoded (damaged, or written by a newer host) is skipped and logged with
//! the session's id: the rest of the recording still plays and exports.
//!
//! An export is streamed: blocks are read a page at a time and the
//! exporter's text is sent as it comes, so a recording of any size never
//! sits whole in memory. Replaying for frames or markers does load every
//! event, which `--recording-max-mb` bounds.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use directory_api::openapi::SessionPath;
use directory_api::{
    ErrorAnswer, ExportFormat, ExportQuery, FramesQuery, MAX_FRAMES, Recording, RecordingDetail,
    RecordingMarker, RecordingPolicy, RecordingPreference, Recordings,
};
use host_server::recording::cast::{Exporter, Format, Header};
use host_server::recording::replay::{Playhead, encode_window};
use host_server::recording::{Event, TimedEvent, decode_block};
use protocol::{SessionId, Size};
use store::{
    Millis, RecordingBlock, RecordingRecord, SessionRecord, SessionState, Store, StoreError,
};

use crate::edge::AllowedOrigin;
use crate::error::{AppError, JsonObject, object_body};
use crate::sessions::parse_session_id;
use crate::signin::SignedIn;
use crate::state::AppState;
use crate::views::utc_minute;

/// Blocks read from the store at once. A host seals a block at a few
/// hundred KiB of output at most, so a page is a few MiB decoded.
const BLOCKS_PER_PAGE: u32 = 16;

/// How often the retention sweep runs (and once at start).
pub const SWEEP_EVERY: Duration = Duration::from_secs(600);

/// The answer for a recording that is missing or not the caller's.
pub fn unknown_recording(id: SessionId) -> AppError {
    AppError::NotFound(format!(
        "you have no recording {id}; GET /v1/recordings lists yours"
    ))
}

/// What a listed recording calls its session: the title, else the
/// program's name.
fn session_title(session: &SessionRecord) -> String {
    session.title.clone().unwrap_or_else(|| {
        let program = session.program.rsplit('/').next().unwrap_or_default();
        program.to_owned()
    })
}

/// The session id of a recording read from the store.
fn stored_id(recording: &RecordingRecord) -> Result<SessionId, AppError> {
    recording.session.parse().map_err(|_| {
        AppError::Internal(format!(
            "the store holds a recording of the unusable session id {:?}",
            recording.session
        ))
    })
}

/// The policy, what it means for `user`, and `user`'s recordings, newest
/// first: what `GET /v1/recordings` answers and the page shows.
pub async fn recordings_of(state: &AppState, user: &str) -> Result<Recordings, AppError> {
    let record_new_sessions = state.records_new_sessions(user).await?;
    let recordings = state.store.list_recordings(user).await?;
    let sessions: std::collections::HashMap<String, SessionRecord> = if recordings.is_empty() {
        Default::default()
    } else {
        state
            .store
            .list_sessions(Some(user))
            .await?
            .into_iter()
            .filter(|session| session.owner == user)
            .map(|session| (session.id.clone(), session))
            .collect()
    };
    let recordings = recordings
        .into_iter()
        .filter(|recording| recording.owner == user)
        .map(|recording| {
            let session = sessions.get(&recording.session);
            Ok(Recording {
                session: stored_id(&recording)?,
                started_at_ms: recording.started_at,
                updated_at_ms: recording.updated_at,
                duration_ms: recording.duration_ms,
                bytes: recording.bytes,
                cols: recording.cols,
                rows: recording.rows,
                title: session.map(session_title),
                running: session.is_some_and(|session| session.state == SessionState::Running),
            })
        })
        .collect::<Result<_, AppError>>()?;
    Ok(Recordings {
        policy: state.config.recording.policy,
        record_new_sessions,
        recordings,
    })
}

/// `user`'s recording `id` (a path's text); any other answers exactly as
/// an unknown one.
async fn own_recording(
    state: &AppState,
    user: &str,
    id: &str,
) -> Result<(SessionId, RecordingRecord), AppError> {
    let id = parse_session_id(id)?;
    let recording = state
        .store
        .get_recording(&id.to_string())
        .await?
        .filter(|recording| recording.owner == user)
        .ok_or_else(|| unknown_recording(id))?;
    Ok((id, recording))
}

/// The title of a recording's session, while its record exists.
async fn title_of(
    state: &AppState,
    recording: &RecordingRecord,
) -> Result<Option<String>, AppError> {
    Ok(state
        .store
        .get_session(&recording.session)
        .await?
        .filter(|session| session.owner == recording.owner)
        .as_ref()
        .map(session_title))
}

/// Records `user`'s new sessions from now on, or stops; only under the
/// `opt-in` policy.
pub async fn set_preference(state: &AppState, user: &str, on: bool) -> Result<(), AppError> {
    match state.config.recording.policy {
        RecordingPolicy::OptIn => {}
        RecordingPolicy::Off => {
            return Err(AppError::Conflict(
                "recording is off on this deployment: there is nothing to turn on".to_owned(),
            ));
        }
        RecordingPolicy::Always => {
            return Err(AppError::Conflict(
                "every session is recorded on this deployment (audit): recording cannot be \
                 turned off"
                    .to_owned(),
            ));
        }
    }
    match state.store.set_recording_opt_in(user, on).await {
        Ok(()) => {}
        // A live sign-in names an account; one deleted since is signed out.
        Err(StoreError::NotFound(_)) => return Err(AppError::NotSignedIn),
        Err(error) => return Err(error.into()),
    }
    tracing::info!(%user, on, "recording of new sessions chosen");
    Ok(())
}

/// Deletes `user`'s recording `id` (a path's text) and all its blocks.
pub async fn delete_recording(state: &AppState, user: &str, id: &str) -> Result<(), AppError> {
    let id = parse_session_id(id)?;
    match state.store.delete_recording(user, &id.to_string()).await {
        Ok(()) => {
            forget_playheads(&id.to_string());
            tracing::info!(session = %id, owner = %user, "deleted a recording");
            Ok(())
        }
        Err(StoreError::NotFound(_)) => Err(unknown_recording(id)),
        Err(error) => Err(error.into()),
    }
}

/// Replays running at once in this directory, whoever asks: each decodes
/// and replays a whole recording (up to `--recording-max-mb`), so a user
/// seeking over and over queues behind this instead of taking every core
/// from the sign-ins and placements the directory also answers.
static REPLAYS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Runs `work` on a blocking thread: decoding and replaying are CPU.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| AppError::Internal(format!("replaying a recording failed: {error}")))
}

/// Replays left where their last window ended, newest first: a player
/// playing on asks for the minute after the one it has, and is served
/// from here instead of a replay from the recording's start. As many as
/// replays run at once, so a directory holds at most twice as many
/// emulators as [`REPLAYS`] lets run.
static PLAYHEADS: std::sync::Mutex<Vec<(String, Playhead)>> = std::sync::Mutex::new(Vec::new());
const PLAYHEADS_KEPT: usize = 2;

fn playheads() -> std::sync::MutexGuard<'static, Vec<(String, Playhead)>> {
    PLAYHEADS.lock().unwrap_or_else(|e| e.into_inner())
}

/// A playhead of `session` that can serve `events` from `from_ms`, taken
/// out of the cache, or a new one at the start.
fn playhead_for(session: &str, size: Size, events: &[TimedEvent], from_ms: u64) -> Playhead {
    let mut kept = playheads();
    match kept
        .iter()
        .position(|(s, p)| s == session && p.serves(events, from_ms))
    {
        Some(i) => kept.remove(i).1,
        None => Playhead::new(size),
    }
}

fn keep_playhead(session: String, playhead: Playhead) {
    let mut kept = playheads();
    kept.insert(0, (session, playhead));
    kept.truncate(PLAYHEADS_KEPT);
}

/// A deleted recording leaves nothing of itself in memory either.
fn forget_playheads(session: &str) {
    playheads().retain(|(s, _)| s != session);
}

/// Waits for a turn among [`REPLAYS`].
async fn replay_turn() -> Result<tokio::sync::SemaphorePermit<'static>, AppError> {
    REPLAYS
        .acquire()
        .await
        .map_err(|error| AppError::Internal(format!("the replay queue is closed: {error}")))
}

/// The events of `blocks`, in order. A block that cannot be decoded is
/// skipped and logged: the rest of the recording still plays.
fn decode_blocks(session: &str, blocks: &[RecordingBlock]) -> Vec<TimedEvent> {
    let mut events = Vec::new();
    for block in blocks {
        match decode_block(&block.data) {
            Ok(decoded) => events.extend(decoded),
            Err(error) => tracing::warn!(
                %session, seq = block.seq, %error,
                "skipped a block of the recording that cannot be read"
            ),
        }
    }
    events
}

/// The next page of `session`'s blocks after `after`; empty at the end.
async fn next_page(
    store: &dyn Store,
    session: &str,
    after: Option<u64>,
) -> Result<Vec<RecordingBlock>, StoreError> {
    let blocks = store
        .recording_blocks(session, after, BLOCKS_PER_PAGE)
        .await?;
    // Pages go forward; a store that answered otherwise would loop.
    match (after, blocks.last()) {
        (Some(after), Some(last)) if last.seq <= after => Ok(Vec::new()),
        _ => Ok(blocks),
    }
}

/// Reads every block of `session`, a page at a time, and folds each page's
/// events into `acc` on a blocking thread.
async fn fold_events<A: Send + 'static>(
    state: &AppState,
    session: &str,
    mut acc: A,
    fold: fn(&mut A, Vec<TimedEvent>),
) -> Result<A, AppError> {
    let mut after = None;
    loop {
        let blocks = next_page(&*state.store, session, after).await?;
        let Some(last) = blocks.last() else {
            return Ok(acc);
        };
        after = Some(last.seq);
        let session = session.to_owned();
        acc = blocking(move || {
            fold(&mut acc, decode_blocks(&session, &blocks));
            acc
        })
        .await?;
    }
}

/// The caller's recordings, newest first, and whether new sessions are
/// recorded
///
/// policy is the deployment's (--recording); record_new_sessions says what
/// it means for the caller. A recording's title is its session's title
/// (else its program) while the session's record exists, null after.
#[utoipa::path(
    get,
    path = "/recordings",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "OK", body = Recordings),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn list_json(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Recordings>, AppError> {
    recordings_of(&state, &signed_in.user).await.map(Json)
}

/// Choose whether the caller's new sessions are recorded
///
/// Only where the policy is opt-in; sessions already running keep what
/// they started with. Needs an allowed Origin.
#[utoipa::path(
    put,
    path = "/recordings/preference",
    security(("loginCookie" = [])),
    request_body = RecordingPreference,
    responses(
        (status = 204, description = "saved"),
        (status = 400, description = "malformed body", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 403, description = "the Origin is missing or not allowed", body = ErrorAnswer),
        (status = 409, description = "the policy is off or always, so there is no choice to make", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn put_preference(
    State(state): State<AppState>,
    _origin: AllowedOrigin,
    signed_in: SignedIn,
    body: Result<Json<JsonObject>, JsonRejection>,
) -> Result<StatusCode, AppError> {
    let preference: RecordingPreference = object_body(body)?;
    set_preference(&state, &signed_in.user, preference.record_new_sessions).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One of the caller's recordings: its size, length and markers
///
/// Markers (failovers, restores, where recording stopped) come from
/// reading the whole recording; a damaged block is skipped.
#[utoipa::path(
    get,
    path = "/recordings/{id}",
    params(SessionPath),
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "OK", body = RecordingDetail),
        (status = 400, description = "malformed session id", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 404, description = "the caller has no such recording", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn detail_json(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Json<RecordingDetail>, AppError> {
    let (id, recording) = own_recording(&state, &signed_in.user, &id).await?;
    let title = title_of(&state, &recording).await?;
    let _turn = replay_turn().await?;
    let markers = fold_events(
        &state,
        &recording.session,
        Vec::new(),
        |markers: &mut Vec<RecordingMarker>, events| {
            markers.extend(events.into_iter().filter_map(|event| match event.event {
                Event::Marker(text) => Some(RecordingMarker {
                    at_ms: event.at_ms,
                    text,
                }),
                Event::Output(_) | Event::Resize(_) => None,
            }));
        },
    )
    .await?;
    Ok(Json(RecordingDetail {
        session: id,
        cols: recording.cols,
        rows: recording.rows,
        started_at_ms: recording.started_at,
        duration_ms: recording.duration_ms,
        bytes: recording.bytes,
        title,
        markers,
    }))
}

/// A stretch of one of the caller's recordings as frames, for the player
///
/// The recording replayed through the host's emulator, from from_ms (0)
/// to to_ms (at most 120 s later, also when left out). The body is binary:
/// the window's end time (u64 little-endian; the next window starts
/// there), then per frame its time in milliseconds since the recording
/// started (u64 LE), its length (u32 LE) and the frame as the live
/// terminal's WebSocket carries it. The first frame is the whole screen at
/// from_ms; at most 4000 frames. Never cached.
#[utoipa::path(
    get,
    path = "/recordings/{id}/frames",
    params(SessionPath, FramesQuery),
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "the window, as bytes (above)", content_type = "application/octet-stream", body = String, headers(("Cache-Control" = String))),
        (status = 400, description = "malformed session id or query", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 404, description = "the caller has no such recording", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn frames(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    query: Result<Query<FramesQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(bad_query)?;
    if let Some(reason) = query.invalid() {
        return Err(AppError::BadRequest(format!("invalid query: {reason}")));
    }
    let (_, recording) = own_recording(&state, &signed_in.user, &id).await?;
    let (from_ms, to_ms) = query.window();
    let _turn = replay_turn().await?;
    let events = fold_events(
        &state,
        &recording.session,
        Vec::new(),
        |all: &mut Vec<TimedEvent>, events| all.extend(events),
    )
    .await?;
    let size = Size {
        cols: recording.cols,
        rows: recording.rows,
    };
    let session = recording.session.clone();
    let body = blocking(move || {
        let mut playhead = playhead_for(&session, size, &events, from_ms);
        let window = playhead.window(&events, from_ms, to_ms, MAX_FRAMES);
        keep_playhead(session, playhead);
        encode_window(&window)
    })
    .await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

fn bad_query(rejection: QueryRejection) -> AppError {
    AppError::BadRequest(format!("invalid query: {}", rejection.body_text()))
}

/// The exporter's format for the API's name of it.
fn export_format(format: ExportFormat) -> Format {
    match format {
        ExportFormat::Cast => Format::CastV2,
        ExportFormat::Cast3 => Format::CastV3,
        ExportFormat::Txt => Format::Text,
    }
}

/// `thinline-<first 8 hex digits of the session>-<YYYYMMDD-HHMM, UTC, of
/// the start>.<extension>`: plain ASCII, so it needs no quoting beyond
/// the header's quotes.
pub fn export_file_name(session: SessionId, started_at: Millis, extension: &str) -> String {
    let id = session.to_string();
    let start: String = utc_minute(started_at)
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | ':' => None,
            c => Some(c),
        })
        .collect();
    format!("thinline-{}-{start}.{extension}", &id[..8])
}

/// One of the caller's recordings as a file: asciicast v2, v3 or text
///
/// format cast (the default) is asciicast v2, cast3 asciicast v3 (both
/// for asciinema and its player), txt the text as the terminal's
/// scrollback and last screen read, without colours. Sent as an
/// attachment named thinline-SESSION8-YYYYMMDD-HHMM.cast or .txt (the
/// start, UTC), streamed as it is read. A damaged block is skipped.
#[utoipa::path(
    get,
    path = "/recordings/{id}/export",
    params(SessionPath, ExportQuery),
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "the file", content(
            (String = "application/x-asciicast"),
            (String = "text/plain"),
        ), headers(("Content-Disposition" = String), ("Cache-Control" = String))),
        (status = 400, description = "malformed session id or format", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 404, description = "the caller has no such recording", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(bad_query)?;
    let format = export_format(query.format.unwrap_or_default());
    let (id, recording) = own_recording(&state, &signed_in.user, &id).await?;
    let header = Header {
        cols: recording.cols,
        rows: recording.rows,
        started_at_unix_ms: u64::try_from(recording.started_at).unwrap_or(0),
        title: title_of(&state, &recording).await?,
    };
    // The first page is read before answering, so that a store that is
    // away is a 503 rather than a file cut short.
    let first_page = next_page(&*state.store, &recording.session, None).await?;
    let (exporter, first) = Exporter::new(format, &header);
    let export = ExportStream {
        store: state.store.clone(),
        session: recording.session.clone(),
        exporter: Some(exporter),
        pending: Some(first_page),
        after: None,
        first: Some(first),
    };
    let body = Body::from_stream(futures_util::stream::unfold(export, ExportStream::next));
    let disposition = format!(
        "attachment; filename=\"{}\"",
        export_file_name(id, recording.started_at, format.extension())
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    tracing::info!(session = %id, owner = %signed_in.user, ?format, "exporting a recording");
    Ok(response)
}

/// An export under way: where it is in the recording, and the exporter
/// that carries what it has seen (a character split between blocks, the
/// text export's screen).
struct ExportStream {
    store: Arc<dyn Store>,
    session: String,
    /// `None` once finished, or cut short by an error.
    exporter: Option<Exporter>,
    /// The first page, read before the answer started.
    pending: Option<Vec<RecordingBlock>>,
    /// The `seq` of the last block exported.
    after: Option<u64>,
    /// The export's first text (a cast's header line), not yet sent.
    first: Option<String>,
}

impl ExportStream {
    /// The next piece of the file, until the exporter has finished; an
    /// error cuts the answer short, so the client sees a broken download
    /// rather than a file that looks whole.
    async fn next(mut self) -> Option<(Result<Bytes, std::io::Error>, ExportStream)> {
        if let Some(first) = self.first.take().filter(|first| !first.is_empty()) {
            return Some((Ok(Bytes::from(first)), self));
        }
        loop {
            let exporter = self.exporter.take()?;
            let blocks = match self.pending.take() {
                Some(blocks) => blocks,
                None => match next_page(&*self.store, &self.session, self.after).await {
                    Ok(blocks) => blocks,
                    Err(error) => {
                        tracing::warn!(session = %self.session, %error, "an export was cut short");
                        return Some((Err(std::io::Error::other(error.to_string())), self));
                    }
                },
            };
            let Some(last) = blocks.last() else {
                let text = match blocking(move || exporter.finish()).await {
                    Ok(text) => text,
                    Err(error) => {
                        return Some((Err(std::io::Error::other(error.to_string())), self));
                    }
                };
                return Some((Ok(Bytes::from(text)), self));
            };
            self.after = Some(last.seq);
            let session = self.session.clone();
            let done = blocking(move || {
                let mut exporter = exporter;
                let mut text = String::new();
                for event in decode_blocks(&session, &blocks) {
                    text.push_str(&exporter.event(&event));
                }
                (exporter, text)
            })
            .await;
            match done {
                Ok((exporter, text)) => {
                    self.exporter = Some(exporter);
                    if !text.is_empty() {
                        return Some((Ok(Bytes::from(text)), self));
                    }
                }
                Err(error) => {
                    tracing::warn!(session = %self.session, %error, "an export was cut short");
                    return Some((Err(std::io::Error::other(error.to_string())), self));
                }
            }
        }
    }
}

/// Delete one of the caller's recordings
///
/// With all its blocks, for good. A session still recording goes on
/// without one. Needs an allowed Origin.
#[utoipa::path(
    post,
    path = "/recordings/{id}/delete",
    params(SessionPath),
    security(("loginCookie" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 400, description = "malformed session id", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 403, description = "the Origin is missing or not allowed", body = ErrorAnswer),
        (status = 404, description = "the caller has no such recording", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn delete_json(
    State(state): State<AppState>,
    _origin: AllowedOrigin,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    delete_recording(&state, &signed_in.user, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes every recording last written more than `retention` ago by the
/// store's clock; says how many.
pub async fn sweep(store: &dyn Store, retention: Duration) -> store::Result<u64> {
    let now = store.now().await?;
    let retention_ms = Millis::try_from(retention.as_millis()).unwrap_or(Millis::MAX);
    store
        .delete_recordings_before(now.saturating_sub(retention_ms))
        .await
}

/// The retention sweep: at once, then every [`SWEEP_EVERY`], until the
/// task is dropped. A failed sweep is logged and tried again next round.
/// Every replica runs one; deleting what another already deleted is no
/// error.
pub async fn keep_retention(store: Arc<dyn Store>, retention: Duration) {
    let mut rounds = tokio::time::interval(SWEEP_EVERY);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        rounds.tick().await;
        match sweep(&*store, retention).await {
            Ok(0) => tracing::debug!("no recording is past the retention"),
            Ok(deleted) => tracing::info!(
                deleted,
                retention_days = retention.as_secs() / 86_400,
                "deleted recordings past the retention"
            ),
            Err(error) => tracing::warn!(
                %error,
                "could not delete recordings past the retention; trying again in 10 minutes"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_player_playing_on_is_served_from_where_its_last_window_ended() {
        let size = Size { cols: 20, rows: 4 };
        let events: Vec<TimedEvent> = (0..10u64)
            .map(|i| TimedEvent {
                at_ms: i * 1_000,
                event: Event::Output(format!("{i}\r\n").into_bytes()),
            })
            .collect();
        let mut first = playhead_for("a", size, &events, 0);
        first.window(&events, 0, 5_000, 100);
        keep_playhead("a".into(), first);
        // Backward: a new one, from the start (it serves 0); the one left
        // at 5 s stays kept.
        assert!(playhead_for("a", size, &events, 1_000).serves(&events, 0));
        assert_eq!(playheads().len(), 1);
        // Forward: the one it left (it no longer serves 0), taken out.
        let on = playhead_for("a", size, &events, 6_000);
        assert!(on.serves(&events, 6_000) && !on.serves(&events, 0));
        assert!(playheads().is_empty());
        keep_playhead("a".into(), on);
        // At most two are kept, the newest; a deleted recording's go.
        for session in ["b", "c"] {
            keep_playhead(session.into(), Playhead::new(size));
        }
        assert_eq!(
            playheads()
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>(),
            ["c", "b"]
        );
        forget_playheads("c");
        assert_eq!(playheads().len(), 1);
    }

    #[test]
    fn export_files_are_named_by_session_and_start() {
        let id: SessionId = "0123456789abcdef0123456789abcdef".parse().unwrap();
        // 2024-02-29T23:59:30Z.
        assert_eq!(
            export_file_name(id, 1_709_251_170_000, "cast"),
            "thinline-01234567-20240229-2359.cast"
        );
        assert_eq!(
            export_file_name(id, 0, "txt"),
            "thinline-01234567-19700101-0000.txt"
        );
    }

    #[test]
    fn damaged_blocks_are_skipped_and_the_rest_kept() {
        let good = |at_ms, text: &str| RecordingBlock {
            seq: at_ms,
            start_ms: at_ms,
            end_ms: at_ms,
            data: host_server::recording::encode_block(&[TimedEvent {
                at_ms,
                event: Event::Output(text.as_bytes().to_vec()),
            }]),
        };
        let damaged = RecordingBlock {
            seq: 2,
            start_ms: 2,
            end_ms: 2,
            data: vec![1, 0xff, 0xff, 0xff, 0x7f, 9],
        };
        let newer = RecordingBlock {
            data: vec![99, 1, 2, 3],
            ..damaged.clone()
        };
        let events = decode_blocks("s", &[good(1, "a"), damaged, newer, good(3, "b")]);
        assert_eq!(
            events.iter().map(|event| event.at_ms).collect::<Vec<_>>(),
            [1, 3]
        );
    }
}
