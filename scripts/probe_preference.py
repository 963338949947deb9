#!/usr/bin/env python3
"""Probe: do the offline style scores predict blind readers' style picks once faithfulness is
held fixed? (results/reader-agreement/README.md, "Style scores beside faithfulness".)

Every decided style verdict of every reviewed sheet under results/ (key beside the sheet folder,
the outputs from a `*.outputs.jsonl` in the review folder or the evaluation's outputs.jsonl two
folders up) becomes one pair (A, B) with feature differences d = f(A) − f(B):

    faithfulness: edit similarity to the input, meaning kept, entity F1, defective (detectors),
                  fluency NLL, log(1 + words)
    style:        stylometric similarity (the reward's), charstyle similarity, and the
                  reference-vs-everyday classifier of scripts/probe_discriminator.py

A logistic regression without intercept, P(reader picks A) = σ(w · d), fitted on each pair and
its mirror (−d, flipped label), is scored leave-one-evaluation-out: trained on every other
results/<evaluation>/ folder's sheets, tested on the one left out, so no tested sheet was fitted
on. It compares faithfulness features alone, style features alone and both, on all decided items
and on items where both outputs are rewrites (edit similarity < 0.95), pairs the predictions of
"faithfulness" and "both" on the same items (sign test), and prints the standardised weights of
the model fitted on all items.

    .venv/bin/python scripts/probe_preference.py
"""
import collections
import glob
import json
import math
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import probe_discriminator as disc  # noqa: E402

ROOT = disc.ROOT
FAITH = ["edit", "meaning", "entity_f1", "defective", "nll", "log_words"]
STYLE = ["stylometric", "charstyle", "classifier"]


def outputs_for(folder, key):
    """The outputs.jsonl rows (by system, index) that hold both systems of every item."""
    review = os.path.dirname(folder)
    for path in sorted(glob.glob(f"{review}/*.outputs.jsonl")) + [os.path.join(os.path.dirname(review), "outputs.jsonl")]:
        if not os.path.exists(path):
            continue
        rec = {}
        for line in open(path, encoding="utf-8"):
            d = json.loads(line)
            rec[(d["system"], d["index"])] = d
        if all((it[s], it["index"]) in rec for it in key["items"] for s in ("a", "b")):
            return rec
    raise SystemExit(f"{folder}: no outputs file holds both systems of every item")


def pairs():
    negatives, models = disc.everyday(), {}

    def classifier(ref, text):
        if ref not in models:
            models[ref] = disc.classifier(ref, negatives)
        return float(np.mean(models[ref](disc.sentences(text) or [text])))

    def features(o, ref):
        rc = o.get("reader_checks") or {}
        return {"edit": o["edit_similarity"], "meaning": o.get("meaning_kept", 0.0), "entity_f1": o["entity_f1"],
                "defective": float(rc.get("defective", False)), "nll": rc.get("fluency_nll", 0.0),
                "log_words": math.log1p(o["words"]), "stylometric": o["style_similarity"],
                "charstyle": (o.get("judge_encoder_style_similarity") or {}).get("charstyle", 0.0),
                "classifier": classifier(ref, o["output"])}

    out, keys = [], {}
    for folder, sheet, item, pick in disc.decided_style_verdicts():
        if not os.path.exists(folder + ".key.json"):
            continue
        if folder not in keys:
            key = json.load(open(folder + ".key.json", encoding="utf-8"))
            keys[folder] = ({it["id"]: it for it in key["items"]}, outputs_for(folder, key))
        items, rec = keys[folder]
        ref = disc.reference_of(sheet)
        it = items[item["id"]]
        a, b = rec[(it["a"], it["index"])], rec[(it["b"], it["index"])]
        fa, fb = features(a, ref), features(b, ref)
        both = a["edit_similarity"] < 0.95 and b["edit_similarity"] < 0.95
        evaluation = os.path.relpath(folder, f"{ROOT}/results").split(os.sep)[0]
        out.append((evaluation, {k: fa[k] - fb[k] for k in fa}, int(pick == "A"), both))
    return out


def fit(rows, feats):
    x = np.array([[r[1][k] for k in feats] for r in rows])
    y = np.array([r[2] for r in rows])
    return LogisticRegression(C=1.0, fit_intercept=False, max_iter=1000).fit(np.vstack([x, -x]), np.concatenate([y, 1 - y]))


def held_out(rows, feats):
    """Per item, whether the model fitted without its evaluation predicts the reader's pick."""
    right = []
    for g in sorted({r[0] for r in rows}):
        test = [r for r in rows if r[0] == g]
        m = fit([r for r in rows if r[0] != g], feats)
        got = m.predict(np.array([[r[1][k] for k in feats] for r in test]))
        right += list(got == np.array([r[2] for r in test]))
    return np.array(right)


def wilson(k, n, z=1.96):
    p = k / n
    c, h = (p + z * z / 2 / n) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / 4 / n / n) / (1 + z * z / n)
    return c - h, c + h


def main():
    rows = pairs()
    print(f"{len(rows)} decided style verdicts from {len({r[0] for r in rows})} evaluations: "
          + ", ".join(f"{k} {v}" for k, v in sorted(collections.Counter(r[0] for r in rows).items())))
    print("\n| items | faithfulness | style scores | both | right only with style scores / only without (sign p) |")
    print("|---|---|---|---|---|")
    for name, sel in [("all decided", lambda r: True), ("both rewrote", lambda r: r[3])]:
        sub = [r for r in rows if sel(r)]
        res = {label: held_out(sub, feats) for label, feats in [("f", FAITH), ("s", STYLE), ("b", FAITH + STYLE)]}
        cells = []
        for label in "fsb":
            k, n = int(res[label].sum()), len(res[label])
            lo, hi = wilson(k, n)
            cells.append(f"{k}/{n} = {k / n:.3f} [{lo:.3f}, {hi:.3f}]")
        gain, loss = int((res["b"] & ~res["f"]).sum()), int((res["f"] & ~res["b"]).sum())
        n = gain + loss
        p = min(1.0, 2 * sum(math.comb(n, i) for i in range(min(gain, loss) + 1)) / 2 ** n) if n else 1.0
        print(f"| {name} | " + " | ".join(cells) + f" | {gain} / {loss} (p {p:.4f}) |")
    x = np.array([[r[1][k] for k in FAITH + STYLE] for r in rows])
    sd = x.std(0)
    m = fit([(r[0], {k: r[1][k] / s for k, s in zip(FAITH + STYLE, sd)}, r[2], r[3]) for r in rows], FAITH + STYLE)
    print("\nstandardised weights (all items; positive = the reader picks the output with more of it):")
    print(", ".join(f"{k} {w:+.2f}" for k, w in zip(FAITH + STYLE, m.coef_[0])))


if __name__ == "__main__":
    main()
