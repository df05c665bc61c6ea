"""Lesson 4: build a GPT with sliders, trace its shapes, and check it is GPT-2, number by number."""
import pandas as pd
import streamlit as st

from classroom import charts, exercise_ui, models, page, state, widgets as ui
from gptcore import budget, parts
from gptcore.config import ACTIVATIONS
from gptcore.hf import compare_with_hf, port_report
from gptcore.model import GPT, MLP, Block, GPTConfig, gelu, gelu_exact, layer_norm, shape_trace
from gptcore.presets import MODEL_PRESETS

page.setup(4, """
A GPT is a stack of identical **blocks** between an embedding and a head. Each block lets
tokens exchange information (**attention**) and then lets each token think on its own
(**feed-forward**), with **LayerNorm** keeping numbers in range and **residual** connections
carrying the signal straight through.

**In this lesson you will**
- build a GPT from its config and read its cost: parameters, memory to train it, FLOPs per token;
- follow a batch through it, from token ids to logits, shape by shape;
- see what each part does: embeddings, LayerNorm and where it goes, GELU, residuals, dropout;
- prove that gptcore's GPT computes what GPT-2 computes, by porting real weights.
""")

K = "l4_"
FIELDS = ["n_layer", "n_head", "n_embd", "block_size", "vocab_size", "dropout", "tie_weights",
          "pre_ln", "activation", "bias"]
LIMITS = dict(n_layer=(1, 48), n_head=(1, 32), n_embd=(8, 1600), block_size=(8, 2048),
              vocab_size=(2, 100_000))
WIDTH_STEP = 8
PORT_TEXT = "The quick brown fox jumps over the lazy dog."
EXAMPLE_IDS = [5, 2, 7, 2]  # token 2 twice: same wte row, different wpe rows
REPORT = f"{K}port_report"
cached = st.cache_data(show_spinner=False, max_entries=64)


def apply_preset():
    preset = MODEL_PRESETS.get(st.session_state[f"{K}preset"])
    if preset is not None:
        for f in FIELDS:
            st.session_state[f"{K}{f}"] = getattr(preset, f)


def latex_int(n: int) -> str:
    return f"{n:,}".replace(",", "{,}")


if f"{K}n_layer" not in st.session_state:
    st.session_state[f"{K}preset"] = "Tutorial GPT"
    apply_preset()

# ------------------------------------------------------------------ builder
st.subheader("1 · Build a model")
st.selectbox("Preset", [*MODEL_PRESETS, "Custom"], key=f"{K}preset", on_change=apply_preset,
             help="Choosing a preset sets every control below; moving a control keeps it.")
c = st.columns(5)
c[0].slider("Layers", *LIMITS["n_layer"], key=f"{K}n_layer")
c[1].slider("Heads", *LIMITS["n_head"], key=f"{K}n_head")
c[2].slider("Width (n_embd)", *LIMITS["n_embd"], step=WIDTH_STEP, key=f"{K}n_embd")
c[3].number_input("Context (block size)", *LIMITS["block_size"], key=f"{K}block_size")
c[4].number_input("Vocabulary", *LIMITS["vocab_size"], key=f"{K}vocab_size")
c = st.columns(5)
c[0].slider("Dropout", 0.0, 0.5, step=0.05, key=f"{K}dropout")
c[1].toggle("Tie head to embeddings", key=f"{K}tie_weights")
c[2].toggle("Pre-LN (GPT-2)", key=f"{K}pre_ln",
            help="Off: post-LN, as in the 2017 Transformer. The final LayerNorm stays either "
                 "way: see “Where LayerNorm goes” below.")
c[3].selectbox("Activation", ACTIVATIONS, key=f"{K}activation",
               help="gelu: GPT-2's tanh approximation; gelu_exact: the erf form; relu.")
c[4].toggle("Biases", key=f"{K}bias")

values = {f: st.session_state[f"{K}{f}"] for f in FIELDS}
try:
    config = GPTConfig(**values)
except ValueError as e:
    nearest = ui.nearest_divisible(values["n_embd"], values["n_head"], *LIMITS["n_embd"], WIDTH_STEP)
    st.error(f"{e}" + (f" The nearest width that works with {values['n_head']} heads is {nearest}."
                       if nearest else ""), icon=":material/block:")
    st.stop()
state.set_built_config(config)
C, L, V, T_ctx = config.n_embd, config.n_layer, config.vocab_size, config.block_size

batch = st.slider("Batch size, for the training memory", 1, 64, 8, key=f"{K}mem_batch",
                  help="Training reads batches of this many windows of the full context.")
parts_n = budget.param_breakdown(config)
total = sum(parts_n.values())
mem = budget.training_memory(config, batch)
flops = budget.flops_per_token(config)
m = st.columns(4)
m[0].metric("parameters", f"{total:,}")
m[1].metric("weights (fp32)", ui.megabytes(mem["weights"]))
m[2].metric("training memory (peak)", ui.megabytes(mem["peak"]),
            help=f"One AdamW step on a batch of {batch} × {T_ctx} tokens, fp32: see below.")
m[3].metric("forward FLOPs per token", f"{flops['forward'] / 1e6:,.1f} M",
            help=f"{flops['train'] / 1e6:,.1f} M to train (≈ 3 × forward)")

c1, c2 = st.columns([2, 3])
df = pd.DataFrame({"component": list(parts_n), "parameters": list(parts_n.values())})
df["share"] = (df.parameters / total).map("{:.1%}".format)
c1.dataframe(df.style.format({"parameters": "{:,}"}), hide_index=True, width="stretch")
c2.altair_chart(charts.bar_chart(df[df.parameters > 0], "parameters", "component",
                                 "Where the parameters are"), width="stretch")
st.latex(r"N = \underbrace{V C}_{\text{wte}} + \underbrace{T C}_{\text{wpe}} + L\,(\underbrace{4C^2}_{\text{attention}} + \underbrace{8C^2}_{\text{MLP}} + \text{biases, LN}) + [\text{head: } V C \text{ if untied}]")

st.markdown("##### Weight tying")
tying = budget.weight_tying_savings(config)
st.markdown(
    f"The token embedding turns a token into a vector; the head turns a vector into a score "
    f"for every token. Tying uses one (V, C) matrix for both (`lm_head.weight = wte.weight`): "
    f"a token's input vector is also the direction that scores it as the next token, and the "
    f"head's own V·C parameters disappear: **{tying['parameters']:,}** for this model "
    f"({tying['share_of_untied']:.1%} of its untied size). GPT-2 ties them; the tutorial's "
    f"model does not. This model is **{'tied' if config.tie_weights else 'untied'}**.")

st.markdown("##### Memory to train it")
st.latex(r"M_{\text{peak}} \approx \underbrace{4N}_{\text{weights}} + \underbrace{8N}_{\text{AdamW's } m,\,v}"
         r" + \max\big(\underbrace{A}_{\text{activations}},\ \underbrace{4N}_{\text{gradients}}"
         r" + \underbrace{4N}_{\text{update scratch}}\big)\ \text{bytes}")
st.latex(r"A \approx 4\,B\,T\,\big(k\,L\,C + 2C + 4V\big) \;\big[+\,4\,B\,T\,\big(L\,(3\,n_h T + C) + C\big)"
         r"\text{ with dropout}\big],\quad k = 17 \text{ (GELU)},\ 13 \text{ (ReLU)}")
activations = budget.activation_bytes(config, batch)
memory_rows = [("weights", mem["weights"]), ("AdamW state (m and v)", mem["Adam state"]),
               ("gradients", mem["gradients"]), ("update scratch", mem["update scratch"]),
               *((f"activations: {k}", v) for k, v in activations.items()),
               ("peak", mem["peak"])]
c1, c2 = st.columns([2, 3])
c1.dataframe(pd.DataFrame({"part": [name for name, _ in memory_rows],
                           "size": [ui.megabytes(n) for _, n in memory_rows]}),
             hide_index=True, width="stretch")
c2.caption(
    f"For a batch of B = {batch} windows of T = {T_ctx} tokens, fp32 (4 bytes a value), "
    "MB = 10⁶ bytes. Activations are what the forward pass keeps for backward: each block's "
    "inputs, the (B, n_h, T, T) attention weights when dropout is on (PyTorch's fused CPU "
    "attention has no dropout, so it falls back to storing them), and the logits, "
    "B·T·V values each. They grow with the batch and the context, and for most batches "
    "they, not the weights, set the peak. The tests check this estimate against the peak "
    "PyTorch's profiler measures during a real training step: within 10%.")

st.markdown("##### FLOPs per token")
st.latex(r"\text{forward} = 2\,(N_{\text{blocks}} + V C) + 2\,L\,T\,C"
         rf" = 2\,({latex_int(flops['weights'] // 2)} + {latex_int(flops['head'] // 2)})"
         rf" + 2 \cdot {L} \cdot {T_ctx} \cdot {C} = {flops['forward'] / 1e6:,.1f}\ \text{{M}}")
st.caption(
    "The convention of Kaplan et al. (2020): a multiply-add is 2 FLOPs. N_blocks counts the "
    "weights of the blocks and ln_f, each used once per token; V·C is the head's matmul, "
    "tied or not (looking a row up in wte or wpe is a copy, not arithmetic). 2·L·T·C is "
    "attention's q·kᵀ and weighted sum of v over the T/2 keys a token sees on average under "
    "the causal mask. Training ≈ 3 × forward (backward costs about twice the forward). "
    "PyTorch's FlopCounterMode counts 2·L·T·C more: it counts the whole T × T score matrix, "
    "masked half included (the tests check both).")
ui.show_code(budget.param_breakdown, budget.flops_per_token, budget.activation_bytes,
             budget.training_memory)
exercise_ui.question("model.block_params")

# ------------------------------------------------------------------ a batch through the model
st.subheader("2 · A batch through the model")
c1, c2 = st.columns(2)
B = c1.slider("Batch", 1, 8, 2, key=f"{K}trace_b")
state.clamp(f"{K}trace_t", 1, min(64, T_ctx))
T = c2.slider("Tokens", 1, min(64, T_ctx), min(8, T_ctx), key=f"{K}trace_t")

st.markdown("##### Token and position embeddings")
st.markdown(
    "The first step turns ids into vectors. `wte` has one learned row per token id, `wpe` one "
    "per position; the model adds the token's row and its position's row. Attention on its "
    "own ignores order, so the position row is the only way the model knows where a token is.")
st.latex(r"x_{b,t} = W_{te}[\,\mathrm{idx}_{b,t}\,] + W_{pe}[\,t\,],\qquad "
         rf"W_{{te}} \in \mathbb{{R}}^{{{latex_int(V)} \times {C}}},\ "
         rf"W_{{pe}} \in \mathbb{{R}}^{{{latex_int(T_ctx)} \times {C}}}")
c1, c2 = st.columns([2, 3])
c1.dataframe(pd.DataFrame([{"tensor": name, "shape": str(shape)}
                           for name, shape in parts.embedding_shapes(config, B, T)]),
             hide_index=True, width="stretch")
example = cached(parts.embedding_example)(EXAMPLE_IDS, seed=state.seed())
c2.dataframe(pd.DataFrame([
    {"position": t, "token id": i, "wte[id]": ", ".join(f"{v:+.4f}" for v in a),
     "wpe[position]": ", ".join(f"{v:+.4f}" for v in b),
     "x = sum": ", ".join(f"{v:+.4f}" for v in s)}
    for t, (i, a, b, s) in enumerate(zip(EXAMPLE_IDS, example["wte"], example["wpe"], example["x"]))]),
    hide_index=True, width="stretch")
c2.caption("A tiny GPT (vocabulary 10, width 4) with fresh weights: token 2 at positions 1 and "
           "3 gets the same `wte` row but different `wpe` rows, so the model sees two "
           f"different vectors. Your model's two tables hold {parts_n['token embedding (wte)']:,} "
           f"and {parts_n['position embedding (wpe)']:,} numbers.")

st.markdown("##### Every call of a real forward pass")
rows = cached(shape_trace)(config, B, T)
st.dataframe(pd.DataFrame([{"#": i, "call": "\u2003" * r["depth"] + r["module"], "type": r["type"],
                            "input": str(r["input"]) if r["input"] else "",
                            "output": str(r["output"])} for i, r in enumerate(rows)]),
             hide_index=True, height=360, width="stretch")
st.caption(f"{len(rows)} calls in the order they start, indented by how deep they are nested, "
           f"from a forward pass of gptcore's GPT on a ({B}, {T}) batch of token ids. Rows with "
           "a · are steps inside a module: the activation, and attention's heads: q, k and v "
           "as (B, n_head, T, head size), the weights as (B, n_head, T, T). It runs on PyTorch's "
           "*meta* device: real shapes, no memory, so even the largest setting traces.")
ui.show_code(shape_trace)

# ------------------------------------------------------------------ the parts
st.subheader("3 · The parts, one at a time")
tab_ln, tab_place, tab_ff, tab_res, tab_drop = st.tabs(
    ["LayerNorm", "Where LayerNorm goes", "Feed-forward and GELU", "Residuals", "Dropout"])

with tab_ln:
    st.latex(r"\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,"
             r"\qquad \mu = \tfrac{1}{C}\textstyle\sum_i x_i,\ \ \sigma^2 = \tfrac{1}{C}\sum_i (x_i - \mu)^2")
    st.dataframe(pd.DataFrame(cached(parts.layer_norm_table)(state.seed())).style.format(precision=4),
                 hide_index=True)
    st.caption("Each token (row) is normalised on its own, across its 16 channels: mean 0 and "
               "variance 1 (just under: ε sits in the square root), whatever it started with. "
               "γ = 1 and β = 0 here, their values at initialisation; training learns them.")
    ui.show_code(layer_norm, parts.layer_norm_table)
    exercise_ui.question("model.layer_norm_mean")
    exercise_ui.exercise("model.layer_norm")

with tab_place:
    st.latex(r"\text{pre-LN (GPT-2)}:\ x + f(\mathrm{LN}(x)) \qquad\qquad"
             r"\text{post-LN (2017)}:\ \mathrm{LN}(x + f(x))")
    depth = st.slider("Depth", 2, 48, 12, key=f"{K}ln_depth")
    placement = cached(parts.ln_placement_gradients)(depth, state.seed())
    grads = pd.DataFrame(placement["rows"])
    st.altair_chart(charts.curves_chart(grads, "layer", "gradient norm", "placement",
                                        "Gradient of each block's weights at initialisation",
                                        log_y=True, points=True, integer_x=True), width="stretch")
    top = grads[grads.layer == depth - 1].set_index("placement")["gradient norm"]
    pre_label, post_label = parts.PLACEMENTS[True], parts.PLACEMENTS[False]
    st.markdown(
        f"One backward pass through {depth} blocks with the same weights, placed both ways. In "
        f"the top block the gradient is **{top[post_label]:.1f}** with post-LN and "
        f"**{top[pre_label]:.1f}** with pre-LN. Post-LN's gradients near the output do not "
        "shrink as the model gets deeper (move the depth: here they grow), pre-LN's do (Xiong "
        "et al., 2020). With one learning rate, a deep post-LN model takes its biggest first "
        "steps in its top layers, and needs a learning-rate warm-up to survive them. Pre-LN keeps a clean identity path from the "
        "loss to every block and trains without one, which is why GPT-2 moved LayerNorm to "
        "the input of each sub-block. Both use the 2017 initialisation here (Xavier weights, "
        "unit-variance embeddings), the setting of that analysis.")
    change = placement["ln_f_change"]
    st.markdown(
        f"**The final LayerNorm.** In pre-LN nothing normalises the stream after the last "
        f"block, so GPT-2 added `ln_f` before the head: here it changes that stream by up to "
        f"{change[pre_label]:.2f}. With the post-LN switch, gptcore keeps `ln_f` (2C parameters) "
        f"but every block already ends with a LayerNorm, so `ln_f` re-normalises a normalised "
        f"stream: at initialisation it moves it by at most {change[post_label]:.0e}. The 2017 "
        "Transformer had no final LayerNorm; after training, a post-LN `ln_f` only adds a "
        "learned scale and shift.")
    ui.show_code(parts.ln_placement_gradients, Block)

with tab_ff:
    st.latex(r"\text{MLP}(x) = W_2\,\mathrm{GELU}(W_1 x + b_1) + b_2,\qquad W_1: C \to 4C,\ W_2: 4C \to C")
    st.latex(r"\mathrm{GELU}(x) = x\,\Phi(x) = 0.5\,x\,\big(1 + \mathrm{erf}(x/\sqrt{2})\big)"
             r"\ \approx\ 0.5\,x\,\Big(1 + \tanh\big(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\big)\Big)")
    curves = cached(parts.gelu_curves)()
    names = [k for k in curves if k not in ("x", "max_difference", "where")]
    acts = pd.concat([pd.DataFrame({"x": curves["x"], "y": curves[n], "function": n}) for n in names])
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.curves_chart(acts, "x", "y", "function", "The non-linearity"),
                    width="stretch")
    c1.caption(f"GELU weighs x by Φ(x), the chance that a standard normal value is below x. "
               f"GPT-2 used the tanh approximation; it differs from the exact erf form by at "
               f"most {curves['max_difference']:.1e} (at x = ±{curves['where']:.2f}), invisible "
               "at this scale. A port of GPT-2 needs the tanh one to match it exactly.")
    c2.dataframe(pd.DataFrame(cached(parts.feed_forward_table)(state.seed())).style.format(
        {"output norm": "{:.4f}"}), hide_index=True)
    c2.caption("One MLP (16 → 64 → 16), the same weights, on the same 4 tokens. ReLU zeroes "
               "every negative unit; GELU lets small negative values through, so its gradient "
               "is not zero for them: smoother training.")
    ui.show_code(gelu, gelu_exact, MLP, parts.feed_forward_table)
    exercise_ui.exercise("model.gelu")

with tab_res:
    st.latex(r"x_{l+1} = x_l + f_l(x_l)\quad\text{(with residuals)}\qquad x_{l+1} = f_l(x_l)\quad\text{(without)}")
    res_depth = st.slider("Depth", 2, 48, 24, key=f"{K}res_depth")
    rms = pd.DataFrame([{"layer": i, "RMS of the residual stream": v, "blocks": label}
                        for residual, label in ((True, "with residuals"), (False, "without residuals"))
                        for i, v in enumerate(cached(parts.residual_rms)(res_depth, residual, state.seed()))])
    st.altair_chart(charts.curves_chart(rms, "layer", "RMS of the residual stream", "blocks",
                                        "Signal size through a freshly initialised GPT",
                                        log_y=True, points=True, integer_x=True), width="stretch")
    st.caption("Layer 0 is the embeddings. With residuals, each block adds a little to a stream "
               "that carries the input all the way up (and gradients all the way down). Without "
               "them every block rewrites the signal, and it quickly loses the input.")
    ui.show_code(parts.residual_rms, Block)

with tab_drop:
    p = st.slider("Dropout probability", 0.0, 0.9, 0.5, 0.1, key=f"{K}drop_p")
    drop = cached(parts.dropout_demo)(p, seed=state.seed())
    st.dataframe(pd.DataFrame([drop["input"], drop["train"], drop["eval"]],
                              index=["input", "train mode", "eval mode"]).style.format("{:.2f}"))
    st.caption(f"In training, each value is zeroed with probability {p:g} and the survivors are "
               f"scaled by 1/(1−p) = {drop['scale']:.2f}, so the expected value is unchanged. In "
               "eval mode dropout does nothing: `model.eval()` before generating matters.")
    ui.show_code(parts.dropout_demo)

st.markdown("**Now put the parts together.** Write GPT-2's block yourself: LayerNorm, "
            "causal multi-head attention, a residual add, LayerNorm, the MLP, a residual add. "
            "Once it passes, lesson 5 can train a GPT made of your blocks beside the book's.")
exercise_ui.exercise("model.Block")

# ------------------------------------------------------------------ weight port
st.subheader("4 · Is gptcore's GPT really GPT-2?")
st.markdown("Load a GPT-2 family model with `transformers`, copy its weights into gptcore's "
            "`GPT` with `GPT.from_hf`, and compare every block's output on the same text.")
active = models.model_picker(K)
if not hasattr(active.model, "transformer") or isinstance(active.model, GPT):
    st.info("Pick a `transformers` model (DistilGPT2, a local folder or the random-weights "
            "one) to compare it with gptcore.")
elif st.button("Port the weights and compare", key=f"act_{K}port"):
    with ui.explain_errors("porting the weights"), st.spinner("Porting and running both models…"):
        st.session_state[REPORT] = (active.label,
                                    port_report(active.model, active.tokenizer.encode(PORT_TEXT)))
if st.session_state.get(REPORT):
    label, report = st.session_state[REPORT]
    st.dataframe(pd.DataFrame(report["rows"]).style.format({"max |Δ|": "{:.2e}"}), hide_index=True)
    st.caption("`transformers` returns the last block's output only after the final "
               "LayerNorm, so the last block and `ln_f` are compared together.")
    if report["same_argmax"]:
        st.success(f"{label}: the largest logit difference is {report['logits_max_abs_diff']:.2e} "
                   f"(float32 rounding), and the predicted next token is the same at every one "
                   f"of the {report['positions']} positions.")
    else:
        wrong = report["argmax_differs_at"]
        where = ("position " if len(wrong) == 1 else "positions ") + ", ".join(map(str, wrong))
        st.warning(f"{label}: the predicted next token differs at {len(wrong)} of "
                   f"{report['positions']} positions ({where}); the largest logit difference is "
                   f"{report['logits_max_abs_diff']:.2e}. The port is not exact.")
st.markdown("""
**The Conv1D transpose.** GPT-2's checkpoint stores its linear layers as `Conv1D` with weights
of shape (in, out) and computes `x @ W + b`. PyTorch's `nn.Linear` stores (out, in) and computes
`x @ W.T + b`. So `from_hf` transposes `c_attn`, `c_proj` and `c_fc` weights; everything
else (embeddings, LayerNorms, biases) copies as is, and every shape is checked.
""")
ui.show_code(GPT.from_hf, compare_with_hf, port_report)

# ------------------------------------------------------------------ recap
st.subheader("Recap")
st.markdown(r"""
- A GPT is `wte` + `wpe` → L identical blocks → `ln_f` → a head. Its size is about
  12·L·C² for the blocks plus V·C for the embedding (twice if the head is untied).
- Training memory is weights, AdamW's two moments and the larger of the activations and the
  gradients' update: activations grow with batch × context, and usually win.
- A forward pass costs about 2 FLOPs per weight per token, plus 2·L·T·C for attention;
  training costs about 3 times that.
- Pre-LN keeps an identity path through the stack, residuals carry the signal, GELU is a
  smooth ReLU, and dropout acts only in training.
- With GPT-2's weights, gptcore's GPT gives GPT-2's logits to float32 rounding.
""")
exercise_ui.notebook_download(4)
page.footer(4)
