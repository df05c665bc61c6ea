"""Training: AdamW, warmup + cosine decay, clipping, exact evaluation, checkpoints, a CLI.

The trainer never prints or draws: it reports through a callback (`on_event`), so the app can
chart it and the CLI can print JSON lines. Validation loss is exact and comparable: the whole
validation split, cut into non-overlapping windows. A non-finite loss stops the run, puts
back the last good weights and says why.

    python -m gptcore.train --preset nanogpt-cpu --corpus input.txt
    torchrun --nproc_per_node 2 -m gptcore.train --preset fast-cpu --corpus input.txt

Under torchrun each process takes its slice of one global batch drawn with a shared seed,
so DistributedDataParallel's averaged gradient equals the one-process gradient.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from gptcore.data import eval_batches, random_batch, train_val_split
from gptcore.generate import generate
from gptcore.model import GPT, GPTConfig
from gptcore.tokenizers import Tokenizer, build_tokenizer, tokenizer_from_dict


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


PRESETS: dict[str, tuple[dict, dict]] = {
    # nanoGPT's README CPU recipe, exactly.
    "nanogpt-cpu": (
        dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=False),
        dict(batch_size=12, lr=1e-3, min_lr=1e-4, max_iters=2000, lr_decay_iters=2000,
             warmup_iters=100, beta2=0.99, weight_decay=0.1, grad_clip=1.0, eval_interval=250),
    ),
    # This project's recipe for the same loss sooner (README, benchmarks.time_to_loss): a
    # narrower, shallower baby GPT that processes twice the tokens per second, a learning
    # rate 8× higher, and cheap screens of the validation loss between exact evaluations.
    "fast-cpu": (
        dict(n_layer=3, n_head=3, n_embd=96, block_size=64, dropout=0.0, bias=False),
        dict(batch_size=32, lr=8e-3, min_lr=8e-4, max_iters=800, lr_decay_iters=800,
             warmup_iters=30, beta2=0.99, weight_decay=0.1, grad_clip=1.0, eval_interval=50,
             eval_screen_tokens=8192, eval_train_tokens=8192),
    ),
}


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
    evaluation (with a text sample and attention snapshot), {"type": "done", "reason": ...}.
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
        _, loss = self.ddp_model(x, y)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return loss.item()

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
    def run(self, should_stop: Callable[[], bool] = lambda: False) -> dict:
        """Train until max_iters, the target loss, the time cap, a stop request or a NaN.

        Returns {"reason", "history", "steps"}; the same dict goes out as the "done" event.
        """
        cfg = self.cfg
        self.model.train()
        wall_start = time.perf_counter()
        reason = f"finished {cfg.max_iters} steps"
        self._remember_good()
        while True:
            if should_stop():
                reason = f"stopped by you at step {self.step}"
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
                    reason = f"reached val loss {record['val_loss']:.4f} ≤ {cfg.target_val_loss}"
                    break
            if self.step >= cfg.max_iters:
                break
            if cfg.max_seconds is not None and self.train_seconds >= cfg.max_seconds:
                reason = f"stopped at the time limit of {cfg.max_seconds:.0f} s"
                break
            t0 = time.perf_counter()
            loss = self.train_step()
            dt = time.perf_counter() - t0
            self.train_seconds += dt
            self.tokens_seen += cfg.batch_size * self.block_size
            if not math.isfinite(loss):
                self._restore_good()
                reason = (f"the loss became {loss} at step {self.step}: training diverged "
                          "(the learning rate is probably too high). The weights from the "
                          "last good evaluation were kept.")
                self.on_event({"type": "diverged", "iter": self.step, "loss": loss})
                break
            self.on_event({"type": "step", "iter": self.step, "loss": loss,
                           "lr": lr_at(self.step - 1, cfg), "step_s": dt,
                           "tokens_per_s": self.tokens_seen / max(self.train_seconds, 1e-9),
                           "elapsed_s": self.train_seconds})
        result = {"reason": reason, "history": self.history, "steps": self.step}
        self.on_event({"type": "done", **result})
        return result

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
            "format": "gptcore-checkpoint-1",
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


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message says why in plain words."""


def save_checkpoint(ckpt: dict, path: str | Path) -> Path:
    """Write atomically: a temporary file beside `path`, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(source, max_params: int | None = None) -> dict:
    """Load a checkpoint (a path or a file object) safely: `weights_only=True`, shapes checked.

    Returns the checkpoint dict with "model_obj" (a GPT in eval mode) and "tokenizer_obj".
    """
    try:
        ckpt = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same plain message
        raise CheckpointError(f"This is not a readable gptcore checkpoint ({e.__class__.__name__}).") from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != "gptcore-checkpoint-1":
        raise CheckpointError("This file is not a gptcore checkpoint (saved by the training lab "
                              "or `python -m gptcore.train --out`).")
    try:
        config = GPTConfig(**{f.name: ckpt["model_config"][f.name] for f in fields(GPTConfig)
                              if f.name in ckpt["model_config"]})
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(f"The checkpoint's model configuration is invalid: {e}") from e
    from gptcore.budget import num_params

    if max_params is not None and num_params(config) > max_params:
        raise CheckpointError(f"The checkpoint's model has {num_params(config):,} parameters; "
                              f"the limit here is {max_params:,}.")
    model = GPT(config)
    try:
        model.load_state_dict(ckpt["model"])
    except (RuntimeError, KeyError) as e:
        raise CheckpointError(f"The weights do not fit the model described in the checkpoint: "
                              f"{str(e).splitlines()[0]}") from e
    tokenizer = tokenizer_from_dict(ckpt["tokenizer"]) if ckpt.get("tokenizer") else None
    if tokenizer is not None and tokenizer.vocab_size > config.vocab_size:
        raise CheckpointError("The checkpoint's tokenizer has more tokens than its model.")
    ckpt["model_obj"], ckpt["tokenizer_obj"] = model.eval(), tokenizer
    return ckpt


# ----------------------------------------------------------------------------------- CLI


def prepare_data(text: str, tokenizer_kind: str, vocab_size: int, val_fraction: float):
    """Tokenize a corpus and split it by position: (tokenizer, train_ids, val_ids)."""
    tokenizer = build_tokenizer(tokenizer_kind, text, vocab_size)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    train_ids, val_ids = train_val_split(ids, val_fraction)
    return tokenizer, train_ids, val_ids


def _parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m gptcore.train",
                                description="Train a small GPT; prints one JSON line per evaluation.")
    p.add_argument("--corpus", required=True, help="a UTF-8 text file")
    p.add_argument("--preset", choices=sorted(PRESETS))
    p.add_argument("--tokenizer", default="char", choices=["char", "word", "bpe", "gpt2"])
    p.add_argument("--vocab-size", type=int, default=512, help="for bpe and word tokenizers")
    for name, kind in [("n-layer", int), ("n-head", int), ("n-embd", int), ("block-size", int),
                       ("dropout", float), ("batch-size", int), ("lr", float), ("min-lr", float),
                       ("max-iters", int), ("warmup-iters", int), ("weight-decay", float),
                       ("grad-clip", float), ("eval-interval", int), ("seed", int),
                       ("target-val-loss", float), ("max-seconds", float), ("beta2", float),
                       ("sample-tokens", int), ("eval-screen-tokens", int),
                       ("eval-train-tokens", int)]:
        p.add_argument(f"--{name}", type=kind, default=None)
    p.add_argument("--bias", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process")
    p.add_argument("--out", help="folder for ckpt.pt (saved at each evaluation)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/ckpt.pt")
    return p.parse_args(argv)


def configs_from_args(args) -> tuple[dict, TrainConfig]:
    """Preset first, then any flag given explicitly."""
    model_kw, train_kw = ({}, {}) if not args.preset else (dict(PRESETS[args.preset][0]),
                                                           dict(PRESETS[args.preset][1]))
    train_kw.setdefault("sample_tokens", 0)
    model_fields = {f.name for f in fields(GPTConfig)}
    train_fields = {f.name for f in fields(TrainConfig)}
    for key, value in vars(args).items():
        if value is None:
            continue
        if key in model_fields:
            model_kw[key] = value
        elif key in train_fields:
            train_kw[key] = value
    if args.max_iters is not None:  # the cosine schedule ends where the run ends
        train_kw["lr_decay_iters"] = args.max_iters
    return model_kw, TrainConfig(**train_kw)


def _setup_dist() -> Dist:
    if "RANK" not in os.environ:
        return Dist()
    import torch.distributed as torch_dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    torch_dist.init_process_group(backend=backend)
    return Dist(rank=torch_dist.get_rank(), world=torch_dist.get_world_size(),
                local_rank=int(os.environ.get("LOCAL_RANK", 0)))


def main(argv=None) -> int:
    args = _parse_args(argv)
    dist = _setup_dist()
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // local_world))
    model_kw, cfg = configs_from_args(args)
    device = pick_device(cfg.device)
    if device.type == "cuda" and dist.world > 1:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)

    text = Path(args.corpus).read_text(encoding="utf-8")
    tokenizer, train_ids, val_ids = prepare_data(text, args.tokenizer, args.vocab_size,
                                                 cfg.val_fraction)
    model_kw["vocab_size"] = tokenizer.vocab_size
    torch.manual_seed(cfg.seed)  # every process builds the same initial weights
    model = GPT(GPTConfig(**model_kw)).to(device)
    ddp_model = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile:
        ddp_model = torch.compile(ddp_model)

    out = Path(args.out) if args.out else None

    def on_event(event):
        if event["type"] == "eval" and dist.is_main:
            line = {k: event[k] for k in ("iter", "train_loss", "val_loss", "elapsed_s",
                                          "tokens_per_s", "wall_s")}
            print(json.dumps(line), flush=True)
            if out:
                trainer.save(out / "ckpt.pt")
        elif event["type"] == "done" and dist.is_main:
            print(f"done: {event['reason']}", file=sys.stderr, flush=True)

    trainer = Trainer(model, train_ids, val_ids, cfg, tokenizer, on_event, dist, ddp_model)
    if args.resume and out and (out / "ckpt.pt").exists():
        trainer.load_state(torch.load(out / "ckpt.pt", map_location=device, weights_only=True))
    result = trainer.run()
    if dist.world > 1:
        import torch.distributed as torch_dist

        torch_dist.barrier()  # without it, gloo sometimes aborts at exit
        torch_dist.destroy_process_group()
    return 1 if result["reason"].startswith("the loss became") else 0


if __name__ == "__main__":
    sys.exit(main())
