"""Lesson 2: four tokenizers side by side, a BPE trained live, and the windows a GPT learns from."""
import random

import pandas as pd
import streamlit as st
import torch

from classroom import corpora, page, shared, state, widgets as ui
from gptcore import data, tokenizers as tk

page.setup(2, """
A model cannot read characters; it reads **ids**. A tokenizer cuts text into pieces and
numbers them. Then the dataloader cuts the long stream of ids into **windows**: the model
sees a window and learns to predict the same window shifted by one token.
""")

K = "l2_"
corpus = shared.current_corpus()
ckey = shared.corpus_key(corpus)

# ------------------------------------------------------------------ the input text
st.subheader("1 · Your text")
c1, c2 = st.columns([3, 1])
with c2:
    upload = st.file_uploader("…or a .txt file (≤ 1 MB)", type=["txt"], key=f"act_{K}upload")
    vocab_size = st.slider("BPE vocabulary size", 256, 2048, 512, 32, key=f"{K}vocab",
                           help="256 byte tokens plus this many minus 256 merges, learned "
                                f"from the corpus ({corpus.name}).")
default_text = "Hello world! It's 2026 😀 — naïve café, 你好. Unbelievable tokenization."
with c1:
    text = st.text_area("Text to tokenize", default_text, height=110, key=f"{K}text")
if upload is not None:
    try:
        text = corpora.decode_upload(upload.getvalue(), upload.name, max_bytes=1_000_000).text
        st.caption(f"Using the uploaded file {upload.name}.")
    except corpora.CorpusError as e:
        st.error(f"{e} The text box is used instead.")
text = ui.bounded_text(text)
if not text:
    st.info("The text is empty: every tokenizer returns no tokens. Type something to see more.")

char_tok = shared.shared_tokenizer("char", ckey, 0, corpus.text)
word_tok = shared.shared_tokenizer("word", ckey, 5000, corpus.text)
bpe_tok = shared.shared_tokenizer("bpe", ckey, vocab_size, corpus.text)
gpt2_tok = tk.TiktokenTokenizer()

# ------------------------------------------------------------------ side by side
st.subheader("2 · Four tokenizers, side by side")
TOKENIZERS = [
    ("Characters", char_tok, f"one id per character of {corpus.name}"),
    ("Words (regex)", word_tok, "5,000 most frequent words + <pad>, <unk>"),
    (f"BPE trained here ({bpe_tok.vocab_size})", bpe_tok, f"byte-level, trained on {corpus.name}"),
    ("GPT-2 BPE (tiktoken)", gpt2_tok, "50,257 tokens, trained by OpenAI"),
]
rows = []
for name, tok, blurb in TOKENIZERS:
    ids = tok.encode(text)
    unknown = {i for i, t in enumerate(ids) if t == tok.unk_id}
    round_trip = tok.decode(ids) == text
    with st.container(border=True):
        st.markdown(f"**{name}** · {blurb}")
        ui.token_spans([tok.token_text(t) for t in ids], ids, highlight=unknown, max_tokens=150)
        st.caption(f"{len(ids):,} tokens · {len(text) / max(len(ids), 1):.2f} characters per token"
                   f" · round trip {'✅ exact' if round_trip else '❌ lossy'}"
                   + (f" · {len(unknown)} unknown (red)" if unknown else ""))
    rows.append({"tokenizer": name, "vocabulary": tok.vocab_size, "tokens": len(ids),
                 "chars/token": round(len(text) / max(len(ids), 1), 2),
                 "round trip": "exact" if round_trip else "lossy", "unknown": len(unknown)})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
st.markdown("""
- **Characters** are exact for text like the corpus, but every character the corpus never
  used becomes `<unk>`, and sequences are long.
- **Words** make short sequences but need a huge vocabulary; unseen words become `<unk>`
  and spacing is rebuilt, so the round trip is lossy.
- **Byte-level BPE** starts from the 256 bytes (so *any* text round-trips, emoji included)
  and learns merges of frequent pairs: a middle ground, which is why GPT uses it.
""")

# ------------------------------------------------------------------ BPE merges
st.subheader("3 · How BPE merges work, step by step")
st.markdown("Training repeats one step: count every adjacent pair of tokens in the corpus, "
            "merge the most frequent pair into a new token. Encoding replays the merges in the "
            "order they were learned.")
n_merges = bpe_tok.n_merges
state.clamp(f"{K}merge_k", 0, n_merges)
k = st.slider("Merges applied", 0, n_merges, min(20, n_merges), key=f"{K}merge_k")
after = bpe_tok.encode(text, max_merges=k)
ui.token_spans([bpe_tok.token_text(t) for t in after], after, max_tokens=150)
st.caption(f"After {k} merges: {len(after):,} tokens (from {len(text.encode('utf-8')):,} bytes).")
if k > 0:
    (a, b), new_id, count = bpe_tok.merge_log[k - 1]
    st.markdown(f"Merge **{k}**: `{ui.visible(bpe_tok.token_text(a))}` + "
                f"`{ui.visible(bpe_tok.token_text(b))}` → token **{new_id}** "
                f"`{ui.visible(bpe_tok.token_text(new_id))}`, a pair seen {count:,} times "
                f"in {corpus.name} when it was merged.")
steps = bpe_tok.merge_steps(text[:500], max_steps=k) if k else []
if steps:
    st.dataframe(pd.DataFrame([{
        "merge #": s["step"], "pair": f"{ui.visible(bpe_tok.token_text(s['pair'][0]))} + "
                                      f"{ui.visible(bpe_tok.token_text(s['pair'][1]))}",
        "new token": ui.visible(bpe_tok.token_text(s["new_id"])), "tokens after": s["n_tokens"]}
        for s in steps]), hide_index=True, height=220, width="stretch")
    st.caption("The merges among the first k that changed your text (its first 500 characters).")
ui.show_code(tk.BPETokenizer.train, tk.BPETokenizer._encode_chunk, tk.merge_pair)

# ------------------------------------------------------------------ windows
st.subheader("4 · From a token stream to training windows")
stream_text = text if len(text) >= 40 else (text + " " + corpus.text[:400])
c1, c2, c3, c4 = st.columns(4)
tok_name = c1.selectbox("Tokenizer", ["GPT-2 BPE", "Characters"], key=f"{K}win_tok")
block = c2.slider("Block size (context)", 2, 32, 8, key=f"{K}block")
stride = c3.slider("Stride", 1, 32, 4, key=f"{K}stride")
batch = c4.slider("Batch size", 1, 64, 4, key=f"{K}batch")
wtok = gpt2_tok if tok_name == "GPT-2 BPE" else char_tok
stream = wtok.encode(stream_text)[:400]
ds = data.SlidingWindowDataset(stream, block, stride)
stats = data.window_stats(len(stream), block, stride)
m = st.columns(4)
m[0].metric("tokens", f"{len(stream):,}")
m[1].metric("samples", f"{stats['samples']:,}", help="(len - block - 1) // stride + 1")
m[2].metric("skipped tokens", f"{stats['skipped']:,}", help="never inside any input window")
m[3].metric("repeated tokens", f"{stats['repeated']:,}", help="inputs seen more than once per epoch")
if len(ds) == 0:
    st.warning(f"The stream has {len(stream)} tokens: a window needs block size + 1 = "
               f"{block + 1} (the target is shifted by one). Lower the block size.")
else:
    st.caption(f"One epoch feeds {stats['tokens_per_epoch']:,} input tokens; a batch stacks "
               f"{batch} windows into x and y of shape ({min(batch, len(ds))}, {block}).")
    for i in range(min(len(ds), 4)):
        x, y = ds[i]
        st.markdown(f"**Window {i}** · starts at token {i * stride}")
        cx, cy = st.columns(2)
        with cx:
            st.caption("input x")
            ui.token_spans([wtok.token_text(t) for t in x.tolist()], x.tolist())
        with cy:
            st.caption("target y (x shifted by one)")
            ui.token_spans([wtok.token_text(t) for t in y.tolist()], y.tolist(),
                           highlight={block - 1})
    st.caption("In red: the one token of y that x does not contain. At every position the "
               "model predicts the next token, so one window gives `block size` examples.")
ui.show_code(data.SlidingWindowDataset)

# ------------------------------------------------------------------ padding
st.subheader("5 · Padding, and why its labels are ignored")
sentences = [s.strip() for s in stream_text.replace("\n", " ").split(".") if s.strip()][:3] or ["a"]
pairs = [(ids[:-1], ids[1:]) for ids in (wtok.encode(s)[:12] for s in sentences) if len(ids) > 1]
if pairs:
    pad_id = wtok.vocab_size  # a fresh id, outside the vocabulary
    x, y, mask = data.pad_collate(pairs, pad_id=pad_id)
    c1, c2, c3 = st.columns(3)
    c1.caption(f"x (padded with {pad_id})")
    c1.dataframe(pd.DataFrame(x.tolist()), hide_index=True)
    c2.caption(f"y (padded with {data.IGNORE_INDEX})")
    c2.dataframe(pd.DataFrame(y.tolist()), hide_index=True)
    c3.caption("attention mask (1 = real token)")
    c3.dataframe(pd.DataFrame(mask.tolist()), hide_index=True)
    st.markdown(
        f"Batches need equal lengths, so short examples are padded. The loss must not count "
        f"the padding, so padded **labels** are `{data.IGNORE_INDEX}`, the value "
        "`F.cross_entropy(ignore_index=-100)` skips. Why not pad with id 0? Because 0 is a "
        f"real token here (`{ui.visible(wtok.token_text(0))}`): the model would be trained "
        "to predict it after every short example, and real occurrences of token 0 would "
        "be confused with padding.")
ui.show_code(data.pad_collate)

# ------------------------------------------------------------------ split
st.subheader("6 · Train / validation split without leaks")
val_fraction = st.slider("Validation fraction", 0.05, 0.5, 0.1, 0.05, key=f"{K}val")
corpus_ids = torch.tensor(char_tok.encode(corpus.text[:200_000]))
train_ids, val_ids = data.train_val_split(corpus_ids, val_fraction)
st.markdown(f"The first **{len(train_ids):,}** tokens of {corpus.name} (first 200,000 characters) "
            f"train, the last **{len(val_ids):,}** validate: one cut, by position, before any "
            "window is made, so no validation token is ever inside a training window.")
windows = data.SlidingWindowDataset(corpus_ids[:5000], 64, 1)
rng = random.Random(state.seed())
order = list(range(len(windows)))
rng.shuffle(order)
n_val = int(len(order) * val_fraction)
val_w, train_w = order[:n_val], order[n_val:]
covered = torch.zeros(len(corpus_ids[:5000]), dtype=torch.bool)
for i in train_w:
    covered[i: i + 64] = True
leaked = sum(bool(covered[i: i + 64].all()) for i in val_w)
st.markdown(f"The wrong way: cut the first 5,000 tokens into overlapping windows (block 64, "
            f"stride 1) and pick {val_fraction:.0%} of the **windows** at random for "
            f"validation. Here **{leaked:,} of {len(val_w):,}** validation windows "
            f"({leaked / max(len(val_w), 1):.0%}) consist entirely of tokens that training "
            "windows also contain: the model is graded on text it has memorised, and the "
            "validation loss looks better than it is.")
ui.show_code(data.train_val_split)
page.footer(2)
