//! Resource models from the ARI Swagger (`channels.json`, `bridges.json`, `playbacks.json`,
//! `recordings.json`, `asterisk.json`, `applications.json`, `endpoints.json`, …).
//!
//! Fields the spec marks `required` are plain fields; the others are `Option`. Unknown fields
//! are ignored, so a newer Asterisk that adds fields still decodes. Swagger `int`/`long` are
//! `i64`, `double` is `f64`, `object` is a JSON map, `Date` is a
//! [`DateTime<FixedOffset>`](chrono::DateTime).

use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A JSON object as ARI sends it for `object` fields (variables, user event payloads).
pub type JsonObject = Map<String, Value>;

/// A channel (`channels.json` `Channel`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Channel {
    /// Unique id of the channel (Asterisk's uniqueid; ours when given at creation).
    pub id: String,
    /// The protocol's id for the call (a SIP Call-ID, …).
    pub protocol_id: String,
    /// Channel name, e.g. `PJSIP/alice-00000001` or `UnicastRTP/127.0.0.1:4000-0x…`.
    pub name: String,
    /// `Down`, `Rsrved`, `OffHook`, `Dialing`, `Ring`, `Ringing`, `Up`, `Busy`,
    /// `Dialing Offhook`, `Pre-ring` or `Unknown`.
    pub state: String,
    pub caller: CallerId,
    pub connected: CallerId,
    pub accountcode: String,
    /// Where the channel is in the dialplan.
    pub dialplan: DialplanCep,
    #[serde(with = "crate::time::required")]
    pub creationtime: DateTime<FixedOffset>,
    /// Default language for prompts.
    pub language: String,
    /// Channel variables: `ari.conf`'s `channelvars`, or those copied into an externalMedia
    /// reply (`UNICASTRTP_LOCAL_ADDRESS`, `UNICASTRTP_LOCAL_PORT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channelvars: Option<JsonObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_rdnis: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenantid: Option<String>,
}

impl Channel {
    /// A channel variable from `channelvars`, when it is there and is text.
    pub fn channel_var(&self, name: &str) -> Option<&str> {
        self.channelvars.as_ref()?.get(name)?.as_str()
    }

    /// Whether the channel is answered (`state == "Up"`).
    pub fn is_up(&self) -> bool {
        self.state == "Up"
    }

    /// `state` as a [`ChannelState`]; `None` for a name this client does not know.
    pub fn channel_state(&self) -> Option<ChannelState> {
        ChannelState::from_name(&self.state)
    }
}

/// A channel state, as Asterisk names them in `Channel.state` (`ast_state2str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelState {
    Down,
    /// `Rsrved`: reserved.
    Reserved,
    OffHook,
    Dialing,
    /// The far end rings (for us: an incoming call).
    Ring,
    /// Ringing is being indicated to the caller.
    Ringing,
    /// Answered.
    Up,
    Busy,
    /// `Dialing Offhook`.
    DialingOffhook,
    /// `Pre-ring`.
    PreRing,
    /// Asterisk itself says `Unknown`.
    Unknown,
}

impl ChannelState {
    /// Reads Asterisk's name for a state.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "Down" => Self::Down,
            "Rsrved" => Self::Reserved,
            "OffHook" => Self::OffHook,
            "Dialing" => Self::Dialing,
            "Ring" => Self::Ring,
            "Ringing" => Self::Ringing,
            "Up" => Self::Up,
            "Busy" => Self::Busy,
            "Dialing Offhook" => Self::DialingOffhook,
            "Pre-ring" => Self::PreRing,
            "Unknown" => Self::Unknown,
            _ => return None,
        })
    }
}

/// Caller identification (`CallerID`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerId {
    pub name: String,
    pub number: String,
}

/// A position in the dialplan (`DialplanCEP`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialplanCep {
    pub context: String,
    pub exten: String,
    pub priority: i64,
    /// The application the channel is running, e.g. `Stasis`.
    pub app_name: String,
    pub app_data: String,
}

/// A bridge (`bridges.json` `Bridge`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bridge {
    pub id: String,
    /// The bridge technology in use, e.g. `simple_bridge` or `softmix`.
    pub technology: String,
    /// `mixing` or `holding`.
    pub bridge_type: String,
    /// `stasis` for bridges made over ARI.
    pub bridge_class: String,
    pub creator: String,
    pub name: String,
    /// Ids of the channels in the bridge.
    pub channels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_source_id: Option<String>,
    #[serde(with = "crate::time::required")]
    pub creationtime: DateTime<FixedOffset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridgevars: Option<JsonObject>,
}

/// A media playback (`playbacks.json` `Playback`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Playback {
    pub id: String,
    /// The URI being played, e.g. `sound:hello-world`.
    pub media_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_media_uri: Option<String>,
    /// What is played to: `channel:ID` or `bridge:ID`.
    pub target_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `queued`, `playing`, `continuing`, `done` or `failed`.
    pub state: String,
}

/// A recording in progress (`recordings.json` `LiveRecording`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveRecording {
    pub name: String,
    pub format: String,
    pub target_uri: String,
    /// `queued`, `recording`, `paused`, `done`, `failed` or `canceled`.
    pub state: String,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    /// Seconds of talking, when silence detection was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub talking_duration: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silence_duration: Option<i64>,
    /// Why the recording failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

/// The value of a variable (`asterisk.json` `Variable`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    pub value: String,
}

/// `GET /asterisk/info` (`AsteriskInfo`); each part is there unless filtered out with `only`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AsteriskInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<BuildInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusInfo>,
}

/// Where and how Asterisk was built (`BuildInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    pub os: String,
    pub kernel: String,
    pub options: String,
    pub machine: String,
    pub date: String,
    pub user: String,
}

/// Version and entity id (`SystemInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// e.g. `22.10.1`.
    pub version: String,
    pub entity_id: String,
}

/// Configuration (`ConfigInfo`); `setid` is kept as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigInfo {
    pub name: String,
    pub default_language: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_channels: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_files: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_load: Option<f64>,
    pub setid: Value,
}

/// Start-up and reload times (`StatusInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusInfo {
    #[serde(with = "crate::time::required")]
    pub startup_time: DateTime<FixedOffset>,
    #[serde(with = "crate::time::required")]
    pub last_reload_time: DateTime<FixedOffset>,
}

/// `GET /asterisk/ping` (`AsteriskPing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsteriskPing {
    pub asterisk_id: String,
    /// Always `pong`.
    pub ping: String,
    /// When Asterisk answered, as Asterisk wrote it.
    pub timestamp: String,
}

/// A Stasis application and what it is subscribed to (`applications.json` `Application`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Application {
    pub name: String,
    pub channel_ids: Vec<String>,
    pub bridge_ids: Vec<String>,
    pub endpoint_ids: Vec<String>,
    pub device_names: Vec<String>,
    pub events_allowed: Vec<Value>,
    pub events_disallowed: Vec<Value>,
}

/// An endpoint (`endpoints.json` `Endpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// e.g. `PJSIP`.
    pub technology: String,
    pub resource: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    pub channel_ids: Vec<String>,
}

/// A text message (`endpoints.json` `TextMessage`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextMessage {
    pub from: String,
    pub to: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<JsonObject>,
}

/// A device state (`deviceStates.json` `DeviceState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceState {
    pub name: String,
    pub state: String,
}

/// A contact of an AOR (`events.json` `ContactInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactInfo {
    pub uri: String,
    pub contact_status: String,
    pub aor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roundtrip_usec: Option<String>,
}

/// A peer (`events.json` `Peer`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    pub peer_status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
}

/// Where a REFER points (`events.json` `ReferTo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferTo {
    pub requested_destination: RequiredDestination,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
}

/// Who sent a REFER (`events.json` `ReferredBy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferredBy {
    pub source_channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connected_channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<Bridge>,
}

/// The destination asked for in a REFER (`events.json` `RequiredDestination`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequiredDestination {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_protocol_params: Option<Vec<AdditionalParam>>,
}

/// A protocol parameter of a REFER (`events.json` `AdditionalParam`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdditionalParam {
    pub parameter_name: String,
    pub parameter_value: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A panic is a test failure.
mod tests {
    use serde_json::json;

    use super::*;

    fn channel(state: &str, channelvars: Option<Value>) -> Channel {
        let mut json = json!({
            "id": "1764065472.9", "protocol_id": "", "name": "UnicastRTP/127.0.0.1:40010-0x7f", "state": state,
            "caller": {"name": "", "number": ""}, "connected": {"name": "", "number": ""}, "accountcode": "",
            "dialplan": {"context": "default", "exten": "s", "priority": 1, "app_name": "", "app_data": ""},
            "creationtime": "2026-11-25T10:00:00.000+0000", "language": "en"
        });
        if let Some(vars) = channelvars {
            json["channelvars"] = vars;
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn external_media_reply_exposes_rtp_address() {
        let vars = json!({"UNICASTRTP_LOCAL_ADDRESS": "127.0.0.1", "UNICASTRTP_LOCAL_PORT": "17424", "N": 3});
        let media = channel("Down", Some(vars));
        assert_eq!(media.channel_var("UNICASTRTP_LOCAL_ADDRESS"), Some("127.0.0.1"));
        assert_eq!(media.channel_var("UNICASTRTP_LOCAL_PORT"), Some("17424"));
        assert_eq!(media.channel_var("N"), None, "not text");
        assert_eq!(media.channel_var("MISSING"), None);
        assert_eq!(channel("Down", None).channel_var("UNICASTRTP_LOCAL_PORT"), None);
    }

    #[test]
    fn channel_states_read_asterisks_names() {
        assert_eq!(channel("Up", None).channel_state(), Some(ChannelState::Up));
        assert!(channel("Up", None).is_up());
        assert_eq!(channel("Dialing Offhook", None).channel_state(), Some(ChannelState::DialingOffhook));
        assert_eq!(channel("Rsrved", None).channel_state(), Some(ChannelState::Reserved));
        assert_eq!(channel("Teleporting", None).channel_state(), None);
        assert!(!channel("Down", None).is_up());
    }
}
