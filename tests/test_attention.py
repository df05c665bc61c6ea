import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gptcore import attention_lab as lab
from gptcore.config import GPTConfig
from gptcore.attention import (MultiHeadAttention, causal_mask, padding_mask,
                               scaled_dot_product_attention)
from gptcore.model import GPT, attention_maps
from gptcore.tokenizers import CharTokenizer, TiktokenTokenizer
from gptcore.trainer import evaluate
from tests.conftest import make_tiny_gpt2


@pytest.fixture
def qkv():
    g = torch.Generator().manual_seed(0)
    return [torch.randn(2, 3, 7, 8, generator=g) for _ in range(3)]


def test_scaled_equals_torch_sdpa(qkv):
    q, k, v = qkv
    out, w = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 7))


def test_unscaled_equals_torch_sdpa_with_scale_one(qkv):
    q, k, v = qkv
    out, _ = scaled_dot_product_attention(q, k, v, scale=False)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=1.0))


def test_causal_mask_equals_is_causal_and_zeros_the_future(qkv):
    q, k, v = qkv
    out, w = scaled_dot_product_attention(q, k, v, mask=causal_mask(7))
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True))
    assert torch.all(w.triu(1) == 0)  # exact zeros above the diagonal
    assert w[..., 0, 0].eq(1).all()  # the first token can only look at itself


def test_padding_mask_equals_torch_and_ignores_pads(qkv):
    q, k, v = qkv
    lengths = torch.tensor([7, 4])
    am = (torch.arange(7)[None, :] < lengths[:, None]).long()
    mask = padding_mask(am) & causal_mask(7)
    out, w = scaled_dot_product_attention(q, k, v, mask=mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, ref)
    assert torch.all(w[1, :, :, 4:] == 0)
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 3, 7))


@pytest.mark.parametrize("n_head", [1, 2, 4])
def test_multihead_equals_nn_multiheadattention(n_head):
    torch.manual_seed(n_head)
    C, T = 16, 5
    ours = MultiHeadAttention(GPTConfig(n_embd=C, n_head=n_head, fast_attention=False)).eval()
    ref = nn.MultiheadAttention(C, n_head, batch_first=True).eval()
    with torch.no_grad():
        ref.in_proj_weight.copy_(ours.c_attn.weight)  # both store q, k, v stacked as (3C, C)
        ref.in_proj_bias.copy_(torch.randn(3 * C))
        ours.c_attn.bias.copy_(ref.in_proj_bias)
        ref.out_proj.weight.copy_(ours.c_proj.weight)
        ref.out_proj.bias.copy_(torch.randn(C))
        ours.c_proj.bias.copy_(ref.out_proj.bias)
    x = torch.randn(3, T, C)
    y, w, _ = ours(x, return_weights=True)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # PyTorch's mask means "blocked"
    y_ref, w_ref = ref(x, x, x, attn_mask=future, average_attn_weights=False)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, w_ref, atol=1e-5, rtol=1e-5)
    assert w.shape == (3, n_head, T, T)


def test_fast_path_equals_explicit_path():
    torch.manual_seed(0)
    explicit = MultiHeadAttention(GPTConfig(n_embd=24, n_head=3, fast_attention=False)).eval()
    fast = MultiHeadAttention(GPTConfig(n_embd=24, n_head=3, fast_attention=True)).eval()
    fast.load_state_dict(explicit.state_dict())
    x = torch.randn(2, 9, 24)
    torch.testing.assert_close(fast(x)[0], explicit(x)[0], atol=1e-5, rtol=1e-5)


def test_future_tokens_do_not_change_the_past():
    torch.manual_seed(0)
    attn = MultiHeadAttention(GPTConfig(n_embd=16, n_head=4)).eval()
    x = torch.randn(1, 8, 16)
    x2 = x.clone()
    x2[:, 5:] = torch.randn(1, 3, 16)
    torch.testing.assert_close(attn(x)[0][:, :5], attn(x2)[0][:, :5])
    attn.causal = False  # without the mask, the past sees the future
    assert not torch.allclose(attn(x)[0][:, :5], attn(x2)[0][:, :5])


def test_one_token_and_kv_cache():
    torch.manual_seed(0)
    attn = MultiHeadAttention(GPTConfig(n_embd=8, n_head=2)).eval()
    x = torch.randn(1, 6, 8)
    full, _, _ = attn(x)
    y1, _, past = attn(x[:, :5])
    y2, _, _ = attn(x[:, 5:], past_kv=past)
    torch.testing.assert_close(torch.cat([y1, y2], 1), full, atol=1e-6, rtol=1e-5)
    one, w, _ = attn(x[:, :1], return_weights=True)
    assert w.shape == (1, 2, 1, 1) and torch.all(w == 1)


def test_width_must_divide_heads():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(GPTConfig(n_embd=10, n_head=3))


# ----------------------------------------------------------------------------- attention_lab
# The lesson 3 demos, each against PyTorch, transformers, the tutorial's numbers or a loop.

TUTORIAL = [[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
            [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]]


def test_toy_attention_gives_the_tutorials_numbers():
    toy = lab.toy_attention(TUTORIAL, 1)  # "journey", unscaled, as in the tutorial
    assert toy.scores == pytest.approx([0.9544, 1.4950, 1.4754, 0.8434, 0.7070, 1.0865], abs=1e-4)
    assert toy.weights == pytest.approx([0.1385, 0.2379, 0.2333, 0.1240, 0.1082, 0.1581], abs=1e-4)
    assert toy.context == pytest.approx([0.4419, 0.6515, 0.5683], abs=1e-4)


@pytest.mark.parametrize("scale", [False, True])
@pytest.mark.parametrize("query", [0, 5])
def test_toy_attention_equals_torch_sdpa(scale, query):
    x = torch.tensor(TUTORIAL, dtype=torch.float64)
    ref = F.scaled_dot_product_attention(x[query:query + 1], x, x, scale=None if scale else 1.0)
    toy = lab.toy_attention(TUTORIAL, query, scale)
    assert toy.context == pytest.approx(ref[0].tolist(), abs=1e-12)
    by_hand = [math.exp(s / (math.sqrt(3) if scale else 1)) for s in toy.scores]
    assert toy.weights == pytest.approx([e / sum(by_hand) for e in by_hand], abs=1e-12)


def test_toy_attention_refuses_overflow_and_a_missing_query():
    with pytest.raises(ValueError, match="too large"):
        lab.toy_attention([[1e200, 0.0], [1.0, 1.0]], 0)
    with pytest.raises(ValueError, match="one of the 2"):
        lab.toy_attention([[1.0], [2.0]], 2)
    saturated = lab.toy_attention([[1e100, 0.0], [0.0, 1.0]], 0)
    assert saturated.weights == [1.0, 0.0]  # huge but finite: the softmax copes


@pytest.mark.parametrize("d_k", [2, 64, 512])
@pytest.mark.parametrize("scale", [True, False])
def test_softmax_saturation_equals_a_brute_force_count(d_k, scale):
    s = lab.softmax_saturation(d_k, scale, n_keys=8, n_samples=16, seed=3)
    g = torch.Generator().manual_seed(3)  # the documented draw: q, then k
    q, k = torch.randn(16, 8, d_k, generator=g), torch.randn(16, 8, d_k, generator=g)
    biggest, entropies, spread = [], [], []
    for n in range(16):
        for i in range(8):
            scores = [float(q[n, i] @ k[n, j]) / (math.sqrt(d_k) if scale else 1) for j in range(8)]
            top = max(scores)
            e = [math.exp(v - top) for v in scores]
            w = [v / sum(e) for v in e]
            biggest.append(max(w))
            entropies.append(-sum(p * math.log(p) for p in w if p > 0))
            spread += scores
    assert s.largest_weight == pytest.approx(sum(biggest) / len(biggest), rel=1e-4)
    assert s.entropy == pytest.approx(sum(entropies) / len(entropies), rel=1e-4, abs=1e-6)
    assert s.score_std == pytest.approx(torch.tensor(spread).std().item(), rel=1e-4)
    assert len(s.example) == 8 and sum(s.example[0]) == pytest.approx(1.0)


def test_softmax_saturates_without_the_scale_only():
    unscaled = [lab.softmax_saturation(d, False) for d in (2, 512)]
    scaled = [lab.softmax_saturation(d, True) for d in (2, 512)]
    assert unscaled[1].score_std == pytest.approx(math.sqrt(512), rel=0.1)
    assert unscaled[1].largest_weight > 0.95 and unscaled[1].entropy < 0.15
    assert all(s.score_std == pytest.approx(1.0, rel=0.15) for s in scaled)
    assert abs(scaled[0].largest_weight - scaled[1].largest_weight) < 0.05


def test_the_reversed_mask_is_the_future_and_right_only_as_a_blocked_mask(qkv):
    q, k, v = qkv
    T = q.size(-2)
    assert torch.equal(lab.reversed_causal_mask(T), ~causal_mask(T))
    # where True means "blocked" (masked_fill(mask, -inf)) triu(1) is the causal mask
    scores = q @ k.transpose(-2, -1) / math.sqrt(8)
    blocked = scores.masked_fill(lab.reversed_causal_mask(T), float("-inf"))
    torch.testing.assert_close(torch.softmax(blocked, -1) @ v,
                               F.scaled_dot_product_attention(q, k, v, is_causal=True))
    # read as "may attend", every row but the last looks only ahead
    out, w = scaled_dot_product_attention(q, k, v, mask=lab.reversed_causal_mask(T))
    assert torch.all(w.tril() == 0) and torch.all(w[..., -1, :] == 0)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(
        q, k, v, attn_mask=lab.reversed_causal_mask(T)))


@pytest.mark.parametrize("mask", ["causal", "none", "reversed"])
def test_mask_weights_against_torch_and_brute_force(mask):
    m = lab.mask_weights(mask, 6, seed=4)
    q, k, v = lab.toy_qkv([True] * 6, seed=4)
    ref = F.scaled_dot_product_attention(q[None], k[None], v[None], attn_mask=lab.MASKS[mask](6))
    torch.testing.assert_close(torch.tensor(m.weights) @ v, ref[0])
    assert m.mask == lab.MASKS[mask](6).tolist()
    future = sum(sum(row[i + 1:]) for i, row in enumerate(m.weights)) / 6
    assert m.future_weight == pytest.approx(future)
    if mask == "causal":
        assert future == 0
    if mask == "reversed":  # rows 0..4 look only ahead, row 5 has nowhere to look
        assert future == pytest.approx(5 / 6)
    assert m.empty_rows == {"causal": [], "none": [], "reversed": [5]}[mask]


def test_toy_vectors_do_not_depend_on_padding():
    q_alone, _, _ = lab.toy_qkv([True] * 4, seed=1)
    q_left, _, _ = lab.toy_qkv([False, False] + [True] * 4, seed=1)
    q_right, _, _ = lab.toy_qkv([True] * 4 + [False], seed=1)
    torch.testing.assert_close(q_left[2:], q_alone)
    torch.testing.assert_close(q_right[:4], q_alone)
    torch.testing.assert_close(q_left[0], q_right[4])  # every pad is the same token


WORDS = ["Your", "journey", "starts", "with", "one", "step"]


@pytest.mark.parametrize("pad_left", [False, True])
@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("padding", [True, False])
def test_padding_demo_against_brute_force(pad_left, causal, padding):
    n_pad, n = 3, len(WORDS)
    d = lab.padding_demo(WORDS, n_pad, pad_left=pad_left, causal=causal, padding=padding, seed=2)
    T = n + n_pad
    real = [i >= n_pad for i in range(T)] if pad_left else [i < n for i in range(T)]
    assert d.tokens == (["<pad>"] * n_pad + WORDS if pad_left else WORDS + ["<pad>"] * n_pad)

    def allowed(i, j, use_padding):
        return (j <= i or not causal) and (real[j] or not use_padding)

    q, k, v = lab.toy_qkv(real, seed=2)
    mask = torch.tensor([[allowed(i, j, padding) for j in range(T)] for i in range(T)])
    assert d.mask == mask.tolist()
    ref = F.scaled_dot_product_attention(q[None], k[None], v[None], attn_mask=mask)[0]
    torch.testing.assert_close(torch.tensor(d.weights) @ v, ref)
    pad_weight = [sum(d.weights[i][j] for j in range(T) if not real[j])
                  for i in range(T) if real[i]]
    assert d.pad_weight == pytest.approx(pad_weight)
    # the rows the padding mask changes, found by comparing weights with and without it
    on = lab.padding_demo(WORDS, n_pad, pad_left=pad_left, causal=causal, padding=True, seed=2)
    off = lab.padding_demo(WORDS, n_pad, pad_left=pad_left, causal=causal, padding=False, seed=2)
    assert d.changed_rows == [i for i in range(T) if on.weights[i] != off.weights[i]]
    leaks = not padding and (pad_left or not causal)
    assert (d.real_rows_on_pads > 0) == leaks
    assert (d.output_change > 1e-3) == leaks and (leaks or d.output_change < 1e-6)
    if causal and not pad_left:  # right padding under the causal mask: only the pads' rows
        assert d.changed_rows == list(range(n, T))


def test_padding_demo_left_pads_see_nothing_and_no_pads_change_nothing():
    d = lab.padding_demo(WORDS, 2, pad_left=True, causal=True, padding=True)
    assert d.weights[0] == [0.0] * 8 and d.weights[1] == [0.0] * 8  # pads' rows are empty
    bare = lab.padding_demo(WORDS, 0)
    assert bare.changed_rows == [] and bare.pad_weight == [0.0] * 6 and bare.output_change < 1e-6


@pytest.mark.parametrize("n_head", [1, 4, 24])
def test_shape_walk_is_multihead_attention_step_by_step(n_head):
    walk = lab.shape_walk(24, n_head, 6, seed=5)
    hs = 24 // n_head
    assert [shape for _, _, shape in walk.steps] == [
        (1, 6, 24), (1, 6, 72), (1, 6, 24), (1, n_head, 6, hs), (1, n_head, 6, 6),
        (1, n_head, 6, hs), (1, 6, 24), (1, 6, 24)]
    torch.manual_seed(5)
    layer = MultiHeadAttention(GPTConfig(n_embd=24, n_head=n_head, fast_attention=False)).eval()
    torch.testing.assert_close(walk.x, torch.randn(1, 6, 24))
    with torch.no_grad():
        y, w, _ = layer(walk.x, return_weights=True)
    torch.testing.assert_close(walk.y, y)
    torch.testing.assert_close(walk.weights, w[0])
    # each head computes from its own slice of the channels only
    with torch.no_grad():
        q, k, _ = layer.c_attn(walk.x).split(24, dim=2)
    for h, (start, stop) in enumerate(walk.head_channels):
        assert stop - start == hs
        scores = q[0, :, start:stop] @ k[0, :, start:stop].T / math.sqrt(hs)
        ref = torch.softmax(scores.masked_fill(~causal_mask(6), float("-inf")), -1)
        torch.testing.assert_close(walk.weights[h], ref)


def test_shape_walk_leaves_the_global_random_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    lab.shape_walk(24, 4, 6, seed=9)
    torch.testing.assert_close(torch.rand(3), expected)


TINY = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16)


@pytest.mark.parametrize("mask,causal", [("causal", True), ("none", False)])
def test_gpt_with_mask_equals_the_books_gpt(mask, causal):
    torch.manual_seed(0)
    ours = lab.gpt_with_mask(TINY, mask).eval()
    torch.manual_seed(0)
    book = GPT(GPTConfig(**{**TINY.to_dict(), "causal": causal})).eval()
    idx = torch.randint(0, 11, (3, 8))
    torch.testing.assert_close(ours(idx)[0], book(idx)[0], atol=1e-5, rtol=1e-5)


def test_a_reversed_mask_model_reads_only_the_future():
    torch.manual_seed(0)
    model = lab.gpt_with_mask(TINY, "reversed").eval()
    idx = torch.randint(0, 11, (1, 8))
    changed = idx.clone()
    changed[0, 5] = (idx[0, 5] + 1) % 11
    a, b = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(a[:, 6:], b[:, 6:])  # after the change: untouched
    assert not torch.allclose(a[:, :5], b[:, :5])  # before it: they read token 5
    with pytest.raises(ValueError, match="no KV cache"):
        model.transformer.h[0].attn(torch.randn(1, 2, 16), past_kv=(torch.zeros(1), torch.zeros(1)))


@pytest.mark.parametrize("mask", ["causal", "none", "reversed"])
def test_generation_loss_against_a_loop_and_evaluate(mask):
    torch.manual_seed(1)
    model = lab.gpt_with_mask(TINY, mask).eval()
    ids = torch.randint(0, 11, (8 * 7 + 3,))
    losses = []
    with torch.no_grad():
        for start in range(0, len(ids) - 8, 8):  # the windows of evaluate: non-overlapping
            for t in range(8):
                logits, _ = model(ids[None, start:start + t + 1])
                target = ids[start + t + 1:start + t + 2]
                losses.append(F.cross_entropy(logits[0, -1:], target).item())
    got = lab.generation_loss(model, ids, 8)
    assert got == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    if mask == "causal":  # nothing to read ahead: teacher forcing is generation
        assert got == pytest.approx(evaluate(model, ids, 8), rel=1e-5)
    else:
        assert abs(got - evaluate(model, ids, 8)) > 1e-3


def test_mask_experiment_shows_the_cheat_and_restores_threads():
    from pydoc_data.topics import topics

    text = "".join(topics.values())[:60_000]
    threads = torch.get_num_threads()
    runs = {r.mask: r for r in lab.mask_experiment(text, seed=0, steps=150)}
    assert torch.get_num_threads() == threads
    causal = runs["causal"]
    assert causal.generation_loss == pytest.approx(causal.val_loss, abs=1e-3)
    for cheat in (runs["none"], runs["reversed"]):
        assert cheat.val_loss < causal.val_loss - 0.5  # reads the answer
        assert cheat.generation_loss > causal.generation_loss + 0.2  # cannot write
    assert all(len(r.sample) == 120 for r in runs.values())
    with pytest.raises(ValueError, match="too short"):
        lab.mask_experiment("abc" * 30, steps=2)


def test_real_maps_cut_at_the_models_context():
    torch.manual_seed(0)
    text = "The cat sat on the mat because it was tired."  # 44 characters
    tok = CharTokenizer.from_text(text)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2,
                          n_embd=16)).eval()
    real = lab.real_attention_maps(model, tok, text)
    assert (real.n_text_tokens, len(real.ids), real.limit, real.context) == (44, 32, 32, 32)
    assert real.cut and not lab.real_attention_maps(model, tok, text[:32]).cut
    assert real.ids == tok.encode(text)[:32] and "".join(real.tokens) == text[:32]
    ref = attention_maps(model, torch.tensor([tok.encode(text)[:32]]))
    assert (real.n_layer, real.n_head) == (2, 2)
    assert real.head(1, 1) == ref[1][1].tolist()
    empty = lab.real_attention_maps(model, tok, "")
    assert (empty.n_text_tokens, len(empty.ids), empty.head(0, 0)) == (0, 1, [[1.0]])


def test_real_maps_of_gpt2_equal_transformers_eager_attention():
    hf = make_tiny_gpt2(perturb=0.02, n_positions=64)
    hf.set_attn_implementation("eager")
    tok = TiktokenTokenizer()
    text = " the" * 60  # 60 tokens: cut at the display cap, 48 < the context of 64
    real = lab.real_attention_maps(hf, tok, text)
    assert (real.n_text_tokens, len(real.ids), real.limit) == (60, 48, 48)
    with torch.no_grad():
        ref = hf(torch.tensor([real.ids]), output_attentions=True).attentions
    for layer in range(2):
        torch.testing.assert_close(real.maps[layer], ref[layer][0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["gptcore", "transformers"])
def test_queries_and_keys_redraw_the_real_attention_maps(kind):
    """softmax(q kᵀ / √hs) under the causal mask, from the queries and keys of one layer,
    is exactly that layer's map: what 'use my version' draws with a learner's attention."""
    from gptcore.attention_lab import queries_and_keys
    from gptcore.model import GPT, attention_maps
    from tests.conftest import make_tiny_gpt2

    hf = make_tiny_gpt2(seed=2, perturb=0.05, vocab_size=97, n_positions=32)
    model = GPT.from_hf(hf) if kind == "gptcore" else hf
    ids = [5, 17, 3, 3, 90, 41, 8]
    maps = attention_maps(model, torch.tensor([ids]))
    for layer in range(len(maps)):
        q, k = queries_and_keys(model, ids, layer)
        assert q.shape == k.shape == (2, len(ids), 16)
        _, weights = scaled_dot_product_attention(q, k, k, mask=causal_mask(len(ids)))
        assert torch.allclose(weights, maps[layer], atol=1e-6)
