#!/usr/bin/env python3
"""Checks the hand-written datasets: JSON per line, required fields, minimum counts,
domain balance, no duplicate texts within or across files, and that every SFT rewrite
keeps the input's numbers, times, e-mails, URLs, @handles and #tags (and invents none).
Usage: python3 datasets/validate.py   (exit 1 on any error; capitalised-word drift is a warning)
"""
import json, re, sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DOMAINS = {"email", "text_message", "chat", "social_post"}
# file -> (required fields, minimum lines, has domain)
FILES = {
    "sft/train.jsonl": (("domain", "input", "output"), 130, True),
    "sft/eval.jsonl": (("domain", "input", "output"), 25, True),
    "rewrite/train.jsonl": (("domain", "text"), 300, True),
    "rewrite/heldout.jsonl": (("domain", "text"), 60, True),
    "qa/train.jsonl": (("question", "answer"), 60, False),
    "qa/eval.jsonl": (("question", "answer"), 12, False),
}
ENTITY = re.compile(
    r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"          # e-mail
    r"|(?:https?://)?[\w-]+(?:\.[a-z]{2,})+(?:/[\w./-]*)?"  # URL / domain
    r"|[@#]\w+"                               # @handle, #tag
    r"|[$£€]?\d[\d,.:/]*\d|[$£€]?\d"          # numbers, money, times, dates
)
errors, warnings = [], []


def norm(t):
    return " ".join(t.lower().split())


def entities(t):
    return Counter(m.rstrip(".,") for m in ENTITY.findall(t))


def inner_caps(t):
    """Capitalised words that do not start a sentence or line: a rough proxy for names."""
    out = set()
    for sent in re.split(r"(?<=[.!?:])\s+|\n+", t):
        words = re.findall(r"[A-Za-z][\w'&-]*", sent)
        out.update(w for w in words[1:] if w[0].isupper() and w not in {"I", "I'm", "I'll", "I've", "I'd"})
    return out


data = {}
for name, (fields, minimum, has_domain) in FILES.items():
    rows = []
    path = ROOT / name
    if not path.exists():
        errors.append(f"{name}: missing")
        continue
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(f"{name}:{n}: not JSON ({e})")
            continue
        for f in fields:
            if not isinstance(row.get(f), str) or not row[f].strip():
                errors.append(f"{name}:{n}: field '{f}' missing or empty")
        if has_domain and row.get("domain") not in DOMAINS:
            errors.append(f"{name}:{n}: unknown domain {row.get('domain')!r}")
        rows.append(row)
    if len(rows) < minimum:
        errors.append(f"{name}: {len(rows)} lines, need >= {minimum}")
    if has_domain:
        c = Counter(r.get("domain") for r in rows)
        if max(c.values()) - min(c.values()) > max(2, max(c.values()) // 10) or len(c) != 4:
            errors.append(f"{name}: domains unbalanced {dict(c)}")
    data[name] = rows

# duplicates: every text that a model reads as input or target, across all files
seen = {}
for name, rows in data.items():
    for n, row in enumerate(rows, 1):
        for f in ("input", "output", "text", "question"):
            if f in row:
                key = norm(row[f])
                if key in seen:
                    errors.append(f"{name}:{n}: {f} duplicates {seen[key]}")
                seen[key] = f"{name}:{n}"

# SFT rewrites keep entities and actually rewrite
for name in ("sft/train.jsonl", "sft/eval.jsonl"):
    for n, row in enumerate(data.get(name, []), 1):
        i, o = row.get("input", ""), row.get("output", "")
        if norm(i) == norm(o):
            errors.append(f"{name}:{n}: output equals input")
        ei, eo = entities(i), entities(o)
        if ei != eo:
            errors.append(f"{name}:{n}: entities differ: lost {sorted((ei - eo).elements())}, added {sorted((eo - ei).elements())}")
        lost = {w for w in inner_caps(i) if w not in o}
        if lost:
            warnings.append(f"{name}:{n}: capitalised words not in output: {sorted(lost)}")

for w in warnings:
    print("warning:", w)
for e in errors:
    print("error:", e)
for name, rows in data.items():
    doms = Counter(r["domain"] for r in rows if "domain" in r)
    print(f"{name:24} {len(rows):4d}  {dict(sorted(doms.items())) if doms else ''}")
sys.exit(1 if errors else 0)
