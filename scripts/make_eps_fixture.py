#!/usr/bin/env python3
"""Writes tests/fixtures/gpt2_eps1e-6/: a tiny GPT-2 checkpoint with
layer_norm_epsilon = 1e-6, made and saved by Hugging Face transformers, and
the logits transformers computes for a fixed token sequence (in float64, as
reference.json). tests/model.rs loads the checkpoint in headsup and compares.

The embeddings are small (std 1e-3), so the LayerNorm inputs have a variance
near 1e-6 and the epsilon changes the logits clearly: a loader that ignored
config.json's value (using 1e-5) would be far off.

Run from the repository root: python3 scripts/make_eps_fixture.py
(needs torch, transformers, safetensors).
"""
import json
import os

import torch
from transformers import GPT2Config, GPT2LMHeadModel

OUT = os.path.join("tests", "fixtures", "gpt2_eps1e-6")
TOKENS = [3, 1, 4, 1, 5, 9, 2, 6]

torch.manual_seed(1234)
cfg = GPT2Config(
    vocab_size=11,
    n_positions=8,
    n_embd=8,
    n_layer=2,
    n_head=2,
    layer_norm_epsilon=1e-6,
    activation_function="gelu_new",
    resid_pdrop=0.0,
    embd_pdrop=0.0,
    attn_pdrop=0.0,
    tie_word_embeddings=True,
    bos_token_id=0,
    eos_token_id=0,
)
model = GPT2LMHeadModel(cfg).eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        if name.endswith("wte.weight") or name.endswith("wpe.weight"):
            p.normal_(0.0, 1e-3)
        elif ".ln_" in name or "ln_f" in name:
            if name.endswith("weight"):
                p.normal_(1.0, 0.3)
            else:
                p.normal_(0.0, 0.1)
        elif name.endswith("weight"):
            p.normal_(0.0, 0.02)
        else:
            p.normal_(0.0, 0.01)
os.makedirs(OUT, exist_ok=True)
model.save_pretrained(OUT, safe_serialization=True)
# headsup reads config.json and model.safetensors; generation settings are not its business.
gen = os.path.join(OUT, "generation_config.json")
if os.path.exists(gen):
    os.remove(gen)
with torch.no_grad():
    logits = model.double()(torch.tensor([TOKENS])).logits[0]
with open(os.path.join(OUT, "reference.json"), "w") as f:
    json.dump(
        {
            "tokens": TOKENS,
            "layer_norm_epsilon": cfg.layer_norm_epsilon,
            "logits": logits.tolist(),
            "made_by": "scripts/make_eps_fixture.py (transformers GPT2LMHeadModel, float64 forward)",
        },
        f,
        indent=1,
    )
    f.write("\n")
print("wrote", OUT, "logits", tuple(logits.shape))
