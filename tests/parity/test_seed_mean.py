"""scripts/seed_mean.py: run-mean differences against a single baseline and against a recipe's
own run-mean (not a parity check: the script is how the seed-averaged rows of docs/experiments.md are made)."""
import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(tmp_path, rows, *args):
    out = tmp_path / "outputs.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = subprocess.run([sys.executable, str(ROOT / "scripts/seed_mean.py"), str(out), *args],
                       capture_output=True, text=True)
    return p


def rows():
    # Two inputs; style per system and input. a: runs 0.6/0.8 and 0.7/0.9; b: 0.5/0.5 and 0.4/0.6.
    vals = {"sft": (0.5, 0.5), "a": (0.6, 0.7), "a-s1": (0.8, 0.9), "b": (0.5, 0.4), "b-s1": (0.5, 0.6)}
    # Every input sentence's closest reference is 0; a-s1's outputs land on reference 1
    # (consistency 0), every other run's on 0 (consistency 1).
    out_ref = {"a-s1": 1}
    return [{"system": s, "index": i, "style_similarity": v[i], "not_rewritten": False,
             "input_sentences": [{"reference": 0}],
             "output_sentences": [{"reference": out_ref.get(s, 0)}]}
            for s, v in vals.items() for i in (0, 1)]


def line(out, recipe):
    return next(l for l in out.splitlines() if l.startswith(f"| {recipe} (2) | style_similarity"))


def test_runs_are_averaged_against_a_single_baseline(tmp_path):
    p = run(tmp_path, rows())
    assert p.returncode == 0, p.stderr
    # a: mean of runs (0.7, 0.8) − sft (0.5, 0.5) = +0.25; b: (0.5, 0.5) − 0.5 = 0.
    assert "+0.250" in line(p.stdout, "a")
    assert "+0.000" in line(p.stdout, "b")


def test_a_recipe_baseline_is_the_mean_of_its_runs(tmp_path):
    p = run(tmp_path, rows(), "--baseline", "b")
    assert p.returncode == 0, p.stderr
    assert "b (mean of 2 runs)" in p.stdout
    # a's run-mean (0.7, 0.8) − b's run-mean (0.5, 0.5) = +0.25 (b's first run alone gives +0.3).
    assert "+0.250" in line(p.stdout, "a")
    assert "| b (2)" not in p.stdout


def test_an_unknown_baseline_is_one_error_line(tmp_path):
    p = run(tmp_path, rows(), "--baseline", "nope")
    assert p.returncode != 0
    assert "nope" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_consistency_is_the_mean_of_each_runs_value(tmp_path):
    p = run(tmp_path, rows(), "--resamples", "50")
    assert p.returncode == 0, p.stderr
    cons = [l for l in p.stdout.splitlines() if l.startswith("| a (2) | 0.")]
    # a: runs 1.0 and 0.0 → 0.5, sft 1.0 → −0.5 (pooling the counts would give cos 45° = 0.707).
    assert cons and cons[0].startswith("| a (2) | 0.500") and "| -0.500 [" in cons[0], p.stdout


def test_evaluations_combine_when_shared_systems_agree(tmp_path):
    # Recipe a in one evaluation, recipe b in another, SFT in both: as if evaluated together.
    both = rows()
    first = [r for r in both if not r["system"].startswith("b")]
    second = [r for r in both if not r["system"].startswith("a")]
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    one.write_text("".join(json.dumps(r) + "\n" for r in first))
    two.write_text("".join(json.dumps(r) + "\n" for r in second))
    script = str(ROOT / "scripts/seed_mean.py")
    p = subprocess.run([sys.executable, script, str(one), str(two), "--baseline", "b"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "+0.250" in line(p.stdout, "a")
    # An SFT row that differs between the files: one error line naming the system.
    second[0] = dict(second[0], style_similarity=0.9)
    two.write_text("".join(json.dumps(r) + "\n" for r in second))
    p = subprocess.run([sys.executable, script, str(one), str(two)], capture_output=True, text=True)
    assert p.returncode != 0
    assert "'sft' differs" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_reader_checks_are_averaged_like_any_metric(tmp_path):
    # Defective marks count 0/1 and fluency is read inside reader_checks: a's runs are defective
    # on input 0 in one run of two (0.5) and sft never is, so the mean difference is +0.25.
    rs = rows()
    for r in rs:
        bad = r["system"] == "a" and r["index"] == 0
        r["reader_checks"] = {"fluency_nll": 4.0 + (1.0 if r["system"].startswith("a") else 0.0),
                              "defective": bad}
    p = run(tmp_path, rs)
    assert p.returncode == 0, p.stderr
    get = lambda key: next(l for l in p.stdout.splitlines() if l.startswith(f"| a (2) | {key}"))
    assert "+0.250" in get("reader_checks.defective"), p.stdout
    assert "+1.000" in get("reader_checks.fluency_nll"), p.stdout
