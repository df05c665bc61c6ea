"""Training runs in background threads for the hosted app: caps, a queue, snapshots.

`TrainingRun` owns one Trainer in a daemon thread; the UI polls `snapshot()` and never
blocks. Every run passes through `Lab`, which enforces the host's caps (model shape,
parameters, steps, wall time) and a global limit on concurrent runs: extra runs wait in a
queue and say so. Torch's intra-op threads are split between the concurrent runs so they do
not thrash. A finished or uploaded run can be continued: a new run resumes its checkpoint.
"""
from __future__ import annotations

import copy
import io
import math
import os
import sys
import threading
import time
from dataclasses import dataclass, field, fields, replace

import torch

from classroom.uploads import load_upload
from gptcore.budget import num_params
from gptcore.checkpoint import CheckpointError, save_checkpoint
from gptcore.data import train_val_split
from gptcore.generate import generate_ids, prepare_prompt
from gptcore.model import GPT, GPTConfig, attention_maps
from gptcore.tokenizers import tokenizer_from_dict
from gptcore.trainer import (Ending, TrainConfig, Trainer, eta_seconds, init_model, per_token_loss,
                             perplexity, prepare_data, smooth)


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
    # The model's shape: the bounds of lesson 5's sliders, checked again before a run starts.
    max_layers: int = _env_int("GPTCORE_MAX_LAYERS", 8)
    max_heads: int = _env_int("GPTCORE_MAX_HEADS", 16)
    max_width: int = _env_int("GPTCORE_MAX_WIDTH", 512)
    max_context: int = _env_int("GPTCORE_MAX_CONTEXT", 256)

    def problems(self, config: GPTConfig) -> list[str]:
        """Each cap the model is over, in a sentence that names it; [] if it fits."""
        out = [f"{what} {value:,} is over this server's cap of {cap:,}."
               for what, value, cap in [("Layers", config.n_layer, self.max_layers),
                                        ("Heads", config.n_head, self.max_heads),
                                        ("Width", config.n_embd, self.max_width),
                                        ("Context", config.block_size, self.max_context)]
               if value > cap]
        n = num_params(config)
        if n > self.max_params:
            out.append(f"This model has {n:,} parameters; the limit here is {self.max_params:,}.")
        return out

    def nearest(self, config: GPTConfig) -> GPTConfig | None:
        """The model within the caps nearest to `config`: the same settings and vocabulary,
        layers, heads and context cut to their caps, then the widest width that fits the
        parameter cap (fewer layers only if no width fits). Width goes first because the
        embeddings grow with it: with GPT-2's 50,257 tokens, wte alone is 50,257 × width.
        Widths stay multiples of the heads and of 8 (the width slider's step)."""
        heads = min(config.n_head, self.max_heads)
        grid = math.lcm(8, heads)
        widest = max(min(config.n_embd, self.max_width) // grid * grid, grid)
        for layers in range(min(config.n_layer, self.max_layers), 0, -1):
            for width in range(widest, 0, -grid):
                candidate = replace(config, n_layer=layers, n_head=heads, n_embd=width,
                                    block_size=min(config.block_size, self.max_context))
                if num_params(candidate) <= self.max_params:
                    return candidate
        return None


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

    def check(self, model_config: GPTConfig, train_config: TrainConfig, start_step: int = 0,
              start_seconds: float = 0.0) -> TrainConfig:
        """Refuse what exceeds the caps; returns the config with the time cap applied. A run
        that continues another from `start_step` is capped on its own new steps and seconds."""
        problems = self.caps.problems(model_config)
        new_steps = train_config.max_iters - start_step
        if new_steps > self.caps.max_steps:
            problems.append(f"{new_steps:,} steps is over the limit of {self.caps.max_steps:,} "
                            "steps per run.")
        if problems:
            raise CapError(" ".join(problems))
        seconds = min(train_config.max_seconds or self.caps.max_seconds, self.caps.max_seconds)
        return replace(train_config, max_seconds=start_seconds + seconds)

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
MAX_SNAPSHOTS = 12  # attention snapshots kept per run, spread over its evaluations


def describe(outcome) -> str:
    """How a run ended, in the lab's words: one or two sentences, each ending in one period."""
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


def thin(items: list, limit: int) -> list:
    """Keep at most `limit` items spread over the list: when full, every other one goes
    (the first and the newest stay). thin([0, 1, 2, 3, 4], 4) -> [0, 2, 4]."""
    return items if len(items) <= limit else items[:-1:2] + items[-1:]


def spread(items: list, k: int) -> list:
    """k items evenly spread over the list, the first and the last included:
    spread([0, 1, 2, 3, 4, 5, 6], 3) -> [0, 3, 6]."""
    if len(items) <= k:
        return list(items)
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def sample_text(model, tokenizer, prompt: str, n_tokens: int, temperature: float = 1.0,
                top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> str:
    """The prompt (its last context's worth, or the start token if empty) continued by
    `n_tokens` tokens drawn with a generator seeded by `seed`."""
    ids = prepare_prompt(tokenizer, prompt, model.config.block_size).ids
    new = generate_ids(model, ids, n_tokens, seed, temperature, top_k, top_p)
    return tokenizer.decode(ids + new)


@dataclass
class RunState:
    """What the UI reads. Written by the worker under `lock`, copied out by `snapshot()`."""

    status: str = "queued"  # queued, preparing, training, done, stopped, timed out, diverged, failed
    message: str = ""
    outcome: object = None  # gptcore.trainer.Outcome once the trainer has ended
    steps: list = field(default_factory=list)  # (iter, loss)
    evals: list = field(default_factory=list)  # eval records (with their text sample)
    snapshots: list = field(default_factory=list)  # (iter, attention (L, nh, T, T) float16)
    tokens_per_s: float = 0.0
    elapsed_s: float = 0.0
    started: float = 0.0
    finished: float | None = None


class TrainingRun:
    """One learner's run: data preparation, training and results, in a daemon thread.

    With `resume` (a checkpoint dict, see `continuing`) the run picks up where that
    checkpoint stopped: same weights, optimizer, data order and curves, more steps.
    """

    def __init__(self, lab: Lab, text: str, tokenizer_kind: str, vocab_size: int,
                 model_config: GPTConfig, train_config: TrainConfig, label: str = "",
                 resume: dict | None = None, parent: str = "", history: tuple = ((), ())):
        if len(text) > lab.caps.max_corpus_chars:
            text = text[: lab.caps.max_corpus_chars]
        self.lab, self.id = lab, _next_id()
        start_step = int(resume["step"]) if resume else 0
        start_seconds = float(resume.get("train_seconds", 0.0)) if resume else 0.0
        self.train_config = lab.check(model_config, train_config, start_step, start_seconds)
        self.model_config, self.label = model_config, label or f"run {self.id}"
        self.text, self.tokenizer_kind, self.vocab_size = text, tokenizer_kind, vocab_size
        self.resume, self.parent = resume, parent
        steps, evals = history  # the parent's curves, which this run extends
        self.state = RunState(started=time.time(), steps=list(steps), evals=list(evals))
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.trainer: Trainer | None = None
        self.tokenizer = None
        self.model: GPT | None = None
        self.val_ids = None
        self.thread = threading.Thread(target=self._work, name=f"gptcore-run-{self.id}",
                                       daemon=True)

    @classmethod
    def continuing(cls, lab: Lab, parent, text: str, steps: int, label: str) -> "TrainingRun":
        """A new run that continues `parent` (a finished TrainingRun or a LoadedRun) for
        `steps` more steps on `text`. The learning rate keeps the parent's schedule: past its
        decay the run goes on at min_lr, so the curve extends rather than restarts."""
        ckpt = parent.resume_state()
        if ckpt.get("tokenizer") is None:
            raise CheckpointError("This checkpoint has no tokenizer, so it cannot go on training.")
        saved = ckpt.get("train_config") or {}
        cfg = TrainConfig(**{f.name: saved[f.name] for f in fields(TrainConfig) if f.name in saved})
        step = int(ckpt["step"])
        cfg = replace(cfg, max_iters=step + steps, max_seconds=None,
                      lr_decay_iters=cfg.lr_decay_iters or cfg.max_iters)
        config = GPTConfig(**ckpt["model_config"])
        curves = parent.snapshot()
        return cls(lab, text, ckpt["tokenizer"]["kind"], config.vocab_size, config, cfg, label,
                   resume=ckpt, parent=parent.label, history=(curves["steps"], curves["evals"]))

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
        """A copy of the run's state for the UI, with its live step, loss and ETA."""
        with self.lock:
            s = self.state
            out = {"status": s.status, "message": s.message, "steps": list(s.steps),
                   "evals": list(s.evals), "tokens_per_s": s.tokens_per_s,
                   "elapsed_s": s.elapsed_s, "finished": s.finished}
        out["queue_position"] = self.lab.queue_position(self.id)
        out["max_iters"] = self.train_config.max_iters
        last = out["evals"][-1]["iter"] if out["evals"] else 0
        out["step"] = out["steps"][-1][0] if out["steps"] else last
        recent = [loss for _, loss in out["steps"][-10:]]
        out["loss"] = smooth(recent, 10)[-1] if recent else None
        out["eta_s"] = (eta_seconds(out["step"], self.train_config, out["elapsed_s"], out["evals"])
                        if out["status"] == "training" else None)
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
            cfg = self.train_config
            if self.resume is not None:  # the checkpoint's tokenizer, so the ids mean the same
                self.tokenizer = tokenizer_from_dict(self.resume["tokenizer"])
                ids = torch.tensor(self.tokenizer.encode(self.text), dtype=torch.long)
                train_ids, self.val_ids = train_val_split(ids, cfg.val_fraction)
            else:
                self.tokenizer, train_ids, self.val_ids = prepare_data(
                    self.text, self.tokenizer_kind, self.vocab_size, cfg.val_fraction)
                self.model_config = replace(self.model_config, vocab_size=self.tokenizer.vocab_size)
            self.model = init_model(self.model_config, cfg.seed)
            self.trainer = Trainer(self.model, train_ids, self.val_ids, cfg, self.tokenizer,
                                   self._on_event)
            if self.resume is not None:
                self.trainer.load_state(self.resume)
                self.resume = None  # its tensors are in the model and optimizer now
            self._set(status="training", message="Training…")
            outcome = self.trainer.run(should_stop=self._stop.is_set).outcome
            self._set(status=STATUS_OF[outcome.ending], message=describe(outcome),
                      outcome=outcome, finished=time.time())
        except Exception as e:  # noqa: BLE001 - the learner gets the reason, the app lives on
            reason = str(e).rstrip(".") or e.__class__.__name__
            self._set(status="failed", message=f"The run failed: {reason}.", finished=time.time())
        finally:
            if self.model is not None:
                self.model.eval()  # read-only from here: lessons 1 and 3 sample from it
            self.lab.release(self.id)

    def _on_event(self, event: dict) -> None:
        if event["type"] == "eval":  # in the training thread, between two steps
            maps = self._attention_now()
        with self.lock:
            if event["type"] == "step":
                self.state.steps.append((event["iter"], event["loss"]))
                self.state.tokens_per_s = event["tokens_per_s"]
                self.state.elapsed_s = event["elapsed_s"]
            elif event["type"] == "eval":
                # every layer and head is in the snapshots: the trainer's one head is not kept
                self.state.evals.append({k: v for k, v in event.items()
                                         if k not in ("type", "attention")})
                self.state.snapshots = thin(self.state.snapshots + [(event["iter"], maps)],
                                            MAX_SNAPSHOTS)

    def _attention_now(self) -> torch.Tensor:
        """Every layer's and head's attention on the snapshot tokens: (L, nh, T, T)."""
        was_training = self.model.training
        self.model.eval()  # no dropout in a picture
        maps = attention_maps(self.model, self.trainer.snapshot_ids.view(1, -1))
        self.model.train(was_training)
        return torch.stack(maps).to(torch.float16)

    # ------------------------------------------------------------------- results
    def attention(self, layer: int, head: int) -> list[tuple[int, list[list[float]]]]:
        """(step, weights T × T) of one layer and head at each kept snapshot."""
        with self.lock:
            snaps = list(self.state.snapshots)
        return [(step, maps[layer, head].float().tolist()) for step, maps in snaps]

    def latest_attention(self) -> tuple[int, torch.Tensor] | None:
        """(step, every layer's and head's attention (L, nh, T, T)) at the latest snapshot."""
        with self.lock:
            return self.state.snapshots[-1] if self.state.snapshots else None

    def snapshot_tokens(self) -> list[str]:
        """The text of the tokens the attention snapshots look at."""
        if self.trainer is None:
            return []
        return [self.tokenizer.token_text(int(i)) for i in self.trainer.snapshot_ids]

    def token_losses(self) -> dict | None:
        """The model's loss on each of the first held-out tokens (one context's worth)."""
        if self.model is None or self.val_ids is None or len(self.val_ids) < 3:
            return None
        ids = self.val_ids[: self.model.config.block_size + 1]
        losses = per_token_loss(self.model, ids)
        finite = [v for v in losses if v == v]  # the first token has no loss (NaN)
        return {"tokens": [self.tokenizer.token_text(int(i)) for i in ids], "losses": losses,
                "mean": sum(finite) / len(finite)}

    def sample(self, prompt: str, n_tokens: int, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> str:
        return sample_text(self.model, self.tokenizer, prompt, n_tokens, temperature, top_k,
                           top_p, seed)

    @property
    def has_weights(self) -> bool:
        """Finished with its trainer kept: it can be downloaded, sampled and continued."""
        return not self.active and self.trainer is not None

    def forget_weights(self) -> None:
        """Keep the curves, free the model (bounded memory per learner)."""
        self.trainer, self.model = None, None

    def checkpoint_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(self.trainer.checkpoint(), buffer)
        return buffer.getvalue()

    def resume_state(self) -> dict:
        """A private copy of the checkpoint (through bytes, as an upload would come): the
        continuing run must not share the optimizer's tensors with this one."""
        return torch.load(io.BytesIO(self.checkpoint_bytes()), map_location="cpu",
                          weights_only=True)

    def save(self, path) -> None:
        save_checkpoint(self.trainer.checkpoint(), path)

    def summary(self) -> dict:
        """One row of the runs table: live while the run trains."""
        snap = self.snapshot()
        last = snap["evals"][-1] if snap["evals"] else {}
        c, t = self.model_config, self.train_config
        val = last.get("val_loss")
        return {"run": self.label, "status": snap["status"],
                "model": f"{c.n_layer}L×{c.n_head}H×{c.n_embd}, ctx {c.block_size}",
                "tokenizer": self.tokenizer_kind, "params": num_params(c),
                "steps": snap["step"], "batch": t.batch_size, "lr": t.lr,
                "batch loss": snap["loss"], "train loss": last.get("train_loss"), "val loss": val,
                "perplexity": perplexity(val) if val is not None else None,
                "time (s)": snap["elapsed_s"], "tokens/s": snap["tokens_per_s"],
                "continues": self.parent}


class LoadedRun:
    """A checkpoint uploaded by the learner, shown beside the runs trained here.

    `ckpt` is a checked checkpoint, as `classroom.uploads.load_upload` (or
    `gptcore.checkpoint.load_checkpoint`) returns it: its fields plus "model_obj" and
    "tokenizer_obj"; `raw` is the file, kept for downloads.
    """

    active = False
    has_weights = True
    parent = ""

    def __init__(self, ckpt: dict, raw: bytes, label: str):
        self.id = _next_id()
        self.label = label
        self.model, self.tokenizer = ckpt["model_obj"], ckpt["tokenizer_obj"]
        self._ckpt = {k: v for k, v in ckpt.items() if k not in ("model_obj", "tokenizer_obj")}
        self.model_config = self.model.config
        self.train_config = TrainConfig(**ckpt.get("train_config", {}))
        self.tokenizer_kind = ckpt["tokenizer"]["kind"]
        self.history = list(ckpt.get("history", []))
        self.step = int(ckpt.get("step", 0))
        self.train_seconds = float(ckpt.get("train_seconds", 0.0))
        self.val_ids = None
        self._raw = raw

    @classmethod
    def from_bytes(cls, raw: bytes, label: str, max_params: int) -> "LoadedRun":
        """An uploaded file, refused or checked whole by classroom.uploads (CheckpointError
        with a plain message)."""
        return cls(load_upload(raw, max_params), raw, label)

    def snapshot(self) -> dict:
        last = self.history[-1] if self.history else {}
        return {"status": "uploaded", "message": f"Uploaded checkpoint at step {self.step:,}.",
                "steps": [], "evals": self.history, "elapsed_s": self.train_seconds,
                "tokens_per_s": last.get("tokens_per_s", 0), "finished": True,
                "queue_position": None, "max_iters": self.step, "step": self.step,
                "loss": None, "eta_s": None}

    def checkpoint_bytes(self) -> bytes:
        return self._raw

    def resume_state(self) -> dict:
        """A private copy: each continuation gets its own optimizer tensors to update."""
        missing = [k for k in ("optimizer", "generator") if self._ckpt.get(k) is None]
        if missing:
            raise CheckpointError(f"This checkpoint has no {' or '.join(missing)} state, so it "
                                  "cannot continue exactly where it stopped.")
        return copy.deepcopy(self._ckpt)

    def sample(self, prompt: str, n_tokens: int, temperature: float = 1.0,
               top_k: int | None = None, top_p: float | None = None, seed: int = 0) -> str:
        return sample_text(self.model, self.tokenizer, prompt, n_tokens, temperature, top_k,
                           top_p, seed)

    def attention(self, layer: int, head: int) -> list:
        return []

    def latest_attention(self) -> None:
        return None

    def snapshot_tokens(self) -> list[str]:
        return []

    def token_losses(self) -> dict | None:
        return None

    def stop(self) -> None:
        pass

    summary = TrainingRun.summary


# ---------------------------------------------------------------------- a learner's runs


def forget_old_weights(runs: list, keep: int) -> None:
    """Only the newest `keep` trained runs keep their model and optimizer; older ones keep
    their curves. Uploads are the learner's own files and stay."""
    trained = [r for r in runs if isinstance(r, TrainingRun) and r.trainer is not None
               and not r.active]
    for run in trained[:-keep] if keep else trained:
        run.forget_weights()


def curve_rows(snapshot: dict, window: int = 10, max_points: int = 300) -> list[dict]:
    """The loss chart's points: train and val at each evaluation, and the batch loss
    smoothed over `window` steps, thinned to about `max_points` points."""
    rows = [{"iter": e["iter"], "loss": e[f"{split}_loss"], "split": f"{split} (evaluation)"}
            for e in snapshot["evals"] for split in ("train", "val")]
    if snapshot["steps"]:
        iters = [i for i, _ in snapshot["steps"]]
        smoothed = smooth([loss for _, loss in snapshot["steps"]], window)
        stride = max(1, len(iters) // max_points)
        rows += [{"iter": i, "loss": v, "split": "train (batch, smoothed)"}
                 for i, v in list(zip(iters, smoothed))[::stride]]
    return rows


def status_line(label: str, snapshot: dict) -> str:
    """A run's progress in one line: "run 2: step 120 / 300 · loss 2.131 · ETA 14 s"."""
    if snapshot["queue_position"]:
        return f"{label}: queued, number {snapshot['queue_position']} in line"
    if snapshot["status"] in ("queued", "preparing"):
        return f"{label}: preparing the data"
    parts = [f"{label}: step {snapshot['step']:,} / {snapshot['max_iters']:,}"]
    if snapshot["loss"] is not None:
        parts.append(f"loss {snapshot['loss']:.3f}")
    if snapshot["eta_s"] is not None:
        parts.append(f"ETA {snapshot['eta_s']:,.0f} s")
    return " · ".join(parts)
