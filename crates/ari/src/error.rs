//! [`AriError`]: what can go wrong talking to ARI.

use std::time::Duration;

/// A failed ARI request or connection.
#[derive(Debug, thiserror::Error)]
pub enum AriError {
    /// Asterisk answered with an error status; `message` is ARI's `{"message": "..."}` (or
    /// the body as text when it is not that shape).
    #[error("{method} {path}: asterisk answered {status}: {message}")]
    Status { method: String, path: String, status: u16, message: String },
    /// No answer within the request timeout.
    #[error("{method} {path}: no answer within {timeout:?}")]
    Timeout { method: String, path: String, timeout: Duration },
    /// The request could not be sent or the answer not read (connection refused, reset, TLS…).
    /// `reason` spells out the whole cause chain, for logs that print only the top error.
    #[error("{method} {path}: {reason}")]
    Transport {
        method: String,
        path: String,
        reason: String,
        /// reqwest's error with the URL removed (it may hold `api_key`).
        #[source]
        source: reqwest::Error,
    },
    /// The answer is not the JSON the spec describes.
    #[error("{method} {path}: answer does not match the spec: {source}")]
    Decode {
        method: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// The configured URL cannot be used.
    #[error("invalid ari url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl AriError {
    /// The HTTP status Asterisk answered with, for [`AriError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            AriError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// ARI's error message, for [`AriError::Status`].
    pub fn message(&self) -> Option<&str> {
        match self {
            AriError::Status { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Whether Asterisk answered 404 (the channel, bridge, playback … does not exist). A
    /// channel that hung up meanwhile answers this, so callers often treat it as done.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }

    /// Whether the request timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(self, AriError::Timeout { .. })
    }

    /// Builds [`AriError::Transport`]; drops the URL from reqwest's error so an `api_key` never
    /// reaches a log.
    pub(crate) fn transport(method: &str, path: &str, source: reqwest::Error) -> Self {
        let source = source.without_url();
        let mut reason = source.to_string();
        let mut cause = std::error::Error::source(&source);
        while let Some(inner) = cause {
            reason.push_str(": ");
            reason.push_str(&inner.to_string());
            cause = inner.source();
        }
        AriError::Transport { method: method.to_owned(), path: path.to_owned(), reason, source }
    }

    /// Builds [`AriError::Status`] from an error answer's body.
    pub(crate) fn from_status(method: &str, path: &str, status: u16, body: &[u8]) -> Self {
        AriError::Status { method: method.to_owned(), path: path.to_owned(), status, message: error_message(body) }
    }
}

/// ARI's error bodies are `{"message": "..."}`; anything else is kept as (trimmed) text.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(parsed) => parsed.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A panic is a test failure.
mod tests {
    use super::*;

    #[test]
    fn status_error_carries_aris_message() {
        let err = AriError::from_status("DELETE", "/ari/channels/1.2", 404, br#"{"message":"Channel not found"}"#);
        assert_eq!(err.status(), Some(404));
        assert_eq!(err.message(), Some("Channel not found"));
        assert!(err.is_not_found());
        assert!(!err.is_timeout());
        assert_eq!(err.to_string(), "DELETE /ari/channels/1.2: asterisk answered 404: Channel not found");
    }

    #[test]
    fn non_json_error_body_is_kept_as_text() {
        let err = AriError::from_status("GET", "/ari/asterisk/info", 401, b"Unauthorized\n");
        assert_eq!(err.status(), Some(401));
        assert_eq!(err.message(), Some("Unauthorized"));
        assert!(!err.is_not_found());
    }

    #[test]
    fn other_variants_have_no_status() {
        let err = AriError::Timeout {
            method: "GET".into(),
            path: "/ari/asterisk/ping".into(),
            timeout: Duration::from_millis(250),
        };
        assert_eq!(err.status(), None);
        assert_eq!(err.message(), None);
        assert!(err.is_timeout());
    }
}
