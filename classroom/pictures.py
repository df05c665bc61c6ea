"""Pictures drawn on the server as RGBA arrays for `st.image`, where a chart costs too much to
redraw (no streamlit here).

Lesson 5's live view redraws every few seconds while a run trains, in a browser that may share
the server's cores. A Vega chart is laid out and painted again on every redraw, even when its
data has not changed: the live attention heatmap and its layer and head sliders cost headless
Chromium 0.13 s of CPU a redraw on this 2-core machine (0.044 of a core at one redraw every
3 s), CPU the run did not get. A picture whose bytes have not changed keeps its address, and
the browser leaves it be.
"""
from __future__ import annotations

import numpy as np

# ColorBrewer's Purples (9 classes): the stops of the "purples" scheme of the lessons' heatmaps
PURPLES = np.array([[0xFC, 0xFB, 0xFD], [0xEF, 0xED, 0xF5], [0xDA, 0xDA, 0xEB],
                    [0xBC, 0xBD, 0xDC], [0x9E, 0x9A, 0xC8], [0x80, 0x7D, 0xBA],
                    [0x6A, 0x51, 0xA3], [0x54, 0x27, 0x8F], [0x3F, 0x00, 0x7D]], dtype=np.float64)
GAP = 6  # transparent pixels between two tiles (the page shows through, in either theme)
FRAME = (0xA9, 0xA4, 0xBC, 0xFF)  # a 1-pixel frame around each tile: its near-white weights
# would otherwise run into the page


def purples(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (clipped; NaN reads as 0) as RGB bytes, from near-white to purple."""
    x = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), 0.0, 1.0)
    stops = np.linspace(0.0, 1.0, len(PURPLES))
    rgb = [np.interp(x, stops, PURPLES[:, channel]) for channel in range(3)]
    return np.stack(rgb, axis=-1).round().astype(np.uint8)


def attention_grid(maps, tile: int = 96, max_width: int = 720) -> np.ndarray:
    """Every layer's and head's attention, (L, nh, T, T) weights, as one RGBA picture: layer i
    is row i of tiles, head j column j; in a tile, row q is a query and column k a key.

    Each tile's colours span 0 to its own largest weight, as a heatmap's colour scale spans
    its data, and each weight is a square of whole pixels (about `tile` pixels a side, less
    when nh tiles would be wider than `max_width`). A tile is framed; between tiles the
    picture is transparent."""
    maps = np.nan_to_num(np.asarray(maps, dtype=np.float32))
    n_layer, n_head, t, _ = maps.shape
    scale = max(1, min(tile, (max_width - (n_head - 1) * GAP) // n_head - 2) // t)
    peak = maps.max(axis=(2, 3), keepdims=True)
    tiles = purples(maps / np.where(peak > 0, peak, 1.0))
    tiles = tiles.repeat(scale, axis=2).repeat(scale, axis=3)  # (L, nh, T·s, T·s, 3)
    side = t * scale + 2  # with its frame
    step = side + GAP
    out = np.zeros((n_layer * step - GAP, n_head * step - GAP, 4), dtype=np.uint8)
    for layer in range(n_layer):
        for head in range(n_head):
            top, left = layer * step, head * step
            out[top: top + side, left: left + side] = FRAME
            out[top + 1: top + side - 1, left + 1: left + side - 1, :3] = tiles[layer, head]
    return out
