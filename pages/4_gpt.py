"""Lesson 4: build a GPT with sliders, trace its shapes, and check it is GPT-2, number by number."""
import pandas as pd
import streamlit as st
import torch
import torch.nn.functional as F

from classroom import charts, models, page, state, widgets as ui
from gptcore import budget
from gptcore.hf import compare_with_hf
from gptcore.model import GPT, Block, GPTConfig, MLP, shape_trace
from gptcore.presets import MODEL_PRESETS

page.setup(4, """
A GPT is a stack of identical **blocks** between an embedding and a head. Each block lets
tokens exchange information (**attention**) and then lets each token think on its own
(**feed-forward**), with **LayerNorm** keeping numbers in range and **residual** connections
carrying the signal straight through.
""")

K = "l4_"
FIELDS = ["n_layer", "n_head", "n_embd", "block_size", "vocab_size", "dropout", "tie_weights",
          "pre_ln", "activation", "bias"]
LIMITS = dict(n_layer=(1, 48), n_head=(1, 32), n_embd=(8, 1600), block_size=(8, 2048),
              vocab_size=(2, 100_000))


def apply_preset():
    preset = MODEL_PRESETS.get(st.session_state[f"{K}preset"])
    if preset is not None:
        for f in FIELDS:
            st.session_state[f"{K}{f}"] = getattr(preset, f)


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
c[2].slider("Width (n_embd)", *LIMITS["n_embd"], step=8, key=f"{K}n_embd")
c[3].number_input("Context (block size)", *LIMITS["block_size"], key=f"{K}block_size")
c[4].number_input("Vocabulary", *LIMITS["vocab_size"], key=f"{K}vocab_size")
c = st.columns(5)
c[0].slider("Dropout", 0.0, 0.5, step=0.05, key=f"{K}dropout")
c[1].toggle("Tie head to embeddings", key=f"{K}tie_weights")
c[2].toggle("Pre-LN (GPT-2)", key=f"{K}pre_ln", help="Off: post-LN, as in the 2017 Transformer.")
c[3].selectbox("Activation", ["gelu", "relu"], key=f"{K}activation")
c[4].toggle("Biases", key=f"{K}bias")

values = {f: st.session_state[f"{K}{f}"] for f in FIELDS}
try:
    config = GPTConfig(**values)
except ValueError as e:
    width, heads = values["n_embd"], values["n_head"]
    nearest = min((w for w in range(8, 1601, 8) if w % heads == 0),
                  key=lambda w: abs(w - width), default=None)
    st.error(f"{e}" + (f" The nearest width that works with {heads} heads is {nearest}."
                       if nearest else ""), icon=":material/block:")
    st.stop()
state.set_built_config(config)

parts = budget.param_breakdown(config)
total = sum(parts.values())
mem = budget.memory_bytes(config)
flops = budget.flops_per_token(config)
m = st.columns(4)
m[0].metric("parameters", f"{total:,}")
m[1].metric("weights (fp32)", f"{mem['weights'] / 2**20:,.1f} MB")
m[2].metric("training memory", f"{mem['total'] / 2**20:,.1f} MB",
            help="weights + gradients + AdamW's two moments = 16 bytes per parameter, "
                 "before activations")
m[3].metric("FLOPs per token", f"{flops['forward'] / 1e6:,.1f} M forward",
            help=f"{flops['train'] / 1e6:,.1f} M to train (≈ 3 × forward)")
c1, c2 = st.columns([2, 3])
df = pd.DataFrame({"component": list(parts), "parameters": list(parts.values())})
df["share"] = (df.parameters / total).map("{:.1%}".format)
c1.dataframe(df, hide_index=True, width="stretch")
c2.altair_chart(charts.bar_chart(df[df.parameters > 0], "parameters", "component",
                                 "Where the parameters are"), width="stretch")
C, L, V = config.n_embd, config.n_layer, config.vocab_size
st.latex(r"N = \underbrace{V C}_{\text{wte}} + \underbrace{T C}_{\text{wpe}} + L\,(\underbrace{4C^2}_{\text{attention}} + \underbrace{8C^2}_{\text{MLP}} + \text{biases, LN}) + [\text{head: } V C \text{ if untied}]")
st.caption(f"Memory: {mem['weights'] / 2**20:,.1f} MB weights + {mem['gradients'] / 2**20:,.1f} MB "
           f"gradients + {mem['Adam state'] / 2**20:,.1f} MB Adam state. FLOPs per token "
           "≈ 2·N (a multiply-add per weight) + 2·L·T·C for attention.")
ui.show_code(budget.param_breakdown, budget.flops_per_token)

# ------------------------------------------------------------------ shape trace
st.subheader("2 · Shape trace of a real forward pass")
c1, c2 = st.columns(2)
B = c1.slider("Batch", 1, 8, 2, key=f"{K}trace_b")
state.clamp(f"{K}trace_t", 1, min(64, config.block_size))
T = c2.slider("Tokens", 1, min(64, config.block_size), min(8, config.block_size), key=f"{K}trace_t")
rows = shape_trace(config, B, T)
trace = pd.DataFrame([{"#": i, "module": r["module"], "type": r["type"],
                       "input": str(r["input"]), "output": str(r["output"])}
                      for i, r in enumerate(rows)])
st.dataframe(trace, hide_index=True, height=320, width="stretch")
st.caption(f"{len(rows)} module calls, in order, from a forward pass of gptcore's GPT on a "
           f"({B}, {T}) batch of token ids. It runs on PyTorch's *meta* device: real shapes, "
           "no memory, so even the largest setting traces instantly.")
ui.show_code(shape_trace)

# ------------------------------------------------------------------ demos
st.subheader("3 · The parts, one at a time")
tab_ln, tab_ff, tab_res, tab_drop = st.tabs(["LayerNorm", "Feed-forward", "Residuals", "Dropout"])
gen = torch.Generator().manual_seed(state.seed())

with tab_ln:
    h = torch.randn(5, 16, generator=gen) * torch.tensor([[0.5], [2.0], [5.0], [1.0], [10.0]]) + \
        torch.tensor([[3.0], [-1.0], [0.0], [8.0], [-4.0]])
    ln = torch.nn.LayerNorm(16)
    with torch.no_grad():
        out = ln(h)
    st.dataframe(pd.DataFrame({
        "token": range(5), "mean before": h.mean(1).tolist(), "variance before": h.var(1, unbiased=False).tolist(),
        "mean after": out.mean(1).tolist(), "variance after": out.var(1, unbiased=False).tolist()})
        .style.format(precision=4), hide_index=True)
    st.latex(r"\mathrm{LN}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta")
    st.caption("Each token (row) is normalised on its own, across its 16 channels: mean 0 and "
               "variance ≈ 1 (γ = 1 and β = 0 at initialisation), whatever it started with.")

with tab_ff:
    x = torch.linspace(-4, 4, 161)
    acts = pd.concat([pd.DataFrame({"x": x.tolist(), "y": F.gelu(x, approximate="tanh").tolist(),
                                    "function": "GELU (tanh, GPT-2)"}),
                      pd.DataFrame({"x": x.tolist(), "y": F.relu(x).tolist(), "function": "ReLU"})])
    c1, c2 = st.columns(2)
    c1.altair_chart(charts.line_chart(acts, "x", "y", "function", "The non-linearity"),
                    width="stretch")
    small = GPTConfig(n_embd=16, n_head=1, vocab_size=10, block_size=8)
    torch.manual_seed(state.seed())
    mlp_gelu = MLP(small)
    mlp_relu = MLP(GPTConfig(**{**small.to_dict(), "activation": "relu"}))
    mlp_relu.load_state_dict(mlp_gelu.state_dict())
    inp = torch.randn(1, 4, 16, generator=gen)
    with torch.no_grad():
        hidden = mlp_gelu.c_fc(inp)
        activated = {"GELU": F.gelu(hidden, approximate="tanh"), "ReLU": F.relu(hidden)}
        out_norms = [float(mlp_gelu(inp).norm()), float(mlp_relu(inp).norm())]
    c2.dataframe(pd.DataFrame({
        "activation": list(activated),
        "hidden units exactly 0": [int((v == 0).sum()) for v in activated.values()],
        "negative hidden units": [int((v < 0).sum()) for v in activated.values()],
        "output norm": out_norms}), hide_index=True)
    c2.caption(f"The MLP widens each token from {small.n_embd} to {4 * small.n_embd} channels, "
               "applies the non-linearity and projects back. ReLU zeroes every negative unit; "
               "GELU lets small negative values through, which gives smoother gradients.")
    ui.show_code(MLP)

with tab_res:
    depth = st.slider("Depth", 2, 48, 24, key=f"{K}res_depth")
    norms = []
    for residual in (True, False):
        torch.manual_seed(state.seed())
        deep = GPT(GPTConfig(n_layer=depth, n_head=4, n_embd=64, block_size=16, vocab_size=50,
                             residual=residual)).eval()
        hidden = deep.inspect(torch.arange(16).view(1, 16) % 50)["hidden"]
        norms += [{"layer": i, "RMS of the residual stream": float(h.pow(2).mean().sqrt()),
                   "blocks": "with residuals" if residual else "without residuals"}
                  for i, h in enumerate(hidden)]
    st.altair_chart(charts.line_chart(pd.DataFrame(norms), "layer", "RMS of the residual stream",
                                      "blocks", "Signal size through a freshly initialised GPT"),
                    width="stretch")
    st.caption("With residuals, x + f(x): each block adds a little to a stream that carries the "
               "input all the way up (and carries gradients all the way down). Without them the "
               "signal is rewritten by every block and quickly loses the input.")
    ui.show_code(Block)

with tab_drop:
    p = st.slider("Dropout probability", 0.0, 0.9, 0.5, 0.1, key=f"{K}drop_p")
    drop = torch.nn.Dropout(p)
    v = torch.ones(1, 12)
    torch.manual_seed(state.seed())
    drop.train()
    train_out = drop(v)
    drop.eval()
    eval_out = drop(v)
    st.dataframe(pd.DataFrame([v[0].tolist(), train_out[0].tolist(), eval_out[0].tolist()],
                              index=["input", "train mode", "eval mode"]).style.format("{:.2f}"))
    st.caption(f"In training, each value is zeroed with probability {p} and the survivors are "
               f"scaled by 1/(1−p) = {1 / (1 - p):.2f}, so the expected value is unchanged. In "
               "eval mode dropout does nothing: `model.eval()` before generating matters.")

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
        ours = GPT.from_hf(active.model)
        ids = active.tokenizer.encode("The quick brown fox jumps over the lazy dog.")
        report = compare_with_hf(active.model, ours, torch.tensor([ids]))
        del ours
        st.session_state[f"{K}report"] = (active.label, report)
if st.session_state.get(f"{K}report"):
    label, report = st.session_state[f"{K}report"]
    st.dataframe(pd.DataFrame(report["rows"]).style.format({"max |Δ|": "{:.2e}"}),
                 hide_index=True)
    st.success(f"{label}: the largest logit difference is {report['logits_max_abs_diff']:.2e} "
               f"(float32 rounding), and the predicted next token is "
               f"{'the same' if report['same_argmax'] else 'NOT the same'} at every position.")
st.markdown("""
**The Conv1D transpose.** GPT-2's checkpoint stores its linear layers as `Conv1D` with weights
of shape (in, out) and computes `x @ W + b`. PyTorch's `nn.Linear` stores (out, in) and computes
`x @ W.T + b`. So `from_hf` transposes `c_attn`, `c_proj` and `c_fc` weights; everything
else (embeddings, LayerNorms, biases) copies as is, and every shape is checked.
""")
ui.show_code(GPT.from_hf, compare_with_hf)
page.footer(4)
