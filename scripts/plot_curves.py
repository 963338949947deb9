#!/usr/bin/env python3
"""One metric of several runs on one SVG chart (`stylerl plot` draws one run's metrics).

Each run is LABEL=PATH, PATH a run directory or its metrics.jsonl; the records that carry the
metric are drawn against their step. Standard library only.

usage: scripts/plot_curves.py --metric eval_loss --out chart.svg f32=runs/a bf16=runs/b [...]
"""
import argparse
import json
from pathlib import Path

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
W, H, LEFT, RIGHT, TOP, BOTTOM = 640, 400, 70, 150, 30, 50


def points(path, metric):
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"
    out = []
    for line in p.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if metric in r and r[metric] is not None:
                out.append((float(r["step"]), float(r[metric])))
    if not out:
        raise SystemExit(f"{p}: no record has '{metric}'")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metric", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="")
    ap.add_argument("runs", nargs="+", help="LABEL=PATH")
    a = ap.parse_args()
    series = []
    for spec in a.runs:
        label, _, path = spec.partition("=")
        if not path:
            raise SystemExit(f"'{spec}': give LABEL=PATH")
        series.append((label, points(path, a.metric)))
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts]
    x0, x1 = min(xs), max(xs) or 1.0
    pad = (max(ys) - min(ys)) * 0.05 or 0.01
    y0, y1 = min(ys) - pad, max(ys) + pad
    px = lambda x: LEFT + (x - x0) / ((x1 - x0) or 1) * (W - LEFT - RIGHT)
    py = lambda y: TOP + (y1 - y) / (y1 - y0) * (H - TOP - BOTTOM)
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">{a.title or a.metric}</text>']
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        svg.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{py(y):.1f}" y2="{py(y):.1f}" stroke="#ddd"/>')
        svg.append(f'<text x="{LEFT - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3f}</text>')
    for i in range(5):
        x = x0 + (x1 - x0) * i / 4
        svg.append(f'<text x="{px(x):.1f}" y="{H - BOTTOM + 18}" text-anchor="middle">{x:.0f}</text>')
    svg.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 12}" text-anchor="middle">step</text>')
    for k, (label, pts) in enumerate(series):
        c = COLOURS[k % len(COLOURS)]
        dash = ' stroke-dasharray="6 4"' if k % 2 else ""
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        svg.append(f'<polyline points="{path}" fill="none" stroke="{c}" stroke-width="2"{dash}/>')
        for x, y in pts:
            svg.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{c}"/>')
        ly = TOP + 20 + 18 * k
        svg.append(f'<line x1="{W - RIGHT + 10}" x2="{W - RIGHT + 35}" y1="{ly}" y2="{ly}" stroke="{c}" stroke-width="2"{dash}/>')
        svg.append(f'<text x="{W - RIGHT + 40}" y="{ly + 4}">{label}</text>')
    svg.append("</svg>")
    Path(a.out).write_text("\n".join(svg) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
