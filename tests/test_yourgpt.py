"""Your parts, used: a learner's Block trained beside the book's GPT, a learner's filters and
attention drawing the lessons. The book's side in-process; the classroom's through the sandbox."""
import base64
from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

from gptcore.config import GPTConfig
from gptcore.exercises import BY_ID
from gptcore.exercises.block_solution import Block
from gptcore.exercises.yourgpt import TOLERANCE, gpt_with_your_blocks, side_by_side_config, train_side_by_side
from gptcore.generate import filter_logits
from gptcore.model import GPT
from gptcore.trainer import TrainConfig

TEXT = ("First Citizen: Before we proceed any further, hear me speak.\nAll: Speak, speak.\n" * 60)
CONFIG = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16)
TRAIN = TrainConfig(batch_size=4, max_iters=25, lr=3e-3, warmup_iters=2, seed=3)


class SDPABlock(torch.nn.Module):
    """Written differently from the reference: PyTorch's fused attention, explicit LayerNorm."""

    def __init__(self, config):
        super().__init__()
        C = config.n_embd
        self.n_head = config.n_head
        self.ln_1, self.ln_2 = torch.nn.LayerNorm(C), torch.nn.LayerNorm(C)
        self.attn = torch.nn.Module()
        self.attn.c_attn, self.attn.c_proj = torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C)
        self.mlp = torch.nn.Module()
        self.mlp.c_fc, self.mlp.c_proj = torch.nn.Linear(C, 4 * C), torch.nn.Linear(4 * C, C)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.attn.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, -1).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.attn.c_proj(y)
        return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))


class NoResidual(Block):
    def forward(self, x):
        x = self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class PostLN(Block):
    def forward(self, x):
        x = self.ln_1(x + self.attn(x))
        return self.ln_2(x + self.mlp(x))


@pytest.mark.parametrize("block", [Block, SDPABlock], ids=["reference", "fused attention"])
def test_a_correct_block_trains_to_the_reference_losses(block):
    result = train_side_by_side(block, TEXT, CONFIG, TRAIN, sample_tokens=10)
    assert result["parted_at"] is None and result["max_difference"] <= TOLERANCE
    losses = torch.tensor([(ref, yours) for _, ref, yours in result["steps"]])
    assert len(losses) == TRAIN.max_iters and losses[-1, 0] < losses[0, 0]  # it learned
    assert torch.allclose(losses[:, 0], losses[:, 1], atol=TOLERANCE, rtol=0)
    assert result["val_loss"]["yours"] == pytest.approx(result["val_loss"]["reference"], abs=TOLERANCE)


@pytest.mark.parametrize("block", [NoResidual, PostLN], ids=["no residual", "post-LN"])
def test_a_block_with_a_classic_mistake_parts_at_the_first_step(block):
    result = train_side_by_side(block, TEXT, CONFIG, TRAIN, sample_tokens=0)
    assert result["parted_at"] == 1 and result["max_difference"] > TOLERANCE


def test_the_trained_weights_load_into_the_books_gpt_and_compute_the_same():
    config = side_by_side_config(GPTConfig(**{**asdict(CONFIG), "vocab_size": 20}))
    torch.manual_seed(0)
    reference = GPT(config)
    yours = gpt_with_your_blocks(config, SDPABlock, reference)
    idx = torch.randint(0, 20, (2, 16))
    book = GPT(config)
    book.load_state_dict(__import__("gptcore.exercises.yourgpt", fromlist=["x"]).as_book_weights(yours))
    assert torch.allclose(book(idx)[0], yours(idx)[0], atol=1e-5)
    assert torch.allclose(book(idx)[0], reference(idx)[0], atol=1e-5)  # same initial weights


def test_a_block_with_other_names_is_refused_with_the_name():
    class Renamed(Block):
        def __init__(self, config):
            super().__init__(config)
            self.norm1 = self.ln_1
            del self.ln_1

    with pytest.raises(ValueError, match="ln_1"):
        train_side_by_side(Renamed, TEXT, CONFIG, TRAIN)


# ------------------------------------------------------------------ through the sandbox

@pytest.fixture(scope="module")
def sandbox_ready():
    import os

    from classroom import sandbox

    try:
        sandbox.default_sandbox().start()
    except sandbox.SandboxUnavailable:
        pass
    status = sandbox.status()
    if not status.available:
        if os.environ.get("CI"):
            pytest.fail(f"the sandbox must run in CI: {status.reason}")
        pytest.skip(f"the sandbox cannot run here: {status.reason}")
    return sandbox


def test_train_my_gpt_in_the_sandbox_rebuilds_the_learners_model(sandbox_ready):
    from classroom.yourgpt import YourGPTRun

    run = YourGPTRun(BY_ID["model.Block"].solution, TEXT, CONFIG, TRAIN, learner="t-yourgpt",
                     label="your GPT").start()
    run.thread.join(180)
    snap = run.snapshot()
    assert snap["status"] == "done", snap["message"]
    assert len(snap["steps"]) == TRAIN.max_iters and snap["result"]["parted_at"] is None
    assert "follows the reference" in snap["message"]
    # the server's copy of the learner's model is the book's GPT with their trained weights
    ids = torch.tensor([run.tokenizer.encode(TEXT[:16])])
    logits, _ = run.model(ids)
    assert torch.isfinite(logits).all() and isinstance(run.model, GPT)
    assert run.checkpoint_bytes()[:2] == b"PK"  # a torch zip checkpoint for the lab's upload


def test_weights_that_come_back_wrong_are_refused():
    from safetensors.torch import save

    from classroom.yourgpt import YourGPTError, weights_from_bytes

    config = side_by_side_config(GPTConfig(**{**asdict(CONFIG), "vocab_size": 20}))
    good = {k: v.clone() for k, v in GPT(config).state_dict().items()}
    bad = dict(good)
    bad["lm_head.weight"] = torch.full_like(good["lm_head.weight"], float("nan"))
    with pytest.raises(YourGPTError, match="NaN"):
        weights_from_bytes(save(bad), config)
    extra = {**good, "evil": torch.zeros(1)}
    with pytest.raises(YourGPTError, match="names"):
        weights_from_bytes(save(extra), config)
    with pytest.raises(YourGPTError, match="unreadable"):
        weights_from_bytes(b"not safetensors", config)
    assert isinstance(weights_from_bytes(base64.b64decode(base64.b64encode(save(good))), config), GPT)


def test_use_my_filters_equals_the_books_on_the_whole_vocabulary(sandbox_ready):
    from classroom import yours

    code = {i: BY_ID[i].solution for i in ("generate.top_k_filter", "generate.top_p_filter")}
    logits = torch.randn(50257, generator=torch.Generator().manual_seed(0)) * 3
    for top_k, top_p in [(40, None), (None, 0.9), (40, 0.95), (None, 0.3)]:
        mine = yours.filtered_logits(logits, top_k, top_p, code, learner="t-filters")
        book = filter_logits(yours.rounded(logits), 1.0, top_k, top_p)
        assert torch.equal(mine, book), (top_k, top_p)
    assert (yours.rounded(logits) - logits).abs().max() <= 0.5 * 10 ** -yours.DECIMALS + 1e-6


def test_use_my_attention_equals_the_books_and_broken_code_says_why(sandbox_ready):
    from classroom import yours
    from gptcore.attention import causal_mask, scaled_dot_product_attention

    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(3, 7, 8, generator=g), torch.randn(3, 7, 8, generator=g)
    code = {i: BY_ID[i].solution for i in ("attention.causal_mask",
                                           "attention.scaled_dot_product_attention")}
    weights = yours.attention_weights(q, k, code, learner="t-attn")
    _, expected = scaled_dot_product_attention(q, k, k, mask=causal_mask(7))
    assert torch.allclose(weights, expected, atol=1e-6)
    broken = {**code, "attention.causal_mask": "def causal_mask(T):\n    return None\n"}
    with pytest.raises(yours.YourCodeFailed, match="causal_mask"):
        yours.attention_weights(q, k, broken, learner="t-attn")


def test_use_my_filters_in_lesson_1s_view_equals_the_books(sandbox_ready):
    from classroom import yours
    from gptcore.generate import top_tokens

    code = {i: BY_ID[i].solution for i in ("generate.top_k_filter", "generate.top_p_filter")}
    logits = yours.rounded(torch.randn(50257, generator=torch.Generator().manual_seed(3)) * 3)
    mine = yours.top_tokens(logits, 15, 0.8, 40, 0.9, code, learner="t-view")
    book = top_tokens(logits, 15, temperature=0.8, top_k=40, top_p=0.9)
    assert mine.n_kept == book.n_kept and mine.vocab_size == book.vocab_size
    for a, b in zip(mine.rows, book.rows):
        assert a["id"] == b["id"] and a["kept"] == b["kept"]
        assert a["final"] == pytest.approx(b["final"], rel=1e-4, abs=1e-7)
