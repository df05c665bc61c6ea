"""nanoGPT's README recipe for a CPU, run with the real nanoGPT model (benchmarks.nanogpt):

    python train.py config/train_shakespeare_char.py --device=cpu --compile=False
        --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4
        --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0

that is: lr 1e-3 with 100 warmup iterations and cosine decay to 1e-4 at 2000, AdamW (its
own `configure_optimizers`: betas 0.9/0.99, weight decay 0.1 on matrices), gradients clipped
at 1.0, no biases, an estimate of both losses on 20 random batches every 250 iterations.
The loop follows nanoGPT's train.py on a CPU (iterations 0 to 2000 inclusive); it does not
write checkpoints. Characters are tokenized and split 90/10 as its prepare.py does.

    python -m benchmarks.nanogpt_recipe --corpus ../shared/data/tinyshakespeare.txt

Prints one JSON line per estimate, {"trained": ...} when the last step is done (what
benchmarks.time_to_loss times), then the exact validation loss of the final model on the
whole validation split, by gptcore's `evaluate` (which tests show nanoGPT's model equals).
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import time

import torch

from benchmarks import nanogpt
from benchmarks.common import parser, setup
from gptcore.data import random_batch
from gptcore.model import GPT, GPTConfig
from gptcore.trainer import evaluate, prepare_data

MODEL = dict(block_size=64, n_layer=4, n_head=4, n_embd=128, bias=False)
LR, MIN_LR, WARMUP, DECAY, MAX_ITERS = 1e-3, 1e-4, 100, 2000, 2000
BATCH, EVAL_INTERVAL, EVAL_ITERS = 12, 250, 20


def get_lr(it: int) -> float:
    """nanoGPT's schedule: linear warmup, cosine decay, then min_lr."""
    if it < WARMUP:
        return LR * (it + 1) / (WARMUP + 1)
    if it > DECAY:
        return MIN_LR
    coeff = 0.5 * (1.0 + math.cos(math.pi * (it - WARMUP) / (DECAY - WARMUP)))
    return MIN_LR + coeff * (LR - MIN_LR)


@torch.no_grad()
def estimate_loss(model, splits: dict, generator) -> dict:
    model.eval()
    out = {}
    for name, ids in splits.items():
        losses = [model(*random_batch(ids, MODEL["block_size"], BATCH, generator))[1].item()
                  for _ in range(EVAL_ITERS)]
        out[name] = sum(losses) / len(losses)
    model.train()
    return out


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    start = time.perf_counter()
    text = setup(args)
    module = nanogpt.load()
    if module is None:
        raise SystemExit(nanogpt.MISSING)
    tok, train_ids, val_ids = prepare_data(text, "char", 0, 0.1)
    torch.manual_seed(1337)
    model = nanogpt.build(module, tok.vocab_size, **MODEL)
    with contextlib.redirect_stdout(io.StringIO()):
        optimizer = model.configure_optimizers(0.1, LR, (0.9, 0.99), "cpu")
    generator = torch.Generator().manual_seed(1337)
    splits = {"train": train_ids, "val": val_ids}
    x, y = random_batch(train_ids, MODEL["block_size"], BATCH, generator)
    for it in range(MAX_ITERS + 1):
        for group in optimizer.param_groups:
            group["lr"] = get_lr(it)
        if it % EVAL_INTERVAL == 0:
            losses = estimate_loss(model, splits, generator)
            wall = round(time.perf_counter() - start, 2)
            print(json.dumps({"iter": it, **losses, "wall_s": wall}), flush=True)
        _, loss = model(x, y)
        # as train.py does: fetch the next batch before the backward pass
        x, y = random_batch(train_ids, MODEL["block_size"], BATCH, generator)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()  # train.py logs every iteration (--log_interval=1)
    print(json.dumps({"trained": MAX_ITERS + 1, "wall_s": round(time.perf_counter() - start, 2)}),
          flush=True)
    same = GPT(GPTConfig(vocab_size=tok.vocab_size, activation="gelu_exact", **MODEL))
    same.load_state_dict(model.state_dict())
    val = evaluate(same, val_ids, MODEL["block_size"])
    print(json.dumps({"exact_val_loss": round(val, 4)}), flush=True)


if __name__ == "__main__":
    main()
