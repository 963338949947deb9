#!/usr/bin/env bash
# Recipes trained on several seeds and compared run-mean against run-mean on the held-out inputs
# (docs/experiments.md, "a1 and a1f over five seeds"):
#
#   scripts/seed_study.sh [RECIPE.toml ...]     default: configs/study/a1.toml configs/study/a1f.toml
#
# SEEDS="0 1 2" (grpo.seed of each run); OUT=results/study; RUNS=runs/study. For a quick check
# of the plumbing (not a result): STEPS=N overrides grpo.steps (runs then go to
# runs/study-stepsN, so they never pass for full runs) and LIMIT=N evaluates the first N inputs. Needs the demo's SFT model (runs/demo/sft/merged:
# scripts/demo.sh makes it). Runs two trainings at a time, one libtorch thread each (about 45 min
# for the default 2 recipes x 3 seeds on 2 cores). A run whose adapter exists is kept.
# Writes $RUNS/<recipe>[-sK]/ and $OUT/{table.md, seed_mean.md, seed_mean_vs_<first>.md}:
# the first seed's run is named <recipe>, the k-th other one <recipe>-sk (scripts/seed_mean.py).
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$(dirname "$0")/demo_eval_config.sh"
cd "$ROOT"
say() { echo "[seed_study] $*"; }
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(configs/study/a1.toml configs/study/a1f.toml)
read -r -a seeds <<< "${SEEDS:-0 1 2}"
[ ${#seeds[@]} -ge 2 ] || { echo "seed_study: SEEDS needs at least two seeds (got '${SEEDS:-}')" >&2; exit 1; }
for s in "${seeds[@]}"; do
  [[ "$s" =~ ^[0-9]+$ ]] || { echo "seed_study: seed '$s' in SEEDS is not a non-negative integer" >&2; exit 1; }
done
for v in STEPS LIMIT; do
  if [ -n "${!v:-}" ] && ! [[ "${!v}" =~ ^[1-9][0-9]*$ ]]; then
    echo "seed_study: $v='${!v}' is not a positive integer" >&2; exit 1
  fi
done
OUT=${OUT:-results/study}
RUNS=${RUNS:-runs/study${STEPS:+-steps$STEPS}}
for r in "${recipes[@]}"; do
  [ -s "$r" ] || { echo "seed_study: recipe $r is missing or empty" >&2; exit 1; }
done
[ -s runs/demo/sft/merged/model.safetensors ] || {
  echo "seed_study: runs/demo/sft/merged is missing: run scripts/demo.sh first" >&2; exit 1; }

# One job per (recipe, seed): name, config, run directory.
jobs=()
for r in "${recipes[@]}"; do
  base=$(basename "$r" .toml)
  for i in "${!seeds[@]}"; do
    name=$base
    [ "$i" -gt 0 ] && name="$base-s$i"
    jobs+=("$name|$r|${seeds[$i]}")
  done
done

train() {
  local name=$1 cfg=$2 seed=$3 dir=$RUNS/$1
  if [ -s "$dir/adapter/adapter_config.json" ]; then
    # Kept only if its run.json says it is this seed (a run of another seed under this name
    # would silently enter the wrong mean).
    local got
    got=$(.venv/bin/python -c 'import json, sys; print(json.load(open(sys.argv[1]))["config"]["grpo.seed"])'       "$dir/run.json" 2>/dev/null || echo "unknown")
    if [ "$got" != "$seed" ]; then
      echo "seed_study: $dir was trained with grpo.seed = $got, not $seed: remove it or set RUNS" >&2
      return 1
    fi
    say "$name: done already ($dir, grpo.seed = $seed), kept"
    return
  fi
  rm -rf "$dir"
  mkdir -p "$RUNS"
  local extra=()
  [ -n "${STEPS:-}" ] && extra=(--set "grpo.steps=$STEPS")
  say "$name: $cfg, grpo.seed = $seed, log $dir.log"
  STYLERL_THREADS=1 "$STYLERL_BIN" grpo --config "$cfg" --set "out_dir=$dir" \
    --set "grpo.seed=$seed" "${extra[@]}" > "$dir.log" 2>&1 \
    || { echo "seed_study: $name failed; the end of $dir.log:" >&2; tail -n 5 "$dir.log" >&2; return 1; }
}

# Two at a time: a new job starts when one of the running two ends.
t0=$(date +%s)
running=0
failed=0
for j in "${jobs[@]}"; do
  IFS='|' read -r name cfg seed <<< "$j"
  if [ "$running" -ge 2 ]; then
    wait -n || failed=1
    running=$((running - 1))
  fi
  train "$name" "$cfg" "$seed" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
[ "$failed" = 0 ] || exit 1
say "training: $(( $(date +%s) - t0 ))s"

# The demo's evaluation settings, SFT and every run.
mkdir -p "$OUT"
cfg=$OUT/evaluate.toml
systems=()
for j in "${jobs[@]}"; do
  IFS='|' read -r name _ _ <<< "$j"
  systems+=("$name=$RUNS/$name")
done
demo_eval_config "$cfg" "${systems[@]}"
t0=$(date +%s)
say "evaluate: $cfg"
limit=()
[ -n "${LIMIT:-}" ] && limit=(--set "data.limit=$LIMIT")
"$STYLERL_BIN" evaluate --config "$cfg" --set "name=study" --set "out_dir=$OUT" "${limit[@]}" > /dev/null
say "evaluate: $(( $(date +%s) - t0 ))s"
.venv/bin/python scripts/seed_mean.py "$OUT/outputs.jsonl" > "$OUT/seed_mean.md"
first=$(basename "${recipes[0]}" .toml)
if [ ${#recipes[@]} -gt 1 ]; then
  .venv/bin/python scripts/seed_mean.py "$OUT/outputs.jsonl" --baseline "$first" \
    > "$OUT/seed_mean_vs_$first.md"
fi

echo
echo "== $OUT/table.md (one row per run) =="
cat "$OUT/table.md"
echo
echo "== $OUT/seed_mean.md (mean of each recipe's runs − sft) =="
cat "$OUT/seed_mean.md"
if [ ${#recipes[@]} -gt 1 ]; then
  echo
  echo "== $OUT/seed_mean_vs_$first.md (run-mean − $first's run-mean) =="
  cat "$OUT/seed_mean_vs_$first.md"
fi
