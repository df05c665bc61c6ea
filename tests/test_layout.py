"""The book and the classroom: imports go one way (pages -> classroom -> gptcore), and the
book holds only what a learner studies."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BOOK = sorted((ROOT / "gptcore").rglob("*.py"))
CLASSROOM = sorted((ROOT / "classroom").rglob("*.py"))
PAGES = sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", BOOK, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_book_has_no_classroom_machinery(path):
    """No streamlit, charts, threads, host settings or the classroom in gptcore."""
    banned = {"streamlit", "altair", "pandas", "threading", "classroom", "socket", "urllib"}
    assert not imported_modules(path) & banned
    source = path.read_text()
    for needle in ("os.environ", "getenv", "setswitchinterval", "Thread("):
        assert needle not in source, f"{path.name} uses {needle}"


def test_importing_the_book_starts_nothing_and_changes_no_interpreter_setting():
    code = ("import sys, threading, pkgutil, importlib, gptcore\n"
            "before = (threading.active_count(), sys.getswitchinterval())\n"
            "for m in pkgutil.walk_packages(gptcore.__path__, 'gptcore.'):\n"
            "    importlib.import_module(m.name)\n"
            "assert (threading.active_count(), sys.getswitchinterval()) == before\n"
            "for name in ('streamlit', 'altair', 'classroom'):\n"
            "    assert name not in sys.modules, name\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("path", CLASSROOM, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_classroom_never_imports_a_page(path):
    assert "pages" not in imported_modules(path)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_only_draw(path):
    """A page reads widgets, calls gptcore or classroom, and renders: no tensors of its own."""
    assert not imported_modules(path) & {"torch", "transformers", "tiktoken", "numpy"}


def test_the_book_has_no_lab_hub_or_charts_module():
    assert not {"lab.py", "hub.py", "charts.py", "ui.py"} & {p.name for p in BOOK}
    assert {"lab.py", "hub.py", "charts.py"} <= {p.name for p in CLASSROOM}
