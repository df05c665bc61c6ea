from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader

from gptcore.data import (IGNORE_INDEX, LoopCheck, SlidingWindowDataset, batch_shapes, check_loop,
                          embedding_error, eval_batches, hidden_real_tokens, leaked_windows,
                          loop_starts, mask_from_pad_id, pad_collate, padding_demo,
                          shifted_pairs, split_windows_at_random, split_windows_by_position,
                          train_val_split, window_picture, window_starts, window_stats)


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


def brute_force_windows(n, block, stride):
    """Every (x positions, y positions) of the dataset, read off its items over arange(n)."""
    ds = SlidingWindowDataset(torch.arange(n), block, stride)
    return [(ds[i][0].tolist(), ds[i][1].tolist()) for i in range(len(ds))]


SETTINGS = [(n, block, stride) for n in (0, 1, 5, 9, 20, 33) for block in (1, 2, 4, 8)
            for stride in (1, 2, 3, 4, 9)]


@pytest.mark.parametrize("n,block,stride", SETTINGS)
def test_window_stats_equal_a_count_over_the_windows(n, block, stride):
    windows = brute_force_windows(n, block, stride)
    reads = Counter(p for x, _ in windows for p in x)
    used = {p for x, y in windows for p in x + y}
    stats = window_stats(n, block, stride)
    assert stats.samples == len(windows)
    assert stats.tokens_per_epoch == sum(len(x) for x, _ in windows)
    assert stats.never_input == n - len(reads)
    assert stats.unused == n - len(used)
    assert stats.repeated == sum(1 for c in reads.values() if c > 1)
    assert stats.extra_reads == sum(c - 1 for c in reads.values())
    assert stats.distinct_inputs == len(reads)
    assert window_starts(n, block, stride) == [x[0] for x, _ in windows]


def test_window_stats_of_issue_16():
    """400 tokens, block 8, stride 1: 397 tokens are read more than once, in 2,737 repeat reads."""
    stats = window_stats(400, 8, 1)
    assert (stats.samples, stats.repeated, stats.extra_reads) == (392, 397, 2737)
    assert (stats.never_input, stats.unused) == (1, 0)  # token 399 is only a target
    assert window_stats(21, 4, 4).never_input == 1
    assert window_stats(20, 4, 6).never_input == 20 - 3 * 4


@pytest.mark.parametrize("n,block,stride,shown", [
    (20, 4, 3, range(0, 20)), (50, 8, 1, range(30, 50)), (12, 2, 5, range(4, 9)), (3, 4, 1, range(0, 3))])
def test_window_picture_marks_each_role(n, block, stride, shown):
    windows = brute_force_windows(n, block, stride)
    picture = window_picture(n, block, stride, shown, max_rows=5)
    touching = [(i, x, y) for i, (x, y) in enumerate(windows) if set(x + y) & set(shown)]
    assert [(i, s) for i, s, _ in picture.rows] == [(i, x[0]) for i, x, _ in touching[:5]]
    assert picture.hidden_rows == max(0, len(touching) - 5)
    for (_, x, y), (_, _, roles) in zip(touching, picture.rows):
        assert roles == ["x" if p in x else "y" if p in y else "" for p in shown]
    reads = Counter(p for x, _ in windows for p in x)
    assert picture.reads == [reads[p] for p in shown]


@pytest.mark.parametrize("n,block,stride", SETTINGS)
def test_the_tutorials_window_loop_makes_exactly_the_datasets_windows(n, block, stride):
    """`range(0, n - block, stride)` is right; one less drops the last window only when
    n - block - 1 falls on the stride, one more makes a window with a short target."""
    ids = list(range(n))
    tutorial = [(ids[i:i + block], ids[i + 1:i + block + 1]) for i in range(0, n - block, stride)]
    assert tutorial == brute_force_windows(n, block, stride)
    assert loop_starts(n, block, stride) == window_starts(n, block, stride)
    assert check_loop(n, block, stride, 0) == LoopCheck(window_starts(n, block, stride), [], [], [])
    short = check_loop(n, block, stride, -1)
    drops = n - block - 1 >= 0 and (n - block - 1) % stride == 0
    assert short.missing == ([n - block - 1] if drops else [])
    kept = {p for s in short.starts for p in range(s, s + block + 1)}
    assert short.lost == sorted({p for x, y in tutorial for p in x + y} - kept)
    assert short.short == []
    long = check_loop(n, block, stride, 1)
    assert long.short == [s for s in range(0, max(0, n - block + 1), stride)
                          if len(ids[s + 1:s + block + 1]) < block]
    assert long.missing == [] and long.lost == []


def test_check_loop_example():
    assert check_loop(20, 4, 1, -1).missing == [15] and check_loop(20, 4, 1, -1).lost == [19]
    assert check_loop(20, 4, 1, 1).short == [16]
    assert check_loop(22, 4, 4, -1).missing == []  # 22 - 4 - 1 = 17 is not on the stride


@pytest.mark.parametrize("n_samples,batch,drop_last", [
    (10, 4, False), (10, 4, True), (8, 4, False), (3, 64, False), (3, 64, True), (0, 2, False)])
def test_batch_shapes_equal_a_dataloader(n_samples, batch, drop_last):
    ds = SlidingWindowDataset(torch.arange(n_samples + 8), 8, 1)
    assert len(ds) == n_samples
    loader = DataLoader(ds, batch_size=batch, drop_last=drop_last)
    assert batch_shapes(n_samples, batch, 8, drop_last) == [tuple(x.shape) for x, _ in loader]


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


def test_shifted_pairs_drop_sequences_too_short_to_predict_anything():
    assert shifted_pairs([[5, 6, 7], [8], [], (1, 2)]) == [([5, 6], [6, 7]), ([1], [2])]


def test_mask_from_the_pad_id_hides_every_real_exclamation_mark():
    from gptcore.tokenizers import TiktokenTokenizer

    tok = TiktokenTokenizer()
    ids = [tok.encode(s) for s in ["Stop! Who goes there?", "Yes!", "Wow! Wow!"]]
    pairs = [(i[:-1], i[1:]) for i in ids]
    demo = padding_demo(pairs, pad_id=50256)
    T = max(len(x) for x, _ in pairs)
    assert demo.x == [x + [50256] * (T - len(x)) for x, _ in pairs]
    assert demo.y == [y + [IGNORE_INDEX] * (T - len(y)) for _, y in pairs]
    assert demo.mask == [[1] * len(x) + [0] * (T - len(x)) for x, _ in pairs]
    assert demo.n_padding == sum(T - len(x) for x, _ in pairs)
    assert demo.x_zero == [x + [0] * (T - len(x)) for x, _ in pairs]
    real_bangs = [(b, t) for b, (x, _) in enumerate(pairs) for t, i in enumerate(x)
                  if tok.token_text(i) == "!"]
    assert real_bangs and demo.hidden == real_bangs
    assert demo.n_masked_by_id == demo.n_padding + len(real_bangs)
    x0 = torch.tensor(demo.x_zero)
    assert mask_from_pad_id(x0, 0).tolist() == [[int(i != 0) for i in row] for row in demo.x_zero]
    assert hidden_real_tokens(x0, torch.tensor(demo.mask), 0) == real_bangs
    assert padding_demo(pairs, pad_id=50256).hidden == padding_demo(pairs, pad_id=7).hidden


def test_embedding_error_refuses_an_id_past_the_table():
    assert "index out of range" in embedding_error(10, 10)
    assert embedding_error(10, 9) is None and embedding_error(50257, 50256) is None


def brute_force_leaks(train_starts, val_starts, block):
    seen = set()
    for s in train_starts:
        seen.update(range(s, s + block + 1))
    return sum(set(range(s, s + block + 1)) <= seen for s in val_starts)


@pytest.mark.parametrize("n,block,stride,frac", [
    (500, 8, 1, 0.1), (500, 8, 4, 0.2), (500, 8, 9, 0.3), (300, 16, 16, 0.5), (40, 32, 1, 0.05),
    (1, 2, 1, 0.1)])
def test_splits_and_their_leaks(n, block, stride, frac):
    everything = window_starts(n, block, stride)
    train, val = split_windows_at_random(n, block, stride, frac, seed=3)
    assert sorted(train + val) == everything and len(val) == int(len(everything) * frac)
    assert (train, val) == split_windows_at_random(n, block, stride, frac, seed=3)
    assert leaked_windows(train, val, block) == brute_force_leaks(train, val, block)
    train_p, val_p = split_windows_by_position(n, block, stride, frac)
    cut = n - round(n * frac)
    assert all(s + block < cut for s in train_p) and all(s >= cut for s in val_p)
    assert leaked_windows(train_p, val_p, block) == 0 == brute_force_leaks(train_p, val_p, block)


def test_a_random_split_of_overlapping_windows_leaks_most_of_validation():
    train, val = split_windows_at_random(5000, 64, 1, 0.1, seed=1337)
    assert leaked_windows(train, val, 64) > 0.9 * len(val)
    train, val = split_windows_at_random(5000, 8, 9, 0.1, seed=1337)  # no overlap: no leak
    assert leaked_windows(train, val, 8) == 0
    assert leaked_windows([0, 2], [1], 2) == 1 and leaked_windows([0], [1], 2) == 0
