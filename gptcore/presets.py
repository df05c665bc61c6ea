"""Every named model of the course, in one registry: the architectures lesson 4 builds, the
models lesson 5 trains and the recipes `python -m gptcore.train --preset` runs.

A preset is a GPTConfig and, when it is also a training recipe, the TrainConfig fields that
go with it. Character-level presets carry a placeholder vocabulary: the tokenizer built on
the corpus sets the real one.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from gptcore.config import GPTConfig


@dataclass(frozen=True)
class Preset:
    name: str  # what a learner reads
    model: GPTConfig
    about: str
    recipe: str = ""  # the --preset name of its training recipe, if it has one
    train: dict = field(default_factory=dict)  # TrainConfig fields of that recipe

    def model_kwargs(self) -> dict:
        """The model's fields without the vocabulary, which the tokenizer decides."""
        return {k: v for k, v in asdict(self.model).items() if k != "vocab_size"}


PRESETS: tuple[Preset, ...] = (
    Preset("Tutorial GPT", GPTConfig(n_layer=6, n_head=8, n_embd=256, block_size=128,
                                     vocab_size=50257, dropout=0.1, tie_weights=False),
           "The tutorial's chapter 4 model: 6 layers, 8 heads, 256 wide, context 128, "
           "GPT-2's vocabulary, an untied head."),
    Preset("nanoGPT baby GPT (CPU)", GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=64,
                                               vocab_size=65, dropout=0.0, bias=False,
                                               activation="gelu_exact"),
           "nanoGPT's README recipe for a CPU: character level, 4 layers × 4 heads × 128, "
           "context 64.",
           recipe="nanogpt-cpu",
           train=dict(batch_size=12, lr=1e-3, min_lr=1e-4, max_iters=2000, lr_decay_iters=2000,
                      warmup_iters=100, beta2=0.99, weight_decay=0.1, grad_clip=1.0,
                      eval_interval=250)),
    # The same loss in under a third of the time (README, benchmarks.time_to_loss). Near one
    # pass over Tiny Shakespeare the loss follows the tokens seen more than the model's size:
    # 2 layers × 96 reach 1.89 after 550-625 steps of 32 × 64 tokens (three seeds), about
    # what 3 × 96 or 4 × 128 need, at under a third of 4 × 128's compute per token. Then a
    # learning rate 12x nanoGPT's, its cosine ending near the target (a slower seed goes on
    # at min_lr), and cheap screens of the validation loss between exact evaluations. The
    # screen, the split's first 8,192 characters, reads 0.03-0.05 below the whole split from
    # step 350 on (two seeds), so a margin of 0 skips no evaluation that would reach the target.
    Preset("Fast CPU GPT", GPTConfig(n_layer=2, n_head=3, n_embd=96, block_size=64,
                                     vocab_size=65, dropout=0.0, bias=False,
                                     activation="gelu_exact"),
           "This project's recipe for nanoGPT's loss in under a third of its time: 2 layers × 3 "
           "heads × 96, context 64.",
           recipe="fast-cpu",
           train=dict(batch_size=32, lr=1.2e-2, min_lr=1.2e-3, max_iters=700, lr_decay_iters=600,
                      warmup_iters=30, beta2=0.99, weight_decay=0.1, grad_clip=1.0,
                      eval_interval=50, eval_screen_tokens=8192, screen_margin=0.0,
                      eval_train_tokens=8192)),
    Preset("Tiny GPT", GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=32, vocab_size=65,
                                 dropout=0.0, bias=False, activation="gelu_exact"),
           "2 layers × 2 heads × 64, context 32: trains in seconds."),
    Preset("DistilGPT2", GPTConfig(n_layer=6, n_head=12, n_embd=768, block_size=1024,
                                   vocab_size=50257),
           "Hugging Face's distilled GPT-2: 6 layers of GPT-2 small."),
    Preset("GPT-2 small", GPTConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024,
                                    vocab_size=50257),
           "OpenAI's smallest GPT-2 (124 M parameters)."),
)

BY_NAME = {p.name: p for p in PRESETS}
RECIPES = {p.recipe: p for p in PRESETS if p.recipe}  # python -m gptcore.train --preset NAME
MODEL_PRESETS = {p.name: p.model for p in PRESETS}
