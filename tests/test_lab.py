"""classroom.lab: caps and the nearest model within them, the queue, how runs end, live
snapshots, attention snapshots, continuing a run, and what the page reads from a run."""
import io
import math
import threading
import time
from dataclasses import replace

import pytest
import torch

from classroom.lab import (MAX_SNAPSHOTS, STATUS_OF, Caps, CapError, Lab, LoadedRun, TrainingRun,
                           curve_rows, describe, forget_old_weights, sample_text, spread,
                           status_line, thin)
from gptcore.checkpoint import CheckpointError
from gptcore.generate import generate
from gptcore.model import GPT, GPTConfig, attention_maps
from gptcore.trainer import Ending, Outcome, TrainConfig, per_token_loss
from tests.test_train import TEXT

CAP = Caps().max_params
TINY = GPTConfig(vocab_size=1, n_layer=2, n_head=2, n_embd=16, block_size=16)  # vocab: the tokenizer's


def tiny_cfg(**kw):
    base = dict(batch_size=8, max_iters=40, lr=3e-3, min_lr=3e-4, warmup_iters=5, eval_interval=20,
                seed=0, sample_tokens=10, eval_train_tokens=512)
    return TrainConfig(**{**base, **kw})


def finish(run, seconds=120):
    run.thread.join(seconds)
    assert not run.active
    return run.snapshot()


def meta_params(config: GPTConfig) -> int:
    with torch.device("meta"):
        return GPT(config).num_params()


# ------------------------------------------------------------------------------ caps


def test_caps_name_every_cap_a_model_is_over():
    caps = Caps(max_params=10_000, max_layers=2, max_heads=2, max_width=32, max_context=16)
    big = GPTConfig(vocab_size=100, n_layer=3, n_head=4, n_embd=64, block_size=32)
    problems = caps.problems(big)
    assert problems == ["Layers 3 is over this server's cap of 2.",
                        "Heads 4 is over this server's cap of 2.",
                        "Width 64 is over this server's cap of 32.",
                        "Context 32 is over this server's cap of 16.",
                        f"This model has {meta_params(big):,} parameters; the limit here is 10,000."]
    assert caps.problems(GPTConfig(vocab_size=10, n_layer=1, n_head=1, n_embd=8, block_size=8)) == []


def brute_force_nearest(config, caps):
    """Every width, layers from the most: the first that fits, counted on a real (meta) model."""
    heads = min(config.n_head, caps.max_heads)
    for layers in range(min(config.n_layer, caps.max_layers), 0, -1):
        for width in range(min(config.n_embd, caps.max_width), 0, -1):
            if width % heads or width % 8:
                continue
            c = replace(config, n_layer=layers, n_head=heads, n_embd=width,
                        block_size=min(config.block_size, caps.max_context))
            if meta_params(c) <= caps.max_params:
                return c
    return None


@pytest.mark.parametrize("config", [
    GPTConfig(vocab_size=50257, n_layer=4, n_head=4, n_embd=128, block_size=64, bias=False),  # GPT-2 BPE
    GPTConfig(vocab_size=65, n_layer=6, n_head=8, n_embd=256, block_size=128, dropout=0.1,
              tie_weights=False),  # the tutorial's model, character level
    GPTConfig(vocab_size=65, n_layer=12, n_head=12, n_embd=768, block_size=1024, activation="relu",
              pre_ln=False),  # GPT-2 small's shape: over every cap
    GPTConfig(vocab_size=300_000, n_layer=3, n_head=3, n_embd=96, block_size=64),  # no width fits
])
def test_nearest_model_within_the_caps_is_the_widest_that_fits(config):
    caps = Caps()
    got, want = caps.nearest(config), brute_force_nearest(config, caps)
    assert got == want
    if want is None:
        assert config.vocab_size * math.lcm(8, config.n_head) > caps.max_params  # wte alone
        return
    assert caps.problems(got) == []
    for f in ("vocab_size", "dropout", "bias", "tie_weights", "pre_ln", "activation"):
        assert getattr(got, f) == getattr(config, f), f  # only the shape changes
    wider = replace(got, n_embd=got.n_embd + math.lcm(8, got.n_head))
    assert got.n_embd >= min(config.n_embd, caps.max_width) or meta_params(wider) > caps.max_params


def test_check_refuses_and_caps_time_also_for_a_continuing_run():
    lab = Lab(Caps(max_params=100_000, max_steps=50, max_seconds=5, max_layers=4))
    config = GPTConfig(vocab_size=4, n_layer=1, n_embd=16, n_head=1, block_size=8)
    with pytest.raises(CapError, match="Layers 8 is over .* parameters"):
        lab.check(replace(config, n_layer=8, n_embd=256, n_head=4), TrainConfig())
    with pytest.raises(CapError, match="51 steps is over the limit of 50"):
        lab.check(config, TrainConfig(max_iters=51))
    assert lab.check(config, TrainConfig(max_iters=50, max_seconds=10_000)).max_seconds == 5
    # continuing from step 40 after 12 s of training: 50 new steps and 5 more seconds allowed
    cfg = lab.check(config, TrainConfig(max_iters=90), start_step=40, start_seconds=12.0)
    assert cfg.max_seconds == 17.0
    with pytest.raises(CapError, match="steps"):
        lab.check(config, TrainConfig(max_iters=91), start_step=40)


# ------------------------------------------------------------------------------ queue


@pytest.mark.parametrize("cap", [1, 2])
def test_queue_is_first_come_first_served_within_the_cap(cap):
    lab = Lab(Caps(max_concurrent=cap))
    order, now, most = [], [0], [0]
    lock, go = threading.Lock(), threading.Event()

    def learner(i):
        assert lab.acquire(i, lambda: False)
        with lock:
            order.append(i)
            now[0] += 1
            most[0] = max(most[0], now[0])
        go.wait(10)  # hold the slot until the test has looked at the queue
        time.sleep(0.05)
        with lock:
            now[0] -= 1
        lab.release(i)

    threads = []
    for i in range(1, 6):
        threads.append(threading.Thread(target=learner, args=(i,)))
        threads[-1].start()
        time.sleep(0.05)  # they arrive in order
    assert [lab.queue_position(i) for i in range(1, 6)] == [None] * cap + list(range(1, 6 - cap))
    assert lab.running == cap
    go.set()
    for t in threads:
        t.join(10)
    assert order == [1, 2, 3, 4, 5] and most[0] == cap and lab.running == 0


def test_stop_while_queued_cancels_without_training():
    lab = Lab(Caps(max_concurrent=1))
    assert lab.acquire(-1, lambda: False)  # another learner holds the only slot
    run = TrainingRun(lab, TEXT, "char", 0, TINY, tiny_cfg()).start()
    deadline = time.time() + 5
    while run.snapshot()["queue_position"] != 1 and time.time() < deadline:
        time.sleep(0.02)
    snap = run.snapshot()
    assert snap["queue_position"] == 1 and snap["status"] == "queued"
    assert status_line("run 1", snap) == "run 1: queued, number 1 in line"
    run.stop()
    snap = finish(run, 5)
    assert snap["status"] == "stopped" and snap["message"] == "Cancelled while waiting in the queue."
    assert run.trainer is None and not snap["steps"] and lab.queue_position(run.id) is None
    lab.release(-1)
    assert lab.running == 0


# ------------------------------------------------------------------------ how runs end


@pytest.mark.parametrize("outcome,status,text", [
    (Outcome(Ending.FINISHED, 300), "done", "Finished 300 steps."),
    (Outcome(Ending.REACHED_TARGET, 120, 1.88), "done",
     "Reached the target validation loss (1.8800) at step 120."),
    (Outcome(Ending.STOPPED, 32), "stopped", "Stopped by you at step 32."),
    (Outcome(Ending.TIMED_OUT, 1_500, 300), "timed out",
     "Stopped at this server's time limit of 300 s, at step 1,500."),
    (Outcome(Ending.DIVERGED, 7, float("nan")), "diverged", "The loss became nan at step 7"),
])
def test_each_outcome_has_its_status_and_one_period(outcome, status, text):
    assert STATUS_OF[outcome.ending] == status
    message = describe(outcome)
    assert message.startswith(text) and message.endswith(".") and ".." not in message
    assert set(STATUS_OF) == set(Ending)


def test_a_finished_run_and_a_diverged_run():
    lab = Lab(Caps(max_concurrent=2))
    good = TrainingRun(lab, TEXT, "char", 0, TINY, tiny_cfg(), "good").start()
    bad = TrainingRun(lab, TEXT, "char", 0, TINY, tiny_cfg(lr=1e6, grad_clip=0.0, eval_interval=5,
                                                           max_iters=200), "bad").start()
    g, b = finish(good), finish(bad)
    assert g["status"] == "done" and g["message"] == "Finished 40 steps." and g["eta_s"] is None
    assert [e["iter"] for e in g["evals"]] == [0, 20, 40] and g["step"] == 40
    assert b["status"] == "diverged" and "diverged" in b["message"]
    assert all("attention" not in e for e in g["evals"])  # kept once, in the snapshots


def test_a_failing_run_says_why_in_one_sentence():
    lab = Lab(Caps())
    run = TrainingRun(lab, "ab" * 5, "char", 0, TINY, tiny_cfg()).start()  # 9 tokens < context
    snap = finish(run, 30)
    assert snap["status"] == "failed" and snap["message"].startswith("The run failed: The training")
    assert snap["message"].endswith(".") and ".." not in snap["message"]


# ---------------------------------------------------------------- live view of a run


def test_snapshot_and_summary_are_live_while_training():
    """What the runs table and the sidebar show mid-run: the step, time and loss so far."""
    lab = Lab(Caps(max_concurrent=1))
    run = TrainingRun(lab, TEXT, "char", 0, TINY, tiny_cfg(max_iters=3000, eval_interval=1000)).start()
    deadline = time.time() + 60
    while len(run.snapshot()["steps"]) < 15 and time.time() < deadline:
        time.sleep(0.1)
    snap, row = run.snapshot(), run.summary()
    run.stop()
    finish(run)
    assert snap["status"] == "training" and snap["queue_position"] is None
    assert snap["step"] == snap["steps"][-1][0] >= 15
    assert snap["loss"] == pytest.approx(sum(l for _, l in snap["steps"][-10:]) / 10)
    assert snap["eta_s"] is not None and snap["eta_s"] > 0
    assert row["status"] == "training" and row["steps"] >= snap["step"] and row["time (s)"] > 0
    assert row["batch loss"] is not None and row["tokens/s"] > 0
    line = status_line("run 1", snap)
    assert line == (f"run 1: step {snap['step']:,} / 3,000 · loss {snap['loss']:.3f} · "
                    f"ETA {snap['eta_s']:,.0f} s")


def test_status_line_before_the_first_step():
    snap = {"queue_position": None, "status": "preparing", "step": 0, "max_iters": 10,
            "loss": None, "eta_s": None}
    assert status_line("run 3", snap) == "run 3: preparing the data"


def test_curve_rows_are_the_evaluations_and_the_rolling_mean_of_the_batch_loss():
    pd = pytest.importorskip("pandas")
    losses = torch.rand(1000, generator=torch.Generator().manual_seed(0)).tolist()
    snap = {"evals": [{"iter": 0, "train_loss": 4.0, "val_loss": 4.1},
                      {"iter": 1000, "train_loss": 2.0, "val_loss": 2.2}],
            "steps": list(zip(range(1, 1001), losses))}
    rows = curve_rows(snap, window=10, max_points=300)
    assert rows[:4] == [{"iter": 0, "loss": 4.0, "split": "train (evaluation)"},
                        {"iter": 0, "loss": 4.1, "split": "val (evaluation)"},
                        {"iter": 1000, "loss": 2.0, "split": "train (evaluation)"},
                        {"iter": 1000, "loss": 2.2, "split": "val (evaluation)"}]
    batch = rows[4:]
    want = pd.Series(losses).rolling(10, min_periods=1).mean()
    assert [r["iter"] for r in batch] == list(range(1, 1001, 3))  # every 3rd: at most ~300
    assert [r["loss"] for r in batch] == pytest.approx(want.iloc[::3].tolist())


def test_thin_and_spread():
    assert thin([0, 1, 2, 3, 4], 4) == [0, 2, 4] and thin([0, 1], 4) == [0, 1]
    kept = []
    for i in range(100):  # what a run does with its snapshots
        kept = thin(kept + [i], MAX_SNAPSHOTS)
    assert len(kept) <= MAX_SNAPSHOTS and kept[0] == 0 and kept[-1] == 99
    assert spread(list(range(7)), 3) == [0, 3, 6] and spread([1, 2], 4) == [1, 2]
    assert spread(list(range(10)), 4) == [0, 3, 6, 9]


# ------------------------------------------------------------------- a run's results


@pytest.fixture(scope="module")
def done_run():
    lab = Lab(Caps(max_concurrent=1))
    run = TrainingRun(lab, TEXT, "char", 0, TINY, tiny_cfg(max_iters=60, eval_interval=5)).start()
    finish(run)
    return run


def test_attention_snapshots_cover_every_layer_and_head(done_run):
    run = done_run
    T = len(run.snapshot_tokens())
    assert T == min(16, 24) and run.snapshot_tokens() == [run.tokenizer.token_text(int(i))
                                                           for i in run.trainer.snapshot_ids]
    for layer in range(2):
        for head in range(2):
            snaps = run.attention(layer, head)
            iters = [s for s, _ in snaps]
            assert len(snaps) <= MAX_SNAPSHOTS and iters == sorted(iters)
            assert iters[0] == 0 and iters[-1] == 60
            want = attention_maps(run.model.eval(), run.trainer.snapshot_ids.view(1, -1))[layer][head]
            torch.testing.assert_close(torch.tensor(snaps[-1][1]), want, atol=2e-3, rtol=0)
    with pytest.raises(IndexError):
        run.attention(2, 0)


def test_sampling_and_token_losses_of_a_run(done_run):
    run = done_run
    text = run.sample("To be", 30, temperature=0.8, top_k=5, seed=3)
    assert text == run.sample("To be", 30, temperature=0.8, top_k=5, seed=3)
    ids = run.tokenizer.encode("To be")
    want = generate(run.model, torch.tensor([ids]), 30, temperature=0.8, top_k=5,
                    generator=torch.Generator().manual_seed(3))
    assert text == run.tokenizer.decode(want[0].tolist())
    assert sample_text(run.model, run.tokenizer, "To be", 30, 0.8, 5, None, 4) != text
    scored = run.token_losses()
    ids = run.val_ids[:17]
    want = per_token_loss(run.model, ids)
    assert scored["tokens"] == [run.tokenizer.token_text(int(i)) for i in ids]
    assert scored["losses"][1:] == pytest.approx(want[1:]) and math.isnan(scored["losses"][0])
    assert scored["mean"] == pytest.approx(sum(want[1:]) / 16)


def test_forget_old_weights_keeps_the_newest_and_every_upload(done_run):
    raw = done_run.checkpoint_bytes()
    upload = LoadedRun.from_bytes(raw, "upload: a.pt", CAP)
    lab = Lab(Caps())
    runs = [upload]
    for i in range(3):
        run = TrainingRun(lab, TEXT, "char", 0, TINY, tiny_cfg(max_iters=1, eval_interval=1))
        runs.append(run.start())
        finish(run)
    forget_old_weights(runs, keep=2)
    assert [r.has_weights for r in runs] == [True, False, True, True]
    assert runs[1].model is None and runs[1].snapshot()["evals"]  # the curves stay


# -------------------------------------------------------------------- continue training


def test_continuing_a_run_extends_the_same_curve():
    """40 steps, then 20 more from its checkpoint: the same curve as 60 steps straight
    (the schedule decays over 60 steps in both)."""
    lab = Lab(Caps(max_concurrent=2))
    cfg = tiny_cfg(max_iters=60, lr_decay_iters=60)
    straight = TrainingRun(lab, TEXT, "char", 0, TINY, cfg, "straight").start()
    first = TrainingRun(lab, TEXT, "char", 0, TINY, replace(cfg, max_iters=40), "run 1").start()
    s, f = finish(straight), finish(first)
    more = TrainingRun.continuing(lab, first, TEXT, 20, "run 2").start()
    m = finish(more)
    assert m["status"] == "done" and more.parent == "run 1" and more.summary()["continues"] == "run 1"
    assert more.train_config.max_iters == 60 and more.train_config.lr_decay_iters == 60
    assert [e["iter"] for e in m["evals"]] == [0, 20, 40, 60] == [e["iter"] for e in s["evals"]]
    for a, b in zip(m["evals"], s["evals"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-3)
    assert [i for i, _ in m["steps"]] == list(range(1, 61))  # the parent's steps, then its own
    assert m["steps"][:40] == f["steps"]
    assert first.has_weights and first.snapshot()["step"] == 40  # the parent is untouched
    # an uploaded checkpoint continues the same way
    upload = LoadedRun.from_bytes(first.checkpoint_bytes(), "upload: run1.pt", CAP)
    again = finish(TrainingRun.continuing(lab, upload, TEXT, 20, "run 3").start())
    assert [e["val_loss"] for e in again["evals"]] == pytest.approx([e["val_loss"] for e in m["evals"]],
                                                                    abs=1e-3)


def test_continuing_needs_a_full_checkpoint_and_respects_the_caps(done_run):
    ckpt = done_run.trainer.checkpoint()
    del ckpt["optimizer"]
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    upload = LoadedRun.from_bytes(buffer.getvalue(), "upload: weights-only.pt", CAP)
    with pytest.raises(CheckpointError, match="no optimizer state"):
        TrainingRun.continuing(Lab(Caps()), upload, TEXT, 10, "run 9")
    with pytest.raises(CapError, match="11 steps is over the limit of 10"):
        TrainingRun.continuing(Lab(Caps(max_steps=10)), done_run, TEXT, 11, "run 9")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint"):
        LoadedRun.from_bytes(b"junk", "upload: junk.pt", CAP)
    with pytest.raises(CheckpointError, match="parameters; the limit here is 1,000"):
        LoadedRun.from_bytes(done_run.checkpoint_bytes(), "upload: big.pt", 1_000)


def test_a_loaded_run_reads_like_a_run(done_run):
    upload = LoadedRun.from_bytes(done_run.checkpoint_bytes(), "upload: mine.pt", CAP)
    row, mine = upload.summary(), done_run.summary()
    assert row["status"] == "uploaded" and row["steps"] == 60 == mine["steps"]
    assert row["val loss"] == mine["val loss"] and row["time (s)"] == pytest.approx(mine["time (s)"])
    assert upload.sample("To", 20, seed=1) == done_run.sample("To", 20, seed=1)
