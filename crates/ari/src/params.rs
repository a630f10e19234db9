//! Parameters of operations that take many optional ones, and the small enums the spec lists
//! as `allowableValues`.
//!
//! Each struct has a constructor for the required parameters and builder methods for the
//! rest; parameters left unset are not sent, so Asterisk's defaults apply.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::client::Query;

/// Channel variables to set at creation (`{"variables": {...}}` body).
pub type Variables = BTreeMap<String, String>;

fn variables_body(variables: &Variables) -> Option<Value> {
    if variables.is_empty() {
        return None;
    }
    let map: Map<String, Value> =
        variables.iter().map(|(name, value)| (name.clone(), Value::String(value.clone()))).collect();
    let mut body = Map::new();
    body.insert("variables".to_owned(), Value::Object(map));
    Some(Value::Object(body))
}

/// Declares a `Display`ed enum of the spec's allowed values.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// The value as ARI spells it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// Which audio a mute affects.
    MuteDirection {
        /// Both directions.
        Both = "both",
        /// Audio from the channel (what its party says).
        In = "in",
        /// Audio to the channel (what its party hears).
        Out = "out",
    }
);

wire_enum!(
    /// What a snoop channel spies on or whispers to. `In` is the audio *from* the snooped
    /// channel's party (what that caller says), `Out` the audio Asterisk sends *to* it.
    SnoopDirection {
        None = "none",
        Both = "both",
        In = "in",
        Out = "out",
    }
);

wire_enum!(
    /// How externalMedia frames the audio.
    Encapsulation {
        Rtp = "rtp",
        AudioSocket = "audiosocket",
        /// Raw audio; only with the websocket transport.
        None = "none",
    }
);

wire_enum!(
    /// externalMedia transport: `rtp` needs `udp`, `audiosocket` needs `tcp`.
    Transport {
        Udp = "udp",
        Tcp = "tcp",
        WebSocket = "websocket",
    }
);

wire_enum!(
    /// Who opens an externalMedia connection; `Server` only for websocket.
    ConnectionType {
        Client = "client",
        Server = "server",
    }
);

wire_enum!(
    /// externalMedia audio direction; the spec lists only `both`, websocket also takes in/out.
    MediaDirection {
        Both = "both",
        In = "in",
        Out = "out",
    }
);

wire_enum!(
    /// A bridge feature for `POST /bridges?type=`.
    BridgeFeature {
        /// Channels hear each other (the usual).
        Mixing = "mixing",
        /// Channels hear music on hold or an announcer.
        Holding = "holding",
        /// DTMF passes through the bridge as events.
        DtmfEvents = "dtmf_events",
        /// Media is proxied rather than natively bridged.
        ProxyMedia = "proxy_media",
        VideoSfu = "video_sfu",
        VideoSingle = "video_single",
        /// Sends the channels' SDP to the bridge.
        SdpLabel = "sdp_label",
    }
);

wire_enum!(
    /// Why a channel is hung up (`DELETE /channels/{id}?reason=`).
    HangupReason {
        Normal = "normal",
        Busy = "busy",
        Congestion = "congestion",
        NoAnswer = "no_answer",
        Timeout = "timeout",
        Rejected = "rejected",
        Unallocated = "unallocated",
        NormalUnspecified = "normal_unspecified",
        NumberIncomplete = "number_incomplete",
        CodecMismatch = "codec_mismatch",
        Interworking = "interworking",
        Failure = "failure",
        AnsweredElsewhere = "answered_elsewhere",
    }
);

/// `POST /channels`: dial an endpoint and send the answered channel to an application or a
/// dialplan location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originate {
    /// e.g. `PJSIP/alice` or `Local/play@test`.
    pub endpoint: String,
    pub extension: Option<String>,
    pub context: Option<String>,
    pub priority: Option<i64>,
    pub label: Option<String>,
    pub app: Option<String>,
    pub app_args: Option<String>,
    pub caller_id: Option<String>,
    /// Seconds to wait for an answer (Asterisk's default: 30).
    pub timeout_s: Option<i64>,
    pub channel_id: Option<String>,
    pub other_channel_id: Option<String>,
    pub originator: Option<String>,
    /// Format names, e.g. `ulaw`, when there is no originator.
    pub formats: Vec<String>,
    pub variables: Variables,
}

impl Originate {
    /// Dials `endpoint` and puts the channel into Stasis application `app`.
    pub fn to_app(endpoint: impl Into<String>, app: impl Into<String>) -> Self {
        let mut originate = Self::bare(endpoint.into());
        originate.app = Some(app.into());
        originate
    }

    /// Dials `endpoint` and continues at `context`,`extension`,`priority`.
    pub fn to_extension(
        endpoint: impl Into<String>,
        context: impl Into<String>,
        extension: impl Into<String>,
        priority: i64,
    ) -> Self {
        let mut originate = Self::bare(endpoint.into());
        originate.context = Some(context.into());
        originate.extension = Some(extension.into());
        originate.priority = Some(priority);
        originate
    }

    fn bare(endpoint: String) -> Self {
        Self {
            endpoint,
            extension: None,
            context: None,
            priority: None,
            label: None,
            app: None,
            app_args: None,
            caller_id: None,
            timeout_s: None,
            channel_id: None,
            other_channel_id: None,
            originator: None,
            formats: Vec::new(),
            variables: Variables::new(),
        }
    }

    pub fn app_args(mut self, args: impl Into<String>) -> Self {
        self.app_args = Some(args.into());
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn caller_id(mut self, caller_id: impl Into<String>) -> Self {
        self.caller_id = Some(caller_id.into());
        self
    }

    pub fn timeout_s(mut self, seconds: i64) -> Self {
        self.timeout_s = Some(seconds);
        self
    }

    pub fn channel_id(mut self, id: impl Into<String>) -> Self {
        self.channel_id = Some(id.into());
        self
    }

    pub fn other_channel_id(mut self, id: impl Into<String>) -> Self {
        self.other_channel_id = Some(id.into());
        self
    }

    pub fn originator(mut self, channel_id: impl Into<String>) -> Self {
        self.originator = Some(channel_id.into());
        self
    }

    pub fn format(mut self, format: impl Into<String>) -> Self {
        self.formats.push(format.into());
        self
    }

    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.insert(name.into(), value.into());
        self
    }

    pub(crate) fn query(&self) -> Query {
        let mut query = Query::new();
        query
            .push("endpoint", &self.endpoint)
            .opt("extension", self.extension.as_ref())
            .opt("context", self.context.as_ref())
            .opt("priority", self.priority)
            .opt("label", self.label.as_ref())
            .opt("app", self.app.as_ref())
            .opt("appArgs", self.app_args.as_ref())
            .opt("callerId", self.caller_id.as_ref())
            .opt("timeout", self.timeout_s)
            .opt("channelId", self.channel_id.as_ref())
            .opt("otherChannelId", self.other_channel_id.as_ref())
            .opt("originator", self.originator.as_ref())
            .list("formats", &self.formats);
        query
    }

    pub(crate) fn body(&self) -> Option<Value> {
        variables_body(&self.variables)
    }
}

/// `POST /channels/create`: create a channel in an application without dialing it yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateChannel {
    pub endpoint: String,
    pub app: String,
    pub app_args: Option<String>,
    pub channel_id: Option<String>,
    pub other_channel_id: Option<String>,
    pub originator: Option<String>,
    pub formats: Vec<String>,
    pub variables: Variables,
}

impl CreateChannel {
    pub fn new(endpoint: impl Into<String>, app: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            app: app.into(),
            app_args: None,
            channel_id: None,
            other_channel_id: None,
            originator: None,
            formats: Vec::new(),
            variables: Variables::new(),
        }
    }

    pub fn app_args(mut self, args: impl Into<String>) -> Self {
        self.app_args = Some(args.into());
        self
    }

    pub fn channel_id(mut self, id: impl Into<String>) -> Self {
        self.channel_id = Some(id.into());
        self
    }

    pub fn other_channel_id(mut self, id: impl Into<String>) -> Self {
        self.other_channel_id = Some(id.into());
        self
    }

    pub fn originator(mut self, channel_id: impl Into<String>) -> Self {
        self.originator = Some(channel_id.into());
        self
    }

    pub fn format(mut self, format: impl Into<String>) -> Self {
        self.formats.push(format.into());
        self
    }

    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.insert(name.into(), value.into());
        self
    }

    pub(crate) fn query(&self) -> Query {
        let mut query = Query::new();
        query
            .push("endpoint", &self.endpoint)
            .push("app", &self.app)
            .opt("appArgs", self.app_args.as_ref())
            .opt("channelId", self.channel_id.as_ref())
            .opt("otherChannelId", self.other_channel_id.as_ref())
            .opt("originator", self.originator.as_ref())
            .list("formats", &self.formats);
        query
    }

    pub(crate) fn body(&self) -> Option<Value> {
        variables_body(&self.variables)
    }
}

/// `POST /channels/externalMedia`: a channel whose audio goes to (and comes from) an
/// external host. The reply's `channelvars` hold `UNICASTRTP_LOCAL_ADDRESS`/`_PORT` for RTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalMedia {
    /// Stasis application the new channel enters (its StasisStart `args` are `[data]`).
    pub app: String,
    /// Asterisk format name: `ulaw`, `alaw`, `slin`, `slin16`, `slin48`, `g722`, `opus`…
    pub format: String,
    /// `host:port` Asterisk sends media to (required unless websocket server mode).
    pub external_host: Option<String>,
    pub encapsulation: Option<Encapsulation>,
    pub transport: Option<Transport>,
    pub connection_type: Option<ConnectionType>,
    pub direction: Option<MediaDirection>,
    /// Free text; for audiosocket it is required and must be a UUID.
    pub data: Option<String>,
    /// Websocket only: added to the `WebSocket/` dialstring.
    pub transport_data: Option<String>,
    pub channel_id: Option<String>,
    pub variables: Variables,
}

impl ExternalMedia {
    /// RTP over UDP to `external_host` (`host:port`) in `format`.
    pub fn rtp(app: impl Into<String>, external_host: impl Into<String>, format: impl Into<String>) -> Self {
        let mut media = Self::new(app, format);
        media.external_host = Some(external_host.into());
        media
    }

    /// AudioSocket over TCP to `external_host`; `uuid` identifies the stream.
    pub fn audiosocket(
        app: impl Into<String>,
        external_host: impl Into<String>,
        format: impl Into<String>,
        uuid: impl Into<String>,
    ) -> Self {
        Self::rtp(app, external_host, format)
            .encapsulation(Encapsulation::AudioSocket)
            .transport(Transport::Tcp)
            .data(uuid)
    }

    /// Only the required parameters; set the rest with the builder methods.
    pub fn new(app: impl Into<String>, format: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            format: format.into(),
            external_host: None,
            encapsulation: None,
            transport: None,
            connection_type: None,
            direction: None,
            data: None,
            transport_data: None,
            channel_id: None,
            variables: Variables::new(),
        }
    }

    pub fn external_host(mut self, host_port: impl Into<String>) -> Self {
        self.external_host = Some(host_port.into());
        self
    }

    pub fn encapsulation(mut self, encapsulation: Encapsulation) -> Self {
        self.encapsulation = Some(encapsulation);
        self
    }

    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = Some(transport);
        self
    }

    pub fn connection_type(mut self, connection_type: ConnectionType) -> Self {
        self.connection_type = Some(connection_type);
        self
    }

    pub fn direction(mut self, direction: MediaDirection) -> Self {
        self.direction = Some(direction);
        self
    }

    pub fn data(mut self, data: impl Into<String>) -> Self {
        self.data = Some(data.into());
        self
    }

    pub fn transport_data(mut self, transport_data: impl Into<String>) -> Self {
        self.transport_data = Some(transport_data.into());
        self
    }

    pub fn channel_id(mut self, id: impl Into<String>) -> Self {
        self.channel_id = Some(id.into());
        self
    }

    pub fn variable(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.variables.insert(name.into(), value.into());
        self
    }

    pub(crate) fn query(&self) -> Query {
        let mut query = Query::new();
        query
            .push("app", &self.app)
            .opt("external_host", self.external_host.as_ref())
            .opt("encapsulation", self.encapsulation)
            .opt("transport", self.transport)
            .opt("connection_type", self.connection_type)
            .push("format", &self.format)
            .opt("direction", self.direction)
            .opt("data", self.data.as_ref())
            .opt("transport_data", self.transport_data.as_ref())
            .opt("channelId", self.channel_id.as_ref());
        query
    }

    pub(crate) fn body(&self) -> Option<Value> {
        variables_body(&self.variables)
    }
}

/// `POST /channels/{id}/snoop`: a `Snoop/…` channel that enters `app` and hears (or whispers
/// into) the snooped channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snoop {
    pub app: String,
    /// Asterisk's default is `none`, which hears nothing: always say what you want.
    pub spy: SnoopDirection,
    pub whisper: SnoopDirection,
    pub app_args: Option<String>,
    pub snoop_id: Option<String>,
}

impl Snoop {
    /// Spies in `spy` direction, whispers nothing.
    pub fn spy(app: impl Into<String>, spy: SnoopDirection) -> Self {
        Self { app: app.into(), spy, whisper: SnoopDirection::None, app_args: None, snoop_id: None }
    }

    /// Whispers in `whisper` direction, spies on nothing.
    pub fn whisper(app: impl Into<String>, whisper: SnoopDirection) -> Self {
        Self { whisper, ..Self::spy(app, SnoopDirection::None) }
    }

    pub fn with_whisper(mut self, whisper: SnoopDirection) -> Self {
        self.whisper = whisper;
        self
    }

    pub fn app_args(mut self, args: impl Into<String>) -> Self {
        self.app_args = Some(args.into());
        self
    }

    pub fn snoop_id(mut self, id: impl Into<String>) -> Self {
        self.snoop_id = Some(id.into());
        self
    }

    pub(crate) fn query(&self) -> Query {
        let mut query = Query::new();
        query
            .push("app", &self.app)
            .push("spy", self.spy)
            .push("whisper", self.whisper)
            .opt("appArgs", self.app_args.as_ref())
            .opt("snoopId", self.snoop_id.as_ref());
        query
    }
}

/// `POST /channels/{id}/play` and `POST /bridges/{id}/play`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Play {
    /// Media URIs played in order: `sound:hello-world`, `recording:`, `number:`, `digits:`,
    /// `characters:`, `tone:`.
    pub media: Vec<String>,
    pub lang: Option<String>,
    pub offset_ms: Option<i64>,
    /// Skip for forward/reverse control (Asterisk's default: 3000).
    pub skip_ms: Option<i64>,
    pub playback_id: Option<String>,
    /// Bridges only: the announcer channel's format; not sent for channels.
    pub announcer_format: Option<String>,
}

impl Play {
    pub fn media(uri: impl Into<String>) -> Self {
        Self {
            media: vec![uri.into()],
            lang: None,
            offset_ms: None,
            skip_ms: None,
            playback_id: None,
            announcer_format: None,
        }
    }

    /// Adds a media URI after the others.
    pub fn then(mut self, uri: impl Into<String>) -> Self {
        self.media.push(uri.into());
        self
    }

    pub fn lang(mut self, lang: impl Into<String>) -> Self {
        self.lang = Some(lang.into());
        self
    }

    pub fn offset_ms(mut self, offset_ms: i64) -> Self {
        self.offset_ms = Some(offset_ms);
        self
    }

    pub fn skip_ms(mut self, skip_ms: i64) -> Self {
        self.skip_ms = Some(skip_ms);
        self
    }

    pub fn playback_id(mut self, id: impl Into<String>) -> Self {
        self.playback_id = Some(id.into());
        self
    }

    pub fn announcer_format(mut self, format: impl Into<String>) -> Self {
        self.announcer_format = Some(format.into());
        self
    }

    pub(crate) fn query(&self, for_bridge: bool) -> Query {
        let mut query = Query::new();
        query
            .list("media", &self.media)
            .opt("lang", self.lang.as_ref())
            .opt("offsetms", self.offset_ms)
            .opt("skipms", self.skip_ms)
            .opt("playbackId", self.playback_id.as_ref());
        if for_bridge {
            query.opt("announcer_format", self.announcer_format.as_ref());
        }
        query
    }
}

/// `POST /bridges`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateBridge {
    /// Empty: Asterisk's default (a mixing bridge).
    pub features: Vec<BridgeFeature>,
    pub bridge_id: Option<String>,
    pub name: Option<String>,
}

impl CreateBridge {
    /// A mixing bridge.
    pub fn mixing() -> Self {
        Self::default().feature(BridgeFeature::Mixing)
    }

    pub fn feature(mut self, feature: BridgeFeature) -> Self {
        self.features.push(feature);
        self
    }

    pub fn bridge_id(mut self, id: impl Into<String>) -> Self {
        self.bridge_id = Some(id.into());
        self
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub(crate) fn query(&self) -> Query {
        let features: Vec<&str> = self.features.iter().map(|f| f.as_str()).collect();
        let mut query = Query::new();
        query.list("type", &features).opt("bridgeId", self.bridge_id.as_ref()).opt("name", self.name.as_ref());
        query
    }
}

/// `POST /bridges/{id}/addChannel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddChannel {
    /// Channel ids to add.
    pub channels: Vec<String>,
    pub role: Option<String>,
    pub absorb_dtmf: Option<bool>,
    pub mute: Option<bool>,
    pub inhibit_connected_line_updates: Option<bool>,
}

impl AddChannel {
    pub fn channel(id: impl Into<String>) -> Self {
        Self {
            channels: vec![id.into()],
            role: None,
            absorb_dtmf: None,
            mute: None,
            inhibit_connected_line_updates: None,
        }
    }

    pub fn and(mut self, id: impl Into<String>) -> Self {
        self.channels.push(id.into());
        self
    }

    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    pub fn absorb_dtmf(mut self, absorb: bool) -> Self {
        self.absorb_dtmf = Some(absorb);
        self
    }

    pub fn mute(mut self, mute: bool) -> Self {
        self.mute = Some(mute);
        self
    }

    pub fn inhibit_connected_line_updates(mut self, inhibit: bool) -> Self {
        self.inhibit_connected_line_updates = Some(inhibit);
        self
    }

    pub(crate) fn query(&self) -> Query {
        let mut query = Query::new();
        query
            .list("channel", &self.channels)
            .opt("role", self.role.as_ref())
            .opt("absorbDTMF", self.absorb_dtmf)
            .opt("mute", self.mute)
            .opt("inhibitConnectedLineUpdates", self.inhibit_connected_line_updates);
        query
    }
}

/// `POST /channels/{id}/dtmf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dtmf {
    /// Digits to send (`0-9`, `A-D`, `#`, `*`).
    pub digits: String,
    pub before_ms: Option<i64>,
    pub between_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub after_ms: Option<i64>,
}

impl Dtmf {
    pub fn digits(digits: impl Into<String>) -> Self {
        Self { digits: digits.into(), before_ms: None, between_ms: None, duration_ms: None, after_ms: None }
    }

    pub fn before_ms(mut self, ms: i64) -> Self {
        self.before_ms = Some(ms);
        self
    }

    pub fn between_ms(mut self, ms: i64) -> Self {
        self.between_ms = Some(ms);
        self
    }

    pub fn duration_ms(mut self, ms: i64) -> Self {
        self.duration_ms = Some(ms);
        self
    }

    pub fn after_ms(mut self, ms: i64) -> Self {
        self.after_ms = Some(ms);
        self
    }

    pub(crate) fn query(&self) -> Query {
        let mut query = Query::new();
        query
            .push("dtmf", &self.digits)
            .opt("before", self.before_ms)
            .opt("between", self.between_ms)
            .opt("duration", self.duration_ms)
            .opt("after", self.after_ms);
        query
    }
}

/// `TALK_DETECT` thresholds; unset ones keep Asterisk's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TalkDetect {
    /// Milliseconds below the talking threshold before the party counts as silent
    /// (Asterisk's default: 2500).
    pub silence_ms: Option<u32>,
    /// Minimum average magnitude per sample that counts as talking (default: dsp.conf's
    /// `silencethreshold`, 256).
    pub talking_threshold: Option<u32>,
}

impl TalkDetect {
    /// Asterisk's default silence time, used when only a talking threshold is given.
    const DEFAULT_SILENCE_MS: u32 = 2500;

    /// The value for `TALK_DETECT(set)`: empty, `silence` or `silence,talking`.
    pub(crate) fn value(&self) -> String {
        match (self.silence_ms, self.talking_threshold) {
            (None, None) => String::new(),
            (Some(silence), None) => silence.to_string(),
            (silence, Some(talking)) => {
                format!("{},{talking}", silence.unwrap_or(Self::DEFAULT_SILENCE_MS))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A panic is a test failure.
mod tests {
    use super::*;

    #[test]
    fn talk_detect_value() {
        assert_eq!(TalkDetect::default().value(), "");
        assert_eq!(TalkDetect { silence_ms: Some(1200), talking_threshold: None }.value(), "1200");
        assert_eq!(TalkDetect { silence_ms: Some(800), talking_threshold: Some(128) }.value(), "800,128");
        assert_eq!(TalkDetect { silence_ms: None, talking_threshold: Some(300) }.value(), "2500,300");
    }

    #[test]
    fn external_media_sends_only_what_is_set() {
        let query = ExternalMedia::rtp("dragoman", "10.0.0.5:4000", "slin16").channel_id("em-1").query();
        assert_eq!(query.encode(), "app=dragoman&external_host=10.0.0.5%3A4000&format=slin16&channelId=em-1");
        let audiosocket = ExternalMedia::audiosocket("a", "h:1", "slin", "u-u").query().encode();
        assert!(audiosocket.contains("encapsulation=audiosocket&transport=tcp"), "{audiosocket}");
        assert!(audiosocket.contains("data=u-u"), "{audiosocket}");
    }

    #[test]
    fn variables_go_in_the_body() {
        let originate = Originate::to_app("Local/play@test", "dragoman").variable("CALL_ID", "c1");
        assert_eq!(originate.body(), Some(serde_json::json!({"variables": {"CALL_ID": "c1"}})));
        assert_eq!(Originate::to_app("Local/x@y", "a").body(), None);
    }

    #[test]
    fn snoop_always_sends_spy_and_whisper() {
        let query = Snoop::spy("dragoman", SnoopDirection::In).query().encode();
        assert_eq!(query, "app=dragoman&spy=in&whisper=none");
    }

    #[test]
    fn bridge_features_join_with_commas() {
        let query = CreateBridge::mixing().feature(BridgeFeature::DtmfEvents).name("call 1").query();
        assert_eq!(query.encode(), "type=mixing%2Cdtmf_events&name=call%201");
    }
}
