"""What a learner has done: their code per exercise, which exercises passed, their committed
predictions. Kept in the session, shown per lesson, and carried between visits as a small
JSON file the learner downloads and uploads again (validated like any upload).

Counting reads the course's table of contents (`gptcore.course`), not the exercises
themselves: the home page and every sidebar show progress, and the exercises load torch (2 s);
an uploaded file (on the home page only) is checked against the exercises' questions.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import streamlit as st

from gptcore.course import EXERCISE_IDS, QUESTION_IDS

FORMAT = "gptcourse-progress-1"
MAX_FILE_BYTES = 1_000_000
MAX_CODE_CHARS = 64 * 1024
ALL_EXERCISE_IDS = frozenset(i for ids in EXERCISE_IDS.values() for i in ids)


class ProgressError(ValueError):
    """A progress file cannot be used; the message says why in plain words."""


@dataclass
class Progress:
    code: dict[str, str] = field(default_factory=dict)  # exercise id -> the learner's code
    passed: set[str] = field(default_factory=set)  # exercise ids whose last check passed
    predictions: dict[str, object] = field(default_factory=dict)  # question id -> prediction

    def lesson_counts(self, lesson: int) -> dict[str, int]:
        exercises, questions = EXERCISE_IDS.get(lesson, ()), QUESTION_IDS.get(lesson, ())
        return {"passed": sum(i in self.passed for i in exercises), "exercises": len(exercises),
                "answered": sum(i in self.predictions for i in questions),
                "questions": len(questions)}

    def to_json(self) -> str:
        return json.dumps({"format": FORMAT, "code": self.code, "passed": sorted(self.passed),
                           "predictions": self.predictions}, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: bytes) -> "Progress":
        """Parse and validate a progress file; unknown exercises and questions are refused."""
        from classroom import warmup

        # a prediction is checked against its question's options; on the home page this is
        # the first import of torch, which must not run beside the warm-up's (classroom.warmup)
        with warmup.lesson_running():
            from gptcore.exercises import QUESTIONS

        questions = {q.id: q for q in QUESTIONS}

        if len(raw) > MAX_FILE_BYTES:
            raise ProgressError(f"This file is {len(raw):,} bytes; a progress file is far "
                                f"smaller (at most {MAX_FILE_BYTES:,}).")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ProgressError("This is not a progress file saved by this course (it is not "
                                f"valid JSON: {e}).") from e
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProgressError("This JSON file is not a progress file saved by this course.")
        code, passed, predictions = data.get("code"), data.get("passed"), data.get("predictions")
        if not (isinstance(code, dict) and isinstance(passed, list) and isinstance(predictions, dict)):
            raise ProgressError("The progress file is damaged: code, passed and predictions "
                                "must be present.")
        for exercise_id, source in code.items():
            if exercise_id not in ALL_EXERCISE_IDS:
                raise ProgressError(f"The progress file names an exercise this course does not "
                                    f"have: {exercise_id!r}.")
            if not isinstance(source, str) or len(source) > MAX_CODE_CHARS:
                raise ProgressError(f"The code saved for {exercise_id} is not text or is too long.")
        if not all(isinstance(i, str) and i in ALL_EXERCISE_IDS for i in passed):
            raise ProgressError("The progress file lists an unknown exercise as passed.")
        for question_id, guess in predictions.items():
            question = questions.get(question_id)
            if question is None:
                raise ProgressError(f"The progress file names an unknown question: {question_id!r}.")
            valid = (isinstance(guess, int) and not isinstance(guess, bool)
                     and 0 <= guess < len(question.options)) if question.options else \
                (isinstance(guess, (int, float)) and not isinstance(guess, bool))
            if not valid:
                raise ProgressError(f"The prediction saved for {question_id} is not a valid answer.")
        return cls(dict(code), set(passed), dict(predictions))


def progress() -> Progress:
    """This learner's progress (created empty on first use)."""
    from classroom.state import Keys

    return st.session_state.setdefault(Keys.progress, Progress())


def restore(raw: bytes) -> Progress:
    """Replace this learner's progress with an uploaded file's (ProgressError if invalid)."""
    from classroom.state import Keys

    loaded = Progress.from_json(raw)
    st.session_state[Keys.progress] = loaded
    for key in [k for k in st.session_state if str(k).startswith("ex:")]:
        del st.session_state[key]  # editors reopen on the restored code, with no stale result
    return loaded
