//! The host registry over HTTP: the host list, and operators' drains.
//!
//! Hosts register and renew their leases in the store themselves, on the
//! store's clock (`host_server::renewal`), never through a directory: a
//! directory outage must not cost a host its lease. What is left here reads
//! that registry and records an operator's drain, which the host learns
//! from its next renewal and which lasts across its restarts until the
//! operator lifts it (`DELETE .../drain`, or `directory host undrain`).
//!
//! Nothing is kept in this process: every answer is read from the store,
//! and lease times come from the store's clock, so any replica may answer
//! any request.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Serialize;
use store::{HostRecord, Millis, StoreError};

use crate::AppState;
use crate::error::AppError;

const MAX_HOST_ID_LEN: usize = 64;

#[derive(Debug, Serialize)]
pub struct HostView {
    pub id: String,
    pub url: String,
    pub load: u32,
    /// The host takes no sessions and is moving its own elsewhere.
    pub draining: bool,
    /// Who wants it drained: `operator` (lasts until lifted) or `shutdown`
    /// (its process is stopping; its next start serves again).
    pub drain: Option<&'static str>,
    pub lease_expires_at: Millis,
    pub live: bool,
}

impl HostView {
    pub fn new(host: HostRecord, now: Millis) -> HostView {
        HostView {
            live: host.is_live(now),
            draining: host.is_draining(),
            drain: host.drain().map(store::Drain::as_str),
            id: host.id,
            url: host.url,
            load: host.load,
            lease_expires_at: host.lease_expires_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DrainAnswer {
    pub id: String,
    /// Whether an operator's drain now stands.
    pub drain_requested: bool,
}

/// `GET /v1/hosts`
pub async fn list_hosts(State(state): State<AppState>) -> Result<Json<Vec<HostView>>, AppError> {
    let hosts = state.store.list_hosts().await?;
    let now = state.store.now().await?;
    Ok(Json(
        hosts
            .into_iter()
            .map(|host| HostView::new(host, now))
            .collect(),
    ))
}

/// `POST /v1/hosts/{id}/drain`: an operator's drain, kept until lifted.
pub async fn drain(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DrainAnswer>, AppError> {
    set_drain(&state, &id, &headers, true).await
}

/// `DELETE /v1/hosts/{id}/drain`: lifts an operator's drain.
pub async fn undrain(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DrainAnswer>, AppError> {
    set_drain(&state, &id, &headers, false).await
}

async fn set_drain(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    requested: bool,
) -> Result<Json<DrainAnswer>, AppError> {
    check_host_token(state, headers)?;
    check_host_id(id)?;
    match state.store.set_drain_requested(id, requested).await {
        Ok(()) => {
            if requested {
                tracing::info!(host = %id, "drain requested by an operator");
            } else {
                tracing::info!(host = %id, "an operator lifted the drain");
            }
            Ok(Json(DrainAnswer {
                id: id.to_owned(),
                drain_requested: requested,
            }))
        }
        Err(StoreError::NotFound(_)) => Err(AppError::NotFound(format!(
            "no host {id} is registered; GET /v1/hosts lists the known hosts"
        ))),
        Err(error) => Err(error.into()),
    }
}

/// Draining hosts decides where users' sessions go, so it needs the hosts'
/// token when one is configured.
fn check_host_token(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(token) = &state.config.host_token else {
        return Ok(());
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if token.admits(given) {
        Ok(())
    } else {
        Err(AppError::Unauthorized)
    }
}

/// Host ids appear in URLs, logs and every answer about sessions; keep
/// them to a plain alphabet.
pub fn check_host_id(id: &str) -> Result<(), AppError> {
    let plain = !id.is_empty()
        && id.len() <= MAX_HOST_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if plain {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!(
            "invalid host id {id:?}: use 1 to {MAX_HOST_ID_LEN} letters, digits, '-', '_' or '.'"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ids_are_plain() {
        for good in ["h1", "host-2.eu_west", "a"] {
            assert!(check_host_id(good).is_ok(), "{good}");
        }
        let long = "x".repeat(65);
        for bad in ["", "h 1", "h/1", "h;1", "hé", long.as_str()] {
            assert!(check_host_id(bad).is_err(), "{bad}");
        }
    }
}

/// `directory host list|drain|undrain --store …`: the operator's view of
/// the registry, straight from the store, with no directory running.
pub mod admin {
    use anyhow::{Context, bail};
    use store::{Store, StoreError};

    /// One line per host, by id: id, `live` or `expired`, what it serves
    /// (`serving`, `drain:operator`, `drain:shutdown`), its load and url,
    /// separated by tabs.
    pub async fn list(store: &dyn Store) -> anyhow::Result<Vec<String>> {
        let hosts = store.list_hosts().await.context("listing the hosts")?;
        let now = store.now().await.context("reading the store's clock")?;
        Ok(hosts
            .iter()
            .map(|host| {
                format!(
                    "{}\t{}\t{}\t{}\t{}",
                    host.id,
                    if host.is_live(now) { "live" } else { "expired" },
                    host.drain()
                        .map_or("serving".to_owned(), |d| format!("drain:{}", d.as_str())),
                    host.load,
                    host.url
                )
            })
            .collect())
    }

    /// Sets or lifts an operator's drain of `id`.
    pub async fn set_drain(store: &dyn Store, id: &str, requested: bool) -> anyhow::Result<()> {
        if super::check_host_id(id).is_err() {
            bail!("invalid host id {id:?}: use letters, digits, '-', '_' or '.'");
        }
        match store.set_drain_requested(id, requested).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound(_)) => {
                bail!("no host {id} is registered; `directory host list` shows the known hosts")
            }
            Err(error) => Err(error).context("recording the drain in the store"),
        }
    }
}
