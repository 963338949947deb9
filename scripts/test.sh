#!/usr/bin/env bash
# Sets up if needed, installs the Python reference (tests only), runs every Rust test
# and every parity test against transformers / PEFT / sentence-transformers.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh"

if ! .venv/bin/python -c 'import transformers, peft, sentence_transformers, gguf, pytest' 2>/dev/null; then
  echo "[test] installing the Python reference environment (tests only)"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/requirements-reference.txt
fi

echo "[test] cargo test"
cargo test --release --quiet -- --test-threads=2
echo "[test] parity tests"
.venv/bin/python -m pytest -q tests/parity "$@"
