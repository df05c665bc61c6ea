"""Lesson 1: meet a real GPT. Tokens, next-token probabilities, and sampling you can steer."""
import pandas as pd
import streamlit as st
import torch

from classroom import charts, models, page, state, widgets as ui
from gptcore import budget, generate as gen
from gptcore.hf import config_of

page.setup(1, """
A GPT reads text as **tokens**, and for every position it outputs a score (a *logit*) for
every token of its vocabulary: how likely that token comes next. Generating text is just
picking one token from that distribution, appending it, and asking again.
""")

K = "l1_"  # this page's widget keys
MAX_PROMPT_CHARS = 2000

active = models.model_picker(K)
model, tok = active.model, active.tokenizer
config = config_of(model)

# ------------------------------------------------------------------ model card
with st.expander(f"Model card: {active.label}", expanded=False):
    parts = budget.param_breakdown(config)
    total = sum(p.numel() for p in model.parameters())
    c1, c2 = st.columns([1, 1])
    with c1:
        st.markdown(
            f"| | |\n|---|---|\n| layers | {config.n_layer} |\n| heads | {config.n_head} |\n"
            f"| width (n_embd) | {config.n_embd} |\n| context | {config.block_size} tokens |\n"
            f"| vocabulary | {config.vocab_size:,} |\n| parameters | {total:,} |\n"
            f"| size (fp32) | {total * 4 / 2**20:,.1f} MB |\n"
            f"| head tied to embeddings | {'yes' if config.tie_weights else 'no'} |")
    with c2:
        df = pd.DataFrame({"component": list(parts), "parameters": list(parts.values())})
        df = df[df.parameters > 0]
        st.altair_chart(charts.bar_chart(df, "parameters", "component",
                                         "Parameters by component"), width="stretch")
    st.caption("The breakdown comes from `gptcore.budget.param_breakdown` and adds up to the "
               f"model's own count: {sum(parts.values()):,} = {total:,}.")

# ------------------------------------------------------------------ prompt → tokens
st.subheader("1 · The prompt, as the model sees it")
prompt = st.text_area("Prompt", "The meaning of life is", key=f"{K}prompt", max_chars=MAX_PROMPT_CHARS,
                      help=f"Up to {MAX_PROMPT_CHARS:,} characters.")
ids = tok.encode(prompt)
if not ids:
    start = tok.encode("<|endoftext|>") if tok.vocab_size > 50000 else [0]
    st.caption(f"The prompt is empty, so the model starts from token {start[0]} "
               f"(`{tok.token_text(start[0])!s}`), as GPT-2 does at the start of a document.")
    ids = start
if len(ids) > config.block_size:
    st.warning(f"The prompt has {len(ids):,} tokens; the model sees only the last "
               f"{config.block_size} (its context).")
    ids = ids[-config.block_size:]
ui.token_spans([tok.token_text(i) for i in ids], ids, highlight={
    n for n, i in enumerate(ids) if i == getattr(tok, "unk_id", None)})
st.caption(f"{len(ids)} tokens for {len(prompt)} characters. A `␣` is a space: GPT-2 glues "
           "the space before a word to the word.")

# ------------------------------------------------------------------ the knobs
st.subheader("2 · What comes next: the distribution and the knobs")
c1, c2, c3, c4 = st.columns(4)
greedy = c1.toggle("Greedy (always the top token)", key=f"{K}greedy")
temperature = c2.slider("Temperature", 0.05, 2.0, 1.0, 0.05, key=f"{K}temperature",
                        disabled=greedy)
top_k = c3.slider("Top-k (0 = off)", 0, 100, 40, key=f"{K}top_k", disabled=greedy)
top_p = c4.slider("Top-p (1 = off)", 0.01, 1.0, 0.95, 0.01, key=f"{K}top_p", disabled=greedy)
settings = dict(temperature=0 if greedy else temperature, top_k=top_k or None,
                top_p=None if top_p >= 1 else top_p)


def distribution_frame(logits, picked=None, n=15):
    d = gen.next_token_distribution(logits, **settings)
    top = torch.topk(d["raw"], n).indices.tolist()
    if picked is not None and picked not in top:
        top.append(picked)
    labels = charts.unique_labels([ui.visible(tok.token_text(i)) for i in top])
    return pd.DataFrame({"token": labels, "raw": [d["raw"][i].item() for i in top],
                         "final": [d["final"][i].item() for i in top],
                         "kept": [bool(d["kept"][i]) for i in top],
                         "picked": [i == picked for i in top]}), int(d["kept"].sum())


idx = torch.tensor([ids])
with ui.explain_errors("computing the next-token distribution"):
    logits = gen.next_token_logits(model, idx)
    frame, n_kept = distribution_frame(logits)
    st.altair_chart(charts.next_token_chart(frame, "Top 15 next tokens: dashed = raw "
                                            "probability, filled = after your knobs"),
                    width="stretch")
    st.caption(f"{n_kept:,} of {logits.numel():,} tokens survive the filters; the filled bars "
               "are renormalised to sum to 1 over them. Grey bars were filtered out.")
st.latex(r"p_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}")
st.markdown("A temperature **T < 1** sharpens the distribution, **T > 1** flattens it. "
            "**Top-k** keeps the k most likely tokens; **top-p** keeps the smallest set whose "
            "probability reaches p (the most likely token always survives). Greedy is T → 0.")

# ------------------------------------------------------------------ generate
st.subheader("3 · Generate")
c1, c2 = st.columns([1, 3])
max_new = c1.slider("Max new tokens", 1, 200, 40, key=f"{K}max_new")
seed = state.seed()
c1.caption(f"Seed {seed} (change it in the sidebar): the same seed and knobs give the same text.")
if c1.button("Generate", type="primary", key=f"act_{K}generate"):
    with ui.explain_errors("generating"), st.spinner("Generating…"):
        g = torch.Generator().manual_seed(int(seed))
        out = gen.generate(model, idx, max_new, generator=g, **settings)[0, len(ids):].tolist()
        st.session_state[f"{K}output"] = (prompt, tok.decode(out), out)
result = st.session_state.get(f"{K}output")
with c2:
    if result:
        shown_prompt, text, new_ids = result
        st.markdown(f"**{shown_prompt}**{text}".replace("\n", "  \n"))
        st.caption(f"{len(new_ids)} new tokens · {'greedy' if greedy else 'sampled'} · "
                   f"seed {seed}.")
        if active.untrained:
            st.caption("Random weights: this text is noise by design.")
    else:
        st.caption("Press **Generate** to continue the prompt.")

# ------------------------------------------------------------------ step through
st.subheader("4 · One token at a time")
steps_key = f"{K}steps"
if st.session_state.get(f"{K}steps_for") != (ids, active.label):  # a new prompt or model
    st.session_state[steps_key] = []
    st.session_state[f"{K}steps_for"] = (ids, active.label)
steps = st.session_state[steps_key]
MAX_STEPS = 100
c1, c2, _ = st.columns([1, 1, 4])
if c1.button("Next token", key=f"act_{K}next", disabled=len(steps) >= MAX_STEPS,
             help=f"Up to {MAX_STEPS} steps; Reset to start again."):
    with ui.explain_errors("sampling the next token"):
        context = torch.tensor([ids + [s["id"] for s in steps]])
        step_logits = gen.next_token_logits(model, context)
        g = torch.Generator().manual_seed(int(seed) * 1000 + len(steps))
        picked = gen.sample_next(step_logits[None], generator=g, **settings).item()
        steps.append({"id": picked, "logits": step_logits})
if c2.button("Reset", key=f"act_{K}reset"):
    steps.clear()
if steps:
    ui.token_spans([tok.token_text(i) for i in ids] + [tok.token_text(s["id"]) for s in steps],
                   highlight=set(range(len(ids), len(ids) + len(steps))))
    last = steps[-1]
    frame, _ = distribution_frame(last["logits"], picked=last["id"])
    st.altair_chart(charts.next_token_chart(
        frame, f"Step {len(steps)}: the distribution token "
               f"'{ui.visible(tok.token_text(last['id']))}' was drawn from"), width="stretch")
else:
    st.caption("Press **Next token**: the new token is drawn from the distribution shown, "
               "with the knobs above, and appended (in red) to the prompt.")

ui.show_code(gen.next_token_distribution, gen.top_p_filter, gen.sample_next, gen.generate)
page.footer(1)
