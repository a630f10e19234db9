//! Media ingest: RTP (and AudioSocket, WebSocket media) from Asterisk into voice-segmented
//! utterances on the bus.
//!
//! Layout: protocol parsing ([`rtp`], [`audiosocket`]), signal ([`g711`], [`jitter`],
//! [`resample`], [`vad`], [`endpoint`]), one leg's path ([`pipeline`], [`leg`], [`rtp_leg`]) and
//! the service ([`service`]: allocation, language state, call ends).

pub mod endpoint;
pub mod resample;
pub mod vad;

pub mod audiosocket;
pub mod g711;
pub mod jitter;
pub mod rtp;

pub mod leg;
pub mod pipeline;
pub mod rtp_leg;
pub mod service;
pub mod streams;

pub use service::{Ingest, run};

/// The service name used in logs, metrics and the CLI.
pub const SERVICE: &str = "media-ingest";
