//! `dragoman bench mt` runs every engine here (Debian's Apertium English → Spanish, and the
//! CTranslate2 test models `scripts/fetch-test-models.sh` builds) on real prompts and reports the
//! issue's keys. Not a timing test: it checks that every number is there and positive, that
//! nothing failed, that Apertium's translations were translations (a chrF bound), that the
//! batcher put texts of several calls together, and that the simulated IVR call hit the cache.

use std::process::Command;

/// Engines measured from a clean environment: Apertium, and the echo models (no `mt.models`).
const ENGINES: [&str; 4] =
    ["apertium", "ctranslate2/m2m100-echo", "ctranslate2/nllb-echo", "ctranslate2/opus-mt-en-es-echo"];

#[test]
fn bench_mt_reports_throughput_latency_batching_chrf_and_cache_hits() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dragoman"));
    // No inherited DRAGOMAN_* keys or config file, except where to find the models.
    command.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default()).current_dir(env!("CARGO_TARGET_TMPDIR"));
    for key in ["HOME", "DRAGOMAN_MODEL_DIR"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    let output = command.args(["bench", "mt", "--json", "--limit", "12"]).output().expect("run dragoman");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    let results: serde_json::Value = serde_json::from_str(last).expect("the last line is json");
    assert_eq!(results["sentences"], 12, "{last}");

    for engine in ENGINES {
        let numbers = &results[engine];
        for key in [
            "sentences_per_sec",
            "p50_ms",
            "p95_ms",
            "sentences_per_sec_batch_8",
            "sentences_per_sec_batch_32",
            "batching_speedup",
            "one_call_sentences_per_sec",
            "calls_sentences_per_sec",
            "calls_p95_ms",
        ] {
            let value = numbers[key].as_f64().unwrap_or_default();
            assert!(value > 0.0, "{engine}.{key} is not a positive number in {last}");
        }
        assert!(numbers["p95_ms"].as_f64() >= numbers["p50_ms"].as_f64(), "{last}");
        assert_eq!(numbers["failures"], 0, "{engine} in {last}");
        assert_eq!(numbers["pair"], "en-es", "{last}");
        // 12 calls send their one sentence at once and the batcher waits `batch_window_ms` for
        // more, so engine calls carry texts of several calls (measured: all 12 in one).
        let batch = numbers["calls_avg_batch"].as_f64().unwrap_or_default();
        assert!(batch > 1.0 && batch <= 12.0, "{engine} calls_avg_batch {batch} in {last}");
    }
    for echo in &ENGINES[1..] {
        assert_eq!(results[echo]["echo_model"], true, "{last}");
        assert_eq!(results[echo]["beam_size"], 1, "echo models are decoded greedily: {last}");
        assert!(results[echo]["chrf"].is_null(), "no chrF for a model that copies its input: {last}");
    }

    // A sanity bound, not the quality test (that is crates/mt-worker/tests/apertium.rs, on all
    // 452 prompts, 45.5): an engine that returns its input or nothing scores far lower. Measured
    // 46.9 on these 12.
    let chrf = results["chrf_apertium_en_es"].as_f64().unwrap_or_default();
    assert!(chrf > 40.0, "chrF {chrf} in {last}");
    assert_eq!(results["apertium"]["chrf"], results["chrf_apertium_en_es"], "{last}");

    // Ten calls of 13 queue announcements (5 distinct) and 6 conversation lines said once: all
    // but 5 + 60 of the 190 are hits, whatever the timing.
    let ivr = &results["ivr"];
    assert_eq!(ivr["engine"], "apertium", "the engine the worker would use: {last}");
    assert_eq!(ivr["requests"], 190, "{last}");
    assert_eq!(ivr["cache_misses"], 65, "{last}");
    let rate = results["ivr_cache_hit_rate"].as_f64().unwrap_or_default();
    assert!(rate > 0.0 && rate < 1.0, "{last}");
    assert_eq!(ivr["failures"], 0, "{last}");
    assert!(ivr["miss_p50_ms"].as_f64() > Some(0.0), "{last}");
    assert!(stdout.contains("apertium (eng-spa en→es): one by one"), "{stdout}");
}
