"""Work a lesson would otherwise do on its first open, done once per server process in a
background thread after the first page has been served (app.py starts it after the page, so
that it does not slow that page down): the imports of torch (1.6 to 2.2 s; the home page
does not need it), torch._dynamo (1.9 s: AdamW and any operation on the meta device import
it, so lesson 4's shape trace and lesson 5's measured step did), Altair (0.5 to 0.8 s) and
pandas (0.5 s), GPT-2's tokenizer (0.4 s) and, when DistilGPT2 cannot be had, the random
DistilGPT2-shaped model (0.7 s). The lessons then open without that wait
(benchmarks.page_open).

Nothing here imports `transformers`: its lazy modules are not safe to import from two threads
at once (a page importing GPT2Config while a warm-up thread imported transformers failed).
Nor is torch's: the home page does not load torch, so the warm-up usually does, and a lesson
opened meanwhile imports torch's modules while the warm-up imports torch._dynamo (seen:
"RuntimeError: operator symm_mem::fused_all_gather_matmul does not exist"). So torch's first
import and torch._dynamo's run alone, and lesson scripts run side by side between them
(`GATE`, a readers-writer lock): app.py runs each lesson's script inside `lesson_running()`.
Fragment reruns do not pass through app.py; they only use modules their page loaded.
"""
from __future__ import annotations

import contextlib
import logging
import threading

log = logging.getLogger("gptcourse")
_started = threading.Event()
_done = threading.Event()


class Gate:
    """Many lesson scripts at once, or one import alone; an import that waits goes first."""

    def __init__(self):
        self._cond = threading.Condition()
        self._scripts = 0
        self._alone = False
        self._waiting = 0

    @contextlib.contextmanager
    def script(self):
        with self._cond:
            self._cond.wait_for(lambda: not self._alone and not self._waiting)
            self._scripts += 1
        try:
            yield
        finally:
            with self._cond:
                self._scripts -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def alone(self):
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._alone and self._scripts == 0)
            self._waiting -= 1
            self._alone = True
        try:
            yield
        finally:
            with self._cond:
                self._alone = False
                self._cond.notify_all()


GATE = Gate()


_torch_loaded = threading.Event()  # not sys.modules: torch is there from its import's start


def import_torch() -> None:
    """Import torch alone (or wait while another thread does); at once once it is loaded.
    Never call it from inside `lesson_running()`: it would wait for itself."""
    if not _torch_loaded.is_set():
        with GATE.alone():
            import torch  # noqa: F401
        _torch_loaded.set()


@contextlib.contextmanager
def lesson_running():
    """app.py runs every lesson's script in this: torch is loaded first, and no first import
    of torch's modules (torch._dynamo) runs meanwhile."""
    import_torch()
    with GATE.script():
        yield


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
        import_torch()  # what every lesson needs first, then what lesson 1 needs
        from classroom import hub, models
        from gptcore.tokenizers import gpt2_encoding

        gpt2_encoding()
        if not models.distilgpt2_available(hub.hub_status(timeout=3.0)):
            models.random_model()
        import altair  # noqa: F401 - the charts' import, once

        with GATE.alone():  # when no lesson script runs
            import torch._dynamo  # noqa: F401
        import pandas  # noqa: F401 - every lesson's tables and charts (0.5 s); the home page has none
    except Exception:  # noqa: BLE001 - a failed warm-up only means a slower first open
        log.exception("warm-up failed; pages will do this work on their first open")
    finally:
        _done.set()
