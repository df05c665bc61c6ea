"""Time to validation loss 1.89 on Tiny Shakespeare, character level: the `fast-cpu` preset
against nanoGPT's README recipe for a CPU, in one run, as process wall time.

    python -m benchmarks.time_to_loss --corpus ../shared/data/tinyshakespeare.txt

Each is a fresh process, timed from its launch (Python, torch, reading and tokenizing the
text all count):
- fast-cpu: `python -m gptcore.train --preset fast-cpu --target-val-loss 1.89`, until it prints
  the first evaluation at or below the target (its validation loss is exact: the whole
  validation split; its screens and evaluations count);
- nanoGPT: `python -m benchmarks.nanogpt_recipe`, the real nanoGPT model with the README's
  2000 iterations, until its last step. Its exact validation loss is computed afterwards,
  untimed, and reported (about 1.89: the recipe's own end point).
fast-cpu runs before and after nanoGPT (this machine's speed drifts); the ratio uses the
mean of its two times.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import nanogpt
from benchmarks.common import load_average, parser, report

ROOT = Path(__file__).resolve().parent.parent


def run_until(cmd: list[str], done) -> tuple[float | None, dict | None, list[dict]]:
    """Launch `cmd`; (seconds from launch to the first JSON line where done(line), that line,
    every JSON line). The process is left to finish what it prints after that line."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    seconds, hit, lines = None, None, []
    for raw in proc.stdout:
        line = json.loads(raw)
        lines.append(line)
        if hit is None and done(line):
            seconds, hit = time.perf_counter() - start, line
    if proc.wait() not in (0, None):
        raise SystemExit(f"{' '.join(cmd)} failed with exit code {proc.returncode}")
    return seconds, hit, lines


def fast_cpu(corpus: Path, target: float) -> dict:
    cmd = [sys.executable, "-m", "gptcore.train", "--preset", "fast-cpu", "--corpus",
           str(corpus), "--target-val-loss", str(target)]
    seconds, hit, lines = run_until(cmd, lambda e: e["val_loss"] <= target)
    return {"run": "fast-cpu (gptcore.train)", "process s to target": seconds,
            "iters": hit["iter"] if hit else lines[-1]["iter"],
            "val loss": hit["val_loss"] if hit else lines[-1]["val_loss"],
            "train s": (hit or lines[-1])["elapsed_s"]}


def nanogpt_readme(corpus: Path) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.nanogpt_recipe", "--corpus", str(corpus)]
    seconds, _, lines = run_until(cmd, lambda e: "trained" in e)
    return {"run": "nanoGPT README recipe (real model)", "process s to target": seconds,
            "iters": 2000, "val loss": lines[-1]["exact_val_loss"], "train s": None}


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--target", type=float, default=1.89)
    args = p.parse_args(argv)
    if not args.corpus.is_file():
        raise SystemExit(f"corpus not found: {args.corpus}")
    corpus = args.corpus.resolve()
    load = load_average()
    if nanogpt.load() is None:  # fast-cpu alone, with nothing to compare it with
        return report("time_to_loss", [fast_cpu(corpus, args.target)],
                      {"target_val_loss": args.target, "nanogpt": nanogpt.MISSING})
    before = fast_cpu(corpus, args.target)
    nano = nanogpt_readme(corpus)
    after = fast_cpu(corpus, args.target)
    fast = [r["process s to target"] for r in (before, after)]
    share = None if None in fast else sum(fast) / 2 / nano["process s to target"]
    return report("time_to_loss", [before, nano, after], {
        "target_val_loss": args.target,
        "fast_cpu_process_s": fast,
        "nanogpt_process_s": nano["process s to target"],
        "nanogpt_final_val_loss": nano["val loss"],
        "fast_share_of_nanogpt_time": share,
        "within_a_third": share is not None and share <= 1 / 3,
        "load_average_before": load,
    })


if __name__ == "__main__":
    main()
