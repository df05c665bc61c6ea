"""Home: what the course is, the lesson map, how to use it."""
import streamlit as st

import ui

ui.page_setup()

st.title("Building GPT, step by step")
st.markdown(
    """
An interactive course on how GPT works, from a real pretrained model down to a GPT you
train yourself in a minute on a laptop CPU. Every number on every page is computed live by
**`gptcore`**, a small from-scratch GPT package you can open and read next to the lesson
that uses it: each lesson has a *Show the gptcore code* box with the exact source.
"""
)

LESSONS = [
    ("pages/1_setup.py", "1 · Setup: meet a real GPT",
     "Load DistilGPT2, see its tokens and next-token probabilities, and steer sampling: "
     "temperature, top-k, top-p, seed, one token per click."),
    ("pages/2_tokenization.py", "2 · Tokenization & data",
     "Characters, words, a BPE you train live and GPT-2's BPE side by side; sliding "
     "windows, batches, padding and a leak-free train/validation split."),
    ("pages/3_attention.py", "3 · Attention",
     "Scores, softmax and weighted sums with real numbers; scaling, causal and padding "
     "masks as switches; heads one by one; attention maps of a real model."),
    ("pages/4_gpt.py", "4 · GPT architecture",
     "Build a GPT with sliders, count its parameters and FLOPs, trace every shape, and "
     "prove gptcore's GPT computes exactly what GPT-2 computes."),
    ("pages/5_training.py", "5 · Training lab",
     "Train a GPT in your browser with a live loss chart, read its samples improve, "
     "compare runs, and download your checkpoint."),
]

st.subheader("The lessons")
for path, title, blurb in LESSONS:
    with st.container(border=True):
        st.page_link(path, label=f"**{title}**")
        st.caption(blurb)

st.subheader("How to use it")
st.markdown(
    """
- Go through the lessons in order; each builds on the previous one, and each works alone.
- The sidebar holds the settings every lesson shares: the **corpus** (Tiny Shakespeare,
  Python's own documentation, or your own `.txt`), the **seed**, and which model is active.
- Move every slider. Nothing you do can break the app; odd input gets a plain message.
- When you outgrow the browser, the same code trains headless:
  `python -m gptcore.train --preset nanogpt-cpu --corpus input.txt`.
"""
)
