//! The REST routes over real HTTP: auth, every route's happy path, and each error as
//! problem+json. The API runs on port 0 over an in-process bus, with the memory store fed by
//! the recorder, and a fake gateway answering the control requests.

#![allow(clippy::unwrap_used)] // A panic is a test failure.

mod common;
mod harness;

use common::{ended, joined, started, whole_call};
use harness::{OTHER_TOKEN, TOKEN, assert_problem, fake_gateway, start};
use std::time::Duration;

use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_v1_route_needs_one_of_the_tokens_and_health_does_not() {
    let api = start(|_| {}).await;
    api.publish(&whole_call("auth", 1)).await;
    api.wait_stored("auth", 1).await;
    for path in ["/v1/calls", "/v1/calls/auth", "/v1/calls/auth/transcript", "/v1/live", "/v1/calls/auth/live"] {
        let missing = api.http.get(api.url(path)).send().await.unwrap();
        assert_eq!(missing.headers()["www-authenticate"], "Bearer realm=\"dragoman\"");
        assert_problem(missing, 401, "missing bearer token").await;
        let wrong = api.http.get(api.url(path)).bearer_auth("first-secret-tokeN").send().await.unwrap();
        assert_problem(wrong, 401, "not one of api.tokens").await;
    }
    let post = api.http.post(api.url("/v1/calls")).json(&json!({"endpoint": "PJSIP/1"})).send().await.unwrap();
    assert_problem(post, 401, "missing bearer token").await;
    let other = api.http.get(api.url("/v1/calls/auth")).bearer_auth(OTHER_TOKEN).send().await.unwrap();
    assert_eq!(other.status(), 200);
    // The query token is for browsers' WebSockets: taken on the live routes only.
    let query = api.http.get(api.url(&format!("/v1/live?access_token={TOKEN}"))).send().await.unwrap();
    assert_ne!(query.status(), 401, "accepted; then refused as no WebSocket upgrade");
    assert_eq!(query.headers()["content-type"], "application/problem+json");
    let query = api.http.get(api.url(&format!("/v1/calls?access_token={TOKEN}"))).send().await.unwrap();
    assert_problem(query, 401, "missing bearer token").await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let open = api.http.get(api.url(path)).send().await.unwrap();
        assert_eq!(open.status(), 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_listed_filtered_paged_and_read_one_by_one() {
    let api = start(|_| {}).await;
    let mut events = whole_call("old", 2);
    events.extend([started("new", 100), joined("new", "caller", "es", "en", 101)]);
    api.publish(&events).await;
    api.wait_stored("old", events.len() as u64 - 2).await;
    api.wait_stored("new", 2).await;

    let all: Value = api.get("/v1/calls").send().await.unwrap().json().await.unwrap();
    assert_eq!(all["total"], 2);
    assert_eq!(all["calls"][0]["call_id"], "new");
    assert_eq!(all["calls"][1]["call_id"], "old");
    let active: Value = api.get("/v1/calls?state=active").send().await.unwrap().json().await.unwrap();
    assert_eq!(active["total"], 1);
    assert_eq!(active["calls"][0]["call_id"], "new");
    let ended: Value = api.get("/v1/calls?state=ended").send().await.unwrap().json().await.unwrap();
    assert_eq!(ended["calls"][0]["call_id"], "old");
    let page: Value = api.get("/v1/calls?offset=1&limit=1").send().await.unwrap().json().await.unwrap();
    assert_eq!((page["total"].as_u64(), page["calls"][0]["call_id"].as_str()), (Some(2), Some("old")));
    let from = common::at(50).to_rfc3339().replace('+', "%2B");
    let recent: Value = api.get(&format!("/v1/calls?from={from}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(recent["total"], 1);
    assert_eq!(recent["calls"][0]["call_id"], "new");

    let one: Value = api.get("/v1/calls/old").send().await.unwrap().json().await.unwrap();
    assert_eq!(one["state"], "ended");
    assert_eq!(one["legs"]["caller"]["language"], "es");
    assert_eq!(one["legs"]["callee"]["targets"], json!(["es"]));
    assert!(one["started_at"].is_string() && one["ended_at"].is_string());

    assert_problem(api.get("/v1/calls/nobody").send().await.unwrap(), 404, "no call \"nobody\"").await;
    assert_problem(api.get("/v1/calls?state=ringing").send().await.unwrap(), 400, "state").await;
    assert_problem(api.get("/v1/nothing-here").send().await.unwrap(), 404, "no such route").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn originate_validates_then_asks_the_gateway() {
    let api = start(|_| {}).await;
    let asked = fake_gateway(&api.bus).await;
    let body = json!({
        "endpoint": "PJSIP/1000",
        "caller_id": "Desk <200>",
        "callee": {"language": "pt_BR", "targets": ["EN"]},
        "caller": {"language": "en", "targets": ["pt"]}
    });
    let placed = api.http.post(api.url("/v1/calls")).bearer_auth(TOKEN).json(&body).send().await.unwrap();
    assert_eq!(placed.status(), 201);
    assert_eq!(placed.headers()["location"], "/v1/calls/placed-1");
    let placed: Value = placed.json().await.unwrap();
    assert_eq!(placed, json!({"call_id": "placed-1", "channel_id": "PJSIP/1000-01"}));
    let sent = asked.lock().unwrap().originate.clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].callee.language.as_deref(), Some("pt"));
    assert_eq!(sent[0].callee.targets, ["en"]);

    let post = |body: &str| {
        api.http
            .post(api.url("/v1/calls"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
    };
    assert_problem(post("{\"endpoint\": ").await.unwrap(), 400, "").await;
    assert_problem(post("{\"endpont\": \"PJSIP/1\"}").await.unwrap(), 400, "endpont").await;
    let unsupported = post(r#"{"endpoint": "PJSIP/1", "callee": {"language": "tlh"}}"#).await.unwrap();
    assert_problem(unsupported, 422, "supported: ").await;
    let bad_target = post(r#"{"endpoint": "PJSIP/1", "callee": {"targets": ["en", "xx"]}}"#).await.unwrap();
    let problem = assert_problem(bad_target, 422, "\"xx\"").await;
    assert!(problem["detail"].as_str().unwrap().contains("en, "), "names the supported codes: {problem}");
    assert_eq!(asked.lock().unwrap().originate.len(), 1, "nothing invalid reached the gateway");
    assert_problem(post(r#"{"endpoint": "PJSIP/busy"}"#).await.unwrap(), 502, "endpoint busy").await;
    let big = format!(r#"{{"endpoint": "{}"}}"#, "x".repeat(100_000));
    assert_eq!(post(&big).await.unwrap().status(), 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_without_a_gateway_are_503() {
    let api = start(|_| {}).await;
    api.publish(&[started("lonely", 0)]).await;
    api.wait_stored("lonely", 1).await;
    let answer = api
        .http
        .post(api.url("/v1/calls"))
        .bearer_auth(TOKEN)
        .json(&json!({"endpoint": "PJSIP/1"}))
        .send()
        .await
        .unwrap();
    assert_problem(answer, 503, "call control is unavailable").await;
    let answer = api.http.post(api.url("/v1/calls/lonely/hangup")).bearer_auth(TOKEN).send().await.unwrap();
    assert_problem(answer, 503, "call control is unavailable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_and_language_changes_reach_the_gateway_only_for_live_calls() {
    let api = start(|_| {}).await;
    let asked = fake_gateway(&api.bus).await;
    api.publish(&[started("live", 0), joined("live", "caller", "es", "en", 1)]).await;
    api.publish(&whole_call("done", 1)).await;
    api.wait_stored("live", 2).await;
    api.wait_stored("done", 6).await;

    let put = |call: &str, leg: &str, body: Value| {
        api.http.put(api.url(&format!("/v1/calls/{call}/legs/{leg}/language"))).bearer_auth(TOKEN).json(&body).send()
    };
    let changed = put("live", "caller", json!({"language": "fr", "targets": ["de", "en-GB"]})).await.unwrap();
    assert_eq!(changed.status(), 202);
    let sent = asked.lock().unwrap().set_language.clone();
    assert_eq!((sent[0].language.as_str(), sent[0].targets.clone()), ("fr", vec!["de".into(), "en".into()]));
    assert_problem(put("live", "caller", json!({"language": "klingon"})).await.unwrap(), 422, "supported").await;
    assert_problem(put("live", "nobody", json!({"language": "fr"})).await.unwrap(), 404, "no leg").await;
    assert_problem(put("ghost", "caller", json!({"language": "fr"})).await.unwrap(), 404, "no call").await;
    assert_problem(put("done", "caller", json!({"language": "fr"})).await.unwrap(), 409, "already ended").await;

    let hangup = |call: &str| api.http.post(api.url(&format!("/v1/calls/{call}/hangup"))).bearer_auth(TOKEN).send();
    assert_eq!(hangup("live").await.unwrap().status(), 202);
    assert_eq!(asked.lock().unwrap().hangup[0].call_id, "live");
    assert_problem(hangup("done").await.unwrap(), 409, "already ended").await;
    assert_problem(hangup("ghost").await.unwrap(), 404, "no call").await;
    api.publish(&[ended("live", 5)]).await;
    api.wait_stored("live", 3).await;
    assert_problem(hangup("live").await.unwrap(), 409, "already ended").await;
    assert_eq!(asked.lock().unwrap().hangup.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transcript_comes_as_json_srt_webvtt_and_text() {
    let api = start(|_| {}).await;
    api.publish(&whole_call("said", 2)).await;
    api.wait_stored("said", 8).await;

    let json: Value = api.get("/v1/calls/said/transcript").send().await.unwrap().json().await.unwrap();
    assert_eq!(json["lines"][0]["text"], "caller line 0");
    assert_eq!(json["lines"][0]["translations"]["en"]["text"], "caller translated 0");
    assert_eq!(json["lines"][1]["leg"], "callee");

    let srt = api.get("/v1/calls/said/transcript?format=srt").send().await.unwrap();
    assert!(srt.headers()["content-type"].to_str().unwrap().starts_with("application/x-subrip"));
    let srt = srt.text().await.unwrap();
    assert!(
        srt.starts_with(
            "1\n00:00:00,000 --> 00:00:00,800\ncaller: caller line 0\n[en] caller translated 0\n\n\
             2\n00:00:01,000 --> 00:00:01,800\ncallee: callee line 1\n"
        ),
        "{srt}"
    );

    let vtt = api.get("/v1/calls/said/transcript?format=vtt").send().await.unwrap();
    assert!(vtt.headers()["content-type"].to_str().unwrap().starts_with("text/vtt"));
    let vtt = vtt.text().await.unwrap();
    assert!(vtt.starts_with("WEBVTT\n\n"), "{vtt}");
    assert!(
        vtt.contains("\n00:00:01.000 --> 00:00:01.800\ncallee: callee line 1\n[en] callee translated 1\n"),
        "{vtt}"
    );

    let text = api.get("/v1/calls/said/transcript?format=txt&language=en").send().await.unwrap().text().await.unwrap();
    assert_eq!(
        text,
        "[00:00:00] caller: caller line 0\n    [en] caller translated 0\n\
         [00:00:01] callee: callee line 1\n    [en] callee translated 1\n"
    );
    let only_de = api.get("/v1/calls/said/transcript?format=txt&language=de").send().await.unwrap();
    assert!(!only_de.text().await.unwrap().contains("[en]"));

    assert_problem(api.get("/v1/calls/said/transcript?format=doc").send().await.unwrap(), 400, "srt").await;
    assert_problem(api.get("/v1/calls/said/transcript?language=xx").send().await.unwrap(), 422, "supported").await;
    assert_problem(api.get("/v1/calls/ghost/transcript").send().await.unwrap(), 404, "no call").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route_and_its_errors() {
    let api = start(|_| {}).await;
    let document: Value = api.http.get(api.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let served = [
        ("post", "/v1/calls"),
        ("get", "/v1/calls"),
        ("get", "/v1/calls/{call_id}"),
        ("post", "/v1/calls/{call_id}/hangup"),
        ("put", "/v1/calls/{call_id}/legs/{leg}/language"),
        ("get", "/v1/calls/{call_id}/transcript"),
        ("get", "/v1/calls/{call_id}/live"),
        ("get", "/v1/live"),
        ("get", "/v1/languages"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ];
    let paths = document["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|item| item.as_object().unwrap().len()).sum();
    assert_eq!(documented, served.len());
    for (method, path) in served {
        let operation = &document["paths"][path][method];
        assert!(operation.is_object(), "{method} {path} undocumented");
        if path.starts_with("/v1") {
            assert!(operation["responses"]["401"].is_object(), "{method} {path}");
            assert!(operation["responses"]["503"].is_object(), "{method} {path}");
        }
        // Every documented route is served: with a token, nothing answers "no such route".
        let concrete = path.replace("{call_id}", "ghost").replace("{leg}", "caller");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let answer = api.http.request(method, api.url(&concrete)).bearer_auth(TOKEN).send().await.unwrap();
        let status = answer.status().as_u16();
        let body = answer.text().await.unwrap();
        assert!(!body.contains("no such route") && status != 405, "{path}: {status} {body}");
    }
    for (path, method, status) in [
        ("/v1/calls", "post", "422"),
        ("/v1/calls/{call_id}/hangup", "post", "409"),
        ("/v1/calls/{call_id}", "get", "404"),
        ("/v1/calls", "post", "400"),
    ] {
        assert!(document["paths"][path][method]["responses"][status].is_object(), "{method} {path} {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_is_503() {
    // Nothing listens on port 1.
    let api = start(|config| config.api.redis_url = Some(dragoman_runtime::Secret::new("redis://127.0.0.1:1"))).await;
    let answer = dragoman_test_support::within(30, api.get("/v1/calls").send()).await.unwrap();
    assert_problem(answer, 503, "store is unavailable").await;
    let answer = dragoman_test_support::within(30, api.get("/v1/calls/any").send()).await.unwrap();
    assert_problem(answer, 503, "store is unavailable").await;
    let ready = api.http.get(api.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_serves_the_same_routes() {
    let url = common::redis_url();
    let api = start(|config| config.api.redis_url = Some(dragoman_runtime::Secret::new(url.clone()))).await;
    api.publish(&whole_call("in-redis", 1)).await;
    api.wait_stored("in-redis", 6).await;
    let list: Value = api.get("/v1/calls").send().await.unwrap().json().await.unwrap();
    assert_eq!(list["calls"][0]["call_id"], "in-redis");
    let srt = api.get("/v1/calls/in-redis/transcript?format=srt").send().await.unwrap().text().await.unwrap();
    assert!(srt.contains("00:00:00,000 --> 00:00:00,800"), "{srt}");
    let store =
        dragoman_api::store::RedisStore::open(&url, api.bus.subjects().namespace(), Duration::from_secs(60)).unwrap();
    common::redis_clean(&url, store.key_prefix()).await;
}

#[test]
fn start_up_refuses_no_token_and_bad_origins() {
    let mut config = dragoman_runtime::Config::default();
    let err = dragoman_api::check_config(&config).unwrap_err().to_string();
    assert!(err.contains("no API token configured") && err.contains("DRAGOMAN_API__TOKENS"), "{err}");
    config.api.tokens = vec![dragoman_runtime::Secret::new("")];
    assert!(dragoman_api::check_config(&config).is_err());
    config.api.tokens = vec![dragoman_runtime::Secret::new("t")];
    config.api.cors_origins = vec!["https://ok.example".into(), "bad\norigin".into()];
    assert!(dragoman_api::check_config(&config).unwrap_err().to_string().contains("cors_origins"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_the_configured_origins_only() {
    let api = start(|config| config.api.cors_origins = vec!["https://console.example".into()]).await;
    let preflight = |origin: &str| {
        api.http
            .request(reqwest::Method::OPTIONS, api.url("/v1/calls"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let allowed = preflight("https://console.example").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://console.example");
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let simple = api.get("/v1/calls").header("origin", "https://console.example").send().await.unwrap();
    assert_eq!(simple.headers()["access-control-allow-origin"], "https://console.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_timeout_is_503() {
    let api = start(|config| {
        config.api.request_timeout_ms = 200;
        config.bus.request_timeout_ms = 5_000;
    })
    .await;
    api.publish(&[started("slow", 0)]).await;
    api.wait_stored("slow", 1).await;
    // A gateway that takes the request and never answers.
    let _silent = api.bus.subscribe(&api.bus.subjects().control_hangup()).await.unwrap();
    let started = std::time::Instant::now();
    let answer = api.http.post(api.url("/v1/calls/slow/hangup")).bearer_auth(TOKEN).send().await.unwrap();
    assert_problem(answer, 503, "api.request_timeout_ms").await;
    assert!(started.elapsed() < Duration::from_secs(2));
}
