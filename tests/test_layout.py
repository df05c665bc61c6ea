"""The book and the classroom: imports go one way (pages -> classroom -> gptcore), and the
book holds only what a learner studies."""
import ast
import subprocess
import sys
import tokenize
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


def code_lines(path: Path) -> int:
    """Lines that hold code outside strings and comments (a lesson's prose is not counted).
    Python 3.12 splits an f-string into tokens of its own; their text counts as string."""
    skip = {tokenize.STRING, tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT,
            tokenize.DEDENT, tokenize.ENDMARKER}
    start, end = getattr(tokenize, "FSTRING_START", None), getattr(tokenize, "FSTRING_END", None)
    lines, depth = set(), 0
    with path.open() as f:
        for token in tokenize.generate_tokens(f.readline):
            if token.type in (start, end):
                depth += 1 if token.type == start else -1
            elif not depth and token.type not in skip:
                lines.add(token.start[0])
    return len(lines)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_are_an_outline_of_the_lesson(path):
    """Prose, then one call per demo (classroom's *_views modules draw each demo): a page that
    grows its own code again has started computing or laying out widgets itself. Before the
    split the lessons had 127-292 code lines each."""
    assert code_lines(path) <= 64


def test_the_book_has_no_lab_hub_or_charts_module():
    assert not {"lab.py", "hub.py", "charts.py", "ui.py"} & {p.name for p in BOOK}
    assert {"lab.py", "hub.py", "charts.py"} <= {p.name for p in CLASSROOM}
