//! The directory's API described as OpenAPI 3.0, served at
//! `/v1/openapi.json`.
//!
//! Hosts and the browser client are written by others against these
//! shapes, so the contract is published by the service itself. It is
//! written by hand: the API is small, and a derive macro would add a heavy
//! dependency for little. The server-rendered pages (sign-in, sessions) are
//! listed too, with their form fields and redirects, since scripts and
//! proxies in front of the directory deal with them. The integration tests
//! check that every route is listed; `tests/fuzz/run.py` (in CI) fuzzes
//! every operation from this document and fails on any answer it does not
//! describe, so each refusal a handler makes and each check it applies to
//! an id or a body is written here.

use axum::Json;
use serde_json::{Value, json};

/// `GET /v1/openapi.json`
pub async fn document() -> Json<Value> {
    Json(spec())
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn ok(schema: Value) -> Value {
    json!({
        "description": "OK",
        "content": { "application/json": { "schema": schema } }
    })
}

fn body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

/// An HTML page answer.
fn page(description: &str) -> Value {
    json!({ "description": description, "content": { "text/html": { "schema": { "type": "string" } } } })
}

/// A page route's 503: the sign-in check in front of it answers JSON, the
/// page's own store calls answer a page.
fn page_unavailable() -> Value {
    json!({
        "description": "the store is unavailable",
        "content": {
            "text/html": { "schema": { "type": "string" } },
            "application/json": { "schema": { "$ref": "#/components/schemas/Error" } }
        }
    })
}

/// A 303 answer.
fn see_other(description: &str) -> Value {
    json!({
        "description": description,
        "headers": { "Location": { "schema": { "type": "string" } } }
    })
}

/// A path parameter; `schema` is what the handler accepts (anything else
/// is a 400).
fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": schema })
}

/// The whole document.
pub fn spec() -> Value {
    let host_id = path_param(
        "id",
        "the host's id: 1 to 64 letters, digits, '-', '_' or '.'",
        json!({ "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$" }),
    );
    let session_id = path_param(
        "id",
        "the session's id, 32 hex digits",
        json!({ "type": "string", "pattern": "^[0-9a-fA-F]{32}$" }),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Thinline directory",
            "version": "1",
            "description": "Sign-in, host registry, session placement and failover decisions. Stateless over the shared store: any replica answers any request. All times are milliseconds since the Unix epoch read from the store's clock. Calls about sessions need the sign-in cookie and see only the caller's own sessions; their POSTs also need an allowed Origin header."
        },
        "paths": {
            "/v1/hosts": {
                "get": {
                    "summary": "Every registered host, live or not, by id",
                    "responses": {
                        "200": ok(json!({ "type": "array", "items": { "$ref": "#/components/schemas/Host" } })),
                        "503": error_response("the store is unavailable")
                    }
                }
            },
            "/v1/hosts/{id}/drain": {
                "post": {
                    "summary": "An operator's drain of a host",
                    "description": "The host learns it from its next lease renewal (hosts renew in the store, never here), moves every session elsewhere and takes none until the drain is lifted; the drain outlives the host's restarts.",
                    "parameters": [host_id],
                    "security": [{ "operatorToken": [] }],
                    "responses": {
                        "400": error_response("malformed host id"),
                        "401": error_response("the operators' token is missing or wrong"),
                        "403": error_response("the HTTP drain API is off (no THINLINE_OPERATOR_TOKEN)"),
                        "200": ok(json!({ "$ref": "#/components/schemas/DrainAnswer" })),
                        "404": error_response("no such host"),
                        "503": error_response("the store is unavailable")
                    }
                },
                "delete": {
                    "summary": "Lift an operator's drain",
                    "description": "The host serves again from its next renewal. A host stopping on SIGTERM drains on its own; that drain ends with its process and needs no lifting.",
                    "parameters": [host_id],
                    "security": [{ "operatorToken": [] }],
                    "responses": {
                        "400": error_response("malformed host id"),
                        "401": error_response("the operators' token is missing or wrong"),
                        "403": error_response("the HTTP drain API is off (no THINLINE_OPERATOR_TOKEN)"),
                        "200": ok(json!({ "$ref": "#/components/schemas/DrainAnswer" })),
                        "404": error_response("no such host"),
                        "503": error_response("the store is unavailable")
                    }
                }
            },
            "/v1/me": {
                "get": {
                    "summary": "Who is signed in",
                    "security": [{ "loginCookie": [] }],
                    "responses": {
                        "200": ok(json!({
                            "type": "object",
                            "required": ["user"],
                            "properties": { "user": { "type": "string" } }
                        })),
                        "401": error_response("not signed in; open /login"),
                        "503": error_response("the store is unavailable")
                    }
                }
            },
            "/v1/placement": {
                "post": {
                    "summary": "Where to open a session, with a ticket for it",
                    "description": "session named: that session of the caller's; a live owner keeps it, one whose lease expired is moved first. No session and new unset: the caller's most recently active running session (hot desking), else a new one. new: a new session, with an id minted here and epoch 1, on the least-loaded live host that is not draining, unless the caller already runs --max-sessions-per-user sessions. The ticket (Ed25519, valid ticket_expires_in_ms, bound to user, session, host, epoch and login) goes in the WebSocket hello; refresh it by asking again with the session. Needs an allowed Origin.",
                    "security": [{ "loginCookie": [] }],
                    "requestBody": body("PlacementRequest"),
                    "responses": {
                        "200": ok(json!({ "$ref": "#/components/schemas/Placement" })),
                        "400": error_response("malformed session id or body, or both session and new"),
                        "401": error_response("not signed in; open /login"),
                        "403": error_response("the Origin is missing or not allowed"),
                        "404": error_response("the caller has no such session (another user's answers the same; a new session exists once its host started it)"),
                        "409": error_response("the session has ended"),
                        "429": error_response("the caller runs the most sessions allowed"),
                        "503": error_response("no healthy host, or the store is unavailable")
                    }
                }
            },
            "/v1/sessions/{id}/unreachable": {
                "post": {
                    "summary": "Report that the client cannot reach the session's host",
                    "description": "retry_owner while the owner's lease is live and there is no evidence its process is gone (a probe of its /healthz is refused or answered by another host); moved once the lease expired or the owner is proven gone, or when the session had already moved. Concurrent reports get the same answer; the epoch rises by exactly one per move. Both answers carry a fresh ticket for the host they name. Only the caller's own sessions; needs an allowed Origin.",
                    "security": [{ "loginCookie": [] }],
                    "parameters": [session_id.clone()],
                    "requestBody": body("UnreachableRequest"),
                    "responses": {
                        "200": ok(json!({ "$ref": "#/components/schemas/UnreachableAnswer" })),
                        "400": error_response("malformed session id, host or body"),
                        "401": error_response("not signed in; open /login"),
                        "403": error_response("the Origin is missing or not allowed"),
                        "404": error_response("the caller has no such session"),
                        "409": error_response("the session has ended"),
                        "503": error_response("no healthy host, or the store is unavailable")
                    }
                }
            },
            "/v1/sessions/{id}/end": {
                "post": {
                    "summary": "End one of the caller's sessions",
                    "description": "Marks the session ended and raises its epoch (fencing its host), then asks the host to hang up at once (best effort). Ending an ended session changes nothing. Needs an allowed Origin.",
                    "security": [{ "loginCookie": [] }],
                    "parameters": [session_id.clone()],
                    "responses": {
                        "200": ok(json!({ "$ref": "#/components/schemas/Ended" })),
                        "400": error_response("malformed session id"),
                        "401": error_response("not signed in; open /login"),
                        "403": error_response("the Origin is missing or not allowed"),
                        "404": error_response("the caller has no such session"),
                        "503": error_response("the store is unavailable")
                    }
                }
            },
            "/v1/sessions": {
                "get": {
                    "summary": "The caller's sessions, newest first",
                    "security": [{ "loginCookie": [] }],
                    "responses": {
                        "200": ok(json!({ "type": "array", "items": { "$ref": "#/components/schemas/Session" } })),
                        "401": error_response("not signed in; open /login"),
                        "503": error_response("the store is unavailable")
                    }
                }
            },
            "/login": {
                "get": {
                    "summary": "The sign-in page",
                    "responses": { "200": page("a form posting user and password to /login") }
                },
                "post": {
                    "summary": "Sign in",
                    "description": "Success sets the cookie thinline_login (Path=/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure over TLS). Every failure, unknown user and disabled account included, says exactly \"wrong user or password\". Attempts are limited per user name and per client address. Needs an allowed Origin.",
                    "requestBody": {
                        "required": true,
                        "content": { "application/x-www-form-urlencoded": { "schema": {
                            "type": "object",
                            "required": ["user", "password"],
                            "properties": { "user": { "type": "string" }, "password": { "type": "string", "format": "password" } }
                        } } }
                    },
                    "responses": {
                        "303": see_other("signed in: to /"),
                        "400": page("the form is incomplete"),
                        "401": page("wrong user or password"),
                        "403": page("the Origin is missing or not allowed"),
                        "429": page("too many sign-in attempts; Retry-After says when to try again"),
                        "503": page("every password check thread is busy (Retry-After: 1), or the store is unavailable")
                    }
                }
            },
            "/logout": {
                "post": {
                    "summary": "Sign out: ends the login everywhere and clears the cookie",
                    "responses": {
                        "303": see_other("to /login"),
                        "403": page("the Origin is missing or not allowed"),
                        "503": page_unavailable()
                    }
                }
            },
            "/": {
                "get": {
                    "summary": "The terminal page (also /index.html); ?session=ID or ?new=1 choose the session",
                    "security": [{ "loginCookie": [] }],
                    "responses": {
                        "200": page("the page"),
                        "303": see_other("not signed in: to /login"),
                        "404": error_response("this directory serves no page (started without --static-dir)"),
                        "503": error_response("the store is unavailable")
                    }
                }
            },
            "/sessions": {
                "get": {
                    "summary": "The caller's sessions as a page: open, end, start a new one, sign out",
                    "security": [{ "loginCookie": [] }],
                    "responses": {
                        "200": page("the sessions page"),
                        "303": see_other("not signed in: to /login"),
                        "503": page_unavailable()
                    }
                }
            },
            "/sessions/{id}/end": {
                "post": {
                    "summary": "The form twin of POST /v1/sessions/{id}/end",
                    "security": [{ "loginCookie": [] }],
                    "parameters": [session_id],
                    "responses": {
                        "303": see_other("ended: back to /sessions; not signed in: to /login"),
                        "400": page("malformed session id"),
                        "403": page("the Origin is missing or not allowed"),
                        "404": page("the caller has no such session"),
                        "503": page_unavailable()
                    }
                }
            },
            "/v1/config": {
                "get": {
                    "summary": "What the browser client needs: every directory replica",
                    "responses": {
                        "200": ok(json!({
                            "type": "object",
                            "required": ["directories"],
                            "properties": { "directories": { "type": "array", "items": { "type": "string" }, "description": "this replica first, then its peers" } }
                        }))
                    }
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": { "200": ok(json!({ "type": "object" })) }
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness and the store's kind",
                    "responses": {
                        "200": ok(json!({
                            "type": "object",
                            "required": ["status", "store"],
                            "properties": {
                                "status": { "type": "string", "enum": ["ok"] },
                                "store": { "type": "string", "enum": ["sqlite", "postgres", "memory"] }
                            }
                        })),
                        "503": ok(json!({
                            "type": "object",
                            "properties": {
                                "status": { "type": "string", "enum": ["degraded"] },
                                "store": { "type": "string" },
                                "error": { "type": "string" }
                            }
                        }))
                    }
                }
            }
        },
        "components": {
            "securitySchemes": {
                "loginCookie": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "thinline_login",
                    "description": "Set by POST /login (or by a trusted reverse proxy's user header); lasts 12 hours or until sign-out"
                },
                "operatorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The operators' secret (THINLINE_OPERATOR_TOKEN), which no host holds; without one the drain API is off"
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": { "type": "string", "description": "what went wrong and what to do" } }
                },
                "DrainAnswer": {
                    "type": "object",
                    "required": ["id", "drain_requested"],
                    "properties": {
                        "id": { "type": "string" },
                        "drain_requested": { "type": "boolean", "description": "whether an operator's drain now stands" }
                    }
                },
                "Host": {
                    "type": "object",
                    "required": ["id", "url", "load", "draining", "drain", "lease_expires_at", "live"],
                    "properties": {
                        "id": { "type": "string" },
                        "url": { "type": "string" },
                        "load": { "type": "integer" },
                        "draining": { "type": "boolean" },
                        "drain": { "type": "string", "nullable": true, "enum": ["operator", "shutdown"], "description": "operator: an operator's drain, kept until lifted; shutdown: the host's process is stopping, and its next start serves again" },
                        "lease_expires_at": { "type": "integer", "format": "int64" },
                        "live": { "type": "boolean", "description": "lease_expires_at > the store's now" }
                    }
                },
                "PlacementRequest": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "session": { "type": "string", "nullable": true, "pattern": "^[0-9a-fA-F]{32}$" },
                        "new": { "type": "boolean", "default": false, "description": "start a new session" }
                    },
                    "not": {
                        "description": "a session and new: true together are refused (400)",
                        "required": ["session", "new"],
                        "properties": { "session": { "type": "string" }, "new": { "enum": [true] } }
                    }
                },
                "Placement": {
                    "type": "object",
                    "required": ["session", "host", "url", "epoch", "ticket", "ticket_expires_in_ms"],
                    "properties": {
                        "session": { "type": "string", "description": "32 hex digits; minted here for a new session" },
                        "host": { "type": "string" },
                        "url": { "type": "string" },
                        "epoch": { "type": "integer", "description": "1 for a new session" },
                        "ticket": { "type": "string", "description": "for the WebSocket hello; never put it in a URL" },
                        "ticket_expires_in_ms": { "type": "integer" }
                    }
                },
                "Ended": {
                    "type": "object",
                    "required": ["session", "state", "epoch"],
                    "properties": {
                        "session": { "type": "string" },
                        "state": { "type": "string", "enum": ["ended"] },
                        "epoch": { "type": "integer", "description": "after ending; fences the host that served it" }
                    }
                },
                "UnreachableRequest": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["host", "epoch"],
                    "properties": {
                        "host": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$", "description": "the host the client cannot reach" },
                        "epoch": { "type": "integer", "minimum": 0, "maximum": u64::MAX, "description": "the highest epoch the client has seen" }
                    }
                },
                "UnreachableAnswer": {
                    "type": "object",
                    "required": ["decision", "host", "url", "epoch", "ticket", "ticket_expires_in_ms"],
                    "properties": {
                        "decision": { "type": "string", "enum": ["retry_owner", "moved"] },
                        "host": { "type": "string" },
                        "url": { "type": "string" },
                        "epoch": { "type": "integer" },
                        "retry_after_ms": { "type": "integer", "description": "only with retry_owner" },
                        "ticket": { "type": "string", "description": "for the host named here, at this epoch" },
                        "ticket_expires_in_ms": { "type": "integer" }
                    }
                },
                "Session": {
                    "type": "object",
                    "required": ["id", "owner", "owner_host", "epoch", "state", "title", "foreground", "cwd", "created_at", "last_active"],
                    "properties": {
                        "id": { "type": "string" },
                        "owner": { "type": "string" },
                        "owner_host": { "type": "string" },
                        "epoch": { "type": "integer" },
                        "state": { "type": "string", "enum": ["running", "ended"] },
                        "title": { "type": "string", "nullable": true },
                        "foreground": { "type": "string", "nullable": true },
                        "cwd": { "type": "string" },
                        "created_at": { "type": "integer", "format": "int64" },
                        "last_active": { "type": "integer", "format": "int64" }
                    }
                }
            }
        }
    })
}
