"""Lesson 4's demos, one function each: the model builder and its budgets, a batch traced
through the model, the parts one at a time (LayerNorm and where it goes, the MLP and GELU,
residuals, dropout) and the GPT-2 weight port. Each draws its widgets (keys "l4_…"), calls
gptcore for the numbers, and renders them; the page around them holds the lesson's prose."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from classroom import charts, models, state, widgets as ui
from gptcore import budget, parts
from gptcore.config import ACTIVATIONS, GPTConfig
from gptcore.hf import has_gpt2_equivalent, port_report
from gptcore.model import GPT, MLP, Block, gelu, gelu_exact, layer_norm, shape_trace
from gptcore.presets import MODEL_PRESETS

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


def vector(values: list[float]) -> str:
    return ", ".join(f"{v:+.4f}" for v in values)


# ------------------------------------------------------------------ 1 · build a model


def apply_preset() -> None:
    """Set every builder control from the chosen preset ("Custom" leaves them as they are)."""
    preset = MODEL_PRESETS.get(st.session_state[f"{K}preset"])
    if preset is not None:
        for f in FIELDS:
            st.session_state[f"{K}{f}"] = getattr(preset, f)


def model_controls() -> None:
    """The preset and the ten controls of a GPTConfig, in two rows of five."""
    if f"{K}n_layer" not in st.session_state:
        st.session_state[f"{K}preset"] = "Tutorial GPT"
        apply_preset()
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


def builder() -> GPTConfig:
    """Draw the controls and return their GPTConfig, kept for lesson 5. A width the heads do
    not divide stops the page with the nearest width that works."""
    model_controls()
    values = {f: st.session_state[f"{K}{f}"] for f in FIELDS}
    try:
        config = GPTConfig(**values)
    except ValueError as e:
        nearest = ui.nearest_divisible(values["n_embd"], values["n_head"], *LIMITS["n_embd"],
                                       WIDTH_STEP)
        st.error(f"{e}" + (f" The nearest width that works with {values['n_head']} heads is "
                           f"{nearest}." if nearest else ""), icon=":material/block:")
        st.stop()
    state.set_built_config(config)
    return config


def budget_metrics(config: GPTConfig) -> int:
    """The training batch slider and the four headline costs; returns the batch."""
    batch = st.slider("Batch size, for the training memory", 1, 64, 8, key=f"{K}mem_batch",
                      help="Training reads batches of this many windows of the full context.")
    mem = budget.training_memory(config, batch)
    flops = budget.flops_per_token(config)
    m = st.columns(4)
    m[0].metric("parameters", f"{budget.num_params(config):,}")
    m[1].metric("weights (fp32)", ui.megabytes(mem["weights"]))
    m[2].metric("training memory (peak)", ui.megabytes(mem["peak"]),
                help=f"One AdamW step on a batch of {batch} × {config.block_size} tokens, fp32: "
                     "see below.")
    m[3].metric("forward FLOPs per token", f"{flops['forward'] / 1e6:,.1f} M",
                help=f"{flops['train'] / 1e6:,.1f} M to train (≈ 3 × forward)")
    return batch


def parameter_breakdown(config: GPTConfig) -> None:
    """Parameters by component: a table with shares, a bar chart, the formula."""
    counts = budget.param_breakdown(config)
    df = pd.DataFrame({"component": list(counts), "parameters": list(counts.values())})
    df["share"] = (df.parameters / df.parameters.sum()).map("{:.1%}".format)
    c1, c2 = st.columns([2, 3])
    c1.dataframe(df.style.format({"parameters": "{:,}"}), hide_index=True, width="stretch")
    c2.vega_lite_chart(charts.bar_chart(df[df.parameters > 0], "parameters", "component",
                                     "Where the parameters are"), width="stretch")
    st.latex(r"N = \underbrace{V C}_{\text{wte}} + \underbrace{T C}_{\text{wpe}} + L\,("
             r"\underbrace{4C^2}_{\text{attention}} + \underbrace{8C^2}_{\text{MLP}} + "
             r"\text{biases, LN}) + [\text{head: } V C \text{ if untied}]")


def weight_tying(config: GPTConfig) -> None:
    """What tying the head to the token embedding saves in this model."""
    tying = budget.weight_tying_savings(config)
    st.markdown(
        f"The token embedding turns a token into a vector; the head turns a vector into a score "
        f"for every token. Tying uses one (V, C) matrix for both (`lm_head.weight = wte.weight`): "
        f"a token's input vector is also the direction that scores it as the next token, and the "
        f"head's own V·C parameters disappear: **{tying['parameters']:,}** for this model "
        f"({tying['share_of_untied']:.1%} of its untied size). GPT-2 ties them; the tutorial's "
        f"model does not. This model is **{'tied' if config.tie_weights else 'untied'}**.")


def training_memory(config: GPTConfig, batch: int) -> None:
    """The peak-memory formula and this model's memory, part by part."""
    st.latex(r"M_{\text{peak}} \approx \underbrace{4N}_{\text{weights}} + "
             r"\underbrace{8N}_{\text{AdamW's } m,\,v}"
             r" + \max\big(\underbrace{A}_{\text{activations}},\ \underbrace{4N}_{\text{gradients}}"
             r" + \underbrace{4N}_{\text{update scratch}}\big)\ \text{bytes}")
    st.latex(r"A \approx 4\,B\,T\,\big(k\,L\,C + 2C + 4V\big) \;"
             r"\big[+\,4\,B\,T\,\big(L\,(3\,n_h T + C) + C\big)"
             r"\text{ with dropout}\big],\quad k = 17 \text{ (GELU)},\ 13 \text{ (ReLU)}")
    mem = budget.training_memory(config, batch)
    rows = [("weights", mem["weights"]), ("AdamW state (m and v)", mem["Adam state"]),
            ("gradients", mem["gradients"]), ("update scratch", mem["update scratch"]),
            *((f"activations: {k}", v) for k, v in budget.activation_bytes(config, batch).items()),
            ("peak", mem["peak"])]
    c1, c2 = st.columns([2, 3])
    c1.dataframe(pd.DataFrame({"part": [name for name, _ in rows],
                               "size": [ui.megabytes(n) for _, n in rows]}),
                 hide_index=True, width="stretch")
    c2.caption(
        f"For a batch of B = {batch} windows of T = {config.block_size} tokens, fp32 (4 bytes a "
        "value), MB = 10⁶ bytes. Activations are what the forward pass keeps for backward: each "
        "block's inputs, the (B, n_h, T, T) attention weights when dropout is on (PyTorch's fused "
        "CPU attention has no dropout, so it falls back to storing them), and the logits, "
        "B·T·V values each. They grow with the batch and the context, and for most batches "
        "they, not the weights, set the peak. The tests check this estimate against the peak "
        "PyTorch's profiler measures during a real training step: within 10%.")


def flops_formula(config: GPTConfig) -> None:
    """The forward FLOPs per token, the formula filled in with this model's numbers."""
    flops = budget.flops_per_token(config)
    st.latex(r"\text{forward} = 2\,(N_{\text{blocks}} + V C) + 2\,L\,T\,C"
             rf" = 2\,({ui.tex_number(flops['weights'] // 2)} + {ui.tex_number(flops['head'] // 2)})"
             rf" + 2 \cdot {config.n_layer} \cdot {config.block_size} \cdot {config.n_embd}"
             rf" = {flops['forward'] / 1e6:,.1f}\ \text{{M}}")
    st.caption(
        "The convention of Kaplan et al. (2020): a multiply-add is 2 FLOPs. N_blocks counts the "
        "weights of the blocks and ln_f, each used once per token; V·C is the head's matmul, "
        "tied or not (looking a row up in wte or wpe is a copy, not arithmetic). 2·L·T·C is "
        "attention's q·kᵀ and weighted sum of v over the T/2 keys a token sees on average under "
        "the causal mask. Training ≈ 3 × forward (backward costs about twice the forward). "
        "PyTorch's FlopCounterMode counts 2·L·T·C more: it counts the whole T × T score "
        "matrix, masked half included (the tests check both).")


# ------------------------------------------------------------------ 2 · a batch through the model


def trace_batch(config: GPTConfig) -> tuple[int, int]:
    """The batch and token-count sliders for the trace; returns (B, T)."""
    c1, c2 = st.columns(2)
    B = c1.slider("Batch", 1, 8, 2, key=f"{K}trace_b")
    longest = min(64, config.block_size)
    state.clamp(f"{K}trace_t", 1, longest)
    T = c2.slider("Tokens", 1, longest, min(8, config.block_size), key=f"{K}trace_t")
    return B, T


def embeddings(config: GPTConfig, B: int, T: int) -> None:
    """x = wte[idx] + wpe[t]: the formula, the shapes for this model and batch, and a tiny
    worked example where one token at two positions gets two different vectors."""
    V, C, T_ctx = config.vocab_size, config.n_embd, config.block_size
    st.latex(r"x_{b,t} = W_{te}[\,\mathrm{idx}_{b,t}\,] + W_{pe}[\,t\,],\qquad "
             rf"W_{{te}} \in \mathbb{{R}}^{{{ui.tex_number(V)} \times {C}}},\ "
             rf"W_{{pe}} \in \mathbb{{R}}^{{{ui.tex_number(T_ctx)} \times {C}}}")
    c1, c2 = st.columns([2, 3])
    c1.dataframe(pd.DataFrame([{"tensor": name, "shape": str(shape)}
                               for name, shape in parts.embedding_shapes(config, B, T)]),
                 hide_index=True, width="stretch")
    example = cached(parts.embedding_example)(EXAMPLE_IDS, seed=state.seed())
    c2.dataframe(pd.DataFrame([
        {"position": t, "token id": i, "wte[id]": vector(a), "wpe[position]": vector(b),
         "x = sum": vector(s)}
        for t, (i, a, b, s) in enumerate(zip(EXAMPLE_IDS, example["wte"], example["wpe"],
                                             example["x"]))]),
        hide_index=True, width="stretch")
    counts = budget.param_breakdown(config)
    c2.caption("A tiny GPT (vocabulary 10, width 4) with fresh weights: token 2 at positions 1 and "
               "3 gets the same `wte` row but different `wpe` rows, so the model sees two "
               "different vectors. Your model's two tables hold "
               f"{counts['token embedding (wte)']:,} and {counts['position embedding (wpe)']:,} "
               "numbers.")


def forward_trace(config: GPTConfig, B: int, T: int) -> None:
    """Every module call of a real forward pass, with its input and output shapes."""
    rows = cached(shape_trace)(config, B, T)
    st.dataframe(pd.DataFrame([{"#": i, "call": "\u2003" * r["depth"] + r["module"],
                                "type": r["type"], "input": str(r["input"]) if r["input"] else "",
                                "output": str(r["output"])} for i, r in enumerate(rows)]),
                 hide_index=True, height=360, width="stretch")
    st.caption(f"{len(rows)} calls in the order they start, indented by how deep they are "
               f"nested, from a forward pass of gptcore's GPT on a ({B}, {T}) batch of token ids. "
               "Rows with a · are steps inside a module: the activation, and attention's heads: "
               "q, k and v as (B, n_head, T, head size), the weights as (B, n_head, T, T). It runs "
               "on PyTorch's *meta* device: real shapes, no memory, so even the largest setting "
               "traces.")
    ui.show_code(shape_trace)


# ------------------------------------------------------------------ 3 · the parts


def layer_norm_demo() -> None:
    """Five token vectors before and after LayerNorm: each row ends at mean 0, variance 1."""
    st.latex(r"\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta,"
             r"\qquad \mu = \tfrac{1}{C}\textstyle\sum_i x_i,\ \ "
             r"\sigma^2 = \tfrac{1}{C}\sum_i (x_i - \mu)^2")
    table = pd.DataFrame(cached(parts.layer_norm_table)(state.seed()))
    st.dataframe(table.style.format(precision=4), hide_index=True)
    st.caption("Each token (row) is normalised on its own, across its 16 channels: mean 0 and "
               "variance 1 (just under: ε sits in the square root), whatever it started with. "
               "γ = 1 and β = 0 here, their values at initialisation; training learns them.")
    ui.show_code(layer_norm, parts.layer_norm_table)


def ln_placement() -> None:
    """Pre-LN against post-LN: each block's gradient at initialisation over a depth slider,
    and what the final LayerNorm changes in each."""
    st.latex(r"\text{pre-LN (GPT-2)}:\ x + f(\mathrm{LN}(x)) \qquad\qquad"
             r"\text{post-LN (2017)}:\ \mathrm{LN}(x + f(x))")
    depth = st.slider("Depth", 2, 48, 12, key=f"{K}ln_depth")
    placement = cached(parts.ln_placement_gradients)(depth, state.seed())
    grads = pd.DataFrame(placement["rows"])
    st.vega_lite_chart(charts.curves_chart(grads, "layer", "gradient norm", "placement",
                                        "Gradient of each block's weights at initialisation",
                                        log_y=True, points=True, integer_x=True), width="stretch")
    top = grads[grads.layer == depth - 1].set_index("placement")["gradient norm"]
    pre, post = parts.PLACEMENTS[True], parts.PLACEMENTS[False]
    st.markdown(
        f"One backward pass through {depth} blocks with the same weights, placed both ways. In "
        f"the top block the gradient is **{top[post]:.1f}** with post-LN and "
        f"**{top[pre]:.1f}** with pre-LN. Post-LN's gradients near the output do not "
        "shrink as the model gets deeper (move the depth: here they grow), pre-LN's do (Xiong "
        "et al., 2020). With one learning rate, a deep post-LN model takes its biggest first "
        "steps in its top layers, and needs a learning-rate warm-up to survive them. Pre-LN "
        "keeps a clean identity path from the loss to every block and trains without one, "
        "which is why GPT-2 moved LayerNorm to the input of each sub-block. Both use the 2017 "
        "initialisation here (Xavier weights, unit-variance embeddings), the setting of that "
        "analysis.")
    change = placement["ln_f_change"]
    st.markdown(
        f"**The final LayerNorm.** In pre-LN nothing normalises the stream after the last "
        f"block, so GPT-2 added `ln_f` before the head: here it changes that stream by up to "
        f"{change[pre]:.2f}. With the post-LN switch, gptcore keeps `ln_f` (2C parameters) "
        f"but every block already ends with a LayerNorm, so `ln_f` re-normalises a normalised "
        f"stream: at initialisation it moves it by at most {change[post]:.0e}. The 2017 "
        "Transformer had no final LayerNorm; after training, a post-LN `ln_f` only adds a "
        "learned scale and shift.")
    ui.show_code(parts.ln_placement_gradients, Block)


def feed_forward() -> None:
    """The MLP and its non-linearity: GELU (tanh and erf) and ReLU as curves, and one MLP's
    hidden units with each."""
    st.latex(r"\text{MLP}(x) = W_2\,\mathrm{GELU}(W_1 x + b_1) + b_2,\qquad "
             r"W_1: C \to 4C,\ W_2: 4C \to C")
    st.latex(r"\mathrm{GELU}(x) = x\,\Phi(x) = 0.5\,x\,\big(1 + \mathrm{erf}(x/\sqrt{2})\big)"
             r"\ \approx\ 0.5\,x\,\Big(1 + \tanh\big(\sqrt{2/\pi}\,(x + 0.044715\,x^3)\big)\Big)")
    curves = cached(parts.gelu_curves)()
    names = [k for k in curves if k not in ("x", "max_difference", "where")]
    acts = pd.concat([pd.DataFrame({"x": curves["x"], "y": curves[n], "function": n})
                      for n in names])
    c1, c2 = st.columns(2)
    c1.vega_lite_chart(charts.curves_chart(acts, "x", "y", "function", "The non-linearity"),
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


def residuals() -> None:
    """The size of the residual stream through a fresh GPT, with and without residuals."""
    st.latex(r"x_{l+1} = x_l + f_l(x_l)\quad\text{(with residuals)}\qquad "
             r"x_{l+1} = f_l(x_l)\quad\text{(without)}")
    depth = st.slider("Depth", 2, 48, 24, key=f"{K}res_depth")
    rms = pd.DataFrame([{"layer": i, "RMS of the residual stream": v, "blocks": label}
                        for residual, label in ((True, "with residuals"),
                                                (False, "without residuals"))
                        for i, v in enumerate(cached(parts.residual_rms)(depth, residual,
                                                                         state.seed()))])
    st.vega_lite_chart(charts.curves_chart(rms, "layer", "RMS of the residual stream", "blocks",
                                        "Signal size through a freshly initialised GPT",
                                        log_y=True, points=True, integer_x=True), width="stretch")
    st.caption("Layer 0 is the embeddings. With residuals, each block adds a little to a stream "
               "that carries the input all the way up (and gradients all the way down). Without "
               "them every block rewrites the signal, and it quickly loses the input.")
    ui.show_code(parts.residual_rms, Block)


def dropout() -> None:
    """A row of ones through dropout, in training and in eval mode."""
    p = st.slider("Dropout probability", 0.0, 0.9, 0.5, 0.1, key=f"{K}drop_p")
    drop = cached(parts.dropout_demo)(p, seed=state.seed())
    st.dataframe(pd.DataFrame([drop["input"], drop["train"], drop["eval"]],
                              index=["input", "train mode", "eval mode"]).style.format("{:.2f}"))
    st.caption(f"In training, each value is zeroed with probability {p:g} and the survivors are "
               f"scaled by 1/(1−p) = {drop['scale']:.2f}, so the expected value is unchanged. In "
               "eval mode dropout does nothing: `model.eval()` before generating matters.")
    ui.show_code(parts.dropout_demo)


# ------------------------------------------------------------------ 4 · the GPT-2 port


def weight_port() -> None:
    """Pick a `transformers` model, port its weights into gptcore's GPT on a button, and show
    the comparison block by block (kept in the session until the next port)."""
    active = models.model_picker(K)
    if isinstance(active.model, GPT):
        st.caption(f"This model ({active.label}) is a gptcore GPT: its weights are first "
                   "written into `transformers`' GPT2LMHeadModel with `to_hf`, then ported "
                   "back and compared.")
    if isinstance(active.model, GPT) and not has_gpt2_equivalent(active.model.config):
        st.info(f"This model ({active.label}) is not causal, pre-LN and residual, so GPT-2 "
                "has no equivalent of it: pick another model to compare with `transformers`.")
    elif st.button("Port the weights and compare", key=f"act_{K}port"):
        with (ui.explain_errors("porting the weights"),
              st.spinner("Porting and running both models…")):
            ids = active.tokenizer.encode(PORT_TEXT)
            st.session_state[REPORT] = (active.label, port_report(active.model, ids))
    if st.session_state.get(REPORT):
        port_verdict(*st.session_state[REPORT])


def port_verdict(label: str, report: dict) -> None:
    """A port report: max |Δ| per stage, then success if every predicted token agrees."""
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
