//! Events from `/ari/events` (`events.json`): one [`Event`] variant per subtype of the spec's
//! `Event` model, each with a struct of that model's fields, and [`Event::Unknown`] for types
//! this client does not know (Asterisk adds event types over time; they are not errors).
//!
//! Every event carries [`EventCommon`] (`application`, `timestamp`, `asterisk_id`), flattened
//! into its struct; the `type` field picks the variant and is not stored twice.

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::models::{
    Bridge, Channel, ContactInfo, DeviceState, Endpoint, JsonObject, LiveRecording, Peer, Playback, ReferTo,
    ReferredBy, TextMessage,
};

/// Fields every event has (from the spec's `Message` and `Event` models).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCommon {
    /// The Stasis application the event was sent to.
    pub application: String,
    /// When Asterisk raised the event.
    #[serde(with = "crate::time::required")]
    pub timestamp: DateTime<FixedOffset>,
    /// The Asterisk instance that raised it (its `entity_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asterisk_id: Option<String>,
}

/// A frame that is not an event this client can read.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    #[error("frame is not json: {0}")]
    Json(#[source] serde_json::Error),
    #[error("frame has no text field \"type\"")]
    MissingType,
    #[error("{event_type} event does not match the spec: {source}")]
    Invalid {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
}

/// An event of a type this client does not know, kept as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownEvent {
    /// The frame's `type`.
    pub event_type: String,
    /// The common fields, when the frame has them.
    pub common: Option<EventCommon>,
    /// The whole frame.
    pub raw: Value,
}

/// Declares the event structs' enum: `Variant = "type name"`, in `events.json` order.
macro_rules! event_enum {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// An event from Asterisk. Payloads are boxed so the enum stays small to move.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $($(#[$doc])* $variant(Box<$variant>),)*
            /// A `type` this client does not know: ignore it.
            Unknown(Box<UnknownEvent>),
        }

        impl Event {
            /// Every event type this client decodes, as Asterisk names them.
            pub const KNOWN_TYPES: &'static [&'static str] = &[$($name),*];

            /// The event's `type` as Asterisk names it.
            pub fn type_name(&self) -> &str {
                match self {
                    $(Event::$variant(_) => $name,)*
                    Event::Unknown(event) => &event.event_type,
                }
            }

            /// The common fields (absent only for an unknown event that lacks them).
            pub fn common(&self) -> Option<&EventCommon> {
                match self {
                    $(Event::$variant(event) => Some(&event.common),)*
                    Event::Unknown(event) => event.common.as_ref(),
                }
            }

            /// Decodes a frame of a known type; hands the frame back when the type is unknown.
            fn decode_known(event_type: &str, frame: Value) -> Result<Result<Self, serde_json::Error>, Value> {
                match event_type {
                    $($name => Ok(serde_json::from_value(frame).map(|e| Event::$variant(Box::new(e)))),)*
                    _ => Err(frame),
                }
            }

            fn payload_json(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $(Event::$variant(event) => serde_json::to_value(event),)*
                    Event::Unknown(event) => Ok(event.raw.clone()),
                }
            }
        }
    };
}

event_enum! {
    DeviceStateChanged = "DeviceStateChanged",
    PlaybackStarted = "PlaybackStarted",
    PlaybackContinuing = "PlaybackContinuing",
    PlaybackFinished = "PlaybackFinished",
    RecordingStarted = "RecordingStarted",
    RecordingFinished = "RecordingFinished",
    RecordingFailed = "RecordingFailed",
    ApplicationMoveFailed = "ApplicationMoveFailed",
    ApplicationRegistered = "ApplicationRegistered",
    ApplicationUnregistered = "ApplicationUnregistered",
    /// Another WebSocket subscribed the same application; this one no longer gets its events.
    ApplicationReplaced = "ApplicationReplaced",
    BridgeCreated = "BridgeCreated",
    BridgeDestroyed = "BridgeDestroyed",
    BridgeMerged = "BridgeMerged",
    BridgeBlindTransfer = "BridgeBlindTransfer",
    BridgeAttendedTransfer = "BridgeAttendedTransfer",
    BridgeVideoSourceChanged = "BridgeVideoSourceChanged",
    ChannelCreated = "ChannelCreated",
    ChannelDestroyed = "ChannelDestroyed",
    ChannelEnteredBridge = "ChannelEnteredBridge",
    ChannelLeftBridge = "ChannelLeftBridge",
    ChannelStateChange = "ChannelStateChange",
    /// A DTMF digit ended.
    ChannelDtmfReceived = "ChannelDtmfReceived",
    ChannelDialplan = "ChannelDialplan",
    ChannelCallerId = "ChannelCallerId",
    ChannelUserevent = "ChannelUserevent",
    ChannelHangupRequest = "ChannelHangupRequest",
    ChannelVarset = "ChannelVarset",
    ChannelToneDetected = "ChannelToneDetected",
    /// Talking started (needs `TALK_DETECT` on the channel).
    ChannelTalkingStarted = "ChannelTalkingStarted",
    /// Talking finished (needs `TALK_DETECT` on the channel).
    ChannelTalkingFinished = "ChannelTalkingFinished",
    ChannelHold = "ChannelHold",
    ChannelUnhold = "ChannelUnhold",
    ContactStatusChange = "ContactStatusChange",
    EndpointStateChange = "EndpointStateChange",
    Dial = "Dial",
    /// The channel left the application: treat it as the end of the channel.
    StasisEnd = "StasisEnd",
    /// A channel entered the application.
    StasisStart = "StasisStart",
    TextMessageReceived = "TextMessageReceived",
    ChannelConnectedLine = "ChannelConnectedLine",
    PeerStatusChange = "PeerStatusChange",
    ChannelTransfer = "ChannelTransfer",
    /// The answer to a REST request sent over the WebSocket.
    RestResponse = "RESTResponse",
    CallBroadcast = "CallBroadcast",
    CallClaimed = "CallClaimed",
}

impl Event {
    /// Decodes one WebSocket text frame.
    pub fn from_json(frame: &str) -> Result<Self, EventDecodeError> {
        let value: Value = serde_json::from_str(frame).map_err(EventDecodeError::Json)?;
        Self::from_value(value)
    }

    /// Decodes an event already parsed as JSON.
    pub fn from_value(frame: Value) -> Result<Self, EventDecodeError> {
        let event_type = frame.get("type").and_then(Value::as_str).ok_or(EventDecodeError::MissingType)?.to_owned();
        match Self::decode_known(&event_type, frame) {
            Ok(Ok(event)) => Ok(event),
            Ok(Err(source)) => Err(EventDecodeError::Invalid { event_type, source }),
            Err(frame) => {
                let common = EventCommon::deserialize(&frame).ok();
                Ok(Event::Unknown(Box::new(UnknownEvent { event_type, common, raw: frame })))
            }
        }
    }

    /// Whether this is a type the client does not know.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Event::Unknown(_))
    }

    /// The id of the channel the event is mainly about, for events that name one.
    pub fn channel_id(&self) -> Option<&str> {
        let channel = match self {
            Event::StasisStart(e) => &e.channel,
            Event::StasisEnd(e) => &e.channel,
            Event::ChannelCreated(e) => &e.channel,
            Event::ChannelDestroyed(e) => &e.channel,
            Event::ChannelStateChange(e) => &e.channel,
            Event::ChannelDtmfReceived(e) => &e.channel,
            Event::ChannelDialplan(e) => &e.channel,
            Event::ChannelCallerId(e) => &e.channel,
            Event::ChannelHangupRequest(e) => &e.channel,
            Event::ChannelToneDetected(e) => &e.channel,
            Event::ChannelTalkingStarted(e) => &e.channel,
            Event::ChannelTalkingFinished(e) => &e.channel,
            Event::ChannelHold(e) => &e.channel,
            Event::ChannelUnhold(e) => &e.channel,
            Event::ChannelLeftBridge(e) => &e.channel,
            Event::ChannelConnectedLine(e) => &e.channel,
            Event::ApplicationMoveFailed(e) => &e.channel,
            Event::BridgeBlindTransfer(e) => &e.channel,
            Event::CallBroadcast(e) => &e.channel,
            Event::CallClaimed(e) => &e.channel,
            Event::Dial(e) => &e.peer,
            Event::ChannelEnteredBridge(e) => e.channel.as_ref()?,
            Event::ChannelVarset(e) => e.channel.as_ref()?,
            Event::ChannelUserevent(e) => e.channel.as_ref()?,
            _ => return None,
        };
        Some(&channel.id)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let frame = Value::deserialize(deserializer)?;
        Event::from_value(frame).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut frame = self.payload_json().map_err(serde::ser::Error::custom)?;
        if let Value::Object(fields) = &mut frame {
            fields.insert("type".to_owned(), Value::String(self.type_name().to_owned()));
        }
        frame.serialize(serializer)
    }
}

/// Declares an event struct: the common fields flattened, then the spec's fields.
macro_rules! event_struct {
    ($(#[$doc:meta])* $name:ident { $($(#[$field_doc:meta])* $field:ident: $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            #[serde(flatten)]
            pub common: EventCommon,
            $($(#[$field_doc])* pub $field: $ty,)*
        }
    };
}

event_struct!(
    /// A device state changed.
    DeviceStateChanged { device_state: DeviceState, }
);
event_struct!(
    /// A playback started.
    PlaybackStarted { playback: Playback, }
);
event_struct!(
    /// A playback moved on to the next media URI of its list.
    PlaybackContinuing { playback: Playback, }
);
event_struct!(
    /// A playback ended (`playback.state` is `done` or `failed`).
    PlaybackFinished { playback: Playback, }
);
event_struct!(
    /// A recording started.
    RecordingStarted { recording: LiveRecording, }
);
event_struct!(
    /// A recording finished.
    RecordingFinished { recording: LiveRecording, }
);
event_struct!(
    /// A recording failed.
    RecordingFailed { recording: LiveRecording, }
);
event_struct!(
    /// A channel could not be moved to another application.
    ApplicationMoveFailed { channel: Channel, destination: String, args: Vec<String>, }
);
event_struct!(
    /// The application was registered.
    ApplicationRegistered {}
);
event_struct!(
    /// The application was unregistered.
    ApplicationUnregistered {}
);
event_struct!(
    /// The application's events now go to another WebSocket.
    ApplicationReplaced {}
);
event_struct!(
    /// A bridge was created.
    BridgeCreated { bridge: Bridge, }
);
event_struct!(
    /// A bridge was destroyed.
    BridgeDestroyed { bridge: Bridge, }
);
event_struct!(
    /// `bridge_from` was merged into `bridge`.
    BridgeMerged { bridge: Bridge, bridge_from: Bridge, }
);

/// A blind transfer happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeBlindTransfer {
    #[serde(flatten)]
    pub common: EventCommon,
    /// The channel doing the transfer.
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferee: Option<Channel>,
    pub exten: String,
    pub context: String,
    /// `Success`, `Fail`, `Invalid` or `Not Permitted`.
    pub result: String,
    pub is_external: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
}

/// An attended transfer happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeAttendedTransfer {
    #[serde(flatten)]
    pub common: EventCommon,
    pub transferer_first_leg: Channel,
    pub transferer_second_leg: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferee: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_target: Option<Channel>,
    pub result: String,
    pub is_external: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferer_first_leg_bridge: Option<Bridge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferer_second_leg_bridge: Option<Bridge>,
    /// `bridge`, `application`, `link`, `threeway` or `fail`.
    pub destination_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_bridge: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_application: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_link_first_leg: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_link_second_leg: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_threeway_channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_threeway_bridge: Option<Bridge>,
}

/// A bridge's video source changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeVideoSourceChanged {
    #[serde(flatten)]
    pub common: EventCommon,
    pub bridge: Bridge,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_video_source_id: Option<String>,
}

event_struct!(
    /// A channel was created (seen with `subscribeAll` or an endpoint subscription).
    ChannelCreated { channel: Channel, }
);

/// A channel was destroyed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelDestroyed {
    #[serde(flatten)]
    pub common: EventCommon,
    /// Q.850 hangup cause.
    pub cause: i64,
    pub cause_txt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tech_cause: Option<i64>,
    pub channel: Channel,
}

/// A channel entered a bridge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelEnteredBridge {
    #[serde(flatten)]
    pub common: EventCommon,
    pub bridge: Bridge,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
}

event_struct!(
    /// A channel left a bridge.
    ChannelLeftBridge { bridge: Bridge, channel: Channel, }
);
event_struct!(
    /// A channel's state changed (the new one is in `channel.state`).
    ChannelStateChange { channel: Channel, }
);
event_struct!(
    /// A DTMF digit was received; sent when the digit ends.
    ChannelDtmfReceived {
        /// `0`-`9`, `A`-`E`, `#` or `*`.
        digit: String,
        /// How long the digit was held.
        duration_ms: i64,
        channel: Channel,
    }
);
event_struct!(
    /// A channel moved in the dialplan.
    ChannelDialplan { channel: Channel, dialplan_app: String, dialplan_app_data: String, }
);
event_struct!(
    /// A channel's caller id changed.
    ChannelCallerId { caller_presentation: i64, caller_presentation_txt: String, channel: Channel, }
);

/// A user event (`UserEvent()` in the dialplan or `POST /events/user/{eventName}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelUserevent {
    #[serde(flatten)]
    pub common: EventCommon,
    pub eventname: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    pub userevent: JsonObject,
}

/// Someone asked for a channel to hang up (may arrive more than once per channel).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelHangupRequest {
    #[serde(flatten)]
    pub common: EventCommon,
    /// Q.850 hangup cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tech_cause: Option<i64>,
    /// Whether the hangup was soft (the channel may go on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft: Option<bool>,
    pub channel: Channel,
}

/// A variable was set; `channel` is absent for global variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelVarset {
    #[serde(flatten)]
    pub common: EventCommon,
    pub variable: String,
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
}

event_struct!(
    /// A tone was detected (`TONE_DETECT`).
    ChannelToneDetected { channel: Channel, }
);
event_struct!(
    /// Talking started on a channel with `TALK_DETECT`.
    ChannelTalkingStarted { channel: Channel, }
);
event_struct!(
    /// Talking finished on a channel with `TALK_DETECT`.
    ChannelTalkingFinished {
        channel: Channel,
        /// How long the talking lasted, in milliseconds.
        duration: i64,
    }
);

/// A channel was put on hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelHold {
    #[serde(flatten)]
    pub common: EventCommon,
    pub channel: Channel,
    /// The music on hold class the holder asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub musicclass: Option<String>,
}

event_struct!(
    /// A channel was taken off hold.
    ChannelUnhold { channel: Channel, }
);
event_struct!(
    /// A contact's status changed.
    ContactStatusChange { endpoint: Endpoint, contact_info: ContactInfo, }
);
event_struct!(
    /// An endpoint's state changed.
    EndpointStateChange { endpoint: Endpoint, }
);

/// Dialing progressed (`dialstatus` empty while dialing, then `ANSWER`, `BUSY`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dial {
    #[serde(flatten)]
    pub common: EventCommon,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<Channel>,
    /// The channel being dialed.
    pub peer: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialstring: Option<String>,
    pub dialstatus: String,
}

event_struct!(
    /// A channel left the application.
    StasisEnd { channel: Channel, }
);

/// A channel entered the application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StasisStart {
    #[serde(flatten)]
    pub common: EventCommon,
    /// Arguments given to `Stasis()` (or `appArgs`, or externalMedia's `data`).
    pub args: Vec<String>,
    pub channel: Channel,
    /// The channel this one replaces (after a masquerade or transfer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_channel: Option<Channel>,
}

/// A text message was received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextMessageReceived {
    #[serde(flatten)]
    pub common: EventCommon,
    pub message: TextMessage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
}

event_struct!(
    /// A channel's connected line changed.
    ChannelConnectedLine { channel: Channel, }
);
event_struct!(
    /// A peer's status changed.
    PeerStatusChange { endpoint: Endpoint, peer: Peer, }
);

/// A REFER arrived for a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelTransfer {
    #[serde(flatten)]
    pub common: EventCommon,
    /// Transfer state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub refer_to: ReferTo,
    pub referred_by: ReferredBy,
}

/// The answer to a REST request sent over the WebSocket (`RESTResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestResponse {
    #[serde(flatten)]
    pub common: EventCommon,
    pub transaction_id: String,
    pub request_id: String,
    pub status_code: i64,
    pub reason_phrase: String,
    pub uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_body: Option<String>,
}

/// A channel was offered to applications that may claim it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallBroadcast {
    #[serde(flatten)]
    pub common: EventCommon,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub called: Option<String>,
}

event_struct!(
    /// An application claimed a broadcast channel.
    CallClaimed { channel: Channel, winner_app: String, }
);

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A panic is a test failure.
mod tests {
    use chrono::Timelike;
    use serde_json::json;

    use super::*;

    fn channel_json(id: &str, state: &str) -> Value {
        json!({
            "id": id,
            "protocol_id": "",
            "name": "Local/play@test-00000000;1",
            "state": state,
            "caller": {"name": "", "number": "100"},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {
                "context": "test", "exten": "play", "priority": 2,
                "app_name": "Stasis", "app_data": "dragoman"
            },
            "creationtime": "2026-11-25T10:11:12.345+0000",
            "language": "en"
        })
    }

    fn frame(event_type: &str, fields: Value) -> String {
        let mut frame = json!({
            "type": event_type,
            "application": "dragoman",
            "timestamp": "2026-11-25T10:11:13.001+0000",
            "asterisk_id": "02:42:ac:11:00:02"
        });
        if let (Value::Object(frame), Value::Object(fields)) = (&mut frame, fields) {
            frame.extend(fields);
        }
        frame.to_string()
    }

    #[test]
    fn stasis_start_with_channel() {
        let text = frame("StasisStart", json!({"args": ["leg-a"], "channel": channel_json("1764065472.7", "Up")}));
        let Event::StasisStart(start) = Event::from_json(&text).unwrap() else {
            panic!("not a StasisStart");
        };
        assert_eq!(start.args, ["leg-a"]);
        assert_eq!(start.channel.id, "1764065472.7");
        assert!(start.channel.is_up());
        assert_eq!(start.channel.dialplan.priority, 2);
        assert_eq!(start.channel.creationtime.nanosecond(), 345_000_000);
        assert_eq!(start.replace_channel, None);
        assert_eq!(start.common.application, "dragoman");
        assert_eq!(start.common.asterisk_id.as_deref(), Some("02:42:ac:11:00:02"));
        assert_eq!(start.common.timestamp.second(), 13);
    }

    #[test]
    fn dtmf_received() {
        let text = frame(
            "ChannelDtmfReceived",
            json!({"digit": "#", "duration_ms": 120, "channel": channel_json("c1", "Up")}),
        );
        let event = Event::from_json(&text).unwrap();
        assert_eq!(event.type_name(), "ChannelDtmfReceived");
        assert_eq!(event.channel_id(), Some("c1"));
        let Event::ChannelDtmfReceived(dtmf) = event else { panic!("not a dtmf event") };
        assert_eq!((dtmf.digit.as_str(), dtmf.duration_ms), ("#", 120));
    }

    #[test]
    fn talking_finished() {
        let text = frame("ChannelTalkingFinished", json!({"channel": channel_json("c2", "Up"), "duration": 2140}));
        let Event::ChannelTalkingFinished(talk) = Event::from_json(&text).unwrap() else {
            panic!("not a ChannelTalkingFinished");
        };
        assert_eq!(talk.duration, 2140);
        assert_eq!(talk.channel.id, "c2");
    }

    #[test]
    fn unknown_type_is_kept_not_rejected() {
        let text = frame("ChannelTeleported", json!({"destination": "mars"}));
        let event = Event::from_json(&text).unwrap();
        assert!(event.is_unknown());
        assert_eq!(event.type_name(), "ChannelTeleported");
        assert_eq!(event.common().map(|c| c.application.as_str()), Some("dragoman"));
        let Event::Unknown(unknown) = event else { panic!("not unknown") };
        assert_eq!(unknown.raw["destination"], "mars");
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert!(matches!(Event::from_json("{\"type\": "), Err(EventDecodeError::Json(_))));
        assert!(matches!(Event::from_json(r#"{"application": "a"}"#), Err(EventDecodeError::MissingType)));
        // A known type with a field of the wrong shape does not pass as that event.
        let text = frame("ChannelDtmfReceived", json!({"digit": 5, "duration_ms": 1}));
        match Event::from_json(&text) {
            Err(EventDecodeError::Invalid { event_type, .. }) => {
                assert_eq!(event_type, "ChannelDtmfReceived")
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
        // Timestamps must be readable.
        let bad_time = json!({"type": "ApplicationReplaced", "application": "a", "timestamp": "soon"});
        assert!(Event::from_value(bad_time).is_err());
    }

    #[test]
    fn optional_fields_may_be_missing() {
        let text = frame("ChannelHangupRequest", json!({"channel": channel_json("c3", "Up")}));
        let Event::ChannelHangupRequest(hangup) = Event::from_json(&text).unwrap() else {
            panic!("not a hangup request");
        };
        assert_eq!((hangup.cause, hangup.soft), (None, None));
    }

    #[test]
    fn serializes_back_with_type_and_asterisk_timestamp() {
        let text = frame("StasisEnd", json!({"channel": channel_json("c4", "Up")}));
        let event = Event::from_json(&text).unwrap();
        let written = serde_json::to_value(&event).unwrap();
        assert_eq!(written["type"], "StasisEnd");
        assert_eq!(written["timestamp"], "2026-11-25T10:11:13.001+0000");
        assert_eq!(serde_json::from_value::<Event>(written).unwrap(), event);
    }

    #[test]
    fn known_types_are_distinct() {
        let mut names = Event::KNOWN_TYPES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Event::KNOWN_TYPES.len());
    }
}
