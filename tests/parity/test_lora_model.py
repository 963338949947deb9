"""Adapters on the real model (SmolLM2-135M-Instruct, f32): stylerl against PEFT/transformers.

- an adapter stylerl trained (`stylerl sft`, 2 steps) loaded by PEFT gives stylerl's logits;
- adapters PEFT initialised with non-zero B (init_lora_weights=False) loaded by stylerl
  (`logits --adapter`) give PEFT's logits, with and without rsLoRA;
- two adapters with weights (`--adapter A:0.7 --adapter B:-0.5`) equal a transformers model
  whose weights got 0.7·ΔW_A − 0.5·ΔW_B added by hand;
- `stylerl merge` writes a directory transformers loads, equal to the adapters applied;
- `perplexity --adapter` equals PEFT's loss, and `generate --compare` shows exactly what
  `generate` prints without and with the adapter.
"""
import copy
import json
import os
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import SMOL, hf_logits, stylerl_logits, write_jsonl
from closeness import assert_close

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

PROMPTS = ["The lighthouse keeper of Wrenhaven said", "ok see u at 5 then, bring the kelp!!"]
TOL = 1e-3


@pytest.fixture(scope="module")
def base():
    assert (SMOL / "model.safetensors").exists(), "imported model missing: run scripts/setup.sh"
    return transformers.AutoModelForCausalLM.from_pretrained(str(SMOL), dtype=torch.float32).eval()


@pytest.fixture(scope="module")
def work(tmp_path_factory, base, stylerl):
    d = tmp_path_factory.mktemp("lora_model")
    # 1. stylerl trains an adapter for 2 steps on 4 short pairs (high lr: B clearly non-zero)
    rows = [json.loads(l) for l in (SMOL.parents[1] / "datasets/sft/train.jsonl").read_text().splitlines()[:40]]
    rows = sorted(rows, key=lambda r: len(r["input"]) + len(r["output"]))[:4]
    write_jsonl(d / "train.jsonl", rows)
    stylerl(
        "sft", "--config", SMOL.parents[1] / "configs/demo/sft.toml",
        "--set", f"out_dir={d / 'sft'}", "--set", f"data.train={d / 'train.jsonl'}",
        "--set", "data.eval=", "--set", "data.instruction=", "--set", "data.max_length=96",
        "--set", "train.max_steps=2", "--set", "train.batch_size=2", "--set", "train.warmup_steps=0",
        "--set", "train.merge=false", "--set", "train.checkpoint_every=0", "--set", "train.eval_every=0",
        "--set", "train.optimizer.lr=0.005", "--set", "lora.r=8", "--set", "lora.alpha=16",
    )
    # 2. PEFT adapters with non-zero B, scaled down so the model stays in a sane range
    for name, kw in [
        ("peft_qvd", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])),
        ("peft_rs", dict(r=8, lora_alpha=4, use_rslora=True, target_modules="all-linear")),
    ]:
        torch.manual_seed(11)
        pm = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(task_type="CAUSAL_LM", init_lora_weights=False, **kw))
        with torch.no_grad():
            for n, p in pm.named_parameters():
                if "lora_B" in n:
                    p.mul_(0.05)
        pm.save_pretrained(d / name)
    prompts = write_jsonl(d / "prompts.jsonl", PROMPTS)
    return d, prompts


def worst(a, rows):
    return max((x - l).abs().max().item() for x, (_, l) in zip(a, rows))


def with_peft(base, path):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pm = peft.PeftModel.from_pretrained(copy.deepcopy(base), str(path)).eval()
    bad = [str(x.message) for x in w if any(s in str(x.message).lower() for s in ("missing", "unexpected", "mismatch"))]
    assert not bad, bad
    return pm


def delta_weights(path):
    """module path → scaling·B·A of a PEFT adapter directory, computed here from the files."""
    cfg = json.loads((path / "adapter_config.json").read_text())
    s = cfg["lora_alpha"] / (cfg["r"] ** 0.5 if cfg.get("use_rslora") else cfg["r"])
    t = load_file(str(path / "adapter_model.safetensors"))
    out = {}
    for k, a in t.items():
        if ".lora_A." in k:
            mod = k.removeprefix("base_model.model.").split(".lora_A.")[0]
            b = t[k.replace(".lora_A.", ".lora_B.")]
            out[mod] = s * (b.double() @ a.double())
    return out


def test_peft_loads_stylerl_trained_adapter(stylerl, base, work):
    d, prompts = work
    ad = d / "sft" / "adapter"
    b_max = max(t.abs().max().item() for k, t in load_file(str(ad / "adapter_model.safetensors")).items() if "lora_B" in k)
    assert b_max > 1e-3, "training did not move B"
    rows = stylerl_logits(stylerl, d, prompts, str(ad), tag="sft")
    ref = hf_logits(with_peft(base, ad), rows)
    plain = hf_logits(base, rows)
    err, moved = worst(ref, rows), worst(plain, rows)
    print(f"stylerl-trained adapter: max |stylerl − PEFT| = {err:.3g}; adapter moved logits by {moved:.3g}")
    assert err <= TOL
    assert moved > 50 * TOL, "the adapter barely changes the logits: the test would not see a wrong adapter"


@pytest.mark.parametrize("name", ["peft_qvd", "peft_rs"])
def test_stylerl_loads_peft_adapter(stylerl, base, work, name):
    d, prompts = work
    rows = stylerl_logits(stylerl, d, prompts, str(d / name), tag=name)
    ref = hf_logits(with_peft(base, d / name), rows)
    err, moved = worst(ref, rows), worst(hf_logits(base, rows), rows)
    print(f"{name}: max |stylerl − PEFT| = {err:.3g}; adapter moved logits by {moved:.3g}")
    assert err <= TOL and moved > 50 * TOL


def hand_merged(base, parts):
    """A copy of the base model with Σ w·ΔW added to the weights in float64."""
    m = copy.deepcopy(base)
    sd = m.state_dict()
    with torch.no_grad():
        for path, w in parts:
            for mod, dw in delta_weights(path).items():
                W = sd[f"{mod}.weight"]
                W.copy_((W.double() + w * dw).float())
    return m


def test_weighted_composition_equals_hand_merged_sum(stylerl, base, work):
    d, prompts = work
    a, b = d / "peft_qvd", d / "sft" / "adapter"
    rows = stylerl_logits(stylerl, d, prompts, f"{a}:0.7", f"{b}:-0.5", tag="mix")
    ref = hf_logits(hand_merged(base, [(a, 0.7), (b, -0.5)]), rows)
    err = worst(ref, rows)
    # a wrong weight (1.0 instead of 0.7) must be visible
    wrong = worst(hf_logits(hand_merged(base, [(a, 1.0), (b, -0.5)]), rows), rows)
    print(f"0.7·A − 0.5·B: max |stylerl − hand merge| = {err:.3g} (wrong weights: {wrong:.3g})")
    assert err <= TOL and wrong > 50 * TOL


def test_merged_directory_equals_adapters_applied(stylerl, base, work):
    d, prompts = work
    a, b = d / "peft_rs", d / "sft" / "adapter"
    out = d / "merged"
    p = stylerl("merge", "--model", SMOL, "--adapter", f"{a}:0.5", "--adapter", str(b), "--out", out)
    assert "merged 2 adapter(s) into 210 linear modules" in p.stdout, p.stdout
    assert not (out / "adapter_config.json").exists()
    merged = transformers.AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32).eval()
    rows = stylerl_logits(stylerl, d, prompts, f"{a}:0.5", str(b), tag="merge")
    err = worst(hf_logits(merged, rows), rows)
    also = worst(hf_logits(merged, rows), [(None, l) for l in hf_logits(hand_merged(base, [(a, 0.5), (b, 1.0)]), rows)])
    print(f"merged dir: max |transformers(merged) − stylerl(adapters)| = {err:.3g}, vs hand merge {also:.3g}")
    assert err <= TOL and also <= TOL
    # stylerl reads its own merged directory back the same way
    again = stylerl_logits(stylerl, d, prompts, model=out, tag="merged_dir")
    assert worst([l for _, l in again], rows) <= TOL
    # a merge refuses to overwrite its source
    bad = stylerl("merge", "--model", SMOL, "--adapter", str(b), "--out", SMOL, check=False)
    assert bad.returncode == 1 and "model directory itself" in bad.stderr


def test_perplexity_with_adapter_matches_peft(stylerl, base, work):
    d, prompts = work
    ad = d / "peft_qvd"
    p = stylerl("perplexity", "--model", SMOL, "--input", prompts, "--adapter", str(ad))
    got = [json.loads(l)["mean_nll"] for l in p.stdout.splitlines()]
    pm = with_peft(base, ad)
    tok = transformers.AutoTokenizer.from_pretrained(str(SMOL))
    for text, nll in zip(PROMPTS, got):
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            ref = pm(ids, labels=ids).loss.item()
            plain = base(ids, labels=ids).loss.item()
        # Mean NLL through 30 layers, ours vs PEFT: 1e-4 of its magnitude (see test_llama.RTOL).
        assert_close(nll, ref, 1e-4, f"mean NLL of {text!r}")
        assert abs(plain - nll) > 1e-3, (ref, nll, plain)


def test_generate_compare_shows_base_and_adapter(stylerl, work):
    d, prompts = work
    ad = str(d / "sft" / "adapter")  # the adapter that moves the logits most
    common = ["generate", "--model", SMOL, "--input", prompts, "--greedy", "--max-new-tokens", "12", "--json"]
    base_rows = [json.loads(l) for l in stylerl(*common).stdout.splitlines()]
    tuned = [json.loads(l) for l in stylerl(*common, "--adapter", ad).stdout.splitlines()]
    both = [json.loads(l) for l in stylerl(*common, "--adapter", ad, "--compare").stdout.splitlines()]
    assert [r["base"] for r in both] == [r["text"] for r in base_rows]
    assert [r["adapter"] for r in both] == [r["text"] for r in tuned]
    assert any(r["base"] != r["adapter"] for r in both)
    text = stylerl(*common[:-1], "--adapter", ad, "--compare").stdout
    assert text.count("### prompt") == 2 and text.count("--- base") == 2 and text.count("--- adapter") == 2
    assert f"### prompt 1\n{PROMPTS[0]}\n--- base\n{base_rows[0]['text'].rstrip()}\n--- adapter" in text
    bad = stylerl(*common, "--compare", check=False)
    assert bad.returncode == 1 and "--adapter" in bad.stderr
