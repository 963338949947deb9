#!/usr/bin/env python
"""Generation speed: stylerl `generate` vs transformers `generate()` on the same model, prompts,
number of new tokens and sampling settings, in the same run. Prints tokens/s and the ratio.

Both sides generate exactly --new-tokens tokens per sequence (stylerl --ignore-eos,
transformers min_new_tokens), left-padded batches of prompts with different lengths.
stylerl's time is its own generation time (prefill + decode, from --timing), without model
loading; transformers' time is the generate() call after a warm-up.

    .venv/bin/python scripts/bench_generate.py [--model DIR] [--new-tokens 64] [--batch-sizes 1,8]
        [--sampling-weights f32,bf16,int8] [--llamacpp f32,f16,q8_0]

--sampling-weights measures stylerl once per `--sampling-weights` mode in the same run.
--llamacpp exports the model with `stylerl export-gguf --type T` for each type and measures
llama.cpp (llama-cpp-python) at batch 1 on it, in the same run: the same prompt text,
new tokens (EOS ignored), sampling settings and thread count; its time, like stylerl's,
is prefill + decode after loading.
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
ROOT = Path(__file__).resolve().parents[1]

PROMPTS = [
    "Rewrite this e-mail so it sounds friendlier: I need the slides by Friday.",
    "hey",
    "Summarise in one line: the meeting moved to Thursday because the room was booked.",
    "Tell me a short story about a lighthouse keeper who finds a message in a bottle on a stormy night.",
    "What is 17 times 23?",
    "Translate to French: good morning, how did you sleep?",
    "List three tips for writing clear text messages to a busy colleague who reads on the phone.",
    "Why is the sky blue?",
]


def run_stylerl(binary, model, prompts, args, mode="f32"):
    with tempfile.TemporaryDirectory() as d:
        inp = Path(d) / "p.jsonl"
        inp.write_text("".join(json.dumps(p) + "\n" for p in prompts))
        cmd = [str(binary), "generate", "--model", str(model), "--input", str(inp), "--batch-size", str(len(prompts)),
               "--max-new-tokens", str(args.new_tokens), "--temperature", str(args.temperature),
               "--top-k", str(args.top_k), "--top-p", str(args.top_p), "--seed", "0", "--ignore-eos",
               "--timing", "--json", "--dtype", args.dtype, "--sampling-weights", mode]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        env = dict(os.environ, STYLERL_PROGRESS="0")
        env.pop("LD_LIBRARY_PATH", None)
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if p.returncode != 0:
            sys.exit(f"stylerl failed: {p.stderr}")
        timing = next(json.loads(l)["timing"] for l in p.stderr.splitlines() if l.startswith('{"timing"'))
        rows = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        assert all(len(r["tokens"]) == args.new_tokens for r in rows)
        return timing


def run_hf(model, tok, prompts, args):
    import torch

    enc = tok(prompts, return_tensors="pt", padding=True)
    kw = dict(do_sample=True, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
              max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens, pad_token_id=tok.pad_token_id)
    with torch.no_grad():
        torch.manual_seed(0)
        t0 = time.perf_counter()
        out = model.generate(**enc, **kw)
        dt = time.perf_counter() - t0
    new = (out.shape[1] - enc["input_ids"].shape[1]) * len(prompts)
    return {"gen_s": dt, "new_tokens": new, "tokens_per_s": new / dt}


def export_gguf(binary, model, ty, out_dir):
    out = Path(out_dir) / f"model-{ty}.gguf"
    env = dict(os.environ, STYLERL_PROGRESS="0")
    env.pop("LD_LIBRARY_PATH", None)
    subprocess.run([str(binary), "export-gguf", "--model", str(model), "--type", ty, "--out", str(out)],
                   check=True, capture_output=True, env=env)
    return out


def run_llamacpp(llm, prompt, args):
    """Prefill + `--new-tokens` sampled tokens (EOS ignored), one sequence, timed like stylerl."""
    toks = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(toks)
    for _ in range(args.new_tokens):
        t = llm.sample(top_k=args.top_k, top_p=args.top_p, temp=args.temperature)
        llm.eval([t])
    dt = time.perf_counter() - t0
    return {"gen_s": dt, "new_tokens": args.new_tokens, "tokens_per_s": args.new_tokens / dt}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "smollm2-135m-instruct"))
    ap.add_argument("--bin", default=os.environ.get("STYLERL_BIN", str(ROOT / "target" / "release" / "stylerl")))
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--top-k", type=int, default=50)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for both (0: torch's default; 1 is steadier on a shared machine)")
    ap.add_argument("--dtype", default="f32")
    ap.add_argument("--repeats", type=int, default=3, help="runs per side, interleaved; the best counts")
    ap.add_argument("--sampling-weights", default="f32", help="stylerl modes, comma-separated (f32, bf16, int8, auto)")
    ap.add_argument("--llamacpp", default="", help="also measure llama.cpp at batch 1 on these GGUF types (f32, f16, bf16, q8_0)")
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=dtype).eval()
    tok = AutoTokenizer.from_pretrained(args.model)
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    with torch.no_grad():  # warm-up, once
        enc = tok(PROMPTS[:2], return_tensors="pt", padding=True)
        model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    print(f"model {args.model}, {args.new_tokens} new tokens, T={args.temperature} top-k {args.top_k} "
          f"top-p {args.top_p}, {args.dtype}, torch threads {torch.get_num_threads()}")
    modes = [m.strip() for m in args.sampling_weights.split(",") if m.strip()]
    print(f"{'batch':>5} {'stylerl mode':>13} {'stylerl tok/s':>14} {'transformers tok/s':>19} {'ratio':>7}  (stylerl prefill s / decode s)")
    for b in [int(x) for x in args.batch_sizes.split(",")]:
        prompts = (PROMPTS * ((b + len(PROMPTS) - 1) // len(PROMPTS)))[:b]
        # Interleaved repeats, best of each: the machine may be shared, and noise only slows runs down.
        runs = [([run_stylerl(args.bin, args.model, prompts, args, m) for m in modes], run_hf(model, tok, prompts, args))
                for _ in range(args.repeats)]
        h = max((r[1] for r in runs), key=lambda x: x["tokens_per_s"])
        for i, m in enumerate(modes):
            s = max((r[0][i] for r in runs), key=lambda x: x["tokens_per_s"])
            print(f"{b:>5} {m:>13} {s['tokens_per_s']:>14.1f} {h['tokens_per_s']:>19.1f} {s['tokens_per_s'] / h['tokens_per_s']:>6.2f}x"
                  f"  ({s['prefill_s']:.2f} / {s['decode_s']:.2f})", flush=True)
    types = [t.strip() for t in args.llamacpp.split(",") if t.strip()]
    if types:
        import tempfile as tf
        from llama_cpp import Llama

        threads = args.threads or os.cpu_count()
        prompt = PROMPTS[0]
        with tf.TemporaryDirectory() as d:
            ggufs = {t: export_gguf(args.bin, args.model, t, d) for t in types}
            llms = {t: Llama(model_path=str(g), n_ctx=512, n_batch=512, n_threads=threads,
                             n_threads_batch=threads, verbose=False) for t, g in ggufs.items()}
            for llm in llms.values():  # warm-up, once
                llm.reset()
                llm.eval(llm.tokenize(b"hello", add_bos=False))
            runs = [([run_stylerl(args.bin, args.model, [prompt], args, m) for m in modes],
                     {t: run_llamacpp(llm, prompt, args) for t, llm in llms.items()})
                    for _ in range(args.repeats)]
        print(f"batch 1 against llama.cpp ({threads} thread(s), the same {args.new_tokens} new tokens, prompt {prompt!r}):")
        for i, m in enumerate(modes):
            s = max((r[0][i] for r in runs), key=lambda x: x["tokens_per_s"])
            for t in types:
                l = max((r[1][t] for r in runs), key=lambda x: x["tokens_per_s"])
                print(f"  stylerl {m:>5} {s['tokens_per_s']:7.1f} tok/s  llama.cpp {t:>5} {l['tokens_per_s']:7.1f} tok/s"
                      f"  ratio {s['tokens_per_s'] / l['tokens_per_s']:.2f}x", flush=True)


if __name__ == "__main__":
    main()
