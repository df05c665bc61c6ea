"""Lesson 5's 'Train my GPT' section: the learner's Block beside the book's, live, in the
sandbox; when it ends the model joins the learner's runs like an upload of their own."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from classroom import charts, exercise_ui, lab as labmod, progress, sandbox, state
from classroom.yourgpt import YourGPTError, YourGPTRun, agreement, perplexity_line
from gptcore.checkpoint import CheckpointError
from gptcore.presets import BY_NAME
from gptcore.trainer import TrainConfig

RUN_KEY = "your_gpt_run"
MODEL = BY_NAME["Tiny GPT"].model  # small enough for its weights to come back in one message


def curves(run: YourGPTRun) -> pd.DataFrame:
    steps = run.snapshot()["steps"]
    return pd.DataFrame([{"iter": i, "loss": loss, "split": who}
                         for i, ref, yours in steps
                         for who, loss in (("the book's GPT", ref), ("your GPT", yours))],
                        columns=["iter", "loss", "split"])


def section(corpus, runs: list, max_params: int) -> None:
    """Everything under 'Train the GPT you wrote'."""
    record = progress.progress()
    if "model.Block" not in record.passed:
        st.info("Write GPT-2's block in lesson 4 (*Build it yourself: Block*) and pass its check: "
                "then you can train a GPT made of **your** blocks here, beside the book's.",
                icon=":material/lock:")
        st.page_link("pages/4_gpt.py", label="Go to lesson 4's Block exercise")
        return
    if not sandbox.enabled():
        st.info(sandbox.OFF_MESSAGE, icon=":material/block:")
        return
    st.markdown(f"Both GPTs are the *{MODEL.n_layer} layers × {MODEL.n_head} heads × "
                f"{MODEL.n_embd}, context {MODEL.block_size}* model, character level on "
                f"{corpus.name}. They start from the **same weights** and see the **same "
                "batches**, so with a correct Block the two curves lie on top of each other, "
                "to float rounding. Your code runs in the sandbox; only numbers come back.")
    c1, c2, c3 = st.columns([2, 1, 1])
    steps = c1.slider("Steps for both GPTs", 20, 300, 100, 10, key="l5_yours_steps")
    run: YourGPTRun | None = st.session_state.get(RUN_KEY)
    busy = run is not None and run.active
    if c2.button("Train my GPT", type="primary", key="act_l5_train_yours", disabled=busy):
        config = TrainConfig(batch_size=16, max_iters=steps, lr=3e-3, min_lr=3e-4,
                             warmup_iters=10, eval_interval=steps, seed=state.seed(),
                             sample_tokens=0)
        try:
            run = YourGPTRun(record.code["model.Block"], corpus.text, MODEL, config,
                             exercise_ui.learner_id(), f"your GPT {len(runs) + 1}").start()
            st.session_state[RUN_KEY] = run
            busy = True
        except YourGPTError as e:
            st.error(str(e))
    if c3.button("Stop", key="act_l5_stop_yours", disabled=not busy):
        run.stop()
    if run is not None:
        st.fragment(run_every=1.0 if busy else None)(live)(run, runs, max_params)


def live(run: YourGPTRun, runs: list, max_params: int) -> None:
    snap = run.snapshot()
    done = snap["steps"][-1][0] if snap["steps"] else 0
    if snap["status"] in YourGPTRun.active_statuses:
        st.progress(min(done / max(snap["max_iters"], 1), 1.0),
                    text=f"{run.label}: step {done:,} / {snap['max_iters']:,} · {snap['message']}")
        if not run.active:  # it ended between two ticks: draw the result now
            st.rerun()
    frame = curves(run)
    if not frame.empty:
        st.vega_lite_chart(charts.loss_chart(frame, title=f"{run.label}: the book's GPT and yours, "
                                                       "same weights, same batches"),
                        width="stretch")
    if snap["status"] == "failed":
        st.error(snap["message"], icon=":material/error:")
    elif snap["status"] == "done":
        result = snap["result"]
        (st.success if result["parted_at"] is None else st.warning)(agreement(result, done))
        st.markdown(perplexity_line(result))
        st.code(result["sample"], language=None, wrap_lines=True)
        if not any(getattr(r, "label", None) == run.label for r in runs):
            try:
                loaded = labmod.LoadedRun.from_bytes(run.checkpoint_bytes(), run.label, max_params)
            except CheckpointError as e:
                st.error(f"Your trained model could not join your runs: {e}")
                return
            runs.append(loaded)
            state.set_trained_model(state.TrainedModel(loaded.model, loaded.tokenizer, run.label))
            st.rerun()  # the runs table and the results above now include it
        st.caption(f"{run.label} is now one of your runs above (samples, per-token loss, "
                   "checkpoint download) and **your model** in lessons 1 and 3.")
