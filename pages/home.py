"""Home: what the course is, the lesson map, how to use it."""
import streamlit as st

from classroom import page
from classroom.lessons import LESSONS

page.setup()

st.title("Building GPT, step by step")
st.markdown(
    """
An interactive course on how GPT works, from a real pretrained model down to a GPT you
train yourself in a minute on a laptop CPU. Every number on every page is computed live by
**`gptcore`**, a small from-scratch GPT package you can open and read next to the lesson
that uses it: each lesson has a *Show the gptcore code* box with the exact source.
"""
)

st.subheader("The lessons")
for lesson in LESSONS:
    with st.container(border=True):
        st.page_link(lesson.page, label=f"**{lesson.nav_title}**")
        st.caption(lesson.blurb)

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
