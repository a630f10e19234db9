//! Request/reply messages between services: endpoint allocation and operator commands.
//!
//! Every reply is a [`Reply`]: `{"ok": …}` or `{"error": {"code": …, "message": …}}`, so a
//! requester always learns why something failed.

use serde::{Deserialize, Serialize};

use crate::audio::AudioFormat;

/// How Asterisk's externalMedia channel delivers a leg's audio.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaTransport {
    /// RTP over UDP (externalMedia `encapsulation=rtp`, `transport=udp`).
    #[default]
    Rtp,
    /// AudioSocket over TCP (`encapsulation=audiosocket`, `transport=tcp`).
    Audiosocket,
    /// WebSocket media (`transport=websocket`).
    Websocket,
}

/// A leg's language settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegLanguage {
    /// BCP-47 language the party speaks; `None` lets STT detect it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Languages to translate this leg into.
    #[serde(default)]
    pub targets: Vec<String>,
}

/// Gateway → media ingest: give me an endpoint Asterisk can send this leg's audio to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocateEndpoint {
    pub call_id: String,
    pub leg: String,
    pub format: AudioFormat,
    #[serde(default)]
    pub transport: MediaTransport,
    #[serde(default)]
    pub language: LegLanguage,
    /// When the call started (Unix ms), so utterance times are counted from call start on every
    /// leg; media ingest counts from the allocation when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_started_at_ms: Option<u64>,
}

/// Media ingest → gateway: send the leg's audio here (`external_host` for externalMedia).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointAllocated {
    pub host: String,
    pub port: u16,
    pub transport: MediaTransport,
    /// For AudioSocket: the UUID Asterisk must send (externalMedia `data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
}

impl EndpointAllocated {
    /// `host:port`, as externalMedia's `external_host` wants it.
    pub fn external_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Gateway → media ingest: the leg is gone, free its endpoint now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseEndpoint {
    pub call_id: String,
    pub leg: String,
}

/// API → gateway: place a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Originate {
    /// Asterisk endpoint to dial, e.g. `PJSIP/1000`.
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    /// Language of the called party (leg `callee`).
    #[serde(default)]
    pub callee: LegLanguage,
    /// Language of the calling side (leg `caller`), when the call bridges two parties.
    #[serde(default)]
    pub caller: LegLanguage,
    /// Ring timeout in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_s: Option<u32>,
}

/// Gateway → API: the call was placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Originated {
    pub call_id: String,
    pub channel_id: String,
}

/// API → gateway: end a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hangup {
    pub call_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// API → gateway: change a leg's language and targets mid-call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetLanguage {
    pub call_id: String,
    pub leg: String,
    pub language: String,
    #[serde(default)]
    pub targets: Vec<String>,
}

/// An empty success.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {}

/// Why a request failed, in a form the API can turn into a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    NotFound,
    /// The call already ended.
    Conflict,
    /// The language or pair is not supported.
    Unsupported,
    /// No capacity left (e.g. the RTP port range is exhausted).
    Exhausted,
    /// Asterisk or another dependency failed.
    Upstream,
    Internal,
    /// A code newer than this build; the message still explains it.
    #[serde(other)]
    Other,
}

/// The error half of a [`Reply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ControlError {
    pub code: ErrorCode,
    pub message: String,
}

impl ControlError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// Every reply on a request/reply subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<T> {
    Ok(T),
    Error(ControlError),
}

impl<T> From<Result<T, ControlError>> for Reply<T> {
    fn from(result: Result<T, ControlError>) -> Self {
        match result {
            Ok(value) => Self::Ok(value),
            Err(err) => Self::Error(err),
        }
    }
}

impl<T> Reply<T> {
    pub fn into_result(self) -> Result<T, ControlError> {
        match self {
            Self::Ok(value) => Ok(value),
            Self::Error(err) => Err(err),
        }
    }
}
