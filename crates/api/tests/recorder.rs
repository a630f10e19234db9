//! The recorder on real NATS JetStream and real Redis: a call's events published on the bus end
//! up in the store exactly once, however the recorder, Redis or NATS restart in the middle.
//! The Redis and NATS that are restarted are started by the test on spare ports (with their
//! data in a temporary folder), never the shared ones.

#![allow(clippy::unwrap_used)] // A panic is how a test reports failure.

mod common;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use dragoman_api::recorder;
use dragoman_api::store::{CallState, CallStore, MAX_PAGE, RedisStore};
use dragoman_bus::{Bus, Event, NatsOptions, StreamLimits, Subjects};
use dragoman_runtime::Shutdown;
use dragoman_test_support::{nats_bus, unique_namespace, within};
use tokio::task::JoinHandle;

const RETENTION: Duration = Duration::from_secs(3600);

/// A recorder running in this process, as the API runs it.
struct Recorder {
    shutdown: Shutdown,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Recorder {
    fn start(bus: &Bus, store: &RedisStore) -> Self {
        let shutdown = Shutdown::new(Duration::from_secs(5));
        let task = tokio::spawn(recorder::run(bus.clone(), store.clone(), 8, shutdown.clone()));
        Self { shutdown, task }
    }

    /// Stops it as the API's shutdown does: events in flight are finished first.
    async fn stop(self) {
        self.shutdown.trigger();
        within(30, self.task).await.expect("recorder task").expect("recorder");
    }
}

async fn publish(bus: &Bus, events: &[Event]) {
    for event in events {
        // While NATS restarts a publish can fail; the producers retry, and so does this.
        within(60, async {
            while let Err(err) = bus.publish_event(event).await {
                eprintln!("publish failed, retrying: {err}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
    }
}

/// Waits until the store holds `count` events of the call (reads may fail while Redis is down).
async fn wait_for_events(store: &RedisStore, call_id: &str, count: u64) {
    within(90, async {
        loop {
            if let Ok(Some(record)) = store.get_call(call_id).await
                && record.last_seq >= count
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
}

/// Every event stored once, numbered 1..=n without gaps, every line once with its translation.
async fn assert_stored_exactly_once(store: &RedisStore, call_id: &str, events: &[Event], lines: usize) {
    let stored = store.events_after(call_id, 0, MAX_PAGE).await.expect("events");
    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=events.len() as u64).collect::<Vec<_>>());
    let stored_ids: Vec<_> = stored.iter().map(|e| event_id(&e.event)).collect();
    assert_eq!(stored_ids.iter().collect::<HashSet<_>>().len(), stored_ids.len(), "no event stored twice");
    assert_eq!(stored_ids.into_iter().collect::<HashSet<_>>(), events.iter().map(event_id).collect::<HashSet<_>>());

    let transcript = store.transcript(call_id).await.expect("transcript");
    assert_eq!(transcript.lines.len(), lines);
    for (n, line) in transcript.lines.iter().enumerate() {
        assert_eq!(line.sequence, n as u64);
        assert_eq!(line.translations["en"].text, format!("{} translated {n}", line.leg));
    }
    let record = store.get_call(call_id).await.expect("get").expect("record");
    assert_eq!(record.state, CallState::Ended);
    assert_eq!((record.transcripts, record.translations), (lines as u64, lines as u64));
}

async fn delete_streams(bus: &Bus) {
    let _ = bus.delete_stream(&bus.subjects().calls_stream()).await;
    let _ = bus.delete_stream(&bus.subjects().stt_stream()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_recorder_resumes_without_losing_or_repeating_a_line() {
    let bus = nats_bus().await;
    bus.ensure_standard_streams(StreamLimits::default()).await.expect("streams");
    let url = redis_url();
    let store = redis_store(&url, RETENTION);
    let events = whole_call("restart", 20);
    let half = events.len() / 2;

    let recorder = Recorder::start(&bus, &store);
    publish(&bus, &events[..half]).await;
    wait_for_events(&store, "restart", half as u64).await;
    recorder.stop().await;

    // The API stopped mid-call. Say the last recorder had stored the next event but died before
    // acking it: it comes again and must not be stored twice.
    store.apply(&events[half]).await.expect("apply");
    publish(&bus, &events[half..]).await;
    let recorder = Recorder::start(&bus, &store);
    wait_for_events(&store, "restart", events.len() as u64).await;
    // Give a wrongly repeated event time to show up before checking there is none.
    tokio::time::sleep(Duration::from_millis(500)).await;
    recorder.stop().await;

    assert_stored_exactly_once(&store, "restart", &events, 20).await;
    let stream = bus.subjects().calls_stream();
    let pending = bus.consumer_pending(&stream, dragoman_bus::subjects::RECORDER_DURABLE).await;
    assert_eq!(pending.expect("pending"), 0, "every event acked");
    delete_streams(&bus).await;
    redis_clean(&url, store.key_prefix()).await;
}

/// A server this test starts and kills, by its process id.
struct Server {
    program: &'static str,
    args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    fn start(program: &'static str, args: Vec<String>) -> Self {
        let mut server = Self { program, args, child: None };
        server.restart();
        server
    }

    fn restart(&mut self) {
        let child = Command::new(self.program)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.program));
        self.child = Some(child);
    }

    /// SIGKILL: a crash, not a clean shutdown.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spare_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port()
}

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dragoman-recorder-{}", unique_namespace()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_crash_mid_call_loses_and_repeats_nothing() {
    let bus = nats_bus().await;
    bus.ensure_standard_streams(StreamLimits::default()).await.expect("streams");
    let (port, dir) = (spare_port(), scratch_dir());
    // appendfsync always: what Redis confirmed survives a crash (the configuration the docs ask
    // for when nothing may be lost).
    let args = format!(
        "--port {port} --bind 127.0.0.1 --save '' --appendonly yes --appendfsync always --dir {}",
        dir.display()
    );
    let args: Vec<String> = args.split(' ').map(|a| a.trim_matches('\'').to_owned()).collect();
    let mut redis = Server::start("redis-server", args);
    let store = redis_store(&format!("redis://127.0.0.1:{port}"), RETENTION);
    within(30, async {
        while store.ping().await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let events = whole_call("redis-crash", 30);
    let (third, two_thirds) = (events.len() / 3, 2 * events.len() / 3);
    let recorder = Recorder::start(&bus, &store);
    publish(&bus, &events[..third]).await;
    wait_for_events(&store, "redis-crash", third as u64).await;

    redis.kill();
    publish(&bus, &events[third..two_thirds]).await;
    // The recorder keeps trying while Redis is gone; nothing is acked meanwhile.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(store.ping().await.is_err(), "redis is down");
    redis.restart();
    publish(&bus, &events[two_thirds..]).await;
    wait_for_events(&store, "redis-crash", events.len() as u64).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    recorder.stop().await;

    assert_stored_exactly_once(&store, "redis-crash", &events, 30).await;
    delete_streams(&bus).await;
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_crash_mid_call_loses_and_repeats_nothing() {
    let (port, dir) = (spare_port(), scratch_dir());
    let args = format!("-js -a 127.0.0.1 -p {port} -sd {}", dir.display());
    let mut nats = Server::start("nats-server", args.split(' ').map(str::to_owned).collect());
    let options = NatsOptions {
        url: format!("nats://127.0.0.1:{port}"),
        name: Some("dragoman-recorder-test".into()),
        connect_timeout: Duration::from_secs(5),
        subscription_capacity: 4096,
        ..Default::default()
    };
    let subjects = Subjects::new(&unique_namespace()).expect("namespace");
    let bus =
        within(30, Box::pin(Bus::connect_nats(&options, subjects))).await.expect("connect to the test's nats-server");
    within(30, async {
        while let Err(err) = bus.ensure_standard_streams(StreamLimits::default()).await {
            eprintln!("streams not ready yet: {err}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let url = redis_url();
    let store = redis_store(&url, RETENTION);

    let events = whole_call("nats-crash", 20);
    let half = events.len() / 2;
    let recorder = Recorder::start(&bus, &store);
    publish(&bus, &events[..half]).await;
    wait_for_events(&store, "nats-crash", half as u64).await;

    nats.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    nats.restart();
    publish(&bus, &events[half..]).await;
    wait_for_events(&store, "nats-crash", events.len() as u64).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    recorder.stop().await;

    assert_stored_exactly_once(&store, "nats-crash", &events, 20).await;
    redis_clean(&url, store.key_prefix()).await;
    drop(nats);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `serve`, as `dragoman api` runs it, records the calls stream in the Redis it is configured
/// with, and `/readyz` reports that Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_records_calls_in_the_configured_redis() {
    let bus = dragoman_test_support::memory_bus();
    bus.ensure_standard_streams(StreamLimits::default()).await.expect("streams");
    let url = redis_url();
    let mut config = dragoman_runtime::Config::default();
    config.api.redis_url = Some(dragoman_runtime::Secret::new(url.clone()));
    config.api.tokens = vec![dragoman_runtime::Secret::new("test-token")];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let shutdown = Shutdown::new(Duration::from_secs(5));
    let api = tokio::spawn(dragoman_api::serve(listener, std::sync::Arc::new(config), bus.clone(), shutdown.clone()));

    // The store the API opened: same Redis, the bus's namespace.
    let store = RedisStore::open(&url, bus.subjects().namespace(), RETENTION).expect("store");
    let events = whole_call("served", 4);
    publish(&bus, &events).await;
    wait_for_events(&store, "served", events.len() as u64).await;
    assert_stored_exactly_once(&store, "served", &events, 4).await;

    let readyz = within(30, async {
        loop {
            let answer = http_get(address, "/readyz").await;
            if answer.starts_with("HTTP/1.1 200") {
                return answer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(readyz.contains("redis"), "{readyz}");

    shutdown.trigger();
    within(30, api).await.expect("api task").expect("api");
    redis_clean(&url, store.key_prefix()).await;
}

/// A bare HTTP/1.1 GET (the API's tests need no HTTP client crate for one request).
async fn http_get(address: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(address).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    answer
}
