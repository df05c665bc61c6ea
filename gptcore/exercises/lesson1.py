"""Lesson 1 exercises: the sampling filters that turn a GPT's next-token logits into a choice.

    generate.top_k_filter   keep the k largest logits of each row
    generate.top_p_filter   keep the most likely tokens until their probability reaches p

Both return the logits with -inf where a token is dropped, in the tokens' own positions, so
that softmax gives the dropped tokens probability exactly 0.
"""
from __future__ import annotations

import torch

from gptcore.exercises.framework import (Exercise, Fail, as_tensor, call, check_shape, close,
                                         first_bad_row, fmt, randn, row)


def _filtered(yours, logits, arg, text):
    """Call the learner's filter on a copy and check it returns a (B, vocab) tensor."""
    out = as_tensor(call(yours, logits.clone(), arg), "Your filter's result")
    if out.dim() == logits.dim() and out.shape[:-1] == logits.shape[:-1] and \
            out.size(-1) < logits.size(-1):
        raise Fail("mistake", "You returned only the kept logits; the filter keeps every "
                              "position of the row, in its own place, with -inf in place of "
                              "the dropped ones.",
                   [row(text, str(tuple(out.shape)), str(tuple(logits.shape)))])
    check_shape(out, logits.shape, "Your result", text,
                "Return the whole row, with -inf in place of the dropped logits.")
    return out


def _common_mistakes(out, expected, logits, table):
    """What top-k and top-p learners get wrong alike: zeros or big negatives instead of -inf,
    sorting instead of masking, returning probabilities."""
    dropped = torch.isinf(expected)
    if dropped.any() and torch.isfinite(out[dropped]).all():
        value = out[dropped][0].item()
        if value == 0:
            raise Fail("mistake", "You set the dropped logits to 0, but exp(0) = 1: those tokens "
                                  "could still be sampled. Use float('-inf').", table)
        if value < -1e3:
            raise Fail("mistake", f"You set the dropped logits to {value:.3g}; use float('-inf') "
                                  "so that their probability is exactly 0.", table)
    if close(out, expected.sort(dim=-1, descending=True).values):
        raise Fail("mistake", "Your result is sorted: a filter masks, it does not sort. Token i "
                              "must stay at position i (its id), with -inf where it is dropped.",
                   table)
    kept = torch.isfinite(expected)
    if torch.equal(torch.isfinite(out), kept):
        raise Fail("mistake", "You kept the right tokens but changed their values: return the "
                              "logits themselves (not probabilities), with -inf elsewhere.", table)


# ------------------------------------------------------------------------------------ top-k
def check_top_k(yours, book):
    cases = [
        (randn(3, 8, seed=1) * 2, 3),
        (randn(3, 8, seed=1) * 2, 1),
        (randn(3, 8, seed=1) * 2, 8),
        (randn(1, 5, seed=2), 2),
        (torch.tensor([[2.0, 1.0, 1.0, 0.0, 1.0], [0.5, 0.5, 0.5, 0.5, 3.0]]), 2),  # ties
    ]
    for logits, k in cases:
        text = f"logits {tuple(logits.shape)}, k={k}"
        out = _filtered(yours, logits, k, text)
        expected = book(logits.clone(), k)
        if close(out, expected):
            continue
        i = first_bad_row(out, expected)
        table = [row(f"{text}, row {i}: {fmt(logits[i])}", out[i], expected[i])]
        _common_mistakes(out, expected, logits, table)
        n_yours, n_expected = torch.isfinite(out).sum(-1), torch.isfinite(expected).sum(-1)
        smallest = torch.isfinite(book(-logits, k))
        if torch.equal(torch.isfinite(out), smallest):
            raise Fail("mistake", "You kept the k smallest logits; keep the k largest "
                                  "(torch.topk returns the largest by default).", table)
        if (n_yours == k).all() and (n_expected > k).any():
            raise Fail("mistake", "Several logits tie with the k-th largest and you kept only k "
                                  "of them; the book keeps every logit ≥ the k-th largest, ties "
                                  "included (compare each logit with the threshold).", table)
        if (n_yours == n_expected + 1).all() or (n_yours == n_expected - 1).all():
            raise Fail("mistake", f"You kept {int(n_yours[i])} tokens in a row instead of "
                                  f"{int(n_expected[i])}: off by one. The k-th largest is "
                                  "torch.topk(logits, k).values[..., -1], and it is kept.", table)
        raise Fail("numbers", f"For {text} your result differs from the expected one in row {i}. "
                              "Keep each logit ≥ its row's k-th largest, the rest become -inf.",
                   table)


TOP_K = Exercise(
    id="generate.top_k_filter",
    lesson=1,
    title="Top-k filtering",
    name="top_k_filter",
    statement=(
        "Write `top_k_filter(logits, k)`. `logits` has shape (B, vocab): one row of scores per "
        "sequence. Keep the `k` largest logits of each row and set every other entry to "
        "`float('-inf')`, so that softmax gives those tokens probability 0. Keep every token in "
        "its place (mask, don't sort); logits tied with the k-th largest are kept too. "
        "`1 ≤ k ≤ vocab`."
    ),
    formula=r"\tilde z_i = \begin{cases} z_i & \text{if } z_i \ge z_{(k)} \\ -\infty & "
            r"\text{otherwise} \end{cases} \qquad "
            r"z_{(k)} = \text{the } k\text{-th largest logit of the row}",
    starter='''import torch


def top_k_filter(logits, k):
    """logits (B, vocab) -> (B, vocab): the k largest of each row kept, the others -inf."""
    # TODO: the k-th largest logit of each row, shaped (B, 1) so it compares with every column
    kth = None
    # TODO: return the logits with every entry smaller than its row's kth set to float("-inf")
    raise NotImplementedError("top_k_filter")
''',
    hints=(
        "`torch.topk(logits, k, dim=-1)` returns the k largest values of each row, largest first.",
        "The last of them, `torch.topk(logits, k, dim=-1).values[..., -1, None]`, is the "
        "threshold, shaped (B, 1) so it broadcasts against (B, vocab).",
        "`return logits.masked_fill(logits < kth, float('-inf'))` keeps every logit ≥ the "
        "threshold, ties included, each in its own position.",
    ),
    reference="gptcore.generate.top_k_filter",
    checker=check_top_k,
    praise="Correct! Top-k is a mask, not a sort: the k most likely tokens keep their logits, "
           "and softmax gives every other token probability 0.",
)


# ------------------------------------------------------------------------------------ top-p
def _safe_p(logits, candidates):
    """The first p whose nucleus boundary is clear of every row's cumulative sums, so that a
    correct float64 or float32 solution cannot disagree by rounding."""
    probs = torch.softmax(logits.double(), dim=-1).sort(dim=-1, descending=True).values
    before = probs.cumsum(-1) - probs
    for p in candidates:
        if (before - p).abs().min() > 1e-3:
            return p
    return candidates[-1]


def _not_most_likely_first(logits_row, kept_row) -> bool:
    """True if some dropped token is more likely than some kept one."""
    if kept_row.all() or not kept_row.any():
        return False
    return bool(logits_row[~kept_row].max() > logits_row[kept_row].min())


def check_top_p(yours, book):
    log = lambda probs: torch.tensor(probs).log()  # noqa: E731
    random4 = randn(4, 10, seed=3) * 2
    random1 = randn(1, 6, seed=4)
    cases = [
        (log([[0.2, 0.5, 0.3]]), 0.6),
        (log([[0.05, 0.4, 0.1, 0.25, 0.2], [0.6, 0.1, 0.1, 0.15, 0.05]]), 0.7),
        (random4, _safe_p(random4, [0.9, 0.85, 0.8, 0.75])),
        (random4, 1e-3),
        (random4, 1.0),
        (random1, _safe_p(random1, [0.5, 0.45, 0.55, 0.4])),
    ]
    for logits, p in cases:
        text = f"logits {tuple(logits.shape)}, p={p:g}"
        out = _filtered(yours, logits, p, text)
        expected = book(logits.clone(), p)
        if close(out, expected):
            continue
        i = first_bad_row(out, expected)
        probs = torch.softmax(logits[i].double(), -1)
        table = [row(f"p={p:g}, probabilities {fmt(probs)}", out[i], expected[i])]
        if close(out, book(logits.sort(dim=-1, descending=True).values, p)):
            raise Fail("mistake", "Your result is in sorted order: after deciding on the sorted "
                                  "probabilities, put each decision back at its token's position "
                                  "(scatter with the sort's indices).", table)
        _common_mistakes(out, expected, logits, table)
        kept_y, kept_e = torch.isfinite(out), torch.isfinite(expected)
        n_yours, n_expected = kept_y.sum(-1), kept_e.sum(-1)
        if (n_yours == 0).any():
            raise Fail("mistake", "A row kept no token at all: the most likely token always "
                                  "survives, even when its probability alone exceeds p.", table)
        if p >= 1.0:
            raise Fail("mistake", "With p=1 every token should survive: the probabilities only "
                                  "reach 1 with the last one.", table)
        subset = (kept_y & ~kept_e).sum() == 0
        if subset and (n_yours < n_expected).any() and (n_yours >= n_expected - 1).all():
            raise Fail("mistake", "You dropped the token that crosses p. Keep a token while the "
                                  "probability of the tokens ranked ABOVE it is < p: with "
                                  "[0.5, 0.3, 0.2] and p=0.6, keep two (0.5 < 0.6 ≤ 0.8).", table)
        if any(_not_most_likely_first(logits[r], kept_y[r]) for r in range(len(logits))):
            raise Fail("mistake", "You kept a token while dropping a more likely one: sort the "
                                  "probabilities from the most likely down before adding them up.",
                       table)
        if (kept_e & ~kept_y).sum() == 0 and (n_yours == n_expected + 1).any():
            raise Fail("mistake", "You kept one token too many: keep the token that makes the "
                                  "total reach p, but not the one after it.", table)
        raise Fail("numbers", f"For {text} your result differs from the expected one in row {i}. "
                              "Sort by probability, keep tokens while the total BEFORE them is "
                              "< p, and set the rest to -inf in their own positions.", table)


TOP_P = Exercise(
    id="generate.top_p_filter",
    lesson=1,
    title="Top-p (nucleus) filtering",
    name="top_p_filter",
    statement=(
        "Write `top_p_filter(logits, p)` for `logits` of shape (B, vocab). In each row, take the "
        "tokens from the most likely down and keep them until their total probability reaches "
        "`p`: the token that makes the total reach or cross `p` is kept, the ones after it get "
        "`float('-inf')`. The most likely token always survives, and `p=1` keeps every token. "
        "Return the logits in their original positions."
    ),
    formula=r"\text{keep token } i \iff \sum_{j \,:\, p_j \text{ ranked above } p_i} p_j < p"
            r"\qquad p_j = \mathrm{softmax}(z)_j",
    starter='''import torch


def top_p_filter(logits, p):
    """logits (B, vocab) -> (B, vocab): the smallest set of most likely tokens whose
    probability reaches p is kept; every other logit becomes -inf."""
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, dim=-1)
    # TODO: for each sorted position, the total probability of the tokens ranked above it
    # TODO: drop a sorted position when that total is already >= p (never the first one)
    # TODO: put the decisions back in the tokens' own order (scatter with `order`)
    raise NotImplementedError("top_p_filter")
''',
    hints=(
        "`probs.cumsum(dim=-1)` includes the token itself; subtract `probs` to get the "
        "probability of the tokens ranked above it.",
        "`drop_sorted = before >= p`, then `drop_sorted[..., 0] = False` so the most likely "
        "token always survives.",
        "`drop = drop_sorted.scatter(-1, order, drop_sorted)` moves each decision back to its "
        "token; then `return logits.masked_fill(drop, float('-inf'))`.",
    ),
    reference="gptcore.generate.top_p_filter",
    checker=check_top_p,
    praise="Correct! The nucleus grows with the model's uncertainty: one token when it is sure, "
           "many when it hesitates, which is why top-p adapts where top-k cannot.",
)

EXERCISES = (TOP_K, TOP_P)
