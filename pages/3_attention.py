"""Lesson 3: attention, one switch at a time: scores, scaling, masks, heads, real maps.

Every number comes from gptcore.attention_lab (tested in tests/test_attention.py); this page
reads widgets, calls it, and draws."""
import pandas as pd
import streamlit as st

from classroom import charts, exercise_ui, models, page, progress, shared, state, widgets as ui, yours
from gptcore import attention as attn, attention_lab as lab

page.setup(3, """
Attention lets every token look at the other tokens and take a **weighted average** of what
they carry. The weights come from how well a token's *query* matches each token's *key*.
""")
st.markdown("""
**In this lesson you will**
- compute attention for one query by hand: scores, softmax weights, the weighted sum;
- see why the scores are divided by $\\sqrt{d_k}$;
- mask the future (and spot the mask written backwards), and learn when padding needs a mask;
- follow the shapes through multi-head attention and read the attention maps of a real model.
""")
st.latex(r"\mathrm{Attention}(Q, K, V) = "
         r"\mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right)V")

K = "l3_"


def heatmap(*args, **kwargs):
    """charts.heatmap at its full size: the axes go around the plot, not into it."""
    return charts.padded(charts.heatmap(*args, **kwargs))


WORDS = ["Your", "journey", "starts", "with", "one", "step"]
VECTORS = [[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
           [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]]
seed = state.seed()

# ------------------------------------------------------------------ toy example
st.subheader("1 · One query, by hand")
st.markdown("Six words with the tutorial's hand-made 3-d vectors (edit them; an empty cell "
            "counts as 0). In plain self-attention each vector is query, key and value at once.")
c1, c2 = st.columns([2, 3])
with c1:
    table = st.data_editor(pd.DataFrame(VECTORS, index=WORDS, columns=["d1", "d2", "d3"]),
                           key=f"act_{K}vectors", width="stretch")
    query_word = st.selectbox("Query word", WORDS, index=1, key=f"{K}query")
    scale_toy = st.toggle("Scale by 1/√d_k", value=False, key=f"{K}toy_scale")
with ui.explain_errors("computing attention for these vectors"):
    toy = lab.toy_attention(table.fillna(0.0).values.tolist(), WORDS.index(query_word), scale_toy)
    with c2:
        df = pd.DataFrame({"word": WORDS, "score": toy.scores, "weight": toy.weights})
        st.altair_chart(charts.bar_chart(df, "weight", "word",
                                         f"Softmax weights for '{query_word}'", fmt=".3f"),
                        width="stretch")
        st.dataframe(df.style.format({"score": "{:.4f}", "weight": "{:.4f}"}), hide_index=True,
                     width="stretch")
    terms = " + ".join(f"{w:.3f}·{word}" for w, word in zip(toy.weights, WORDS))
    st.markdown(
        f"**score** = query · key, e.g. {query_word} · {WORDS[0]} = {toy.scores[0]:.4f}.  \n"
        f"**weights** = softmax(scores{f' / √{toy.d_k}' if toy.scaled else ''}): positive, "
        f"summing to 1.  \n**context vector** = {terms} = "
        f"**[{', '.join(f'{v:.4f}' for v in toy.context)}]**")
ui.show_code(lab.toy_attention, attn.scaled_dot_product_attention)

# ------------------------------------------------------------------ scaling
st.subheader("2 · Why divide by √d_k")
D_KS = [2, 4, 8, 16, 32, 64, 128, 256, 512]
N_KEYS = 8
c1, c2 = st.columns([1, 2])
d_k = c1.select_slider("d_k (size of queries and keys)", D_KS, value=64, key=f"{K}dk")
scaled = c1.toggle("Scale by 1/√d_k", value=True, key=f"{K}scale")
chosen = lab.softmax_saturation(d_k, scaled, n_keys=N_KEYS, seed=seed)
curve = [lab.softmax_saturation(dk, s, n_keys=N_KEYS, seed=seed)
         for dk in D_KS for s in (True, False)]
rows = [{"d_k": s.d_k, "value": value,
         "measure": f"{name} ({'scaled' if s.scaled else 'unscaled'})"}
        for s in curve for name, value in (("largest weight", s.largest_weight),
                                           ("entropy", s.entropy))]
with c1:
    st.metric("spread of the scores (std)", f"{chosen.score_std:.2f}",
              help="About √d_k without scaling, about 1 with it.")
    st.metric("largest weight (mean)", f"{chosen.largest_weight:.3f}",
              help=f"1/{N_KEYS} = {1 / N_KEYS:.3f} when uniform, 1 when one key takes everything.")
    st.metric("entropy (mean)", f"{chosen.entropy:.3f}",
              help=f"ln {N_KEYS} ≈ 2.079 nats when uniform over {N_KEYS} keys, 0 when one-hot.")
with c2:
    st.altair_chart(charts.line_chart(pd.DataFrame(rows), "d_k", "value", "measure",
                                      f"Random q, k with unit-variance entries, {N_KEYS} keys",
                                      log_x=True), width="stretch")
st.altair_chart(heatmap(chosen.example, [f"k{j}" for j in range(N_KEYS)],
                        [f"q{i}" for i in range(N_KEYS)],
                        f"Weights at d_k = {d_k}, {'scaled' if scaled else 'unscaled'}",
                        size=300), width="content")
st.markdown(r"A dot product of two vectors with independent unit-variance entries has variance "
            r"$d_k$. Unscaled, scores spread like $\sqrt{d_k}$, the softmax **saturates** (one "
            r"weight near 1, the rest near 0), and its gradients vanish. Dividing by $\sqrt{d_k}$ "
            r"keeps the variance at 1 for every $d_k$.")
ui.show_code(lab.softmax_saturation)
exercise_ui.question("attention.saturation")

# ------------------------------------------------------------------ masks
st.subheader("3 · Masks: no peeking at the future")
st.markdown("The causal mask lets token *t* attend to tokens 0…*t* only: masked scores become "
            "−∞ before the softmax, so their weights are exactly 0 and each row still sums to "
            "1. gptcore's masks (like `F.scaled_dot_product_attention`'s) mean **True = may "
            "attend**.")
right = lab.mask_weights("causal", len(WORDS), seed)
wrong = lab.mask_weights("reversed", len(WORDS), seed)
c1, c2 = st.columns(2)
c1.altair_chart(heatmap(right.weights, WORDS, WORDS, "tril: the past and itself", size=300),
                width="content")
c1.caption(f"Weight on later tokens (mean over rows): {right.future_weight:.2f}.")
c2.altair_chart(heatmap(wrong.weights, WORDS, WORDS, "triu(diagonal=1) as 'may attend'",
                        size=300), width="content")
c2.caption(f"Weight on later tokens (mean over rows): {wrong.future_weight:.2f}. "
           + " ".join(f"'{WORDS[i]}' has nothing to attend to: its row is all 0."
                      for i in wrong.empty_rows))
st.info("**A slip the tutorial's notebook makes.** `torch.triu(torch.ones(T, T), diagonal=1)` "
        "marks the **future**. That is the right mask where True means *blocked* "
        "(`nn.MultiheadAttention`'s `attn_mask`, `scores.masked_fill(mask, -inf)`). Used "
        "where True means *may attend*, it is exactly backwards: every token reads only the "
        "tokens after it, including the one it must predict (a model that reads the "
        "future), and the last token reads nothing. Trained, it looks brilliant; below, it "
        "cannot write.", icon=":material/swap_vert:")
ui.show_code(attn.causal_mask, lab.reversed_causal_mask)
exercise_ui.exercise("attention.causal_mask")
exercise_ui.exercise("attention.scaled_dot_product_attention")

st.markdown("#### Padding: when does it need its own mask?")
st.markdown("Texts in a batch differ in length, so the shorter ones are padded to the longest. "
            "Here *Your journey starts with one step* is one row of such a batch.")
c1, c2, c3, c4 = st.columns(4)
causal = c1.toggle("Causal mask", value=True, key=f"{K}causal")
use_pad = c2.toggle("Padding mask", value=True, key=f"{K}pad")
n_pad = c3.slider("Padding tokens", 0, 4, 2, key=f"{K}npad")
side = c4.radio("Padding goes at the", ["end (right)", "start (left)"], key=f"{K}pad_side",
                horizontal=True)
demo = lab.padding_demo(WORDS, n_pad, pad_left=side.startswith("start"), causal=causal,
                        padding=use_pad, seed=seed)
c1, c2 = st.columns(2)
c1.altair_chart(heatmap(demo.unmasked, demo.tokens, demo.tokens, "No mask at all", size=300),
                width="content")
c2.altair_chart(heatmap(demo.weights, demo.tokens, demo.tokens, "With the masks you chose",
                        size=300), width="content")
m1, m2, m3 = st.columns(3)
m1.metric("real tokens that see a pad", f"{demo.real_rows_on_pads} of {len(WORDS)}")
m2.metric("most weight a real token gives to pads", f"{demo.largest_pad_weight:.3f}")
m3.metric("change in the real tokens' outputs", f"{demo.output_change:.4f}",
          help="The largest |difference| from the same sentence without any padding.")
st.caption("Rows the padding mask changes: " + (", ".join(
    f"{i} ({demo.tokens[i]})" for i in demo.changed_rows) or "none") + ".")
if demo.real_rows_on_pads:
    st.warning(f"Without the padding mask, {demo.real_rows_on_pads} real tokens give weight to "
               f"padding (up to {demo.largest_pad_weight:.1%}) and their outputs change: "
               "switch it on.", icon=":material/warning:")
st.markdown(
    "With the **causal mask and padding at the end**, a real token comes before every pad and "
    "never sees one: the padding mask changes only the pads' own rows, whose predictions the "
    "loss ignores anyway (label −100, lesson 2). So for training a GPT on right-padded batches "
    "it is optional. It **matters** when real tokens can see pads: **left padding** (used to "
    "batch prompts for generation, so every prompt ends at the last position) or "
    "**bidirectional** attention (no causal mask, as in BERT). With left padding and both "
    "masks, the pads' own rows have nothing left to attend to and come out all 0.")
ui.show_code(attn.padding_mask, lab.padding_demo)

st.markdown("#### What a model learns with the wrong mask")
st.markdown("Train three tiny character models on the corpus that differ only in the mask, "
            "then measure each two ways: the **validation loss** (every position at once, as in "
            "training) and the **generation loss** (each token predicted from the tokens before "
            "it only, as when generating).")


@st.cache_data(show_spinner="Training three tiny models (about 15 s)…", max_entries=4)
def mask_experiment(corpus_key: str, _text: str, seed: int):
    return lab.mask_experiment(_text, seed)


MASK_NAMES = {"causal": "causal mask", "none": "no mask", "reversed": "reversed mask"}
if st.button("Train the three models", key=f"act_{K}train_causal"):
    st.session_state[f"{K}causal_result"] = True
if st.session_state.get(f"{K}causal_result"):
    corpus = shared.current_corpus()
    with ui.explain_errors("training the three models"):
        runs = mask_experiment(shared.corpus_key(corpus), corpus.text, seed)
        for col, run in zip(st.columns(len(runs)), runs):
            col.markdown(f"**{MASK_NAMES[run.mask]}**")
            col.metric(f"validation loss · {MASK_NAMES[run.mask]}", f"{run.val_loss:.3f}")
            col.metric(f"generation loss · {MASK_NAMES[run.mask]}", f"{run.generation_loss:.3f}")
            col.code(run.sample, language=None, wrap_lines=True)
        st.warning("Without the mask, or with it reversed, position t can read token t+1, the "
                   "very token it must predict: the model learns to copy, and the validation "
                   "loss looks wonderful. Generating, the next token does not exist yet: the "
                   "copy trick fails, the generation loss is worse than the honest model's, and "
                   "the text is garbage. For the causal model the two losses are the same "
                   "number: it never relied on the future.", icon=":material/visibility_off:")
ui.show_code(lab.FixedMaskAttention, lab.generation_loss, lab.mask_experiment)

# ------------------------------------------------------------------ multi-head
st.subheader("4 · Many heads")
C = 24
st.markdown(
    "One head gives each token one weighted average. **Several heads** let a token look for "
    "several things at once (the previous word, the subject, a matching bracket): the C "
    "channels of q, k and v are cut into nh slices of hs = C / nh, and each head runs "
    "attention on its own slice. The cost is the same as one head of size C; the heads' "
    "outputs are put side by side again and `c_proj` mixes them.")
heads = st.select_slider("Heads (must divide the width 24)", [1, 2, 3, 4, 6, 8, 12, 24], value=4,
                         key=f"{K}heads")
walk = lab.shape_walk(C, heads, len(WORDS), seed)
st.markdown("  \n".join(f"{what} → **{symbols} = {shape}**"
                        for what, symbols, shape in walk.steps))
st.caption("Each head reads its own channels of q, k and v: " + " · ".join(
    f"head {h}: {start}–{stop - 1}" for h, (start, stop) in enumerate(walk.head_channels)))
cols = st.columns(min(heads, 3))  # three across: each map and its labels fit their column
for h in range(heads):
    with cols[h % len(cols)]:
        st.altair_chart(heatmap(walk.weights[h].tolist(), WORDS, WORDS, f"head {h}",
                                size=150 if heads > 1 else 320, show_numbers=heads == 1),
                        width="content")
ui.show_code(attn.split_heads, attn.merge_heads, attn.MultiHeadAttention)
exercise_ui.question("attention.head_shape")
exercise_ui.exercise("attention.split_heads")
exercise_ui.exercise("attention.merge_heads")

# ------------------------------------------------------------------ real attention
st.subheader("5 · Attention in a real model")
active = models.model_picker(K)
text = st.text_input("Text", "The cat sat on the mat because it was tired.", key=f"{K}real_text",
                     max_chars=400)
with ui.explain_errors("computing attention maps"):
    real = lab.real_attention_maps(active.model, active.tokenizer, text)
    c1, c2 = st.columns(2)
    state.clamp(f"{K}layer", 0, real.n_layer - 1)
    state.clamp(f"{K}head", 0, real.n_head - 1)
    layer = c1.slider("Layer", 0, real.n_layer - 1, 0, key=f"{K}layer") if real.n_layer > 1 else 0
    head = c2.slider("Head", 0, real.n_head - 1, 0, key=f"{K}head") if real.n_head > 1 else 0
    labels = [ui.visible(t) for t in real.tokens]
    weights, whose = real.head(layer, head), ""
    if exercise_ui.use_mine(("attention.causal_mask", "attention.scaled_dot_product_attention"),
                            "these maps", key=f"{K}use_mine"):
        try:
            q, k = lab.queries_and_keys(active.model, real.ids, layer)
            weights = yours.attention_weights(q, k, progress.progress().code,
                                              exercise_ui.learner_id())[head].tolist()
            whose = " · your attention"
        except yours.YourCodeFailed as e:
            st.warning(f"Your attention could not be used here: {e} Showing the book's.",
                       icon=":material/warning:")
    st.altair_chart(heatmap(weights, labels, labels,
                            f"{active.label}: layer {layer}, head {head}{whose}", size=420,
                            show_numbers=False), width="content")
    if whose:
        st.caption("Drawn with **your** `causal_mask` and `scaled_dot_product_attention`, run "
                   "in the sandbox on this layer's real queries and keys.")
    if real.n_text_tokens:
        shown = (f"{len(real.ids)} of the text's {real.n_text_tokens} "
                 f"token{'s' * (real.n_text_tokens > 1)} (at most {real.limit} shown): the "
                 f"smaller of the model's context, {real.context}, and {real.cap}, what fits in "
                 "a picture." + (" The rest is not drawn." if real.cut else ""))
    else:
        shown = f"The text is empty: the map shows one newline token (at most {real.limit} shown)."
    st.caption(shown + " Each row is a query token; the causal mask leaves the upper triangle "
               "empty." + (" Random weights attend almost uniformly." if active.untrained else ""))
ui.show_code(lab.real_attention_maps, lab.queries_and_keys)

# ------------------------------------------------------------------ recap
st.subheader("Recap")
st.markdown(r"""
- A token's output is a weighted average of the values, with weights
  $\mathrm{softmax}(q \cdot k / \sqrt{d_k})$: positive and summing to 1.
- Without $\sqrt{d_k}$ the scores grow with $d_k$ and the softmax saturates; with it the
  spread stays near 1.
- The causal mask keeps the lower triangle (True = may attend). Written backwards
  (`triu(diagonal=1)`) or left out, a model reads the token it must predict: a great
  validation loss, garbage text.
- Padding needs its own mask when real tokens can see pads: left padding or bidirectional attention.
- Heads split the channels: (B, T, C) → (B, nh, T, hs) → weights (B, nh, T, T) → (B, T, C).
""")
exercise_ui.notebook_download(3)
page.footer(3)
