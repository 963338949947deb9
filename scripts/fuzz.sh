#!/usr/bin/env bash
# Runs the fuzz targets of tests/fuzz.rs with many cases (CI runs 64 each): every loader of
# user files must return Ok or Err on arbitrary and mutated input, never panic.
#   scripts/fuzz.sh [CASES]   (default 20000 a target, a sixth of it for fuzz_gguf_mutated, which
#   imports every GGUF that parses at ~30 ms a case; each target is stopped after 120 s)
# Prints cases, time and result per target; exits non-zero if any target failed. A failure
# prints proptest's minimal input: keep it as a named regression test in tests/fuzz.rs.
set -uo pipefail
source "$(dirname "$0")/env.sh"
cd "$ROOT"
cases="${1:-20000}"
limit=120
cargo test --release --test fuzz --no-run --quiet || exit 1
failed=()
for t in fuzz_gguf_mutated fuzz_gguf_arbitrary fuzz_adapter_weights_mutated \
         fuzz_adapter_config_edited fuzz_config_overrides fuzz_config_text_mutated \
         fuzz_dataset_mutated fuzz_dataset_arbitrary; do
  n=$cases
  [[ $t == fuzz_gguf_mutated ]] && n=$((cases / 6))
  start=$(date +%s.%N)
  PROPTEST_CASES="$n" timeout "$limit" \
    cargo test --release --quiet --test fuzz "$t" -- --exact > "target/fuzz-$t.log" 2>&1
  rc=$?
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  case $rc in
    0) result="ok" ;;
    124) result="stopped at ${limit}s without a failure (fewer than $n cases)" ;;
    *) result="FAILED (see target/fuzz-$t.log)"; failed+=("$t") ;;
  esac
  printf '[fuzz] %-30s %6s cases  %6.1f s  %s\n' "$t" "$n" "$secs" "$result"
done
if ((${#failed[@]})); then
  printf '[fuzz] failed: %s\n' "${failed[@]}"
  exit 1
fi
