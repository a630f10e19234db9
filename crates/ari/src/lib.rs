//! The hand-rolled Asterisk ARI client (REST over reqwest, `/ari/events` over
//! tokio-tungstenite), typed from the ARI Swagger of Asterisk 22 (vendored in
//! `asterisk/ari-spec`, checked by `tests/spec.rs`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), dragoman_ari::AriError> {
//! use dragoman_ari::{AriClient, AriConfig, EventsConfig, ExternalMedia, Incoming, Event};
//! use tokio_util::sync::CancellationToken;
//!
//! let ari = AriClient::new(AriConfig::new("http://127.0.0.1:8088", "dragoman", "secret"))?;
//! let mut events = ari.events(EventsConfig::new("dragoman"), CancellationToken::new());
//! while let Some(item) = events.recv().await {
//!     if let Incoming::Event(Event::StasisStart(start)) = item {
//!         ari.answer(&start.channel.id).await?;
//!         let media = ari
//!             .external_media(&ExternalMedia::rtp("dragoman", "10.0.0.5:4000", "slin16"))
//!             .await?;
//!         let port = media.channel_var("UNICASTRTP_LOCAL_PORT");
//!         # let _ = port;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Layout:
//! - [`client`]: [`AriClient`] and [`AriConfig`] (base URL with http.conf prefix, Basic or
//!   `api_key` auth, timeouts); operations in [`channels`], [`bridges`] and [`resources`]
//!   (playbacks, applications, asterisk), parameters in [`params`].
//! - [`models`] and [`events`]: the spec's models; [`Event`] has a variant per event type and
//!   [`Event::Unknown`] for the rest. [`time`] reads Asterisk's timestamps.
//! - [`stream`]: [`EventStream`], the events WebSocket with reconnects and keepalive.
//! - [`error`]: [`AriError`], with the HTTP status and ARI's message.
//!
//! Status: the REST operations call control needs (channels, bridges, playbacks,
//! applications, asterisk info/ping) and the full event set. Recordings, endpoints, sounds,
//! device states, mailboxes, MOH, RTP statistics and dynamic config are not wrapped yet.

pub mod bridges;
pub mod channels;
pub mod client;
pub mod error;
pub mod events;
pub mod models;
pub mod params;
pub mod resources;
pub mod stream;
pub mod time;

pub use client::{AriClient, AriConfig, AuthMode};
pub use error::AriError;
pub use events::{Event, EventCommon, EventDecodeError, UnknownEvent};
pub use models::{
    Application, AsteriskInfo, AsteriskPing, Bridge, CallerId, Channel, ChannelState, DialplanCep, LiveRecording,
    Playback, Variable,
};
pub use params::{
    AddChannel, BridgeFeature, ConnectionType, CreateBridge, CreateChannel, Dtmf, Encapsulation, ExternalMedia,
    HangupReason, MediaDirection, MuteDirection, Originate, Play, Snoop, SnoopDirection, TalkDetect, Transport,
};
pub use stream::{Backoff, ConnectionState, EventStream, EventsConfig, Incoming};
