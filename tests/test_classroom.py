"""Ready for a classroom: several learners at once, bad input everywhere, no network.

Each check adds a row to the report (input -> behaviour) that the test run prints at the end,
with the concurrent-run figures and the server's peak RSS.
"""
import io
import re
import time
from pathlib import Path

import pytest
import torch

from classroom.lab import Caps, CapError, Lab, TrainingRun
from gptcore.model import GPTConfig
from gptcore.trainer import TrainConfig
from tests import browser
from tests.conftest import REPORT, make_tiny_gpt2
from tests.test_app_pages import PAGES, no_exception, open_page

MB = 1 << 20


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb(pid: int) -> float:
    """Peak RSS (VmHWM) of the server process."""
    return rss_mb(pid, "VmHWM")


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GPTCORE_MODEL_DIR", raising=False)


def record(page: str, what: str, behaviour: str):
    REPORT.append({"page": page, "input": what, "behaviour": behaviour})


# --------------------------------------------------------------------- bad input (AppTest)


BAD_TEXTS = {
    "empty text": "",
    "1 MB paste": "All the world's a stage. " * 42_000,
    "emoji/CJK/RTL/control": "😀👩‍👩‍👧 你好 שלום مرحبا \x00\x07\x1b[2J\u202e",
}


@pytest.mark.parametrize("name", list(BAD_TEXTS))
def test_bad_text_on_every_text_page(name):
    text = BAD_TEXTS[name]
    for path, key, kind in [("pages/1_setup.py", "l1_prompt", "text_area"),
                            ("pages/2_tokenization.py", "l2_text", "text_area"),
                            ("pages/3_attention.py", "l3_real_text", "text_input")]:
        at = open_page(path)
        widget = getattr(at, kind)(key=key)
        at_text = text[: widget.max_chars] if getattr(widget, "max_chars", None) else text
        widget.input(at_text).run()
        no_exception(at)
        if path == "pages/3_attention.py":  # the map is drawn, on at most 48 tokens
            assert at.get("vega_lite_chart") and any("(at most 48 shown)" in c.value for c in at.caption)
        else:  # the tokens are shown as spans, or the empty case is explained
            assert any("<span" in m.value for m in at.markdown) or \
                any("empty" in c.value for c in at.caption) or any("empty" in i.value for i in at.info)
        if name == "1 MB paste" and path == "pages/2_tokenization.py":
            assert any("first 20,000" in w.value for w in at.warning)
        if name == "empty text" and path == "pages/1_setup.py":
            assert any("prompt is empty" in c.value for c in at.caption)
        shown = [w.value for w in at.warning] + [c.value for c in at.caption if "empty" in c.value]
        if shown:
            behaviour = shown[0][:90]
        elif len(at_text) < len(text):
            behaviour = f"the box takes at most {widget.max_chars:,} characters; rendered"
        else:
            behaviour = "rendered, every character shown as tokens"
        record(path.split("/")[1].removesuffix(".py"), name, behaviour)


def test_binary_and_oversized_files_as_text():
    at = open_page("pages/2_tokenization.py")
    at.file_uploader(key="act_l2_upload").upload("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00", "text/plain").run()
    no_exception(at)
    assert any("binary" in e.value for e in at.error)
    record("2_tokenization", "binary file as text", at.error[0].value[:90])
    at.file_uploader(key="act_l2_upload").upload("big.txt", b"a" * (1_000_001), "text/plain").run()
    no_exception(at)
    assert any("limit" in e.value for e in at.error)
    record("2_tokenization", "1 MB+ file as text", at.error[0].value[:90])


def test_corrupt_and_foreign_checkpoints():
    cases = {"corrupt checkpoint": b"PK\x03\x04 definitely not torch",
             "checkpoint of another shape": None}
    for name, content in cases.items():
        if content is None:
            from gptcore.model import GPT
            from gptcore.trainer import Trainer

            model = GPT(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=1, n_embd=8))
            ids = torch.arange(100) % 10
            ckpt = Trainer(model, ids, ids, TrainConfig(max_iters=1)).checkpoint()
            ckpt["model_config"]["n_layer"] = 3  # says 3 layers, holds 1
            buffer = io.BytesIO()
            torch.save(ckpt, buffer)
            content = buffer.getvalue()
        at = open_page("pages/5_training.py")
        at.file_uploader(key="act_l5_upload").upload(f"{name}.pt", content).run()
        no_exception(at)
        assert at.error, name
        record("5_training", name, at.error[0].value[:90])


def test_extreme_sliders_everywhere():
    at = open_page("pages/4_gpt.py")
    for key, value in [("l4_n_layer", 48), ("l4_n_embd", 1600), ("l4_n_head", 32)]:
        at.slider(key=key).set_value(value).run()
    at.number_input(key="l4_block_size").set_value(2048).run()
    no_exception(at)
    record("4_gpt", "largest model (48×32×1600, ctx 2048)", f"{at.metric[0].value} parameters, traced")
    at = open_page("pages/5_training.py")
    for key, value in [("l5_n_layer", 8), ("l5_n_embd", 512), ("l5_block_size", 256), ("l5_batch", 64)]:
        at.slider(key=key).set_value(value).run()
    no_exception(at)
    assert at.error and at.button(key="act_l5_train").disabled
    record("5_training", "biggest sliders (8×512, ctx 256)", at.error[0].value[:90])
    at = open_page("pages/1_setup.py")
    for key, value in [("l1_temperature", 0.05), ("l1_top_k", 100), ("l1_top_p", 0.01), ("l1_max_new", 200)]:
        at.slider(key=key).set_value(value).run()
    no_exception(at)
    record("1_setup", "temperature 0.05, top-p 0.01", "distribution keeps one token")


def test_stop_before_train_and_train_twice():
    at = open_page("pages/5_training.py")
    assert at.button(key="act_l5_stop").disabled
    record("5_training", "Stop before Train", "Stop is disabled until a run starts")
    at.selectbox(key="l5_model").set_value("Tiny (2 layers × 2 heads × 64, context 32)").run()
    at.slider(key="l5_steps").set_value(2000).run()
    at.button(key="act_l5_train").click().run()
    assert at.button(key="act_l5_train").disabled  # a second press is impossible while it runs
    run = at.session_state["training_runs"][-1]
    while run.active and not run.snapshot()["steps"]:
        time.sleep(0.1)
    at.button(key="act_l5_stop").click().run()
    deadline = time.time() + 10
    while run.active and time.time() < deadline:
        time.sleep(0.2)
    assert not run.active and run.snapshot()["status"] == "stopped"
    at.run()
    no_exception(at)
    record("5_training", "Train twice", "Train is disabled while a run goes; one run per learner")
    record("5_training", "Stop mid-run", f"{run.snapshot()['message']} History kept.")


def test_caps_cannot_be_bypassed():
    lab = Lab(Caps(max_params=100_000, max_steps=50, max_seconds=5, max_concurrent=1))
    with pytest.raises(CapError, match="parameters"):
        TrainingRun(lab, "abc" * 100, "char", 0, GPTConfig(vocab_size=4, n_layer=8, n_embd=256,
                                                          n_head=4), TrainConfig())
    with pytest.raises(CapError, match="steps"):
        TrainingRun(lab, "abc" * 100, "char", 0, GPTConfig(vocab_size=4, n_layer=1, n_embd=16,
                                                          n_head=1), TrainConfig(max_iters=51))
    run = TrainingRun(lab, "abc" * 100, "char", 0, GPTConfig(vocab_size=4, n_layer=1, n_embd=16,
                                                            n_head=1, block_size=8),
                      TrainConfig(max_iters=50, max_seconds=10_000))
    assert run.train_config.max_seconds == 5
    record("(server)", "a run over the caps", "refused by classroom.lab before it starts")


def test_queue_beyond_the_concurrency_cap():
    lab = Lab(Caps(max_concurrent=1))
    torch.set_num_threads(2)
    text = "To be or not to be " * 500
    config = GPTConfig(vocab_size=20, n_layer=1, n_head=1, n_embd=16, block_size=16)
    runs = [TrainingRun(lab, text, "char", 0, config, TrainConfig(max_iters=150, eval_interval=50,
                                                                  batch_size=8)).start()
            for _ in range(3)]
    time.sleep(0.3)
    positions = [r.snapshot()["queue_position"] for r in runs]
    assert sorted(p for p in positions if p) == [1, 2] and lab.running == 1
    for r in runs:
        r.thread.join(60)
    assert all(r.snapshot()["status"] == "done" for r in runs)
    record("(server)", "3 runs, cap 1", "one trains, two wait with their place in line, all finish")


def test_no_network_explained_fast():
    start = time.perf_counter()
    at = open_page("pages/1_setup.py")
    elapsed = time.perf_counter() - start
    no_exception(at)
    info = at.info[0].value
    seconds = float(re.search(r"checked in ([\d.]+) s", info).group(1))
    assert seconds <= 3.5 and "random weights" in info and "local model folder" in info
    record("1_setup", "no network (HF_HUB_OFFLINE)", f"explained in {seconds:.1f} s; page ready in {elapsed:.1f} s")


def test_every_page_works_offline_without_the_env_flag(monkeypatch):
    """No HF_HUB_OFFLINE: the Hub check itself must find out (here DNS fails) within ~3 s."""
    monkeypatch.delenv("HF_HUB_OFFLINE")
    for path in PAGES:
        start = time.perf_counter()
        at = open_page(path)
        elapsed = time.perf_counter() - start
        no_exception(at)
        assert at.title and elapsed < 30, (path, elapsed)
        assert any("Hub unreachable" in c.value for c in at.sidebar.caption)
        record(path.split("/")[1].removesuffix(".py"), "no network, no offline flag",
               f"rendered in {elapsed:.1f} s")


# --------------------------------------------------------------------- learners (browser)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    browser.require_browser()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = {"GPTCORE_MAX_CONCURRENT_RUNS": "2", "GPTCORE_MAX_SECONDS": "120"}
    with browser.streamlit_server(env, log) as (url, proc):
        browser.warm_up(url)
        yield url, proc


def open_small_run(b, url, steps_right):
    """A learner on lesson 5 with the tiny model and 10 + 10·steps_right steps chosen."""
    page = b.new_page(viewport={"width": 1400, "height": 1400})
    page.goto(f"{url}/lesson-5")
    browser.wait_settled(page, 60)
    configure_small_run(page, steps_right)
    return page


def configure_small_run(page, steps_right=0):
    browser.choose(page, "Model", "Tiny (2 layers × 2 heads × 64, context 32)")
    steps = page.locator("input[type='range'][aria-label='Steps']")
    steps.focus()
    page.keyboard.press("Home")  # 10 steps ...
    for _ in range(steps_right):  # ... + 10 per press
        page.keyboard.press("ArrowRight")
    browser.wait_settled(page)


def test_four_learners_train_at_once(server):
    url, proc = server
    with browser.chromium() as b:
        learners = []
        for i in range(4):
            ctx = b.new_context(viewport={"width": 1400, "height": 1400})
            page = ctx.new_page()
            page.goto(f"{url}/lesson-5")
            browser.wait_settled(page, 120)
            configure_small_run(page, steps_right=2)  # 30 steps
            learners.append(page)
        start = time.time()
        for page in learners:
            page.get_by_role("button", name="Train").click()
        states = ["training"] * 4  # what each learner saw first: a queue message or progress
        seen = [False] * 4
        deadline = time.time() + 20
        while not all(seen) and time.time() < deadline:
            for i, page in enumerate(learners):
                if seen[i]:
                    continue
                body = page.inner_text("body")
                if "Queued:" in body:
                    states[i], seen[i] = "queued", True
                elif re.search(r"run 1: (step \d+ /|Finished)", body):
                    seen[i] = True
            time.sleep(0.2)
        # a fifth learner reads another lesson meanwhile: the app stays responsive
        import urllib.request

        t0 = time.time()
        with urllib.request.urlopen(url + "/_stcore/health", timeout=10) as r:
            assert r.status == 200
        health_s = time.time() - t0
        reader = b.new_context().new_page()
        t0 = time.time()
        reader.goto(url, timeout=120_000)
        browser.wait_settled(reader, 120)
        responsive_s = time.time() - t0
        browser.assert_no_exception(reader)
        t0 = time.time()
        reader.goto(f"{url}/lesson-2")  # the heaviest page: four tokenizers, a BPE trained live
        browser.wait_settled(reader, 180)
        lesson2_s = time.time() - t0
        browser.assert_no_exception(reader)
        peak = 0.0
        for page in learners:
            page.bring_to_front()
            page.wait_for_function("() => /Finished \\d+ steps/.test(document.body.innerText)",
                                   timeout=300_000)
            peak = max(peak, peak_mb(proc.pid))
        total = time.time() - start
        for i, page in enumerate(learners):
            browser.wait_settled(page)
            browser.assert_no_exception(page)
            table = page.locator("[data-testid='stTable']", has_text="tokens/s").last.inner_text()
            assert "run 1" in table and "run 2" not in table  # only their own run
            browser.shoot(page, f"classroom-learner-{i}")
    assert states.count("training") <= 2 and states.count("queued") >= 2, states
    assert health_s < 5 and responsive_s < 60
    REPORT.append({"page": "5_training", "input": "4 learners press Train at once (cap 2)",
                   "behaviour": f"{states}; all finished in {total:.0f} s; meanwhile the server "
                                f"answered in {health_s:.2f} s, Home "
                                f"rendered in {responsive_s:.1f} s and lesson 2 in {lesson2_s:.1f} s "
                                "(5 Chromiums share the 2 cores); each sees only its own run"})
    REPORT.append({"page": "(server)", "input": "peak RSS, 4 learners training",
                   "behaviour": f"{peak:,.0f} MB"})


def test_memory_with_distilgpt2_and_one_run(server):
    url, proc = server
    with browser.chromium() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"{url}/lesson-1")  # loads the DistilGPT2-shaped model (82M parameters)
        browser.wait_settled(page, 180)
        browser.assert_no_exception(page)
        page.goto(f"{url}/lesson-5")
        browser.wait_settled(page, 60)
        page.get_by_role("button", name="Train").click()  # the default run (baby GPT)
        page.wait_for_function("() => /step [1-9]\\d* \\//.test(document.body.innerText)", timeout=120_000)
        time.sleep(8)
        now = rss_mb(proc.pid)
        page.get_by_role("button", name="Stop").click()
        page.wait_for_function("() => document.body.innerText.includes('Stopped by you')", timeout=30_000)
        browser.shoot(page, "classroom-memory")
    peak = peak_mb(proc.pid)
    REPORT.append({"page": "(server)", "input": "DistilGPT2-shaped model loaded + one run",
                   "behaviour": f"RSS {now:,.0f} MB now, peak {peak:,.0f} MB (limit 1,200)"})
    assert now < 1200


def test_navigating_away_mid_run_loses_nothing(server):
    url, _ = server
    with browser.chromium() as b:
        page = open_small_run(b, url, steps_right=9)  # 100 steps
        page.get_by_role("button", name="Train").click()
        page.wait_for_function("() => /step [1-9]/.test(document.body.innerText)", timeout=60_000)
        for slug in ("lesson-1", "lesson-3", "lesson-4", ""):
            page.locator("[data-testid='stSidebarNavLink']").nth(
                ["", "lesson-1", "lesson-2", "lesson-3", "lesson-4", "lesson-5"].index(slug)).click()
            browser.wait_settled(page, 120)
            browser.assert_no_exception(page)
        page.locator("[data-testid='stSidebarNavLink']").nth(5).click()
        page.wait_for_function("() => /Finished 100 steps/.test(document.body.innerText)", timeout=120_000)
        browser.wait_settled(page)
        assert "run 1" in page.locator("[data-testid='stTable']", has_text="tokens/s").last.inner_text()
    record("5_training", "navigate through every lesson mid-run",
           "the run finished meanwhile; its results and table row are there on return")


def test_diverging_learning_rate_in_the_browser(server):
    url, _ = server
    with browser.chromium() as b:
        page = open_small_run(b, url, steps_right=9)
        lr = page.locator("input[type='range'][aria-label='Learning rate']")
        lr.focus()
        page.keyboard.press("End")  # 100
        clip = page.locator("input[type='range'][aria-label='Gradient clip (0 = off)']")
        clip.focus()
        page.keyboard.press("Home")
        browser.wait_settled(page)
        page.get_by_role("button", name="Train").click()
        page.wait_for_function("() => document.body.innerText.includes('diverged')", timeout=60_000)
        browser.wait_settled(page)
        browser.assert_no_exception(page)
        message = re.search(r"run 1: (.*?diverged[^.]*\.)", page.inner_text("body")).group(1)
    record("5_training", "learning rate 100, no clipping", message[:90])
