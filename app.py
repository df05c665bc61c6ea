"""Building GPT, step by step: the router. Pages live in pages/, the app's plumbing in
classroom/, the book in gptcore/.

Each page starts with `page.setup(...)` (session defaults and the shared sidebar), so a page
also renders on its own, as Streamlit's AppTest reruns it. URL paths differ from the file
names on purpose: before any session has run st.navigation, Streamlit would serve a
matching file of pages/ on its own, without this router.
"""
import streamlit as st

from classroom import warmup
from classroom.lessons import HOME, LESSONS

st.set_page_config(page_title="Building GPT, step by step", page_icon="🧠", layout="wide")

PAGES = [st.Page(HOME.page, title=HOME.title, icon=HOME.icon, default=True)] + [
    st.Page(lesson.page, url_path=lesson.url_path, title=lesson.nav_title, icon=lesson.icon)
    for lesson in LESSONS]

current = st.navigation(PAGES)
if current is PAGES[0]:
    current.run()  # the home page needs no torch
else:
    with warmup.lesson_running():  # torch loaded, and its first imports never side by side
        current.run()
warmup.start()  # once per process, after the first page: what the lessons need, loaded while
# the learner reads it
