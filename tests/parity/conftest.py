"""Shared fixtures for parity tests: the stylerl binary, model paths, a runner, logits both ways."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("STYLERL_BIN", ROOT / "target" / "release" / "stylerl"))
MODELS = ROOT / "models"
GGUF = MODELS / "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL = MODELS / "smollm2-135m-instruct"
MINILM = MODELS / "all-minilm-l6-v2"


def run_stylerl(*args, check=True, input=None, env=None):
    """Runs the binary; returns CompletedProcess with text stdout/stderr."""
    e = dict(os.environ)
    e.pop("LD_LIBRARY_PATH", None)  # the binary must find libtorch on its own
    e["STYLERL_PROGRESS"] = "0"
    if env:
        e.update(env)
    p = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, input=input, env=e)
    if check and p.returncode != 0:
        raise AssertionError(f"stylerl {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


def write_jsonl(path, items):
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in items), encoding="utf-8")
    return path


def stylerl_logits(stylerl, d, prompts, *adapters, model=SMOL, tag="x"):
    """`stylerl logits` of every prompt in the JSONL file `prompts`: (input ids, logits) each."""
    from safetensors.torch import load_file
    out = d / f"logits_{tag}.safetensors"
    args = [a for spec in adapters for a in ("--adapter", spec)]
    stylerl("logits", "--model", model, "--input", prompts, "--out", out, *args)
    got = load_file(str(out))
    n = len(Path(prompts).read_text(encoding="utf-8").splitlines())
    return [(got[f"input_ids_{i}"], got[f"logits_{i}"]) for i in range(n)]


def hf_logits(model, rows):
    """A transformers model's logits for the input ids of `stylerl_logits`' rows."""
    import torch
    with torch.no_grad():
        return [model(ids.unsqueeze(0)).logits[0] for ids, _ in rows]

@pytest.fixture(scope="session")
def stylerl():
    assert BIN.exists(), f"{BIN} missing: run scripts/setup.sh"
    return run_stylerl


@pytest.fixture(scope="session")
def smol_dir():
    assert (SMOL / "model.safetensors").exists(), "imported model missing: run scripts/setup.sh"
    return SMOL
