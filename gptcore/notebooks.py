"""The course as five Jupyter notebooks, generated from the lessons and their exercises.

A lesson's notebook holds its title and explanation (`gptcore.course`), a setup cell, then for
each exercise (`gptcore.exercises.for_lesson`) a statement with its formula, a code cell with
the starter (or the learner's code), a check cell and the folded hints; it ends with the
lesson's predict-then-see questions, each followed by a cell that computes the answer live.

    python -m gptcore.notebooks --out notebooks/    # 1_Setup.ipynb … 5_Training.ipynb

The files are deterministic (fixed cell ids, no outputs, no timestamps), so the shipped ones
can be compared byte for byte with freshly generated ones.

How a check cell finds the learner's code: the learner writes ordinary Python in the exercise
cell, and the check cell passes what it defined, `check_here("attention.causal_mask",
causal_mask)`. Jupyter and Colab keep every executed cell's code in `linecache`, under the
file name its functions carry (that is how their tracebacks show a cell's lines), so
`cell_source` gets the whole cell back, imports included, and `gptcore.exercises.check` runs it
again in a clean namespace, exactly as the app's sandbox does.
"""
from __future__ import annotations

import argparse
import inspect
import linecache
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import v4

from gptcore.course import BY_NUMBER, CHAPTERS, COURSE_TITLE, Chapter
from gptcore.exercises import (BY_ID, QUESTIONS, CheckResult, Exercise, Question, check,
                               for_lesson, questions_for_lesson)

METADATA = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"}}

HOW_IT_WORKS = """\
**How this notebook works.** Run the setup cell first. Each exercise gives you a code cell with
a starter: replace its TODOs, run the cell, then run the check cell under it. The check cell,
`check_here("<exercise id>", <the name you defined>)`, finds the cell that defined your
function or class and runs **that whole cell** again, on its own, against the book's checker,
which explains what differs. So keep in the cell everything your code needs, imports
included, and run your cell again after each change. Hints are folded under each check. The
questions at the end ask for a prediction before a cell computes the answer with `gptcore`.

**Setup.** The notebooks import the course's package, `gptcore`; no app is needed. Opened from
the repository's `notebooks/` folder, a notebook finds it as it is. Anywhere else (Colab, your
own Jupyter) install it first: `pip install git+<the repository's URL>` (`!pip install …` in a
Colab cell), or `pip install .` in a clone of the repository."""

SETUP = """\
# gptcore, the course's package: installed with pip, or one folder up when this notebook is
# opened from the repository's notebooks/ folder.
import sys
from pathlib import Path

if (Path.cwd().parent / "gptcore").is_dir():
    sys.path.insert(0, str(Path.cwd().parent))
import gptcore

print("gptcore from", Path(gptcore.__file__).parent)"""


# ------------------------------------------------------------------------ used inside notebooks
@dataclass(frozen=True)
class Markdown:
    """Text that a notebook shows as markdown (`_repr_markdown_`) and a console as plain text."""

    text: str

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Checked:
    """What `check_here` found: the checker's result, shown as markdown in a notebook."""

    title: str
    result: CheckResult

    def _feedback(self) -> str:
        r = self.result
        if r.line and f"line {r.line}" not in r.feedback:  # crash messages already name it
            return f"{r.feedback} (line {r.line} of your cell)"
        return r.feedback

    def _repr_markdown_(self) -> str:
        mark, verdict = ("✅", "passed") if self.result.passed else ("❌", "not yet")
        text = f"{mark} **{self.title}: {verdict}.** {self._feedback()}"
        return text + ("\n\n" + _markdown_table(self.result.table) if self.result.table else "")

    def __repr__(self) -> str:
        mark, verdict = ("✅", "passed") if self.result.passed else ("❌", "not yet")
        rows = ["  " + " | ".join(f"{k}: {v}" for k, v in r.items()) for r in self.result.table]
        return "\n".join([f"{mark} {self.title}: {verdict}. {self._feedback()}", *rows])


def _markdown_table(rows: list[dict]) -> str:
    """[{"input": "k=2", "yours": "[1]", ...}] -> a markdown table, each cell as code."""
    def cell(value) -> str:
        text = str(value).replace("|", r"\|")
        return text if "`" in text else f"`{text}`"

    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(r.get(k, "")) for k in header) + " |" for r in rows]
    return "\n".join(lines)


def cell_source(defined) -> str | None:
    """The source of the notebook cell (or the file) that defined a function or a class.

    A function's `__code__.co_filename` names its cell, and linecache holds the cell's lines.
    A class has no file name of its own before Python 3.13: one of its methods gives it.
    None if no source can be found (code typed at a plain Python prompt, say).
    """
    members = vars(defined).values() if inspect.isclass(defined) else [defined]
    for member in members:
        member = getattr(member, "__func__", member)  # staticmethod, classmethod
        member = getattr(member, "fget", member)  # property
        code = getattr(inspect.unwrap(member), "__code__", None)
        if code is not None and linecache.getlines(code.co_filename):
            return "".join(linecache.getlines(code.co_filename))
    return None


def check_here(exercise_id: str, defined) -> Checked:
    """Check the cell that defined `defined` (your function or class) against the book.

    `defined` may also be your source code as a string. Never raises for anything your code
    does: the result says what differs.
    """
    exercise = BY_ID[exercise_id]
    if isinstance(defined, str):
        return Checked(exercise.title, check(exercise_id, defined))
    module = getattr(defined, "__module__", None) or ""
    if module.startswith("gptcore."):
        return Checked(exercise.title, CheckResult(
            False, f"That is the book's own `{exercise.name}` (from {module}): define yours in "
                   "the exercise cell, run it, then check it.", "name"))
    source = cell_source(defined)
    if source is None:
        return Checked(exercise.title, CheckResult(
            False, f"Found no cell that defines what you passed (of type "
                   f"{type(defined).__name__}): pass the {exercise.kind} your cell defines, "
                   f"as in `check_here(\"{exercise_id}\", {exercise.name})`, or its source "
                   "as a string.", "name"))
    return Checked(exercise.title, check(exercise_id, source))


def reveal(question_id: str) -> Markdown:
    """The answer to a predict-then-see question, computed now by gptcore, with its figures."""
    question = {q.id: q for q in QUESTIONS}[question_id]
    answer, explanation = question.compute()
    return Markdown(f"**Answer: {_answer_text(question, answer)}**\n\n{explanation}")


def _answer_text(question: Question, answer) -> str:
    if question.options:
        if 0 <= answer < len(question.options):
            return f"{_letter(answer)}. {question.options[answer]}"
        return "none of the options (see below)"
    return f"{answer:,}" if isinstance(answer, int) else f"{answer:.6g}"


def _letter(i: int) -> str:
    return chr(ord("A") + i)


# ------------------------------------------------------------------------ building the notebooks
def _slug(identifier: str) -> str:
    """An exercise or question id as a cell id: "data.train_val_split" -> "data-train_val_split"."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", identifier)


def _intro(chapter: Chapter) -> str:
    return (f"# Lesson {chapter.number} · {chapter.title}\n\n"
            f"*{COURSE_TITLE}*: the exercises of lesson {chapter.number}, with the same "
            f"checkers as the course's app.\n\n{HOW_IT_WORKS}")


def _statement(exercise: Exercise, number: str) -> str:
    text = f"## Exercise {number} · {exercise.title}\n\n{exercise.statement}"
    return text + (f"\n\n$$ {exercise.formula} $$" if exercise.formula else "")


def _check_cell(exercise: Exercise) -> str:
    return ("from gptcore.notebooks import check_here\n\n"
            f'check_here("{exercise.id}", {exercise.name})')


def _hints(exercise: Exercise) -> str:
    """Each hint folded on its own, so they open one at a time, and the way to the answer."""
    folds = [f"<details><summary>Hint {i}</summary>\n\n{hint}\n\n</details>"
             for i, hint in enumerate(exercise.hints, 1)]
    folds.append("<details><summary>The book's answer</summary>\n\nIn a new cell: "
                 f"`from gptcore.exercises import BY_ID; print(BY_ID[\"{exercise.id}\"].solution)`"
                 "\n\n</details>")
    return "\n\n".join(folds)


def _question(question: Question, number: str) -> str:
    text = f"### Question {number}\n\n{question.prompt}"
    if question.options:
        text += "\n\n" + "\n".join(f"- **{_letter(i)}.** {option}"
                                   for i, option in enumerate(question.options))
    return text + ("\n\nWrite down your prediction, then run the cell below: it computes the "
                   "answer with gptcore.")


def build_notebook(lesson: int, code: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """Lesson `lesson`'s notebook; `code` maps exercise ids to the learner's code (ids of
    other lessons are ignored), the others get their starter."""
    chapter, code = BY_NUMBER[lesson], code or {}
    cells = [v4.new_markdown_cell(_intro(chapter), id="intro"),
             v4.new_markdown_cell(f"## The idea\n\n{chapter.explanation.strip()}",
                                  id="explanation"),
             v4.new_code_cell(SETUP, id="setup")]
    for i, exercise in enumerate(for_lesson(lesson), 1):
        slug = _slug(exercise.id)
        cells += [
            v4.new_markdown_cell(_statement(exercise, f"{lesson}.{i}"), id=f"{slug}-statement"),
            v4.new_code_cell(code.get(exercise.id, exercise.starter).rstrip("\n"),
                             id=f"{slug}-code"),
            v4.new_code_cell(_check_cell(exercise), id=f"{slug}-check"),
            v4.new_markdown_cell(_hints(exercise), id=f"{slug}-hints"),
        ]
    questions = questions_for_lesson(lesson)
    if questions:
        cells.append(v4.new_markdown_cell("## Predict, then see", id="questions"))
    for i, question in enumerate(questions, 1):
        slug = _slug(question.id)
        cells += [
            v4.new_markdown_cell(_question(question, f"{lesson}.{i}"), id=f"{slug}-question"),
            v4.new_code_cell(f'from gptcore.notebooks import reveal\n\nreveal("{question.id}")',
                             id=f"{slug}-answer"),
        ]
    notebook = v4.new_notebook(cells=cells, metadata=METADATA)
    nbformat.validate(notebook)  # raises on a malformed notebook (nbformat.writes only logs)
    return notebook


def notebook_bytes(lesson: int, code: dict[str, str] | None = None) -> bytes:
    """The .ipynb file of lesson `lesson`, with the learner's `code` per exercise id filled in."""
    text = nbformat.writes(build_notebook(lesson, code))
    return (text if text.endswith("\n") else text + "\n").encode("utf-8")


def notebook_path(folder: str | Path, chapter: Chapter) -> Path:
    return Path(folder) / f"{chapter.notebook}.ipynb"


def write_notebooks(folder: str | Path) -> list[Path]:
    """Write the five notebooks into `folder` (created if needed); returns their paths."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    paths = []
    for chapter in CHAPTERS:
        path = notebook_path(folder, chapter)
        path.write_bytes(notebook_bytes(chapter.number))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write the course's five notebooks.")
    parser.add_argument("--out", default="notebooks", help="folder to write them into")
    for path in write_notebooks(parser.parse_args(argv).out):
        print(path)


if __name__ == "__main__":
    main()
