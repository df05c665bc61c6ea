import pytest
import torch

from gptcore.data import (IGNORE_INDEX, SlidingWindowDataset, eval_batches, pad_collate,
                          train_val_split, window_stats)


@pytest.mark.parametrize("n,block,stride", [(20, 4, 1), (20, 4, 4), (20, 4, 6), (21, 5, 2),
                                            (5, 4, 1), (4, 4, 1), (3, 8, 2), (0, 2, 1)])
def test_windows_follow_the_contract(n, block, stride):
    ids = torch.arange(100, 100 + n)
    ds = SlidingWindowDataset(ids, block, stride)
    expected = max(0, (n - block - 1) // stride + 1) if n > block else 0
    assert len(ds) == expected
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.tolist() == ids[i * stride: i * stride + block].tolist()
        assert y.tolist() == ids[i * stride + 1: i * stride + block + 1].tolist()
        assert len(x) == len(y) == block
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_window_stats_count_skips_and_repeats():
    assert window_stats(21, 4, 4) == {"samples": 5, "tokens_per_epoch": 20, "skipped": 1, "repeated": 0}
    # 3 windows (0-3, 2-5, 4-7): 12 input tokens over 8 positions; 8 and 9 are never inputs
    assert window_stats(10, 4, 2) == {"samples": 3, "tokens_per_epoch": 12, "skipped": 2, "repeated": 4}
    assert window_stats(20, 4, 6)["skipped"] == 20 - 3 * 4
    assert window_stats(3, 4, 1)["samples"] == 0


def test_split_by_position_has_no_overlap():
    ids = torch.arange(1000)
    train, val = train_val_split(ids, 0.1)
    assert len(train) == 900 and len(val) == 100
    assert train.max() < val.min()
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert len(train_val_split(ids, 0.0)[1]) == 0


def test_pad_collate_ignores_padding_in_the_loss():
    x, y, mask = pad_collate([([5, 6, 7], [6, 7, 8]), ([1], [2])], pad_id=0)
    assert x.tolist() == [[5, 6, 7], [1, 0, 0]]
    assert y.tolist() == [[6, 7, 8], [2, IGNORE_INDEX, IGNORE_INDEX]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_eval_batches_cover_the_split_once():
    ids = torch.arange(103)
    xs = torch.cat([x for x, _ in eval_batches(ids, 10, 4)])
    assert xs.shape == (10, 10) and xs.flatten().tolist() == list(range(100))
