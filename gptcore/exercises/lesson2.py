"""Lesson 2 exercises: from text to training examples.

    tokenizers.merge_pair       one BPE merge: replace every (a, b) by a new id, left to right
    data.SlidingWindowDataset   windows x and targets y = x shifted by one token
    data.train_val_split        cut the token stream by position, train first
    data.random_batch           a batch of windows at random offsets, as nanoGPT trains
"""
from __future__ import annotations

import operator

import torch

from gptcore.exercises.framework import (Exercise, Fail, as_int_list, as_tensor, call, fmt,
                                         generator, row)


# ------------------------------------------------------------------------------- merge_pair
def check_merge_pair(yours, book):
    cases = [
        ([1, 2, 3, 1, 2], (1, 2), 4),
        ([1, 1, 1], (1, 1), 9),
        ([1, 1, 1, 1], (1, 1), 9),
        ([3, 1, 2], (1, 2), 4),
        ([2, 1, 2, 1], (1, 2), 7),
        ([], (1, 2), 5),
        ([1], (1, 2), 5),
        ([5, 6, 5, 6, 6, 5, 5, 6], (6, 5), 8),
        ([int(i) for i in torch.randint(0, 3, (30,), generator=generator(5))], (0, 1), 3),
    ]
    for ids, pair, new_id in cases:
        text = f"ids={fmt(ids, 10)}, pair={pair}, new_id={new_id}"
        out = as_int_list(call(yours, list(ids), pair, new_id), "Your result")
        expected = book(list(ids), pair, new_id)
        if out == expected:
            continue
        table = [row(text, fmt(out, 10), fmt(expected, 10))]
        if expected and out == expected[:-1]:
            raise Fail("mistake", "The last id went missing: a loop over `range(len(ids) - 1)` "
                                  "stops before it. Copy the last id when it ends no pair.", table)
        if ids == [1, 1, 1]:
            if out == [1, 9]:
                raise Fail("mistake", "You merged from the right: BPE merges left to right, so "
                                      "[1, 1, 1] with pair (1, 1) gives [9, 1].", table)
            raise Fail("mistake", "Merges must not overlap: after replacing ids[i], ids[i+1], "
                                  "carry on from i+2. [1, 1, 1] with pair (1, 1) gives [9, 1].",
                       table)
        if out == book(list(ids), pair[::-1], new_id) and out != list(ids):
            raise Fail("mistake", f"You merged ({pair[1]}, {pair[0]}) instead of {pair}: the "
                                  "order inside a pair matters.", table)
        if out == list(ids):
            raise Fail("mistake", "Nothing was merged: look for ids[i] == pair[0] and "
                                  "ids[i + 1] == pair[1], and append new_id instead.", table)
        raise Fail("numbers", f"For {text} your result differs. Walk left to right: at a match "
                              "append new_id and skip two ids, otherwise copy one id.", table)


MERGE_PAIR = Exercise(
    id="tokenizers.merge_pair",
    lesson=2,
    title="One BPE merge",
    name="merge_pair",
    statement=(
        "Write `merge_pair(ids, pair, new_id)`: return a new list where every occurrence of "
        "`pair` (two ids side by side, in that order) is replaced by `new_id`. Scan left to "
        "right; merges don't overlap, so `[1, 1, 1]` with pair `(1, 1)` becomes `[new_id, 1]`."
    ),
    formula="",
    starter='''def merge_pair(ids, pair, new_id):
    """([1, 2, 3, 1, 2], (1, 2), 4) -> [4, 3, 4]"""
    out, i = [], 0
    while i < len(ids):
        # TODO: if ids[i] and ids[i + 1] (when there is one) are `pair`, append new_id, skip 2
        # TODO: otherwise copy ids[i] and move on by 1
        raise NotImplementedError("merge_pair")
    return out
''',
    hints=(
        "Use a `while` loop with an index `i` you move yourself: by 2 after a merge, by 1 "
        "otherwise.",
        "Check `i + 1 < len(ids)` before reading `ids[i + 1]`, so the last id is copied too.",
        "`if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]: "
        "out.append(new_id); i += 2` else `out.append(ids[i]); i += 1`.",
    ),
    reference="gptcore.tokenizers.merge_pair",
    checker=check_merge_pair,
    praise="Correct! That is the step BPE repeats: count pairs, merge the most frequent one "
           "everywhere, and the text gets shorter by one token per occurrence.",
)


# ----------------------------------------------------------------------- SlidingWindowDataset
def _ids_of(value, what):
    return as_int_list(value, what)


def check_sliding_windows(yours, book):
    ids = torch.arange(100, 120)
    cases = [
        (ids, 4, 1), (ids, 4, 4), (ids, 5, 3), (ids, 3, 7), (ids, 19, 1), (ids, 20, 1),
        (ids[:5], 4, 1), (ids[:4], 4, 2), (ids[:3], 4, 1), (list(range(10, 21)), 3, 2),
    ]
    for data, block_size, stride in cases:
        values = [int(v) for v in data]
        text = (f"ids={fmt(values, 4)} ({len(values)} tokens), block_size={block_size}, "
                f"stride={stride}")
        ds = call(yours, data, block_size, stride,
                  what=f"SlidingWindowDataset(ids, {block_size}, {stride})")
        ref = book(data, block_size, stride)
        for method in ("__len__", "__getitem__"):
            if not hasattr(ds, method):
                raise Fail("name", f"Your class needs a `{method}` method (a PyTorch Dataset has "
                                   "`__len__` and `__getitem__`).")
        raw = call(type(ds).__len__, ds, what="len(dataset)")
        try:
            n = operator.index(raw)
        except TypeError:
            raise Fail("shape", f"__len__ should return an int, not {fmt(raw)}.") from None
        expected_n = len(ref)
        if n != expected_n:
            table = [row(text, f"{n} windows", f"{expected_n} windows")]
            N = len(values)
            if n < 0:
                raise Fail("mistake", f"Your __len__ returns {n}: when ids has fewer than "
                                      "block_size + 1 tokens there are 0 windows (clamp with "
                                      "max(0, …)).", table)
            if n == max(0, (N - block_size) // stride + 1):
                raise Fail("mistake", "Off by one: you count a last window whose target y would "
                                      "run past the end. A window needs block_size + 1 tokens "
                                      "(x, and y one further), so there are "
                                      "(len(ids) - block_size - 1) // stride + 1.", table)
            if n == expected_n - 1:
                raise Fail("mistake", "Off by one: you drop the last full window. There are "
                                      "(len(ids) - block_size - 1) // stride + 1 windows.", table)
            raise Fail("numbers", f"Your dataset has {n} windows; expected {expected_n}. Window i "
                                  "starts at i * stride and needs block_size + 1 tokens.", table)
        for i in range(n):
            item = call(ds.__getitem__, i, what=f"dataset[{i}]")
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise Fail("shape", f"dataset[{i}] should be a pair (x, y); yours is {fmt(item)}.")
            x = _ids_of(item[0], f"x of dataset[{i}]")
            y = _ids_of(item[1], f"y of dataset[{i}]")
            ex, ey = ([int(v) for v in t] for t in ref[i])
            if x == ex and y == ey:
                continue
            where = f"{text}, item {i}"
            if x != ex:
                table = [row(where + ": x", fmt(x, 8), fmt(ex, 8))]
                if len(x) != len(ex):
                    raise Fail("shape", f"x of item {i} has {len(x)} tokens; expected "
                                        f"block_size = {block_size}.", table)
                if x == values[i:i + block_size]:
                    raise Fail("mistake", "Item i starts at i * stride, not at i.", table)
                raise Fail("numbers", f"x of item {i} should be ids[{i * stride}:"
                                      f"{i * stride + block_size}].", table)
            table = [row(where + ": y", fmt(y, 8), fmt(ey, 8))]
            if y == x:
                raise Fail("mistake", "y equals x: the target is the same window shifted by one "
                                      "token (each position predicts the next token).", table)
            start = i * stride
            if y == values[max(0, start - 1):start - 1 + block_size]:
                raise Fail("mistake", "y is shifted the wrong way: it starts one token AFTER x "
                                      "(y = ids[start + 1 : start + block_size + 1]).", table)
            raise Fail("numbers", f"y of item {i} should be ids[{start + 1}:"
                                  f"{start + block_size + 1}].", table)


SLIDING_WINDOWS = Exercise(
    id="data.SlidingWindowDataset",
    lesson=2,
    title="Sliding windows",
    name="SlidingWindowDataset",
    kind="class",
    statement=(
        "Write a class `SlidingWindowDataset(ids, block_size, stride)` (a PyTorch `Dataset`) "
        "with `__len__` and `__getitem__`. Item `i` is a pair `(x, y)`: `x` is the window "
        "`ids[i*stride : i*stride + block_size]` and `y` the same window shifted by one token. "
        "Every item is full length, so there are `(len(ids) - block_size - 1) // stride + 1` "
        "items, or 0 if the text is too short. `ids` is a list or a 1-D tensor."
    ),
    formula=r"x^{(i)} = \text{ids}[iS : iS + B] \qquad y^{(i)} = \text{ids}[iS + 1 : iS + B + 1]"
            r"\qquad n = \max\left(0,\ \left\lfloor \frac{N - B - 1}{S} \right\rfloor + 1\right)",
    starter='''import torch
from torch.utils.data import Dataset


class SlidingWindowDataset(Dataset):
    def __init__(self, ids, block_size, stride):
        self.ids = torch.as_tensor(ids, dtype=torch.long)
        self.block_size, self.stride = block_size, stride

    def __len__(self):
        # TODO: how many full windows (x and its shifted y) fit in self.ids?
        return 0

    def __getitem__(self, i):
        # TODO: x = the block_size tokens from i * stride; y = the same window moved by one
        raise NotImplementedError("__getitem__")
''',
    hints=(
        "A window needs block_size + 1 tokens: block_size for x and one more at the end for y.",
        "The last window starts at most at len(ids) - block_size - 1, so there are "
        "(len(ids) - block_size - 1) // stride + 1 windows; use max(0, …) for short texts.",
        "`start = i * self.stride`, `x = self.ids[start : start + self.block_size]`, "
        "`y = self.ids[start + 1 : start + self.block_size + 1]`, `return x, y`.",
    ),
    reference="gptcore.data.SlidingWindowDataset",
    checker=check_sliding_windows,
    praise="Correct! Every window teaches block_size predictions at once: position t of x "
           "predicts position t of y, the next token.",
)


# --------------------------------------------------------------------------- train_val_split
def check_split(yours, book):
    cases = [
        (torch.arange(10, 30), 0.1), (torch.arange(10, 30), 0.25), (torch.arange(10, 30), 0.5),
        (torch.arange(10, 30), 0.0), (list(range(7)), 0.3), (torch.arange(1000, 1003), 0.2),
    ]
    for ids, fraction in cases:
        values = [int(v) for v in ids]
        N = len(values)
        text = f"ids={fmt(values, 5)} ({N} tokens), val_fraction={fraction}"
        out = call(yours, ids.clone() if isinstance(ids, torch.Tensor) else list(ids), fraction)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise Fail("shape", f"Return a pair (train, val); yours returned {fmt(out)}.")
        train, val = as_int_list(out[0], "train"), as_int_list(out[1], "val")
        expected_train, expected_val = (as_int_list(t, "expected") for t in book(ids, fraction))
        table = [row(text, f"train {fmt(train, 5)}, val {fmt(val, 5)}",
                     f"train {fmt(expected_train, 5)}, val {fmt(expected_val, 5)}")]
        if train + val == values and abs(len(val) - N * fraction) < 1:
            continue
        if val + train == values and abs(len(val) - N * fraction) < 1:
            raise Fail("mistake", "You put the validation part first: train is the first part of "
                                  "the text, val the last.", table)
        if sorted(train + val) == sorted(values):
            if train + val == values:
                if fraction == 0 and not train:
                    raise Fail("mistake", "With val_fraction=0 your train part is empty: "
                                          "ids[:-0] is ids[:0] in Python. Cut at "
                                          "len(ids) - n_val instead.", table)
                if abs(len(train) - N * fraction) < 1 and fraction != 0.5:
                    raise Fail("mistake", "Train got val_fraction of the tokens; it should get "
                                          "the rest (1 - val_fraction), and val the last "
                                          "val_fraction.", table)
                raise Fail("numbers", f"Your val part has {len(val)} tokens; expected about "
                                      f"{N * fraction:g} (val_fraction × {N}).", table)
            raise Fail("mistake", "Your split shuffles the tokens. Cut by position instead: "
                                  "windows overlap, so a shuffled split leaks validation text "
                                  "into training and the validation loss looks better than it is.",
                       table)
        raise Fail("numbers", "train followed by val should give back ids exactly, with the "
                              f"last {N * fraction:g} tokens (val_fraction × {N}) in val.", table)


TRAIN_VAL_SPLIT = Exercise(
    id="data.train_val_split",
    lesson=2,
    title="A split without leaks",
    name="train_val_split",
    statement=(
        "Write `train_val_split(ids, val_fraction)` that returns `(train, val)`: cut the token "
        "stream by position, the first part for training and the last `val_fraction` of it for "
        "validation (`round(len(ids) * val_fraction)` tokens). `val_fraction=0` gives an empty "
        "val. Don't shuffle: windows overlap, so a shuffled split would leak validation text into "
        "training."
    ),
    formula=r"n_{\text{val}} = \mathrm{round}(N \cdot f) \qquad \text{train} = \text{ids}[:N - "
            r"n_{\text{val}}] \qquad \text{val} = \text{ids}[N - n_{\text{val}}:]",
    starter='''import torch


def train_val_split(ids, val_fraction):
    """ids (list or 1-D tensor) -> (train, val): the first part, then the last val_fraction."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    # TODO: how many tokens go to validation?
    n_val = 0
    # TODO: cut by position, train first
    return ids, ids[:0]
''',
    hints=(
        "`n_val = round(len(ids) * val_fraction)` tokens go to validation, from the end.",
        "Careful with `ids[:-n_val]`: when n_val is 0 it is `ids[:0]`, an empty list.",
        "`cut = len(ids) - n_val`, then `return ids[:cut], ids[cut:]`.",
    ),
    reference="gptcore.data.train_val_split",
    checker=check_split,
    praise="Correct! A split by position keeps every validation token out of the training "
           "windows, so the validation loss measures text the model has never seen.",
)


# ------------------------------------------------------------------------------ random_batch
def check_random_batch(yours, book):
    ids = torch.arange(100, 140)
    block_size, batch_size = 5, 8
    text = f"ids=[100, 101, …, 139], block_size={block_size}, batch_size={batch_size}"
    out = call(yours, ids.clone(), block_size, batch_size, generator(0))
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise Fail("shape", f"Return a pair (x, y); yours returned {fmt(out)}.")
    x, y = as_tensor(out[0], "x"), as_tensor(out[1], "y")
    for name, t in (("x", x), ("y", y)):
        if tuple(t.shape) != (batch_size, block_size):
            raise Fail("shape", f"{name} has shape {tuple(t.shape)}; expected (batch_size, "
                                f"block_size) = ({batch_size}, {block_size}).",
                       [row(text, str(tuple(t.shape)), str((batch_size, block_size)))])
    for b in range(batch_size):
        start = int(x[b, 0]) - 100
        expected_x = ids[start:start + block_size]
        if not (0 <= start and torch.equal(x[b], expected_x)):
            raise Fail("numbers", f"Row {b} of x is not a window of consecutive ids.",
                       [row(text + f", row {b}", x[b], "ids[s : s + block_size] for some s")])
        expected_y = ids[start + 1:start + block_size + 1]
        if not torch.equal(y[b], expected_y):
            table = [row(f"x[{b}] = {fmt(x[b])}", y[b], expected_y)]
            if torch.equal(y[b], x[b]):
                raise Fail("mistake", "y equals x: the targets are the same windows shifted by "
                                      "one token.", table)
            raise Fail("numbers", f"Row {b} of y should be x[{b}] moved one token on.", table)
    again = call(yours, ids.clone(), block_size, batch_size, generator(0))
    if not torch.equal(as_tensor(again[0], "x"), x):
        raise Fail("mistake", "The same generator seed gave a different batch: pass "
                              "`generator=generator` to torch.randint so runs are reproducible.")
    short = torch.arange(100, 100 + block_size + 2)  # two possible starts: 0 and 1
    starts = set()
    for seed in range(4):
        xs, _ = call(yours, short.clone(), block_size, 16, generator(seed))
        starts |= {int(v) - 100 for v in as_tensor(xs, "x")[:, 0]}
    if starts != {0, 1}:
        raise Fail("mistake", "With block_size + 2 tokens, windows can start at 0 or 1, but "
                              f"yours started at {sorted(starts)}: torch.randint(high, …) never "
                              "returns high, so use high = len(ids) - block_size.",
                   [row(f"ids of {len(short)} tokens, block_size={block_size}",
                        str(sorted(starts)), "[0, 1]")])


RANDOM_BATCH = Exercise(
    id="data.random_batch",
    lesson=2,
    title="A random batch",
    name="random_batch",
    statement=(
        "Write `random_batch(ids, block_size, batch_size, generator=None)` for a 1-D tensor "
        "`ids`: pick `batch_size` random start positions `s` (with `torch.randint` and the given "
        "`generator`, so a seed gives the same batch) and return `(x, y)`, each of shape "
        "(batch_size, block_size): `x[b] = ids[s : s + block_size]`, `y[b]` the same window "
        "one token on. Every start from 0 to `len(ids) - block_size - 1` must be possible."
    ),
    formula=r"s_b \sim \mathcal{U}\{0, \dots, N - B - 1\} \qquad x_b = \text{ids}[s_b : s_b + B]"
            r"\qquad y_b = \text{ids}[s_b + 1 : s_b + B + 1]",
    starter='''import torch


def random_batch(ids, block_size, batch_size, generator=None):
    """batch_size windows at random offsets: x, y each (batch_size, block_size)."""
    # TODO: batch_size random starts (torch.randint with generator=generator)
    starts = torch.zeros(batch_size, dtype=torch.long)
    # TODO: stack the windows ids[s : s + block_size] and their targets one token on
    x = torch.stack([ids[s: s + block_size] for s in starts])
    return x, x
''',
    hints=(
        "`torch.randint(high, (batch_size,), generator=generator)` draws from 0 to high - 1.",
        "The last window must still have a target after it: high = len(ids) - block_size.",
        "`x = torch.stack([ids[s : s + block_size] for s in starts])` and "
        "`y = torch.stack([ids[s + 1 : s + block_size + 1] for s in starts])`.",
    ),
    reference="gptcore.data.random_batch",
    checker=check_random_batch,
    praise="Correct! Random windows are how nanoGPT trains: every step sees a fresh slice of "
           "the text, and the generator makes a run repeatable.",
)

EXERCISES = (MERGE_PAIR, SLIDING_WINDOWS, TRAIN_VAL_SPLIT, RANDOM_BATCH)
