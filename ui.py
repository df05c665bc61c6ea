"""Shared pieces of the app's pages: session keys, the sidebar, token spans, "show the code".

Pages import this and gptcore; gptcore never imports this (it has no streamlit in it).
Caching lives here, in the UI layer: shared objects are read-only, per-learner objects
live in `st.session_state`.
"""
from __future__ import annotations

import contextlib
import hashlib
import html
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from gptcore import corpora, hub

log = logging.getLogger("gptcourse")


class Keys:
    """Every session-state key the app uses, named in one place."""

    corpus = "corpus_name"
    seed = "seed"
    upload = "corpus_upload"
    uploaded_corpus = "uploaded_corpus"
    model_choice = "model_choice"
    model_dir = "model_dir"
    trained = "trained_model"  # {"model", "tokenizer", "label"} from the training lab
    lab = "training_lab"  # the learner's TrainingSession (lesson 5)


UPLOAD_LABEL = "Your own text (.txt)"
PALETTE = ["#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6", "#a0c4ff", "#ffadad"]


# --------------------------------------------------------------------------- cached data


@st.cache_data(ttl=300, show_spinner="Checking whether the Hugging Face Hub is reachable…")
def hub_status() -> hub.HubStatus:
    return hub.hub_status(timeout=3.0)


@st.cache_data(show_spinner="Loading the corpus…", max_entries=4)
def load_corpus(name: str) -> tuple[corpora.Corpus, str | None]:
    return corpora.load_corpus(name)


def current_corpus() -> corpora.Corpus:
    """The corpus chosen in the sidebar (the learner's upload when they picked it)."""
    name = st.session_state.get(Keys.corpus, corpora.CORPORA[0])
    uploaded = st.session_state.get(Keys.uploaded_corpus)
    if name == UPLOAD_LABEL and uploaded is not None:
        return uploaded
    corpus, _ = load_corpus(name if name in corpora.CORPORA else corpora.CORPORA[0])
    return corpus


def seed() -> int:
    return int(st.session_state.get(Keys.seed, 1337))


# --------------------------------------------------------------------------- sidebar


def _active_model_label() -> str:
    model_sources()  # makes sure the session has a choice
    choice = st.session_state[Keys.model_choice]
    trained = st.session_state.get(Keys.trained)
    if choice == SRC_TRAINED and trained:
        return f"your model ({trained['label']})"
    return choice


def sidebar() -> None:
    """The shared sidebar: corpus, seed, active model, Hub reachability."""
    with st.sidebar:
        st.markdown("### Course settings")
        options = [*corpora.CORPORA, UPLOAD_LABEL]
        st.selectbox("Corpus", options, key=Keys.corpus,
                     help="The text lessons 2 and 5 tokenize and train on.")
        if st.session_state.get(Keys.corpus) == UPLOAD_LABEL:
            upload = st.file_uploader("Upload a UTF-8 .txt file", type=["txt"], key=Keys.upload)
            if upload is not None:
                try:
                    st.session_state[Keys.uploaded_corpus] = corpora.decode_upload(
                        upload.getvalue(), upload.name)
                except corpora.CorpusError as e:
                    st.session_state[Keys.uploaded_corpus] = None
                    st.error(str(e))
            if st.session_state.get(Keys.uploaded_corpus) is None:
                st.caption("Until a file is uploaded, lessons use Tiny Shakespeare.")
        else:
            _, warning = load_corpus(st.session_state[Keys.corpus])
            if warning:
                st.caption(":material/cloud_off: Tiny Shakespeare is not downloaded yet and "
                           "the internet can't be reached, so lessons use Python's "
                           "documentation.", help=warning)
        corpus = current_corpus()
        st.caption(f"{corpus.name}: {corpus.n_chars:,} characters")
        st.number_input("Seed", min_value=0, max_value=2**31 - 1, step=1, key=Keys.seed,
                        help="One seed for every random choice in the lessons.")
        st.markdown(f"**Active model:** {_active_model_label()}")
        status = hub_status()
        if status.online:
            st.caption(":material/cloud_done: Hugging Face Hub reachable")
        else:
            st.caption(":material/cloud_off: Hugging Face Hub unreachable: lesson 1 offers "
                       "offline models.", help=status.reason)


def page_setup() -> None:
    """Every page calls this first: session defaults, then the shared sidebar."""
    st.session_state.setdefault(Keys.corpus, corpora.CORPORA[0])
    st.session_state.setdefault(Keys.seed, 1337)
    sidebar()


# --------------------------------------------------------------------------- rendering


def visible(text: str) -> str:
    """Make spaces and line breaks inside a token visible."""
    return (text.replace(" ", "␣").replace("\n", "↵").replace("\t", "⇥")
            .replace("\r", "␍") or "∅")


def token_spans(texts: list[str], ids: list[int] | None = None, highlight: set[int] = frozenset(),
                max_tokens: int = 400) -> None:
    """Tokens as coloured spans, ids underneath; `highlight` marks positions (e.g. <unk>) in red."""
    parts = []
    for i, text in enumerate(texts[:max_tokens]):
        colour = "#ff8a8a" if i in highlight else PALETTE[i % len(PALETTE)]
        id_line = f"<sub style='opacity:.65'>{ids[i]}</sub>" if ids is not None else ""
        parts.append(
            f"<span style='background:{colour};border-radius:4px;padding:1px 3px;margin:1px;"
            f"display:inline-block;font-family:monospace;line-height:1.9'>"
            f"{html.escape(visible(text))}{id_line}</span>"
        )
    more = len(texts) - max_tokens
    if more > 0:
        parts.append(f"<span style='opacity:.6'> … and {more:,} more tokens</span>")
    st.markdown("<div>" + "".join(parts) + "</div>", unsafe_allow_html=True)


def show_code(*objects, label: str = "Show the gptcore code behind these numbers") -> None:
    """An expander with the source of the functions or classes that produced a view."""
    with st.expander(label):
        for obj in objects:
            st.caption(f"`{obj.__module__}.{obj.__qualname__}`")
            st.code(inspect.getsource(obj), language="python")


@contextlib.contextmanager
def explain_errors(what: str):
    """Turn an unexpected error into a plain message in the page; never a traceback."""
    try:
        yield
    except Exception as e:  # st.rerun/st.stop are BaseExceptions and pass through  # noqa: BLE001 - the page must survive anything a learner does
        log.exception("error while %s", what)
        st.error(f"Something went wrong while {what}: {e}. Nothing you made was lost; "
                 "try other settings.")


def lesson_header(number: int, title: str, intro: str) -> None:
    st.title(f"{number} · {title}")
    st.markdown(intro)


# --------------------------------------------------------------------------- models

MODELS_DIR = corpora.DATA_DIR / "models"  # local GPT-2 folders a host may add
SRC_DISTIL, SRC_LOCAL, SRC_RANDOM, SRC_TRAINED = (
    "DistilGPT2 (Hugging Face)", "Local model folder", "Random DistilGPT2-shaped (untrained)",
    "Your trained model (lesson 5)")


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
    return hub.random_gpt2(seed=0)


def model_sources() -> list[str]:
    """The models that can be had here, best first; sets the session's choice if it has none."""
    distil_ok = hub_status().online or hub.cached_snapshot() is not None
    options = ([SRC_DISTIL] if distil_ok else []) + ([SRC_LOCAL] if local_model_dirs() else []) \
        + ([SRC_TRAINED] if st.session_state.get(Keys.trained) else []) + [SRC_RANDOM]
    if st.session_state.get(Keys.model_choice) not in options:
        st.session_state[Keys.model_choice] = options[0]
    return options


def model_picker(key_prefix: str = "") -> ActiveModel:
    """Choose among the models that can be had here; explain the ones that cannot."""
    from gptcore.tokenizers import TiktokenTokenizer

    status = hub_status()
    options = model_sources()
    folders = local_model_dirs()
    trained = st.session_state.get(Keys.trained)
    if SRC_DISTIL not in options:
        st.info(
            f"**DistilGPT2 is not available here.** The Hugging Face Hub can't be reached "
            f"(checked in {status.seconds:.1f} s) and the model is not in the local cache. "
            "You can still do everything in this lesson with: a **local model folder** "
            f"(set `{hub.MODEL_DIR_ENV}` or put a `save_pretrained` folder in `data/models/`), a "
            "**DistilGPT2-shaped model with random weights** (every shape and number is real, "
            "but it has learned nothing, so its text is noise), or **your own model** once you "
            "have trained one in lesson 5.", icon=":material/cloud_off:")
    choice = st.radio("Model", options, key=Keys.model_choice, horizontal=True)
    if choice == SRC_TRAINED:
        return ActiveModel(trained["model"], trained["tokenizer"], f"your model ({trained['label']})")
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


# --------------------------------------------------------------------------- tokenizers

MAX_TEXT_CHARS = 20_000


def corpus_key(corpus: corpora.Corpus) -> str:
    return f"{corpus.name}:{hashlib.sha1(corpus.text.encode('utf-8', 'surrogatepass')).hexdigest()}"


@st.cache_resource(max_entries=8, show_spinner="Training a BPE on the corpus…")
def shared_tokenizer(kind: str, key: str, vocab_size: int, _text: str):
    """Tokenizers built from a corpus, shared read-only (`key` names the corpus)."""
    from gptcore.tokenizers import build_tokenizer

    return build_tokenizer(kind, _text, vocab_size)


def bounded_text(text: str, what: str = "text") -> str:
    """Cut very long input with a message instead of freezing the page."""
    if len(text) > MAX_TEXT_CHARS:
        st.warning(f"The {what} has {len(text):,} characters; this view uses the first "
                   f"{MAX_TEXT_CHARS:,}.")
        return text[:MAX_TEXT_CHARS]
    return text


# --------------------------------------------------------------------------- training lab


@st.cache_resource
def shared_lab():
    """One Lab per process: the caps and the queue every learner's runs go through."""
    from gptcore.lab import Lab

    return Lab()


def loss_spans(texts: list[str], losses: list[float], max_tokens: int = 300) -> None:
    """Tokens coloured by their loss: green = predicted well, red = surprised."""
    finite = [v for v in losses if v == v]
    top = max(finite, default=1.0) or 1.0
    parts = []
    for text, loss in list(zip(texts, losses))[:max_tokens]:
        if loss != loss:  # the first token has nothing to be predicted from
            colour, tip = "#eeeeee", "no context"
        else:
            r = min(loss / top, 1.0)
            colour = f"rgb({int(120 + 135 * r)},{int(220 - 140 * r)},{int(140 - 60 * r)})"
            tip = f"loss {loss:.2f}"
        parts.append(f"<span title='{tip}' style='background:{colour};border-radius:3px;"
                     f"padding:1px 2px;margin:1px;display:inline-block;font-family:monospace'>"
                     f"{html.escape(visible(text))}</span>")
    st.markdown("<div>" + "".join(parts) + "</div>", unsafe_allow_html=True)
