#!/usr/bin/env python3
"""Builds the example-conditioned warm-up data: each corpus pair's user turn shows K sentences
written in the target register (taken from OTHER inputs' rewrites in the same register), then
asks for the rewrite, in exactly the prompt `evaluate` gives a prompted system
(eval::config::DEFAULT_PROMPTED_TEMPLATE). So the warm-up learns to rewrite faithfully *in the
manner of the sentences shown*, and RL, evaluation and `rewrite` later show the person's own
reference sentences in the same slots.

Why: a 135M policy prompted with only "Rewrite the following text" rarely samples a reference's
manner, so RL has no style to reinforce (docs/experiments.md). Shown examples put the manner
in reach.

    python3 scripts/make_example_sft.py            # datasets/corpus/{train,dev}.jsonl
                                                   # → datasets/corpus/{train,dev}_examples.jsonl
Deterministic (seeded per split); re-running gives the same files. Examples never come from a
rewrite of the same input (no answer leaks into the prompt) and never from another split.
"""
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DIR = ROOT / "datasets" / "corpus"
K = 4  # examples shown; the same count the configs give GRPO and evaluation
# Must equal DEFAULT_PROMPTED_TEMPLATE in src/eval/config.rs (tests/corpus_facts.rs checks it).
TEMPLATE = (
    "Here are example sentences written in a particular style:\n{examples}\n\n"
    "Rewrite the following text in that style. Keep its meaning and every name, number and date. "
    "Reply with the rewritten text only.\n\n{input}"
)


def sentences(text: str) -> list[str]:
    # A plain splitter is enough for example picking: the corpus rewrites are short.
    parts = re.split(r"(?<=[.!?…])\s+|\n+", text.strip())
    return [p.strip() for p in parts if len(p.strip().split()) >= 3]


def build(split: str, seed: int) -> list[dict]:
    rows = [json.loads(l) for l in (DIR / f"{split}.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    pool: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        for s in sentences(r["output"]):
            pool.setdefault(r["register"], []).append((r["input"], s))
    rng = random.Random(seed)
    out = []
    for r in rows:
        cands = [s for (inp, s) in pool[r["register"]] if inp != r["input"]]
        if len(cands) < K:
            sys.exit(f"{split}: register {r['register']} has fewer than {K} example sentences")
        ex = rng.sample(cands, K)
        user = TEMPLATE.replace("{examples}", "\n".join("- " + e.replace("\n", " ") for e in ex)).replace(
            "{input}", r["input"]
        )
        out.append({"kind": r["kind"], "register": r["register"],
                    "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": r["output"]}]})
    return out


def main() -> int:
    for split, seed in (("train", 1), ("dev", 2)):
        rows = build(split, seed)
        path = DIR / f"{split}_examples.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        print(f"{path.relative_to(ROOT)}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
