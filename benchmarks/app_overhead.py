"""In-app overhead: the trainer as the training lab runs it (a TrainingRun in a background
thread, every event recorded under a lock, the page polling snapshot() once a second) against
the bare trainer with no callbacks, alternated in one process.

    python -m benchmarks.app_overhead
"""
import time

import torch

from benchmarks.common import parser, report, setup
from gptcore.lab import Caps, Lab, TrainingRun
from gptcore.model import GPT, GPTConfig
from gptcore.train import TrainConfig, Trainer, prepare_data

MODEL = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, bias=False)


def train_config(steps):
    return TrainConfig(batch_size=32, max_iters=steps, lr=4e-3, eval_interval=10**9,
                       sample_tokens=0, eval_train_tokens=0)


def headless(text, steps):
    tok, train_ids, val_ids = prepare_data(text, "char", 0, 0.1)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, **MODEL))
    trainer = Trainer(model, train_ids, val_ids[:2000], train_config(steps))
    trainer.run()
    return trainer.tokens_seen / trainer.train_seconds


def in_app(text, steps, lab):
    run = TrainingRun(lab, text, "char", 0, GPTConfig(vocab_size=66, **MODEL), train_config(steps))
    run.start()
    while run.active:  # the page's fragment: one snapshot a second
        run.snapshot()
        time.sleep(1.0)
    return run.snapshot()["tokens_per_s"]


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args(argv)
    text = setup(args)
    text = text[:300_000]
    lab = Lab(Caps(max_concurrent=1))  # one run: it gets every core, like the headless one
    rows = []
    for r in range(args.rounds):  # alternate which goes first: this machine's speed drifts
        if r % 2:
            app = in_app(text, args.steps, lab)
            bare = headless(text, args.steps)
        else:
            bare = headless(text, args.steps)
            app = in_app(text, args.steps, lab)
        rows.append({"round": r, "headless tokens/s": bare, "in-app tokens/s": app})
    h = sorted(x["headless tokens/s"] for x in rows)[len(rows) // 2]
    a = sorted(x["in-app tokens/s"] for x in rows)[len(rows) // 2]
    return report("app_overhead", rows, {"in_app_share_of_headless": a / h,
                                         "torch_threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
