//! Every error the API answers, as `application/problem+json` (RFC 9457): `type`, `title`,
//! `status` and a `detail` that says what to fix. 4xx are returned unlogged; 5xx are logged and
//! keep their detail short (the log has the cause).

use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dragoman_bus::RequestError;
use dragoman_bus::control::{ControlError, ErrorCode};
use serde::Serialize;

use crate::store::StoreError;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer: a status and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: StatusCode,
    pub detail: String,
}

/// The body of every error answer.
#[derive(Debug, Serialize)]
pub struct Problem<'a> {
    /// `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub title: &'a str,
    pub status: u16,
    pub detail: &'a str,
}

impl AppError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: detail.into() }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    pub fn unknown_call(call_id: &str) -> Self {
        Self::not_found(format!("no call {call_id:?} (unknown, or its retention ran out)"))
    }

    pub fn call_ended(call_id: &str) -> Self {
        Self::new(StatusCode::CONFLICT, format!("call {call_id:?} has already ended"))
    }

    pub fn unsupported(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        problem(self.status, &self.detail)
    }
}

/// A problem+json answer.
pub fn problem(status: StatusCode, detail: &str) -> Response {
    if status.is_server_error() {
        tracing::warn!(status = status.as_u16(), detail, "request failed");
    }
    let body = Problem {
        kind: "about:blank",
        title: status.canonical_reason().unwrap_or("Error"),
        status: status.as_u16(),
        detail,
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> Self {
        if let StoreError::Invalid(message) = &err {
            Self::bad_request(message.clone())
        } else if err.is_retryable() {
            Self::unavailable(format!("the calls store is unavailable: {err}"))
        } else {
            Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the calls store failed: {err}"))
        }
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> Self {
        let status = match rejection.status() {
            // Too large and wrong content type keep their own status; every other rejection
            // (syntax, wrong shape, missing field) is a bad request.
            status @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => status,
            _ => StatusCode::BAD_REQUEST,
        };
        Self::new(status, rejection.body_text())
    }
}

impl From<RequestError> for AppError {
    fn from(err: RequestError) -> Self {
        match err {
            RequestError::Bus(err) => Self::unavailable(format!("call control is unavailable: {err}")),
            RequestError::Decode(err) => {
                Self::new(StatusCode::BAD_GATEWAY, format!("call control answered unreadably: {err}"))
            }
        }
    }
}

impl From<ControlError> for AppError {
    fn from(err: ControlError) -> Self {
        let status = match err.code {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Unsupported => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Exhausted => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Upstream | ErrorCode::Internal | ErrorCode::Other => StatusCode::BAD_GATEWAY,
        };
        Self::new(status, err.message)
    }
}
