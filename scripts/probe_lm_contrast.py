#!/usr/bin/env python3
"""Probe: does an in-context likelihood ratio under the frozen base model agree with blind
readers' style verdicts? (results/reader-agreement/README.md; formula in docs/experiments.md.)

For an output y and a reference R, with C_R = a header and K sentences of R, and C_N = the
same header and K inputs from datasets/rewrite/train.jsonl (everyday text, no style asked for):

    s(y) = 1/|y| · Σ_t [ log p(y_t | C_R, y_<t) − log p(y_t | C_N, y_<t) ]

averaged over DRAWS draws of the two contexts. Token sums come from `stylerl perplexity`
(sum over C+y minus sum over C; C ends in a newline, so the token boundary is clean).
Reads every reviewed sheet under results/*/review/ (key beside the folder, verdicts inside,
outputs.jsonl two folders up) and prints, per evaluation, the share of decided style verdicts
where the reader's pick has the higher s. Needs the release binary and models/ (scripts/setup.sh).

    python3 scripts/probe_lm_contrast.py [--k 8] [--draws 2] [--seed 7] [--threads 2]
"""
import argparse, collections, glob, json, os, random, re, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The reference each evaluation's sheets were read against.
REF = {"demo-quick-warmup": "whimsical_tale", "corpus-sft": "whimsical_tale", "examples-whimsical": "whimsical_tale",
       "examples-chat": "chat_messages", "examples-emails": "work_emails"}
HEAD = "Messages written by one person:\n\n"


def pairs():
    """(evaluation, reader's pick record, other record) for every decided style verdict."""
    out = []
    for v in sorted(glob.glob(f"{ROOT}/results/*/review/*/verdicts.jsonl")):
        sheet = os.path.dirname(v)
        ev = os.path.basename(os.path.dirname(os.path.dirname(sheet)))
        key = json.load(open(sheet + ".key.json"))
        rec = {}
        for line in open(os.path.join(os.path.dirname(os.path.dirname(sheet)), "outputs.jsonl")):
            d = json.loads(line)
            rec[(d["system"], d["index"])] = d
        items = {it["id"]: it for it in key["items"]}
        for line in open(v):
            x = json.loads(line)
            if x["style"] not in ("A", "B"):
                continue
            it = items[x["id"]]
            win, lose = (it["a"], it["b"]) if x["style"] == "A" else (it["b"], it["a"])
            out.append((ev, rec[(win, it["index"])], rec[(lose, it["index"])]))
    return out


def sentences(path):
    out = []
    for para in open(path).read().split("\n\n"):
        para = " ".join(para.split())
        for s in re.split(r'(?<=[.!?])\s+(?=[A-Z"“])', para):
            if len(s.split()) >= 3:
                out.append(s)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--draws", type=int, default=2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    rows = pairs()
    neutral = [json.loads(l)["text"] for l in open(f"{ROOT}/datasets/rewrite/train.jsonl")][:300]
    rng = random.Random(a.seed)
    ctx = {}
    for r in sorted(set(REF.values())):
        ss = sentences(f"{ROOT}/datasets/reference/{r}.txt")
        ctx[r] = [(HEAD + "\n".join(rng.sample(ss, a.k)) + "\n", HEAD + "\n".join(rng.sample(neutral, a.k)) + "\n")
                  for _ in range(a.draws)]
    todo = sorted({(REF[ev], d["output"]) for ev, w, l in rows for d in (w, l)})
    texts, idx = [], {}
    for ref, y in todo:
        for pair in ctx[ref]:
            for c in pair:
                for t in (c, c + y):
                    if t not in idx:
                        idx[t] = len(texts)
                        texts.append(t)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for t in texts:
            f.write(json.dumps(t) + "\n")
    res = subprocess.run([f"{ROOT}/target/release/stylerl", "perplexity", "--model", f"{ROOT}/models/smollm2-135m-instruct",
                          "--input", f.name, "--batch-size", "8", "--threads", str(a.threads)], capture_output=True, text=True)
    os.unlink(f.name)
    if res.returncode:
        sys.exit(res.stderr.strip())
    vals = [json.loads(l) for l in res.stdout.splitlines()]

    def total(t):  # summed NLL of tokens 2..n, and n
        v = vals[idx[t]]
        return v["mean_nll"] * (v["tokens"] - 1), v["tokens"]

    score = {}
    for ref, y in todo:
        s = []
        for c_ref, c_neu in ctx[ref]:
            (a1, n1), (a0, n0) = total(c_ref + y), total(c_ref)
            (b1, _), (b0, _) = total(c_neu + y), total(c_neu)
            s.append(((b1 - b0) - (a1 - a0)) / max(1, n1 - n0))
        score[(ref, y)] = sum(s) / len(s)
    per = collections.defaultdict(lambda: [0, 0])
    for ev, w, l in rows:
        sw, sl = score[(REF[ev], w["output"])], score[(REF[ev], l["output"])]
        if sw != sl:
            per[ev][0] += sw > sl
            per[ev][1] += 1
    agree, n = sum(p[0] for p in per.values()), sum(p[1] for p in per.values())
    print(f"in-context likelihood ratio, K={a.k}, draws={a.draws}, seed={a.seed}: reader's style pick scores higher in "
          f"{agree}/{n} = {agree / n:.2f} of decided items")
    for ev, (k, m) in sorted(per.items()):
        print(f"  {ev}: {k}/{m} = {k / m:.2f}")


if __name__ == "__main__":
    main()
