import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from gptcore.config import GPTConfig
from gptcore.attention import (MultiHeadAttention, causal_mask, padding_mask,
                               scaled_dot_product_attention)


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
