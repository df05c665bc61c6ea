"""From a token stream to training examples: sliding windows, batches, padding, splits.

A language model learns to predict token t+1 from tokens ..t, so every input window x has a
target y that is the same window shifted by one:

    ids = [5, 6, 7, 8, 9], block_size=3, stride=1 -> (x=[5, 6, 7], y=[6, 7, 8]), (x=[6, 7, 8], y=[7, 8, 9])
"""
from __future__ import annotations

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


def window_stats(n_tokens: int, block_size: int, stride: int) -> dict:
    """The numbers the lesson prints for a block size and stride over n_tokens tokens."""
    ds = SlidingWindowDataset(torch.zeros(n_tokens, dtype=torch.long), block_size, stride)
    cover = ds.coverage()
    return {
        "samples": len(ds),
        "tokens_per_epoch": len(ds) * block_size,
        "skipped": int((cover == 0).sum()),
        "repeated": int((cover - 1).clamp(min=0).sum()),
    }


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
