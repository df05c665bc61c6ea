"""Lesson 2's demos, one function each: the page says what a demo teaches and calls it.

Every number comes from gptcore.tokenizers and gptcore.data; these functions read widgets and
draw. `key` is the lesson's widget prefix ("l2_"): the widget keys are the page's own.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from classroom import corpora, shared, state, widgets as ui
from gptcore import data, tokenizers as tk

WORD_VOCAB = 5_000  # ids of the word tokenizer, <pad> and <unk> included
DEFAULT_TEXT = "Hello world! It's 2026 😀 — naïve café, 你好. Unbelievable tokenization."
STREAM_LIMIT = 400  # tokens of the window demos' stream
GRID_WIDTH = 40  # token positions the window grid draws




def table(rows: list[dict], **kwargs) -> None:
    """A list of dicts as a full-width table without its index."""
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", **kwargs)


# ------------------------------------------------------------------ 1 · the input text


def your_text(corpus, key: str) -> tuple[str, int]:
    """The text box, the .txt upload that replaces it and the BPE vocabulary slider.

    Returns the text every demo uses (cut to a size the page can draw) and the vocabulary size."""
    c1, c2 = st.columns([3, 1])
    with c2:
        upload = st.file_uploader("…or a .txt file (≤ 1 MB)", type=["txt"], key=f"act_{key}upload")
        vocab_size = st.slider("BPE vocabulary size", 256, 2048, 512, 32, key=f"{key}vocab",
                               help="256 byte tokens plus up to this many minus 256 merges, "
                                    f"learned from the corpus ({corpus.name}).")
    with c1:
        text = st.text_area("Text to tokenize", DEFAULT_TEXT, height=110, key=f"{key}text")
    if upload is not None:
        try:
            text = corpora.decode_upload(upload.getvalue(), upload.name, max_bytes=1_000_000).text
            st.caption(f"Using the uploaded file {upload.name}.")
        except corpora.CorpusError as e:
            st.error(f"{e} The text box is used instead.")
    text = ui.bounded_text(text)
    if not text:
        st.info("The text is empty: every tokenizer returns no tokens. Type something to see more.")
    return text, vocab_size


@dataclass(frozen=True)
class Tokenizers:
    """The lesson's four tokenizers: three built from the corpus, and GPT-2's."""

    char: tk.Tokenizer
    word: tk.Tokenizer
    bpe: tk.BPETokenizer
    gpt2: tk.TiktokenTokenizer

    @classmethod
    def of(cls, corpus, vocab_size: int) -> Tokenizers:
        ckey = shared.corpus_key(corpus)
        return cls(shared.shared_tokenizer("char", ckey, 0, corpus.text),
                   shared.shared_tokenizer("word", ckey, WORD_VOCAB, corpus.text),
                   shared.shared_tokenizer("bpe", ckey, vocab_size, corpus.text),
                   tk.TiktokenTokenizer())


# ------------------------------------------------------------------ 2 · side by side


def lineup(toks: Tokenizers, corpus) -> list[tuple]:
    """(name, in a sentence, tokenizer, what its vocabulary holds) for each tokenizer."""
    char, word, bpe, gpt2 = toks.char, toks.word, toks.bpe, toks.gpt2
    return [
        ("Characters", "characters", char,
         f"the {len(char.chars):,} characters of {corpus.name} + <unk>"),
        ("Words (regex)", "words", word,
         f"the {word.n_words:,} most frequent words of {corpus.name} + <pad>, <unk> "
         f"(at most {WORD_VOCAB:,} ids)"),
        (f"BPE trained here ({bpe.vocab_size:,})", "the BPE trained here", bpe,
         f"256 bytes + {bpe.n_merges:,} merges learned from {corpus.name}"),
        ("GPT-2 BPE (tiktoken)", "GPT-2's BPE", gpt2,
         f"{gpt2.vocab_size:,} tokens, trained by OpenAI"),
    ]


def side_by_side(toks: Tokenizers, text: str, corpus) -> list[dict]:
    """The text through each tokenizer in a box, then one table comparing them.

    Returns the table's rows (with a "short" name for each tokenizer) for the recap."""
    rows = []
    for name, short, tok, blurb in lineup(toks, corpus):
        r = tk.report(tok, text)
        per_token = "–" if r.chars_per_token is None else f"{r.chars_per_token:.2f}"
        with st.container(border=True):
            st.markdown(f"**{name}** · {blurb}")
            ui.tokens(tok, r.ids, highlight=set(r.unknown), max_tokens=150)
            st.caption(f"{ui.plural(r.n_tokens, 'token')} · {per_token} characters per token"
                       f" · round trip {'✅ exact' if r.round_trip else '❌ lossy'}"
                       + (f" · {len(r.unknown):,} unknown (red)" if r.unknown else ""))
        rows.append({"tokenizer": name, "short": short, "vocabulary": tok.vocab_size,
                     "tokens": r.n_tokens, "chars/token": per_token,
                     "round trip": "exact" if r.round_trip else "lossy", "unknown": len(r.unknown)})
    table([{k: v for k, v in row.items() if k != "short"} for row in rows])
    return rows


# ------------------------------------------------------------------ 3 · BPE


def chunks(bpe: tk.BPETokenizer, text: str) -> None:
    """The chunks GPT-2's regex cuts the text into, and the tokens of each."""
    found = bpe.encode_chunks(text)
    if not found:
        return
    ui.token_spans([c for c, _ in found], max_tokens=150)
    example = (f" For example `{ui.visible(found[0][0])}` | `{ui.visible(found[1][0])}`: the "
               f"bytes on either side of that boundary are never merged, however often they "
               "meet." if len(found) > 1 else "")
    st.caption(f"{ui.plural(len(found), 'chunk')}, so "
               f"{ui.plural(len(found) - 1, 'boundary', 'boundaries')} no merge crosses." + example)
    table([{"chunk": ui.visible(c),
            "its tokens": " | ".join(ui.token_label(bpe, i) for i in ids)}
           for c, ids in found[:30]], height=220)


def merges(bpe: tk.BPETokenizer, text: str, corpus, vocab_size: int, key: str) -> None:
    """A slider over the learned merges: the text after the first k, the k-th merge, and the
    merges among the first k that changed the text."""
    if bpe.n_merges == 0:
        st.info("This BPE learned no merges: " + (
            "a vocabulary of 256 holds the bytes and nothing more. Raise the vocabulary size "
            "to see merges." if vocab_size == 256 else
            f"{corpus.name} has no two bytes side by side inside a chunk. Choose a longer corpus "
            "in the sidebar to see merges."))
        return
    state.clamp(f"{key}merge_k", 0, bpe.n_merges)
    k = st.slider("Merges applied", 0, bpe.n_merges, min(20, bpe.n_merges), key=f"{key}merge_k")
    after = bpe.encode(text, max_merges=k)
    ui.tokens(bpe, after, max_tokens=150)
    st.caption(f"After {k} merges: {len(after):,} tokens "
               f"(from {len(bpe.encode(text, max_merges=0)):,} bytes).")
    if k > 0:
        merge_made(bpe, k, corpus)
        merge_steps(bpe, text, k)


def merge_made(bpe: tk.BPETokenizer, k: int, corpus) -> None:
    """Which pair the k-th merge fused, and how often it was seen in the corpus."""
    (a, b), new_id, count = bpe.merge_log[k - 1]
    st.markdown(f"Merge **{k}**: `{ui.token_label(bpe, a)}` + `{ui.token_label(bpe, b)}` → token **{new_id}** "
                f"`{ui.token_label(bpe, new_id)}`, "
                f"a pair seen {count:,} times in {corpus.name} when it was merged.")


def merge_steps(bpe: tk.BPETokenizer, text: str, k: int) -> None:
    """The merges among the first k that changed the text's first 500 characters."""
    steps = bpe.merge_steps(text[:500], max_steps=k)
    if not steps:
        return
    table([{"merge #": s["step"], "pair": " + ".join(ui.token_label(bpe, i) for i in s["pair"]),
            "new token": ui.token_label(bpe, s["new_id"]), "tokens after": s["n_tokens"]}
           for s in steps], height=220)
    st.caption("The merges among the first k that changed your text (its first 500 characters).")


# ------------------------------------------------------------------ 4 · windows


@dataclass(frozen=True)
class Windows:
    """What the learner chose in the window demo; the padding and split demos reuse it."""

    tok: tk.Tokenizer
    stream: list[int]
    block: int
    stride: int
    batch: int
    stats: data.WindowStats


def windows(toks: Tokenizers, text: str, corpus, key: str) -> Windows:
    """Cut the text's token stream into windows: the controls, the counts, the batches, the
    grid of windows over tokens, and window 0's x and y."""
    c1, c2, c3, c4 = st.columns(4)
    tok_name = c1.selectbox("Tokenizer", ["GPT-2 BPE", "Characters"], key=f"{key}win_tok")
    block = c2.slider("Block size (context)", 2, 32, 8, key=f"{key}block")
    stride = c3.slider("Stride", 1, 32, 4, key=f"{key}stride")
    batch = c4.slider("Batch size", 1, 64, 4, key=f"{key}batch")
    tok = toks.gpt2 if tok_name == "GPT-2 BPE" else toks.char
    short = len(text) < 40
    stream = tok.encode(text + " " + corpus.text[:400] if short else text)[:STREAM_LIMIT]
    w = Windows(tok, stream, block, stride, batch, data.window_stats(len(stream), block, stride))
    st.caption(f"The stream: the first {ui.plural(len(stream), 'token')} (at most "
               f"{STREAM_LIMIT}) of your text"
               + (f", followed by {corpus.name}: your text is short" if short else "") + ".")
    window_counts(w.stats)
    if w.stats.samples == 0:
        st.warning(f"The stream has {w.stats.n_tokens} tokens: a window needs block size + 1 = "
                   f"{block + 1} (the target is shifted by one). Lower the block size.")
    else:
        epoch(w)
        window_grid(w, key)
        first_window(w)
    return w


def window_counts(stats: data.WindowStats) -> None:
    """The window metrics: tokens, windows, and how often each token is read."""
    ui.metric_row([
        ("tokens", f"{stats.n_tokens:,}"),
        ("windows (samples)", f"{stats.samples:,}", "(tokens - block - 1) // stride + 1"),
        ("never an input", f"{stats.never_input:,}",
         "Tokens no window reads as input x (the very last one can still be a target)."),
        ("read by 2+ windows", f"{stats.repeated:,}",
         "Tokens that more than one window reads as input."),
        ("repeat reads / epoch", f"{stats.extra_reads:,}",
         "Input reads of a position some window already read: "
         "tokens per epoch − distinct positions read."),
    ])


def epoch(w: Windows) -> None:
    """What one epoch feeds the model, and the shapes of its batches."""
    shapes = data.batch_shapes(w.stats.samples, w.batch, w.block)
    st.caption(f"One epoch feeds {w.stats.tokens_per_epoch:,} input tokens = "
               f"{w.stats.distinct_inputs:,} distinct positions + {w.stats.extra_reads:,} repeat "
               f"reads. Batched {w.batch} at a time that is {len(shapes):,} batches of x and y "
               f"of shape {shapes[0]}"
               + (f", the last one {shapes[-1]}" if shapes[-1] != shapes[0] else "") + ".")


def window_grid(w: Windows, key: str) -> None:
    """Windows (rows) over the first or the last tokens of the stream (columns)."""
    at_end = st.radio("Draw the windows over", ["the start of the stream", "the end of the stream"],
                      horizontal=True, key=f"{key}grid_at") == "the end of the stream"
    n = len(w.stream)
    drawn = range(max(0, n - GRID_WIDTH), n) if at_end else range(min(n, GRID_WIDTH))
    ui.window_grid([w.tok.token_text(w.stream[p]) for p in drawn],
                   data.window_picture(n, w.block, w.stride, drawn))
    st.caption("Rows are windows, columns are tokens. Blue: the window's input x (each blue "
               "token's target is the token to its right); orange: the last target, which the "
               "window does not read. The bottom row counts how many windows read each token: "
               "red 0 = never an input, amber 2+ = read again.")


def first_window(w: Windows) -> None:
    """Window 0's input x beside its target y, the one new token of y in red."""
    x, y = (t.tolist() for t in data.SlidingWindowDataset(w.stream, w.block, w.stride)[0])
    c_x, c_y = st.columns(2)
    with c_x:
        st.caption("window 0, input x")
        ui.tokens(w.tok, x)
    with c_y:
        st.caption("window 0, target y (x shifted by one)")
        ui.tokens(w.tok, y, highlight={w.block - 1})
    st.caption("In red: the one token of y that x does not contain. At every position the "
               "model predicts the next token, so one window gives `block size` examples.")


LOOPS = [("range(0, n - block, stride)  (the tutorial)", 0),
         ("range(0, n - block - 1, stride)", -1), ("range(0, n - block + 1, stride)", 1)]


def window_loops(w: Windows) -> None:
    """The tutorial's window loop beside its two off-by-ones, on the learner's stream."""
    checks = [(code, data.check_loop(len(w.stream), w.block, w.stride, shift))
              for code, shift in LOOPS]
    table([{"loop": code, "windows": len(c.starts),
            "last start": f"{c.starts[-1]:,}" if c.starts else "–",
            "windows missing": len(c.missing), "targets too short": len(c.short),
            "tokens never used": len(c.lost)} for code, c in checks])
    short_by_one, long_by_one = checks[1][1], checks[2][1]
    st.markdown(
        "The tutorial's loop is right: `range` stops *before* n − block, so no window starts "
        "after n − block − 1, the last start whose target still fits in the stream: exactly the "
        f"dataset's {ui.plural(w.stats.samples, 'window')}. Subtracting one more \"to leave room "
        "for the target\" counts the shift twice: it drops the last window whenever n − block − 1 "
        "is a multiple of the stride, a bug that one stride hides and another reveals. "
        + dropped_by_one(w, short_by_one)
        + ("Adding one instead makes a last window whose target is a token short, and "
           "`torch.stack` refuses to batch tensors of different lengths."
           if long_by_one.short else ""))


def dropped_by_one(w: Windows, check: data.LoopCheck) -> str:
    """What the loop one short drops on this stream, in a sentence."""
    if not check.missing:
        return "With these settings it happens to drop nothing; try stride 1. "
    lost = ", ".join(f"{p} `{ui.token_label(w.tok, w.stream[p])}`" for p in check.lost)
    return (f"Here it drops {ui.plural(len(check.missing), 'window')} and never uses "
            f"{'token' if len(check.lost) == 1 else 'tokens'} {lost}. ")


# ------------------------------------------------------------------ 5 · padding


def padding(tok: tk.Tokenizer, is_gpt2: bool, key: str) -> None:
    """Lines of different lengths padded into one batch: x, y and the mask, the two rules,
    and the trap of finding the padding by its id."""
    lines = st.text_area("Examples of different lengths, one per line",
                         "Hello world!\nStop! Who goes there?\nYes!", height=90,
                         key=f"{key}pad_text")
    pairs = data.shifted_pairs([tok.encode(line)[:16] for line in lines.splitlines()])[:6]
    if not pairs:
        st.info("Padding needs at least one line of two tokens or more (its input and its label).")
        return
    pad_id = tk.pad_token_id(tok)
    demo = data.padding_demo(pairs, pad_id)
    padded_batch(demo, tok, pad_id)
    padding_rules(demo, tok, pad_id, is_gpt2)
    st.markdown("##### The trap: pad with 0, then find the padding by its id")
    padding_trap(demo, tok, is_gpt2)


def padded_batch(demo: data.PaddingDemo, tok: tk.Tokenizer, pad_id: int) -> None:
    """The inputs, the labels and the attention mask, side by side."""
    c1, c2, c3 = st.columns(3)
    c1.caption(f"x, the inputs (padded with {pad_id} `{ui.token_label(tok, pad_id)}`)")
    c1.dataframe(pd.DataFrame(demo.x), hide_index=True)
    c2.caption(f"y, the labels (padded with {data.IGNORE_INDEX})")
    c2.dataframe(pd.DataFrame(demo.y), hide_index=True)
    c3.caption("attention mask (1 = real token)")
    c3.dataframe(pd.DataFrame(demo.mask), hide_index=True)


def padding_rules(demo: data.PaddingDemo, tok: tk.Tokenizer, pad_id: int, is_gpt2: bool) -> None:
    """How labels and inputs are padded, with this batch's numbers."""
    refused = data.embedding_error(tok.vocab_size, tok.vocab_size)
    st.markdown(
        "Two rules, one for each side of the batch:\n"
        f"- **Labels** are padded with `{data.IGNORE_INDEX}`, the value "
        "`F.cross_entropy(ignore_index=-100)` skips: padding adds nothing to the loss, "
        "whatever sits in the input there. Padded with a real id instead, the "
        f"{demo.n_padding:,} padded labels here would train the model to predict that id at "
        "every padded position.\n"
        f"- **Inputs** may be padded with any id the embedding table has a row for. An id past "
        f"the table, such as {tok.vocab_size:,} (the vocabulary size), is refused: "
        f"`{refused}`. Here the pad id is {pad_id}: " + (
            "`<|endoftext|>`, as Hugging Face pads GPT-2. " if is_gpt2 else
            "`<unk>`, a token that is not a character of the corpus. ")
        + "Its value never matters, because the lengths, kept in the attention mask, say "
        "where the padding is: in a causal GPT padded on the right, real tokens never attend "
        "to the pads after them and the pads' own predictions are dropped by -100; the mask "
        "matters where that is not enough (padding on the left, for generation).")


def padded_rows(tok: tk.Tokenizer, rows, mask, hidden=()) -> None:
    """Each padded row as spans, "pad" where the mask says padding; `hidden` (row, position)
    pairs in red."""
    for b, (row, real) in enumerate(zip(rows, mask)):
        spans_of = [tok.token_text(t) if r else "pad" for t, r in zip(row, real)]
        ui.token_spans(spans_of, row, highlight={p for r, p in hidden if r == b})


def padding_trap(demo: data.PaddingDemo, tok: tk.Tokenizer, is_gpt2: bool) -> None:
    """Padding with 0 and masking `x != 0` beside the mask from the lengths."""
    c_bug, c_fix = st.columns(2)
    with c_bug:
        st.markdown("**Buggy:** `mask = (x != 0)`")
        padded_rows(tok, demo.x_zero, demo.mask, demo.hidden)
        st.caption(f"{demo.n_masked_by_id:,} positions masked, {len(demo.hidden):,} of them "
                   "real tokens (red).")
    with c_fix:
        st.markdown("**Fixed:** the mask comes from the lengths")
        padded_rows(tok, demo.x, demo.mask)
        st.caption(f"{demo.n_padding:,} positions masked, all of them padding.")
    zero = ui.token_label(tok, 0)
    st.markdown(
        f"Id 0 is a real token here: `{zero}`"
        + (" (in GPT-2's vocabulary, the exclamation mark). " if is_gpt2 else ". ")
        + (f"A mask rebuilt from `x != 0` hides {len(demo.hidden)} real `{zero}` "
           f"{'token' if len(demo.hidden) == 1 else 'tokens'} with the padding: nothing can "
           "attend to a hidden token, and if labels are masked the same way it is never learned."
           if demo.hidden else "None of these inputs contains it, so nothing is hidden this "
                               "time; with GPT-2's tokenizer every `!` would be.")
        + " Padding with 0 is harmless only while the mask comes from the lengths.")


# ------------------------------------------------------------------ 6 · split


def split(char: tk.Tokenizer, corpus, w: Windows, key: str) -> None:
    """The validation fraction, the cut by position, and a random split of the windows beside
    the split by position, with the validation windows each leaks."""
    val_fraction = st.slider("Validation fraction", 0.05, 0.5, 0.1, 0.05, key=f"{key}val")
    corpus_ids = char.encode(corpus.text[:200_000])
    train_ids, val_ids = data.train_val_split(corpus_ids, val_fraction)
    st.markdown(f"The first **{len(train_ids):,}** character tokens of {corpus.name} (of its first "
                f"200,000 characters) train, the last **{len(val_ids):,}** validate: one cut, by "
                "position, before any window is made, so no validation token is ever inside a "
                "training window.")
    n_demo = min(5_000, len(corpus_ids))
    leaky = data.split_windows_at_random(n_demo, w.block, w.stride, val_fraction, state.seed())
    clean = data.split_windows_by_position(n_demo, w.block, w.stride, val_fraction)
    st.markdown(f"The wrong way, beside the right one, on {n_demo:,} tokens cut into windows with "
                f"section 4's block size {w.block} and stride {w.stride}:")
    c_bug, c_fix = st.columns(2)
    for column, title, (train_w, val_w) in (
            (c_bug, "**Leaky:** windows first, then a random split of the windows", leaky),
            (c_fix, "**Clean:** split by position first, then windows", clean)):
        with column:
            st.markdown(title)
            st.metric("validation windows the model trained on, every token",
                      f"{data.leaked_windows(train_w, val_w, w.block):,} of {len(val_w):,}")
    if not leaky[1]:
        st.caption("Too few windows for a validation set: lower the block size or the stride.")
