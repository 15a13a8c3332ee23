#!/usr/bin/env python3
"""PyTorch reference for headsup's training speed, memory and loss.

Trains the model headsup trains, in plain PyTorch: a GPT-2-layout decoder
(learned position embeddings, pre-LayerNorm blocks, causal self-attention
from one fused qkv projection, tanh-GELU MLP of width 4C, final LayerNorm,
output head tied to the token embedding), character level, initialised
N(0, 0.02) with zero biases, trained with AdamW (weight decay on matrices and
embeddings only), linear warmup then cosine decay to a floor, and global-norm
gradient clipping. The defaults are nanoGPT's CPU "baby" config
(samples/shakespeare-char.toml).

Prints one JSON line: {"impl": "pytorch", "torch", "threads", "iters",
"params" (without position embeddings, as nanoGPT counts), "tokens_per_s"
(over the training loop only), "train_s", "train_loss", "val_loss" (mean of
--eval-iters batches after training)}. scripts/compare_torch.sh alternates it
with `headsup bench`; scripts/summarise.py reads the lines.

usage: scripts/ref_gpt.py DATA.txt [--iters 2000] [--threads 2]
       [--layers 4 --heads 4 --embd 128 --block 64 --batch 12]
       [--lr 1e-3 --min-lr 1e-4 --warmup 100] [--eval-iters 20] [--seed 1337]
       [--precision fp32|bf16]   (bf16: the forward under torch.autocast("cpu",
       dtype=torch.bfloat16), as headsup's train.precision = "bf16")
Needs: torch (python3 -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch).
"""
import argparse
import contextlib
import json
import math
import sys
import time

try:
    import torch
    from torch import nn
    from torch.nn import functional as F
except ImportError:
    sys.exit("error: ref_gpt.py needs PyTorch: pip install torch (e.g. in /tmp/torchenv)")


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch reference GPT trainer (char level)")
    ap.add_argument("data", help="a UTF-8 text file")
    ap.add_argument("--iters", type=int, default=2000, help="optimizer steps")
    ap.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--embd", type=int, default=128)
    ap.add_argument("--block", type=int, default=64, help="context length")
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    ap.add_argument("--min-lr", type=float, default=1e-4, help="floor of the cosine decay")
    ap.add_argument("--warmup", type=int, default=100, help="linear warmup steps")
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--train-fraction", type=float, default=0.9)
    ap.add_argument("--eval-iters", type=int, default=20, help="batches per split in the final eval")
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: CPU autocast (bf16 matrix products, fp32 master weights)")
    a = ap.parse_args()
    if a.embd % a.heads != 0:
        ap.error(f"--embd ({a.embd}) must be divisible by --heads ({a.heads})")
    for name in ("iters", "threads", "layers", "heads", "embd", "block", "batch", "eval_iters"):
        if getattr(a, name) <= 0:
            ap.error(f"--{name.replace('_', '-')} must be positive")
    return a


def load_corpus(path, block, train_fraction):
    """Character ids of the text, split into train and validation (in order)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        sys.exit(f"error: cannot read {path}: {e}")
    vocab = sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocab)}
    ids = torch.tensor([index[ch] for ch in text], dtype=torch.long)
    cut = int(train_fraction * len(ids))
    train, val = ids[:cut], ids[cut:]
    if min(len(train), len(val)) <= block:
        sys.exit(f"error: {path} is too short for --block {block} at train fraction {train_fraction}")
    return train, val, len(vocab)


class Block(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x))."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.ln_1 = nn.LayerNorm(width)
        self.c_attn = nn.Linear(width, 3 * width)
        self.attn_proj = nn.Linear(width, width)
        self.ln_2 = nn.LayerNorm(width)
        self.c_fc = nn.Linear(width, 4 * width)
        self.mlp_proj = nn.Linear(4 * width, width)

    def forward(self, x):
        b, t, c = x.shape
        h = self.heads
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, h, c // h).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, vocab, block, width, heads, layers):
        super().__init__()
        self.wte = nn.Embedding(vocab, width)
        self.wpe = nn.Embedding(block, width)
        self.h = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab, bias=False)
        self.lm_head.weight = self.wte.weight  # tied
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def loss(self, idx, targets):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


def lr_at(step, a):
    """Linear warmup, then cosine from --lr to --min-lr over the remaining steps."""
    if step < a.warmup:
        return a.lr * (step + 1) / (a.warmup + 1)
    ratio = min(1.0, (step - a.warmup) / max(1, a.iters - a.warmup))
    return a.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (a.lr - a.min_lr)


def main():
    a = parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    train, val, vocab = load_corpus(a.data, a.block, a.train_fraction)

    def batch(ids):
        starts = torch.randint(len(ids) - a.block, (a.batch,))
        x = torch.stack([ids[s : s + a.block] for s in starts])
        y = torch.stack([ids[s + 1 : s + 1 + a.block] for s in starts])
        return x, y

    model = Gpt(vocab, a.block, a.embd, a.heads, a.layers)
    params = list(model.parameters())  # the tied weight once
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": a.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.99), eps=1e-8)

    def cast():
        if a.precision == "bf16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    start = time.perf_counter()
    for step in range(a.iters):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        with cast():
            loss = model.loss(*batch(train))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, a.grad_clip)
        opt.step()
    train_s = time.perf_counter() - start

    model.eval()
    with torch.no_grad(), cast():
        final = {
            name: sum(model.loss(*batch(ids)).item() for _ in range(a.eval_iters)) / a.eval_iters
            for name, ids in (("train", train), ("val", val))
        }
    n_params = sum(p.numel() for p in params) - model.wpe.weight.numel()
    print(
        json.dumps(
            {
                "impl": "pytorch",
                "torch": torch.__version__,
                "threads": a.threads,
                "precision": a.precision,
                "iters": a.iters,
                "params": n_params,
                "tokens_per_s": a.iters * a.batch * a.block / train_s,
                "train_s": round(train_s, 2),
                "train_loss": round(final["train"], 4),
                "val_loss": round(final["val"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
