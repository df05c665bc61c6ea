"""How long each page takes to open in Chromium, as a learner opens it: through the sidebar
of a session that is already on the app.

    python -m benchmarks.page_open

On a fresh `streamlit run app.py` (offline, as in class here): the home page is opened by
URL (the server's first page: the process imports everything and the browser loads
Streamlit's bundle), the learner reads it for READ_S seconds, then opens each lesson through
the sidebar in order ("first open": the server's caches are cold for that lesson), then
every page again ("warm"). Three more figures: lesson 1 opened by URL in a new session once
the server is warm ("new tab"); lesson 1 clicked the moment another fresh server's home page
has drawn, while the warm-up thread (classroom.warmup) still runs; and lesson 1 as the very
first page of a fresh server ("cold server"). The whole is repeated on fresh servers
(`--rounds`, 3 by default): each figure is the median of its rounds, with its range.

A page is open when its script has finished, its title is on screen, and the browser has
painted the result (two animation frames after that). The title matters: the home page's
script can start and finish between two looks at the script state. Goals (issue #17): 3 s on
a first open, 1.5 s warm.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from benchmarks.common import load_average, parser, report
from classroom.lessons import BY_NUMBER, LESSONS

READ_S = 5.0  # seconds a learner spends on the home page before opening lesson 1
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
SCRIPT_STATE = ("() => { const a = document.querySelector(\"[data-testid='stApp']\");"
                " return a && a.getAttribute('data-test-script-state'); }")
TITLE = "() => { const h = document.querySelector(\"[data-testid='stMain'] h1\"); return h && h.innerText; }"
HOME_TITLE = "Building GPT, step by step"  # pages/home.py's; a lesson's is its nav title


def _until_done(page, start: float, number: int, timeout: float = 120.0) -> float:
    """Seconds from `start` until page `number`'s script has finished and its result is
    painted."""
    title = BY_NUMBER[number].nav_title if number else HOME_TITLE
    while time.time() - start < timeout:
        if page.evaluate(SCRIPT_STATE) == "notRunning" and title in (page.evaluate(TITLE) or ""):
            page.evaluate(PAINTED)
            return time.time() - start
        page.wait_for_timeout(20)
    raise TimeoutError("the page did not finish within the timeout")


def by_url(page, url: str, number: int) -> float:
    start = time.time()
    page.goto(url)
    page.wait_for_selector("[data-testid='stApp']")
    return _until_done(page, start, number)


def by_sidebar(page, number: int) -> float:
    link = page.locator("[data-testid='stSidebarNavLink']",
                        has_text=BY_NUMBER[number].nav_title).first
    start = time.time()
    link.click()
    return _until_done(page, start, number)


def one_round(browser) -> tuple[dict[int, float], dict[int, float], dict[str, float]]:
    """First and warm opens by page number, and the three lesson-1 extras, on fresh servers."""
    extras = {}
    with browser.streamlit_server() as (url, _), browser.chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        first = {0: by_url(page, url, 0)}
        time.sleep(READ_S)  # the learner reads the home page; the warm-up thread runs
        first.update({lesson.number: by_sidebar(page, lesson.number) for lesson in LESSONS})
        warm = {n: by_sidebar(page, n) for n in first}
        extras["lesson1_new_tab_s"] = by_url(chromium.new_page(
            viewport={"width": 1400, "height": 1000}), url + "/lesson-1", 1)
    with browser.streamlit_server() as (url, _), browser.chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        by_url(page, url, 0)
        extras["lesson1_right_after_home_s"] = by_sidebar(page, 1)  # during the warm-up
    with browser.streamlit_server() as (url, _), browser.chromium() as chromium:
        extras["lesson1_cold_server_s"] = by_url(
            chromium.new_page(viewport={"width": 1400, "height": 1000}), url + "/lesson-1", 1)
    return first, warm, extras


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def measure(rounds: int) -> tuple[list[dict], dict] | None:
    """`rounds` rounds, each on fresh servers; the median and the range of each figure (this
    machine's speed drifts by ±20% from one server to the next)."""
    from tests import browser

    if not Path(browser.CHROMIUM).exists():
        return None
    results = [one_round(browser) for _ in range(rounds)]
    rows = [{"page": BY_NUMBER[n].nav_title if n else "home",
             "first open (s)": statistics.median(r[0][n] for r in results),
             "first, range": spread([r[0][n] for r in results]),
             "warm (s)": statistics.median(r[1][n] for r in results),
             "warm, range": spread([r[1][n] for r in results])}
            for n in results[0][0]]
    summary = {key: statistics.median(r[2][key] for r in results) for key in results[0][2]}
    summary["rounds"] = rounds
    summary["slowest_first_open_s"] = max(r["first open (s)"] for r in rows)
    summary["slowest_warm_s"] = max(r["warm (s)"] for r in rows)
    summary["first_opens_within_3s"] = summary["slowest_first_open_s"] <= 3.0
    summary["warm_within_1_5s"] = summary["slowest_warm_s"] <= 1.5
    return rows, summary


def main(argv=None):
    p = parser(__doc__)
    p.add_argument("--rounds", type=int, default=3, help="rounds on fresh servers (default 3)")
    args = p.parse_args(argv)
    load = load_average()
    measured = measure(args.rounds)
    if measured is None:
        print("page_open: Chromium is not installed here; skipped.")
        return report("page_open", [], {"skipped": "no Chromium"})
    rows, summary = measured
    summary["load_average_before"] = load
    return report("page_open", rows, summary)


if __name__ == "__main__":
    main()
