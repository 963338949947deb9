#!/usr/bin/env bash
# Sets up if needed, installs the Python reference (tests only), runs every Rust test
# and every parity test against transformers / PEFT / sentence-transformers / llama.cpp.
# Every stage runs even when an earlier one fails, so one failure does not hide the others;
# the script exits non-zero at the end if any stage failed.
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
"$ROOT/scripts/setup.sh" || exit 1

if ! .venv/bin/python -c 'import transformers, peft, sentence_transformers, gguf, pytest, llama_cpp, selenium' 2>/dev/null; then
  echo "[test] installing the Python reference environment (tests only; llama-cpp-python compiles llama.cpp: about 20 min on 2 cores)"
  # A portable CPU build (no -march=native, no OpenMP, no downloads): the same kernels wherever it is built.
  CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_OPENMP=OFF -DLLAMA_CURL=OFF}" \
    .venv/bin/python -m pip install -q --disable-pip-version-check -r scripts/requirements-reference.txt || exit 1
fi

# The review page is tested in a real browser: Debian's chromium with its driver (root installs it).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "[test] installing Debian's chromium and chromium-driver (the review page's browser test)"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } >/dev/null || exit 1
fi

failed=()

echo "[test] layout (import cycles, clap/println outside src/cli)"
python3 scripts/check_layout.py || failed+=("layout")

echo "[test] cargo test"
cargo test --release --quiet --no-fail-fast -- --test-threads=2 || failed+=("cargo test")

# The decode tests run through the AVX-512 kernel where the CPU has it; run them once more
# with the kernel off (only the exact value 0 disables it) so the fallback is tested everywhere.
echo "[test] decode tests with STYLERL_DECODE_KERNEL=0"
STYLERL_DECODE_KERNEL=0 cargo test --release --quiet --no-fail-fast \
  --test llama_forward --test llama_generate -- --test-threads=2 \
  || failed+=("decode tests with STYLERL_DECODE_KERNEL=0")

echo "[test] parity tests"
.venv/bin/python -m pytest -q tests/parity "$@" || failed+=("parity tests")

# The GPU check (scripts/gpu_check.sh) runs only where a GPU is; its CPU rehearsal runs the same
# steps at tiny shapes here so the script cannot rot. Its log and summary.json stay in the folder.
echo "[test] GPU check rehearsal (scripts/gpu_check.sh --rehearse)"
rehearsal="$ROOT/results/_scratch/gpu_check_rehearse"
mkdir -p "$rehearsal"
if scripts/gpu_check.sh --rehearse "$rehearsal" > "$rehearsal/stdout.txt" 2>&1; then
  tail -n 5 "$rehearsal/stdout.txt"
else
  grep -E '^\[gpu_check .*\]    [a-z0-9_]+: (fail|error|skipped)' "$rehearsal/stdout.txt"
  tail -n 5 "$rehearsal/stdout.txt"
  failed+=("GPU check rehearsal (see $rehearsal/log.txt)")
fi

if ((${#failed[@]})); then
  printf '[test] FAILED: %s\n' "${failed[@]}"
  exit 1
fi
echo "[test] all passed"
