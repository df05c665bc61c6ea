"""AppTest per lesson: renders offline, with each model source, and every control changes the page."""
import io
import math

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
    assert at.radio(key="model_choice").options == ["Random DistilGPT2-shaped (untrained)",
                                                    "Small Shakespeare GPT (shipped, trained)"]
    assert any("DistilGPT2 is not available here" in i.value for i in at.info)
    assert any("Untrained" in c.value for c in at.caption)
    assert any("81,912,576" in c.value for c in at.caption)  # DistilGPT2's parameter count
    assert any("327,650,304 bytes = 327.7 MB" in m.value for m in at.markdown)  # 10^6 bytes each
    assert any("that is 312.5 MiB" in c.value for c in at.caption)  # 2^20 bytes each


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
    assert any("prompt is empty, so the model starts from token 50256" in c.value for c in at.caption)


def setup_table(at):
    """The "numbers" table under the first next-token chart, as floats."""
    table = next(d.value for d in at.dataframe if "raw probability" in d.value.columns)
    as_float = lambda s: float(s.rstrip("%")) / 100  # noqa: E731
    return [(int(i), as_float(r), as_float(f), bool(k)) for i, r, f, k in zip(
        table["id"], table["raw probability"], table["after the knobs"], table["kept"])]


def test_setup_figures_equal_an_independent_recomputation(tiny_gpt2_dir, monkeypatch):
    """Card, token count, distribution, greedy text and steps, against transformers + tiktoken."""
    from transformers import GPT2LMHeadModel

    from gptcore.tokenizers import gpt2_encoding
    from tests.test_generate import brute_force_distribution

    monkeypatch.setenv("GPTCORE_MODEL_DIR", str(tiny_gpt2_dir))
    hf, enc = GPT2LMHeadModel.from_pretrained(tiny_gpt2_dir).eval(), gpt2_encoding()
    at = open_page("pages/1_setup.py")
    n = hf.num_parameters()
    card = next(m.value for m in at.markdown if "| parameters |" in m.value)
    assert f"| parameters | {n:,} |" in card
    assert f"| size (float32) | {4 * n:,} bytes = {4 * n / 1e6:,.1f} MB |" in card
    assert any(f"that is {4 * n / 2**20:,.1f} MiB" in c.value for c in at.caption)
    prompt = "The meaning of life is"
    ids = enc.encode(prompt)
    assert any(c.value.startswith(f"{len(ids)} tokens for {len(prompt)} characters")
               for c in at.caption)

    knobs = dict(temperature=0.7, top_k=5, top_p=0.9)
    for key, value in knobs.items():
        at.slider(key=f"l1_{key}").set_value(value).run()
    with torch.no_grad():
        logits = hf(torch.tensor([ids])).logits[0, -1].double().tolist()
    raw, kept, final = brute_force_distribution(logits, **knobs)
    top = sorted(range(len(raw)), key=lambda i: -raw[i])[:15]
    shown = setup_table(at)
    assert [i for i, *_ in shown] == top
    for i, r, f, k in shown:
        assert r == pytest.approx(raw[i], rel=5e-3) and f == pytest.approx(final[i], rel=5e-3, abs=1e-9)
        assert k == (i in kept)
    assert any(c.value.startswith(f"{len(kept):,} of 50,257 tokens survive") for c in at.caption)

    at.toggle(key="l1_greedy").set_value(True).run()
    at.slider(key="l1_max_new").set_value(12).run()
    at.button(key="act_l1_generate").click().run()
    reference = hf.generate(torch.tensor([ids]), max_new_tokens=12, do_sample=False,
                            pad_token_id=0, eos_token_id=None)[0, len(ids):].tolist()
    assert any(m.value == f"**{prompt}**{enc.decode(reference)}".replace("\n", "  \n")
               for m in at.markdown)
    assert any(c.value.startswith("12 new tokens · greedy · seed 1337") for c in at.caption)
    for _ in range(3):
        at.button(key="act_l1_next").click().run()
    no_exception(at)
    assert at.session_state["l1_step_through"][1].picked == reference[:3]
    steps = [d.value for d in at.dataframe if "raw probability" in d.value.columns][-1]
    assert steps["id"].iloc[0] == reference[2] and list(steps["kept"]).count(True) == 1


def test_setup_inputs_at_their_extremes(tiny_gpt2_dir, monkeypatch):
    """One character, one token, the start token, a paste past the limit, every slider end."""
    from gptcore.tokenizers import gpt2_encoding

    monkeypatch.setenv("GPTCORE_MODEL_DIR", str(tiny_gpt2_dir))
    enc = gpt2_encoding()
    at = open_page("pages/1_setup.py")
    prompt = at.text_area(key="l1_prompt")
    prompt.input("a").run()
    no_exception(at)
    assert any(c.value.startswith("1 token for 1 character.") for c in at.caption)
    prompt.input("<|endoftext|>").run()  # GPT-2's special token, typed
    assert any(c.value.startswith("1 token for 13 characters") for c in at.caption)
    prompt.input("").run()
    no_exception(at)
    assert any("starts from token 50256 (`<|endoftext|>`)" in c.value for c in at.caption)
    pasted = "Hello there! " * 200  # 2,600 characters
    prompt.input(pasted).run()
    no_exception(at)
    assert any("2,600 characters; only its last 2,000" in w.value for w in at.warning)
    n_tokens = len(enc.encode(pasted[-2000:]))
    assert any(f"The prompt has {n_tokens:,} tokens; the model reads only the last 64" in w.value
               for w in at.warning)
    for key, value in [("l1_temperature", 0.05), ("l1_temperature", 2.0), ("l1_top_k", 0),
                       ("l1_top_k", 100), ("l1_top_p", 0.01), ("l1_top_p", 1.0),
                       ("l1_max_new", 1), ("l1_max_new", 200)]:
        at.slider(key=key).set_value(value).run()
        no_exception(at)
    at.button(key="act_l1_generate").click().run()  # 200 tokens past a full context
    at.button(key="act_l1_next").click().run()
    no_exception(at)
    assert any(c.value.startswith("200 new tokens") for c in at.caption)
    assert any("Step 1" in str(c.proto) for c in at.get("vega_lite_chart"))


def test_setup_empty_prompt_of_a_character_model_starts_from_a_newline():
    """A lesson-5 character model has no <|endoftext|>: it starts from "\\n", its token 0 here."""
    from streamlit.testing.v1 import AppTest

    from classroom.models import SRC_TRAINED
    from classroom.state import TrainedModel
    from gptcore.config import GPTConfig
    from gptcore.model import GPT
    from gptcore.tokenizers import CharTokenizer
    from tests.conftest import ROOT

    tok = CharTokenizer.from_text("to be, or not to be\nthat is the question\n")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=16, n_layer=1, n_head=2,
                          n_embd=16)).eval()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["trained_model"] = TrainedModel(model, tok, "run 1")  # as lesson 5 leaves it
    at.run()
    at.switch_page("pages/1_setup.py").run()
    assert at.radio(key="model_choice").value == SRC_TRAINED
    at.text_area(key="l1_prompt").input("").run()
    at.toggle(key="l1_greedy").set_value(True).run()
    at.slider(key="l1_max_new").set_value(20).run()
    at.button(key="act_l1_generate").click().run()
    no_exception(at)
    assert tok.stoi["\n"] == 0
    assert any("starts from token 0 (`↵`): this tokenizer has no start-of-text token" in c.value
               for c in at.caption)
    ids = [0]
    with torch.no_grad():
        for _ in range(20):  # greedy, by hand, over the model's 16-token context
            logits, _ = model(torch.tensor([ids[-16:]]))
            ids.append(int(logits[0, -1].argmax()))
    text = tok.decode(ids[1:])
    assert at.session_state["l1_output"]["text"] == text
    assert any(m.value == text.replace("\n", "  \n") for m in at.markdown) if text.strip() else \
        any("only spaces and line breaks" in c.value for c in at.caption)


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


def python_docs_page():
    """Lesson 2 on Python's documentation (always available, so the tests know the corpus)."""
    from classroom.corpora import python_docs

    at = open_page("pages/2_tokenization.py")
    at.sidebar.selectbox(key="corpus_name").set_value("Python docs").run()
    return at, python_docs().text


def metrics(at):
    return {m.label: m.value for m in at.metric}


def test_tokenization_table_equals_an_independent_recomputation():
    import re
    from collections import Counter

    from gptcore.tokenizers import gpt2_encoding

    at, corpus = python_docs_page()
    text = at.text_area(key="l2_text").value
    table = next(d.value for d in at.dataframe if "tokenizer" in d.value.columns).set_index("tokenizer")
    unknown = sum(c not in set(corpus) for c in text)
    assert table.loc["Characters"][["vocabulary", "tokens", "unknown"]].tolist() == [
        len(set(corpus)) + 1, len(text), unknown]
    assert table.loc["Characters", "round trip"] == ("lossy" if unknown else "exact")
    words = re.findall(r"\w+|[^\w\s]", text)
    known = {w for w, _ in Counter(re.findall(r"\w+|[^\w\s]", corpus)).most_common(4998)}
    assert table.loc["Words (regex)"][["vocabulary", "tokens", "unknown"]].tolist() == [
        len(known) + 2, len(words), sum(w not in known for w in words)]
    assert table.loc["Words (regex)", "chars/token"] == f"{len(text) / len(words):.2f}"
    assert any(f"the {len(known):,} most frequent words of Python docs + <pad>, <unk>" in m.value
               for m in at.markdown)  # the label says what the vocabulary holds
    gpt2 = gpt2_encoding().encode(text)
    assert table.loc["GPT-2 BPE (tiktoken)"][["vocabulary", "tokens", "chars/token", "round trip"]
                                             ].tolist() == [50257, len(gpt2), f"{len(text) / len(gpt2):.2f}", "exact"]


def test_tokenization_windows_of_issue_16_are_counted_and_labelled_right():
    """400 tokens, block 8, stride 1: 397 tokens read more than once, 2,737 repeat reads."""
    import math
    from collections import Counter

    at, _ = python_docs_page()
    at.text_area(key="l2_text").input("one two three " * 200).run()
    at.slider(key="l2_block").set_value(8).run()
    at.slider(key="l2_stride").set_value(1).run()
    at.slider(key="l2_batch").set_value(64).run()
    n, block, stride = 400, 8, 1
    starts = range(0, n - block, stride)  # every full window
    reads = Counter(p for s in starts for p in range(s, s + block))
    expected = {"tokens": n, "windows (samples)": len(starts),
                "never an input": n - len(reads),
                "read by 2+ windows": sum(c > 1 for c in reads.values()),
                "repeat reads / epoch": sum(c - 1 for c in reads.values())}
    assert expected["read by 2+ windows"] == 397 and expected["repeat reads / epoch"] == 2737
    shown = metrics(at)
    assert {k: int(shown[k].replace(",", "")) for k in expected} == expected
    batches = math.ceil(len(starts) / 64)
    assert any(f"that is {batches} batches of x and y of shape (64, 8), the last one "
               f"({len(starts) - 64 * (batches - 1)}, 8)" in c.value for c in at.caption)
    loops = next(d.value for d in at.dataframe if "loop" in d.value.columns)
    assert loops["windows"].tolist() == [len(starts), len(starts) - 1, len(starts) + 1]
    assert loops["tokens never used"].tolist() == [0, 1, 0]  # one less: the last token is lost
    assert loops["targets too short"].tolist() == [0, 0, 1]


def test_tokenization_padding_and_split_equal_an_independent_recomputation():
    import random

    from gptcore.tokenizers import gpt2_encoding

    at, corpus = python_docs_page()
    enc = gpt2_encoding()
    lines = at.text_area(key="l2_pad_text").value.splitlines()
    pairs = [(ids[:-1], ids[1:]) for ids in map(enc.encode, lines)]
    T = max(len(x) for x, _ in pairs)
    inputs, labels, mask = (d.value.values.tolist() for d in at.dataframe
                            if list(d.value.columns) == list(range(T)))
    assert inputs == [x + [50256] * (T - len(x)) for x, _ in pairs]
    assert labels == [y + [-100] * (T - len(y)) for _, y in pairs]
    assert mask == [[1] * len(x) + [0] * (T - len(x)) for x, _ in pairs]
    bangs = sum(x.count(0) for x, _ in pairs)  # "!" is id 0 in GPT-2's vocabulary
    assert bangs > 0 and any(c.value == f"{sum(T - len(x) for x, _ in pairs) + bangs} positions "
                             f"masked, {bangs} of them real tokens (red)." for c in at.caption)

    at.slider(key="l2_val").set_value(0.2).run()
    n_val = round(200_000 * 0.2)
    assert any(f"The first **{200_000 - n_val:,}** character tokens" in m.value
               and f"the last **{n_val:,}** validate" in m.value for m in at.markdown)
    block, stride = at.slider(key="l2_block").value, at.slider(key="l2_stride").value
    starts = list(range(0, 5000 - block, stride))
    random.Random(1337).shuffle(starts)
    val, train = starts[:int(len(starts) * 0.2)], starts[int(len(starts) * 0.2):]
    seen = {p for s in train for p in range(s, s + block + 1)}
    leaked = sum(all(p in seen for p in range(s, s + block + 1)) for s in val)
    clean_val = len(range(0, round(5000 * 0.2) - block, stride))  # windows inside the last fifth
    assert [m.value for m in at.metric if m.label.startswith("validation windows")] == [
        f"{leaked:,} of {len(val):,}", f"0 of {clean_val:,}"]
    assert leaked > len(val) / 2


def test_tokenization_inputs_at_their_extremes():
    """A one-character corpus, one character, one token, the slider ends: no exception."""
    at = open_page("pages/2_tokenization.py")
    at.slider(key="l2_vocab").set_value(256).run()
    no_exception(at)
    assert any("holds the bytes and nothing more" in i.value for i in at.info)
    at.slider(key="l2_vocab").set_value(2048).run()
    at.sidebar.selectbox(key="corpus_name").set_value("Your own text (.txt)").run()
    at.sidebar.file_uploader(key="act_corpus_upload").upload("one.txt", b"a", "text/plain").run()
    no_exception(at)
    assert any("one.txt has no two bytes side by side" in i.value for i in at.info)
    for text in ["a", "the", ""]:
        at.text_area(key="l2_text").input(text).run()
        no_exception(at)
    for key, value in [("l2_block", 32), ("l2_stride", 32), ("l2_batch", 64), ("l2_block", 2),
                       ("l2_stride", 1), ("l2_batch", 1), ("l2_val", 0.05), ("l2_val", 0.5)]:
        at.slider(key=key).set_value(value).run()
        no_exception(at)
    at.selectbox(key="l2_win_tok").set_value("Characters").run()
    at.text_area(key="l2_text").input("x" * 50).run()  # 50 tokens: 48 windows of 2
    at.radio(key="l2_grid_at").set_value("the end of the stream").run()
    no_exception(at)
    assert metrics(at)["windows (samples)"] == "48"
    for lines, padded in [("", False), ("a", False), ("x\ny", False), ("!" * 40, True)]:
        at.text_area(key="l2_pad_text").input(lines).run()
        no_exception(at)
        assert any("Padding needs at least one line" in i.value for i in at.info) != padded


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
                           (at.slider(key="l3_npad"), 4),
                           (at.radio(key="l3_pad_side"), "start (left)"),
                           (at.select_slider(key="l3_heads"), 1),
                           (at.select_slider(key="l3_heads"), 24)]:
        assert changes(at, control, value), control.key
    at.text_input(key="l3_real_text").input("a").run()  # a one-token input
    no_exception(at)


def l3_metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def test_attention_causal_experiment_shows_the_cheat():
    from classroom.corpora import load_corpus
    from gptcore.attention_lab import mask_experiment

    at = open_page("pages/3_attention.py")
    at.button(key="act_l3_train_causal").click().run()
    no_exception(at)
    shown = l3_metrics(at)
    corpus, _ = load_corpus(at.sidebar.selectbox(key="corpus_name").value)
    for run in mask_experiment(corpus.text, seed=1337):  # the page's numbers, recomputed
        name = {"causal": "causal mask", "none": "no mask", "reversed": "reversed mask"}[run.mask]
        assert shown[f"validation loss · {name}"] == f"{run.val_loss:.3f}"
        assert shown[f"generation loss · {name}"] == f"{run.generation_loss:.3f}"
        # st.code drops a leading line break: compare the text itself
        assert any(c.value.strip() == run.sample.strip() for c in at.code)
    val = {k.split(" · ")[1]: float(v) for k, v in shown.items() if k.startswith("validation")}
    gen = {k.split(" · ")[1]: float(v) for k, v in shown.items() if k.startswith("generation")}
    for cheat in ("no mask", "reversed mask"):
        assert val[cheat] < val["causal mask"] - 0.5  # it reads the answer...
        assert gen[cheat] > gen["causal mask"]  # ...which is not there when generating


# ------------------------------------------------ lesson 3: every number against a recomputation


def l3_softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    e = [math.exp(s - top) for s in scores]
    return [v / sum(e) for v in e]


L3_TOY = {"Your": [0.43, 0.15, 0.89], "journey": [0.55, 0.87, 0.66],
          "starts": [0.57, 0.85, 0.64], "with": [0.22, 0.58, 0.33], "one": [0.77, 0.25, 0.10],
          "step": [0.05, 0.80, 0.55]}


def test_attention_toy_numbers_equal_hand_math():
    at = open_page("pages/3_attention.py")
    at.selectbox(key="l3_query").set_value("step").run()
    at.toggle(key="l3_toy_scale").set_value(True).run()
    no_exception(at)
    q = L3_TOY["step"]
    scores = [sum(a * b for a, b in zip(q, key)) for key in L3_TOY.values()]
    weights = l3_softmax([s / math.sqrt(3) for s in scores])
    context = [sum(w * vec[i] for w, vec in zip(weights, L3_TOY.values())) for i in range(3)]
    table = at.dataframe[1].value
    assert list(table["word"]) == list(L3_TOY)
    assert list(table["score"]) == pytest.approx(scores, abs=1e-12)
    assert list(table["weight"]) == pytest.approx(weights, abs=1e-12)
    text = next(m.value for m in at.markdown if "context vector" in m.value)
    assert "softmax(scores / √3)" in text
    assert text.endswith("**[" + ", ".join(f"{v:.4f}" for v in context) + "]**")


def l3_saturation_by_hand(d_k, scale, seed=1337, n_keys=8, n=64):
    g = torch.Generator().manual_seed(seed)  # gptcore documents the draw: q, then k
    q, k = torch.randn(n, n_keys, d_k, generator=g), torch.randn(n, n_keys, d_k, generator=g)
    top, entropy, scores = [], [], []
    for s in range(n):
        for i in range(n_keys):
            row = [float(q[s, i] @ k[s, j]) / (math.sqrt(d_k) if scale else 1.0)
                   for j in range(n_keys)]
            w = l3_softmax(row)
            top.append(max(w))
            entropy.append(-sum(p * math.log(p) for p in w if p > 0))
            scores += row
    return torch.tensor(scores).std().item(), sum(top) / len(top), sum(entropy) / len(entropy)


def test_attention_saturation_metrics_equal_a_recount():
    at = open_page("pages/3_attention.py")
    for d_k, scale in [(2, False), (512, False), (512, True)]:
        at.select_slider(key="l3_dk").set_value(d_k).run()
        at.toggle(key="l3_scale").set_value(scale).run()
        no_exception(at)
        std, top, entropy = l3_saturation_by_hand(d_k, scale)
        shown = l3_metrics(at)
        assert shown["spread of the scores (std)"] == f"{std:.2f}"
        assert shown["largest weight (mean)"] == f"{top:.3f}"
        assert shown["entropy (mean)"] == f"{entropy:.3f}"
        curves = chart_data(at, "Random q, k with unit-variance entries, 8 keys")  # kept once
        at_dk = curves[curves.d_k == d_k].set_index("measure")["value"]  # per seed
        kind = "scaled" if scale else "unscaled"
        assert at_dk[f"largest weight ({kind})"] == pytest.approx(top, abs=1e-6)
        assert at_dk[f"entropy ({kind})"] == pytest.approx(entropy, abs=1e-6)
    assert len(curves) == 9 * 2 * 2  # d_k, scaled or not, two measures


L3_PADDING_CASES = [("start (left)", True, False, 3), ("end (right)", False, False, 4),
                    ("end (right)", True, False, 2), ("start (left)", True, True, 4),
                    ("end (right)", True, True, 0)]


def test_attention_padding_metrics_equal_a_recount():
    at = open_page("pages/3_attention.py")
    for case in L3_PADDING_CASES:
        l3_check_padding(at, *case)


def l3_check_padding(at, side, causal, padding, n_pad):
    from gptcore.attention_lab import toy_qkv

    at.radio(key="l3_pad_side").set_value(side).run()
    at.toggle(key="l3_causal").set_value(causal).run()
    at.toggle(key="l3_pad").set_value(padding).run()
    at.slider(key="l3_npad").set_value(n_pad).run()
    no_exception(at)
    words, left = list(L3_TOY), side.startswith("start")
    real = [False] * n_pad + [True] * 6 if left else [True] * 6 + [False] * n_pad
    tokens = ["<pad>"] * n_pad + words if left else words + ["<pad>"] * n_pad
    q, k, _ = toy_qkv(real, seed=1337)  # the documented toy vectors; the rest by hand
    T = len(real)

    def weights(use_padding):
        rows = []
        for i in range(T):
            seen = [j for j in range(T) if (j <= i or not causal) and (real[j] or not use_padding)]
            w = l3_softmax([float(q[i] @ k[j]) / math.sqrt(8) for j in seen]) if seen else []
            rows.append({j: p for j, p in zip(seen, w)})
        return rows

    mine = weights(padding)
    on_pads = [sum(p for j, p in mine[i].items() if not real[j]) for i in range(T) if real[i]]
    changed = [i for i, (a, b) in enumerate(zip(weights(True), weights(False))) if a != b]
    shown = l3_metrics(at)
    assert shown["real tokens that see a pad"] == f"{sum(p > 0 for p in on_pads)} of 6"
    assert shown["most weight a real token gives to pads"] == f"{max(on_pads):.3f}"
    rows = ", ".join(f"{i} ({tokens[i]})" for i in changed) or "none"
    assert any(c.value == f"Rows the padding mask changes: {rows}." for c in at.caption)
    leaks = not padding and n_pad and (left or not causal)
    warned = any("real tokens give weight" in w.value for w in at.warning)
    assert warned == bool(leaks)
    assert (float(shown["change in the real tokens' outputs"]) > 0) == bool(leaks)


def test_attention_shape_walk_shows_real_shapes_at_the_extremes():
    at = open_page("pages/3_attention.py")
    for heads in (1, 24):
        at.select_slider(key="l3_heads").set_value(heads).run()
        no_exception(at)
        walk = next(m.value for m in at.markdown if "(B, nh, T, hs)" in m.value)
        hs = 24 // heads
        for shape in [(1, 6, 24), (1, 6, 72), (1, heads, 6, hs), (1, heads, 6, 6)]:
            assert f"= {shape}**" in walk
        titles = [c for c in at.get("vega_lite_chart") if '"head ' in str(c.proto)]
        assert len(titles) == heads
        assert any(f"head {heads - 1}: {24 - hs}–23" in c.value for c in at.caption)


def test_attention_reversed_mask_is_drawn_beside_the_causal_one():
    at = open_page("pages/3_attention.py")
    captions = [c.value for c in at.caption if "later tokens" in c.value]
    assert captions[0] == "Weight on later tokens (mean over rows): 0.00."
    assert captions[1].startswith(f"Weight on later tokens (mean over rows): {5 / 6:.2f}.")
    assert "'step' has nothing to attend to" in captions[1]
    assert any("triu" in i.value and "backwards" in i.value for i in at.info)


def test_attention_real_maps_cut_at_a_small_models_context():
    from classroom.state import TrainedModel
    from gptcore.model import GPT, GPTConfig
    from gptcore.tokenizers import CharTokenizer

    text = "The cat sat on the mat because it was tired."  # the default: 44 characters
    tok = CharTokenizer.from_text("abcdefghijklmnopqrstuvwxyzT .")
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=2, n_head=2,
                          n_embd=64)).eval()
    at = open_page("pages/3_attention.py")
    at.session_state["trained_model"] = TrainedModel(model, tok, "tiny")
    at.run()
    at.radio(key="model_choice").set_value("Your trained model (lesson 5)").run()
    no_exception(at)
    assert not at.error
    assert any(c.value.startswith("32 of the text's 44 tokens (at most 32 shown): the smaller "
                                  "of the model's context, 32, and 48") for c in at.caption)
    assert len(text) == 44
    for typed, needle in [("", "The text is empty: the map shows one newline token"),
                          ("a", "1 of the text's 1 token (at most 32 shown)")]:
        at.text_input(key="l3_real_text").input(typed).run()
        no_exception(at)
        assert not at.error and any(needle in c.value for c in at.caption), typed


def test_attention_real_maps_are_computed_once_per_model_and_text(monkeypatch):
    """Lesson 3's real model runs once for a text, not on every rerun; the map drawn after a
    rerun by another widget, and after the text changes, is the model's own."""
    from classroom.models import random_model
    from gptcore import attention_lab as lab
    from gptcore.tokenizers import TiktokenTokenizer

    book, texts = lab.real_attention_maps, []
    monkeypatch.setattr(lab, "real_attention_maps",
                        lambda model, tok, text, **kw: texts.append(text) or book(model, tok, text, **kw))
    at = open_page("pages/3_attention.py")
    default = "The cat sat on the mat because it was tired."
    at.select_slider(key="l3_heads").set_value(2).run()
    at.slider(key="l3_layer").set_value(3).run()
    assert texts == [default]
    at.text_input(key="l3_real_text").input("Attention is all you need").run()
    at.slider(key="l3_head").set_value(5).run()
    no_exception(at)
    assert texts == [default, "Attention is all you need"]
    drawn = chart_data(at, "random DistilGPT2-shaped (untrained): layer 3, head 5")
    tok = TiktokenTokenizer()
    fresh = book(random_model(), tok, "Attention is all you need").head(3, 5)
    assert drawn.sort_values(["y_order", "x_order"]).weight.tolist() == pytest.approx(
        [w for row in fresh for w in row], abs=1e-6)
    assert len(fresh) == len(tok.encode("Attention is all you need")) == 6


def test_attention_extremes_render_without_error():
    at = open_page("pages/3_attention.py")
    for key, kind, value in [("l3_dk", "select_slider", 2), ("l3_scale", "toggle", False),
                             ("l3_dk", "select_slider", 512), ("l3_npad", "slider", 0),
                             ("l3_pad_side", "radio", "start (left)"), ("l3_npad", "slider", 4),
                             ("l3_causal", "toggle", False), ("l3_heads", "select_slider", 24),
                             ("l3_real_text", "text_input", "x" * 400)]:
        widget = getattr(at, kind)(key=key)
        (widget.input(value) if kind == "text_input" else widget.set_value(value)).run()
        no_exception(at)
        assert not at.error, key


# ----------------------------------------------------------------------------- lesson 4

L4_FIELDS = ["n_layer", "n_head", "n_embd", "block_size", "vocab_size", "dropout", "tie_weights",
             "pre_ln", "activation", "bias"]


def l4_metric(at, label):
    return next(m.value for m in at.metric if m.label == label)


def l4_table(at, first_column):
    return next(d.value for d in at.dataframe if d.value.columns[0] == first_column)


def chart_data(at, title):
    """The data behind the chart titled `title`, as a DataFrame."""
    import json

    import pyarrow as pa

    chart = next(c for c in at.get("vega_lite_chart") if json.loads(c.proto.spec).get("title") == title)
    return pa.ipc.open_stream(chart.proto.datasets[0].data.data).read_pandas()


def l4_budget_by_hand(config, batch):
    """Parameters, forward FLOPs per token and peak training memory of `config`: counted on a
    real (meta-device) GPT, with the formulas written out again here."""
    from gptcore.model import GPT

    with torch.device("meta"):
        model = GPT(config)
    n = model.num_params()
    blocks = sum(p.numel() for name, p in model.named_parameters()
                 if not name.startswith(("transformer.wte", "transformer.wpe", "lm_head")))
    B, T, C, L, V = batch, config.block_size, config.n_embd, config.n_layer, config.vocab_size
    flops = 2 * (blocks + V * C) + 2 * L * T * C
    per_token = L * (13 if config.activation == "relu" else 17) * C + 2 * C + 4 * V
    if config.dropout > 0:  # the stored attention weights and the dropout masks
        per_token += L * (3 * config.n_head * T + C) + C
    activations = 4 * B * T * per_token
    return n, flops, 12 * n + max(activations, 8 * n)


def l4_breakdown_by_hand(config):
    """Parameters by component, read off a real (meta-device) GPT's named parameters."""
    from gptcore.model import GPT

    with torch.device("meta"):
        model = GPT(config)
    where = {"transformer.wte": "token embedding (wte)", "transformer.wpe": "position embedding (wpe)",
             ".attn.": "attention", ".mlp.": "MLP", "ln_": "LayerNorm", "lm_head": "LM head"}
    counts = dict.fromkeys(where.values(), 0)
    for name, p in model.named_parameters():
        counts[next(part for key, part in where.items() if key in name)] += p.numel()
    return counts


def l4_config(at):
    from gptcore.model import GPTConfig

    return GPTConfig(**{f: at.session_state[f"l4_{f}"] for f in L4_FIELDS})


def test_gpt_builder_presets_and_limits():
    from gptcore.model import GPT

    at = open_page("pages/4_gpt.py")
    no_exception(at)
    counts = set()
    for preset in ["Tutorial GPT", "nanoGPT baby GPT (CPU)", "DistilGPT2", "GPT-2 small"]:
        at.selectbox(key="l4_preset").set_value(preset).run()
        no_exception(at)
        counts.add(l4_metric(at, "parameters"))
    assert {"30,503,424", "81,912,576", "124,439,808"} <= counts
    for key, value in [("l4_trace_t", 3), ("l4_mem_batch", 3), ("l4_res_depth", 4),
                       ("l4_drop_p", 0.2), ("l4_ln_depth", 4)]:
        assert changes(at, at.slider(key=key), value), key
    # invalid width/heads combinations: a message with the nearest width that works
    for heads, width in [(5, 256), (32, 8), (3, 1600), (7, 100 * 8)]:
        at.slider(key="l4_n_embd").set_value(width).run()
        at.slider(key="l4_n_head").set_value(heads).run()
        no_exception(at)
        nearest = min((w for w in range(8, 1601, 8) if w % heads == 0), key=lambda w: abs(w - width))
        assert width % heads and any("divisible" in e.value and
                                     f"works with {heads} heads is {nearest}." in e.value
                                     for e in at.error), (heads, width)
    # the extremes of every control, and lesson 5 gets exactly the model built here
    for n_layer, heads, width, context, vocab in [(48, 1, 8, 2048, 100_000), (1, 1, 8, 8, 2),
                                                  (48, 32, 1600, 2048, 100_000)]:
        at.slider(key="l4_n_head").set_value(heads).run()
        at.slider(key="l4_n_embd").set_value(width).run()
        at.slider(key="l4_n_layer").set_value(n_layer).run()
        at.number_input(key="l4_block_size").set_value(context).run()
        at.number_input(key="l4_vocab_size").set_value(vocab).run()
        no_exception(at)
        assert not at.error
        config = l4_config(at)
        assert at.session_state["built_config"] == config
        with torch.device("meta"):
            assert l4_metric(at, "parameters") == f"{GPT(config).num_params():,}"


def test_gpt_builder_figures_equal_an_independent_recomputation():
    at = open_page("pages/4_gpt.py")
    seen = []
    for step in ["Tutorial GPT", "DistilGPT2", "relu, dropout and a batch of 3"]:
        if step.startswith("relu"):
            at.selectbox(key="l4_activation").set_value("relu").run()
            at.slider(key="l4_dropout").set_value(0.2).run()
            at.slider(key="l4_mem_batch").set_value(3).run()
        else:
            at.selectbox(key="l4_preset").set_value(step).run()
        no_exception(at)
        config, batch = l4_config(at), at.session_state["l4_mem_batch"]
        assert at.session_state["built_config"] == config
        n, flops, peak = l4_budget_by_hand(config, batch)
        C, L, V = config.n_embd, config.n_layer, config.vocab_size
        assert l4_metric(at, "parameters") == f"{n:,}"
        assert l4_metric(at, "weights (fp32)") == f"{4 * n / 1e6:,.1f} MB"
        assert l4_metric(at, "training memory (peak)") == f"{peak / 1e6:,.1f} MB"
        assert l4_metric(at, "forward FLOPs per token") == f"{flops / 1e6:,.1f} M"
        breakdown = l4_table(at, "component").set_index("component")
        assert breakdown.parameters.to_dict() == l4_breakdown_by_hand(config)
        assert breakdown.share.tolist() == [f"{p / n:.1%}" for p in breakdown.parameters]
        memory = dict(l4_table(at, "part").values.tolist())
        assert memory["peak"] == f"{peak / 1e6:,.1f} MB"
        assert memory["weights"] == memory["gradients"] == f"{4 * n / 1e6:,.1f} MB"
        assert memory["AdamW state (m and v)"] == f"{8 * n / 1e6:,.1f} MB"
        assert any(f"**{V * C:,}**" in m.value for m in at.markdown)  # what tying saves
        # the embeddings' shapes and the trace, against a real model's tensors and structure
        B, T = at.session_state["l4_trace_b"], at.session_state["l4_trace_t"]
        shapes = dict(l4_table(at, "tensor").values.tolist())
        assert shapes["wte.weight: one row per token id"] == str((V, C))
        assert shapes["wpe.weight: one row per position"] == str((config.block_size, C))
        assert shapes["x = wte(idx) + wpe(pos)"] == str((B, T, C))
        trace = l4_table(at, "#")
        calls = 6 + 15 * L  # GPT, wte, wpe, drop, ln_f, lm_head; 11 modules + 4 steps per block
        assert len(trace) == calls and any(f"{calls} calls" in c.value for c in at.caption)
        assert trace.output.iloc[0] == str((B, T, V))
        assert (trace.output[trace.call.str.endswith("weights = softmax(q·kᵀ/√hs)")]
                == str((B, config.n_head, T, T))).sum() == L
        seen.append((l4_metric(at, "forward FLOPs per token"), l4_metric(at, "weights (fp32)")))
    assert seen[0] == ("35.6 M", "122.0 MB")  # issue #16: not 61.3 M
    assert seen[1][1] == "327.7 MB"  # DistilGPT2: 81,912,576 × 4 bytes, not "312.5 MB"


def test_gpt_parts_figures_equal_an_independent_recomputation():
    import math

    import torch.nn.functional as F

    from gptcore.model import GPT, GPTConfig
    from gptcore.parts import PLACEMENTS
    from tests.test_model import feed_forward_by_hand, ln_f_changes, residual_rms_by_hand, top_block_norms

    at = open_page("pages/4_gpt.py")
    no_exception(at)
    seed = at.session_state["seed"]
    # embeddings: the example's rows are wte[id], wpe[position] and their sum
    torch.manual_seed(seed)
    tiny = GPT(GPTConfig(vocab_size=10, block_size=4, n_layer=1, n_head=1, n_embd=4))
    example = l4_table(at, "position")
    ids = example["token id"].tolist()
    x = (tiny.transformer.wte.weight[ids] + tiny.transformer.wpe.weight).tolist()
    assert example["x = sum"].tolist() == [", ".join(f"{v:+.4f}" for v in row) for row in x]
    # LayerNorm: the same five vectors through F.layer_norm
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(5, 16, generator=g) * torch.tensor([[0.5], [2.0], [5.0], [1.0], [10.0]]) \
        + torch.tensor([[3.0], [-1.0], [0.0], [8.0], [-4.0]])
    ln = l4_table(at, "token")
    assert ln["variance before"].tolist() == pytest.approx(h.var(1, unbiased=False).tolist(), rel=1e-5)
    assert ln["variance after"].tolist() == pytest.approx(
        F.layer_norm(h, (16,)).var(1, unbiased=False).tolist(), rel=1e-5)
    # GELU: the curves against PyTorch, the largest difference by brute force in plain Python
    curves = chart_data(at, "The non-linearity")
    for name, f in [("GELU, tanh (GPT-2)", lambda v: F.gelu(v, approximate="tanh")),
                    ("GELU, exact (erf)", F.gelu), ("ReLU", F.relu)]:
        part = curves[curves.function == name]
        xs = torch.tensor(part.x.tolist(), dtype=torch.float64)
        assert part.y.tolist() == pytest.approx(f(xs).tolist(), abs=1e-12)
    grid = [-4 + 8 * i / 100_000 for i in range(100_001)]
    diffs = [abs(0.5 * v * math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3))
                 - 0.5 * v * math.erf(v / math.sqrt(2))) for v in grid]
    best = max(range(len(grid)), key=diffs.__getitem__)
    assert any(f"at most {diffs[best]:.1e} (at x = ±{abs(grid[best]):.2f})" in c.value for c in at.caption)
    # the feed-forward table, by explicit matmuls
    expected = feed_forward_by_hand(seed)
    for row in l4_table(at, "activation").to_dict("records"):
        e = expected[row["activation"]]
        assert (row["exactly 0"], row["negative"]) == (e["exactly 0"], e["negative"])
        assert row["output norm"] == pytest.approx(e["output norm"], rel=1e-5)
    # where LayerNorm goes: the top block's gradients by autograd, ln_f's change by a loop
    pre, post = PLACEMENTS[True], PLACEMENTS[False]
    depth = at.session_state["l4_ln_depth"]
    norms, change = top_block_norms(depth, seed), ln_f_changes(depth, seed)
    assert any(f"**{norms[post]:.1f}** with post-LN and **{norms[pre]:.1f}** with pre-LN" in m.value
               for m in at.markdown)
    assert any(f"by up to {change[pre]:.2f}" in m.value and f"at most {change[post]:.0e}" in m.value
               for m in at.markdown)
    grads = chart_data(at, "Gradient of each block's weights at initialisation")
    top = grads[grads.layer == depth - 1].set_index("placement")["gradient norm"]
    assert top.to_dict() == pytest.approx(norms, rel=1e-4)
    # residuals: the RMS after every block, by a loop over the blocks
    rms = chart_data(at, "Signal size through a freshly initialised GPT")
    depth = at.session_state["l4_res_depth"]
    for residual, label in [(True, "with residuals"), (False, "without residuals")]:
        assert rms[rms.blocks == label]["RMS of the residual stream"].tolist() == pytest.approx(
            residual_rms_by_hand(depth, residual, seed), rel=1e-5)
    # dropout: PyTorch's, seeded the same way
    p = at.session_state["l4_drop_p"]
    torch.manual_seed(seed)
    dropped = l4_table(at, 0)
    assert dropped.loc["train mode"].tolist() == F.dropout(torch.ones(12), p).tolist()
    assert dropped.loc["eval mode"].tolist() == [1.0] * 12
    assert any(f"1/(1−p) = {1 / (1 - p):.2f}" in c.value for c in at.caption)


def test_gpt_weight_port_report(tiny_gpt2_dir, monkeypatch):
    from gptcore.tokenizers import gpt2_encoding

    monkeypatch.setenv("GPTCORE_MODEL_DIR", str(tiny_gpt2_dir))
    at = open_page("pages/4_gpt.py")
    at.button(key="act_l4_port").click().run()
    no_exception(at)
    positions = len(gpt2_encoding().encode("The quick brown fox jumps over the lazy dog."))
    assert len(at.success) == 1 and not at.warning
    assert f"the same at every one of the {positions} positions" in at.success[0].value
    report = l4_table(at, "stage")
    assert report.stage.tolist() == ["embeddings", "after block 0",
                                     "after block 1 and the final LayerNorm (ln_f)", "logits (the head)"]
    assert (report["max |Δ|"] < 1e-4).all()
    # a port whose next token differs somewhere: a warning naming the positions, no success
    label, good = at.session_state["l4_port_report"]
    at.session_state["l4_port_report"] = (label, {**good, "same_argmax": False,
                                                  "argmax_differs_at": [2, 5]})
    at.run()
    no_exception(at)
    assert not at.success
    assert any("differs at 2 of" in w.value and "(positions 2, 5)" in w.value for w in at.warning)


def test_gpt_weight_port_offline_with_a_gptcore_model():
    """Offline, the models at hand are gptcore GPTs (random, shipped, the learner's): the port
    writes them into transformers' GPT-2 first, and the report proves the two agree."""
    from classroom.models import SRC_SHIPPED

    at = open_page("pages/4_gpt.py")
    at.radio(key="model_choice").set_value(SRC_SHIPPED).run()
    assert any("written into `transformers`' GPT2LMHeadModel" in c.value for c in at.caption)
    at.button(key="act_l4_port").click().run()
    no_exception(at)
    positions = len("The quick brown fox jumps over the lazy dog.")  # characters: a char model
    assert len(at.success) == 1 and not at.warning
    assert f"the same at every one of the {positions} positions" in at.success[0].value
    assert (l4_table(at, "stage")["max |Δ|"] < 1e-4).all()


# ----------------------------------------------------------------------------- lesson 5

L5_TEXT = ("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
           "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of "
           "troubles\n") * 120  # ~22,000 characters: runs of a few seconds
TINY_CHOICE = "Tiny (2 layers × 2 heads × 64, context 32)"


def lab_page(text: str = L5_TEXT):
    """Lesson 5 on a small uploaded corpus (set in the session, as the sidebar's upload does)."""
    from streamlit.testing.v1 import AppTest

    from classroom.corpora import Corpus
    from classroom.shared import UPLOAD_LABEL
    from tests.conftest import ROOT

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)
    at.session_state["corpus_name"] = UPLOAD_LABEL
    at.session_state["uploaded_corpus"] = Corpus("test text", text, "tests")
    at.run()
    at.switch_page("pages/5_training.py").run()
    no_exception(at)
    return at


def wait_for_run(at, seconds=120):
    import time

    deadline = time.time() + seconds
    run = at.session_state["training_runs"][-1]
    while run.active and time.time() < deadline:
        time.sleep(0.5)
    at.run()
    return run


def wait_for_steps(run, n=3, seconds=60):
    import time

    deadline = time.time() + seconds
    while len(run.snapshot()["steps"]) < n and time.time() < deadline:
        time.sleep(0.1)
    assert run.snapshot()["status"] == "training", run.snapshot()["message"]


def small_lab(at, steps=40):
    at.selectbox(key="l5_model").set_value(TINY_CHOICE).run()
    at.slider(key="l5_steps").set_value(steps).run()
    at.slider(key="l5_eval").set_value(20).run()
    at.slider(key="l5_batch").set_value(8).run()


def runs_table(at):
    """Lesson 5's table of runs (in the live view, section 3)."""
    return next(t.value for t in at.table if "tokens/s" in t.value.columns)


def l5_texts(at) -> list[str]:
    kinds = ("markdown", "caption", "error", "warning", "info", "success", "latex")
    return [e.value for kind in kinds for e in at.get(kind)]


def no_doubled_period(at) -> None:
    import re

    for text in l5_texts(at):
        assert not re.search(r"(?<!\.)\.\.(?!\.)", text), text


def l5_metric(at, label) -> str:
    return next(m.value for m in at.metric if m.label == label)


def l5_config(at):
    """The GPTConfig lesson 5's controls describe, rebuilt from the session."""
    from gptcore.model import GPTConfig

    return GPTConfig(vocab_size=len(set(L5_TEXT)) + 1, dropout=at.session_state["l5_dropout"],
                     **at.session_state["l5_flags"],
                     **{f: at.session_state[f"l5_{f}"] for f in ("n_layer", "n_head", "n_embd",
                                                                 "block_size")})


def meta_params(config) -> int:
    from gptcore.model import GPT

    with torch.device("meta"):
        return GPT(config).num_params()


def test_training_lab_trains_compares_and_round_trips_a_checkpoint():
    at = lab_page()
    small_lab(at)
    at.button(key="act_l5_train").click().run()
    run = wait_for_run(at)
    no_exception(at)
    assert run.snapshot()["status"] == "done"
    import re

    # the validation split here is under 8,192 tokens: the budget scored exactly what step 0 did
    shown = re.search(r"scores \*\*([\d.]+)\*\* on the first", " ".join(m.value for m in at.markdown))
    assert float(shown.group(1)) == pytest.approx(run.snapshot()["evals"][0]["val_loss"], abs=6e-4)
    last = run.snapshot()["evals"][-1]
    assert l5_metric(at, "validation loss") == f"{last['val_loss']:.4f}"
    assert l5_metric(at, "perplexity") == f"{math.exp(last['val_loss']):,.2f}"
    assert l5_metric(at, "train loss") == f"{last['train_loss']:.4f}" and l5_metric(at, "steps") == "40"
    mixups = next(t.value for t in at.table if "e^loss" in t.value.columns)
    for log, base in (("ln", math.e), ("log2", 2.0), ("log10", 10.0)):
        row = mixups.loc[f"loss with {log} = {last['val_loss'] / math.log(base):.4f}"]
        assert row[{"ln": "e^loss", "log2": "2^loss", "log10": "10^loss"}[log]] == \
            f"{math.exp(last['val_loss']):,.2f}"  # a matching pair: the true perplexity
    assert mixups.loc[f"loss with log10 = {last['val_loss'] / math.log(10):.4f}", "e^loss"] == \
        f"{math.exp(last['val_loss'] / math.log(10)):,.2f} (true^{1 / math.log(10):.3f})"
    samples = next(d.value for d in at.dataframe if "sample" in d.value.columns)
    assert list(samples["step"]) == [0, 20, 40]  # a sample at each evaluation
    assert at.session_state["trained_model"].label == "run 1"
    assert "run 1 is now **your model**" in " ".join(c.value for c in at.caption)
    table = runs_table(at)
    assert table.loc["run 1", "val loss"] == f"{last['val_loss']:.4f}"
    assert table.loc["run 1", "steps"] == "40" and table.loc["run 1", "status"] == "done"
    raw = run.checkpoint_bytes()
    at.file_uploader(key="act_l5_upload").upload("mine.pt", raw).run()
    no_exception(at)
    assert any("Loaded mine.pt" in s.value for s in at.success)
    table = runs_table(at)
    assert list(table.index) == ["run 1", "upload: mine.pt"]
    assert table["val loss"].iloc[0] == table["val loss"].iloc[1]
    no_doubled_period(at)


@pytest.mark.parametrize("content,message", [
    (b"\x89PNG\r\n not a checkpoint", "not a PyTorch checkpoint archive"),
    (None, "not a gptcore checkpoint"),
])
def test_training_lab_rejects_bad_checkpoints(content, message):
    if content is None:
        buffer = io.BytesIO()
        torch.save({"state_dict": make_tiny_gpt2().state_dict()}, buffer)
        content = buffer.getvalue()
    at = lab_page()
    at.file_uploader(key="act_l5_upload").upload("bad.pt", content).run()
    no_exception(at)
    assert any(message in e.value for e in at.error)


def test_training_lab_diverging_learning_rate_and_caps():
    from classroom.lab import Caps
    from gptcore.model import GPTConfig
    from tests.test_lab import brute_force_nearest

    at = lab_page()
    small_lab(at, steps=100)
    at.select_slider(key="l5_lr").set_value(100.0).run()
    at.slider(key="l5_clip").set_value(0.0).run()
    at.button(key="act_l5_train").click().run()
    run = wait_for_run(at)
    assert run.snapshot()["status"] == "diverged"
    assert any("diverged" in e.value for e in at.error)
    no_doubled_period(at)
    baby = next(o for o in at.selectbox(key="l5_model").options if o.startswith("nanoGPT baby GPT"))
    at.selectbox(key="l5_model").set_value(baby).run()
    at.radio(key="l5_tok").set_value("gpt2").run()  # 50,257 × 128 embeddings: over the cap
    wanted = GPTConfig(vocab_size=50257, n_layer=4, n_head=4, n_embd=128, block_size=64,
                       bias=False, activation=at.session_state["l5_flags"]["activation"])
    assert any(f"This model has {meta_params(wanted):,} parameters; the limit here is 3,000,000."
               == e.value for e in at.error)
    assert at.button(key="act_l5_train").disabled
    fit = brute_force_nearest(wanted, Caps())
    offer = at.button(key="act_l5_fit")
    assert offer.label == (f"Use the nearest model within the caps: {fit.n_layer} layers × "
                           f"{fit.n_head} heads × {fit.n_embd}, context {fit.block_size} "
                           f"({meta_params(fit):,} parameters)")
    offer.click().run()
    no_exception(at)
    assert [e.value for e in at.error] == [f"run 1: {run.snapshot()['message']}"]  # only the divergence
    assert not at.button(key="act_l5_train").disabled
    assert at.session_state["l5_n_embd"] == fit.n_embd
    assert l5_metric(at, "parameters") == f"{meta_params(fit):,}"


def test_training_lab_budget_and_starting_loss_equal_an_independent_recomputation(monkeypatch):
    """Step costs are fixed (they are measured, see test_train); every figure built on them
    and the untrained model's loss are recomputed here by hand."""
    import torch.nn.functional as F

    from classroom import runs_view
    from gptcore import trainer

    times = trainer.StepTimes(step_s=0.0123, eval_token_s=4.5e-6, sample_token_s=1.5e-3)
    monkeypatch.setattr(trainer, "measure_step_times", lambda config, batch: times)
    runs_view.step_times.clear()
    at = lab_page()
    small_lab(at, steps=250)
    config = l5_config(at)
    B, T, S = 8, 32, 250
    assert l5_metric(at, "parameters") == f"{meta_params(config):,}"
    assert l5_metric(at, "tokens per step") == f"{B * T:,}"
    assert l5_metric(at, "one step (measured)") == "12.3 ms"
    assert l5_metric(at, "tokens per second") == f"{B * T / 0.0123:,.0f}"
    n = len(L5_TEXT)  # characters: one token each
    n_val = round(n * 0.1)
    windows = lambda k: (k - 1) // T * T  # noqa: E731 - full windows of T targets
    eval_tokens = windows(n_val) + windows(8192)
    evals = len(range(0, S + 1, 20)) + 1  # 0, 20, …, 240 and the last step, 250
    total = S * 0.0123 + evals * (eval_tokens * 4.5e-6 + 150 * 1.5e-3)
    assert l5_metric(at, "estimated time") == f"{total:,.0f} s"
    formula = next(l.value for l in at.get("latex") if "\\times (" in l.value)  # the ETA's
    assert f"= {total:,.1f}".replace(",", "{,}") in formula
    assert f"{evals} \\times ({eval_tokens:,}".replace(",", "{,}") in formula
    assert "12.3\\,\\text{ms}" in formula and "\\{,}" not in formula  # thin spaces kept
    assert any(f"**{eval_tokens:,} tokens**" in m.value and f"**{n:,} tokens** (1.00 characters"
               in m.value for m in at.markdown)
    # the untrained model, seed 1337, on the first validation tokens
    chars = sorted(set(L5_TEXT))
    ids = torch.tensor([chars.index(c) for c in L5_TEXT])[n - n_val:][:8192]
    model = trainer.init_model(config, 1337).eval()  # the run's first weights (see test_train)
    k = (len(ids) - 1) // T
    x, y = ids[: k * T].view(k, T), ids[1: k * T + 1].view(k, T)
    with torch.no_grad():
        logits, _ = model(x)
    loss = F.cross_entropy(logits.reshape(-1, config.vocab_size), y.reshape(-1), reduction="none")
    rep = (x == y).reshape(-1)
    text = " ".join(m.value for m in at.markdown)
    assert f"scores **{loss.mean():.3f}** on the first {n_val:,} validation tokens, not ln " \
           f"{config.vocab_size} = {math.log(config.vocab_size):.3f}" in text
    assert f"**{rep.float().mean():.1%}** of next tokens" in text
    assert f"cost {loss[rep].mean():.3f}; the others {loss[~rep].mean():.3f}" in text
    own = (logits.gather(-1, x[..., None])[..., 0] - logits.mean(-1)).mean()
    assert f"**{own:+.2f}** above the mean" in text
    no_doubled_period(at)


def test_training_lab_keeps_its_settings_across_lessons():
    at = lab_page()
    chosen = {"l5_model": TINY_CHOICE, "l5_tok": "bpe", "l5_bpe_vocab": 320, "l5_steps": 70,
              "l5_batch": 5, "l5_lr": 1e-3, "l5_cosine": False, "l5_eval": 30, "l5_wd": 0.2,
              "l5_dropout": 0.1, "l5_n_layer": 3}
    for key, value in chosen.items():
        widget = at.select_slider(key=key) if key == "l5_lr" else at.toggle(key=key) \
            if key == "l5_cosine" else at.radio(key=key) if key == "l5_tok" else \
            at.selectbox(key=key) if key == "l5_model" else at.slider(key=key)
        widget.set_value(value).run()
    for page in ("pages/home.py", "pages/2_tokenization.py", "pages/4_gpt.py", "pages/5_training.py"):
        at.switch_page(page).run()
        no_exception(at)
    for key, value in chosen.items():
        assert at.session_state[key] == value, key
    assert at.slider(key="l5_n_layer").value == 3 and at.radio(key="l5_tok").value == "bpe"
    assert at.selectbox(key="l5_model").value == TINY_CHOICE


def test_training_lab_value_widgets_persist_across_pages():
    """While the live view ticks (a fragment below the form), Streamlit drops the values of
    widgets without persist_state="session" when the learner opens another lesson; measured
    in Chromium, invisible to AppTest. So every lesson 5 setting widget must set it."""
    import ast

    from tests.conftest import ROOT

    widgets = {"slider", "select_slider", "selectbox", "radio", "toggle", "text_input",
               "number_input", "checkbox", "text_area"}
    found = []
    for path in (ROOT / "pages" / "5_training.py", ROOT / "classroom" / "training_views.py",
                 ROOT / "classroom" / "runs_view.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in widgets:
                kwargs = {k.arg: k.value for k in node.keywords}
                persist = kwargs.get("persist_state")
                found.append((path.name, node.lineno))
                assert persist is not None, (path.name, node.lineno)
                assert getattr(persist, "value", None) == "session" or \
                    getattr(persist, "id", None) == "PERSIST", (path.name, node.lineno)
    assert len(found) >= 20


def lesson4_builds(at, settings: dict):
    at.switch_page("pages/4_gpt.py").run()
    at.selectbox(key="l4_preset").set_value(settings.pop("preset", "Custom")).run()
    for key, value in settings.items():
        kind = {"tie_weights": "toggle", "pre_ln": "toggle", "bias": "toggle",
                "activation": "selectbox", "block_size": "number_input",
                "vocab_size": "number_input"}.get(key, "slider")
        getattr(at, kind)(key=f"l4_{key}").set_value(value).run()
    no_exception(at)
    built = at.session_state["built_config"]
    at.switch_page("pages/5_training.py").run()
    at.selectbox(key="l5_model").set_value("Lesson 4's builder").run()
    no_exception(at)
    return built


def test_training_lab_trains_lesson_4s_model_with_every_field():
    at = lab_page()
    built = lesson4_builds(at, {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16,
                                "dropout": 0.1, "tie_weights": False, "pre_ln": False,
                                "activation": "relu", "bias": True})
    assert not at.warning and not at.error
    at.slider(key="l5_steps").set_value(20).run()
    at.slider(key="l5_eval").set_value(10).run()
    at.button(key="act_l5_train").click().run()
    run = wait_for_run(at)
    got = run.model.config
    for f in ("n_layer", "n_head", "n_embd", "block_size", "dropout", "tie_weights", "pre_ln",
              "activation", "bias", "residual", "causal", "layer_norm_eps"):
        assert getattr(got, f) == getattr(built, f), f
    assert got.vocab_size == len(set(L5_TEXT)) + 1  # the tokenizer's, not lesson 4's
    assert run.snapshot()["status"] == "done"
    assert any("2 layers × 2 heads × 32, context 16; untied head, biases, ReLU, post-LN, "
               "dropout 0.1" in c.value for c in at.caption)


def test_training_lab_offers_the_nearest_model_when_lesson_4s_is_over_the_caps():
    from dataclasses import replace

    from classroom.lab import Caps
    from tests.test_lab import brute_force_nearest

    at = lab_page()
    built = lesson4_builds(at, {"preset": "GPT-2 small"})
    wanted = replace(built, vocab_size=len(set(L5_TEXT)) + 1)
    fit = brute_force_nearest(wanted, Caps())
    warning = at.warning[0].value
    for cap in ("Layers 12 is over this server's cap of 8.", "Width 768 is over this server's "
                "cap of 512.", "Context 1,024 is over this server's cap of 256.",
                f"This model has {meta_params(wanted):,} parameters; the limit here is 3,000,000."):
        assert cap in warning
    assert "Heads 12" not in warning  # 12 heads are within the cap of 16
    assert f"The sliders hold the nearest model within the caps: {fit.n_layer} layers × {fit.n_head} heads × " \
           f"{fit.n_embd}, context {fit.block_size}" in warning
    assert f"({meta_params(fit):,} parameters)" in warning
    assert [at.session_state[f"l5_{f}"] for f in ("n_layer", "n_head", "n_embd", "block_size")] == \
        [fit.n_layer, fit.n_head, fit.n_embd, fit.block_size]
    assert not at.error and not at.button(key="act_l5_train").disabled
    no_doubled_period(at)
    at.slider(key="l5_n_embd").set_value(fit.n_embd - 24).run()  # moved away: offered again
    at.button(key="act_l5_fit_builder").click().run()
    assert at.session_state["l5_n_embd"] == fit.n_embd


def test_training_lab_live_table_attention_and_sidebar_while_training():
    """While a run trains: the runs table shows its live step, time and loss (issue #16), a
    picture of every head's attention at the latest evaluation, and every page's sidebar shows
    its status."""
    import re

    at = lab_page()
    small_lab(at, steps=2000)
    at.button(key="act_l5_train").click().run()
    run = at.session_state["training_runs"][-1]
    wait_for_steps(run, 3)  # after step 0's evaluation: the first attention snapshot exists
    at.run()
    no_exception(at)
    row = runs_table(at).loc["run 1"]
    assert row["status"] == "training" and int(row["steps"]) >= 3 and float(row["time (s)"]) > 0
    assert row["batch loss"] != "—"
    assert len(at.get("image")) == 1  # lesson 5 draws no other picture
    caption = next(c.value for c in at.caption if c.value.startswith("Attention at step"))
    step = int(re.match(r"Attention at step ([\d,]+),", caption).group(1).replace(",", ""))
    assert step % 20 == 0 and step <= run.snapshot()["step"]  # an evaluation's, every 20 steps
    tokens = "".join(run.snapshot_tokens()).replace("\n", "↵")
    assert f"The {run.latest_attention()[1].shape[-1]} held-out tokens: `{tokens}`" in caption
    for page in ("pages/home.py", "pages/2_tokenization.py"):
        at.switch_page(page).run()
        no_exception(at)
        status = next(c.value for c in at.sidebar.caption if "**Training**" in c.value)
        step = int(re.search(r"run 1: step ([\d,]+) / 2,000 · loss [\d.]+ · ETA [\d,]+ s",
                             status).group(1).replace(",", ""))
        assert 3 <= step <= run.snapshot()["step"]
    run.stop()
    wait_for_run(at)
    assert not any("**Training**" in c.value for c in at.sidebar.caption)
    assert at.session_state["trained_model"].label == "run 1"  # adopted from another lesson


def test_training_lab_queued_view_turns_into_training():
    """Issue #18: a queued learner's view said "Queued" while the run trained."""
    from classroom.lab import TrainingRun
    from classroom.shared import shared_lab
    from gptcore.model import GPTConfig
    from gptcore.trainer import TrainConfig

    lab = shared_lab()
    others = [TrainingRun(lab, L5_TEXT, "char", 0, GPTConfig(vocab_size=1, n_layer=1, n_head=1,
                                                             n_embd=16, block_size=16),
                          TrainConfig(max_iters=5000, eval_interval=5000, batch_size=4)).start()
              for _ in range(lab.caps.max_concurrent)]
    try:
        for other in others:
            wait_for_steps(other, 1)
        at = lab_page()
        small_lab(at, steps=2000)
        at.button(key="act_l5_train").click().run()
        run = at.session_state["training_runs"][-1]
        assert run.lab is lab
        assert any(w.value.startswith("Queued:") and "number 1 in line" in w.value for w in at.warning)
        assert runs_table(at).loc["run 1", "status"] == "queued"
    finally:
        for other in others:
            other.stop()
    wait_for_steps(run, 3)
    at.run()
    no_exception(at)
    assert not any("Queued" in t or "queued" in t for t in l5_texts(at))
    assert runs_table(at).loc["run 1", "status"] == "training"
    assert at.get("progress")[0].proto.text.startswith("run 1: step ")
    run.stop()
    wait_for_run(at)


def test_training_lab_continues_a_run():
    at = lab_page()
    small_lab(at, steps=40)
    at.button(key="act_l5_train").click().run()
    first = wait_for_run(at)
    at.slider(key="l5_more_steps").set_value(20).run()
    at.button(key="act_l5_continue").click().run()
    more = wait_for_run(at)
    no_exception(at)
    assert more is not first and more.label == "run 2" and more.parent == "run 1"
    snap = more.snapshot()
    assert snap["status"] == "done" and [e["iter"] for e in snap["evals"]] == [0, 20, 40, 60]
    assert snap["evals"][:3] == first.snapshot()["evals"]  # the same curve, extended
    table = runs_table(at)
    assert table.loc["run 2", "continues"] == "run 1" and table.loc["run 2", "steps"] == "60"
    assert table.loc["run 1", "steps"] == "40"
    assert at.session_state["trained_model"].label == "run 2"


def test_setup_kv_cache_figures_recounted():
    """Lesson 1's KV-cache caption for the default prompt (5 GPT-2 tokens) and 40 new tokens:
    with the cache the prompt once and then one token a step; without, the whole prefix."""
    at = open_page("pages/1_setup.py")
    T, n = 5, 40
    cached, recomputed = T + (n - 1), sum(T + i for i in range(n))
    assert (cached, recomputed) == (44, 980)
    assert any(f"**{cached:,}** positions through the model with the cache, **{recomputed:,}** "
               f"without ({recomputed / cached:,.1f}× the work)" in c.value for c in at.caption)
