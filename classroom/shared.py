"""What the app shares between learners, cached once per process and read-only: the Hub
check, corpora, tokenizers built from a corpus, the pretrained models and the training lab.
Per-learner objects live in `st.session_state` (classroom.state), never here.
"""
from __future__ import annotations

import hashlib

import streamlit as st

from classroom import corpora, hub
from classroom.state import Keys

UPLOAD_LABEL = "Your own text (.txt)"


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


def corpus_key(corpus: corpora.Corpus) -> str:
    return f"{corpus.name}:{hashlib.sha1(corpus.text.encode('utf-8', 'surrogatepass')).hexdigest()}"


@st.cache_resource(max_entries=8, show_spinner="Training a BPE on the corpus…")
def shared_tokenizer(kind: str, key: str, vocab_size: int, _text: str):
    """Tokenizers built from a corpus, shared read-only (`key` names the corpus)."""
    from gptcore.tokenizers import build_tokenizer

    return build_tokenizer(kind, _text, vocab_size)


@st.cache_resource
def shared_lab():
    """One Lab per process: the caps and the queue every learner's runs go through."""
    from classroom.lab import Lab

    return Lab()
