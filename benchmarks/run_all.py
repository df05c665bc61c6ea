"""Every benchmark in one go: each prints its table, then one table holds every figure (a
figure that compares two things is a ratio measured within one run), then one JSON line.

    python -m benchmarks.run_all --corpus ../shared/data/tinyshakespeare.txt
    python -m benchmarks.run_all --skip app_overhead sandbox   # leave some out

The machine's load average is printed beside each benchmark: on 2 shared cores the figures
drift by ±20%.
"""
import json
import sys

from benchmarks import (app_overhead, bpe, generation, learner_minute, lesson1_open, page_open,
                        sandbox, step_time, time_to_loss)
from benchmarks.common import fmt, load_average, parser

BENCHMARKS = {  # name -> (module, whether it takes --corpus)
    "step_time": (step_time, False),
    "generation": (generation, False),
    "bpe": (bpe, True),
    "lesson1_open": (lesson1_open, False),
    "page_open": (page_open, False),
    "app_overhead": (app_overhead, True),
    "app_overhead_in_process": (app_overhead, True),
    "time_to_loss": (time_to_loss, True),
    "learner_minute": (learner_minute, True),
    "sandbox": (sandbox, False),
}


def figures(results: list[tuple[str, float, dict]]) -> list[tuple[str, str, str, str]]:
    """(benchmark, figure, value, load) rows for every number of every summary."""
    rows = []
    for name, load, result in results:
        for key, value in result["summary"].items():
            if isinstance(value, (int, float, bool)) and key != "load_average_before":
                rows.append((name, key, fmt(value), f"{load:.1f}"))
    return rows


def main():
    p = parser(__doc__)
    p.add_argument("--skip", nargs="*", default=[], choices=list(BENCHMARKS))
    args, _ = p.parse_known_args()
    corpus = ["--corpus", str(args.corpus)]
    results, failed = [], []
    for name, (module, takes_corpus) in BENCHMARKS.items():
        if name in args.skip:
            continue
        argv = corpus if takes_corpus else []
        if name == "app_overhead_in_process":
            argv = [*argv, "--in-process"]
        load = load_average()
        try:
            results.append((name, load, module.main(argv)))
        except (Exception, SystemExit) as e:  # one broken benchmark must not hide the others
            print(f"\n## {name} FAILED: {e!r}")
            failed.append((name, "failed", repr(e)[:60], f"{load:.1f}"))
    rows = [("benchmark", "figure", "value", "load")] + figures(results) + failed
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print("\n## every figure")
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    print("\nSUMMARY " + json.dumps({name: r["summary"] for name, _, r in results}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
