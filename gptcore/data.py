"""From a token stream to training examples: sliding windows, batches, padding, splits.

A language model learns to predict token t+1 from tokens ..t, so every input window x has a
target y that is the same window shifted by one:

    ids = [5, 6, 7, 8, 9], block_size=3, stride=1 -> (x=[5, 6, 7], y=[6, 7, 8]), (x=[6, 7, 8], y=[7, 8, 9])

Lesson 2 also counts what windows do to a stream (`window_stats`, `window_picture`), checks
a window loop against the dataset (`check_loop`), pads a batch the safe way and shows the
unsafe one (`pad_collate`, `mask_from_pad_id`), and measures a leaky split (`leaked_windows`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch.utils.data import Dataset

IGNORE_INDEX = -100  # cross_entropy skips targets equal to this: padding never counts


def _as_tensor(ids) -> torch.Tensor:
    return ids if isinstance(ids, torch.Tensor) else torch.tensor(list(ids), dtype=torch.long)


class SlidingWindowDataset(Dataset):
    """Item i is x = ids[i*stride : i*stride + block_size] and y = x shifted by one token.

    Every item is full length, so there are (len(ids) - block_size - 1) // stride + 1 items,
    or none if the text is shorter than block_size + 1 tokens.
    """

    def __init__(self, ids, block_size: int, stride: int):
        if block_size < 1 or stride < 1:
            raise ValueError("block_size and stride must be at least 1.")
        self.ids = _as_tensor(ids)
        self.block_size, self.stride = block_size, stride

    def __len__(self) -> int:
        return max(0, (len(self.ids) - self.block_size - 1) // self.stride + 1)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = i * self.stride
        x = self.ids[start: start + self.block_size]
        y = self.ids[start + 1: start + self.block_size + 1]
        return x, y

    def coverage(self) -> torch.Tensor:
        """How many windows use each token as an input: 0 = skipped, >1 = repeated."""
        counts = torch.zeros(len(self.ids), dtype=torch.long)
        for i in range(len(self)):
            counts[i * self.stride: i * self.stride + self.block_size] += 1
        return counts


def window_starts(n_tokens: int, block_size: int, stride: int) -> list[int]:
    """Where the windows of SlidingWindowDataset start: 10 tokens, block 4, stride 2 -> [0, 2, 4]."""
    n = max(0, (n_tokens - block_size - 1) // stride + 1)
    return [i * stride for i in range(n)]


@dataclass(frozen=True)
class WindowStats:
    """One epoch of sliding windows over a stream of n_tokens tokens.

    400 tokens, block 8, stride 1: 392 samples read 3,136 input tokens; 397 positions are
    read by more than one window, and 2,737 reads are repeats of a position already read.
    """

    n_tokens: int
    samples: int
    tokens_per_epoch: int  # input tokens one epoch feeds: samples × block_size
    never_input: int  # positions no window reads as input (the very last is a target only)
    unused: int  # positions in no window at all, neither input nor target
    repeated: int  # positions read as input by more than one window
    extra_reads: int  # input reads beyond each position's first: tokens_per_epoch - distinct

    @property
    def distinct_inputs(self) -> int:
        """Positions read as input at least once."""
        return self.n_tokens - self.never_input


def window_stats(n_tokens: int, block_size: int, stride: int) -> WindowStats:
    """The numbers lesson 2 prints for a block size and stride over n_tokens tokens."""
    ds = SlidingWindowDataset(torch.zeros(n_tokens, dtype=torch.long), block_size, stride)
    reads = ds.coverage()  # input reads per position
    in_window = reads > 0
    in_window[[s + block_size for s in window_starts(n_tokens, block_size, stride)]] = True
    return WindowStats(
        n_tokens=n_tokens,
        samples=len(ds),
        tokens_per_epoch=len(ds) * block_size,
        never_input=int((reads == 0).sum()),
        unused=int((~in_window).sum()),
        repeated=int((reads > 1).sum()),
        extra_reads=int((reads - 1).clamp(min=0).sum()),
    )


@dataclass(frozen=True)
class WindowPicture:
    """Windows over a range of positions, for drawing (see `window_picture`)."""

    positions: range
    rows: list[tuple[int, int, list[str]]]  # (window index, start, role at each position)
    reads: list[int]  # how many windows read each position as input
    hidden_rows: int  # windows that touch the range but were left out (over max_rows)


def window_picture(n_tokens: int, block_size: int, stride: int, positions: range,
                   max_rows: int = 40) -> WindowPicture:
    """Each window that touches `positions`, with its role at every position: "x" (an input,
    whose target is the next token), "y" (the last target, not an input) or "" (outside).

    8 tokens, block 3, stride 2, positions 0-7 -> windows start at 0, 2, 4; window 1 is
    . . x x x y . .; reads 1 1 2 1 2 1 1 0: position 7 is only ever a target.
    """
    rows = []
    starts = [s for s in window_starts(n_tokens, block_size, stride)
              if s < positions.stop and s + block_size >= positions.start]
    for s in starts[:max_rows]:
        roles = ["x" if s <= p < s + block_size else "y" if p == s + block_size else ""
                 for p in positions]
        rows.append((s // stride, s, roles))
    ds = SlidingWindowDataset(torch.zeros(n_tokens, dtype=torch.long), block_size, stride)
    reads = ds.coverage()[positions.start:positions.stop].tolist()
    return WindowPicture(positions, rows, reads, max(0, len(starts) - max_rows))


@dataclass(frozen=True)
class LoopCheck:
    """A hand-written window loop beside the dataset's windows (see `check_loop`)."""

    starts: list[int]
    missing: list[int]  # starts of dataset windows the loop never makes
    short: list[int]  # starts of windows whose target runs past the end (shorter than x)
    lost: list[int]  # positions the dataset's windows use (as input or target) and the loop's don't


def loop_starts(n_tokens: int, block_size: int, stride: int, stop_shift: int = 0) -> list[int]:
    """The starts of `for i in range(0, n_tokens - block_size + stop_shift, stride)`.

    stop_shift=0 is the tutorial's loop: the stop is exclusive, so its last start is
    n_tokens - block_size - 1, whose target ends on the last token; exactly the dataset's windows.
    """
    return list(range(0, n_tokens - block_size + stop_shift, stride))


def check_loop(n_tokens: int, block_size: int, stride: int, stop_shift: int) -> LoopCheck:
    """What a loop with its stop moved by `stop_shift` does, against the dataset's windows.

    20 tokens, block 4, stride 1, stop_shift=-1 -> the window at 15 is missing and token 19
    (the last) is lost; stop_shift=+1 -> an extra window at 16 whose target has 3 tokens.
    """
    starts = loop_starts(n_tokens, block_size, stride, stop_shift)
    reference = window_starts(n_tokens, block_size, stride)
    used = {p for s in reference for p in range(s, s + block_size + 1)}
    covered = {p for s in starts for p in range(s, min(s + block_size + 1, n_tokens))}
    return LoopCheck(
        starts=starts,
        missing=sorted(set(reference) - set(starts)),
        short=[s for s in starts if s + block_size + 1 > n_tokens],
        lost=sorted(used - covered),
    )


def batch_shapes(n_samples: int, batch_size: int, block_size: int,
                 drop_last: bool = False) -> list[tuple[int, int]]:
    """x's shape for each batch of one epoch, as a DataLoader cuts it:
    10 samples, batch 4, block 8 -> [(4, 8), (4, 8), (2, 8)]; drop_last -> [(4, 8), (4, 8)]."""
    full, rest = divmod(n_samples, batch_size)
    shapes = [(batch_size, block_size)] * full
    return shapes + ([(rest, block_size)] if rest and not drop_last else [])


def train_val_split(ids, val_fraction: float):
    """Cut the token stream by position: the first part trains, the last part validates.

    Windows are cut after the split, so no validation token ever appears in a training window
    (cutting overlapping windows at random would put the same text on both sides).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError("val_fraction must be in [0, 1).")
    ids = _as_tensor(ids)
    n_val = int(round(len(ids) * val_fraction))
    cut = len(ids) - n_val
    return ids[:cut], ids[cut:]


def shifted_pairs(sequences) -> list[tuple[list[int], list[int]]]:
    """One (x, y) example per sequence, y = x shifted by one token; a sequence needs two tokens:
    [[5, 6, 7], [8]] -> [([5, 6], [6, 7])]."""
    return [(list(ids[:-1]), list(ids[1:])) for ids in sequences if len(ids) > 1]


def pad_collate(sequences, pad_id: int):
    """Pad variable-length (x, y) pairs to the longest one.

    Inputs are padded with `pad_id`, targets with IGNORE_INDEX (so the loss skips them), and
    attention_mask is 1 for real tokens, 0 for padding. Returns (x, y, attention_mask), each (B, T).
    """
    T = max((len(x) for x, _ in sequences), default=0)
    B = len(sequences)
    x = torch.full((B, T), pad_id, dtype=torch.long)
    y = torch.full((B, T), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((B, T), dtype=torch.long)
    for b, (xs, ys) in enumerate(sequences):
        n = len(xs)
        x[b, :n], y[b, :n], mask[b, :n] = _as_tensor(xs), _as_tensor(ys), 1
    return x, y, mask


def mask_from_pad_id(x: torch.Tensor, pad_id: int) -> torch.Tensor:
    """The tempting shortcut: 1 wherever x != pad_id. Wrong whenever pad_id is also a real
    token: with GPT-2 and pad_id 0, every real "!" (id 0) is masked out with the padding."""
    return (x != pad_id).long()


def hidden_real_tokens(x: torch.Tensor, attention_mask: torch.Tensor,
                       pad_id: int) -> list[tuple[int, int]]:
    """(row, position) of the real tokens that `mask_from_pad_id` would hide."""
    hidden = (attention_mask == 1) & (x == pad_id)
    return [tuple(p) for p in hidden.nonzero().tolist()]


@dataclass(frozen=True)
class PaddingDemo:
    """One batch padded the safe way, and the same batch padded with 0 and masked by id."""

    x: list[list[int]]  # inputs padded with pad_id
    y: list[list[int]]  # labels padded with IGNORE_INDEX
    mask: list[list[int]]  # 1 = real token, from the lengths
    n_padding: int  # padded positions: labels the loss skips
    x_zero: list[list[int]]  # the inputs padded with 0 instead
    n_masked_by_id: int  # positions mask_from_pad_id(x_zero, 0) masks
    hidden: list[tuple[int, int]]  # the real tokens among them: (row, position)


def padding_demo(pairs, pad_id: int) -> PaddingDemo:
    """Pad (x, y) pairs with `pad_id`, then show the trap of padding with 0:
    GPT-2 pairs of "Stop! Who" and "Yes!" -> 1 padded position; padded with 0 and masked by
    `x != 0`, 2 positions are masked and one is the real "!" (id 0) of "Stop!"."""
    x, y, mask = pad_collate(pairs, pad_id)
    x_zero, _, _ = pad_collate(pairs, 0)
    by_id = mask_from_pad_id(x_zero, 0)
    return PaddingDemo(
        x=x.tolist(), y=y.tolist(), mask=mask.tolist(), n_padding=int((mask == 0).sum()),
        x_zero=x_zero.tolist(), n_masked_by_id=int((by_id == 0).sum()),
        hidden=hidden_real_tokens(x_zero, mask, 0),
    )


def embedding_error(vocab_size: int, token_id: int) -> str | None:
    """What an embedding table of `vocab_size` rows says when asked for `token_id` (None: fine).
    A pad id of vocab_size, one past the last row, is refused: "index out of range in self"."""
    table = torch.nn.Embedding(vocab_size, 1)
    try:
        table(torch.tensor([token_id]))
    except IndexError as e:
        return str(e)
    return None


def split_windows_at_random(n_tokens: int, block_size: int, stride: int, val_fraction: float,
                            seed: int) -> tuple[list[int], list[int]]:
    """The leaky way: cut the whole stream into windows, then send a random val_fraction of
    the windows to validation (as `random_split` over a window dataset does).
    Returns (train starts, val starts)."""
    starts = window_starts(n_tokens, block_size, stride)
    random.Random(seed).shuffle(starts)
    n_val = int(len(starts) * val_fraction)
    return sorted(starts[n_val:]), sorted(starts[:n_val])


def split_windows_by_position(n_tokens: int, block_size: int, stride: int,
                              val_fraction: float) -> tuple[list[int], list[int]]:
    """The right way: `train_val_split` first, then windows inside each part.
    Returns (train starts, val starts), positions in the whole stream."""
    train, val = train_val_split(torch.arange(n_tokens), val_fraction)
    return (window_starts(len(train), block_size, stride),
            [len(train) + s for s in window_starts(len(val), block_size, stride)])


def leaked_windows(train_starts: list[int], val_starts: list[int], block_size: int) -> int:
    """Validation windows whose every token (input and target) is inside training windows:
    the model trained on that very text, so its loss there flatters the model.

    block 2, train starts [0, 2], val [1] -> 1 (tokens 1-3 are all in training windows).
    """
    seen = {p for s in train_starts for p in range(s, s + block_size + 1)}
    return sum(all(p in seen for p in range(s, s + block_size + 1)) for s in val_starts)


def random_batch(ids: torch.Tensor, block_size: int, batch_size: int, generator=None):
    """batch_size windows at random offsets (as nanoGPT trains): x, y each (B, block_size)."""
    starts = torch.randint(len(ids) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size)
    x = ids[starts[:, None] + offsets]  # (B, T)
    y = ids[starts[:, None] + offsets + 1]  # (B, T)
    return x, y


def eval_batches(ids: torch.Tensor, block_size: int, batch_size: int):
    """Non-overlapping windows that cover the whole split once, in batches: an exact loss."""
    ds = SlidingWindowDataset(ids, block_size, stride=block_size)
    for start in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
        yield torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])
