//! REST behaviour on loopback: error mapping, timeouts, auth, parallel requests.

#![allow(clippy::unwrap_used)] // A panic is a test failure.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use dragoman_ari::{AriClient, AriConfig, AriError};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Barrier;
use tokio::time::timeout;

async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn client(addr: std::net::SocketAddr) -> AriClient {
    AriClient::new(AriConfig::new(format!("http://{addr}"), "dragoman", "secret")).unwrap()
}

fn ping_json() -> serde_json::Value {
    json!({"asterisk_id": "00:11:22:33:44:55", "ping": "pong", "timestamp": "2026-11-25T10:00:00.000+0000"})
}

#[tokio::test]
async fn error_status_carries_aris_message() {
    let app = axum::Router::new()
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"message": "Channel not found"}))) });
    let ari = client(serve(app).await);
    let err = ari.hangup("1764065472.7", None).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(err.message(), Some("Channel not found"));
    assert!(err.is_not_found());
    match &err {
        AriError::Status { method, path, .. } => {
            assert_eq!(method, "DELETE");
            assert_eq!(path, "/ari/channels/1764065472.7");
        }
        other => panic!("expected Status, got {other:?}"),
    }
    // A typed call fails the same way rather than trying to decode the error body.
    let err = ari.get_channel("gone").await.unwrap_err();
    assert_eq!((err.status(), err.message()), (Some(404), Some("Channel not found")));
}

#[tokio::test]
async fn a_hung_server_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Accepts connections and never answers.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let ari =
        AriClient::new(AriConfig::new(format!("http://{addr}"), "u", "p").request_timeout(Duration::from_millis(200)))
            .unwrap();
    let err = timeout(Duration::from_secs(10), ari.ping()).await.expect("client gives up by itself").unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert!(matches!(err, AriError::Timeout { timeout, .. } if timeout == Duration::from_millis(200)));
}

#[tokio::test]
async fn refused_connection_is_a_transport_error_without_credentials() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let ari = AriClient::new(AriConfig::new(format!("http://{addr}"), "dragoman", "hunter2").api_key_auth()).unwrap();
    let err = ari.ping().await.unwrap_err();
    assert!(matches!(err, AriError::Transport { .. }), "{err}");
    assert_eq!(err.status(), None);
    let shown = format!("{err} {err:?}");
    // The cause is spelled out, the api_key query is not.
    assert!(shown.to_lowercase().contains("refused"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[tokio::test]
async fn an_answer_off_spec_is_a_decode_error() {
    let app = axum::Router::new().fallback(|| async { Json(json!({"id": 5})) });
    let err = client(serve(app).await).get_channel("c1").await.unwrap_err();
    assert!(matches!(err, AriError::Decode { .. }), "{err}");
}

#[tokio::test]
async fn basic_auth_by_default_api_key_on_request() {
    // (Authorization header, query) of each request.
    type Seen = Vec<(Option<String>, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, uri: Uri| {
        let record = record.clone();
        async move {
            let authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
            record.lock().unwrap().push((authorization, uri.query().map(str::to_owned)));
            Json(ping_json()).into_response()
        }
    });
    let addr = serve(app).await;
    client(addr).ping().await.unwrap();
    let keyed = AriClient::new(AriConfig::new(format!("http://{addr}"), "dragoman", "se cret").api_key_auth()).unwrap();
    keyed.ping().await.unwrap();

    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        [
            (Some("Basic ZHJhZ29tYW46c2VjcmV0".to_owned()), None),
            (None, Some("api_key=dragoman%3Ase%20cret".to_owned())),
        ]
    );
}

#[tokio::test]
async fn concurrent_requests_run_in_parallel() {
    // The server answers only once all requests are in: a client that serialised requests
    // (one connection, one lock) would never get there.
    const PARALLEL: usize = 16;
    let barrier = Arc::new(Barrier::new(PARALLEL));
    let app = axum::Router::new().fallback(move || {
        let barrier = barrier.clone();
        async move {
            barrier.wait().await;
            Json(ping_json())
        }
    });
    let ari = client(serve(app).await);
    let calls = (0..PARALLEL).map(|_| {
        let ari = ari.clone();
        tokio::spawn(async move { ari.ping().await })
    });
    let results = timeout(Duration::from_secs(10), futures::future::join_all(calls))
        .await
        .expect("all requests answered together");
    for result in results {
        assert_eq!(result.unwrap().unwrap().ping, "pong");
    }
}
