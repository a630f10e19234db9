#!/usr/bin/env bash
# Create (or reuse) the Python venv for the faster-whisper peer of `dragoman bench stt`.
# The venv goes to $BENCH_PEER_VENV (default: $HOME/.cache/dragoman/bench-peer). Idempotent:
# when faster-whisper is already importable there at the pinned version, nothing is installed.
# Prints the venv's python path as the last line of stdout.
#
# (Not a DRAGOMAN_* variable on purpose: the app's config loader rejects unknown DRAGOMAN_ vars.)
set -euo pipefail

FASTER_WHISPER_VERSION="1.2.1"
venv="${BENCH_PEER_VENV:-$HOME/.cache/dragoman/bench-peer}"
py="$venv/bin/python"

installed_ok() {
    [ -x "$py" ] && "$py" - "$FASTER_WHISPER_VERSION" <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
import faster_whisper  # noqa: F401  (the import itself must work, not just the metadata)
sys.exit(0 if version("faster-whisper") == sys.argv[1] else 1)
PY
}

if installed_ok; then
    echo "faster-whisper $FASTER_WHISPER_VERSION already installed in $venv" >&2
else
    if [ ! -x "$py" ]; then
        echo "creating venv at $venv" >&2
        mkdir -p "$(dirname "$venv")"
        python3 -m venv "$venv"
    fi
    "$py" -m pip install --quiet --disable-pip-version-check "faster-whisper==$FASTER_WHISPER_VERSION" >&2
    installed_ok || { echo "faster-whisper $FASTER_WHISPER_VERSION is not importable in $venv" >&2; exit 1; }
fi

echo "$py"
