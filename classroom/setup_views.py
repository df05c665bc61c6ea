"""Lesson 1's demos, one function each: the model card, the prompt as the model reads it, the
next-token distribution with its knobs, generating, one token at a time, and the KV cache.
Each draws its widgets (keys "l1_…"), calls gptcore.generate and gptcore.modelcard for the
numbers, and renders them; the page around them holds the lesson's prose."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from classroom import charts, exercise_ui, progress, state, widgets as ui, yours
from classroom.models import ActiveModel
from gptcore import budget, generate as gen, modelcard

K = "l1_"  # this lesson's widget keys
MAX_PROMPT_CHARS = 2000
MAX_STEPS = 100
TOP = 15  # tokens in each distribution chart
OUTPUT = f"{K}output"
STEPS = f"{K}step_through"
START_EXPLAINED = {
    "endoftext": "GPT-2 saw it between the documents it was trained on, so what follows it "
                 "is the start of a new document",
    "newline": "this tokenizer has no start-of-text token, and a line break is where new text "
               "begins (nanoGPT's sample.py starts its character models the same way)",
    "first": "this tokenizer has neither a start-of-text token nor a line break, so id 0 "
             "stands in: it is not text the model learned to continue",
}


def percent(p: float) -> str:
    """Three significant digits: a near-uniform 0.00199% must not print as 0.00%."""
    return f"{p * 100:.3g}%"



# ------------------------------------------------------------------ the model card


def model_card(active: ActiveModel) -> modelcard.ModelCard:
    """A closed expander with the chosen model's shape, size and parameters by component;
    returns the card (its config sets the context and the vocabulary)."""
    card = modelcard.model_card(active.model)
    with st.expander(f"Model card: {active.label}", expanded=False):
        c1, c2 = st.columns([1, 1])
        c1.markdown(card_table(card))
        df = pd.DataFrame({"component": list(card.breakdown),
                           "parameters": list(card.breakdown.values())})
        c2.vega_lite_chart(charts.bar_chart(df[df.parameters > 0], "parameters", "component",
                                            "Parameters by component"), width="stretch")
        st.caption(f"1 MB = 10⁶ bytes; in mebibytes of 2²⁰ = 1,048,576 bytes that is "
                   f"{card.mib:,.1f} MiB. The breakdown comes from "
                   "`gptcore.budget.param_breakdown` (arithmetic on the config); the parameters "
                   "are counted from the model's own tensors: "
                   f"{card.breakdown_total:,} {'=' if card.breakdown_matches else '≠'} "
                   f"{card.n_params:,}.")
        ui.show_code(modelcard.model_card, budget.param_breakdown)
    return card


def card_table(card: modelcard.ModelCard) -> str:
    """The card's numbers as a two-column markdown table."""
    config = card.config
    return (f"| | |\n|---|---|\n| layers | {config.n_layer} |\n| heads | {config.n_head} |\n"
            f"| width (n_embd) | {config.n_embd} |\n| context | {config.block_size:,} tokens |\n"
            f"| vocabulary | {config.vocab_size:,} |\n| parameters | {card.n_params:,} |\n"
            f"| size ({', '.join(card.dtypes)}) | {card.n_bytes:,} bytes = "
            f"{ui.megabytes(card.n_bytes)} |\n"
            f"| head tied to embeddings | {'yes' if config.tie_weights else 'no'} |")


# ------------------------------------------------------------------ 1 · the prompt


def prompt_tokens(tok, context: int) -> tuple[str, gen.Prompt]:
    """The prompt box and the tokens the model reads for it (at most `context`; the start
    token when it is empty), as coloured spans. Returns the text and its Prompt."""
    text = ui.keep_last_chars(
        st.text_area("Prompt", "The meaning of life is", key=f"{K}prompt",
                     help=f"The last {MAX_PROMPT_CHARS:,} characters are used."),
        MAX_PROMPT_CHARS)
    prompt = gen.prepare_prompt(tok, text, context)
    if prompt.start:
        st.caption(f"The prompt is empty, so the model starts from token {prompt.start.id} "
                   f"(`{ui.token_label(tok, prompt.start.id)}`): {START_EXPLAINED[prompt.start.kind]}.")
    if prompt.dropped:
        st.warning(f"The prompt has {prompt.n_text_tokens:,} tokens; the model reads only the "
                   f"last {len(prompt.ids):,} (its context), so the first {prompt.dropped:,} are "
                   "dropped.")
    ui.tokens(tok, prompt.ids, highlight={
        n for n, i in enumerate(prompt.ids) if i == tok.unk_id})
    st.caption(f"{ui.plural(len(prompt.ids), 'token')} for {ui.plural(len(text), 'character')}. "
               "`␣` is a space and `↵` a line break: GPT-2 glues the space before a word to the "
               "word.")
    return text, prompt


# ------------------------------------------------------------------ 2 · the distribution


@dataclass(frozen=True)
class Knobs:
    """The sampling controls as the learner set them."""

    greedy: bool
    temperature: float
    top_k: int  # 0 = off
    top_p: float  # 1 = off

    @property
    def settings(self) -> dict:
        """The keyword arguments of gptcore.generate's sampling functions."""
        return dict(temperature=0 if self.greedy else self.temperature, top_k=self.top_k or None,
                    top_p=None if self.top_p >= 1 else self.top_p)


def knobs() -> Knobs:
    """Greedy, temperature, top-k and top-p in one row (greedy turns the others off)."""
    c1, c2, c3, c4 = st.columns(4)
    greedy = c1.toggle("Greedy (always the top token)", key=f"{K}greedy")
    return Knobs(
        greedy,
        c2.slider("Temperature", 0.05, 2.0, 1.0, 0.05, key=f"{K}temperature", disabled=greedy),
        c3.slider("Top-k (0 = off)", 0, 100, 40, key=f"{K}top_k", disabled=greedy),
        c4.slider("Top-p (1 = off)", 0.01, 1.0, 0.95, 0.01, key=f"{K}top_p", disabled=greedy))


def show_distribution(tok, view: gen.TopTokens, title: str) -> None:
    """The chart of `view`, and its numbers in a table."""
    labels = charts.unique_labels([ui.token_label(tok, r["id"]) for r in view.rows])
    frame = pd.DataFrame(view.rows).assign(token=labels)
    st.vega_lite_chart(charts.next_token_chart(frame, title), width="stretch")
    with st.expander("The numbers"):
        st.dataframe(pd.DataFrame({
            "token": labels, "id": frame["id"],
            "raw probability": frame["raw"].map(percent),
            "after the knobs": frame["final"].map(percent),
            "kept": frame["kept"]}), hide_index=True, width="stretch")


def distribution(active: ActiveModel, prompt: gen.Prompt) -> Knobs:
    """The knobs, the "use my version" switch, and the top next tokens before and after the
    knobs, filtered by the book's filters or the learner's. Returns the knobs."""
    chosen = knobs()
    mine = exercise_ui.use_mine(("generate.top_k_filter", "generate.top_p_filter"),
                                "this distribution", key=f"{K}use_mine") and not chosen.greedy
    with ui.explain_errors("computing the next-token distribution"):
        logits = gen.next_token_logits(active.model, prompt.ids)
        view, whose = filtered(logits, chosen, mine)
        show_distribution(active.tokenizer, view, "Top 15 next tokens: dashed = raw "
                                                  "probability, filled = after your knobs")
        st.caption(f"Filtered with {whose}.")
        st.caption(f"{view.n_kept:,} of {view.vocab_size:,} tokens survive the filters; the "
                   "filled bars are renormalised to sum to 1 over them. Grey bars were filtered "
                   "out.")
    return chosen


def filtered(logits, chosen: Knobs, mine: bool) -> tuple[gen.TopTokens, str]:
    """The top tokens after the knobs and whose filters made them: the learner's, run in the
    sandbox, when `mine` and they work; the book's otherwise."""
    settings = chosen.settings
    if mine:
        try:
            return (yours.top_tokens(logits, TOP, settings["temperature"], settings["top_k"],
                                     settings["top_p"], progress.progress().code,
                                     exercise_ui.learner_id()),
                    "**your** top_k_filter and top_p_filter (run in the sandbox)")
        except yours.YourCodeFailed as e:
            st.warning(f"Your filters could not be used here: {e} Showing the book's.",
                       icon=":material/warning:")
    return gen.top_tokens(logits, TOP, **settings), "the book's filters"


# ------------------------------------------------------------------ 3 · generate


def generate(active: ActiveModel, text: str, prompt: gen.Prompt, chosen: Knobs) -> int:
    """The length slider and Generate; the last continuation stays shown. Returns the length."""
    c1, c2 = st.columns([1, 3])
    max_new = c1.slider("Max new tokens", 1, 200, 40, key=f"{K}max_new")
    seed = state.seed()
    c1.caption(f"Seed {seed} (change it in the sidebar): the same seed and knobs give the same "
               "text.")
    if c1.button("Generate", type="primary", key=f"act_{K}generate"):
        with ui.explain_errors("generating"), st.spinner("Generating…"):
            new_ids = gen.generate_ids(active.model, prompt.ids, max_new, seed, **chosen.settings)
            st.session_state[OUTPUT] = {"prompt": text, "text": active.tokenizer.decode(new_ids),
                                        "n": len(new_ids), "seed": seed, "greedy": chosen.greedy}
    with c2:
        continuation(st.session_state.get(OUTPUT), active.untrained)
    return max_new


def continuation(result: dict | None, untrained: bool) -> None:
    """The prompt in bold, the generated text after it, and how it was made."""
    if not result:
        st.caption("Press **Generate** to continue the prompt.")
        return
    shown_text = (f"**{result['prompt']}**" if result["prompt"].strip() else "") + result["text"]
    st.markdown(shown_text.replace("\n", "  \n"))
    if not result["text"].strip():
        st.caption("The continuation is only spaces and line breaks.")
    st.caption(f"{result['n']} new tokens · {'greedy' if result['greedy'] else 'sampled'}"
               f" · seed {result['seed']}.")
    if untrained:
        st.caption("Random weights: this text is noise by design.")


# ------------------------------------------------------------------ 4 · one token at a time


def new_stepper(label: str, prompt: gen.Prompt, seed: int) -> gen.StepThrough:
    """A fresh StepThrough, kept in the session for this model."""
    stepper = gen.StepThrough(prompt.ids, seed)
    st.session_state[STEPS] = (label, stepper)
    return stepper


def step_through(active: ActiveModel, prompt: gen.Prompt, chosen: Knobs) -> None:
    """Next token and Reset: the tokens drawn so far (in red after the prompt) and the
    distribution the last one was drawn from. A new prompt, model or seed starts over."""
    seed = state.seed()
    made_for, stepper = st.session_state.get(STEPS, (None, None))
    if made_for != active.label or stepper.prompt != prompt.ids or stepper.seed != seed:
        stepper = new_stepper(active.label, prompt, seed)
    c1, c2, _ = st.columns([1, 1, 4])
    if c1.button("Next token", key=f"act_{K}next", disabled=len(stepper.picked) >= MAX_STEPS,
                 help=f"Up to {MAX_STEPS} steps; Reset to start again."):
        with ui.explain_errors("sampling the next token"):
            stepper.step(active.model, **chosen.settings)
    if c2.button("Reset", key=f"act_{K}reset"):
        stepper = new_stepper(active.label, prompt, seed)
    if stepper.picked:
        last_step(active.tokenizer, stepper)
    else:
        st.caption("Press **Next token**: the new token is drawn from the distribution shown, "
                   "with the knobs above, and appended (in red) to the prompt.")


def last_step(tok, stepper: gen.StepThrough) -> None:
    """The prompt and the drawn tokens, and the distribution of the last draw."""
    ids = stepper.prompt + stepper.picked
    ui.token_spans([tok.token_text(i) for i in ids],
                   highlight=set(range(len(stepper.prompt), len(ids))))
    last = stepper.picked[-1]
    show_distribution(
        tok, gen.top_tokens(stepper.last_logits, TOP, picked=last, **stepper.last_knobs),
        f"Step {len(stepper.picked)}: the distribution token '{ui.token_label(tok, last)}' was drawn from")
    st.caption("Generate runs this same step in a loop, with one random generator seeded "
               f"once (seed {stepper.seed}); Reset starts the loop again from the same seed.")


def kv_cache(model, prompt: gen.Prompt, max_new: int) -> None:
    """An expander: what the KV cache saves, counted for this prompt and length."""
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
                   f"**{cached:,}** positions through the model with the cache, "
                   f"**{recomputed:,}** without ({recomputed / cached:,.1f}× the work). Past the "
                   f"context ({context:,}) the window slides and is read whole again.")
