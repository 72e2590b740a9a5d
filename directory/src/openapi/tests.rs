//! The document against the types and the router: an answer of every
//! type and variant, serialised with `directory_api`, must validate
//! against the schema its operation documents (and a mangled one must
//! not); the bodies the handlers refuse must be invalid there too; the
//! published id patterns must accept exactly what the handlers accept; and
//! every documented operation must reach a handler.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use directory_api::*;
use protocol::SessionId;
use serde::Serialize;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use crate::state::{AppState, DirectoryConfig};

const ID: SessionId = SessionId([0x5a; 16]);

fn state() -> AppState {
    AppState::new(
        Arc::new(store::MemoryStore::new()),
        DirectoryConfig::default(),
    )
    .unwrap()
}

async fn call(method: Method, uri: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())
        .unwrap();
    let response = crate::app(state()).oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, body.to_vec())
}

/// The document as the directory serves it.
async fn document() -> Value {
    let (status, body) = call(Method::GET, "/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).unwrap()
}

/// `/` and `~` escaped for a JSON pointer.
fn pointer_part(text: &str) -> String {
    text.replace('~', "~0").replace('/', "~1")
}

/// A validator for the schema at `pointer` in `document`, with the whole
/// document around it so its `$ref`s to `#/components/schemas/…` resolve.
fn schema_at(document: &Value, pointer: &str) -> jsonschema::Validator {
    assert!(
        document.pointer(pointer).is_some(),
        "the document has nothing at {pointer}"
    );
    let mut root = document.clone();
    // The braces of a path template are not allowed in a URI fragment.
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    root["$ref"] = json!(format!("#{fragment}"));
    jsonschema::validator_for(&root).unwrap()
}

fn response_schema(
    document: &Value,
    method: &str,
    path: &str,
    status: u16,
) -> jsonschema::Validator {
    let pointer = format!(
        "/paths/{}/{method}/responses/{status}/content/application~1json/schema",
        pointer_part(path)
    );
    schema_at(document, &pointer)
}

fn request_schema(
    document: &Value,
    method: &str,
    path: &str,
    media: &str,
) -> jsonschema::Validator {
    let pointer = format!(
        "/paths/{}/{method}/requestBody/content/{}/schema",
        pointer_part(path),
        pointer_part(media)
    );
    schema_at(document, &pointer)
}

fn assert_valid(validator: &jsonschema::Validator, value: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "{what}: {value} breaks its schema: {errors:#?}"
    );
}

/// The first member of an answer (or of the first item of a list), to
/// break it with.
fn first_member(value: &mut Value) -> Option<(String, &mut serde_json::Map<String, Value>)> {
    let object = match value {
        Value::Array(items) => items.first_mut()?.as_object_mut()?,
        other => other.as_object_mut()?,
    };
    Some((object.keys().next()?.clone(), object))
}

fn to_json(value: impl Serialize) -> Value {
    serde_json::to_value(value).unwrap()
}

fn session(state: directory_api::SessionState, title: Option<&str>) -> Session {
    Session {
        id: ID,
        owner: "ada".into(),
        owner_host: "h1".into(),
        epoch: 2,
        state,
        title: title.map(str::to_owned),
        foreground: None,
        cwd: "/home/ada".into(),
        created_at: 1,
        last_active: 2,
    }
}

fn host(drain: Option<DrainOwner>) -> Host {
    Host {
        id: "h1".into(),
        url: "http://127.0.0.1:8081".into(),
        load: 3,
        draining: drain.is_some(),
        drain,
        lease_expires_at: 1_700_000_000_000,
        live: true,
    }
}

fn recording(title: Option<&str>, running: bool) -> Recording {
    Recording {
        session: ID,
        started_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_060_000,
        duration_ms: 59_000,
        bytes: 4096,
        cols: 80,
        rows: 24,
        title: title.map(str::to_owned),
        running,
    }
}

const SHARE_ID: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

fn share(state: ShareState) -> Share {
    Share {
        id: SHARE_ID.into(),
        session: ID,
        may_type: false,
        created_at: 1_700_000_000_000,
        expires_at: 1_700_043_200_000,
        state,
    }
}

/// Every answer variant the directory sends with a 2xx or its health's
/// 503, with the operation and status it is sent for.
fn answers() -> Vec<(&'static str, &'static str, u16, Value)> {
    let placement = Placement {
        session: ID,
        host: "h1".into(),
        url: "http://127.0.0.1:8081".into(),
        epoch: 1,
        ticket: "AQID-_x".into(),
        ticket_expires_in_ms: 60_000,
    };
    let drained = DrainAnswer {
        id: "h1".into(),
        drain_requested: true,
    };
    let mut answers = vec![
        (
            "get",
            "/v1/hosts",
            200,
            to_json(vec![
                host(None),
                host(Some(DrainOwner::Operator)),
                host(Some(DrainOwner::Shutdown)),
            ]),
        ),
        ("get", "/v1/hosts", 200, to_json(Vec::<Host>::new())),
        ("post", "/v1/hosts/{id}/drain", 200, to_json(&drained)),
        ("delete", "/v1/hosts/{id}/drain", 200, to_json(&drained)),
        ("get", "/v1/me", 200, to_json(Me { user: "ada".into() })),
        ("post", "/v1/placement", 200, to_json(&placement)),
        ("post", "/v1/sessions/{id}/ticket", 200, to_json(&placement)),
        (
            "post",
            "/v1/sessions/{id}/unreachable",
            200,
            to_json(UnreachableAnswer::RetryOwner {
                host: "h1".into(),
                url: "http://127.0.0.1:8081".into(),
                epoch: 2,
                retry_after_ms: 250,
                ticket: "T".into(),
                ticket_expires_in_ms: 60_000,
            }),
        ),
        (
            "post",
            "/v1/sessions/{id}/unreachable",
            200,
            to_json(UnreachableAnswer::Moved {
                host: "h2".into(),
                url: "https://h2.example.com".into(),
                epoch: 3,
                ticket: "T".into(),
                ticket_expires_in_ms: 60_000,
            }),
        ),
        (
            "post",
            "/v1/sessions/{id}/end",
            200,
            to_json(EndAnswer {
                session: ID,
                state: EndedState::Ended,
                epoch: 3,
            }),
        ),
        (
            "get",
            "/v1/sessions",
            200,
            to_json(vec![
                session(directory_api::SessionState::Running, None),
                session(directory_api::SessionState::Ended, Some("vim")),
            ]),
        ),
        (
            "post",
            "/v1/sessions/{id}/shares",
            200,
            to_json(ShareCreated {
                id: SHARE_ID.into(),
                token: TOKEN.into(),
                link_fragment: ShareCreated::fragment(TOKEN),
                expires_at: 1_700_000_000_000,
                may_type: true,
            }),
        ),
        (
            "get",
            "/v1/shares",
            200,
            to_json(
                [
                    ShareState::Live,
                    ShareState::Revoked,
                    ShareState::Expired,
                    ShareState::Ended,
                ]
                .map(share),
            ),
        ),
        ("get", "/v1/shares", 200, to_json(Vec::<Share>::new())),
        (
            "post",
            "/v1/shares/{id}/revoke",
            200,
            to_json(share(ShareState::Revoked)),
        ),
        (
            "post",
            "/v1/shares/redeem",
            200,
            to_json(Redeemed {
                session: ID,
                owner: "ada".into(),
                may_type: false,
            }),
        ),
        ("get", "/v1/settings", 200, to_json(Settings::default())),
        (
            "put",
            "/v1/settings",
            200,
            to_json(Settings {
                theme: ThemeName::SolarizedLight,
                bell: Bell::Notify,
                cursor: CursorStyle::Underline,
                ..Settings::default()
            }),
        ),
        (
            "get",
            "/v1/recordings",
            200,
            to_json(Recordings {
                policy: RecordingPolicy::OptIn,
                record_new_sessions: true,
                recordings: vec![recording(Some("vim"), true), recording(None, false)],
            }),
        ),
        (
            "get",
            "/v1/recordings",
            200,
            to_json(Recordings {
                policy: RecordingPolicy::Always,
                record_new_sessions: true,
                recordings: Vec::new(),
            }),
        ),
        (
            "get",
            "/v1/recordings",
            200,
            to_json(Recordings {
                policy: RecordingPolicy::Off,
                record_new_sessions: false,
                recordings: Vec::new(),
            }),
        ),
        (
            "get",
            "/v1/recordings/{id}",
            200,
            to_json(RecordingDetail {
                session: ID,
                cols: 80,
                rows: 24,
                started_at_ms: 1_700_000_000_000,
                duration_ms: 61_300,
                bytes: 4096,
                title: None,
                markers: vec![RecordingMarker {
                    at_ms: 61_250,
                    text: "restored on h2 after h1 was lost".into(),
                }],
            }),
        ),
        (
            "get",
            "/v1/config",
            200,
            to_json(ClientConfig {
                directories: vec!["http://127.0.0.1:8080".into()],
            }),
        ),
    ];
    for store in [StoreKind::Sqlite, StoreKind::Postgres, StoreKind::Memory] {
        answers.push((
            "get",
            "/healthz",
            200,
            to_json(Healthy {
                status: HealthyStatus::Ok,
                store,
            }),
        ));
        answers.push((
            "get",
            "/healthz",
            503,
            to_json(Degraded {
                status: DegradedStatus::Degraded,
                store,
                error: "the session store is unavailable".into(),
            }),
        ));
    }
    answers
}

#[tokio::test]
async fn every_answer_the_types_make_is_one_the_document_allows() {
    let document = document().await;
    for (method, path, status, answer) in answers() {
        let what = format!("{method} {path} {status}");
        let schema = response_schema(&document, method, path, status);
        assert_valid(&schema, &answer, &what);
        // The schema checks something: without a member it requires, or
        // with one of the wrong type, the answer is refused.
        let mut wrong_type = answer.clone();
        if let Some((first, object)) = first_member(&mut wrong_type) {
            object.insert(first.clone(), json!({ "not": "this" }));
            assert!(
                !schema.is_valid(&wrong_type),
                "{what}: {first} as an object passes"
            );
            // Every member of settings may be left out (it takes its
            // default), in answers as in requests.
            let mut missing = answer.clone();
            if path == "/v1/settings" {
                continue;
            }
            if let Some((first, object)) = first_member(&mut missing) {
                object.remove(&first);
                assert!(!schema.is_valid(&missing), "{what}: without {first} passes");
            }
        }
    }
}

#[tokio::test]
async fn every_json_refusal_is_an_error_answer() {
    let document = document().await;
    let error = to_json(ErrorAnswer {
        error: "no healthy host is available".into(),
    });
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let refusal = status.starts_with('4') || status.starts_with('5');
                if !refusal
                    || response["content"]["application/json"].is_null()
                    || path == "/healthz"
                {
                    continue;
                }
                let schema = response_schema(&document, method, path, status.parse().unwrap());
                assert_valid(&schema, &error, &format!("{method} {path} {status}"));
                assert!(!schema.is_valid(&json!({ "message": "no" })));
                checked += 1;
            }
        }
    }
    assert!(checked > 30, "only {checked} refusals are documented");
}

#[tokio::test]
async fn requests_the_types_make_are_allowed_and_refused_ones_are_not() {
    let document = document().await;
    let placement = request_schema(&document, "post", "/v1/placement", "application/json");
    for request in [
        PlacementRequest::default(),
        PlacementRequest {
            session: None,
            new: true,
        },
        PlacementRequest {
            session: Some(ID),
            new: false,
        },
    ] {
        assert_valid(&placement, &to_json(&request), "a placement");
    }
    // `null` names no session, as an absent member does.
    let none = json!({ "session": null, "new": true });
    assert_valid(&placement, &none, "a placement naming no session");
    assert_eq!(
        serde_json::from_value::<PlacementRequest>(none).unwrap(),
        PlacementRequest {
            session: None,
            new: true
        }
    );
    // The one combination the handler refuses, made with the type itself.
    let both = to_json(PlacementRequest {
        session: Some(ID),
        new: true,
    });
    assert!(!placement.is_valid(&both), "{both}");
    assert!(!placement.is_valid(&json!({ "x": 1 })));
    assert!(!placement.is_valid(&json!({ "session": "abc" })));
    assert!(!placement.is_valid(&json!([])));

    let unreachable = request_schema(
        &document,
        "post",
        "/v1/sessions/{id}/unreachable",
        "application/json",
    );
    let report = to_json(UnreachableRequest {
        host: "h-1.eu_west".into(),
        epoch: u64::MAX,
    });
    assert_valid(&unreachable, &report, "a report");
    let mut bad_host = report.clone();
    bad_host["host"] = json!("h 1");
    let mut extra = report.clone();
    extra["x"] = json!(1);
    let mut beyond = report.clone();
    beyond["epoch"] = json!(445_117_822_012_160_868_352_f64);
    for bad in [bad_host, extra, beyond, json!(["h1", 1])] {
        assert!(!unreachable.is_valid(&bad), "{bad}");
    }

    let renewal = request_schema(
        &document,
        "post",
        "/v1/sessions/{id}/ticket",
        "application/json",
    );
    let attached = to_json(RenewalRequest {
        host: "h-1.eu_west".into(),
        epoch: u64::MAX,
    });
    assert_valid(&renewal, &attached, "a renewal");
    let mut bad_host = attached.clone();
    bad_host["host"] = json!("h 1");
    let mut placement_too = attached.clone();
    placement_too["new"] = json!(true);
    for bad in [bad_host, placement_too, json!({ "host": "h1" }), json!([])] {
        assert!(!renewal.is_valid(&bad), "{bad}");
    }

    let share_request = request_schema(
        &document,
        "post",
        "/v1/sessions/{id}/shares",
        "application/json",
    );
    for good in [
        to_json(ShareRequest { may_type: true }),
        to_json(ShareRequest::default()),
        json!({}),
    ] {
        assert_valid(&share_request, &good, "a share request");
    }
    for bad in [json!({ "may_type": "yes" }), json!({ "x": 1 }), json!([])] {
        assert!(!share_request.is_valid(&bad), "{bad}");
    }
    let redeem = request_schema(&document, "post", "/v1/shares/redeem", "application/json");
    assert_valid(
        &redeem,
        &to_json(RedeemRequest {
            token: TOKEN.into(),
        }),
        "a redemption",
    );
    for bad in [
        json!({}),
        json!({ "token": 1 }),
        json!({ "token": TOKEN, "x": 1 }),
    ] {
        assert!(!redeem.is_valid(&bad), "{bad}");
    }
    let share_form = request_schema(
        &document,
        "post",
        "/sessions/{id}/share",
        "application/x-www-form-urlencoded",
    );
    for good in [
        to_json(ShareForm::default()),
        to_json(ShareForm {
            may_type: Some("on".into()),
        }),
    ] {
        assert_valid(&share_form, &good, "the share form");
    }

    let preference = request_schema(
        &document,
        "put",
        "/v1/recordings/preference",
        "application/json",
    );
    for on in [true, false] {
        assert_valid(
            &preference,
            &to_json(RecordingPreference {
                record_new_sessions: on,
            }),
            "a recording preference",
        );
    }
    for bad in [
        json!({}),
        json!({ "record_new_sessions": "on" }),
        json!({ "record_new_sessions": true, "x": 1 }),
        json!([true]),
    ] {
        assert!(!preference.is_valid(&bad), "{bad}");
    }
    let preference_form = request_schema(
        &document,
        "post",
        "/recordings/preference",
        "application/x-www-form-urlencoded",
    );
    for good in [
        to_json(RecordingPreferenceForm::default()),
        to_json(RecordingPreferenceForm {
            record_new_sessions: Some("on".into()),
        }),
    ] {
        assert_valid(&preference_form, &good, "the recording form");
    }

    let settings = request_schema(&document, "put", "/v1/settings", "application/json");
    for good in [
        to_json(Settings::default()),
        json!({}),
        json!({ "theme": "gruvbox-dark", "font_size": 32 }),
    ] {
        assert_valid(&settings, &good, "settings");
    }
    for bad in [
        json!({ "theme": "nord" }),
        json!({ "font_size": 7 }),
        json!({ "font_size": "big" }),
        json!({ "bell": true }),
        json!({ "font_family": "x".repeat(65) }),
        json!([]),
    ] {
        assert!(!settings.is_valid(&bad), "{bad}");
    }

    let login = request_schema(
        &document,
        "post",
        "/login",
        "application/x-www-form-urlencoded",
    );
    let form = to_json(LoginForm {
        user: "ada".into(),
        password: "correct horse".into(),
    });
    assert_valid(&login, &form, "the sign-in form");
    assert!(!login.is_valid(&json!({ "user": "ada" })));
}

/// What the patterns in the document accept, next to what the handlers
/// accept, for ids chosen to sit on every edge of both.
#[tokio::test]
async fn published_id_patterns_accept_exactly_what_the_handlers_accept() {
    let document = document().await;
    let param = |path: &str, method: &str| {
        let pointer = format!("/paths/{}/{method}/parameters/0/schema", pointer_part(path));
        schema_at(&document, &pointer)
    };
    let session_ids = [
        ID.to_string(),
        ID.to_string().to_ascii_uppercase(),
        "0123456789abcdefABCDEF0123456789".to_owned(),
        "0123456789abcdef0123456789abcde".to_owned(),
        "0123456789abcdef0123456789abcdef0".to_owned(),
        "+a".repeat(16),
        "g".repeat(32),
        "é".repeat(16),
        String::new(),
    ];
    for (path, method) in [
        ("/v1/sessions/{id}/end", "post"),
        ("/v1/sessions/{id}/unreachable", "post"),
        ("/v1/sessions/{id}/ticket", "post"),
        ("/v1/sessions/{id}/shares", "post"),
        ("/sessions/{id}/end", "post"),
        ("/sessions/{id}/share", "post"),
        ("/v1/recordings/{id}", "get"),
        ("/v1/recordings/{id}/frames", "get"),
        ("/v1/recordings/{id}/export", "get"),
        ("/v1/recordings/{id}/delete", "post"),
        ("/recordings/{id}/delete", "post"),
    ] {
        let schema = param(path, method);
        for id in &session_ids {
            assert_eq!(
                schema.is_valid(&json!(id)),
                id.parse::<SessionId>().is_ok(),
                "{path}: {id:?}"
            );
        }
    }
    let host_ids = [
        "h1".to_owned(),
        "host-2.eu_west".to_owned(),
        "x".repeat(64),
        "x".repeat(65),
        String::new(),
        "h 1".to_owned(),
        "hé".to_owned(),
        "h/1".to_owned(),
    ];
    for method in ["post", "delete"] {
        let schema = param("/v1/hosts/{id}/drain", method);
        for id in &host_ids {
            assert_eq!(
                schema.is_valid(&json!(id)),
                valid_host_id(id),
                "{method}: {id:?}"
            );
        }
    }
    let share_ids = [
        SHARE_ID.to_owned(),
        SHARE_ID.to_ascii_uppercase(),
        format!("{SHARE_ID}0"),
        SHARE_ID[1..].to_owned(),
        "g".repeat(32),
        "é".repeat(16),
        String::new(),
    ];
    for path in ["/v1/shares/{id}/revoke", "/shares/{id}/revoke"] {
        let schema = param(path, "post");
        for id in &share_ids {
            assert_eq!(
                schema.is_valid(&json!(id)),
                valid_share_id(id),
                "{path}: {id:?}"
            );
            assert_eq!(
                valid_share_id(id),
                id.parse::<auth::share::ShareId>().is_ok(),
                "{id:?}"
            );
        }
    }
    // Answers name sessions in lowercase only, as `SessionId` prints them.
    let answer = response_schema(&document, "post", "/v1/placement", 200);
    let mut upper = to_json(Placement {
        session: ID,
        host: "h1".into(),
        url: "http://h1".into(),
        epoch: 1,
        ticket: "T".into(),
        ticket_expires_in_ms: 1,
    });
    assert_valid(&answer, &upper, "a placement");
    upper["session"] = json!(ID.to_string().to_ascii_uppercase());
    assert!(!answer.is_valid(&upper));
}

/// Each documented operation is answered by its handler, not by a
/// fallback (404 "no such endpoint"/"no such page") or a 405.
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let document = document().await;
    let mut operations = 0;
    for (path, methods) in document["paths"].as_object().unwrap() {
        let uri = path.replace("{id}", &ID.to_string());
        for method in methods.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let (status, body) = call(method.clone(), &uri).await;
            let text = String::from_utf8_lossy(&body);
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert!(
                !text.contains("no such endpoint") && !text.contains("no such page"),
                "{method} {uri} reached a fallback: {status} {text}"
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 37);
    // And the fallbacks themselves are what an unknown path gets.
    let (status, body) = call(Method::GET, "/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("no such endpoint"));
}
