"""Parity of the non-Llama families with transformers and PEFT, on tiny random models built here
(no downloaded weights): Qwen2 (q/k/v biases, tied head), Qwen3 (q/k RMSNorm, explicit head_dim,
GQA, untied head) and GPT-2 (learned positions, LayerNorm, GELU-tanh, fused Conv1D c_attn).

For each family: logits (alone and batched; bf16 too), greedy generation (alone and batched), perplexity,
a PEFT adapter with non-zero B loaded by stylerl, and a stylerl-trained adapter (`stylerl sft`,
2 steps) loaded by PEFT, plus the merged directory it writes loaded by transformers. GPT-2's
adapters use PEFT's fan_in_fan_out (Conv1D stores weights [in, out]) in both directions.

Every parameter, biases and norm weights included, is drawn at random: transformers initialises
biases to zero and norms to one, which would hide a bias or norm read wrongly."""
import copy
import json
import os
import shutil
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, SMOL, write_jsonl
from closeness import assert_close

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

# Same float32 math summed in other orders (see test_llama.RTOL): about 1e-6 of the logits'
# magnitude apart here; a wrong weight, bias, norm or position moves logits by O(1).
RTOL = 1e-4
torch.set_num_threads(1)
T1 = ("--threads", "1")
VOCAB = 49152  # SmolLM2's tokenizer, copied next to the tiny models
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "In 1905, Einstein published four papers that changed physics forever, and then",
    "ok, see you at 5pm then!",
]


def build(family):
    common = dict(vocab_size=VOCAB, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    if family == "qwen2":
        cfg = transformers.Qwen2Config(
            hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, use_sliding_window=False, **common)
        return transformers.Qwen2ForCausalLM(cfg)
    if family == "qwen3":
        cfg = transformers.Qwen3Config(
            hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=4,
            num_key_value_heads=2, head_dim=24, max_position_embeddings=256, rms_norm_eps=1e-6,
            tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": 50000.0}, **common)
        return transformers.Qwen3ForCausalLM(cfg)
    cfg = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=256, n_inner=None,
                                  layer_norm_epsilon=1e-5, **common)
    return transformers.GPT2LMHeadModel(cfg)


def randomize(model, seed):
    """Every parameter random: matrices N(0, 0.1²), biases N(0, 0.1²), norm weights 1 + N(0, 0.1²)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g) * 0.1
            is_norm = any(s in name for s in ("norm", "ln_")) and name.endswith("weight")
            p.copy_(1.0 + noise if is_norm else noise)
    return model


FAMILIES = ["qwen2", "qwen3", "gpt2"]


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request, tmp_path_factory):
    family = request.param
    d = tmp_path_factory.mktemp(f"tiny_{family}")
    torch.manual_seed(0)
    m = randomize(build(family), 1).eval()
    m.save_pretrained(d / "model")
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (SMOL / f).exists():
            shutil.copy(SMOL / f, d / "model" / f)
    ref = transformers.AutoModelForCausalLM.from_pretrained(str(d / "model"), dtype=torch.float32).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(d / "model"))
    return family, d, ref, tok


def read_jsonl(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


def stylerl_logits(stylerl, d, model, prompts, *extra, tag="x"):
    inp = write_jsonl(d / f"in_{tag}.jsonl", prompts)
    out = d / f"logits_{tag}.safetensors"
    stylerl("logits", "--model", model, "--input", inp, "--out", out, *T1, *extra)
    got = load_file(str(out))
    return [got[f"logits_{i}"] for i in range(len(prompts))]


def id_prompts():
    g = torch.Generator().manual_seed(2)
    return [torch.randint(3, VOCAB, (n,), generator=g).tolist() for n in (5, 37, 90)]


def hf_logits(model, prompts):
    with torch.no_grad():
        return [model(torch.tensor([p])).logits[0] for p in prompts]


def test_config_round_trip_is_the_family(tiny):
    family, d, ref, _ = tiny
    cfg = json.loads((d / "model" / "config.json").read_text())
    assert cfg["model_type"] == family
    keys = load_file(str(d / "model" / "model.safetensors")).keys()
    if family == "gpt2":
        assert "transformer.h.0.attn.c_attn.weight" in keys and "transformer.wpe.weight" in keys
    if family == "qwen2":
        assert "model.layers.0.self_attn.q_proj.bias" in keys and "lm_head.weight" not in keys
    if family == "qwen3":
        assert "model.layers.0.self_attn.q_norm.weight" in keys and "lm_head.weight" in keys


@pytest.mark.parametrize("batched", [False, True])
def test_logits_match_transformers(stylerl, tiny, batched):
    family, d, ref, _ = tiny
    prompts = id_prompts()
    got = stylerl_logits(stylerl, d, d / "model", prompts, *(["--batched"] if batched else []), tag=f"b{batched}")
    worst = max(
        assert_close(g, w, RTOL, f"{family} prompt {i} (len {len(p)}, batched={batched})")
        for i, (g, w, p) in enumerate(zip(got, hf_logits(ref, prompts), prompts))
    )
    print(f"{family}: max |logits diff| / max |logits| (batched={batched}) = {worst:.3g}")


def test_greedy_generation_matches_transformers(stylerl, tiny):
    family, d, ref, tok = tiny
    inp = write_jsonl(d / "texts.jsonl", TEXTS)
    common = ["generate", "--model", d / "model", "--input", inp, "--greedy", "--max-new-tokens", "20", "--json", *T1]
    alone = read_jsonl(stylerl(*common, "--batch-size", "1").stdout)
    batched = read_jsonl(stylerl(*common, "--batch-size", "3").stdout)
    for i, text in enumerate(TEXTS):
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            out = ref.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=20, do_sample=False)
        want = out[0, ids.shape[1]:].tolist()
        assert len(want) >= 5, "generation stopped at once: the comparison would see little"
        assert alone[i]["tokens"] == want, f"{family} prompt {i} alone: {alone[i]['tokens']} vs {want}"
        assert batched[i]["tokens"] == want, f"{family} prompt {i} batched: {batched[i]['tokens']} vs {want}"
        assert alone[i]["text"] == tok.decode(want, skip_special_tokens=True)


def test_perplexity_matches_transformers_loss(stylerl, tiny):
    family, d, ref, tok = tiny
    inp = write_jsonl(d / "ppl.jsonl", TEXTS)
    rows = read_jsonl(stylerl("perplexity", "--model", d / "model", "--input", inp, *T1).stdout)
    for text, row in zip(TEXTS, rows):
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            loss = ref(ids, labels=ids).loss.item()
        assert row["tokens"] == ids.shape[1]
        print(f"{family} {text[:16]!r}: nll {row['mean_nll']:.6f} vs {loss:.6f}")
        assert_close(row["mean_nll"], loss, 1e-4, f"{family} mean NLL of {text!r}")


def with_peft(base, path):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pm = peft.PeftModel.from_pretrained(copy.deepcopy(base), str(path)).eval()
    bad = [str(x.message) for x in w if any(s in str(x.message).lower()
                                            for s in ("missing", "unexpected", "mismatch", "fan_in_fan_out"))]
    assert not bad, bad
    return pm


def worst_diff(a, b):
    return max((x - y).abs().max().item() for x, y in zip(a, b))


def scale(ls):
    return max(l.abs().max().item() for l in ls)


def test_stylerl_loads_peft_adapter(stylerl, tiny):
    family, d, ref, _ = tiny
    torch.manual_seed(11)
    pm = peft.get_peft_model(copy.deepcopy(ref), peft.LoraConfig(
        task_type="CAUSAL_LM", r=4, lora_alpha=8, init_lora_weights=False, target_modules="all-linear"))
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.mul_(0.3)
    pm.save_pretrained(d / "peft_ad")
    saved = json.loads((d / "peft_ad" / "adapter_config.json").read_text())
    mods = {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in load_file(str(d / "peft_ad" / "adapter_model.safetensors"))}
    if family == "gpt2":
        assert saved["fan_in_fan_out"] is True and mods == {"c_attn", "c_proj", "c_fc"}, (saved, mods)
    prompts = id_prompts()
    got = stylerl_logits(stylerl, d, d / "model", prompts, "--adapter", d / "peft_ad", tag="peft")
    want = hf_logits(pm.eval(), prompts)
    err, moved = worst_diff(got, want), worst_diff(hf_logits(ref, prompts), want)
    print(f"{family}: PEFT adapter in stylerl: max |diff| = {err:.3g} (scale {scale(want):.3g}); adapter moved logits by {moved:.3g}")
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, RTOL, f"{family} adapter logits {i}")
    assert moved > 0.1 * scale(want), "the adapter barely changes the logits: a wrong adapter would pass"


def test_peft_loads_stylerl_trained_adapter_and_merged_model(stylerl, tiny):
    family, d, ref, _ = tiny
    rows = [json.loads(l) for l in (ROOT / "datasets/sft/train.jsonl").read_text().splitlines()[:40]]
    rows = sorted(rows, key=lambda r: len(r["input"]) + len(r["output"]))[:4]
    write_jsonl(d / "train.jsonl", rows)
    stylerl(
        "sft", "--config", ROOT / "configs/demo/sft.toml",
        "--set", f"model.path={d / 'model'}",
        "--set", f"out_dir={d / 'sft'}", "--set", f"data.train={d / 'train.jsonl'}",
        "--set", "data.eval=", "--set", "data.instruction=", "--set", "data.max_length=96",
        "--set", "train.max_steps=2", "--set", "train.batch_size=2", "--set", "train.warmup_steps=0",
        "--set", "train.merge=true", "--set", "train.checkpoint_every=0", "--set", "train.eval_every=0",
        "--set", "train.optimizer.lr=0.01", "--set", "lora.r=8", "--set", "lora.alpha=16", "--set", "lora.dropout=0.0",
    )
    ad = d / "sft" / "adapter"
    cfg = json.loads((ad / "adapter_config.json").read_text())
    assert cfg["fan_in_fan_out"] is (family == "gpt2"), cfg
    if family == "gpt2":
        assert sorted(cfg["target_modules"]) == ["c_attn", "c_fc", "c_proj"], cfg["target_modules"]
    prompts = id_prompts()
    got = stylerl_logits(stylerl, d, d / "model", prompts, "--adapter", ad, tag="sft")
    want = hf_logits(with_peft(ref, ad), prompts)
    err, moved = worst_diff(got, want), worst_diff(hf_logits(ref, prompts), want)
    print(f"{family}: stylerl-trained adapter in PEFT: max |diff| = {err:.3g} (scale {scale(want):.3g}); moved {moved:.3g}")
    for i, (g, w) in enumerate(zip(got, want)):
        assert_close(g, w, RTOL, f"{family} sft adapter logits {i}")
    assert moved > 1e-3 * scale(want), "training did not change the logits"
    # The merged directory (Conv1D weights written back as [in, out] for GPT-2) in transformers.
    merged = transformers.AutoModelForCausalLM.from_pretrained(str(d / "sft" / "merged"), dtype=torch.float32).eval()
    for i, (g, w) in enumerate(zip(got, hf_logits(merged, prompts))):
        assert_close(g, w, RTOL, f"{family} merged model logits {i}")


def test_bf16_compute_is_close_to_transformers_bf16(stylerl, tiny):
    family, d, ref, _ = tiny
    prompts = id_prompts()
    got = stylerl_logits(stylerl, d, d / "model", prompts, "--dtype", "bf16", tag="bf16")
    half = copy.deepcopy(ref).to(torch.bfloat16)
    want = [w.float() for w in hf_logits(half, prompts)]
    # Two bf16 computations (8-bit mantissa, 4e-3 a rounding) through a few layers: a few
    # percent of the logits' magnitude apart; a wrong part is off by tens of percent.
    worst = max(assert_close(g.float(), w, 5e-2, f"{family} bf16 prompt {i}")
                for i, (g, w) in enumerate(zip(got, want)))
    print(f"{family}: bf16 max |diff| / max |logits| = {worst:.3g}")
