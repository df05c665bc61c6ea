"""A learner's minute: the validation loss lesson 5's Train button reaches with the page's
defaults, and with the defaults it had before (nanoGPT's baby GPT for 300 steps), each given
at most 60 s of training.

    python -m benchmarks.learner_minute --corpus ../shared/data/tinyshakespeare.txt

Both are gptcore's Trainer as the lab runs it (character level, the page's evaluations and
samples), in turn, with a cap of 60 s of training steps (the lab's own cap is 300 s).
"""
from __future__ import annotations

import time

import torch

from benchmarks.common import (BEFORE_MODEL, BEFORE_TRAIN, LESSON5_MODEL, LESSON5_TRAIN,
                               load_average, parser, report, setup)
from gptcore.model import GPT, GPTConfig
from gptcore.trainer import TrainConfig, Trainer, prepare_data

MINUTE = 60.0


def one_run(name: str, text: str, model_kw: dict, train_kw: dict) -> dict:
    tok, train_ids, val_ids = prepare_data(text, "char", 0, 0.1)
    torch.manual_seed(train_kw["seed"])
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, **model_kw))
    cfg = TrainConfig(**{**train_kw, "max_seconds": MINUTE})
    start = time.perf_counter()
    result = Trainer(model, train_ids, val_ids, cfg, tok).run()
    last = result.history[-1]
    return {"settings": name, "steps": result.steps, "of": cfg.max_iters,
            "val loss": last["val_loss"], "train s": last["elapsed_s"],
            "wall s": round(time.perf_counter() - start, 1), "tokens/s": last["tokens_per_s"]}


def main(argv=None):
    args = parser(__doc__).parse_args(argv)
    text = setup(args)
    load = load_average()
    rows = [one_run("lesson 5 defaults (fast-cpu model, 1100 steps)", text, LESSON5_MODEL,
                    LESSON5_TRAIN),
            one_run("before (nanoGPT baby GPT, 300 steps)", text, BEFORE_MODEL, BEFORE_TRAIN)]
    return report("learner_minute", rows, {
        "defaults_val_loss": rows[0]["val loss"], "before_val_loss": rows[1]["val loss"],
        "defaults_train_s": rows[0]["train s"], "load_average_before": load})


if __name__ == "__main__":
    main()
