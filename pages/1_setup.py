"""Lesson 1: meet a real GPT. Tokens, next-token probabilities, and sampling you can steer."""
import streamlit as st

from classroom import exercise_ui, models, page, setup_views as views, widgets as ui
from gptcore import generate as gen, tokenizers as tk

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

active = models.model_picker(views.K)
config = views.model_card(active).config

# ------------------------------------------------------------------ prompt → tokens
st.subheader("1 · The prompt, as the model sees it")
text, prompt = views.prompt_tokens(active.tokenizer, config.block_size)
ui.show_code(gen.prepare_prompt, tk.start_token)

# ------------------------------------------------------------------ the knobs
st.subheader("2 · What comes next: the distribution and the knobs")
knobs = views.distribution(active, prompt)
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
max_new = views.generate(active, text, prompt, knobs)

# ------------------------------------------------------------------ step through
st.subheader("4 · One token at a time")
views.step_through(active, prompt, knobs)
views.kv_cache(active.model, prompt, max_new)
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
