#!/usr/bin/env python3
"""List a headsup checkpoint as Python sees it: config.json keys and every
tensor's name, dtype and shape, read with the `safetensors` package.

    python3 -m venv /tmp/stenv && /tmp/stenv/bin/pip install safetensors numpy
    /tmp/stenv/bin/python scripts/inspect_checkpoint.py RUN/checkpoints/step-0000500
"""
import json
import sys

from safetensors.numpy import load_file

d = sys.argv[1]
cfg = json.load(open(f"{d}/config.json"))
keys = ["model_type", "vocab_size", "n_positions", "n_embd", "n_layer", "n_head",
        "layer_norm_epsilon", "activation_function"]
print({k: cfg.get(k) for k in keys})
tensors = load_file(f"{d}/model.safetensors")
for name in sorted(tensors):
    t = tensors[name]
    print(f"{name:42s} {str(t.dtype):8s} {list(t.shape)}")
