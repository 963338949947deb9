#!/usr/bin/env bash
# The whole pipeline on the embedded default (SmolLM2-135M-Instruct on CPU, whimsical tale):
#   set-up → warm-up (the shipped adapters, merged) → GRPO without and with style reward dropout
#   (recipes a1n2nd / a1n2) → evaluate → plots. BITLORA=1 adds a third GRPO run with ternary
#   Bit-LoRA adapters (beside the other two: the GRPO stage then takes ~1.5× as long, past the
#   15 minutes).
# Prints the final table and where the plots are, with the time each stage took.
#
# Re-runnable:
#   - a stage whose final output exists is skipped (SFT: runs/demo/sft/merged, GRPO runs:
#     <out_dir>/adapter) if its config (and, for a GRPO run, the SFT stage's) is the one it was
#     trained with (<out_dir>/demo-config.sha256; a changed config, or a run from before that
#     file, is trained again); FORCE=1 deletes every run directory and starts over (from the
#     shipped warm-up: it is not retrained);
#   - WARMUP=shipped (default) merges the committed warm-up adapters (warmup/README.md);
#     WARMUP=retrain trains them again first (scripts/warmup.sh, ~50 min on 2 cores); WARMUP=quick
#     trains the small 24-step warm-up of configs/demo/sft.toml (2 min, far less faithful);
#   - a stage interrupted after a checkpoint continues with --resume; one interrupted before
#     its first checkpoint has nothing worth keeping and is started again from scratch;
#   - evaluation reruns when results/demo/table.md is missing or older than a model it scores.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"

FORCE="${FORCE:-0}"
BITLORA="${BITLORA:-0}"
WARMUP="${WARMUP:-shipped}"
case "$WARMUP" in shipped|retrain|quick) ;; *) echo "[demo] WARMUP=$WARMUP: use shipped, retrain or quick" >&2; exit 1 ;; esac
case "$BITLORA" in 0|1) ;; *) echo "[demo] BITLORA=$BITLORA: use 0 or 1" >&2; exit 1 ;; esac
T_ALL=$(date +%s)
say() { echo "[demo] $*"; }
elapsed() { echo $(( $(date +%s) - $1 )); }

# out_dir = "..." of a config file.
out_dir_of() { sed -n 's/^out_dir *= *"\(.*\)".*/\1/p' "$1" | head -n1; }

# run_stage NAME CONFIG DONE_MARKER COMMAND...: skip, resume or (re)start one training stage.
run_stage() {
  local name=$1 config=$2 marker=$3; shift 3
  local dir; dir=$(out_dir_of "$config")
  [ -n "$dir" ] || { echo "[demo] $config has no out_dir" >&2; exit 1; }
  if [ "$FORCE" = 1 ] && [ -d "$dir" ]; then
    say "$name: FORCE=1, removing $dir"
    rm -rf "$dir"
  fi
  # STAGE_DEPS: files whose content the stage's result also depends on (an upstream stage's sha).
  local sha; sha=$(cat "$config" ${STAGE_DEPS:-} | sha256sum | cut -d' ' -f1)
  if [ -e "$dir/$marker" ]; then
    if [ "$(cat "$dir/demo-config.sha256" 2>/dev/null)" = "$sha" ]; then
      say "$name: done already ($dir/$marker), skipping (FORCE=1 to redo)"
      return
    fi
    say "$name: $config is not the config $dir was trained with: training it again"
    rm -rf "$dir"
  fi
  local extra=()
  if [ -d "$dir/checkpoints" ] && [ -n "$(ls -A "$dir/checkpoints" 2>/dev/null)" ]; then
    say "$name: resuming the interrupted run in $dir"
    extra=(--resume)
  elif [ -d "$dir" ]; then
    say "$name: removing $dir (interrupted before its first checkpoint)"
    rm -rf "$dir"
  fi
  local t0; t0=$(date +%s)
  say "$name: $* ${extra[*]:-}"
  "$@" "${extra[@]}"
  echo "$sha" > "$dir/demo-config.sha256"
  say "$name: $(elapsed "$t0")s"
}

t0=$(date +%s)
say "set-up (scripts/setup.sh)"
bash scripts/setup.sh
say "set-up: $(elapsed "$t0")s"

# The warm-up: the shipped adapters (warmup/README.md: a corpus warm-up and one
# rejection-sampling round, ~50 min to train on 2 cores) merged onto the base model in seconds;
# WARMUP=retrain trains them again first (scripts/warmup.sh), WARMUP=quick trains the small
# 24-step warm-up of configs/demo/sft.toml instead (the demo before 2026-12-08).
warmup_stage() {
  local dir=runs/demo/sft adapters=() sha t0
  case "$WARMUP" in
    shipped) adapters=(warmup/1-corpus warmup/2-rft) ;;
    retrain) adapters=(runs/warmup/corpus/adapter runs/warmup/rft/adapter) ;;
    quick)
      run_stage sft configs/demo/sft.toml merged/model.safetensors \
        "$STYLERL_BIN" sft --config configs/demo/sft.toml
      return ;;
  esac
  [ "$FORCE" = 1 ] && [ -d "$dir" ] && { say "sft: FORCE=1, removing $dir"; rm -rf "$dir"; }
  t0=$(date +%s)
  if [ "$WARMUP" = retrain ]; then
    say "sft: WARMUP=retrain, training the warm-up again (scripts/warmup.sh, ~50 min)"
    bash scripts/warmup.sh
  fi
  for a in "${adapters[@]}"; do
    [ -s "$a/adapter_model.safetensors" ] || { echo "[demo] $a/adapter_model.safetensors is missing: restore it from git (git checkout -- warmup) or run with WARMUP=retrain" >&2; exit 1; }
  done
  sha=$({ printf 'warm-up %s\n' "$WARMUP"; cat "${adapters[@]/%//adapter_model.safetensors}"; } | sha256sum | cut -d' ' -f1)
  if [ -s "$dir/merged/model.safetensors" ] && [ -s "$dir/run.json" ] && [ "$(cat "$dir/demo-config.sha256" 2>/dev/null)" = "$sha" ]; then
    say "sft: done already ($dir/merged, the $WARMUP warm-up), skipping (FORCE=1 to redo)"
    return
  fi
  rm -rf "$dir"
  say "sft: merging the $WARMUP warm-up (${adapters[*]}) into $dir/merged"
  "$STYLERL_BIN" merge --model models/smollm2-135m-instruct \
    $(printf -- '--adapter %s ' "${adapters[@]}") --out "$dir/merged"
  # A run directory too (run.json + adapter/: the round's adapter over the frozen corpus one),
  # so `stylerl rewrite --run runs/demo/sft` and `export-gguf --run` work as for a trained run.
  mkdir -p "$dir/adapter"
  cp "${adapters[1]}"/adapter_config.json "${adapters[1]}"/adapter_model.safetensors "$dir/adapter/"
  if [ "$WARMUP" = shipped ]; then
    python3 - "$ROOT" "$dir/run.json" <<'EOF'
import json, os, sys
root, out = sys.argv[1], sys.argv[2]
r = json.load(open(os.path.join(root, "warmup/run.json")))
r["model"] = os.path.join(root, r["model"])
r["adapters"] = [os.path.join(root, a) for a in r["adapters"]]
json.dump(r, open(out, "w"), indent=2, ensure_ascii=False)
EOF
  else
    cp runs/warmup/rft/run.json "$dir/run.json"
  fi
  echo "$sha" > "$dir/demo-config.sha256"
  say "sft: $(elapsed "$t0")s"
}
warmup_stage
# The GRPO runs are independent: they run at once, one libtorch thread each (on 2 cores this is
# faster than one after another with 2 threads each: 27 s per step of both against 2 × 21 s,
# measured on a1n2). Each run's output goes to runs/demo/<name>.log.
t0=$(date +%s)
pids=()
names=(grpo grpo-dropout)
[ "$BITLORA" = 1 ] && names+=(grpo-bitlora)
for name in "${names[@]}"; do
  extra=()
  [ "$name" = grpo-bitlora ] && extra=(--bitlora)
  mkdir -p runs/demo
  say "$name: started in the background, log: runs/demo/$name.log"
  ( export STYLERL_THREADS=1 STAGE_DEPS=runs/demo/sft/demo-config.sha256; run_stage "$name" "configs/demo/$name.toml" adapter/adapter_config.json \
      "$STYLERL_BIN" grpo --config "configs/demo/$name.toml" "${extra[@]}" ) \
    > "runs/demo/$name.log" 2>&1 &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  if wait "${pids[$i]}"; then
    say "${names[$i]}: $(grep -o 'adapter: .*\|done already.*' "runs/demo/${names[$i]}.log" | tail -n1)"
  else
    echo "[demo] ${names[$i]} failed; the end of runs/demo/${names[$i]}.log:" >&2
    tail -n 5 "runs/demo/${names[$i]}.log" >&2
    failed=1
  fi
done
[ "$failed" = 0 ] || exit 1
say "grpo runs: $(elapsed "$t0")s"

RESULTS=results/demo
stale=0
[ "$FORCE" = 1 ] && stale=1
[ -s "$RESULTS/table.md" ] || stale=1
# A table of other systems (e.g. made with BITLORA=1) is redone: its rows are the header,
# inputs, prompted, sft and one per GRPO run.
[ "$(grep -c '^| [a-z]' "$RESULTS/table.md" 2>/dev/null)" = $(( ${#names[@]} + 4 )) ] || stale=1
for f in runs/demo/sft/merged/model.safetensors $(printf 'runs/demo/%s/adapter/adapter_model.safetensors ' "${names[@]}"); do
  if [ -e "$f" ] && [ "$f" -nt "$RESULTS/table.md" ]; then stale=1; fi
done
if [ "$stale" = 1 ]; then
  t0=$(date +%s)
  systems="prompted,sft$(printf ',%s' "${names[@]}")"
  say "evaluate: $STYLERL_BIN evaluate --config configs/demo/evaluate.toml --systems $systems"
  "$STYLERL_BIN" evaluate --config configs/demo/evaluate.toml --systems "$systems" --force > /dev/null
  say "evaluate: $(elapsed "$t0")s"
else
  say "evaluate: $RESULTS is newer than every model, skipping (FORCE=1 to redo)"
fi

t0=$(date +%s)
plots=()
for name in "${names[@]}"; do
  dir=$(out_dir_of "configs/demo/$name.toml")
  "$STYLERL_BIN" plot "$dir"
  # The committed copy beside the table, so the pictures the README shows are this run's.
  mkdir -p "$RESULTS/plots"
  cp "$dir/plots/metrics.svg" "$RESULTS/plots/$name.svg"
  plots+=("$RESULTS/plots/$name.svg")
done
say "plots: $(elapsed "$t0")s"

echo
echo "== results/demo/table.md =="
cat "$RESULTS/table.md"
echo
echo "Chart of every metric with its interval: $RESULTS/chart.svg"
echo "Per-output details: $RESULTS/outputs.jsonl (metrics.json, table.csv beside it)"
echo "Training plots:"
for p in "${plots[@]}"; do echo "  $p"; done
say "total: $(elapsed "$T_ALL")s"
