"""Predict, then see: one or more questions per lesson, each answered by a live computation.

The learner commits a prediction; `answer()` then runs gptcore (never a stored number) and
`explanation()` shows the figures it computed. A question has either `options` (the answer is
the index of the right one) or none (the answer is a number, judged within `tolerance`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch


@dataclass(frozen=True)
class Question:
    id: str
    lesson: int
    prompt: str
    compute: Callable[[], tuple[float | int, str]] = field(repr=False, compare=False)
    options: tuple[str, ...] = ()
    tolerance: float = 0.0  # relative, for numeric answers

    @property
    def numeric(self) -> bool:
        return not self.options

    def answer(self) -> int | float:
        """The index of the right option, or the number, computed now."""
        return self.compute()[0]

    def explanation(self) -> str:
        """Short markdown with the computed figures."""
        return self.compute()[1]

    def is_correct(self, guess) -> bool:
        truth = self.answer()
        if not self.numeric:
            return guess == truth
        try:
            guess = float(guess)
        except (TypeError, ValueError):
            return False
        return math.isclose(guess, truth, rel_tol=self.tolerance, abs_tol=1e-9)


# -------------------------------------------------------------------------------- lesson 1
def _top_k_one():
    from gptcore.generate import sample_next

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(200, 50, generator=g) * 2  # 200 different next-token distributions
    picks = sample_next(logits, temperature=1.0, top_k=1, generator=g)[:, 0]
    greedy = logits.argmax(dim=-1)
    plain = sample_next(logits, temperature=1.0, generator=g)[:, 0]
    same = int((picks == greedy).sum())
    answer = 0 if same == len(logits) else 1
    text = (f"Over {len(logits)} random distributions of 50 tokens, top-k=1 sampling picked the "
            f"most likely token **{same} times out of {len(logits)}**, whatever the random draw; "
            f"plain sampling did so {int((plain == greedy).sum())} times. Keeping one token "
            "leaves softmax no choice: top-k=1 **is** greedy decoding.")
    return answer, text


def _nucleus_size():
    from gptcore.generate import top_p_filter

    probs = torch.tensor([0.45, 0.25, 0.15, 0.1, 0.05])
    kept = torch.isfinite(top_p_filter(probs.log(), 0.75))
    n = int(kept.sum())
    cumulative = probs.cumsum(0).tolist()
    text = (f"Cumulative probabilities from the top: "
            f"{', '.join(f'{c:.2f}' for c in cumulative)}. The total reaches 0.75 with token "
            f"{n} (it goes from {cumulative[n - 2]:.2f} to {cumulative[n - 1]:.2f}), and the token "
            f"that crosses p is kept: **{n} tokens** survive.")
    return n, text


# -------------------------------------------------------------------------------- lesson 2
def _window_count():
    from gptcore.data import SlidingWindowDataset

    N, B, S = 1000, 64, 32
    n = len(SlidingWindowDataset(torch.zeros(N, dtype=torch.long), B, S))
    text = (f"gptcore.data.SlidingWindowDataset over {N} tokens with block size {B} and stride "
            f"{S} has **{n} windows**: each needs {B + 1} tokens (x and its target one further), "
            f"so the last one starts at most at {N - B - 1}, and ({N} − {B} − 1) // {S} + 1 = {n}.")
    return n, text


def _merge_length():
    from gptcore.tokenizers import merge_pair

    ids = [97, 97, 97, 97, 97]
    merged = merge_pair(ids, (97, 97), 256)
    text = (f"merge_pair({ids}, (97, 97), 256) gives **{merged}**: {len(merged)} tokens. Merges "
            "go left to right without overlapping, so five a's make two pairs and one a is left.")
    return len(merged), text


# -------------------------------------------------------------------------------- lesson 3
def _saturation():
    from gptcore.attention import scaled_dot_product_attention

    T, g = 16, torch.Generator().manual_seed(0)
    rows = []
    for d_k in (4, 256):
        q = torch.randn(1, T, d_k, generator=g)
        k = torch.randn(1, T, d_k, generator=g)
        _, raw = scaled_dot_product_attention(q, k, k, scale=False)
        _, scaled = scaled_dot_product_attention(q, k, k, scale=True)
        rows.append((d_k, raw.max(-1).values.mean().item(), scaled.max(-1).values.mean().item()))
    (_, small, small_scaled), (_, big, big_scaled) = rows
    answer = 0 if big > small + 0.1 else (2 if big < small - 0.1 else 1)
    text = (f"Random q and k over {T} keys (mean of each query's largest weight): without "
            f"scaling **{small:.2f} at d_k = 4 and {big:.2f} at d_k = 256**; with the √d_k scale "
            f"{small_scaled:.2f} and {big_scaled:.2f}. A dot product of d_k random terms has "
            "variance d_k, so the scores spread out and softmax puts almost all the weight on "
            "one key; dividing by √d_k brings the variance back to 1.")
    return answer, text


def _head_shape():
    from gptcore.attention import split_heads

    shape = tuple(split_heads(torch.zeros(2, 10, 64), 8).shape)
    options = _HEAD_SHAPE_OPTIONS
    answer = options.index(str(shape)) if str(shape) in options else -1
    text = (f"split_heads on a (2, 10, 64) tensor with 8 heads returns **{shape}**: batch, "
            f"heads, time, and 64 / 8 = {64 // 8} channels per head.")
    return answer, text


_HEAD_SHAPE_OPTIONS = ("(2, 10, 8, 8)", "(2, 8, 10, 8)", "(2, 8, 10, 64)", "(16, 10, 64)")


# -------------------------------------------------------------------------------- lesson 4
def _block_params():
    from gptcore.model import Block, GPTConfig

    C = 768
    with torch.device("meta"):  # shapes only: no memory, no time
        block = Block(GPTConfig(n_embd=C, n_head=12))
    n = sum(p.numel() for p in block.parameters())
    text = (f"gptcore.model.Block with C = {C} has **{n:,} parameters**, 12C² + 13C = "
            f"{12 * C * C + 13 * C:,}: attention c_attn (3C² + 3C) and c_proj (C² + C), the MLP "
            "c_fc (4C² + 4C) and c_proj (4C² + C), and two LayerNorms (2C each). The MLP holds "
            "two thirds of them.")
    return n, text


def _layer_norm_mean():
    from gptcore.model import layer_norm

    x = torch.tensor([[1.0, 2.0, 3.0, 10.0]])
    y = layer_norm(x, torch.ones(4), torch.zeros(4))
    mean, std = y.mean().item(), y.std(unbiased=False).item()
    text = (f"layer_norm([1, 2, 3, 10]) = {[round(v, 3) for v in y[0].tolist()]}: mean "
            f"**{abs(mean):.3f}**, standard deviation {std:.3f}. Whatever the input's scale, each "
            "vector comes out centred on 0 with spread 1, before weight and bias.")
    return round(abs(mean), 6), text


# -------------------------------------------------------------------------------- lesson 5
def _untrained_loss():
    from gptcore.model import GPT, GPTConfig

    V = 65
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=V, block_size=32, n_layer=2, n_head=2, n_embd=32))
        idx = torch.randint(0, V, (8, 32))
        targets = torch.randint(0, V, (8, 32))
        with torch.no_grad():
            _, loss = model(idx, targets)
    text = (f"A freshly initialised gptcore GPT (2 layers, 32 wide, vocabulary {V}) on random "
            f"tokens has loss **{loss.item():.3f}**, close to ln {V} = {math.log(V):.3f}: small "
            "random weights give nearly uniform probabilities 1/V, and −ln(1/V) = ln V. A first "
            "loss far above this means a bug (or a bad initialisation).")
    return round(loss.item(), 3), text


def _perplexity_of():
    try:  # train_step and perplexity are moving to gptcore.trainer
        from gptcore.trainer import perplexity
    except ImportError:
        from gptcore.train import perplexity

    loss = 1.5
    p = perplexity(loss)
    text = (f"perplexity({loss}) = e^{loss} = **{p:.2f}**: on average the model hesitates as "
            f"much as between {p:.1f} equally likely tokens.")
    return round(p, 4), text


QUESTIONS: tuple[Question, ...] = (
    Question("generate.top_k_one", 1, "You sample with **top-k = 1** and temperature 1. What do "
             "you get?", _top_k_one,
             options=("Always the most likely token: greedy decoding",
                      "A random token, like plain sampling",
                      "The least likely token")),
    Question("generate.nucleus_size", 1, "Probabilities [0.45, 0.25, 0.15, 0.10, 0.05] and "
             "**top-p = 0.75**: how many tokens survive the filter?", _nucleus_size),
    Question("data.window_count", 2, "1000 tokens, block size 64, stride 32: how many training "
             "windows (x, y) does the sliding-window dataset give?", _window_count),
    Question("tokenizers.merge_length", 2, "BPE merges the pair (a, a) in **a a a a a** (five "
             "tokens). How many tokens are left?", _merge_length),
    Question("attention.saturation", 3, "Without the √d_k scale, what happens to the largest "
             "softmax weight of random q·k scores as d_k grows from 4 to 256?", _saturation,
             options=("It grows towards 1: softmax saturates on one key",
                      "It stays about the same",
                      "It shrinks towards 1/T: attention becomes uniform")),
    Question("attention.head_shape", 3, "x has shape (B, T, C) = (2, 10, 64). What shape does "
             "`split_heads(x, 8)` return?", _head_shape, options=_HEAD_SHAPE_OPTIONS),
    Question("model.block_params", 4, "How many parameters does one GPT-2 block of width "
             "C = 768 have (with biases)?", _block_params, tolerance=0.05),
    Question("model.layer_norm_mean", 4, "After layer_norm (weight 1, bias 0), what is the mean "
             "of the vector [1, 2, 3, 10]?", _layer_norm_mean),
    Question("train.untrained_loss", 5, "A GPT with a vocabulary of 65 characters, before any "
             "training: what loss does it start near?", _untrained_loss, tolerance=0.05),
    Question("train.perplexity_of", 5, "The validation loss is 1.5 nats. What is the "
             "perplexity?", _perplexity_of, tolerance=0.05),
)


def questions_for_lesson(n: int) -> list[Question]:
    """The questions of lesson n (1-5), in course order."""
    return [q for q in QUESTIONS if q.lesson == n]
