# Sourced by the study scripts (reference_study.sh, seed_study.sh).
# demo_eval_config CFG NAME=ADAPTER_DIR ...: writes CFG with the demo's evaluation settings
# (everything in configs/demo/evaluate.toml before its first [[systems]]), the SFT model
# (runs/demo/sft/merged) as system "sft", and one system per NAME on that model with its adapter.
demo_eval_config() {
  local cfg=$1 s
  shift
  sed '/^\[\[systems\]\]/,$d' configs/demo/evaluate.toml > "$cfg"
  cat >> "$cfg" <<EOT
[[systems]]
name = "sft"
kind = "model"
[systems.model]
path = "runs/demo/sft/merged"
EOT
  for s in "$@"; do
    cat >> "$cfg" <<EOT

[[systems]]
name = "${s%%=*}"
kind = "model"
[systems.model]
path = "runs/demo/sft/merged"
adapters = ["${s#*=}/adapter"]
EOT
  done
}
