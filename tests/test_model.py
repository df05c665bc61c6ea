import dataclasses

import pytest
import torch
import torch.nn.functional as F

from gptcore.budget import flops_per_token, memory_bytes, num_params, param_breakdown
from gptcore.model import GPT, GPTConfig
from gptcore.trainer import init_model
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


# ------------------------------------------------------------- activations (issue #17)
def _explicit_activation(name):
    from gptcore.model import gelu, gelu_exact

    return {"gelu": gelu, "gelu_exact": gelu_exact, "relu": lambda x: x.clamp(min=0)}[name]


@pytest.mark.parametrize("name", ["gelu", "gelu_exact", "relu"])
def test_mlp_runs_the_formula_of_its_activation(name):
    """The fused kernel each activation name selects equals the formula the lesson shows."""
    from gptcore.config import ACTIVATIONS
    from gptcore.model import ACTIVATION_FUNCTIONS, MLP

    assert set(ACTIVATION_FUNCTIONS) == set(ACTIVATIONS) == {"gelu", "gelu_exact", "relu"}
    torch.manual_seed(0)
    mlp = MLP(GPTConfig(n_embd=16, n_head=2, activation=name))
    x = torch.randn(2, 5, 16, dtype=torch.float64) * 3  # float64: the formulas are exact there
    mlp = mlp.double()
    explicit = mlp.c_proj(_explicit_activation(name)(mlp.c_fc(x)))
    torch.testing.assert_close(mlp(x), explicit, atol=1e-12, rtol=1e-12)


def test_gelu_exact_is_erf_gelu_and_not_gpt2s():
    from gptcore.model import gelu, gelu_exact

    x = torch.linspace(-8, 8, 100_001, dtype=torch.float64)
    exact = 0.5 * x * (1 + torch.erf(x / 2 ** 0.5))  # x · Φ(x)
    torch.testing.assert_close(gelu_exact(x), exact, atol=1e-15, rtol=0)
    torch.testing.assert_close(F.gelu(x), exact, atol=1e-15, rtol=0)
    assert round(gelu_exact(torch.tensor(1.0)).item(), 4) == 0.8413  # the docstring's example
    gap = (gelu(x) - gelu_exact(x)).abs().max().item()
    assert 4e-4 < gap < 5e-4  # close, but GPT-2's weights need GPT-2's tanh form


def test_gelu_exact_gpt_equals_the_real_nanogpt():
    """nanoGPT's model.py (the reference copy beside the project) with gptcore's weights
    computes the same logits and loss: gelu_exact is nanoGPT's nn.GELU()."""
    from benchmarks import nanogpt

    module = nanogpt.load()
    if module is None:
        pytest.skip(nanogpt.MISSING)
    torch.manual_seed(0)
    kw = dict(vocab_size=65, block_size=16, n_layer=2, n_head=2, n_embd=32)
    for bias in (True, False):
        ours = GPT(GPTConfig(**kw, bias=bias, activation="gelu_exact")).eval()
        with torch.no_grad():  # GPT-2 starts with zero biases and unit LayerNorms
            for p in ours.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        theirs = nanogpt.build(module, **kw, bias=bias).eval()
        theirs.load_state_dict(ours.state_dict())
        idx, targets = torch.randint(0, 65, (3, 16)), torch.randint(0, 65, (3, 16))
        with torch.no_grad():
            logits, loss = ours(idx, targets)
            ref_logits, ref_loss = theirs(idx, targets)
            torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(loss, ref_loss, atol=1e-6, rtol=1e-6)
        tanh = GPT(GPTConfig(**kw, bias=bias)).eval()
        tanh.load_state_dict(ours.state_dict())
        with torch.no_grad():  # the tanh GELU is a different model, measurably
            assert (tanh(idx)[0] - ref_logits).abs().max() > 1e-5


# ----------------------------------------------------------------------------- lesson 4: the shape trace


def depth_of(model, name: str) -> int:
    """How many modules (not containers) enclose `name`, counting the GPT itself."""
    modules = dict(model.named_modules())
    parts = name.split(".") if name else []
    ancestors = [".".join(parts[:i]) for i in range(len(parts))]
    return sum(not isinstance(modules[a], (torch.nn.ModuleList, torch.nn.ModuleDict))
               for a in ancestors)


@pytest.mark.parametrize("kw", [dict(), dict(dropout=0.1, activation="relu", bias=False),
                                dict(pre_ln=False, n_head=1)])
def test_shape_trace_lists_calls_as_they_start_with_real_shapes(kw):
    from gptcore.model import shape_trace

    config = GPTConfig(**{**dict(vocab_size=30, block_size=16, n_layer=2, n_head=4, n_embd=32), **kw})
    B, T, nh, hs = 3, 5, config.n_head, config.head_size
    rows = shape_trace(config, B, T)

    # reference: a real forward pass on the CPU, each module's shapes taken as it returns
    torch.manual_seed(0)
    model = GPT(config)
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            seen[name] = (tuple(inputs[0].shape), tuple(out.shape))
        return hook

    handles = [m.register_forward_hook(record(name or "GPT")) for name, m in model.named_modules()]
    idx = torch.randint(0, 30, (B, T))
    model(idx)
    for handle in handles:
        handle.remove()
    attention = model.inspect(idx)["attention"]  # the real (B, nh, T, T) weights

    modules = [r for r in rows if " · " not in r["module"]]
    assert {r["module"] for r in modules} == set(seen) - {"transformer", "transformer.h"}
    for r in modules:
        assert (r["input"], r["output"]) == seen[r["module"]], r["module"]
        assert r["depth"] == depth_of(model, "" if r["module"] == "GPT" else r["module"])
    names = [r["module"] for r in rows]
    assert names[0] == "GPT" and rows[0]["output"] == (B, T, 30)  # starts first, ends last
    for i in range(config.n_layer):
        h = f"transformer.h.{i}"
        start, end = names.index(f"{h}.attn.c_attn"), names.index(f"{h}.attn.c_proj")
        inside = {r["module"].split(" · ", 1)[1]: r for r in rows[start + 1:end]}
        assert (inside["q, k, v"]["input"], inside["q, k, v"]["output"]) == ((B, T, nh * hs), (B, nh, T, hs))
        assert inside["weights = softmax(q·kᵀ/√hs)"]["output"] == tuple(attention[i].shape) == (B, nh, T, T)
        assert inside["weights · v"]["output"] == (B, nh, T, hs)
        assert all(r["depth"] == 3 for r in rows[start:end + 1])
        act = rows[names.index(f"{h}.mlp · {config.activation.replace('_exact', '')}")]
        assert act["output"] == (B, T, 4 * config.n_embd)
        if config.pre_ln:  # the order calls start in: ln_1 before attention
            assert names.index(f"{h}.ln_1") < names.index(f"{h}.attn") < start
        else:  # post-LN: attention first, then ln_1 on x + attention
            assert names.index(f"{h}.attn") < start < end < names.index(f"{h}.ln_1")


# ----------------------------------------------------------------------------- lesson 4: the port report


def test_port_report_compares_the_final_layernorm_and_names_wrong_positions():
    from gptcore.hf import compare_with_hf, port_report

    hf = make_tiny_gpt2(seed=3, perturb=0.05, n_layer=2, n_positions=16, vocab_size=100)
    ids = list(range(3, 15))
    report = port_report(hf, ids)
    assert [r["stage"] for r in report["rows"]] == [
        "embeddings", "after block 0", "after block 1 and the final LayerNorm (ln_f)",
        "logits (the head)"]
    assert max(r["max |Δ|"] for r in report["rows"]) < 1e-4
    assert report["same_argmax"] and report["argmax_differs_at"] == [] and report["positions"] == 12

    idx = torch.tensor([ids])
    ours = GPT.from_hf(hf)
    with torch.no_grad():
        ref = hf(idx, output_hidden_states=True)
        last = ours.inspect(idx)["hidden"][-1]  # block 1's output, before ln_f
        # transformers' last hidden state is after ln_f: only ln_f(last) matches it
        assert (ours.transformer.ln_f(last) - ref.hidden_states[-1]).abs().max() < 1e-4
        assert (last - ref.hidden_states[-1]).abs().max() > 0.1
        ours.transformer.ln_f.bias.add_(torch.randn(32, generator=torch.Generator().manual_seed(0)))
        wrong = (ours(idx)[0].argmax(-1) != ref.logits.argmax(-1))[0].nonzero().flatten().tolist()
    report = compare_with_hf(hf, ours, idx)
    assert wrong and report["argmax_differs_at"] == wrong and not report["same_argmax"]
    deltas = [r["max |Δ|"] for r in report["rows"]]
    assert max(deltas[:2]) < 1e-5 and deltas[2] > 0.1  # the blocks agree; ln_f does not


def test_port_report_of_a_gptcore_gpt_goes_through_transformers_and_back():
    """Lesson 4 offline ports the random DistilGPT2-shaped model, a gptcore GPT: to_hf writes
    its weights into transformers' GPT-2, whose outputs the port must then match."""
    from gptcore.hf import has_gpt2_equivalent, port_report

    config = GPTConfig(vocab_size=100, block_size=16, n_layer=2, n_head=2, n_embd=32)
    model = init_model(config, 4).eval()
    report = port_report(model, list(range(3, 15)))
    assert report["same_argmax"] and report["positions"] == 12
    assert max(r["max |Δ|"] for r in report["rows"]) < 1e-4
    post_ln = dataclasses.replace(config, pre_ln=False)
    assert has_gpt2_equivalent(config) and not has_gpt2_equivalent(post_ln)
    with pytest.raises(ValueError, match="no|equivalent"):
        port_report(init_model(post_ln, 4), list(range(3, 15)))


# ----------------------------------------------------------------------------- lesson 4: the parts


def test_gelu_curves_against_pytorch_and_the_formulas():
    import math

    from gptcore import parts

    curves = parts.gelu_curves()
    x = torch.tensor(curves["x"], dtype=torch.float64)
    torch.testing.assert_close(torch.tensor(curves["GELU, tanh (GPT-2)"], dtype=torch.float64),
                               F.gelu(x, approximate="tanh"))
    torch.testing.assert_close(torch.tensor(curves["GELU, exact (erf)"], dtype=torch.float64), F.gelu(x))
    assert curves["ReLU"] == [max(v, 0.0) for v in curves["x"]]
    grid = [-4 + 8 * i / 100_000 for i in range(100_001)]  # brute force, plain Python
    diffs = [abs(0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))
                 - 0.5 * v * (1 + math.erf(v / math.sqrt(2)))) for v in grid]
    best = max(range(len(grid)), key=diffs.__getitem__)
    assert curves["max_difference"] == pytest.approx(diffs[best], rel=1e-3)
    assert curves["where"] == pytest.approx(abs(grid[best]), abs=0.01)


def test_layer_norm_table_against_f_layer_norm():
    from gptcore import parts

    g = torch.Generator().manual_seed(7)
    h = torch.randn(5, 16, generator=g) * torch.tensor([[0.5], [2.0], [5.0], [1.0], [10.0]]) \
        + torch.tensor([[3.0], [-1.0], [0.0], [8.0], [-4.0]])
    out = F.layer_norm(h, (16,))
    for row, a, b in zip(parts.layer_norm_table(7), h, out):
        assert row["mean before"] == pytest.approx(a.mean().item(), abs=1e-6)
        assert row["variance before"] == pytest.approx(a.var(unbiased=False).item(), rel=1e-5)
        assert row["mean after"] == pytest.approx(b.mean().item(), abs=1e-6)
        assert row["variance after"] == pytest.approx(b.var(unbiased=False).item(), rel=1e-5)
        assert row["variance after"] == pytest.approx(1.0, abs=1e-3)


def feed_forward_by_hand(seed: int) -> dict[str, dict]:
    """Per activation: hidden units exactly 0 and negative, and the output norm of a 16 -> 64
    -> 16 MLP seeded like gptcore's, computed with explicit matmuls."""
    torch.manual_seed(seed)
    mlp = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.Linear(64, 16))  # same draws as MLP
    x = torch.randn(1, 4, 16, generator=torch.Generator().manual_seed(seed))
    hidden = x @ mlp[0].weight.T + mlp[0].bias  # (1, 4, 64)
    rows = {}
    for name, act in [("gelu", lambda h: F.gelu(h, approximate="tanh")), ("gelu_exact", F.gelu),
                      ("relu", F.relu)]:
        a = act(hidden)
        out = a @ mlp[1].weight.T + mlp[1].bias
        rows[name] = {"hidden units": a.numel(), "exactly 0": int((a == 0).sum()),
                      "negative": int((a < 0).sum()), "output norm": out.norm().item()}
    return rows


def test_feed_forward_table_against_explicit_matmuls():
    from gptcore import parts

    expected = feed_forward_by_hand(5)
    rows = parts.feed_forward_table(5)
    assert rows and {r["activation"] for r in rows} <= set(expected)
    for r in rows:
        e = expected[r["activation"]]
        assert (r["hidden units"], r["exactly 0"], r["negative"]) == \
            (e["hidden units"], e["exactly 0"], e["negative"]) and r["hidden units"] == 256
        assert r["output norm"] == pytest.approx(e["output norm"], rel=1e-5)
    assert expected["relu"]["negative"] == 0 < expected["relu"]["exactly 0"]


def residual_rms_by_hand(depth: int, residual: bool, seed: int) -> list[float]:
    """The RMS of the stream after the embeddings of ids 0..15 and after each block, by a
    loop over the blocks of a GPT initialised here."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(n_layer=depth, n_head=4, n_embd=64, block_size=16, vocab_size=50,
                          residual=residual)).eval()
    with torch.no_grad():
        x = model.transformer.wte.weight[:16] + model.transformer.wpe.weight  # ids 0..15
        rms = [x.pow(2).mean().sqrt().item()]
        for block in model.transformer.h:
            x = block(x[None])[0][0]
            rms.append(x.pow(2).mean().sqrt().item())
    return rms


@pytest.mark.parametrize("residual", [True, False])
def test_residual_rms_against_a_loop_over_the_blocks(residual):
    from gptcore import parts

    assert parts.residual_rms(6, residual, seed=2) == pytest.approx(
        residual_rms_by_hand(6, residual, seed=2), rel=1e-5)


@pytest.mark.parametrize("p", [0.0, 0.3, 0.5, 0.9])
def test_dropout_demo_is_pytorch_dropout(p):
    from gptcore import parts

    demo = parts.dropout_demo(p, n=200, seed=4)
    torch.manual_seed(4)
    assert demo["train"] == F.dropout(torch.ones(200), p, training=True).tolist()
    assert all(v == 0.0 or v == pytest.approx(1 / (1 - p)) for v in demo["train"])
    assert (0.0 in demo["train"]) == (p > 0)
    assert demo["eval"] == demo["input"] == [1.0] * 200
    assert demo["scale"] == pytest.approx(1 / (1 - p))


def test_embeddings_are_a_row_lookup_plus_a_position_row():
    from gptcore import parts

    ids = [5, 2, 7, 2]
    example = parts.embedding_example(ids, seed=3)
    torch.manual_seed(3)
    model = GPT(GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=4))
    wte, wpe = model.transformer.wte.weight, model.transformer.wpe.weight
    torch.testing.assert_close(torch.tensor(example["x"]), (wte[ids] + wpe).detach())
    assert example["wte"][1] == example["wte"][3] and example["x"][1] != example["x"][3]
    config = GPTConfig(vocab_size=65, block_size=64, n_embd=128)
    assert dict(parts.embedding_shapes(config, 2, 8)) == {
        "idx: token ids": (2, 8), "wte.weight: one row per token id": (65, 128),
        "wte(idx): the row of each token": (2, 8, 128), "wpe.weight: one row per position": (64, 128),
        "wpe(pos), pos = 0 … T−1": (8, 128), "x = wte(idx) + wpe(pos)": (2, 8, 128)}


def models_2017(n_layer: int, seed: int):
    """(label, GPT, x, y) for pre-LN and post-LN GPTs given the 2017 initialisation here
    (Xavier weight matrices, unit-variance embeddings), and the random batch they read."""
    from gptcore.parts import PLACEMENTS

    g = torch.Generator().manual_seed(seed)
    x, y = torch.randint(0, 64, (8, 32), generator=g), torch.randint(0, 64, (8, 32), generator=g)
    for pre_ln, label in PLACEMENTS.items():
        torch.manual_seed(seed)
        model = GPT(GPTConfig(n_layer=n_layer, n_head=4, n_embd=64, block_size=32,
                              vocab_size=64, pre_ln=pre_ln))
        for name, p in model.named_parameters():
            if "wte" in name or "wpe" in name:
                torch.nn.init.normal_(p, std=1.0)
            elif p.dim() == 2:
                torch.nn.init.xavier_normal_(p)
        yield label, model, x, y


def top_block_norms(n_layer: int, seed: int) -> dict[str, float]:
    """The gradient norm of the top block's parameters, pre-LN and post-LN, by
    torch.autograd.grad."""
    out = {}
    for label, model, x, y in models_2017(n_layer, seed):
        params = list(model.transformer.h[-1].parameters())
        grads = torch.autograd.grad(model(x, y)[1], params)
        out[label] = torch.sqrt(sum((g ** 2).sum() for g in grads)).item()
    return out


def ln_f_changes(n_layer: int, seed: int) -> dict[str, float]:
    """max |ln_f(h) - h| for h the stream after the last block, by a loop over the blocks."""
    out = {}
    for label, model, x, _ in models_2017(n_layer, seed):
        with torch.no_grad():
            h = model.transformer.wte(x) + model.transformer.wpe.weight
            for block in model.transformer.h:
                h = block(h)[0]
            out[label] = (model.transformer.ln_f(h) - h).abs().max().item()
    return out


def test_ln_placement_gradients_against_autograd_and_xiong_et_al():
    """Recomputed with torch.autograd.grad on models initialised here; and the result the
    lesson states: post-LN's top-block gradient is larger than pre-LN's and does not shrink
    with depth, pre-LN's does."""
    from gptcore import parts

    pre, post = parts.PLACEMENTS[True], parts.PLACEMENTS[False]
    result = parts.ln_placement_gradients(4, seed=1)
    top = {r["placement"]: r["gradient norm"] for r in result["rows"] if r["layer"] == 3}
    assert top == pytest.approx(top_block_norms(4, seed=1), rel=1e-4)
    assert len(result["rows"]) == 8
    assert result["ln_f_change"] == pytest.approx(ln_f_changes(4, seed=1), rel=1e-4, abs=1e-6)
    assert result["ln_f_change"][post] < 1e-4 < 0.1 < result["ln_f_change"][pre]
    shallow, deep = top_block_norms(2, seed=0), top_block_norms(16, seed=0)
    assert shallow[post] > shallow[pre] and deep[post] > deep[pre]
    assert deep[pre] < shallow[pre] and deep[post] > shallow[post]
