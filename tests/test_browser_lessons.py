"""Real browser, lesson by lesson: what a learner clicks, with screenshots saved to look at."""
import re
import time

import pytest

from tests import browser


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, tiny_gpt2_dir):
    browser.require_browser()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with browser.streamlit_server({"GPTCORE_MODEL_DIR": str(tiny_gpt2_dir)}, log) as (url, _):
        browser.warm_up(url)
        yield url


@pytest.fixture
def page(app_url):
    with browser.chromium() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1600})
        page.app_url = app_url
        yield page


def visit(page, slug):
    page.goto(f"{page.app_url}/{slug}")
    browser.wait_settled(page, 120)
    browser.assert_no_exception(page)


def progress_step(page) -> int:
    match = re.search(r"step ([\d,]+) / ([\d,]+)", page.inner_text("body"))
    return int(match.group(1).replace(",", "")) if match else -1


def test_setup_prompt_generate_and_step_through(page):
    visit(page, "lesson-1")
    prompt = page.locator("textarea[aria-label=\"Prompt\"]")
    prompt.fill("Once upon a time")
    prompt.press("Control+Enter")
    browser.wait_settled(page)
    assert "Once" in page.inner_text("body")
    page.get_by_role("button", name="Generate").click()
    page.wait_for_selector("strong:has-text('Once upon a time')", timeout=60_000)
    for _ in range(3):
        page.get_by_role("button", name="Next token").click()
        browser.wait_settled(page)
    browser.assert_no_exception(page)
    assert "Step 3" in page.inner_text("body") or page.locator("text=Step 3").count() > 0
    browser.shoot(page, "lesson1-step-through")


def test_slider_keyboard_changes_lessons_2_3_4(page):
    for slug, label, needle in [("lesson-2", "Merges applied", r"After (\d+) merges"),
                                ("lesson-3", "Heads (must divide the width 24)", r"\(B, nh, T, hs\) = \(1, (\d+),"),
                                ("lesson-4", "Layers", r"parameters\s*(\d[\d,]*)")]:
        visit(page, slug)
        before = re.search(needle, page.inner_text("body")).group(1)
        page.locator(f"input[type='range'][aria-label='{label}']").first.focus()
        for _ in range(2):
            page.keyboard.press("ArrowRight")
        browser.wait_settled(page)
        browser.assert_no_exception(page)
        after = re.search(needle, page.inner_text("body")).group(1)
        assert after != before, (slug, before, after)
        browser.shoot(page, f"lesson-{slug}-slider")


def test_training_live_chart_stop_table_and_navigation(page):
    visit(page, "lesson-5")
    page.get_by_role("button", name="Train").click()
    seen = set()
    deadline = time.time() + 90
    while len(seen) < 4 and time.time() < deadline:
        step = progress_step(page)
        if step > 0:
            seen.add(step)
        page.wait_for_timeout(700)
    assert len(seen) >= 4, f"the live view updated only {len(seen)} times"
    assert page.locator("[data-testid='stVegaLiteChart']").count() >= 1
    browser.shoot(page, "lesson5-training-live")
    page.get_by_role("button", name="Stop").click()
    page.wait_for_function("() => document.body.innerText.includes('Stopped by you')", timeout=10_000)
    browser.wait_settled(page)
    table = page.locator("[data-testid='stTable']", has_text="tokens/s").last.inner_text()
    assert "run 1" in table and "stopped" in table
    browser.shoot(page, "lesson5-stopped")

    page.get_by_role("button", name="Train").click()  # run 2: leave and come back
    page.wait_for_function("() => /run 2: step [1-9]/.test(document.body.innerText)",
                           timeout=60_000)
    left_at = progress_step(page)
    page.locator("[data-testid='stSidebarNavLink']", has_text="Tokenization").click()
    browser.wait_settled(page)
    page.wait_for_timeout(4000)
    browser.shoot(page, "lesson5-away")
    page.locator("[data-testid='stSidebarNavLink']", has_text="Training lab").click()
    browser.wait_settled(page)
    page.wait_for_timeout(1500)
    back_at = progress_step(page)
    body = page.inner_text("body")
    assert back_at > left_at or "Finished" in body, (left_at, back_at)
    assert "run 2" in body
    page.get_by_role("button", name="Stop").click()
    browser.wait_settled(page)
