//! The one error type at the HTTP edge.
//!
//! Clients (hosts, the browser, operators with curl) get a status and an
//! `ErrorAnswer` body saying what to do; internals such as driver
//! messages go to the log, never to the client. The HTML pages render their
//! own errors (`views.rs`), with the same rule. The bottom of the
//! directory's layers: it knows no other module.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use directory_api::ErrorAnswer;
use serde::de::DeserializeOwned;
use store::StoreError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed; the message says how to fix it.
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// The caller must prove it is a host (the hosts' shared token).
    #[error(
        "this call is for operators: send the operators' token as `Authorization: Bearer ...` \
         (THINLINE_OPERATOR_TOKEN), or use `directory host drain|undrain ID --store ...`"
    )]
    Unauthorized,
    /// The request is valid but the state forbids it (an ended session).
    #[error("{0}")]
    Conflict(String),
    /// What the request names is gone for good (a revoked or expired share
    /// link); the message says what to do instead.
    #[error("{0}")]
    Gone(String),
    #[error("no healthy host is available; start a host or wait for one to come back")]
    NoHealthyHost,
    /// A transient condition; the client should retry shortly.
    #[error("{0}")]
    Busy(String),
    /// A user's call without a live sign-in (no cookie, logged out,
    /// expired, or the account was disabled).
    #[error("not signed in; open /login")]
    NotSignedIn,
    /// A browser call from an origin that is not allowed (CSRF defence).
    #[error("{0}")]
    Forbidden(String),
    /// A limit is reached (sessions per user); the message says which.
    #[error("{0}")]
    TooMany(String),
    /// A bug or a broken configuration; the message goes to the log only.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppError {
    /// Maps a body that is not the expected JSON to a 400 naming the
    /// problem (axum's own rejection is plain text).
    pub fn from_json(rejection: JsonRejection) -> AppError {
        AppError::BadRequest(format!("invalid request body: {}", rejection.body_text()))
    }
}

/// A JSON request body before it is read into the request it should be.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// A request body that must be a JSON object, read into `T`. serde's
/// derived structs also take an array of their fields in order (`[]` was
/// a placement with every default), which the OpenAPI document does not
/// allow and no client means; only an object gets as far as `T`.
pub fn object_body<T: DeserializeOwned>(
    body: Result<Json<JsonObject>, JsonRejection>,
) -> Result<T, AppError> {
    let Json(object) = body.map_err(AppError::from_json)?;
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|error| AppError::BadRequest(format!("invalid request body: {error}")))
}

impl AppError {
    /// The status, the message for the client, and whether to add
    /// `Retry-After`; logs what the client is not told. The JSON answer
    /// below and the HTML pages both use it.
    pub fn status_and_message(&self) -> (StatusCode, String, bool) {
        match self {
            AppError::BadRequest(message) => (StatusCode::BAD_REQUEST, message.clone(), false),
            AppError::NotFound(message) => (StatusCode::NOT_FOUND, message.clone(), false),
            AppError::Unauthorized => {
                tracing::warn!("refused an operator's call without the operators' token");
                (StatusCode::UNAUTHORIZED, self.to_string(), false)
            }
            AppError::Conflict(message) => (StatusCode::CONFLICT, message.clone(), false),
            AppError::Gone(message) => (StatusCode::GONE, message.clone(), false),
            AppError::NotSignedIn => (StatusCode::UNAUTHORIZED, self.to_string(), false),
            AppError::Forbidden(message) => {
                tracing::warn!(%message, "refused a cross-origin call");
                (StatusCode::FORBIDDEN, message.clone(), false)
            }
            AppError::TooMany(message) => (StatusCode::TOO_MANY_REQUESTS, message.clone(), false),
            AppError::NoHealthyHost | AppError::Busy(_) => {
                tracing::warn!(error = %self, "answered 503");
                (StatusCode::SERVICE_UNAVAILABLE, self.to_string(), true)
            }
            AppError::Store(error) if error.is_transient() => {
                tracing::warn!(%error, "the store is unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the session store is unavailable; retry shortly or check the directory's log"
                        .to_owned(),
                    true,
                )
            }
            AppError::Store(error) => {
                tracing::error!(%error, "store error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error in the directory; see its log".to_owned(),
                    false,
                )
            }
            AppError::Internal(error) => {
                tracing::error!(%error, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error in the directory; see its log".to_owned(),
                    false,
                )
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message, retry) = self.status_and_message();
        let mut response = (status, Json(ErrorAnswer { error: message })).into_response();
        if retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
