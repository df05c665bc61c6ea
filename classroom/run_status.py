"""The learner's run in every page's sidebar: its step, loss and ETA while it trains, and the
newest run with weights adopted as the learner's model.

No torch here: the sidebar is drawn on every page, the home page included, which opens before
anything has loaded the model code. A run in the session means classroom.lab is loaded.
"""
from __future__ import annotations

import streamlit as st

from classroom import state
from classroom.state import Keys


def adopt_latest(runs: list) -> None:
    """The newest run with weights (trained or uploaded) is the learner's model in
    lessons 1 and 3."""
    for run in reversed(runs):
        if run.has_weights and run.model is not None and run.snapshot()["status"] != "failed":
            trained = state.trained_model()
            if trained is None or trained.label != run.label:
                state.set_trained_model(state.TrainedModel(run.model, run.tokenizer, run.label))
            return


def sidebar_status(lesson: int) -> None:
    """While the learner's run trains (or waits): its step, loss and ETA, as of the page's
    last redraw. Lesson 5 shows the run live in the page itself, so its sidebar does not.

    The sidebar does not tick: with a ticking fragment, a lesson's settings were lost when the
    learner moved to another lesson mid-run (measured in Chromium, lesson 2's sliders), and
    every fragment rerun costs the browser CPU that training would use (benchmarks.app_overhead).
    """
    runs = st.session_state.get(Keys.runs) or []
    adopt_latest(runs)
    if runs and runs[-1].active and lesson != 5:
        from classroom.lab import status_line

        st.caption(f":material/model_training: **Training** "
                   f"{status_line(runs[-1].label, runs[-1].snapshot())} · live in lesson 5")
