"""The learner's progress: counted per lesson, saved as a file, validated when it comes back."""
import json

import pytest

from classroom.progress import FORMAT, Progress, ProgressError
from gptcore.exercises import EXERCISES, QUESTIONS
from tests.test_app_pages import no_exception, open_page


def test_progress_round_trips_and_counts_per_lesson():
    q = next(q for q in QUESTIONS if q.options)
    record = Progress(code={"model.gelu": "def gelu(x):\n    return x\n"}, passed={"model.gelu"},
                      predictions={q.id: 0})
    back = Progress.from_json(record.to_json().encode())
    assert back == record
    counts = back.lesson_counts(4)
    assert counts["passed"] == 1 and counts["exercises"] == sum(e.lesson == 4 for e in EXERCISES)
    assert back.lesson_counts(q.lesson)["answered"] == 1


@pytest.mark.parametrize("raw,message", [
    (b"\xff\xfe not json", "not valid JSON"),
    (b"[1, 2, 3]", "not a progress file"),
    (json.dumps({"format": FORMAT, "code": {"os.system": "x"}, "passed": [],
                 "predictions": {}}).encode(), "does not have"),
    (json.dumps({"format": FORMAT, "code": {}, "passed": ["nope"], "predictions": {}}).encode(),
     "unknown exercise"),
    (json.dumps({"format": FORMAT, "code": {"model.gelu": 5}, "passed": [],
                 "predictions": {}}).encode(), "not text"),
    (json.dumps({"format": FORMAT, "code": {}, "passed": [],
                 "predictions": {"q.nope": 1}}).encode(), "unknown question"),
    (json.dumps({"format": FORMAT, "code": {}, "passed": [],
                 "predictions": {next(q.id for q in QUESTIONS if q.options): 99}}).encode(),
     "not a valid answer"),
    (b"x" * 2_000_000, "far smaller"),
])
def test_bad_progress_files_get_plain_messages(raw, message):
    with pytest.raises(ProgressError, match=message):
        Progress.from_json(raw)


def test_home_shows_progress_and_restores_an_upload():
    at = open_page("pages/home.py")
    no_exception(at)
    record = Progress(code={"model.gelu": "def gelu(x):\n    return x * 0\n"}, passed={"model.gelu"})
    at.get("file_uploader")  # the widget exists before we use it
    from streamlit.testing.v1 import AppTest  # noqa: F401 - AppTest has no uploader API: set state
    at.session_state["progress"] = Progress.from_json(record.to_json().encode())
    at.run()
    no_exception(at)
    captions = " ".join(c.value for c in at.caption)
    assert "1 of" in captions  # lesson 4: one exercise passed
