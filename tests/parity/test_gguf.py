"""`stylerl import-gguf` against transformers' own GGUF loading and the `gguf` package.

- The shipped SmolLM2 GGUF: the imported directory's logits equal transformers' GGUF logits,
  and its tokenizer.json (through the Rust tokenizers crate) gives transformers' GGUF ids.
- A tiny hand-built Llama GGUF with every supported quant type (random blocks): each imported
  tensor equals `gguf.quants.dequantize` with the q/k permutation undone here, and equals what
  transformers loads from the same file.
"""
import json
import os
import time

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"

from conftest import GGUF, write_jsonl  # noqa: E402
from closeness import assert_close  # noqa: E402

# Ours vs transformers: the same float32 math summed in another order through many layers; about
# 1e-6 of the logits' magnitude apart, 1e-4 holds on any vendor's kernels while a wrong weight,
# position or mask moves logits by O(1).
RTOL = 1e-4

DATA = os.path.join(os.path.dirname(__file__), "data")
PROMPTS = [
    "Hello, my name is",
    "The capital of France is Paris. The capital of Germany is",
    "def fibonacci(n):\n    if n < 2:\n        return n\n",
    "<|im_start|>user\nRewrite this in a friendly tone: the meeting moved to 3pm.<|im_end|>\n<|im_start|>assistant\n",
]


@pytest.fixture(scope="module")
def imported(stylerl, tmp_path_factory):
    out = tmp_path_factory.mktemp("smol") / "hf"
    t0 = time.time()
    stylerl("import-gguf", GGUF, "--out", out)
    print(f"import-gguf took {time.time() - t0:.1f}s")
    return out


@pytest.fixture(scope="module")
def ref_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name)


def test_config_matches_gguf_metadata(imported):
    from gguf import GGUFReader

    r = GGUFReader(str(GGUF))
    meta = {k: f.contents() for k, f in r.fields.items() if not k.startswith("tokenizer.ggml.")}
    cfg = json.loads((imported / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"] and cfg["model_type"] == "llama"
    assert cfg["hidden_size"] == meta["llama.embedding_length"]
    assert cfg["intermediate_size"] == meta["llama.feed_forward_length"]
    assert cfg["num_hidden_layers"] == meta["llama.block_count"]
    assert cfg["num_attention_heads"] == meta["llama.attention.head_count"]
    assert cfg["num_key_value_heads"] == meta["llama.attention.head_count_kv"]
    assert cfg["head_dim"] == meta["llama.embedding_length"] // meta["llama.attention.head_count"]
    assert cfg["max_position_embeddings"] == meta["llama.context_length"]
    assert np.float32(cfg["rms_norm_eps"]) == np.float32(meta["llama.attention.layer_norm_rms_epsilon"])
    assert cfg["rope_theta"] == meta["llama.rope.freq_base"]
    assert cfg["vocab_size"] == meta["llama.vocab_size"]
    has_output = any(t.name == "output.weight" for t in r.tensors)
    assert cfg["tie_word_embeddings"] is (not has_output)
    assert (cfg["bos_token_id"], cfg["eos_token_id"]) == (1, 2)
    tc = json.loads((imported / "tokenizer_config.json").read_text())
    assert tc["chat_template"] == r.fields["tokenizer.chat_template"].contents()
    assert (tc["bos_token"], tc["eos_token"]) == ("<|im_start|>", "<|im_end|>")


def test_logits_match_transformers_gguf_loading(imported, ref_tokenizer):
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM

    with safe_open(str(imported / "model.safetensors"), "pt") as f:
        assert "lm_head.weight" not in f.keys()  # tied: no separate head
    ref = AutoModelForCausalLM.from_pretrained(str(GGUF.parent), gguf_file=GGUF.name, dtype=torch.float32).eval()
    ours = AutoModelForCausalLM.from_pretrained(str(imported), dtype=torch.float32).eval()
    assert ours.config.tie_word_embeddings
    worst = 0.0
    with torch.no_grad():
        for p in PROMPTS:
            ids = ref_tokenizer(p, return_tensors="pt").input_ids
            a, b = ref(ids).logits, ours(ids).logits
            assert a.shape == b.shape
            assert a.abs().max().item() > 1.0  # real logits, not an empty model
            worst = max(worst, assert_close(b, a, RTOL, f"logits of {p!r}"))
    print(f"max logits difference / max |logits| over {len(PROMPTS)} prompts: {worst:.3g}")


def _strings():
    with open(os.path.join(DATA, "tokenizer_strings.json"), encoding="utf-8") as f:
        return json.load(f)


def _rust_tokenize(stylerl, model_dir, strings, tmp_path):
    path = write_jsonl(tmp_path / "strings.jsonl", strings)
    rows = [json.loads(l) for l in stylerl("tokenize", "--model", model_dir, "--input", path, "--decode").stdout.splitlines()]
    assert len(rows) == len(strings)
    return rows


def test_tokenizer_ids_match_transformers_gguf_tokenizer(stylerl, imported, ref_tokenizer, tmp_path):
    from transformers import AutoTokenizer

    strings = _strings()
    assert len(strings) >= 200
    rows = _rust_tokenize(stylerl, imported, strings, tmp_path)
    wrong = [(s, r["ids"]) for s, r in zip(strings, rows) if r["ids"] != ref_tokenizer(s, add_special_tokens=False).input_ids]
    assert not wrong, f"{len(wrong)} strings tokenize differently, first: {wrong[0]!r}"
    not_round = [(s, r["decoded"]) for s, r in zip(strings, rows) if r["decoded"] != s]
    assert not not_round, f"{len(not_round)} strings do not round-trip, first: {not_round[0]!r}"
    # Specials written in the text come out as their single ids.
    chat = strings.index("<|im_start|>user\nHello<|im_end|>\n")
    assert rows[chat]["ids"][0] == 1 and 2 in rows[chat]["ids"]
    # transformers reading the directory agrees too (its defaults: no BOS added).
    ours = AutoTokenizer.from_pretrained(str(imported))
    wrong = [s for s in strings if ours(s).input_ids != ref_tokenizer(s).input_ids]
    assert not wrong, f"{len(wrong)} strings differ under transformers, first: {wrong[0]!r}"
    assert ours.decode(ours("<|im_start|>hi there<|im_end|>").input_ids, skip_special_tokens=True) == "hi there"
    print(f"{len(strings)} strings: identical ids, all round-trip")


def test_llama_cpp_pretok_matches_original_smollm_split(stylerl, ref_tokenizer, tmp_path):
    """--pretok llama.cpp writes SmolLM2's original Digits + ByteLevel split; it differs from
    transformers' GGUF tokenizer only where a whitespace run meets a digit."""
    from tokenizers import Tokenizer, pre_tokenizers

    out = tmp_path / "lc"
    stylerl("import-gguf", GGUF, "--out", out, "--pretok", "llama.cpp")
    original = Tokenizer.from_str(ref_tokenizer.backend_tokenizer.to_str())
    original.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    )
    strings = _strings()
    rows = _rust_tokenize(stylerl, out, strings, tmp_path)
    differs = 0
    for s, r in zip(strings, rows):
        assert r["ids"] == original.encode(s, add_special_tokens=False).ids, repr(s)
        if r["ids"] != ref_tokenizer(s, add_special_tokens=False).input_ids:
            differs += 1
            assert any(c.isspace() for c in s) and any(c.isdigit() for c in s), repr(s)
    assert differs > 0
    print(f"--pretok llama.cpp differs from transformers on {differs}/{len(strings)} strings")


# ---------------------------------------------------------------- tiny hand-built GGUF

HIDDEN, FFN, HEADS, KV_HEADS, LAYERS = 256, 512, 4, 2, 2


def _tiny_vocab():
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tokens = list(bytes_to_unicode().values()) + ["Ġt", "he", "<|s|>", "<|e|>", "<think>"]
    types = [1] * 258 + [3, 3, 4]
    return tokens, types, ["Ġ t", "h e"]


def _quant_blocks(rng, qtype, rows, cols):
    """Random blocks with sane f16 scales (random bytes there could be inf or NaN)."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType as Q

    block, size = GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(rows, cols // block, size), dtype=np.uint8)
    scales = {Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q8_0: [0], Q.Q4_K: [0, 2], Q.Q6_K: [208]}[qtype]
    for off in scales:
        d = rng.uniform(0.001, 0.05, size=(rows, cols // block)).astype(np.float16)
        raw[:, :, off : off + 2] = d.view(np.uint8).reshape(rows, cols // block, 2)
    return raw.reshape(rows, -1)


def _tiny_tensors(rng):
    """name -> (array to write, ggml type or None for plain f32/f16)."""
    from gguf.constants import GGMLQuantizationType as Q

    hd = HIDDEN // HEADS
    plan = {
        "token_embd.weight": (261, HIDDEN, Q.Q4_K),
        "output.weight": (261, HIDDEN, Q.Q6_K),
        "output_norm.weight": (HIDDEN, None, Q.F32),
    }
    kinds = [
        {"attn_q": Q.Q6_K, "attn_k": Q.Q4_0, "attn_v": Q.Q4_1, "attn_output": Q.Q8_0, "ffn_gate": Q.F16,
         "ffn_up": Q.BF16, "ffn_down": Q.Q4_K},
        {"attn_q": Q.Q8_0, "attn_k": Q.Q6_K, "attn_v": Q.F32, "attn_output": Q.Q4_K, "ffn_gate": Q.Q4_1,
         "ffn_up": Q.Q4_0, "ffn_down": Q.F16},
    ]
    shapes = {"attn_q": (HEADS * hd, HIDDEN), "attn_k": (KV_HEADS * hd, HIDDEN), "attn_v": (KV_HEADS * hd, HIDDEN),
              "attn_output": (HIDDEN, HIDDEN), "ffn_gate": (FFN, HIDDEN), "ffn_up": (FFN, HIDDEN), "ffn_down": (HIDDEN, FFN)}
    for layer in range(LAYERS):
        plan[f"blk.{layer}.attn_norm.weight"] = (HIDDEN, None, Q.F32)
        plan[f"blk.{layer}.ffn_norm.weight"] = (HIDDEN, None, Q.F32)
        for leaf, ty in kinds[layer].items():
            plan[f"blk.{layer}.{leaf}.weight"] = (*shapes[leaf], ty)
    out = {}
    for name, (rows, cols, ty) in plan.items():
        if cols is None:
            out[name] = (rng.uniform(0.5, 1.5, size=rows).astype(np.float32), None)
        elif ty == Q.F32:
            out[name] = (rng.normal(0, 0.05, size=(rows, cols)).astype(np.float32), None)
        elif ty == Q.F16:
            out[name] = (rng.normal(0, 0.05, size=(rows, cols)).astype(np.float16), None)
        elif ty == Q.BF16:
            f = rng.normal(0, 0.05, size=(rows, cols)).astype(np.float32)
            out[name] = ((f.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8).reshape(rows, -1), ty)
        else:
            out[name] = (_quant_blocks(rng, ty, rows, cols), ty)
    return out


def _write_tiny_gguf(path, tensors):
    import gguf

    tokens, types, merges = _tiny_vocab()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(128)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(50000.0)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(258)
    w.add_eos_token_id(259)
    for name, (arr, ty) in tensors.items():
        w.add_tensor(name, arr, raw_dtype=ty)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _expected(name, arr, ty):
    """Reference values: gguf's dequantizer, then llama.cpp's q/k permutation undone."""
    from gguf.quants import dequantize

    x = np.asarray(arr, dtype=np.float32) if ty is None else dequantize(arr, ty).astype(np.float32)
    heads = HEADS if ".attn_q." in name else KV_HEADS if ".attn_k." in name else None
    if heads:
        rows, cols = x.shape
        x = x.reshape(heads, rows // heads // 2, 2, cols).swapaxes(1, 2).reshape(rows, cols)
    return x


def test_tiny_gguf_every_quant_type(stylerl, tmp_path):
    from safetensors.numpy import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rng = np.random.default_rng(7)
    tensors = _tiny_tensors(rng)
    path = tmp_path / "tiny.gguf"
    _write_tiny_gguf(path, tensors)
    out = tmp_path / "tiny_hf"
    stylerl("import-gguf", path, "--out", out)
    got = load_file(str(out / "model.safetensors"))
    names = {
        "token_embd.weight": "model.embed_tokens.weight", "output.weight": "lm_head.weight",
        "output_norm.weight": "model.norm.weight",
    }
    leaf = {"attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
            "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
            "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
    for name, (arr, ty) in tensors.items():
        parts = name.split(".")
        hf = names.get(name) or f"model.layers.{parts[1]}.{leaf[parts[2]]}.weight"
        want = _expected(name, arr, ty)
        assert got[hf].shape == want.shape, name
        np.testing.assert_array_equal(got[hf], want, err_msg=name)
    assert len(got) == len(tensors)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["tie_word_embeddings"] is False and cfg["num_key_value_heads"] == KV_HEADS

    # transformers' own GGUF loading of the same file gives the same weights.
    ref = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="tiny.gguf", dtype=torch.float32)
    for k, v in ref.state_dict().items():
        if k in got:
            # One dequantisation (scale x code + offset) each side: a few float32 roundings.
            assert_close(got[k], v, 1e-6, k)
    # and its tokenizer: control tokens special, the user-defined one whole but not special.
    tok = AutoTokenizer.from_pretrained(str(out))
    ref_tok = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="tiny.gguf")
    for s in ["the <think>x</think> <|s|>hi<|e|>", " the the", "<|s|><|e|>"]:
        assert tok(s).input_ids == ref_tok(s).input_ids, s
    assert tok.convert_tokens_to_ids("<think>") == 260 and "<think>" not in tok.all_special_tokens


@pytest.mark.parametrize("dtype,torch_dtype,name", [("bf16", torch.bfloat16, "bfloat16"), ("f16", torch.float16, "float16")])
def test_half_outputs_are_rounded_f32(stylerl, imported, tmp_path, dtype, torch_dtype, name):
    from safetensors.torch import load_file

    out = tmp_path / dtype
    stylerl("import-gguf", GGUF, "--out", out, "--dtype", dtype)
    f32 = load_file(str(imported / "model.safetensors"))
    half = load_file(str(out / "model.safetensors"))
    assert set(f32) == set(half)
    for k in f32:
        assert half[k].dtype == torch_dtype
        assert torch.equal(half[k], f32[k].to(torch_dtype)), k
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == name
