"""The documentation checker (scripts/check_docs.py) passes on the repository, and it does fail
on a tree whose links, paths or method anchors are broken (so a pass means something).
Not a parity check: it runs here because scripts/test.sh runs pytest on tests/parity."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKER = ROOT / "scripts" / "check_docs.py"
# Spelled in two parts so this file's own broken examples are not citations the checker reads.
M = "docs/" + "method.md"


def run_checker(root):
    return subprocess.run([sys.executable, str(CHECKER), "--root", str(root)], capture_output=True, text=True)


def test_every_link_path_and_method_anchor_resolves():
    p = run_checker(ROOT)
    assert p.returncode == 0, f"scripts/check_docs.py found problems:\n{p.stdout}{p.stderr}"


def test_the_checker_reports_each_kind_of_broken_reference(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "results" / "demo").mkdir(parents=True)
    (tmp_path / "docs" / "method.md").write_text("# Method\n\n## R_style\n\n## Dr.GRPO\n", encoding="utf-8")
    (tmp_path / "results" / "demo" / "README.md").write_text("Made by `scripts/demo.sh`.\n", encoding="utf-8")
    (tmp_path / "README.md").write_text(
        f"See [the method]({M}#r_style), [Dr.GRPO]({M}#drgrpo), "
        f"[gone](docs/missing.md) and [no such heading]({M}#nowhere).\n"
        "Runs go to `runs/demo/sft` and `results/<name>/`; the config is `configs/demo/sft.toml`.\n"
        "```bash\nscripts/not_checked_in_a_fence.sh\n```\n",
        encoding="utf-8",
    )
    (tmp_path / "src" / "lib.rs").write_text(f"//! ({M}#r_style, {M}#no-such-anchor)\n", encoding="utf-8")
    p = run_checker(tmp_path)
    assert p.returncode == 1
    problems = p.stdout.splitlines()
    assert any("docs/missing.md does not exist" in l for l in problems), p.stdout
    assert any("#nowhere" in l for l in problems), p.stdout
    assert any("`configs/demo/sft.toml` does not exist" in l for l in problems), p.stdout
    assert any("`scripts/demo.sh` does not exist" in l for l in problems), p.stdout
    assert any(f"{M}#no-such-anchor" in l for l in problems), p.stdout
    # Existing anchors, skipped folders, placeholders and fenced code are not reported.
    assert not any("drgrpo" in l or "r_style" in l or "runs/" in l or "<name>" in l or "fence" in l for l in problems), p.stdout
    # The README's #nowhere is both a broken link and a broken citation: 6 lines for 5 faults.
    assert len(problems) == 6, p.stdout
