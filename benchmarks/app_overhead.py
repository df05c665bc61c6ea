"""In-app overhead: training from lesson 5's Train button against the same training headless,
alternated in one run.

    python -m benchmarks.app_overhead --corpus ../shared/data/tinyshakespeare.txt
    python -m benchmarks.app_overhead --in-process   # no server, no browser

Live (the default): `streamlit run app.py` on 127.0.0.1; headless Chromium uploads the corpus
in the sidebar, opens lesson 5 and presses Train with the page's defaults (baby GPT, 300 steps,
an evaluation with a sample every 50) while the live view reruns every second, then reads
tokens/s from the runs table. Headless is `python -m gptcore.train` with the same settings on
the same file. Both count tokens over training-step time (evaluations excluded). Chromium runs
on the same cores as the server here (on a hosted app it runs on the learner's computer), so
the CPU it used is printed beside each round.

--in-process: the lab's TrainingRun with its event callbacks, polled once a second like the
page's fragment, against the bare Trainer with none. Each runs in a fresh thread, as in the
app, whose main thread never runs torch: an OpenMP pool lives as long as the thread that made
it, and while one pool idles libgomp stops spinning in any other (more pool threads than
cores), which costs the second ~12%.
"""
from __future__ import annotations

import glob
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import torch

from benchmarks.common import LESSON5_MODEL as MODEL, LESSON5_TRAIN as TRAIN, parser, report, setup
from classroom.lab import Caps, Lab, TrainingRun
from gptcore.model import GPT, GPTConfig
from gptcore.trainer import TrainConfig, Trainer, prepare_data
from tests import browser  # the browser tests' server and Chromium helpers

ROOT = Path(__file__).resolve().parent.parent


def cli_args(corpus: Path) -> list[str]:
    args = ["--corpus", str(corpus), "--no-bias"]
    for key, value in {**MODEL, **TRAIN}.items():
        if key != "bias":
            args += [f"--{key.replace('_', '-')}", str(value)]
    return args


def headless_cli(corpus: Path) -> float:
    """tokens/s of `python -m gptcore.train` (its last JSON line)."""
    out = subprocess.run([sys.executable, "-m", "gptcore.train", *cli_args(corpus)], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["tokens_per_s"])


def chromium_cpu_seconds() -> float:
    """User + system CPU of every Chromium process so far (from /proc/PID/stat)."""
    ticks = 0
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:  # the process ended meanwhile
            continue
        if "(chrom" in text:
            fields = text[text.rindex(")") + 2:].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def alternated(round_: int, headless, in_app) -> tuple:
    """(headless result, in-app result), the two run in turn: this machine's speed drifts."""
    if round_ % 2:
        app = in_app()
        return headless(), app
    bare = headless()
    return bare, in_app()


class LiveApp:
    """One server and one learner's browser tab, kept across rounds."""

    def __init__(self, corpus: Path, stack: ExitStack):
        url, _ = stack.enter_context(browser.streamlit_server())
        browser.warm_up(url)
        self.page = stack.enter_context(browser.chromium()).new_page(
            viewport={"width": 1400, "height": 1000})
        self.page.goto(url + "/lesson-5")
        browser.wait_settled(self.page, 120)
        self._upload(corpus)
        self.runs = 0

    def _upload(self, corpus: Path):
        browser.choose(self.page, "Corpus", "Your own text (.txt)")
        sidebar = self.page.get_by_test_id("stSidebarUserContent")
        sidebar.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(corpus))
        self.page.get_by_text(f"Corpus: {corpus.name}").wait_for(timeout=60_000)
        browser.wait_settled(self.page)

    def train(self) -> tuple[float, float]:
        """(tokens/s, cores of Chromium CPU) for one run from the Train button."""
        self.runs += 1
        cpu0, t0 = chromium_cpu_seconds(), time.time()
        self.page.get_by_role("button", name="Train").click()
        name = f"run {self.runs}"  # lesson 5 has other tables: read the runs table alone
        table = self.page.locator("[data-testid='stTable']").filter(has_text=name).last
        row = table.locator("tbody tr", has_text=name)
        row.filter(has_text="done").wait_for(timeout=600_000)
        cpu = (chromium_cpu_seconds() - cpu0) / (time.time() - t0)
        cells = row.locator("td, th").all_inner_texts()
        header_rows = [r.locator("th").all_inner_texts() for r in table.locator("thead tr").all()]
        headers = next((h for h in header_rows if len(h) == len(cells)), header_rows[0])
        got = dict(zip(headers, cells))
        want = {"model": "{n_layer}L×{n_head}H×{n_embd}, ctx {block_size}".format(**MODEL),
                "batch": str(TRAIN["batch_size"]), "steps": str(TRAIN["max_iters"])}
        if any(got.get(k) != v for k, v in want.items()):  # the page's defaults moved
            raise SystemExit(f"lesson 5 trained {got}, not what the CLI trains ({want}): "
                             "update LESSON5_* in benchmarks/common.py")
        browser.wait_settled(self.page)
        return float(got["tokens/s"].replace(",", "")), cpu


def live(args, corpus: Path) -> dict:
    if not Path(browser.CHROMIUM).exists():
        raise SystemExit(f"{browser.CHROMIUM} is not installed; use --in-process, "
                         "or apt-get install chromium")
    rows = []
    with ExitStack() as stack:
        app = LiveApp(corpus, stack)
        for r in range(args.rounds):
            bare, (in_app, browser_cpu) = alternated(r, lambda: headless_cli(corpus), app.train)
            rows.append({"round": r, "headless tokens/s": bare, "in-app tokens/s": in_app,
                         "in-app / headless": in_app / bare, "Chromium (cores)": browser_cpu})
    return summarize(rows, "live: Train in lesson 5 in Chromium vs python -m gptcore.train",
                     chromium_cores=statistics.median(x["Chromium (cores)"] for x in rows))


# ----------------------------------------------------------------- in-process, no browser
def in_thread(fn, *args):
    out = []
    worker = threading.Thread(target=lambda: out.append(fn(*args)))
    worker.start()
    worker.join()
    return out[0]


def bare_trainer(text: str) -> float:
    tok, train_ids, val_ids = prepare_data(text, "char", 0, 0.1)
    torch.manual_seed(TRAIN["seed"])
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, **MODEL))
    trainer = Trainer(model, train_ids, val_ids, TrainConfig(**TRAIN), tok)
    trainer.run()
    return trainer.tokens_seen / trainer.train_seconds


def lab_run(text: str, lab: Lab) -> float:
    # the vocabulary size is a placeholder: the run replaces it with its tokenizer's
    run = TrainingRun(lab, text, "char", 0, GPTConfig(vocab_size=66, **MODEL), TrainConfig(**TRAIN))
    run.start()
    while run.active:  # the page's fragment: one snapshot a second
        run.snapshot()
        time.sleep(1.0)
    return run.snapshot()["tokens_per_s"]


def in_process(args, text: str) -> dict:
    lab = Lab(Caps(max_concurrent=1))  # one run: it gets every core, like the headless one
    rows = []
    for r in range(args.rounds):
        bare, app = alternated(r, lambda: in_thread(bare_trainer, text), lambda: lab_run(text, lab))
        rows.append({"round": r, "headless tokens/s": bare, "in-app tokens/s": app,
                     "in-app / headless": app / bare})
    return summarize(rows, mode="in-process: lab TrainingRun vs bare Trainer, both in threads")


def summarize(rows: list[dict], mode: str, **extra) -> dict:
    def median(key):
        return statistics.median(x[key] for x in rows)

    return report(f"app_overhead ({mode.split(':')[0]})", rows, {
        "mode": mode, "rounds": len(rows),
        "in_app_share_of_headless": median("in-app tokens/s") / median("headless tokens/s"),
        "median_of_round_ratios": median("in-app / headless"),
        **extra, "torch_threads": torch.get_num_threads()})


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--in-process", action="store_true", help="no server or browser")
    args = p.parse_args(argv)
    text = setup(args)
    if args.in_process:
        return in_process(args, text)
    return live(args, args.corpus.resolve())


if __name__ == "__main__":
    main()
