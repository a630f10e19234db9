#!/usr/bin/env python3
"""faster-whisper peer for `dragoman bench stt`.

Runs stock faster-whisper (greedy by default) over the clips in a manifest and reports
per-repeat latencies, so the Rust engine can be compared side by side. Set up the venv with
scripts/setup-bench-peer.sh and run this file with that venv's python.

Manifest: {"items": [{"id": "hello-world", "file": "/path/x.f32", "repeats": 3}, ...]}
where each file holds raw little-endian float32 mono 16 kHz samples in [-1, 1].

Protocol: JSON Lines on stdout, one object per line, flushed per line:
  {"type": "ready", "model_rss_bytes": .. (after load and one warm-up), "load_ms": .., "faster_whisper": "1.2.1",
   "ctranslate2": "..", "threads": .., "compute_type": "..", "beam_size": ..}
  {"type": "result", "id": "..", "text": "..", "latencies_ms": [..]}   (one per item)
  {"type": "done"}
On failure: one {"type": "error", "message": ".."} line and exit status 1.
Nothing else goes to stdout; logs go to stderr.
"""

import argparse
import json
import os
import sys
import time

# Keep a private handle on the real stdout for the protocol, then point fd 1 (and sys.stdout)
# at stderr, so that stray prints from Python or native libraries cannot corrupt the stream.
_out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr


def emit(obj):
    _out.write(json.dumps(obj, ensure_ascii=False) + "\n")
    _out.flush()


def log(msg):
    print(f"bench-peer: {msg}", file=sys.stderr, flush=True)


def rss_bytes():
    """Resident set size of this process, from /proc/self/status (VmRSS is in kB)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def load_manifest(path, np):
    """Read the manifest and every clip into memory (so decoding is never timed)."""
    with open(path, encoding="utf-8") as f:
        items = json.load(f)["items"]
    if not items:
        raise ValueError("manifest has no items")
    clips = []
    for item in items:
        repeats = int(item.get("repeats", 1))
        if repeats < 1:
            raise ValueError(f"{item['id']}: repeats must be >= 1")
        audio = np.fromfile(item["file"], dtype="<f4").astype(np.float32, copy=False)
        if audio.size == 0:
            raise ValueError(f"{item['id']}: {item['file']} holds no samples")
        clips.append((str(item["id"]), audio, repeats))
    return clips


class _Parser(argparse.ArgumentParser):
    # Turn usage errors into an exception, so they come out as a protocol error line.
    # (--help still exits 0; its text goes to stderr, like every other log.)
    def error(self, message):
        raise ValueError(f"bad arguments: {message}")


def main():
    p = _Parser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="CTranslate2 Whisper model folder")
    p.add_argument("--threads", type=int, required=True, help="cpu_threads for CTranslate2")
    p.add_argument("--compute-type", default="int8")
    p.add_argument("--beam-size", type=int, default=1, help="1 = greedy")
    p.add_argument("--language", default="en")
    p.add_argument("--manifest", required=True)
    args = p.parse_args()
    # faster-whisper takes any non-folder as a Hugging Face repo id and tries to download it;
    # this peer only ever runs a local model.
    if not os.path.isfile(os.path.join(args.model, "model.bin")):
        raise ValueError(f"{args.model}: not a CTranslate2 model folder (no model.bin)")

    # Imported here so that an import failure is reported as a protocol error line.
    import ctranslate2
    import numpy as np
    from faster_whisper import WhisperModel, __version__ as fw_version

    clips = load_manifest(args.manifest, np)

    # Model memory = RSS growth across construction and one warm-up transcription (libraries and
    # audio are already loaded), as `dragoman bench stt` measures its own engines.
    rss0 = rss_bytes()
    t0 = time.perf_counter()
    model = WhisperModel(
        args.model,
        device="cpu",
        compute_type=args.compute_type,
        cpu_threads=args.threads,
        num_workers=1,
    )
    load_ms = (time.perf_counter() - t0) * 1000.0
    rss1 = rss_bytes()

    def transcribe(audio):
        # Stock faster-whisper: every other option (temperature fallback, timestamps,
        # condition_on_previous_text, ...) stays at its default.
        segments, _info = model.transcribe(
            audio,
            language=args.language,
            beam_size=args.beam_size,
            vad_filter=False,
        )
        # `segments` is a lazy generator: decoding happens here, so this is inside the timing.
        return "".join(s.text for s in segments)

    log(f"model loaded in {load_ms:.0f} ms, RSS +{(rss1 - rss0) / 2**20:.1f} MiB; warm-up on {clips[0][0]!r}")
    transcribe(clips[0][1])
    rss2 = rss_bytes()
    log(f"RSS after warm-up: +{(rss2 - rss0) / 2**20:.1f} MiB over pre-load")

    emit(
        {
            "type": "ready",
            "model_rss_bytes": rss2 - rss0,
            "load_ms": load_ms,
            "faster_whisper": fw_version,
            "ctranslate2": ctranslate2.__version__,
            "threads": args.threads,
            "compute_type": args.compute_type,
            "beam_size": args.beam_size,
        }
    )

    for clip_id, audio, repeats in clips:
        latencies = []
        text = ""
        for _ in range(repeats):
            t0 = time.perf_counter()
            text = transcribe(audio)
            latencies.append((time.perf_counter() - t0) * 1000.0)
        emit({"type": "result", "id": clip_id, "text": text, "latencies_ms": latencies})

    emit({"type": "done"})


if __name__ == "__main__":
    try:
        main()
    except SystemExit:  # --help
        raise
    except BaseException as e:  # noqa: BLE001 - any failure must become one error line
        emit({"type": "error", "message": f"{type(e).__name__}: {e}"})
        sys.exit(1)
