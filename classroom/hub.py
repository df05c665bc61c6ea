"""Reaching the Hugging Face Hub, fast, and loading DistilGPT2 with offline fallbacks.

`transformers` retries an unreachable Hub for about 25 s. A course cannot make a learner
wait that long, so `hub_status()` answers within `timeout` seconds (3 by default): it
respects HF_HUB_OFFLINE, then tries one TCP connection in a daemon thread.

Fallbacks when DistilGPT2 cannot be had: a local model folder, a DistilGPT2-shaped model
with random weights (untrained: its text is noise), or the learner's own model.
"""
from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HUB_HOST = "huggingface.co"
DISTILGPT2 = "distilgpt2"
MODEL_DIR_ENV = "GPTCORE_MODEL_DIR"  # a local folder with a GPT-2 family model


@dataclass(frozen=True)
class HubStatus:
    online: bool
    reason: str
    seconds: float


def host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> tuple[bool, str]:
    """Try one TCP connection; DNS lookups cannot be timed out, so the thread is the timer."""
    result: list[tuple[bool, str]] = []

    def attempt():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append((True, f"{host} answered."))
        except OSError as e:
            result.append((False, f"{host} cannot be reached ({e.__class__.__name__}: {e})."))

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else (False, f"{host} did not answer within {timeout:.0f} s.")


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def hub_status(timeout: float = 3.0) -> HubStatus:
    """Is the Hugging Face Hub usable from here? Answers within about `timeout` seconds."""
    start = time.perf_counter()
    if _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE"):
        return HubStatus(False, "HF_HUB_OFFLINE is set, so the Hub is not contacted.", 0.0)
    online, reason = host_reachable(HUB_HOST, 443, timeout)
    return HubStatus(online, reason, time.perf_counter() - start)


def cached_snapshot(repo_id: str = DISTILGPT2) -> Path | None:
    """The folder of a model already in the local Hugging Face cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    config = try_to_load_from_cache(repo_id, "config.json")
    if not isinstance(config, str):
        return None
    folder = Path(config).parent
    has_weights = any((folder / f).exists() for f in ("model.safetensors", "pytorch_model.bin"))
    return folder if has_weights else None


class ModelUnavailable(RuntimeError):
    """DistilGPT2 could not be loaded; the message says why in plain words."""


def _freeze(model):
    """Shared models are read-only: eval mode, no gradients."""
    model.eval()
    model.requires_grad_(False)
    return model


def load_pretrained(folder: str | Path):
    """A GPT-2 family model from a local folder (`save_pretrained` layout), read-only."""
    from transformers import AutoModelForCausalLM

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ModelUnavailable(f"{folder} has no config.json: it is not a saved model folder.")
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ModelUnavailable(f"{folder} could not be loaded as a model: {e}") from e
    if getattr(model.config, "model_type", "") != "gpt2":
        raise ModelUnavailable(f"{folder} holds a {model.config.model_type} model, not GPT-2.")
    return _freeze(model)


def load_distilgpt2(status: HubStatus | None = None):
    """DistilGPT2 from the local cache, else from the Hub when it is reachable."""
    from transformers import AutoModelForCausalLM

    snapshot = cached_snapshot(DISTILGPT2)
    if snapshot is not None:
        return load_pretrained(snapshot)
    status = status or hub_status()
    if not status.online:
        raise ModelUnavailable(
            "DistilGPT2 is not on this computer and the Hugging Face Hub cannot be reached: "
            + status.reason
        )
    try:
        return _freeze(AutoModelForCausalLM.from_pretrained(DISTILGPT2))
    except OSError as e:
        raise ModelUnavailable(f"Downloading DistilGPT2 failed: {e}") from e


def random_gpt2(n_layer: int = 6, n_embd: int = 768, n_head: int = 12, seed: int = 0,
                n_positions: int = 1024, vocab_size: int = 50257):
    """A DistilGPT2-shaped GPT with random weights: every shape right, its text is noise.

    gptcore's GPT with GPT-2's settings (tied head, biases, tanh GELU, pre-LN) and GPT-2's
    initialisation (`gptcore.trainer.init_model`); lesson 4 shows it equals transformers'
    GPT-2 given the same weights. Not `transformers`' own GPT2LMHeadModel: importing
    transformers alone takes about 4 s here, and a lesson must open in 3
    (benchmarks.lesson1_open).
    """
    from gptcore.config import GPTConfig
    from gptcore.trainer import init_model

    config = GPTConfig(vocab_size=vocab_size, block_size=n_positions, n_layer=n_layer,
                       n_head=n_head, n_embd=n_embd, bias=True, tie_weights=True,
                       activation="gelu", pre_ln=True, dropout=0.0)
    return _freeze(init_model(config, seed))


def env_model_dir() -> Path | None:
    value = os.environ.get(MODEL_DIR_ENV, "").strip()
    return Path(value) if value else None
