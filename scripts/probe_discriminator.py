#!/usr/bin/env python3
"""Probe: does a classifier of "the reference's sentences vs everyday text" see the style blind
readers see? (results/reader-agreement/README.md.) Never trained on any verdict.

Per reference R, a logistic regression (class-balanced, C = 1) on tf-idf features — character
2–4-grams within word boundaries (sublinear tf, case kept) and words and punctuation marks —
separates R's sentences (label 1) from 1,500 everyday texts (label 0: inputs and rewrites of
datasets/corpus/train.jsonl, shuffled with seed 0). An output's score is the mean decision value
over its sentences:

    s(y) = 1/|S(y)| · Σ_{x ∈ S(y)} (w · φ(x) + b)

For every decided style verdict of every reviewed sheet under results/ (sheet.json beside
verdicts.jsonl; the reread copies are skipped), it counts how often the reader's pick has the
higher s, over all items and over items where both outputs are rewrites (difflib ratio to the
input < 0.95; an approximation of the evaluation's edit similarity), and beside it how often
the pick is the output closer to the input.

    .venv/bin/python scripts/probe_discriminator.py        (scikit-learn comes with sentence-transformers, which scripts/test.sh installs)
"""
import collections
import difflib
import glob
import json
import os
import random
import re

import numpy as np
from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCES = ["whimsical_tale", "chat_messages", "work_emails"]
NEGATIVES = 1500


def sentences(text):
    out = []
    for para in text.split("\n\n"):
        para = " ".join(para.split())
        for s in re.split(r'(?<=[.!?])\s+(?=[A-Z"“])', para):
            if len(s.split()) >= 2:
                out.append(s)
    return out


def reference_of(sheet):
    """The reference file whose text holds the sheet's excerpt."""
    head = sheet["reference_excerpt"][0][:40]
    for name in REFERENCES:
        if head in open(f"{ROOT}/datasets/reference/{name}.txt", encoding="utf-8").read():
            return name
    raise SystemExit(f"sheet {sheet['sheet_id']}: its excerpt is in none of {REFERENCES}")


def decided_style_verdicts():
    """(sheet folder, sheet, sheet item, "A" or "B") for every decided style verdict of every
    reviewed sheet under results/ that keeps its sheet.json (the reread copies do not)."""
    for v in sorted(glob.glob(f"{ROOT}/results/**/verdicts.jsonl", recursive=True)):
        folder = os.path.dirname(v)
        if not os.path.exists(f"{folder}/sheet.json"):
            continue
        sheet = json.load(open(f"{folder}/sheet.json", encoding="utf-8"))
        items = {it["id"]: it for it in sheet["items"]}
        for line in open(v, encoding="utf-8"):
            x = json.loads(line)
            if x["style"] in ("A", "B"):
                yield folder, sheet, items[x["id"]], x["style"]


def everyday():
    rows = [json.loads(l) for l in open(f"{ROOT}/datasets/corpus/train.jsonl", encoding="utf-8")]
    texts = [r["input"] for r in rows] + [r["output"] for r in rows]
    random.Random(0).shuffle(texts)
    return texts[:NEGATIVES]


def classifier(name, negatives):
    pos = sentences(open(f"{ROOT}/datasets/reference/{name}.txt", encoding="utf-8").read())
    x, y = pos + negatives, [1] * len(pos) + [0] * len(negatives)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True, lowercase=False)
    words = TfidfVectorizer(analyzer="word", sublinear_tf=True, token_pattern=r"[A-Za-z']+|[!?.,;:—…\"“”]")
    m = hstack([chars.fit_transform(x), words.fit_transform(x)]).tocsr()
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000).fit(m, y)
    return lambda ts: clf.decision_function(hstack([chars.transform(ts), words.transform(ts)]).tocsr())


def main():
    negatives = everyday()
    models = {}

    def score(name, text):
        if name not in models:
            models[name] = classifier(name, negatives)
        return float(np.mean(models[name](sentences(text) or [text])))

    def ratio(a, b):
        return difflib.SequenceMatcher(None, a, b).ratio()

    # per sheet: [agree, decided, agree both-rewrote, decided both-rewrote, closer, closer both-rewrote]
    per = collections.defaultdict(lambda: [0] * 6)
    for folder, sheet, it, pick in decided_style_verdicts():
        name = reference_of(sheet)
        tally = per[os.path.relpath(folder, f"{ROOT}/results")]
        win, lose = (it["a"], it["b"]) if pick == "A" else (it["b"], it["a"])
        agree = score(name, win) > score(name, lose)
        closer = ratio(it["input"], win) > ratio(it["input"], lose)
        both = ratio(it["input"], it["a"]) < 0.95 and ratio(it["input"], it["b"]) < 0.95
        tally[0] += agree
        tally[1] += 1
        tally[4] += closer
        if both:
            tally[2] += agree
            tally[3] += 1
            tally[5] += closer

    def share(k, n):
        return f"{k}/{n} = {k / n:.2f}" if n else "—"

    print("| sheet | classifier, all decided | classifier, both rewrote | closer to input, all | closer, both rewrote |")
    print("|---|---|---|---|---|")
    for k, t in sorted(per.items()):
        print(f"| {k} | {share(t[0], t[1])} | {share(t[2], t[3])} | {share(t[4], t[1])} | {share(t[5], t[3])} |")
    tot = [sum(t[i] for t in per.values()) for i in range(6)]
    print(f"| **all {len(per)} sheets** | {share(tot[0], tot[1])} | {share(tot[2], tot[3])} | "
          f"{share(tot[4], tot[1])} | {share(tot[5], tot[3])} |")


if __name__ == "__main__":
    main()
