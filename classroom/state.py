"""A learner's session: every key named here, typed values, settings that outlive a page.

Streamlit forgets a widget's value when a page without that widget runs, so moving between
lessons would reset every slider. `keep_settings()` runs at the top of every page and stores
each setting again (Streamlit's documented way to keep widget values across pages). A
setting is any key of `SIDEBAR_KEYS` or any key that starts with a lesson prefix ("l1_" …
"l5_"). Buttons, uploaders, data editors, code editors and download buttons cannot be set
that way, so their keys start with `ACTION` instead ("act_l1_generate").
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import streamlit as st

from gptcore.config import GPTConfig


class Keys:
    """Every session-state key that is not a single lesson's own widget."""

    corpus = "corpus_name"
    seed = "seed"
    upload = "act_corpus_upload"
    uploaded_corpus = "uploaded_corpus"  # a classroom.corpora.Corpus
    model_choice = "model_choice"
    trained = "trained_model"  # a TrainedModel from the training lab
    runs = "training_runs"  # the learner's runs in lesson 5 (TrainingRun / LoadedRun)
    built_config = "built_config"  # lesson 4's GPTConfig, for lesson 5
    progress = "progress"  # exercise and question progress (classroom.progress)


SIDEBAR_KEYS = (Keys.corpus, Keys.seed, Keys.model_choice)
ACTION = "act_"
SETTING = re.compile(r"l[1-5]_")
DEFAULT_SEED = 1337
MEMO = "memo_"  # last_result's keys


def keep_settings() -> None:
    """Store every setting again so that no page's widgets are forgotten (see above)."""
    for key in list(st.session_state.keys()):
        if key in SIDEBAR_KEYS or SETTING.match(key):
            st.session_state[key] = st.session_state[key]


def seed() -> int:
    return int(st.session_state.get(Keys.seed, DEFAULT_SEED))


@dataclass(frozen=True)
class TrainedModel:
    """The learner's model from lesson 5 (trained or uploaded), read by lessons 1 and 3."""

    model: object  # a gptcore GPT in eval mode, never trained further once here
    tokenizer: object  # a gptcore Tokenizer
    label: str

    @property
    def config(self) -> GPTConfig:
        return self.model.config


def trained_model() -> TrainedModel | None:
    return st.session_state.get(Keys.trained)


def set_trained_model(model: TrainedModel) -> None:
    st.session_state[Keys.trained] = model


def built_config() -> GPTConfig | None:
    """The model a learner last built in lesson 4, every field of it."""
    return st.session_state.get(Keys.built_config)


def set_built_config(config: GPTConfig) -> None:
    st.session_state[Keys.built_config] = config


def last_result(name: str, inputs: tuple, compute):
    """`compute()`, or what it returned last time in this session for the same `inputs`.

    For work a page redoes on every rerun although its inputs rarely change (a model's forward
    pass for a text): any widget on the page reruns it, and so does coming back to the
    lesson. Only the last result is kept. `inputs` compare with ==, so a model (no __eq__)
    compares by identity, and the kept tuple holds it: its id cannot pass to another."""
    kept = st.session_state.get(f"{MEMO}{name}")
    if kept is not None and kept[0] == inputs:
        return kept[1]
    result = compute()
    st.session_state[f"{MEMO}{name}"] = (inputs, result)
    return result


def clamp(key: str, low, high) -> None:
    """Before a widget whose bounds depend on other settings (a merges slider over a
    vocabulary, a layer slider over a model): bring a kept value back inside its bounds."""
    value = st.session_state.get(key)
    if value is not None and not low <= value <= high:
        st.session_state[key] = min(max(value, low), high)
