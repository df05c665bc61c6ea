"""Every benchmark in one go; prints each table and a final JSON summary.

    python -m benchmarks.run_all --corpus ../shared/data/tinyshakespeare.txt
"""
import json
import sys

from benchmarks import app_overhead, bpe, generation, step_time, time_to_loss
from benchmarks.common import parser


def main():
    args, _ = parser(__doc__).parse_known_args()
    corpus = ["--corpus", str(args.corpus)]
    results = [
        step_time.main([]),
        generation.main([]),
        bpe.main(corpus),
        app_overhead.main(corpus),
        app_overhead.main([*corpus, "--in-process"]),
        time_to_loss.main(corpus),
    ]
    print("\nSUMMARY " + json.dumps({r["benchmark"]: r["summary"] for r in results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
