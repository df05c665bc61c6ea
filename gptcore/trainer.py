"""The training loop: AdamW, warmup + cosine decay, clipping, exact evaluation.

The trainer never prints or draws: it reports through a callback (`on_event`), so the app can
chart it and the CLI can print JSON lines (as minGPT's trainer does). Validation loss is
exact and comparable: the whole validation split, cut into non-overlapping windows. A
non-finite loss stops the run, puts back the last good weights and says why. How a run ended
is a small typed value, `Outcome`.

Under torchrun each process takes its slice of one global batch drawn with a shared seed,
so DistributedDataParallel's averaged gradient equals the one-process gradient.
"""
from __future__ import annotations

import enum
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from gptcore.checkpoint import FORMAT, save_checkpoint
from gptcore.data import eval_batches, random_batch, train_val_split
from gptcore.generate import generate
from gptcore.model import GPT
from gptcore.tokenizers import Tokenizer, build_tokenizer


@dataclass
class TrainConfig:
    batch_size: int = 12  # global batch: split across processes under torchrun
    max_iters: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # defaults to max_iters
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 turns clipping off
    eval_interval: int = 250
    eval_train_tokens: int = 32_768  # train loss on a fixed slice this long (val is exact)
    val_fraction: float = 0.1
    seed: int = 1337
    target_val_loss: float | None = None
    # With a target: first check the loss on this many validation tokens, and pay for the
    # whole split only when that check is within `screen_margin` of the target.
    eval_screen_tokens: int | None = None
    screen_margin: float = 0.05
    max_seconds: float | None = None
    sample_tokens: int = 200
    device: str = "auto"
    compile: bool = False

    def __post_init__(self):
        if self.batch_size < 1 or self.max_iters < 1 or self.eval_interval < 1:
            raise ValueError("batch_size, max_iters and eval_interval must be at least 1.")
        if not self.lr > 0:
            raise ValueError("The learning rate must be positive.")


def prepare_data(text: str, tokenizer_kind: str, vocab_size: int, val_fraction: float):
    """Tokenize a corpus and split it by position: (tokenizer, train_ids, val_ids)."""
    tokenizer = build_tokenizer(tokenizer_kind, text, vocab_size)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_ids, val_ids = train_val_split(ids, val_fraction)
    return tokenizer, train_ids, val_ids


def lr_at(it: int, cfg: TrainConfig) -> float:
    """Linear warmup to cfg.lr over warmup_iters, then cosine decay to min_lr at lr_decay_iters.

        lr(t) = min_lr + ½ (1 + cos(π · (t - warmup) / (decay - warmup))) · (lr - min_lr)
    """
    decay = cfg.lr_decay_iters or cfg.max_iters
    if it < cfg.warmup_iters:
        return cfg.lr * (it + 1) / (cfg.warmup_iters + 1)
    if it >= decay:
        return cfg.min_lr
    ratio = (it - cfg.warmup_iters) / max(1, decay - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)


def pick_device(name: str = "auto") -> torch.device:
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices only (not on biases, LayerNorms or embeddings' 1-D)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             foreach=True)


def train_step(model, optimizer, x, y, grad_clip: float = 1.0) -> float:
    """One step of gradient descent on the batch (x, y); returns the loss as a float.

    Forward, backward, clip the gradient norm (0 = off), update, then clear the gradients:
    PyTorch adds new gradients to old ones, so forgetting to clear them mixes every batch.
    """
    _, loss = model(x, y)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.item()


def perplexity(mean_loss: float) -> float:
    """e^loss for a mean cross-entropy in nats: the model is as unsure as a uniform choice
    among this many tokens. A loss of ln(65) ≈ 4.17 on 65 characters gives 65."""
    return math.exp(mean_loss)


@torch.no_grad()
def evaluate(model, ids: torch.Tensor, block_size: int, batch_size: int = 64,
             should_stop: Callable[[], bool] = lambda: False) -> float:
    """Mean cross-entropy over every non-overlapping window of `ids`: exact, not sampled."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for x, y in eval_batches(ids, block_size, batch_size):
        logits, _ = model(x.to(device))
        total += F.cross_entropy(logits.view(-1, logits.size(-1)), y.to(device).view(-1),
                                 reduction="sum").item()
        count += y.numel()
        if should_stop():
            break
    model.train(was_training)
    return total / max(count, 1)


class Ending(enum.Enum):
    FINISHED = "finished"  # every step of max_iters
    REACHED_TARGET = "reached target"  # val_loss <= target_val_loss
    STOPPED = "stopped"  # should_stop() said so
    TIMED_OUT = "timed out"  # max_seconds of training
    DIVERGED = "diverged"  # a non-finite loss; the last good weights were put back


@dataclass(frozen=True)
class Outcome:
    """How a run ended, at which step, with the number that decided it (the target's val
    loss, the time cap in seconds, or the non-finite loss)."""

    ending: Ending
    step: int
    value: float | None = None

    def __str__(self) -> str:
        e, step, value = self.ending, self.step, self.value
        if e is Ending.FINISHED:
            return f"finished {step} steps"
        if e is Ending.REACHED_TARGET:
            return f"reached val loss {value} at step {step}"
        if e is Ending.STOPPED:
            return f"stopped at step {step}"
        if e is Ending.TIMED_OUT:
            return f"stopped at the time limit of {value:.0f} s, at step {step}"
        return (f"the loss became {value} at step {step}: training diverged; the weights of "
                "the last good evaluation were kept")


@dataclass
class RunResult:
    outcome: Outcome
    history: list[dict]
    steps: int


@dataclass
class Dist:
    """Where this process sits under torchrun (rank 0 of 1 when run alone)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


class Trainer:
    """Trains `model` on `train_ids`, evaluating on `val_ids`; reports through `on_event`.

    Events are plain dicts: {"type": "step", ...} every step, {"type": "eval", ...} at each
    evaluation (with a text sample and attention snapshot), {"type": "done", "outcome": ...}.
    """

    def __init__(self, model: GPT, train_ids, val_ids, cfg: TrainConfig,
                 tokenizer: Tokenizer | None = None,
                 on_event: Callable[[dict], None] | None = None,
                 dist: Dist | None = None, ddp_model=None, snapshot_layer: int = 0,
                 snapshot_head: int = 0):
        self.model, self.cfg, self.tokenizer = model, cfg, tokenizer
        self.train_ids, self.val_ids = train_ids, val_ids
        self.on_event = on_event or (lambda event: None)
        self.dist = dist or Dist()
        self.ddp_model = ddp_model or model
        self.device = next(model.parameters()).device
        self.block_size = model.config.block_size
        if len(train_ids) <= self.block_size + 1:
            raise ValueError(
                f"The training text has {len(train_ids)} tokens: it needs more than the "
                f"block size ({self.block_size}). Use a longer text or a smaller block size.")
        if cfg.batch_size % self.dist.world:
            raise ValueError("The batch size must be divisible by the number of processes.")
        self.optimizer = make_optimizer(model, cfg)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.step = 0
        self.history: list[dict] = []
        self.train_seconds = 0.0  # time in training steps only (evaluation excluded)
        self.screen_seconds = 0.0
        self.tokens_seen = 0
        self.last_good: dict | None = None
        self.snapshot_layer, self.snapshot_head = snapshot_layer, snapshot_head
        n_train_eval = min(len(train_ids), max(cfg.eval_train_tokens, self.block_size + 1))
        self.train_eval_ids = train_ids[:n_train_eval]
        self.snapshot_ids = (val_ids if len(val_ids) > 1 else train_ids)[: min(self.block_size, 24)]

    # ----------------------------------------------------------------------------- steps
    def _batch(self):
        x, y = random_batch(self.train_ids, self.block_size, self.cfg.batch_size, self.generator)
        per = self.cfg.batch_size // self.dist.world  # this process's slice of the global batch
        lo = self.dist.rank * per
        return x[lo: lo + per].to(self.device), y[lo: lo + per].to(self.device)

    def train_step(self) -> float:
        lr = lr_at(self.step, self.cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x, y = self._batch()
        loss = train_step(self.ddp_model, self.optimizer, x, y, self.cfg.grad_clip)
        self.step += 1
        return loss

    # ------------------------------------------------------------------------ evaluation
    def sample(self, n_tokens: int) -> str:
        if self.tokenizer is None or n_tokens <= 0:
            return ""
        g = torch.Generator().manual_seed(self.cfg.seed)
        start = self.val_ids[:1] if len(self.val_ids) else self.train_ids[:1]
        out = generate(self.model, start.view(1, 1).to(self.device), n_tokens,
                       temperature=0.8, top_k=None, generator=g)
        return self.tokenizer.decode(out[0].tolist())

    def attention_snapshot(self) -> list[list[float]]:
        idx = self.snapshot_ids.view(1, -1).to(self.device)
        weights = self.model.inspect(idx)["attention"][self.snapshot_layer]
        return weights[0, self.snapshot_head].tolist()

    def evaluate_now(self, should_stop) -> dict:
        start = time.perf_counter()
        val = evaluate(self.model, self.val_ids, self.block_size, should_stop=should_stop)
        train = evaluate(self.model, self.train_eval_ids, self.block_size, should_stop=should_stop)
        record = {
            "iter": self.step,
            "train_loss": round(train, 4),
            "val_loss": round(val, 4),
            "elapsed_s": round(self.train_seconds, 2),
            "tokens_per_s": round(self.tokens_seen / max(self.train_seconds, 1e-9)),
            "lr": lr_at(max(self.step - 1, 0), self.cfg),
        }
        record["eval_s"] = round(time.perf_counter() - start, 3)
        return record

    # ------------------------------------------------------------------------------- run
    def run(self, should_stop: Callable[[], bool] = lambda: False) -> RunResult:
        """Train until max_iters, the target loss, the time cap, a stop request or a NaN.

        Returns a RunResult; its outcome also goes out as the "done" event.
        """
        cfg = self.cfg
        self.model.train()
        wall_start = time.perf_counter()
        outcome = Outcome(Ending.FINISHED, cfg.max_iters)
        self._remember_good()
        while True:
            if should_stop():
                outcome = Outcome(Ending.STOPPED, self.step)
                break
            at_eval = self.step % cfg.eval_interval == 0 or self.step == cfg.max_iters
            already = bool(self.history) and self.history[-1]["iter"] == self.step  # resumed
            if at_eval and not already and self._screened_out(should_stop):
                at_eval = False
            if at_eval and not already:
                record = self.evaluate_now(should_stop)
                record["wall_s"] = round(time.perf_counter() - wall_start, 2)
                if self.dist.is_main:
                    record["sample"] = self.sample(cfg.sample_tokens)
                    record["attention"] = self.attention_snapshot()
                self.history.append(record)
                self._remember_good()
                self.on_event({"type": "eval", **record})
                if cfg.target_val_loss is not None and record["val_loss"] <= cfg.target_val_loss:
                    outcome = Outcome(Ending.REACHED_TARGET, self.step, record["val_loss"])
                    break
            if self.step >= cfg.max_iters:
                break
            if cfg.max_seconds is not None and self.train_seconds >= cfg.max_seconds:
                outcome = Outcome(Ending.TIMED_OUT, self.step, cfg.max_seconds)
                break
            t0 = time.perf_counter()
            loss = self.train_step()
            dt = time.perf_counter() - t0
            self.train_seconds += dt
            self.tokens_seen += cfg.batch_size * self.block_size
            if not math.isfinite(loss):
                self._restore_good()
                outcome = Outcome(Ending.DIVERGED, self.step, loss)
                self.on_event({"type": "diverged", "iter": self.step, "loss": loss})
                break
            self.on_event({"type": "step", "iter": self.step, "loss": loss,
                           "lr": lr_at(self.step - 1, cfg), "step_s": dt,
                           "tokens_per_s": self.tokens_seen / max(self.train_seconds, 1e-9),
                           "elapsed_s": self.train_seconds})
        self.on_event({"type": "done", "outcome": outcome})
        return RunResult(outcome, self.history, self.step)

    def _screened_out(self, should_stop) -> bool:
        """True when a cheap look at part of the validation split says the target is not
        near yet, so the exact evaluation on the whole split can wait."""
        cfg = self.cfg
        if cfg.target_val_loss is None or not cfg.eval_screen_tokens or self.step == cfg.max_iters:
            return False
        if self.step == 0:
            return False  # the first point of the curve is always exact
        part = self.val_ids[: cfg.eval_screen_tokens]
        start = time.perf_counter()
        loss = evaluate(self.model, part, self.block_size, should_stop=should_stop)
        self.screen_seconds += time.perf_counter() - start
        return loss > cfg.target_val_loss + cfg.screen_margin

    def _remember_good(self):
        self.last_good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def _restore_good(self):
        if self.last_good is not None:
            self.model.load_state_dict(self.last_good)
        self.optimizer.zero_grad(set_to_none=True)

    # ----------------------------------------------------------------------- checkpoints
    def checkpoint(self) -> dict:
        return {
            "format": FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "model_config": self.model.config.to_dict(),
            "train_config": asdict(self.cfg),
            "tokenizer": self.tokenizer.to_dict() if self.tokenizer else None,
            "history": [{k: v for k, v in h.items() if k != "attention"} for h in self.history],
            "generator": self.generator.get_state(),
            "train_seconds": self.train_seconds,
            "tokens_seen": self.tokens_seen,
        }

    def save(self, path: str | Path) -> Path:
        return save_checkpoint(self.checkpoint(), path)

    def load_state(self, ckpt: dict) -> None:
        """Continue a saved run: weights, optimizer, step, data order and timing."""
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.step = int(ckpt["step"])
        self.generator.set_state(ckpt["generator"])
        self.history = list(ckpt.get("history", []))
        self.train_seconds = float(ckpt.get("train_seconds", 0.0))
        self.tokens_seen = int(ckpt.get("tokens_seen", 0))


@torch.no_grad()
def per_token_loss(model: GPT, ids: torch.Tensor) -> list[float]:
    """Cross-entropy of each token given the ones before it (the first token has none)."""
    ids = ids[: model.config.block_size + 1]
    logits, _ = model(ids[None, :-1])
    losses = torch.nn.functional.cross_entropy(logits[0], ids[1:], reduction="none")
    return [float("nan")] + losses.tolist()
