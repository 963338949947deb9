"""LoRA files, AdamW and schedules: stylerl against PEFT / torch / transformers.

How it runs: one module-scoped fixture writes the inputs (a tiny random transformers
Llama, two PEFT adapters with non-zero B, random optimizer inputs) into a temp dir, then
runs the ignored Rust test `tests/lora_peft_io.rs` with STYLERL_PARITY_DIR pointing at it:

    cargo test --release --test lora_peft_io -- --ignored

Each test below compares one thing the Rust side wrote with the Python reference.
"""
import contextlib
import io
import json
import math
import os
import subprocess
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from closeness import assert_close

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]

peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")


def tiny_llama():
    cfg = transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).eval()


def strip(key):
    """PEFT file key → (module path, 'A'|'B')."""
    body = key.removeprefix("base_model.model.").removesuffix(".weight")
    path, which = body.rsplit(".lora_", 1)
    return path, which


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("lora_parity")
    model = tiny_llama()
    model.save_pretrained(d / "base")
    linear = [(n, m.in_features, m.out_features) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    (d / "modules.json").write_text(json.dumps(linear))
    (d / "base_params.json").write_text(json.dumps({"count": sum(p.numel() for p in model.parameters())}))

    # PEFT adapters with non-zero B (init_lora_weights=False keeps nn.Linear's random init)
    for name, kw in [
        ("peft_adapter", dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])),
        ("peft_adapter_rs", dict(r=8, lora_alpha=4, use_rslora=True, target_modules="all-linear")),
    ]:
        torch.manual_seed(1)
        pm = peft.get_peft_model(tiny_llama(), peft.LoraConfig(task_type="CAUSAL_LM", init_lora_weights=False, **kw))
        pm.save_pretrained(d / name)

    # optimizer case: 3 tensors, 10 steps of random gradients, clipping active on some
    torch.manual_seed(2)
    shapes = [(4, 6), (5,), (3, 2, 2)]
    steps, max_norm = 10, 3.0
    case = {f"p{i}": torch.randn(s) for i, s in enumerate(shapes)}
    for s in range(steps):
        for i, sh in enumerate(shapes):
            case[f"g{s}_{i}"] = torch.randn(sh) * (0.3 + s / 3)
    hp = dict(lr=0.01, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
    meta = {k: repr(v) for k, v in hp.items()} | {"num_params": "3", "steps": str(steps), "max_norm": repr(max_norm)}
    save_file(case, d / "optim_case.safetensors", metadata=meta)

    # the same build environment as scripts/env.sh, so cargo reuses the release build
    venv = ROOT / ".venv"
    env = dict(os.environ, STYLERL_PARITY_DIR=str(d), LIBTORCH_USE_PYTORCH="1", VIRTUAL_ENV=str(venv))
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '')}"
    env.pop("LD_LIBRARY_PATH", None)
    p = subprocess.run(
        ["cargo", "test", "--release", "--quiet", "--test", "lora_peft_io", "--", "--ignored"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )
    assert p.returncode == 0, f"rust side failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return d, case, hp, steps, max_norm


def load_with_peft(path):
    """PeftModel.from_pretrained with every warning recorded; returns (model, warnings)."""
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        pm = peft.PeftModel.from_pretrained(tiny_llama(), str(path))
    msgs = [str(x.message) for x in w]
    return pm, msgs


def assert_clean(msgs):
    bad = [m for m in msgs if any(s in m.lower() for s in ("missing", "unexpected", "unrecognized", "not found", "mismatch"))]
    assert not bad, bad


def peft_layers(pm):
    """module path → LoRA layer of a loaded PeftModel."""
    out = {}
    for name, mod in pm.base_model.model.named_modules():
        if hasattr(mod, "lora_A") and "default" in getattr(mod, "lora_A", {}):
            out[name] = mod
    return out


def test_stylerl_reads_peft_adapters_exactly(work):
    d = work[0]
    for name in ["peft_adapter", "peft_adapter_rs"]:
        ref = load_file(d / name / "adapter_model.safetensors")
        got = load_file(d / "rust_read" / f"{name}.safetensors")
        assert len(got) == 3 * len(ref) // 2
        pm, _ = load_with_peft(d / name)
        layers = peft_layers(pm)
        for k, t in ref.items():
            path, which = strip(k)
            assert torch.equal(got[f"{path}.{which}"], t), k
            assert abs(got[f"{path}.scaling"].item() - layers[path].scaling["default"]) < 1e-12, path
        assert any(t.abs().sum() > 0 for k, t in ref.items() if "lora_B" in k)


@pytest.mark.parametrize("name", ["stylerl_adapter", "stylerl_adapter_rs", "stylerl_bitlora"])
def test_peft_loads_stylerl_adapters_cleanly(work, name):
    d = work[0]
    pm, msgs = load_with_peft(d / name)
    assert_clean(msgs)
    # the reverse check that PEFT reports no missing/unexpected adapter keys
    res = pm.load_adapter(str(d / name), adapter_name="again")
    assert not [k for k in res.missing_keys if "lora_" in k], res.missing_keys
    assert not res.unexpected_keys, res.unexpected_keys
    cfg = json.loads((d / name / "adapter_config.json").read_text())
    saved = load_file(d / name / "adapter_model.safetensors")
    layers = peft_layers(pm)
    assert len(layers) * 2 == len(saved)
    for k, t in saved.items():
        path, which = strip(k)
        lin = getattr(layers[path], f"lora_{which}")["default"]
        assert torch.equal(lin.weight.detach(), t), k
        want = cfg["lora_alpha"] / (math.sqrt(cfg["r"]) if cfg["use_rslora"] else cfg["r"])
        assert abs(layers[path].scaling["default"] - want) < 1e-12
    if name == "stylerl_adapter":
        # all-linear: every linear but lm_head, and B is non-zero
        assert len(layers) == 14 and "lm_head" not in layers
    if name == "stylerl_adapter_rs":
        assert sorted({p.rsplit(".", 1)[1] for p in layers}) == ["q_proj", "v_proj"]
        assert cfg["use_rslora"] is True and cfg["r"] == 16
    if name == "stylerl_bitlora":
        for k, t in saved.items():
            assert len(torch.unique(t)) <= 3, k
        sizes = json.loads((d / "bitlora_sizes.json").read_text())
        # tiny tensors: the 4-byte scales weigh in (≈16× on real sizes, see tests/lora_bitlora.rs)
        assert 13.0 < sizes["fp32_payload"] / sizes["packed_payload"] <= 16.0


def test_trainable_line_matches_peft(work):
    d = work[0]
    torch.manual_seed(0)
    pm = peft.get_peft_model(tiny_llama(), peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        pm.print_trainable_parameters()
    assert buf.getvalue().strip() == (d / "trainable_line.txt").read_text().strip()


def test_kaiming_init_matches_peft_bound(work):
    d = work[0]
    a = load_file(d / "init.safetensors")["A"]
    lin = torch.nn.Linear(400, 64, bias=False)
    torch.nn.init.kaiming_uniform_(lin.weight, a=math.sqrt(5))
    bound = 1 / math.sqrt(400)
    for w in (a, lin.weight.detach()):
        assert w.abs().max() <= bound and w.abs().max() > 0.99 * bound
    assert abs(a.std() / lin.weight.detach().std() - 1) < 0.05


def test_merge_matches_peft_merge_and_unload(work):
    d = work[0]
    pm, _ = load_with_peft(d / "peft_adapter")
    merged = pm.merge_and_unload().state_dict()
    got = load_file(d / "merged.safetensors")
    assert len(got) == 6
    for k, t in got.items():
        # W + s·B·A with short products: a few float32 roundings of the weights' magnitude.
        assert_close(t, merged[k], 1e-6, k)


def test_adamw_and_clipping_match_torch(work):
    d, case, hp, steps, max_norm = work
    got = load_file(d / "optim_rust.safetensors")
    params = [case[f"p{i}"].clone().requires_grad_(True) for i in range(3)]
    opt = torch.optim.AdamW(params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"], weight_decay=hp["weight_decay"])
    clipped = 0
    for s in range(steps):
        opt.zero_grad()
        for i, p in enumerate(params):
            p.grad = case[f"g{s}_{i}"].clone()
        norm = torch.nn.utils.clip_grad_norm_(params, max_norm).item()
        clipped += norm > max_norm
        assert abs(got["norms"][s].item() - norm) < 1e-5 * max(1, norm), s
        for g in opt.param_groups:
            g["lr"] = hp["lr"] * (1 - s / steps)
        opt.step()
        for i, p in enumerate(params):
            # Elementwise AdamW steps with sqrt and division: a few roundings per step.
            assert_close(got[f"s{s}_p{i}"], p, 1e-6, f"step {s}, parameter {i}")
    assert 0 < clipped < steps  # both regimes exercised


def test_schedules_match_transformers(work):
    d = work[0]
    got = json.loads((d / "sched_rust.json").read_text())
    makers = {
        "cosine": lambda o: transformers.get_cosine_schedule_with_warmup(o, 7, 50),
        "linear": lambda o: transformers.get_linear_schedule_with_warmup(o, 7, 50),
        "constant": lambda o: transformers.get_constant_schedule_with_warmup(o, 7),
    }
    for name, make in makers.items():
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=3e-4)
        sched = make(opt)
        want = []
        for _ in range(60):
            want.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert len(got[name]) == 60
        for k, (a, b) in enumerate(zip(got[name], want)):
            assert abs(a - b) < 1e-12, (name, k, a, b)
