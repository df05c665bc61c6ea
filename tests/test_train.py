import json
import math
import os
import subprocess
import sys
import time
from dataclasses import replace

import pytest
import torch

from gptcore.model import GPT, GPTConfig
from gptcore.checkpoint import CheckpointError, load_checkpoint
from gptcore.trainer import Ending, TrainConfig, Trainer, lr_at, prepare_data
from tests.conftest import ROOT

TEXT = ("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
        "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n") * 40


def small_run(steps=60, seed=0, lr=3e-3, eval_interval=20, **kw):
    tok, train_ids, val_ids = prepare_data(TEXT, "char", 0, 0.1)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=2, n_head=2, n_embd=32))
    cfg = TrainConfig(batch_size=8, max_iters=steps, lr=lr, min_lr=lr / 10, warmup_iters=5,
                      eval_interval=eval_interval, seed=seed, sample_tokens=20, **kw)
    return Trainer(model, train_ids, val_ids, cfg, tok)


def test_loss_falls_and_events_arrive():
    events = []
    trainer = small_run(steps=80)
    trainer.on_event = events.append
    result = trainer.run()
    history = result.history
    assert history[0]["iter"] == 0 and history[-1]["iter"] == 80
    assert history[-1]["val_loss"] < history[0]["val_loss"] - 1.0
    assert abs(history[0]["val_loss"] - math.log(trainer.tokenizer.vocab_size)) < 0.3
    kinds = {e["type"] for e in events}
    assert kinds == {"step", "eval", "done"}
    evals = [e for e in events if e["type"] == "eval"]
    assert all(isinstance(e["sample"], str) and len(e["attention"]) == 16 for e in evals)
    assert sum(e["type"] == "step" for e in events) == 80


def test_same_seed_same_curve():
    a = small_run(seed=3).run().history
    b = small_run(seed=3).run().history
    assert [h["val_loss"] for h in a] == [h["val_loss"] for h in b]


def test_schedule_matches_its_formula():
    cfg = TrainConfig(lr=1.0, min_lr=0.1, warmup_iters=10, max_iters=110)
    assert lr_at(0, cfg) == pytest.approx(1 / 11)
    assert lr_at(9, cfg) == pytest.approx(10 / 11)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    assert lr_at(60, cfg) == pytest.approx(0.1 + 0.5 * 0.9)  # halfway: cos(π/2) = 0
    assert lr_at(110, cfg) == pytest.approx(0.1) and lr_at(500, cfg) == pytest.approx(0.1)
    values = [lr_at(i, cfg) for i in range(10, 110)]
    assert values == sorted(values, reverse=True)


def test_checkpoint_round_trip_and_resume_continue_the_same_curve(tmp_path):
    straight = small_run(steps=60).run().history
    first = small_run(steps=60)
    first.run(should_stop=lambda: first.step >= 40)  # stopped mid-run, same schedule
    path = first.save(tmp_path / "ckpt.pt")
    assert not list(tmp_path.glob("*.tmp"))
    ckpt = load_checkpoint(path)
    assert ckpt["tokenizer_obj"].encode("To be") == first.tokenizer.encode("To be")
    idx = torch.tensor([first.tokenizer.encode("To be, or")])
    torch.testing.assert_close(ckpt["model_obj"](idx)[0], first.model.eval()(idx)[0])
    resumed = small_run(steps=60)
    resumed.load_state(torch.load(path, weights_only=True))
    history = resumed.run().history
    assert [h["iter"] for h in history] == [h["iter"] for h in straight]
    for a, b in zip(history, straight):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-4)


def test_huge_learning_rate_stops_with_a_clear_reason():
    trainer = small_run(steps=200, lr=1e6, eval_interval=5, grad_clip=0.0)
    result = trainer.run()
    assert result.outcome.ending is Ending.DIVERGED and "diverged" in str(result.outcome)
    logits, _ = trainer.model(torch.zeros(1, 4, dtype=torch.long))
    assert torch.isfinite(logits).all()  # the last good weights came back


def test_stop_keeps_the_history():
    trainer = small_run(steps=1000, eval_interval=10)
    result = trainer.run(should_stop=lambda: trainer.step >= 25)
    assert result.outcome.ending is Ending.STOPPED and result.steps == 25
    assert [h["iter"] for h in result.history] == [0, 10, 20]


def test_bad_checkpoints_get_plain_messages(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a gptcore checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    trainer = small_run(steps=1)
    ckpt = trainer.checkpoint()
    ckpt["model_config"]["n_embd"] = 64  # weights of another shape
    torch.save(ckpt, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="limit"):
        load_checkpoint(tmp_path / "shape.pt", max_params=10)


def run_cli(args, env_extra=None, launcher=None):
    cmd = (launcher or [sys.executable, "-m"]) + ["gptcore.train"] + args
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env_extra or {})}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    return path


CLI_ARGS = ["--tokenizer", "char", "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
            "--block-size", "16", "--batch-size", "8", "--lr", "3e-3", "--seed", "1"]


def test_cli_prints_json_lines_and_stops_at_target(corpus_file, tmp_path):
    lines = run_cli(["--corpus", str(corpus_file), *CLI_ARGS, "--max-iters", "300",
                     "--eval-interval", "20", "--target-val-loss", "2.5",
                     "--out", str(tmp_path / "out"), "--export", str(tmp_path / "small.pt")])
    assert all(set(l) >= {"iter", "train_loss", "val_loss", "elapsed_s", "tokens_per_s"} for l in lines)
    assert lines[-1]["val_loss"] <= 2.5 and all(l["val_loss"] > 2.5 for l in lines[:-1])
    assert lines[-1]["iter"] < 300
    full = load_checkpoint(tmp_path / "out" / "ckpt.pt")
    assert full["step"] == lines[-1]["iter"] and full["optimizer"] is not None
    # --export: the same model and history, without optimizer state (AdamW's two moments)
    small = load_checkpoint(tmp_path / "small.pt")
    assert small["optimizer"] is None and small["generator"] is None
    assert small["step"] == full["step"] and small["history"] == full["history"]
    assert all(torch.equal(small["model"][k], t) for k, t in full["model"].items())
    assert (tmp_path / "small.pt").stat().st_size < (tmp_path / "out" / "ckpt.pt").stat().st_size / 2


def test_torchrun_two_processes_match_one(corpus_file):
    args = ["--corpus", str(corpus_file), *CLI_ARGS, "--max-iters", "30", "--eval-interval", "15"]
    one = run_cli(args)
    two = run_cli(args, launcher=[sys.executable, "-m", "torch.distributed.run",
                                  "--standalone", "--nproc_per_node", "2", "-m"])
    assert [l["iter"] for l in one] == [l["iter"] for l in two]
    for a, b in zip(one, two):
        assert b["val_loss"] == pytest.approx(a["val_loss"], abs=2e-3)


# ------------------------------------------------------------ budget, ETA, smoothing, loss


from gptcore.data import SlidingWindowDataset  # noqa: E402
from gptcore.trainer import (StepTimes, estimate_run, eta_seconds, eval_batch_size,  # noqa: E402
                             eval_window_tokens, evaluate, evaluation_steps, init_model,
                             measure_step_times, perplexity, perplexity_mixups, smooth,
                             starting_loss)


@pytest.mark.parametrize("max_iters,interval", [(60, 20), (50, 20), (7, 10), (1, 1)])
def test_evaluation_steps_are_the_steps_a_run_evaluates_at(max_iters, interval):
    history = small_run(steps=max_iters, eval_interval=interval).run().history
    assert evaluation_steps(max_iters, interval) == [h["iter"] for h in history]


@pytest.mark.parametrize("n,block", [(0, 4), (4, 4), (5, 4), (9, 4), (100, 16), (17, 16)])
def test_eval_window_tokens_counts_the_targets_evaluate_scores(n, block):
    ds = SlidingWindowDataset(torch.arange(n), block, stride=block)
    assert eval_window_tokens(n, block) == len(ds) * block


def test_a_bounded_evaluation_batch_gives_the_same_loss():
    trainer = small_run(steps=1)
    ids = trainer.val_ids
    assert eval_batch_size(64, 50257) == 10 and eval_batch_size(64, 65) == 64
    assert eval_batch_size(1024, 50257) == 1
    assert evaluate(trainer.model, ids, 16, 1) == pytest.approx(evaluate(trainer.model, ids, 16, 64),
                                                                abs=1e-5)


@pytest.mark.parametrize("window", [1, 3, 10])
def test_smooth_is_pandas_rolling_mean(window):
    pd = pytest.importorskip("pandas")
    values = torch.randn(40, generator=torch.Generator().manual_seed(window)).tolist()
    want = pd.Series(values).rolling(window, min_periods=1).mean().tolist()
    assert smooth(values, window) == pytest.approx(want, abs=1e-12)
    assert smooth([4, 2, 3], 2) == [4.0, 3.0, 2.5] and smooth([], 5) == []


@pytest.mark.parametrize("tie", [True, False])
def test_init_model_builds_real_tensors_and_keeps_the_head_tied(tie):
    """init_model builds on the meta device then allocates: no tensor may stay on meta, and a
    tied head must still be the embedding matrix (to_empty gives each name its own tensor)."""
    config = GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, n_embd=32,
                       tie_weights=tie)
    model = init_model(config, 0)
    assert all(t.device.type == "cpu" for t in model.state_dict().values())
    assert (model.lm_head.weight is model.transformer.wte.weight) is tie
    idx = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0))
    _, loss = model(idx[:, :-1], idx[:, 1:])
    assert torch.isfinite(loss) and abs(loss.item() - math.log(50)) < 0.3
    loss.backward()  # one tensor, one gradient: the tie holds through backward too
    assert model.transformer.wte.weight.grad is not None


def test_init_model_skips_initialization_in_its_own_thread_only():
    """init_model builds GPT(config) with torch.nn.init turned off (a TorchFunctionMode):
    another thread's module, built at the same time, must still be initialized."""
    import threading

    config = GPTConfig(vocab_size=50, block_size=8, n_layer=2, n_head=2, n_embd=32)
    stop = threading.Event()

    def building():  # a learner's run starting while a page builds a layer
        while not stop.is_set():
            init_model(config, 0)

    builder = threading.Thread(target=building)
    builder.start()
    try:
        for _ in range(200):
            layer = torch.nn.Linear(16, 16)
            assert layer.weight.abs().sum() > 0 and torch.isfinite(layer.weight).all()
            torch.testing.assert_close(layer.weight.abs().max(), torch.tensor(0.25), atol=0.02,
                                       rtol=0)  # kaiming_uniform_: |w| < 1/√16, and reaches it
    finally:
        stop.set()
        builder.join()


def test_init_model_is_gpt2s_initialization_decided_by_the_seed_alone():
    import threading

    config = GPTConfig(vocab_size=50, block_size=8, n_layer=3, n_head=2, n_embd=64, bias=True)
    stop = threading.Event()

    def other_thread():  # another learner's run, or a page, using the global RNG meanwhile
        while not stop.is_set():
            torch.manual_seed(0)
            torch.randn(100)

    noise = threading.Thread(target=other_thread)
    noise.start()
    try:
        models = [init_model(config, 5) for _ in range(3)]
    finally:
        stop.set()
        noise.join()
    for other in models[1:]:
        for pa, pb in zip(models[0].parameters(), other.parameters()):
            assert torch.equal(pa, pb)
    assert not torch.equal(init_model(config, 6).transformer.wte.weight,
                           models[0].transformer.wte.weight)
    reference = GPT(config)  # GPT's own initialization: the same distributions
    for (name, p), (_, q) in zip(models[0].named_parameters(), reference.named_parameters()):
        if p.dim() == 1:
            assert torch.equal(p, q), name  # LayerNorms 1 and 0, biases 0
        else:
            assert abs(p.std().item() - q.std().item()) < 0.15 * q.std().item(), name
            assert abs(p.mean().item()) < 0.01, name
    assert models[0].lm_head.weight is models[0].transformer.wte.weight


def test_measured_step_times_are_real_seconds():
    config = GPTConfig(vocab_size=50, block_size=16, n_layer=1, n_head=2, n_embd=16)
    t = measure_step_times(config, 4, repeats=2)
    assert 0 < t.step_s < 5 and 0 < t.eval_token_s < t.step_s and 0 < t.sample_token_s < 5


def test_step_timing_stops_at_its_budget(monkeypatch):
    """A slow model is timed over fewer steps (the learner waits for them), a fast one over
    `repeats`, always after one untimed warm-up step."""
    import gptcore.trainer as trainer

    config = GPTConfig(vocab_size=50, block_size=8, n_layer=1, n_head=1, n_embd=8)
    for step_s, repeats, budget_s, steps in [(0.15, 3, 0.25, 1 + 2), (0.15, 3, 0.1, 1 + 1),
                                             (0.0, 3, 2.0, 1 + 3), (0.0, 5, 2.0, 1 + 5)]:
        calls = []
        monkeypatch.setattr(trainer, "train_step",
                            lambda *a, s=step_s: (calls.append(1), time.sleep(s)))
        t = measure_step_times(config, 2, repeats=repeats, budget_s=budget_s)
        assert len(calls) == steps, (step_s, repeats, budget_s)
        assert t.step_s == pytest.approx(step_s, abs=0.05)


def test_estimate_adds_up_by_its_formula():
    config = GPTConfig(vocab_size=65, block_size=16, n_layer=1, n_head=2, n_embd=16)
    cfg = TrainConfig(batch_size=8, max_iters=50, eval_interval=20, eval_train_tokens=100,
                      sample_tokens=30)
    times = StepTimes(step_s=0.01, eval_token_s=1e-5, sample_token_s=2e-3)
    est = estimate_run(config, cfg, 10_000, times)
    # 1,000 val tokens -> 62 windows of 16 (992 targets); the train slice: 100 tokens -> 6 windows
    assert est.eval_tokens == 992 + 96 and est.evals == 4  # steps 0, 20, 40, 50
    assert est.eval_s == pytest.approx(1088 * 1e-5 + 30 * 2e-3)
    assert est.total_s == pytest.approx(50 * 0.01 + 4 * est.eval_s)
    assert est.tokens_per_step == 128 and est.tokens_per_s == pytest.approx(12_800)
    from gptcore.budget import flops_per_token
    assert est.train_flops == pytest.approx(flops_per_token(config)["train"] * 128 * 50)
    capped = estimate_run(config, replace(cfg, max_seconds=0.25), 10_000, times)
    assert capped.steps == 25 and capped.evals == 2  # the time cap ends it at step 25: 0 and 20


def timed_events(trainer):
    """Run the trainer, keeping each event with the wall-clock second it arrived."""
    events = []
    start = time.perf_counter()
    trainer.on_event = lambda e: events.append((time.perf_counter() - start, e))
    trainer.run()
    return events, time.perf_counter() - start


def test_estimate_and_eta_against_a_measured_run():
    """A real run against the estimate and the ETA. This machine's speed swings several-fold
    within a minute (2 cores shared), so the formula is checked with the run's own unit
    costs (tightly), and the up-front measurement only against measurements taken around
    the run (loosely)."""
    trainer = small_run(steps=80, eval_interval=20)
    trainer.cfg = cfg = replace(trainer.cfg, sample_tokens=0)
    config, n_tokens = trainer.model.config, len(trainer.train_ids) + len(trainer.val_ids)
    before = measure_step_times(config, cfg.batch_size)
    events, total = timed_events(trainer)
    after = measure_step_times(config, cfg.batch_size)
    history = trainer.history
    own = StepTimes(trainer.train_seconds / 80,
                    sum(h["eval_s"] for h in history) / len(history)
                    / estimate_run(config, cfg, n_tokens, before).eval_tokens, 0.0)
    est = estimate_run(config, cfg, n_tokens, own)
    assert est.evals == len(history)
    assert est.total_s == pytest.approx(total, rel=0.2)  # the rest: Python between steps
    low, high = sorted([before.step_s, after.step_s])
    assert low / 5 < own.step_s < high * 5  # seconds on a busy machine, not a formula
    at, halfway = next((t, e) for t, e in events if e["type"] == "step" and e["iter"] == 40)
    evals = [e for _, e in events if e["type"] == "eval" and e["iter"] <= 40]
    eta = eta_seconds(40, cfg, halfway["elapsed_s"], evals)
    assert 0.4 < eta / (total - at) < 2.5, (eta, total - at)


def test_eta_counts_the_steps_and_evaluations_left():
    cfg = TrainConfig(max_iters=100, eval_interval=25)
    evals = [{"iter": 0, "eval_s": 1.0}, {"iter": 25, "eval_s": 3.0}]
    # 30 steps in 3 s: 0.1 s a step; 70 steps left and evaluations at 50, 75, 100 of 2 s each
    assert eta_seconds(30, cfg, 3.0, evals) == pytest.approx(7.0 + 6.0)
    assert eta_seconds(25, cfg, 2.5, evals[:1]) == pytest.approx(7.5 + 4 * 1.0)  # 25 is still due
    assert eta_seconds(0, cfg, 0.0, []) is None
    # a time cap of 5 s: 20 more steps (to 50), then the trainer stops without evaluating at 100
    assert eta_seconds(30, replace(cfg, max_seconds=5.0), 3.0, evals) == pytest.approx(2.0 + 2.0)


def test_eval_s_includes_the_sample():
    trainer = small_run(steps=20, eval_interval=20)
    trainer.cfg = replace(trainer.cfg, sample_tokens=0)
    bare = trainer.run().history
    trainer = small_run(steps=20, eval_interval=20)
    trainer.cfg = replace(trainer.cfg, sample_tokens=300)
    sampled = trainer.run().history
    assert all(h["eval_s"] > 0 for h in bare + sampled)
    assert sum(h["eval_s"] for h in sampled) > sum(h["eval_s"] for h in bare)


def brute_force_start(model, ids):
    """Cross-entropy, repeats and own-logit gap, window by window, with plain torch ops."""
    T, V = model.config.block_size, model.config.vocab_size
    n = (len(ids) - 1) // T
    x, y = ids[: n * T].view(n, T), ids[1: n * T + 1].view(n, T)
    logits, _ = model.eval()(x)
    logp = torch.log_softmax(logits, -1)
    loss = -logp.gather(-1, y[..., None])[..., 0]
    own = logits.gather(-1, x[..., None])[..., 0] - logits.mean(-1)
    rep = x == y
    return loss, rep, own


@pytest.mark.parametrize("tie", [True, False])
def test_starting_loss_against_brute_force(tie):
    tok, _, val_ids = prepare_data(TEXT * 3, "char", 0, 0.5)
    config = GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2, n_embd=32,
                       tie_weights=tie)
    model = init_model(config, 0)
    got = starting_loss(model, val_ids.tolist())
    with torch.no_grad():
        loss, rep, own = brute_force_start(model, val_ids)
    assert got["loss"] == pytest.approx(loss.mean().item(), abs=1e-5)
    assert got["loss"] == pytest.approx(evaluate(model, val_ids, 16), abs=1e-5)
    assert got["uniform"] == pytest.approx(math.log(tok.vocab_size))
    assert got["repeat_share"] == pytest.approx(rep.float().mean().item())
    assert got["loss_on_repeats"] == pytest.approx(loss[rep].mean().item(), abs=1e-5)
    assert got["loss_on_others"] == pytest.approx(loss[~rep].mean().item(), abs=1e-5)
    assert got["own_logit_gap"] == pytest.approx(own.mean().item(), abs=1e-5)
    counts = torch.bincount(val_ids).float()
    p = counts[counts > 0] / counts.sum()
    assert got["unigram_entropy"] == pytest.approx(-(p * p.log()).sum().item(), abs=1e-5)
    assert got["tokens_used"] == len(set(val_ids.tolist()))


def test_a_tied_head_starts_below_ln_v_on_repeats_an_untied_one_does_not():
    """The claim lesson 5 makes, on text with many repeated tokens (indentation)."""
    text = "def f(x):\n        return x\n" * 200
    tok, _, val_ids = prepare_data(text, "char", 0, 0.5)
    results = {}
    for tie in (True, False):
        config = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2,
                           n_embd=64, tie_weights=tie)
        results[tie] = starting_loss(init_model(config, 0), val_ids)
    tied, untied = results[True], results[False]
    assert tied["repeat_share"] > 0.2
    assert tied["own_logit_gap"] > 0.5 and abs(untied["own_logit_gap"]) < 0.1
    assert tied["loss_on_repeats"] < tied["loss_on_others"] - 0.5
    assert tied["loss"] < tied["uniform"] - 0.03
    share = tied["repeat_share"]  # the two groups make up the whole
    assert tied["loss"] == pytest.approx(share * tied["loss_on_repeats"]
                                         + (1 - share) * tied["loss_on_others"], abs=1e-4)
    assert untied["loss"] > untied["uniform"] - 0.02


def test_starting_loss_refuses_too_few_tokens():
    model = init_model(GPTConfig(vocab_size=5, block_size=16, n_layer=1, n_head=1, n_embd=8), 0)
    with pytest.raises(ValueError, match="one window"):
        starting_loss(model, [1, 2, 3])


def test_perplexity_mixups_against_losses_computed_in_each_base():
    tok, _, val_ids = prepare_data(TEXT, "char", 0, 0.2)
    model = init_model(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2,
                                 n_embd=16), 0).eval()
    x, y = val_ids[:16 * 8].view(8, 16), val_ids[1:16 * 8 + 1].view(8, 16)
    with torch.no_grad():
        p = torch.softmax(model(x)[0], -1).gather(-1, y[..., None])
    nats = -p.log().mean().item()
    losses = {"ln": nats, "log2": -p.log2().mean().item(), "log10": -p.log10().mean().item()}
    bases = {"ln": math.e, "log2": 2.0, "log10": 10.0}
    rows = perplexity_mixups(nats)
    assert len(rows) == 9
    for row in rows:
        assert row["loss"] == pytest.approx(losses[row["loss log"]], rel=1e-5)
        assert row["perplexity"] == pytest.approx(bases[row["exponent base"]] ** losses[row["loss log"]],
                                                  rel=1e-5)
        assert row["perplexity"] == pytest.approx(perplexity(nats) ** row["power"], rel=1e-9)
        if row["loss log"] == row["exponent base"]:
            assert row["power"] == 1 and row["perplexity"] == pytest.approx(perplexity(nats))
    wrong = next(r for r in rows if r["loss log"] == "log10" and r["exponent base"] == "ln")
    assert wrong["perplexity"] == pytest.approx(perplexity(nats) ** 0.4343, rel=1e-3)
    one_nat = {(r["loss log"], r["exponent base"]): r["perplexity"] for r in perplexity_mixups(1.0)}
    assert one_nat["log10", "ln"] == pytest.approx(1.5439, abs=1e-4)  # the docstring's example


def test_lr_schedule_is_what_the_optimizer_gets_at_every_step():
    """Lesson 5 draws lr_schedule; the trainer's own optimizer must have used those rates."""
    from gptcore.trainer import lr_schedule

    tok, train_ids, val_ids = prepare_data(TEXT, "char", 0, 0.1)
    cfg = TrainConfig(batch_size=4, max_iters=40, lr=1e-2, min_lr=1e-3, warmup_iters=5,
                      lr_decay_iters=30, eval_interval=100, sample_tokens=0, seed=0)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=8, n_layer=1, n_head=1, n_embd=8))
    seen = []
    trainer = Trainer(model, train_ids, val_ids, cfg, tok)
    original = trainer.optimizer.step

    def step(*args, **kwargs):  # the rate AdamW really applies, read at each update
        seen.append(trainer.optimizer.param_groups[0]["lr"])
        return original(*args, **kwargs)

    trainer.optimizer.step = step
    trainer.run()
    schedule = lr_schedule(cfg)
    assert [it for it, _ in schedule] == list(range(40))
    assert seen == pytest.approx([lr for _, lr in schedule], rel=1e-12)
    assert max(seen) == pytest.approx(1e-2) and seen[-1] == pytest.approx(1e-3)
    assert seen.index(max(seen)) == 5  # warmup ends at step 5, then the cosine falls
