"""The cost of the sandbox: N checks of an exercise answer through `classroom.sandbox` (fork a
locked-down child from the warm zygote, check, report) against the same checks in this
process (`gptcore.exercises.check`), plus the zygote's one-off start (import torch + self-test).

    python -m benchmarks.sandbox --n 40
"""
import statistics
import time

from benchmarks.common import parser, report
from classroom.sandbox import Sandbox


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=40, help="checks per path")
    p.add_argument("--exercise", default="model.gelu")
    args = p.parse_args(argv)
    from gptcore.exercises import EXERCISES, check

    exercise = next(e for e in EXERCISES if e.id == args.exercise)
    sources = [exercise.solution, exercise.starter]  # a pass and a fail, alternating

    start = time.perf_counter()
    box = Sandbox()
    hello = box.start()
    t_start = time.perf_counter() - start
    try:
        timings = {"sandboxed": [], "in-process": []}
        agree = True
        for i in range(args.n):
            source = sources[i % 2]
            t0 = time.perf_counter()
            boxed = box.check(exercise.id, source)
            t1 = time.perf_counter()
            local = check(exercise.id, source)
            t2 = time.perf_counter()
            timings["sandboxed"].append(t1 - t0)
            timings["in-process"].append(t2 - t1)
            agree &= boxed == local
        fork = []
        for _ in range(args.n):  # the bare cost: a job that does nothing but come back
            t0 = time.perf_counter()
            box.run("call", {"source": "def f():\n    return 1\n", "name": "f", "calls": [[]]})
            fork.append(time.perf_counter() - t0)
    finally:
        box.close()
    rows = [{"path": name, "n": len(ts), "median_s": statistics.median(ts),
             "p95_s": percentile(ts, 0.95), "max_s": max(ts)} for name, ts in
            [("sandboxed check", timings["sandboxed"]), ("in-process check", timings["in-process"]),
             ("sandboxed empty job (fork+lockdown)", fork)]]
    overhead = rows[0]["median_s"] - rows[1]["median_s"]
    return report("sandbox", rows, {
        "exercise": exercise.id, "zygote_start_s": t_start, "landlock_abi": hello["landlock_abi"],
        "seccomp": hello["seccomp"], "sandbox_overhead_median_s": overhead,
        "same_results": agree, "median_within_2s": rows[0]["median_s"] <= 2.0})


if __name__ == "__main__":
    main()
