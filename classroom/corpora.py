"""Corpora: the texts a learner tokenizes and trains on.

- Tiny Shakespeare (1,115,394 bytes): downloaded once into a git-ignored cache under data/,
  its SHA-256 checked before it is used; a partial or corrupt download is never kept.
- Python's documentation (`pydoc_data.topics`, shipped with Python): always available.
- The learner's own text, uploaded: size-limited and decoded as UTF-8 with a clear error.
Loading never hangs: the host is probed with a short timeout first.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from classroom.hub import host_reachable

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
CACHE_DIR = DATA_DIR / "cache"
SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_FILE = "tinyshakespeare.txt"
MAX_UPLOAD_BYTES = 2_000_000


class CorpusError(ValueError):
    """A corpus cannot be had or read; the message says why in plain words."""


@dataclass(frozen=True)
class Corpus:
    name: str
    text: str
    source: str

    @property
    def n_chars(self) -> int:
        return len(self.text)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_verified(url: str, dest: Path, sha256: str, timeout: float = 5.0,
                      max_bytes: int = 50_000_000) -> Path:
    """Download `url` to `dest` only if its SHA-256 is `sha256`; never leave a partial file.

    The bytes go to a temporary file beside `dest` and are renamed into place after the
    checksum matches, so a crash or a wrong file never shadows a good cache.
    """
    if dest.is_file() and sha256_file(dest) == sha256:
        return dest
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    ok, reason = host_reachable(parts.hostname or "", port, timeout=min(timeout, 3.0))
    if not ok:
        raise CorpusError(f"Cannot download {url}: {reason}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name, suffix=".part")
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            for block in iter(lambda: resp.read(1 << 16), b""):
                size += len(block)
                if size > max_bytes:
                    raise CorpusError(f"{url} is larger than {max_bytes:,} bytes.")
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != sha256:
            raise CorpusError(f"{url} does not have the expected SHA-256; the file was discarded.")
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, OSError) as e:
        raise CorpusError(f"Downloading {url} failed: {e}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def tiny_shakespeare(cache_dir: Path = CACHE_DIR, url: str = SHAKESPEARE_URL,
                     timeout: float = 5.0) -> Corpus:
    path = download_verified(url, cache_dir / SHAKESPEARE_FILE, SHAKESPEARE_SHA256, timeout)
    return Corpus("Tiny Shakespeare", path.read_text(encoding="utf-8"), str(path))


def python_docs() -> Corpus:
    """The English text of Python's own documentation topics: about 0.8 MB, no network."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key].strip() for key in sorted(topics))
    return Corpus("Python docs", text, "pydoc_data.topics (Python standard library)")


def decode_upload(data: bytes, name: str = "upload", max_bytes: int = MAX_UPLOAD_BYTES) -> Corpus:
    """An uploaded file as text, or a CorpusError saying what is wrong with it."""
    if len(data) > max_bytes:
        raise CorpusError(f"{name} is {len(data):,} bytes; the limit is {max_bytes:,} bytes.")
    if b"\x00" in data[:8192]:
        raise CorpusError(f"{name} looks like a binary file, not text.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CorpusError(
            f"{name} is not UTF-8 text (byte {e.start} cannot be decoded). "
            "Save it as UTF-8 and upload it again."
        ) from e
    if not text.strip():
        raise CorpusError(f"{name} is empty.")
    return Corpus(name, text, f"uploaded file {name}")


CORPORA = ("Tiny Shakespeare", "Python docs")


def load_corpus(name: str, cache_dir: Path = CACHE_DIR, url: str = SHAKESPEARE_URL,
                timeout: float = 5.0) -> tuple[Corpus, str | None]:
    """(corpus, warning): Tiny Shakespeare falls back to Python docs with a plain reason."""
    if name == "Python docs":
        return python_docs(), None
    if name == "Tiny Shakespeare":
        try:
            return tiny_shakespeare(cache_dir, url, timeout), None
        except CorpusError as e:
            return python_docs(), f"{e} Using Python's documentation instead (no network needed)."
    raise CorpusError(f"Unknown corpus {name!r}; choose one of {', '.join(CORPORA)}.")
