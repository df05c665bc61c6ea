import json
import math
import os
import subprocess
import sys

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
                     "--out", str(tmp_path / "out")])
    assert all(set(l) >= {"iter", "train_loss", "val_loss", "elapsed_s", "tokens_per_s"} for l in lines)
    assert lines[-1]["val_loss"] <= 2.5 and all(l["val_loss"] > 2.5 for l in lines[:-1])
    assert lines[-1]["iter"] < 300
    assert load_checkpoint(tmp_path / "out" / "ckpt.pt")["step"] == lines[-1]["iter"]


def test_torchrun_two_processes_match_one(corpus_file):
    args = ["--corpus", str(corpus_file), *CLI_ARGS, "--max-iters", "30", "--eval-interval", "15"]
    one = run_cli(args)
    two = run_cli(args, launcher=[sys.executable, "-m", "torch.distributed.run",
                                  "--standalone", "--nproc_per_node", "2", "-m"])
    assert [l["iter"] for l in one] == [l["iter"] for l in two]
    for a, b in zip(one, two):
        assert b["val_loss"] == pytest.approx(a["val_loss"], abs=2e-3)
