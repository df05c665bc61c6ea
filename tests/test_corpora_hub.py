import hashlib
import http.server
import subprocess
import sys
import threading
import time

import pytest

from classroom import corpora, hub

BODY = ("First Citizen:\nBefore we proceed any further, hear me speak.\n" * 200).encode()


@pytest.fixture
def local_server(tmp_path):
    """Serve a file from this test over HTTP on 127.0.0.1 (never the internet)."""
    (tmp_path / "input.txt").write_bytes(BODY)
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(tmp_path), **kw)

        def log_message(self, *a):
            hits.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/input.txt", hits
    server.shutdown()


def test_download_is_checked_and_cached_once(local_server, tmp_path):
    url, hits = local_server
    dest = tmp_path / "cache" / "corpus.txt"
    sha = hashlib.sha256(BODY).hexdigest()
    assert corpora.download_verified(url, dest, sha).read_bytes() == BODY
    corpora.download_verified(url, dest, sha)
    assert len(hits) == 1  # the second call used the cache
    assert list(dest.parent.iterdir()) == [dest]  # no partial files left behind


def test_checksum_mismatch_is_rejected_and_nothing_kept(local_server, tmp_path):
    url, _ = local_server
    dest = tmp_path / "cache" / "corpus.txt"
    with pytest.raises(corpora.CorpusError, match="SHA-256"):
        corpora.download_verified(url, dest, "0" * 64)
    assert not dest.exists() and list(dest.parent.iterdir()) == []


def test_corrupt_cache_is_replaced(local_server, tmp_path):
    url, _ = local_server
    dest = tmp_path / "corpus.txt"
    dest.write_bytes(BODY[:100])  # a partial file from an earlier crash
    corpora.download_verified(url, dest, hashlib.sha256(BODY).hexdigest())
    assert dest.read_bytes() == BODY


def test_unreachable_host_falls_back_fast(tmp_path):
    start = time.perf_counter()
    corpus, warning = corpora.load_corpus("Tiny Shakespeare", cache_dir=tmp_path,
                                          url="http://127.0.0.1:9/none.txt", timeout=2)
    assert time.perf_counter() - start < 5
    assert corpus.name == "Python docs" and warning and "Python" in warning
    assert len(corpus.text) > 100_000


def test_uploads_are_checked():
    assert corpora.decode_upload("héllo 你好".encode(), "a.txt").text == "héllo 你好"
    with pytest.raises(corpora.CorpusError, match="not UTF-8"):
        corpora.decode_upload("héllo".encode("latin-1"), "b.txt")
    with pytest.raises(corpora.CorpusError, match="binary"):
        corpora.decode_upload(b"\x89PNG\r\n\x1a\n\x00\x00", "c.txt")
    with pytest.raises(corpora.CorpusError, match="limit"):
        corpora.decode_upload(b"a" * 101, "d.txt", max_bytes=100)
    with pytest.raises(corpora.CorpusError, match="empty"):
        corpora.decode_upload(b"  \n", "e.txt")


def test_hub_status_respects_offline_flag(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    status = hub.hub_status()
    assert not status.online and "HF_HUB_OFFLINE" in status.reason and status.seconds < 0.1


def test_hub_status_answers_within_timeout(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    start = time.perf_counter()
    hub.hub_status(timeout=3.0)
    assert time.perf_counter() - start < 3.5


def test_host_reachable_times_out_on_a_silent_host(monkeypatch):
    def hang(*a, **kw):  # a connect that hangs, then times out (as a real one would)
        time.sleep(10)
        raise TimeoutError("timed out")

    monkeypatch.setattr(hub.socket, "create_connection", hang)
    start = time.perf_counter()
    ok, reason = hub.host_reachable("example.invalid", timeout=0.5)
    assert not ok and "did not answer" in reason and time.perf_counter() - start < 1.5


def test_local_model_folder_loads_and_is_read_only(tiny_gpt2_dir, tmp_path):
    model = hub.load_pretrained(tiny_gpt2_dir)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    with pytest.raises(hub.ModelUnavailable, match="config.json"):
        hub.load_pretrained(tmp_path)
