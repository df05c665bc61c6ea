"""Home: what the course is, the lesson map, how to use it."""
import streamlit as st

from classroom import page, progress
from classroom.lessons import LESSONS
from gptcore.course import GLOSSARY, REFERENCES

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
record = progress.progress()
for lesson in LESSONS:
    with st.container(border=True):
        left, right = st.columns([3, 1])
        left.page_link(lesson.page, label=f"**{lesson.nav_title}**")
        left.caption(lesson.blurb)
        n = record.lesson_counts(lesson.number)
        right.caption(f"**Build it yourself:** {n['passed']} of {n['exercises']} exercises passed"
                      f"  \n**Predict, then see:** {n['answered']} of {n['questions']} answered")

st.subheader("Your work, to take with you")
st.markdown("Your code for every exercise, which ones passed and your predictions live in this "
            "browser session. Download them as a small file and upload it later (here or on "
            "another computer) to carry on where you left off.")
c1, c2 = st.columns(2)
c1.download_button("Download my progress", record.to_json(), "gpt-course-progress.json",
                   "application/json", key="act_progress_download", on_click="ignore",
                   icon=":material/download:")
upload = c2.file_uploader("Upload a progress file", type=["json"], key="act_progress_upload")
if upload is not None and st.session_state.get("progress_uploaded") != upload.file_id:
    try:
        restored = progress.restore(upload.getvalue())
        st.session_state["progress_uploaded"] = upload.file_id
        st.session_state["progress_flash"] = (
            f"Progress restored: code for {len(restored.code)} exercises, "
            f"{len(restored.passed)} passed, {len(restored.predictions)} predictions.")
        st.rerun()
    except progress.ProgressError as e:
        st.error(str(e))
if "progress_flash" in st.session_state:
    st.success(st.session_state.pop("progress_flash"), icon=":material/check_circle:")

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

st.subheader("Glossary and references")
with st.expander(f"Glossary: {len(GLOSSARY)} words the lessons use"):
    st.markdown("\n".join(f"- **{term}**: {meaning}" for term, meaning in GLOSSARY.items()))
with st.expander("References"):
    st.markdown("\n".join(f"- {ref}" for ref in REFERENCES))
