"""Lesson 3's demos, one function each: the page says what a demo teaches and calls it.

Every number comes from gptcore.attention_lab (tested in tests/test_attention.py); these
functions read widgets, call it and draw. `key` is the lesson's widget prefix ("l3_").
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from classroom import charts, exercise_ui, models, progress, shared, state, widgets as ui, yours
from gptcore import attention_lab as lab

WORDS = ["Your", "journey", "starts", "with", "one", "step"]
VECTORS = [[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
           [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]]
D_KS = [2, 4, 8, 16, 32, 64, 128, 256, 512]
N_KEYS = 8
WIDTH = 24  # the channels C the heads demo splits
MASK_NAMES = {"causal": "causal mask", "none": "no mask", "reversed": "reversed mask"}


def heatmap(*args, **kwargs):
    """charts.heatmap at its full size: the axes go around the plot, not into it."""
    return charts.heatmap(*args, pad=True, **kwargs)


def draw_heatmap(where, *args, **kwargs) -> None:
    """A heatmap in `where` (st or a column), at its own width."""
    where.vega_lite_chart(heatmap(*args, **kwargs), width="content")


# ------------------------------------------------------------------ 1 · one query by hand


def one_query(key: str) -> None:
    """Editable word vectors and a query word: the scores, the softmax weights (chart and
    table) and the context vector, written out."""
    c1, c2 = st.columns([2, 3])
    with c1:
        vectors = st.data_editor(pd.DataFrame(VECTORS, index=WORDS, columns=["d1", "d2", "d3"]),
                                 key=f"act_{key}vectors", width="stretch")
        query_word = st.selectbox("Query word", WORDS, index=1, key=f"{key}query")
        scale = st.toggle("Scale by 1/√d_k", value=False, key=f"{key}toy_scale")
    with ui.explain_errors("computing attention for these vectors"):
        toy = lab.toy_attention(vectors.fillna(0.0).values.tolist(), WORDS.index(query_word), scale)
        with c2:
            toy_weights(toy, query_word)
        toy_sums(toy, query_word)


def toy_weights(toy: lab.ToyAttention, query_word: str) -> None:
    """The query's weights as bars, and its scores and weights as a table."""
    df = pd.DataFrame({"word": WORDS, "score": toy.scores, "weight": toy.weights})
    st.vega_lite_chart(charts.bar_chart(df, "weight", "word", f"Softmax weights for '{query_word}'",
                                     fmt=".3f"), width="stretch")
    st.dataframe(df.style.format({"score": "{:.4f}", "weight": "{:.4f}"}), hide_index=True,
                 width="stretch")


def toy_sums(toy: lab.ToyAttention, query_word: str) -> None:
    """One score, the softmax and the context vector as a weighted sum, in numbers."""
    terms = " + ".join(f"{w:.3f}·{word}" for w, word in zip(toy.weights, WORDS))
    st.markdown(
        f"**score** = query · key, e.g. {query_word} · {WORDS[0]} = {toy.scores[0]:.4f}.  \n"
        f"**weights** = softmax(scores{f' / √{toy.d_k}' if toy.scaled else ''}): positive, "
        f"summing to 1.  \n**context vector** = {terms} = "
        f"**[{', '.join(f'{v:.4f}' for v in toy.context)}]**")


# ------------------------------------------------------------------ 2 · scaling


def scaling(seed: int, key: str) -> None:
    """d_k and the scale switch: how spread the scores are and how saturated the softmax is,
    against d_k for both settings, and one sample of weights."""
    c1, c2 = st.columns([1, 2])
    d_k = c1.select_slider("d_k (size of queries and keys)", D_KS, value=64, key=f"{key}dk")
    scaled = c1.toggle("Scale by 1/√d_k", value=True, key=f"{key}scale")
    chosen = lab.softmax_saturation(d_k, scaled, n_keys=N_KEYS, seed=seed)
    with c1:
        saturation_metrics(chosen)
    with c2:
        saturation_curves(seed)
    draw_heatmap(st, chosen.example, [f"k{j}" for j in range(N_KEYS)],
                 [f"q{i}" for i in range(N_KEYS)],
                 f"Weights at d_k = {d_k}, {'scaled' if scaled else 'unscaled'}", size=300)


def saturation_metrics(chosen: lab.Saturation) -> None:
    """The spread of the scores, the largest weight and the entropy, one under the other."""
    st.metric("spread of the scores (std)", f"{chosen.score_std:.2f}",
              help="About √d_k without scaling, about 1 with it.")
    st.metric("largest weight (mean)", f"{chosen.largest_weight:.3f}",
              help=f"1/{N_KEYS} = {1 / N_KEYS:.3f} when uniform, 1 when one key takes everything.")
    st.metric("entropy (mean)", f"{chosen.entropy:.3f}",
              help=f"ln {N_KEYS} ≈ 2.079 nats when uniform over {N_KEYS} keys, 0 when one-hot.")


@st.cache_data(show_spinner=False, max_entries=16)
def saturation_table(seed: int) -> pd.DataFrame:
    """The largest weight and the entropy for every d_k, scaled and unscaled: 18 runs of
    lab.softmax_saturation, 0.1 s that every rerun of the page would redo."""
    curve = [lab.softmax_saturation(dk, s, n_keys=N_KEYS, seed=seed)
             for dk in D_KS for s in (True, False)]
    return pd.DataFrame([{"d_k": s.d_k, "value": value,
                          "measure": f"{name} ({'scaled' if s.scaled else 'unscaled'})"}
                         for s in curve for name, value in (("largest weight", s.largest_weight),
                                                            ("entropy", s.entropy))])


def saturation_curves(seed: int) -> None:
    """The largest weight and the entropy against d_k, scaled and unscaled."""
    st.vega_lite_chart(charts.line_chart(saturation_table(seed), "d_k", "value", "measure",
                                      f"Random q, k with unit-variance entries, {N_KEYS} keys",
                                      log_x=True), width="stretch")


# ------------------------------------------------------------------ 3 · masks


def causal_vs_reversed(seed: int) -> None:
    """The causal mask's weights beside the mask written backwards."""
    right = lab.mask_weights("causal", len(WORDS), seed)
    wrong = lab.mask_weights("reversed", len(WORDS), seed)
    c1, c2 = st.columns(2)
    draw_heatmap(c1, right.weights, WORDS, WORDS, "tril: the past and itself", size=300)
    c1.caption(f"Weight on later tokens (mean over rows): {right.future_weight:.2f}.")
    draw_heatmap(c2, wrong.weights, WORDS, WORDS, "triu(diagonal=1) as 'may attend'", size=300)
    c2.caption(f"Weight on later tokens (mean over rows): {wrong.future_weight:.2f}. "
               + " ".join(f"'{WORDS[i]}' has nothing to attend to: its row is all 0."
                          for i in wrong.empty_rows))


def padding_masks(seed: int, key: str) -> None:
    """The toy sentence padded in a batch: the mask switches, the weights without and with the
    masks, and how much the real tokens read of the pads."""
    c1, c2, c3, c4 = st.columns(4)
    causal = c1.toggle("Causal mask", value=True, key=f"{key}causal")
    use_pad = c2.toggle("Padding mask", value=True, key=f"{key}pad")
    n_pad = c3.slider("Padding tokens", 0, 4, 2, key=f"{key}npad")
    side = c4.radio("Padding goes at the", ["end (right)", "start (left)"], key=f"{key}pad_side",
                    horizontal=True)
    demo = lab.padding_demo(WORDS, n_pad, pad_left=side.startswith("start"), causal=causal,
                            padding=use_pad, seed=seed)
    c1, c2 = st.columns(2)
    draw_heatmap(c1, demo.unmasked, demo.tokens, demo.tokens, "No mask at all", size=300)
    draw_heatmap(c2, demo.weights, demo.tokens, demo.tokens, "With the masks you chose", size=300)
    ui.metric_row([
        ("real tokens that see a pad", f"{demo.real_rows_on_pads} of {len(WORDS)}"),
        ("most weight a real token gives to pads", f"{demo.largest_pad_weight:.3f}"),
        ("change in the real tokens' outputs", f"{demo.output_change:.4f}",
         "The largest |difference| from the same sentence without any padding."),
    ])
    st.caption("Rows the padding mask changes: " + (", ".join(
        f"{i} ({demo.tokens[i]})" for i in demo.changed_rows) or "none") + ".")
    if demo.real_rows_on_pads:
        st.warning(f"Without the padding mask, {demo.real_rows_on_pads} real tokens give weight to "
                   f"padding (up to {demo.largest_pad_weight:.1%}) and their outputs change: "
                   "switch it on.", icon=":material/warning:")


@st.cache_data(show_spinner="Training three tiny models (about 15 s)…", max_entries=4)
def trained_with_masks(corpus_key: str, _text: str, seed: int) -> list[lab.MaskRun]:
    """lab.mask_experiment once per corpus and seed (`corpus_key` names the corpus)."""
    return lab.mask_experiment(_text, seed)


def wrong_mask_models(seed: int, key: str) -> None:
    """A button that trains three tiny models on the corpus, differing only in the mask; once
    pressed, each model's validation and generation losses and a sample of its text."""
    if st.button("Train the three models", key=f"act_{key}train_causal"):
        st.session_state[f"{key}causal_result"] = True
    if not st.session_state.get(f"{key}causal_result"):
        return
    corpus = shared.current_corpus()
    with ui.explain_errors("training the three models"):
        runs = trained_with_masks(shared.corpus_key(corpus), corpus.text, seed)
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


# ------------------------------------------------------------------ 4 · heads


def heads(seed: int, key: str) -> None:
    """The number of heads: the shapes from x to the merged output, each head's channels and
    each head's weights on the toy sentence."""
    n_head = st.select_slider(f"Heads (must divide the width {WIDTH})",
                              [1, 2, 3, 4, 6, 8, 12, 24], value=4, key=f"{key}heads")
    walk = lab.shape_walk(WIDTH, n_head, len(WORDS), seed)
    st.markdown("  \n".join(f"{what} → **{symbols} = {shape}**"
                            for what, symbols, shape in walk.steps))
    st.caption("Each head reads its own channels of q, k and v: " + " · ".join(
        f"head {h}: {start}–{stop - 1}" for h, (start, stop) in enumerate(walk.head_channels)))
    cols = st.columns(min(n_head, 3))  # three across: each map and its labels fit their column
    for h in range(n_head):
        draw_heatmap(cols[h % len(cols)], walk.weights[h].tolist(), WORDS, WORDS, f"head {h}",
                     size=150 if n_head > 1 else 320, show_numbers=n_head == 1)


# ------------------------------------------------------------------ 5 · a real model


def real_attention(key: str) -> None:
    """A model and a text: one layer's and one head's attention map, drawn with the book's
    attention or, once the learner's passes its checks, theirs."""
    active = models.model_picker(key)
    text = st.text_input("Text", "The cat sat on the mat because it was tired.",
                         key=f"{key}real_text", max_chars=400)
    with ui.explain_errors("computing attention maps"):
        real = state.last_result(  # a forward pass of the whole model: 0.1-0.3 s a rerun
            f"{key}real_maps", (active.model, text),
            lambda: lab.real_attention_maps(active.model, active.tokenizer, text))
        layer, head = layer_and_head(real, key)
        labels = [ui.visible(t) for t in real.tokens]
        weights, whose = real.head(layer, head), ""
        if exercise_ui.use_mine(("attention.causal_mask", "attention.scaled_dot_product_attention"),
                                "these maps", key=f"{key}use_mine"):
            weights, whose = your_weights(active, real, layer, head) or (weights, whose)
        draw_heatmap(st, weights, labels, labels,
                     f"{active.label}: layer {layer}, head {head}{whose}", size=420,
                     show_numbers=False)
        if whose:
            st.caption("Drawn with **your** `causal_mask` and `scaled_dot_product_attention`, run "
                       "in the sandbox on this layer's real queries and keys.")
        st.caption(tokens_shown(real) + " Each row is a query token; the causal mask leaves the "
                   "upper triangle empty."
                   + (" Random weights attend almost uniformly." if active.untrained else ""))


def layer_and_head(real: lab.RealMaps, key: str) -> tuple[int, int]:
    """Sliders for the layer and the head, where the model has more than one."""
    c1, c2 = st.columns(2)
    state.clamp(f"{key}layer", 0, real.n_layer - 1)
    state.clamp(f"{key}head", 0, real.n_head - 1)
    layer = c1.slider("Layer", 0, real.n_layer - 1, 0, key=f"{key}layer") if real.n_layer > 1 else 0
    head = c2.slider("Head", 0, real.n_head - 1, 0, key=f"{key}head") if real.n_head > 1 else 0
    return layer, head


def your_weights(active, real: lab.RealMaps, layer: int, head: int):
    """(weights, title suffix) from the learner's attention run in the sandbox on this layer's
    queries and keys; None, with a warning, when their code fails."""
    try:
        q, k = lab.queries_and_keys(active.model, real.ids, layer)
        weights = yours.attention_weights(q, k, progress.progress().code, exercise_ui.learner_id())
        return weights[head].tolist(), " · your attention"
    except yours.YourCodeFailed as e:
        st.warning(f"Your attention could not be used here: {e} Showing the book's.",
                   icon=":material/warning:")
        return None


def tokens_shown(real: lab.RealMaps) -> str:
    """Which of the text's tokens the map draws, and why no more."""
    if not real.n_text_tokens:
        return f"The text is empty: the map shows one newline token (at most {real.limit} shown)."
    return (f"{len(real.ids)} of the text's {real.n_text_tokens} "
            f"token{'s' * (real.n_text_tokens > 1)} (at most {real.limit} shown): the "
            f"smaller of the model's context, {real.context}, and {real.cap}, what fits in "
            "a picture." + (" The rest is not drawn." if real.cut else ""))
