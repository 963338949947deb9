"""Parity of stylerl's Llama with transformers: logits, greedy generation (alone and batched),
perplexity, chat templates, and a tiny sharded bf16 Llama with llama3 RoPE and an untied head.

The default model is models/smollm2-135m-instruct (made by `stylerl import-gguf`); until it
exists, the test builds the same model with transformers' own GGUF loader."""
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import pytest
import torch
from safetensors.torch import load_file

from conftest import GGUF, MODELS, SMOL, write_jsonl
from closeness import assert_close

# Ours vs transformers: the same float32 math summed in another order through many layers; about
# 1e-6 of the logits' magnitude apart, 1e-4 holds on any vendor's kernels while a wrong weight,
# position or mask moves logits by O(1).
RTOL = 1e-4

# One thread on both sides: steadier and faster on a shared machine (several busy threads
# on two cores slow libtorch down many times), and the same GEMM order on both sides.
torch.set_num_threads(1)
T1 = ("--threads", "1")

PROMPTS = [
    "The capital of France is",
    "Hello, how are you doing today? I wanted to ask you about",
    "def fibonacci(n):",
    "1, 2, 3, 4,",
]
CHAT_PROMPTS = [
    "What is the capital of France?",
    "Write one sentence about autumn leaves.",
    "hi",
    "Rewrite this more politely: send me the report now.",
]
TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "In 1905, Einstein published four papers that changed physics forever.",
    "ok, see you at 5pm then!",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The imported model, or the same weights written by transformers from the GGUF."""
    if (SMOL / "model.safetensors").exists():
        return SMOL
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path_factory.mktemp("smol_ref")
    m = AutoModelForCausalLM.from_pretrained(str(MODELS), gguf_file=GGUF.name, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(str(MODELS), gguf_file=GGUF.name)
    cfg = m.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    plain = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    plain.load_state_dict(m.state_dict())
    plain.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def hf(model_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    m = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    return m, AutoTokenizer.from_pretrained(str(model_dir))


def read_jsonl(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


@pytest.mark.parametrize("batched", [False, True])
def test_logits_match_transformers(stylerl, model_dir, hf, tmp_path, batched):
    m, tok = hf
    inp = write_jsonl(tmp_path / "p.jsonl", PROMPTS)
    out = tmp_path / "logits.safetensors"
    stylerl("logits", "--model", model_dir, "--input", inp, "--out", out, *T1, *(["--batched"] if batched else []))
    got = load_file(str(out))
    worst = 0.0
    for i, p in enumerate(PROMPTS):
        ids = tok(p, return_tensors="pt")["input_ids"]
        assert got[f"input_ids_{i}"].tolist() == ids[0].tolist(), "tokenization differs"
        with torch.no_grad():
            ref = m(ids).logits[0]
        worst = max(worst, assert_close(got[f"logits_{i}"], ref, RTOL, f"prompt {i} logits"))
    print(f"max |logits diff| / max |logits| (batched={batched}): {worst:.3g}")


def hf_greedy(m, tok, prompt, n):
    ids = tok.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    with torch.no_grad():
        out = m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, do_sample=False)
    return out[0, ids.shape[1]:].tolist()


def test_greedy_generation_matches_transformers_alone_and_batched(stylerl, model_dir, hf, tmp_path):
    m, tok = hf
    inp = write_jsonl(tmp_path / "c.jsonl", CHAT_PROMPTS)
    common = ["generate", "--model", model_dir, "--input", inp, "--chat", "--greedy", "--max-new-tokens", "48", "--json", *T1]
    alone = read_jsonl(stylerl(*common, "--batch-size", "1").stdout)
    batched = read_jsonl(stylerl(*common, "--batch-size", "4").stdout)
    lengths = set()
    for i, p in enumerate(CHAT_PROMPTS):
        ref = hf_greedy(m, tok, p, 48)
        msgs = [{"role": "user", "content": p}]
        lengths.add(len(tok.apply_chat_template(msgs, add_generation_prompt=True, return_dict=True)["input_ids"]))
        assert alone[i]["tokens"] == ref, f"prompt {i} alone:\n{alone[i]['text']!r}\nvs\n{tok.decode(ref)!r}"
        assert batched[i]["tokens"] == ref, f"prompt {i} batched:\n{batched[i]['text']!r}\nvs\n{tok.decode(ref)!r}"
        assert alone[i]["text"] == tok.decode(ref, skip_special_tokens=True)
    assert len(lengths) > 1, "the batch must mix prompt lengths"


def test_perplexity_matches_transformers_loss(stylerl, model_dir, hf, tmp_path):
    m, tok = hf
    inp = write_jsonl(tmp_path / "t.jsonl", TEXTS)
    rows = read_jsonl(stylerl("perplexity", "--model", model_dir, "--input", inp, *T1).stdout)
    assert len(rows) == len(TEXTS)
    for text, row in zip(TEXTS, rows):
        ids = tok(text, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            loss = m(ids, labels=ids).loss.item()
        assert row["tokens"] == ids.shape[1]
        rel = abs(row["mean_nll"] - loss) / loss
        print(f"{text[:20]!r}: nll {row['mean_nll']:.6f} vs {loss:.6f} (rel {rel:.2g})")
        assert rel < 1e-4
        assert abs(row["perplexity"] - torch.exp(torch.tensor(loss)).item()) / row["perplexity"] < 1e-4
    # A one-token text has nothing to score: one clear error line.
    bad = write_jsonl(tmp_path / "bad.jsonl", ["ok"])
    p = stylerl("perplexity", "--model", model_dir, "--input", bad, check=False)
    assert p.returncode == 1 and "needs at least 2" in p.stderr and len(p.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("gen_prompt", [True, False])
def test_chat_template_matches_apply_chat_template(stylerl, model_dir, hf, gen_prompt):
    _, tok = hf
    system, user = "You rewrite text politely.", "Give me the file, now!"
    args = ["generate", "--model", model_dir, "--chat", "--system", system, "--prompt", user, "--render-only"]
    if not gen_prompt:
        args.append("--no-generation-prompt")
    got = read_jsonl(stylerl(*args).stdout)[0]
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    want = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen_prompt)
    assert got["text"] == want
    want_ids = tok.apply_chat_template(msgs, tokenize=True, add_generation_prompt=gen_prompt, return_dict=True)
    assert got["ids"] == list(want_ids["input_ids"])


def test_tiny_sharded_bf16_llama3_untied_matches(stylerl, tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_theta=50000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 32},
        bos_token_id=1, eos_token_id=2,
    )
    ref = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    ref.save_pretrained(tmp_path / "tiny", max_shard_size="100KB")
    assert (tmp_path / "tiny" / "model.safetensors.index.json").exists(), "expected a sharded checkpoint"
    ref = ref.float()  # the stored bf16 values, computed in f32 on both sides
    gen = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, 300, (n,), generator=gen).tolist() for n in (5, 40, 97)]
    inp = write_jsonl(tmp_path / "ids.jsonl", prompts)
    for batched in (False, True):
        out = tmp_path / f"l{batched}.safetensors"
        stylerl("logits", "--model", tmp_path / "tiny", "--input", inp, "--out", out, "--dtype", "f32", *T1,
                *(["--batched"] if batched else []))
        got = load_file(str(out))
        for i, p in enumerate(prompts):
            with torch.no_grad():
                want = ref(torch.tensor([p])).logits[0]
            assert_close(got[f"logits_{i}"], want, RTOL, f"prompt {i} (len {len(p)}, batched={batched})")
    # bf16 compute: close within bf16 rounding.
    out = tmp_path / "lbf.safetensors"
    stylerl("logits", "--model", tmp_path / "tiny", "--input", inp, "--out", out, "--dtype", "bf16")
    got = load_file(str(out))
    with torch.no_grad():
        want = ref.to(torch.bfloat16)(torch.tensor([prompts[1]])).logits[0].float()
    assert (want - got["logits_1"]).abs().max().item() < 0.05


def test_evaluate_fluency_matches_transformers_loss(stylerl, model_dir, hf, tmp_path):
    """`evaluate`'s fluency column: each text's mean per-token NLL under the frozen base model
    equals transformers' `labels=input_ids` loss of `tokenizer(text)` (inputs and outputs)."""
    m, tok = hf
    held = write_jsonl(tmp_path / "held.jsonl", [{"text": t} for t in TEXTS[:3]])
    ref = tmp_path / "ref.txt"
    ref.write_text("Once upon a time a snail dreamed of letters. The crows laughed at him. He polished his shell.")
    cfg = tmp_path / "eval.toml"
    cfg.write_text(f"""
name = "fl"
out_dir = "{tmp_path / 'out'}"
[bootstrap]
resamples = 100
[meaning]
encoder = "none"
[fluency]
model = "{model_dir}"
[data]
heldout = "{held}"
[reward]
reference = ["{ref}"]
encoder = "stylometric"
[generation]
max_new_tokens = 16
seed = 1
[[systems]]
name = "base"
kind = "model"
[systems.model]
path = "{model_dir}"
""")
    stylerl("evaluate", "--config", cfg, env={"STYLERL_THREADS": "1"})
    rows = read_jsonl((tmp_path / "out" / "outputs.jsonl").read_text())
    assert len(rows) == 3
    checked = 0
    for r in rows:
        for text, got in [(r["output"], r["reader_checks"]["fluency_nll"])]:
            ids = tok(text, return_tensors="pt")["input_ids"]
            if ids.shape[1] < 2:
                assert got is None
                continue
            with torch.no_grad():
                loss = m(ids, labels=ids).loss.item()
            rel = abs(got - loss) / loss
            print(f"{text[:30]!r}: fluency {got:.6f} vs transformers {loss:.6f} (rel {rel:.2g})")
            assert rel < RTOL
            checked += 1
    assert checked >= 2
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    inp = metrics["systems"][0]["intervals"]["input_fluency_nll"]["mean"]
    want = []
    for t in TEXTS[:3]:
        ids = tok(t, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            want.append(m(ids, labels=ids).loss.item())
    assert abs(inp - sum(want) / len(want)) / inp < RTOL
