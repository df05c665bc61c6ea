"""Shared helpers: a corpus argument, timing, and printing results as a table and as JSON."""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

DEFAULT_CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "tinyshakespeare.txt"

# Lesson 5's defaults (classroom/training_views.py), written out for the benchmarks to replay.
LESSON5_MODEL = dict(n_layer=2, n_head=3, n_embd=96, block_size=64, bias=False,
                     activation="gelu_exact")  # lesson 5's defaults (classroom/training_views.py)
LESSON5_TRAIN = dict(batch_size=32, max_iters=1100, lr=1e-2, min_lr=1e-3, warmup_iters=30,
                     weight_decay=0.1, grad_clip=1.0, eval_interval=100, sample_tokens=150,
                     eval_train_tokens=8192, seed=1337)
# lesson 5's defaults before benchmarks.learner_minute: nanoGPT's baby GPT for 300 steps
BEFORE_MODEL = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, bias=False,
                    activation="gelu_exact")
BEFORE_TRAIN = dict(LESSON5_TRAIN, max_iters=300, lr=4e-3, min_lr=4e-4, eval_interval=50)


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS,
                   help="a UTF-8 text file (default: ../shared/data/tinyshakespeare.txt)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    return p


def setup(args) -> str:
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.corpus.is_file():
        raise SystemExit(f"corpus not found: {args.corpus}")
    return args.corpus.read_text(encoding="utf-8")


def timed(fn, *a, **kw):
    start = time.perf_counter()
    out = fn(*a, **kw)
    return out, time.perf_counter() - start


def load_average() -> float:
    """The machine's 1-minute load average: printed beside each figure (2 cores, shared)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def report(name: str, rows: list[dict], summary: dict) -> dict:
    """Print a table of rows, the summary, then one JSON line with everything."""
    print(f"\n## {name}  (torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()})")
    if rows:
        cols = list(rows[0])
        widths = [max(len(str(c)), *(len(fmt(r.get(c))) for r in rows)) for c in cols]
        print("  ".join(str(c).ljust(w) for c, w in zip(cols, widths)))
        for r in rows:
            print("  ".join(fmt(r.get(c)).ljust(w) for c, w in zip(cols, widths)))
    for k, v in summary.items():
        print(f"{k}: {fmt(v)}")
    result = {"benchmark": name, "rows": rows, "summary": summary}
    print("JSON " + json.dumps(result))
    return result


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)
