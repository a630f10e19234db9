//! Helpers shared by Dragoman's tests: real NATS on loopback, a fresh namespace per test.
//!
//! Tests talk to the NATS server at `DRAGOMAN_TEST_NATS_URL` (default `nats://127.0.0.1:4222`,
//! which `.ci/run` starts with JetStream when it is not already running). Each test gets its own
//! subject namespace and stream names, so tests never see each other's messages.
//!
//! Layout:
//! - this file: NATS and Redis helpers, corpus prompts;
//! - [`ari_spec`]: a reader for the vendored ARI Swagger files and a validator for ARI JSON;
//! - [`fake_ari`]: a fake Asterisk 22 ARI server (REST, events WebSocket, RTP) with a control
//!   handle, for the gateway's tests, `dragoman bench gateway` and the demo.

pub mod ari_spec;
pub mod fake_ari;
pub mod rtp_endpoints;

use std::time::Duration;

use dragoman_bus::{Bus, NatsOptions, Subjects};

/// The NATS server tests use.
pub fn nats_url() -> String {
    std::env::var("DRAGOMAN_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A namespace no other test uses, e.g. `t-3f9c…`.
pub fn unique_namespace() -> String {
    format!("t-{}", uuid::Uuid::new_v4().simple())
}

/// A bus on the real NATS server under a fresh namespace. Panics with a clear message when NATS
/// is not reachable: the suite needs it (`.ci/run` starts it).
pub async fn nats_bus() -> Bus {
    let subjects = Subjects::new(&unique_namespace()).expect("valid namespace");
    let options = NatsOptions {
        url: nats_url(),
        name: Some("dragoman-test".into()),
        connect_timeout: Duration::from_secs(5),
        subscription_capacity: 4096,
        ..Default::default()
    };
    Bus::connect_nats(&options, subjects).await.unwrap_or_else(|e| {
        panic!("tests need NATS with JetStream at {} ({e}); run .ci/run or start nats-server -js", nats_url())
    })
}

/// An in-process bus under a fresh namespace.
pub fn memory_bus() -> Bus {
    Bus::in_process(Subjects::new(&unique_namespace()).expect("valid namespace"), 4096)
}

/// Awaits `future`, failing the test if it takes longer than `seconds`.
pub async fn within<F: std::future::Future>(seconds: u64, future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(seconds), future)
        .await
        .unwrap_or_else(|_| panic!("timed out after {seconds} s"))
}

/// The Asterisk English prompts (Debian `asterisk-core-sounds-en-wav`, CC-BY-SA-3.0): real 8 kHz
/// telephone speech. `DRAGOMAN_ASTERISK_SOUNDS_DIR` overrides the location.
pub fn sounds_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("DRAGOMAN_ASTERISK_SOUNDS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from("/usr/share/asterisk/sounds/en"));
    assert!(
        dir.join("hello-world.wav").exists(),
        "asterisk prompts missing in {}: apt-get install asterisk-core-sounds-en-wav (.ci/run does)",
        dir.display()
    );
    dir
}

/// One prompt's 8 kHz 16-bit samples, by name (e.g. `hello-world`).
pub fn prompt(name: &str) -> Vec<i16> {
    let path = sounds_dir().join(format!("{name}.wav"));
    let mut reader = hound::WavReader::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!((spec.sample_rate, spec.channels, spec.bits_per_sample), (8000, 1, 16), "{}", path.display());
    reader.samples::<i16>().collect::<Result<_, _>>().unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
