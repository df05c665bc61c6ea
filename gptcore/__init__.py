"""gptcore: a small, readable GPT built from scratch, in the order the course teaches it.

tokenizers -> corpora -> data -> attention -> model -> generate -> budget -> train.
Nothing here imports streamlit: the app is a thin view over these modules.
"""
