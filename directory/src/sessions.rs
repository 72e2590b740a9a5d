//! Sessions over HTTP: placement, unreachable-owner reports and the list.
//!
//! This is the IO shell around [`FailoverPlan`]: it reads the session, the
//! hosts and the backend's clock, probes the owner when the plan asks, and
//! carries out a move with the store's fenced `take_over`. A takeover that
//! is fenced means another request (here or on another replica) moved the
//! session first; the shell reads again and answers the winner, so clients
//! asking at the same moment all get the same host and the epoch rises by
//! exactly one.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use store::{Millis, SessionRecord, SessionState, StoreError};

use crate::AppState;
use crate::error::AppError;
use crate::failover::{
    Decision, FailoverPlan, ProbeOutcome, Target, UnreachableReport, least_loaded,
};
use crate::hosts::check_host_id;
use crate::probe::probe_owner;

/// How many times one request re-reads after losing a takeover race. Each
/// loss means the session moved, so the next read normally answers; more
/// losses in a row mean hosts are dying faster than we can move sessions.
const MOVE_ATTEMPTS: usize = 4;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementRequest {
    #[serde(default)]
    pub session: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PlacementAnswer {
    /// The session the host serves, or `None` for a new one.
    pub session: Option<String>,
    pub host: String,
    pub url: String,
    /// The session's epoch at `host`, or `None` for a new one.
    pub epoch: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnreachableRequest {
    pub host: String,
    pub epoch: u64,
}

#[derive(Debug, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum UnreachableAnswer {
    /// The owner's lease is live and nothing shows it is gone: retry it
    /// after `retry_after_ms`, and report again if it still fails.
    RetryOwner {
        host: String,
        url: String,
        epoch: u64,
        retry_after_ms: u64,
    },
    /// The session is (now) served by `host` at `epoch`.
    Moved {
        host: String,
        url: String,
        epoch: u64,
    },
}

#[derive(Debug, Serialize)]
pub struct SessionView {
    pub id: String,
    pub owner: String,
    pub owner_host: String,
    pub epoch: u64,
    pub state: &'static str,
    pub title: Option<String>,
    pub foreground: Option<String>,
    pub cwd: String,
    pub created_at: Millis,
    pub last_active: Millis,
}

impl From<SessionRecord> for SessionView {
    fn from(record: SessionRecord) -> SessionView {
        SessionView {
            id: record.id,
            owner: record.owner,
            owner_host: record.owner_host,
            epoch: record.epoch,
            state: match record.state {
                SessionState::Running => "running",
                SessionState::Ended => "ended",
            },
            title: record.title,
            foreground: record.foreground,
            cwd: record.cwd,
            created_at: record.created_at,
            last_active: record.last_active,
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub owner: Option<String>,
}

/// `POST /v1/placement`
pub async fn placement(
    State(state): State<AppState>,
    body: Result<Json<PlacementRequest>, JsonRejection>,
) -> Result<Json<PlacementAnswer>, AppError> {
    let Json(request) = body.map_err(AppError::from_json)?;
    let record = match &request.session {
        Some(id) => {
            let id = check_session_id(id)?;
            state.store.get_session(&id).await?
        }
        None => None,
    };
    if let Some(record) = record.filter(|r| r.state == SessionState::Running) {
        let id = record.id.clone();
        let resolved = resolve(&state, record, None).await?;
        let (target, epoch) = resolved.into_target();
        return Ok(Json(PlacementAnswer {
            session: Some(id),
            host: target.host,
            url: target.url,
            epoch: Some(epoch),
        }));
    }
    let hosts = state.store.list_hosts().await?;
    let now = state.store.now().await?;
    let host = least_loaded(&hosts, now, None).ok_or(AppError::NoHealthyHost)?;
    Ok(Json(PlacementAnswer {
        session: None,
        host: host.id.clone(),
        url: host.url.clone(),
        epoch: None,
    }))
}

/// `POST /v1/sessions/{id}/unreachable`
pub async fn unreachable(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<UnreachableRequest>, JsonRejection>,
) -> Result<Json<UnreachableAnswer>, AppError> {
    let Json(request) = body.map_err(AppError::from_json)?;
    let id = check_session_id(&id)?;
    check_host_id(&request.host)?;
    let record = state
        .store
        .get_session(&id)
        .await?
        .ok_or_else(|| unknown_session(&id))?;
    let report = UnreachableReport {
        host: request.host,
        epoch: request.epoch,
    };
    let answer = match resolve(&state, record, Some(&report)).await? {
        Resolved::Retry(target, epoch) => UnreachableAnswer::RetryOwner {
            host: target.host,
            url: target.url,
            epoch,
            retry_after_ms: u64::try_from(state.config.retry_after.as_millis()).unwrap_or(u64::MAX),
        },
        Resolved::Current(target, epoch) | Resolved::Moved(target, epoch) => {
            UnreachableAnswer::Moved {
                host: target.host,
                url: target.url,
                epoch,
            }
        }
    };
    Ok(Json(answer))
}

/// `GET /v1/sessions[?owner=USER]`
pub async fn list_sessions(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<SessionView>>, AppError> {
    let sessions = state.store.list_sessions(query.owner.as_deref()).await?;
    Ok(Json(sessions.into_iter().map(SessionView::from).collect()))
}

/// Where a session is served after a decision.
enum Resolved {
    /// Its current owner, unchanged by this request.
    Current(Target, u64),
    /// Its owner, whom the client should retry.
    Retry(Target, u64),
    /// The host this request moved it to.
    Moved(Target, u64),
}

impl Resolved {
    fn into_target(self) -> (Target, u64) {
        match self {
            Resolved::Current(target, epoch)
            | Resolved::Retry(target, epoch)
            | Resolved::Moved(target, epoch) => (target, epoch),
        }
    }
}

/// Decides where a running session is served, moving it if the plan says
/// so. `record` is the first read; later rounds read again.
async fn resolve(
    state: &AppState,
    mut record: SessionRecord,
    report: Option<&UnreachableReport>,
) -> Result<Resolved, AppError> {
    for _ in 0..MOVE_ATTEMPTS {
        let hosts = state.store.list_hosts().await?;
        let now = state.store.now().await?;
        let mut plan = FailoverPlan::new(&record, &hosts, now);
        if let Some(report) = report {
            plan = plan.with_report(report);
        }
        let mut decision = plan.decide(&ProbeOutcome::NotProbed);
        if let Decision::Probe { host, url } = &decision {
            let outcome = probe_owner(url, host, state.config.probe_timeout).await;
            tracing::info!(session = %record.id, %host, ?outcome, "probed the owner");
            decision = plan.decide(&outcome);
        }
        match decision {
            Decision::Current { owner, epoch } => return Ok(Resolved::Current(owner, epoch)),
            Decision::RetryOwner { owner, epoch } => return Ok(Resolved::Retry(owner, epoch)),
            Decision::Move {
                expected_epoch,
                lost,
                to,
            } => match state
                .store
                .take_over(&record.id, expected_epoch, &to.host)
                .await
            {
                Ok(epoch) => {
                    tracing::info!(session = %record.id, from = %lost, to = %to.host, epoch, "moved");
                    return Ok(Resolved::Moved(to, epoch));
                }
                Err(StoreError::Fenced { .. }) => {
                    tracing::debug!(session = %record.id, "another request moved it first");
                }
                Err(StoreError::NotFound(_)) => return Err(unknown_session(&record.id)),
                Err(error) => return Err(error.into()),
            },
            Decision::Ended => {
                return Err(AppError::Conflict(format!(
                    "session {} has ended and cannot be restored; start a new one with POST /v1/placement",
                    record.id
                )));
            }
            Decision::NoHealthyHost => return Err(AppError::NoHealthyHost),
            Decision::Probe { .. } => {
                // `decide` never asks again once given an outcome.
                return Err(AppError::Busy(
                    "the directory could not decide; retry shortly".to_owned(),
                ));
            }
        }
        record = state
            .store
            .get_session(&record.id)
            .await?
            .ok_or_else(|| unknown_session(&record.id))?;
    }
    Err(AppError::Busy(format!(
        "session {} keeps changing hands; retry shortly",
        record.id
    )))
}

fn unknown_session(id: &str) -> AppError {
    AppError::NotFound(format!(
        "no session {id}; GET /v1/sessions lists the known ones, POST /v1/placement starts a new one"
    ))
}

/// Session ids are 32 hex digits; stored in lowercase.
fn check_session_id(id: &str) -> Result<String, AppError> {
    if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id.to_ascii_lowercase())
    } else {
        Err(AppError::BadRequest(format!(
            "invalid session id {id:?}: expected 32 hex digits"
        )))
    }
}
