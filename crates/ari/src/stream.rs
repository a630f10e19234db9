//! [`EventStream`]: the `/ari/events` WebSocket, kept up by a supervisor task.
//!
//! The supervisor connects (`ws://` or `wss://`, subprotocol `ari`, the client's auth),
//! decodes each text frame into an [`Event`] and hands it on. A frame that does not decode is
//! logged and skipped; it never ends the stream. When the socket drops, Asterisk restarts or
//! stops answering pings, the supervisor reconnects after an exponential backoff with full
//! jitter, for as long as it runs.
//!
//! The consumer sees [`Incoming::Connected`] after every (re)connect and
//! [`Incoming::Disconnected`] when a live connection is lost, in order with the events: after
//! a reconnect, events may have been missed, so resynchronise (list channels and bridges).
//! [`EventStream::state`] offers the same as a `watch` for code that only needs the state.
//!
//! The supervisor stops when the [`CancellationToken`] is cancelled or the [`EventStream`] is
//! dropped; the stream then ends. Backpressure: the supervisor waits for the consumer (bounded
//! buffer) rather than drop events, and stops reading the socket meanwhile.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{SinkExt, Stream, StreamExt};
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};
use tokio_util::sync::CancellationToken;

use crate::client::{AriClient, Query};
use crate::events::Event;

/// Exponential backoff with full jitter: before retry `n` (from 0) wait a uniformly random
/// time in `[0, min(max, initial × 2ⁿ)]`, so many clients restarting together spread out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 250 ms doubling up to 30 s.
    fn default() -> Self {
        Self { initial: Duration::from_millis(250), max: Duration::from_secs(30) }
    }
}

impl Backoff {
    /// The upper bound of the wait before retry `attempt` (from 0). An `initial` of zero
    /// counts as 1 ms so a misconfiguration cannot spin.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(31));
        let initial = self.initial.max(Duration::from_millis(1));
        initial.saturating_mul(factor).min(self.max.max(initial))
    }

    /// A random wait in `[0, ceiling(attempt)]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

/// What to subscribe to and how to keep the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsConfig {
    /// Stasis applications (`app=` joins them with commas); at least one.
    pub apps: Vec<String>,
    /// Events for every channel and bridge, not only those the application owns.
    pub subscribe_all: bool,
    pub backoff: Backoff,
    /// A WebSocket ping goes out this often.
    pub ping_interval: Duration,
    /// With nothing received this long after a ping, the connection counts as hung.
    pub pong_timeout: Duration,
    /// Longest the TCP, TLS and WebSocket handshakes may take together.
    pub connect_timeout: Duration,
    /// Items buffered for a slow consumer before the supervisor waits.
    pub buffer: usize,
}

impl EventsConfig {
    /// Events of application `app`; pings every 10 s, 5 s to answer, default backoff.
    pub fn new(app: impl Into<String>) -> Self {
        Self {
            apps: vec![app.into()],
            subscribe_all: false,
            backoff: Backoff::default(),
            ping_interval: Duration::from_secs(10),
            pong_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            buffer: 1024,
        }
    }

    pub fn app(mut self, app: impl Into<String>) -> Self {
        self.apps.push(app.into());
        self
    }

    pub fn subscribe_all(mut self, subscribe_all: bool) -> Self {
        self.subscribe_all = subscribe_all;
        self
    }

    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.backoff = Backoff { initial, max };
        self
    }

    pub fn keepalive(mut self, ping_interval: Duration, pong_timeout: Duration) -> Self {
        self.ping_interval = ping_interval;
        self.pong_timeout = pong_timeout;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn buffer(mut self, buffer: usize) -> Self {
        self.buffer = buffer;
        self
    }
}

/// Where the events connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionState {
    /// Connecting (the first time, or again after a failure).
    Connecting,
    /// Subscribed; events flow.
    Connected,
    /// Not connected; a retry follows unless the supervisor stopped.
    Disconnected { reason: String },
    /// The supervisor stopped (cancelled, or the stream was dropped).
    Stopped,
}

/// An item of the [`EventStream`].
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// A connection is up. After the first, events may have been missed: resynchronise.
    Connected,
    /// A live connection was lost; the supervisor is reconnecting.
    Disconnected { reason: String },
    /// An event from Asterisk (possibly [`Event::Unknown`]: ignore those you do not know).
    Event(Event),
}

/// Events from `/ari/events`, reconnecting by itself. Ends after shutdown.
#[derive(Debug)]
pub struct EventStream {
    items: mpsc::Receiver<Incoming>,
    state: watch::Receiver<ConnectionState>,
}

impl EventStream {
    /// The next item; `None` once the supervisor has stopped.
    pub async fn recv(&mut self) -> Option<Incoming> {
        self.items.recv().await
    }

    /// Items waiting for the consumer (a backlog gauge; the buffer holds `buffer` at most).
    pub fn backlog(&self) -> usize {
        self.items.len()
    }

    /// The connection state, updated as it changes.
    pub fn state(&self) -> watch::Receiver<ConnectionState> {
        self.state.clone()
    }
}

impl Stream for EventStream {
    type Item = Incoming;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        self.items.poll_recv(cx)
    }
}

impl AriClient {
    /// Starts the events supervisor on the current Tokio runtime and returns its stream.
    /// It runs until `shutdown` is cancelled or the stream is dropped.
    pub fn events(&self, config: EventsConfig, shutdown: CancellationToken) -> EventStream {
        let (items_tx, items) = mpsc::channel(config.buffer.max(1));
        let (state_tx, state) = watch::channel(ConnectionState::Connecting);
        let supervisor = Supervisor { client: self.clone(), config, shutdown, items: items_tx, state: state_tx };
        tokio::spawn(supervisor.run());
        EventStream { items, state }
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection ended.
enum Ended {
    /// Shutdown was asked for, or nobody listens any more.
    Stop,
    /// Lost; reconnect.
    Lost(String),
}

struct Supervisor {
    client: AriClient,
    config: EventsConfig,
    shutdown: CancellationToken,
    items: mpsc::Sender<Incoming>,
    state: watch::Sender<ConnectionState>,
}

impl Supervisor {
    async fn run(self) {
        let apps = self.config.apps.join(",");
        let mut attempt: u32 = 0;
        loop {
            self.state.send_replace(ConnectionState::Connecting);
            let connected = tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = self.items.closed() => break,
                connected = self.connect() => connected,
            };
            match connected {
                Ok(socket) => {
                    tracing::info!(apps = %apps, "ari events connected");
                    let since = Instant::now();
                    self.state.send_replace(ConnectionState::Connected);
                    if !self.deliver(Incoming::Connected).await {
                        break;
                    }
                    let reason = match self.read(socket).await {
                        Ended::Stop => break,
                        Ended::Lost(reason) => reason,
                    };
                    tracing::warn!(apps = %apps, reason = %reason, "ari events connection lost");
                    // A connection that stayed up a while resets the backoff; one that drops
                    // at once (a refusing or flapping Asterisk) keeps backing off.
                    if since.elapsed() >= self.config.backoff.max {
                        attempt = 0;
                    }
                    self.state.send_replace(ConnectionState::Disconnected { reason: reason.clone() });
                    if !self.deliver(Incoming::Disconnected { reason }).await {
                        break;
                    }
                }
                Err(reason) => {
                    tracing::warn!(apps = %apps, attempt, reason = %reason, "ari events connect failed");
                    self.state.send_replace(ConnectionState::Disconnected { reason });
                }
            }
            let delay = self.config.backoff.delay(attempt);
            attempt = attempt.saturating_add(1);
            tracing::debug!(apps = %apps, attempt, delay_ms = delay.as_millis() as u64, "ari events reconnect");
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = self.items.closed() => break,
                () = sleep(delay) => {}
            }
        }
        self.state.send_replace(ConnectionState::Stopped);
        tracing::debug!(apps = %apps, "ari events supervisor stopped");
    }

    /// Hands an item to the consumer, waiting while its buffer is full; `false` when the
    /// consumer is gone or shutdown was asked for meanwhile.
    async fn deliver(&self, item: Incoming) -> bool {
        tokio::select! {
            () = self.shutdown.cancelled() => false,
            sent = self.items.send(item) => sent.is_ok(),
        }
    }

    /// Opens the WebSocket, handshake included, within the connect timeout.
    async fn connect(&self) -> Result<Socket, String> {
        let request = events_request(&self.client, &self.config)?;
        match timeout(self.config.connect_timeout, connect_async(request)).await {
            Ok(Ok((socket, _response))) => Ok(socket),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no websocket within {:?}", self.config.connect_timeout)),
        }
    }

    /// Reads one connection until it ends, pinging to notice a hung Asterisk.
    async fn read(&self, mut socket: Socket) -> Ended {
        let ping_interval = self.config.ping_interval;
        let pong_timeout = self.config.pong_timeout;
        let mut next_ping = Instant::now() + ping_interval;
        // Set when a ping goes out; any frame received clears it.
        let mut silent_since: Option<Instant> = None;
        loop {
            let deadline = match silent_since {
                Some(sent) => sent + pong_timeout,
                None => next_ping,
            };
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    // Best effort: tell Asterisk we are going, but do not wait long.
                    let _ = timeout(Duration::from_secs(1), socket.close(None)).await;
                    return Ended::Stop;
                }
                frame = socket.next() => {
                    silent_since = None;
                    match frame {
                        None => return Ended::Lost("closed by asterisk".to_owned()),
                        Some(Err(err)) => return Ended::Lost(err.to_string()),
                        Some(Ok(Message::Text(text))) => {
                            if let Some(event) = decode(text.as_str())
                                && !self.deliver(Incoming::Event(event)).await
                            {
                                return Ended::Stop;
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            let why = frame.map(|f| format!(" ({} {})", f.code, f.reason)).unwrap_or_default();
                            return Ended::Lost(format!("closed by asterisk{why}"));
                        }
                        Some(Ok(Message::Binary(bytes))) => {
                            tracing::warn!(frame_bytes = bytes.len(), "skipping binary ari frame");
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                    }
                }
                () = sleep_until(deadline) => {
                    if silent_since.is_some() {
                        return Ended::Lost(format!("no answer to ping within {pong_timeout:?}"));
                    }
                    match timeout(pong_timeout, socket.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => return Ended::Lost(err.to_string()),
                        Err(_) => return Ended::Lost(format!("ping not sent within {pong_timeout:?}")),
                    }
                    let now = Instant::now();
                    silent_since = Some(now);
                    next_ping = now + ping_interval;
                }
            }
        }
    }
}

/// The handshake request: `ws(s)://…/ari/events?app=…&subscribeAll=…`, subprotocol `ari`,
/// the client's auth.
fn events_request(client: &AriClient, config: &EventsConfig) -> Result<Request, String> {
    let mut url = client.ari_url(&["events"]);
    let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
    url.set_scheme(scheme).map_err(|()| format!("cannot use {scheme} for {url}"))?;
    let mut query = Query::new();
    query.push("app", config.apps.join(",")).push("subscribeAll", config.subscribe_all);
    client.add_api_key(&mut query);
    url.set_query(Some(&query.encode()));

    let mut request = url.as_str().into_client_request().map_err(|err| err.to_string())?;
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", HeaderValue::from_static("ari"));
    if let Some(authorization) = client.basic_authorization() {
        headers.insert("Authorization", authorization);
    }
    Ok(request)
}

/// Decodes a text frame; a bad one is logged and dropped.
fn decode(frame: &str) -> Option<Event> {
    match Event::from_json(frame) {
        Ok(event) => {
            if let Event::Unknown(unknown) = &event {
                tracing::debug!(event_type = %unknown.event_type, "ari event of unknown type");
            }
            Some(event)
        }
        Err(err) => {
            tracing::warn!(error = %err, frame_bytes = frame.len(), "skipping malformed ari frame");
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // A panic is a test failure.
mod tests {
    use super::*;

    #[test]
    fn backoff_ceiling_doubles_up_to_max() {
        let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        let ceilings: Vec<u128> = (0..6).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
        let zero = Backoff { initial: Duration::ZERO, max: Duration::ZERO };
        assert_eq!(zero.ceiling(0), Duration::from_millis(1));
    }

    #[test]
    fn backoff_delay_is_jittered_within_ceiling() {
        let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        let delays: Vec<Duration> = (0..200).map(|_| backoff.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(800)));
        // Full jitter spreads over the whole range, not around the ceiling.
        assert!(delays.iter().any(|d| *d < Duration::from_millis(400)));
        assert!(delays.iter().any(|d| *d > Duration::from_millis(400)));
    }

    #[test]
    fn events_url_follows_the_rest_url() {
        use crate::client::AriConfig;

        let tls = AriClient::new(AriConfig::new("https://pbx.example:8089/asterisk", "u", "p")).unwrap();
        let request = events_request(&tls, &EventsConfig::new("dragoman")).unwrap();
        assert_eq!(
            request.uri().to_string(),
            "wss://pbx.example:8089/asterisk/ari/events?app=dragoman&subscribeAll=false"
        );
        assert_eq!(request.headers()["sec-websocket-protocol"], "ari");
        assert!(request.headers()["authorization"].to_str().unwrap().starts_with("Basic "));

        let plain = AriClient::new(AriConfig::new("http://127.0.0.1:8088", "u", "p").api_key_auth()).unwrap();
        let request = events_request(&plain, &EventsConfig::new("a").app("b").subscribe_all(true)).unwrap();
        assert_eq!(
            request.uri().to_string(),
            "ws://127.0.0.1:8088/ari/events?app=a%2Cb&subscribeAll=true&api_key=u%3Ap"
        );
        assert!(request.headers().get("authorization").is_none());
    }

    #[test]
    fn malformed_frames_are_dropped_and_unknown_kept() {
        assert!(decode("{not json").is_none());
        assert!(decode(r#"{"no_type": 1}"#).is_none());
        let unknown = decode(r#"{"type":"SomethingNew","application":"a"}"#).unwrap();
        assert!(unknown.is_unknown());
    }
}
