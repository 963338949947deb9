#!/usr/bin/env python3
"""Sentences per second: `stylerl embed` vs sentence-transformers on the same sentences and
batch size, in the same run. Prints each rate and their ratio (stylerl / sentence-transformers).

    .venv/bin/python scripts/bench_encoder.py [--encoder models/all-minilm-l6-v2] [--n 512] [--batch-size 32]

"encode" times exclude model loading (stylerl reports its own encode time on stderr);
"end-to-end" includes loading (stylerl: the whole process; sentence-transformers: constructor + encode).
Each side runs --repeats times and the fastest run counts.
"""
import argparse
import json
import os
import random
import re
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ["HF_HUB_OFFLINE"] = "1"

WORDS = (
    "the a of and to in is was for on that with as by at from his her they we you it this an be "
    "style rewrite sentence model reward river mountain coffee letter quietly suddenly because however "
    "yesterday tomorrow beautiful terrible Paris London Alice Bob 42 1999 €10 café naïve über"
).split()


def make_sentences(n, seed=0):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        k = rng.choice([3, 5, 8, 12, 16, 24, 32, 48])
        words = [rng.choice(WORDS) for _ in range(k)]
        for i in range(1, k, rng.randint(4, 9)):
            words[i] += rng.choice([",", ";", ":", ""])
        out.append(" ".join(words).capitalize() + rng.choice([".", "!", "?", "..."]))
    return out


def bench_stylerl(binary, encoder, path, batch_size, device):
    env = dict(os.environ, STYLERL_LOG="info", STYLERL_PROGRESS="0")
    env.pop("LD_LIBRARY_PATH", None)
    t0 = time.perf_counter()
    p = subprocess.run(
        [binary, "embed", "--encoder", encoder, "--input", path, "--batch-size", str(batch_size), "--device", device],
        capture_output=True, text=True, env=env,
    )
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"stylerl embed failed:\n{p.stderr}")
    m = re.search(r"encoded (\d+) sentences in ([0-9.]+) s", p.stderr)
    if not m:
        raise SystemExit(f"no timing line in stylerl's log:\n{p.stderr}")
    return float(m.group(2)), wall, [json.loads(line) for line in p.stdout.splitlines()]


def bench_st(encoder, sentences, batch_size, device):
    from sentence_transformers import SentenceTransformer

    t0 = time.perf_counter()
    model = SentenceTransformer(encoder, device=device)
    t1 = time.perf_counter()
    emb = model.encode(sentences, batch_size=batch_size)
    t2 = time.perf_counter()
    return t2 - t1, t2 - t0, emb


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--encoder", default=str(ROOT / "models" / "all-minilm-l6-v2"))
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bin", default=os.environ.get("STYLERL_BIN", str(ROOT / "target" / "release" / "stylerl")))
    a = ap.parse_args()

    import torch

    sentences = make_sentences(a.n)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sentences.jsonl"
        path.write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in sentences), encoding="utf-8")
        # Interleaved, so a burst of load from other processes hits both sides alike.
        ours, theirs = [], []
        for _ in range(a.repeats):
            ours.append(bench_stylerl(a.bin, a.encoder, str(path), a.batch_size, a.device))
            theirs.append(bench_st(a.encoder, sentences, a.batch_size, a.device))
    assert all(len(r[2]) == a.n for r in ours + theirs), "every run must embed every sentence"
    import numpy as np

    x, y = np.asarray(ours[-1][2], dtype=np.float64), np.asarray(theirs[-1][2], dtype=np.float64)
    cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))

    ours_enc, ours_wall = min(r[0] for r in ours), min(r[1] for r in ours)
    st_enc, st_wall = min(r[0] for r in theirs), min(r[1] for r in theirs)
    print(f"encoder {a.encoder}  sentences {a.n}  batch {a.batch_size}  device {a.device}  "
          f"torch threads {torch.get_num_threads()}  best of {a.repeats}")
    print(f"agreement   cosine stylerl vs sentence-transformers: min {cos.min():.7f} mean {cos.mean():.7f}")
    print(f"encode      stylerl {a.n / ours_enc:8.1f} sent/s   sentence-transformers {a.n / st_enc:8.1f} sent/s   "
          f"ratio {st_enc / ours_enc:.2f}x")
    print(f"end-to-end  stylerl {a.n / ours_wall:8.1f} sent/s   sentence-transformers {a.n / st_wall:8.1f} sent/s   "
          f"ratio {st_wall / ours_wall:.2f}x")


if __name__ == "__main__":
    main()
