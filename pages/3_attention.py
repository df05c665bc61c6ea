"""Lesson 3: attention, one switch at a time: scores, scaling, masks, heads, real maps.

Every number comes from gptcore.attention_lab (tested in tests/test_attention.py); each demo
is a function of classroom.attention_views, and this page is the lesson around them."""
import streamlit as st

from classroom import attention_views as views, exercise_ui, page, state, widgets as ui
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
seed = state.seed()

st.subheader("1 · One query, by hand")
st.markdown("Six words with the tutorial's hand-made 3-d vectors (edit them; an empty cell "
            "counts as 0). In plain self-attention each vector is query, key and value at once.")
views.one_query(K)
ui.show_code(lab.toy_attention, attn.scaled_dot_product_attention)

st.subheader("2 · Why divide by √d_k")
views.scaling(seed, K)
st.markdown(r"A dot product of two vectors with independent unit-variance entries has variance "
            r"$d_k$. Unscaled, scores spread like $\sqrt{d_k}$, the softmax **saturates** (one "
            r"weight near 1, the rest near 0), and its gradients vanish. Dividing by $\sqrt{d_k}$ "
            r"keeps the variance at 1 for every $d_k$.")
ui.show_code(lab.softmax_saturation)
exercise_ui.question("attention.saturation")

st.subheader("3 · Masks: no peeking at the future")
st.markdown("The causal mask lets token *t* attend to tokens 0…*t* only: masked scores become "
            "−∞ before the softmax, so their weights are exactly 0 and each row still sums to "
            "1. gptcore's masks (like `F.scaled_dot_product_attention`'s) mean **True = may "
            "attend**.")
views.causal_vs_reversed(seed)
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
views.padding_masks(seed, K)
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
views.wrong_mask_models(seed, K)
ui.show_code(lab.FixedMaskAttention, lab.generation_loss, lab.mask_experiment)

st.subheader("4 · Many heads")
st.markdown(
    "One head gives each token one weighted average. **Several heads** let a token look for "
    "several things at once (the previous word, the subject, a matching bracket): the C "
    "channels of q, k and v are cut into nh slices of hs = C / nh, and each head runs "
    "attention on its own slice. The cost is the same as one head of size C; the heads' "
    "outputs are put side by side again and `c_proj` mixes them.")
views.heads(seed, K)
ui.show_code(attn.split_heads, attn.merge_heads, attn.MultiHeadAttention)
exercise_ui.question("attention.head_shape")
exercise_ui.exercise("attention.split_heads")
exercise_ui.exercise("attention.merge_heads")

st.subheader("5 · Attention in a real model")
views.real_attention(K)
ui.show_code(lab.real_attention_maps, lab.queries_and_keys)

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
