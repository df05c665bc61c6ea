"""gptcore.budget against real models: parameters against numel, FLOPs against an independent
formula and PyTorch's FlopCounterMode, memory against the profiler's peak in a training step."""
import pytest
import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from gptcore import budget
from gptcore.model import GPT, GPTConfig
from gptcore.trainer import TrainConfig, make_optimizer, train_step

TUTORIAL = dict(n_layer=6, n_head=8, n_embd=256, block_size=128, vocab_size=50257,
                dropout=0.1, tie_weights=False)


def kaplan_by_hand(model: GPT, T: int) -> int:
    """2·(N + V·C) + 2·L·T·C with N read off the model: every parameter that is not an
    embedding table or the head's own matrix."""
    c = model.config
    n = sum(p.numel() for name, p in model.named_parameters()
            if not name.startswith(("transformer.wte", "transformer.wpe", "lm_head")))
    return 2 * (n + c.vocab_size * c.n_embd) + 2 * c.n_layer * T * c.n_embd


@pytest.mark.parametrize("kw", [dict(), dict(bias=False), dict(n_layer=5, n_head=3, n_embd=33),
                                dict(vocab_size=50257, block_size=1024, n_layer=12, n_head=12,
                                     n_embd=768)])
@pytest.mark.parametrize("tied", [True, False])
def test_flops_equal_the_formula_tied_and_untied(kw, tied):
    config = GPTConfig(**{**kw, "tie_weights": tied})
    with torch.device("meta"):
        model = GPT(config)
    flops = budget.flops_per_token(config)
    assert flops["forward"] == kaplan_by_hand(model, config.block_size)
    assert flops["train"] == 3 * flops["forward"]
    assert flops["forward"] == flops["weights"] + flops["head"] + flops["attention"]
    other = budget.flops_per_token(GPTConfig(**{**kw, "tie_weights": not tied}))
    assert other["forward"] == flops["forward"]  # tying changes the memory, not the arithmetic


def test_tutorial_gpt_is_35_6_million_flops_not_61():
    """Issue #16: the untied head made the embedding lookup count as a matmul (61.3 M)."""
    flops = budget.flops_per_token(GPTConfig(**TUTORIAL))["forward"]
    assert flops == 2 * (4_739_072 + 50257 * 256) + 2 * 6 * 128 * 256 == 35_602_944


@pytest.mark.parametrize("kw", [
    dict(n_layer=2, n_head=4, n_embd=64, block_size=32, vocab_size=100),
    dict(n_layer=3, n_head=2, n_embd=96, block_size=48, vocab_size=500, tie_weights=False),
    dict(n_layer=1, n_head=4, n_embd=128, block_size=16, vocab_size=1000, bias=False),
])
def test_flops_against_a_count_of_a_real_forward_pass(kw):
    """FlopCounterMode counts the matmuls of a real forward pass (2 per multiply-add),
    including the whole T × T score matrix. Its count minus the masked half (2·L·T·C per
    token) agrees with Kaplan's formula within 2%: the formula also counts biases and
    LayerNorm parameters, which the counter skips. The explicit attention path: the counter
    has no formula for PyTorch's fused CPU kernel (it would count no attention at all)."""
    torch.manual_seed(0)
    config = GPTConfig(**kw, fast_attention=False)
    model = GPT(config).eval()
    B, T, C, L, V = 2, config.block_size, config.n_embd, config.n_layer, config.vocab_size
    idx = torch.randint(0, V, (B, T))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(idx)
    counted = counter.get_total_flops() / (B * T)
    assert counted == 2 * (12 * L * C * C + V * C) + 4 * L * T * C  # matmuls only, full T × T
    ours = budget.flops_per_token(config)["forward"]
    assert abs((counted - 2 * L * T * C) - ours) / ours < 0.02


def test_weight_tying_saves_the_head_matrix():
    config = GPTConfig(**TUTORIAL)
    with torch.device("meta"):
        untied = GPT(config)
        tied = GPT(GPTConfig(**{**TUTORIAL, "tie_weights": True}))
    saved = budget.weight_tying_savings(config)
    assert saved["parameters"] == untied.num_params() - tied.num_params() == 50257 * 256
    assert saved["share_of_untied"] == pytest.approx(12_865_792 / 30_503_424)


def test_memory_is_in_bytes_per_parameter():
    config = GPTConfig(n_layer=6, n_head=12, n_embd=768, block_size=1024, vocab_size=50257)
    mem = budget.memory_bytes(config)
    assert mem["weights"] == 4 * 81_912_576 == 327_650_304  # DistilGPT2: 327.7 MB, 312.5 MiB
    assert mem["total"] == 16 * 81_912_576


def peak_bytes_during(fn) -> int:
    """The most bytes allocated at once while fn runs, above what was allocated before: every
    CPU allocation and free the profiler records, replayed in time order."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = []

    def walk(event):
        if event.typed[0].name == "Allocation":
            events.append((event.start_time_ns, event.typed[1].alloc_size))
        for child in event.children:
            walk(child)

    for root in prof.profiler.kineto_results.experimental_event_tree():
        walk(root)
    live = peak = 0
    for _, size in sorted(events):
        live += size
        peak = max(peak, live)
    return peak


def storage_bytes(tensors) -> int:
    return sum(t.untyped_storage().nbytes() for t in {id(t): t for t in tensors}.values())


@pytest.mark.parametrize("kw,batch", [
    (dict(n_layer=2, n_head=4, n_embd=64, block_size=32, vocab_size=100), 8),  # activations
    (dict(n_layer=2, n_head=4, n_embd=64, block_size=32, vocab_size=100, dropout=0.1), 8),
    (dict(n_layer=3, n_head=4, n_embd=64, block_size=32, vocab_size=300, activation="relu",
          tie_weights=False), 6),
    (dict(n_layer=1, n_head=2, n_embd=32, block_size=16, vocab_size=5000), 8),  # the head
    (dict(n_layer=3, n_head=4, n_embd=64, block_size=32, vocab_size=300, pre_ln=False,
          bias=False, dropout=0.2), 6),
    (dict(n_layer=2, n_head=4, n_embd=256, block_size=8, vocab_size=1000), 1),  # the update
])
def test_training_memory_against_the_measured_peak_of_a_training_step(kw, batch):
    """The estimate is within 10% of the peak of lesson 5's training step (forward, backward,
    clipping, AdamW), measured after a first step has created AdamW's state."""
    torch.manual_seed(0)
    config = GPTConfig(**kw)
    model = GPT(config).train()
    optimizer = make_optimizer(model, TrainConfig())
    x = torch.randint(0, config.vocab_size, (batch, config.block_size))
    y = torch.randint(0, config.vocab_size, (batch, config.block_size))
    train_step(model, optimizer, x, y)
    resident = storage_bytes(list(model.parameters()) + [
        t for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t)])
    measured = resident + peak_bytes_during(lambda: train_step(model, optimizer, x, y))
    estimate = budget.training_memory(config, batch)
    assert abs(measured / estimate["peak"] - 1) < 0.10, (measured, estimate)
    assert estimate["weights"] == 4 * model.num_params()


def test_activation_formula_by_hand():
    """17·B·T·C per GELU block (13 with ReLU), 2·B·T·C + 4·B·T·V for the head; with dropout,
    the stored (B, nh, T, T) weights and the masks."""
    B, T, C, L, V, nh = 4, 16, 32, 3, 50, 2
    base = dict(n_layer=L, n_head=nh, n_embd=C, block_size=T, vocab_size=V)
    assert sum(budget.activation_bytes(GPTConfig(**base), B).values()) == \
        4 * B * T * (17 * L * C + 2 * C + 4 * V)
    assert sum(budget.activation_bytes(GPTConfig(**base, activation="relu"), B).values()) == \
        4 * B * T * (13 * L * C + 2 * C + 4 * V)
    assert sum(budget.activation_bytes(GPTConfig(**base, dropout=0.1), B).values()) == \
        4 * B * T * (17 * L * C + 2 * C + 4 * V) + 4 * B * T * (L * (3 * nh * T + C) + C)
    mem = budget.training_memory(GPTConfig(**base), 1, 1)  # one token: the update sets the peak
    assert mem["peak"] == 4 * budget.num_params(GPTConfig(**base)) * 5
