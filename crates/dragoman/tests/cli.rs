//! The `dragoman` binary as a user runs it.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn dragoman() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dragoman"));
    // A clean environment: no inherited DRAGOMAN_* keys, no config file from the cwd.
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(env!("CARGO_TARGET_TMPDIR"));
    // Where the Silero VAD model lives (media ingest loads it at start-up).
    for key in ["HOME", "DRAGOMAN_MODEL_DIR"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

fn wait_with_deadline(mut child: Child, seconds: u64) -> Output {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {seconds} s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

async fn get(url: &str) -> Option<(u16, String)> {
    let response = reqwest::get(url).await.ok()?;
    Some((response.status().as_u16(), response.text().await.ok()?))
}

#[tokio::test]
async fn standalone_answers_healthz_and_stops_cleanly_on_sigterm() {
    let (api, ops) = (free_port(), free_port());
    let rtp = free_port();
    let child = dragoman()
        .env("DRAGOMAN_MEDIA__RTP_PORT_MIN", rtp.to_string())
        .env("DRAGOMAN_MEDIA__RTP_PORT_MAX", rtp.to_string())
        .env("DRAGOMAN_API__LISTEN", format!("127.0.0.1:{api}"))
        .env("DRAGOMAN_TELEMETRY__METRICS_LISTEN", format!("127.0.0.1:{ops}"))
        .env("DRAGOMAN_TELEMETRY__LOG_FORMAT", "json")
        .arg("standalone")
        .spawn()
        .unwrap();
    let pid = child.id();

    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Some(answer) = get(&format!("http://127.0.0.1:{api}/healthz")).await {
            break answer;
        }
        assert!(Instant::now() < deadline, "standalone did not answer /healthz");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health, (200, "ok\n".to_owned()));
    let (status, ready) = get(&format!("http://127.0.0.1:{api}/readyz")).await.unwrap();
    assert_eq!(status, 200, "{ready}");
    let (status, metrics) = get(&format!("http://127.0.0.1:{ops}/metrics")).await.unwrap();
    assert_eq!(status, 200);
    assert!(metrics.contains("dragoman_build_info"), "{metrics}");

    let killed = Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    let output = tokio::task::spawn_blocking(move || wait_with_deadline(child, 15)).await.unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "exit {:?}\n{stderr}\n{stdout}", output.status);
    assert!(stdout.contains("\"shutdown requested\""), "{stdout}");
    assert!(stdout.contains("\"stopped\""), "{stdout}");
    // The generated loopback token is printed once for the user, but never logged.
    let token = stderr.lines().nth(1).unwrap_or_default().trim().to_owned();
    assert_eq!(token.len(), 64, "{stderr}");
    assert!(!stdout.contains(&token), "the token must not be logged");
}

#[test]
fn bad_config_exits_64_naming_the_key_and_its_source() {
    let output = dragoman().env("DRAGOMAN_API__LISEN", "127.0.0.1:1").arg("standalone").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("api.lisen") && stderr.contains("DRAGOMAN_API__LISEN"), "{stderr}");

    let dir = tempdir();
    let file = dir.join("dragoman.toml");
    std::fs::write(&file, "[shutdown]\ngrace_ms = \"soon\"\n").unwrap();
    let output = dragoman().arg("--config").arg(&file).arg("standalone").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("shutdown.grace_ms") && stderr.contains("dragoman.toml"), "{stderr}");

    let output = dragoman().args(["--config", "/nonexistent/dragoman.toml", "standalone"]).output().unwrap();
    assert_eq!(output.status.code(), Some(64));
}

#[test]
fn the_api_refuses_to_start_without_a_token() {
    let output = dragoman()
        .env("DRAGOMAN_TELEMETRY__METRICS_LISTEN", "")
        .env("DRAGOMAN_API__LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DRAGOMAN_BUS__URL", dragoman_test_support::nats_url())
        .env("DRAGOMAN_BUS__NAMESPACE", dragoman_test_support::unique_namespace())
        .arg("api")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64), "refused as bad configuration, before connecting anywhere");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no API token configured") && stderr.contains("DRAGOMAN_API__TOKENS"), "{stderr}");

    // Standalone on a public address gets no generated token either.
    let output = dragoman().env("DRAGOMAN_API__LISTEN", "0.0.0.0:0").arg("standalone").output().unwrap();
    assert_eq!(output.status.code(), Some(64));
}

#[test]
fn env_example_is_in_sync_with_the_config_structs() {
    let output = dragoman().args(["config", "env-example"]).output().unwrap();
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.env.example");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(committed, generated, ".env.example is stale: run with UPDATE_EXPECT=1 to refresh it");
    assert!(generated.contains("#DRAGOMAN_API__LISTEN=127.0.0.1:8080"));
}

#[test]
fn bench_bus_prints_json_as_its_last_line() {
    let output = dragoman()
        .env("DRAGOMAN_BUS__URL", dragoman_test_support::nats_url())
        .args(["bench", "bus", "--json", "--seconds", "1"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let last = stdout.lines().last().unwrap();
    let results: serde_json::Value = serde_json::from_str(last).unwrap();
    for backend in ["in_process", "nats"] {
        let rate = results[backend]["pubsub_msgs_per_sec"].as_f64().unwrap_or_default();
        assert!(rate > 0.0, "{backend}: {last}");
        assert!(results[backend]["request_p99_ms"].as_f64().unwrap_or_default() > 0.0, "{backend}: {last}");
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
