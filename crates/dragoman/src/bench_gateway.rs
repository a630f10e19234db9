//! `dragoman bench gateway`: call setups per second through the ARI gateway, against the fake
//! Asterisk of `dragoman-test-support` on loopback.
//!
//! The gateway runs alone on one thread (a current-thread Tokio runtime: one core at most),
//! as it would in production with NATS replaced by the in-process bus. The fake Asterisk, a
//! stand-in for media ingest (a real UDP socket per leg) and the load run on the other threads.
//!
//! Each call is a two-party call: a caller enters the Stasis application with `DRAGOMAN_DIAL`
//! set, so the gateway answers it, dials the second party, bridges the two, and gives each
//! party a snoop, an externalMedia channel and a bridge: 12 ARI requests and an endpoint
//! allocation per leg. **Setup time** runs from StasisStart being sent to the first RTP packet
//! of the *later* of the two legs arriving at its endpoint: both parties' voices flowing. Calls
//! are offered `--concurrency` at a time until `--calls` are done; each is hung up once set up.
//! At the end every call must have ended and the fake must hold no channel and no bridge:
//! `leaked_channels` and `leaked_bridges` count what it still holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dragoman_ari_gateway::Gateway;
use dragoman_bus::{Bus, StreamLimits};
use dragoman_runtime::{Config, Secret, Shutdown};
use dragoman_test_support::fake_ari::{FakeAri, InboundCall};
use dragoman_test_support::rtp_endpoints::RtpEndpoints;
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::percentiles;
use super::stt::round;

const APP: &str = "dragoman";

/// What the bench may be told.
#[derive(Debug, Clone)]
pub struct Options {
    pub calls: usize,
    pub concurrency: usize,
}

pub async fn run(options: &Options) -> anyhow::Result<Value> {
    let fake = FakeAri::start().await.context("start the fake Asterisk")?;
    let bus = Bus::in_process(dragoman_bus::Subjects::new("bench-gateway")?, 65_536);
    bus.ensure_standard_streams(StreamLimits::default()).await?;
    let endpoints = RtpEndpoints::serve(&bus).await?;

    let mut config = Config::default();
    config.ari.url = format!("http://{}", fake.addr());
    config.ari.username = fake.username().to_owned();
    config.ari.password = Some(Secret::new(fake.password()));
    let gateway = Gateway::new(&config, dragoman_ari_gateway::client(&config)?, bus.clone())?;
    let registry = gateway.registry().clone();
    let mut connected = gateway.connected();
    let shutdown = Shutdown::new(Duration::from_secs(10));
    let gateway_thread = {
        let shutdown = shutdown.clone();
        std::thread::Builder::new().name("gateway".into()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(gateway.serve(shutdown))
        })?
    };
    tokio::time::timeout(Duration::from_secs(10), connected.wait_for(|up| *up))
        .await
        .context("the gateway did not connect to the fake Asterisk")??;
    fake.wait_for_app(APP).await;

    let fake = Arc::new(fake);
    let started = Instant::now();
    let setups: Vec<anyhow::Result<Duration>> = futures::stream::iter(0..options.calls)
        .map(|n| {
            let (fake, endpoints) = (fake.clone(), endpoints.clone());
            async move { one_call(&fake, &endpoints, n).await }
        })
        .buffer_unordered(options.concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut times = Vec::with_capacity(setups.len());
    let mut failures = 0;
    for setup in setups {
        match setup {
            Ok(time) => times.push(time),
            Err(err) => {
                failures += 1;
                eprintln!("a call failed: {err:#}");
            }
        }
    }

    // Every call ends and takes its helpers with it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while (!registry.is_empty() || fake.counters().live_channels > 0 || fake.counters().live_bridges > 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counters = fake.counters();
    shutdown.trigger();
    match gateway_thread.join() {
        Ok(result) => result?,
        Err(_) => bail!("the gateway thread panicked"),
    }

    let setups_per_sec = times.len() as f64 / elapsed.as_secs_f64();
    let (p50_ms, p95_ms, p99_ms) = percentiles(&mut times);
    eprintln!(
        "{} two-party calls, {} at a time: {setups_per_sec:.1} setups/s, setup p50 {p50_ms:.2} ms, p95 {p95_ms:.2} ms, \
         p99 {p99_ms:.2} ms; {failures} failed; left in Asterisk: {} channels, {} bridges; {} ARI requests",
        options.calls,
        options.concurrency,
        counters.live_channels,
        counters.live_bridges,
        counters.requests_served,
    );
    Ok(json!({
        "stage": "gateway",
        "calls": options.calls,
        "concurrency": options.concurrency,
        "setups_per_sec": round(setups_per_sec, 1),
        "setup_p50_ms": p50_ms,
        "setup_p95_ms": p95_ms,
        "setup_p99_ms": p99_ms,
        "failed_calls": failures,
        "leaked_channels": counters.live_channels,
        "leaked_bridges": counters.live_bridges,
        "ari_requests": counters.requests_served,
    }))
}

/// Places one two-party call, waits for both legs' media, hangs up; returns the setup time.
async fn one_call(fake: &FakeAri, endpoints: &RtpEndpoints, n: usize) -> anyhow::Result<Duration> {
    let call = InboundCall::new(APP, &format!("+3460{n:07}"))
        .answered()
        .variable("DRAGOMAN_LANGUAGE", "es")
        .variable("DRAGOMAN_DIAL", &format!("PJSIP/agent-{n}"));
    let placed = fake.place_inbound_call(call).map_err(|err| anyhow::anyhow!("place a call: {err}"))?;
    let sent = Instant::now();
    let call_id = dragoman_bus::subjects::call_id_from_linkedid(&placed.channel_id);
    let deadline = sent + Duration::from_secs(30);
    let flowing = loop {
        if let (Some(caller), Some(callee)) =
            (endpoints.received(&call_id, "caller"), endpoints.received(&call_id, "callee"))
        {
            break caller.first.max(callee.first);
        }
        if Instant::now() > deadline {
            let _ = fake.hangup(&placed.channel_id);
            bail!("call {call_id}: both legs' media did not flow within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    fake.hangup(&placed.channel_id).map_err(|err| anyhow::anyhow!("hang up: {err}"))?;
    Ok(flowing.saturating_duration_since(sent))
}
