"""`stylerl export-gguf` against llama.cpp itself (llama-cpp-python, built from source for the
tests only), transformers' GGUF loader and the `gguf` package.

- The exported SmolLM2 f32 GGUF: llama.cpp's logits equal stylerl's on the same token ids, and
  greedy decoding gives the same text.
- An exported LoRA adapter (random, nonzero, every linear layer) applied by llama.cpp at scale 1
  equals stylerl with the adapter; at scale 0.5, stylerl's weighted composition `--adapter A:0.5`.
- The q8_0 export holds the bytes llama.cpp's own quantizer writes from the f32 export, and its
  logits are as far from f32's as llama.cpp's own q8_0 file's are.
- transformers loads the f32 export (`gguf_file=`) to the same logits; `gguf.GGUFReader` reads
  the weights back equal to model.safetensors with llama.cpp's q/k row order.
- Tiny random Qwen2, Qwen3 and GPT-2 models export as llama.cpp's qwen2/qwen3/gpt2: same
  logits, same greedy tokens, and their LoRA adapter GGUF applied by llama.cpp equals stylerl's.
"""
import copy
import json
import os
import time

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pytest
import torch

from conftest import SMOL, write_jsonl
from closeness import assert_close

# Hard imports: scripts/test.sh installs both, and a skipped llama.cpp check would prove nothing.
import llama_cpp  # noqa: E402
import peft  # noqa: E402

torch.set_num_threads(1)
T1 = ("--threads", "1")

# llama.cpp vs stylerl, both f32 weights and an f32 KV cache: the same math in another order
# (ggml's own dot products and softmax) through 30 layers. Measured about 1e-5 of the logits'
# magnitude; 1e-3 holds on any vendor's kernels while a wrong weight, row order or scale moves
# logits by O(1).
RTOL_LLAMA_CPP = 1e-3
# transformers vs stylerl (see test_llama.RTOL).
RTOL_HF = 1e-4

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "<|im_start|>user\nRewrite this in a friendly tone: the meeting moved to 3pm.<|im_end|>\n<|im_start|>assistant\n",
]
CHAT_PROMPTS = [
    "What is the capital of France?",
    "Write one sentence about autumn leaves.",
]
GGML_F32 = 0
FTYPE_Q8_0 = 7


def timed(what, f, *a, **kw):
    t0 = time.time()
    r = f(*a, **kw)
    print(f"{what}: {time.time() - t0:.1f}s")
    return r


@pytest.fixture(scope="module")
def work(stylerl, smol_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("export")
    timed("export f32", stylerl, "export-gguf", "--model", smol_dir, "--out", d / "smol-f32.gguf")
    timed("export q8_0", stylerl, "export-gguf", "--model", smol_dir, "--out", d / "q8" / "smol-q8_0.gguf", "--type", "q8_0")
    # A random nonzero LoRA on every linear layer, written by PEFT itself.
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(smol_dir), torch_dtype=torch.float32)
    torch.manual_seed(0)
    cfg = peft.LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False)
    pm = peft.get_peft_model(copy.deepcopy(base), cfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.mul_(0.3)  # moves logits by O(1), not enough to make them meaningless
    pm.save_pretrained(d / "peft")
    timed("export adapter", stylerl, "export-gguf", "--adapter-only", d / "peft", "--model", smol_dir,
          "--out", d / "lora" / "adapter.gguf")
    write_jsonl(d / "prompts.jsonl", PROMPTS)
    return d


def stylerl_logits(stylerl, smol_dir, d, *adapters, tag):
    out = d / f"logits_{tag}.safetensors"
    args = ["logits", "--model", smol_dir, "--input", d / "prompts.jsonl", "--out", out, "--force", *T1]
    for a in adapters:
        args += ["--adapter", a]
    stylerl(*args)
    from safetensors.torch import load_file

    t = load_file(str(out))
    return [(t[f"input_ids_{i}"].tolist(), t[f"logits_{i}"].numpy()) for i in range(len(PROMPTS))]


def llama_cpp_model(path, lora=None, scale=1.0):
    kw = dict(lora_path=str(lora), lora_scale=scale) if lora else {}
    return llama_cpp.Llama(model_path=str(path), n_ctx=512, n_batch=512, logits_all=True, n_threads=2,
                           type_k=GGML_F32, type_v=GGML_F32, verbose=False, **kw)


def llama_cpp_logits(llm, ids):
    llm.reset()
    llm.eval(ids)
    return np.array(llm.scores[: len(ids)], dtype=np.float32)


def compare(llm, ref, what, rtol=RTOL_LLAMA_CPP):
    worst = 0.0
    for i, (ids, want) in enumerate(ref):
        worst = max(worst, assert_close(llama_cpp_logits(llm, ids), want, rtol, f"{what}, prompt {i}"))
    print(f"{what}: max |llama.cpp - stylerl| / max|logit| = {worst:.2e}")
    return worst


def test_f32_logits_and_greedy_text_match_llama_cpp(stylerl, smol_dir, work):
    ref = stylerl_logits(stylerl, smol_dir, work, tag="base")
    llm = llama_cpp_model(work / "smol-f32.gguf")
    compare(llm, ref, "f32 export")
    # Greedy continuation: llama.cpp's argmax token by token from stylerl's rendered prompt.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(smol_dir))
    inp = write_jsonl(work / "chat.jsonl", CHAT_PROMPTS)
    common = ["generate", "--model", smol_dir, "--input", inp, "--chat", "--greedy", "--max-new-tokens", "24", "--json", *T1]
    ours = [json.loads(l) for l in stylerl(*common).stdout.splitlines()]
    rendered = [json.loads(l) for l in stylerl(*common, "--render-only").stdout.splitlines()]
    for p, o, r in zip(CHAT_PROMPTS, ours, rendered):
        # The tokens llama.cpp makes of the rendered prompt are stylerl's (same vocabulary, merges, splits).
        assert llm.tokenize(r["text"].encode(), add_bos=False, special=True) == r["ids"], p
        ids, new = list(r["ids"]), []
        llm.reset()
        llm.eval(ids)
        for _ in range(24):
            t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            if t == llm.token_eos():
                break
            new.append(t)
            llm.eval([t])
        got = tok.decode(new, skip_special_tokens=True)
        assert got == o["text"], (p, got, o["text"])


def test_lora_adapter_at_scale_1_and_half_matches_stylerl(stylerl, smol_dir, work):
    adapter = work / "lora" / "adapter.gguf"
    base = stylerl_logits(stylerl, smol_dir, work, tag="base")
    for scale, spec in [(1.0, str(work / "peft")), (0.5, f"{work / 'peft'}:0.5")]:
        ref = stylerl_logits(stylerl, smol_dir, work, spec, tag=f"lora{scale}")
        # The adapter moves the logits far beyond the tolerance, so a wrong scale or row order fails.
        moved = max(float(np.abs(a[1] - b[1]).max() / np.abs(b[1]).max()) for a, b in zip(ref, base))
        assert moved > 50 * RTOL_LLAMA_CPP, moved
        compare(llama_cpp_model(work / "smol-f32.gguf", adapter, scale), ref, f"LoRA at scale {scale}")


def test_q8_0_export_is_llama_cpp_q8_0(stylerl, smol_dir, work):
    from gguf import GGUFReader

    theirs = work / "llama-cpp-q8_0.gguf"
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPE_Q8_0
    params.nthread = 2
    rc = timed("llama.cpp quantize", llama_cpp.llama_model_quantize,
               str(work / "smol-f32.gguf").encode(), str(theirs).encode(), params)
    assert rc == 0
    ours_r, theirs_r = GGUFReader(str(work / "q8" / "smol-q8_0.gguf")), GGUFReader(str(theirs))
    t_by_name = {t.name: t for t in theirs_r.tensors}
    assert {t.name for t in ours_r.tensors} == set(t_by_name)
    for t in ours_r.tensors:
        o = t_by_name[t.name]
        assert t.tensor_type == o.tensor_type, t.name
        assert bytes(t.data.tobytes()) == bytes(o.data.tobytes()), f"{t.name}: bytes differ from llama.cpp's q8_0"
    # So the logits are llama.cpp's q8_0 logits; their distance from f32 is q8_0's own error.
    ref = [(ids, llama_cpp_logits(llama_cpp_model(work / "smol-f32.gguf"), ids))
           for ids, _ in stylerl_logits(stylerl, smol_dir, work, tag="base")]
    ours, lc = llama_cpp_model(work / "q8" / "smol-q8_0.gguf"), llama_cpp_model(theirs)
    for i, (ids, f32) in enumerate(ref):
        a, b = llama_cpp_logits(ours, ids), llama_cpp_logits(lc, ids)
        err_ours, err_lc = np.abs(a - f32).max(), np.abs(b - f32).max()
        print(f"prompt {i}: q8_0 vs f32 max |d| ours {err_ours:.3e}, llama.cpp's {err_lc:.3e}")
        assert err_ours <= err_lc * 1.0001 + 1e-6 * np.abs(f32).max(), (err_ours, err_lc)
        assert err_ours > 0  # the q8_0 file really is quantized


def permute(w, n_head):
    """llama.cpp's converter's Q/K row order."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_gguf_package_reads_weights_and_metadata(smol_dir, work):
    from gguf import GGUFReader
    from safetensors.numpy import load_file

    r = GGUFReader(str(work / "smol-f32.gguf"))
    cfg = json.loads((smol_dir / "config.json").read_text())
    f = {k: v.contents() for k, v in r.fields.items()}
    assert f["general.architecture"] == "llama" and f["general.type"] == "model"
    assert f["llama.attention.head_count_kv"] == cfg["num_key_value_heads"]
    assert f["llama.block_count"] == cfg["num_hidden_layers"]
    tj = json.loads((smol_dir / "tokenizer.json").read_text())
    assert len(f["tokenizer.ggml.tokens"]) == cfg["vocab_size"]
    assert f["tokenizer.ggml.merges"][:2] == [" ".join(m) if isinstance(m, list) else m for m in tj["model"]["merges"][:2]]
    assert f["tokenizer.chat_template"] == json.loads((smol_dir / "tokenizer_config.json").read_text())["chat_template"]
    w = load_file(str(smol_dir / "model.safetensors"))
    t = {x.name: x for x in r.tensors}
    assert "output.weight" not in t  # tied
    q = np.asarray(t["blk.3.attn_q.weight"].data)
    np.testing.assert_array_equal(q, permute(w["model.layers.3.self_attn.q_proj.weight"], cfg["num_attention_heads"]))
    k = np.asarray(t["blk.3.attn_k.weight"].data)
    np.testing.assert_array_equal(k, permute(w["model.layers.3.self_attn.k_proj.weight"], cfg["num_key_value_heads"]))
    np.testing.assert_array_equal(np.asarray(t["blk.3.ffn_down.weight"].data), w["model.layers.3.mlp.down_proj.weight"])
    a = GGUFReader(str(work / "lora" / "adapter.gguf"))
    af = {k: v.contents() for k, v in a.fields.items()}
    assert (af["general.type"], af["adapter.type"], af["adapter.lora.alpha"]) == ("adapter", "lora", 16.0)
    at = {x.name: x for x in a.tensors}
    assert len(at) == 2 * 7 * cfg["num_hidden_layers"]
    assert list(at["blk.0.attn_q.weight.lora_a"].shape) == [cfg["hidden_size"], 8]
    assert list(at["blk.0.attn_k.weight.lora_b"].shape) == [8, cfg["num_key_value_heads"] * cfg["head_dim"]]


def test_transformers_reads_the_export_to_the_same_logits(stylerl, smol_dir, work):
    from transformers import AutoModelForCausalLM

    ref = stylerl_logits(stylerl, smol_dir, work, tag="base")
    m = timed("transformers GGUF load", AutoModelForCausalLM.from_pretrained, str(work),
              gguf_file="smol-f32.gguf", torch_dtype=torch.float32).eval()
    for i, (ids, want) in enumerate(ref):
        with torch.no_grad():
            got = m(torch.tensor([ids])).logits[0]
        w = assert_close(got, want, RTOL_HF, f"transformers from the export, prompt {i}")
        print(f"prompt {i}: max |transformers - stylerl| / max|logit| = {w:.2e}")


def test_llama3_rope_and_untied_head_match_llama_cpp(stylerl, smol_dir, tmp_path):
    """A tiny random Llama with Llama-3 RoPE scaling (exported as rope_freqs.weight) and an untied
    head (output.weight), with SmolLM2's tokenizer: llama.cpp's logits equal stylerl's at positions
    past the original context, where the scaling matters."""
    import shutil

    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_theta=50000.0,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                      "original_max_position_embeddings": 32},
        bos_token_id=1, eos_token_id=2,
    )
    d = tmp_path / "tiny"
    LlamaForCausalLM(cfg).eval().save_pretrained(d)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(smol_dir / f, d / f)
    stylerl("export-gguf", "--model", d, "--out", tmp_path / "tiny.gguf")
    from gguf import GGUFReader

    names = {t.name for t in GGUFReader(str(tmp_path / "tiny.gguf")).tensors}
    assert {"rope_freqs.weight", "output.weight"} <= names
    gen = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, 49152, (n,), generator=gen).tolist() for n in (5, 120)]
    out = tmp_path / "l.safetensors"
    stylerl("logits", "--model", d, "--input", write_jsonl(tmp_path / "ids.jsonl", prompts), "--out", out, *T1)
    from safetensors.numpy import load_file

    got = load_file(str(out))
    llm = llama_cpp_model(tmp_path / "tiny.gguf")
    compare(llm, [(p, got[f"logits_{i}"]) for i, p in enumerate(prompts)], "llama3 RoPE, untied head")


@pytest.mark.parametrize("family", ["qwen2", "qwen3", "gpt2"])
def test_family_export_matches_llama_cpp(stylerl, smol_dir, tmp_path, family):
    """A tiny random Qwen2 (q/k/v biases, tied head), Qwen3 (q/k RMSNorm, head_dim 24 ≠ 64/4,
    untied head) or GPT-2 (learned positions, LayerNorm, fused Conv1D qkv), every parameter
    random (test_families.randomize), with SmolLM2's tokenizer:
    llama.cpp's logits on the f32 export equal stylerl's, greedy decoding gives the same tokens,
    and a PEFT LoRA exported with --adapter-only and applied by llama.cpp at scale 1 equals
    stylerl with the adapter."""
    import shutil

    from test_families import build, randomize

    torch.manual_seed(0)
    m = randomize(build(family), 1).eval()
    d = tmp_path / "model"
    m.save_pretrained(d)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(smol_dir / f, d / f)
    stylerl("export-gguf", "--model", d, "--out", tmp_path / "m.gguf")
    from gguf import GGUFReader

    f = {k: v.contents() for k, v in GGUFReader(str(tmp_path / "m.gguf")).fields.items()}
    assert f["general.architecture"] == family
    if family != "gpt2":
        head_dim = getattr(m.config, "head_dim", None) or m.config.hidden_size // m.config.num_attention_heads
        assert f[f"{family}.attention.key_length"] == head_dim

    gen = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, 49152, (n,), generator=gen).tolist() for n in (5, 40, 120)]
    ids_file = write_jsonl(tmp_path / "ids.jsonl", prompts)
    from safetensors.numpy import load_file

    def ours(*extra, tag):
        out = tmp_path / f"l_{tag}.safetensors"
        stylerl("logits", "--model", d, "--input", ids_file, "--out", out, *T1, *extra)
        got = load_file(str(out))
        return [(p, got[f"logits_{i}"]) for i, p in enumerate(prompts)]

    # GPT-2 measured 5e-4 of max|logit| (Qwen about 1e-6): llama.cpp evaluates GELU through an
    # f16 lookup table; emulating that table in transformers more than halves the gap.
    base = ours(tag="base")
    llm = llama_cpp_model(tmp_path / "m.gguf")
    compare(llm, base, f"{family} f32 export")

    # Greedy: llama.cpp's argmax token by token equals stylerl generate --greedy.
    texts = ["The quick brown fox jumps over the lazy dog.", "ok, see you at 5pm then!"]
    rows = [json.loads(l) for l in stylerl("generate", "--model", d, "--input", write_jsonl(tmp_path / "t.jsonl", texts),
                                           "--greedy", "--max-new-tokens", "20", "--json", *T1).stdout.splitlines()]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(d))
    eos = set(m.config.eos_token_id if isinstance(m.config.eos_token_id, list) else [m.config.eos_token_id])
    for text, row in zip(texts, rows):
        ids = tok(text)["input_ids"]
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ids, text
        want = [t for t in row["tokens"] if t not in eos]
        assert len(want) >= 5, "generation stopped at once: the comparison would see little"
        new = []
        llm.reset()
        llm.eval(ids)
        while len(new) < len(want):
            t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            if t in eos:
                break
            new.append(t)
            llm.eval([t])
        assert new == want, (family, text, new, want)

    # A random nonzero LoRA on every linear layer (not the head), written by PEFT.
    cfg = peft.LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, target_modules="all-linear",
                          init_lora_weights=False)
    torch.manual_seed(2)
    pm = peft.get_peft_model(copy.deepcopy(m), cfg)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.mul_(0.3)
    pm.save_pretrained(tmp_path / "peft")
    stylerl("export-gguf", "--adapter-only", tmp_path / "peft", "--model", d, "--out", tmp_path / "lora" / "a.gguf")
    ref = ours("--adapter", tmp_path / "peft", tag="lora")
    moved = max(float(np.abs(a[1] - b[1]).max() / np.abs(b[1]).max()) for a, b in zip(ref, base))
    assert moved > 50 * RTOL_LLAMA_CPP, moved
    compare(llama_cpp_model(tmp_path / "m.gguf", tmp_path / "lora" / "a.gguf", 1.0), ref, f"{family} LoRA at scale 1")
