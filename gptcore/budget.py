"""Budgets before you train: parameters by component, FLOPs per token, memory.

All pure arithmetic on a GPTConfig. Tests check each against a real model: parameters against
`sum(p.numel())`, FLOPs against PyTorch's FlopCounterMode on a forward pass, memory against
the peak the profiler measures during a real training step.
"""
from __future__ import annotations

from gptcore.config import GPTConfig


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


def non_embedding_params(c: GPTConfig) -> int:
    """Kaplan et al.'s N: the blocks and the final LayerNorm. Not the two embedding tables,
    not an untied head (the embedding's twin: its cost is counted as the head's matmul)."""
    parts = param_breakdown(c)
    return parts["attention"] + parts["MLP"] + parts["LayerNorm"]


def weight_tying_savings(c: GPTConfig) -> dict[str, float]:
    """What tying the head to the token embedding saves: the head's own V·C matrix.

    Tutorial GPT (V = 50,257, C = 256, untied): 12,865,792 parameters, 42% of the model.
    """
    saved = c.vocab_size * c.n_embd
    untied = num_params(GPTConfig(**{**c.to_dict(), "tie_weights": False}))
    return {"parameters": saved, "share_of_untied": saved / untied}


def flops_per_token(c: GPTConfig, seq_len: int | None = None) -> dict[str, float]:
    """FLOPs to process one token, counted as Kaplan et al. (2020) do (a multiply-add = 2):

        forward = 2·(N + V·C) + 2·L·T·C,    training ≈ 3 × forward

    2·N: every weight of the blocks multiplies once. 2·V·C: the head's matmul, tied or not
    (looking up a row of wte or wpe is a copy, no arithmetic). 2·L·T·C: the scores q·kᵀ and
    the weighted sum of v cost 2·C FLOPs per key each, and under the causal mask a token sees
    T/2 keys on average. Backward costs about twice the forward.
    Tutorial GPT (N = 4,739,072, V·C = 12,865,792, L·T·C = 196,608): 35.6 M forward.
    Returns the three terms ("weights", "head", "attention"), "forward" and "train".
    """
    T = seq_len or c.block_size
    terms = {"weights": 2 * non_embedding_params(c), "head": 2 * c.vocab_size * c.n_embd,
             "attention": 2 * c.n_layer * T * c.n_embd}
    forward = float(sum(terms.values()))
    return {**terms, "forward": forward, "train": 3.0 * forward}


def memory_bytes(c: GPTConfig, bytes_per_value: int = 4) -> dict[str, int]:
    """Memory for the parameters and what training keeps per parameter:
    weights + gradients + AdamW's two moment estimates = 16 bytes per parameter in fp32."""
    n = num_params(c) * bytes_per_value
    return {"weights": n, "gradients": n, "Adam state": 2 * n, "total": 4 * n}


def activation_bytes(c: GPTConfig, batch: int, seq_len: int | None = None,
                     bytes_per_value: int = 4) -> dict[str, int]:
    """What a training step keeps between forward and backward, on a CPU, fp32, for
    `batch` sequences of `seq_len` tokens (B, T):

        each block   17·B·T·C   its inputs saved for backward: ln_1, c_attn, q, k, v,
                                the attention output, c_proj, ln_2, c_fc, GELU (4C), c_proj (4C).
                                ReLU: 13·B·T·C (its backward needs only its output, which
                                c_proj keeps anyway).
        with dropout 3·B·nh·T² + B·T·C per block, B·T·C for the embeddings: PyTorch's fused
                                attention has no dropout on a CPU, so it falls back to a path
                                that stores the (B, nh, T, T) weights (softmax, mask, dropped
                                weights), plus the dropout masks.
        the head     2·B·T·C + 4·B·T·V   ln_f's and lm_head's inputs; the logits, their
                                log-softmax and, as backward starts, both their gradients.

    A few values per token (LayerNorm statistics, the token ids) are left out.
    """
    B, T = batch, seq_len or c.block_size
    C, L, V, nh = c.n_embd, c.n_layer, c.vocab_size, c.n_head
    per_block = (13 if c.activation == "relu" else 17) * C
    parts = {"blocks": L * per_block * B * T, "attention weights, masks": 0,
             "ln_f, head, logits": (2 * C + 4 * V) * B * T}
    if c.dropout > 0:
        parts["attention weights, masks"] = (L * (3 * nh * T + C) + C) * B * T
    return {k: v * bytes_per_value for k, v in parts.items()}


def training_memory(c: GPTConfig, batch: int, seq_len: int | None = None,
                    bytes_per_value: int = 4) -> dict[str, int]:
    """The peak memory of a training step with AdamW (fp32, on a CPU):

        peak = weights + Adam state + max(activations, gradients + update scratch)

    Weights and AdamW's two moments live all the time. Activations peak as backward starts
    and are freed while the gradients fill in; during the update the gradients exist along
    with a scratch copy of the parameters (foreach AdamW's √v + ε). Whichever is larger sets
    the peak: activations for most batches, the update for tiny ones.
    """
    n = num_params(c) * bytes_per_value
    activations = sum(activation_bytes(c, batch, seq_len, bytes_per_value).values())
    return {"weights": n, "Adam state": 2 * n, "gradients": n, "update scratch": n,
            "activations": activations, "peak": 3 * n + max(activations, 2 * n)}
