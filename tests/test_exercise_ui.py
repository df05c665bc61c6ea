"""The exercise panel in the page (AppTest): the code editor, a frame of its own, starts
only once the learner begins; a learner with code of their own gets it at once."""
from streamlit.testing.v1 import AppTest

from gptcore.exercises import BY_ID

EXERCISE = "attention.causal_mask"


def panel():
    from classroom import exercise_ui

    exercise_ui.exercise("attention.causal_mask")


def editors(at: AppTest) -> int:
    def walk(node):
        for child in getattr(node, "children", {}).values():
            yield child
            yield from walk(child)

    return sum(getattr(e, "type", "") == "component_instance" for e in walk(at._tree))


def test_the_editor_starts_when_the_learner_begins():
    at = AppTest.from_function(panel, default_timeout=60)
    at.run()
    assert not at.exception
    assert editors(at) == 0
    assert [c.value.strip() for c in at.code] == [BY_ID[EXERCISE].starter.strip()]  # to read
    at.button(key=f"act_write_{EXERCISE}").click().run()
    assert not at.exception
    assert editors(at) == 1 and not at.code  # the starter went into the editor
    assert {b.key for b in at.button} == {f"act_{what}_{EXERCISE}"
                                          for what in ("hint", "solution", "reset")}
    at.run()  # and it stays open
    assert editors(at) == 1


def test_code_of_their_own_opens_the_editor_at_once():
    from classroom.progress import Progress
    from classroom.state import Keys

    at = AppTest.from_function(panel, default_timeout=60)
    record = Progress()
    record.code[EXERCISE] = "def causal_mask(T):\n    return None\n"
    at.session_state[Keys.progress] = record
    at.run()
    assert not at.exception
    assert editors(at) == 1 and not at.code
