//! `dragoman bench ingest` runs end to end and reports its numbers. Not a timing test: it only
//! checks that every headline number is there and positive.

use std::process::Command;

#[test]
fn bench_ingest_prints_its_numbers_as_json_on_the_last_line() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dragoman"));
    // No inherited DRAGOMAN_* keys or config file, except where to find the VAD model.
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(env!("CARGO_TARGET_TMPDIR"));
    for key in ["HOME", "DRAGOMAN_MODEL_DIR"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    let output = command.args(["bench", "ingest", "--json", "--seconds", "1"]).output().expect("run dragoman");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    let results: serde_json::Value = serde_json::from_str(last).expect("the last line is json");
    for key in [
        "packets_per_sec_per_core",
        "legs_per_core_with_vad",
        "bytes_per_leg",
        "packets_per_sec_per_core_min",
        "vad_ms_per_window",
        "peak_rss_bytes",
    ] {
        let value = results[key].as_f64().unwrap_or_default();
        assert!(value > 0.0, "{key} is not a positive number in {last}");
    }
    assert!(stdout.contains("packets/s per core"), "{stdout}");
}
