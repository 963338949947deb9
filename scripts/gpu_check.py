#!/usr/bin/env python3
"""The paper configuration on a GPU, checked in one run: it runs, it is right, it is fast.

    scripts/gpu_check.sh [--rehearse] [OUT_DIR]        (the shell script sets the environment)

`--mode gpu` (on the GPU machine): `stylerl info` sees CUDA through the machine's torch;
CUDA logits, one SFT step and one GRPO step equal the CPU's (a tiny random Llama, and
Llama-3.2-3B layer shapes); then, at Llama-3.2-3B shapes in bf16 with random weights, decode
tokens/s and the HBM roofline fraction, SFT LoRA tokens/s and MFU, one GRPO step at the paper's
shape with its split and peak memory, each against transformers + PEFT in the same run.

`--mode rehearse` runs the same steps on CPU at tiny shapes (the "device" side is the CPU with
another thread count), so the script is exercised by scripts/test.sh before a GPU is at hand.

Writes OUT_DIR/summary.json (one schema for both modes; see `summary()`) and OUT_DIR/log.txt.
Every step is guarded: a failure or a timeout is recorded and the next step runs. Heavy work
runs in child processes (this file with --child NAME) so each can be timed out and frees the GPU.
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

SCHEMA = 1

# Llama-3.2-3B-Instruct's config.json, the shapes every speed figure is measured at.
LLAMA32_3B = dict(
    vocab_size=128256, hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
    num_attention_heads=24, num_key_value_heads=8, head_dim=128, max_position_embeddings=131072,
    rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=True, hidden_act="silu",
    initializer_range=0.02,
    rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
)
# The rehearsal's stand-in: the same architecture (GQA, llama3 RoPE, tied head) in miniature.
SMALL = dict(LLAMA32_3B, vocab_size=4096, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
             num_attention_heads=8, num_key_value_heads=4, head_dim=32, max_position_embeddings=2048,
             rope_scaling=dict(LLAMA32_3B["rope_scaling"], original_max_position_embeddings=64))
TINY = dict(SMALL, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16)

# Per mode: the device under test, the shapes, and the sizes of each measurement.
MODES = {
    "gpu": dict(
        device="cuda", budget_s=470, speed_shape=LLAMA32_3B, speed_dtype="bf16", parity_layers=2,
        decode_batches=[1, 8, 64], decode_prompt=32, decode_new=128,
        sft_seq=512, sft_batches=[1, 8], sft_warmup=2, sft_steps=6,
        grpo=dict(P=4, G=8, L=256, mu=4, micro=16, warmup=1, steps=2), grpo_ref_steps=1,
        copy_mib=2048,
    ),
    "rehearse": dict(  # speed in f32: bf16 matmuls on a CPU without AVX-512 BF16 are ~50x slower
        device="cpu", budget_s=330, speed_shape=SMALL, speed_dtype="f32", parity_layers=2,
        decode_batches=[1, 8, 64], decode_prompt=8, decode_new=8,
        sft_seq=64, sft_batches=[1, 4], sft_warmup=1, sft_steps=2,
        grpo=dict(P=2, G=4, L=8, mu=2, micro=4, warmup=1, steps=1), grpo_ref_steps=1,
        copy_mib=64,
    ),
}

# Tolerances, relative to the magnitude of what is compared (as tests/parity/closeness.py).
RTOL_F32 = 1e-4       # the same f32 math summed in another order: ~1e-6 apart; a bug moves O(1)
RTOL_BF16 = 5e-2      # bf16 keeps 8 bits: logits of a 2-layer model land ~1e-2 apart
RTOL_STEP = 1e-3      # loss / grad norm after a training step, f32
RTOL_ADAPTER = 1e-2   # ||B_dev - B_cpu|| / ||B_cpu||: Adam's first steps are ~lr·sign(g), and a
                      # gradient element within rounding of 0 may flip sign: a few of millions

# Dense bf16 peak FLOP/s by device name (vendor datasheets), for MFU.
PEAK_BF16 = [("H200", 989e12), ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12),
             ("A100", 312e12), ("L40S", 362e12)]
# HBM bandwidth by name (datasheets), reported next to the measured copy bandwidth.
HBM_SPEC = [("H200", 4.8e12), ("H100 PCIe", 2.0e12), ("H100 NVL", 3.9e12), ("H100", 3.35e12), ("A100", 2.0e12)]

GOALS = {
    "decode_roofline_b1": ("decode at batch 1 reaches >= 70% of the HBM roofline", 0.70),
    "sft_lora_mfu": ("SFT LoRA (sequence 512) reaches >= 40% MFU", 0.40),
    "grpo_vs_reference": ("a GRPO step (G 8, completion 256, mu 4) is >= 2x transformers + PEFT", 2.0),
    "grpo_paper_memory_gb": ("the 3B GRPO paper config peaks within 40 GB (1e9 bytes)", 40.0),
}


# ---------------------------------------------------------------------------------------------
# Tokenizer and tiny models (child "build")


def word_split(text):
    """The Whitespace pre-tokenizer's split, so every dataset word is one known token."""
    return re.findall(r"\w+|[^\w\s]+", text)


SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>",
            "<|end_header_id|>", "<unk>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)


def dataset_words():
    words = set()
    for f in ["datasets/sft/train.jsonl", "datasets/rewrite/train.jsonl"]:
        for line in (ROOT / f).read_text(encoding="utf-8").splitlines():
            if line.strip():
                for v in json.loads(line).values():
                    words.update(word_split(str(v)))
    from bench_sft import INSTRUCTION
    words.update(word_split(INSTRUCTION))
    words.update(["system", "user", "assistant"])
    return sorted(words)


def write_tokenizer(out, vocab_size):
    """A word-level tokenizer filling the model's whole vocabulary (random weights sample any id,
    and every id must decode), with a Llama-3-style chat template. Built here: no tokenizer is
    carried to the GPU machine."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [w for w in dataset_words() if w not in SPECIALS]
    vocab = SPECIALS + words
    known = set(vocab)
    fillers = (w for w in (f"w{i}" for i in range(vocab_size + len(known))) if w not in known)
    vocab += [next(fillers) for _ in range(vocab_size - len(vocab))]
    assert len(vocab) == vocab_size, f"vocab_size {vocab_size} < {len(SPECIALS) + len(words)} words"
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=SPECIALS[0], eos_token="<|eot_id|>",
                                   pad_token="<|end_of_text|>", unk_token="<unk>",
                                   additional_special_tokens=SPECIALS[2:5])
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return words


def llama_config(shape, **over):
    from transformers import LlamaConfig

    c = dict(shape, **over)
    return LlamaConfig(bos_token_id=0, eos_token_id=[1, 2], pad_token_id=1, **c)


def build_llama(cfg, device, dtype):
    """A random LlamaForCausalLM made on `device` directly in `dtype` (no f32 copy of 3B first)."""
    import torch
    from transformers import LlamaForCausalLM

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            return LlamaForCausalLM(cfg).to(dtype)
    finally:
        torch.set_default_dtype(old)


def write_model(out, shape, device, store_dtype, weights=True, seed=0, **over):
    """config.json + tokenizer (+ random weights stored as `store_dtype`) in `out`."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    cfg = llama_config(shape, **over)
    words = write_tokenizer(out, cfg.vocab_size)
    if not weights:
        cfg.save_pretrained(out)
        return words
    torch.manual_seed(seed)
    m = build_llama(cfg, device, store_dtype)
    m.save_pretrained(out, max_shard_size="4GB")
    return words


def child_build(a):
    """Models and data for every later step, under the work dir."""
    import random

    import torch

    mode, work = MODES[a.mode], Path(a.work)
    dev = "cuda" if a.mode == "gpu" else "cpu"
    t0 = time.perf_counter()
    # Tiny: f32 weights, so CPU and device compute from the very same values.
    words = write_model(work / "tiny", TINY, "cpu", torch.float32)
    # Parity at the 3B layer shapes: 2 layers (full width, full vocabulary), stored bf16.
    write_model(work / "parity3b", mode["speed_shape"], dev, torch.bfloat16,
                num_hidden_layers=mode["parity_layers"])
    # Speed: config only for --random-init, and full random bf16 weights for sft / grpo (which
    # have no --random-init).
    write_model(work / "shape_cfg", mode["speed_shape"], dev, torch.bfloat16, weights=False)
    write_model(work / "shape", mode["speed_shape"], dev, torch.bfloat16)
    # SFT pairs longer than the sequence: every example is cut to exactly sft_seq tokens.
    rng = random.Random(0)
    n = mode["sft_seq"]
    rows = [{"input": " ".join(rng.choice(words) for _ in range(n // 2)),
             "output": " ".join(rng.choice(words) for _ in range(n // 2 + 16))} for _ in range(32)]
    (work / "sft_long.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(json.dumps({"build_s": time.perf_counter() - t0}))


# ---------------------------------------------------------------------------------------------
# Reference measurements with transformers + PEFT (children)


def rel_max_diff(got, want):
    """max|got - want| / max|want| through the parity tests' own check (an infinite tolerance
    leaves only its shape and NaN assertions)."""
    sys.path.insert(0, str(ROOT / "tests/parity"))
    from closeness import assert_close

    return assert_close(got, want, math.inf, "logits")


def sync(dev):
    import torch

    if dev.startswith("cuda"):
        torch.cuda.synchronize()


def peak_mem_reset(dev):
    import torch

    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_mem_gb(dev):
    import torch

    return torch.cuda.max_memory_allocated() / 1e9 if dev.startswith("cuda") else None


def ref_model(a, path, train):
    import torch
    from transformers import AutoTokenizer

    mode = MODES[a.mode]
    if a.mode == "rehearse":
        torch.set_num_threads(1)  # as stylerl's side: a busy 2-core machine
    cfg = llama_config(mode["speed_shape"])
    torch.manual_seed(0)
    # Random weights made on the device: no 6 GB read.
    m = build_llama(cfg, a.device, {"bf16": torch.bfloat16, "f32": torch.float32}[mode["speed_dtype"]])
    m.train(train)
    tok = AutoTokenizer.from_pretrained(str(path))
    return m, tok


def child_ref_decode(a):
    """transformers generate(), greedy, exactly N new tokens a row, at each batch size."""
    import torch

    mode = MODES[a.mode]
    m, _ = ref_model(a, Path(a.work) / "shape_cfg", train=False)
    g = torch.Generator().manual_seed(0)
    out = {}
    for b in mode["decode_batches"]:
        ids = torch.randint(16, m.config.vocab_size, (b, mode["decode_prompt"]), generator=g).to(a.device)
        kw = dict(do_sample=False, pad_token_id=1, attention_mask=torch.ones_like(ids))
        with torch.no_grad():
            m.generate(ids, max_new_tokens=4, min_new_tokens=4, **kw)  # warm-up
            sync(a.device)
            t0 = time.perf_counter()
            o = m.generate(ids, max_new_tokens=mode["decode_new"], min_new_tokens=mode["decode_new"], **kw)
            sync(a.device)
            dt = time.perf_counter() - t0
        n = (o.shape[1] - ids.shape[1]) * b
        out[str(b)] = {"gen_s": dt, "new_tokens": n, "tokens_per_s": n / dt}
    print(json.dumps(out))


def child_ref_sft(a):
    """PyTorch + PEFT LoRA steps (the paper SFT's LoRA), batches in stylerl's order."""
    import peft
    import torch
    from bench_sft import batches, collate, encode

    mode = MODES[a.mode]
    work = Path(a.work)
    m, tok = ref_model(a, work / "shape", train=True)
    cfg = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear",
                          task_type="CAUSAL_LM")
    m = peft.get_peft_model(m, cfg)  # adapters upcast to f32, as stylerl's
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5, weight_decay=0.0)
    rows = [json.loads(l) for l in (work / "sft_long.jsonl").read_text().splitlines()]
    ex = encode(tok, rows, mode["sft_seq"])
    out = {}
    for b in mode["sft_batches"]:
        peak_mem_reset(a.device)
        tokens = secs = 0.0
        for s, chunk in enumerate(batches(ex, b, mode["sft_warmup"] + mode["sft_steps"])):
            ids, mask, labels, n = collate(chunk, tok.pad_token_id)
            ids, mask, labels = ids.to(a.device), mask.to(a.device), labels.to(a.device)
            sync(a.device)
            t0 = time.perf_counter()
            loss = m(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad()
            sync(a.device)
            if s >= mode["sft_warmup"]:
                tokens, secs = tokens + n, secs + time.perf_counter() - t0
        out[str(b)] = {"tokens": tokens, "seconds": secs, "tokens_per_s": tokens / secs,
                       "peak_allocated_gb": peak_mem_gb(a.device)}
    print(json.dumps(out))


def child_ref_grpo(a):
    """One Dr.GRPO step the way TRL's GRPOTrainer takes it with PEFT (no vLLM): generate with
    the adapter model, reward, π_old by one scoring pass (TRL does this when μ > 1), then μ
    optimizer steps over micro-batches. A plain loop: TRL adds its own overhead to this work."""
    import peft
    import torch
    from bench_grpo import load_texts, trivial_reward, user_turn

    mode, work = MODES[a.mode], Path(a.work)
    g = mode["grpo"]
    P, G, L, mu, micro = g["P"], g["G"], g["L"], g["mu"], g["micro"]
    m, tok = ref_model(a, work / "shape", train=True)
    m = peft.get_peft_model(m, peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0,
                                               target_modules="all-linear", task_type="CAUSAL_LM"))
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-5, weight_decay=0.0)
    texts = load_texts(ROOT / "datasets/rewrite/train.jsonl", P * (g["warmup"] + mode["grpo_ref_steps"]))
    tok.padding_side = "left"

    def token_logps(ids, mask, n_comp):
        # Only the completion's logits, as TRL asks for them (logits_to_keep; transformers
        # before 4.48 has no such argument and computes them all).
        try:
            logits = m(input_ids=ids, attention_mask=mask, logits_to_keep=n_comp + 1).logits
        except TypeError:
            logits = m(input_ids=ids, attention_mask=mask).logits
        logits = logits[:, -n_comp - 1:-1].float()
        return torch.log_softmax(logits, -1).gather(-1, ids[:, -n_comp:, None]).squeeze(-1)

    steps = []
    for s in range(g["warmup"] + mode["grpo_ref_steps"]):
        peak_mem_reset(a.device)
        sync(a.device)
        t0 = time.perf_counter()
        chats = [tok.apply_chat_template([{"role": "user", "content": user_turn(t)}], tokenize=False,
                                         add_generation_prompt=True) for t in texts[s * P:(s + 1) * P]]
        enc = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(a.device)
        m.eval()
        with torch.no_grad():
            out = m.generate(input_ids=enc["input_ids"].repeat_interleave(G, 0),
                             attention_mask=enc["attention_mask"].repeat_interleave(G, 0),
                             do_sample=True, temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=L,
                             pad_token_id=tok.pad_token_id)
        sync(a.device)
        t1 = time.perf_counter()
        comp = out[:, enc["input_ids"].shape[1]:]
        eos = torch.isin(comp, torch.tensor([1, 2], device=comp.device))
        # Completion mask: up to and including the first EOS (TRL's).
        cmask = (torch.cumsum(eos.int(), 1) - eos.int() == 0).long()
        rewards = torch.tensor(trivial_reward(tok.batch_decode(comp, skip_special_tokens=True)),
                               device=a.device)
        adv = (rewards.view(P, G) - rewards.view(P, G).mean(1, keepdim=True)).view(-1)  # Dr.GRPO
        t2 = time.perf_counter()
        full_mask = torch.cat([enc["attention_mask"].repeat_interleave(G, 0), cmask], 1)
        m.train()
        with torch.no_grad():
            old = torch.cat([token_logps(out[i:i + micro], full_mask[i:i + micro], comp.shape[1])
                             for i in range(0, P * G, micro)])
        for _ in range(mu):
            for i in range(0, P * G, micro):
                lp = token_logps(out[i:i + micro], full_mask[i:i + micro], comp.shape[1])
                ratio = torch.exp(lp - old[i:i + micro])
                A = adv[i:i + micro, None]
                obj = torch.min(ratio * A, torch.clamp(ratio, 0.8, 1.2) * A)
                loss = -(obj * cmask[i:i + micro]).sum() / (P * G * L)  # Dr.GRPO's constant
                loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad()
        sync(a.device)
        t3 = time.perf_counter()
        steps.append({"step_s": t3 - t0, "generation_s": t1 - t0, "reward_s": t2 - t1, "training_s": t3 - t2,
                      "completion_mean": float(cmask.sum(1).float().mean()),
                      "peak_allocated_gb": peak_mem_gb(a.device)})
    timed = steps[g["warmup"]:]
    mean = {k: sum(x[k] for x in timed) / len(timed) for k in timed[0] if k != "peak_allocated_gb"}
    mean["peak_allocated_gb"] = max((x["peak_allocated_gb"] or 0) for x in steps) or None
    print(json.dumps({"mean": mean, "steps": steps}))


CHILDREN = {"build": child_build, "ref_decode": child_ref_decode, "ref_sft": child_ref_sft,
            "ref_grpo": child_ref_grpo}


# ---------------------------------------------------------------------------------------------
# The parent: steps, guards, summary


class StepFailed(Exception):
    pass


def nvidia_smi(*query):
    """Rows of `nvidia-smi --query-...` as lists of strings ([] when it is absent or fails)."""
    if not shutil.which("nvidia-smi"):
        return []
    q = subprocess.run(["nvidia-smi", *query, "--format=csv,noheader,nounits"], capture_output=True, text=True,
                       timeout=5)
    return [[x.strip() for x in l.split(",")] for l in q.stdout.splitlines() if l.strip()]


class MemPoll(threading.Thread):
    """Peak memory of one child process, sampled every 0.2 s. GPU: nvidia-smi's figure for the
    process; where the process is not listed (a container's PID namespace), the device's used
    memory over the baseline taken before the child started (nvidia-smi, else torch). CPU: the
    process's peak RSS (VmHWM)."""

    def __init__(self, pid, gpu):
        super().__init__(daemon=True)
        self.pid, self.gpu, self.peak_mb, self.source = pid, gpu, None, None
        self.stop = threading.Event()
        self.base = None
        if gpu:
            try:
                self.base = self.device_used_mb()
            except Exception:  # no baseline: only nvidia-smi's per-process figure can count
                pass

    def device_used_mb(self):
        rows = nvidia_smi("--query-gpu=memory.used")
        if rows and rows[0][0].isdigit():
            return float(rows[0][0])
        import torch

        free, total = torch.cuda.mem_get_info()
        return (total - free) / 2**20

    def sample(self):
        if self.gpu:
            for p, mb in (r for r in nvidia_smi("--query-compute-apps=pid,used_memory") if len(r) == 2):
                if p == str(self.pid) and mb.isdigit():
                    return float(mb), "nvidia-smi, the process"
            if self.base is None:
                return None, None
            return self.device_used_mb() - self.base, "device used memory over the baseline"
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024, "peak RSS (VmHWM)"
        except OSError:
            pass
        return None, None

    def run(self):
        while not self.stop.is_set():
            try:
                mb, src = self.sample()
            except Exception:  # a failed poll only loses one sample
                mb, src = None, None
            if mb is not None and (self.peak_mb is None or mb > self.peak_mb):
                self.peak_mb, self.source = mb, src
            self.stop.wait(0.2)

    def peak_gb(self):
        return None if self.peak_mb is None else self.peak_mb * 2**20 / 1e9


class Check:
    def __init__(self, a):
        self.a = a
        self.mode = MODES[a.mode]
        self.rehearse = a.mode == "rehearse"
        self.dev = self.mode["device"]
        self.out = Path(a.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="gpu_check_"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.bin = Path(os.environ.get("STYLERL_BIN", ROOT / "target/release/stylerl"))
        self.t_start = time.perf_counter()
        self.deadline = self.t_start + a.budget_s
        self.log_f = open(self.out / "log.txt", "a", encoding="utf-8")
        self.checks, self.meas, self.mem_source, self.current = {}, {}, None, None
        self.env = dict(os.environ, STYLERL_PROGRESS="0")
        self.env.pop("STYLERL_THREADS", None)

    def log(self, msg):
        line = f"[gpu_check {time.perf_counter() - self.t_start:6.1f}s] {msg}"
        print(line, flush=True)
        self.log_f.write(line + "\n")
        self.log_f.flush()

    def left(self):
        return self.deadline - time.perf_counter()

    # -- processes --

    def run(self, cmd, timeout, env=None, poll_mem=False, cwd=ROOT):
        """Runs a command within the step's timeout and the global deadline; logs its output;
        returns (stdout, stderr, peak memory GB or None). Raises StepFailed on failure."""
        limit = min(timeout, self.left() - 5)
        if limit < 3:
            raise StepFailed("out of time before this command")
        cmd = [str(c) for c in cmd]
        self.log("$ " + " ".join(cmd)[:600])
        e = dict(self.env, **(env or {}))
        # The memory baseline is taken before the child starts.
        poll = MemPoll(None, self.dev == "cuda") if poll_mem else None
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e, cwd=cwd,
                             start_new_session=True)
        self.current = p
        if poll:
            poll.pid = p.pid
            poll.start()
        try:
            so, se = p.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)  # the child's own process group: ends it and its children only
            so, se = p.communicate()
            self.log_f.write(so[-4000:] + se[-4000:] + "\n")
            raise StepFailed(f"timed out after {limit:.0f} s: {' '.join(cmd[:3])}")
        finally:
            self.current = None
            if poll:
                poll.stop.set()
                poll.join()
        self.log_f.write(f"  (exit {p.returncode}, {time.perf_counter() - t0:.1f} s)\n")
        self.log_f.write("".join("  | " + l + "\n" for l in (so[-3000:] + se[-6000:]).splitlines()))
        self.log_f.flush()
        if p.returncode != 0:
            last = (se.strip().splitlines() or so.strip().splitlines() or ["no output"])[-1]
            raise StepFailed(f"exit {p.returncode}: {' '.join(cmd[:2])}: {last[:300]}")
        self.mem_source = poll.source if poll else None
        return so, se, (poll.peak_gb() if poll else None)

    def stylerl(self, *args, timeout=120, env=None, poll_mem=False):
        return self.run([self.bin, *args], timeout, env, poll_mem)

    def child(self, name, timeout, poll_mem=False, device=None):
        if self.rehearse and not os.environ.get("GPU_CHECK_SUBPROCESS"):
            # In-process: each child process would pay ~6 s importing transformers on this
            # 2-core machine, and the rehearsal has 2 minutes. Same functions, same output.
            import contextlib
            import io

            buf = io.StringIO()
            ns = argparse.Namespace(mode=self.a.mode, work=str(self.work), device=device or self.dev)
            self.log(f"(in process) child {name}")
            with contextlib.redirect_stdout(buf):
                CHILDREN[name](ns)
            self.log_f.write("".join("  | " + l + "\n" for l in buf.getvalue().splitlines()))
            # This process's own peak would include everything before: no memory figure.
            return json.loads(buf.getvalue().strip().splitlines()[-1]), None
        so, _, mem = self.run([sys.executable, __file__, "--child", name, "--mode", self.a.mode,
                               "--work", self.work, "--device", device or self.dev], timeout, poll_mem=poll_mem)
        return json.loads(so.strip().splitlines()[-1]), mem

    def threads_args(self, side):
        """Logits: the CPU side runs as libtorch chooses; in the rehearsal the 'device' side is
        the CPU with one thread (another summation order, and the AVX-512 kernel where present).
        Everything else in the rehearsal runs on one thread: on a busy 2-core machine two
        libtorch threads were measured 50x slower."""
        return ["--threads", "1"] if (self.rehearse and side != "cpu") else []

    def threads_env(self):
        return {"STYLERL_THREADS": "1"} if self.rehearse else {}

    # -- steps --

    def step(self, name, fn, timeout, needs=()):
        """Runs one step; its record lands in self.checks[name] whatever happens."""
        # A needed step left out with --only counts as done (its files are in --work).
        missing = [n for n in needs if n in self.checks and self.checks[n]["status"] != "pass"]
        rec = {"status": "skipped", "seconds": 0.0, "numbers": {}}
        if missing:
            rec["error"] = f"needs {', '.join(missing)}"
        elif self.left() < 10:
            rec["error"] = "out of time (total budget spent)"
        else:
            self.log(f"== {name}")
            t0 = time.perf_counter()
            self.step_deadline = t0 + timeout
            try:
                nums, ok, why = fn()
                rec = {"status": "pass" if ok else "fail", "numbers": nums}
                if not ok:
                    rec["error"] = why
            except StepFailed as e:
                rec = {"status": "error", "numbers": {}, "error": str(e)}
            except KeyboardInterrupt as e:  # SIGTERM / Ctrl-C: record this step, then stop
                self.checks[name] = {"status": "error", "numbers": {}, "error": f"stopped ({e})",
                                     "seconds": round(time.perf_counter() - t0, 2)}
                raise
            except Exception as e:  # any bug in a step is that step's failure, not the run's
                rec = {"status": "error", "numbers": {}, "error": f"{type(e).__name__}: {e}"}
                self.log_f.write(traceback.format_exc())
            rec["seconds"] = round(time.perf_counter() - t0, 2)
        self.checks[name] = rec
        why = f" ({rec['error']})" if rec.get("error") else ""
        self.log(f"   {name}: {rec['status']}{why} {json.dumps(rec['numbers'])[:400]}")

    def tmo(self):
        """Seconds left of the current step's timeout."""
        return max(1.0, self.step_deadline - time.perf_counter())

    def s_info(self):
        import torch

        so, _, _ = self.stylerl("info", timeout=self.tmo())
        fields = dict(l.split(": ", 1) for l in so.splitlines() if ": " in l)
        cuda = fields.get("cuda available") == "true"
        libdir = os.path.join(os.path.dirname(torch.__file__), "lib")
        try:
            ldd = subprocess.run(["ldd", str(self.bin)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            ldd = None  # no ldd here: the resolution goes unchecked (info still ran)
        resolved = {l.split()[0]: l.split()[2] for l in (ldd or "").splitlines()
                    if "=>" in l and "libtorch" in l and len(l.split()) > 2}
        from_torch = ldd is None or (bool(resolved) and all(Path(p).resolve().parent == Path(libdir).resolve()
                                                            for p in resolved.values()))
        want = torch.cuda.is_available()
        nums = {"stylerl_cuda_available": cuda, "python_torch_cuda_available": want,
                "cuda_devices": fields.get("cuda devices"), "cudnn_available": fields.get("cudnn available"),
                "libtorch_resolved": resolved if ldd is not None else "ldd not available", "torch_lib_dir": libdir,
                "libtorch_cuda_linked": "libtorch_cuda.so" in resolved, "torch_version": torch.__version__}
        if cuda != want:
            return nums, False, f"stylerl says cuda available: {cuda}, python's torch says {want}"
        if not from_torch:
            return nums, False, f"libtorch not resolved from {libdir}: {resolved}"
        if not self.rehearse and not (cuda and (ldd is None or "libtorch_cuda.so" in resolved)):
            return nums, False, "no CUDA: stylerl info says cuda available: false"
        return nums, True, ""

    def s_build(self):
        r, _ = self.child("build", self.tmo(), device="cuda" if self.dev == "cuda" else "cpu")
        files = {d: sum(f.stat().st_size for f in (self.work / d).iterdir()) / 1e9
                 for d in ("tiny", "parity3b", "shape")}
        return {"build_s": r["build_s"], "model_dir_gb": files}, True, ""

    def compare_logits(self, model, prompts, tag, rtol_dev_f32, rtol_bf16):
        from safetensors.torch import load_file

        inp = self.work / f"{tag}_prompts.jsonl"
        inp.write_text("".join(json.dumps(p) + "\n" for p in prompts))
        outs = {}
        for name, dev, dt, side in [("cpu_f32", "cpu", "f32", "cpu"), ("dev_f32", self.dev, "f32", "dev"),
                                    ("dev_bf16", self.dev, "bf16", "dev")]:
            f = self.work / f"{tag}_{name}.safetensors"
            self.stylerl("logits", "--model", model, "--input", inp, "--out", f, "--device", dev, "--dtype", dt,
                         "--batched", *self.threads_args(side), timeout=self.tmo())
            outs[name] = load_file(str(f))
        nums, bad = {}, []
        for name, rtol in [("dev_f32", rtol_dev_f32), ("dev_bf16", rtol_bf16)]:
            worst, top1 = 0.0, []
            for i in range(len(prompts)):
                want, got = outs["cpu_f32"][f"logits_{i}"], outs[name][f"logits_{i}"]
                worst = max(worst, rel_max_diff(got, want))
                top1.append(float((got.argmax(-1) == want.argmax(-1)).float().mean()))
            nums[f"{name}_vs_cpu_f32_rel_max_diff"] = worst
            nums[f"{name}_top1_agreement"] = sum(top1) / len(top1)
            nums[f"{name}_rtol"] = rtol
            if not worst <= rtol:
                bad.append(f"{name}: max |diff| / max |cpu| = {worst:.3g} > {rtol:g}")
        return nums, not bad, "; ".join(bad)

    def prompts(self, vocab, lens):
        import torch

        g = torch.Generator().manual_seed(1)
        return [torch.randint(8, vocab, (n,), generator=g).tolist() for n in lens]

    def s_logits_tiny(self):
        return self.compare_logits(self.work / "tiny", self.prompts(TINY["vocab_size"], (5, 40, 97)), "tiny",
                                   RTOL_F32, RTOL_BF16)

    def s_logits_3b(self):
        v = self.mode["speed_shape"]["vocab_size"]
        return self.compare_logits(self.work / "parity3b", self.prompts(v, (7, 64)), "p3b", RTOL_F32, RTOL_BF16)

    def train_parity(self, kind):
        """Step 1 on CPU (checkpointed), step 2 on CPU and — resumed from the same checkpoint —
        on the device: the device's step sees the CPU's exact adapter, optimizer and RNG state
        (a fresh adapter's A draws from the device's own RNG, which differs from the CPU's)."""
        from safetensors.torch import load_file

        ref, dev = self.work / f"{kind}_cpu", self.work / f"{kind}_dev"
        for d in (ref, dev):
            shutil.rmtree(d, ignore_errors=True)
        if kind == "sft":
            base = ["sft", "--config", ROOT / "configs/demo/sft.toml"]
            sets = {"model.path": self.work / "tiny", "data.eval": "", "data.max_length": 64,
                    "train.max_steps": 2, "train.batch_size": 2, "train.grad_accum": 1, "train.eval_every": 0,
                    "train.checkpoint_every": 1, "train.keep_checkpoints": 3, "train.merge": "false",
                    "train.seed": 0, "lora.dropout": 0.0, "train.warmup_steps": 0}
        else:
            from bench_grpo import stylerl_config

            cfg = self.work / "grpo_tiny.toml"
            ns = argparse.Namespace(model=self.work / "tiny", data=ROOT / "datasets/rewrite/train.jsonl",
                                    prompts=4, r=8, alpha=16, encoder="stylometric", L=12, warmup=0, steps=2,
                                    P=2, G=4, mu=2, lr=1e-3)
            cfg.write_text(stylerl_config(ns, ref))
            base = ["grpo", "--config", cfg]
            # top-k 5: the device's and the CPU's probabilities differ in the last bits, so a
            # draw that lands on a boundary between two tokens may go either way; among 4096
            # near-uniform tokens that happens every few dozen draws, among 5 almost never.
            sets = {"grpo.checkpoint_every": 1, "grpo.keep_checkpoints": 3, "grpo.micro_batch_size": 4,
                    "grpo.top_k": 5}

        def args(out, device, side):
            a = list(base)
            for k, v in dict(sets, out_dir=out, **{"model.device": device}).items():
                a += ["--set", f"{k}={v}"]
            return a, self.threads_env()

        a, e = args(ref, "cpu", "cpu")
        self.stylerl(*a, timeout=self.tmo(), env=e)
        ck = dev / "checkpoints"
        ck.mkdir(parents=True)
        shutil.copytree(ref / "checkpoints/step-1", ck / "step-1")
        (ck / "latest").write_text("step-1")
        a, e = args(dev, self.dev, "dev")
        self.stylerl(*a, "--resume", timeout=self.tmo(), env=e)
        m_ref = [json.loads(l) for l in (ref / "metrics.jsonl").read_text().splitlines() if l.strip()]
        m_dev = [json.loads(l) for l in (dev / "metrics.jsonl").read_text().splitlines() if l.strip()]
        if any(r.get("step") == 1 for r in m_dev):
            return {}, False, "the device run did not resume from the CPU's step-1 checkpoint"
        r2 = next(r for r in m_ref if r.get("step") == 2 and "loss" in r)
        d2 = next(r for r in m_dev if r.get("step") == 2 and "loss" in r)
        keys = ["loss", "grad_norm"] + (["reward", "completion_length/mean"] if kind == "grpo" else [])
        nums, bad = {}, []
        for k in keys:
            rel = abs(d2[k] - r2[k]) / max(abs(r2[k]), 1e-6)
            nums[k] = {"cpu": r2[k], "device": d2[k], "rel_diff": rel}
            if not rel <= RTOL_STEP:
                bad.append(f"step 2 {k}: {d2[k]:.6g} vs {r2[k]:.6g}")
        wa = load_file(str(ref / "adapter/adapter_model.safetensors"))
        wb = load_file(str(dev / "adapter/adapter_model.safetensors"))
        num = sum(float((wb[k].double() - wa[k].double()).pow(2).sum()) for k in wa)
        den = sum(float(wa[k].double().pow(2).sum()) for k in wa)
        nums["adapter_rel_l2_diff"] = math.sqrt(num / max(den, 1e-30))
        nums["adapter_tensors"] = len(wa)
        if set(wa) != set(wb) or not nums["adapter_rel_l2_diff"] <= RTOL_ADAPTER:
            bad.append(f"adapter after step 2: relative L2 difference {nums['adapter_rel_l2_diff']:.3g}")
        return nums, not bad, "; ".join(bad)

    def s_sft_step(self):
        return self.train_parity("sft")

    def s_grpo_step(self):
        return self.train_parity("grpo")

    def s_decode_kernel(self):
        """The AVX-512 decode kernel must not touch device tensors: greedy decode on the device
        with one thread (the kernel's condition) equals the run with the kernel switched off."""
        outs = []
        for env in ({}, {"STYLERL_DECODE_KERNEL": "0"}):
            so, _, _ = self.stylerl("generate", "--model", self.work / "tiny", "--device", self.dev,
                                    "--threads", "1", "--prompt", "Please send the report by Friday", "--greedy",
                                    "--max-new-tokens", "16", "--json", "--ignore-eos", timeout=self.tmo(), env=env)
            outs.append([json.loads(l) for l in so.splitlines() if l.strip()])
        cpu_flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        same_tokens = [r["tokens"] for r in outs[0]] == [r["tokens"] for r in outs[1]]
        lp_diff = max((abs(x - y) for r0, r1 in zip(outs[0], outs[1]) for x, y in zip(r0["logprobs"], r1["logprobs"])),
                      default=0.0)
        nums = {"host_has_avx512f": " avx512f" in cpu_flags, "same_tokens": same_tokens,
                "max_logprob_diff": lp_diff}
        if self.rehearse:
            # On CPU the kernel may run (AVX-512 host): only the tokens must agree.
            return nums, same_tokens, "" if same_tokens else "tokens differ with the kernel on and off"
        # On the device both runs take the same CUDA kernels: equal up to reduction order.
        ok = same_tokens and lp_diff <= 1e-5
        return nums, ok, "" if ok else "device decode changes with STYLERL_DECODE_KERNEL=0: the CPU kernel is in the device path"

    def s_bandwidth(self):
        """Copy bandwidth (read + write bytes over time) and a matmul's FLOP/s in the speed
        dtype, measured here (CUDA memory is given back afterwards)."""
        import torch

        if self.rehearse:
            torch.set_num_threads(1)
        dev, reps = self.dev, 10
        n = self.mode["copy_mib"] << 20
        x = torch.empty(n, dtype=torch.uint8, device=dev)
        y = torch.empty_like(x)
        y.copy_(x)
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(reps):
            y.copy_(x)
        sync(dev)
        bw = 2 * n * reps / (time.perf_counter() - t0)
        k = 8192 if dev == "cuda" else 256
        dt = {"bf16": torch.bfloat16, "f32": torch.float32}[self.mode["speed_dtype"]]
        p = torch.randn(k, k, device=dev, dtype=dt)
        p @ p
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(reps):
            p @ p
        sync(dev)
        flops = 2 * k ** 3 * reps / (time.perf_counter() - t0)
        del x, y, p
        name = "cpu"
        if dev == "cuda":
            name = torch.cuda.get_device_name()
            torch.cuda.empty_cache()
        r = {"copy_bytes_per_s": bw, "matmul_flops": flops, "matmul_dtype": self.mode["speed_dtype"],
             "device_name": name, "hbm_spec_bytes_per_s": next((v for k, v in HBM_SPEC if k in name), None),
             "bf16_peak_spec_flops": next((v for k, v in PEAK_BF16 if k in name), None)}
        self.meas["hw"] = r
        return r, True, ""

    def dtype_bytes(self):
        return {"bf16": 2, "f32": 4}[self.mode["speed_dtype"]]

    def param_count(self, s):
        h, i, L, v = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"], s["vocab_size"]
        q, kv = s["num_attention_heads"] * s["head_dim"], s["num_key_value_heads"] * s["head_dim"]
        per_layer = h * (q + 2 * kv) + q * h + 3 * h * i + 2 * h
        return {"layers": L * per_layer, "embed": v * h, "total": L * per_layer + v * h + h,
                "matmul": L * (per_layer - 2 * h) + v * h}

    def s_decode_speed(self):
        s = self.mode["speed_shape"]
        pc = self.param_count(s)
        bw = self.meas.get("hw", {}).get("copy_bytes_per_s")
        spec = self.meas.get("hw", {}).get("hbm_spec_bytes_per_s")
        P, T = self.mode["decode_prompt"], self.mode["decode_new"]
        ids = self.prompts(s["vocab_size"], [P] * max(self.mode["decode_batches"]))
        inp = self.work / "decode_ids.jsonl"
        res = {}
        for b in self.mode["decode_batches"]:
            inp.write_text("".join(json.dumps(p) + "\n" for p in ids[:b]))
            _, se, _ = self.stylerl("generate", "--model", self.work / "shape_cfg", "--random-init",
                                    "--device", self.dev, "--dtype", self.mode["speed_dtype"], "--input", inp, *self.threads_args("speed"),
                                    "--batch-size", b, "--max-new-tokens", T, "--greedy", "--ignore-eos",
                                    "--timing", "--json", timeout=self.tmo())
            t = next(json.loads(l)["timing"] for l in se.splitlines() if l.startswith('{"timing"'))
            steps = T - 1  # the first new token comes from the prefill
            kv_per_pos = 2 * s["num_hidden_layers"] * s["num_key_value_heads"] * s["head_dim"] * self.dtype_bytes()
            # A tied head reads the embedding once per step; the lookup reads one row.
            w_bytes = self.dtype_bytes() * pc["total"]
            kv_bytes = sum(b * kv_per_pos * (P + k) for k in range(1, T))
            floor_s = (steps * w_bytes + kv_bytes) / bw if bw else None
            res[str(b)] = {
                "stylerl_tokens_per_s": t["tokens_per_s"], "decode_s": t["decode_s"], "prefill_s": t["prefill_s"],
                "decode_tokens_per_s": b * steps / t["decode_s"], "ms_per_step": 1000 * t["decode_s"] / steps,
                "roofline_ms_per_step": 1000 * floor_s / steps if floor_s else None,
                "roofline_fraction": floor_s / t["decode_s"] if floor_s else None,
                "roofline_fraction_at_spec_bandwidth": floor_s * bw / spec / t["decode_s"] if floor_s and spec else None,
            }
        ref, _ = self.child("ref_decode", self.tmo())
        for b, r in ref.items():
            res[b]["transformers_tokens_per_s"] = r["tokens_per_s"]
            res[b]["ratio"] = res[b]["stylerl_tokens_per_s"] / r["tokens_per_s"]
        res["weights_gb"] = self.dtype_bytes() * pc["total"] / 1e9
        res["new_tokens"], res["prompt_tokens"] = T, P
        self.meas["decode"] = res
        return res, True, ""

    def s_sft_speed(self):
        s = self.mode["speed_shape"]
        pc = self.param_count(s)
        S = self.mode["sft_seq"]
        # LoRA: frozen weights get no weight gradient, so the weight matmuls cost forward +
        # backward-to-input = 4·N a token (not full training's 6·N); the attention matmuls take
        # gradients for both operands, 3 × the forward's 4·L·(heads·head_dim)·S (PaLM's count,
        # causal masking not discounted).
        attn_fwd = 4 * s["num_hidden_layers"] * s["num_attention_heads"] * s["head_dim"] * S
        flops_tok = 4 * pc["matmul"] + 3 * attn_fwd
        hw = self.meas.get("hw", {})
        peak = hw.get("bf16_peak_spec_flops") if not self.rehearse else hw.get("matmul_flops")
        res = {"flops_per_token": flops_tok, "flops_formula": "4*N_matmul + 12*layers*heads*head_dim*seq",
               "peak_flops": peak,
               "peak_source": "measured f32 matmul (rehearsal)" if self.rehearse else "datasheet dense bf16"}
        for b in self.mode["sft_batches"]:
            out = self.work / f"sft_speed_b{b}"
            shutil.rmtree(out, ignore_errors=True)
            sets = {"out_dir": out, "model.path": self.work / "shape", "model.device": self.dev,
                    "model.dtype": self.mode["speed_dtype"], "data.train": self.work / "sft_long.jsonl", "data.eval": "",
                    "data.max_length": S, "train.max_steps": self.mode["sft_warmup"] + self.mode["sft_steps"],
                    "train.batch_size": b, "train.eval_every": 0, "train.checkpoint_every": 0,
                    # A timing run of a few steps: no learning-rate warm-up (sft refuses one as
                    # long as the run), which does not change a step's cost.
                    "train.merge": "false", "train.warmup_steps": 0}
            a = ["sft", "--config", ROOT / "configs/paper/sft.toml"]
            for k, v in sets.items():
                a += ["--set", f"{k}={v}"]
            _, _, mem = self.stylerl(*a, timeout=self.tmo(), poll_mem=True, env=self.threads_env())
            m = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if l.strip()]
            m = [r for r in m if "step_s" in r][self.mode["sft_warmup"]:]
            tps = sum(r["tokens"] for r in m) / sum(r["step_s"] for r in m)
            res[str(b)] = {"stylerl_tokens_per_s": tps, "peak_memory_gb": mem, "memory_source": self.mem_source,
                           "mfu": tps * flops_tok / peak if peak else None}
        ref, _ = self.child("ref_sft", self.tmo())
        for b, r in ref.items():
            res[b]["peft_tokens_per_s"] = r["tokens_per_s"]
            res[b]["peft_mfu"] = r["tokens_per_s"] * flops_tok / peak if peak else None
            res[b]["peft_peak_allocated_gb"] = r["peak_allocated_gb"]
            res[b]["ratio"] = res[b]["stylerl_tokens_per_s"] / r["tokens_per_s"]
        self.meas["sft"] = res
        return res, True, ""

    def s_grpo_speed(self):
        g = self.mode["grpo"]
        out = self.work / "grpo_speed"
        shutil.rmtree(out, ignore_errors=True)
        sets = {"out_dir": out, "model.path": self.work / "shape", "model.device": self.dev,
                "model.dtype": self.mode["speed_dtype"], "reward.encoder": "stylometric", "reward.encoder_device": "cpu",
                "grpo.steps": g["warmup"] + g["steps"], "grpo.prompts_per_step": g["P"],
                "grpo.num_generations": g["G"], "grpo.max_completion_length": g["L"],
                "reward.length.max_completion_length": g["L"], "grpo.ppo_epochs": g["mu"],
                "grpo.micro_batch_size": g["micro"], "grpo.checkpoint_every": 0, "grpo.sample_every": 0}
        a = ["grpo", "--config", ROOT / "configs/paper/grpo.toml"]
        for k, v in sets.items():
            a += ["--set", f"{k}={v}"]
        _, _, mem = self.stylerl(*a, timeout=self.tmo(), poll_mem=True, env=self.threads_env())
        m = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines() if l.strip()]
        m = [r for r in m if "time/generation" in r]
        timed = m[g["warmup"]:]
        mean = lambda k: sum(r[k] for r in timed) / len(timed)
        st = {"generation_s": mean("time/generation"), "reward_s": mean("time/reward"),
              "training_s": mean("time/training"), "completion_mean": mean("completion_length/mean")}
        st["step_s"] = st["generation_s"] + st["reward_s"] + st["training_s"]
        res = {"shape": g, "stylerl": st, "stylerl_peak_memory_gb": mem, "memory_source": self.mem_source}
        ref, ref_mem = self.child("ref_grpo", self.tmo(), poll_mem=True)
        res["reference"] = ref["mean"]
        res["reference_peak_memory_gb"] = ref_mem
        res["ratio"] = ref["mean"]["step_s"] / st["step_s"]
        res["ratio_without_reward"] = (ref["mean"]["step_s"] - ref["mean"]["reward_s"]) / \
            (st["generation_s"] + st["training_s"])
        self.meas["grpo"] = res
        return res, True, ""

    # -- summary --

    def goals(self):
        d, s, g = self.meas.get("decode", {}), self.meas.get("sft", {}), self.meas.get("grpo", {})
        sft_b = {k: v["mfu"] for k, v in s.items() if isinstance(v, dict) and v.get("mfu") is not None}
        best = max(sft_b, key=sft_b.get) if sft_b else None
        values = {
            "decode_roofline_b1": (d.get("1") or {}).get("roofline_fraction"),
            "sft_lora_mfu": sft_b.get(best),
            "grpo_vs_reference": g.get("ratio"),
            "grpo_paper_memory_gb": g.get("stylerl_peak_memory_gb"),
        }
        out = {}
        for k, (what, target) in GOALS.items():
            v = values[k]
            ok = None if v is None else (v <= target if k.endswith("_gb") else v >= target)
            status = "not measured" if ok is None else ("met" if ok else "not met")
            rec = {"goal": what, "target": target, "value": v}
            if k == "sft_lora_mfu" and best:
                rec["at_batch"] = int(best)
            if self.rehearse:
                # CPU at tiny shapes is not the goal's setting: the verdict is computed (so the
                # code is exercised) but the goal itself stays unmeasured.
                rec["status"], rec["rehearsal_verdict"] = "not measured", status
            else:
                rec["status"] = status
            out[k] = rec
        return out

    def commit(self):
        """The checkout's commit, where the copy has its .git (a carried tree may not)."""
        try:
            r = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                               timeout=5)
            return r.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    def summary(self):
        import torch

        n_fail = sum(1 for c in self.checks.values() if c["status"] != "pass")
        s = {
            "schema": SCHEMA, "mode": self.a.mode, "device": self.dev,
            "device_name": self.meas.get("hw", {}).get("device_name"),
            "torch": torch.__version__, "stylerl_bin": str(self.bin), "commit": self.commit(),
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - (time.perf_counter() - self.t_start))),
            "wall_s": round(time.perf_counter() - self.t_start, 1), "budget_s": self.a.budget_s,
            "checks": self.checks, "goals": self.goals(),
            "passed": len(self.checks) - n_fail, "failed": n_fail,
        }
        (self.out / "summary.json").write_text(json.dumps(s, indent=1))
        return s


STEPS = [  # name, method, timeout (s) on the GPU, timeout in the rehearsal (generous: on a loaded CI machine python startup alone took 50 s), steps it needs
    ("info", "s_info", 30, 45, ()),
    ("build_models", "s_build", 120, 90, ()),
    ("logits_tiny", "s_logits_tiny", 40, 60, ("build_models",)),
    ("logits_3b_layers", "s_logits_3b", 90, 60, ("build_models",)),
    ("sft_step_parity", "s_sft_step", 40, 60, ("build_models",)),
    ("grpo_step_parity", "s_grpo_step", 40, 60, ("build_models",)),
    ("decode_kernel_off_on_device", "s_decode_kernel", 30, 45, ("build_models",)),
    ("bandwidth", "s_bandwidth", 30, 45, ()),
    ("decode_speed", "s_decode_speed", 100, 90, ("build_models",)),
    ("sft_speed", "s_sft_speed", 100, 90, ("build_models",)),
    ("grpo_speed", "s_grpo_speed", 150, 120, ("build_models",)),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=list(MODES), default="gpu")
    ap.add_argument("--out", help="output folder: summary.json and log.txt")
    ap.add_argument("--work", help="scratch folder for models and runs (default: a new temp dir, removed after)")
    ap.add_argument("--budget-s", type=float, help="total time budget in seconds")
    ap.add_argument("--only", help="comma-separated step names to run (others are skipped)")
    ap.add_argument("--child", choices=list(CHILDREN), help=argparse.SUPPRESS)
    ap.add_argument("--device", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        a.device = a.device or MODES[a.mode]["device"]
        CHILDREN[a.child](a)
        return 0
    if not a.out:
        sys.exit("gpu_check.py: --out DIR is required (where summary.json and log.txt go)")
    a.budget_s = a.budget_s or MODES[a.mode]["budget_s"]
    keep_work = bool(a.work)
    only = set(a.only.split(",")) if a.only else None
    if only:
        unknown = only - {n for n, *_ in STEPS}
        if unknown:
            sys.exit(f"gpu_check.py: --only {','.join(sorted(unknown))}: no such step (steps: {', '.join(n for n, *_ in STEPS)})")
        # What the named steps stand on: fresh models unless --work kept them, and the
        # bandwidth / device name that the roofline and MFU are computed from.
        if not keep_work and any("build_models" in needs for n, *_, needs in STEPS if n in only):
            only.add("build_models")
        if only & {"decode_speed", "sft_speed"}:
            only.add("bandwidth")
    c = Check(a)

    def stop(signum, _frame):
        # SIGTERM (the shell's backstop timeout): end the running child's process group and
        # still write the summary on the way out.
        if c.current is not None:
            os.killpg(c.current.pid, 9)
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    c.log(f"mode {a.mode}, device {c.dev}, out {c.out}, work {c.work}, budget {a.budget_s:.0f} s, bin {c.bin}")
    try:
        for name, meth, t_gpu, t_reh, needs in STEPS:
            if only and name not in only:
                continue
            c.step(name, getattr(c, meth), t_reh if c.rehearse else t_gpu, needs)
    except KeyboardInterrupt as e:
        c.log(f"stopped ({e}): the steps not run are marked skipped")
        for name, *_ in STEPS:
            if (not only or name in only) and name not in c.checks:
                c.checks[name] = {"status": "skipped", "seconds": 0.0, "numbers": {}, "error": "stopped before it ran"}
    finally:
        try:
            s = c.summary()
        finally:
            if not keep_work:
                shutil.rmtree(c.work, ignore_errors=True)
    c.log(f"summary: {s['passed']} passed, {s['failed']} not passed, {s['wall_s']} s -> {c.out / 'summary.json'}")
    for k, g in s["goals"].items():
        c.log(f"goal {k}: {g['status']} (value {g['value']}, target {g['target']})")
    return 0 if s["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
