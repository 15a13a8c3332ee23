#!/usr/bin/env python3
"""Greedy generation speed at GPT-2-small size (124M parameters, KV cache):
`headsup generate` against transformers' `generate`, same checkpoint, same
prompt, same number of new tokens, same thread count, alternated.

    /tmp/torchenv/bin/python scripts/compare_generate.py [--rounds 3] [--threads 1 2]
        [--short 8] [--long 72] [--dir /tmp/gpt2-124m-random] [--bin target/release/headsup]

The checkpoint is made once (random init, seed 0, GPT2Config's defaults:
12 layers, 12 heads, width 768, 1024 positions, vocabulary 50257) in --dir
with transformers, and read by both engines; the tokenizer is the 300-token
one of tests/fixtures/gpt2_tiny (the model's vocabulary is padded past it:
headsup masks the padded ids, transformers does not, so the ids differ, the
work per token does not).

Tokens per second is measured as (long - short) new tokens over the
difference of the two times, so loading, the prompt and start-up cancel out:
for headsup the whole process is timed (RAYON_NUM_THREADS=t), for
transformers the `generate` call (torch.set_num_threads(t)). One JSON line
per measurement on stdout, each with the CPU's model name, SIMD flags and the
load average.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROMPT = "To be, or not to be, that is"


def cpu():
    name, flags = "", []
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name") and not name:
                name = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                have = set(line.split(":", 1)[1].split())
                flags = [x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl",
                                     "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16") if x in have]
    return name, " ".join(flags)


def make_checkpoint(d):
    import torch
    from safetensors.torch import save_file
    from transformers import GPT2Config, GPT2LMHeadModel

    if os.path.exists(os.path.join(d, "model.safetensors")):
        return
    os.makedirs(d, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(os.path.join(ROOT, "tests", "fixtures", "gpt2_tiny", name), d)
    torch.manual_seed(0)
    cfg = GPT2Config(bos_token_id=299, eos_token_id=299)
    model = GPT2LMHeadModel(cfg).eval()
    cfg.save_pretrained(d)
    # Base-model names (`wte.weight`, `h.0...`), no tied lm_head copy.
    sd = {k[len("transformer."):]: v.contiguous() for k, v in model.state_dict().items()
          if k.startswith("transformer.") and not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})


def torch_rate(d, threads, short, long):
    import torch
    from transformers import GPT2LMHeadModel, GPT2Tokenizer

    torch.set_num_threads(threads)
    tok = GPT2Tokenizer(os.path.join(d, "vocab.json"), os.path.join(d, "merges.txt"))
    model = GPT2LMHeadModel.from_pretrained(d).eval()
    ids = torch.tensor([tok.encode(PROMPT)])
    times = {}
    with torch.inference_mode():
        model.generate(ids, max_new_tokens=4, min_new_tokens=4, do_sample=False, pad_token_id=299)
        for n in (short, long):
            t0 = time.perf_counter()
            out = model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                 pad_token_id=299, use_cache=True)
            times[n] = time.perf_counter() - t0
            assert out.shape[1] == ids.shape[1] + n, out.shape
    return (long - short) / (times[long] - times[short]), times


def headsup_rate(binary, d, threads, short, long):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    times = {}
    for n in (short, long):
        t0 = time.perf_counter()
        subprocess.run([binary, "generate", "--checkpoint", d, "--prompt", PROMPT,
                        "--max-new-tokens", str(n), "--temperature", "0"],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times[n] = time.perf_counter() - t0
    return (long - short) / (times[long] - times[short]), times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--short", type=int, default=8)
    ap.add_argument("--long", type=int, default=72)
    ap.add_argument("--dir", default="/tmp/gpt2-124m-random")
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "headsup"))
    ap.add_argument("--only", choices=["headsup", "transformers"])
    a = ap.parse_args()
    if not os.path.exists(a.bin):
        sys.exit(f"compare_generate.py: {a.bin} is missing (cargo build --release, or --bin PATH)")
    make_checkpoint(a.dir)
    name, flags = cpu()
    for r in range(a.rounds):
        for t in a.threads:
            for impl in ("headsup", "transformers"):
                if a.only and impl != a.only:
                    continue
                load = os.getloadavg()[0]
                if impl == "headsup":
                    rate, times = headsup_rate(a.bin, a.dir, t, a.short, a.long)
                else:
                    rate, times = torch_rate(a.dir, t, a.short, a.long)
                print(json.dumps({"impl": impl, "threads": t, "round": r, "tok_per_s": round(rate, 2),
                                  "seconds": {str(k): round(v, 3) for k, v in times.items()},
                                  "new_tokens": [a.short, a.long], "load_avg": load,
                                  "cpu": name, "simd_flags": flags}), flush=True)


if __name__ == "__main__":
    main()
