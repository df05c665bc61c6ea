"""The server's warm-up thread (classroom.warmup): it loads what the lessons need once per
process, never imports transformers (whose lazy modules are not safe to import from two
threads), and the random model it builds is the one the pages get."""
import subprocess
import sys
import threading
from pathlib import Path

from classroom import warmup

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys
from classroom import models, warmup
warmup.start()
assert warmup.wait(300), "the warm-up did not finish"
assert "transformers" not in sys.modules
assert "altair" in sys.modules and "torch._dynamo" in sys.modules
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
