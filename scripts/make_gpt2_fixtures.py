#!/usr/bin/env python3
"""Writes the tiny GPT-2 fixture headsup's tests compare against, with
transformers (and, with --small DIR, a GPT-2-small-shaped checkpoint).

    /tmp/torchenv/bin/python scripts/make_gpt2_fixtures.py            # tests/fixtures/gpt2_tiny*
    /tmp/torchenv/bin/python scripts/make_gpt2_fixtures.py --small /tmp/gpt2-small

tests/fixtures/gpt2_tiny/ is what an older hub GPT-2 directory looks like:
config.json (GPT2LMHeadModel), model.safetensors with base-model tensor names
(`wte.weight`, `h.0.attn.c_attn.weight`, no `transformer.` prefix, no
`lm_head.weight`), and the tokenizer as vocab.json + merges.txt (no
tokenizer.json). The tokenizer has 300 tokens (256 bytes, 43 merges,
<|endoftext|>) and the model's vocabulary is padded to 320; the 20 padded rows
of the embedding are made large so that an unmasked argmax would pick them.

tests/fixtures/gpt2_tiny_expected.json holds what transformers says:
  prompt, prompt_ids        GPT2Tokenizer's ids of the prompt
  last_logits               the 320 logits after the prompt (GPT2LMHeadModel)
  greedy_ids                20 greedy ids after the prompt, argmax over the
                            tokenizer's 300 ids only (padded ids masked)
  greedy_unmasked           the same over all 320 ids (shows the mask matters)
  mixed_text, mixed_ids     GPT2Tokenizer's ids of an English/CJK/emoji text,
                            also checked here against OpenAI's original
                            byte-pair algorithm (encoder.py)
"""
import argparse
import json
import os
import re
import sys

import torch
from safetensors.torch import save_file
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
TOK_SIZE = 300
VOCAB = 320

CORPUS = [
    "To be, or not to be, that is the question:\n",
    "Whether 'tis nobler in the mind to suffer\n",
    "The slings and arrows of outrageous fortune,\n",
    "Or to take arms against a sea of troubles\n",
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。\n",
    "the the the then there these those this that\n",
]
PROMPT = "To be, or not"
MIXED = "Hello, world! 你好，世界 🚀🎉 café naïve — 日本語テキスト 한국어\ttab\nnew line  two spaces 123.45 <|endoftext|> end"


def bytes_to_unicode():
    """OpenAI's GPT-2 encoder.py table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def openai_encode(text, vocab, merges):
    """OpenAI's GPT-2 encoder.py byte-pair algorithm (with `regex`'s pattern
    written for `re`: \\p{L} and \\p{N} as [^\\W\\d_] and \\d, which differ only
    on rare code points), plus <|endoftext|> as one special token, as
    GPT2Tokenizer treats it."""
    ranks = {tuple(m): i for i, m in enumerate(merges)}
    b2u = bytes_to_unicode()
    pat = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+|_+""")

    def bpe(token):
        word = tuple(token)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if best not in ranks:
                break
            out, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = tuple(out)
        return word

    ids = []
    for k, part in enumerate(text.split("<|endoftext|>")):
        if k > 0:
            ids.append(vocab["<|endoftext|>"])
        for piece in pat.findall(part):
            token = "".join(b2u[b] for b in piece.encode("utf-8"))
            ids.extend(vocab[t] for t in bpe(token))
    return ids


def write_tokenizer(out):
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(CORPUS, vocab_size=TOK_SIZE - 1, min_frequency=1, show_progress=False)
    bpe.save_model(out)
    vocab = json.load(open(os.path.join(out, "vocab.json"), encoding="utf-8"))
    assert len(vocab) == TOK_SIZE - 1, len(vocab)
    vocab["<|endoftext|>"] = TOK_SIZE - 1
    with open(os.path.join(out, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    return vocab


def read_merges(out):
    lines = open(os.path.join(out, "merges.txt"), encoding="utf-8").read().split("\n")
    return [l.split(" ") for l in lines if l and not l.startswith("#version")]


def make_model(cfg, seed, big_pad):
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        for name, p in model.transformer.named_parameters():
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(cfg.initializer_range * torch.randn_like(p))
        if big_pad:
            wte = model.transformer.wte.weight
            wte[TOK_SIZE:] = 3.0 * wte[TOK_SIZE:]
    return model


def save_base_names(model, out):
    """config.json and model.safetensors with GPT2Model (base) tensor names."""
    sd = {k: v.detach().contiguous().clone() for k, v in model.transformer.state_dict().items()
          if not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
    save_file(sd, os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
    cfg = model.config.to_dict()
    cfg["architectures"] = ["GPT2LMHeadModel"]
    keep = ["architectures", "model_type", "vocab_size", "n_positions", "n_ctx", "n_embd", "n_layer",
            "n_head", "n_inner", "activation_function", "resid_pdrop", "embd_pdrop", "attn_pdrop",
            "layer_norm_epsilon", "initializer_range", "bos_token_id", "eos_token_id",
            "tie_word_embeddings"]
    cfg = {k: cfg[k] for k in keep if k in cfg}
    cfg["n_ctx"] = cfg["n_positions"]
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def greedy(model, ids, n, limit):
    ids = list(ids)
    out = []
    with torch.no_grad():
        for _ in range(n):
            logits = model(torch.tensor([ids])).logits[0, -1, :limit]
            nxt = int(torch.argmax(logits))
            out.append(nxt)
            ids.append(nxt)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", help="also write a GPT-2-small-shaped checkpoint (12L/12H/768, 1024 positions, "
                                    "vocab 50304 padded) with the tiny tokenizer into this directory, and its "
                                    "expected greedy ids beside it as expected.json")
    args = ap.parse_args()
    torch.set_num_threads(2)

    out = os.path.join(FIX, "gpt2_tiny")
    os.makedirs(out, exist_ok=True)
    vocab = write_tokenizer(out)
    merges = read_merges(out)
    tok = GPT2Tokenizer(os.path.join(out, "vocab.json"), os.path.join(out, "merges.txt"))
    assert len(tok) == TOK_SIZE, len(tok)
    mixed_ids = tok.encode(MIXED)
    ref = openai_encode(MIXED, vocab, merges)
    assert mixed_ids == ref, (mixed_ids, ref)
    assert tok.decode(mixed_ids) == MIXED

    cfg = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                     initializer_range=0.3, bos_token_id=TOK_SIZE - 1, eos_token_id=TOK_SIZE - 1,
                     activation_function="gelu_new")
    model = make_model(cfg, 0, True)
    save_base_names(model, out)
    # What transformers reads back from the directory is what is compared.
    model = GPT2LMHeadModel.from_pretrained(out).eval()
    prompt_ids = tok.encode(PROMPT)
    with torch.no_grad():
        last = model(torch.tensor([prompt_ids])).logits[0, -1].tolist()
    expected = {
        "prompt": PROMPT,
        "prompt_ids": prompt_ids,
        "last_logits": last,
        "greedy_ids": greedy(model, prompt_ids, 20, TOK_SIZE),
        "greedy_unmasked": greedy(model, prompt_ids, 20, VOCAB),
        "mixed_text": MIXED,
        "mixed_ids": mixed_ids,
    }
    assert any(i >= TOK_SIZE for i in expected["greedy_unmasked"]), "the padded rows should win unmasked"
    with open(os.path.join(FIX, "gpt2_tiny_expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, ensure_ascii=False)
    print("wrote", out, "and gpt2_tiny_expected.json;", "greedy", expected["greedy_ids"])

    if args.small:
        d = args.small
        os.makedirs(d, exist_ok=True)
        for name in ("vocab.json", "merges.txt"):
            with open(os.path.join(out, name), "rb") as src, open(os.path.join(d, name), "wb") as dst:
                dst.write(src.read())
        scfg = GPT2Config(vocab_size=50304, n_positions=1024, n_embd=768, n_layer=12, n_head=12,
                          initializer_range=0.05, bos_token_id=TOK_SIZE - 1, eos_token_id=TOK_SIZE - 1)
        small = make_model(scfg, 1, False)
        save_base_names(small, d)
        small = GPT2LMHeadModel.from_pretrained(d).eval()
        ids = greedy(small, prompt_ids, 10, TOK_SIZE)
        with open(os.path.join(d, "expected.json"), "w") as f:
            json.dump({"prompt": PROMPT, "prompt_ids": prompt_ids, "greedy_ids": ids}, f)
        print("wrote", d, "greedy", ids)


if __name__ == "__main__":
    sys.exit(main())
