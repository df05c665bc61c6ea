"""Lesson 4: build a GPT with sliders, trace its shapes, and check it is GPT-2, number by number."""
import streamlit as st

from classroom import exercise_ui, model_views as views, page, widgets as ui
from gptcore import budget
from gptcore.hf import compare_with_hf, port_report, to_hf
from gptcore.model import GPT

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

# ------------------------------------------------------------------ builder
st.subheader("1 · Build a model")
config = views.builder()
batch = views.budget_metrics(config)
views.parameter_breakdown(config)

st.markdown("##### Weight tying")
views.weight_tying(config)

st.markdown("##### Memory to train it")
views.training_memory(config, batch)

st.markdown("##### FLOPs per token")
views.flops_formula(config)
ui.show_code(budget.param_breakdown, budget.flops_per_token, budget.activation_bytes,
             budget.training_memory)
exercise_ui.question("model.block_params")

# ------------------------------------------------------------------ a batch through the model
st.subheader("2 · A batch through the model")
B, T = views.trace_batch(config)

st.markdown("##### Token and position embeddings")
st.markdown(
    "The first step turns ids into vectors. `wte` has one learned row per token id, `wpe` one "
    "per position; the model adds the token's row and its position's row. Attention on its "
    "own ignores order, so the position row is the only way the model knows where a token is.")
views.embeddings(config, B, T)

st.markdown("##### Every call of a real forward pass")
views.forward_trace(config, B, T)

# ------------------------------------------------------------------ the parts
st.subheader("3 · The parts, one at a time")
tab_ln, tab_place, tab_ff, tab_res, tab_drop = st.tabs(
    ["LayerNorm", "Where LayerNorm goes", "Feed-forward and GELU", "Residuals", "Dropout"])
with tab_ln:
    views.layer_norm_demo()
    exercise_ui.question("model.layer_norm_mean")
    exercise_ui.exercise("model.layer_norm")
with tab_place:
    views.ln_placement()
with tab_ff:
    views.feed_forward()
    exercise_ui.exercise("model.gelu")
with tab_res:
    views.residuals()
with tab_drop:
    views.dropout()

st.markdown("**Now put the parts together.** Write GPT-2's block yourself: LayerNorm, "
            "causal multi-head attention, a residual add, LayerNorm, the MLP, a residual add. "
            "Once it passes, lesson 5 can train a GPT made of your blocks beside the book's.")
exercise_ui.exercise("model.Block")

# ------------------------------------------------------------------ weight port
st.subheader("4 · Is gptcore's GPT really GPT-2?")
st.markdown("Load a GPT-2 family model with `transformers`, copy its weights into gptcore's "
            "`GPT` with `GPT.from_hf`, and compare every block's output on the same text.")
views.weight_port()
st.markdown("""
**The Conv1D transpose.** GPT-2's checkpoint stores its linear layers as `Conv1D` with weights
of shape (in, out) and computes `x @ W + b`. PyTorch's `nn.Linear` stores (out, in) and computes
`x @ W.T + b`. So `from_hf` transposes `c_attn`, `c_proj` and `c_fc` weights; everything
else (embeddings, LayerNorms, biases) copies as is, and every shape is checked.
""")
ui.show_code(GPT.from_hf, compare_with_hf, port_report, to_hf)

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
