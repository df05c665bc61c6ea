"""Lesson 3's experiments: `gptcore.attention` run on the lesson's examples, numbers out.

`attention.py` teaches the mechanism; this module measures what it does:

    toy_attention         one query by hand: scores, softmax weights, the context vector
    softmax_saturation    why divide by √d_k: the largest weight and the entropy as d_k grows
    mask_weights          the causal mask beside its reversed twin, the tutorial's triu(1) slip
    padding_demo          padding on the right or the left: when the padding mask matters
    shape_walk            (B, T, C) -> (B, nh, T, hs) -> (B, nh, T, T) -> (B, T, C), real tensors
    mask_experiment       three tiny models that differ only in their mask, trained and sampled
    real_attention_maps   the maps of a real model, cut at min(its context, what fits on screen)

Every result is a small dataclass of lists and floats; tests/test_attention.py checks each
against PyTorch (`F.scaled_dot_product_attention`, `nn.MultiheadAttention`) or hand math.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from gptcore.attention import (MultiHeadAttention, causal_mask, merge_heads, padding_mask,
                               scaled_dot_product_attention, split_heads)
from gptcore.config import GPTConfig
from gptcore.data import SlidingWindowDataset
from gptcore.generate import context_size, generate
from gptcore.model import GPT, attention_maps
from gptcore.trainer import TrainConfig, Trainer, prepare_data

PAD = "<pad>"


# ------------------------------------------------------------------ one query by hand


@dataclass(frozen=True)
class ToyAttention:
    scores: list[float]  # (T,) query · key_j, before any scaling
    weights: list[float]  # (T,) softmax(scores / √d_k) or softmax(scores); they sum to 1
    context: list[float]  # (d,) Σ_j weights_j · value_j
    d_k: int
    scaled: bool


def toy_attention(vectors: list[list[float]], query: int, scale: bool = False) -> ToyAttention:
    """Plain self-attention for one query: every vector is query, key and value at once.

    With the tutorial's six 3-d vectors ("Your journey starts with one step") and query 1
    ("journey"), unscaled: scores [0.9544, 1.4950, 1.4754, 0.8434, 0.7070, 1.0865],
    weights [0.1385, 0.2379, 0.2333, 0.1240, 0.1082, 0.1581], context [0.4419, 0.6515, 0.5683].
    """
    x = torch.tensor(vectors, dtype=torch.float64)  # (T, d); float64 so big entries still fit
    if x.dim() != 2 or x.numel() == 0:
        raise ValueError("Give at least one vector, all of the same length.")
    if not 0 <= query < x.size(0):
        raise ValueError(f"The query must be one of the {x.size(0)} vectors.")
    q = x[query:query + 1]  # (1, d)
    scores = (q @ x.T)[0]  # (T,)
    if not torch.isfinite(scores).all():
        raise ValueError("These numbers are too large: their dot products overflow. "
                         "Use entries below about 1e150.")
    context, weights = scaled_dot_product_attention(q, x, x, scale=scale)  # (1, d), (1, T)
    return ToyAttention(scores.tolist(), weights[0].tolist(), context[0].tolist(), x.size(1), scale)


# ------------------------------------------------------------------ why divide by √d_k


@dataclass(frozen=True)
class Saturation:
    d_k: int
    scaled: bool
    score_std: float  # spread of what the softmax sees: about √d_k unscaled, about 1 scaled
    largest_weight: float  # mean largest weight of a row: 1/n_keys uniform ... 1 one-hot
    entropy: float  # mean -Σ w·ln w of a row, in nats: ln(n_keys) uniform ... 0 one-hot
    example: list[list[float]]  # (n_keys, n_keys) the weights of the first sample


def softmax_saturation(d_k: int, scale: bool, n_keys: int = 8, n_samples: int = 64,
                       seed: int = 0) -> Saturation:
    """Softmax weights of random queries and keys with unit-variance entries.

    q then k are drawn, each (n_samples, n_keys, d_k), from one generator seeded with `seed`.
    A dot product of two such vectors has variance d_k: unscaled, the scores spread like
    √d_k and the softmax saturates (one weight near 1); dividing by √d_k keeps them near 1.
    """
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(n_samples, n_keys, d_k, generator=g)
    k = torch.randn(n_samples, n_keys, d_k, generator=g)
    scores = q @ k.transpose(-2, -1)  # (n_samples, n_keys, n_keys)
    if scale:
        scores = scores / math.sqrt(d_k)
    _, w = scaled_dot_product_attention(q, k, k, scale=scale)  # (n_samples, n_keys, n_keys)
    return Saturation(d_k, scale, scores.std().item(), w.max(-1).values.mean().item(),
                      torch.special.entr(w).sum(-1).mean().item(), w[0].tolist())


# ------------------------------------------------------------------ masks


def reversed_causal_mask(T: int) -> torch.Tensor:
    """The slip the tutorial's notebook makes, kept here to look at: (T, T) strictly upper.

    `torch.triu(ones, diagonal=1)` marks the FUTURE. Where True means "blocked"
    (`nn.MultiheadAttention`'s attn_mask, `scores.masked_fill(mask, -inf)`) that is right.
    Read as "may attend" (gptcore's and `F.scaled_dot_product_attention`'s convention) it
    lets every token see only the tokens after it, and the last token nothing at all.
    """
    return torch.ones(T, T, dtype=torch.bool).triu(1)


def no_mask(T: int) -> torch.Tensor:
    """(T, T) all True: every token sees every token, as in BERT (bidirectional)."""
    return torch.ones(T, T, dtype=torch.bool)


MASKS = {"causal": causal_mask, "none": no_mask, "reversed": reversed_causal_mask}


def toy_qkv(real: list[bool], dim: int = 8, seed: int = 0):
    """q, k, v (T, dim) for a row of tokens: real token i gets the i-th random embedding (so
    the same sentence gets the same vectors however it is padded), every pad one shared
    embedding; then three random projections. No position embeddings: only the pads can
    change what the real tokens compute."""
    g = torch.Generator().manual_seed(seed)
    words = torch.randn(sum(real), dim, generator=g)  # (n_real, dim)
    pad = torch.randn(dim, generator=g)
    w_q, w_k, w_v = (torch.randn(dim, dim, generator=g) / math.sqrt(dim) for _ in range(3))
    rows, i = [], 0
    for is_real in real:
        rows.append(words[i] if is_real else pad)
        i += is_real
    x = torch.stack(rows) if rows else torch.zeros(0, dim)  # (T, dim)
    return x @ w_q, x @ w_k, x @ w_v


@dataclass(frozen=True)
class MaskWeights:
    mask: list[list[bool]]  # (T, T) True where query i may attend to key j
    weights: list[list[float]]  # (T, T) softmax weights under the mask
    future_weight: float  # mean over queries of the weight on later tokens (j > i)
    empty_rows: list[int]  # queries with nothing to attend to: their weights are all 0


def mask_weights(mask: str, T: int, seed: int = 0) -> MaskWeights:
    """Toy attention weights under one of MASKS ("causal", "none", "reversed")."""
    m = MASKS[mask](T)
    q, k, v = toy_qkv([True] * T, seed=seed)
    _, w = scaled_dot_product_attention(q, k, v, mask=m)  # (T, T)
    future = w.triu(1).sum(-1).mean().item() if T else 0.0
    return MaskWeights(m.tolist(), w.tolist(), future, (~m.any(-1)).nonzero().flatten().tolist())


@dataclass(frozen=True)
class PaddingDemo:
    tokens: list[str]  # the words with PAD on the chosen side
    mask: list[list[bool]]  # (T, T) the masks switched on, combined
    unmasked: list[list[float]]  # (T, T) weights with no mask at all
    weights: list[list[float]]  # (T, T) weights under `mask`
    pad_weight: list[float]  # per real token, in order: its total weight on PAD keys
    changed_rows: list[int]  # queries whose weights the padding mask changes
    output_change: float  # largest |Δ| of a real token's output vs the sentence without pads

    @property
    def real_rows_on_pads(self) -> int:
        """How many real tokens give some weight to padding."""
        return sum(w > 0 for w in self.pad_weight)

    @property
    def largest_pad_weight(self) -> float:
        return max(self.pad_weight, default=0.0)


def padding_demo(words: list[str], n_pad: int, pad_left: bool = False, causal: bool = True,
                 padding: bool = True, seed: int = 0) -> PaddingDemo:
    """One row of a batch, padded with `n_pad` pads to the longest row's length.

    The padding mask changes exactly the rows whose other masks let them see a pad. With
    the causal mask and pads at the END, those are the pads' own rows: real tokens come
    before every pad and never see one, so the padding mask is optional (the loss ignores
    the pads' positions anyway). With pads at the START (left padding, used to batch
    prompts for generation) or without the causal mask (bidirectional attention), real
    tokens see pads: without the padding mask, weight leaks to them and outputs change.
    """
    pads, real_words = [False] * n_pad, [True] * len(words)
    real = pads + real_words if pad_left else real_words + pads
    tokens = [PAD] * n_pad + list(words) if pad_left else list(words) + [PAD] * n_pad
    T = len(tokens)
    q, k, v = toy_qkv(real, seed=seed)  # (T, d) each
    base = causal_mask(T) if causal else no_mask(T)  # (T, T)
    pad_ok = padding_mask(torch.tensor([real], dtype=torch.long))[0, 0]  # (1, T): may attend
    mask = base & pad_ok if padding else base
    _, unmasked = scaled_dot_product_attention(q, k, v)
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask)  # (T, d), (T, T)

    is_real = torch.tensor(real, dtype=torch.bool)
    pad_weight = weights[is_real][:, ~is_real].sum(-1)  # (n_real,)
    changed = (base & ~pad_ok).any(-1)  # rows where the other masks let a pad in
    alone_q, alone_k, alone_v = toy_qkv([True] * len(words), seed=seed)  # the sentence, no pads
    alone, _ = scaled_dot_product_attention(
        alone_q, alone_k, alone_v, mask=causal_mask(len(words)) if causal else None)
    change = (out[is_real] - alone).abs().max().item() if words else 0.0
    return PaddingDemo(tokens, mask.tolist(), unmasked.tolist(), weights.tolist(),
                       pad_weight.tolist(), changed.nonzero().flatten().tolist(), change)


# ------------------------------------------------------------------ many heads


@dataclass(frozen=True)
class ShapeWalk:
    steps: list[tuple[str, str, tuple[int, ...]]]  # (what happened, symbols, real shape)
    head_channels: list[tuple[int, int]]  # head h reads channels [start, stop) of q, k and v
    x: torch.Tensor  # (1, T, C) the input
    weights: torch.Tensor  # (nh, T, T) each head's causal weights
    y: torch.Tensor  # (1, T, C) the output, equal to MultiHeadAttention's


def shape_walk(n_embd: int, n_head: int, T: int, seed: int = 0) -> ShapeWalk:
    """MultiHeadAttention.forward one line at a time, recording each real tensor's shape.

    The layer is built under `torch.manual_seed(seed)` and x is drawn after it from the same
    stream, without touching the caller's random state.
    """
    config = GPTConfig(n_embd=n_embd, n_head=n_head, fast_attention=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layer = MultiHeadAttention(config).eval()
        x = torch.randn(1, T, n_embd)
    steps = [("the tokens' vectors", "x (B, T, C)", tuple(x.shape))]
    with torch.no_grad():
        qkv = layer.c_attn(x)  # (B, T, 3C)
        steps.append(("c_attn: q, k and v in one matmul", "(B, T, 3C)", tuple(qkv.shape)))
        q, k, v = qkv.split(n_embd, dim=2)  # (B, T, C) each
        steps.append(("split into q, k, v", "q (B, T, C)", tuple(q.shape)))
        q, k, v = (split_heads(t, n_head) for t in (q, k, v))  # (B, nh, T, hs)
        steps.append(("split_heads: each head its slice", "q (B, nh, T, hs)", tuple(q.shape)))
        out, weights = scaled_dot_product_attention(q, k, v, mask=causal_mask(T))
        steps.append(("softmax(q kᵀ / √hs) under the causal mask", "weights (B, nh, T, T)",
                      tuple(weights.shape)))
        steps.append(("weights @ v", "(B, nh, T, hs)", tuple(out.shape)))
        merged = merge_heads(out)  # (B, T, C)
        steps.append(("merge_heads: heads side by side again", "(B, T, C)", tuple(merged.shape)))
        y = layer.c_proj(merged)  # (B, T, C)
        steps.append(("c_proj: mix the heads", "y (B, T, C)", tuple(y.shape)))
    hs = n_embd // n_head
    return ShapeWalk(steps, [(h * hs, (h + 1) * hs) for h in range(n_head)], x, weights[0], y)


# ------------------------------------------------------------------ three masks, trained


class FixedMaskAttention(MultiHeadAttention):
    """GPT-2's attention under a mask of our choosing: `make_mask(T)` -> (T, T), True = may
    attend. Only for the experiment below: no padding, no KV cache (generate with
    use_cache=False, so each step reads the whole window, as in training)."""

    def __init__(self, config: GPTConfig, make_mask):
        super().__init__(config)
        self.make_mask = make_mask

    def forward(self, x, attention_mask=None, past_kv=None, return_weights=False):
        if attention_mask is not None or past_kv is not None:
            raise ValueError("FixedMaskAttention takes no padding and no KV cache.")
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # each (B, T, C)
        q, k, v = (split_heads(t, self.n_head) for t in (q, k, v))  # (B, nh, T, hs)
        y, weights = scaled_dot_product_attention(q, k, v, mask=self.make_mask(T).to(x.device))
        return self.c_proj(merge_heads(y)), weights, (k, v)  # (B, T, C)


def gpt_with_mask(config: GPTConfig, mask: str) -> GPT:
    """gptcore's GPT with every attention layer under MASKS[mask]; same initial weights as
    GPT(config) from the same random state."""
    model = GPT(config)
    for block in model.transformer.h:
        attn = FixedMaskAttention(config, MASKS[mask])
        attn.load_state_dict(block.attn.state_dict())
        block.attn = attn
    return model


@torch.no_grad()
def generation_loss(model, ids: torch.Tensor, block_size: int) -> float:
    """Mean cross-entropy when each token is predicted from the tokens BEFORE it only: the
    prefix is fed alone and its last position read, exactly as when generating, so nothing
    later can be read. Same windows and targets as `evaluate` (non-overlapping, shifted by
    one): for a causal model the two losses are equal."""
    ds = SlidingWindowDataset(ids, block_size, stride=block_size)
    if len(ds) == 0:
        raise ValueError(f"Need more than {block_size} tokens, got {len(ids)}.")
    x = torch.stack([ds[i][0] for i in range(len(ds))])  # (n, bs)
    y = torch.stack([ds[i][1] for i in range(len(ds))])  # (n, bs)
    total = 0.0
    for t in range(block_size):
        logits, _ = model(x[:, :t + 1])  # (n, t + 1, vocab): the prefix, nothing after it
        total += F.cross_entropy(logits[:, -1], y[:, t], reduction="sum").item()
    return total / y.numel()


@dataclass(frozen=True)
class MaskRun:
    mask: str  # "causal", "none" or "reversed"
    val_loss: float  # every position at once, as in training: a position may read ahead
    generation_loss: float  # each token from the tokens before it only, as in generation
    sample: str  # 120 characters generated after a newline, one at a time


def mask_experiment(text: str, seed: int = 0, masks=("causal", "none", "reversed"),
                    steps: int = 300, block_size: int = 8, n_layer: int = 1,
                    max_chars: int = 200_000, eval_tokens: int = 8192) -> list[MaskRun]:
    """Train one tiny character model per mask (same data, same initial weights, same
    batches), then measure both losses on the same validation tokens and sample each.

    A model that may read ahead learns to copy the next token, the very one it must
    predict: its val_loss drops far below the causal model's. Generating, there is nothing
    ahead to copy, and its generation_loss shows it. A short context (8) makes the copy
    quick to learn: the cheat shows in a few hundred steps.
    """
    tokenizer, train_ids, val_ids = prepare_data(text[:max_chars], "char", 0, 0.1)
    val_ids = val_ids[:eval_tokens]
    if len(val_ids) <= 4 * block_size:
        raise ValueError("The corpus is too short for this experiment: it needs a few "
                         "hundred characters.")
    config = GPTConfig(vocab_size=tokenizer.vocab_size, block_size=block_size,
                       n_layer=n_layer, n_head=4, n_embd=64)
    start = torch.tensor([tokenizer.encode("\n")[:1] or [0]])  # (1, 1)
    runs, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)  # matmuls this small only wait on each other across threads
    try:
        for mask in masks:
            runs.append(_train_with_mask(config, mask, train_ids, val_ids, tokenizer, start,
                                         steps, seed))
    finally:
        torch.set_num_threads(threads)
    return runs


def _train_with_mask(config, mask, train_ids, val_ids, tokenizer, start, steps, seed) -> MaskRun:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = gpt_with_mask(config, mask)
    cfg = TrainConfig(batch_size=32, max_iters=steps, lr=1e-2, min_lr=1e-3, warmup_iters=10,
                      eval_interval=steps, eval_train_tokens=len(val_ids), seed=seed,
                      sample_tokens=0, device="cpu")  # one evaluation at the start, one at the end
    history = Trainer(model, train_ids, val_ids, cfg, tokenizer).run().history
    model.eval()
    out = generate(model, start, 120, temperature=0.8, use_cache=False,
                   generator=torch.Generator().manual_seed(seed))
    return MaskRun(mask, history[-1]["val_loss"],
                   generation_loss(model, val_ids, config.block_size),
                   tokenizer.decode(out[0, 1:].tolist()))


# ------------------------------------------------------------------ a real model's maps

DISPLAY_CAP = 48  # tokens: beyond this a heatmap's labels no longer fit on screen


@dataclass(frozen=True)
class RealMaps:
    ids: list[int]  # the tokens drawn: the text's first min(context, cap), or one start token
    tokens: list[str]  # their text
    n_text_tokens: int  # tokens in the whole text (0: it was empty)
    context: int  # the model's context
    cap: int  # the display cap
    maps: list[torch.Tensor]  # per layer, (n_head, T, T)

    @property
    def limit(self) -> int:
        return min(self.context, self.cap)

    @property
    def cut(self) -> bool:
        """True when part of the text is not drawn."""
        return self.n_text_tokens > len(self.ids)

    @property
    def n_layer(self) -> int:
        return len(self.maps)

    @property
    def n_head(self) -> int:
        return self.maps[0].size(0)

    def head(self, layer: int, head: int) -> list[list[float]]:
        return self.maps[layer][head].tolist()


def real_attention_maps(model, tokenizer, text: str, cap: int = DISPLAY_CAP) -> RealMaps:
    """Every layer's attention weights for `text`, cut at min(the model's context, cap): a
    model cannot read past its context (a 32-token model fails on token 33), and a heatmap
    stops being readable past `cap`. An empty text draws one newline token."""
    ids = tokenizer.encode(text)
    context = context_size(model)
    shown = ids[:min(context, cap)] or tokenizer.encode("\n")[:1] or [0]
    maps = attention_maps(model, torch.tensor([shown]))
    return RealMaps(shown, [tokenizer.token_text(i) for i in shown], len(ids), context, cap, maps)


@torch.no_grad()
def queries_and_keys(model, ids: list[int], layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The queries and keys (n_head, T, hs) one layer of a real model computes for `ids`
    (gptcore's GPT or `transformers`' GPT-2): what its attention maps are made from. With
    them, any scaled_dot_product_attention (a learner's too) redraws that layer's maps."""
    idx = torch.tensor([ids])
    if isinstance(model, GPT):
        x = model.inspect(idx)["hidden"][layer]  # the block's input (B, T, C)
        block = model.transformer.h[layer]
        x = block.ln_1(x) if block.pre_ln else x
        n_head = model.config.n_head
    else:
        x = model(idx, output_hidden_states=True).hidden_states[layer]
        block = model.transformer.h[layer]
        x, n_head = block.ln_1(x), model.config.n_head
    q, k, _ = block.attn.c_attn(x).split(x.size(-1), dim=2)  # (1, T, C) each
    return split_heads(q, n_head)[0], split_heads(k, n_head)[0]  # (nh, T, hs)
