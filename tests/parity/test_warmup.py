"""The shipped warm-up (warmup/README.md): its files are the ones the README names, and the two
adapters compose as it says.

- every adapter file's sha256 is the one warmup/README.md records (a repacked adapter must
  update the README, or the demo's numbers no longer belong to these bytes);
- `stylerl logits --adapter 1-corpus --adapter 2-rft` equals PEFT's route that the README gives:
  load 1-corpus on the base model, merge it, load 2-rft on the result;
- `stylerl merge` of the two (what scripts/demo.sh does) is a directory transformers loads with
  the same logits.
"""
import hashlib
import os
import re

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, SMOL, hf_logits, stylerl_logits, write_jsonl
from closeness import assert_close

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

WARMUP = ROOT / "warmup"
PARTS = ["1-corpus", "2-rft"]
PROMPTS = ["<|im_start|>user\nsorry, running 10 min late, don't start without me<|im_end|>\n<|im_start|>assistant\n",
           "The 42 bus doesn't stop at Quarry Hill on Sundays."]
TOL = 1e-3


def test_the_files_are_the_ones_the_readme_names():
    readme = (WARMUP / "README.md").read_text(encoding="utf-8")
    for part in PARTS:
        got = hashlib.sha256((WARMUP / part / "adapter_model.safetensors").read_bytes()).hexdigest()
        row = re.search(rf"`{part}/adapter_model\.safetensors` \(f16\) \| `([0-9a-f]{{64}})`", readme)
        assert row, f"warmup/README.md names no sha256 for {part}"
        assert got == row.group(1), f"warmup/{part}: sha256 {got}, the README says {row.group(1)}"


def test_the_adapters_are_f16_lora_on_every_linear_layer():
    for part in PARTS:
        t = load_file(str(WARMUP / part / "adapter_model.safetensors"))
        assert len(t) == 2 * 7 * 30, f"{part}: {len(t)} tensors"
        assert {v.dtype for v in t.values()} == {torch.float16}, part
        assert all(torch.isfinite(v).all() for v in t.values()), part


@pytest.fixture(scope="module")
def rows(tmp_path_factory, stylerl):
    d = tmp_path_factory.mktemp("warmup")
    prompts = write_jsonl(d / "prompts.jsonl", PROMPTS)
    got = stylerl_logits(stylerl, d, prompts, WARMUP / PARTS[0], WARMUP / PARTS[1])
    merged = d / "merged"
    stylerl("merge", "--model", SMOL, "--adapter", WARMUP / PARTS[0], "--adapter", WARMUP / PARTS[1], "--out", merged)
    return got, merged


def test_stylerl_equals_peft_merging_one_then_loading_the_other(rows):
    got, _ = rows
    base = transformers.AutoModelForCausalLM.from_pretrained(str(SMOL), dtype=torch.float32).eval()
    first = peft.PeftModel.from_pretrained(base, str(WARMUP / PARTS[0])).merge_and_unload()
    both = peft.PeftModel.from_pretrained(first, str(WARMUP / PARTS[1])).eval()
    for (ids, ours), theirs in zip(got, hf_logits(both, got)):
        assert_close(ours, theirs, TOL, "warm-up logits, stylerl vs PEFT")
    # The warm-up is not the base model: the adapters move the logits.
    plain = transformers.AutoModelForCausalLM.from_pretrained(str(SMOL), dtype=torch.float32).eval()
    moved = max(float((a - b).abs().max()) for (_, a), b in zip(got, hf_logits(plain, got)))
    assert moved > 0.5, f"the warm-up's logits differ from the base model's by {moved:.3f} only"


def test_the_merged_directory_loads_in_transformers_with_the_same_logits(rows):
    got, merged = rows
    model = transformers.AutoModelForCausalLM.from_pretrained(str(merged), dtype=torch.float32).eval()
    for (ids, ours), theirs in zip(got, hf_logits(model, got)):
        assert_close(ours, theirs, TOL, "merged warm-up logits, stylerl adapters vs transformers")
