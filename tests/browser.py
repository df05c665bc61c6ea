"""Helpers for real-browser tests: a Streamlit server on 127.0.0.1 and headless Chromium."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 # each simulated learner has their own visible browser: no tab throttling
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows"]


def require_browser():
    """In CI a missing browser is a failure; on a laptop without Chromium, a skip."""
    missing = None
    if not Path(CHROMIUM).exists():
        missing = f"{CHROMIUM} is not installed (apt-get install chromium)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed (pip install playwright)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(extra_env: dict | None = None, log_path: Path | None = None):
    """`streamlit run app.py` on a free port of 127.0.0.1; yields its base URL and process."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("streamlit did not start")
            time.sleep(0.3)
        yield url, proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        if log_path:
            log.close()


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def served_app(tmp_path_factory, warm: bool = True):
    """A module's server (its log in a temporary folder), warmed up unless told not to:
    `yield from served_app(tmp_path_factory)` in a module-scoped fixture."""
    require_browser()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    with streamlit_server(log_path=log) as (url, _):
        if warm:
            warm_up(url)
        yield url


def warm_up(url: str) -> None:
    """Open the home page once: until some session has run app.py's st.navigation, Streamlit
    treats pages/ as a v1 pages folder (a deep link would show "Page not found" first)."""
    with chromium() as b:
        page = b.new_page()
        page.goto(url)
        wait_settled(page, 120)


def wait_settled(page, timeout: float = 60.0) -> float:
    """Wait until the script has finished running; returns the seconds it took."""
    start = time.time()
    page.wait_for_selector("[data-testid='stApp']", timeout=timeout * 1000)
    try:  # a click's rerun may take a moment to start: let it, or move on
        page.wait_for_function(
            "() => document.querySelector(\"[data-testid='stApp']\")"
            ".getAttribute('data-test-script-state') === 'running'", timeout=800)
    except Exception:  # noqa: BLE001 - nothing was running, which is fine
        pass
    page.wait_for_function(
        "() => { const a = document.querySelector(\"[data-testid='stApp']\");"
        " return a && a.getAttribute('data-test-script-state') === 'notRunning'; }",
        timeout=timeout * 1000,
    )
    page.wait_for_timeout(300)  # let the last deltas paint
    return time.time() - start


def choose(page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`."""
    box = page.locator("[data-testid='stSelectbox']").filter(
        has=page.locator("[data-testid='stWidgetLabel']", has_text=label)).first
    box.locator("input").click()
    page.get_by_role("option", name=option).first.click()
    wait_settled(page)


def assert_no_exception(page):
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']").first.inner_text()
    assert "Traceback (most recent call last)" not in page.inner_text("body")


def screenshot_dir() -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR", "/tmp/gptcourse-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shoot(page, name: str) -> Path:
    path = screenshot_dir() / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path

