#!/usr/bin/env python3
"""Checks that the documentation points at things that exist.

1. Every relative Markdown link ([text](path) or ![alt](path)) in README.md, docs/*.md and
   results/*/README.md resolves to a file or folder, and a link with a #fragment into a Markdown
   file (or into the page itself) names one of that file's headings.
2. Every backticked repository path in those files (`configs/demo/sft.toml`,
   `src/reward/dropout.rs`, `results/demo/`, ...) exists. Paths under runs/, models/, target/
   and .venv/ (made by the scripts, not kept in the repository) and paths with placeholders
   (<...>, *, ..., {...}) are not checked; fenced code blocks are skipped.
3. Every `docs/method.md#<anchor>` cited anywhere in src/, tests/, scripts/, configs/, datasets/,
   README.md, docs/ and results/*/README.md is a heading of docs/method.md.

Anchors are made as GitHub makes them: the heading's text lower-cased, every character that is
not a letter, digit, space, hyphen or underscore removed, spaces turned into hyphens, and a
repeated anchor numbered -1, -2, ...

Prints one line per failure and exits 1 if there is any; python3 standard library only.
usage: scripts/check_docs.py [--root DIR]
"""
import argparse
import re
import sys
from pathlib import Path

# First path components that name something in the repository.
REPO_TOPS = {"src", "tests", "scripts", "configs", "datasets", "results", "docs", "README.md",
             "Cargo.toml", "Cargo.lock", "build.rs"}
# Made by set-up, training or the build, not kept in the repository.
SKIPPED_TOPS = {"runs", "models", "target", ".venv"}
PLACEHOLDER = re.compile(r"[<>*{}…]|\.\.\.")
LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
METHOD_CITE = re.compile(r"docs/method\.md#([A-Za-z0-9_\-]+)")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CITING_DIRS = ["src", "tests", "scripts", "configs", "datasets", "docs"]
TEXT_SUFFIXES = {".rs", ".py", ".sh", ".toml", ".md", ".txt", ".jinja", ".json", ".jsonl", ".cfg", ".ini", ".yml", ".yaml"}


def prose_lines(text):
    """(line number, line) of every line outside fenced code blocks."""
    inside = False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            yield n, line


def anchor_of(heading):
    """GitHub's anchor for a heading's Markdown text (before de-duplication)."""
    text = LINK.sub(lambda m: m.group(1), heading)
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path, cache={}):
    """Every heading anchor of a Markdown file."""
    if path not in cache:
        seen = {}
        out = set()
        for _, line in prose_lines(path.read_text(encoding="utf-8")):
            m = HEADING.match(line)
            if not m:
                continue
            a = anchor_of(m.group(2))
            k = seen.get(a, 0)
            out.add(a if k == 0 else f"{a}-{k}")
            seen[a] = k + 1
        cache[path] = out
    return cache[path]


def doc_files(root):
    files = [root / "README.md"]
    files += sorted((root / "docs").glob("*.md"))
    files += sorted((root / "results").glob("*/README.md"))
    return [f for f in files if f.is_file()]


def check_links(root, doc, text, fail):
    for n, line in prose_lines(text):
        line = INLINE_CODE.sub("", line)
        for m in LINK.finditer(line):
            target = m.group(2)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:, ...
                continue
            path_part, _, frag = target.partition("#")
            dest = doc if not path_part else (doc.parent / path_part)
            where = f"{doc.relative_to(root)}:{n}"
            if path_part and not dest.exists():
                fail(f"{where}: link to {target}: {path_part} does not exist")
                continue
            if frag and dest.is_file() and dest.suffix == ".md" and frag not in anchors(dest.resolve()):
                fail(f"{where}: link to {target}: no heading with anchor #{frag} in {dest.resolve().relative_to(root)}")


def repo_path_tokens(span):
    """The words of a backticked span that look like repository paths."""
    for word in span.split():
        word = word.strip("\"'()[],;:.")
        if "=" in word:
            word = word.split("=", 1)[1].strip("\"'[]")
        if not word:
            continue
        word = word.split("#", 1)[0]
        top = word.split("/", 1)[0]
        if top in SKIPPED_TOPS or top not in REPO_TOPS:
            continue
        if top == word and "." not in word:  # a bare word such as "src" or "results"
            continue
        if PLACEHOLDER.search(word):
            continue
        yield word


def check_code_paths(root, doc, text, fail):
    for n, line in prose_lines(text):
        for m in INLINE_CODE.finditer(line):
            for p in repo_path_tokens(m.group(2)):
                if not (root / p).exists():
                    fail(f"{doc.relative_to(root)}:{n}: `{p}` does not exist")


def citing_files(root):
    for d in CITING_DIRS:
        base = root / d
        if not base.is_dir():
            continue
        for f in sorted(base.rglob("*")):
            if f.is_file() and f.suffix in TEXT_SUFFIXES and "__pycache__" not in f.parts:
                yield f
    yield from (f for f in [root / "README.md"] if f.is_file())
    yield from sorted((root / "results").glob("*/README.md"))


def check_method_citations(root, fail):
    method = root / "docs" / "method.md"
    have = anchors(method.resolve()) if method.is_file() else set()
    for f in citing_files(root):
        try:
            text = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            for m in METHOD_CITE.finditer(line):
                if m.group(1) not in have:
                    fail(f"{f.relative_to(root)}:{n}: docs/method.md#{m.group(1)} is not a heading of docs/method.md")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=Path(__file__).resolve().parents[1], type=Path)
    root = ap.parse_args().root.resolve()
    failures = []
    fail = failures.append
    if not (root / "docs" / "method.md").is_file():
        fail("docs/method.md does not exist")
    for doc in doc_files(root):
        text = doc.read_text(encoding="utf-8")
        check_links(root, doc, text, fail)
        check_code_paths(root, doc, text, fail)
    check_method_citations(root, fail)
    for f in failures:
        print(f)
    if failures:
        print(f"check_docs: {len(failures)} problem(s)", file=sys.stderr)
        return 1
    print(f"check_docs: {len(doc_files(root))} documents, every link, path and method anchor resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
