//! The live WebSocket routes over real HTTP: stored events in order with their sequence
//! numbers, then live ones and partials; a reconnect with `after` gets exactly what was missed;
//! the all-calls feed with its cursor and filter; a client that does not read is closed with
//! 4008.

#![allow(clippy::unwrap_used)] // A panic is a test failure.

mod common;
mod harness;

use std::time::Duration;

use common::{ended, final_transcript, final_translation, joined, started, transcript};
use dragoman_bus::events::Stage;
use dragoman_test_support::within;
use futures::StreamExt as _;
use harness::{Api, TOKEN, start};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects with the token in the `Authorization` header.
async fn connect(api: &Api, path: &str) -> Socket {
    let mut request = api.ws_url(path).into_client_request().unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// The next JSON frame.
async fn next(socket: &mut Socket) -> Value {
    within(10, async {
        loop {
            match socket.next().await.unwrap().unwrap() {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected frame {other:?}"),
            }
        }
    })
    .await
}

/// The next `count` frames' `(kind, seq)`.
async fn frames(socket: &mut Socket, count: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(next(socket).await);
    }
    out
}

fn seqs(frames: &[Value]) -> Vec<u64> {
    frames.iter().map(|f| f["seq"].as_u64().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_streams_stored_then_live_events_in_order_and_resumes_after_a_sequence() {
    let api = start(|_| {}).await;
    let first = [started("c", 0), joined("c", "caller", "es", "en", 1), final_transcript("c", "caller", 0)];
    api.publish(&first).await;
    api.wait_stored("c", 3).await;

    let mut socket = connect(&api, "/v1/calls/c/live").await;
    let history = frames(&mut socket, 3).await;
    assert_eq!(seqs(&history), [1, 2, 3]);
    assert!(history.iter().all(|f| f["kind"] == "event" && f["call_id"] == "c"));
    assert_eq!(history[0]["event"]["type"], "CallStarted");
    assert_eq!(history[2]["event"]["text"], "caller line 0");

    // A partial goes out at once, without a number; stored events follow with theirs.
    api.publish(&[transcript("c", "caller", 1, Stage::Partial)]).await;
    let partial = next(&mut socket).await;
    assert_eq!(partial["kind"], "partial");
    assert!(partial.get("seq").is_none());
    assert_eq!(partial["event"]["stage"], "partial");
    api.publish(&[final_transcript("c", "caller", 1), final_translation("c", "caller", 1)]).await;
    let live = frames(&mut socket, 2).await;
    assert_eq!(seqs(&live), [4, 5]);

    // Gone for a while: two events are stored meanwhile; resuming after 4 gets 5, 6, 7 only.
    drop(socket);
    api.publish(&[final_transcript("c", "callee", 2), ended("c", 9)]).await;
    api.wait_stored("c", 7).await;
    let mut socket = connect(&api, "/v1/calls/c/live?after=4&partials=false").await;
    let missed = frames(&mut socket, 3).await;
    assert_eq!(seqs(&missed), [5, 6, 7]);
    assert_eq!(missed[2]["event"]["type"], "CallEnded");
    // Nothing more (no duplicate) arrives.
    let more = tokio::time::timeout(Duration::from_millis(1_500), socket.next()).await;
    assert!(more.is_err(), "unexpected {more:?}");

    // The token may come in the query string (browsers cannot set headers on a WebSocket).
    let url = api.ws_url(&format!("/v1/calls/c/live?after=6&access_token={TOKEN}"));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(seqs(&frames(&mut socket, 1).await), [7]);

    // Unknown call and no token are refused before the upgrade.
    let unknown = tokio_tungstenite::connect_async(api.ws_url(&format!("/v1/calls/x/live?access_token={TOKEN}"))).await;
    assert!(unknown.unwrap_err().to_string().contains("404"));
    let refused = tokio_tungstenite::connect_async(api.ws_url("/v1/calls/c/live")).await;
    assert!(refused.unwrap_err().to_string().contains("401"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_feed_streams_every_call_filtered_and_resumes_after_a_cursor() {
    let api = start(|_| {}).await;
    api.publish(&[started("before", 0)]).await;
    api.wait_stored("before", 1).await;

    // Without `after`, the feed starts at its current end.
    let mut all = connect(&api, "/v1/live").await;
    let mut only_b = connect(&api, "/v1/live?calls=b&types=CallStarted,CallEnded&partials=false").await;
    api.publish(&[started("a", 1), started("b", 2), joined("b", "caller", "fr", "en", 3), ended("b", 4)]).await;
    let seen = frames(&mut all, 4).await;
    let calls: Vec<(&str, u64)> =
        seen.iter().map(|f| (f["call_id"].as_str().unwrap(), f["seq"].as_u64().unwrap())).collect();
    assert_eq!(calls.iter().filter(|(c, _)| *c == "b").map(|(_, s)| *s).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(calls.contains(&("a", 1)));
    assert!(seen.iter().all(|f| f["cursor"].is_string()));
    let filtered = frames(&mut only_b, 2).await;
    assert_eq!(filtered[0]["event"]["type"], "CallStarted");
    assert_eq!(filtered[1]["event"]["type"], "CallEnded");
    assert!(filtered.iter().all(|f| f["call_id"] == "b"));

    // Resuming after the second frame's cursor gets the third and fourth, nothing twice.
    let cursor = seen[1]["cursor"].as_str().unwrap();
    let mut resumed = connect(&api, &format!("/v1/live?after={cursor}&partials=false")).await;
    let rest = frames(&mut resumed, 2).await;
    assert_eq!(rest, seen[2..]);
    let more = tokio::time::timeout(Duration::from_millis(1_500), resumed.next()).await;
    assert!(more.is_err(), "unexpected {more:?}");

    // Partials of every call.
    api.publish(&[transcript("a", "caller", 0, Stage::Partial)]).await;
    let partial = next(&mut all).await;
    assert_eq!((partial["kind"].as_str(), partial["call_id"].as_str()), (Some("partial"), Some("a")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_read_is_closed_with_4008_and_others_keep_up() {
    let api = start(|_| {}).await;
    api.publish(&[started("busy", 0)]).await;
    api.wait_stored("busy", 1).await;
    let mut slow = connect(&api, "/v1/calls/busy/live").await;
    let mut fast = connect(&api, "/v1/calls/busy/live?partials=false").await;
    assert_eq!(seqs(&frames(&mut fast, 1).await), [1]);

    // 2000 partials of 16 KiB: far more than the socket buffers and the client's queue hold.
    let mut partial = transcript("busy", "caller", 0, Stage::Partial);
    if let dragoman_bus::Event::TranscriptProduced(e) = &mut partial {
        e.text = "x".repeat(16 * 1024);
    }
    for _ in 0..2_000 {
        api.bus.publish_event(&partial).await.unwrap();
    }
    // The other client still gets stored events while the slow one is being closed.
    api.publish(&[final_transcript("busy", "caller", 0)]).await;
    assert_eq!(seqs(&frames(&mut fast, 1).await), [2]);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let (received, close) = within(20, async {
        let mut received = 0;
        while let Some(message) = slow.next().await {
            match message.unwrap() {
                Message::Text(_) => received += 1,
                Message::Close(frame) => return (received, frame),
                _ => {}
            }
        }
        panic!("closed without a close frame after {received} messages");
    })
    .await;
    let close = close.expect("a close frame with a code");
    assert_eq!(u16::from(close.code), dragoman_api::live::CLOSE_SLOW_CONSUMER);
    assert_eq!(close.reason.as_str(), "slow consumer");
    assert!(received < 2_000, "closed before everything went out: {received}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_sends_its_token_as_a_subprotocol_and_the_server_selects_dragoman_v1() {
    let api = start(|_| {}).await;
    api.publish(&[started("sub", 0)]).await;
    api.wait_stored("sub", 1).await;

    let offer = |token: &str| {
        let mut request = api.ws_url("/v1/calls/sub/live").into_client_request().unwrap();
        let protocols = format!("{}, bearer.{token}", dragoman_api::routes::LIVE_SUBPROTOCOL);
        request.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
        request
    };
    let (mut socket, response) = tokio_tungstenite::connect_async(offer(TOKEN)).await.unwrap();
    let selected = response.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(selected.as_deref(), Some(dragoman_api::routes::LIVE_SUBPROTOCOL), "the token is never echoed");
    assert_eq!(seqs(&frames(&mut socket, 1).await), [1]);

    let refused = tokio_tungstenite::connect_async(offer("not-a-token")).await;
    assert!(refused.unwrap_err().to_string().contains("401"));
    // REST routes take the header only.
    let rest = reqwest::Client::new()
        .get(api.url("/v1/calls/sub"))
        .header("sec-websocket-protocol", format!("bearer.{TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feed_cursor_the_store_never_gave_is_a_400_before_the_upgrade() {
    let api = start(|_| {}).await;
    let answer = tokio_tungstenite::connect_async(api.ws_url(&format!("/v1/live?after=nonsense&access_token={TOKEN}")))
        .await
        .unwrap_err();
    let tokio_tungstenite::tungstenite::Error::Http(response) = answer else { panic!("not an HTTP refusal: {answer}") };
    assert_eq!(response.status(), 400);
    let body = String::from_utf8(response.body().clone().unwrap_or_default()).unwrap();
    assert!(body.contains("feed cursor"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_sessions_beyond_max_live_connections_are_answered_503_until_one_closes() {
    let api = start(|config| config.api.max_live_connections = 2).await;
    api.publish(&[started("cap", 0)]).await;
    api.wait_stored("cap", 1).await;
    let mut first = connect(&api, "/v1/calls/cap/live").await;
    let _second = connect(&api, "/v1/live").await;
    let third = tokio_tungstenite::connect_async(api.ws_url(&format!("/v1/live?access_token={TOKEN}"))).await;
    assert!(third.unwrap_err().to_string().contains("503"));

    first.close(None).await.unwrap();
    // The slot comes back once the server has seen the close.
    within(10, async {
        loop {
            if tokio_tungstenite::connect_async(api.ws_url(&format!("/v1/live?access_token={TOKEN}"))).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}
