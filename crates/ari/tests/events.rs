//! The events WebSocket against a small tokio-tungstenite server on loopback: handshake
//! (app, auth, subprotocol), decoding, skipping bad frames, reconnecting, keepalive, shutdown.

#![allow(clippy::unwrap_used)] // A panic is a test failure.

use std::time::Duration;

use dragoman_ari::{AriClient, AriConfig, ConnectionState, Event, EventStream, EventsConfig, Incoming};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_util::sync::CancellationToken;

/// Generous bound on waiting for one item; only reached when something is broken.
const WAIT: Duration = Duration::from_secs(10);

/// What the server saw in one handshake.
#[derive(Debug, Clone)]
struct Handshake {
    path: String,
    query: String,
    authorization: Option<String>,
    protocols: Option<String>,
}

/// Accepts one WebSocket, recording the handshake; `refuse` answers 503 instead.
async fn accept(
    stream: TcpStream,
    refuse: bool,
    seen: &mpsc::UnboundedSender<Handshake>,
) -> Option<WebSocketStream<TcpStream>> {
    let seen = seen.clone();
    // The signature is tungstenite's `Callback`; its error type is not ours to shrink.
    #[allow(clippy::result_large_err)]
    let callback = move |request: &Request, mut response: Response| -> Result<Response, ErrorResponse> {
        let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let handshake = Handshake {
            path: request.uri().path().to_owned(),
            query: request.uri().query().unwrap_or_default().to_owned(),
            authorization: header("authorization"),
            protocols: header("sec-websocket-protocol"),
        };
        let offers_ari = handshake.protocols.as_deref().is_some_and(|p| p.split(',').any(|p| p.trim() == "ari"));
        let _ = seen.send(handshake);
        if refuse {
            let mut refusal = ErrorResponse::new(Some("restarting".to_owned()));
            *refusal.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            return Err(refusal);
        }
        if offers_ari {
            response.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("ari"));
        }
        Ok(response)
    };
    tokio_tungstenite::accept_hdr_async(stream, callback).await.ok()
}

fn channel(id: &str) -> Value {
    json!({
        "id": id, "protocol_id": "", "name": format!("PJSIP/{id}"), "state": "Up",
        "caller": {"name": "", "number": "100"}, "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": "in", "exten": "s", "priority": 1, "app_name": "Stasis", "app_data": "dragoman"},
        "creationtime": "2026-11-25T10:00:00.000+0000", "language": "en"
    })
}

fn frame(event_type: &str, fields: Value) -> Message {
    let mut frame = json!({
        "type": event_type, "application": "dragoman",
        "timestamp": "2026-11-25T10:00:01.250+0000", "asterisk_id": "00:11:22:33:44:55"
    });
    if let (Some(frame), Value::Object(fields)) = (frame.as_object_mut(), fields) {
        frame.extend(fields);
    }
    Message::text(frame.to_string())
}

async fn next(events: &mut EventStream) -> Incoming {
    timeout(WAIT, events.recv()).await.expect("an item in time").expect("stream still open")
}

fn client(addr: std::net::SocketAddr) -> AriClient {
    AriClient::new(AriConfig::new(format!("http://{addr}"), "dragoman", "secret")).expect("client")
}

#[tokio::test]
async fn decodes_skips_bad_frames_and_reconnects_after_drop() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // 1st attempt: refused (Asterisk restarting). 2nd: frames, then the socket drops.
        // 3rd: one more event, then held open and answering pings until the client leaves.
        let (stream, _) = listener.accept().await.unwrap();
        assert!(accept(stream, true, &seen_tx).await.is_none());

        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = accept(stream, false, &seen_tx).await.expect("second handshake");
        ws.send(frame("StasisStart", json!({"args": ["leg-a"], "channel": channel("c1")}))).await.unwrap();
        ws.send(Message::text("{\"type\": \"StasisEnd\", oops")).await.unwrap();
        ws.send(frame("ChannelTeleported", json!({"to": "mars"}))).await.unwrap();
        ws.send(frame("ChannelDtmfReceived", json!({"digit": "5", "duration_ms": 90, "channel": channel("c1")})))
            .await
            .unwrap();
        drop(ws);

        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = accept(stream, false, &seen_tx).await.expect("third handshake");
        ws.send(frame("ChannelTalkingFinished", json!({"channel": channel("c1"), "duration": 1500}))).await.unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });

    let shutdown = CancellationToken::new();
    let config = EventsConfig::new("dragoman")
        .app("dragoman-admin")
        .subscribe_all(true)
        .backoff(Duration::from_millis(5), Duration::from_millis(40));
    let mut events = client(addr).events(config, shutdown.clone());
    let state = events.state();

    assert_eq!(next(&mut events).await, Incoming::Connected);
    match next(&mut events).await {
        Incoming::Event(Event::StasisStart(start)) => {
            assert_eq!(start.args, ["leg-a"]);
            assert_eq!(start.channel.id, "c1");
            assert_eq!(start.common.application, "dragoman");
        }
        other => panic!("expected StasisStart, got {other:?}"),
    }
    // The malformed frame was skipped; the unknown type arrives as Unknown.
    match next(&mut events).await {
        Incoming::Event(event) => {
            assert!(event.is_unknown());
            assert_eq!(event.type_name(), "ChannelTeleported");
        }
        other => panic!("expected the unknown event, got {other:?}"),
    }
    match next(&mut events).await {
        Incoming::Event(Event::ChannelDtmfReceived(dtmf)) => assert_eq!(dtmf.digit, "5"),
        other => panic!("expected ChannelDtmfReceived, got {other:?}"),
    }
    match next(&mut events).await {
        Incoming::Disconnected { reason } => assert!(!reason.is_empty()),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(next(&mut events).await, Incoming::Connected);
    match next(&mut events).await {
        Incoming::Event(Event::ChannelTalkingFinished(talk)) => assert_eq!(talk.duration, 1500),
        other => panic!("expected ChannelTalkingFinished, got {other:?}"),
    }
    assert_eq!(*state.borrow(), ConnectionState::Connected);

    // Every handshake asked for the apps, subscribeAll, Basic auth and the `ari` subprotocol.
    let mut handshakes = Vec::new();
    while let Ok(handshake) = seen.try_recv() {
        handshakes.push(handshake);
    }
    assert_eq!(handshakes.len(), 3, "{handshakes:?}");
    for handshake in &handshakes {
        assert_eq!(handshake.path, "/ari/events");
        assert_eq!(handshake.query, "app=dragoman%2Cdragoman-admin&subscribeAll=true");
        assert_eq!(handshake.authorization.as_deref(), Some("Basic ZHJhZ29tYW46c2VjcmV0"));
        assert_eq!(handshake.protocols.as_deref(), Some("ari"));
    }

    shutdown.cancel();
    assert_eq!(timeout(WAIT, events.recv()).await.expect("stream ends in time"), None);
    assert_eq!(*state.borrow(), ConnectionState::Stopped);
}

#[tokio::test]
async fn a_hung_asterisk_is_detected_by_ping_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        // Accepts, then never reads again: pings go unanswered, like a wedged Asterisk.
        let mut held = Vec::new();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            if let Some(ws) = accept(stream, false, &seen_tx).await {
                held.push(ws);
            }
        }
    });

    let shutdown = CancellationToken::new();
    let ari = AriClient::new(AriConfig::new(format!("http://{addr}"), "u", "p w").api_key_auth()).unwrap();
    let config = EventsConfig::new("dragoman")
        .keepalive(Duration::from_millis(30), Duration::from_millis(60))
        .backoff(Duration::from_millis(5), Duration::from_millis(20));
    let mut events = ari.events(config, shutdown.clone());

    assert_eq!(next(&mut events).await, Incoming::Connected);
    match next(&mut events).await {
        Incoming::Disconnected { reason } => assert!(reason.contains("ping"), "{reason}"),
        other => panic!("expected Disconnected, got {other:?}"),
    }
    assert_eq!(next(&mut events).await, Incoming::Connected);

    // api_key auth: credentials in the query, no Authorization header.
    let handshake = seen.recv().await.expect("a handshake");
    assert_eq!(handshake.query, "app=dragoman&subscribeAll=false&api_key=u%3Ap%20w");
    assert_eq!(handshake.authorization, None);

    shutdown.cancel();
    assert_eq!(timeout(WAIT, events.recv()).await.expect("stream ends in time"), None);
}

#[tokio::test]
async fn dropping_the_stream_stops_the_supervisor() {
    // Nothing listens on this port: the supervisor keeps retrying until the stream is dropped.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);

    let config = EventsConfig::new("dragoman").backoff(Duration::from_millis(1), Duration::from_millis(5));
    let events = client(addr).events(config, CancellationToken::new());
    let mut state = events.state();
    let failed = timeout(WAIT, state.wait_for(|s| matches!(s, ConnectionState::Disconnected { .. })))
        .await
        .expect("a failed attempt in time")
        .expect("supervisor alive")
        .clone();
    let ConnectionState::Disconnected { reason } = failed else { unreachable!() };
    assert!(!reason.is_empty());

    drop(events);
    timeout(WAIT, state.wait_for(|s| *s == ConnectionState::Stopped))
        .await
        .expect("supervisor stops in time")
        .expect("state readable after stop");
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_a_consumer_that_stopped_reading() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (seen_tx, _seen) = mpsc::unbounded_channel();
    let (sent_tx, mut sent) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut ws = accept(stream, false, &seen_tx).await.expect("handshake");
        for n in 0..20 {
            let dtmf = json!({"digit": "1", "duration_ms": n, "channel": channel("c1")});
            ws.send(frame("ChannelDtmfReceived", dtmf)).await.unwrap();
        }
        sent_tx.send(()).unwrap();
        while let Some(Ok(_)) = ws.next().await {}
    });

    let shutdown = CancellationToken::new();
    let mut events = client(addr).events(EventsConfig::new("dragoman").buffer(2), shutdown.clone());
    let mut state = events.state();
    timeout(WAIT, sent.recv()).await.expect("server sent its frames in time");
    timeout(WAIT, async {
        while events.backlog() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the buffer fills");
    // Let the supervisor read the next frame and block handing it over.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The buffer (2) is full and nobody reads; shutdown must still stop the supervisor.
    shutdown.cancel();
    timeout(WAIT, state.wait_for(|s| *s == ConnectionState::Stopped))
        .await
        .expect("supervisor stops in time")
        .expect("state readable after stop");
    let mut buffered = 0;
    while let Some(item) = timeout(WAIT, events.recv()).await.expect("stream ends in time") {
        assert!(matches!(item, Incoming::Connected | Incoming::Event(Event::ChannelDtmfReceived(_))));
        buffered += 1;
    }
    assert!(buffered <= 3, "{buffered} items left in a buffer of 2 plus one in hand");
}

#[tokio::test]
async fn wss_failures_are_reported_and_retried_not_fatal() {
    // A peer that drops every connection: the TLS handshake fails. That must be an ordinary
    // failed attempt (rustls set up, no panic), retried like any other.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (accepted_tx, mut accepted) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
            let _ = accepted_tx.send(());
        }
    });
    let ari = AriClient::new(AriConfig::new(format!("https://{addr}"), "u", "p")).unwrap();
    let config = EventsConfig::new("dragoman").backoff(Duration::from_millis(1), Duration::from_millis(5));
    let events = ari.events(config, CancellationToken::new());
    let mut state = events.state();
    let failed = timeout(WAIT, state.wait_for(|s| matches!(s, ConnectionState::Disconnected { .. })))
        .await
        .expect("a failed attempt in time")
        .expect("supervisor alive after a tls failure")
        .clone();
    assert!(matches!(failed, ConnectionState::Disconnected { reason } if !reason.is_empty()));
    for _ in 0..2 {
        timeout(WAIT, accepted.recv()).await.expect("another attempt in time").expect("server alive");
    }
    assert!(!matches!(*state.borrow(), ConnectionState::Stopped));
}
