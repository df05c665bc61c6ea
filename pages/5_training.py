"""Lesson 5: the training lab. Configure, budget, train live, stop, compare, continue, download."""
import streamlit as st

from classroom import exercise_ui, page, training_views as views, widgets as ui, yourgpt_view
from gptcore import trainer as trainmod

page.setup(5, """
Training repeats one loop: take a batch of windows, compute the loss (how surprised the model
is by each next token), compute gradients, and nudge every weight downhill with AdamW. Press
**Train** and watch the loss fall; the run keeps going while you read other lessons.
""")
st.markdown("""
**In this lesson you will**
- read a run's budget before spending it: parameters, tokens per step, a measured step, the ETA;
- watch a GPT learn: loss curves, a sample at every evaluation, attention taking shape;
- read the loss right: where it starts (not quite ln V), and perplexity = e^loss in one base;
- compare runs, continue one, and take your model to lessons 1 and 3.
""")

session = views.lab_session()

# ------------------------------------------------------------------ configuration
st.subheader("1 · Set up a run")
form = views.run_form(session)
views.adamw_schedule(form.train_config)

# ------------------------------------------------------------------ budget
exercise_ui.question("train.untrained_loss")
st.subheader("2 · The budget, before you press Train")
views.budget(session.caps, form)

# ------------------------------------------------------------------ train / stop
st.subheader("3 · Train")
views.train(form)
exercise_ui.exercise("train.train_step")

# ------------------------------------------------------------------ results
st.subheader("4 · After a run")
views.results(session)

# ------------------------------------------------------------------ runs
exercise_ui.question("train.perplexity_of")
exercise_ui.exercise("train.perplexity")

st.subheader("5 · Compare and keep your runs")
views.upload(session)
views.curves_and_downloads(session)

# ------------------------------------------------------------------ recap
st.subheader("6 · Train the GPT you wrote")
yourgpt_view.section(session.corpus, session.runs, session.caps.max_params)

st.subheader("Recap")
st.markdown("""
- A run's cost is known before it starts: steps × a measured step, plus evaluations that read
  the whole validation split; the budget above is that sum, not a guess.
- An untrained GPT scores about ln V, a little below it with a tied head: its own-token logit
  is a head start on repeated tokens.
- Perplexity is e^loss with the loss in nats; a log in one base and an exponential in
  another are off by a power.
- Sampling at every evaluation shows what the loss curve cannot: the text the model writes.
""")
ui.show_code(trainmod.lr_at, trainmod.train_step, trainmod.evaluate, trainmod.eta_seconds)
st.markdown("Outgrown the browser? The same trainer runs headless: "
            "`python -m gptcore.train --preset fast-cpu --corpus input.txt`, and on many "
            "processes or GPUs with `torchrun --nproc_per_node N -m gptcore.train …`.")
exercise_ui.notebook_download(5)
page.footer(5)
