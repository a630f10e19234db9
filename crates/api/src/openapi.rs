//! `/openapi.json`: the OpenAPI 3.1 description of every route, built from [`ROUTES`], the same
//! table `tests/rest.rs` checks against the router (each documented route answers, each
//! route is documented).

use serde_json::{Value, json};

/// One documented operation.
#[derive(Debug, Clone, Copy)]
pub struct RouteDoc {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Needs a bearer token.
    pub auth: bool,
    /// Success status and its description.
    pub ok: (u16, &'static str),
    /// Error statuses it can answer (besides 401 on authenticated routes).
    pub errors: &'static [u16],
    /// The request body's schema name under `components.schemas`.
    pub body: Option<&'static str>,
}

const fn route(method: &'static str, path: &'static str, summary: &'static str) -> RouteDoc {
    RouteDoc { method, path, summary, auth: true, ok: (200, "OK"), errors: &[503], body: None }
}

/// Every route the API serves.
pub const ROUTES: &[RouteDoc] = &[
    RouteDoc {
        ok: (201, "The call was placed: `{call_id, channel_id}`, and `Location`"),
        errors: &[400, 413, 415, 422, 502, 503],
        body: Some("OriginateRequest"),
        ..route("post", "/v1/calls", "Originate a call")
    },
    RouteDoc {
        ok: (200, "`{calls, total, offset, limit}`, newest first"),
        errors: &[400, 503],
        ..route("get", "/v1/calls", "List calls (query: state=active|ended, from, before (RFC 3339), offset, limit)")
    },
    RouteDoc {
        ok: (200, "The call: state, timings, parties, legs with languages and targets"),
        errors: &[404, 503],
        ..route("get", "/v1/calls/{call_id}", "Get one call")
    },
    RouteDoc {
        ok: (202, "The gateway is hanging the call up"),
        errors: &[400, 404, 409, 502, 503],
        body: Some("HangupRequest"),
        ..route("post", "/v1/calls/{call_id}/hangup", "Hang up a call (body optional)")
    },
    RouteDoc {
        ok: (202, "The gateway applied the change; `LanguageChanged` follows on the live routes"),
        errors: &[400, 404, 409, 413, 415, 422, 502, 503],
        body: Some("LanguageRequest"),
        ..route("put", "/v1/calls/{call_id}/legs/{leg}/language", "Change a leg's language and targets mid-call")
    },
    RouteDoc {
        ok: (
            200,
            "format=json (default): `{call_id, lines}`; srt: application/x-subrip; vtt: text/vtt; txt: text/plain",
        ),
        errors: &[400, 404, 422, 503],
        ..route(
            "get",
            "/v1/calls/{call_id}/transcript",
            "The call's final transcript with translations (query: format, language)",
        )
    },
    RouteDoc {
        ok: (101, "WebSocket: stored events with `seq` after `?after=<seq>`, then live events and partials"),
        errors: &[400, 404, 503],
        ..route("get", "/v1/calls/{call_id}/live", "Live events of one call (WebSocket; token also as ?access_token=)")
    },
    RouteDoc {
        ok: (101, "WebSocket: every call's stored events with `cursor` and `seq`, and partials"),
        errors: &[400, 503],
        ..route(
            "get",
            "/v1/live",
            "Live events of every call (WebSocket; query: after=<cursor>, calls, types, partials)",
        )
    },
    RouteDoc {
        ok: (200, "`{languages: [{code, name}]}`: the languages a leg may speak or be translated into"),
        ..route("get", "/v1/languages", "Supported languages")
    },
    RouteDoc { auth: false, errors: &[], ..route("get", "/healthz", "Alive") },
    RouteDoc {
        auth: false,
        ..route("get", "/readyz", "Ready: NATS (when not in-process) and Redis (when configured) answer")
    },
    RouteDoc { auth: false, errors: &[], ..route("get", "/metrics", "Prometheus metrics") },
    RouteDoc { auth: false, errors: &[], ..route("get", "/openapi.json", "This document") },
];

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad request: malformed JSON, wrong fields, bad query",
        401 => "Missing or wrong bearer token",
        404 => "Unknown call or leg",
        409 => "The call has already ended",
        413 => "Body larger than api.max_body_bytes",
        415 => "Body is not application/json",
        422 => "Unsupported language (the message lists the supported codes)",
        502 => "The call-control gateway failed",
        503 => "NATS, Redis or the gateway is unavailable, or the request timed out",
        _ => "Error",
    }
}

fn schemas() -> Value {
    let leg = json!({
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "language": { "type": "string", "description": "BCP 47 tag; absent lets STT detect it" },
            "targets": { "type": "array", "items": { "type": "string" } }
        }
    });
    json!({
        "Problem": {
            "type": "object",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": { "type": "string" },
                "title": { "type": "string" },
                "status": { "type": "integer" },
                "detail": { "type": "string" }
            }
        },
        "LegLanguage": leg,
        "OriginateRequest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["endpoint"],
            "properties": {
                "endpoint": { "type": "string", "example": "PJSIP/1000" },
                "caller_id": { "type": "string" },
                "timeout_s": { "type": "integer", "minimum": 0 },
                "callee": { "$ref": "#/components/schemas/LegLanguage" },
                "caller": { "$ref": "#/components/schemas/LegLanguage" }
            }
        },
        "HangupRequest": {
            "type": "object",
            "additionalProperties": false,
            "properties": { "reason": { "type": "string" } }
        },
        "LanguageRequest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["language"],
            "properties": {
                "language": { "type": "string" },
                "targets": { "type": "array", "items": { "type": "string" } }
            }
        }
    })
}

/// The OpenAPI document.
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let mut responses = serde_json::Map::new();
        responses.insert(route.ok.0.to_string(), json!({ "description": route.ok.1 }));
        let mut errors = route.errors.to_vec();
        if route.auth {
            errors.push(401);
        }
        errors.sort_unstable();
        for status in errors {
            responses.insert(
                status.to_string(),
                json!({
                    "description": status_text(status),
                    "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
                }),
            );
        }
        let mut operation = json!({ "summary": route.summary, "responses": responses });
        let parameters: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        if !parameters.is_empty() {
            operation["parameters"] = Value::Array(parameters);
        }
        if let Some(body) = route.body {
            operation["requestBody"] = json!({
                "required": route.method != "post" || body != "HangupRequest",
                "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{body}") } } }
            });
        }
        operation["security"] = if route.auth { json!([{ "bearer": [] }]) } else { json!([]) };
        let item = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        item[route.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Dragoman operator API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Live call transcription and translation. Errors are application/problem+json."
        },
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}
