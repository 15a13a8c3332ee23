#!/usr/bin/env python3
"""Writes tests/fixtures/eval_metrics.json: prediction/reference corpora and
the scores the reference implementations give them, for src/eval/metrics.rs's
tests to compare against.

    /tmp/torchenv/bin/python scripts/make_eval_fixture.py

  bleu     sacrebleu.corpus_bleu defaults (13a tokenisation, smooth 'exp',
           brevity penalty), 0-100; for CJK corpora tokenize='zh'
  rouge    rouge_score.RougeScorer(['rouge1','rouge2','rougeL']) F-measure per
           pair (default tokenizer, no stemmer); for CJK corpora a tokenizer
           that makes each CJK character a token and otherwise does what the
           default one does (lowercase, runs of [a-z0-9])
  f1, em   the SQuAD v1.1 evaluation script's f1_score / exact_match_score
           (copied below verbatim); for CJK corpora f1 counts each CJK
           character as a token
"""
import collections
import json
import os
import re
import string

import sacrebleu
from rouge_score import rouge_scorer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "eval_metrics.json")


# --- SQuAD v1.1 evaluate-v1.1.py ---
def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def f1_score(prediction, ground_truth):
    prediction_tokens = normalize_answer(prediction).split()
    ground_truth_tokens = normalize_answer(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def exact_match_score(prediction, ground_truth):
    return (normalize_answer(prediction) == normalize_answer(ground_truth))
# --- end of SQuAD ---


def is_cjk(c):
    o = ord(c)
    return (0x2E80 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF
            or 0xFF00 <= o <= 0xFFEF or 0x20000 <= o <= 0x2FA1F or 0x1100 <= o <= 0x11FF)


class CjkTokenizer:
    """rouge-score's default tokenisation, with each CJK character a token."""

    def tokenize(self, text):
        out, word = [], ""
        for c in text.lower():
            if is_cjk(c) and c.isalnum():
                if word:
                    out.append(word)
                    word = ""
                out.append(c)
            elif re.match(r"[a-z0-9]", c):
                word += c
            else:
                if word:
                    out.append(word)
                    word = ""
        if word:
            out.append(word)
        return out


def cjk_split(text):
    """Whitespace tokens, with each CJK character its own token."""
    out = []
    for w in text.split():
        word = ""
        for c in w:
            if is_cjk(c) and c.isalnum():
                if word:
                    out.append(word)
                    word = ""
                out.append(c)
            else:
                word += c
        if word:
            out.append(word)
    return out


def f1_score_cjk(prediction, ground_truth):
    """f1_score with CJK characters as tokens (after the same normalisation)."""
    prediction_tokens = cjk_split(normalize_answer(prediction))
    ground_truth_tokens = cjk_split(normalize_answer(ground_truth))
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


CORPORA = {
    "english": [
        ("The cat sat on the mat.", "The cat is sitting on the mat."),
        ("A quick brown fox jumps over the lazy dog", "The quick brown fox jumped over the lazy dog."),
        ("It costs $3.50, or 3,000 yen - roughly.", "It costs $3.50 (about 3,000 yen) roughly."),
        ("Paris", "Paris"),
        ("the answer is 42", "42"),
        ("I don't know &amp; I don't care.", "I do not know and I do not care!"),
        ("", "Something was expected here."),
        ("Hello world hello WORLD", "hello world"),
        ("1990-2000 was a decade... of change,change", "1990-2000: a decade of change, change."),
        ("To be, or not to be: that is the question.", "To be, or not to be, that is the question:"),
    ],
    "short": [
        ("yes", "no"),
        ("an apple", "the apple"),
    ],
    "cjk": [
        ("床前明月光，疑是地上霜。", "床前明月光，疑是地上霜。"),
        ("举头望明月", "举头望明月，低头思故乡。"),
        ("我爱北京天安门 and Shanghai", "我爱北京 and Shanghai!"),
        ("今天天气很好", "今天的天气非常好"),
    ],
}


def main():
    out = {"corpora": {}}
    plain = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False)
    cjk = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=False, tokenizer=CjkTokenizer())
    for name, pairs in CORPORA.items():
        preds = [p for p, _ in pairs]
        refs = [r for _, r in pairs]
        is_cjk_corpus = name == "cjk"
        bleu = sacrebleu.corpus_bleu(preds, [refs], tokenize="zh" if is_cjk_corpus else "13a")
        scorer = cjk if is_cjk_corpus else plain
        rows = []
        for p, r in pairs:
            s = scorer.score(r, p)
            rows.append({
                "prediction": p,
                "reference": r,
                "rouge1": s["rouge1"].fmeasure,
                "rouge2": s["rouge2"].fmeasure,
                "rougeL": s["rougeL"].fmeasure,
                "f1": float(f1_score_cjk(p, r) if is_cjk_corpus else f1_score(p, r)),
                "em": bool(exact_match_score(p, r)),
            })
        out["corpora"][name] = {
            "cjk": is_cjk_corpus,
            "bleu": bleu.score,
            "bleu_bp": bleu.bp,
            "bleu_precisions": bleu.precisions,
            "sys_len": bleu.sys_len,
            "ref_len": bleu.ref_len,
            "pairs": rows,
        }
        print(name, bleu)
    out["generated_by"] = (f"scripts/make_eval_fixture.py with sacrebleu {sacrebleu.__version__} "
                           "and rouge-score (Google)")
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
