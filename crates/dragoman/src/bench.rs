//! `dragoman bench <stage>`: one entry point for every benchmark. Each stage prints a human
//! summary and, with `--json`, one JSON object of results as its last line, so runs can be
//! compared over time.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dragoman_bus::{Bus, ConsumerSpec, Headers};
use dragoman_runtime::Config;
use dragoman_runtime::service::{connect_nats, in_process_bus};
use futures::StreamExt;
use serde_json::{Value, json};

#[path = "bench_api.rs"]
pub mod api;
#[path = "bench_gateway.rs"]
pub mod gateway;
#[path = "bench_ingest.rs"]
mod ingest;
#[path = "bench_mt.rs"]
pub mod mt;
#[path = "bench_stt.rs"]
pub mod stt;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Stage {
    /// The bus itself: publish/subscribe throughput, request/reply and durable round trips,
    /// for the in-process bus and for NATS (when reachable).
    Bus,
    /// Media ingest on one core: RTP packets per second without VAD, legs per core with VAD,
    /// and memory per leg, on real speech with reordering, duplicates and loss.
    Ingest,
    /// Speech to text: our CTranslate2 and whisper.cpp engines and faster-whisper side by side:
    /// latency for 1, 3 and 8 s utterances, real-time factor and WER over the Asterisk English
    /// prompts, memory per model.
    Stt,
    /// Translation: sentences per second and p50/p95 per sentence for each engine here
    /// (Apertium, CTranslate2 models), the gain of batching and of batching across calls, chrF
    /// against the Spanish prompts, and the cache hit rate of a simulated IVR call.
    Mt,
    /// The operator API as its own process on loopback, fed over NATS: transcript reads per
    /// second with p50/p99, and live WebSocket subscribers' delivery delay (p50/p99) for a
    /// 50 events/s stream, with memory per subscriber.
    Api,
    /// The ARI gateway against the fake Asterisk: two-party call setups per second and setup
    /// time (StasisStart → both legs' RTP flowing), on one core, and what is left behind.
    Gateway,
}

pub async fn run(
    stage: Stage,
    config: &Config,
    json: bool,
    seconds: u64,
    stt_options: stt::Options,
    mt_options: mt::Options,
    api_options: api::Options,
    gateway_options: gateway::Options,
) -> ExitCode {
    let result = match stage {
        Stage::Stt => {
            // Inference is CPU-bound and blocking; the engines use `stt.threads` threads each.
            let config = config.clone();
            tokio::task::spawn_blocking(move || stt::run(&config, &stt_options))
                .await
                .unwrap_or_else(|err| Err(anyhow::anyhow!("stt benchmark panicked: {err}")))
        }
        // The engines run on blocking threads inside; the batcher needs the runtime.
        Stage::Mt => mt::run(config, &mt_options).await,
        Stage::Api => api::run(config, seconds, &api_options).await,
        Stage::Gateway => gateway::run(&gateway_options).await,
        Stage::Bus => bench_bus(config, Duration::from_secs(seconds.max(1))).await,
        Stage::Ingest => {
            // CPU-bound and single-threaded by design: one blocking thread, measured alone.
            let config = config.clone();
            tokio::task::spawn_blocking(move || ingest::run(&config, seconds))
                .await
                .unwrap_or_else(|err| Err(anyhow::anyhow!("ingest benchmark panicked: {err}")))
        }
    };
    match result {
        Ok(results) => {
            if json {
                println!("{results}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("dragoman bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn bench_bus(config: &Config, duration: Duration) -> anyhow::Result<Value> {
    let mut results = serde_json::Map::new();
    let memory = in_process_bus(config).await?;
    results.insert("in_process".into(), bench_one(&memory, duration).await?);
    let mut nats_config = config.clone();
    nats_config.bus.namespace = format!("bench-{}", uuid::Uuid::new_v4().simple());
    match connect_nats(&nats_config, "bench").await {
        Ok(nats) => {
            let measured = bench_one(&nats, duration).await;
            for name in [nats.subjects().calls_stream(), nats.subjects().stt_stream()] {
                let _ = nats.delete_stream(&name).await;
            }
            results.insert("nats".into(), measured?);
        }
        Err(err) => {
            println!("nats: skipped ({err:#})");
            results.insert("nats".into(), Value::Null);
        }
    }
    Ok(Value::Object(results))
}

async fn bench_one(bus: &Bus, duration: Duration) -> anyhow::Result<Value> {
    let kind = if bus.is_in_process() { "in-process" } else { "nats" };
    let payload = Bytes::from(vec![0x55u8; 640]); // one 20 ms slin16 frame

    // Publish → subscriber throughput, with the subscriber keeping up (bounded in-flight).
    let subject = bus.subjects().stt_partial();
    let mut sub = bus.subscribe(&subject).await?;
    bus.ping().await?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut received = 0u64;
    while started.elapsed() < duration {
        for _ in 0..256 {
            bus.publish(&subject, Headers::new(), payload.clone()).await?;
        }
        sent += 256;
        while received + 1024 < sent {
            if tokio::time::timeout(Duration::from_secs(5), sub.next()).await?.is_none() {
                anyhow::bail!("subscription ended");
            }
            received += 1;
        }
    }
    while received < sent {
        match tokio::time::timeout(Duration::from_millis(500), sub.next()).await {
            Ok(Some(_)) => received += 1,
            _ => break,
        }
    }
    let pubsub_per_sec = received as f64 / started.elapsed().as_secs_f64();
    let lost = sent - received;

    // Request/reply round trips.
    let echo_subject = bus.subjects().media_allocate();
    let mut echo = bus.queue_subscribe(&echo_subject, "bench").await?;
    let responder = bus.clone();
    let server = tokio::spawn(async move {
        while let Some(request) = echo.next().await {
            let _ = responder.respond(&request, Headers::new(), request.payload.clone()).await;
        }
    });
    bus.ping().await?;
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let t = Instant::now();
        bus.request(&echo_subject, Headers::new(), Bytes::from_static(b"{}"), Duration::from_secs(2)).await?;
        latencies.push(t.elapsed());
    }
    server.abort();
    let request = percentiles(&mut latencies);

    // Durable publish → consume → ack round trips.
    let spec = ConsumerSpec::new(bus.subjects().stt_stream(), "bench");
    let mut consumer = bus.durable_subscribe(&spec).await?;
    let final_subject = bus.subjects().stt_final();
    let mut durable = Vec::new();
    let started = Instant::now();
    while started.elapsed() < duration {
        let t = Instant::now();
        bus.publish_durable(&final_subject, Headers::new(), payload.clone()).await?;
        let delivery = tokio::time::timeout(Duration::from_secs(5), consumer.next())
            .await?
            .ok_or_else(|| anyhow::anyhow!("durable consumer ended"))??;
        delivery.ack().await?;
        durable.push(t.elapsed());
    }
    let durable = percentiles(&mut durable);

    println!(
        "{kind}: pub/sub {pubsub_per_sec:.0} msg/s of 640 B ({lost} dropped); request/reply p50 {:.3} ms p99 {:.3} ms; \
         durable publish→ack p50 {:.3} ms p99 {:.3} ms",
        request.0, request.2, durable.0, durable.2
    );
    Ok(json!({
        "pubsub_msgs_per_sec": pubsub_per_sec.round(),
        "pubsub_dropped": lost,
        "request_p50_ms": request.0,
        "request_p95_ms": request.1,
        "request_p99_ms": request.2,
        "durable_roundtrip_p50_ms": durable.0,
        "durable_roundtrip_p99_ms": durable.2,
    }))
}

/// p50, p95, p99 in ms.
fn percentiles(samples: &mut [Duration]) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        (samples[index].as_secs_f64() * 1e6).round() / 1e3
    };
    (at(0.50), at(0.95), at(0.99))
}
