#!/usr/bin/env python3
"""SFT training speed: `stylerl sft` against a plain PyTorch + PEFT loop, tokens/s.

Same model (f32, CPU), LoRA config (the demo's: r 16, alpha 32, dropout 0.05, all-linear),
sequence length limit, batch size, data and batch order (stylerl's epoch order is
reproduced here), AdamW and grad clipping. The first --warmup steps are not timed; tokens/s
is real (non-pad) tokens over the wall time of the timed steps. Runs alternate between the
two sides --repeats times so background load hits both alike.

    .venv/bin/python scripts/bench_sft.py [--steps 4] [--warmup 1] [--batch 4] [--repeats 2] [--modes f32,bf16]

--modes runs stylerl once per training-matmul precision (`model.matmul`: f32, bf16, auto) in
the same repeats; each gets its own ratio against the same PEFT measurements (PEFT in f32).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("STYLERL_BIN", ROOT / "target/release/stylerl"))
MODEL = ROOT / "models/smollm2-135m-instruct"
DATA = ROOT / "datasets/sft/train.jsonl"
INSTRUCTION = ("Rewrite the following text. Keep its meaning and every name, number and date. "
               "Reply with the rewritten text only.")
M64 = (1 << 64) - 1


def splitmix_perm(seed, n):
    """stylerl's rng::SplitMix64::permutation (Fisher–Yates with rejection)."""
    state = seed

    def nxt():
        nonlocal state
        state = (state + 0x9E3779B97F4A7C15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(k):
        zone = M64 - (M64 % k)
        while True:
            x = nxt()
            if x < zone:
                return x % k

    v = list(range(n))
    for i in range(n - 1, 0, -1):
        j = below(i + 1)
        v[i], v[j] = v[j], v[i]
    return v


def epoch_order(seed, epoch, n):
    mix = (epoch * 0x9E3779B97F4A7C15) & M64
    rot = ((mix << 17) | (mix >> 47)) & M64
    return splitmix_perm(seed ^ rot, n)


def encode(tok, rows, max_length):
    """Prompt and answer ids the way stylerl renders them (answer = full − prompt render)."""
    out = []
    for r in rows:
        msgs = [{"role": "user", "content": f"{INSTRUCTION}\n\n{r['input']}"}]
        prompt = tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        full = tok.apply_chat_template(msgs + [{"role": "assistant", "content": r["output"]}], tokenize=False)
        assert full.startswith(prompt)
        p = tok(prompt, add_special_tokens=False)["input_ids"]
        a = tok(full[len(prompt):], add_special_tokens=False)["input_ids"]
        if len(p) + len(a) > max_length:
            a = a[: max_length - len(p)]
        out.append((p, a))
    return out


def batches(examples, batch, steps, seed=0):
    order, epoch, idx = epoch_order(seed, 0, len(examples)), 0, 0
    for _ in range(steps):
        chunk = []
        while len(chunk) < batch:
            if idx >= len(order):
                epoch, idx = epoch + 1, 0
                order = epoch_order(seed, epoch, len(examples))
            chunk.append(examples[order[idx]])
            idx += 1
        yield chunk


def collate(chunk, pad):
    t = max(len(p) + len(a) for p, a in chunk)
    ids = torch.full((len(chunk), t), pad, dtype=torch.long)
    mask = torch.zeros((len(chunk), t), dtype=torch.long)
    labels = torch.full((len(chunk), t), -100, dtype=torch.long)
    for i, (p, a) in enumerate(chunk):
        n = len(p) + len(a)
        ids[i, :n] = torch.tensor(p + a)
        mask[i, :n] = 1
        labels[i, len(p):n] = torch.tensor(a)
    return ids, mask, labels, int(mask.sum())


def run_peft(args):
    import peft
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(MODEL))
    rows = [json.loads(l) for l in DATA.read_text().splitlines() if l.strip()]
    ex = encode(tok, rows, args.max_length)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(MODEL), dtype=torch.float32)
    torch.manual_seed(0)
    cfg = peft.LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
    model = peft.get_peft_model(model, cfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.0)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    tokens = secs = 0.0
    for s, chunk in enumerate(batches(ex, args.batch, args.warmup + args.steps)):
        ids, mask, labels, n = collate(chunk, pad)
        t0 = time.perf_counter()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad()
        dt = time.perf_counter() - t0
        if s >= args.warmup:
            tokens, secs = tokens + n, secs + dt
    return tokens, secs


def run_stylerl(args, mode="f32"):
    with tempfile.TemporaryDirectory() as d:
        sets = {
            "out_dir": d, "data.eval": "", "data.max_length": args.max_length, "model.matmul": mode,
            "train.max_steps": args.warmup + args.steps, "train.batch_size": args.batch,
            "train.grad_accum": 1, "train.eval_every": 0, "train.checkpoint_every": 0,
            "train.merge": "false", "train.seed": 0,
        }
        cmd = [str(BIN), "sft", "--config", str(ROOT / "configs/demo/sft.toml")]
        for k, v in sets.items():
            cmd += ["--set", f"{k}={v}"]
        env = dict(os.environ, STYLERL_PROGRESS="0")
        env.pop("LD_LIBRARY_PATH", None)
        subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=ROOT)
        m = [json.loads(l) for l in (Path(d) / "metrics.jsonl").read_text().splitlines()]
    timed = m[args.warmup:]
    return sum(r["tokens"] for r in timed), sum(r["step_s"] for r in timed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1,
                    help="intra-op threads for both sides (OMP_NUM_THREADS); 1 is the fair choice on a busy machine")
    ap.add_argument("--modes", default="f32", help="stylerl's model.matmul values, comma-separated (f32, bf16, auto)")
    ap.add_argument("--side", choices=["peft"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    if args.side == "peft":  # child process: one PEFT measurement as JSON
        print(json.dumps(run_peft(args)))
        return
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    names = {m: "stylerl" if m == "f32" else f"stylerl-{m}" for m in modes}
    res = {**{names[m]: [] for m in modes}, "peft": []}
    for r in range(args.repeats):
        for m in modes:
            res[names[m]].append(run_stylerl(args, m))
        out = subprocess.run([sys.executable, __file__, "--side", "peft", *sys.argv[1:]],
                             check=True, capture_output=True, text=True).stdout
        res["peft"].append(tuple(json.loads(out.strip().splitlines()[-1])))
        for k in res:
            tok, s = res[k][-1]
            print(f"repeat {r + 1} {k:13s}: {tok:.0f} tokens in {s:.2f} s = {tok / s:.1f} tokens/s", flush=True)
    tps = {k: sum(t for t, _ in v) / sum(s for _, s in v) for k, v in res.items()}
    for m in modes:
        assert res[names[m]][0][0] == res["peft"][0][0], "the two sides saw different tokens"
    print(f"threads: {torch.get_num_threads()}  batch {args.batch}  max_length {args.max_length}  "
          f"timed steps {args.steps} after {args.warmup} warm-up, {args.repeats} repeats")
    for m in modes:
        k = names[m]
        print(f"{k} (model.matmul = {m}) {tps[k]:.1f} tokens/s, PyTorch+PEFT (f32) {tps['peft']:.1f} tokens/s, "
              f"ratio {tps[k] / tps['peft']:.2f}x")


if __name__ == "__main__":
    main()
