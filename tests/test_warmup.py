"""The server's warm-up thread (classroom.warmup): it loads what the lessons need once per
process, never imports transformers (whose lazy modules are not safe to import from two
threads), and the random model it builds is the one the pages get."""
import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path

from classroom import warmup

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys
from classroom import models, warmup
warmup.start()
assert warmup.wait(300), "the warm-up did not finish"
assert "transformers" not in sys.modules
assert all(m in sys.modules for m in ("altair", "torch._dynamo", "pandas"))
from gptcore.tokenizers import gpt2_encoding
assert gpt2_encoding.cache_info().currsize == 1
assert models._build_random_model.cache_info().currsize == 1
built = models._build_random_model()
assert models.random_model() is built and models.shared_hf_model(models.SRC_RANDOM) is built
print("ok")
"""


def test_warm_up_loads_the_lessons_needs_without_transformers():
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=300, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


def test_warm_up_runs_once_per_process(monkeypatch):
    calls = []
    monkeypatch.setattr(warmup, "_started", threading.Event())
    monkeypatch.setattr(warmup, "_done", threading.Event())
    monkeypatch.setattr(warmup, "_warm", lambda: (calls.append(1), warmup._done.set()))
    for _ in range(5):
        warmup.start()
    assert warmup.wait(10) and calls == [1]


HOME_PROBE = """
import sys
from streamlit.testing.v1 import AppTest
from classroom import warmup
warmup.start = lambda: None  # the home page alone, not what the server loads after it
at = AppTest.from_file("app.py", default_timeout=60).run()
assert not at.exception, [e.value for e in at.exception]
assert at.title[0].value == "Building GPT, step by step"
print(sorted(m for m in ("torch", "numpy", "transformers", "altair", "tiktoken")
             if m in sys.modules))
"""


def test_the_home_page_opens_without_torch():
    """The home page (lesson list, progress, sidebar) is the server's first page: it draws
    before torch (2 s) is loaded (benchmarks.page_open)."""
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", HOME_PROBE], capture_output=True, text=True,
                         timeout=300, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_lessons_run_side_by_side_and_never_beside_a_first_import_of_torch(monkeypatch):
    """Two threads importing torch's modules for the first time at once can see each other's
    half-made modules: app.py runs every lesson inside warmup.lesson_running(), and the
    warm-up's imports of torch and torch._dynamo run alone."""
    from streamlit.testing.v1 import AppTest

    entered = []

    @contextlib.contextmanager
    def recording():
        entered.append("lesson")
        yield

    monkeypatch.setattr(warmup, "lesson_running", recording)
    monkeypatch.setattr(warmup, "start", lambda: None)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert entered == []  # the home page does not need torch
    at.switch_page("pages/2_tokenization.py").run()
    assert entered == ["lesson"] and not at.exception
    monkeypatch.undo()

    gate = warmup.Gate()
    order = []

    def script(name, hold):
        with gate.script():
            order.append(f"{name} in")
            time.sleep(hold)
            order.append(f"{name} out")

    def alone():
        with gate.alone():
            order.append("import in")
            time.sleep(0.2)
            order.append("import out")

    a = threading.Thread(target=script, args=("a", 0.4))
    a.start()
    time.sleep(0.1)
    b = threading.Thread(target=script, args=("b", 0.1))  # side by side with a
    b.start()
    b.join()
    importer = threading.Thread(target=alone)  # waits for a to end
    importer.start()
    time.sleep(0.1)
    c = threading.Thread(target=script, args=("c", 0.0))  # waits for the import
    c.start()
    for t in (a, importer, c):
        t.join(10)
    assert order == ["a in", "b in", "b out", "a out", "import in", "import out", "c in", "c out"]
