"""Train a GPT from the command line, on one process or many (torchrun).

    python -m gptcore.train --preset nanogpt-cpu --corpus input.txt
    torchrun --nproc_per_node 2 -m gptcore.train --preset fast-cpu --corpus input.txt

Prints one JSON line per evaluation (iter, train_loss, val_loss, elapsed_s, tokens_per_s,
wall_s); `--out DIR` saves DIR/ckpt.pt at each evaluation and `--resume` continues from it;
`--export FILE` writes the finished model without optimizer state, small enough to share.
The loop itself is gptcore.trainer; the checkpoint format is gptcore.checkpoint.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields
from pathlib import Path

import torch

from gptcore.checkpoint import save_checkpoint
from gptcore.config import ACTIVATIONS
from gptcore.model import GPT, GPTConfig
from gptcore.presets import RECIPES
from gptcore.trainer import Dist, Ending, TrainConfig, Trainer, perplexity, pick_device, prepare_data, train_step  # noqa: F401 - the book's training API, by its lesson's name


def _parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m gptcore.train",
                                description="Train a small GPT; prints one JSON line per evaluation.")
    p.add_argument("--corpus", required=True, help="a UTF-8 text file")
    p.add_argument("--preset", choices=sorted(RECIPES))
    p.add_argument("--tokenizer", default="char", choices=["char", "word", "bpe", "gpt2"])
    p.add_argument("--vocab-size", type=int, default=512, help="for bpe and word tokenizers")
    for name, kind in [("n-layer", int), ("n-head", int), ("n-embd", int), ("block-size", int),
                       ("dropout", float), ("batch-size", int), ("lr", float), ("min-lr", float),
                       ("max-iters", int), ("warmup-iters", int), ("weight-decay", float),
                       ("grad-clip", float), ("eval-interval", int), ("seed", int),
                       ("target-val-loss", float), ("max-seconds", float), ("beta2", float),
                       ("sample-tokens", int), ("eval-screen-tokens", int),
                       ("eval-train-tokens", int)]:
        p.add_argument(f"--{name}", type=kind, default=None)
    p.add_argument("--activation", choices=ACTIVATIONS, default=None,
                   help="gelu: GPT-2's tanh approximation (the default); gelu_exact; relu")
    p.add_argument("--bias", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process")
    p.add_argument("--out", help="folder for ckpt.pt (saved at each evaluation)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    p.add_argument("--export", help="at the end, a small checkpoint to share: the model, its "
                   "tokenizer and history, no optimizer state (a third of ckpt.pt's size)")
    return p.parse_args(argv)


def configs_from_args(args) -> tuple[dict, TrainConfig]:
    """Preset first, then any flag given explicitly."""
    preset = RECIPES.get(args.preset)
    model_kw, train_kw = (preset.model_kwargs(), dict(preset.train)) if preset else ({}, {})
    train_kw.setdefault("sample_tokens", 0)
    model_fields = {f.name for f in fields(GPTConfig)}
    train_fields = {f.name for f in fields(TrainConfig)}
    for key, value in vars(args).items():
        if value is None:
            continue
        if key in model_fields:
            model_kw[key] = value
        elif key in train_fields:
            train_kw[key] = value
    if args.max_iters is not None:  # the cosine schedule ends where the run ends
        train_kw["lr_decay_iters"] = args.max_iters
    return model_kw, TrainConfig(**train_kw)


def _setup_dist() -> Dist:
    """Rank 0 of 1 alone; under torchrun, this process's place among the others."""
    import torch.distributed as torch_dist

    if not torch_dist.is_torchelastic_launched():
        return Dist()
    torch_dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return Dist(rank=torch_dist.get_rank(), world=torch_dist.get_world_size(),
                local_rank=torch_dist.get_node_local_rank(fallback_rank=0))


def main(argv=None) -> int:
    args = _parse_args(argv)
    dist = _setup_dist()
    # the processes share the cores (one machine assumed; --threads says otherwise)
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // dist.world))
    model_kw, cfg = configs_from_args(args)
    device = pick_device(cfg.device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)

    text = Path(args.corpus).read_text(encoding="utf-8")
    tokenizer, train_ids, val_ids = prepare_data(text, args.tokenizer, args.vocab_size,
                                                 cfg.val_fraction)
    model_kw["vocab_size"] = tokenizer.vocab_size
    torch.manual_seed(cfg.seed)  # every process builds the same initial weights
    model = GPT(GPTConfig(**model_kw)).to(device)
    ddp_model = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        ddp_model = torch.compile(ddp_model)

    out = Path(args.out) if args.out else None

    def on_event(event):
        if event["type"] == "eval" and dist.is_main:
            line = {k: event[k] for k in ("iter", "train_loss", "val_loss", "elapsed_s",
                                          "tokens_per_s", "wall_s")}
            print(json.dumps(line), flush=True)
            if out:
                trainer.save(out / "ckpt.pt")
        elif event["type"] == "done" and dist.is_main:
            print(f"done: {event['outcome']}", file=sys.stderr, flush=True)

    trainer = Trainer(model, train_ids, val_ids, cfg, tokenizer, on_event, dist, ddp_model)
    if args.resume and out and (out / "ckpt.pt").exists():
        trainer.load_state(torch.load(out / "ckpt.pt", map_location=device, weights_only=True))
    result = trainer.run()
    if args.export and dist.is_main:
        save_checkpoint({**trainer.checkpoint(), "optimizer": None, "generator": None},
                        args.export)
    if dist.world > 1:
        import torch.distributed as torch_dist

        torch_dist.barrier()  # without it, gloo sometimes aborts at exit
        torch_dist.destroy_process_group()
    return 1 if result.outcome.ending is Ending.DIVERGED else 0


if __name__ == "__main__":
    sys.exit(main())
