//! A stand-in for media ingest's endpoint allocator: answers `media.allocate` with a real UDP
//! socket per (call, leg) and notes the RTP that arrives there, so gateway tests and
//! `dragoman bench gateway` can tell when each party's voice is flowing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dragoman_bus::control::{AllocateEndpoint, EndpointAllocated, MediaTransport, Reply};
use dragoman_bus::{Bus, BusError, wire};
use futures::StreamExt as _;

/// What one endpoint has received.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// When the first RTP packet arrived.
    pub first: Instant,
    /// RTP packets (version 2) so far.
    pub packets: u64,
    /// The payload type of the latest (118 is slin16, 0 µ-law).
    pub payload_type: u8,
}

/// The endpoints handed out, by (call, leg).
#[derive(Debug, Clone, Default)]
pub struct RtpEndpoints(Arc<Mutex<HashMap<(String, String), Received>>>);

impl RtpEndpoints {
    /// Serves `media.allocate` on `bus` until the bus closes.
    pub async fn serve(bus: &Bus) -> Result<Self, BusError> {
        let endpoints = Self::default();
        let mut requests = bus.subscribe(&bus.subjects().media_allocate()).await?;
        let (bus, seen) = (bus.clone(), endpoints.clone());
        tokio::spawn(async move {
            while let Some(message) = requests.next().await {
                let Ok(request) = wire::decode::<AllocateEndpoint>(&message.payload) else { continue };
                let Ok(socket) = tokio::net::UdpSocket::bind("127.0.0.1:0").await else { continue };
                let Ok(address) = socket.local_addr() else { continue };
                let (seen, key) = (seen.clone(), (request.call_id, request.leg));
                tokio::spawn(async move {
                    let mut buffer = [0u8; 2048];
                    while let Ok(size) = socket.recv(&mut buffer).await {
                        if size > 12 && buffer[0] >> 6 == 2 {
                            seen.record(&key, buffer[1] & 0x7f);
                        }
                    }
                });
                let reply = Reply::Ok(EndpointAllocated {
                    host: "127.0.0.1".into(),
                    port: address.port(),
                    transport: MediaTransport::Rtp,
                    connection_id: None,
                });
                let _ = bus.respond_json(&message, &reply).await;
            }
        });
        Ok(endpoints)
    }

    fn record(&self, key: &(String, String), payload_type: u8) {
        let mut seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let received = seen.entry(key.clone()).or_insert(Received { first: Instant::now(), packets: 0, payload_type });
        received.packets += 1;
        received.payload_type = payload_type;
    }

    /// What the endpoint of `leg` in `call` has received, if anything.
    pub fn received(&self, call: &str, leg: &str) -> Option<Received> {
        let seen = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        seen.get(&(call.to_owned(), leg.to_owned())).copied()
    }
}
