//! `dragoman bench api`: the operator API under load, as a separate process on loopback.
//!
//! The bench starts `dragoman api` (this binary) as a child process on a free loopback port,
//! with a fresh bus namespace on the NATS of `bus.url` and the store `api.redis_url` names (in
//! memory when unset), so the API runs exactly as in production: the recorder takes events off
//! JetStream, the store holds them, the live sessions fan them out. The load comes from this
//! process.
//!
//! - **Transcript reads**: one call of [`TRANSCRIPT_LINES`] final transcripts, each with its
//!   translation, then [`HTTP_CONNECTIONS`] keep-alive connections each sending
//!   `GET /v1/calls/{id}/transcript` as fast as answers come, for `--seconds`: requests per
//!   second and p50/p99 per request.
//! - **Live subscribers**: `--subscribers` WebSocket clients on one call's live route, then
//!   final transcripts published on the bus at [`WS_EVENTS_PER_SEC`] for `--seconds`, each
//!   carrying the time it was published. Delivery delay = when a client read the frame −
//!   when the event was published (publish → JetStream → recorder → store → every socket): p50
//!   and p99 over every frame every client received, and whether every client got every event
//!   exactly once, in order. Memory per subscriber is the API process's resident memory after
//!   the clients connected minus before, over the number of clients.
//!
//! Both the API and the load generator share this machine's cores, so the figures are a floor
//! for a dedicated API host.

use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use chrono::Utc;
use dragoman_bus::events::{
    CallDirection, CallStarted, EventMeta, LegJoined, Party, Stage, TranscriptProduced, TranslationProduced,
};
use dragoman_bus::{Bus, Event};
use dragoman_runtime::Config;
use dragoman_runtime::service::connect_nats;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::percentiles;
use super::stt::round;

/// Final transcripts (each with one translation) in the call whose transcript is read.
const TRANSCRIPT_LINES: u64 = 40;
/// Keep-alive connections reading the transcript at once.
const HTTP_CONNECTIONS: usize = 32;
/// Events published per second to the live subscribers.
const WS_EVENTS_PER_SEC: u64 = 50;
/// Marks the publish time inside a transcript's text: `sent=<unix µs>`.
const SENT_MARK: &str = "sent=";

/// What the bench may be told.
#[derive(Debug, Clone)]
pub struct Options {
    /// Live WebSocket clients.
    pub subscribers: usize,
}

pub async fn run(config: &Config, seconds: u64, options: &Options) -> anyhow::Result<Value> {
    let seconds = seconds.max(1);
    let namespace = format!("bench-api-{}", Uuid::new_v4().simple());
    let mut bus_config = config.clone();
    bus_config.bus.namespace = namespace.clone();
    let bus = connect_nats(&bus_config, "bench-api")
        .await
        .context("bench api needs NATS with JetStream at bus.url (the API runs as in production)")?;
    let token = Uuid::new_v4().simple().to_string();
    let api = ApiProcess::start(&namespace, &token, options.subscribers).await?;
    let store = if config.api.redis_url.is_some() { "redis" } else { "memory" };
    eprintln!("api: pid {} on {} (store: {store}, namespace {namespace})", api.pid, api.base);

    let reads = transcript_reads(&bus, &api, Duration::from_secs(seconds)).await?;
    let live = live_subscribers(&bus, &api, options.subscribers, Duration::from_secs(seconds)).await?;
    let peak_rss = api.memory()?.peak_rss_bytes;
    drop(api);

    eprintln!(
        "transcript: {:.0} requests/s over {HTTP_CONNECTIONS} connections, p50 {:.2} ms, p99 {:.2} ms ({} lines)",
        reads.rps,
        reads.p50_ms,
        reads.p99_ms,
        TRANSCRIPT_LINES * 2
    );
    eprintln!(
        "live: {} subscribers × {} events at {WS_EVENTS_PER_SEC}/s: delay p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         {} of {} frames, {} clients complete and in order; {:.1} KiB per subscriber; api peak rss {:.1} MiB",
        live.subscribers,
        live.events,
        live.p50_ms,
        live.p99_ms,
        live.max_ms,
        live.frames,
        live.subscribers as u64 * live.events,
        live.complete_clients,
        live.bytes_per_subscriber as f64 / 1024.0,
        peak_rss as f64 / (1024.0 * 1024.0),
    );
    Ok(json!({
        "stage": "api",
        "store": store,
        "seconds": seconds,
        "transcript_rps": round(reads.rps, 1),
        "transcript_p50_ms": reads.p50_ms,
        "transcript_p99_ms": reads.p99_ms,
        "transcript_requests": reads.requests,
        "transcript_errors": reads.errors,
        "transcript_connections": HTTP_CONNECTIONS,
        "ws_subscribers": live.subscribers,
        "ws_events_per_sec": WS_EVENTS_PER_SEC,
        "ws_events": live.events,
        "ws_frames_received": live.frames,
        "ws_complete_clients": live.complete_clients,
        "ws_p50_ms": live.p50_ms,
        "ws_p99_ms": live.p99_ms,
        "ws_max_ms": live.max_ms,
        "ws_bytes_per_subscriber": live.bytes_per_subscriber,
        "api_peak_rss_bytes": peak_rss,
    }))
}

/// `dragoman api` as a child process; killed when dropped.
struct ApiProcess {
    child: Child,
    pid: u32,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl ApiProcess {
    async fn start(namespace: &str, token: &str, subscribers: usize) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let exe = std::env::current_exe().context("find the dragoman binary")?;
        let child = Command::new(exe)
            .arg("api")
            .env("DRAGOMAN_API__LISTEN", format!("127.0.0.1:{port}"))
            .env("DRAGOMAN_API__TOKENS", token)
            .env("DRAGOMAN_API__MAX_LIVE_CONNECTIONS", (subscribers + 16).to_string())
            .env("DRAGOMAN_BUS__NAMESPACE", namespace)
            .env("DRAGOMAN_TELEMETRY__METRICS_LISTEN", "")
            .env("DRAGOMAN_TELEMETRY__LOG_FILTER", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("start dragoman api")?;
        let pid = child.id().context("the api process has no pid")?;
        let http = reqwest::Client::builder().pool_max_idle_per_host(HTTP_CONNECTIONS * 2).build()?;
        let mut api = Self { child, pid, base: format!("127.0.0.1:{port}"), token: token.to_owned(), http };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = api.child.try_wait()? {
                bail!("dragoman api exited during start-up: {status}");
            }
            let ready = api.http.get(format!("http://{}/readyz", api.base)).send().await;
            if ready.is_ok_and(|answer| answer.status().is_success()) {
                return Ok(api);
            }
            if Instant::now() > deadline {
                bail!("dragoman api was not ready within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("http://{}{path}", self.base)).bearer_auth(&self.token)
    }

    fn memory(&self) -> anyhow::Result<super::ingest::Memory> {
        super::ingest::memory_of(&format!("/proc/{}/status", self.pid))
    }
}

struct Reads {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: usize,
    errors: usize,
}

async fn transcript_reads(bus: &Bus, api: &ApiProcess, duration: Duration) -> anyhow::Result<Reads> {
    let call_id = format!("read-{}", Uuid::new_v4().simple());
    let mut events = vec![started(&call_id), joined(&call_id, "caller", "es", "en"), joined(&call_id, "callee", "en", "es")];
    for n in 0..TRANSCRIPT_LINES {
        let (leg, language, target) = if n % 2 == 0 { ("caller", "es", "en") } else { ("callee", "en", "es") };
        let text = format!("line {n}: could you read me the reference number on the invoice once more please");
        events.push(Event::TranscriptProduced(transcript(&call_id, leg, n, language, target, &text)));
        events.push(Event::TranslationProduced(translation(&call_id, leg, n, language, target, &text)));
    }
    for event in &events {
        bus.publish_event(event).await?;
    }
    let path = format!("/v1/calls/{call_id}/transcript");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = api.get(&path).send().await?;
        if answer.status().is_success() {
            let body: Value = answer.json().await?;
            let lines = body["lines"].as_array().map_or(0, Vec::len);
            if lines as u64 == TRANSCRIPT_LINES {
                break;
            }
        }
        if Instant::now() > deadline {
            bail!("the api did not store the bench call's {TRANSCRIPT_LINES} lines within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Warm the connections, then measure.
    let run = |until: Instant| {
        let request = api.get(&path);
        async move {
            let mut samples = Vec::new();
            let mut errors = 0;
            while Instant::now() < until {
                let Some(request) = request.try_clone() else { break };
                let sent = Instant::now();
                match request.send().await {
                    Ok(answer) if answer.status().is_success() => match answer.bytes().await {
                        Ok(_) => samples.push(sent.elapsed()),
                        Err(_) => errors += 1,
                    },
                    _ => errors += 1,
                }
            }
            (samples, errors)
        }
    };
    let warm_until = Instant::now() + Duration::from_millis(500);
    futures::future::join_all((0..HTTP_CONNECTIONS).map(|_| run(warm_until))).await;
    let started = Instant::now();
    let until = started + duration;
    let results = futures::future::join_all((0..HTTP_CONNECTIONS).map(|_| tokio::spawn(run(until)))).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut samples = Vec::new();
    let mut errors = 0;
    for result in results {
        let (mut part, part_errors) = result.context("a load task panicked")?;
        samples.append(&mut part);
        errors += part_errors;
    }
    let requests = samples.len();
    let (p50_ms, _, p99_ms) = percentiles(&mut samples);
    Ok(Reads { rps: requests as f64 / elapsed, p50_ms, p99_ms, requests, errors })
}

struct Live {
    subscribers: usize,
    events: u64,
    frames: u64,
    complete_clients: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    bytes_per_subscriber: u64,
}

/// What one live client saw: each frame's delivery delay, and whether it got every sequence
/// number once, in order.
struct Seen {
    delays: Vec<Duration>,
    in_order: bool,
    frames: u64,
}

async fn live_subscribers(bus: &Bus, api: &ApiProcess, clients: usize, duration: Duration) -> anyhow::Result<Live> {
    let call_id = format!("live-{}", Uuid::new_v4().simple());
    bus.publish_event(&started(&call_id)).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !api.get(&format!("/v1/calls/{call_id}")).send().await?.status().is_success() {
        if Instant::now() > deadline {
            bail!("the api did not store the live call within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = WS_EVENTS_PER_SEC * duration.as_secs();

    let before = api.memory()?.rss_bytes;
    let url = format!("ws://{}/v1/calls/{call_id}/live?after=1&partials=false&access_token={}", api.base, api.token);
    let mut sockets = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str()).await.context("connect a live client")?;
        sockets.push(socket);
    }
    // Let the sessions settle before reading the process's memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = api.memory()?.rss_bytes;
    let bytes_per_subscriber = after.saturating_sub(before) / clients.max(1) as u64;

    let readers: Vec<_> = sockets
        .into_iter()
        .map(|mut socket| {
            tokio::spawn(async move {
                let mut seen = Seen { delays: Vec::with_capacity(events as usize), in_order: true, frames: 0 };
                let mut expected = 2; // seq 1 is CallStarted, which `after=1` skips
                let read_until = Instant::now() + duration + Duration::from_secs(30);
                while seen.frames < events {
                    let Ok(Some(Ok(message))) = tokio::time::timeout_at(read_until.into(), socket.next()).await else {
                        break;
                    };
                    let Message::Text(text) = message else { continue };
                    let received = unix_micros();
                    seen.frames += 1;
                    if let Some(sent) = sent_micros(&text) {
                        seen.delays.push(Duration::from_micros(received.saturating_sub(sent)));
                    }
                    let seq = sequence(&text);
                    seen.in_order &= seq == Some(expected);
                    expected += 1;
                }
                seen
            })
        })
        .collect();

    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / WS_EVENTS_PER_SEC));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for n in 0..events {
        tick.tick().await;
        let text = format!("{SENT_MARK}{} utterance {n}", unix_micros());
        bus.publish_event(&Event::TranscriptProduced(transcript(&call_id, "caller", n, "en", "es", &text))).await?;
    }

    let mut delays = Vec::with_capacity(clients * events as usize);
    let mut frames = 0;
    let mut complete_clients = 0;
    for reader in readers {
        let mut seen = reader.await.context("a live client panicked")?;
        frames += seen.frames;
        if seen.in_order && seen.frames == events {
            complete_clients += 1;
        }
        delays.append(&mut seen.delays);
    }
    let max_ms = delays.iter().max().map_or(0.0, |max| max.as_secs_f64() * 1e3);
    let (p50_ms, _, p99_ms) = percentiles(&mut delays);
    Ok(Live {
        subscribers: clients,
        events,
        frames,
        complete_clients,
        p50_ms,
        p99_ms,
        max_ms: round(max_ms, 3),
        bytes_per_subscriber,
    })
}

fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |since| since.as_micros() as u64)
}

/// The publish time a frame's transcript text carries.
fn sent_micros(frame: &str) -> Option<u64> {
    let start = frame.find(SENT_MARK)? + SENT_MARK.len();
    let digits = frame[start..].split(|c: char| !c.is_ascii_digit()).next()?;
    digits.parse().ok()
}

/// A live frame's sequence number, without parsing the whole frame.
fn sequence(frame: &str) -> Option<u64> {
    let start = frame.find("\"seq\":")? + "\"seq\":".len();
    frame[start..].split(|c: char| !c.is_ascii_digit()).find(|part| !part.is_empty())?.parse().ok()
}

fn meta(call_id: &str) -> EventMeta {
    EventMeta { event_id: Uuid::now_v7(), call_id: call_id.to_owned(), occurred_at: Utc::now() }
}

fn started(call_id: &str) -> Event {
    Event::CallStarted(CallStarted {
        meta: meta(call_id),
        direction: CallDirection::Inbound,
        caller: Party { name: "Bench".into(), number: "+34600000000".into() },
        callee: Party { name: "Desk".into(), number: "200".into() },
        application: "dragoman".into(),
    })
}

fn joined(call_id: &str, leg: &str, language: &str, target: &str) -> Event {
    Event::LegJoined(LegJoined {
        meta: meta(call_id),
        leg: leg.into(),
        channel_id: format!("PJSIP/{leg}-0001"),
        party: Party::default(),
        language: Some(language.into()),
        targets: vec![target.into()],
    })
}

fn utterance(call_id: &str, leg: &str, n: u64) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{call_id}/{leg}/{n}").as_bytes())
}

fn transcript(call_id: &str, leg: &str, n: u64, language: &str, target: &str, text: &str) -> TranscriptProduced {
    TranscriptProduced {
        meta: meta(call_id),
        leg: leg.into(),
        utterance_id: utterance(call_id, leg, n),
        sequence: n,
        stage: Stage::Final,
        text: text.into(),
        language: language.into(),
        confidence: 0.9,
        start_ms: 2_000 * n,
        end_ms: 2_000 * n + 1_800,
        words: Vec::new(),
        targets: vec![target.into()],
        engine: "bench".into(),
        model: String::new(),
    }
}

fn translation(call_id: &str, leg: &str, n: u64, language: &str, target: &str, text: &str) -> TranslationProduced {
    TranslationProduced {
        meta: meta(call_id),
        leg: leg.into(),
        utterance_id: utterance(call_id, leg, n),
        sequence: n,
        stage: Stage::Final,
        source_language: language.into(),
        source_text: text.into(),
        target_language: target.into(),
        text: format!("({target}) {text}"),
        start_ms: 2_000 * n,
        end_ms: 2_000 * n + 1_800,
        engine: "bench".into(),
        model: String::new(),
        elapsed_ms: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_publish_time_and_sequence_out_of_a_frame() {
        let frame = r#"{"kind":"event","call_id":"c","seq":17,"event":{"text":"sent=1764000000123456 utterance 3"}}"#;
        assert_eq!(sent_micros(frame), Some(1_764_000_000_123_456));
        assert_eq!(sequence(frame), Some(17));
        assert_eq!(sent_micros(r#"{"seq":1}"#), None);
        assert_eq!(sequence(r#"{"kind":"partial"}"#), None);
    }
}
