"""Building GPT, step by step: the router. Pages live in pages/, the logic in gptcore/.

Each page starts with `ui.page_setup()` (session defaults and the shared sidebar), so a page
also renders on its own, as Streamlit's AppTest reruns it. URL paths differ from the file
names on purpose: before any session has run st.navigation, Streamlit would serve a
matching file of pages/ on its own, without this router.
"""
import streamlit as st

st.set_page_config(page_title="Building GPT, step by step", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/1_setup.py", url_path="lesson-1", title="1 · Setup: meet a real GPT", icon=":material/rocket_launch:"),
    st.Page("pages/2_tokenization.py", url_path="lesson-2", title="2 · Tokenization & data", icon=":material/data_array:"),
    st.Page("pages/3_attention.py", url_path="lesson-3", title="3 · Attention", icon=":material/visibility:"),
    st.Page("pages/4_gpt.py", url_path="lesson-4", title="4 · GPT architecture", icon=":material/account_tree:"),
    st.Page("pages/5_training.py", url_path="lesson-5", title="5 · Training lab", icon=":material/monitoring:"),
]

st.navigation(PAGES).run()
