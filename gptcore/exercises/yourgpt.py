"""Your GPT: the book's GPT with the learner's Block in every layer, trained beside the book's.

Both models start from the same weights (the learner's Block uses GPT-2's parameter names, so
the book's initial weights load into it) and see the same batches in the same order, so a
correct Block follows the reference's loss curve to float rounding; a Block with a mistake
parts from it, usually at the very first step.

    result = train_side_by_side(Block, text, GPTConfig(n_layer=2, ...), TrainConfig(...))
    result["parted_at"]   # None when the two curves agree within `tolerance` at every step
"""
from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Callable

import torch
import torch.nn as nn

from gptcore.config import GPTConfig
from gptcore.generate import generate
from gptcore.model import GPT
from gptcore.trainer import TrainConfig, Trainer, evaluate, prepare_data

TOLERANCE = 1e-3  # |your loss - the reference's loss| a correct Block stays within (nats)
_BLOCK_KEY = re.compile(r"^(transformer\.h\.\d+\.)")


class YourBlock(nn.Module):
    """A learner's Block (forward(x) -> x) inside the book's GPT, which expects a block to
    return (x, attention weights, cache): yours returns neither, so generation runs
    without a KV cache."""

    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, x, past_kv=None, return_weights=False):
        return self.block(x), None, None


def side_by_side_config(config: GPTConfig) -> GPTConfig:
    """The model both GPTs share: GPT-2's block (pre-LN, causal, residual, tanh GELU)."""
    return replace(config, dropout=0.0, pre_ln=True, causal=True, residual=True, activation="gelu")


def gpt_with_your_blocks(config: GPTConfig, block_class, reference: GPT) -> GPT:
    """A GPT whose blocks are `block_class(config)`, starting from `reference`'s weights."""
    model = GPT(config)
    model.transformer.h = nn.ModuleList([YourBlock(block_class(config)) for _ in range(config.n_layer)])
    theirs = model.state_dict()
    for name, tensor in reference.state_dict().items():
        mine = _BLOCK_KEY.sub(r"\1block.", name)
        if mine not in theirs:
            raise ValueError(f"Your Block has no parameter `{name.split('.', 3)[3]}`: use GPT-2's "
                             "names (ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj).")
        if theirs[mine].shape != tensor.shape:
            raise ValueError(f"Your Block's `{name.split('.', 3)[3]}` has shape "
                             f"{tuple(theirs[mine].shape)}; GPT-2's is {tuple(tensor.shape)}.")
        with torch.no_grad():
            theirs[mine].copy_(tensor)
    return model


def as_book_weights(model: GPT) -> dict[str, torch.Tensor]:
    """The trained weights under the book's names: they load into `GPT(config)` as they are."""
    names = {}
    for name, tensor in model.state_dict().items():
        plain = name.replace(".block.", ".", 1) if _BLOCK_KEY.match(name) else name
        names[plain] = tensor.detach().clone()
    return names


def train_side_by_side(block_class, text: str, config: GPTConfig, cfg: TrainConfig,
                       on_step: Callable[[dict], None] = lambda event: None,
                       should_stop: Callable[[], bool] = lambda: False,
                       tolerance: float = TOLERANCE, sample_tokens: int = 120) -> dict:
    """Train the reference GPT and yours on the same batches; report where the curves part.

    Returns {"steps": [(iter, reference loss, your loss)], "parted_at": step or None,
    "max_difference", "val_loss" and "train_loss": {"reference", "yours"} (exact, as the
    trainer evaluates), "sample", "weights" (yours, under
    the book's names), "config", "tokenizer"}.
    """
    tokenizer, train_ids, val_ids = prepare_data(text, "char", 0, cfg.val_fraction)
    config = side_by_side_config(replace(config, vocab_size=tokenizer.vocab_size))
    torch.manual_seed(cfg.seed)
    reference = GPT(config)
    yours = gpt_with_your_blocks(config, block_class, reference)
    trainers = {"reference": Trainer(reference, train_ids, val_ids, cfg, tokenizer),
                "yours": Trainer(yours, train_ids, val_ids, cfg, tokenizer)}
    steps, parted_at, worst = [], None, 0.0
    for _ in range(cfg.max_iters):
        if should_stop():
            break
        ref_loss = trainers["reference"].train_step()
        your_loss = trainers["yours"].train_step()
        step = trainers["yours"].step
        difference = abs(your_loss - ref_loss) if math.isfinite(your_loss) else math.inf
        worst = max(worst, difference)
        if parted_at is None and difference > tolerance:
            parted_at = step
        steps.append((step, ref_loss, your_loss))
        on_step({"iter": step, "reference": ref_loss, "yours": your_loss})
        if not math.isfinite(your_loss):
            break
    val = {name: evaluate(t.model, val_ids, config.block_size) for name, t in trainers.items()}
    train = {name: evaluate(t.model, t.train_eval_ids, config.block_size)
             for name, t in trainers.items()}
    start = val_ids[:1].view(1, 1)
    out = generate(yours, start, sample_tokens, temperature=0.8, use_cache=False,
                   generator=torch.Generator().manual_seed(cfg.seed))
    return {"steps": steps, "parted_at": parted_at, "max_difference": worst, "val_loss": val,
            "train_loss": train,
            "sample": tokenizer.decode(out[0].tolist()), "weights": as_book_weights(yours),
            "config": config, "tokenizer": tokenizer}
