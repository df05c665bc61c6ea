"""Lesson 2: four tokenizers side by side, a BPE trained live, and the windows a GPT learns from."""
import streamlit as st

from classroom import exercise_ui, page, shared, tokenizer_views as views, widgets as ui
from gptcore import data, tokenizers as tk

page.setup(2, """
A model cannot read characters; it reads **ids**. A tokenizer cuts text into pieces and
numbers them. Then the dataloader cuts the long stream of ids into **windows**: the model
sees a window and learns to predict the same window shifted by one token.
""")
st.markdown("""
**In this lesson you will**
- put the same text through four tokenizers and compare their tokens, lengths and losses;
- watch byte-pair encoding split your text into chunks and merge bytes into tokens;
- cut a token stream into training windows and see which tokens each window reads;
- pad a batch safely and split train from validation without leaking text.
""")

K = "l2_"
corpus = shared.current_corpus()

st.subheader("1 · Your text")
text, vocab_size = views.your_text(corpus, K)
toks = views.Tokenizers.of(corpus, vocab_size)

st.subheader("2 · Four tokenizers, side by side")
rows = views.side_by_side(toks, text, corpus)
st.markdown("""
- **Characters** are exact for text like the corpus, but every character the corpus never
  used becomes `<unk>`, and sequences are long.
- **Words** make short sequences but need a huge vocabulary; unseen words become `<unk>`
  and spacing is rebuilt, so the round trip is lossy.
- **Byte-level BPE** starts from the 256 bytes (so *any* text round-trips, emoji included)
  and learns merges of frequent pairs: a middle ground, which is why GPT uses it.
""")
ui.show_code(tk.report)

st.subheader("3 · How BPE works: chunks first, then merges")
st.markdown("Before any merge, GPT-2's regex cuts the text into **chunks**: a word with the "
            "space before it, a run of digits, a run of punctuation, whitespace. Pairs are "
            "counted and merged **inside a chunk only**, so no token ever spans two chunks "
            "and a word never fuses with the punctuation after it.")
st.code(tk.GPT2_SPLIT_PATTERN, language="text")
views.chunks(toks.bpe, text)
ui.show_code(tk.pre_split, tk.BPETokenizer.encode_chunks)

st.markdown("Training repeats one step: count every adjacent pair of tokens in the corpus, "
            "merge the most frequent pair into a new token. Encoding replays the merges in the "
            "order they were learned.")
views.merges(toks.bpe, text, corpus, vocab_size, K)
ui.show_code(tk.BPETokenizer.train, tk.BPETokenizer._encode_chunk, tk.merge_pair)
exercise_ui.question("tokenizers.merge_length")
exercise_ui.exercise("tokenizers.merge_pair")

st.subheader("4 · From a token stream to training windows")
windows = views.windows(toks, text, corpus, K)
ui.show_code(data.SlidingWindowDataset, data.window_stats)
exercise_ui.question("data.window_count")
exercise_ui.exercise("data.SlidingWindowDataset")
exercise_ui.exercise("data.random_batch")

st.markdown("##### The window loop: the tutorial's, and the off-by-ones around it")
views.window_loops(windows)
ui.show_code(data.loop_starts, data.check_loop)

st.subheader("5 · Padding a batch: inputs, labels and the mask")
views.padding(windows.tok, windows.tok is toks.gpt2, K)
ui.show_code(data.pad_collate, data.padding_demo, tk.pad_token_id)

st.subheader("6 · Train / validation split without leaks")
views.split(toks.char, corpus, windows, K)
st.markdown("With overlapping windows (stride ≤ block), a validation window's tokens sit in "
            "the training windows around it, so the model is graded on text it has learned "
            "and the validation loss looks better than it is. The split by position loses a "
            "few windows at the cut, and leaks nothing.")
ui.show_code(data.train_val_split, data.split_windows_at_random, data.leaked_windows)
exercise_ui.exercise("data.train_val_split")

st.subheader("Recap")
st.markdown(f"""
- Characters, words and BPE trade vocabulary size for sequence length: your text took
  {'; '.join(f"{ui.plural(row['tokens'], 'token')} with {row['short']}" for row in rows)}.
- Byte-level BPE splits text into chunks with a regex, then merges frequent pairs inside
  each chunk; it can encode any text, with no `<unk>`.
- Sliding windows turn a stream into examples: block size sets their length, stride how
  far they move; a stride above the block skips tokens, below it repeats them.
- Padding takes two rules: labels get -100, the mask comes from the lengths; and the
  validation text is cut off by position before any window is made.
""")
exercise_ui.notebook_download(2)
page.footer(2)
