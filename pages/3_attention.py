"""Lesson 3: attention, one switch at a time: scores, scaling, masks, heads, real maps."""
import math

import pandas as pd
import streamlit as st
import torch

from classroom import charts, models, page, shared, state, widgets as ui
from gptcore import attention as attn
from gptcore.model import GPT, GPTConfig, attention_maps
from gptcore.trainer import TrainConfig, Trainer, prepare_data
from gptcore.generate import generate

page.setup(3, """
Attention lets every token look at the other tokens and take a **weighted average** of what
they carry. The weights come from how well a token's *query* matches each token's *key*.
""")
st.latex(r"\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right)V")

K = "l3_"
WORDS = ["Your", "journey", "starts", "with", "one", "step"]
VECTORS = [[0.43, 0.15, 0.89], [0.55, 0.87, 0.66], [0.57, 0.85, 0.64],
           [0.22, 0.58, 0.33], [0.77, 0.25, 0.10], [0.05, 0.80, 0.55]]

# ------------------------------------------------------------------ toy example
st.subheader("1 · One query, by hand")
st.markdown("Six words with hand-made 3-d vectors (edit them). In plain self-attention each "
            "vector serves as query, key and value at once.")
c1, c2 = st.columns([2, 3])
with c1:
    table = st.data_editor(pd.DataFrame(VECTORS, index=WORDS, columns=["d1", "d2", "d3"]),
                           key=f"act_{K}vectors", width="stretch")
    query_word = st.selectbox("Query word", WORDS, index=1, key=f"{K}query")
    scale_toy = st.toggle("Scale by 1/√d_k", value=False, key=f"{K}toy_scale")
x = torch.tensor(table.fillna(0.0).astype(float).values, dtype=torch.float32)  # (T, 3)
q_i = WORDS.index(query_word)
scores = x[q_i] @ x.T  # (T,)
out, weights = attn.scaled_dot_product_attention(x[q_i:q_i + 1], x, x, scale=scale_toy)
with c2:
    df = pd.DataFrame({"word": WORDS, "score": scores.tolist(), "weight": weights[0].tolist()})
    st.altair_chart(charts.bar_chart(df, "weight", "word", f"Softmax weights for '{query_word}'",
                                     fmt=".3f"), width="stretch")
    st.dataframe(df.style.format({"score": "{:.4f}", "weight": "{:.4f}"}), hide_index=True,
                 width="stretch")
terms = " + ".join(f"{w:.3f}·{word}" for w, word in zip(weights[0].tolist(), WORDS))
st.markdown(f"**score** = query · key, e.g. {query_word} · {WORDS[0]} = {scores[0]:.4f}.  \n"
            f"**weights** = softmax(scores{' / √3' if scale_toy else ''}); they sum to "
            f"{weights.sum():.4f}.  \n**context vector** = {terms} = "
            f"**[{', '.join(f'{v:.4f}' for v in out[0].tolist())}]**")
ui.show_code(attn.scaled_dot_product_attention)

# ------------------------------------------------------------------ scaling
st.subheader("2 · Why divide by √d_k")
c1, c2 = st.columns([1, 2])
d_k = c1.select_slider("d_k (size of queries and keys)", [2, 4, 8, 16, 32, 64, 128, 256, 512],
                       value=64, key=f"{K}dk")
scaled = c1.toggle("Scale by 1/√d_k", value=True, key=f"{K}scale")
T_RAND = 8


def softmax_stats(dk: int, use_scale: bool, n: int = 64):
    q = torch.randn(n, T_RAND, dk, generator=torch.Generator().manual_seed(dk))
    k = torch.randn(n, T_RAND, dk, generator=torch.Generator().manual_seed(dk + 1))
    _, w = attn.scaled_dot_product_attention(q, k, k, scale=use_scale)
    entropy = -(w * w.clamp_min(1e-12).log()).sum(-1)
    return w.max(-1).values.mean().item(), entropy.mean().item(), w[0]


rows = []
for dk in [2, 4, 8, 16, 32, 64, 128, 256, 512]:
    for use_scale in (True, False):
        top, ent, _ = softmax_stats(dk, use_scale)
        label = "scaled" if use_scale else "unscaled"
        rows += [{"d_k": dk, "value": top, "measure": f"largest weight ({label})"},
                 {"d_k": dk, "value": ent, "measure": f"entropy ({label})"}]
top, ent, example = softmax_stats(d_k, scaled)
with c1:
    st.metric("largest weight (mean)", f"{top:.3f}")
    st.metric("entropy (mean)", f"{ent:.3f}", help=f"uniform over {T_RAND} keys: {math.log(T_RAND):.3f}")
with c2:
    st.altair_chart(charts.line_chart(pd.DataFrame(rows), "d_k", "value", "measure",
                                      f"Random q, k with unit-variance entries, {T_RAND} keys",
                                      log_x=True), width="stretch")
st.altair_chart(charts.heatmap(example.tolist(), [f"k{j}" for j in range(T_RAND)],
                               [f"q{i}" for i in range(T_RAND)],
                               f"Weights at d_k = {d_k}, {'scaled' if scaled else 'unscaled'}",
                               size=300), width="content")
st.markdown(r"A dot product of two vectors with independent unit-variance entries has variance "
            r"$d_k$. Unscaled, scores grow like $\sqrt{d_k}$, the softmax **saturates** (one "
            r"weight near 1, the rest near 0), and its gradients vanish. Dividing by $\sqrt{d_k}$ "
            r"keeps the variance at 1 for every $d_k$.")

# ------------------------------------------------------------------ masks
st.subheader("3 · Masks: no peeking at the future, no attending to padding")
c1, c2, c3 = st.columns(3)
causal = c1.toggle("Causal mask", value=True, key=f"{K}causal")
use_pad = c2.toggle("Padding mask", value=True, key=f"{K}pad")
n_pad = c3.slider("Padding tokens at the end", 0, 4, 2, key=f"{K}npad")
tokens = WORDS + ["<pad>"] * n_pad
T = len(tokens)
emb = torch.randn(T, 8, generator=torch.Generator().manual_seed(state.seed()))
q_m = emb @ torch.randn(8, 8, generator=torch.Generator().manual_seed(1))
k_m = emb @ torch.randn(8, 8, generator=torch.Generator().manual_seed(2))
mask = torch.ones(T, T, dtype=torch.bool)
if causal:
    mask &= attn.causal_mask(T)
if use_pad and n_pad:
    real = torch.tensor([[1] * len(WORDS) + [0] * n_pad])
    mask &= attn.padding_mask(real)[0, 0]
_, before = attn.scaled_dot_product_attention(q_m, k_m, k_m)
_, after = attn.scaled_dot_product_attention(q_m, k_m, k_m, mask=mask)
c1, c2 = st.columns(2)
c1.altair_chart(charts.heatmap(before.tolist(), tokens, tokens, "Before masking", size=300),
                width="content")
c2.altair_chart(charts.heatmap(after.tolist(), tokens, tokens, "After masking", size=300),
                width="content")
st.caption("Masked scores become −∞ before the softmax, so their weights are exactly 0 and each "
           "row still sums to 1. The causal mask keeps the lower triangle: token t sees 0..t.")
ui.show_code(attn.causal_mask, attn.padding_mask)

st.markdown("**What goes wrong without the causal mask.** Train two tiny character models on "
            "the corpus, one with the mask and one without, and compare.")


@st.cache_data(show_spinner="Training two tiny models (about 10 s)…", max_entries=4)
def causal_experiment(key: str, text: str, seed: int):
    tok, train_ids, val_ids = prepare_data(text[:200_000], "char", 0, 0.1)
    results = {}
    for is_causal in (True, False):
        torch.manual_seed(seed)
        # A short context makes "read the next token" quick to learn for the unmasked model.
        model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=2, n_head=4,
                              n_embd=64, causal=is_causal))
        cfg = TrainConfig(batch_size=32, max_iters=400, lr=1e-2, min_lr=1e-3, warmup_iters=10,
                          eval_interval=400, seed=seed, sample_tokens=0)
        history = Trainer(model, train_ids, val_ids, cfg, tok).run().history
        start = torch.tensor([[tok.encode("\n")[0]]])
        out = generate(model, start, 120, temperature=0.8, use_cache=False,
                       generator=torch.Generator().manual_seed(seed))
        results["with mask" if is_causal else "without mask"] = (history[-1]["val_loss"],
                                                                 tok.decode(out[0].tolist()))
    return results


if st.button("Train both models", key=f"act_{K}train_causal"):
    st.session_state[f"{K}causal_result"] = True
if st.session_state.get(f"{K}causal_result"):
    corpus = shared.current_corpus()
    with ui.explain_errors("training the two models"):
        res = causal_experiment(shared.corpus_key(corpus), corpus.text, state.seed())
        c1, c2 = st.columns(2)
        for col, name in zip((c1, c2), ("with mask", "without mask")):
            loss, sample = res[name]
            col.metric(f"validation loss {name}", f"{loss:.3f}")
            col.code(sample, language=None)
        st.warning("Without the mask the loss looks wonderful because position t can read "
                   "token t+1, the very token it must predict: it learns to copy. When "
                   "generating, the next token does not exist yet, so the copy trick fails "
                   "and the text is garbage.", icon=":material/visibility_off:")

# ------------------------------------------------------------------ multi-head
st.subheader("4 · Many heads")
C = 24
heads = st.select_slider("Heads (must divide the width 24)", [1, 2, 3, 4, 6, 8, 12, 24], value=4,
                         key=f"{K}heads")
torch.manual_seed(state.seed())
mha = attn.MultiHeadAttention(GPTConfig(n_embd=C, n_head=heads, fast_attention=False)).eval()
x_words = torch.randn(1, len(WORDS), C, generator=torch.Generator().manual_seed(state.seed()))
with torch.no_grad():
    y, w_heads, _ = mha(x_words, return_weights=True)
B_, T_ = 1, len(WORDS)
st.markdown(
    f"x **(B, T, C) = ({B_}, {T_}, {C})** → `c_attn` → q, k, v each ({B_}, {T_}, {C}) → split "
    f"into heads **(B, nh, T, hs) = ({B_}, {heads}, {T_}, {C // heads})** → weights "
    f"**(B, nh, T, T) = {tuple(w_heads.shape)}** → weights @ v ({B_}, {heads}, {T_}, {C // heads}) → "
    f"heads side by side again → `c_proj` → **(B, T, C) = {tuple(y.shape)}**")
cols = st.columns(min(heads, 4))
for h in range(heads):
    with cols[h % len(cols)]:
        st.altair_chart(charts.heatmap(w_heads[0, h].tolist(), WORDS, WORDS, f"head {h}",
                                       size=200 if heads > 1 else 320, show_numbers=heads == 1),
                        width="content")
st.caption("Each head has its own slice of q, k and v (hs = C / nh channels), so each can "
           "attend to different things; `c_proj` mixes their outputs back into C channels.")
ui.show_code(attn.MultiHeadAttention)

# ------------------------------------------------------------------ real attention
st.subheader("5 · Attention in a real model")
active = models.model_picker(K)
text = st.text_input("Text", "The cat sat on the mat because it was tired.", key=f"{K}real_text",
                     max_chars=400)
ids = active.tokenizer.encode(text)[:48] or active.tokenizer.encode("\n")[:1] or [0]
with ui.explain_errors("computing attention maps"):
    maps = attention_maps(active.model, torch.tensor([ids]))
    n_layer, n_head = len(maps), maps[0].size(0)
    c1, c2 = st.columns(2)
    state.clamp(f"{K}layer", 0, n_layer - 1)
    state.clamp(f"{K}head", 0, n_head - 1)
    layer = c1.slider("Layer", 0, n_layer - 1, 0, key=f"{K}layer") if n_layer > 1 else 0
    head = c2.slider("Head", 0, n_head - 1, 0, key=f"{K}head") if n_head > 1 else 0
    labels = [ui.visible(active.tokenizer.token_text(i)) for i in ids]
    st.altair_chart(charts.heatmap(maps[layer][head].tolist(), labels, labels,
                                   f"{active.label}: layer {layer}, head {head}", size=420,
                                   show_numbers=False), width="content")
    st.caption(f"{len(ids)} tokens (at most 48 shown). Each row is a query token; the causal "
               "mask leaves the upper triangle empty." + (
                   " Random weights attend almost uniformly." if active.untrained else ""))
ui.show_code(attention_maps)
page.footer(3)
