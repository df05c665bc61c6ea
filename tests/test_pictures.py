"""The live view's attention picture: each head's tile where it belongs, coloured like the
lessons' heatmaps (ColorBrewer's Purples, the scheme Vega's "purples" interpolates)."""
import numpy as np
import pytest
import torch

from classroom.pictures import FRAME, GAP, PURPLES, attention_grid, purples
from gptcore.model import GPT, GPTConfig, attention_maps


def test_purples_runs_from_its_first_stop_to_its_last_and_darkens_on_the_way():
    assert purples(0.0).tolist() == PURPLES[0].tolist()
    assert purples(1.0).tolist() == PURPLES[-1].tolist()
    assert purples(0.5).tolist() == PURPLES[4].tolist()  # the middle of 9 stops
    brightness = purples(np.linspace(0, 1, 50)).astype(int).sum(axis=-1)
    assert (np.diff(brightness) <= 0).all() and brightness[0] > brightness[-1] + 400
    # out of range and NaN (a diverged run's weights) are clipped, not garbage bytes
    assert purples(np.array([-3.0, 7.0, np.nan])).tolist() == \
        [PURPLES[0].tolist(), PURPLES[-1].tolist(), PURPLES[0].tolist()]


def test_each_heads_weights_are_a_tile_in_its_layers_row_and_its_heads_column():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=3, n_embd=24))
    maps = torch.stack(attention_maps(model.eval(), torch.randint(0, 50, (1, 12)))).half()
    assert maps.shape == (2, 3, 12, 12)
    picture = attention_grid(maps, tile=48)
    scale, side = 4, 48 + 2  # 12 tokens, 48 pixels a tile, and its frame
    assert picture.shape == (2 * side + GAP, 3 * side + 2 * GAP, 4) and picture.dtype == np.uint8
    weights = maps.float().numpy()
    for layer in range(2):
        for head in range(3):
            top, left = layer * (side + GAP), head * (side + GAP)
            framed = picture[top: top + side, left: left + side]
            for edge in (framed[0], framed[-1], framed[:, 0], framed[:, -1]):
                assert (edge == FRAME).all()
            tile = framed[1:-1, 1:-1]
            assert (tile[..., 3] == 255).all()  # opaque
            tile = tile[..., :3]
            w = weights[layer, head]
            want = purples(w / w.max()).repeat(scale, axis=0).repeat(scale, axis=1)
            assert (tile == want).all()
            # causal: keys after the query get no weight, the lightest colour
            assert (tile[0, scale:] == PURPLES[0]).all()
            # each weight is a square of pixels; the darkest is the head's largest weight
            q, k = np.unravel_index(w.argmax(), w.shape)
            assert (tile[q * scale, k * scale] == PURPLES[-1]).all()
    assert (picture[side: side + GAP] == 0).all()  # transparent between layers
    assert (picture[:, side: side + GAP] == 0).all()  # and between heads


@pytest.mark.parametrize("n_head, t", [(16, 24), (1, 2), (4, 200)])
def test_the_picture_stays_within_its_width_and_never_loses_a_weight(n_head, t):
    maps = np.random.default_rng(0).random((2, n_head, t, t))
    picture = attention_grid(maps, max_width=720)
    scale = ((picture.shape[0] - GAP) // 2 - 2) // t
    assert scale >= 1 and picture.shape[0] == 2 * (t * scale + 2) + GAP
    assert picture.shape[1] <= max(720, n_head * (t + 2 + GAP))  # a wide one at 1×


def test_a_head_with_no_weight_is_a_blank_tile_not_a_division_by_zero():
    picture = attention_grid(np.zeros((1, 1, 4, 4)), tile=8)
    assert (picture[1:-1, 1:-1, :3] == PURPLES[0]).all()
