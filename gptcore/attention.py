"""Attention: every token looks at the others and takes a weighted average of their values.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k + mask) V

`scaled_dot_product_attention` is the explicit version the lesson teaches; it returns the
weights too. `MultiHeadAttention` is GPT-2's layer (one fused `c_attn` projection for q, k, v,
then `c_proj`), with PyTorch's fused `F.scaled_dot_product_attention` behind `fast=True`;
tests check both against PyTorch (`F.scaled_dot_product_attention`, `nn.MultiheadAttention`).

Masks are boolean and mean "may attend" (True) — the same convention as PyTorch's SDPA.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptcore.config import GPTConfig


def causal_mask(T: int, device=None) -> torch.Tensor:
    """(T, T) lower triangle: position t may attend to positions 0..t, never the future.

    causal_mask(3) = [[1, 0, 0],
                      [1, 1, 0],
                      [1, 1, 1]]
    """
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) of 1 (real token) / 0 (padding) -> (B, 1, 1, T): no query attends to padding."""
    return attention_mask.bool()[:, None, None, :]


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, n_head, T, C // n_head): each head gets its own slice of the channels.

    The reshape cuts C into n_head groups; the transpose puts heads before time so that
    attention runs on every head at once. Without the transpose, a "head" would mix tokens.
    """
    B, T, C = x.size()
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)  # (B, nh, T, hs)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, nh, T, hs) -> (B, T, nh * hs): the heads side by side again."""
    B, nh, T, hs = x.size()
    return x.transpose(1, 2).contiguous().view(B, T, nh * hs)


def scaled_dot_product_attention(q, k, v, mask=None, scale=True):
    """The explicit computation. q: (..., Tq, d_k), k: (..., Tk, d_k), v: (..., Tk, d_v).

    Returns (out, weights): out (..., Tq, d_v) and weights (..., Tq, Tk), each row a
    probability distribution with exact zeros where `mask` is False.
    """
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1)  # (..., Tq, Tk)
    if scale:
        scores = scores / math.sqrt(d_k)  # keeps the scores' variance near 1 whatever d_k
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.nan_to_num(0.0)  # a row with nothing to attend to gives zeros
    out = weights @ v  # (..., Tq, d_v)
    return out, weights


class MultiHeadAttention(nn.Module):
    """GPT-2's multi-head self-attention: C channels split into n_head heads of C/n_head.

    Shapes: x (B, T, C) -> q, k, v (B, nh, T, hs) -> weights (B, nh, T, T) -> y (B, T, C).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        C = config.n_embd
        self.n_head, self.n_embd = config.n_head, C
        self.causal, self.fast = config.causal, config.fast_attention
        self.c_attn = nn.Linear(C, 3 * C, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(C, C, bias=config.bias)
        self.dropout = config.dropout
        self.attn_dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.resid_dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, x, attention_mask=None, past_kv=None, return_weights=False):
        """x (B, T, C); attention_mask (B, T) of 1/0 for padding; past_kv cached (k, v).

        Returns (y, weights or None, (k, v)) so generation can reuse keys and values.
        """
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # each (B, T, C)
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # (B, nh, T, hs)
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)  # (B, nh, T_past + T, hs)
            v = torch.cat([past_kv[1], v], dim=2)
        present = (k, v)
        T_past = k.size(2) - T

        needs_causal = self.causal and T > 1
        if self.fast and not return_weights and attention_mask is None and \
                (T_past == 0 or not needs_causal):
            # the fused kernel applies the causal mask itself: no (T, T) mask to build
            y = F.scaled_dot_product_attention(
                q, k, v, dropout_p=self.dropout if self.training else 0.0,
                is_causal=needs_causal)  # (B, nh, T, hs)
            return self.resid_dropout(self.c_proj(merge_heads(y))), None, present  # (B, T, C)

        mask = None
        if needs_causal:
            # query i sits at position T_past + i and may see keys 0 .. T_past + i
            mask = torch.ones(T, T_past + T, dtype=torch.bool, device=x.device).tril(T_past)
        if attention_mask is not None:
            pad = padding_mask(attention_mask)  # (B, 1, 1, T_past + T)
            mask = pad if mask is None else (mask & pad)

        if self.fast and not return_weights:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask,
                dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hs)
            weights = None
        else:
            y, weights = scaled_dot_product_attention(q, k, v, mask=mask)  # (B, nh, T, hs)
            y = self.attn_dropout(weights) @ v if self.training and self.dropout > 0 else y
        return self.resid_dropout(self.c_proj(merge_heads(y))), weights, present  # (B, T, C)
