"""Build it yourself, in the page: an exercise in a code editor with Check, hints, the
solution and a reset; and predict-then-see questions. Learner code runs only in the sandbox.

Each panel is a fragment: typing, checking and hints rerun the panel, not the lesson.
"""
from __future__ import annotations

import math
import uuid

import pandas as pd
import streamlit as st
from code_editor import code_editor

from classroom import progress as progress_mod, sandbox
from gptcore.exercises import BY_ID, QUESTIONS, CheckResult

QUESTIONS_BY_ID = {q.id: q for q in QUESTIONS}
CHECK_BUTTON = {"name": "Check", "feather": "Play", "primary": True, "hasText": True,
                "alwaysOn": True, "showWithIcon": True, "commands": ["submit"],
                "style": {"bottom": "0.44rem", "right": "0.4rem"}}
# The editor answers only on Check (no "blur" responses): a blur fires when the learner clicks
# another lesson in the sidebar, and that fragment rerun, racing the page switch, left the new
# page blank (seen in Chromium: "Couldn't find fragment").
EDITOR_OPTIONS = {"showLineNumbers": True, "tabSize": 4, "useSoftTabs": True, "wrap": True,
                  "fontFamily": "monospace", "fontSize": 14}


def learner_id() -> str:
    """A random id per browser session: the sandbox runs one check at a time per learner."""
    return st.session_state.setdefault("learner_id", uuid.uuid4().hex)


def _key(exercise_id: str, what: str) -> str:
    return f"ex:{exercise_id}:{what}"


def run_check(exercise_id: str, source: str) -> CheckResult:
    """The learner's code, checked in the sandbox; the sandbox's refusals become results."""
    try:
        return sandbox.check(exercise_id, source, learner=learner_id())
    except (sandbox.SandboxUnavailable, sandbox.SandboxBusy) as e:
        return CheckResult(passed=False, feedback=str(e), stage="runs", line=None, table=[])


def show_result(result: CheckResult) -> None:
    if result.passed:
        st.success(result.feedback, icon=":material/check_circle:")
        return
    where = f" (line {result.line} of your code)" if result.line else ""
    st.error(result.feedback + where, icon=":material/error:")
    if result.table:
        st.dataframe(pd.DataFrame(result.table), hide_index=True)


def _editor_open(exercise_id: str, record) -> bool:
    """The editor shows once the learner has begun: pressed "Write it here", or has code of
    their own for it (kept from a check or restored from a progress file)."""
    return bool(st.session_state.get(_key(exercise_id, "open")) or exercise_id in record.code
                or st.session_state.get(_key(exercise_id, "result")))


@st.fragment
def exercise(exercise_id: str) -> None:
    """The exercise `exercise_id` (see gptcore.exercises), inline where the concept is taught."""
    ex = BY_ID[exercise_id]
    record = progress_mod.progress()
    version = st.session_state.setdefault(_key(exercise_id, "version"), 0)
    with st.container(border=True):
        done = " ✅" if exercise_id in record.passed else ""
        st.markdown(f"##### :material/edit_note: Build it yourself: {ex.title}{done}")
        st.markdown(ex.statement)
        if ex.formula:
            st.latex(ex.formula)
        code = record.code.get(exercise_id, ex.starter)
        if not _editor_open(exercise_id, record):
            # A code editor is a frame of its own that takes the browser about a quarter of a
            # second to start; a lesson has up to four, so each waits for the learner to begin.
            with (starter := st.empty()).container():
                st.code(code, language="python", line_numbers=True)
                begin = st.button("Write it here", key=f"act_write_{exercise_id}",
                                  type="primary", icon=":material/edit:")
            if not begin:
                return
            starter.empty()
            st.session_state[_key(exercise_id, "open")] = True
        response = code_editor(code, lang="python", height=[8, 28], buttons=[CHECK_BUTTON],
                               options=EDITOR_OPTIONS,
                               key=f"act_editor_{exercise_id}_{version}")
        seen = _key(exercise_id, "seen")
        if response and response.get("id") and response["id"] != st.session_state.get(seen):
            st.session_state[seen] = response["id"]
            record.code[exercise_id] = response["text"]
            if response["type"] == "submit":
                with st.spinner("Checking your code in the sandbox…"):
                    result = run_check(exercise_id, response["text"])
                st.session_state[_key(exercise_id, "result")] = result
                (record.passed.add if result.passed else record.passed.discard)(exercise_id)
                st.rerun(scope="fragment")  # the title's ✅ follows the result
        if not sandbox.enabled():
            st.info(sandbox.OFF_MESSAGE, icon=":material/block:")
        st.caption("Press **Check** or Ctrl+Enter (⌘+Enter on a Mac) to run the checker; "
                   "that also keeps your code when you move to another lesson. It runs in a "
                   "sandbox, apart from this app.")
        result = st.session_state.get(_key(exercise_id, "result"))
        if result is not None:
            show_result(result)

        hints_key = _key(exercise_id, "hints")
        shown = st.session_state.setdefault(hints_key, 0)
        for i, hint in enumerate(ex.hints[:shown]):
            st.info(f"**Hint {i + 1}.** {hint}", icon=":material/lightbulb:")
        c1, c2, c3 = st.columns(3)
        if c1.button(f"Hint ({min(shown + 1, len(ex.hints))}/{len(ex.hints)})",
                     key=f"act_hint_{exercise_id}", disabled=shown >= len(ex.hints)):
            st.session_state[hints_key] = shown + 1
            st.rerun(scope="fragment")
        solution_key = _key(exercise_id, "solution")
        if c2.button("Hide the solution" if st.session_state.get(solution_key) else
                     "Show the solution", key=f"act_solution_{exercise_id}"):
            st.session_state[solution_key] = not st.session_state.get(solution_key)
            st.rerun(scope="fragment")
        if c3.button("Reset to the starter", key=f"act_reset_{exercise_id}"):
            record.code.pop(exercise_id, None)
            st.session_state[_key(exercise_id, "version")] = version + 1
            st.session_state.pop(_key(exercise_id, "result"), None)
            st.rerun(scope="fragment")
        if st.session_state.get(solution_key):
            st.caption("The book's own code (gptcore) is the reference answer:")
            st.code(ex.solution, language="python")


@st.cache_data(show_spinner="Computing the answer…", max_entries=64)
def _answer(question_id: str) -> tuple[float | int, str]:
    return QUESTIONS_BY_ID[question_id].compute()


@st.fragment
def question(question_id: str) -> None:
    """Predict, then see: the learner commits a prediction, then the live answer appears."""
    q = QUESTIONS_BY_ID[question_id]
    record = progress_mod.progress()
    with st.container(border=True):
        st.markdown(f"##### :material/psychology_alt: Predict, then see\n{q.prompt}")
        committed = record.predictions.get(question_id)
        if committed is None:
            if q.options:
                guess = st.radio("Your prediction", range(len(q.options)), index=None,
                                 format_func=lambda i: q.options[i], key=f"act_q_{question_id}")
            else:
                guess = st.number_input("Your prediction", value=None, format="%g",
                                        key=f"act_q_{question_id}")
            if st.button("Commit my prediction", key=f"act_commit_{question_id}",
                         disabled=guess is None):
                record.predictions[question_id] = guess
                st.rerun(scope="fragment")
            st.caption("The answer is computed live once you commit.")
            return
        answer, explanation = _answer(question_id)
        said = q.options[committed] if q.options else f"{committed:g}"
        right = committed == answer if q.options else \
            math.isclose(committed, answer, rel_tol=q.tolerance, abs_tol=1e-9)
        if right:
            st.success(f"You predicted **{said}**: right.", icon=":material/check_circle:")
        else:
            truth = q.options[answer] if q.options else f"{answer:,.4g}"
            st.warning(f"You predicted **{said}**; the answer is **{truth}**.",
                       icon=":material/lightbulb:")
        st.markdown(explanation)


def notebook_download(lesson: int) -> None:
    """This lesson as a Jupyter notebook, with the learner's code in its cells.

    The notebook is written when the button is clicked, from the code as it is then: a check
    reruns only its exercise, not this button, and writing (and validating) the notebook on
    every rerun of the page cost 0.05 s of each."""
    from gptcore.course import BY_NUMBER

    record = progress_mod.progress()  # the session's own: the click runs in another thread

    def notebook() -> bytes:
        from gptcore.notebooks import notebook_bytes  # nbformat: 0.3 s to import, once clicked

        return notebook_bytes(lesson, dict(record.code))

    name = BY_NUMBER[lesson].notebook
    st.download_button("Download this lesson as a notebook", notebook,
                       f"{name}.ipynb", "application/x-ipynb+json", key=f"act_l{lesson}_notebook",
                       on_click="ignore", icon=":material/download:",
                       help=f"{name}.ipynb, with your code from this lesson's exercises in its "
                            "cells.")


def use_mine(exercise_ids: tuple[str, ...], what: str, key: str) -> bool:
    """A switch to compute with the learner's own passed functions; off (and saying why)
    until every one of `exercise_ids` has passed."""
    from classroom import yours

    ready = yours.available(*exercise_ids)
    names = ", ".join(f"`{BY_ID[i].name}`" for i in exercise_ids)
    on = st.toggle(f"Use my version ({names})", key=key, disabled=not ready,
                   help=f"Draw {what} with the code you wrote and passed in this lesson's "
                        "exercises, run in the sandbox." if ready else
                   f"Pass the exercises for {names} first; then {what} can be drawn with your code.")
    return on and ready
