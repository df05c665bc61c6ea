"""Work a lesson would otherwise do on its first open, done once per server process in a
background thread after the first page has been served (app.py starts it after the page, so
that it does not slow that page down): the imports of torch (1.6 to 2.2 s; the home page
does not need it), torch._dynamo (1.9 s: AdamW and any operation on the meta device import
it, so lesson 4's shape trace and lesson 5's measured step did) and Altair (0.5 to 0.8 s),
GPT-2's tokenizer (0.4 s) and, when DistilGPT2 cannot be had, the random DistilGPT2-shaped
model (0.7 s). The lessons then open without that wait (benchmarks.page_open).

Nothing here imports `transformers`: its lazy modules are not safe to import from two threads
at once (a page importing GPT2Config while a warm-up thread imported transformers failed).
Nor is torch's: the home page does not load torch, so the warm-up usually does, and a lesson
opened meanwhile imports it and its own modules while the warm-up imports torch._dynamo (seen:
"RuntimeError: operator symm_mem::fused_all_gather_matmul does not exist"). So torch and
torch._dynamo are imported together, one thread at a time, by `import_torch`: the warm-up
calls it first, app.py before every lesson's script.
"""
from __future__ import annotations

import logging
import threading

log = logging.getLogger("gptcourse")
_started = threading.Event()
_done = threading.Event()
_torch_import = threading.Lock()


def import_torch() -> None:
    """Import torch and torch._dynamo, one thread at a time (waiting while another thread
    does); once they are loaded, this returns at once."""
    with _torch_import:
        import torch._dynamo  # noqa: F401


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
        import_torch()
        import altair  # noqa: F401 - the charts' import, once

        from classroom import hub, models
        from gptcore.tokenizers import gpt2_encoding

        gpt2_encoding()
        if not models.distilgpt2_available(hub.hub_status(timeout=3.0)):
            models.random_model()
    except Exception:  # noqa: BLE001 - a failed warm-up only means a slower first open
        log.exception("warm-up failed; pages will do this work on their first open")
    finally:
        _done.set()
