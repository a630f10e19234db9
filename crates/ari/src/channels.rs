//! `/channels` operations.

use reqwest::Method;

use crate::client::{AriClient, Query};
use crate::error::AriError;
use crate::models::{Channel, Playback, Variable};
use crate::params::{
    CreateChannel, Dtmf, ExternalMedia, HangupReason, MuteDirection, Originate, Play, Snoop, TalkDetect,
};

impl AriClient {
    /// `GET /channels`: every active channel.
    pub async fn list_channels(&self) -> Result<Vec<Channel>, AriError> {
        self.json(Method::GET, &["channels"], Query::new(), None).await
    }

    /// `GET /channels/{channelId}`.
    pub async fn get_channel(&self, channel_id: &str) -> Result<Channel, AriError> {
        self.json(Method::GET, &["channels", channel_id], Query::new(), None).await
    }

    /// `POST /channels`: dial an endpoint. The reply comes before the channel's events.
    pub async fn originate(&self, originate: &Originate) -> Result<Channel, AriError> {
        self.json(Method::POST, &["channels"], originate.query(), originate.body()).await
    }

    /// `POST /channels/create`: a channel in an application, not dialed yet.
    pub async fn create_channel(&self, create: &CreateChannel) -> Result<Channel, AriError> {
        self.json(Method::POST, &["channels", "create"], create.query(), create.body()).await
    }

    /// `POST /channels/externalMedia`. For RTP, send to the reply's
    /// `channel_var("UNICASTRTP_LOCAL_ADDRESS")`:`channel_var("UNICASTRTP_LOCAL_PORT")`.
    pub async fn external_media(&self, media: &ExternalMedia) -> Result<Channel, AriError> {
        self.json(Method::POST, &["channels", "externalMedia"], media.query(), media.body()).await
    }

    /// `DELETE /channels/{channelId}`, with an optional `reason`.
    pub async fn hangup(&self, channel_id: &str, reason: Option<HangupReason>) -> Result<(), AriError> {
        let mut query = Query::new();
        query.opt("reason", reason);
        self.empty(Method::DELETE, &["channels", channel_id], query, None).await
    }

    /// `DELETE /channels/{channelId}?reason_code=`: hang up with a Q.850 cause code.
    pub async fn hangup_with_cause(&self, channel_id: &str, cause: u16) -> Result<(), AriError> {
        let mut query = Query::new();
        query.push("reason_code", cause);
        self.empty(Method::DELETE, &["channels", channel_id], query, None).await
    }

    /// `POST /channels/{channelId}/answer`.
    pub async fn answer(&self, channel_id: &str) -> Result<(), AriError> {
        self.empty(Method::POST, &["channels", channel_id, "answer"], Query::new(), None).await
    }

    /// `POST /channels/{channelId}/ring`: indicate ringing.
    pub async fn ring(&self, channel_id: &str) -> Result<(), AriError> {
        self.empty(Method::POST, &["channels", channel_id, "ring"], Query::new(), None).await
    }

    /// `DELETE /channels/{channelId}/ring`: stop indicating ringing.
    pub async fn ring_stop(&self, channel_id: &str) -> Result<(), AriError> {
        self.empty(Method::DELETE, &["channels", channel_id, "ring"], Query::new(), None).await
    }

    /// `POST /channels/{channelId}/hold`.
    pub async fn hold(&self, channel_id: &str) -> Result<(), AriError> {
        self.empty(Method::POST, &["channels", channel_id, "hold"], Query::new(), None).await
    }

    /// `DELETE /channels/{channelId}/hold`.
    pub async fn unhold(&self, channel_id: &str) -> Result<(), AriError> {
        self.empty(Method::DELETE, &["channels", channel_id, "hold"], Query::new(), None).await
    }

    /// `POST /channels/{channelId}/mute`.
    pub async fn mute(&self, channel_id: &str, direction: MuteDirection) -> Result<(), AriError> {
        let mut query = Query::new();
        query.push("direction", direction);
        self.empty(Method::POST, &["channels", channel_id, "mute"], query, None).await
    }

    /// `DELETE /channels/{channelId}/mute`.
    pub async fn unmute(&self, channel_id: &str, direction: MuteDirection) -> Result<(), AriError> {
        let mut query = Query::new();
        query.push("direction", direction);
        self.empty(Method::DELETE, &["channels", channel_id, "mute"], query, None).await
    }

    /// `POST /channels/{channelId}/dtmf`.
    pub async fn send_dtmf(&self, channel_id: &str, dtmf: &Dtmf) -> Result<(), AriError> {
        self.empty(Method::POST, &["channels", channel_id, "dtmf"], dtmf.query(), None).await
    }

    /// `POST /channels/{channelId}/play`; watch for `PlaybackFinished`.
    pub async fn play(&self, channel_id: &str, play: &Play) -> Result<Playback, AriError> {
        self.json(Method::POST, &["channels", channel_id, "play"], play.query(false), None).await
    }

    /// `POST /channels/{channelId}/snoop`: the reply is the new snoop channel, which then
    /// enters the application (StasisStart).
    pub async fn snoop(&self, channel_id: &str, snoop: &Snoop) -> Result<Channel, AriError> {
        self.json(Method::POST, &["channels", channel_id, "snoop"], snoop.query(), None).await
    }

    /// `GET /channels/{channelId}/variable`: the variable's value (also dialplan functions).
    pub async fn get_variable(&self, channel_id: &str, variable: &str) -> Result<String, AriError> {
        let mut query = Query::new();
        query.push("variable", variable);
        let variable: Variable = self.json(Method::GET, &["channels", channel_id, "variable"], query, None).await?;
        Ok(variable.value)
    }

    /// `POST /channels/{channelId}/variable`; `None` unsets the variable.
    pub async fn set_variable(&self, channel_id: &str, variable: &str, value: Option<&str>) -> Result<(), AriError> {
        let mut query = Query::new();
        query.push("variable", variable).opt("value", value);
        self.empty(Method::POST, &["channels", channel_id, "variable"], query, None).await
    }

    /// Turns on talk detection: the channel then sends `ChannelTalkingStarted` and
    /// `ChannelTalkingFinished` (sets `TALK_DETECT(set)`).
    pub async fn enable_talk_detect(&self, channel_id: &str, thresholds: TalkDetect) -> Result<(), AriError> {
        self.set_variable(channel_id, "TALK_DETECT(set)", Some(&thresholds.value())).await
    }

    /// Turns talk detection off (sets `TALK_DETECT(remove)`).
    pub async fn disable_talk_detect(&self, channel_id: &str) -> Result<(), AriError> {
        self.set_variable(channel_id, "TALK_DETECT(remove)", Some("")).await
    }

    /// `POST /channels/{channelId}/continue`: leave the application and go on in the
    /// dialplan (where it left off, or at the given place).
    pub async fn continue_in_dialplan(
        &self,
        channel_id: &str,
        context: Option<&str>,
        extension: Option<&str>,
        priority: Option<i64>,
    ) -> Result<(), AriError> {
        let mut query = Query::new();
        query.opt("context", context).opt("extension", extension).opt("priority", priority);
        self.empty(Method::POST, &["channels", channel_id, "continue"], query, None).await
    }

    /// `POST /channels/{channelId}/move`: hand the channel to another Stasis application.
    pub async fn move_channel(&self, channel_id: &str, app: &str, app_args: Option<&str>) -> Result<(), AriError> {
        let mut query = Query::new();
        query.push("app", app).opt("appArgs", app_args);
        self.empty(Method::POST, &["channels", channel_id, "move"], query, None).await
    }

    /// `POST /channels/{channelId}/dial`: dial a channel made with [`AriClient::create_channel`].
    pub async fn dial(&self, channel_id: &str, caller: Option<&str>, timeout_s: Option<i64>) -> Result<(), AriError> {
        let mut query = Query::new();
        query.opt("caller", caller).opt("timeout", timeout_s);
        self.empty(Method::POST, &["channels", channel_id, "dial"], query, None).await
    }

    /// `POST /channels/{channelId}/progress`: indicate progress (early media).
    pub async fn progress(&self, channel_id: &str) -> Result<(), AriError> {
        self.empty(Method::POST, &["channels", channel_id, "progress"], Query::new(), None).await
    }
}
