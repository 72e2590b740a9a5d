//! The server-rendered pages' handlers: the user's sessions and the form
//! that ends one.
//!
//! The top of the directory's layers with `web`: they take a signed-in
//! user (`signin`), act through the same code as the JSON API
//! (`sessions`), and answer with `views`. A stranger is sent to `/login`
//! rather than shown a 401, since a person, not a script, follows these.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use directory_api::ErrorAnswer;
use directory_api::openapi::SessionPath;
use store::SessionRecord;

use crate::edge;
use crate::sessions;
use crate::signin::SignedIn;
use crate::state::AppState;
use crate::views;

/// The caller's sessions as a page: open, end, start a new one, sign out
#[utoipa::path(
    get,
    path = "/sessions",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "the sessions page", content_type = "text/html", body = String),
        (status = 303, description = "not signed in: to /login", headers(("Location" = String))),
        (status = 503, description = "the store is unavailable", content(
            (String = "text/html"),
            (ErrorAnswer = "application/json"),
        )),
    )
)]
pub async fn sessions_page(State(state): State<AppState>, signed_in: Option<SignedIn>) -> Response {
    let Some(signed_in) = signed_in else {
        return Redirect::to("/login").into_response();
    };
    match state.store.list_sessions(Some(&signed_in.user)).await {
        Ok(sessions) => {
            let own: Vec<SessionRecord> = sessions
                .into_iter()
                .filter(|s| s.owner == signed_in.user)
                .collect();
            views::page(StatusCode::OK, views::sessions_list(&signed_in.user, &own))
        }
        Err(store_error) => views::error(store_error.into()),
    }
}

/// The form twin of POST /v1/sessions/{id}/end
///
/// Answers 303 back to `/sessions`.
#[utoipa::path(
    post,
    path = "/sessions/{id}/end",
    params(SessionPath),
    security(("loginCookie" = [])),
    responses(
        (status = 303, description = "ended: back to /sessions; not signed in: to /login", headers(("Location" = String))),
        (status = 400, description = "malformed session id", content_type = "text/html", body = String),
        (status = 403, description = "the Origin is missing or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "the caller has no such session", content_type = "text/html", body = String),
        (status = 503, description = "the store is unavailable", content(
            (String = "text/html"),
            (ErrorAnswer = "application/json"),
        )),
    )
)]
pub async fn end_form(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err(why) = edge::check_origin(&state, &headers) {
        return views::page(StatusCode::FORBIDDEN, views::message("Refused", &why));
    }
    let Some(signed_in) = signed_in else {
        return Redirect::to("/login").into_response();
    };
    match sessions::end_own_session(&state, &signed_in.user, &id).await {
        Ok(_) => Redirect::to("/sessions").into_response(),
        Err(app_error) => views::error(app_error),
    }
}
