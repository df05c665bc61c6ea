"""The sandbox: learner code runs here, in a locked-down child process, never in the server.

    from classroom import sandbox
    if sandbox.enabled():
        result = sandbox.check("model.gelu", source, learner=session_id)   # a CheckResult

How it works (see `classroom/sandbox_worker.py` for the child's side):
- One warm *zygote* process per server, started with an EMPTY environment and `python -I`. It
  imports torch and gptcore once, proves with a self-test child that the kernel really applies
  Landlock and seccomp, then forks a fresh child per request (~0.03 s instead of ~3 s).
- Each child locks itself down before it touches learner code: its own scratch folder (deleted
  afterwards), rlimits (memory, CPU, file size, open files, no core, no processes), no file
  descriptor but its output file and result pipe, no capabilities, Landlock (read-only Python
  and the repo's public files, read-write scratch, nothing else: no /proc, no TCP, no signals
  out) and a seccomp allow-list (no fork/exec, no sockets, no ptrace, signals only to itself).
- The zygote enforces the wall-clock limit, reaps the child and explains how it ended in
  plain words ("your code used more than 512 MB"). Results are JSON lines read with a size
  bound, never unpickled; a job may stream events before its result and can be cancelled.
- Fail closed: if the kernel refuses Landlock or seccomp, or libseccomp is missing, nothing
  runs and `SandboxUnavailable` says so. A host turns code execution off with
  GPTCOURSE_RUN_CODE=0 (or off/false/no).
- What it does not prevent: a learner's code can forge its OWN result (it owns the process
  that reports it): "passed" is a hint to the learner, not a grade. It can read the book's
  public source and Python's installed files.

Limits are `SandboxLimits`, overridable by the host with GPTCOURSE_SANDBOX_* variables (read
here, never in gptcore). `Sandbox` caps concurrent children (GPTCOURSE_SANDBOX_CONCURRENCY,
default 2) with a FIFO queue that tells a caller its position, and runs one request at a time
per learner.
"""
from __future__ import annotations

import atexit
import collections
import ctypes
import dataclasses
import itertools
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
SWITCH = "GPTCOURSE_RUN_CODE"
OFF_VALUES = frozenset({"0", "off", "false", "no"})
MAX_SOURCE_BYTES = 64 * 1024
MAX_ARGS_BYTES = 4 << 20
MAX_QUEUE = 64
MAX_LINE = 8 << 20  # one line from the zygote (a result is capped at result_bytes in the zygote)
STARTUP_TIMEOUT_S = 120.0
GRACE_S = 15.0  # beyond a run's wall limit before the server gives up on the zygote

NOTEBOOK_HINT = "Download the notebook to do the exercises in Jupyter."
OFF_MESSAGE = (f"Code checking is turned off on this server ({SWITCH}=0). {NOTEBOOK_HINT}")
REFUSED_MESSAGE = ("Code checking is off on this server: the kernel refused the sandbox ({reason}). "
                   + NOTEBOOK_HINT)
START_FAILED_MESSAGE = ("Code checking is not working on this server right now: the checker did not "
                        "start ({reason}). " + NOTEBOOK_HINT)
RETRY_START_S = 30.0
BUSY_MESSAGE = "Your previous code is still running. Wait for its result, then check again."
FULL_MESSAGE = "Too many people are checking code right now. Try again in a minute."
TOO_LONG_MESSAGE = "Your code is longer than {kb} KB; an exercise answer is much shorter."

# How a run ended, in words a learner understands. {detail} comes from the (untrusted) child,
# cut short; the numbers come from the limits.
MESSAGES = {
    "timeout": "Your code took longer than {wall_s:g} s, so it was stopped.",
    "cpu": "Your code used more than {cpu_s:g} s of computing time, so it was stopped.",
    "memory": "Your code used more than {memory_mb} MB of memory, so it was stopped.",
    "output": "Your code printed more than {output_kb:g} KB, so it was stopped.",
    "file_size": "Your code wrote a file bigger than {output_kb:g} KB, so it was stopped.",
    "disk": "Your code wrote more than {scratch_mb} MB of files, so it was stopped.",
    "too_much_data": "Your code sent back more than {result_kb:g} KB of results, so it was stopped.",
    "process": "Your code tried to start a process — that is not allowed here ({detail}).",
    "network": "Your code tried to open a network connection — that is not allowed here.",
    "signal": "Your code tried to signal another process — that is not allowed here.",
    "write": ("Your code tried to change a file outside its own scratch folder — that is not "
              "allowed here ({detail})."),
    "syscall": ("Your code made a system call that is not allowed here (such as starting a "
                "process or reaching into another process), so it was stopped."),
    "crash": "Your code crashed the Python process ({detail}).",
    "exit": ("Your code ended the process before the check finished (exit status {detail}). "
             "An exercise answer should not call exit()."),
    "job_error": "The checker itself failed: {detail}",
    "setup": "The sandbox could not be set up, so your code did not run: {detail}",
    "cancelled": "Stopped before it finished.",
    "restart": "The code checker restarted while your code was waiting or running. Check again.",
    "unknown_job": "This kind of run is not available on this server ({detail}).",
    "busy": FULL_MESSAGE,
    "unavailable": "{detail}",
}


class SandboxUnavailable(RuntimeError):
    """Code execution is off (the host's switch) or impossible (the kernel refused the sandbox).
    `str(exc)` is the message to show; the page then offers the notebook instead."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


class SandboxBusy(RuntimeError):
    """The same learner already has code running (or the queue is full). `str(exc)` says so."""


def enabled(environ=None) -> bool:
    """The host's switch: GPTCOURSE_RUN_CODE=0/off/false/no turns learner code execution off."""
    value = (os.environ if environ is None else environ).get(SWITCH, "1")
    return value.strip().lower() not in OFF_VALUES


@dataclasses.dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. A check needs a few seconds; a training job would pass longer ones."""

    memory_mb: int = 512
    cpu_s: float = 5.0
    wall_s: float = 8.0
    output_bytes: int = 64 * 1024
    scratch_mb: int = 16
    result_bytes: int = 1 << 20

    ENV = {"memory_mb": "GPTCOURSE_SANDBOX_MEMORY_MB", "cpu_s": "GPTCOURSE_SANDBOX_CPU_S",
           "wall_s": "GPTCOURSE_SANDBOX_WALL_S", "output_bytes": "GPTCOURSE_SANDBOX_OUTPUT_BYTES",
           "scratch_mb": "GPTCOURSE_SANDBOX_SCRATCH_MB", "result_bytes": "GPTCOURSE_SANDBOX_RESULT_BYTES"}

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "SandboxLimits":
        env = os.environ if environ is None else environ
        values = {}
        for f in dataclasses.fields(cls):
            raw = env.get(cls.ENV[f.name])
            if raw:
                try:
                    values[f.name] = float(raw) if f.type == "float" else int(float(raw))
                except ValueError:
                    pass
        values.update(overrides)
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def words(self) -> dict:
        return {**self.to_dict(), "output_kb": self.output_bytes / 1024, "result_kb": self.result_bytes / 1024}


@dataclasses.dataclass(frozen=True)
class SandboxStatus:
    """`available`: True once the self-test passed, False if refused, None if not tried yet."""

    enabled: bool
    available: bool | None
    landlock_abi: int
    seccomp: bool
    reason: str = ""


def kernel_features() -> dict:
    """A cheap probe in this process: Landlock's ABI, seccomp filters, libseccomp, and the two
    PyPI packages that drive them (`landlock`, `pyseccomp`)."""
    import importlib.util

    missing = [name for name in ("landlock", "pyseccomp") if importlib.util.find_spec(name) is None]
    abi = 0
    try:
        import landlock
        abi = int(landlock.landlock_abi_version())
    except Exception:  # noqa: BLE001 - ENOSYS, EOPNOTSUPP (disabled at boot), no package
        pass
    seccomp = False
    try:
        with open("/proc/self/status") as f:
            seccomp = any(line.startswith("Seccomp:") for line in f)
    except OSError:
        pass
    try:
        ctypes.CDLL("libseccomp.so.2")
        libseccomp = True
    except OSError:
        libseccomp = False
    reason = ""
    if missing:
        reason = f"the Python package{'s' if len(missing) > 1 else ''} {' and '.join(missing)} " \
                 f"{'are' if len(missing) > 1 else 'is'} not installed"
    elif abi < 1:
        reason = "Landlock is not available on this kernel"
    elif not seccomp:
        reason = "this kernel has no seccomp filters"
    elif not libseccomp:
        reason = "libseccomp (the libseccomp2 system package) is not installed"
    return {"landlock_abi": abi, "seccomp": seccomp, "libseccomp": libseccomp, "reason": reason}


class Run:
    """One request: queued, then running in a child, then done. Thread-safe to read."""

    def __init__(self, sandbox: "Sandbox", rid: int, job: str, args, learner: str,
                 limits: SandboxLimits, on_event: Callable[[dict], None] | None):
        self.sandbox, self.id, self.job, self.args, self.learner = sandbox, rid, job, args, learner
        self.limits, self.on_event = limits, on_event
        self.state = "queued"
        self.started: float | None = None
        self.events: queue.Queue = queue.Queue()
        self.outcome: dict | None = None
        self._done = threading.Event()

    @property
    def position(self) -> int:
        """1 for the next in the queue, 0 once running or done."""
        return self.sandbox._position(self)

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def cancel(self):
        self.sandbox._cancel(self)

    def wait(self, timeout: float | None = None) -> dict | None:
        self._done.wait(timeout)
        return self.outcome

    def iter_events(self, poll_s: float = 0.1):
        """Yield streamed events until the run is done (then read `outcome`)."""
        while True:
            try:
                yield self.events.get(timeout=poll_s)
            except queue.Empty:
                if self._done.is_set() and self.events.empty():
                    return


class _Zygote:
    """The zygote process and the thread that reads its replies."""

    def __init__(self, sandbox: "Sandbox", python: str, scratch_base: str, jobs: dict,
                 min_landlock_abi: int):
        # each zygote has its own folder: cleaning up after a dead one never touches the next's
        scratch_base = self.scratch = tempfile.mkdtemp(prefix="zygote-", dir=scratch_base)
        cfg = {"root": str(ROOT), "scratch_base": scratch_base, "jobs": jobs,
               "min_landlock_abi": min_landlock_abi}
        env = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
               "HOME": scratch_base, "TMPDIR": scratch_base,
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                "from classroom.sandbox_worker import main; main()")
        self.sandbox = sandbox
        self.proc = subprocess.Popen([python, "-I", "-c", code, json.dumps(cfg)], env=env,
                                     cwd=scratch_base, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     close_fds=True, start_new_session=True)
        self.pid = self.proc.pid
        self.hello: dict | None = None
        self.hello_event = threading.Event()
        self.alive = True
        self.write_lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, name="sandbox-zygote-reader", daemon=True)
        self.reader.start()

    def send(self, obj: dict) -> bool:
        data = (json.dumps(obj) + "\n").encode()
        with self.write_lock:
            try:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
                return True
            except (BrokenPipeError, OSError, ValueError):
                return False

    def _read(self):
        stream = self.proc.stdout
        try:
            while True:
                line = stream.readline(MAX_LINE)
                if not line:
                    break
                if not line.endswith(b"\n"):  # over-long: skip the rest of it
                    while (more := stream.readline(MAX_LINE)) and not more.endswith(b"\n"):
                        pass
                    continue
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(msg, dict):
                    continue
                if "hello" in msg:
                    self.hello = msg["hello"] if isinstance(msg["hello"], dict) else {}
                    self.hello_event.set()
                else:
                    self.sandbox._on_message(self, msg)
        finally:
            self.alive = False
            self.hello_event.set()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.sandbox._on_zygote_exit(self)

    def stop(self, timeout: float = 5.0):
        try:
            self.proc.stdin.close()  # the zygote kills its children and exits on EOF
        except OSError:
            pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        try:
            self.proc.kill()
        except OSError:
            pass

    def cleanup(self):
        """Remove this zygote's scratch folder (its children died with it)."""
        for _ in range(20):
            shutil.rmtree(self.scratch, ignore_errors=True)
            if not os.path.exists(self.scratch):
                return
            time.sleep(0.05)


class Sandbox:
    """Process-wide: the zygote's lifecycle (started on first use, restarted if it dies), a
    global cap on concurrent children with a FIFO queue, one request at a time per learner."""

    def __init__(self, limits: SandboxLimits | None = None, jobs: dict[str, str] | None = None,
                 max_concurrent: int | None = None, python: str | None = None,
                 startup_timeout: float = STARTUP_TIMEOUT_S, min_landlock_abi: int = 1):
        self.limits = limits or SandboxLimits.from_env()
        self.jobs = dict(jobs or {})  # extra trusted jobs: name -> "module:function"
        if max_concurrent is None:
            try:
                max_concurrent = int(os.environ.get("GPTCOURSE_SANDBOX_CONCURRENCY", "2"))
            except ValueError:
                max_concurrent = 2
        self.max_concurrent = max(1, max_concurrent)
        self.python = python or sys.executable
        self.startup_timeout = startup_timeout
        self.min_landlock_abi = min_landlock_abi  # 1: filesystem rules; higher ABIs add TCP and scopes
        self.scratch_base = tempfile.mkdtemp(prefix="gptcourse-sandbox-")
        # removed even if close() is never called (at garbage collection or interpreter exit);
        # the zygote itself exits when this process does (its stdin closes)
        weakref.finalize(self, shutil.rmtree, self.scratch_base, True)
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self._zygote: _Zygote | None = None
        self._refused: str | None = None  # the kernel said no: for good
        self._start_failed: tuple[float, str] | None = None  # anything else: retried later
        self._hello: dict | None = None
        self._queue: collections.deque[Run] = collections.deque()
        self._running: dict[int, Run] = {}
        self._learners: dict[str, Run] = {}
        self._ids = itertools.count(1)
        self._restarting = False
        self._closed = False

    # ---------------------------------------------------------------- zygote lifecycle
    @property
    def zygote_pid(self) -> int | None:
        z = self._zygote
        return z.pid if z and z.alive else None

    def start(self) -> dict:
        """Start the zygote (if not running) and return its hello; raise SandboxUnavailable."""
        if self._refused:
            raise SandboxUnavailable(REFUSED_MESSAGE.format(reason=self._refused), self._refused)
        with self._start_lock:
            z = self._zygote
            if z and z.alive and z.hello and z.hello.get("ok"):
                return z.hello
            if self._closed:
                raise SandboxUnavailable("The sandbox has been shut down.", "closed")
            features = kernel_features()
            if features["reason"]:
                self._refuse(features["reason"])
            if self._start_failed and time.monotonic() < self._start_failed[0] + RETRY_START_S:
                reason = self._start_failed[1]
                raise SandboxUnavailable(START_FAILED_MESSAGE.format(reason=reason), reason)
            os.makedirs(self.scratch_base, exist_ok=True)
            z = _Zygote(self, self.python, self.scratch_base, self.jobs, self.min_landlock_abi)
            z.hello_event.wait(self.startup_timeout)
            hello = z.hello or {"ok": False, "stage": "startup",
                                "reason": "it exited" if not z.alive else "it took too long"}
            if not hello.get("ok"):
                z.kill() if z.alive and not z.hello else z.stop()
                z.cleanup()
                reason = str(hello.get("reason") or "the sandbox self-test failed")
                if hello.get("stage") == "kernel":
                    self._refuse(reason)
                self._start_failed = (time.monotonic(), reason)
                raise SandboxUnavailable(START_FAILED_MESSAGE.format(reason=reason), reason)
            self._start_failed = None
            self._hello = hello
            with self._lock:
                self._zygote = z
                self._pump()
            return hello

    def _refuse(self, reason: str):
        self._refused = reason
        raise SandboxUnavailable(REFUSED_MESSAGE.format(reason=reason), reason)

    def warm_up(self) -> threading.Thread:
        """Start the zygote in the background (the first check then costs no import time)."""
        def go():
            try:
                self.start()
            except SandboxUnavailable:
                pass
        t = threading.Thread(target=go, name="sandbox-warm-up", daemon=True)
        t.start()
        return t

    def status(self) -> SandboxStatus:
        features = kernel_features()
        on = enabled()
        reason = "" if on else OFF_MESSAGE
        available = None
        if self._refused:
            available, reason = False, reason or self._refused
        elif features["reason"]:
            available, reason = False, reason or features["reason"]
        elif self._hello:
            available = bool(self._hello.get("ok"))
        elif self._start_failed:
            reason = reason or START_FAILED_MESSAGE.format(reason=self._start_failed[1])
        return SandboxStatus(enabled=on, available=available, landlock_abi=features["landlock_abi"],
                             seccomp=bool(self._hello.get("seccomp")) if self._hello else features["seccomp"],
                             reason=reason)

    def close(self):
        """Stop the zygote (it kills its children) and fail whatever was still waiting."""
        with self._lock:
            self._closed = True
            z, self._zygote = self._zygote, None
            pending = list(self._running.values()) + list(self._queue)
            self._running.clear()
            self._queue.clear()
            self._learners.clear()
        if z:
            z.stop()
            z.cleanup()
        for run in pending:
            self._finish(run, self._failure("unavailable", "The sandbox has been shut down.", run.limits))
        shutil.rmtree(self.scratch_base, ignore_errors=True)

    def _on_zygote_exit(self, z: _Zygote):
        lost: list[Run] = []
        restart = False
        with self._lock:
            if self._zygote is z:  # else it never became the zygote, or was replaced or closed
                self._zygote = None
                lost = list(self._running.values())
                self._running.clear()
                for run in lost:
                    self._learners.pop(run.learner, None)
                restart = bool(self._queue) and not self._closed
        for run in lost:
            self._finish(run, self._failure("restart", "", run.limits))
        z.cleanup()
        if restart:
            self._restart_in_background()

    def _restart_in_background(self):
        with self._lock:
            if self._restarting:
                return
            self._restarting = True

        def go():
            try:
                self.start()
            except SandboxUnavailable as exc:
                with self._lock:
                    waiting = list(self._queue)
                    self._queue.clear()
                    for run in waiting:
                        self._learners.pop(run.learner, None)
                for run in waiting:
                    self._finish(run, self._failure("unavailable", str(exc), run.limits))
            finally:
                with self._lock:
                    self._restarting = False
        threading.Thread(target=go, name="sandbox-restart", daemon=True).start()

    def kill_zygote(self):
        """For tests and for a zygote that stopped answering: runs in flight fail with a
        'restarted' message; the next request starts a new zygote."""
        z = self._zygote
        if z:
            z.kill()

    # ---------------------------------------------------------------- runs
    def submit(self, job: str, args: dict, learner: str = "", limits: SandboxLimits | None = None,
               on_event: Callable[[dict], None] | None = None) -> Run:
        """Queue a run of a trusted job on the learner's input; returns at once."""
        if len(json.dumps(args)) > MAX_ARGS_BYTES:
            raise ValueError(f"job arguments over {MAX_ARGS_BYTES} bytes")
        self.start()
        limits = limits or self.limits
        with self._lock:
            if learner and learner in self._learners:
                raise SandboxBusy(BUSY_MESSAGE)
            if len(self._queue) >= MAX_QUEUE:
                raise SandboxBusy(FULL_MESSAGE)
            run = Run(self, next(self._ids), job, args, learner, limits, on_event)
            if learner:
                self._learners[learner] = run
            self._queue.append(run)
            self._pump()
            restart = self._zygote is None
        if restart:
            self._restart_in_background()
        return run

    def run(self, job: str, args: dict, learner: str = "", limits: SandboxLimits | None = None,
            on_event: Callable[[dict], None] | None = None,
            on_queue: Callable[[int], None] | None = None) -> dict:
        """Submit and wait. The outcome: {"ok": True, "result", "output", "meta"} or
        {"ok": False, "kind", "message", "output", "meta"}. `on_queue(position)` is called
        whenever the caller's place in the queue changes (0: running)."""
        run = self.submit(job, args, learner=learner, limits=limits, on_event=on_event)
        last = None
        while not run.wait(0.05):
            pos = run.position
            if on_queue and pos != last:
                on_queue(pos)
            last = pos
            if run.started and time.monotonic() > run.started + run.limits.wall_s + GRACE_S:
                self.kill_zygote()  # it stopped answering: start over
                run.wait(GRACE_S)
                break
        return run.outcome or self._failure("restart", "", run.limits)

    def check(self, exercise_id: str, source: str, learner: str = "",
              on_queue: Callable[[int], None] | None = None):
        """`gptcore.exercises.check` in the sandbox: a CheckResult, also when the learner's code
        was stopped (passed=False, the reason in `feedback`)."""
        if len(source.encode("utf-8", "replace")) > MAX_SOURCE_BYTES:
            return _check_result(False, TOO_LONG_MESSAGE.format(kb=MAX_SOURCE_BYTES // 1024))
        out = self.run("check", {"exercise_id": exercise_id, "source": source}, learner=learner,
                       on_queue=on_queue)
        if not out["ok"]:
            return _check_result(False, out["message"])
        return _parse_check_result(out["result"])

    def queue_position(self, learner: str) -> int | None:
        """Where this learner's request is: 1 = next, 0 = running, None = nothing pending."""
        with self._lock:
            run = self._learners.get(learner)
        return None if run is None else run.position

    def _position(self, run: Run) -> int:
        with self._lock:
            try:
                return self._queue.index(run) + 1
            except ValueError:
                return 0

    def _pump(self):
        """Start queued runs while there is room (called with the lock held)."""
        z = self._zygote
        while self._queue and len(self._running) < self.max_concurrent and z and z.alive:
            run = self._queue.popleft()
            msg = {"op": "run", "id": run.id, "job": run.job, "args": run.args,
                   "limits": run.limits.to_dict()}
            self._running[run.id] = run
            run.state, run.started = "running", time.monotonic()
            if not z.send(msg):
                del self._running[run.id]
                run.state, run.started = "queued", None
                self._queue.appendleft(run)
                break  # the reader sees EOF and restarts

    def _cancel(self, run: Run):
        with self._lock:
            if run in self._queue:
                self._queue.remove(run)
                self._learners.pop(run.learner, None)
                queued = True
            else:
                queued = False
            z = self._zygote
        if queued:
            self._finish(run, self._failure("cancelled", "", run.limits))
        elif z and run.id in self._running:
            z.send({"op": "cancel", "id": run.id})

    def _on_message(self, z: _Zygote, msg: dict):
        try:
            rid = int(msg.get("id"))
        except (TypeError, ValueError):
            return
        with self._lock:
            run = self._running.get(rid)
        if run is None:
            return
        if "event" in msg:
            run.events.put(msg["event"])
            if run.on_event:
                try:
                    run.on_event(msg["event"])
                except Exception:  # noqa: BLE001 - a caller's callback must not kill the reader
                    pass
            return
        if "done" in msg and isinstance(msg["done"], dict):
            d = msg["done"]
            outcome = {"ok": True, "result": d.get("result"), "output": str(d.get("output", "")),
                       "meta": d.get("meta") if isinstance(d.get("meta"), dict) else {}}
        elif "error" in msg and isinstance(msg["error"], dict):
            e = msg["error"]
            outcome = self._failure(str(e.get("kind", "")), str(e.get("detail", "")), run.limits,
                                    output=str(e.get("output", "")),
                                    meta=e.get("meta") if isinstance(e.get("meta"), dict) else {})
        else:
            return
        with self._lock:
            if self._running.pop(rid, None) is None:
                return
            if self._learners.get(run.learner) is run:
                del self._learners[run.learner]
            self._pump()
        self._finish(run, outcome)

    @staticmethod
    def _failure(kind: str, detail: str, limits: SandboxLimits, output: str = "", meta=None) -> dict:
        template = MESSAGES.get(kind, "Your code was stopped ({detail}).")
        detail = " ".join(str(detail).split())[:200]
        try:
            message = template.format(detail=detail, **limits.words())
        except (KeyError, ValueError):
            message = template
        return {"ok": False, "kind": kind, "message": message, "detail": detail, "output": output,
                "meta": meta or {}}

    @staticmethod
    def _finish(run: Run, outcome: dict):
        run.outcome, run.state = outcome, "done"
        run._done.set()


# ---------------------------------------------------------------------------- CheckResult

def _check_result_class():
    try:
        from gptcore.exercises import CheckResult
        return CheckResult
    except ImportError:  # gptcore.exercises not importable: a stand-in with the same fields
        return _FallbackCheckResult


@dataclasses.dataclass(frozen=True)
class _FallbackCheckResult:
    passed: bool
    feedback: str
    stage: str
    line: int | None = None
    table: list = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        return cls(bool(d["passed"]), str(d["feedback"]), str(d["stage"]), d.get("line"),
                   list(d.get("table") or []))


def _check_result(passed: bool, feedback: str, stage: str = "runs"):
    return _check_result_class().from_dict({"passed": passed, "feedback": feedback, "stage": stage,
                                            "line": None, "table": []})


def _parse_check_result(d) -> object:
    """The child's answer is untrusted: keep the known fields, bounded, then from_dict."""
    try:
        line = d.get("line")
        clean = {"passed": d["passed"] is True, "feedback": str(d["feedback"])[:4000],
                 "stage": str(d["stage"])[:40],
                 "line": int(line) if isinstance(line, int) and not isinstance(line, bool) else None,
                 "table": [{str(k)[:80]: str(v)[:500] for k, v in list(row.items())[:12]}
                           for row in list(d.get("table") or [])[:20] if isinstance(row, dict)]}
        return _check_result_class().from_dict(clean)
    except Exception:  # noqa: BLE001
        return _check_result(False, "The checker sent back an answer it could not read.")


# ---------------------------------------------------------------------------- module API

_default: Sandbox | None = None
_default_lock = threading.Lock()


def default_sandbox() -> Sandbox:
    """The process-wide sandbox (created on first use, closed at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sandbox()
            atexit.register(_default.close)
        return _default


def check(exercise_id: str, source: str, learner: str = "",
          on_queue: Callable[[int], None] | None = None):
    """Check the learner's source for an exercise in the sandbox -> CheckResult.
    Raises SandboxUnavailable (switch off, or kernel refused) and SandboxBusy (this learner
    already has code running, or the queue is full)."""
    if not enabled():
        raise SandboxUnavailable(OFF_MESSAGE, "switched off")
    return default_sandbox().check(exercise_id, source, learner=learner, on_queue=on_queue)


def status() -> SandboxStatus:
    """Whether code checking is on, what the kernel offers, and why not if not."""
    if not enabled():
        features = kernel_features()
        return SandboxStatus(False, None, features["landlock_abi"], features["seccomp"], OFF_MESSAGE)
    return default_sandbox().status()


def tensor_from_json(value):
    """A tensor a job sent back as {"tensor": nested lists, "shape", "dtype"}."""
    import torch
    return torch.tensor(value["tensor"], dtype=getattr(torch, str(value.get("dtype", "float32"))))


__all__ = ["Sandbox", "SandboxBusy", "SandboxLimits", "SandboxStatus", "SandboxUnavailable", "Run",
           "check", "default_sandbox", "enabled", "kernel_features", "status", "tensor_from_json",
           "MESSAGES", "OFF_MESSAGE", "REFUSED_MESSAGE", "BUSY_MESSAGE"]
