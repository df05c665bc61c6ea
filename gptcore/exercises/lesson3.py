"""Lesson 3 exercises: attention, the part of a GPT where tokens look at each other.

    attention.causal_mask                    who may attend to whom: the lower triangle
    attention.scaled_dot_product_attention   softmax(q kᵀ / √d_k) v, with a mask
    attention.split_heads                    (B, T, C) -> (B, n_head, T, C // n_head)
    attention.merge_heads                    and back again
"""
from __future__ import annotations

import math

import torch

from gptcore.exercises.framework import (Exercise, Fail, as_tensor, call, check_shape, close,
                                         first_bad_row, fmt, randn, row, row_of)


# ------------------------------------------------------------------------------ causal_mask
def check_causal_mask(yours, book):
    for T in (4, 1, 6):
        text = f"T={T}"
        out = as_tensor(call(yours, T), "Your mask")
        check_shape(out, (T, T), "Your mask", text, "One row per query position, one column per "
                                                    "key position.")
        expected = book(T)
        if out.dtype != torch.bool:
            table = [row(f"{text}, row 0", out[0], expected[0])]
            if out.is_floating_point() and torch.isinf(out).any():
                raise Fail("mistake", "Yours is an additive mask (0 and -inf, added to the "
                                      "scores). Here the mask is bool: True where a position may "
                                      "attend.", table)
            if torch.equal(out != 0, expected):
                raise Fail("mistake", f"Right pattern, wrong type: your mask is {out.dtype}, not "
                                      "bool. Make it bool (`dtype=torch.bool` or `.bool()`): "
                                      "`masked_fill` and PyTorch's attention read a float mask "
                                      "as numbers to add.", table)
            raise Fail("shape", f"Your mask should be bool (torch.bool); yours is {out.dtype}.",
                       table)
        if torch.equal(out, expected):
            continue
        i = first_bad_row(out.int(), expected.int())
        table = [row(f"{text}, row {i} (query {i})", out[i], expected[i])]
        if torch.equal(out, ~expected):
            raise Fail("mistake", "Your mask is inverted: it is True where a position must NOT "
                                  "attend. Here True means 'may attend' (PyTorch's convention), "
                                  "so position t is True for keys 0..t.", table)
        if torch.equal(out, expected.T):
            raise Fail("mistake", "Your mask is reversed (the upper triangle): each position "
                                  "would look at itself and the FUTURE. Use the lower triangle "
                                  "(torch.tril).", table)
        if torch.equal(out, expected.tril(-1)):
            raise Fail("mistake", "You masked the diagonal: a position may attend to itself too "
                                  "(torch.tril with diagonal=0).", table)
        if out.all():
            raise Fail("mistake", "Nothing is masked: every position could read the future.",
                       table)
        raise Fail("numbers", f"Row {i} of your mask differs: query {i} may attend to keys "
                              f"0..{i} and no others.", table)


CAUSAL_MASK = Exercise(
    id="attention.causal_mask",
    lesson=3,
    title="The causal mask",
    name="causal_mask",
    statement=(
        "Write `causal_mask(T)`: a bool tensor of shape (T, T) that is True where query "
        "position `i` may attend to key position `j`, i.e. `j ≤ i`. A GPT predicts the next "
        "token, so no position may look at the ones after it."
    ),
    formula=r"M_{ij} = \begin{cases} \text{True} & j \le i \\ \text{False} & j > i \end{cases}"
            r"\qquad M = \begin{pmatrix} 1 & 0 & 0 \\ 1 & 1 & 0 \\ 1 & 1 & 1 \end{pmatrix}",
    starter='''import torch


def causal_mask(T):
    """(T, T) bool: True where query i may attend to key j (j <= i)."""
    # TODO: a (T, T) bool tensor with True on and below the diagonal
    return torch.ones(T, T, dtype=torch.bool)
''',
    hints=(
        "Row i is the query at position i; it may see keys 0, 1, …, i.",
        "`torch.tril` keeps the lower triangle (diagonal included) of a matrix.",
        "`torch.ones(T, T, dtype=torch.bool).tril()`.",
    ),
    reference="gptcore.attention.causal_mask",
    checker=check_causal_mask,
    praise="Correct! The lower triangle is what makes a GPT a next-token predictor: during "
           "training every position predicts its successor without ever seeing it.",
)


# --------------------------------------------------------------- scaled_dot_product_attention
def _manual_weights(q, k, mask, scale, dim=-1, fill=float("-inf")):
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, fill)
    return torch.softmax(scores, dim=dim)


def check_sdpa(yours, book):
    q, k, v = randn(2, 3, 4, seed=10) * 1.5, randn(2, 5, 4, seed=11) * 1.5, randn(2, 5, 6, seed=12)
    q4, k4, v4 = (randn(1, 2, 4, 8, seed=s) * 1.5 for s in (13, 14, 15))
    holes = torch.ones(3, 5, dtype=torch.bool)
    holes[1] = False  # query 1 may attend to nothing
    holes[2, 3:] = False
    padding = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)[:, None, :]
    q1, k1, v1 = randn(1, 1, 4, seed=16), randn(1, 1, 4, seed=17), randn(1, 1, 3, seed=18)
    cases = [
        ("q (2, 3, 4), k (2, 5, 4), v (2, 5, 6)", q, k, v, None, True),
        ("q (2, 3, 4), k (2, 5, 4), v (2, 5, 6), scale=False", q, k, v, None, False),
        ("q, k, v (1, 2, 4, 8), causal mask (4, 4)", q4, k4, v4, torch.ones(4, 4).bool().tril(),
         True),
        ("q (2, 3, 4), mask (3, 5) whose row 1 is all False", q, k, v, holes, True),
        ("q (2, 3, 4), padding mask (2, 1, 5)", q, k, v, padding, True),
        ("T=1: q, k (1, 1, 4), v (1, 1, 3), mask [[True]]", q1, k1, v1,
         torch.ones(1, 1, dtype=torch.bool), True),
    ]
    for text, q, k, v, mask, scale in cases:
        out = call(yours, q.clone(), k.clone(), v.clone(),
                   mask=None if mask is None else mask.clone(), scale=scale,
                   what=f"scaled_dot_product_attention({text})")
        if isinstance(out, torch.Tensor):
            raise Fail("shape", "Return both results, `return out, weights`: the lesson draws the "
                                "weights.")
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise Fail("shape", f"Return a pair (out, weights); yours returned {fmt(out)}.")
        y, w = as_tensor(out[0], "out"), as_tensor(out[1], "weights")
        expected_y, expected_w = book(q, k, v, mask=mask, scale=scale)
        check_shape(w, expected_w.shape, "Your weights", text,
                    "One row per query (Tq) and one column per key (Tk): q @ k.transpose(-2, -1).")
        check_shape(y, expected_y.shape, "Your out", text, "out = weights @ v.")
        if not close(w, expected_w):
            _weights_mistake(w, expected_w, text, q, k, v, mask, scale)
        if not close(y, expected_y):
            i = first_bad_row(y, expected_y)
            raise Fail("numbers", "Your weights are right but out differs: out is weights @ v.",
                       [row(f"{text}, out row {i}", row_of(y, i), row_of(expected_y, i))])


def _weights_mistake(w, expected, text, q, k, v, mask, scale):
    i = first_bad_row(w.nan_to_num(123.0), expected)
    table = [row(f"{text}, weights row {i}", row_of(w, i), row_of(expected, i))]
    fully_masked = mask is not None and not mask.any(-1).all()
    if torch.isnan(w).any():
        if fully_masked:
            raise Fail("mistake", "NaN in a fully masked row: softmax of a row that is all -inf "
                                  "is 0/0. A query with nothing to attend to should get zero "
                                  "weights: replace the NaNs by 0 (e.g. weights.nan_to_num(0.0)).",
                       table)
        raise Fail("numbers", "Your weights contain NaN.", table)
    variants = [
        (_manual_weights(q, k, mask, scale=False),
         "Your scores are not scaled: divide q @ kᵀ by √d_k (d_k = q.size(-1)), or the softmax "
         "saturates as d_k grows." if scale else None),
        (_manual_weights(q / math.sqrt(q.size(-1)), k, mask, scale=True),
         "You divided by d_k; the scale is √d_k (math.sqrt(d_k)).") if scale else (None, None),
        (_manual_weights(q, k, mask, scale=True),
         "You scaled the scores although scale=False: only divide by √d_k when scale is True."
         if not scale else None),
        (_manual_weights(q, k, mask, scale, dim=-2),
         "Softmax over the wrong axis: each ROW (one query) must sum to 1, so use dim=-1."),
    ]
    if mask is not None:
        variants += [
            (_manual_weights(q, k, ~mask, scale).nan_to_num(0.0),
             "Your mask is inverted: True means 'may attend', so fill the scores with -inf where "
             "the mask is False (`~mask` or `mask == 0`)."),
            (_manual_weights(q, k, None, scale), "You ignored the mask: fill the scores with "
                                                 "-inf where it is False, before the softmax."),
            (_manual_weights(q, k, mask, scale, fill=-1e9) if fully_masked else None,
             "A row with nothing to attend to gave uniform weights (a large negative number "
             "instead of -inf spreads it evenly); such a row should be all zeros."),
        ]
    for variant, message in variants:
        if variant is not None and message and close(w, variant):
            raise Fail("mistake", message, table)
    raise Fail("numbers", f"Your attention weights differ (row {i}): scores = q @ kᵀ / √d_k, "
                          "-inf where the mask is False, softmax over the last axis.", table)


SDPA = Exercise(
    id="attention.scaled_dot_product_attention",
    lesson=3,
    title="Scaled dot-product attention",
    name="scaled_dot_product_attention",
    statement=(
        "Write `scaled_dot_product_attention(q, k, v, mask=None, scale=True)` returning "
        "`(out, weights)`. `q` is (…, Tq, d_k), `k` (…, Tk, d_k), `v` (…, Tk, d_v). Scores are "
        "`q @ kᵀ`, divided by √d_k when `scale` is True; where the bool `mask` is False (may not "
        "attend) a score becomes -inf; `weights` is the softmax over the keys, (…, Tq, Tk); "
        "`out = weights @ v`, (…, Tq, d_v). A query whose mask row is all False gets zero "
        "weights, not NaN."
    ),
    formula=r"\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} "
            r"+ M\right) V \qquad M_{ij} = \begin{cases} 0 & \text{may attend} \\ -\infty & "
            r"\text{otherwise} \end{cases}",
    starter='''import math

import torch


def scaled_dot_product_attention(q, k, v, mask=None, scale=True):
    """q (..., Tq, d_k), k (..., Tk, d_k), v (..., Tk, d_v) -> out (..., Tq, d_v),
    weights (..., Tq, Tk)."""
    d_k = q.size(-1)
    scores = q @ k.transpose(-2, -1)  # (..., Tq, Tk)
    # TODO: divide by sqrt(d_k) when scale is True
    # TODO: where mask is False, set the score to float("-inf")
    weights = torch.softmax(scores, dim=-1)
    # TODO: rows that were all -inf are NaN now: make them 0
    # TODO: out = weights @ v
    raise NotImplementedError("scaled_dot_product_attention")
''',
    hints=(
        "`scores = scores / math.sqrt(d_k)` when `scale` is True; the mask is bool and True "
        "means 'may attend'.",
        "`scores.masked_fill(~mask, float('-inf'))` blocks the others; softmax over `dim=-1` "
        "makes each query's row sum to 1.",
        "A row of only -inf becomes NaN after softmax: `weights = weights.nan_to_num(0.0)` when "
        "there is a mask, then `return weights @ v, weights`.",
    ),
    reference="gptcore.attention.scaled_dot_product_attention",
    checker=check_sdpa,
    praise="Correct! Each output is a weighted average of the values, with weights from how "
           "well the query matches each key; √d_k keeps the softmax from saturating.",
)


# ------------------------------------------------------------------------------ split_heads
def check_split_heads(yours, book):
    for (B, T, C), n_head in (((2, 5, 12), 3), ((1, 4, 8), 1), ((2, 1, 6), 2), ((3, 4, 8), 4)):
        x = randn(B, T, C, seed=20 + C)
        hs = C // n_head
        text = f"x ({B}, {T}, {C}), n_head={n_head}"
        out = as_tensor(call(yours, x.clone(), n_head), "Your result")
        expected = book(x, n_head)
        if tuple(out.shape) == (B, T, n_head, hs) and T != n_head:
            raise Fail("mistake", f"Your result is (B, T, n_head, hs) = {(B, T, n_head, hs)}: the "
                                  "transpose is missing. Move the heads before time with "
                                  ".transpose(1, 2), so each head sees every token.",
                       [row(text, str(tuple(out.shape)), str(tuple(expected.shape)))])
        check_shape(out, expected.shape, "Your result", text, "(B, T, C) -> (B, n_head, T, hs).")
        if close(out, expected, rtol=0, atol=0):
            continue
        i = first_bad_row(out, expected)
        table = [row(f"{text}, x[0, 0] = {fmt(x[0, 0])}; row {i} of the result",
                     row_of(out, i), row_of(expected, i))]
        if torch.equal(out, x.reshape(B, n_head, T, hs)):
            raise Fail("mistake", "You reshaped to (B, n_head, T, hs) without the transpose: each "
                                  "'head' would then hold pieces of different tokens. View as "
                                  "(B, T, n_head, hs), then .transpose(1, 2).", table)
        if torch.equal(out, x.reshape(B, T, hs, n_head).permute(0, 3, 1, 2)):
            raise Fail("mistake", "Head h should get the consecutive channels h*hs … "
                                  "(h+1)*hs - 1: view as (B, T, n_head, hs) (heads first, then "
                                  "channels), not (B, T, hs, n_head).", table)
        raise Fail("numbers", f"Your result differs for {text}: head h, token t should hold "
                              "x[b, t, h*hs:(h+1)*hs].", table)


SPLIT_HEADS = Exercise(
    id="attention.split_heads",
    lesson=3,
    title="Split into heads",
    name="split_heads",
    statement=(
        "Write `split_heads(x, n_head)`: `x` is (B, T, C); return (B, n_head, T, hs) with "
        "`hs = C // n_head`, where head `h` holds the channels `h*hs … (h+1)*hs - 1` of every "
        "token. Then attention runs on all heads at once, each on its own slice."
    ),
    formula=r"(B, T, C) \xrightarrow{\text{view}} (B, T, n_h, h_s) "
            r"\xrightarrow{\text{transpose}(1,2)} (B, n_h, T, h_s) \qquad h_s = C / n_h",
    starter='''import torch


def split_heads(x, n_head):
    """(B, T, C) -> (B, n_head, T, C // n_head)."""
    B, T, C = x.size()
    # TODO: cut C into n_head groups of C // n_head channels
    # TODO: put the heads before time
    return x.view(B, n_head, T, C // n_head)
''',
    hints=(
        "First cut the channels: `x.view(B, T, n_head, C // n_head)`; each token's C channels "
        "become n_head groups.",
        "A plain `view(B, n_head, T, hs)` would cut through tokens: the heads must be moved, "
        "not reinterpreted.",
        "`x.view(B, T, n_head, C // n_head).transpose(1, 2)`.",
    ),
    reference="gptcore.attention.split_heads",
    checker=check_split_heads,
    praise="Correct! A head is a slice of channels, for every token: view cuts the channels, "
           "transpose puts heads first so each head attends over time on its own.",
)


# ------------------------------------------------------------------------------ merge_heads
def check_merge_heads(yours, book):
    for B, nh, T, hs in ((2, 3, 5, 4), (1, 1, 4, 8), (2, 2, 1, 3), (1, 4, 3, 2)):
        x = randn(B, nh, T, hs, seed=30 + nh)
        text = f"x ({B}, {nh}, {T}, {hs})"
        out = as_tensor(call(yours, x.clone()), "Your result")
        expected = book(x)
        check_shape(out, expected.shape, "Your result", text, "(B, nh, T, hs) -> (B, T, nh*hs).")
        if close(out, expected, rtol=0, atol=0):
            continue
        i = first_bad_row(out, expected)
        table = [row(f"{text}, token {i}", row_of(out, i), row_of(expected, i))]
        if torch.equal(out, x.reshape(B, T, nh * hs)):
            raise Fail("mistake", "You reshaped without the transpose: token t would get pieces "
                                  "of other tokens. Transpose back to (B, T, nh, hs) first.", table)
        raise Fail("numbers", "Token t should hold head 0's hs values, then head 1's, and so on.",
                   table)


MERGE_HEADS = Exercise(
    id="attention.merge_heads",
    lesson=3,
    title="Merge the heads",
    name="merge_heads",
    statement=(
        "Write `merge_heads(x)`, the inverse of `split_heads`: `x` is (B, nh, T, hs); return "
        "(B, T, nh * hs) where each token holds its heads' outputs side by side (head 0 first)."
    ),
    formula=r"(B, n_h, T, h_s) \xrightarrow{\text{transpose}(1,2)} (B, T, n_h, h_s) "
            r"\xrightarrow{\text{view}} (B, T, C)",
    starter='''import torch


def merge_heads(x):
    """(B, nh, T, hs) -> (B, T, nh * hs)."""
    B, nh, T, hs = x.size()
    # TODO: put time before the heads again, then join the heads' channels
    raise NotImplementedError("merge_heads")
''',
    hints=(
        "Undo split_heads in reverse order: first the transpose, then the view.",
        "After a transpose the tensor is not contiguous: `.view` needs `.contiguous()` first "
        "(or use `.reshape`).",
        "`x.transpose(1, 2).contiguous().view(B, T, nh * hs)`.",
    ),
    reference="gptcore.attention.merge_heads",
    checker=check_merge_heads,
    praise="Correct! merge_heads(split_heads(x)) is x again: the heads work apart and their "
           "results meet in c_proj.",
)

EXERCISES = (CAUSAL_MASK, SDPA, SPLIT_HEADS, MERGE_HEADS)
