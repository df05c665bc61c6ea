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
from gptcore.model import GPT, AllocateOnly
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


def lr_schedule(cfg: TrainConfig) -> list[tuple[int, float]]:
    """(step, learning rate) for every step of a run: what `lr_at` gives the optimizer."""
    return [(it, lr_at(it, cfg)) for it in range(cfg.max_iters)]


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


def eval_batch_size(block_size: int, vocab_size: int, max_logits: int = 1 << 25) -> int:
    """Windows per evaluation batch: at most 64, and at most 2**25 logits (128 MB) at once.
    With GPT-2's 50,257 tokens and a context of 64, 64 windows would need 823 MB of logits."""
    return max(1, min(64, max_logits // (block_size * vocab_size)))


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
        B = eval_batch_size(self.block_size, self.model.config.vocab_size)
        val = evaluate(self.model, self.val_ids, self.block_size, B, should_stop)
        train = evaluate(self.model, self.train_eval_ids, self.block_size, B, should_stop)
        return {
            "iter": self.step,
            "train_loss": round(train, 4),
            "val_loss": round(val, 4),
            "elapsed_s": round(self.train_seconds, 2),
            "tokens_per_s": round(self.tokens_seen / max(self.train_seconds, 1e-9)),
            "lr": lr_at(max(self.step - 1, 0), self.cfg),
        }

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
                eval_start = time.perf_counter()
                record = self.evaluate_now(should_stop)
                record["wall_s"] = round(time.perf_counter() - wall_start, 2)
                if self.dist.is_main:
                    record["sample"] = self.sample(cfg.sample_tokens)
                    record["attention"] = self.attention_snapshot()
                # the whole pause in training, sample included: what an ETA must count
                record["eval_s"] = round(time.perf_counter() - eval_start, 3)
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


# ------------------------------------------------------------------ before a run: the budget


@torch.no_grad()
def init_model(config, seed: int) -> GPT:
    """The weights a run starts from, decided by `seed` alone: GPT-2's initialization
    (weights N(0, 0.02), residual projections N(0, 0.02/√(2·n_layer)), LayerNorms 1 and 0,
    biases 0) drawn from a private generator. `torch.manual_seed` would not do in the app:
    it is one state for the whole process, and another thread drawing between the seed and
    these draws (a second learner's run, a page) would change the weights.

    The model is built without its own initialization and each weight is drawn once, here:
    `GPT(config)` draws every weight two or three times (DistilGPT2's shape: 0.5 s instead
    of 1.7 s)."""
    with AllocateOnly():
        model = GPT(config)
    g = torch.Generator().manual_seed(seed)
    for name, p in model.named_parameters():  # a tied head is wte: listed once
        if p.dim() == 1:  # LayerNorm scales, and biases
            p.fill_(1.0 if name.endswith("ln_1.weight") or name.endswith("ln_2.weight")
                    or name.endswith("ln_f.weight") else 0.0)
        else:
            std = 0.02 / math.sqrt(2 * config.n_layer) if name.endswith("c_proj.weight") else 0.02
            p.normal_(0.0, std, generator=g)
    return model


@dataclass(frozen=True)
class StepTimes:
    """What one unit of work costs on this machine, measured (not guessed)."""

    step_s: float  # one training step on (batch, context): forward, backward, AdamW
    eval_token_s: float  # forward only, per token, in evaluation batches
    sample_token_s: float  # one generated token (with the KV cache)


def measure_step_times(config, batch_size: int, repeats: int = 3, seed: int = 0,
                       budget_s: float = 2.0) -> StepTimes:
    """Time real work on a throwaway model with random tokens: the median of `repeats`
    training steps after one warm-up step (fewer once the timed ones add up to `budget_s`:
    a model at lesson 5's caps takes ~3 s a step, and the learner waits for this), one
    evaluation batch, a few sampled tokens."""
    model = init_model(config, seed)
    optimizer = make_optimizer(model, TrainConfig())
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, config.vocab_size, (batch_size, config.block_size), generator=g)  # (B, T)
    train_step(model, optimizer, x, x)  # the first step pays for allocations: not timed
    times = []
    while len(times) < repeats and sum(times) < budget_s:
        start = time.perf_counter()
        train_step(model, optimizer, x, x)
        times.append(time.perf_counter() - start)
    step_s = sorted(times)[len(times) // 2]
    B = eval_batch_size(config.block_size, config.vocab_size)
    windows = torch.randint(0, config.vocab_size, (B * config.block_size + 1,), generator=g)
    start = time.perf_counter()
    evaluate(model, windows, config.block_size, B)  # one evaluation batch
    eval_token_s = (time.perf_counter() - start) / (B * config.block_size)
    n_sample = 8
    start = time.perf_counter()
    generate(model, x[:1, :1], n_sample, generator=g)
    sample_token_s = (time.perf_counter() - start) / n_sample
    return StepTimes(step_s, eval_token_s, sample_token_s)


def evaluation_steps(max_iters: int, eval_interval: int) -> list[int]:
    """The steps at which the trainer evaluates: 0, every eval_interval, and the last step.
    evaluation_steps(50, 20) -> [0, 20, 40, 50]."""
    steps = list(range(0, max_iters + 1, eval_interval))
    return steps if steps[-1] == max_iters else steps + [max_iters]


def eval_window_tokens(n_tokens: int, block_size: int) -> int:
    """Tokens scored by `evaluate` on n_tokens: every full non-overlapping window's targets."""
    return max(0, (n_tokens - 1) // block_size) * block_size


@dataclass(frozen=True)
class RunEstimate:
    """The budget of a run before it starts; seconds count training and evaluations."""

    tokens_per_step: int  # batch × context
    tokens_per_s: float  # while training
    steps: int  # the steps it will take: fewer if the time cap ends it first
    train_s: float
    evals: int
    eval_tokens: int  # what one evaluation reads: the validation split + the train slice
    eval_s: float  # one evaluation, with its text sample
    total_s: float
    train_flops: float


def estimate_run(config, cfg: TrainConfig, n_tokens: int, times: StepTimes) -> RunEstimate:
    """How long a run takes, from its real configs and measured costs:

        total = steps × t_step + evaluations × (eval tokens × t_token + sample × t_sample)

    n_tokens is the corpus in tokens (characters / measured characters per token); one
    evaluation reads the whole validation split and a train slice of eval_train_tokens.
    """
    from gptcore.budget import flops_per_token

    T = config.block_size
    tokens_per_step = cfg.batch_size * T
    steps = cfg.max_iters
    if cfg.max_seconds is not None:  # the trainer stops once training time reaches the cap
        steps = min(steps, math.ceil(cfg.max_seconds / times.step_s))
    n_val = int(round(n_tokens * cfg.val_fraction))
    n_train = n_tokens - n_val
    n_train_eval = min(n_train, max(cfg.eval_train_tokens, T + 1))
    eval_tokens = eval_window_tokens(n_val, T) + eval_window_tokens(n_train_eval, T)
    eval_s = eval_tokens * times.eval_token_s + cfg.sample_tokens * times.sample_token_s
    evals = len([s for s in evaluation_steps(cfg.max_iters, cfg.eval_interval) if s <= steps])
    train_s = steps * times.step_s
    return RunEstimate(tokens_per_step, tokens_per_step / times.step_s, steps, train_s, evals,
                       eval_tokens, eval_s, train_s + evals * eval_s,
                       flops_per_token(config)["train"] * tokens_per_step * steps)


# ----------------------------------------------------------------- during a run: the curves


def smooth(values: list[float], window: int = 10) -> list[float]:
    """Trailing mean over the last `window` values (fewer at the start): one batch's loss is
    noisy, the mean of ten reads as a curve. smooth([4, 2, 3], 2) -> [4.0, 3.0, 2.5]."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def eta_seconds(step: int, cfg: TrainConfig, train_seconds: float,
                evals: list[dict]) -> float | None:
    """Seconds left at this run's own pace: the steps still to take at its mean seconds per
    step, plus the evaluations still due at the mean cost ("eval_s") of those done.

        eta = steps left × train_seconds / step + evaluations left × mean(eval_s)
    """
    if step <= 0 or train_seconds <= 0:
        return None
    per_step = train_seconds / step
    end = cfg.max_iters
    if cfg.max_seconds is not None:
        end = min(end, step + max(0, math.ceil((cfg.max_seconds - train_seconds) / per_step)))
    last_eval = evals[-1]["iter"] if evals else -1
    evals_left = len([s for s in evaluation_steps(cfg.max_iters, cfg.eval_interval)
                      if last_eval < s <= end])
    per_eval = sum(e.get("eval_s", 0.0) for e in evals) / len(evals) if evals else 0.0
    return (end - step) * per_step + evals_left * per_eval


# ------------------------------------------------------------ reading the loss: start, bases


@torch.no_grad()
def starting_loss(model: GPT, ids) -> dict:
    """Why an untrained model's loss is not exactly ln(vocabulary), measured on `ids`.

    If the logits did not depend on the answer, the expected loss could not be below ln V
    (unequal random logits only cost more, by Jensen's inequality). A tied head breaks this:
    logits = h · wteᵀ, and h is mostly the embedding e of the token just read, so that
    token's own logit is about |e|²-sized and higher than the rest. Wherever the next token
    repeats the current one (indentation spaces, doubled letters) the model is right by luck.
    Returns the loss, ln V, the share of such repeats, the loss on them and on the others,
    the own-token logit minus the mean logit, and the entropy of token frequencies in `ids`
    (what a model that learns only how often each token occurs would score).
    """
    ids = torch.as_tensor(ids, dtype=torch.long)
    was_training = model.training
    model.eval()
    V, T = model.config.vocab_size, model.config.block_size
    losses, repeats, gaps = [], [], []
    if eval_window_tokens(len(ids), T) == 0:
        raise ValueError(f"{len(ids)} tokens do not fill one window of {T}: use a longer text.")
    for x, y in eval_batches(ids, T, eval_batch_size(T, V)):
        logits, _ = model(x)  # (B, T, V)
        losses.append(F.cross_entropy(logits.view(-1, V), y.reshape(-1), reduction="none"))
        repeats.append((x == y).view(-1))
        own = logits.gather(-1, x.unsqueeze(-1)).squeeze(-1)  # (B, T): the token just read
        gaps.append((own - logits.mean(-1)).view(-1))
    model.train(was_training)
    loss, repeat, gap = torch.cat(losses), torch.cat(repeats), torch.cat(gaps)
    counts = torch.bincount(ids, minlength=V).float()
    p = counts[counts > 0] / counts.sum()
    return {
        "loss": loss.mean().item(),
        "uniform": math.log(V),
        "repeat_share": repeat.float().mean().item(),
        "loss_on_repeats": loss[repeat].mean().item() if repeat.any() else float("nan"),
        "loss_on_others": loss[~repeat].mean().item() if (~repeat).any() else float("nan"),
        "own_logit_gap": gap.mean().item(),
        "unigram_entropy": -(p * p.log()).sum().item(),
        "tokens_used": int((counts > 0).sum()),
    }


LOG_BASES = {"ln": math.e, "log2": 2.0, "log10": 10.0}


def perplexity_mixups(mean_loss: float) -> list[dict]:
    """Perplexity when the loss's logarithm and the exponential disagree (a bug in the
    tutorial). The loss in base b is loss_nats / ln b; b ** (that) is the true perplexity
    whatever b is, but exponentiating it in another base c gives true_ppl ** (ln c / ln b):
    off by a power. For a loss of 1.0 nat: e¹ = 2.72, but e^(log10 loss) = 2.72^0.434 = 1.54.
    """
    rows = []
    for log_name, b in LOG_BASES.items():
        loss = mean_loss / math.log(b)
        for exp_name, c in LOG_BASES.items():
            rows.append({"loss log": log_name, "loss": loss, "exponent base": exp_name,
                         "perplexity": c ** loss, "power": math.log(c) / math.log(b)})
    return rows
