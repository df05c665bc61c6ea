"""The small Shakespeare GPT the app ships for classes with no network: it is a real gptcore
checkpoint, it has learned (its validation loss, recomputed here on the Tiny Shakespeare copy
beside the project), and lessons 1 and 3 offer it offline beside the random DistilGPT2."""
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from classroom.models import SHIPPED_PATH, SRC_RANDOM, SRC_SHIPPED
from gptcore.checkpoint import load_checkpoint
from tests.test_app_pages import no_exception, open_page

TINY_SHAKESPEARE = Path(__file__).resolve().parents[2] / "shared" / "data" / "tinyshakespeare.txt"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GPTCORE_MODEL_DIR", raising=False)


@pytest.fixture(scope="module")
def shipped():
    return load_checkpoint(SHIPPED_PATH)


def test_shipped_model_is_small_and_without_optimizer_state(shipped):
    assert SHIPPED_PATH.stat().st_size < 5_000_000  # "a few MB" in the repository
    assert shipped["optimizer"] is None and shipped["generator"] is None
    assert shipped["tokenizer"]["kind"] == "char" and len(shipped["tokenizer"]["chars"]) == 65
    assert shipped["model_config"]["vocab_size"] == 66  # Tiny Shakespeare's 65 characters + <unk>
    assert shipped["step"] == shipped["history"][-1]["iter"] > 0


@pytest.mark.skipif(not TINY_SHAKESPEARE.is_file(), reason="../shared/data/tinyshakespeare.txt absent")
def test_shipped_model_has_learned_tiny_shakespeare(shipped):
    """Every full window of the last 10% of Tiny Shakespeare (the split the trainer held out),
    scored by hand with F.cross_entropy: the loss the checkpoint reports, and far below the
    untrained ln 65."""
    model, tok = shipped["model_obj"], shipped["tokenizer_obj"]
    text = TINY_SHAKESPEARE.read_text(encoding="utf-8")
    ids = torch.tensor(tok.encode(text))
    val = ids[int(len(ids) * 0.9):]
    T = model.config.block_size
    n = (len(val) - 1) // T
    x = val[: n * T].view(n, T)
    y = val[1: n * T + 1].view(n, T)
    with torch.no_grad():
        losses = [F.cross_entropy(model(xb)[0].flatten(0, 1), yb.flatten())
                  for xb, yb in zip(x.split(256), y.split(256))]
    sizes = [len(b) for b in x.split(256)]
    loss = sum(l.item() * s for l, s in zip(losses, sizes)) / sum(sizes)
    reported = shipped["history"][-1]["val_loss"]
    assert loss < 2.0 < math.log(66) - 2  # learned: untrained it scores about ln 66 = 4.19
    assert abs(loss - reported) < 0.05  # the trainer's sampled estimate agrees with all windows


def test_lesson_1_offers_it_offline_and_generates_shakespeare_like_text(shipped):
    at = open_page("pages/1_setup.py")
    no_exception(at)
    assert at.radio(key="model_choice").options == [SRC_RANDOM, SRC_SHIPPED]
    assert any("small Shakespeare GPT" in i.value for i in at.info)  # the offline box names it
    at.radio(key="model_choice").set_value(SRC_SHIPPED).run()
    assert any("character-level GPT trained on Tiny Shakespeare" in c.value for c in at.caption)
    at.text_area(key="l1_prompt").input("ROMEO:").run()
    at.toggle(key="l1_greedy").set_value(True).run()
    at.button(key="act_l1_generate").click().run()
    no_exception(at)
    text = at.session_state["l1_output"]["text"]
    assert text and set(text) <= set(shipped["tokenizer_obj"].chars)
    words = [w for w in text.replace("\n", " ").split(" ") if w.isalpha()]
    assert words and sum(w.lower() in {"the", "and", "i", "to", "of", "a", "my", "you", "that",
                                       "is", "in", "me", "not", "be", "with", "your", "will",
                                       "he", "his", "it", "for", "thou", "this", "so", "what"}
                         for w in words) >= 1  # greedy text from a trained model has real words
    at.radio(key="model_choice").set_value(SRC_RANDOM).run()
    no_exception(at)


def test_lesson_3_draws_the_shipped_models_attention():
    at = open_page("pages/3_attention.py")
    at.radio(key="model_choice").set_value(SRC_SHIPPED).run()
    no_exception(at)
    assert not at.error
    assert any("of the text's 44 tokens" in c.value for c in at.caption)  # one per character
