"""The exercise framework: run a learner's source, call it safely, explain what differs.

An exercise names what the learner defines and the book object that answers it. Its checker,
`checker(yours, book)`, calls the learner's object through `call(...)` and raises
`Fail(stage, feedback, table)` at the first difference it can explain, in this order (as the
ARENA tests do): the right kind of object, then output type and shape, then the classic
mistakes (each recognised by a deliberately buggy version or a property), then the numbers.

Learner code is compiled as "<your code>", so errors point at the learner's own lines and never
at ours. `run_check` runs it in this process; the app runs the same function in its sandbox.
"""
from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import importlib.util
import inspect
import math
import sys
import textwrap
import traceback
from dataclasses import dataclass, field
from typing import Callable

import torch

LEARNER_FILE = "<your code>"
STAGES = ("syntax", "name", "runs", "shape", "mistake", "numbers", "passed")


@dataclass(frozen=True)
class CheckResult:
    """What a check found. `line` is a line of the learner's source; `table` holds a few rows
    of short strings (input / yours / expected) for the case that failed."""

    passed: bool
    feedback: str
    stage: str
    line: int | None = None
    table: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "feedback": self.feedback, "stage": self.stage,
                "line": self.line, "table": [dict(row) for row in self.table]}

    @classmethod
    def from_dict(cls, d: dict) -> "CheckResult":
        line = d.get("line")
        return cls(passed=bool(d["passed"]), feedback=str(d["feedback"]), stage=str(d["stage"]),
                   line=None if line is None else int(line),
                   table=[{str(k): str(v) for k, v in row.items()} for row in d.get("table", [])])


@dataclass(frozen=True)
class Exercise:
    """One "write this gptcore function yourself" exercise.

    `reference` is the dotted path of the book's answer (imported only when needed);
    `also_at` lists other places it may live while a module is being renamed.
    `solution_source` names a module whose whole source is the answer, for a book object that
    is not a self-contained answer (the book's Block has options a learner's does not).
    """

    id: str
    lesson: int
    title: str
    name: str
    statement: str
    formula: str
    starter: str
    hints: tuple[str, ...]
    reference: str
    checker: Callable = field(repr=False, compare=False)
    praise: str = "Correct."
    kind: str = "function"  # or "class"
    also_at: tuple[str, ...] = ()
    solution_source: str | None = None

    def reference_object(self):
        """The book's object, from the first of `reference`, `also_at` that imports."""
        return self._resolve()[1]

    def reference_location(self) -> str:
        """The dotted path the book's object was found at (`reference` or one of `also_at`)."""
        return self._resolve()[0]

    def _resolve(self):
        first_error = None
        for dotted in (self.reference, *self.also_at):
            module_name, _, attr = dotted.rpartition(".")
            try:
                return dotted, getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError) as error:
                first_error = first_error or error
        raise first_error

    @property
    def solution(self) -> str:
        """The book's own code, with the imports it needs, runnable as learner source."""
        if self.solution_source:
            return inspect.getsource(importlib.import_module(self.solution_source))
        return standalone_source(self.reference_object())


# ------------------------------------------------------------------------ the book as a solution
def standalone_source(obj) -> str:
    """`obj`'s source preceded by the imports it uses from its module, and the source of the
    module's private helpers it calls, so that it runs on its own."""
    module = sys.modules[obj.__module__]
    imports = _import_lines(module)
    needed, helpers, seen = set(), [], {obj.__name__}
    todo = [obj]
    while todo:
        current = todo.pop()
        for name in _loaded_names(textwrap.dedent(inspect.getsource(current))):
            if name in seen:
                continue
            seen.add(name)
            if name in imports:
                needed.add(imports[name])
                continue
            value = vars(module).get(name)
            if value is None or name in vars(builtins):
                continue
            own = getattr(value, "__module__", None) == module.__name__
            private = name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            if own and private:
                helpers.append(value)
                todo.append(value)
            else:
                needed.add(f"from {module.__name__} import {name}")
    plain = sorted(line for line in needed if line.startswith("import "))
    froms = sorted(line for line in needed if line.startswith("from "))
    parts = ["\n".join(plain + froms)] if needed else []
    parts += [textwrap.dedent(inspect.getsource(h)).strip() for h in reversed(helpers)]
    parts.append(textwrap.dedent(inspect.getsource(obj)).strip())
    return "\n\n\n".join(parts) + "\n"


def _import_lines(module) -> dict[str, str]:
    """Each name the module's top-level imports bind -> the import statement that binds it."""
    lines = {}
    for node in ast.parse(inspect.getsource(module)).body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                alias_text = f" as {alias.asname}" if alias.asname else ""
                lines[bound] = f"import {alias.name}{alias_text}"
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            source = importlib.util.resolve_name("." * node.level + (node.module or ""),
                                                 module.__package__) if node.level else node.module
            for alias in node.names:
                bound = alias.asname or alias.name
                alias_text = f" as {alias.asname}" if alias.asname else ""
                lines[bound] = f"from {source} import {alias.name}{alias_text}"
    return lines


def _loaded_names(source: str) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in names:
            names.append(node.id)
    return names


# ------------------------------------------------------------------------ calling learner code
class Fail(Exception):
    """Raised by a checker at the first difference it can explain."""

    def __init__(self, stage: str, feedback: str, table: list[dict] | None = None):
        super().__init__(feedback)
        assert stage in STAGES, stage
        self.stage, self.feedback, self.table = stage, feedback, list(table or [])


class LearnerCrash(Exception):
    """The learner's code raised `error` during `call`, described in plain words."""

    def __init__(self, error: BaseException, call: str):
        super().__init__(call)
        self.error, self.call = error, call


def call(fn, *args, what: str | None = None, **kwargs):
    """fn(*args, **kwargs), with anything the learner's code raises turned into a LearnerCrash.

    The sandbox enforces time and memory; here we only make sure an exception in learner code
    is reported as theirs, with their line.
    """
    try:
        return fn(*args, **kwargs)
    except (Exception, SystemExit) as error:
        raise LearnerCrash(error, what or describe_call(fn, args, kwargs)) from None


def describe_call(fn, args, kwargs) -> str:
    name = getattr(fn, "__name__", type(fn).__name__)
    parts = [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def describe(value) -> str:
    """A short description of an argument: tensors by shape, small things by value."""
    if isinstance(value, torch.Tensor):
        if value.dim() == 0:
            return fmt(value)
        return f"a {tuple(value.shape)} tensor"
    if isinstance(value, torch.nn.Module):
        return f"a {type(value).__name__}"
    if isinstance(value, torch.optim.Optimizer):
        return f"an {type(value).__name__} optimizer"
    return fmt(value, max_items=8)


def learner_line(error: BaseException) -> int | None:
    """The deepest line of the learner's source in the error's traceback."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == LEARNER_FILE:
            line = frame.lineno
    return line


def _first_line(error: BaseException, limit: int = 220) -> str:
    text = str(error).strip().splitlines()
    text = text[0] if text else ""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def crash_result(error: BaseException, during: str) -> CheckResult:
    """A CheckResult for an exception raised by the learner's code, pointing at their line."""
    line = learner_line(error)
    where = f" on line {line}" if line else ""
    kind = type(error).__name__
    if isinstance(error, NotImplementedError):
        feedback = (f"Your code still raises NotImplementedError{where} ({during}): "
                    "that is a TODO left to write.")
    elif isinstance(error, SystemExit):
        feedback = f"Your code called exit(){where} ({during}); a function should return instead."
    else:
        message = _first_line(error)
        feedback = f"Your code raised {kind}{where} ({during})" + (
            f": {message}" if message else ".")
        advice = _advice(kind, message)
        if advice:
            feedback += ("" if feedback.endswith((".", "!", "?")) else ".") + " " + advice
    return CheckResult(False, feedback, "runs", line)


def _advice(kind: str, message: str) -> str:
    """One sentence for the errors learners meet most often in this course."""
    tips = [
        ("view size is not compatible", "After a transpose the tensor is not contiguous: "
                                         "call .contiguous() before .view(), or use .reshape()."),
        ("Module.__init__() call", "Call super().__init__() first thing in __init__."),
        ("cannot be multiplied", "Check the shapes of the two sides of the matmul "
                                 "(print them): one may need a transpose."),
        ("must match the size", "Two tensors' shapes do not line up: print their shapes."),
        ("does not require grad", "The loss has no graph: compute it with gradients enabled "
                                  "and call loss.backward() before the optimizer step."),
    ]
    for needle, tip in tips:
        if needle in message:
            return tip
    if "NoneType" in message:
        return ("Something is None there: a function without `return`, or an argument that may "
                "be None (check `is not None` before using it).")
    if kind == "NameError":
        return "Maybe an import is missing at the top (the checker pre-imports nothing)."
    return ""


def run_check(exercise: Exercise, source: str) -> CheckResult:
    """Compile and run `source`, find the name, run the exercise's checker. Never raises for
    anything the learner's code does."""
    with _isolated_torch_state():
        return _run_check(exercise, source)


def _run_check(exercise: Exercise, source: str) -> CheckResult:
    try:
        code = compile(source, LEARNER_FILE, "exec")
    except SyntaxError as error:
        message = error.msg or "invalid syntax"
        where = f"line {error.lineno}" if error.lineno else "your code"
        return CheckResult(False, f"Python cannot read {where}: {message}.", "syntax", error.lineno)
    except (ValueError, TypeError) as error:  # e.g. a null byte in the text
        return CheckResult(False, f"Python cannot read your code: {_first_line(error)}.", "syntax")

    namespace = {"__name__": "__learner__", "__builtins__": builtins}
    try:
        exec(code, namespace)
    except (Exception, SystemExit) as error:
        return crash_result(error, "while running your code, before any check")

    found = _check_name(exercise, namespace)
    if found is not None:
        return found
    yours = namespace[exercise.name]
    book = exercise.reference_object()  # an error here is ours, not the learner's: let it raise
    try:
        exercise.checker(yours, book)
    except Fail as failure:
        return CheckResult(False, failure.feedback, failure.stage, None, failure.table)
    except LearnerCrash as crash:
        return crash_result(crash.error, f"in {crash.call}")
    except Exception as error:  # the learner's object misbehaved where the checker used it
        line = learner_line(error)
        if line is not None:
            return crash_result(error, "while checking")
        return CheckResult(False, f"Your {exercise.kind} returned something the checker could "
                                  f"not use ({type(error).__name__}: {_first_line(error)}). "
                                  "Compare what it returns with the statement.", "shape")
    return CheckResult(True, exercise.praise, "passed")


def _check_name(exercise: Exercise, namespace: dict) -> CheckResult | None:
    name = exercise.name
    if name not in namespace:
        similar = [n for n in namespace if n.lower() == name.lower() and n != name]
        also = f" (you defined `{similar[0]}`: names are case-sensitive)" if similar else ""
        what = "a class" if exercise.kind == "class" else "a function"
        return CheckResult(False, f"Define {what} called `{name}`{also}; the checker looks for "
                                  "that exact name.", "name")
    value = namespace[name]
    if exercise.kind == "class" and not inspect.isclass(value):
        return CheckResult(False, f"`{name}` should be a class (`class {name}:`), not "
                                  f"{type(value).__name__}.", "name")
    if exercise.kind == "function" and (inspect.isclass(value) or not callable(value)):
        what = "a class" if inspect.isclass(value) else type(value).__name__
        return CheckResult(False, f"`{name}` should be a function (`def {name}(...):`), not "
                                  f"{what}.", "name")
    return None


@contextlib.contextmanager
def _isolated_torch_state():
    """Learner code may seed, change the default dtype or turn off gradients: undo it after."""
    dtype, grad = torch.get_default_dtype(), torch.is_grad_enabled()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            torch.set_default_dtype(dtype)
            torch.set_grad_enabled(grad)


# ------------------------------------------------------------------------ comparing and showing
def fmt(value, max_items: int = 6) -> str:
    """A short string for a table cell: 4 significant digits, long things cut with …"""
    if isinstance(value, torch.Tensor):
        value = value.detach()
        if value.dtype == torch.bool:
            value = value.int()  # masks read better as 1/0
        if value.dim() == 0:
            return fmt(value.item())
        if value.dim() > 1:
            first = fmt(value.reshape(-1, value.size(-1))[0], max_items)
            return f"{tuple(value.shape)} tensor, first row {first}"
        return fmt(value.tolist(), max_items)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isinf(value):
            return "-inf" if value < 0 else "inf"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        items = [fmt(v, max_items) for v in value[:max_items]]
        more = ", …" if len(value) > max_items else ""
        body = ", ".join(items) + more
        return f"({body})" if isinstance(value, tuple) else f"[{body}]"
    text = repr(value)
    if " object at 0x" in text:  # a default repr names modules: say only what it is
        text = f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:59] + "…"


def row(input, yours, expected) -> dict:
    """One table row; strings are kept as they are, anything else goes through fmt."""
    show = (lambda v: v if isinstance(v, str) else fmt(v))
    return {"input": show(input), "yours": show(yours), "expected": show(expected)}


def as_tensor(value, what: str) -> torch.Tensor:
    """The learner's output as a tensor, or a Fail that says what it was instead."""
    if isinstance(value, torch.Tensor):
        return value.detach()
    raise Fail("shape", f"{what} should be a torch tensor; yours is {_type_name(value)}.")


def as_int_list(value, what: str) -> list[int]:
    """A list of ints from a list, tuple or 1-D tensor, or a Fail."""
    if isinstance(value, torch.Tensor) and value.dim() <= 1:
        return [int(v) for v in value.reshape(-1).tolist()]
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes, dict, torch.Tensor)):
        try:
            return [int(v) for v in value]  # lists, tuples, numpy arrays
        except (TypeError, ValueError):
            pass
    raise Fail("shape", f"{what} should be a list of token ids; yours is {_type_name(value)}.")


def _type_name(value) -> str:
    if value is None:
        return "None (did you forget `return`?)"
    if isinstance(value, torch.Tensor):
        return f"a {tuple(value.shape)} tensor"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def check_shape(t: torch.Tensor, expected: tuple, what: str, input_text: str, extra: str = ""):
    if tuple(t.shape) != tuple(expected):
        verb = "have" if what.endswith("s") else "has"  # "your weights have"
        raise Fail("shape", f"{what} {verb} shape {tuple(t.shape)}; expected {tuple(expected)}."
                            + (f" {extra}" if extra else ""),
                   [row(input_text, str(tuple(t.shape)), str(tuple(expected)))])


def close(yours, expected, rtol: float = 1e-4, atol: float = 1e-5) -> bool:
    """Equal shapes and allclose in float64 (infinities must match exactly)."""
    yours = torch.as_tensor(yours).detach()
    expected = torch.as_tensor(expected).detach()
    if yours.shape != expected.shape:
        return False
    if yours.is_complex() or expected.is_complex():
        return False
    return torch.allclose(yours.double(), expected.double(), rtol=rtol, atol=atol)


def max_diff(yours, expected) -> float:
    d = (torch.as_tensor(yours).double() - torch.as_tensor(expected).double()).abs()
    d = d.nan_to_num(nan=math.inf)
    return d.max().item() if d.numel() else 0.0


def first_bad_row(yours: torch.Tensor, expected: torch.Tensor, rtol=1e-4, atol=1e-5) -> int:
    """Index of the first row (over the last dimension) where the two differ."""
    a, b = (t.double().reshape(-1, t.size(-1) if t.dim() else 1) for t in (yours, expected))
    for i in range(a.size(0)):
        if not torch.allclose(a[i], b[i], rtol=rtol, atol=atol):
            return i
    return 0


def row_of(t: torch.Tensor, i: int) -> torch.Tensor:
    return t.reshape(-1, t.size(-1))[i] if t.dim() else t


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed: int, dtype=torch.float32) -> torch.Tensor:
    """A seeded normal tensor that leaves the global random state alone."""
    return torch.randn(*shape, generator=generator(seed), dtype=dtype)
