"""The models a lesson can look at: DistilGPT2, a host's local folder, the learner's own model
from lesson 5, the small Shakespeare GPT the app ships (so that a class with no network still
sees a model that has learned something), a DistilGPT2-shaped model with random weights; and
the picker.

The sidebar of every page names the active model, so this module imports no torch: the model
code loads where a model is built or loaded (the home page opens without it).
"""
from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from classroom import corpora, hub, state
from classroom.shared import hub_status
from classroom.state import Keys

MODELS_DIR = corpora.DATA_DIR / "models"  # local GPT-2 folders a host may add
# Trained by `python -m gptcore.train --preset nanogpt-cpu ... --export` (README, "The shipped model")
SHIPPED_PATH = corpora.DATA_DIR / "shakespeare-char.pt"
SRC_DISTIL, SRC_LOCAL, SRC_RANDOM, SRC_TRAINED, SRC_SHIPPED = (
    "DistilGPT2 (Hugging Face)", "Local model folder", "Random DistilGPT2-shaped (untrained)",
    "Your trained model (lesson 5)", "Small Shakespeare GPT (shipped, trained)")


@dataclass
class ActiveModel:
    model: object  # a transformers GPT2LMHeadModel or a gptcore GPT, read-only
    tokenizer: object  # a gptcore Tokenizer
    label: str
    untrained: bool = False


def local_model_dirs() -> list[Path]:
    """GPT-2 folders the host provides: $GPTCORE_MODEL_DIR and data/models/*; never a typed path."""
    found = []
    env_dir = hub.env_model_dir()
    if env_dir and (env_dir / "config.json").is_file():
        found.append(env_dir)
    if MODELS_DIR.is_dir():
        found += sorted(p.parent for p in MODELS_DIR.glob("*/config.json"))
    return found


@st.cache_resource(max_entries=2, show_spinner="Loading the model (once for everyone)…")
def shared_hf_model(source: str, folder: str = ""):
    """One read-only copy per process, shared by every learner."""
    if source == SRC_DISTIL:
        return hub.load_distilgpt2(hub_status())
    if source == SRC_LOCAL:
        return hub.load_pretrained(folder)
    return random_model()


_random_lock = threading.Lock()


def random_model():
    """The random DistilGPT2-shaped GPT, built once per process (by classroom.warmup or by the
    first page that needs it, whichever comes first: the other waits for it)."""
    with _random_lock:
        return _build_random_model()


@functools.cache
def _build_random_model():
    return hub.random_gpt2(seed=0)


def distilgpt2_available(status) -> bool:
    """DistilGPT2 can be had: the Hub answers, or the model is in the local cache."""
    return status.online or hub.cached_snapshot() is not None


@st.cache_resource(max_entries=1, show_spinner="Loading the small Shakespeare GPT…")
def shipped_model():
    """The character-level GPT the app ships (checked like any upload); one copy for everyone."""
    from gptcore.checkpoint import CheckpointError, load_checkpoint

    ckpt = load_checkpoint(SHIPPED_PATH)
    if not ckpt["history"]:
        raise CheckpointError("it has no evaluation history.")
    return ckpt["model_obj"], ckpt["tokenizer_obj"], ckpt["history"][-1]["val_loss"]


def model_sources() -> list[str]:
    """The models that can be had here, best first; sets the session's choice if it has none.

    Offline, the random DistilGPT2-shaped model comes before the shipped one: it keeps GPT-2's
    tokens, which lesson 1 is about; the shipped model reads characters."""
    options = ([SRC_DISTIL] if distilgpt2_available(hub_status()) else []) \
        + ([SRC_LOCAL] if local_model_dirs() else []) \
        + ([SRC_TRAINED] if state.trained_model() else []) + [SRC_RANDOM] \
        + ([SRC_SHIPPED] if SHIPPED_PATH.is_file() else [])
    if st.session_state.get(Keys.model_choice) not in options:
        st.session_state[Keys.model_choice] = options[0]
    return options


def model_picker(key_prefix: str = "") -> ActiveModel:
    """Choose among the models that can be had here; explain the ones that cannot."""
    from gptcore.checkpoint import CheckpointError
    from gptcore.tokenizers import TiktokenTokenizer

    status = hub_status()
    options = model_sources()
    folders = local_model_dirs()
    trained = state.trained_model()
    if SRC_DISTIL not in options:
        st.info(
            f"**DistilGPT2 is not available here.** The Hugging Face Hub can't be reached "
            f"(checked in {status.seconds:.1f} s) and the model is not in the local cache. "
            "You can still do everything in this lesson with: a **DistilGPT2-shaped model with "
            "random weights** (GPT-2's tokens, every shape and number real, but it has learned "
            "nothing, so its text is noise); the **small Shakespeare GPT** this app ships (it "
            "reads characters, not GPT-2's tokens, and has learned real patterns: pick it to "
            "see real probabilities); a **local model folder** "
            f"(set `{hub.MODEL_DIR_ENV}` or put a `save_pretrained` folder in `data/models/`); "
            "or **your own model** once you have trained one in lesson 5.",
            icon=":material/cloud_off:")
    choice = st.radio("Model", options, key=Keys.model_choice, horizontal=True)
    if choice == SRC_TRAINED:
        return ActiveModel(trained.model, trained.tokenizer, f"your model ({trained.label})")
    if choice == SRC_SHIPPED:
        try:
            model, tokenizer, val_loss = shipped_model()
        except CheckpointError as e:  # a damaged install: say so, carry on with random weights
            st.warning(f"The shipped model cannot be used: {e} Using the random-weights model "
                       "instead.")
            choice = SRC_RANDOM
        else:
            st.caption(f"A {model.config.n_layer}-layer character-level GPT trained on Tiny "
                       f"Shakespeare with `gptcore.train` (validation loss {val_loss:.2f} nats "
                       "per character): it spells and punctuates like a play, and makes "
                       "little sense.")
            return ActiveModel(model, tokenizer, "the small Shakespeare GPT")
    folder = ""
    if choice == SRC_LOCAL:
        folder = str(st.selectbox("Folder", folders, key=f"{key_prefix}folder",
                                  format_func=lambda p: p.name))
    try:
        model = shared_hf_model(choice, folder)
    except hub.ModelUnavailable as e:
        st.warning(f"{e} Using the random-weights model instead.")
        choice, model = SRC_RANDOM, shared_hf_model(SRC_RANDOM)
    label = {SRC_DISTIL: "DistilGPT2", SRC_RANDOM: "random DistilGPT2-shaped (untrained)"}.get(
        choice, f"local: {Path(folder).name}")
    if choice == SRC_RANDOM:
        st.caption(":material/warning: Untrained: random weights. Probabilities are nearly "
                   "uniform and generated text is noise; that is expected.")
    return ActiveModel(model, TiktokenTokenizer(), label, untrained=choice == SRC_RANDOM)


def active_model_label() -> str:
    model_sources()  # makes sure the session has a choice
    choice = st.session_state[Keys.model_choice]
    trained = state.trained_model()
    if choice == SRC_TRAINED and trained:
        return f"your model ({trained.label})"
    return choice
