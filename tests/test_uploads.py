"""classroom.uploads: an uploaded checkpoint is inspected as bytes before torch.load sees it.

A hostile upload is refused with a plain message and costs the server no more memory than its
own size; whatever gets through is a checkpoint the app can use whole. Each attack adds a row
to the classroom report (tests/conftest.py).
"""
import copy
import functools
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tracemalloc
import zipfile

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from classroom.lab import LoadedRun
from classroom.uploads import (CENTRAL, END, LOCAL, ZIP64_END, Limits, UploadRefused,
                               inspect_archive, load_upload, pickle_memory)
from gptcore.checkpoint import FORMAT, CheckpointError
from tests.conftest import REPORT, ROOT
from tests.test_checkpoint import as_bytes, assert_usable, edits, saved

MIB = 1 << 20
MAX_PARAMS = 1_000_000  # the host's cap, classroom.lab.Caps.max_params
LIMITS = Limits.for_params(MAX_PARAMS)


def record(what: str, behaviour: str) -> None:
    REPORT.append({"page": "5_training upload", "input": what, "behaviour": behaviour[:90]})


def refused(raw: bytes, what: str) -> str:
    """The plain message an upload is refused with (recorded in the classroom report)."""
    with pytest.raises(CheckpointError) as e:
        load_upload(raw, MAX_PARAMS)
    record(what, str(e.value))
    return str(e.value)


def assert_app_can_use(ckpt: dict, raw: bytes) -> None:
    """What lesson 5 does with an upload: a run in the table and on the curve, and the model
    lessons 1 and 3 use."""
    assert_usable(ckpt)
    run = LoadedRun(ckpt, raw, "upload: mine.pt")
    summary, snapshot = run.summary(), run.snapshot()
    assert summary["params"] == run.model.num_params() and snapshot["status"] == "uploaded"
    curve = [(e["iter"], e["val_loss"], e["train_loss"]) for e in snapshot["evals"]]
    assert len(curve) == len(ckpt["history"])


# --------------------------------------------------------------------- crafting archives


def rezip(raw: bytes, change=lambda name, data: data, compress=(), extra=()) -> bytes:
    """The archive written again with Python's zipfile, as an attacker would: `change` edits
    an entry's bytes, names in `compress` are DEFLATE-compressed, `extra` adds entries."""
    source, out = zipfile.ZipFile(io.BytesIO(raw)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for info in source.infolist():
            method = zipfile.ZIP_DEFLATED if info.filename.endswith(compress) else zipfile.ZIP_STORED
            z.writestr(info.filename, change(info.filename, source.read(info)), method)
        for name, data in extra:
            z.writestr(name, data)
    return out.getvalue()


CSIZE, USIZE, NAME_LEN, OFFSET = 8, 9, 10, 16  # fields of a central header (classroom.uploads.CENTRAL)


def central_headers(raw: bytes):
    """(position, name, fields) of each central directory header, read from the end record."""
    _, _, _, _, n, _, pos, _ = END.unpack_from(raw, len(raw) - END.size)
    for _ in range(n):
        fields = list(CENTRAL.unpack_from(raw, pos))
        yield pos, raw[pos + CENTRAL.size: pos + CENTRAL.size + fields[NAME_LEN]].decode(), fields
        pos += CENTRAL.size + sum(fields[NAME_LEN: NAME_LEN + 3])  # name, extra, comment


def central(raw: bytes, name: str) -> list:
    return next(fields for _, n, fields in central_headers(raw) if n == name)


def patch_central(raw: bytes, name: str, **changes) -> bytes:
    """Rewrite fields of one entry's central header, e.g. csize=..., usize=..."""
    out = bytearray(raw)
    pos, _, fields = next(h for h in central_headers(raw) if h[1] == name)
    for key, value in changes.items():
        fields[{"csize": CSIZE, "usize": USIZE}[key]] = value
    CENTRAL.pack_into(out, pos, *fields)
    return bytes(out)


def pickle_archive(body: bytes) -> bytes:
    """A torch-style archive whose data.pkl is PROTO 2 + body + STOP."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x02" + body + b".")
        z.writestr("archive/byteorder", "little")
        z.writestr("archive/version", "3\n")
    return out.getvalue()


def bytearray_call(n: int) -> bytes:
    """Pickle instructions for bytearray(n): weights_only allows it, n bytes at once."""
    return b"cbuiltins\nbytearray\nJ" + struct.pack("<i", n) + b"\x85R"


@functools.cache
def good_bytes() -> bytes:
    """The tiny char-level run of tests/test_checkpoint.py, saved as the lab saves it."""
    return as_bytes(saved("char"))


@pytest.fixture
def good() -> bytes:
    return good_bytes()


def test_a_checkpoint_from_the_lab_is_accepted_whole(good):
    entries = inspect_archive(good, LIMITS)
    assert any(e.name.endswith("/data.pkl") for e in entries) and len(entries) == 71
    assert_app_can_use(load_upload(good, MAX_PARAMS), good)
    record("checkpoint saved by the lab", "accepted: listed with its curve, usable in lessons 1 and 3")


def test_the_same_checkpoint_rewritten_by_zipfile_still_loads(good):
    """So that each refusal below is for its trick, not for being written by zipfile."""
    raw = rezip(good)
    assert raw != good
    assert_app_can_use(load_upload(raw, MAX_PARAMS), raw)


def test_limits_follow_the_model_cap():
    assert Limits.for_params(3_000_000).max_bytes == 36_000_000 + 8 * MIB  # 42.3 MiB


# ------------------------------------------------------------------------- item 1: bombs


def test_a_compressed_pickle_record_is_refused(good):
    bomb = rezip(good, lambda n, d: d + b"\0" * (16 * MIB) if n.endswith("data.pkl") else d,
                 compress=("data.pkl",))
    assert len(bomb) < 100_000
    assert "compressed" in refused(bomb, f"zip bomb: {len(bomb) // 1000} KB inflating to 16 MiB")


MEASURE = """
import io, json, sys
from pathlib import Path

def peak():  # bytes: the high-water mark of this process's resident memory
    status = Path("/proc/self/status").read_text()
    return int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1]) * 1024

import torch
from classroom.uploads import load_upload
from gptcore.checkpoint import CheckpointError
raw = Path(sys.argv[1]).read_bytes()
before = peak()
try:
    if sys.argv[2] == "torch.load":
        torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
    else:
        load_upload(raw, int(sys.argv[3]))
    outcome = "loaded"
except CheckpointError as e:
    outcome = str(e)
print(json.dumps({"rise": peak() - before, "outcome": outcome}))
"""


def memory_rise(path, how: str) -> dict:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(path), how, str(MAX_PARAMS)],
                         capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.splitlines()[-1])


@pytest.mark.parametrize("attack", ["zip bomb", "bytearray in the pickle"])
def test_a_bomb_costs_no_more_memory_than_its_size(good, tmp_path, attack):
    """In a fresh process: torch.load alone takes the bomb's full size (the control), the
    upload path refuses it having grown by less than the file plus the model it could hold."""
    size = 128 * MIB
    if attack == "zip bomb":
        raw = rezip(good, lambda n, d: d + b"\0" * size if n.endswith("data.pkl") else d,
                    compress=("data.pkl",))
    else:
        raw = pickle_archive(b"}(X\x06\x00\x00\x00format" + bytearray_call(size) + b"u")
    path = tmp_path / "bomb.pt"
    path.write_bytes(raw)
    control = memory_rise(path, "torch.load")
    assert control["rise"] > 0.75 * size, control  # the bomb is real
    guarded = memory_rise(path, "upload")
    model_bytes = 4 * MAX_PARAMS
    assert guarded["rise"] < len(raw) + model_bytes + 16 * MIB, guarded
    assert "gptcore checkpoints never contain" in guarded["outcome"] or "compressed" in guarded["outcome"]
    record(f"{attack} ({len(raw):,} bytes)",
           f"refused; server +{guarded['rise'] / MIB:.0f} MiB (torch.load alone: "
           f"+{control['rise'] / MIB:.0f} MiB)")


# --------------------------------------------------------------- item 3: crafted archives


def test_an_entry_declaring_more_than_it_stores_is_refused(good):
    raw = patch_central(good, "archive/data.pkl", usize=2**31)
    assert "declares 2,147,483,648 bytes but stores" in refused(raw, "entry declaring 2 GB, storing 8 KB")


def test_an_entry_reaching_past_the_end_of_the_file_is_refused(good):
    raw = patch_central(good, "archive/data/64", csize=2**31, usize=2**31)
    assert "runs past the end" in refused(raw, "entry of 2 GB in a 40 KB file")


def test_entries_that_overlap_are_refused(good):
    size = central(good, "archive/data.pkl")[USIZE] + 200  # into the next entry's header
    raw = patch_central(good, "archive/data.pkl", csize=size, usize=size)
    assert "overlap" in refused(raw, "entry overlapping the next one")


def test_a_local_header_that_disagrees_with_the_directory_is_refused(good):
    offset = central(good, "archive/data.pkl")[OFFSET]
    raw = bytearray(good)
    raw[offset + 8: offset + 10] = struct.pack("<H", 8)  # the local header says DEFLATE
    assert "does not match its header" in refused(bytes(raw), "local header saying DEFLATE")


def test_end_records_that_disagree_are_refused(good):
    at = len(good) - END.size - 20 - ZIP64_END.size  # torch.save writes a zip64 end record
    raw = bytearray(good)
    raw[at + 32: at + 40] = struct.pack("<Q", 70)  # one entry fewer than the end record says
    assert "end records disagree" in refused(bytes(raw), "zip64 end record disagreeing")


def test_too_many_entries_are_refused(good):
    raw = rezip(good, extra=[(f"archive/data/{1000 + i}", b"") for i in range(LIMITS.max_entries)])
    assert "4,167 entries" in refused(raw, "4,167 entries")


def test_more_bytes_than_the_largest_model_needs_are_refused(good):
    """100,000 parameters allow 1.2 MB of tensors + 8 MiB: an 8 MiB extra record passes (torch
    never reads it), a 10 MiB one does not."""
    small = 100_000  # parameters
    raw = rezip(good, extra=[("archive/data/999", b"\0" * (8 * MIB))])
    assert_app_can_use(load_upload(raw, small), raw)
    raw = rezip(good, extra=[("archive/data/999", b"\0" * (10 * MIB))])
    with pytest.raises(UploadRefused, match="holds 10.0 MiB; the largest model allowed here "
                                            "needs at most 9.1 MiB") as e:
        load_upload(raw, small)
    record("10 MiB of extra records (model cap 100k)", str(e.value))


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("name,message", [
    ("/etc/passwd", "absolute path"),
    ("\\windows\\evil", "absolute path"),
    ("C:/evil", "absolute path"),
    ("../evil", "climbs out"),
    ("archive/../../evil", "climbs out"),
    ("archive\\..\\evil", "climbs out"),
    ("archive/data.pkl", "twice"),
    ("archive/notes.txt", "not part of a PyTorch checkpoint"),
    ("other/data.pkl", "not part of a PyTorch checkpoint"),
])
def test_path_tricks_are_refused(good, name, message):
    assert message in refused(rezip(good, extra=[(name, b"x")]), f"entry named {name}")


def test_every_truncation_is_refused(good):
    """Cut anywhere, the file is refused by the inspection itself, before torch."""
    for cut in range(len(good)):
        with pytest.raises(UploadRefused):
            inspect_archive(good[:cut], LIMITS)
    assert "cut short" in refused(good[: len(good) // 2], "checkpoint cut in half")


def test_data_after_the_end_record_is_refused(good):
    assert "data after its end" in refused(good + b"\0" * 10, "bytes appended after the zip")


def test_a_legacy_pickle_file_is_refused(tmp_path):
    path = tmp_path / "old.pt"
    torch.save(saved("char"), path, _use_new_zipfile_serialization=False)
    assert "not a PyTorch checkpoint archive" in refused(path.read_bytes(), "legacy (pre-1.6) pickle file")


def test_a_pickle_that_would_run_code_is_refused_before_torch_reads_it(good, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    raw = rezip(good, lambda n, d: pickle.dumps({"format": FORMAT, "x": Payload()}, protocol=2)
                if n.endswith("data.pkl") else d)
    assert "asks for 'io open'" in refused(raw, "pickle whose __reduce__ calls open()")
    assert not marker.exists()


@pytest.mark.parametrize("what,body,message", [
    ("bytearray(8) call", bytearray_call(8), "asks for 'builtins bytearray'"),
    ("a set (EMPTY_SET)", b"\x8f", "instruction (0x8f)"),
    ("300,000 empty dicts", b"]" + b"}a" * 300_000, "more than 32 MiB"),
    ("pickle cut short", b"]]a", "cut short"),
])
def test_pickles_beyond_a_checkpoint_are_refused(what, body, message):
    raw = pickle_archive(body)
    if message == "cut short":
        raw = rezip(raw, lambda n, d: d[:-1] if n.endswith("data.pkl") else d)
    assert message in refused(raw, f"pickle: {what}")


# ------------------------------------------- the pickle's memory bound, against tracemalloc

N = 20_000
SHAPES = {
    "empty lists": b"]" + b"]a" * N,
    "empty dicts": b"]" + b"}a" * N,
    "memo entries": b"]" + b"".join(b"]r" + struct.pack("<I", i) + b"a" for i in range(N)),
    "dict items": b"}(" + b"".join(b"J" + struct.pack("<i", i) + b"N" for i in range(N)) + b"u",
    "OrderedDict items": b"ccollections\nOrderedDict\n)R(" +
                         b"".join(b"J" + struct.pack("<i", i) + b"]" for i in range(N)) + b"u",
    "tuples": b"]" + b"NN\x86a" * N,
    "big ints": b"]" + (b"\x8a\xff" + b"\x01" * 255 + b"a") * (N // 10),
    "floats": b"]" + (b"G" + struct.pack(">d", 0.5) + b"a") * N,
    "text": b"]" + (b"X" + struct.pack("<I", 100) + "é".encode() * 50 + b"a") * (N // 10),
    "a real checkpoint": None,
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_the_pickle_bound_is_above_what_unpickling_really_takes(good, shape):
    raw = good if SHAPES[shape] is None else pickle_archive(SHAPES[shape])
    pkl = next(e for e in inspect_archive(raw, Limits(max_bytes=LIMITS.max_bytes,
                                                      max_pickle_memory=1 << 40))
               if e.name.endswith("data.pkl"))
    bound = pickle_memory(raw, pkl.data, pkl.data + pkl.size, 1 << 40)
    torch.load(io.BytesIO(pickle_archive(b"N")), weights_only=True)  # imports, caches: not counted
    tracemalloc.start()
    try:
        torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= bound, (shape, peak, bound)


def test_a_long_lab_run_fits_the_pickle_budget_with_room_to_spare():
    """5,000 steps evaluated every 10 with a 150-token sample each, and a 2,048-token BPE."""
    ckpt = copy.deepcopy(saved("bpe"))
    ckpt["tokenizer"]["merges"] = [[k % 256, (7 * k) % 256, 256 + k] for k in range(1792)]
    ckpt["history"] = [{"iter": 10 * i, "train_loss": 1.5 + i / 1e3, "val_loss": 1.6 + i / 1e3,
                        "elapsed_s": i / 3, "tokens_per_s": 40_000 + i, "lr": 1e-3, "eval_s": 0.1,
                        "wall_s": i / 2, "sample": f"{i} thou art more lovely " * 25} for i in range(501)]
    raw = as_bytes(ckpt)
    pkl = next(e for e in inspect_archive(raw, LIMITS) if e.name.endswith("data.pkl"))
    assert pickle_memory(raw, pkl.data, pkl.data + pkl.size, LIMITS.max_pickle_memory) \
        < LIMITS.max_pickle_memory / 4


def test_a_bpe_of_30_000_merges_fits_the_pickle_budget():
    tokenizer = {"kind": "bpe", "merges": [[k % 256, (7 * k) % 256, 256 + k] for k in range(30_000)],
                 "byte_ids": list(range(256)), "special_tokens": {}}
    raw = as_bytes({"format": FORMAT, "tokenizer": tokenizer})
    pkl = next(e for e in inspect_archive(raw, LIMITS) if e.name.endswith("data.pkl"))
    assert pickle_memory(raw, pkl.data, pkl.data + pkl.size, LIMITS.max_pickle_memory) > 24 * MIB


# ------------------------------------------------ generated: corrupted bytes and contents

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def header_positions(raw: bytes) -> list[int]:
    """Bytes of the directory, the local headers and the pickle: where a flip changes meaning."""
    cd_start = END.unpack_from(raw, len(raw) - END.size)[6]
    spots = list(range(cd_start, len(raw)))
    for _, name, f in central_headers(raw):
        spots += range(f[OFFSET], f[OFFSET] + LOCAL.size + f[NAME_LEN])
        if name.endswith("data.pkl"):
            spots += range(f[OFFSET], f[OFFSET] + f[USIZE])
    return spots


@SETTINGS
@given(data=st.data())
def test_any_corrupted_upload_is_refused_or_usable(data):
    """Flipped bytes (mostly in headers and the pickle) and cuts: a plain refusal, or a
    checkpoint the app can use whole. Never another exception."""
    good = good_bytes()
    raw = bytearray(good)
    spots = header_positions(good)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.one_of(st.sampled_from(spots), st.integers(0, len(raw) - 1)))
        raw[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    try:
        ckpt = load_upload(bytes(raw), MAX_PARAMS)
    except CheckpointError:
        return
    assert_app_can_use(ckpt, bytes(raw))


@SETTINGS
@given(data=st.data())
def test_any_edited_checkpoint_uploaded_is_refused_or_usable(data):
    """test_checkpoint's generated edits, through the upload path and into LoadedRun."""
    ckpt = copy.deepcopy(saved(data.draw(st.sampled_from(["char", "word", "bpe"]))))
    for _ in range(data.draw(st.integers(1, 3))):
        _, apply = data.draw(edits(ckpt))
        try:
            apply(ckpt)
        except (TypeError, IndexError, KeyError, RuntimeError):
            continue
    raw = as_bytes(ckpt)
    try:
        loaded = load_upload(raw, MAX_PARAMS)
    except CheckpointError:
        return
    assert_app_can_use(loaded, raw)


# --------------------------------------------------------------------------------- the page


def test_the_training_page_explains_bad_uploads_and_keeps_no_bad_run():
    """Through pages/5_training.py: each file is explained in the page, none is listed or used."""
    from tests.test_app_pages import no_exception, open_page

    def edited(apply):
        ckpt = copy.deepcopy(saved("char"))
        apply(ckpt)
        return as_bytes(ckpt)

    cases = {
        "model as a list": edited(lambda c: c.__setitem__("model", list(c["model"].values()))),
        "tokenizer without its chars": edited(lambda c: c["tokenizer"].pop("chars")),
        "history entry without val_loss": edited(lambda c: c["history"][0].pop("val_loss")),
        "no tokenizer": edited(lambda c: c.__setitem__("tokenizer", None)),
        "zip bomb (16 MiB pickle)": rezip(good_bytes(), lambda n, d: d + b"\0" * (16 * MIB)
                                          if n.endswith("data.pkl") else d, compress=("data.pkl",)),
        "pickle calling bytearray": pickle_archive(bytearray_call(1 << 30)),
    }
    at = open_page("pages/5_training.py")
    for name, raw in cases.items():
        at.file_uploader(key="act_l5_upload").upload(f"{name}.pt", raw).run()
        no_exception(at)
        assert at.error and not at.session_state["training_runs"], name
        assert "trained_model" not in at.session_state
        REPORT.append({"page": "5_training", "input": f"checkpoint: {name}",
                       "behaviour": at.error[0].value[:90]})
