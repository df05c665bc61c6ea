import pytest
import torch
import torch.nn.functional as F

from gptcore.budget import flops_per_token, memory_bytes, num_params, param_breakdown
from gptcore.model import GPT, GPTConfig
from tests.conftest import make_tiny_gpt2

CONFIGS = [
    dict(n_layer=1, n_head=1, n_embd=8, n_positions=16, vocab_size=11),
    dict(n_layer=3, n_head=3, n_embd=27, n_positions=33, vocab_size=97),
    dict(n_layer=2, n_head=4, n_embd=64, n_positions=64, vocab_size=50257),
]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_logits_equal_gpt2lmheadmodel(cfg):
    hf = make_tiny_gpt2(seed=1, perturb=0.05, **cfg)
    ours = GPT.from_hf(hf)
    idx = torch.randint(0, cfg["vocab_size"], (2, cfg["n_positions"]))
    with torch.no_grad():
        ref = hf(idx).logits
        logits, _ = ours(idx)
    assert (logits - ref).abs().max() < 1e-4


def test_from_saved_folder_and_round_trip(tiny_gpt2_dir):
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(tiny_gpt2_dir).eval()
    ours = GPT.from_hf(str(tiny_gpt2_dir))
    back = ours.to_hf()
    idx = torch.randint(0, 50257, (1, 20))
    with torch.no_grad():
        assert (ours(idx)[0] - hf(idx).logits).abs().max() < 1e-4
        assert torch.equal(back(idx).logits, hf(idx).logits)
    for name, p in hf.state_dict().items():
        if not name.endswith(".attn.bias"):
            assert torch.equal(back.state_dict()[name], p), name


def test_untied_biasless_model_round_trips():
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=50, block_size=12, n_layer=2, n_head=2, n_embd=16,
                         bias=False, tie_weights=False)).eval()
    idx = torch.randint(0, 50, (2, 12))
    with torch.no_grad():
        assert (ours.to_hf()(idx).logits - ours(idx)[0]).abs().max() < 1e-5


@pytest.mark.parametrize("kw", [
    {}, dict(bias=False), dict(tie_weights=False), dict(n_layer=1, n_head=1, n_embd=4, vocab_size=3),
    dict(n_layer=6, n_head=8, n_embd=256, block_size=128, tie_weights=False),
    dict(n_layer=5, n_head=3, n_embd=33, block_size=7, vocab_size=65, bias=False),
])
def test_parameter_formula_equals_numel(kw):
    config = GPTConfig(**kw)
    model = GPT(config)
    assert num_params(config) == sum(p.numel() for p in model.parameters())
    assert sum(param_breakdown(config).values()) == model.num_params()
    assert memory_bytes(config)["total"] == 16 * model.num_params()
    assert flops_per_token(config)["train"] == 3 * flops_per_token(config)["forward"]


def test_tutorial_config_size():
    # The tutorial's model: 6 layers, 8 heads, 256 wide, context 128, GPT-2 vocab, untied.
    c = GPTConfig(n_layer=6, n_head=8, n_embd=256, block_size=128, tie_weights=False)
    assert num_params(c) == 30_503_424  # 2·V·C + T·C + L·(12C² + 13C) + 2C


@pytest.mark.parametrize("kw", [dict(), dict(pre_ln=False), dict(activation="relu")])
def test_causal_last_token_change_leaves_earlier_logits(kw):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=40, block_size=10, n_layer=2, n_head=2, n_embd=16, **kw)).eval()
    idx = torch.randint(0, 40, (1, 10))
    idx2 = idx.clone()
    idx2[0, -1] = (idx[0, -1] + 1) % 40
    a, b = model(idx)[0], model(idx2)[0]
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])


def test_loss_is_mean_cross_entropy_and_ignores_padding():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=1, n_head=2, n_embd=8))
    idx = torch.randint(0, 30, (3, 8))
    targets = torch.randint(0, 30, (3, 8))
    logits, loss = model(idx, targets)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, 30), targets.reshape(-1)))
    targets[:, 5:] = -100
    _, loss = model(idx, targets)
    ref = F.cross_entropy(logits[:, :5].reshape(-1, 30), targets[:, :5].reshape(-1))
    torch.testing.assert_close(loss, ref)


def test_invalid_config_is_explained():
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=100, n_head=3)
    with pytest.raises(ValueError, match="activation"):
        GPTConfig(activation="swish")


def test_inspect_and_explicit_attention_match_forward():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, block_size=8, n_layer=2, n_head=2, n_embd=8)).eval()
    idx = torch.randint(0, 30, (1, 8))
    out = model.inspect(idx)
    torch.testing.assert_close(out["logits"], model(idx)[0], atol=1e-5, rtol=1e-5)
    assert len(out["hidden"]) == 3 and out["attention"][1].shape == (1, 2, 8, 8)


def test_context_overflow_is_explained():
    model = GPT(GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=4))
    with pytest.raises(ValueError, match="exceed the context"):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_forward_accepts_targets_that_are_a_slice():
    """targets = idx[:, 1:] is not contiguous: the loss must still be computed (not raise)."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8))
    idx = torch.randint(0, 11, (3, 9))
    logits, loss = model(idx[:, :-1], idx[:, 1:])
    expected = F.cross_entropy(logits.reshape(-1, 11), idx[:, 1:].reshape(-1))
    assert torch.allclose(loss, expected)


def test_one_translation_of_a_gpt2_config():
    """from_hf and config_of read a GPT-2 config the same way, and refuse what gptcore lacks."""
    from gptcore.hf import config_from_hf, config_of

    hf = make_tiny_gpt2(n_layer=1, vocab_size=50)
    assert config_of(hf) == GPT.from_hf(hf).config == config_from_hf(hf.config)
    hf.config.activation_function = "silu"
    with pytest.raises(ValueError, match="silu"):
        config_of(hf)
    with pytest.raises(ValueError, match="silu"):
        GPT.from_hf(hf)
