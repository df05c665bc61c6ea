"""Budgets before you train: parameters by component, memory, FLOPs per token.

All pure arithmetic on a GPTConfig, checked by tests against `sum(p.numel())` of a real model.
"""
from __future__ import annotations

from gptcore.model import GPTConfig


def param_breakdown(c: GPTConfig) -> dict[str, int]:
    """Parameters per component. Biases and LayerNorm shifts are counted only if c.bias."""
    C, L, V, b = c.n_embd, c.n_layer, c.vocab_size, int(c.bias)
    ln = C * (1 + b)  # scale (+ shift)
    return {
        "token embedding (wte)": V * C,
        "position embedding (wpe)": c.block_size * C,
        "attention": L * ((C * 3 * C + b * 3 * C) + (C * C + b * C)),
        "MLP": L * ((C * 4 * C + b * 4 * C) + (4 * C * C + b * C)),
        "LayerNorm": (2 * L + 1) * ln,
        "LM head": 0 if c.tie_weights else V * C,
    }


def num_params(c: GPTConfig) -> int:
    return sum(param_breakdown(c).values())


def flops_per_token(c: GPTConfig, seq_len: int | None = None) -> dict[str, float]:
    """Forward ≈ 2·N (one multiply-add per weight) + attention's 2·L·T·C (QKᵀ and ·V);
    training ≈ 3 × forward (backward costs about twice the forward), as in Kaplan et al."""
    T = seq_len or c.block_size
    n = num_params(c) - c.block_size * c.n_embd  # position lookups cost no FLOPs
    forward = 2 * n + 2 * c.n_layer * T * c.n_embd
    return {"forward": float(forward), "train": 3.0 * forward}


def memory_bytes(c: GPTConfig, bytes_per_value: int = 4) -> dict[str, int]:
    """Training memory for the parameters themselves (activations come on top):
    weights + gradients + AdamW's two moment estimates."""
    n = num_params(c) * bytes_per_value
    return {"weights": n, "gradients": n, "Adam state": 2 * n, "total": 4 * n}
