"""Every choice holds for the whole visit, in a real browser (issue #18): the learner uploads a
corpus, sets the seed, builds a model in lesson 4 and sets up lesson 5; then visits every
lesson twice, in two orders, and finds every value as they left it; then the upload trains."""
import re

import pytest

from tests import browser
from tests.test_browser_exercises import open_lesson

# 40 distinct characters, none of them in Python's docs' usual prose order: a sample drawn
# from a model trained on this text can only use these characters.
CORPUS = ("zebra quokka jinx vex fjord glyph nymph crwth sphinx waltz " * 60
          + "BOXING WIZARDS JUMP QUICKLY\n" * 40)


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    yield from browser.served_app(tmp_path_factory)


def slider(page, label):
    return page.locator(f"input[type='range'][aria-label='{label}']").first


def press(page, label, *keys):
    s = slider(page, label)
    s.focus()
    for key in keys:
        page.keyboard.press(key)
        page.wait_for_timeout(150)
    browser.wait_settled(page, 180)


def move_to(page, label, value: int, key: str):
    """Press `key` on the slider until it reads `value` (a press during a rerun can be lost)."""
    for _ in range(20):
        if slider(page, label).input_value() == str(value):
            return
        press(page, label, key)
    raise AssertionError(f"{label} never reached {value}")


def selected(page, label) -> str:
    box = page.locator("[data-testid='stSelectbox']").filter(
        has=page.locator("[data-testid='stWidgetLabel']", has_text=label)).first
    return box.locator("input[role='combobox']").first.input_value()


def read_all(page, url, lesson) -> dict:
    """Every value this test set, as the page shows it, on lesson `lesson`."""
    open_lesson(page, url, lesson)
    sidebar = page.locator("[data-testid='stSidebar']")
    seen = {"corpus": selected(page, "Corpus"),
            "corpus size": re.search(r"(\S+): ([\d,]+) characters", sidebar.inner_text()).groups(),
            "seed": sidebar.locator("input[aria-label='Seed']").input_value()}
    if lesson == 4:
        seen.update({"l4 layers": slider(page, "Layers").input_value(),
                     "l4 heads": slider(page, "Heads").input_value(),
                     "l4 context": page.locator("input[aria-label='Context (block size)']").input_value(),
                     "l4 pre-LN": page.get_by_role("switch", name="Pre-LN (GPT-2)").is_checked()})
    if lesson == 5:
        seen.update({"l5 model": selected(page, "Model"),
                     "l5 layers": slider(page, "Layers").input_value(),
                     "l5 heads": slider(page, "Heads").input_value(),
                     "l5 context": slider(page, "Context").input_value(),
                     "l5 steps": slider(page, "Steps").input_value(),
                     "l5 warmup": slider(page, "Warmup steps").input_value()})
    return seen


def test_choices_hold_across_every_lesson_and_the_upload_trains(app_url, tmp_path):
    corpus_file = tmp_path / "pangrams.txt"
    corpus_file.write_text(CORPUS)
    with browser.chromium() as b:
        page = b.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(app_url)
        browser.wait_settled(page, 120)
        # the sidebar: a corpus of the learner's own and a seed
        sidebar = page.locator("[data-testid='stSidebar']")
        browser.choose(page, "Corpus", "Your own text (.txt)")
        sidebar.locator("input[type='file']").set_input_files(str(corpus_file))
        browser.wait_settled(page, 60)
        seed = sidebar.locator("input[aria-label='Seed']")
        seed.fill("4242")
        seed.press("Enter")
        browser.wait_settled(page)
        # lesson 4: the tutorial's model, with 3 layers, 4 heads, context 48 and post-LN
        open_lesson(page, app_url, 4)
        move_to(page, "Layers", 3, "ArrowLeft")
        move_to(page, "Heads", 4, "ArrowLeft")
        context = page.locator("input[aria-label='Context (block size)']")
        context.fill("48")
        context.press("Enter")
        browser.wait_settled(page)
        page.get_by_role("switch", name="Pre-LN (GPT-2)").click(force=True)
        browser.wait_settled(page)
        # lesson 5: lesson 4's model, 20 steps, 10 warmup steps
        open_lesson(page, app_url, 5)
        browser.choose(page, "Model", "Lesson 4's builder")
        press(page, "Steps", "Home")  # 10
        move_to(page, "Steps", 20, "ArrowRight")
        press(page, "Warmup steps", "Home")  # 0
        move_to(page, "Warmup steps", 10, "ArrowRight")
        expected = {"corpus": "Your own text (.txt)",
                    "corpus size": ("pangrams.txt", f"{len(CORPUS):,}"), "seed": "4242",
                    "l4 layers": "3", "l4 heads": "4", "l4 context": "48", "l4 pre-LN": False,
                    "l5 model": "Lesson 4's builder", "l5 layers": "3", "l5 heads": "4",
                    "l5 context": "48", "l5 steps": "20", "l5 warmup": "10"}
        visits = []
        for order in ([1, 2, 3, 4, 5, 0], [5, 3, 0, 2, 4, 1, 5]):
            for lesson in order:
                seen = read_all(page, app_url, lesson)
                visits.append(lesson)
                for key, value in seen.items():
                    assert value == expected[key], (key, lesson, visits)
        assert {0, 1, 2, 3, 4, 5} <= set(visits) and len(visits) == 13
        # the upload trains in lesson 5, with lesson 4's model
        assert "Corpus: **pangrams.txt**" in page.content() or "pangrams.txt" in page.inner_text("body")
        page.get_by_role("button", name="Train", exact=True).click()
        page.wait_for_function("() => /Finished 20 steps/.test(document.body.innerText)",
                               timeout=300_000)
        browser.wait_settled(page)
        browser.assert_no_exception(page)
        caption = page.get_by_text(re.compile(r"^Sample at step 20 ")).first
        sample = page.locator("[data-testid='stCode']").filter(visible=True).first.inner_text()
        assert caption.is_visible()
        # the upload's characters, and <unk>: the character tokenizer's id for any other one,
        # which a 20-step model samples now and then (with the same seed, this sample had it in
        # one CI run and not in others)
        assert sample.strip() and set(sample.replace("<unk>", "")) <= set(CORPUS) | {"\n", " "}
        body = page.inner_text("body")
        assert "3 layers × 4 heads × 256, context 48" in body and "post-LN" in body
