"""A model card: what a GPT is made of, counted from its own tensors.

    DistilGPT2: 6 layers × 12 heads × 768 channels, context 1,024, vocabulary 50,257;
    81,912,576 parameters × 4 bytes (float32) = 327,650,304 bytes = 312.5 MiB (1 MiB = 2^20 bytes).

The per-component split comes from `gptcore.budget.param_breakdown` (arithmetic on the
config); the card checks it against the count of the real tensors.
"""
from __future__ import annotations

from dataclasses import dataclass

from gptcore.budget import param_breakdown
from gptcore.config import GPTConfig
from gptcore.hf import config_of

MIB = 2**20  # a mebibyte; a megabyte (MB) is 10**6 bytes


@dataclass(frozen=True)
class ModelCard:
    config: GPTConfig
    n_params: int  # counted from the model's tensors; a head tied to the embedding counts once
    n_bytes: int  # their storage: Σ numel × bytes per value
    dtypes: tuple[str, ...]  # e.g. ("float32",)
    breakdown: dict[str, int]  # parameters per component, from the config alone

    @property
    def mib(self) -> float:
        return self.n_bytes / MIB

    @property
    def breakdown_total(self) -> int:
        return sum(self.breakdown.values())

    @property
    def breakdown_matches(self) -> bool:
        """The config's arithmetic agrees with the tensors."""
        return self.breakdown_total == self.n_params


def model_card(model) -> ModelCard:
    """The card of a gptcore GPT or a `transformers` GPT-2 (parameters() skips tied copies)."""
    params = list(model.parameters())
    return ModelCard(
        config=config_of(model),
        n_params=sum(p.numel() for p in params),
        n_bytes=sum(p.numel() * p.element_size() for p in params),
        dtypes=tuple(sorted({str(p.dtype).removeprefix("torch.") for p in params})),
        breakdown=param_breakdown(config_of(model)),
    )
