//! `GET /v1/settings` and `PUT /v1/settings`: the signed-in user's terminal
//! settings (font, size, theme, cursor, clipboard, bell), kept in the store
//! so that they follow the user to any browser and any directory replica.
//!
//! The store keeps the document whole; this module is where it is checked.
//! A saved document this build cannot read (a newer build's theme, say) is
//! answered as the defaults and left in place, so a rolling upgrade or
//! downgrade never locks a user out of the page.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use directory_api::{ErrorAnswer, Settings};

use crate::edge::AllowedOrigin;
use crate::error::{AppError, JsonObject, object_body};
use crate::signin::SignedIn;
use crate::state::AppState;

/// The caller's settings (the defaults if never saved)
#[utoipa::path(
    get,
    path = "/settings",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "OK", body = Settings),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn get_settings(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Settings>, AppError> {
    let saved = state.store.get_settings(&signed_in.user).await?;
    Ok(Json(read_saved(&signed_in.user, saved.as_deref())))
}

/// Replace the caller's settings
///
/// Fields left out take their defaults. Needs an allowed Origin.
#[utoipa::path(
    put,
    path = "/settings",
    security(("loginCookie" = [])),
    request_body = Settings,
    responses(
        (status = 200, description = "saved; the settings as stored", body = Settings),
        (status = 400, description = "a value is out of range (the answer says which) or the body is not a settings object", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 403, description = "the Origin is missing or not allowed", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn put_settings(
    State(state): State<AppState>,
    _origin: AllowedOrigin,
    signed_in: SignedIn,
    body: Result<Json<JsonObject>, JsonRejection>,
) -> Result<Json<Settings>, AppError> {
    let settings: Settings = object_body(body)?;
    if let Some(reason) = settings.invalid() {
        return Err(AppError::BadRequest(reason));
    }
    let document = serde_json::to_string(&settings)
        .map_err(|error| AppError::Internal(format!("writing settings: {error}")))?;
    state.store.put_settings(&signed_in.user, &document).await?;
    Ok(Json(settings))
}

/// The stored document as settings: the defaults when there is none, or
/// when this build cannot read it (logged, and left in the store).
fn read_saved(user: &str, saved: Option<&str>) -> Settings {
    let Some(document) = saved else {
        return Settings::default();
    };
    match serde_json::from_str::<Settings>(document) {
        Ok(settings) if settings.invalid().is_none() => settings,
        Ok(settings) => {
            let reason = settings.invalid().unwrap_or_default();
            tracing::warn!(%user, %reason, "saved settings are out of range; answering the defaults");
            Settings::default()
        }
        Err(error) => {
            tracing::warn!(%user, %error, "saved settings are unreadable by this build; answering the defaults");
            Settings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use directory_api::ThemeName;

    use super::*;

    #[test]
    fn what_cannot_be_read_is_answered_as_the_defaults() {
        assert_eq!(read_saved("ada", None), Settings::default());
        let light = read_saved("ada", Some(r#"{"theme":"light","font_size":20}"#));
        assert_eq!(light.theme, ThemeName::Light);
        assert_eq!(light.font_size, 20);
        for unreadable in [
            r#"{"theme":"nord"}"#,
            r#"{"font_size":99}"#,
            r#"{"font_size":"big"}"#,
            "[]",
            "not json",
        ] {
            assert_eq!(
                read_saved("ada", Some(unreadable)),
                Settings::default(),
                "{unreadable}"
            );
        }
    }
}
