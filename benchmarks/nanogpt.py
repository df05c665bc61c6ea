"""The real nanoGPT model (karpathy/nanoGPT `model.py`, MIT), imported from where the project
keeps a reference copy, never copied into this repository: ../shared/reference/nanogpt.

`load()` returns its module, or None when the folder is absent; benchmarks then say so and
skip the comparison.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "nanogpt"
MISSING = f"nanoGPT's model.py is not at {REFERENCE}: the nanoGPT comparison is skipped."


def load():
    path = REFERENCE / "model.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(module, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int,
          bias: bool, dropout: float = 0.0):
    """nanoGPT's GPT for this shape (its constructor prints the parameter count: muted)."""
    config = module.GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer,
                              n_head=n_head, n_embd=n_embd, bias=bias, dropout=dropout)
    with contextlib.redirect_stdout(io.StringIO()):
        return module.GPT(config)
