"""Lesson 1: meet a real GPT. Tokens, next-token probabilities, and sampling you can steer."""
import pandas as pd
import streamlit as st

from classroom import charts, exercise_ui, models, page, progress, state, widgets as ui, yours
from gptcore import budget, generate as gen, modelcard, tokenizers as tk

page.setup(1, """
A GPT reads text as **tokens**, and for every position it outputs a score (a *logit*) for
every token of its vocabulary: how likely that token comes next. Generating text is just
picking one token from that distribution, appending it, and asking again.
""")
st.markdown("""
**In this lesson you will**
- see how a real GPT cuts your prompt into tokens, and what it reads when there is no prompt;
- read the probabilities it gives every possible next token;
- steer the choice with temperature, top-k, top-p, greedy decoding and a seed;
- generate text, then step through it one token at a time.
""")

K = "l1_"  # this page's widget keys
MAX_PROMPT_CHARS = 2000
MAX_STEPS = 100
START_EXPLAINED = {
    "endoftext": "GPT-2 saw it between the documents it was trained on, so what follows it "
                 "is the start of a new document",
    "newline": "this tokenizer has no start-of-text token, and a line break is where new text "
               "begins (nanoGPT's sample.py starts its character models the same way)",
    "first": "this tokenizer has neither a start-of-text token nor a line break, so id 0 "
             "stands in: it is not text the model learned to continue",
}

active = models.model_picker(K)
model, tok = active.model, active.tokenizer
card = modelcard.model_card(model)
config = card.config

# ------------------------------------------------------------------ model card
with st.expander(f"Model card: {active.label}", expanded=False):
    c1, c2 = st.columns([1, 1])
    with c1:
        st.markdown(
            f"| | |\n|---|---|\n| layers | {config.n_layer} |\n| heads | {config.n_head} |\n"
            f"| width (n_embd) | {config.n_embd} |\n| context | {config.block_size:,} tokens |\n"
            f"| vocabulary | {config.vocab_size:,} |\n| parameters | {card.n_params:,} |\n"
            f"| size ({', '.join(card.dtypes)}) | {card.n_bytes:,} bytes = "
            f"{ui.megabytes(card.n_bytes)} |\n"
            f"| head tied to embeddings | {'yes' if config.tie_weights else 'no'} |")
    with c2:
        df = pd.DataFrame({"component": list(card.breakdown),
                           "parameters": list(card.breakdown.values())})
        st.vega_lite_chart(charts.bar_chart(df[df.parameters > 0], "parameters", "component",
                                         "Parameters by component"), width="stretch")
    st.caption(f"1 MB = 10⁶ bytes; in mebibytes of 2²⁰ = 1,048,576 bytes that is "
               f"{card.mib:,.1f} MiB. The breakdown comes from "
               "`gptcore.budget.param_breakdown` (arithmetic on the config); the parameters "
               "are counted from the model's own tensors: "
               f"{card.breakdown_total:,} {'=' if card.breakdown_matches else '≠'} "
               f"{card.n_params:,}.")
    ui.show_code(modelcard.model_card, budget.param_breakdown)

# ------------------------------------------------------------------ prompt → tokens
st.subheader("1 · The prompt, as the model sees it")
text = ui.keep_last_chars(
    st.text_area("Prompt", "The meaning of life is", key=f"{K}prompt",
                 help=f"The last {MAX_PROMPT_CHARS:,} characters are used."),
    MAX_PROMPT_CHARS)
prompt = gen.prepare_prompt(tok, text, config.block_size)
if prompt.start:
    st.caption(f"The prompt is empty, so the model starts from token {prompt.start.id} "
               f"(`{ui.visible(tok.token_text(prompt.start.id))}`): "
               f"{START_EXPLAINED[prompt.start.kind]}.")
if prompt.dropped:
    st.warning(f"The prompt has {prompt.n_text_tokens:,} tokens; the model reads only the last "
               f"{len(prompt.ids):,} (its context), so the first {prompt.dropped:,} are dropped.")
ui.token_spans([tok.token_text(i) for i in prompt.ids], prompt.ids, highlight={
    n for n, i in enumerate(prompt.ids) if i == tok.unk_id})
st.caption(f"{ui.plural(len(prompt.ids), 'token')} for {ui.plural(len(text), 'character')}. "
           "`␣` is a space and `↵` a line break: GPT-2 glues the space before a word to the "
           "word.")
ui.show_code(gen.prepare_prompt, tk.start_token)

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


def percent(p: float) -> str:
    """Three significant digits: a near-uniform 0.00199% must not print as 0.00%."""
    return f"{p * 100:.3g}%"


def show_distribution(view: gen.TopTokens, title: str) -> None:
    """The chart of `view`, and its numbers in a table."""
    labels = charts.unique_labels([ui.visible(tok.token_text(r["id"])) for r in view.rows])
    frame = pd.DataFrame(view.rows).assign(token=labels)
    st.vega_lite_chart(charts.next_token_chart(frame, title), width="stretch")
    with st.expander("The numbers"):
        st.dataframe(pd.DataFrame({
            "token": labels, "id": frame["id"],
            "raw probability": frame["raw"].map(percent),
            "after the knobs": frame["final"].map(percent),
            "kept": frame["kept"]}), hide_index=True, width="stretch")


mine = exercise_ui.use_mine(("generate.top_k_filter", "generate.top_p_filter"),
                           "this distribution", key=f"{K}use_mine") and not greedy
with ui.explain_errors("computing the next-token distribution"):
    logits = gen.next_token_logits(model, prompt.ids)
    view, whose = gen.top_tokens(logits, 15, **settings), "the book's filters"
    if mine:
        try:
            view = yours.top_tokens(logits, 15, settings["temperature"], settings["top_k"],
                                    settings["top_p"], progress.progress().code,
                                    exercise_ui.learner_id())
            whose = "**your** top_k_filter and top_p_filter (run in the sandbox)"
        except yours.YourCodeFailed as e:
            st.warning(f"Your filters could not be used here: {e} Showing the book's.",
                       icon=":material/warning:")
    show_distribution(view, "Top 15 next tokens: dashed = raw probability, filled = after "
                            "your knobs")
    st.caption(f"Filtered with {whose}.")
    st.caption(f"{view.n_kept:,} of {view.vocab_size:,} tokens survive the filters; the filled "
               "bars are renormalised to sum to 1 over them. Grey bars were filtered out.")
st.latex(r"p_i = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}")
st.markdown("A temperature **T < 1** sharpens the distribution, **T > 1** flattens it. "
            "**Top-k** keeps the k most likely tokens; **top-p** keeps the smallest set whose "
            "probability reaches p (the most likely token always survives). Greedy is T → 0: "
            "all the probability goes to the top token.")
ui.show_code(gen.next_token_distribution, gen.top_k_filter, gen.top_p_filter, gen.top_tokens)
exercise_ui.question("generate.nucleus_size")
exercise_ui.exercise("generate.top_k_filter")
exercise_ui.exercise("generate.top_p_filter")
exercise_ui.question("generate.top_k_one")

# ------------------------------------------------------------------ generate
st.subheader("3 · Generate")
c1, c2 = st.columns([1, 3])
max_new = c1.slider("Max new tokens", 1, 200, 40, key=f"{K}max_new")
seed = state.seed()
c1.caption(f"Seed {seed} (change it in the sidebar): the same seed and knobs give the same text.")
if c1.button("Generate", type="primary", key=f"act_{K}generate"):
    with ui.explain_errors("generating"), st.spinner("Generating…"):
        new_ids = gen.generate_ids(model, prompt.ids, max_new, seed, **settings)
        st.session_state[f"{K}output"] = {"prompt": text, "text": tok.decode(new_ids),
                                          "n": len(new_ids), "seed": seed, "greedy": greedy}
result = st.session_state.get(f"{K}output")
with c2:
    if result:
        shown = (f"**{result['prompt']}**" if result["prompt"].strip() else "") + result["text"]
        st.markdown(shown.replace("\n", "  \n"))
        if not result["text"].strip():
            st.caption("The continuation is only spaces and line breaks.")
        st.caption(f"{result['n']} new tokens · {'greedy' if result['greedy'] else 'sampled'}"
                   f" · seed {result['seed']}.")
        if active.untrained:
            st.caption("Random weights: this text is noise by design.")
    else:
        st.caption("Press **Generate** to continue the prompt.")

# ------------------------------------------------------------------ step through
st.subheader("4 · One token at a time")
steps_key = f"{K}step_through"
made_for, stepper = st.session_state.get(steps_key, (None, None))
if made_for != active.label or stepper.prompt != prompt.ids or stepper.seed != seed:
    stepper = gen.StepThrough(prompt.ids, seed)  # a new prompt, model or seed starts over
    st.session_state[steps_key] = (active.label, stepper)
c1, c2, _ = st.columns([1, 1, 4])
if c1.button("Next token", key=f"act_{K}next", disabled=len(stepper.picked) >= MAX_STEPS,
             help=f"Up to {MAX_STEPS} steps; Reset to start again."):
    with ui.explain_errors("sampling the next token"):
        stepper.step(model, **settings)
if c2.button("Reset", key=f"act_{K}reset"):
    stepper = gen.StepThrough(prompt.ids, seed)
    st.session_state[steps_key] = (active.label, stepper)
if stepper.picked:
    ids = stepper.prompt + stepper.picked
    ui.token_spans([tok.token_text(i) for i in ids],
                   highlight=set(range(len(stepper.prompt), len(ids))))
    last = stepper.picked[-1]
    show_distribution(
        gen.top_tokens(stepper.last_logits, 15, picked=last, **stepper.last_knobs),
        f"Step {len(stepper.picked)}: the distribution token "
        f"'{ui.visible(tok.token_text(last))}' was drawn from")
    st.caption("Generate runs this same step in a loop, with one random generator seeded "
               f"once (seed {stepper.seed}); Reset starts the loop again from the same seed.")
else:
    st.caption("Press **Next token**: the new token is drawn from the distribution shown, "
               "with the knobs above, and appended (in red) to the prompt.")
with st.expander("Why each new token is cheap: the KV cache"):
    context = gen.context_size(model) or len(prompt.ids) + max_new
    cached = gen.positions_fed(len(prompt.ids), max_new, context)
    recomputed = gen.positions_fed(len(prompt.ids), max_new, context, use_cache=False)
    st.markdown(
        "A new token changes nothing about the tokens before it: under the causal mask their "
        "keys and values stay the same. So `generate` keeps every layer's k and v (the **KV "
        "cache**) and, after reading the prompt once, feeds the model only the newest token, "
        "whose query attends to the cached keys.")
    st.latex(r"\underbrace{T + (n - 1)}_{\text{with the cache}} \quad\text{positions, "
             r"against}\quad \underbrace{\sum_{i=0}^{n-1} \min(T + i,\ \text{context})}"
             r"_{\text{re-reading the prefix}}")
    st.caption(f"Here, for your {len(prompt.ids)}-token prompt and {max_new} new tokens: "
               f"**{cached:,}** positions through the model with the cache, **{recomputed:,}** "
               f"without ({recomputed / cached:,.1f}× the work). Past the context "
               f"({context:,}) the window slides and is read whole again.")
ui.show_code(gen.StepThrough, gen.sample_next, gen.generate, gen.positions_fed)

# ------------------------------------------------------------------ recap
st.subheader("Recap")
st.markdown(f"""
- A tokenizer turned your {ui.plural(len(text), 'character')} into
  {ui.plural(len(prompt.ids), 'token id')}; an empty prompt still needs one token
  (`{tk.ENDOFTEXT}` for GPT-2).
- For the next position the model gives each of its {config.vocab_size:,} tokens a logit, and
  softmax turns the logits into probabilities.
- Temperature, top-k and top-p reshape that distribution before a token is drawn; greedy
  takes the top token; a seed makes the draw repeatable.
- Generating is one step in a loop: draw a token, append it, ask again.
""")
exercise_ui.notebook_download(1)
page.footer(1)
