"""Lesson 1's model offline: a DistilGPT2-shaped GPT with random weights, built once per
server process (`classroom.hub.random_gpt2`). How long lessons take to open in a browser is
`benchmarks.page_open`; this one measures the parts.

    python -m benchmarks.lesson1_open

Two figures:
- build: `hub.random_gpt2()` (gptcore's GPT built with gptcore.model.AllocateOnly, each weight
  drawn once) against `GPT2LMHeadModel(config)` (what lesson 1 built before: PyTorch's default
  init of every layer, then transformers' post_init over it), alternated in one process after
  transformers is imported;
- import: `from transformers import GPT2LMHeadModel` in a fresh process that has already
  imported torch, streamlit and pandas: what lesson 1 paid on its first open before, and no
  longer does.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

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


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=4, help="builds of each kind, alternated")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    load = load_average()
    summary = builds(args.rounds)
    summary["build_speedup"] = summary["GPT2LMHeadModel_init_s"] / summary["random_gpt2_s"]
    summary["import_transformers_s"] = import_seconds()
    summary["load_average_before"] = load
    return report("lesson1_open", [], summary)


if __name__ == "__main__":
    main()
