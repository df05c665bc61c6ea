"""What every page does first and last: session defaults, kept settings, the shared sidebar,
the lesson's header from the registry, and links to the previous and next lessons."""
from __future__ import annotations

import streamlit as st

from classroom import corpora, models, run_status, state
from classroom.lessons import BY_NUMBER, LESSONS
from classroom.progress import progress
from classroom.shared import UPLOAD_LABEL, current_corpus, hub_status, load_corpus
from classroom.state import Keys


def sidebar(lesson: int = 0) -> None:
    """The shared sidebar: corpus, seed, the run in training, the active model, progress and
    Hub reachability."""
    with st.sidebar:
        st.markdown("### Course settings")
        st.selectbox("Corpus", [*corpora.CORPORA, UPLOAD_LABEL], key=Keys.corpus,
                     help="The text lessons 2 and 5 tokenize and train on.")
        if st.session_state.get(Keys.corpus) == UPLOAD_LABEL:
            upload = st.file_uploader("Upload a UTF-8 .txt file", type=["txt"], key=Keys.upload)
            if upload is not None:
                try:
                    st.session_state[Keys.uploaded_corpus] = corpora.decode_upload(
                        upload.getvalue(), upload.name)
                except corpora.CorpusError as e:
                    st.error(str(e))
            if st.session_state.get(Keys.uploaded_corpus) is None:
                fallback, _ = load_corpus(corpora.CORPORA[0])
                st.caption(f"Until a file is uploaded, lessons use {fallback.name}.")
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
        run_status.sidebar_status(lesson)
        st.markdown(f"**Active model:** {models.active_model_label()}")
        progress_summary()
        status = hub_status()
        if status.online:
            st.caption(":material/cloud_done: Hugging Face Hub reachable")
        else:
            st.caption(":material/cloud_off: Hugging Face Hub unreachable: lesson 1 offers "
                       "offline models.", help=status.reason)


def progress_summary() -> None:
    """Exercises passed and questions answered, per lesson, in one line each."""
    record = progress()
    lines = []
    for lesson in LESSONS:
        n = record.lesson_counts(lesson.number)
        if n["exercises"] or n["questions"]:
            mark = " ✅" if n["passed"] == n["exercises"] and n["answered"] == n["questions"] else ""
            lines.append(f"{lesson.number}: {n['passed']}/{n['exercises']} exercises · "
                         f"{n['answered']}/{n['questions']} predictions{mark}")
    if lines:
        st.markdown("**Your progress**  \n" + "  \n".join(lines))


def setup(lesson: int = 0, intro: str = "") -> None:
    """Every page calls this first: defaults, kept settings, the sidebar and its header."""
    st.session_state.setdefault(Keys.corpus, corpora.CORPORA[0])
    st.session_state.setdefault(Keys.seed, state.DEFAULT_SEED)
    state.keep_settings()
    sidebar(lesson)
    if lesson:
        st.title(BY_NUMBER[lesson].nav_title)
        if intro:
            st.markdown(intro)


def footer(lesson: int) -> None:
    """Links to the previous and the next lesson."""
    st.divider()
    left, right = st.columns(2)  # halves: the longest title ("2 · Tokenization and the
    # dataloader") fits on one line
    before, after = BY_NUMBER.get(lesson - 1), BY_NUMBER.get(lesson + 1)
    if before is not None:
        left.page_link(before.page, label=f"← {before.nav_title}")
    if after is not None and after in LESSONS:
        with right.container(horizontal_alignment="right"):
            st.page_link(after.page, label=f"{after.nav_title} →")
