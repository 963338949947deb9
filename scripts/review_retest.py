#!/usr/bin/env python3
"""Two blind readings of the same sheet: how often do the readers agree?

Per dimension: of the items both readers decided (A or B), the share where they picked the
same output; exact agreement over all items (A, B, tie); Cohen's kappa over the three choices,
    kappa = (p_o − p_e) / (1 − p_e),  p_e = Σ_c p_1(c) · p_2(c);
and the two readers' "seriously defective" marks cross-counted.

    python3 scripts/review_retest.py FIRST/verdicts.jsonl SECOND/verdicts.jsonl
"""
import collections, json, sys


def load(path):
    out = {}
    for line in open(path):
        if line.strip():
            v = json.loads(line)
            out[v["id"]] = v
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: review_retest.py FIRST/verdicts.jsonl SECOND/verdicts.jsonl")
    one, two = load(sys.argv[1]), load(sys.argv[2])
    if {v["sheet_id"] for v in one.values()} != {v["sheet_id"] for v in two.values()}:
        sys.exit("the two verdict files are for different sheets")
    ids = sorted(set(one) & set(two))
    print(f"{len(ids)} items read twice")
    print("| dimension | both decided | same pick | exact agreement (A/B/tie) | Cohen's kappa |")
    print("|---|---|---|---|---|")
    for d in ("style", "meaning", "fluency"):
        both = [i for i in ids if one[i][d] in ("A", "B") and two[i][d] in ("A", "B")]
        same = sum(one[i][d] == two[i][d] for i in both)
        p_o = sum(one[i][d] == two[i][d] for i in ids) / len(ids)
        p_e = sum((sum(one[i][d] == c for i in ids) / len(ids)) * (sum(two[i][d] == c for i in ids) / len(ids))
                  for c in ("A", "B", "tie"))
        kappa = (p_o - p_e) / (1 - p_e) if p_e < 1 else float("nan")
        share = f"{same / len(both):.2f}" if both else "n/a"
        print(f"| {d} | {len(both)} | {same} ({share}) | {p_o:.2f} | {kappa:.2f} |")
    marks = collections.Counter()
    for i in ids:
        for k in ("a_defective", "b_defective"):
            if one[i].get(k) is not None and two[i].get(k) is not None:
                marks[(one[i][k], two[i][k])] += 1
    print(f"defective marks (first, second): both {marks[(True, True)]}, first only {marks[(True, False)]}, "
          f"second only {marks[(False, True)]}, neither {marks[(False, False)]}")


if __name__ == "__main__":
    main()
