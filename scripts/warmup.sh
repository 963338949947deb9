#!/usr/bin/env bash
# Trains the shipped warm-up again (warmup/README.md): about 50 minutes on 2 cores.
#   1. the corpus warm-up, one epoch (configs/corpus/sft.toml, 450 steps × 4 pairs; ~35 min);
#   2. its best-of-8 rewrites of every third distinct corpus training input, kept where clean
#      (stylerl rewrite --best-of 8 --clean-only; ~10 min);
#   3. one rejection-sampling round on those picks (configs/corpus/sft-rft.toml; ~5 min).
# Writes runs/warmup/{corpus,picks.jsonl,rft}. The two adapters, added onto the base model,
# are the warm-up: scripts/demo.sh merges them with WARMUP=retrain.
#
#   scripts/warmup.sh            train (a stage whose adapter exists is kept; FORCE=1 redoes all)
#   scripts/warmup.sh --pack     then write both adapters in f16 into warmup/ (maintainers; needs
#                                the Python package safetensors in .venv, which scripts/test.sh installs)
#
# A seeded run follows a different numeric path on another CPU (AMD/Intel, AVX-512 or not), so a
# retrained warm-up is another draw of the same recipe, not the shipped bytes.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
say() { echo "[warmup] $*"; }
PACK=0
case "${1:-}" in
  "") ;;
  --pack) PACK=1 ;;
  *) echo "[warmup] unknown argument '$1': use --pack or nothing" >&2; exit 1 ;;
esac
[ "${FORCE:-0}" = 1 ] && { say "FORCE=1: removing runs/warmup"; rm -rf runs/warmup; }
[ -x "$STYLERL_BIN" ] || bash scripts/setup.sh
mkdir -p runs/warmup
BASE=models/smollm2-135m-instruct
[ -s "$BASE/model.safetensors" ] || bash scripts/setup.sh

# stage NAME DIR COMMAND...: run unless DIR/adapter exists; resume after a checkpoint.
stage() {
  local name=$1 dir=$2; shift 2
  if [ -s "$dir/adapter/adapter_model.safetensors" ]; then
    say "$name: $dir/adapter exists, kept (FORCE=1 to redo)"
    return
  fi
  local extra=()
  [ -n "$(ls -A "$dir/checkpoints" 2>/dev/null)" ] && extra=(--resume)
  local t0; t0=$(date +%s)
  say "$name: $* ${extra[*]:-}"
  "$@" "${extra[@]}"
  say "$name: $(( $(date +%s) - t0 ))s"
}

stage "1/3 corpus warm-up" runs/warmup/corpus \
  "$STYLERL_BIN" sft --config configs/corpus/sft.toml --set 'out_dir="runs/warmup/corpus"' \
  --set train.max_steps=450 --set train.eval_every=50 --set train.checkpoint_every=50

if [ -s runs/warmup/picks.jsonl ]; then
  say "2/3 picks: runs/warmup/picks.jsonl exists, kept"
else
  # Every third distinct training input, in order of first appearance (302 inputs).
  python3 - <<'EOF' > runs/warmup/inputs.jsonl
import json
seen, out = set(), []
for line in open("datasets/corpus/train.jsonl"):
    t = json.loads(line)["input"]
    if t not in seen:
        seen.add(t)
        out.append(t)
for t in out[::3]:
    print(json.dumps({"text": t}))
EOF
  t0=$(date +%s)
  say "2/3 picks: best-of-8 rewrites of $(wc -l < runs/warmup/inputs.jsonl) training inputs, clean ones kept"
  "$STYLERL_BIN" rewrite --run runs/warmup/corpus --best-of 8 --clean-only --input runs/warmup/inputs.jsonl \
    --field text --temperature 0.7 --top-p 0.9 --seed 11 --max-new-tokens 96 \
    --out runs/warmup/picks.jsonl.part --force
  mv runs/warmup/picks.jsonl.part runs/warmup/picks.jsonl
  say "2/3 picks: $(wc -l < runs/warmup/picks.jsonl) pairs, $(( $(date +%s) - t0 ))s"
fi

stage "3/3 rejection-sampling round" runs/warmup/rft \
  "$STYLERL_BIN" sft --config configs/corpus/sft-rft.toml --set 'out_dir="runs/warmup/rft"' \
  --set 'model.path="runs/warmup/corpus/merged"' --set 'data.train="runs/warmup/picks.jsonl"'

say "adapters: runs/warmup/corpus/adapter + runs/warmup/rft/adapter (both add onto $BASE)"
sha256sum runs/warmup/corpus/adapter/adapter_model.safetensors runs/warmup/rft/adapter/adapter_model.safetensors

if [ "$PACK" = 1 ]; then
  python3 -c "import safetensors, torch" 2>/dev/null || {
    echo "[warmup] --pack needs the Python packages safetensors and torch in .venv: .venv/bin/pip install safetensors" >&2; exit 1; }
  python3 - <<'EOF'
# f16 keeps these LoRA factors to 5e-4 of each tensor's largest value (bf16: 4e-3) at half
# the size; the merged weights match the f32 chain to 6e-6 of each weight tensor's largest value.
import json, shutil
from safetensors.torch import load_file, save_file
for src, dst in [("runs/warmup/corpus/adapter", "warmup/1-corpus"), ("runs/warmup/rft/adapter", "warmup/2-rft")]:
    t = load_file(f"{src}/adapter_model.safetensors")
    save_file({k: v.half().contiguous() for k, v in t.items()}, f"{dst}/adapter_model.safetensors")
    shutil.copy(f"{src}/adapter_config.json", f"{dst}/adapter_config.json")
EOF
  say "packed into warmup/1-corpus and warmup/2-rft (record the new hashes in warmup/README.md):"
  sha256sum warmup/1-corpus/adapter_model.safetensors warmup/2-rft/adapter_model.safetensors
fi
