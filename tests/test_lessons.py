"""AppTest per lesson: renders offline, with each model source, and every control changes the page."""
import io

import pytest
import torch

from tests.conftest import make_tiny_gpt2
from tests.test_app_pages import no_exception, open_page, pictures


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GPTCORE_MODEL_DIR", raising=False)


def changes(at, control, value):
    before = pictures(at)
    control.set_value(value).run()
    no_exception(at)
    return pictures(at) != before


# ----------------------------------------------------------------------------- lesson 1


def test_setup_offline_offers_the_random_fallback_and_explains():
    at = open_page("pages/1_setup.py")
    no_exception(at)
    assert at.radio(key="model_choice").options == ["Random DistilGPT2-shaped (untrained)"]
    assert any("DistilGPT2 is not available here" in i.value for i in at.info)
    assert any("Untrained" in c.value for c in at.caption)
    assert any("81,912,576" in c.value for c in at.caption)  # DistilGPT2's parameter count


def test_setup_with_a_local_model_folder(tiny_gpt2_dir, monkeypatch):
    monkeypatch.setenv("GPTCORE_MODEL_DIR", str(tiny_gpt2_dir))
    at = open_page("pages/1_setup.py")
    no_exception(at)
    assert at.radio(key="model_choice").value == "Local model folder"
    assert at.sidebar.markdown[-1].value.endswith("Local model folder") or any(
        "Local model folder" in m.value for m in at.sidebar.markdown)


def test_setup_controls_change_the_output(tiny_gpt2_dir, monkeypatch):
    monkeypatch.setenv("GPTCORE_MODEL_DIR", str(tiny_gpt2_dir))
    at = open_page("pages/1_setup.py")
    for key, value in [("l1_greedy", True), ("l1_greedy", False), ("l1_temperature", 0.3),
                       ("l1_top_k", 3), ("l1_top_p", 0.2)]:
        control = at.toggle(key=key) if key == "l1_greedy" else at.slider(key=key)
        assert changes(at, control, value), key
    at.slider(key="l1_top_p").set_value(1.0).run()
    at.slider(key="l1_top_k").set_value(0).run()
    at.text_area(key="l1_prompt").input("Once upon a time").run()
    at.button(key="act_l1_generate").click().run()
    first = [m.value for m in at.markdown if m.value.startswith("**Once upon a time**")]
    at.sidebar.number_input(key="seed").set_value(7).run()
    at.button(key="act_l1_generate").click().run()
    second = [m.value for m in at.markdown if m.value.startswith("**Once upon a time**")]
    assert first and second and first != second  # a new seed samples new text
    for _ in range(3):
        at.button(key="act_l1_next").click().run()
    no_exception(at)
    assert any("Step 3" in str(c.proto) for c in at.get("vega_lite_chart"))
    at.text_area(key="l1_prompt").input("").run()  # empty prompt: starts from <|endoftext|>
    no_exception(at)
    assert any("prompt is empty" in c.value for c in at.caption)


# ----------------------------------------------------------------------------- lesson 2


def test_tokenization_sliders_change_spans_and_windows():
    at = open_page("pages/2_tokenization.py")
    no_exception(at)
    for key, value in [("l2_merge_k", 150), ("l2_block", 5), ("l2_stride", 1), ("l2_vocab", 320),
                       ("l2_batch", 9)]:
        assert changes(at, at.slider(key=key), value), key
    for text in ["", "😀" * 50, "日本語のテキスト", "a\x00b\x1b[31mc", "x" * 30_000]:
        at.text_area(key="l2_text").input(text).run()
        no_exception(at)
    assert any("first 20,000" in w.value for w in at.warning)


def test_tokenization_upload_is_checked():
    at = open_page("pages/2_tokenization.py")
    at.file_uploader(key="act_l2_upload").upload("latin.txt", "café".encode("latin-1"), "text/plain").run()
    no_exception(at)
    assert any("not UTF-8" in e.value for e in at.error)
    at.file_uploader(key="act_l2_upload").upload("ok.txt", "héllo wörld".encode(), "text/plain").run()
    assert any("Using the uploaded file ok.txt" in c.value for c in at.caption)


# ----------------------------------------------------------------------------- lesson 3


def test_attention_every_control_changes_the_picture():
    at = open_page("pages/3_attention.py")
    no_exception(at)
    for control, value in [(at.selectbox(key="l3_query"), "step"),
                           (at.toggle(key="l3_toy_scale"), True),
                           (at.select_slider(key="l3_dk"), 8),
                           (at.toggle(key="l3_scale"), False),
                           (at.toggle(key="l3_causal"), False),
                           (at.toggle(key="l3_pad"), False),
                           (at.select_slider(key="l3_heads"), 1),
                           (at.select_slider(key="l3_heads"), 24)]:
        assert changes(at, control, value), control.key
    at.text_input(key="l3_real_text").input("a").run()  # a one-token input
    no_exception(at)


def test_attention_causal_experiment_shows_the_cheat():
    at = open_page("pages/3_attention.py")
    at.button(key="act_l3_train_causal").click().run()
    no_exception(at)
    losses = {m.label: float(m.value) for m in at.metric if m.label.startswith("validation")}
    assert losses["validation loss without mask"] < losses["validation loss with mask"] - 0.5


# ----------------------------------------------------------------------------- lesson 4


def test_gpt_builder_presets_and_limits():
    at = open_page("pages/4_gpt.py")
    no_exception(at)
    counts = set()
    for preset in ["Tutorial GPT", "nanoGPT baby GPT (CPU)", "DistilGPT2", "GPT-2 small"]:
        at.selectbox(key="l4_preset").set_value(preset).run()
        no_exception(at)
        counts.add(at.metric[0].value)
    assert {"30,503,424", "81,912,576", "124,439,808"} <= counts
    assert changes(at, at.slider(key="l4_trace_t"), 3)
    at.slider(key="l4_n_head").set_value(5).run()
    assert any("divisible" in e.value for e in at.error)
    for extreme in ({"l4_n_layer": 1, "l4_n_head": 1, "l4_n_embd": 8},
                    {"l4_n_layer": 48, "l4_n_head": 32, "l4_n_embd": 1600}):
        for key, value in extreme.items():
            at.slider(key=key).set_value(value).run()
        for key, value in (("l4_vocab_size", 2 if extreme["l4_n_layer"] == 1 else 100_000),
                           ("l4_block_size", 8 if extreme["l4_n_layer"] == 1 else 2048)):
            at.number_input(key=key).set_value(value).run()
        no_exception(at)
        assert not at.error
    for key, value in [("l4_res_depth", 4), ("l4_drop_p", 0.2)]:
        assert changes(at, at.slider(key=key), value), key


def test_gpt_weight_port_report(tiny_gpt2_dir, monkeypatch):
    monkeypatch.setenv("GPTCORE_MODEL_DIR", str(tiny_gpt2_dir))
    at = open_page("pages/4_gpt.py")
    at.button(key="act_l4_port").click().run()
    no_exception(at)
    assert at.success and "predicted next token is the same" in at.success[0].value


# ----------------------------------------------------------------------------- lesson 5


def wait_for_run(at, seconds=120):
    import time

    deadline = time.time() + seconds
    run = at.session_state["training_runs"][-1]
    while run.active and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    return run


def small_lab(at, steps=40):
    at.selectbox(key="l5_model").set_value("Tiny (2 layers × 2 heads × 64, context 32)").run()
    at.slider(key="l5_steps").set_value(steps).run()
    at.slider(key="l5_eval").set_value(20).run()
    at.slider(key="l5_batch").set_value(8).run()


def test_training_lab_trains_compares_and_round_trips_a_checkpoint():
    at = open_page("pages/5_training.py")
    no_exception(at)
    small_lab(at)
    at.button(key="act_l5_train").click().run()
    run = wait_for_run(at)
    no_exception(at)
    assert run.snapshot()["status"] == "done"
    assert any(m.label == "perplexity" for m in at.metric)
    assert at.session_state["trained_model"].label == "run 1"
    raw = run.checkpoint_bytes()
    at.file_uploader(key="act_l5_upload").upload("mine.pt", raw).run()
    no_exception(at)
    assert any("Loaded mine.pt" in s.value for s in at.success)
    table = at.table[-1].value
    assert list(table.index) == ["run 1", "upload: mine.pt"]
    assert table["val loss"].iloc[0] == table["val loss"].iloc[1]


@pytest.mark.parametrize("content,message", [
    (b"\x89PNG\r\n not a checkpoint", "not a readable"),
    (None, "not a gptcore checkpoint"),
])
def test_training_lab_rejects_bad_checkpoints(content, message):
    if content is None:
        buffer = io.BytesIO()
        torch.save({"state_dict": make_tiny_gpt2().state_dict()}, buffer)
        content = buffer.getvalue()
    at = open_page("pages/5_training.py")
    at.file_uploader(key="act_l5_upload").upload("bad.pt", content).run()
    no_exception(at)
    assert any(message in e.value for e in at.error)


def test_training_lab_diverging_learning_rate_and_caps():
    at = open_page("pages/5_training.py")
    small_lab(at, steps=100)
    at.select_slider(key="l5_lr").set_value(100.0).run()
    at.slider(key="l5_clip").set_value(0.0).run()
    at.button(key="act_l5_train").click().run()
    run = wait_for_run(at)
    assert run.snapshot()["status"] == "diverged"
    assert any("diverged" in e.value for e in at.error)
    at.radio(key="l5_tok").set_value("gpt2").run()  # 50,257 × 128 embeddings: over the cap
    assert any("limit here" in e.value for e in at.error)
    assert at.button(key="act_l5_train").disabled
