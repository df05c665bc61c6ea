"""Work a lesson would otherwise do on its first open, done once per server process in a
background thread after the first page has been served (app.py starts it after the page, so
that it does not slow that page down): the imports of Altair (0.5 to 0.8 s) and of
torch._dynamo (1.6 s: AdamW and any operation on the meta device import it, so lesson 4's
shape trace and lesson 5's measured step did), GPT-2's tokenizer (0.4 s) and, when
DistilGPT2 cannot be had, the random DistilGPT2-shaped model (0.5 s). The lessons then open
without that wait (benchmarks.page_open).

Nothing here imports `transformers`: its lazy modules are not safe to import from two threads
at once (a page importing GPT2Config while a warm-up thread imported transformers failed).
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("gptcourse")
_started = threading.Event()
_done = threading.Event()


def start() -> None:
    """Start the warm-up once per process; later calls return at once."""
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_warm, name="gptcourse-warmup", daemon=True).start()


def wait(timeout: float | None = None) -> bool:
    """Block until the warm-up has finished (tests and benchmarks); True if it has."""
    return _done.wait(timeout)


def _warm() -> None:
    try:
        import altair  # noqa: F401 - the charts' import, once
        import torch._dynamo  # noqa: F401

        from classroom import hub, models
        from gptcore.tokenizers import gpt2_encoding

        gpt2_encoding()
        if not models.distilgpt2_available(hub.hub_status(timeout=3.0)):
            models.random_model()
    except Exception:  # noqa: BLE001 - a failed warm-up only means a slower first open
        log.exception("warm-up failed; pages will do this work on their first open")
    finally:
        _done.set()
