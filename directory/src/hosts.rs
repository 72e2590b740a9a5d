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
use directory_api::openapi::HostPath;
use directory_api::{DrainAnswer, DrainOwner, ErrorAnswer, Host, MAX_HOST_ID_LEN, valid_host_id};
use store::{HostRecord, Millis, StoreError};

use crate::error::AppError;
use crate::state::AppState;

/// How the API shows a host record at the store's time `now`.
pub fn host_view(host: HostRecord, now: Millis) -> Host {
    Host {
        live: host.is_live(now),
        draining: host.is_draining(),
        drain: host.drain().map(|drain| match drain {
            store::Drain::Operator => DrainOwner::Operator,
            store::Drain::Shutdown => DrainOwner::Shutdown,
        }),
        id: host.id,
        url: host.url,
        load: host.load,
        lease_expires_at: host.lease_expires_at,
    }
}

/// Every registered host, live or not, by id
#[utoipa::path(
    get,
    path = "/hosts",
    responses(
        (status = 200, description = "OK", body = Vec<Host>),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn list_hosts(State(state): State<AppState>) -> Result<Json<Vec<Host>>, AppError> {
    let hosts = state.store.list_hosts().await?;
    let now = state.store.now().await?;
    Ok(Json(
        hosts.into_iter().map(|host| host_view(host, now)).collect(),
    ))
}

/// An operator's drain of a host
///
/// The host learns it from its next lease renewal (hosts renew in the
/// store, never here), moves every session elsewhere and takes none until
/// the drain is lifted; the drain outlives the host's restarts.
#[utoipa::path(
    post,
    path = "/hosts/{id}/drain",
    params(HostPath),
    security(("operatorToken" = [])),
    responses(
        (status = 200, description = "OK", body = DrainAnswer),
        (status = 400, description = "malformed host id", body = ErrorAnswer),
        (status = 401, description = "the operators' token is missing or wrong", body = ErrorAnswer),
        (status = 403, description = "the HTTP drain API is off (no THINLINE_OPERATOR_TOKEN)", body = ErrorAnswer),
        (status = 404, description = "no such host", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn drain(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<DrainAnswer>, AppError> {
    set_drain(&state, &id, &headers, true).await
}

/// Lift an operator's drain
///
/// The host serves again from its next renewal. A host stopping on SIGTERM
/// drains on its own; that drain ends with its process and needs no
/// lifting.
#[utoipa::path(
    delete,
    path = "/hosts/{id}/drain",
    params(HostPath),
    security(("operatorToken" = [])),
    responses(
        (status = 200, description = "OK", body = DrainAnswer),
        (status = 400, description = "malformed host id", body = ErrorAnswer),
        (status = 401, description = "the operators' token is missing or wrong", body = ErrorAnswer),
        (status = 403, description = "the HTTP drain API is off (no THINLINE_OPERATOR_TOKEN)", body = ErrorAnswer),
        (status = 404, description = "no such host", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
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
    check_operator_token(state, headers)?;
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

/// Draining hosts decides where users' sessions go, so it takes the
/// operators' token, which no host holds; without one configured the HTTP
/// drain API is off.
fn check_operator_token(state: &AppState, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(token) = &state.config.operator_token else {
        return Err(AppError::Forbidden(
            "the HTTP drain API is off on this directory: set THINLINE_OPERATOR_TOKEN, \
             or use `directory host drain|undrain ID --store ...`"
                .into(),
        ));
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
/// them to a plain alphabet (`directory_api::valid_host_id`, the same
/// check the OpenAPI document publishes as a pattern).
pub fn check_host_id(id: &str) -> Result<(), AppError> {
    if valid_host_id(id) {
        Ok(())
    } else {
        Err(AppError::BadRequest(format!(
            "invalid host id {id:?}: use 1 to {MAX_HOST_ID_LEN} letters, digits, '-', '_' or '.'"
        )))
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

    /// One line per enrolled host, by id: id, url, enrolled (UTC).
    pub async fn list_enrolled(store: &dyn Store) -> anyhow::Result<Vec<String>> {
        let enrolled = store
            .list_host_enrolments()
            .await
            .context("listing the enrolled hosts")?;
        Ok(enrolled
            .iter()
            .map(|host| {
                format!(
                    "{}\t{}\t{}",
                    host.id,
                    host.url,
                    crate::views::utc_minute(host.enrolled_at)
                )
            })
            .collect())
    }

    /// Enrols `id` at `url` with a new random secret, which is returned:
    /// the only copy, for the host's `THINLINE_HOST_SECRET`. Enrolling a
    /// host again revokes its old secret.
    pub async fn enrol(store: &dyn Store, id: &str, url: &str) -> anyhow::Result<String> {
        if !directory_api::valid_host_id(id) {
            bail!("invalid host id {id:?}: use letters, digits, '-', '_' or '.'");
        }
        let plain = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        if plain.is_none_or(|rest| rest.is_empty() || rest.contains(char::is_whitespace)) {
            bail!("invalid url {url:?}: give the host's public url, e.g. https://h1.example.com");
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).context("drawing a random secret")?;
        // Hex: survives env files, YAML and shells unquoted.
        let secret: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        store
            .enrol_host(id, url, &secret)
            .await
            .context("recording the enrolment in the store")?;
        Ok(secret)
    }

    /// Revokes `id`'s enrolment: its secret stops working and its lease
    /// ends now.
    pub async fn remove(store: &dyn Store, id: &str) -> anyhow::Result<()> {
        match store.remove_host_enrolment(id).await {
            Ok(()) => Ok(()),
            Err(StoreError::NotFound(_)) => {
                bail!("no host {id} is enrolled; `directory host enrolled` lists them")
            }
            Err(error) => Err(error).context("removing the enrolment from the store"),
        }
    }

    /// Sets or lifts an operator's drain of `id`.
    pub async fn set_drain(store: &dyn Store, id: &str, requested: bool) -> anyhow::Result<()> {
        if !directory_api::valid_host_id(id) {
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
