//! `/playbacks`, `/applications` and `/asterisk` operations.

use reqwest::Method;

use crate::client::{AriClient, Query};
use crate::error::AriError;
use crate::models::{Application, AsteriskInfo, AsteriskPing, Playback};

impl AriClient {
    /// `GET /playbacks/{playbackId}`.
    pub async fn get_playback(&self, playback_id: &str) -> Result<Playback, AriError> {
        self.json(Method::GET, &["playbacks", playback_id], Query::new(), None).await
    }

    /// `DELETE /playbacks/{playbackId}`: stop a playback.
    pub async fn stop_playback(&self, playback_id: &str) -> Result<(), AriError> {
        self.empty(Method::DELETE, &["playbacks", playback_id], Query::new(), None).await
    }

    /// `POST /playbacks/{playbackId}/control`: `restart`, `pause`, `unpause`, `reverse` or
    /// `forward`.
    pub async fn control_playback(&self, playback_id: &str, operation: &str) -> Result<(), AriError> {
        let mut query = Query::new();
        query.push("operation", operation);
        self.empty(Method::POST, &["playbacks", playback_id, "control"], query, None).await
    }

    /// `GET /applications`.
    pub async fn list_applications(&self) -> Result<Vec<Application>, AriError> {
        self.json(Method::GET, &["applications"], Query::new(), None).await
    }

    /// `GET /applications/{applicationName}`.
    pub async fn get_application(&self, name: &str) -> Result<Application, AriError> {
        self.json(Method::GET, &["applications", name], Query::new(), None).await
    }

    /// `POST /applications/{applicationName}/subscription`. Event sources are URIs:
    /// `channel:ID`, `bridge:ID`, `endpoint:TECH/RESOURCE`, `deviceState:NAME`.
    pub async fn subscribe(&self, name: &str, event_sources: &[&str]) -> Result<Application, AriError> {
        let mut query = Query::new();
        query.list("eventSource", event_sources);
        self.json(Method::POST, &["applications", name, "subscription"], query, None).await
    }

    /// `DELETE /applications/{applicationName}/subscription`.
    pub async fn unsubscribe(&self, name: &str, event_sources: &[&str]) -> Result<Application, AriError> {
        let mut query = Query::new();
        query.list("eventSource", event_sources);
        self.json(Method::DELETE, &["applications", name, "subscription"], query, None).await
    }

    /// `GET /asterisk/info`: everything (`build`, `system`, `config`, `status`).
    pub async fn asterisk_info(&self) -> Result<AsteriskInfo, AriError> {
        self.json(Method::GET, &["asterisk", "info"], Query::new(), None).await
    }

    /// `GET /asterisk/info?only=`: only the named parts (`build`, `system`, `config`, `status`).
    pub async fn asterisk_info_only(&self, parts: &[&str]) -> Result<AsteriskInfo, AriError> {
        let mut query = Query::new();
        query.list("only", parts);
        self.json(Method::GET, &["asterisk", "info"], query, None).await
    }

    /// `GET /asterisk/ping`: a cheap liveness check.
    pub async fn ping(&self) -> Result<AsteriskPing, AriError> {
        self.json(Method::GET, &["asterisk", "ping"], Query::new(), None).await
    }
}
