#!/usr/bin/env python3
"""Seed-averaged differences from one `stylerl evaluate` outputs.jsonl.

Each recipe trained with two seeds is listed as NAME and NAME-s1; per held-out input the two
seeds' values are averaged and the baseline's value is subtracted, then a 95 % paired bootstrap
interval over inputs is printed (the same resampling as `evaluate`: inputs drawn with
replacement). Averaging seeds removes much of the run-to-run noise that single-run tables
carry (README, "Seed-to-seed noise").

usage: scripts/seed_mean.py results/seed_noise/outputs.jsonl [--baseline sft] [--resamples 2000]
"""
import argparse
import json
import random
import sys
from collections import defaultdict

METRICS = ["style_similarity", "judge_encoder_style_similarity", "meaning_kept", "entity_f1", "words"]


def value(row, key):
    v = row.get(key)
    if isinstance(v, dict):  # judge encoders: {name: value}; one judge is assumed
        v = next(iter(v.values()), None)
    return v


def interval(diffs, resamples, seed):
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    lo = means[int(0.025 * resamples)]
    hi = means[min(resamples - 1, int(0.975 * resamples))]
    return sum(diffs) / n, lo, hi


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("outputs")
    ap.add_argument("--baseline", default="sft")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    by = defaultdict(dict)
    with open(a.outputs) as f:
        for line in f:
            r = json.loads(line)
            by[r["system"]][r["index"]] = r
    if a.baseline not in by:
        sys.exit(f"no system named {a.baseline!r} in {a.outputs}: pass --baseline NAME")
    pairs = [s for s in by if f"{s}-s1" in by]
    if not pairs:
        sys.exit(f"no NAME / NAME-s1 pair of systems in {a.outputs}")
    print(f"| recipe (2 seeds) | metric | mean of seeds − {a.baseline} [95 %] |")
    print("|---|---|---|")
    for name in pairs:
        s0, s1, base = by[name], by[f"{name}-s1"], by[a.baseline]
        idx = sorted(set(s0) & set(s1) & set(base))
        for key in METRICS:
            vals = [(value(s0[i], key), value(s1[i], key), value(base[i], key)) for i in idx]
            vals = [v for v in vals if None not in v]
            if not vals:
                continue
            diffs = [(x + y) / 2 - b for x, y, b in vals]
            m, lo, hi = interval(diffs, a.resamples, a.seed)
            print(f"| {name} | {key} | {m:+.3f} [{lo:+.3f}, {hi:+.3f}] (n = {len(diffs)}) |")


if __name__ == "__main__":
    main()
