"""Lesson 5's demos, one function each: the run form and the AdamW schedule, the budget and
where the loss starts, Train and Stop, the live view, the results of a run (and continuing
it), the upload, and the runs table with its downloads. Each draws its widgets (keys
"l5_…"), calls gptcore.trainer and classroom.lab for the numbers, and renders them; the page
around them holds the lesson's prose."""
from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd
import streamlit as st

from classroom import charts, lab as labmod, pictures, runs_view, shared, state, widgets as ui
from classroom.corpora import Corpus
from classroom.run_status import adopt_latest
from gptcore import trainer as trainmod
from gptcore.budget import num_params
from gptcore.checkpoint import CheckpointError
from gptcore.config import GPTConfig
from gptcore.presets import BY_NAME

K = "l5_"
# Kept when the page is not drawn: classroom.state.keep_settings alone is not enough here,
# because a fragment that ticks below the widgets (the live view) makes Streamlit drop their
# values when the learner opens another lesson mid-run (measured in Chromium).
PERSIST = "session"
MAX_RUNS_WITH_WEIGHTS = 4  # older runs keep their curves, not their weights
LIVE_TICK = 5.0  # seconds between redraws of the live view (see train_and_watch)

BUILDER = "Lesson 4's builder"
MODEL_CHOICES = {  # the first is the default: the lowest loss a learner's minute reaches
    # (benchmarks.learner_minute: val 1.76 on Tiny Shakespeare in 53 s of training)
    "Fast CPU (2 layers × 3 heads × 96, context 64)": BY_NAME["Fast CPU GPT"].model,
    "nanoGPT baby GPT (4 layers × 4 heads × 128, context 64)":
        BY_NAME["nanoGPT baby GPT (CPU)"].model,
    "Tiny (2 layers × 2 heads × 64, context 32)": BY_NAME["Tiny GPT"].model,
    BUILDER: None,  # state.built_config(): every field of lesson 4's model
    "Custom": None,  # the sliders as they are
}
SHAPE = ("n_layer", "n_head", "n_embd", "block_size")
FLAGS = ("tie_weights", "bias", "activation", "pre_ln")
ACTIVATION_NAMES = {"gelu": "GELU (tanh)", "gelu_exact": "GELU (exact)", "relu": "ReLU"}
TOKENIZER_NAMES = {"char": "Characters", "bpe": "BPE (trained on the corpus)", "gpt2": "GPT-2 BPE"}
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 4e-3, 6e-3, 1e-2, 3e-2, 0.1, 1.0, 10.0, 100.0]


@dataclass(frozen=True)
class LabSession:
    """This learner's side of the lab as the page run found it: the shared Lab, the corpus,
    the runs (appended to in place) and whether the newest one was still going."""

    lab: labmod.Lab
    corpus: Corpus
    runs: list
    current: object | None  # the newest run (a TrainingRun or a LoadedRun)
    running: bool

    @property
    def caps(self) -> labmod.Caps:
        return self.lab.caps


def lab_session() -> LabSession:
    """The lab, the sidebar's corpus and this session's runs, read once at the top of the page."""
    lab = shared.shared_lab()
    runs = st.session_state.setdefault(state.Keys.runs, [])
    current = runs[-1] if runs else None
    return LabSession(lab, shared.current_corpus(), runs, current,
                      current is not None and current.active)


def next_label(runs: list) -> str:
    """'run 3' for the third run trained in this session (uploads are not counted)."""
    return f"run {sum(isinstance(r, labmod.TrainingRun) for r in runs) + 1}"


def describe_model(c) -> str:
    return (f"{c.n_layer} layers × {c.n_head} heads × {c.n_embd}, context {c.block_size}; "
            f"{'tied' if c.tie_weights else 'untied'} head, {'biases' if c.bias else 'no biases'}, "
            f"{ACTIVATION_NAMES.get(c.activation, c.activation)}, "
            f"{'pre-LN' if c.pre_ln else 'post-LN'}, dropout {c.dropout:g}")


# ------------------------------------------------------------------ 1 · set up a run


@dataclass(frozen=True)
class RunForm:
    """What the run form set up. With a `problem` (no tokens, a shape GPTConfig refuses, a
    cap) there is no run to start; the configs are those built before it arose, or None."""

    tok_kind: str
    bpe_vocab: int
    tokens: runs_view.CorpusTokens | None
    model_config: GPTConfig | None
    train_config: trainmod.TrainConfig | None
    problem: str | None


def apply_shape(config) -> None:
    for f in SHAPE:
        st.session_state[f"{K}{f}"] = getattr(config, f)


def apply_choice(caps: labmod.Caps, vocab: int) -> None:
    """Load the chosen model into the sliders (and its other settings beside them): the
    nearest model within this server's caps when the model itself is over them."""
    choice = st.session_state[f"{K}model"]
    base = state.built_config() if choice == BUILDER else MODEL_CHOICES.get(choice)
    if base is None:  # Custom, or lesson 4 not visited yet: keep what the sliders hold
        return
    wanted = replace(base, vocab_size=vocab)
    apply_shape(caps.nearest(wanted) if caps.problems(wanted) else wanted)
    st.session_state[f"{K}flags"] = {f: getattr(base, f) for f in FLAGS}
    st.session_state[f"{K}dropout"] = base.dropout


def run_form(session: LabSession) -> RunForm:
    """The corpus, the tokenizer, the model and the training settings in two columns; then
    the lesson-4 builder's warning and the model in one line. Returns what they set up."""
    if f"{K}n_layer" not in st.session_state:
        st.session_state[f"{K}model"] = next(iter(MODEL_CHOICES))
        st.session_state[f"{K}apply"] = True
    corpus, caps = session.corpus, session.caps
    st.caption(f"Corpus: **{corpus.name}** ({corpus.n_chars:,} characters; change it in the "
               "sidebar). The first 90% trains, the last 10% validates.")
    c1, c2 = st.columns(2)
    with c1:
        tok_kind, bpe_vocab, tokens = tokenizer_controls(caps, corpus)
        model_controls(caps, tokens)
    with c2:
        training, dropout = training_controls(caps)
    form = build_configs(session.lab, tok_kind, bpe_vocab, tokens, training, dropout)
    if st.session_state[f"{K}model"] == BUILDER and tokens is not None:
        builder_warning(caps, tokens, form.model_config)
    if form.model_config is not None:
        st.caption(f"**Model:** {describe_model(form.model_config)}; vocabulary "
                   f"{form.model_config.vocab_size:,} (the tokenizer's); "
                   f"{num_params(form.model_config):,} parameters.")
    return form


def tokenizer_controls(caps: labmod.Caps, corpus: Corpus):
    """The tokenizer and BPE vocabulary; returns them and the corpus's tokens (None when
    tokenizing failed, with the reason shown)."""
    tok_kind = st.radio("Tokenizer", ["char", "bpe", "gpt2"], horizontal=True, key=f"{K}tok",
                        format_func=TOKENIZER_NAMES.get, persist_state=PERSIST)
    bpe_vocab = st.slider("BPE vocabulary", 256, 2048, 512, 64, key=f"{K}bpe_vocab",
                          disabled=tok_kind != "bpe", persist_state=PERSIST)
    tokens = None
    with ui.explain_errors("tokenizing the corpus"):
        tokens = runs_view.corpus_tokens(tok_kind, bpe_vocab, corpus, caps.max_corpus_chars)
    return tok_kind, bpe_vocab, tokens


def model_controls(caps: labmod.Caps, tokens) -> None:
    """The model choice, loaded into the four shape sliders when it changes (within the caps)."""
    st.selectbox("Model", list(MODEL_CHOICES), key=f"{K}model", persist_state=PERSIST,
                 on_change=lambda: st.session_state.update({f"{K}apply": True}))
    if tokens is not None and st.session_state.pop(f"{K}apply", False):
        apply_choice(caps, tokens.vocab_size)
    for col, (f, label, low, high, step) in zip(st.columns(4), [
            ("n_layer", "Layers", 1, caps.max_layers, 1),
            ("n_head", "Heads", 1, caps.max_heads, 1),
            ("n_embd", "Width", 8, caps.max_width, 8),
            ("block_size", "Context", 8, caps.max_context, 8)]):
        state.clamp(f"{K}{f}", low, high)
        col.slider(label, low, high, step=step, key=f"{K}{f}", persist_state=PERSIST)


def training_controls(caps: labmod.Caps) -> tuple[dict, float]:
    """The training settings in three rows of three; returns TrainConfig's keyword arguments
    and the dropout (a model setting, drawn with them)."""
    h = st.columns(3)
    lr = h[0].select_slider("Learning rate", LEARNING_RATES, value=1e-2, key=f"{K}lr",
                            format_func=lambda v: f"{v:g}", persist_state=PERSIST)
    batch = h[1].slider("Batch size", 1, 64, 32, key=f"{K}batch", persist_state=PERSIST)
    steps = h[2].slider("Steps", 10, caps.max_steps, min(1100, caps.max_steps), 10,
                        key=f"{K}steps", persist_state=PERSIST)
    h = st.columns(3)
    warmup = h[0].slider("Warmup steps", 0, 500, 30, 10, key=f"{K}warmup", persist_state=PERSIST)
    cosine = h[1].toggle("Cosine decay to lr/10", value=True, key=f"{K}cosine",
                         persist_state=PERSIST)
    eval_every = h[2].slider("Evaluate every", 10, 500, 100, 10, key=f"{K}eval",
                             persist_state=PERSIST)
    h = st.columns(3)
    wd = h[0].slider("Weight decay", 0.0, 0.5, 0.1, 0.05, key=f"{K}wd", persist_state=PERSIST)
    clip = h[1].slider("Gradient clip (0 = off)", 0.0, 5.0, 1.0, 0.25, key=f"{K}clip",
                       persist_state=PERSIST)
    dropout = h[2].slider("Dropout", 0.0, 0.5, 0.0, 0.05, key=f"{K}dropout",
                          persist_state=PERSIST)
    return dict(batch_size=batch, max_iters=steps, lr=lr, min_lr=lr / 10 if cosine else lr,
                warmup_iters=min(warmup, steps), weight_decay=wd, grad_clip=clip,
                eval_interval=eval_every, seed=state.seed(), sample_tokens=150,
                eval_train_tokens=8192), dropout


def build_configs(lab: labmod.Lab, tok_kind: str, bpe_vocab: int, tokens, training: dict,
                  dropout: float) -> RunForm:
    """The GPTConfig of the sliders and flags and the TrainConfig of the settings, checked
    against the caps; an invalid shape or a cap becomes the form's problem."""
    default = next(iter(MODEL_CHOICES.values()))
    flags = st.session_state.setdefault(f"{K}flags", {f: getattr(default, f) for f in FLAGS})
    problem, model_config, train_config = None, None, None
    try:
        if tokens is None:
            raise ValueError("Without the corpus's tokens there is nothing to train on: choose "
                             "another tokenizer or corpus.")
        model_config = GPTConfig(vocab_size=tokens.vocab_size, dropout=dropout, **flags,
                                 **{f: st.session_state[f"{K}{f}"] for f in SHAPE})
        train_config = trainmod.TrainConfig(**training)
        train_config = lab.check(model_config, train_config)
    except ValueError as e:  # invalid shapes (GPTConfig) or over a cap (CapError)
        problem = str(e)
    return RunForm(tok_kind, bpe_vocab, tokens, model_config, train_config, problem)


def builder_warning(caps: labmod.Caps, tokens, model_config: GPTConfig | None) -> None:
    """Lesson 4's model as the choice: ask for one if lesson 4 built none; if it is over the
    caps, say why and offer the nearest model within them (unless the sliders hold it)."""
    built = state.built_config()
    if built is None:
        st.info("Build a model in lesson 4 first: this choice takes every setting of it. Until "
                "then the sliders keep their values.", icon=":material/account_tree:")
        return
    wanted = replace(built, vocab_size=tokens.vocab_size)
    if not caps.problems(wanted):
        return
    fit = caps.nearest(wanted)
    held = fit is not None and model_config is not None and all(
        getattr(model_config, f) == getattr(fit, f) for f in SHAPE)
    if fit is None:
        offer = " No model with its settings fits."
    else:
        offer = (f" {'The sliders hold the nearest model' if held else 'The nearest model'}"
                 f" within the caps{'' if held else ' is'}: {describe_model(fit)} "
                 f"({num_params(fit):,} parameters), every other setting as in lesson 4.")
    st.warning(f"Lesson 4's model ({describe_model(wanted)}) is over this server's caps. "
               + " ".join(caps.problems(wanted)) + offer, icon=":material/tune:")
    if fit is not None and not held:
        st.button("Load the nearest model within the caps", key=f"act_{K}fit_builder",
                  on_click=apply_shape, args=(fit,))


def adamw_schedule(train_config: trainmod.TrainConfig | None) -> None:
    """An expander: AdamW's update, warmup and cosine decay, and this run's learning rate."""
    with st.expander("How the weights move: AdamW, warmup and cosine decay"):
        st.markdown(
            "Each step, **AdamW** keeps two running means per weight, of its gradient g (m, the "
            "direction) and of g² (v, the size), and moves the weight by m / √v: every weight "
            "takes steps of about the learning rate η, whatever the scale of its gradient. "
            "**Weight decay** λ shrinks the matrices (not biases or LayerNorm) towards 0 apart "
            "from that step, which is the W in AdamW.")
        st.latex(r"m \leftarrow \beta_1 m + (1-\beta_1)\,g,\quad v \leftarrow \beta_2 v + "
                 r"(1-\beta_2)\,g^2,\quad \theta \leftarrow \theta - \eta_t\Big(\frac{\hat m}"
                 r"{\sqrt{\hat v}+\epsilon} + \lambda\,\theta\Big)")
        st.markdown(
            "The rate η_t is not constant. **Warmup** raises it linearly over the first steps, "
            "while m and v are still poor estimates; **cosine decay** (the switch above) then "
            "lowers it along half a cosine to a tenth, so the last steps settle instead of "
            "bouncing.")
        st.latex(r"\eta_t = \eta_{\min} + \tfrac12\Big(1 + \cos\frac{\pi\,(t - t_w)}"
                 r"{S - t_w}\Big)(\eta - \eta_{\min}) \quad (t \ge t_w)")
        if train_config is not None:
            schedule = pd.DataFrame(trainmod.lr_schedule(train_config), columns=["step", "lr"])
            schedule["run"] = "this run"
            st.vega_lite_chart(charts.curves_chart(
                schedule, "step", "lr", "run", title="The learning rate of the run set up above"),
                width="stretch")
        ui.show_code(trainmod.lr_at, trainmod.lr_schedule, trainmod.make_optimizer)


# ------------------------------------------------------------------ 2 · the budget


def budget(caps: labmod.Caps, form: RunForm) -> None:
    """The form's problem with the nearest model that fits; or the run's cost, measured on
    this machine, and where its loss starts."""
    if form.problem:
        over_caps(caps, form.problem, form.model_config)
        return
    model_config, train_config = form.model_config, form.train_config
    times = runs_view.step_times(model_config.to_dict(), train_config.batch_size)
    est = trainmod.estimate_run(model_config, train_config, form.tokens.n_tokens, times)
    ui.metric_row([
        ("parameters", f"{num_params(model_config):,}", f"limit {caps.max_params:,}"),
        ("tokens per step", f"{est.tokens_per_step:,}", "batch × context"),
        ("one step (measured)", ui.milliseconds(times.step_s)),
        ("tokens per second", f"{est.tokens_per_s:,.0f}"),
        ("estimated time", f"{est.total_s:,.0f} s",
         f"{est.steps:,} steps and {est.evals} evaluations; training stops at "
         f"{caps.max_seconds} s")])
    how_the_estimate_is_made(form, times, est)
    starting_loss(model_config, form.tokens)


def over_caps(caps: labmod.Caps, problem: str, model_config: GPTConfig | None) -> None:
    """Why no run can start, and a button to the nearest model within the caps if one fits."""
    st.error(problem, icon=":material/block:")
    nearest = caps.nearest(model_config) if model_config is not None else None
    if nearest is not None and caps.problems(model_config):
        st.button(f"Use the nearest model within the caps: {nearest.n_layer} layers × "
                  f"{nearest.n_head} heads × {nearest.n_embd}, context {nearest.block_size} "
                  f"({num_params(nearest):,} parameters)", key=f"act_{K}fit",
                  on_click=apply_shape, args=(nearest,), icon=":material/fit_screen:")


def how_the_estimate_is_made(form: RunForm, times: trainmod.StepTimes, est) -> None:
    """An expander: the estimate's formula, filled in with this run's measured costs."""
    tokens, train_config = form.tokens, form.train_config
    with st.expander("How the estimate is made"):
        st.markdown(
            f"The corpus is **{tokens.n_tokens:,} tokens** ({tokens.chars_per_token:.2f} "
            "characters per token, counted with this tokenizer). Each evaluation reads the whole "
            f"validation split and {train_config.eval_train_tokens:,} training tokens, "
            f"**{est.eval_tokens:,} tokens** in full windows, then samples "
            f"{train_config.sample_tokens} tokens. The costs were measured on this machine just "
            "now.")
        st.latex(r"t = S \cdot t_\text{step} + E \cdot (N_\text{eval}\, t_\text{token} + "
                 r"n_\text{sample}\, t_\text{sample})")
        n = ui.tex_number
        st.latex(rf"= {n(est.steps)} \times {n(times.step_s * 1e3, ',.1f')}\,\text{{ms}} + "
                 rf"{est.evals} \times ({n(est.eval_tokens)} \times "
                 rf"{n(times.eval_token_s * 1e6, ',.2f')}\,\mu\text{{s}} + "
                 rf"{train_config.sample_tokens} \times {n(times.sample_token_s * 1e3, ',.2f')}"
                 rf"\,\text{{ms}}) = {n(est.total_s, ',.1f')}\,\text{{s}}")
        st.caption(f"Training: {est.train_flops / 1e12:,.2f} TFLOP in all (≈ 6 × parameters per "
                   f"token), {est.train_flops / est.steps / times.step_s / 1e9:,.1f} GFLOP/s as "
                   "measured.")
        ui.show_code(trainmod.measure_step_times, trainmod.estimate_run)


def starting_loss(model_config: GPTConfig, tokens) -> None:
    """The loss of this very model before training, and why it is not ln V."""
    start = runs_view.untrained_loss(model_config, state.seed(), tokens)
    st.markdown(f"**Where the loss starts.** Untrained, this very model (seed {state.seed()}) "
                f"scores **{start['loss']:.3f}** on the first {len(tokens.val_head):,} validation "
                f"tokens, not ln {model_config.vocab_size:,} = {start['uniform']:.3f}, an even bet "
                "on every token.")
    if model_config.tie_weights:
        st.markdown(
            "If the logits did not depend on the answer, the loss could not start below ln V on "
            "average (unequal random logits only cost more). This head is **tied**: the logits "
            "are h · wteᵀ, and h is mostly the embedding e of the token just read, so that "
            f"token's own logit is about |e|²-sized, **{start['own_logit_gap']:+.2f}** above the "
            f"mean here. The **{start['repeat_share']:.1%}** of next tokens that repeat the "
            f"current one (indentation, doubled letters) cost {start['loss_on_repeats']:.3f}; the "
            f"others {start['loss_on_others']:.3f}.")
    else:
        st.markdown(
            "This head is **untied** (its own random matrix): the logits do not depend on the "
            "answer, so on average the loss cannot start below ln V, and random logits that are "
            "not all equal cost a little more (own-token logit gap "
            f"{start['own_logit_gap']:+.2f}).")
    st.caption(f"{start['tokens_used']:,} of the {model_config.vocab_size:,} tokens occur in these "
               f"tokens; knowing only how often each occurs, with no context, would score "
               f"{start['unigram_entropy']:.3f}. The first steps get there fast; the rest of "
               "training is about context.")
    ui.show_code(trainmod.starting_loss)


# ------------------------------------------------------------------ 3 · train


def train(form: RunForm) -> None:
    """Train and Stop, and the newest run as it trains: its status, curves, latest sample and
    attention.

    Pressing Train or Stop reruns only this part of the page, not the whole lesson: on a host
    where browser and server share the cores, a whole redraw of lesson 5 cost the browser
    1.7 s of CPU just as the run started (headless Chromium on this 2-core machine)."""
    # After each tick the progress bar animates to its new width, repainting every frame: in
    # headless Chromium on this 2-core machine a page with a ticking bar used 0.07 of a core
    # with the animation and 0.03 without. At one update every few seconds a jump reads the same.
    st.html("<style>[data-testid='stProgress'] * { transition: none !important; }</style>")
    st.fragment(train_and_watch)(form)


def train_and_watch(form: RunForm) -> None:
    session = lab_session()  # this learner's runs as of now, not as the page found them
    c1, c2, _ = st.columns([1, 1, 4])
    # Train starts the run in its callback, before this part redraws itself with Train
    # disabled, Stop enabled and the live view ticking.
    c1.button("Train", type="primary", key=f"act_{K}train", on_click=start_training,
              args=(form,), disabled=bool(form.problem) or session.running)
    if c2.button("Stop", key=f"act_{K}stop", disabled=not session.running):
        session.current.stop()
        st.toast("Stopping…")
    # The live parts redraw together, in one fragment, every LIVE_TICK seconds. On a host
    # where browser and server share the cores, each redraw is CPU the training does not get:
    # in headless Chromium on this 2-core machine a tick cost 0.36 s of CPU, 0.15 s of it with
    # nothing in the fragment (React redraws the page's element tree), 0.13 s the attention
    # heatmap and its sliders (now a picture). Live lab against headless
    # (benchmarks.app_overhead): 0.76 with five parts ticking apart (2 and 5 s), 0.80 with one
    # fragment every 3 s, 0.84 with the picture, 0.86-0.97 ticking every 5 s (three runs;
    # Chromium 0.11 of a core).
    # At the default settings an evaluation (sample, attention, val point) comes every ~5 s.
    st.fragment(run_every=LIVE_TICK if session.running else None)(live_view)(session.lab,
                                                                             session.runs)


def start_training(form: RunForm) -> None:
    session = lab_session()
    start_run(session, lambda: labmod.TrainingRun(
        session.lab, session.corpus.text, form.tok_kind, form.bpe_vocab, form.model_config,
        form.train_config, next_label(session.runs)))


def start_run(session: LabSession, make_run) -> bool:
    """Start the run `make_run()` makes, unless one of this learner's runs is still going (a
    button drawn before that run started can still be pressed). True if it started."""
    if any(run.active for run in session.runs):
        return False
    session.runs.append(make_run().start())
    labmod.forget_old_weights(session.runs, MAX_RUNS_WITH_WEIGHTS)
    return True


def live_view(lab: labmod.Lab, runs: list) -> None:
    """The newest run's status, its loss curves, its latest sample and attention, then the
    table of every run; once the run ends, the whole page is redrawn with its results."""
    if not runs:
        st.info(f"Press **Train** to start. The chart below updates every {LIVE_TICK:g} seconds.")
        return
    current = runs[-1]
    snap = current.snapshot()
    run_status(lab, current, snap)
    rows = labmod.curve_rows(snap)
    left, right = st.columns([3, 2])
    if rows:
        left.vega_lite_chart(charts.loss_chart(pd.DataFrame(rows), title=f"{current.label}: loss"),
                             width="stretch")
    if snap["evals"] and snap["evals"][-1].get("sample"):
        last = snap["evals"][-1]
        right.caption(f"Sample at step {last['iter']} (val loss {last['val_loss']:.3f}):")
        right.code(last["sample"][:600], language=None)
    live_attention(current)
    st.markdown("**Your runs**")
    st.table(runs_view.runs_table(runs))
    if not current.active and st.session_state.get(f"{K}shown") != current.id:
        st.session_state[f"{K}shown"] = current.id
        st.rerun()  # the run has ended: redraw the whole page with its results


def run_status(lab: labmod.Lab, run, snap: dict) -> None:
    """Queued (and where in line), a progress bar while training, or how the run ended."""
    if snap["queue_position"]:
        st.warning(f"Queued: the app is busy with {lab.running} run(s) from other learners. "
                   f"Yours is number {snap['queue_position']} in line and starts by itself.",
                   icon=":material/hourglass_top:")
    elif run.active:
        st.progress(min(snap["step"] / max(snap["max_iters"], 1), 1.0),
                    text=f"{labmod.status_line(run.label, snap)} · "
                         f"{snap['tokens_per_s']:,.0f} tokens/s")
    else:
        kind = {"done": st.success, "stopped": st.info, "diverged": st.error,
                "failed": st.error}.get(snap["status"], st.info)
        kind(f"{run.label}: {snap['message']}")


def live_attention(run) -> None:
    """Every layer's and head's attention at the run's latest evaluation, as one picture (a
    Vega heatmap redrawn every tick cost the browser more than the rest of the view)."""
    latest = run.latest_attention()
    if latest is None:
        return
    step, maps = latest
    text = "".join(run.snapshot_tokens()).replace("\n", "↵").replace("`", "'")
    st.image(pictures.attention_grid(maps), width="content", output_format="PNG")
    st.caption(f"Attention at step {step:,}, one square per head: layer i in row i, head j in "
               f"column j. In a square, row q is a query and column k a key; darker is more "
               f"attention. The {maps.shape[-1]} held-out tokens: `{text}`. When the run ends, "
               "section 4 shows each head with its tokens.")


# ------------------------------------------------------------------ 4 · after a run


def results(session: LabSession) -> None:
    """The finished run chosen (the newest at first): its final numbers, then five tabs:
    sample it, its samples during training, per-token loss, attention, continue training."""
    finished = [r for r in session.runs if not r.active and r.snapshot()["evals"]]
    if not finished:
        st.caption("Results appear here when a run ends.")
        return
    run = pick_result(finished)
    snap = run.snapshot()
    final_numbers(snap["evals"][-1])
    trained = state.trained_model()
    if trained is not None:
        st.caption(f"{trained.label} is now **your model** in lessons 1 and 3.")
    tabs = st.tabs(["Sample", "Samples during training", "Per-token loss",
                    "Attention over training", "Continue training"])
    with tabs[0]:
        sample(run)
    with tabs[1]:
        samples_during_training(snap)
    with tabs[2]:
        per_token_loss(run)
    with tabs[3]:
        attention_over_training(run)
    with tabs[4]:
        continue_training(session, run)


def pick_result(finished: list):
    """The run selectbox; a run that has just ended is selected once."""
    names = [r.label for r in finished]
    if st.session_state.get(f"{K}results_seen") != len(names):  # a run ended: show it
        st.session_state[f"{K}results_seen"] = len(names)
        st.session_state[f"{K}result_run"] = names[-1]
    return finished[names.index(st.selectbox("Run", names, key=f"{K}result_run",
                                             persist_state=PERSIST))]


def final_numbers(last: dict) -> None:
    """The last evaluation's losses and perplexity, and the base mix-up to avoid."""
    perplexity = trainmod.perplexity(last["val_loss"])
    ui.metric_row([("validation loss", f"{last['val_loss']:.4f}"),
                   ("perplexity", f"{perplexity:,.2f}",
                    "e^loss: as unsure as a uniform choice among this many tokens"),
                   ("train loss", f"{last['train_loss']:.4f}"),
                   ("steps", f"{last['iter']:,}")])
    st.latex(r"\text{perplexity} = e^{\text{loss}} = e^{%.4f} = %.2f" % (
        last["val_loss"], perplexity))
    with st.expander("A bug to avoid: the loss in one base, the exponential in another"):
        st.markdown("The tutorial's loss used `log10` (or `log2`) where cross-entropy uses the "
                    "natural log. Any base works if the exponential uses the same one: the "
                    "diagonal below is the true perplexity. Mix them and the perplexity is off "
                    "by a power, ln c / ln b.")
        st.table(runs_view.mixup_table(last["val_loss"]))
        ui.show_code(trainmod.perplexity, trainmod.perplexity_mixups)


def sample(run) -> None:
    """Sampling knobs, a prompt and a Sample button for a run that kept its weights."""
    if not run.has_weights:
        st.caption(f"{run.label}'s weights were let go (only the newest "
                   f"{MAX_RUNS_WITH_WEIGHTS} runs keep them); its curves remain.")
        return
    s = st.columns(4)
    temp = s[0].slider("Temperature", 0.1, 2.0, 0.8, 0.05, key=f"{K}s_temp",
                       persist_state=PERSIST)
    top_k = s[1].slider("Top-k (0 = off)", 0, 200, 0, key=f"{K}s_topk", persist_state=PERSIST)
    top_p = s[2].slider("Top-p", 0.05, 1.0, 1.0, 0.05, key=f"{K}s_topp", persist_state=PERSIST)
    length = s[3].slider("Tokens", 10, 500, 200, 10, key=f"{K}s_len", persist_state=PERSIST)
    prompt = st.text_input("Prompt", "\n", key=f"{K}s_prompt", max_chars=500,
                           persist_state=PERSIST)
    if st.button("Sample", key=f"act_{K}sample"):
        with ui.explain_errors("sampling"):
            st.code(run.sample(prompt, length, temp, top_k or None,
                               None if top_p >= 1 else top_p, state.seed()), language=None)


def samples_during_training(snap: dict) -> None:
    """The sample written at each evaluation, beside its validation loss."""
    st.markdown("The tutorial's loop printed only the loss, so you never saw *what* the "
                "model had learned. This trainer writes a sample at every evaluation "
                "(150 tokens, temperature 0.8): read it turn from noise into words.")
    st.dataframe(pd.DataFrame([{"step": e["iter"], "val loss": e["val_loss"],
                                "sample": e["sample"][:300]}
                               for e in snap["evals"] if e.get("sample")]),
                 hide_index=True, width="stretch")
    ui.show_code(trainmod.Trainer.sample)


def per_token_loss(run) -> None:
    """The validation text's first tokens coloured by the loss the model paid for each."""
    scored = run.token_losses()
    if scored is None:
        st.caption("Per-token loss needs the model and held-out text from this session's "
                   "corpus.")
        return
    ui.loss_spans(scored["tokens"], scored["losses"])
    st.caption(f"The first {len(scored['tokens'])} tokens of the validation text, coloured "
               f"by the loss the model paid for each (mean {scored['mean']:.3f}); green "
               "is expected, red is a surprise. Hover for the number.")
    ui.show_code(trainmod.per_token_loss)


def attention_over_training(run) -> None:
    """One layer and head at four evaluations spread across the run."""
    if not run.attention(0, 0):
        st.caption("No attention snapshots for this run.")
        return
    left, right = st.columns(2)
    with left:
        layer = runs_view.index_slider("Layer", run.model_config.n_layer, f"{K}snap_layer")
    with right:
        head = runs_view.index_slider("Head", run.model_config.n_head, f"{K}snap_head")
    picks = labmod.spread(run.attention(layer, head), 4)
    labels = [ui.visible(t) for t in run.snapshot_tokens()]
    for col, (step, matrix) in zip(st.columns(len(picks)), picks):
        col.vega_lite_chart(charts.heatmap(matrix, labels, labels, f"step {step}", size=230,
                                           show_numbers=False), width="content")
    st.caption("The same layer and head on the same held-out tokens, captured at "
               "evaluations across the run: structure appears as the model learns.")


def continue_training(session: LabSession, run) -> None:
    """A new run from this one's checkpoint, for as many more steps as the slider says."""
    if not run.has_weights:
        st.caption("Only a run that kept its weights can go on training.")
        return
    caps = session.caps
    more = st.slider("Continue for (steps)", 10, caps.max_steps, min(100, caps.max_steps),
                     10, key=f"{K}more_steps", persist_state=PERSIST)
    st.caption("A new run starts from this one's checkpoint (weights, optimizer, data "
               "order) and extends its curves; past the end of its cosine decay the "
               "learning rate stays at its minimum. An uploaded checkpoint trains on "
               "this session's corpus.")
    if st.button(f"Continue {run.label} for {more:,} steps", key=f"act_{K}continue",
                 disabled=session.running):
        text = run.text if isinstance(run, labmod.TrainingRun) else session.corpus.text
        try:
            started = start_run(session, lambda: labmod.TrainingRun.continuing(
                session.lab, run, text, more, next_label(session.runs)))
        except (CheckpointError, ValueError) as e:
            st.error(str(e))
        else:
            if not started:
                st.warning("Your run is still training: stop it or let it end first.")
            else:
                st.rerun()  # redraw with the live view ticking


# ------------------------------------------------------------------ 5 · your runs


def upload(session: LabSession) -> None:
    """A checkpoint upload: checked, then added to the runs as the learner's model."""
    file = st.file_uploader("Upload a checkpoint (.pt)", type=["pt"], key=f"act_{K}upload",
                            help="Saved by this lab or by `python -m gptcore.train --out`.")
    if f"{K}upload_flash" in st.session_state:
        st.success(st.session_state.pop(f"{K}upload_flash"))
    if file is None or st.session_state.get(f"{K}uploaded") == file.file_id:
        return
    st.session_state[f"{K}uploaded"] = file.file_id
    try:
        loaded = labmod.LoadedRun.from_bytes(file.getvalue(), f"upload: {file.name}",
                                             session.caps.max_params)
    except CheckpointError as e:
        st.error(str(e))
    else:
        session.runs.append(loaded)
        adopt_latest(session.runs)
        st.session_state[f"{K}upload_flash"] = (
            f"Loaded {file.name}: {loaded.model.num_params():,} parameters, step "
            f"{loaded.step:,}. It is now your model in lessons 1 and 3.")
        st.rerun()  # redraw the runs table (section 3) and the sidebar with it


def curves_and_downloads(session: LabSession) -> None:
    """Every run's validation curve in one chart, then the downloads: the curves as CSV, a
    run's checkpoint. (The runs table is in the live view, which follows a run in training.)"""
    ended = [run for run in session.runs if not run.active]
    if session.running:
        st.caption(f"{session.current.label} joins this chart when it ends.")
    curves = pd.DataFrame([{"run": p["run"], "iter": p["iter"], "loss": p["val_loss"]}
                           for p in curve_points(ended)])
    if not curves.empty:
        st.vega_lite_chart(charts.loss_chart(curves, color="run",
                                             title="Validation loss, all runs"), width="stretch")
    elif not session.runs:
        st.caption("Every run of this browser session appears here, with its curve.")
    if session.runs:
        downloads(session.runs)


def curve_points(runs: list) -> list[dict]:
    """Every evaluation of every run, one row each."""
    return [{"run": r.label, "iter": e["iter"], "train_loss": e["train_loss"],
             "val_loss": e["val_loss"]} for r in runs for e in r.snapshot()["evals"]]


def downloads(runs: list) -> None:
    """The curves as CSV, and the checkpoint of a run that kept its weights."""
    d1, d2 = st.columns(2)
    d1.download_button("Download the curves (CSV)", pd.DataFrame(curve_points(runs)).to_csv(
        index=False), "gptcore-runs.csv", "text/csv", key=f"act_{K}csv", on_click="ignore")
    ready = [r for r in runs if r.has_weights]
    if ready:
        labels = [r.label for r in ready]
        pick = d2.selectbox("Checkpoint of", labels, key=f"{K}ckpt_pick",
                            index=len(ready) - 1, persist_state=PERSIST)
        d2.download_button("Download the checkpoint", ready[labels.index(pick)].checkpoint_bytes,
                           f"{pick.replace(' ', '-').replace(':', '')}.pt",
                           "application/octet-stream", key=f"act_{K}ckpt", on_click="ignore")
