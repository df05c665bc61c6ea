import torch

from gptcore.generate import (apply_temperature, generate, next_token_distribution, top_k_filter,
                              top_p_filter)
from gptcore.model import GPT
from tests.conftest import make_tiny_gpt2


def tiny_model(seed=0):
    return GPT.from_hf(make_tiny_gpt2(seed=seed, perturb=0.05, vocab_size=97, n_positions=64))


def test_temperature_scales_logits():
    z = torch.tensor([1.0, 2.0, 4.0])
    torch.testing.assert_close(apply_temperature(z, 2.0), z / 2)
    hot = torch.softmax(apply_temperature(z, 5.0), -1)
    cold = torch.softmax(apply_temperature(z, 0.2), -1)
    assert hot.max() < torch.softmax(z, -1).max() < cold.max()


def test_top_k_and_top_p_filters():
    z = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    assert torch.isfinite(top_k_filter(z, 2)).tolist() == [True, True, False, False]
    assert torch.isfinite(top_p_filter(z, 0.6)).tolist() == [True, True, False, False]
    assert torch.isfinite(top_p_filter(z, 0.5)).tolist() == [True, False, False, False]
    assert torch.isfinite(top_p_filter(z, 1e-9)).tolist() == [True, False, False, False]
    shuffled = z[[2, 0, 3, 1]]
    assert torch.isfinite(top_p_filter(shuffled, 0.6)).tolist() == [False, True, False, True]
    d = next_token_distribution(z, temperature=1.0, top_k=3)
    torch.testing.assert_close(d["final"][:3].sum(), torch.tensor(1.0))
    torch.testing.assert_close(d["final"][0], torch.tensor(0.5 / 0.95))


def test_top_k_1_and_tiny_top_p_are_greedy():
    model = tiny_model()
    idx = torch.randint(0, 97, (2, 4), generator=torch.Generator().manual_seed(0))
    greedy = generate(model, idx, 20, temperature=0)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(generate(model, idx, 20, temperature=1.5, top_k=1, generator=g), greedy)
    assert torch.equal(generate(model, idx, 20, temperature=1.5, top_p=1e-6, generator=g), greedy)


def test_fixed_generator_reproduces_samples_and_stays_in_top_k():
    model = tiny_model()
    idx = torch.zeros(1, 1, dtype=torch.long)
    a = generate(model, idx, 30, top_k=5, generator=torch.Generator().manual_seed(42))
    b = generate(model, idx, 30, top_k=5, generator=torch.Generator().manual_seed(42))
    c = generate(model, idx, 30, top_k=5, generator=torch.Generator().manual_seed(43))
    assert torch.equal(a, b) and not torch.equal(a, c)
    for t in range(1, a.size(1)):  # every sampled token was among the top 5 at its step
        logits, _ = model(a[:, :t])
        assert a[0, t] in torch.topk(logits[0, -1], 5).indices


def test_greedy_equals_transformers_generate(tiny_gpt2_dir):
    from transformers import GPT2LMHeadModel

    hf = GPT2LMHeadModel.from_pretrained(tiny_gpt2_dir).eval()
    ours = GPT.from_hf(tiny_gpt2_dir)
    idx = torch.tensor([[15496, 11, 616, 1438, 318]])  # "Hello, my name is"
    ref = hf.generate(idx, max_new_tokens=40, do_sample=False, pad_token_id=0, eos_token_id=None)
    assert torch.equal(generate(ours, idx, 40, temperature=0), ref)
    assert torch.equal(generate(hf, idx, 40, temperature=0), ref)  # transformers models too


def test_kv_cache_equals_recompute_beyond_the_context():
    model = tiny_model(seed=2)
    idx = torch.randint(0, 97, (1, 10), generator=torch.Generator().manual_seed(1))
    cached = generate(model, idx, 80, temperature=0)  # 90 tokens > context of 64
    assert torch.equal(cached, generate(model, idx, 80, temperature=0, use_cache=False))


def test_generate_works_with_any_module_returning_logits_and_loss():
    """A learner's own GPT has no KV cache and no `config`: generate feeds it the window."""
    import torch.nn as nn

    class Bigram(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Embedding(5, 5)
            with torch.no_grad():  # each token strongly predicts the next one, cyclically
                self.table.weight.copy_(torch.eye(5).roll(1, dims=1) * 20)

        def forward(self, idx, targets=None):
            return self.table(idx), None

    out = generate(Bigram(), torch.tensor([[0]]), 6, temperature=0)
    assert out.tolist() == [[0, 1, 2, 3, 4, 0, 1]]
