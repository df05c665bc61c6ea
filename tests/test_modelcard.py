import pytest
import torch

from gptcore.config import GPTConfig
from gptcore.model import GPT
from gptcore.modelcard import MIB, model_card
from tests.conftest import make_tiny_gpt2


def test_card_of_a_transformers_gpt2_equals_its_own_count():
    hf = make_tiny_gpt2()
    card = model_card(hf)
    assert card.n_params == hf.num_parameters()  # transformers counts the tied head once
    assert card.n_bytes == 4 * hf.num_parameters() and card.dtypes == ("float32",)
    assert card.mib == card.n_bytes / 1_048_576 and MIB == 1_048_576
    assert card.breakdown_matches and card.config.n_layer == hf.config.n_layer
    half = model_card(make_tiny_gpt2().half())
    assert half.n_bytes == 2 * card.n_params and half.dtypes == ("float16",)


@pytest.mark.parametrize("bias,tie", [(True, True), (False, False)])
def test_card_of_a_gptcore_gpt(bias, tie):
    model = GPT(GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=16,
                          bias=bias, tie_weights=tie))
    unique = {p.data_ptr(): p for p in model.state_dict(keep_vars=True).values()
              if isinstance(p, torch.nn.Parameter)}
    card = model_card(model)
    assert card.n_params == sum(p.numel() for p in unique.values())
    assert card.breakdown_matches
    assert card.breakdown_total == sum(card.breakdown.values()) == card.n_params


def test_distilgpt2_sizes_in_bytes_and_mebibytes():
    """81,912,576 float32 parameters: 327,650,304 bytes, which is 312.5 MiB (327.7 MB)."""
    from gptcore.hf import config_from_hf
    from transformers import GPT2Config

    config = config_from_hf(GPT2Config(n_layer=6))
    model = GPT(config)
    card = model_card(model)
    assert card.n_params == 81_912_576 and card.n_bytes == 327_650_304
    assert f"{card.mib:.1f}" == "312.5"
