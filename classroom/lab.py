"""Training runs in background threads for the hosted app: caps, a queue, snapshots.

`TrainingRun` owns one Trainer in a daemon thread; the UI polls `snapshot()` and never
blocks. Every run passes through `Lab`, which enforces the host's caps (parameters, steps,
wall time) and a global limit on concurrent runs: extra runs wait in a queue and say so.
Torch's intra-op threads are split between the concurrent runs so they do not thrash.
"""
from __future__ import annotations

import io
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field, replace

import torch

from gptcore.budget import num_params
from gptcore.checkpoint import save_checkpoint
from gptcore.model import GPT, GPTConfig
from gptcore.trainer import Ending, TrainConfig, Trainer, prepare_data


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Caps:
    """Limits a host may tune with environment variables (see README)."""

    max_params: int = _env_int("GPTCORE_MAX_PARAMS", 3_000_000)
    max_steps: int = _env_int("GPTCORE_MAX_STEPS", 5_000)
    max_seconds: int = _env_int("GPTCORE_MAX_SECONDS", 300)
    # One run per two cores: each run gets two threads (a lone learner trains at full speed).
    max_concurrent: int = max(1, _env_int("GPTCORE_MAX_CONCURRENT_RUNS", (os.cpu_count() or 2) // 2))
    max_corpus_chars: int = _env_int("GPTCORE_MAX_CORPUS_CHARS", 2_000_000)


class CapError(ValueError):
    """A requested run is outside the host's caps; the message says which and why."""


class Lab:
    """Process-wide: admits runs within the caps and queues those beyond the concurrency cap."""

    def __init__(self, caps: Caps | None = None):
        self.caps = caps or Caps()
        self._cond = threading.Condition()
        self._running: set[int] = set()
        self._waiting: list[int] = []
        self.threads_per_run = max(1, (os.cpu_count() or 1) // self.caps.max_concurrent)
        # Each small torch op releases the GIL and must win it back; with several busy threads
        # (runs, page reruns) the default 5 ms hand-over makes a 20 ms step take half a second.
        sys.setswitchinterval(0.0005)

    def check(self, model_config: GPTConfig, train_config: TrainConfig) -> TrainConfig:
        """Refuse what exceeds the caps; returns the config with the time cap applied."""
        n = num_params(model_config)
        if n > self.caps.max_params:
            raise CapError(f"This model has {n:,} parameters; the limit here is "
                           f"{self.caps.max_params:,}. Use fewer layers or a smaller width.")
        if train_config.max_iters > self.caps.max_steps:
            raise CapError(f"{train_config.max_iters:,} steps is over the limit of "
                           f"{self.caps.max_steps:,} steps per run.")
        seconds = min(train_config.max_seconds or self.caps.max_seconds, self.caps.max_seconds)
        return replace(train_config, max_seconds=seconds)

    def acquire(self, run_id: int, cancelled) -> bool:
        """Block until a slot is free (False if the run was cancelled while waiting)."""
        with self._cond:
            self._waiting.append(run_id)
            try:
                while len(self._running) >= self.caps.max_concurrent or self._waiting[0] != run_id:
                    if cancelled():
                        return False
                    self._cond.wait(timeout=0.2)
                self._running.add(run_id)
                return True
            finally:
                self._waiting.remove(run_id)
                self._cond.notify_all()

    def release(self, run_id: int) -> None:
        with self._cond:
            self._running.discard(run_id)
            self._cond.notify_all()

    def queue_position(self, run_id: int) -> int | None:
        """1 for the next run to start, None if not waiting."""
        with self._cond:
            return self._waiting.index(run_id) + 1 if run_id in self._waiting else None

    @property
    def running(self) -> int:
        with self._cond:
            return len(self._running)


_ids = iter(range(1, 1 << 62))
_ids_lock = threading.Lock()


def _next_id() -> int:
    with _ids_lock:
        return next(_ids)


STATUS_OF = {Ending.FINISHED: "done", Ending.REACHED_TARGET: "done", Ending.STOPPED: "stopped",
             Ending.TIMED_OUT: "timed out", Ending.DIVERGED: "diverged"}


def describe(outcome) -> str:
    """How a run ended, in the lab's words."""
    e, step, value = outcome.ending, outcome.step, outcome.value
    if e is Ending.FINISHED:
        return f"Finished {step:,} steps."
    if e is Ending.REACHED_TARGET:
        return f"Reached the target validation loss ({value:.4f}) at step {step:,}."
    if e is Ending.STOPPED:
        return f"Stopped by you at step {step:,}."
    if e is Ending.TIMED_OUT:
        return f"Stopped at this server's time limit of {value:.0f} s, at step {step:,}."
    return (f"The loss became {value} at step {step:,}: training diverged (the learning rate "
            "is probably too high). The weights from the last good evaluation were kept.")


@dataclass
class RunState:
    """What the UI reads. Written by the worker under `lock`, copied out by `snapshot()`."""

    status: str = "queued"  # queued, preparing, training, done, stopped, timed out, diverged, failed
    message: str = ""
    outcome: object = None  # gptcore.trainer.Outcome once the trainer has ended
    steps: list = field(default_factory=list)  # (iter, loss)
    evals: list = field(default_factory=list)  # eval records (with sample and attention)
    tokens_per_s: float = 0.0
    elapsed_s: float = 0.0
    started: float = 0.0
    finished: float | None = None


class TrainingRun:
    """One learner's run: data preparation, training and results, in a daemon thread."""

    def __init__(self, lab: Lab, text: str, tokenizer_kind: str, vocab_size: int,
                 model_config: GPTConfig, train_config: TrainConfig, label: str = "",
                 snapshot_layer: int = 0, snapshot_head: int = 0):
        if len(text) > lab.caps.max_corpus_chars:
            text = text[: lab.caps.max_corpus_chars]
        self.lab, self.id = lab, _next_id()
        self.train_config = lab.check(model_config, train_config)
        self.model_config, self.label = model_config, label or f"run {self.id}"
        self.text, self.tokenizer_kind, self.vocab_size = text, tokenizer_kind, vocab_size
        self.snapshot_layer, self.snapshot_head = snapshot_layer, snapshot_head
        self.state = RunState(started=time.time())
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.trainer: Trainer | None = None
        self.tokenizer = None
        self.model: GPT | None = None
        self.val_ids = None
        self.thread = threading.Thread(target=self._work, name=f"gptcore-run-{self.id}",
                                       daemon=True)

    # ------------------------------------------------------------------- control
    def start(self) -> "TrainingRun":
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def active(self) -> bool:
        return self.thread.is_alive()

    def snapshot(self) -> dict:
        with self.lock:
            s = self.state
            out = {"status": s.status, "message": s.message, "steps": list(s.steps),
                   "evals": list(s.evals), "tokens_per_s": s.tokens_per_s,
                   "elapsed_s": s.elapsed_s, "finished": s.finished}
        out["queue_position"] = self.lab.queue_position(self.id)
        out["max_iters"] = self.train_config.max_iters
        done_steps = out["steps"][-1][0] if out["steps"] else 0
        rate = done_steps / out["elapsed_s"] if out["elapsed_s"] > 0 else 0
        out["eta_s"] = (out["max_iters"] - done_steps) / rate if rate > 0 else None
        return out

    def _set(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self.state, k, v)

    # -------------------------------------------------------------------- worker
    def _work(self):
        if not self.lab.acquire(self.id, self._stop.is_set):
            self._set(status="stopped", message="Cancelled while waiting in the queue.",
                      finished=time.time())
            return
        try:
            # OpenMP's team size is per calling thread: set it here, in the worker, or each
            # run would use every core and concurrent runs would thrash
            torch.set_num_threads(self.lab.threads_per_run)
            self._set(status="preparing", message="Tokenizing the corpus…")
            self.tokenizer, train_ids, self.val_ids = prepare_data(
                self.text, self.tokenizer_kind, self.vocab_size, self.train_config.val_fraction)
            config = replace(self.model_config, vocab_size=self.tokenizer.vocab_size)
            self.model_config = config
            torch.manual_seed(self.train_config.seed)
            self.model = GPT(config)
            self.trainer = Trainer(self.model, train_ids, self.val_ids, self.train_config,
                                   self.tokenizer, self._on_event,
                                   snapshot_layer=min(self.snapshot_layer, config.n_layer - 1),
                                   snapshot_head=min(self.snapshot_head, config.n_head - 1))
            self._set(status="training", message="Training…")
            outcome = self.trainer.run(should_stop=self._stop.is_set).outcome
            self._set(status=STATUS_OF[outcome.ending], message=describe(outcome),
                      outcome=outcome, finished=time.time())
        except Exception as e:  # noqa: BLE001 - the learner gets the reason, the app lives on
            self._set(status="failed", message=f"The run failed: {e}", finished=time.time())
        finally:
            if self.model is not None:
                self.model.eval()  # read-only from here: lessons 1 and 3 sample from it
            self.lab.release(self.id)

    def _on_event(self, event: dict) -> None:
        with self.lock:
            if event["type"] == "step":
                self.state.steps.append((event["iter"], event["loss"]))
                self.state.tokens_per_s = event["tokens_per_s"]
                self.state.elapsed_s = event["elapsed_s"]
            elif event["type"] == "eval":
                self.state.evals.append({k: v for k, v in event.items() if k != "type"})

    # ------------------------------------------------------------------- results
    def checkpoint_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(self.trainer.checkpoint(), buffer)
        return buffer.getvalue()

    def save(self, path) -> None:
        save_checkpoint(self.trainer.checkpoint(), path)

    def summary(self) -> dict:
        snap = self.snapshot()
        last = snap["evals"][-1] if snap["evals"] else {}
        c, t = self.model_config, self.train_config
        val = last.get("val_loss")
        return {"run": self.label, "status": snap["status"],
                "model": f"{c.n_layer}L×{c.n_head}H×{c.n_embd}, ctx {c.block_size}",
                "tokenizer": self.tokenizer_kind, "params": num_params(c),
                "steps": snap["steps"][-1][0] if snap["steps"] else last.get("iter", 0),
                "batch": t.batch_size, "lr": t.lr,
                "train loss": last.get("train_loss"), "val loss": val,
                "perplexity": round(math.exp(val), 2) if val is not None else None,
                "time (s)": round(snap["elapsed_s"], 1),
                "tokens/s": round(snap["tokens_per_s"])}


class LoadedRun:
    """A checkpoint uploaded by the learner, shown beside the runs trained here."""

    active = False

    def __init__(self, ckpt: dict, raw: bytes, label: str):
        self.id = _next_id()
        self.label = label
        self.model, self.tokenizer = ckpt["model_obj"], ckpt["tokenizer_obj"]
        self.model_config = self.model.config
        self.train_config = TrainConfig(**{k: v for k, v in ckpt.get("train_config", {}).items()
                                           if k in TrainConfig.__dataclass_fields__})
        self.tokenizer_kind = ckpt["tokenizer"]["kind"] if ckpt.get("tokenizer") else "?"
        self.history = list(ckpt.get("history", []))
        self.step = int(ckpt.get("step", 0))
        self.val_ids = None
        self._raw = raw

    def snapshot(self) -> dict:
        last = self.history[-1] if self.history else {}
        return {"status": "uploaded", "message": f"Uploaded checkpoint at step {self.step}.",
                "steps": [], "evals": self.history, "elapsed_s": last.get("elapsed_s", 0.0),
                "tokens_per_s": last.get("tokens_per_s", 0), "finished": True,
                "queue_position": None, "max_iters": self.step, "eta_s": None}

    def checkpoint_bytes(self) -> bytes:
        return self._raw

    def stop(self) -> None:
        pass

    summary = TrainingRun.summary
