"""classroom: what only the hosted app needs, around the book (gptcore).

Training runs in the background with their caps and queue, the sandbox that runs learner
code, the Hub check, corpora downloads, charts, typed session state, and the streamlit
widgets the pages share. Imports go one way: pages -> classroom -> gptcore.
"""
