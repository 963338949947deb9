#!/usr/bin/env bash
# The paper configuration on a GPU, checked in one command (README, "The paper configuration on a
# GPU"): stylerl info sees CUDA, CUDA results equal the CPU's, and decode / SFT / GRPO speed and
# memory at Llama-3.2-3B shapes against transformers + PEFT in the same run.
#
#   scripts/gpu_check.sh [OUT_DIR]              on the GPU machine (≤ 8 min); needs target/release/stylerl
#   scripts/gpu_check.sh --rehearse [OUT_DIR]   the same steps on CPU at tiny shapes (< 2 min)
#
# OUT_DIR (or $GPU_CHECK_OUT, else $OUT, else results/_scratch/gpu_check_MODE) receives
# summary.json and log.txt. Exits 1 when a check did not pass (the summary is written anyway).
# Needs only python3 with torch, transformers and PEFT (no Rust, no network): the models are
# random and built at run time, the tokenizer too. PYTHON overrides the interpreter; the project's
# .venv is used when it has torch, else python3.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

mode=gpu
out=""
for arg in "$@"; do
  case "$arg" in
    --rehearse) mode=rehearse ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    -*) echo "gpu_check.sh: unknown option $arg (use --rehearse and/or an output folder)" >&2; exit 2 ;;
    *) out="$arg" ;;
  esac
done
if [[ -z "$out" ]]; then
  out="${GPU_CHECK_OUT:-${OUT:-$ROOT/results/_scratch/gpu_check_$mode}}"
fi
mkdir -p "$out" || { echo "gpu_check.sh: cannot create output folder $out" >&2; exit 2; }
rm -f "$out/summary.json" "$out/log.txt"

if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]] && "$ROOT/.venv/bin/python" -c 'import torch' 2>/dev/null; then
    PYTHON="$ROOT/.venv/bin/python"
  else
    PYTHON=python3
  fi
fi
export STYLERL_BIN="${STYLERL_BIN:-$ROOT/target/release/stylerl}"
if [[ ! -x "$STYLERL_BIN" ]]; then
  echo "gpu_check.sh: $STYLERL_BIN missing: build it (cargo build --release) and carry it along" >&2
  exit 2
fi

# libtorch comes from the python's torch: the binary's RUNPATH names the build machine's .venv,
# and LD_LIBRARY_PATH goes before RUNPATH.
# (find_spec: the path without the seconds of importing torch.)
torch_lib="$("$PYTHON" -c 'import importlib.util as u, os; print(os.path.join(u.find_spec("torch").submodule_search_locations[0], "lib"))' 2>/dev/null)" || {
  echo "gpu_check.sh: $PYTHON has no torch: set PYTHON to an interpreter with torch, transformers and peft" >&2
  exit 2
}
if [[ ! -e "$torch_lib/libtorch_cpu.so" ]]; then
  echo "gpu_check.sh: no libtorch_cpu.so in $torch_lib: that torch cannot serve the binary" >&2
  exit 2
fi
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# The python side holds its own budget (470 s on the GPU, 330 s rehearsing: it takes ~45 s on a quiet 2-core machine, the rest is room for a loaded one); this is the backstop.
limit=480
[[ "$mode" == rehearse ]] && limit=340
# GPU_CHECK_ONLY=grpo_speed,sft_speed reruns only the steps named (and the steps they stand on).
# GPU_CHECK_WORK: scratch folder for the random models (~8 GB on the GPU run; default a new
# folder under $TMPDIR or /tmp, removed at the end).
timeout -k 10 "$limit" "$PYTHON" "$ROOT/scripts/gpu_check.py" --mode "$mode" --out "$out" \
  ${GPU_CHECK_WORK:+--work "$GPU_CHECK_WORK"} ${GPU_CHECK_ONLY:+--only "$GPU_CHECK_ONLY"}
rc=$?
[[ $rc == 124 || $rc == 137 ]] && echo "gpu_check.sh: stopped after $limit s; $out/summary.json may be missing" >&2
exit $rc
