//! The events WebSocket: `GET /ari/events?app=NAME[,NAME2]&subscribeAll=BOOL`, subprotocol `ari`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::rest::Params;
use super::state::{Conn, Outbound, Shared};

/// Upgrades to the events WebSocket. Without `app`, Asterisk still upgrades and answers with a
/// `MissingParams` message before closing; the fake does the same.
pub(crate) fn upgrade(shared: Arc<Shared>, ws: WebSocketUpgrade, params: Params) -> Response {
    let apps: Vec<String> = params.multi("app");
    let subscribe_all = params.get("subscribeAll").is_some_and(|v| v == "true" || v == "1" || v == "yes");
    ws.protocols(["ari"]).on_upgrade(move |socket| run(shared, socket, apps, subscribe_all))
}

async fn run(shared: Arc<Shared>, mut socket: WebSocket, apps: Vec<String>, subscribe_all: bool) {
    if apps.is_empty() {
        let message = json!({"type": "MissingParams", "params": ["app"], "asterisk_id": shared.config.asterisk_id});
        let _ = socket.send(Message::Text(message.to_string().into())).await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    shared.stats.websocket_connections.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    {
        let mut state = shared.lock();
        let conn_id = state.next();
        state.conns.insert(conn_id, Conn { tx, subscribe_all });
        for app in &apps {
            let previous = state.apps.entry(app.clone()).or_default().conn.replace(conn_id);
            // A newer connection for the same application wins; the older one is told so.
            if let Some(old) = previous.and_then(|c| state.conns.get(&c)) {
                let mut body = Map::new();
                body.insert("type".into(), "ApplicationReplaced".into());
                body.insert("application".into(), app.clone().into());
                body.insert("timestamp".into(), super::state::ari_time(chrono::Utc::now()).into());
                body.insert("asterisk_id".into(), shared.config.asterisk_id.clone().into());
                let text = Value::Object(body).to_string();
                let frame = Outbound { text, not_before: tokio::time::Instant::now() };
                if old.tx.send(frame).is_ok() {
                    shared.stats.events_sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    shared.changed.notify_waiters();
    let (mut sink, mut stream) = socket.split();
    let writer = write_frames(shared.clone(), &mut sink, rx);
    // Read (and ignore) client frames so that pings are answered and a close is noticed.
    let reader = async { while let Some(Ok(_)) = stream.next().await {} };
    tokio::select! {
        () = writer => {}
        () = reader => {}
    }
    // Forget the connection if it is still ours (it may have been dropped or replaced).
    let mut state = shared.lock();
    let mine: Vec<u64> = state.conns.iter().filter(|(_, c)| c.tx.is_closed()).map(|(id, _)| *id).collect();
    for id in mine {
        state.conns.remove(&id);
        for app in state.apps.values_mut() {
            if app.conn == Some(id) {
                app.conn = None;
            }
        }
    }
    drop(state);
    shared.changed.notify_waiters();
}

/// Sends queued frames in order, each no earlier than its `not_before`, and nothing while the
/// fake is hung. Ends when the queue's sender is dropped (the fake forgot the connection: the
/// socket is then dropped without a close frame, like a network failure) or the socket fails.
async fn write_frames<S>(shared: Arc<Shared>, sink: &mut S, mut rx: mpsc::UnboundedReceiver<Outbound>)
where
    S: futures::Sink<Message> + Unpin,
{
    let mut hung = shared.hung.subscribe();
    while let Some(Outbound { text, not_before }) = rx.recv().await {
        tokio::time::sleep_until(not_before).await;
        if hung.wait_for(|h| !h).await.is_err() || sink.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
}
