#!/usr/bin/env python3
"""Seconds per Dr.GRPO step: stylerl vs TRL's GRPOTrainer, same run, one thread each.

Both sides: the same model, the same rewrite prompts (first --prompts inputs of the training
file, rendered with the model's chat template around sft_data.rs's DEFAULT_INSTRUCTION),
P prompts × G completions a step, completion limit L, μ optimizer steps a rollout batch,
Dr.GRPO loss (no std scaling, constant normaliser), β = 0, a fresh LoRA with the same r, alpha
and targets, temperature 1. A "step" is one rollout batch: generation + rewards + μ updates
(μ TRL global steps). The first --warmup steps of each side are dropped.

TRL gets a trivial Python reward (the stylerl reward has no Python twin); stylerl's reward time
is printed separately, and the ratio is given both with it and without it (generation +
training only). Neither side can be told to ignore EOS the same way, so both sample freely and
the mean completion lengths and seconds per completion token are printed with the times.

  .venv/bin/python scripts/bench_grpo.py [--steps 3] [--model models/smollm2-135m-instruct] [--modes f32,bf16]

--modes runs stylerl once per precision mode in the same run: f32 (the default), bf16
(`model.matmul = "bf16"` and `grpo.sampling_weights = "bf16"`) or auto (both "auto"); each
is compared with the same TRL measurement (f32).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTION = ("Rewrite the following text. Keep its meaning and every name, number and date. "
               "Reply with the rewritten text only.")


def user_turn(text):
    return f"{INSTRUCTION}\n\n{text}"


def load_texts(path, n):
    out = []
    with open(path) as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line)["text"])
            if len(out) == n:
                break
    return out


def stylerl_config(a, out_dir, mode="f32"):
    return f"""
out_dir = "{out_dir}"
[model]
path = "{a.model}"
matmul = "{mode}"
[data]
train = "{a.data}"
limit = {a.prompts}
[lora]
r = {a.r}
alpha = {a.alpha}
dropout = 0.0
target_modules = "all-linear"
[reward]
reference = ["{ROOT / 'datasets/reference/whimsical_tale.txt'}"]
encoder = "{a.encoder}"
[reward.length]
max_completion_length = {a.L}
[grpo]
steps = {a.warmup + a.steps}
prompts_per_step = {a.P}
num_generations = {a.G}
max_completion_length = {a.L}
temperature = 1.0
ppo_epochs = {a.mu}
micro_batch_size = {a.P * a.G}
sampling_weights = "{mode}"
beta = 0.0
std_scale = "none"
seed = 0
checkpoint_every = 0
sample_every = 0
[grpo.optimizer]
lr = {a.lr}
"""


def run_stylerl(a, mode="f32"):
    binary = os.environ.get("STYLERL_BIN", str(ROOT / "target/release/stylerl"))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "grpo.toml"
        cfg.write_text(stylerl_config(a, Path(tmp) / "run", mode))
        env = dict(os.environ, STYLERL_THREADS="1")
        t0 = time.perf_counter()
        subprocess.run([binary, "grpo", "--config", str(cfg)], check=True, env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        recs = [json.loads(l) for l in open(Path(tmp) / "run/metrics.jsonl")]
    recs = recs[a.warmup:]
    mean = lambda k: sum(r[k] for r in recs) / len(recs)
    gen, rew, train = mean("time/generation"), mean("time/reward"), mean("time/training")
    return {"step": gen + rew + train, "gen": gen, "reward": rew, "train": train,
            "len": mean("completion_length/mean"), "process_wall": wall,
            "per_step": [r["time/generation"] + r["time/reward"] + r["time/training"] for r in recs]}


def trivial_reward(completions, **_):
    """Cheap and varied: the share of letters among the completion's characters."""
    out = []
    for c in completions:
        t = c[0]["content"] if isinstance(c, list) else c
        out.append(sum(ch.isalpha() for ch in t) / max(len(t), 1))
    return out


def run_trl(a):
    import torch
    torch.set_num_threads(1)
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    texts = load_texts(a.data, a.prompts)
    ds = Dataset.from_list([{"prompt": [{"role": "user", "content": user_turn(t)}]}
                            for t in texts])
    total = (a.warmup + a.steps) * a.mu

    class Clock(TrainerCallback):
        def __init__(self):
            self.ends, self.lens = [], []

        def on_train_begin(self, *args, **kw):
            self.start = time.perf_counter()

        def on_step_end(self, *args, **kw):
            self.ends.append(time.perf_counter())

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "completions/mean_length" in logs:
                self.lens.append(logs["completions/mean_length"])

    with tempfile.TemporaryDirectory() as tmp:
        cfg = GRPOConfig(
            output_dir=tmp, use_cpu=True, bf16=False, fp16=False, report_to="none",
            save_strategy="no", logging_steps=1, disable_tqdm=True, seed=0,
            max_steps=total, learning_rate=a.lr, lr_scheduler_type="constant",
            warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
            per_device_train_batch_size=a.P * a.G, gradient_accumulation_steps=1,
            num_generations=a.G, max_completion_length=a.L, num_iterations=a.mu,
            temperature=1.0, top_p=1.0, top_k=0, loss_type="dr_grpo", scale_rewards="none",
            beta=0.0, epsilon=0.2, mask_truncated_completions=False,
            dataloader_num_workers=0, use_vllm=False, gradient_checkpointing=False,
        )
        tok = AutoTokenizer.from_pretrained(a.model)
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32)
        peft_cfg = LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=0.0,
                              target_modules="all-linear", task_type="CAUSAL_LM")
        clock = Clock()
        tr = GRPOTrainer(model=model, reward_funcs=trivial_reward, args=cfg, train_dataset=ds,
                         processing_class=tok, peft_config=peft_cfg, callbacks=[clock])
        tr.train()
    marks = [clock.start] + clock.ends[a.mu - 1::a.mu]
    per_step = [b - e for e, b in zip(marks, marks[1:])][a.warmup:]
    lens = clock.lens[a.warmup:] or clock.lens  # one entry a generation
    return {"step": sum(per_step) / len(per_step), "per_step": per_step,
            "len": sum(lens) / max(len(lens), 1)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(ROOT / "models/smollm2-135m-instruct"))
    p.add_argument("--data", default=str(ROOT / "datasets/rewrite/train.jsonl"))
    p.add_argument("--prompts", type=int, default=8, help="inputs both sides draw from")
    p.add_argument("--encoder", default="stylometric", help="stylerl's reward encoder")
    p.add_argument("--P", type=int, default=2)
    p.add_argument("--G", type=int, default=4)
    p.add_argument("--L", type=int, default=40)
    p.add_argument("--mu", type=int, default=2)
    p.add_argument("--r", type=int, default=16)
    p.add_argument("--alpha", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--steps", type=int, default=3, help="measured steps a side")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--skip-trl", action="store_true")
    p.add_argument("--modes", default="f32", help="stylerl precision modes, comma-separated (f32, bf16, auto)")
    a = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if not (Path(a.model) / "config.json").exists():
        sys.exit(f"{a.model}: not a model directory: run scripts/setup.sh (or pass --model)")

    print(f"model {a.model}  P {a.P}  G {a.G}  L {a.L}  mu {a.mu}  LoRA r {a.r} alpha {a.alpha} "
          f"all-linear  1 thread  {a.warmup} warm-up + {a.steps} measured steps a side")
    modes = [m.strip() for m in a.modes.split(",") if m.strip()]
    runs = {}
    for m in modes:
        s = runs[m] = run_stylerl(a, m)
        print(f"stylerl ({m}): {s['step']:.2f} s/step (generation {s['gen']:.2f}, reward {s['reward']:.2f}, "
              f"training {s['train']:.2f}); mean completion {s['len']:.1f} tokens; "
              f"steps {[round(x, 2) for x in s['per_step']]}", flush=True)
    if a.skip_trl:
        return
    t = run_trl(a)
    print(f"TRL:     {t['step']:.2f} s/step; mean completion {t['len']:.1f} tokens; "
          f"steps {[round(x, 2) for x in t['per_step']]}")
    for m, s in runs.items():
        gt = s["gen"] + s["train"]
        print(f"ratio TRL / stylerl ({m}): {t['step'] / s['step']:.2f}x (whole step), "
              f"{t['step'] / gt:.2f}x (generation + training, stylerl's reward left out)")
        tok_s, tok_t = a.P * a.G * s["len"], a.P * a.G * t["len"]
        print(f"per completion token ({m}): stylerl {1000 * gt / max(tok_s, 1):.1f} ms, "
              f"TRL {1000 * t['step'] / max(tok_t, 1):.1f} ms, "
              f"ratio {(t['step'] / max(tok_t, 1)) / (gt / max(tok_s, 1)):.2f}x")


if __name__ == "__main__":
    main()
