"""The model's configuration: one dataclass passed whole to every module (as in nanoGPT).

Invariants are checked where the config is built, with a message a learner understands:
`GPTConfig(n_embd=100, n_head=3)` says that 100 channels cannot be split into 3 heads.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields


# "gelu" is GPT-2's tanh approximation, which a port of GPT-2 must use; "gelu_exact" is the
# erf form x·Φ(x), nanoGPT's nn.GELU(): 4-10% less time per training step on a CPU
# (benchmarks.step_time), so the models trained from scratch use it.
ACTIVATIONS = ("gelu", "gelu_exact", "relu")


@dataclass
class GPTConfig:
    vocab_size: int = 50257
    block_size: int = 128  # the context: the most tokens the model sees at once
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    tie_weights: bool = True  # the head reuses the token embedding matrix
    pre_ln: bool = True  # GPT-2: LayerNorm before attention/MLP; False: after the residual add
    activation: str = "gelu"  # one of ACTIVATIONS; "gelu" is GPT-2's tanh approximation
    residual: bool = True  # turn off to see why deep nets need the residual stream
    causal: bool = True  # turn off to see a model cheat by reading the next token
    fast_attention: bool = True  # F.scaled_dot_product_attention instead of the explicit path
    layer_norm_eps: float = 1e-5

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1.")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"The width (n_embd={self.n_embd}) must be divisible by the number of heads "
                f"(n_head={self.n_head}): each head gets n_embd / n_head channels."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError("dropout must be in [0, 1).")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}.")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        """The inverse of to_dict; unknown keys are an error, missing ones take defaults."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"Unknown model settings: {', '.join(unknown)}.")
        return cls(**d)
