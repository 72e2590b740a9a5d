//! The directory's API described as OpenAPI 3.0, served at
//! `/v1/openapi.json`.
//!
//! Hosts and the browser client are written by others against these
//! shapes, so the contract is published by the service itself. It is
//! written by hand: the API is small, and a derive macro would add a heavy
//! dependency for little. The integration tests check that every route is
//! listed.

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

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

/// The whole document.
pub fn spec() -> Value {
    let host_id = path_param("id", "the host's id (letters, digits, '-', '_', '.')");
    let session_id = path_param("id", "the session's id, 32 hex digits");
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Thinline directory",
            "version": "1",
            "description": "Host registry, session placement and failover decisions. Stateless over the shared store: any replica answers any request. All times are milliseconds since the Unix epoch read from the store's clock."
        },
        "paths": {
            "/v1/hosts/{id}/lease": {
                "put": {
                    "summary": "Register or renew a host's lease",
                    "description": "ttl_ms is clamped to 1000..=60000. draining null keeps the stored value (set by an operator); the answer's draining tells the host whether to drain.",
                    "parameters": [host_id],
                    "requestBody": body("LeaseRequest"),
                    "security": [{ "hostToken": [] }],
                    "responses": {
                        "200": ok(json!({ "$ref": "#/components/schemas/LeaseGrant" })),
                        "400": error_response("malformed id, url or body"),
                        "401": error_response("the hosts' token is missing or wrong"),
                        "503": error_response("the store is unavailable")
                    }
                }
            },
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
                    "summary": "Ask a host to drain; it learns so on its next renewal",
                    "parameters": [host_id],
                    "security": [{ "hostToken": [] }],
                    "responses": {
                        "401": error_response("the hosts' token is missing or wrong"),
                        "200": ok(json!({
                            "type": "object",
                            "required": ["id", "draining"],
                            "properties": { "id": { "type": "string" }, "draining": { "type": "boolean" } }
                        })),
                        "404": error_response("no such host"),
                        "503": error_response("the store is unavailable")
                    }
                }
            },
            "/v1/placement": {
                "post": {
                    "summary": "Where to open a session",
                    "description": "A running session whose owner's lease is live goes to its owner; one whose owner's lease expired is moved first. Anything else (no id, unknown or ended session) gets the least-loaded live host that is not draining, for a new session (session and epoch null).",
                    "requestBody": body("PlacementRequest"),
                    "responses": {
                        "200": ok(json!({ "$ref": "#/components/schemas/Placement" })),
                        "400": error_response("malformed session id or body"),
                        "503": error_response("no healthy host, or the store is unavailable")
                    }
                }
            },
            "/v1/sessions/{id}/unreachable": {
                "post": {
                    "summary": "Report that the client cannot reach the session's host",
                    "description": "retry_owner while the owner's lease is live and there is no evidence its process is gone (a probe of its /healthz is refused or answered by another host); moved once the lease expired or the owner is proven gone, or when the session had already moved. Concurrent reports get the same answer; the epoch rises by exactly one per move.",
                    "parameters": [session_id],
                    "requestBody": body("UnreachableRequest"),
                    "responses": {
                        "200": ok(json!({ "$ref": "#/components/schemas/UnreachableAnswer" })),
                        "400": error_response("malformed session id, host or body"),
                        "404": error_response("no such session"),
                        "409": error_response("the session has ended"),
                        "503": error_response("no healthy host, or the store is unavailable")
                    }
                }
            },
            "/v1/sessions": {
                "get": {
                    "summary": "Sessions, newest first",
                    "parameters": [{ "name": "owner", "in": "query", "required": false, "description": "only this user's sessions", "schema": { "type": "string" } }],
                    "responses": {
                        "200": ok(json!({ "type": "array", "items": { "$ref": "#/components/schemas/Session" } })),
                        "503": error_response("the store is unavailable")
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
                "hostToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The hosts' shared secret (THINLINE_HOST_TOKEN), required when the directory has one"
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": { "error": { "type": "string", "description": "what went wrong and what to do" } }
                },
                "LeaseRequest": {
                    "type": "object",
                    "required": ["url", "ttl_ms", "load"],
                    "properties": {
                        "url": { "type": "string", "example": "http://127.0.0.1:8081" },
                        "ttl_ms": { "type": "integer", "minimum": 0, "description": "clamped to 1000..=60000" },
                        "load": { "type": "integer", "minimum": 0, "description": "sessions the host runs" },
                        "draining": { "type": "boolean", "nullable": true }
                    }
                },
                "LeaseGrant": {
                    "type": "object",
                    "required": ["id", "url", "load", "draining", "lease_expires_at", "now"],
                    "properties": {
                        "id": { "type": "string" },
                        "url": { "type": "string" },
                        "load": { "type": "integer" },
                        "draining": { "type": "boolean" },
                        "lease_expires_at": { "type": "integer", "format": "int64" },
                        "now": { "type": "integer", "format": "int64", "description": "the store's clock after the renewal" }
                    }
                },
                "Host": {
                    "type": "object",
                    "required": ["id", "url", "load", "draining", "lease_expires_at", "live"],
                    "properties": {
                        "id": { "type": "string" },
                        "url": { "type": "string" },
                        "load": { "type": "integer" },
                        "draining": { "type": "boolean" },
                        "lease_expires_at": { "type": "integer", "format": "int64" },
                        "live": { "type": "boolean", "description": "lease_expires_at > the store's now" }
                    }
                },
                "PlacementRequest": {
                    "type": "object",
                    "properties": { "session": { "type": "string", "nullable": true, "pattern": "^[0-9a-fA-F]{32}$" } }
                },
                "Placement": {
                    "type": "object",
                    "required": ["session", "host", "url", "epoch"],
                    "properties": {
                        "session": { "type": "string", "nullable": true },
                        "host": { "type": "string" },
                        "url": { "type": "string" },
                        "epoch": { "type": "integer", "nullable": true }
                    }
                },
                "UnreachableRequest": {
                    "type": "object",
                    "required": ["host", "epoch"],
                    "properties": {
                        "host": { "type": "string", "description": "the host the client cannot reach" },
                        "epoch": { "type": "integer", "minimum": 0, "description": "the highest epoch the client has seen" }
                    }
                },
                "UnreachableAnswer": {
                    "type": "object",
                    "required": ["decision", "host", "url", "epoch"],
                    "properties": {
                        "decision": { "type": "string", "enum": ["retry_owner", "moved"] },
                        "host": { "type": "string" },
                        "url": { "type": "string" },
                        "epoch": { "type": "integer" },
                        "retry_after_ms": { "type": "integer", "description": "only with retry_owner" }
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
