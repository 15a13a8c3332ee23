#!/usr/bin/env python3
"""The BERT (masked-LM) fixtures and the transformers-side interop check.

    /tmp/torchenv/bin/python scripts/make_bert_fixtures.py             # writes tests/fixtures/bert_tiny/
    /tmp/torchenv/bin/python scripts/make_bert_fixtures.py --check DIR # a headsup BERT checkpoint in transformers

tests/fixtures/bert_tiny/ is a small BertForMaskedLM saved by transformers
(save_pretrained: config.json, model.safetensors) with a WordPiece
tokenizer.json over single characters ([PAD] [UNK] [CLS] [SEP] [MASK] first,
BERT normalizer and pre-tokenizer, `[CLS] ... [SEP]` post-processor). Its
weights are drawn wider than BERT's initialisation (std 0.3, biases and
LayerNorm moved off 0 and 1) so that the fills are clear-cut. expected.json
holds what transformers computes:
  text, input_ids           the text with [MASK]s and its ids ([CLS]...[SEP])
  positions                 where the [MASK]s are
  logits                    the full logits row at each mask
  top5, top5_probs          the five best ids at each mask and their softmax

--check DIR loads a checkpoint headsup wrote (config.json, model.safetensors)
with BertForMaskedLM and compares it with DIR/expected.json, written by the
same Rust test that saved the checkpoint (`HEADSUP_BERT_EXPORT=DIR cargo test
--test mlm_checkpoint`): logits within 1e-4 at the masked positions, same top-1.
"""
import argparse
import json
import os
import sys

import torch
from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece
from transformers import BertConfig, BertForMaskedLM

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "bert_tiny")
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CORPUS = "床前明月光，疑是地上霜。举头望明月，低头思故乡。春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"
TEXT = "床前明[MASK]光，疑是地上[MASK]。"


def tokenizer():
    chars = sorted(set(CORPUS))
    vocab = {t: i for i, t in enumerate(SPECIALS + chars)}
    tok = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.BertProcessing(("[SEP]", vocab["[SEP]"]), ("[CLS]", vocab["[CLS]"]))
    tok.decoder = decoders.WordPiece()
    tok.add_special_tokens(SPECIALS)
    return tok


def make():
    os.makedirs(OUT, exist_ok=True)
    tok = tokenizer()
    torch.manual_seed(14)
    cfg = BertConfig(
        vocab_size=tok.get_vocab_size(),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        type_vocab_size=2,
        hidden_act="gelu",
        layer_norm_eps=1e-12,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=0,
    )
    model = BertForMaskedLM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    model.save_pretrained(OUT, safe_serialization=True)
    tok.save(os.path.join(OUT, "tokenizer.json"))
    enc = tok.encode(TEXT)
    ids = enc.ids
    mask_id = tok.token_to_id("[MASK]")
    positions = [i for i, t in enumerate(ids) if t == mask_id]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    rows = logits[positions]
    probs = rows.softmax(-1)
    top = probs.topk(5, dim=-1)
    expected = {
        "text": TEXT,
        "input_ids": ids,
        "positions": positions,
        "logits": rows.tolist(),
        "top5": top.indices.tolist(),
        "top5_probs": top.values.tolist(),
        "top1_tokens": [tok.id_to_token(i[0]) for i in top.indices.tolist()],
    }
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, ensure_ascii=False, indent=1)
    names = sorted(model.state_dict().keys())
    print(f"wrote {OUT}: vocab {cfg.vocab_size}, ids {ids}, masks at {positions}")
    print(f"top-1 fills {expected['top1_tokens']}, probabilities {[round(p[0], 4) for p in expected['top5_probs']]}")
    print(f"{len(names)} state-dict names, e.g. {names[:3]}")


def check(d):
    with open(os.path.join(d, "expected.json")) as f:
        exp = json.load(f)
    model = BertForMaskedLM.from_pretrained(d).eval()
    ids = torch.tensor(exp["input_ids"])
    with torch.no_grad():
        logits = model(input_ids=ids).logits
    flat = logits.reshape(-1, logits.shape[-1])
    got = flat[exp["positions"]]
    want = torch.tensor(exp["logits"])
    diff = (got - want).abs().max().item()
    same_top1 = got.argmax(-1).tolist() == want.argmax(-1).tolist()
    print(
        f"transformers BertForMaskedLM on {d}: {len(exp['positions'])} masked positions, "
        f"max |logit difference| {diff:.3e}, top-1 {got.argmax(-1).tolist()} "
        f"({'same' if same_top1 else 'DIFFERENT'} as headsup's)"
    )
    if diff > 1e-4 or not same_top1:
        sys.exit(1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", metavar="DIR")
    a = ap.parse_args()
    if a.check:
        check(a.check)
    else:
        make()
