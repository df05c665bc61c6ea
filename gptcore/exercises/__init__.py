"""Build it yourself: the course's exercises, their checkers, and predict-then-see questions.

Every exercise is "write this gptcore function yourself": the answer is the book's own code,
and the checker compares the learner's version with it, naming the likely mistake.

    from gptcore.exercises import BY_ID, check
    print(BY_ID["attention.causal_mask"].starter)
    result = check("attention.causal_mask", my_source)   # result.passed, result.feedback

`check` runs the learner's source in this process (notebooks, tests); the app runs the same
function inside a sandbox process. One module per lesson holds that lesson's exercises.
"""
from __future__ import annotations

from gptcore.exercises import lesson1, lesson2, lesson3, lesson4, lesson5
from gptcore.exercises.framework import STAGES, CheckResult, Exercise, run_check
from gptcore.exercises.questions import QUESTIONS, Question, questions_for_lesson

EXERCISES: tuple[Exercise, ...] = (lesson1.EXERCISES + lesson2.EXERCISES + lesson3.EXERCISES
                                   + lesson4.EXERCISES + lesson5.EXERCISES)
BY_ID: dict[str, Exercise] = {exercise.id: exercise for exercise in EXERCISES}


def for_lesson(n: int) -> list[Exercise]:
    """The exercises of lesson n (1-5), in course order."""
    return [exercise for exercise in EXERCISES if exercise.lesson == n]


def check(exercise_id: str, source: str) -> CheckResult:
    """Run the learner's `source` and check what it defines against the book.

    Never raises for anything the learner's code does; an unknown id is a KeyError.
    """
    return run_check(BY_ID[exercise_id], source)


__all__ = ["BY_ID", "EXERCISES", "QUESTIONS", "STAGES", "CheckResult", "Exercise", "Question",
           "check", "for_lesson", "questions_for_lesson"]
