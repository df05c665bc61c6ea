"""The course's lessons, in order: one registry for the router, the home page, the lesson
headers, the previous/next links and the progress view."""
from __future__ import annotations

from dataclasses import dataclass


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


HOME = Lesson(0, "Home", "pages/home.py", "", ":material/home:")
LESSONS: tuple[Lesson, ...] = (
    Lesson(1, "Setup: meet a real GPT", "pages/1_setup.py", "lesson-1", ":material/rocket_launch:",
           "Load DistilGPT2, see its tokens and next-token probabilities, and steer sampling: "
           "temperature, top-k, top-p, seed, one token per click."),
    Lesson(2, "Tokenization and the dataloader", "pages/2_tokenization.py", "lesson-2",
           ":material/data_array:",
           "Characters, words, a BPE you train live and GPT-2's BPE side by side; sliding "
           "windows, batches, padding and a leak-free train/validation split."),
    Lesson(3, "Attention", "pages/3_attention.py", "lesson-3", ":material/visibility:",
           "Scores, softmax and weighted sums with real numbers; scaling, causal and padding "
           "masks as switches; heads one by one; attention maps of a real model."),
    Lesson(4, "GPT architecture", "pages/4_gpt.py", "lesson-4", ":material/account_tree:",
           "Build a GPT with sliders, count its parameters and FLOPs, trace every shape, and "
           "prove gptcore's GPT computes exactly what GPT-2 computes."),
    Lesson(5, "Training lab", "pages/5_training.py", "lesson-5", ":material/monitoring:",
           "Train a GPT in your browser with a live loss chart, read its samples improve, "
           "compare runs, and download your checkpoint."),
)
BY_NUMBER = {lesson.number: lesson for lesson in (HOME, *LESSONS)}
