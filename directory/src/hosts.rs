//! The host registry over HTTP: lease renewals from hosts, the host list,
//! and drain requests from operators.
//!
//! Nothing is kept in this process: every answer is read from the store,
//! and lease times come from the store's clock, so any replica may answer
//! any request.

use std::ops::RangeInclusive;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use store::{HostRecord, Millis, StoreError};

use crate::AppState;
use crate::error::AppError;

/// Lease lengths a host may ask for. Under a second, renewals would flood
/// the store; over a minute, a lost host would hold its sessions too long.
pub const TTL_RANGE_MS: RangeInclusive<u64> = 1_000..=60_000;

const MAX_HOST_ID_LEN: usize = 64;
const MAX_URL_LEN: usize = 2048;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseRequest {
    pub url: String,
    pub ttl_ms: u64,
    pub load: u32,
    /// `None` keeps what is stored (an operator's drain); a host sets it
    /// when it starts or stops draining on its own.
    #[serde(default)]
    pub draining: Option<bool>,
}

#[derive(Debug, Serialize)]
pub struct LeaseGrant {
    pub id: String,
    pub url: String,
    pub load: u32,
    pub draining: bool,
    pub lease_expires_at: Millis,
    /// The backend's clock, read after the renewal: `lease_expires_at -
    /// now` underestimates what is left, which errs on the safe side.
    pub now: Millis,
}

#[derive(Debug, Serialize)]
pub struct HostView {
    pub id: String,
    pub url: String,
    pub load: u32,
    pub draining: bool,
    pub lease_expires_at: Millis,
    pub live: bool,
}

impl HostView {
    pub fn new(host: HostRecord, now: Millis) -> HostView {
        HostView {
            live: host.is_live(now),
            id: host.id,
            url: host.url,
            load: host.load,
            draining: host.draining,
            lease_expires_at: host.lease_expires_at,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DrainAnswer {
    pub id: String,
    pub draining: bool,
}

/// `PUT /v1/hosts/{id}/lease`
pub async fn renew_lease(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Json<LeaseRequest>, JsonRejection>,
) -> Result<Json<LeaseGrant>, AppError> {
    check_host_token(&state, &headers)?;
    let Json(request) = body.map_err(AppError::from_json)?;
    check_host_id(&id)?;
    check_host_url(&request.url)?;
    let ttl_ms = request
        .ttl_ms
        .clamp(*TTL_RANGE_MS.start(), *TTL_RANGE_MS.end());
    let host = state
        .store
        .renew_lease(&id, &request.url, ttl_ms, request.load, request.draining)
        .await?;
    let now = state.store.now().await?;
    Ok(Json(LeaseGrant {
        id: host.id,
        url: host.url,
        load: host.load,
        draining: host.draining,
        lease_expires_at: host.lease_expires_at,
        now,
    }))
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

/// `POST /v1/hosts/{id}/drain`
pub async fn drain(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DrainAnswer>, AppError> {
    check_host_token(&state, &headers)?;
    check_host_id(&id)?;
    match state.store.set_draining(&id, true).await {
        Ok(()) => {
            tracing::info!(host = %id, "draining on request");
            Ok(Json(DrainAnswer { id, draining: true }))
        }
        Err(StoreError::NotFound(_)) => Err(AppError::NotFound(format!(
            "no host {id} is registered; GET /v1/hosts lists the known hosts"
        ))),
        Err(error) => Err(error.into()),
    }
}

/// Registering, renewing and draining hosts decide where users' sessions
/// go, so they need the hosts' token when one is configured.
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

/// A host's url must be something a browser can open a WebSocket to and
/// the directory can probe: `http(s)://host[:port][/path]`, no query.
fn check_host_url(url: &str) -> Result<(), AppError> {
    let bad = |why: &str| {
        AppError::BadRequest(format!(
            "invalid host url {url:?}: {why}; expected e.g. http://127.0.0.1:8081"
        ))
    };
    if url.len() > MAX_URL_LEN {
        return Err(bad("too long"));
    }
    let uri: hyper::Uri = url.parse().map_err(|_| bad("not a url"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("the scheme must be http or https"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(bad("no host name"));
    }
    if uri.query().is_some() || url.contains('@') {
        return Err(bad("no query or credentials allowed"));
    }
    Ok(())
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

    #[test]
    fn host_urls_are_http_origins_with_an_optional_path() {
        for good in [
            "http://127.0.0.1:8081",
            "https://h1.example.com",
            "http://[::1]:9000/thinline/",
        ] {
            assert!(check_host_url(good).is_ok(), "{good}");
        }
        for bad in [
            "127.0.0.1:8081",
            "ftp://h1",
            "http://h1/?q=1",
            "http://user@h1",
            "http://h1; script-src *",
            "",
        ] {
            assert!(check_host_url(bad).is_err(), "{bad}");
        }
    }
}
