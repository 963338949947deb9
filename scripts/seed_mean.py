#!/usr/bin/env python3
"""Seed-averaged differences from one `stylerl evaluate` outputs.jsonl.

Each recipe trained more than once is listed as NAME, NAME-s1, NAME-s2, ... (other seeds, or
the same seed on another float path); per held-out input the runs' values are averaged and the
baseline's value is subtracted, then a 95 % paired bootstrap interval over inputs is printed (the same resampling as `evaluate`: inputs drawn with
replacement). Averaging seeds removes much of the run-to-run noise that single-run tables
carry (docs/experiments.md, "Seed-to-seed noise").

A baseline that was itself trained several times (--baseline NAME with NAME-s1 present) is the
mean of its runs, so two recipes are compared run-mean against run-mean.

Several outputs.jsonl of evaluations with the same settings and inputs may be given (runs
evaluated at different times); a system present in more than one must have the same rows in
each (SFT, say), which also checks that the evaluations agree.

With --draws the files are sampling draws of the same systems (one evaluation per
`--set generation.seed=K`): file k's systems count as NAME-s{k-1}, so every system, the
baseline included, is its mean over draws.

usage: scripts/seed_mean.py results/seed_noise/outputs.jsonl [more.jsonl ...] [--baseline sft] [--resamples 2000] [--draws]
"""
import argparse
import json
import random
import sys
from collections import defaultdict

METRICS = ["style_similarity", "judge_encoder_style_similarity", "meaning_kept", "entity_f1", "not_rewritten", "edit_similarity", "words",
           "reader_checks.fluency_nll", "reader_checks.defective"]


def value(row, key):
    # "a.b": field b of the object a (the reader checks); booleans count as 0/1.
    head, _, rest = key.partition(".")
    if rest:
        v = (row.get(head) or {}).get(rest)
        return float(v) if isinstance(v, bool) else v
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
    ap.add_argument("outputs", nargs="+")
    ap.add_argument("--baseline", default="sft")
    ap.add_argument("--resamples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--draws", action="store_true",
                    help="the files are generation-seed draws of the same systems: file k's systems are NAME-s{k-1}")
    a = ap.parse_args()
    by = defaultdict(dict)
    seen_in = {}
    for j, path in enumerate(a.outputs):
        try:
            with open(path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError) as e:
            sys.exit(f"cannot read {path}: {e}: pass the outputs.jsonl an evaluation wrote")
        this = defaultdict(dict)
        for r in rows:
            name = r["system"] if not (a.draws and j) else f"{r['system']}-s{j}"
            this[name][r["index"]] = r
        for name, got in this.items():
            if name in by and by[name] != got:
                sys.exit(f"system {name!r} differs between {seen_in[name]} and {path}: "
                         "combine only evaluations with the same settings and inputs")
            by[name] = got
            seen_in.setdefault(name, path)
    files = " ".join(a.outputs)
    if a.baseline not in by:
        sys.exit(f"no system named {a.baseline!r} in {files}: pass --baseline NAME")
    groups = {}
    for s in by:
        runs = [s]
        k = 1
        while f"{s}-s{k}" in by:
            runs.append(f"{s}-s{k}")
            k += 1
        if len(runs) > 1:
            groups[s] = runs
    if not groups:
        sys.exit(f"no NAME / NAME-s1 pair of systems in {files}")
    # A baseline that is itself a recipe trained several times counts as the mean of its runs.
    base_runs = groups.pop(a.baseline, [a.baseline])
    label = a.baseline if len(base_runs) == 1 else f"{a.baseline} (mean of {len(base_runs)} runs)"
    print(f"| recipe (runs) | metric | mean of runs − {label} [95 %] |")
    print("|---|---|---|")

    def base_value(i, key):
        xs = [value(by[r][i], key) for r in base_runs]
        return None if None in xs else sum(xs) / len(xs)

    base_idx = set.intersection(*(set(by[r]) for r in base_runs))
    for name, runs in groups.items():
        idx = sorted(base_idx.intersection(*(set(by[r]) for r in runs)))
        for key in METRICS:
            vals = [([value(by[r][i], key) for r in runs], base_value(i, key)) for i in idx]
            vals = [(xs, b) for xs, b in vals if b is not None and None not in xs]
            if not vals:
                continue
            diffs = [sum(xs) / len(xs) - b for xs, b in vals]
            m, lo, hi = interval(diffs, a.resamples, a.seed)
            print(f"| {name} ({len(runs)}) | {key} | {m:+.3f} [{lo:+.3f}, {hi:+.3f}] (n = {len(diffs)}) |")

    # Style vector consistency is a corpus metric (one cosine per run, `evaluate`'s definition),
    # so it has no per-input mean: each run's value is recomputed on every resample of the
    # inputs and the runs' values are averaged. (Pooling the runs' counts instead would hide a
    # collapse, when each run collapses onto another reference.)
    print()
    print(f"| recipe (runs) | consistency, mean of runs [95 %] | − {label} [95 %] |")
    print("|---|---|---|")
    for name, runs in groups.items():
        idx = sorted(base_idx.intersection(*(set(by[r]) for r in runs)))
        rng = random.Random(a.seed)
        point = mean_consistency(by, runs, idx), mean_consistency(by, base_runs, idx)
        draws = []
        for _ in range(a.resamples):
            pick = [idx[rng.randrange(len(idx))] for _ in idx]
            c, b = mean_consistency(by, runs, pick), mean_consistency(by, base_runs, pick)
            if c is not None and b is not None:
                draws.append((c, c - b))
        if point[0] is None or point[1] is None or not draws:
            print(f"| {name} ({len(runs)}) | undefined (nothing rewritten) | — |")
            continue
        lo_c, hi_c = quantiles(sorted(d[0] for d in draws))
        lo_d, hi_d = quantiles(sorted(d[1] for d in draws))
        print(f"| {name} ({len(runs)}) | {point[0]:.3f} [{lo_c:.3f}, {hi_c:.3f}] | "
              f"{point[0] - point[1]:+.3f} [{lo_d:+.3f}, {hi_d:+.3f}] |")


def quantiles(xs):
    return xs[int(0.025 * len(xs))], xs[min(len(xs) - 1, int(0.975 * len(xs)))]


def mean_consistency(by, runs, idx):
    """Mean over `runs` of each run's consistency on inputs `idx`; None if any is undefined."""
    xs = [consistency(by[r], idx) for r in runs]
    return None if None in xs else sum(xs) / len(xs)


def consistency(rows, idx):
    """Cosine of the inputs' and outputs' closest-reference counts over the rewritten samples
    among inputs `idx` (repeats count again); None when undefined."""
    cin, cout = defaultdict(float), defaultdict(float)
    for i in idx:
        row = rows[i]
        if row.get("not_rewritten"):
            continue
        for s in row.get("input_sentences") or []:
            cin[s["reference"]] += 1
        for s in row.get("output_sentences") or []:
            cout[s["reference"]] += 1
    dot = sum(v * cout.get(k, 0.0) for k, v in cin.items())
    na = sum(v * v for v in cin.values()) ** 0.5
    nb = sum(v * v for v in cout.values()) ** 0.5
    return None if na == 0 or nb == 0 else dot / (na * nb)


if __name__ == "__main__":
    main()
