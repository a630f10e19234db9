//! `/bridges` operations.

use reqwest::Method;

use crate::client::{AriClient, Query};
use crate::error::AriError;
use crate::models::{Bridge, Playback};
use crate::params::{AddChannel, CreateBridge, Play};

impl AriClient {
    /// `GET /bridges`.
    pub async fn list_bridges(&self) -> Result<Vec<Bridge>, AriError> {
        self.json(Method::GET, &["bridges"], Query::new(), None).await
    }

    /// `GET /bridges/{bridgeId}`.
    pub async fn get_bridge(&self, bridge_id: &str) -> Result<Bridge, AriError> {
        self.json(Method::GET, &["bridges", bridge_id], Query::new(), None).await
    }

    /// `POST /bridges`.
    pub async fn create_bridge(&self, create: &CreateBridge) -> Result<Bridge, AriError> {
        self.json(Method::POST, &["bridges"], create.query(), None).await
    }

    /// `DELETE /bridges/{bridgeId}`: channels in it are removed, not hung up.
    pub async fn destroy_bridge(&self, bridge_id: &str) -> Result<(), AriError> {
        self.empty(Method::DELETE, &["bridges", bridge_id], Query::new(), None).await
    }

    /// `POST /bridges/{bridgeId}/addChannel`.
    pub async fn add_channel(&self, bridge_id: &str, add: &AddChannel) -> Result<(), AriError> {
        self.empty(Method::POST, &["bridges", bridge_id, "addChannel"], add.query(), None).await
    }

    /// `POST /bridges/{bridgeId}/removeChannel`.
    pub async fn remove_channel(&self, bridge_id: &str, channel_ids: &[&str]) -> Result<(), AriError> {
        let mut query = Query::new();
        query.list("channel", channel_ids);
        self.empty(Method::POST, &["bridges", bridge_id, "removeChannel"], query, None).await
    }

    /// `POST /bridges/{bridgeId}/play`: play to every channel in the bridge.
    pub async fn play_to_bridge(&self, bridge_id: &str, play: &Play) -> Result<Playback, AriError> {
        self.json(Method::POST, &["bridges", bridge_id, "play"], play.query(true), None).await
    }
}
