#!/usr/bin/env python3
"""Loads a checkpoint headsup wrote in transformers and compares it with what
headsup computed on it: `headsup eval --references REFS --report REPORT` gives
each reference's summed negative log-likelihood given its prompt and each
greedy completion; this recomputes both with GPT2LMHeadModel and prints the
largest differences (and the checkpoint's positions).

    headsup eval --checkpoint CK --references refs.jsonl --report /tmp/r.json
    /tmp/torchenv/bin/python scripts/check_hf_checkpoint.py CK refs.jsonl /tmp/r.json

Exit 1 when an NLL differs by more than 1e-4 per token or a completion differs.
"""
import json
import os
import sys

import torch
from transformers import GPT2LMHeadModel, GPT2Tokenizer, PreTrainedTokenizerFast


def main():
    ck, refs_path, report_path = sys.argv[1:4]
    model = GPT2LMHeadModel.from_pretrained(ck).eval()
    if os.path.exists(os.path.join(ck, "tokenizer.json")):
        tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(ck, "tokenizer.json"))
    else:
        tok = GPT2Tokenizer(os.path.join(ck, "vocab.json"), os.path.join(ck, "merges.txt"))
    limit = len(tok)
    report = json.load(open(report_path, encoding="utf-8"))
    refs = [json.loads(l) for l in open(refs_path, encoding="utf-8") if l.strip()]
    print("n_positions", model.config.n_positions, "wpe", list(model.transformer.wpe.weight.shape),
          "vocab", model.config.vocab_size, "tokenizer", limit)
    worst_nll, bad = 0.0, 0
    stop = report["decoding"]["stop"]
    for ex, row in zip(refs, report["per_example"]):
        eot = tok.convert_tokens_to_ids("<|endoftext|>") if "<|endoftext|>" in tok.get_vocab() else 0
        ctx = tok.encode(ex["prompt"]) or [eot]
        ref = tok.encode(ex["reference"])
        ids = torch.tensor([ctx + ref])
        with torch.no_grad():
            logp = torch.log_softmax(model(ids).logits[0].double(), -1)
        nll = -sum(float(logp[len(ctx) - 1 + i, t]) for i, t in enumerate(ref))
        worst_nll = max(worst_nll, abs(nll - row["reference_nll"]) / max(len(ref), 1))
        # Greedy completion over the tokenizer's ids.
        seq = list(ctx)
        out = []
        with torch.no_grad():
            for _ in range(report["decoding"]["max_new_tokens"]):
                nxt = int(torch.argmax(model(torch.tensor([seq[-model.config.n_positions:]])).logits[0, -1, :limit]))
                seq.append(nxt)
                out.append(nxt)
                text = tok.decode(out)
                if stop and stop in text:
                    break
        text = tok.decode(out)
        if stop and stop in text:
            text = text[: text.index(stop)]
        if text.strip() != row["completion"]:
            bad += 1
            print("completion differs:", repr(text.strip()), "vs headsup", repr(row["completion"]))
    print(f"examples {len(refs)}; largest |NLL difference| per token {worst_nll:.2e}; completions differing {bad}")
    return 1 if worst_nll > 1e-4 or bad else 0


if __name__ == "__main__":
    sys.exit(main())
