#!/usr/bin/env python3
"""Continue a headsup checkpoint in Hugging Face transformers' Trainer, so that
`headsup watch OUTPUT_DIR` can follow (and probe) the run.

A headsup checkpoint directory (RUN/checkpoints/step-NNNNNNN) is a GPT-2
model directory: config.json, model.safetensors, tokenizer.json. This script
loads it with GPT2LMHeadModel, trains on the synthetic copy task (lines like
`abcdefgh|abcdefgh`, as headsup's `copy` sample) or on a text file, and logs
every step, so that OUTPUT_DIR gets `checkpoint-N/` directories with a
`trainer_state.json` (log_history: loss, learning_rate, grad_norm by step;
eval_loss per evaluation) and, at the end, a top-level trainer_state.json.

One process:
    python scripts/continue_in_transformers.py CKPT OUT --steps 200
Many GPUs (the same script; Trainer uses accelerate underneath):
    accelerate launch scripts/continue_in_transformers.py CKPT OUT --steps 2000
    torchrun --nproc_per_node 8 scripts/continue_in_transformers.py CKPT OUT

`--fixture` keeps only what headsup reads (config.json, model.safetensors,
tokenizer.json, trainer_state.json) in each checkpoint: that is how
tests/fixtures/hf-trainer/ was made:
    headsup train --config copy --set model.n_embd=32 --set model.n_head=2 \
        --set train.max_iters=100 --out /tmp/tiny
    python scripts/continue_in_transformers.py /tmp/tiny/checkpoints/step-0000100 \
        tests/fixtures/hf-trainer --steps 12 --save-steps 12 --eval-steps 4 --fixture
"""

import argparse
import os
import random
import shutil

import torch
from transformers import (
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    Trainer,
    TrainingArguments,
    default_data_collator,
)


def copy_lines(n, seed):
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = "".join(chr(ord("a") + rng.randrange(12)) for _ in range(8))
        out.append(f"{s}|{s}")
    return "\n".join(out) + "\n"


class Windows(torch.utils.data.Dataset):
    """Fixed windows of block_size tokens; labels are the inputs (the model shifts)."""

    def __init__(self, ids, block):
        self.ids = ids
        self.block = block

    def __len__(self):
        return max(1, (len(self.ids) - 1) // self.block)

    def __getitem__(self, i):
        x = torch.tensor(self.ids[i * self.block : (i + 1) * self.block])
        return {"input_ids": x, "labels": x.clone()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="a headsup checkpoint directory")
    ap.add_argument("output_dir")
    ap.add_argument("--data", help="a text file (default: the synthetic copy task)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--save-steps", type=int, default=50)
    ap.add_argument("--eval-steps", type=int, default=25)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1337)
    ap.add_argument("--fixture", action="store_true", help="keep only what headsup reads")
    a = ap.parse_args()

    tok = PreTrainedTokenizerFast(tokenizer_file=os.path.join(a.checkpoint, "tokenizer.json"))
    model = GPT2LMHeadModel.from_pretrained(a.checkpoint)
    block = model.config.n_positions
    text = open(a.data, encoding="utf-8").read() if a.data else copy_lines(4000, a.seed)
    ids = tok(text)["input_ids"]
    cut = int(len(ids) * 0.9)
    train, val = Windows(ids[:cut], block), Windows(ids[cut:], block)

    args = TrainingArguments(
        output_dir=a.output_dir,
        max_steps=a.steps,
        per_device_train_batch_size=a.batch_size,
        per_device_eval_batch_size=a.batch_size,
        learning_rate=a.lr,
        lr_scheduler_type="cosine",
        warmup_steps=min(10, a.steps // 10),
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=a.eval_steps,
        save_steps=a.save_steps,
        save_total_limit=2,
        report_to=[],
        seed=a.seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=val,
        processing_class=tok,
        # Every window is block_size long: stack, no padding.
        data_collator=default_data_collator,
    )
    trainer.train()
    # The top-level trainer_state.json (Trainer writes it only here).
    trainer.save_state()

    if a.fixture:
        keep = {"config.json", "model.safetensors", "tokenizer.json", "trainer_state.json"}
        for root, dirs, files in os.walk(a.output_dir):
            for f in files:
                if f not in keep:
                    os.remove(os.path.join(root, f))
        for f in ("config.json", "model.safetensors", "tokenizer.json"):
            p = os.path.join(a.output_dir, f)
            if os.path.exists(p):
                os.remove(p)
        for d in os.listdir(a.output_dir):
            if d.startswith("runs"):
                shutil.rmtree(os.path.join(a.output_dir, d))


if __name__ == "__main__":
    main()
