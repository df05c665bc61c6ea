"""Lesson 5's plumbing in the page: the measured inputs of the budget (cached per model and corpus), and the runs table as the page shows it.

The numbers come from gptcore.trainer (step times, the estimate, the starting loss) and
classroom.lab (a run's snapshot); this module caches, formats and draws them.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from classroom import shared, state
from classroom.corpora import Corpus
from gptcore import trainer
from gptcore.data import train_val_split
from gptcore.model import GPTConfig

START_TOKENS = 8192  # validation tokens the untrained model is scored on before a run


# ------------------------------------------------------------- the budget's measurements


@dataclass(frozen=True)
class CorpusTokens:
    """The corpus as the run will see it: tokens, and the first validation tokens."""

    vocab_size: int
    n_chars: int
    n_tokens: int
    val_head: list[int]  # the first START_TOKENS tokens of the validation split

    @property
    def chars_per_token(self) -> float:
        return self.n_chars / max(self.n_tokens, 1)


@st.cache_data(max_entries=16, show_spinner="Tokenizing the corpus…")
def _corpus_tokens(kind: str, vocab_size: int, key: str, _text: str) -> CorpusTokens:
    tokenizer = shared.shared_tokenizer(kind, key, vocab_size, _text)
    ids = tokenizer.encode(_text)
    _, val = train_val_split(ids, trainer.TrainConfig.val_fraction)
    return CorpusTokens(tokenizer.vocab_size, len(_text), len(ids), val[:START_TOKENS].tolist())


def corpus_tokens(kind: str, vocab_size: int, corpus: Corpus, max_chars: int) -> CorpusTokens:
    """Tokenize the text a run would train on (the first `max_chars` characters) with the
    tokenizer it would build: the measured characters per token, not a rule of thumb."""
    text = corpus.text[:max_chars]
    return _corpus_tokens(kind, vocab_size, f"{shared.corpus_key(corpus)}:{len(text)}", text)


@st.cache_data(max_entries=16, show_spinner="Timing a few training steps…")
def step_times(config: dict, batch_size: int) -> trainer.StepTimes:
    """Measured once per model shape and batch (a throwaway model on random tokens)."""
    return trainer.measure_step_times(GPTConfig(**config), batch_size)


@st.cache_data(max_entries=16, show_spinner="Scoring the untrained model…")
def _untrained_loss(config: dict, seed: int, val_head: tuple[int, ...]) -> dict:
    return trainer.starting_loss(trainer.init_model(GPTConfig(**config), seed), list(val_head))


def untrained_loss(config: GPTConfig, seed: int, tokens: CorpusTokens) -> dict:
    """gptcore.trainer.starting_loss of the very model a run with this seed starts from."""
    return _untrained_loss(config.to_dict(), seed, tuple(tokens.val_head))


# ------------------------------------------------------------------- widgets, tables


def index_slider(label: str, count: int, key: str) -> int:
    """A slider over 0 … count-1 (a model's layers or heads), its kept value first brought
    inside the model; a caption when there is only one (a slider needs two values)."""
    if count <= 1:
        st.caption(f"{label}: 0, the only one")
        return 0
    state.clamp(key, 0, count - 1)
    return st.slider(label, 0, count - 1, key=key, persist_state="session")



def _loss(v) -> str:
    return "—" if v is None else f"{v:.4f}"


def runs_table(runs: list) -> pd.DataFrame:
    """Every run of this session, one row each, formatted for st.table (live while training)."""
    rows = []
    for run in runs:
        s = run.summary()
        rows.append({"run": s["run"], "status": s["status"], "model": s["model"],
                     "tokenizer": s["tokenizer"],
                     "steps": str(s["steps"]), "batch": str(s["batch"]), "lr": f"{s['lr']:g}",
                     "batch loss": _loss(s["batch loss"]), "train loss": _loss(s["train loss"]),
                     "val loss": _loss(s["val loss"]),
                     "perplexity": "—" if s["perplexity"] is None else f"{s['perplexity']:,.2f}",
                     "time (s)": f"{s['time (s)']:,.1f}", "tokens/s": f"{s['tokens/s']:,.0f}",
                     "continues": s["continues"] or "—"})
    frame = pd.DataFrame(rows).set_index("run")
    if (frame["continues"] == "—").all():
        frame = frame.drop(columns="continues")
    return frame


BASE_NAMES = {"ln": "e", "log2": "2", "log10": "10"}


def mixup_table(mean_loss: float) -> pd.DataFrame:
    """gptcore.trainer.perplexity_mixups as a grid: the loss's logarithm by row, the base of
    the exponential by column; the diagonal is the true perplexity, the rest a power of it."""
    grid = {}
    for row in trainer.perplexity_mixups(mean_loss):
        name = f"loss with {row['loss log']} = {row['loss']:.4f}"
        cell = f"{row['perplexity']:,.2f}"
        if abs(row["power"] - 1) > 1e-9:
            cell += f" (true^{row['power']:.3f})"
        grid.setdefault(name, {})[f"{BASE_NAMES[row['exponent base']]}^loss"] = cell
    return pd.DataFrame(grid).T
