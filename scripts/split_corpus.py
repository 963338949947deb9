#!/usr/bin/env python3
"""Splits the rewriting corpus (datasets/corpus/part_*.jsonl, as written) into train / dev / test
by INPUT: every rewrite of one input goes to the same split, chosen by a hash of the input text,
so no input is shared between splits. About 88 % / 6 % / 6 %. Deterministic; re-running gives
the same files.

    python3 scripts/split_corpus.py   # datasets/corpus/part_*.jsonl → {train,dev,test}.jsonl
New writing goes into datasets/corpus/part_*.jsonl together with the current splits' rows.
"""
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT / "datasets" / "corpus"


def split_of(text: str) -> str:
    h = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) % 100
    return "test" if h < 6 else "dev" if h < 12 else "train"


def main() -> int:
    # New writing arrives as part_*.jsonl; without any, the splits themselves are re-split
    # (a no-op: the split of a row depends on its input alone).
    parts = sorted(DIR.glob("part_*.jsonl")) or [DIR / f"{n}.jsonl" for n in ("train", "dev", "test")]
    if not all(p.exists() for p in parts):
        print(f"no {DIR}/part_*.jsonl nor train/dev/test.jsonl", file=sys.stderr)
        return 1
    out = {"train": [], "dev": [], "test": []}
    for p in parts:
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            row = json.loads(line)
            out[split_of(row["input"])].append(row)
    for name, rows in out.items():
        path = DIR / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path.relative_to(ROOT)}: {len(rows)} pairs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
