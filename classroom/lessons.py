"""The course's lessons, in order: one registry for the router, the home page, the lesson
headers, the previous/next links and the progress view.

Numbers, titles and order come from the book (`gptcore.course`), which the notebooks read
too; this module adds what only the app has: each lesson's page, URL, icon and home-page blurb.
"""
from __future__ import annotations

from dataclasses import dataclass

from gptcore.course import CHAPTERS, Chapter


@dataclass(frozen=True)
class Lesson:
    number: int  # 0 is the home page
    title: str
    page: str  # file under the repository root
    url_path: str
    icon: str
    blurb: str = ""

    @property
    def nav_title(self) -> str:
        return self.title if self.number == 0 else f"{self.number} · {self.title}"


# What the app adds to each chapter of the course: (page, icon, blurb), by lesson number.
_APP = {
    1: ("pages/1_setup.py", ":material/rocket_launch:",
        "Load DistilGPT2, see its tokens and next-token probabilities, and steer sampling: "
        "temperature, top-k, top-p, seed, one token per click."),
    2: ("pages/2_tokenization.py", ":material/data_array:",
        "Characters, words, a BPE you train live and GPT-2's BPE side by side; sliding "
        "windows, batches, padding and a leak-free train/validation split."),
    3: ("pages/3_attention.py", ":material/visibility:",
        "Scores, softmax and weighted sums with real numbers; scaling, causal and padding "
        "masks as switches; heads one by one; attention maps of a real model."),
    4: ("pages/4_gpt.py", ":material/account_tree:",
        "Build a GPT with sliders, count its parameters and FLOPs, trace every shape, and "
        "prove gptcore's GPT computes exactly what GPT-2 computes."),
    5: ("pages/5_training.py", ":material/monitoring:",
        "Train a GPT in your browser with a live loss chart, read its samples improve, "
        "compare runs, and download your checkpoint."),
}


def _lesson(chapter: Chapter, page: str, icon: str, blurb: str) -> Lesson:
    return Lesson(chapter.number, chapter.title, page, f"lesson-{chapter.number}", icon, blurb)


HOME = Lesson(0, "Home", "pages/home.py", "", ":material/home:")
LESSONS: tuple[Lesson, ...] = tuple(_lesson(chapter, *_APP[chapter.number])
                                    for chapter in CHAPTERS)
BY_NUMBER = {lesson.number: lesson for lesson in (HOME, *LESSONS)}
