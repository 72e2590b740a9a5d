//! The OpenAPI side of the types (feature `openapi`): the schemas serde
//! attributes cannot tell utoipa, written once here beside the types.
//!
//! A session id is a `protocol::SessionId` in Rust and 32 hex digits on the
//! wire; a host id is a `String` with an alphabet; a path parameter is a
//! string the handler parses itself (so a malformed one gets the API's JSON
//! 400, not axum's plain-text rejection). Their schemas come from
//! [`crate::ids`], next to the checks. And JSON Schema can say what serde
//! cannot: a placement naming a session and asking for a new one is
//! refused, which [`ApiConstraints`] adds to `PlacementRequest`.

use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::{OpenApi, RefOr, Required};
use utoipa::{IntoParams, Modify};

use crate::ids::{
    HOST_ID_PATTERN, SESSION_ID_ANSWER_PATTERN, SESSION_ID_PATTERN, SHARE_ID_PATTERN,
};

fn text(pattern: &str, description: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
        .build()
}

/// A session id the directory is sent: 32 hex digits of either case.
pub fn session_id_in_request() -> Object {
    text(SESSION_ID_PATTERN, "the session's id, 32 hex digits")
}

/// The same, or `null` (which asks for no particular session).
pub fn session_id_in_request_or_null() -> Object {
    let mut schema = session_id_in_request();
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    schema
}

/// A session id the directory answers with: 32 lowercase hex digits.
pub fn session_id_in_answer() -> Object {
    text(
        SESSION_ID_ANSWER_PATTERN,
        "the session's id, 32 lowercase hex digits",
    )
}

/// A host id: 1 to 64 letters, digits, '-', '_' or '.'.
pub fn host_id() -> Object {
    text(
        HOST_ID_PATTERN,
        "the host's id: 1 to 64 letters, digits, '-', '_' or '.'",
    )
}

/// A share link's id: 32 lowercase hex digits.
pub fn share_id() -> Object {
    text(
        SHARE_ID_PATTERN,
        "the share link's id, 32 lowercase hex digits",
    )
}

fn path_id(schema: Object) -> Vec<Parameter> {
    let description = schema.description.clone();
    vec![
        ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(description)
            .schema(Some(schema))
            .build(),
    ]
}

/// The `{id}` of a route about one session (anything else is a 400).
#[derive(Debug)]
pub struct SessionPath;

impl IntoParams for SessionPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        path_id(session_id_in_request())
    }
}

/// The `{id}` of a route about one host (anything else is a 400).
#[derive(Debug)]
pub struct HostPath;

impl IntoParams for HostPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        path_id(host_id())
    }
}

/// The `{id}` of a route about one share link (anything else is a 400).
#[derive(Debug)]
pub struct SharePath;

impl IntoParams for SharePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        path_id(share_id())
    }
}

/// What the derives cannot say; the directory applies it to its document
/// once every route's schemas are in.
#[derive(Debug)]
pub struct ApiConstraints;

impl Modify for ApiConstraints {
    fn modify(&self, openapi: &mut OpenApi) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        if let Some(RefOr::T(Schema::Object(placement))) =
            components.schemas.get_mut("PlacementRequest")
        {
            // OpenAPI has no field for `not` in utoipa's model; extensions
            // are written as members of the schema object, which is where
            // JSON Schema reads the keyword.
            placement
                .extensions
                .get_or_insert_with(Default::default)
                .insert(
                    "not".to_owned(),
                    serde_json::json!({
                        "description": "a session and new: true together are refused (400)",
                        "required": ["session", "new"],
                        "properties": { "session": { "type": "string" }, "new": { "enum": [true] } }
                    }),
                );
        }
    }
}
