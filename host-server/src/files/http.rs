//! The HTTP side of files: `PUT` and `DELETE /files/upload` (the token in
//! `Authorization: Bearer`, the bytes' place in `Content-Range`), and
//! `POST /files/download` (the token a form field). Tokens come only over
//! the session's WebSocket and never travel in a URL.
//!
//! These routes are served outside the edge's whole-request deadline (a
//! gigabyte takes longer than any sensible deadline for a form) and its
//! body cap; instead a body that stops for [`IDLE`] is cut, an upload takes
//! no byte past the range it announced, and neither direction holds more
//! than [`CHUNK`] bytes of a file.

use std::io;
use std::os::unix::fs::FileExt as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use futures_util::StreamExt as _;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::access::{self, Partial};
use super::{CHUNK, names};
use crate::AppState;

/// Longest a transfer's body may stall before the host gives up on it.
pub const IDLE: Duration = Duration::from_secs(60);

/// The file routes, with CORS for the page's origins (uploads are
/// `fetch`/XHR requests from the directory's page to this host).
pub fn routes(state: AppState) -> Router {
    let origins = state.allowed_origins.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin.to_str().is_ok_and(|origin| {
                origins
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(origin))
            })
        }))
        .allow_methods([Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_RANGE,
            header::CONTENT_TYPE,
        ])
        .max_age(Duration::from_secs(600));
    let routes = Router::new()
        .route("/files/upload", put(upload).delete(cancel))
        .layer(cors)
        .route("/files/download", post(download));
    crate::answer_headers(routes).with_state(state)
}

fn answer(status: StatusCode, text: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text.into(),
    )
        .into_response()
}

fn json(value: serde_json::Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

const UNKNOWN_UPLOAD: &str = "this host does not know that upload (it was finished, \
                              cancelled or forgotten); the page asks the session again";

/// Takes the bytes `Content-Range` names into the upload's partial file
/// and, once the last is in, gives the file its name. Answers
/// `{"offset": n}` (bytes held so far) or `{"name", "dir"}` when done.
async fn upload(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let Some(job) = bearer(&headers).and_then(|t| state.registry.transfers().upload(t)) else {
        return answer(StatusCode::NOT_FOUND, UNKNOWN_UPLOAD);
    };
    let Ok(job) = job.try_lock_owned() else {
        return answer(
            StatusCode::CONFLICT,
            "this file is already being sent; wait for that to end",
        );
    };
    let size = job.size;
    let range = match headers.get(header::CONTENT_RANGE) {
        Some(value) => value.to_str().ok().and_then(names::content_range),
        None if size == 0 => Some((0, 0, 0)),
        None => None,
    };
    let Some((start, end, _)) = range.filter(|&(_, _, total)| total == size) else {
        return answer(
            StatusCode::BAD_REQUEST,
            format!("send Content-Range: bytes START-END/{size}"),
        );
    };
    let file = match job.partial.file.try_clone() {
        Ok(file) => Arc::new(file),
        Err(error) => return fail(&state, &headers, job, error).await,
    };
    // What the file holds, cut back to where this body starts: file
    // system calls, so off the runtime's threads (a network home can be
    // slow to answer).
    let held = {
        let file = file.clone();
        tokio::task::spawn_blocking(move || {
            let held = file.metadata()?.len();
            if start < held {
                file.set_len(start)?;
            }
            Ok::<_, io::Error>(held)
        })
        .await
        .map_err(io::Error::other)
        .and_then(|held| held)
    };
    let held = match held {
        Ok(held) => held,
        Err(error) => return fail(&state, &headers, job, error).await,
    };
    if start > held {
        return (
            StatusCode::CONFLICT,
            json(serde_json::json!({ "offset": held })),
        )
            .into_response();
    }
    let limit = if size == 0 { 0 } else { end + 1 };
    let mut at = start;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    let mut stream = body.into_data_stream();
    let complete = loop {
        let next = tokio::time::timeout(IDLE, stream.next()).await;
        let bytes: Bytes = match next {
            Ok(Some(Ok(bytes))) => bytes,
            Ok(None) => break true,
            // Cut off or stalled: what arrived stays, to go on from.
            Ok(Some(Err(_))) | Err(_) => break false,
        };
        if at + (buf.len() + bytes.len()) as u64 > limit {
            return answer(
                StatusCode::BAD_REQUEST,
                "the body is longer than its Content-Range",
            );
        }
        buf.extend_from_slice(&bytes);
        if buf.len() >= CHUNK {
            match write_at(&file, std::mem::take(&mut buf), at).await {
                Ok((n, reuse)) => {
                    at += n;
                    buf = reuse;
                }
                Err(error) => return fail(&state, &headers, job, error).await,
            }
        }
    };
    if !buf.is_empty() {
        match write_at(&file, buf, at).await {
            Ok((n, _)) => at += n,
            Err(error) => return fail(&state, &headers, job, error).await,
        }
    }
    // Cut short, or a range that ends before the file does: what the
    // file holds so far, to go on from.
    if !complete || at < limit || at < size {
        return json(serde_json::json!({ "offset": at }));
    }
    let (who, name) = (job.who, job.name.clone());
    let dir = job.partial.dir_shown.clone();
    let job = Arc::new(job);
    let held = job.clone();
    let finished = access::as_user(who, None, move |_| access::finish(&held.partial, &name)).await;
    if let Some(token) = bearer(&headers) {
        state.registry.transfers().forget(token);
    }
    match finished {
        Ok(name) => {
            tracing::info!(bytes = size, "upload complete");
            json(serde_json::json!({ "name": name, "dir": dir }))
        }
        Err(reason) => answer(StatusCode::CONFLICT, reason),
    }
}

/// Writes `buf` at `at` off the runtime's threads; gives the buffer back
/// for the next chunk.
async fn write_at(file: &Arc<std::fs::File>, buf: Vec<u8>, at: u64) -> io::Result<(u64, Vec<u8>)> {
    let file = file.clone();
    tokio::task::spawn_blocking(move || {
        file.write_all_at(&buf, at)?;
        let n = buf.len() as u64;
        let mut buf = buf;
        buf.clear();
        Ok((n, buf))
    })
    .await
    .map_err(io::Error::other)?
}

/// A write failed for good (no space, a quota): the partial file goes and
/// the page is told why.
async fn fail(
    state: &AppState,
    headers: &HeaderMap,
    job: tokio::sync::OwnedMutexGuard<super::UploadJob>,
    error: io::Error,
) -> Response {
    let reason = access::explain(error, &job.name, &job.partial.dir_shown);
    discard(job).await;
    if let Some(token) = bearer(headers) {
        state.registry.transfers().forget(token);
    }
    answer(StatusCode::INSUFFICIENT_STORAGE, reason)
}

async fn discard(job: tokio::sync::OwnedMutexGuard<super::UploadJob>) {
    let who = job.who;
    let job: Arc<tokio::sync::OwnedMutexGuard<super::UploadJob>> = Arc::new(job);
    let _ = access::as_user(who, None, move |_| {
        let partial: &Partial = &job.partial;
        access::discard(partial);
        Ok(())
    })
    .await;
}

/// The user cancelled: the partial file goes.
async fn cancel(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = bearer(&headers) else {
        return answer(StatusCode::NOT_FOUND, UNKNOWN_UPLOAD);
    };
    let Some(job) = state.registry.transfers().upload(token) else {
        return answer(StatusCode::NOT_FOUND, UNKNOWN_UPLOAD);
    };
    state.registry.transfers().forget(token);
    // A PUT still running ends at its next chunk (its token is gone); the
    // file goes once it has let go.
    discard(job.lock_owned().await).await;
    StatusCode::NO_CONTENT.into_response()
}

/// The user's click on a download: streams the file the token names,
/// as an attachment the browser saves.
async fn download(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    // The one-time token is the credential: only the page it was sent to
    // over the session's socket knows it. The page's `Referrer-Policy:
    // same-origin` makes Chromium send `Origin: null` with this
    // cross-origin form, so only a named origin is checked, and a foreign
    // one refused.
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("null");
    if origin != "null" && !state.origin_allowed(origin) {
        return answer(
            StatusCode::FORBIDDEN,
            "downloads start from the terminal page only",
        );
    }
    let Ok(form) = axum::body::to_bytes(body, 1024).await else {
        return answer(StatusCode::BAD_REQUEST, "the form is too long");
    };
    let token = form
        .split(|&b| b == b'&')
        .find_map(|field| field.strip_prefix(b"token="))
        .and_then(|token| std::str::from_utf8(token).ok())
        .unwrap_or("");
    let Some(offered) = state.registry.transfers().take_download(token) else {
        return answer(
            StatusCode::GONE,
            "This download was already saved or has expired (they keep 10 minutes). \
             Run tl-download again in your terminal.",
        );
    };
    let size = offered.size;
    let file = Arc::new(offered.file);
    let stream = futures_util::stream::try_unfold((file, 0u64), move |(file, at)| async move {
        if at >= size {
            return Ok(None);
        }
        let want = (size - at).min(CHUNK as u64) as usize;
        let reader = file.clone();
        let chunk = tokio::task::spawn_blocking(move || {
            let mut buf = vec![0; want];
            let n = reader.read_at(&mut buf, at)?;
            buf.truncate(n);
            Ok::<_, io::Error>(buf)
        })
        .await
        .map_err(io::Error::other)??;
        if chunk.is_empty() {
            return Err(io::Error::other("the file shrank while it was sent"));
        }
        let next = at + chunk.len() as u64;
        Ok(Some((Bytes::from(chunk), (file, next))))
    });
    let disposition = names::content_disposition(&offered.name);
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
