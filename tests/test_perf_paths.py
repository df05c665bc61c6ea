"""The fast paths of issue #17 against what they replace: lesson 1's random GPT-2, a gptcore
GPT built on the meta device, against transformers' GPT-2 and its own initialisation; and
the activation each preset uses."""
import math

import pytest
import torch

from classroom import hub
from gptcore.hf import to_hf
from gptcore.model import GPT
from gptcore.presets import PRESETS

SMALL = dict(n_layer=3, n_embd=64, n_head=4, n_positions=128, vocab_size=3000)


def expected_std(name: str, n_layer: int) -> float | None:
    """GPT-2's initialisation by parameter name; None for the constant ones."""
    if name.endswith("c_proj.weight"):
        return 0.02 / math.sqrt(2 * n_layer)
    if name.endswith(("wte.weight", "wpe.weight", "c_attn.weight", "c_fc.weight")):
        return 0.02
    return None


def test_random_gpt2_is_gpt2_with_gpt2s_initialisation():
    """Lesson 1's random model is gptcore's GPT (no transformers import on the way to the
    page) that transformers' GPT-2 computes identically, with transformers' initialisation."""
    from transformers import GPT2Config, GPT2LMHeadModel

    model = hub.random_gpt2(seed=0, **SMALL)
    assert isinstance(model, GPT) and not model.training
    assert model.lm_head.weight is model.transformer.wte.weight
    assert not any(p.requires_grad for p in model.parameters())
    idx = torch.randint(0, SMALL["vocab_size"], (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        theirs_logits = to_hf(model)(idx).logits
        ours_logits, _ = model(idx)
    torch.testing.assert_close(ours_logits, theirs_logits, atol=1e-4, rtol=1e-4)
    torch.manual_seed(0)
    reference = GPT2LMHeadModel(GPT2Config(**SMALL))  # transformers' own init
    theirs = dict(reference.named_parameters())
    for name, p in model.named_parameters():
        conv1d = name.endswith(("c_attn.weight", "c_proj.weight", "c_fc.weight"))
        assert p.shape == (theirs[name].t() if conv1d else theirs[name]).shape, name
        std = expected_std(name, SMALL["n_layer"])
        if std is None:  # biases 0, LayerNorm weights 1, exactly as transformers sets them
            assert torch.equal(p, theirs[name]), name
        else:  # normal with the same spread: within 5% of GPT-2's std and of transformers'
            assert abs(p.mean().item()) < 3 * std / math.sqrt(p.numel()) + 1e-6, name
            assert abs(p.std().item() / std - 1) < 0.05, name
            assert abs(p.std().item() / theirs[name].std().item() - 1) < 0.05, name
            excess_kurtosis = ((p - p.mean()) ** 4).mean() / p.var() ** 2 - 3
            assert abs(excess_kurtosis) < 0.2, name  # a normal's tails, not a uniform's (-1.2)


def test_random_gpt2_depends_on_the_seed_alone():
    a, b, c = (hub.random_gpt2(seed=s, **SMALL) for s in (0, 0, 1))
    for (name, pa), pb, pc in zip(a.named_parameters(), b.parameters(), c.parameters()):
        assert torch.equal(pa, pb), name
        if expected_std(name, SMALL["n_layer"]) is not None:
            assert not torch.equal(pa, pc), name


def test_random_gpt2_runs_and_is_untrained():
    model = hub.random_gpt2(seed=0, **SMALL)
    idx = torch.randint(0, SMALL["vocab_size"], (2, 10))
    with torch.no_grad():
        logits, loss = model(idx[:, :-1], idx[:, 1:])  # each position predicts the next
    assert logits.shape == (2, 9, SMALL["vocab_size"])
    # random weights spread the bet almost evenly: the loss is about ln(vocab)
    assert abs(loss.item() - math.log(SMALL["vocab_size"])) < 0.1


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_presets_use_gpt2s_gelu_only_with_gpt2s_vocabulary(preset):
    """Presets with GPT-2's vocabulary (DistilGPT2, GPT-2 small, the tutorial's model) keep
    GPT-2's tanh GELU, so that GPT-2's weights port into them; the character-level models,
    trained from scratch, use the exact one, faster on a CPU (benchmarks.step_time)."""
    gpt2_vocabulary = preset.model.vocab_size == 50257
    assert preset.model.activation == ("gelu" if gpt2_vocabulary else "gelu_exact")
