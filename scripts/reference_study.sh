#!/usr/bin/env bash
# "Any reference text works": a GRPO recipe (default configs/study/a1n2.toml, the demo's
# grpo-dropout), unchanged but for the reference, trained and evaluated against another
# reference text.
#
#   scripts/reference_study.sh datasets/reference/group_chat.txt
#   RECIPE=configs/study/a1f.toml scripts/reference_study.sh datasets/reference/group_chat.txt
#
# Runs and results go to <name>-<recipe> (runs/reference/group_chat-a1n2,
# results/reference/group_chat-a1n2); a run whose adapter exists is kept.
# Needs the demo's SFT model (runs/demo/sft/merged: scripts/demo.sh makes it). Writes
# runs/reference/<name>/ and results/reference/<name>/{table.md,…}. The table compares the
# SFT model with the RL model, both scored against <name>'s sentences.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$(dirname "$0")/demo_eval_config.sh"
cd "$ROOT"
ref=${1:?usage: scripts/reference_study.sh REFERENCE.txt}
[ -s "$ref" ] || { echo "reference_study: $ref is missing or empty" >&2; exit 1; }
[ -s runs/demo/sft/merged/model.safetensors ] || {
  echo "reference_study: runs/demo/sft/merged is missing: run scripts/demo.sh first" >&2; exit 1; }
name=$(basename "$ref" .txt)
RECIPE=${RECIPE:-configs/study/a1n2.toml}
[ -s "$RECIPE" ] || { echo "reference_study: RECIPE=$RECIPE is missing or empty" >&2; exit 1; }
name="$name-$(basename "$RECIPE" .toml)"
run=runs/reference/$name
say() { echo "[reference_study] $*"; }
if [ ! -s "$run/adapter/adapter_config.json" ]; then
  rm -rf "$run"
  say "grpo ($RECIPE) against $ref -> $run"
  "$STYLERL_BIN" grpo --config "$RECIPE" \
    --set "out_dir=$run" --set "reward.reference=[\"$ref\"]"
fi
say "evaluate sft and $name against $ref"
# The demo's evaluation settings with two systems: SFT and the run.
cfg=$run/evaluate.toml
demo_eval_config "$cfg" "$(basename "$RECIPE" .toml)=$run"
"$STYLERL_BIN" evaluate --config "$cfg" --set "name=$name" --set "out_dir=results/reference/$name" \
  --set "reward.reference=[\"$ref\"]" --set "baseline=sft"
