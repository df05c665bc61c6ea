"""Time to validation loss 1.89 on Tiny Shakespeare, character level, for the `fast-cpu`
preset and for `nanogpt-cpu` (nanoGPT's README CPU recipe), in one run.

Validation loss is always the whole validation split (the last 10% of the text). For
nanoGPT's recipe the time is its 2000 training iterations alone (its own evaluation is a
few batches, nearly free); for fast-cpu it is the wall time to the first evaluation at or
below the target, its evaluations included. The comparison is thus tilted towards nanoGPT.

    python -m benchmarks.time_to_loss --corpus ../shared/data/tinyshakespeare.txt
"""
import time
from dataclasses import replace

import torch

from benchmarks.common import parser, report, setup
from gptcore.model import GPT, GPTConfig
from gptcore.presets import RECIPES
from gptcore.trainer import TrainConfig, Trainer, prepare_data


def run_preset(name, text, target, stop_at_target):
    model_kw, train_kw = RECIPES[name].model_kwargs(), RECIPES[name].train
    cfg = TrainConfig(**{**train_kw, "sample_tokens": 0})
    if stop_at_target:
        cfg = replace(cfg, target_val_loss=target)
    tok, train_ids, val_ids = prepare_data(text, "char", 0, cfg.val_fraction)
    torch.manual_seed(cfg.seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, **model_kw))
    start = time.perf_counter()
    result = Trainer(model, train_ids, val_ids, cfg, tok).run()
    wall = time.perf_counter() - start
    hist = result.history
    hit = next((h for h in hist if h["val_loss"] <= target), None)
    return {"preset": name, "iters": result.steps, "final val loss": hist[-1]["val_loss"],
            "first iter ≤ target": hit["iter"] if hit else None,
            "train s to target": hit["elapsed_s"] if hit else None,
            "wall s to target": hit["wall_s"] if hit else None,
            "train s (all iters)": hist[-1]["elapsed_s"], "wall s (all)": round(wall, 1),
            "tokens/s": hist[-1]["tokens_per_s"]}


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--target", type=float, default=1.89)
    args = p.parse_args(argv)
    text = setup(args)
    fast = run_preset("fast-cpu", text, args.target, stop_at_target=True)
    nano = run_preset("nanogpt-cpu", text, args.target, stop_at_target=False)
    ratio = fast["wall s to target"] / nano["train s (all iters)"] if fast["wall s to target"] else None
    return report("time_to_loss", [fast, nano], {
        "target_val_loss": args.target,
        "fast_cpu_wall_to_target_s": fast["wall s to target"],
        "nanogpt_2000_iters_train_s": nano["train s (all iters)"],
        "fast_share_of_nanogpt_time": ratio,
    })


if __name__ == "__main__":
    main()
