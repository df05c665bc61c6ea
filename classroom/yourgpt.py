"""'Train my GPT' in lesson 5: the learner's Block, trained beside the book's GPT, in the sandbox.

The learner's code runs only in the sandbox (job "train_yours": gptcore.exercises.yourgpt).
What comes back is data: the two loss curves, the validation losses, a sample, and the
trained weights as safetensors (no pickle). The server rebuilds the learner's model as the
book's GPT from those weights — their Block uses GPT-2's names, so the weights fit it as
they are — and never runs their code. The run then works like any other: samples,
perplexity, a checkpoint to download.
"""
from __future__ import annotations

import base64
import math
import threading
import time
from dataclasses import asdict

import torch

from classroom import sandbox
from gptcore.checkpoint import FORMAT
from gptcore.config import GPTConfig
from gptcore.exercises.yourgpt import TOLERANCE, side_by_side_config
from gptcore.model import GPT
from gptcore.tokenizers import CharTokenizer
from gptcore.trainer import TrainConfig, prepare_data

MAX_PARAMS = 140_000  # the trained weights come back in one bounded message
MAX_TEXT_CHARS = 300_000
TRAIN_LIMITS = dict(memory_mb=1536, cpu_s=600.0, wall_s=300.0)


class YourGPTError(ValueError):
    """The run cannot start or its result cannot be used; the message says why."""


def weights_from_bytes(raw: bytes, config: GPTConfig) -> GPT:
    """Rebuild the learner's trained GPT from safetensors bytes, checking every tensor."""
    from safetensors.torch import load

    try:
        weights = load(raw)
    except Exception as e:  # noqa: BLE001 - anything unreadable gets one plain message
        raise YourGPTError(f"The trained weights came back unreadable ({e.__class__.__name__}).") from e
    model = GPT(config)
    expected = model.state_dict()
    if set(weights) != set(expected):
        raise YourGPTError("The trained weights do not match GPT-2's names: "
                           f"{sorted(set(expected) ^ set(weights))[:3]}.")
    for name, tensor in weights.items():
        if tensor.shape != expected[name].shape or tensor.dtype != torch.float32:
            raise YourGPTError(f"The trained weight {name} has the wrong shape or type.")
        if not torch.isfinite(tensor).all():
            raise YourGPTError(f"The trained weight {name} holds NaN or infinity.")
    model.load_state_dict(weights)
    return model.eval()


class YourGPTRun:
    """The side-by-side run, in a background thread that waits on the sandbox."""

    active_statuses = ("queued", "training")

    def __init__(self, source: str, text: str, model_config: GPTConfig, train_config: TrainConfig,
                 learner: str, label: str):
        self.text = text[:MAX_TEXT_CHARS]
        self.tokenizer = CharTokenizer.from_text(self.text)
        self.model_config = side_by_side_config(
            GPTConfig(**{**asdict(model_config), "vocab_size": self.tokenizer.vocab_size}))
        from gptcore.budget import num_params

        if num_params(self.model_config) > MAX_PARAMS:
            raise YourGPTError(f"Your GPT would have {num_params(self.model_config):,} parameters; "
                               f"training your own blocks is limited to {MAX_PARAMS:,} here. "
                               "Choose fewer layers or a smaller width.")
        self.train_config, self.label, self.learner = train_config, label, learner
        self.source = source
        self.steps: list[tuple[int, float, float]] = []
        self.status, self.message = "queued", "Waiting for the sandbox…"
        self.result: dict | None = None
        self.model: GPT | None = None
        self.val_ids = None
        self.started, self.elapsed_s = time.time(), 0.0
        self._lock = threading.Lock()
        self._run = None
        self.thread = threading.Thread(target=self._work, name=f"your-gpt-{label}", daemon=True)

    def start(self) -> "YourGPTRun":
        self.thread.start()
        return self

    @property
    def active(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> None:
        if self._run is not None:
            self._run.cancel()

    def _on_event(self, event: dict) -> None:
        try:
            row = (int(event["iter"]), float(event["reference"]), float(event["yours"]))
        except (KeyError, TypeError, ValueError):
            return  # the sandbox's events are untrusted: ignore what is not a step
        with self._lock:
            self.status, self.message = "training", "Training both models…"
            self.steps.append(row)

    def _work(self) -> None:
        args = {"source": self.source, "text": self.text,
                "model": asdict(self.model_config), "train": asdict(self.train_config)}
        limits = sandbox.SandboxLimits.from_env(**TRAIN_LIMITS)
        try:
            self._run = sandbox.default_sandbox().submit("train_yours", args, learner=self.learner,
                                                  limits=limits, on_event=self._on_event)
            self._run.wait()
            outcome = self._run.outcome or {}
        except (sandbox.SandboxUnavailable, sandbox.SandboxBusy, ValueError) as e:
            outcome = {"ok": False, "message": str(e)}
        if not outcome.get("ok"):
            with self._lock:
                self.status, self.message = "failed", outcome.get("message", "The run failed.")
            return
        try:
            result = outcome["result"]
            model = weights_from_bytes(base64.b64decode(result["weights"]), self.model_config)
            val = {k: float(result["val_loss"][k]) for k in ("reference", "yours")}
            train = {k: float(result["train_loss"][k]) for k in ("reference", "yours")}
            parted = result.get("parted_at")
            parted = None if parted is None else int(parted)
            summary = {"val_loss": val, "train_loss": train, "parted_at": parted,
                       "max_difference": float(result["max_difference"]),
                       "sample": str(result.get("sample", ""))[:2000]}
        except (KeyError, TypeError, ValueError, YourGPTError) as e:
            with self._lock:
                self.status, self.message = "failed", f"The result could not be used: {e}"
            return
        _, _, val_ids = prepare_data(self.text, "char", 0, self.train_config.val_fraction)
        with self._lock:
            self.model, self.result, self.val_ids = model, summary, val_ids
            self.elapsed_s = time.time() - self.started
            self.status = "done"
            self.message = agreement(summary, len(self.steps))

    def snapshot(self) -> dict:
        with self._lock:
            return {"status": self.status, "message": self.message, "steps": list(self.steps),
                    "result": self.result, "max_iters": self.train_config.max_iters}

    def final_record(self) -> dict:
        """The run's last evaluation, in the trainer's format (one point on the lab's curves)."""
        steps = len(self.steps)
        tokens = steps * self.train_config.batch_size * self.model_config.block_size
        return {"iter": steps, "train_loss": round(self.result["train_loss"]["yours"], 4),
                "val_loss": round(self.result["val_loss"]["yours"], 4),
                "elapsed_s": round(self.elapsed_s, 2),
                "tokens_per_s": round(tokens / max(self.elapsed_s, 1e-9))}

    def checkpoint_bytes(self) -> bytes:
        """A checkpoint in the book's format: it uploads into the lab like any other."""
        import io

        buffer = io.BytesIO()
        torch.save({"format": FORMAT, "model": self.model.state_dict(), "step": len(self.steps),
                    "model_config": self.model_config.to_dict(),
                    "train_config": asdict(self.train_config),
                    "tokenizer": self.tokenizer.to_dict(), "history": [self.final_record()],
                    "train_seconds": self.elapsed_s},
                   buffer)
        return buffer.getvalue()


def agreement(summary: dict, n_steps: int) -> str:
    """In plain words: do the two curves agree, and if not, from which step."""
    if summary["parted_at"] is None:
        return (f"Your GPT follows the reference over all {n_steps} steps: the largest "
                f"difference in loss was {summary['max_difference']:.1e}, float rounding. "
                "Your Block computes what GPT-2's does.")
    return (f"The curves part at step {summary['parted_at']}: your loss differs from the "
            f"reference by more than {TOLERANCE:g} there (largest difference "
            f"{summary['max_difference']:.3g}). Check your Block against the exercise in "
            "lesson 4: the residuals, the causal mask, pre-LN.")


def perplexity_line(summary: dict) -> str:
    v = summary["val_loss"]
    return (f"Validation loss: yours {v['yours']:.4f} (perplexity {math.exp(v['yours']):.2f}), "
            f"the reference {v['reference']:.4f} (perplexity {math.exp(v['reference']):.2f}).")
