//! An API served on port 0 over an in-process bus, with a fake call-control gateway, shared by
//! the REST and live tests.

#![allow(dead_code, clippy::unwrap_used)] // Each test binary uses part; a panic is a test failure.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dragoman_bus::control::{ControlError, Done, ErrorCode, Hangup, Originate, Originated, Reply, SetLanguage};
use dragoman_bus::{Bus, Event, StreamLimits, wire};
use dragoman_runtime::{Config, Secret, Shutdown};
use futures::StreamExt as _;

/// The tokens every test API accepts.
pub const TOKEN: &str = "first-secret-token";
pub const OTHER_TOKEN: &str = "second-secret-token";

pub struct Api {
    pub address: SocketAddr,
    pub bus: Bus,
    pub shutdown: Shutdown,
    pub http: reqwest::Client,
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.address)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.url(path)).bearer_auth(TOKEN)
    }

    /// Publishes events as the workers and gateway would, and waits until the recorder stored
    /// the last call's events.
    pub async fn publish(&self, events: &[Event]) {
        for event in events {
            self.bus.publish_event(event).await.unwrap();
        }
    }

    /// Waits until the call has `count` stored events.
    pub async fn wait_stored(&self, call_id: &str, count: u64) {
        dragoman_test_support::within(20, async {
            loop {
                let answer = self.get(&format!("/v1/calls/{call_id}")).send().await.unwrap();
                if answer.status() == 200 {
                    let record: serde_json::Value = answer.json().await.unwrap();
                    if record["last_seq"].as_u64() >= Some(count) {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

/// Serves the API with two tokens, memory store unless `configure` sets `redis_url`.
pub async fn start(configure: impl FnOnce(&mut Config)) -> Api {
    let bus = dragoman_test_support::memory_bus();
    bus.ensure_standard_streams(StreamLimits::default()).await.unwrap();
    let mut config = Config::default();
    config.api.tokens = vec![Secret::new(TOKEN), Secret::new(OTHER_TOKEN)];
    config.bus.request_timeout_ms = 1_000;
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = Shutdown::new(Duration::from_secs(2));
    tokio::spawn(dragoman_api::serve(listener, Arc::new(config), bus.clone(), shutdown.clone()));
    Api { address, bus, shutdown, http: reqwest::Client::new() }
}

/// What the fake gateway was asked.
#[derive(Debug, Default, Clone)]
pub struct Asked {
    pub originate: Vec<Originate>,
    pub hangup: Vec<Hangup>,
    pub set_language: Vec<SetLanguage>,
}

/// A stand-in for the ARI gateway (issue #7): answers the three control requests per
/// `control.rs`, records them, and refuses to originate to `PJSIP/busy` as `upstream`.
pub async fn fake_gateway(bus: &Bus) -> Arc<Mutex<Asked>> {
    let asked = Arc::new(Mutex::new(Asked::default()));
    let subjects = bus.subjects().clone();
    let mut originate = bus.subscribe(&subjects.control_originate()).await.unwrap();
    let mut hangup = bus.subscribe(&subjects.control_hangup()).await.unwrap();
    let mut set_language = bus.subscribe(&subjects.control_set_language()).await.unwrap();
    let (bus, record) = (bus.clone(), asked.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                Some(message) = originate.next() => {
                    let request: Originate = wire::decode(&message.payload).unwrap();
                    let reply: Reply<Originated> = if request.endpoint == "PJSIP/busy" {
                        Reply::Error(ControlError::new(ErrorCode::Upstream, "asterisk: endpoint busy"))
                    } else {
                        Reply::Ok(Originated { call_id: "placed-1".into(), channel_id: "PJSIP/1000-01".into() })
                    };
                    record.lock().unwrap().originate.push(request);
                    bus.respond_json(&message, &reply).await.unwrap();
                }
                Some(message) = hangup.next() => {
                    record.lock().unwrap().hangup.push(wire::decode(&message.payload).unwrap());
                    bus.respond_json(&message, &Reply::Ok(Done {})).await.unwrap();
                }
                Some(message) = set_language.next() => {
                    record.lock().unwrap().set_language.push(wire::decode(&message.payload).unwrap());
                    bus.respond_json(&message, &Reply::Ok(Done {})).await.unwrap();
                }
                else => return,
            }
        }
    });
    asked
}

/// Checks an error answer: its status, problem+json, and a detail containing `needle`.
pub async fn assert_problem(answer: reqwest::Response, status: u16, needle: &str) -> serde_json::Value {
    assert_eq!(answer.status().as_u16(), status, "{answer:?}");
    let content_type = answer.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["status"], status);
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains(needle), "{detail:?} should contain {needle:?}");
    body
}
