"""Lesson 5: the training lab. Configure, budget, train live, stop, compare, download."""
import io
import math
import time

import pandas as pd
import streamlit as st
import torch

from classroom import charts, lab as labmod, page, shared, state, widgets as ui
from gptcore import budget, checkpoint as ckptmod, trainer as trainmod
from gptcore.generate import generate
from gptcore.model import GPT, GPTConfig
from gptcore.tokenizers import TiktokenTokenizer

page.setup(5, """
Training repeats one loop: take a batch of windows, compute the loss (how surprised the model
is by each next token), compute gradients, and nudge every weight downhill with AdamW. Press
**Train** and watch the loss fall; the run keeps going while you read other lessons.
""")

K = "l5_"
lab = shared.shared_lab()
caps = lab.caps
runs = st.session_state.setdefault(state.Keys.runs, [])
MAX_RUNS_WITH_WEIGHTS = 4  # older runs keep their curves, not their weights
current = runs[-1] if runs else None
running = current is not None and current.active

MODEL_CHOICES = {
    "nanoGPT baby GPT (4 layers × 4 heads × 128, context 64)": dict(n_layer=4, n_head=4, n_embd=128, block_size=64),
    "Tiny (2 layers × 2 heads × 64, context 32)": dict(n_layer=2, n_head=2, n_embd=64, block_size=32),
    "Lesson 4's builder": None,
    "Custom": None,
}


def apply_model_choice():
    choice = MODEL_CHOICES.get(st.session_state[f"{K}model"])
    built = state.built_config()
    if st.session_state[f"{K}model"] == "Lesson 4's builder" and built is not None:
        choice = {f: getattr(built, f) for f in ("n_layer", "n_head", "n_embd", "block_size")}
        choice = {"n_layer": min(choice["n_layer"], 8), "n_head": min(choice["n_head"], 16),
                  "n_embd": min(choice["n_embd"], 512), "block_size": min(choice["block_size"], 256)}
    for k, v in (choice or {}).items():
        st.session_state[f"{K}{k}"] = v


if f"{K}n_layer" not in st.session_state:
    st.session_state[f"{K}model"] = next(iter(MODEL_CHOICES))
    apply_model_choice()

# ------------------------------------------------------------------ configuration
corpus = shared.current_corpus()
st.subheader("1 · Set up a run")
st.caption(f"Corpus: **{corpus.name}** ({corpus.n_chars:,} characters; change it in the "
           "sidebar). The first 90% trains, the last 10% validates.")
c1, c2 = st.columns(2)
with c1:
    tok_kind = st.radio("Tokenizer", ["char", "bpe", "gpt2"], horizontal=True, key=f"{K}tok",
                        format_func={"char": "Characters", "bpe": "BPE (trained on the corpus)",
                                     "gpt2": "GPT-2 BPE"}.get)
    bpe_vocab = st.slider("BPE vocabulary", 256, 2048, 512, 64, key=f"{K}bpe_vocab",
                          disabled=tok_kind != "bpe")
    st.selectbox("Model", list(MODEL_CHOICES), key=f"{K}model", on_change=apply_model_choice)
    m = st.columns(4)
    m[0].slider("Layers", 1, 8, key=f"{K}n_layer")
    m[1].slider("Heads", 1, 16, key=f"{K}n_head")
    m[2].slider("Width", 16, 512, step=16, key=f"{K}n_embd")
    m[3].slider("Context", 8, 256, step=8, key=f"{K}block_size")
with c2:
    h = st.columns(3)
    lr = h[0].select_slider("Learning rate", [1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 4e-3, 6e-3, 1e-2,
                                              3e-2, 0.1, 1.0, 10.0, 100.0],
                            value=4e-3, key=f"{K}lr", format_func=lambda v: f"{v:g}")
    batch = h[1].slider("Batch size", 1, 64, 32, key=f"{K}batch")
    steps = h[2].slider("Steps", 10, caps.max_steps, min(300, caps.max_steps), 10, key=f"{K}steps")
    h = st.columns(3)
    warmup = h[0].slider("Warmup steps", 0, 500, 30, 10, key=f"{K}warmup")
    cosine = h[1].toggle("Cosine decay to lr/10", value=True, key=f"{K}cosine")
    eval_every = h[2].slider("Evaluate every", 10, 500, 50, 10, key=f"{K}eval")
    h = st.columns(3)
    wd = h[0].slider("Weight decay", 0.0, 0.5, 0.1, 0.05, key=f"{K}wd")
    clip = h[1].slider("Gradient clip (0 = off)", 0.0, 5.0, 1.0, 0.25, key=f"{K}clip")
    dropout = h[2].slider("Dropout", 0.0, 0.5, 0.0, 0.05, key=f"{K}dropout")

vocab = {"char": len(set(corpus.text[: caps.max_corpus_chars])) + 1, "bpe": bpe_vocab,
         "gpt2": TiktokenTokenizer().vocab_size}[tok_kind]
problem = None
try:
    model_config = GPTConfig(vocab_size=vocab, n_layer=st.session_state[f"{K}n_layer"],
                             n_head=st.session_state[f"{K}n_head"],
                             n_embd=st.session_state[f"{K}n_embd"],
                             block_size=st.session_state[f"{K}block_size"], dropout=dropout,
                             bias=False)
    train_config = lab.check(model_config, trainmod.TrainConfig(
        batch_size=batch, max_iters=steps, lr=lr, min_lr=lr / 10 if cosine else lr,
        warmup_iters=min(warmup, steps), weight_decay=wd, grad_clip=clip, eval_interval=eval_every,
        seed=state.seed(), sample_tokens=150, eval_train_tokens=8192))
except ValueError as e:  # invalid shapes or over a cap
    problem = str(e)

# ------------------------------------------------------------------ budget
st.subheader("2 · The budget, before you press Train")


@st.cache_data(max_entries=16, show_spinner="Timing one training step…")
def measured_step_seconds(config: dict, batch_size: int) -> float:
    """Time a few real steps of this model (a throwaway copy) on random tokens."""
    model = GPT(GPTConfig(**config))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randint(0, config["vocab_size"], (batch_size, config["block_size"]))
    times = []
    for _ in range(4):
        t0 = time.perf_counter()
        _, loss = model(x, x)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - t0)
    return min(times[1:])


if problem:
    st.error(problem, icon=":material/block:")
else:
    n_params = budget.num_params(model_config)
    step_s = measured_step_seconds(model_config.to_dict(), batch)
    tokens_per_step = batch * model_config.block_size
    n_evals = steps // eval_every + 1
    eval_tokens = corpus.n_chars / (1 if tok_kind == "char" else 3.5) * 0.1 + 32_768
    eval_s = eval_tokens / max(3 * tokens_per_step / step_s, 1)
    estimate = min(steps * step_s + n_evals * eval_s, caps.max_seconds)
    b = st.columns(5)
    b[0].metric("parameters", f"{n_params:,}", help=f"limit {caps.max_params:,}")
    b[1].metric("tokens per step", f"{tokens_per_step:,}", help="batch × context")
    b[2].metric("one step (measured)", f"{step_s * 1000:,.0f} ms")
    b[3].metric("tokens per second", f"{tokens_per_step / step_s:,.0f}")
    b[4].metric("estimated time", f"{estimate:,.0f} s",
                help=f"{steps} steps + {n_evals} evaluations; capped at {caps.max_seconds} s")
    st.caption(f"Training FLOPs: {budget.flops_per_token(model_config)['train'] * tokens_per_step * steps / 1e12:,.2f} "
               f"TFLOP in all. The loss starts near ln(vocabulary) = {math.log(vocab):.2f}: "
               "a model that knows nothing spreads its bet evenly over every token.")

# ------------------------------------------------------------------ train / stop
st.subheader("3 · Train")
c1, c2, c3 = st.columns([1, 1, 4])
if c1.button("Train", type="primary", key=f"act_{K}train", disabled=bool(problem) or running):
    if running:
        st.warning("A run is already going: one run at a time per learner. Stop it first.")
    else:
        label = f"run {len(runs) + 1}"
        run = labmod.TrainingRun(lab, corpus.text, tok_kind, bpe_vocab, model_config,
                                 train_config, label,
                                 snapshot_layer=st.session_state.get(f"{K}snap_layer", 0),
                                 snapshot_head=st.session_state.get(f"{K}snap_head", 0))
        runs.append(run.start())
        for old in runs[:-MAX_RUNS_WITH_WEIGHTS]:  # bounded memory per learner
            old.trainer, old.model = None, None
        st.rerun()  # redraw with Train disabled, Stop enabled and the live view ticking
if c2.button("Stop", key=f"act_{K}stop", disabled=not running):
    current.stop()
    st.toast("Stopping…")
with c3.expander("Attention snapshots: which layer and head"):
    st.slider("Layer", 0, 7, 0, key=f"{K}snap_layer")
    st.slider("Head", 0, 15, 0, key=f"{K}snap_head")


def curves_frame(run) -> pd.DataFrame:
    snap = run.snapshot()
    rows = [{"iter": e["iter"], "loss": e[f"{split}_loss"], "split": f"{split} (evaluation)"}
            for e in snap["evals"] for split in ("train", "val")]
    if snap["steps"]:
        steps_df = pd.DataFrame(snap["steps"], columns=["iter", "loss"])
        steps_df["loss"] = steps_df["loss"].rolling(10, min_periods=1).mean()
        stride = max(1, len(steps_df) // 300)  # at most ~300 points to draw
        rows += [{"iter": int(i), "loss": float(v), "split": "train (batch, smoothed)"}
                 for i, v in steps_df.iloc[::stride].itertuples(index=False)]
    return pd.DataFrame(rows, columns=["iter", "loss", "split"])


def live_view():
    if current is None:
        st.info("Press **Train** to start. The chart below updates every second.")
        return
    snap = current.snapshot()
    done = snap["steps"][-1][0] if snap["steps"] else 0
    status = snap["status"]
    if snap["queue_position"]:
        st.warning(f"Queued: the app is busy with {lab.running} run(s) from other learners. "
                   f"Yours is number {snap['queue_position']} in line and starts by itself.",
                   icon=":material/hourglass_top:")
    elif status in ("preparing", "training"):
        eta = f" · ETA {snap['eta_s']:,.0f} s" if snap["eta_s"] is not None else ""
        st.progress(min(done / max(snap["max_iters"], 1), 1.0),
                    text=f"{current.label}: step {done:,} / {snap['max_iters']:,} · "
                         f"{snap['tokens_per_s']:,.0f} tokens/s{eta}")
        if status == "preparing":
            st.caption(snap["message"])
    else:
        kind = {"done": st.success, "stopped": st.info, "diverged": st.error,
                "failed": st.error}.get(status, st.info)
        kind(f"{current.label}: {snap['message']}")
    frame = curves_frame(current)
    if not frame.empty:
        st.altair_chart(charts.loss_chart(frame, title=f"{current.label}: loss"), width="stretch")
    if snap["evals"] and snap["evals"][-1].get("sample"):
        last = snap["evals"][-1]
        st.caption(f"Sample at step {last['iter']} (val loss {last['val_loss']:.3f}):")
        st.code(last["sample"][:600], language=None)
    if not current.active and st.session_state.get(f"{K}shown") != current.id:
        st.session_state[f"{K}shown"] = current.id
        st.rerun()  # the run has ended: redraw the whole page with its results


# After each tick the progress bar animates to its new width, repainting every frame: in
# headless Chromium on this 2-core machine a page with a ticking bar used 0.07 of a core with
# the animation and 0.03 without. At one update a second a jump reads the same.
st.html("<style>[data-testid='stProgress'] * { transition: none !important; }</style>")
st.fragment(run_every=1.0 if running else None)(live_view)()

# ------------------------------------------------------------------ results
finished = [r for r in runs if not r.active and getattr(r, "model", None) is not None]
if finished and finished[-1] is not None:
    latest = finished[-1]
    trained = state.trained_model()
    if trained is None or trained.label != latest.label:
        state.set_trained_model(state.TrainedModel(latest.model, latest.tokenizer, latest.label))

st.subheader("4 · After a run")
if not finished:
    st.caption("Results appear here when a run ends.")
else:
    names = [r.label for r in finished]
    chosen = st.selectbox("Run", names, index=len(names) - 1, key=f"{K}result_run")
    run = finished[names.index(chosen)]
    snap = run.snapshot()
    if snap["evals"]:
        last = snap["evals"][-1]
        r = st.columns(4)
        r[0].metric("validation loss", f"{last['val_loss']:.4f}")
        r[1].metric("perplexity", f"{math.exp(last['val_loss']):,.2f}",
                    help="exp(loss): as unsure as a uniform choice among this many tokens")
        r[2].metric("train loss", f"{last['train_loss']:.4f}")
        r[3].metric("steps", f"{last['iter']:,}")
        st.latex(r"\text{perplexity} = e^{\text{loss}} = e^{%.3f} = %.2f" % (
            last["val_loss"], math.exp(last["val_loss"])))
    st.caption(f"{run.label} is now **your model** in lessons 1 and 3.")

    tab_sample, tab_loss, tab_attn = st.tabs(["Sample", "Per-token loss", "Attention over training"])
    with tab_sample:
        s = st.columns(4)
        temp = s[0].slider("Temperature", 0.1, 2.0, 0.8, 0.05, key=f"{K}s_temp")
        top_k = s[1].slider("Top-k (0 = off)", 0, 200, 0, key=f"{K}s_topk")
        top_p = s[2].slider("Top-p", 0.05, 1.0, 1.0, 0.05, key=f"{K}s_topp")
        length = s[3].slider("Tokens", 10, 500, 200, 10, key=f"{K}s_len")
        prompt = st.text_input("Prompt", "\n", key=f"{K}s_prompt", max_chars=500)
        if st.button("Sample", key=f"act_{K}sample"):
            with ui.explain_errors("sampling"):
                ids = run.tokenizer.encode(prompt)[-run.model.config.block_size:] or [0]
                g = torch.Generator().manual_seed(state.seed())
                out = generate(run.model, torch.tensor([ids]), length, temperature=temp,
                               top_k=top_k or None, top_p=None if top_p >= 1 else top_p, generator=g)
                st.code(run.tokenizer.decode(out[0].tolist()), language=None)
    with tab_loss:
        if run.val_ids is None or len(run.val_ids) < 3:
            st.caption("Per-token loss needs held-out text from this session's corpus.")
        else:
            ids = run.val_ids[: run.model.config.block_size + 1]
            losses = trainmod.per_token_loss(run.model, ids)
            ui.loss_spans([run.tokenizer.token_text(int(i)) for i in ids], losses)
            finite = [v for v in losses if v == v]
            st.caption(f"The first {len(ids)} tokens of the validation text, coloured by the "
                       f"loss the model paid for each (mean {sum(finite) / len(finite):.3f}); "
                       "green is expected, red is a surprise. Hover for the number.")
    with tab_attn:
        evals = [e for e in snap["evals"] if e.get("attention")]
        if not evals or run.val_ids is None:
            st.caption("No attention snapshots for this run.")
        else:
            picks = sorted({0, len(evals) // 3, 2 * len(evals) // 3, len(evals) - 1})
            labels = [ui.visible(run.tokenizer.token_text(int(i)))
                      for i in run.val_ids[: len(evals[0]["attention"])]]
            cols = st.columns(len(picks))
            for col, i in zip(cols, picks):
                col.altair_chart(charts.heatmap(evals[i]["attention"], labels, labels,
                                                f"step {evals[i]['iter']}", size=230,
                                                show_numbers=False), width="content")
            st.caption("The same layer and head on the same held-out tokens, captured at "
                       "several evaluations: structure appears as the model learns.")

# ------------------------------------------------------------------ runs
st.subheader("5 · Your runs")
upload = st.file_uploader("Upload a checkpoint (.pt)", type=["pt"], key=f"act_{K}upload",
                          help="Saved by this lab or by `python -m gptcore.train --out`.")
if upload is not None and st.session_state.get(f"{K}uploaded") != upload.file_id:
    st.session_state[f"{K}uploaded"] = upload.file_id
    raw = upload.getvalue()
    try:
        ckpt = ckptmod.load_checkpoint(io.BytesIO(raw), max_params=caps.max_params)
        loaded = labmod.LoadedRun(ckpt, raw, f"upload: {upload.name}")
        runs.append(loaded)
        state.set_trained_model(state.TrainedModel(loaded.model, loaded.tokenizer, loaded.label))
        st.success(f"Loaded {upload.name}: {loaded.model.num_params():,} parameters, step "
                   f"{loaded.step}. It is now your model in lessons 1 and 3.")
    except ckptmod.CheckpointError as e:
        st.error(str(e))
if runs:
    st.table(pd.DataFrame([r.summary() for r in runs]).set_index("run"))
    curves = pd.DataFrame([{"run": r.label, "iter": e["iter"], "loss": e["val_loss"],
                            "train_loss": e["train_loss"]}
                           for r in runs for e in r.snapshot()["evals"]])
    if not curves.empty:
        st.altair_chart(charts.loss_chart(curves, color="run", title="Validation loss, all runs"),
                        width="stretch")
        d1, d2 = st.columns(2)
        d1.download_button("Download the curves (CSV)", curves.rename(columns={"loss": "val_loss"})
                           .to_csv(index=False), "gptcore-runs.csv", "text/csv", key=f"act_{K}csv",
                           on_click="ignore")
        with_weights = [r for r in runs if not r.active and getattr(r, "model", None) is not None
                        and (isinstance(r, labmod.LoadedRun) or r.trainer is not None)]
        if with_weights:
            pick = d2.selectbox("Checkpoint of", [r.label for r in with_weights], key=f"{K}ckpt_pick",
                                index=len(with_weights) - 1)
            chosen_run = with_weights[[r.label for r in with_weights].index(pick)]
            d2.download_button("Download the checkpoint", chosen_run.checkpoint_bytes,
                               f"{pick.replace(' ', '-').replace(':', '')}.pt",
                               "application/octet-stream", key=f"act_{K}ckpt", on_click="ignore")
else:
    st.caption("Every run of this browser session appears here, with its curve.")

ui.show_code(trainmod.lr_at, trainmod.train_step, trainmod.evaluate)
st.markdown("Outgrown the browser? The same trainer runs headless: "
            "`python -m gptcore.train --preset fast-cpu --corpus input.txt`, and on many "
            "processes or GPUs with `torchrun --nproc_per_node N -m gptcore.train …`.")
page.footer(5)
