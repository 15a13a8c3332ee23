#!/usr/bin/env python3
"""Writes tests/fixtures/attention_scores.json: attention head scores and
rollout computed by a second, plain implementation (PyTorch's transformers
GPT-2 for the attention, numpy for the scores) on real probes of the
transformers fixture model (tests/fixtures/hf-trainer/checkpoint-12), for
tests/inspect_scores.rs to compare the workbench's scores against.

    /tmp/torchenv/bin/python scripts/make_scores_fixture.py

Probes: the copy-task text "abcdefgh|abcdefgh" (token ids from the fixture's
tokenizer.json), and an induction probe made as the workbench makes its own:
a random token sequence (numpy, seed 7, 12 ids below the vocabulary size)
repeated twice.

Scores per layer x head, A the head's n x n attention (rows: queries):
  entropy    mean over all rows q of -sum_k A[q,k] ln A[q,k] (0 ln 0 = 0)
  prev       mean over q >= 1 of A[q, q-1]
  sink       mean over q >= 1 of A[q, 0]
  induction  mean, over the queries q whose token occurred at some j < q, of
             sum over those j of A[q, j+1]
Rollout (Abnar & Zuidema 2020) per layer l: B_i = rows-normalised
(mean over heads of A_i + I), R_l = B_l ... B_0.
"""
import json
import os

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CKPT = os.path.join(ROOT, "tests", "fixtures", "hf-trainer", "checkpoint-12")
OUT = os.path.join(ROOT, "tests", "fixtures", "attention_scores.json")


def attention(model, ids):
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    # layers x heads x n x n, float64 for the scores
    return np.stack([a[0].numpy().astype(np.float64) for a in out.attentions])


def scores(A, ids):
    L, H, n, _ = A.shape
    rows = []
    for l in range(L):
        for h in range(H):
            a = A[l, h]
            with np.errstate(divide="ignore", invalid="ignore"):
                plogp = np.where(a > 0, a * np.log(np.where(a > 0, a, 1.0)), 0.0)
            entropy = float(-plogp.sum(axis=1).mean())
            prev = float(np.mean([a[q, q - 1] for q in range(1, n)]))
            sink = float(np.mean([a[q, 0] for q in range(1, n)]))
            ind = []
            for q in range(n):
                keys = [j + 1 for j in range(q) if ids[j] == ids[q]]
                if keys:
                    ind.append(sum(a[q, k] for k in keys))
            induction = float(np.mean(ind)) if ind else None
            rows.append([l, h, entropy, prev, sink, induction])
    return rows


def rollout(A):
    L, H, n, _ = A.shape
    R = np.eye(n)
    out = []
    for l in range(L):
        B = A[l].mean(axis=0) + np.eye(n)
        B = B / B.sum(axis=1, keepdims=True)
        R = B @ R
        out.append([round(float(v), 7) for v in R.reshape(-1)])
    return out


def main():
    model = GPT2LMHeadModel.from_pretrained(CKPT, attn_implementation="eager")
    model.eval()
    tok = Tokenizer.from_file(os.path.join(CKPT, "tokenizer.json"))
    text = "abcdefgh|abcdefgh"
    copy_ids = tok.encode(text).ids
    rng = np.random.default_rng(7)
    half = [int(v) for v in rng.integers(0, model.config.vocab_size, 12)]
    probes = [("copy text", text, copy_ids), ("induction probe", None, half + half)]
    out = {"checkpoint": "tests/fixtures/hf-trainer/checkpoint-12", "probes": []}
    for name, t, ids in probes:
        A = attention(model, ids)
        out["probes"].append(
            {
                "name": name,
                "text": t,
                "ids": ids,
                "scores": [r[:2] + [None if v is None else round(v, 7) for v in r[2:]]
                           for r in scores(A, ids)],
                "rollout": rollout(A),
            }
        )
    with open(OUT, "w") as f:
        json.dump(out, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")
    for p in out["probes"]:
        for r in p["scores"]:
            print(p["name"], r)


if __name__ == "__main__":
    main()
