"""Lesson 2: four tokenizers side by side, a BPE trained live, and the windows a GPT learns from."""
import pandas as pd
import streamlit as st

from classroom import corpora, exercise_ui, page, shared, state, widgets as ui
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
WORD_VOCAB = 5_000  # ids of the word tokenizer, <pad> and <unk> included
corpus = shared.current_corpus()
ckey = shared.corpus_key(corpus)

# ------------------------------------------------------------------ the input text
st.subheader("1 · Your text")
c1, c2 = st.columns([3, 1])
with c2:
    upload = st.file_uploader("…or a .txt file (≤ 1 MB)", type=["txt"], key=f"act_{K}upload")
    vocab_size = st.slider("BPE vocabulary size", 256, 2048, 512, 32, key=f"{K}vocab",
                           help="256 byte tokens plus up to this many minus 256 merges, "
                                f"learned from the corpus ({corpus.name}).")
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
word_tok = shared.shared_tokenizer("word", ckey, WORD_VOCAB, corpus.text)
bpe_tok = shared.shared_tokenizer("bpe", ckey, vocab_size, corpus.text)
gpt2_tok = tk.TiktokenTokenizer()

# ------------------------------------------------------------------ side by side
st.subheader("2 · Four tokenizers, side by side")
TOKENIZERS = [  # (name, in a sentence, tokenizer, what its vocabulary holds)
    ("Characters", "characters", char_tok,
     f"the {len(char_tok.chars):,} characters of {corpus.name} + <unk>"),
    ("Words (regex)", "words", word_tok,
     f"the {word_tok.n_words:,} most frequent words of {corpus.name} + <pad>, <unk> "
     f"(at most {WORD_VOCAB:,} ids)"),
    (f"BPE trained here ({bpe_tok.vocab_size:,})", "the BPE trained here", bpe_tok,
     f"256 bytes + {bpe_tok.n_merges:,} merges learned from {corpus.name}"),
    ("GPT-2 BPE (tiktoken)", "GPT-2's BPE", gpt2_tok,
     f"{gpt2_tok.vocab_size:,} tokens, trained by OpenAI"),
]
rows = []
for name, short, tok, blurb in TOKENIZERS:
    r = tk.report(tok, text)
    per_token = "–" if r.chars_per_token is None else f"{r.chars_per_token:.2f}"
    with st.container(border=True):
        st.markdown(f"**{name}** · {blurb}")
        ui.token_spans([tok.token_text(t) for t in r.ids], r.ids, highlight=set(r.unknown),
                       max_tokens=150)
        st.caption(f"{ui.plural(r.n_tokens, 'token')} · {per_token} characters per token"
                   f" · round trip {'✅ exact' if r.round_trip else '❌ lossy'}"
                   + (f" · {len(r.unknown):,} unknown (red)" if r.unknown else ""))
    rows.append({"tokenizer": name, "short": short, "vocabulary": tok.vocab_size,
                 "tokens": r.n_tokens,
                 "chars/token": per_token, "round trip": "exact" if r.round_trip else "lossy",
                 "unknown": len(r.unknown)})
st.dataframe(pd.DataFrame(rows).drop(columns="short"), hide_index=True, width="stretch")
st.markdown("""
- **Characters** are exact for text like the corpus, but every character the corpus never
  used becomes `<unk>`, and sequences are long.
- **Words** make short sequences but need a huge vocabulary; unseen words become `<unk>`
  and spacing is rebuilt, so the round trip is lossy.
- **Byte-level BPE** starts from the 256 bytes (so *any* text round-trips, emoji included)
  and learns merges of frequent pairs: a middle ground, which is why GPT uses it.
""")
ui.show_code(tk.report)

# ------------------------------------------------------------------ BPE pre-split
st.subheader("3 · How BPE works: chunks first, then merges")
chunks = bpe_tok.encode_chunks(text)
st.markdown("Before any merge, GPT-2's regex cuts the text into **chunks**: a word with the "
            "space before it, a run of digits, a run of punctuation, whitespace. Pairs are "
            "counted and merged **inside a chunk only**, so no token ever spans two chunks "
            "and a word never fuses with the punctuation after it.")
st.code(tk.GPT2_SPLIT_PATTERN, language="text")
if chunks:
    ui.token_spans([c for c, _ in chunks], max_tokens=150)
    example = (f" For example `{ui.visible(chunks[0][0])}` | `{ui.visible(chunks[1][0])}`: the "
               f"bytes on either side of that boundary are never merged, however often they "
               "meet." if len(chunks) > 1 else "")
    st.caption(f"{ui.plural(len(chunks), 'chunk')}, so "
               f"{ui.plural(len(chunks) - 1, 'boundary', 'boundaries')} no merge crosses."
               + example)
    st.dataframe(pd.DataFrame([{"chunk": ui.visible(c),
                                "its tokens": " | ".join(ui.visible(bpe_tok.token_text(i))
                                                         for i in ids)}
                               for c, ids in chunks[:30]]),
                 hide_index=True, height=220, width="stretch")
ui.show_code(tk.pre_split, tk.BPETokenizer.encode_chunks)

st.markdown("Training repeats one step: count every adjacent pair of tokens in the corpus, "
            "merge the most frequent pair into a new token. Encoding replays the merges in the "
            "order they were learned.")
n_merges = bpe_tok.n_merges
if n_merges == 0:
    st.info("This BPE learned no merges: " + (
        "a vocabulary of 256 holds the bytes and nothing more. Raise the vocabulary size "
        "to see merges." if vocab_size == 256 else
        f"{corpus.name} has no two bytes side by side inside a chunk. Choose a longer corpus "
        "in the sidebar to see merges."))
else:
    state.clamp(f"{K}merge_k", 0, n_merges)
    k = st.slider("Merges applied", 0, n_merges, min(20, n_merges), key=f"{K}merge_k")
    after = bpe_tok.encode(text, max_merges=k)
    ui.token_spans([bpe_tok.token_text(t) for t in after], after, max_tokens=150)
    st.caption(f"After {k} merges: {len(after):,} tokens "
               f"(from {len(bpe_tok.encode(text, max_merges=0)):,} bytes).")
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
            "new token": ui.visible(bpe_tok.token_text(s["new_id"])),
            "tokens after": s["n_tokens"]} for s in steps]),
            hide_index=True, height=220, width="stretch")
        st.caption("The merges among the first k that changed your text (its first 500 "
                   "characters).")
ui.show_code(tk.BPETokenizer.train, tk.BPETokenizer._encode_chunk, tk.merge_pair)
exercise_ui.question("tokenizers.merge_length")
exercise_ui.exercise("tokenizers.merge_pair")

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
stats = data.window_stats(len(stream), block, stride)
st.caption(f"The stream: the first {ui.plural(len(stream), 'token')} (at most 400) of your text"
           + ("" if stream_text is text else f", followed by {corpus.name}: your text is short")
           + ".")
m = st.columns(5)
m[0].metric("tokens", f"{stats.n_tokens:,}")
m[1].metric("windows (samples)", f"{stats.samples:,}", help="(tokens - block - 1) // stride + 1")
m[2].metric("never an input", f"{stats.never_input:,}",
            help="Tokens no window reads as input x (the very last one can still be a target).")
m[3].metric("read by 2+ windows", f"{stats.repeated:,}",
            help="Tokens that more than one window reads as input.")
m[4].metric("repeat reads / epoch", f"{stats.extra_reads:,}",
            help="Input reads of a position some window already read: "
                 "tokens per epoch − distinct positions read.")
if stats.samples == 0:
    st.warning(f"The stream has {stats.n_tokens} tokens: a window needs block size + 1 = "
               f"{block + 1} (the target is shifted by one). Lower the block size.")
else:
    shapes = data.batch_shapes(stats.samples, batch, block)
    st.caption(f"One epoch feeds {stats.tokens_per_epoch:,} input tokens = "
               f"{stats.distinct_inputs:,} distinct positions + {stats.extra_reads:,} repeat "
               f"reads. Batched {batch} at a time that is {len(shapes):,} batches of x and y "
               f"of shape {shapes[0]}"
               + (f", the last one {shapes[-1]}" if shapes[-1] != shapes[0] else "") + ".")
    at_end = st.radio("Draw the windows over", ["the start of the stream", "the end of the stream"],
                      horizontal=True, key=f"{K}grid_at") == "the end of the stream"
    shown = range(max(0, len(stream) - 40), len(stream)) if at_end else range(min(len(stream), 40))
    ui.window_grid([wtok.token_text(stream[p]) for p in shown],
                   data.window_picture(len(stream), block, stride, shown))
    st.caption("Rows are windows, columns are tokens. Blue: the window's input x (each blue "
               "token's target is the token to its right); orange: the last target, which the "
               "window does not read. The bottom row counts how many windows read each token: "
               "red 0 = never an input, amber 2+ = read again.")
    c_x, c_y = st.columns(2)
    x, y = (t.tolist() for t in data.SlidingWindowDataset(stream, block, stride)[0])
    with c_x:
        st.caption("window 0, input x")
        ui.token_spans([wtok.token_text(t) for t in x], x)
    with c_y:
        st.caption("window 0, target y (x shifted by one)")
        ui.token_spans([wtok.token_text(t) for t in y], y, highlight={block - 1})
    st.caption("In red: the one token of y that x does not contain. At every position the "
               "model predicts the next token, so one window gives `block size` examples.")
ui.show_code(data.SlidingWindowDataset, data.window_stats)
exercise_ui.question("data.window_count")
exercise_ui.exercise("data.SlidingWindowDataset")
exercise_ui.exercise("data.random_batch")

st.markdown("##### The window loop: the tutorial's, and the off-by-ones around it")
LOOPS = [("range(0, n - block, stride)  (the tutorial)", 0),
         ("range(0, n - block - 1, stride)", -1), ("range(0, n - block + 1, stride)", 1)]
checks = [(code, data.check_loop(len(stream), block, stride, shift)) for code, shift in LOOPS]
st.dataframe(pd.DataFrame([{
    "loop": code, "windows": len(c.starts),
    "last start": f"{c.starts[-1]:,}" if c.starts else "–",
    "windows missing": len(c.missing), "targets too short": len(c.short),
    "tokens never used": len(c.lost)} for code, c in checks]), hide_index=True, width="stretch")
short_by_one, long_by_one = checks[1][1], checks[2][1]
lost = ", ".join(f"{p} `{ui.visible(wtok.token_text(stream[p]))}`" for p in short_by_one.lost)
if short_by_one.missing:
    effect = (f"Here it drops {ui.plural(len(short_by_one.missing), 'window')} and never uses "
              f"{'token' if len(short_by_one.lost) == 1 else 'tokens'} {lost}. ")
else:
    effect = "With these settings it happens to drop nothing; try stride 1. "
st.markdown(
    "The tutorial's loop is right: `range` stops *before* n − block, so no window starts "
    "after n − block − 1, the last start whose target still fits in the stream: exactly the "
    f"dataset's {ui.plural(stats.samples, 'window')}. Subtracting one more \"to leave room "
    "for the target\" counts the shift twice: it drops the last window whenever n − block − 1 "
    "is a multiple of the stride, a bug that one stride hides and another reveals. " + effect
    + ("Adding one instead makes a last window whose target is a token short, and "
       "`torch.stack` refuses to batch tensors of different lengths." if long_by_one.short else ""))
ui.show_code(data.loop_starts, data.check_loop)

# ------------------------------------------------------------------ padding
st.subheader("5 · Padding a batch: inputs, labels and the mask")
lines = st.text_area("Examples of different lengths, one per line",
                     "Hello world!\nStop! Who goes there?\nYes!", height=90, key=f"{K}pad_text")
pairs = data.shifted_pairs([wtok.encode(line)[:16] for line in lines.splitlines()])[:6]
if not pairs:
    st.info("Padding needs at least one line of two tokens or more (its input and its label).")
else:
    pad_id = tk.pad_token_id(wtok)
    demo = data.padding_demo(pairs, pad_id)
    c1, c2, c3 = st.columns(3)
    c1.caption(f"x, the inputs (padded with {pad_id} `{ui.visible(wtok.token_text(pad_id))}`)")
    c1.dataframe(pd.DataFrame(demo.x), hide_index=True)
    c2.caption(f"y, the labels (padded with {data.IGNORE_INDEX})")
    c2.dataframe(pd.DataFrame(demo.y), hide_index=True)
    c3.caption("attention mask (1 = real token)")
    c3.dataframe(pd.DataFrame(demo.mask), hide_index=True)
    refused = data.embedding_error(wtok.vocab_size, wtok.vocab_size)
    st.markdown(
        "Two rules, one for each side of the batch:\n"
        f"- **Labels** are padded with `{data.IGNORE_INDEX}`, the value "
        "`F.cross_entropy(ignore_index=-100)` skips: padding adds nothing to the loss, "
        "whatever sits in the input there. Padded with a real id instead, the "
        f"{demo.n_padding:,} padded labels here would train the model to predict that id at "
        "every padded position.\n"
        f"- **Inputs** may be padded with any id the embedding table has a row for. An id past "
        f"the table, such as {wtok.vocab_size:,} (the vocabulary size), is refused: "
        f"`{refused}`. Here the pad id is {pad_id}: " + (
            "`<|endoftext|>`, as Hugging Face pads GPT-2. " if wtok is gpt2_tok else
            "`<unk>`, a token that is not a character of the corpus. ")
        + "Its value never matters, because the lengths, kept in the attention mask, say "
        "where the padding is: in a causal GPT padded on the right, real tokens never attend "
        "to the pads after them and the pads' own predictions are dropped by -100; the mask "
        "matters where that is not enough (padding on the left, for generation).")

    st.markdown("##### The trap: pad with 0, then find the padding by its id")
    c_bug, c_fix = st.columns(2)
    with c_bug:
        st.markdown("**Buggy:** `mask = (x != 0)`")
        for b, (row, real) in enumerate(zip(demo.x_zero, demo.mask)):
            ui.token_spans([wtok.token_text(t) if r else "pad" for t, r in zip(row, real)], row,
                           highlight={p for r, p in demo.hidden if r == b})
        st.caption(f"{demo.n_masked_by_id:,} positions masked, {len(demo.hidden):,} of them "
                   "real tokens (red).")
    with c_fix:
        st.markdown("**Fixed:** the mask comes from the lengths")
        for row, real in zip(demo.x, demo.mask):
            ui.token_spans([wtok.token_text(t) if r else "pad" for t, r in zip(row, real)], row)
        st.caption(f"{demo.n_padding:,} positions masked, all of them padding.")
    zero = ui.visible(wtok.token_text(0))
    st.markdown(
        f"Id 0 is a real token here: `{zero}`"
        + (" (in GPT-2's vocabulary, the exclamation mark). " if wtok is gpt2_tok else ". ")
        + (f"A mask rebuilt from `x != 0` hides {len(demo.hidden)} real `{zero}` "
           f"{'token' if len(demo.hidden) == 1 else 'tokens'} with the padding: nothing can "
           "attend to a hidden token, and if labels are masked the same way it is never learned."
           if demo.hidden else "None of these inputs contains it, so nothing is hidden this "
                               "time; with GPT-2's tokenizer every `!` would be.")
        + " Padding with 0 is harmless only while the mask comes from the lengths.")
ui.show_code(data.pad_collate, data.padding_demo, tk.pad_token_id)

# ------------------------------------------------------------------ split
st.subheader("6 · Train / validation split without leaks")
val_fraction = st.slider("Validation fraction", 0.05, 0.5, 0.1, 0.05, key=f"{K}val")
corpus_ids = char_tok.encode(corpus.text[:200_000])
train_ids, val_ids = data.train_val_split(corpus_ids, val_fraction)
st.markdown(f"The first **{len(train_ids):,}** character tokens of {corpus.name} (of its first "
            f"200,000 characters) train, the last **{len(val_ids):,}** validate: one cut, by "
            "position, before any window is made, so no validation token is ever inside a "
            "training window.")
n_demo = min(5_000, len(corpus_ids))
leaky = data.split_windows_at_random(n_demo, block, stride, val_fraction, state.seed())
clean = data.split_windows_by_position(n_demo, block, stride, val_fraction)
st.markdown(f"The wrong way, beside the right one, on {n_demo:,} tokens cut into windows with "
            f"section 4's block size {block} and stride {stride}:")
c_bug, c_fix = st.columns(2)
for column, title, (train_w, val_w) in (
        (c_bug, "**Leaky:** windows first, then a random split of the windows", leaky),
        (c_fix, "**Clean:** split by position first, then windows", clean)):
    seen = data.leaked_windows(train_w, val_w, block)
    with column:
        st.markdown(title)
        st.metric("validation windows the model trained on, every token",
                  f"{seen:,} of {len(val_w):,}")
if not leaky[1]:
    st.caption("Too few windows for a validation set: lower the block size or the stride.")
st.markdown("With overlapping windows (stride ≤ block), a validation window's tokens sit in "
            "the training windows around it, so the model is graded on text it has learned "
            "and the validation loss looks better than it is. The split by position loses a "
            "few windows at the cut, and leaks nothing.")
ui.show_code(data.train_val_split, data.split_windows_at_random, data.leaked_windows)

# ------------------------------------------------------------------ recap
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
