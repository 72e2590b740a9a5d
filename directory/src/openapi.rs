//! The directory's API described as OpenAPI 3.1, served at
//! `/v1/openapi.json`, generated rather than written.
//!
//! Hosts, the browser client and scripts are written by others against
//! these shapes, so the contract is published by the service itself. It
//! used to be written by hand beside the serde structs it described, and
//! nothing kept the two together. Now the schemas are derived from
//! `directory_api`'s types (the same ones the handlers serialise), each
//! operation from the `#[utoipa::path]` annotation on its handler (its
//! refusals, their bodies and content types), and the paths from the
//! router itself: `lib.rs` registers every route through utoipa-axum's
//! `routes!`, so a route cannot be served without being listed. The
//! server-rendered pages are listed too, with their form fields and
//! redirects, since scripts and proxies in front of the directory deal
//! with them.
//!
//! Tests hold the document to the wire: `openapi/tests.rs` validates an
//! answer of every type against its operation's schema, and
//! `tests/fuzz/run.py` (in CI) fuzzes every operation from this document
//! against a real directory and fails on any answer it does not describe.

use std::sync::Arc;

use auth::login::COOKIE_NAME;
use axum::Extension;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's frame: everything but the paths and schemas, which the
/// router and the types bring.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Thinline directory",
        version = "1",
        description = "Sign-in, host registry, session placement and failover decisions. Stateless over the shared store: any replica answers any request. All times are milliseconds since the Unix epoch read from the store's clock. Calls about sessions need the sign-in cookie and see only the caller's own sessions (placement, reports and renewals also a session whose share link the caller redeemed, by its cookie); their POSTs also need an allowed Origin header.",
    ),
    modifiers(&SecuritySchemes)
)]
pub struct ApiFrame;

/// The two ways a caller proves who it is: the sign-in cookie (people) and
/// the operators' bearer token (drains).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "loginCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                COOKIE_NAME,
                "Set by POST /login (or by a trusted reverse proxy's user header); lasts 12 hours or until sign-out",
            ))),
        );
        components.add_security_scheme(
            "operatorToken",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The operators' secret (THINLINE_OPERATOR_TOKEN), which no host holds; without one the drain API is off",
                    ))
                    .build(),
            ),
        );
    }
}

/// The finished document, serialised once when the router is built.
#[derive(Clone, Debug)]
pub struct ApiDocument(pub Arc<str>);

impl ApiDocument {
    /// Completes what the routes gathered (`directory_api`'s constraints
    /// that no derive can state) and serialises it.
    pub fn new(mut document: utoipa::openapi::OpenApi) -> ApiDocument {
        directory_api::openapi::ApiConstraints.modify(&mut document);
        let text = document.to_json().unwrap_or_else(|error| {
            // Plain data with string keys: this cannot fail, but a
            // directory without its document should still serve.
            tracing::error!(%error, "the OpenAPI document cannot be serialised");
            "{}".to_owned()
        });
        ApiDocument(text.into())
    }
}

/// This document
#[utoipa::path(
    get,
    path = "/openapi.json",
    responses((status = 200, description = "OK", body = Object))
)]
pub async fn document(Extension(document): Extension<ApiDocument>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
