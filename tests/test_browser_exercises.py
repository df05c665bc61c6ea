"""Build it yourself, in a real browser: write code in the editor, check it (in the sandbox),
fail, take a hint, fix it, pass; then train your Block in lesson 5, download the notebook and
the progress file, and find your work again in a fresh session."""
import json
import re
import time

import pytest

from gptcore.course import BY_NUMBER
from gptcore.exercises import BY_ID
from tests import browser

WRONG_MASK = "import torch\n\ndef causal_mask(T):\n    return torch.ones(T, T, dtype=torch.bool).triu()\n"
RIGHT_MASK = "import torch\n\ndef causal_mask(T):\n    return torch.ones(T, T, dtype=torch.bool).tril()\n"
WRONG_LN = """import torch

def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    y = (x - mean) / (torch.sqrt(var) + eps) * weight
    return y + bias if bias is not None else y
"""
RIGHT_LN = WRONG_LN.replace("(torch.sqrt(var) + eps)", "torch.sqrt(var + eps)")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    yield from browser.served_app(tmp_path_factory)


def exercise_box(page, exercise_id):
    title = f"Build it yourself: {BY_ID[exercise_id].title}"
    # the innermost block holding the title: the exercise's bordered box
    return page.locator("[data-testid='stVerticalBlock']").filter(has_text=title).last


def open_editor(page, exercise_id):
    """Until the learner begins, an exercise shows its starter and a "Write it here" button."""
    box = exercise_box(page, exercise_id)
    if not box.locator("iframe").count():
        box.get_by_role("button", name="Write it here").click()
        box.locator("iframe").wait_for(timeout=60_000)
    return box


def write(page, exercise_id, code: str) -> None:
    """Replace the editor's text as a paste would (typing would trigger Ace's auto-indent)."""
    editor = open_editor(page, exercise_id).frame_locator("iframe").locator(".ace_content")
    editor.scroll_into_view_if_needed(timeout=90_000)
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(code)


def check(page, exercise_id, code: str, expect: str, timeout: float = 90) -> str:
    """Write `code`, press Ctrl+Enter, and wait until the exercise shows `expect`."""
    write(page, exercise_id, code)
    page.keyboard.press("Control+Enter")
    box = exercise_box(page, exercise_id)
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = box.inner_text()
        if expect in text:
            browser.assert_no_exception(page)
            return text
        page.wait_for_timeout(300)
    raise AssertionError(f"{exercise_id}: {expect!r} never appeared; the box shows {text[-600:]!r}")


def open_lesson(page, url, n):
    """Through the sidebar, as a learner does: a page load would start a new session."""
    if page.url in ("about:blank", ""):
        page.goto(url)
        browser.wait_settled(page, 120)
    name = "Home" if n == 0 else f"{n} · {BY_NUMBER[n].title}"
    page.locator("[data-testid='stSidebarNavLink']", has_text=name).first.click()
    browser.wait_settled(page, 120)
    browser.assert_no_exception(page)


def test_write_check_fail_hint_fix_pass_in_lessons_3_and_4(app_url, tmp_path):
    with browser.chromium() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1200}, accept_downloads=True)
        open_lesson(page, app_url, 3)
        failed = check(page, "attention.causal_mask", WRONG_MASK, "reversed")
        box = exercise_box(page, "attention.causal_mask")
        assert "FUTURE" in failed  # the mistake, named
        assert box.locator("[data-testid='stDataFrame']").count() == 1  # yours vs expected
        box.get_by_role("button", name="Hint (1/3)").click()
        browser.wait_settled(page)
        assert "Hint 1." in box.inner_text()
        browser.shoot(page, "exercise-l3-failed-with-hint")
        passed = check(page, "attention.causal_mask", RIGHT_MASK, "✅")
        assert "reversed" not in passed
        browser.shoot(page, "exercise-l3-passed")

        open_lesson(page, app_url, 4)
        failed = check(page, "model.layer_norm", WRONG_LN, "square root")
        box = exercise_box(page, "model.layer_norm")
        box.get_by_role("button", name="Hint (1/3)").click()
        browser.wait_settled(page)
        assert "Hint 1." in box.inner_text()
        check(page, "model.layer_norm", RIGHT_LN, "✅")
        browser.shoot(page, "exercise-l4-passed")

        open_lesson(page, app_url, 0)  # the home page counts what passed
        body = page.inner_text("body")
        assert re.search(r"1 of \d+ exercises passed", body), body


def test_train_my_block_then_take_the_work_to_a_fresh_session(app_url, tmp_path):
    block = BY_ID["model.Block"].solution
    with browser.chromium() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1400}, accept_downloads=True)
        open_lesson(page, app_url, 4)
        check(page, "model.Block", block, "✅", timeout=120)
        with page.expect_download() as download:  # the check reran only its exercise
            page.get_by_role("button", name=re.compile("Download this lesson as a notebook")).click()
        notebook = json.loads(download.value.path().read_text())
        cells = ["".join(c["source"]) for c in notebook["cells"]]
        theirs = [c for c in cells if "class Block" in c and "self.attn(self.ln_1(x))" in c]
        assert len(theirs) == 1  # their code (as the editor gave it back) fills the exercise cell

        open_lesson(page, app_url, 5)
        steps = page.locator("input[type='range'][aria-label='Steps for both GPTs']")
        steps.focus()
        page.keyboard.press("Home")  # 20 steps
        browser.wait_settled(page)
        page.get_by_role("button", name="Train my GPT").click()
        page.wait_for_function("() => document.body.innerText.includes('follows the reference')",
                               timeout=240_000)
        browser.wait_settled(page)
        browser.assert_no_exception(page)
        body = page.inner_text("body")
        assert "over all 20 steps" in body and "Validation loss: yours" in body
        assert page.locator("[data-testid='stTable']", has_text="tokens/s").last.inner_text().count("your GPT") >= 1
        browser.shoot(page, "your-gpt-trained")

        open_lesson(page, app_url, 0)
        with page.expect_download() as download:
            page.get_by_role("button", name="Download my progress").click()
        saved = tmp_path / "progress.json"
        download.value.save_as(saved)
        record = json.loads(saved.read_text())
        assert "model.Block" in record["passed"]
        assert record["code"]["model.Block"].strip() == theirs[0].strip()  # the same code in both

    with browser.chromium() as b:  # a new browser: a new session with nothing in it
        page = b.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(app_url)
        browser.wait_settled(page)
        assert "0 of 3 exercises passed" in page.inner_text("body")
        page.locator("[data-testid='stFileUploader']").filter(
            has_text="Upload a progress file").locator("input[type='file']").set_input_files(saved)
        page.wait_for_function("() => document.body.innerText.includes('Progress restored')",
                               timeout=60_000)
        browser.wait_settled(page)
        assert "1 of 3 exercises passed" in page.inner_text("body")
        open_lesson(page, app_url, 4)
        box = exercise_box(page, "model.Block")
        assert "✅" in box.inner_text()
        editor_text = box.frame_locator("iframe").locator(".ace_content").inner_text()
        # Ace draws only the lines in view: their code's first lines, not the starter's
        assert theirs[0].splitlines()[0] in editor_text
        assert "TODO" not in editor_text and "TODO" in BY_ID["model.Block"].starter
        browser.shoot(page, "progress-restored-lesson4")
