import math

import pytest
import torch

from gptcore.generate import (Prompt, StepThrough, apply_temperature, generate, generate_ids,
                              next_token_distribution, next_token_logits, prepare_prompt,
                              top_k_filter, top_p_filter, top_tokens)
from gptcore.model import GPT
from gptcore.tokenizers import CharTokenizer, StartToken, TiktokenTokenizer
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


# ----------------------------------------------------------------------------- lesson 1 views


def brute_force_distribution(logits, temperature, top_k, top_p):
    """Plain Python, the knobs one after the other as transformers' warpers apply them:
    top-p renormalises over what top-k kept."""
    def softmax(z):
        m = max(z)
        e = [math.exp(v - m) for v in z]
        return [v / sum(e) for v in e]

    raw = softmax(logits)
    order = sorted(range(len(logits)), key=lambda i: -logits[i])
    kept = order[:top_k] if top_k else order
    if top_p is not None:
        probs = softmax([logits[i] / temperature for i in kept])
        nucleus, total = [], 0.0
        for i, p in zip(kept, probs):
            if total >= top_p:
                break
            nucleus.append(i)
            total += p
        kept = nucleus
    kept = set(kept)
    z = [logits[i] / temperature for i in sorted(kept)]
    final = dict(zip(sorted(kept), softmax(z)))
    return raw, kept, [final.get(i, 0.0) for i in range(len(logits))]


@pytest.mark.parametrize("temperature,top_k,top_p", [(1.0, None, None), (0.7, 5, None),
                                                     (1.3, None, 0.5), (0.5, 8, 0.8),
                                                     (2.0, 1, 0.99)])
def test_top_tokens_equals_a_brute_force(temperature, top_k, top_p):
    logits = torch.randn(50, generator=torch.Generator().manual_seed(4)) * 2
    view = top_tokens(logits, 10, temperature=temperature, top_k=top_k, top_p=top_p)
    raw, kept, final = brute_force_distribution(logits.tolist(), temperature, top_k, top_p)
    assert view.vocab_size == 50 and view.n_kept == len(kept)
    assert [r["id"] for r in view.rows] == sorted(range(50), key=lambda i: -raw[i])[:10]
    for r in view.rows:
        assert r["raw"] == pytest.approx(raw[r["id"]], abs=1e-6)
        assert r["final"] == pytest.approx(final[r["id"]], abs=1e-6)
        assert r["kept"] == (r["id"] in kept) and not r["picked"]


def test_top_tokens_greedy_and_a_picked_token_outside_the_top():
    logits = torch.tensor([3.0, 1.0, 2.0, -1.0, 0.0])
    greedy = top_tokens(logits, 2, temperature=0)
    assert greedy.n_kept == 1
    assert [(r["id"], r["kept"], r["final"]) for r in greedy.rows] == [
        (0, True, 1.0), (2, False, 0.0)]
    view = top_tokens(logits, 2, picked=3)
    assert [r["id"] for r in view.rows] == [0, 2, 3] and view.rows[-1]["picked"]


def test_prepare_prompt_cuts_to_the_context_and_starts_empty_prompts():
    tok = TiktokenTokenizer()
    assert prepare_prompt(tok, "", 1024) == Prompt([50256], 0, StartToken(50256, "endoftext"))
    text = "word " * 100
    ids = tok.encode(text)
    p = prepare_prompt(tok, text, 64)
    assert p.ids == ids[-64:] and p.n_text_tokens == len(ids) and p.dropped == len(ids) - 64
    assert prepare_prompt(tok, "Hello world", 64).dropped == 0
    chars = CharTokenizer.from_text("ab\ncd")
    assert prepare_prompt(chars, "", 8).ids == [chars.stoi["\n"]]


def test_generate_ids_and_step_through_replay_generate():
    model = tiny_model(seed=1)
    ids = [5, 17, 42]
    knobs = dict(temperature=0.9, top_k=20, top_p=0.9)
    g = torch.Generator().manual_seed(11)
    reference = generate(model, torch.tensor([ids]), 12, generator=g, use_cache=False, **knobs)
    assert generate_ids(model, ids, 12, 11, **knobs) == reference[0, 3:].tolist()
    stepper = StepThrough(ids, 11)
    for _ in range(12):
        stepper.step(model, **knobs)
    assert stepper.picked == reference[0, 3:].tolist()
    assert stepper.last_knobs == knobs
    logits, _ = model(reference[:, :-1])
    torch.testing.assert_close(stepper.last_logits, logits[0, -1])
    torch.testing.assert_close(next_token_logits(model, ids),
                               next_token_logits(model, torch.tensor([ids])))


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("prompt_len, new, context", [(5, 12, 64), (1, 1, 8), (6, 9, 8),
                                                      (8, 5, 8), (30, 10, 32)])
def test_positions_fed_counts_what_generate_runs(prompt_len, new, context, use_cache):
    """Lesson 1's KV-cache figures: the positions each forward pass of `generate` reads,
    counted on a real GPT, equal positions_fed (sliding past the context included)."""
    from gptcore.generate import positions_fed
    from gptcore.model import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=20, block_size=context, n_layer=1, n_head=2, n_embd=16))
    fed, original = [], model.forward_cached

    def counting(idx, past=None):
        fed.append(idx.size(1))
        return original(idx, past)

    model.forward_cached = counting
    idx = torch.randint(0, 20, (1, prompt_len))
    generate(model, idx, new, generator=torch.Generator().manual_seed(0), use_cache=use_cache)
    assert len(fed) == new
    assert sum(fed) == positions_fed(prompt_len, new, context, use_cache)
    if use_cache and prompt_len + new - 1 <= context:
        assert fed == [prompt_len] + [1] * (new - 1)  # the prompt once, then one token a step
