//! Encoding and decoding of everything that travels on the bus. Only this crate serializes.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::events::Event;

/// A message could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("missing header {name}")]
    MissingHeader { name: &'static str },
    #[error("invalid header {name}: {reason}")]
    InvalidHeader { name: &'static str, reason: String },
    #[error("invalid payload: {0}")]
    InvalidPayload(String),
    #[error("unknown event type")]
    UnknownEvent,
}

/// Serializes a wire value as JSON.
pub fn encode<T: Serialize>(value: &T) -> Bytes {
    // Serializing our own plain data types cannot fail (no maps with non-string keys, no
    // failing Serialize impls), so an error here is a programming error worth surfacing loudly
    // in tests; in release it degrades to an empty object that consumers reject and count.
    match serde_json::to_vec(value) {
        Ok(bytes) => Bytes::from(bytes),
        Err(err) => {
            debug_assert!(false, "wire type failed to serialize: {err}");
            Bytes::from_static(b"{}")
        }
    }
}

/// Parses a wire value from JSON.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, DecodeError> {
    Ok(serde_json::from_slice(payload)?)
}

/// Parses an event; an event type this build does not know is [`DecodeError::UnknownEvent`].
pub fn decode_event(payload: &[u8]) -> Result<Event, DecodeError> {
    match decode::<Event>(payload)? {
        Event::Unknown => Err(DecodeError::UnknownEvent),
        event => Ok(event),
    }
}
