"""Lesson 1's first open: with the Hub unreachable it shows a DistilGPT2-shaped GPT-2 with
random weights, built once per server process (`classroom.hub.random_gpt2`).

    python -m benchmarks.lesson1_open

Three figures:
- build: `hub.random_gpt2()` (meta device, one seeded fill) against `GPT2LMHeadModel(config)`
  (what it did before: PyTorch's default init of every layer, then transformers' post_init
  over it), alternated in one process after transformers is imported;
- import: `from transformers import GPT2LMHeadModel` in a fresh process that has already
  imported torch, streamlit and pandas (as the app has when a learner opens lesson 1);
- live: `streamlit run app.py` offline, the home page opened once (as the browser tests do),
  then lesson 1 opened in headless Chromium: seconds until its script has finished and the
  page has painted, on the first open and on a reload.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import load_average, parser, report
from classroom import hub

IMPORT_PROBE = """
import time, torch, streamlit, pandas
start = time.perf_counter()
from transformers import GPT2LMHeadModel
print(time.perf_counter() - start)
"""


def transformers_build(seed: int = 0):
    """The previous random_gpt2: transformers' own initialisation, on real memory."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(n_layer=6, n_embd=768, n_head=12)).eval()


def timed_s(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def builds(rounds: int) -> dict:
    from transformers import GPT2LMHeadModel  # noqa: F401 - import once, outside the timings

    ours, theirs = [], []
    for r in range(rounds):  # alternate the order: this machine's speed drifts
        pair = [(ours, hub.random_gpt2), (theirs, transformers_build)]
        for times, fn in pair if r % 2 == 0 else pair[::-1]:
            times.append(timed_s(fn))
    return {"random_gpt2_s": statistics.median(ours),
            "GPT2LMHeadModel_init_s": statistics.median(theirs)}


def import_seconds() -> float:
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True,
                         check=True).stdout
    return float(out.strip().splitlines()[-1])


def live_open() -> tuple[float, float] | None:
    """(first open, reload) of lesson 1 in Chromium, in seconds; None without Chromium."""
    from tests import browser

    if not Path(browser.CHROMIUM).exists():
        return None
    with browser.streamlit_server() as (url, _):
        browser.warm_up(url)
        with browser.chromium() as chromium:
            page = chromium.new_page(viewport={"width": 1400, "height": 1000})
            times = []
            for _ in range(2):
                start = time.time()
                page.goto(url + "/lesson-1")
                browser.wait_settled(page, 120)
                page.get_by_text("Untrained: random weights").wait_for(timeout=60_000)
                browser.assert_no_exception(page)
                times.append(time.time() - start - 0.3)  # wait_settled adds 0.3 s to paint
            return times[0], times[1]


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=4, help="builds of each kind, alternated")
    p.add_argument("--no-browser", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = load_average()
    summary = builds(args.rounds)
    summary["build_speedup"] = summary["GPT2LMHeadModel_init_s"] / summary["random_gpt2_s"]
    summary["import_transformers_s"] = import_seconds()
    opened = None if args.no_browser else live_open()
    if opened:
        summary["lesson1_first_open_s"], summary["lesson1_reload_s"] = opened
        summary["first_open_within_3s"] = opened[0] <= 3.0
    summary["load_average_before"] = load
    return report("lesson1_open", [], summary)


if __name__ == "__main__":
    main()
