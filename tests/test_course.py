"""The course's glossary and references, shown on the home page: every glossary word is one a
lesson really uses, and the works the lessons rest on are cited."""
import re

from gptcore.course import CHAPTERS, GLOSSARY, REFERENCES
from tests.conftest import ROOT
from tests.test_app_pages import no_exception, open_page

LESSONS = (sorted((ROOT / "pages").glob("[1-5]_*.py"))  # the pages, and the demos they call
           + sorted((ROOT / "classroom").glob("*_views.py")))
LESSON_TEXT = "\n".join([p.read_text() for p in LESSONS]
                        + [c.explanation for c in CHAPTERS]).lower()


def spellings(term: str) -> list[str]:
    """'query, key, value (q, k, v)' -> ['query', 'key', 'value']; 'top-k / top-p' -> both."""
    head = re.sub(r"\(.*?\)", "", term)
    return [w.strip().lower() for w in re.split(r"[,/]| and ", head) if w.strip()]


def test_every_glossary_word_is_used_by_a_lesson():
    for term in GLOSSARY:
        for word in spellings(term):
            assert word in LESSON_TEXT, f"glossary word {word!r} appears in no lesson"


def test_the_references_the_lessons_rest_on_are_cited():
    cited = " ".join(REFERENCES)
    for needle in ("Vaswani et al. (2017)", "Radford et al. (2019)", "Kaplan et al. (2020)",
                   "Building GPT Step-by-Step", "arXiv:1706.03762", "arXiv:2001.08361"):
        assert needle in cited


def test_home_page_shows_the_glossary_and_the_references():
    at = open_page("pages/home.py")
    no_exception(at)
    text = "\n".join(m.value for m in at.markdown)
    assert all(f"**{term}**: {meaning}" in text for term, meaning in GLOSSARY.items())
    assert all(f"- {ref}" in text for ref in REFERENCES)
    assert [e.label for e in at.expander][-2:] == [f"Glossary: {len(GLOSSARY)} words the lessons use",
                                                  "References"]
