"""Checkpoints: one dict saved with torch.save, loaded with `weights_only=True`.

    {"format": "gptcore-checkpoint-1", "model": state_dict, "optimizer": state_dict,
     "step": int, "model_config": GPTConfig.to_dict(), "train_config": TrainConfig fields,
     "tokenizer": Tokenizer.to_dict(), "history": [eval records], "generator": RNG state,
     "train_seconds": float, "tokens_seen": int}

Saving is atomic (a temporary file, then a rename), so a crash never leaves half a file.
"""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import torch

from gptcore.model import GPT, GPTConfig
from gptcore.tokenizers import tokenizer_from_dict

FORMAT = "gptcore-checkpoint-1"


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message says why in plain words."""


def save_checkpoint(ckpt: dict, path: str | Path) -> Path:
    """Write atomically: a temporary file beside `path`, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(source, max_params: int | None = None) -> dict:
    """Load a checkpoint (a path or a file object) safely: `weights_only=True`, shapes checked.

    Returns the checkpoint dict with "model_obj" (a GPT in eval mode) and "tokenizer_obj".
    """
    try:
        ckpt = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same plain message
        raise CheckpointError(f"This is not a readable gptcore checkpoint ({e.__class__.__name__}).") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError("This file is not a gptcore checkpoint (saved by the training lab "
                              "or `python -m gptcore.train --out`).")
    try:
        config = GPTConfig(**{f.name: ckpt["model_config"][f.name] for f in fields(GPTConfig)
                              if f.name in ckpt["model_config"]})
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"The checkpoint's model configuration is invalid: {e}") from e
    from gptcore.budget import num_params

    if max_params is not None and num_params(config) > max_params:
        raise CheckpointError(f"The checkpoint's model has {num_params(config):,} parameters; "
                              f"the limit here is {max_params:,}.")
    model = GPT(config)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"The weights do not fit the model described in the checkpoint: "
                              f"{str(e).splitlines()[0]}") from e
    tokenizer = tokenizer_from_dict(ckpt["tokenizer"]) if ckpt.get("tokenizer") else None
    if tokenizer is not None and tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError("The checkpoint's tokenizer has more tokens than its model.")
    ckpt["model_obj"], ckpt["tokenizer_obj"] = model.eval(), tokenizer
    return ckpt
