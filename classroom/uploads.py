"""Uploaded checkpoints, inspected as bytes before torch.load sees them.

`torch.load(weights_only=True)` runs no code from the file, but it trusts the archive: a
160 KB upload whose pickle record is DEFLATE-compressed inflated to 128 MiB twice over
(256 MB more RSS, measured), and a 40-byte pickle may call `bytearray(400_000_000)`, which
weights_only allows. So an upload must look like what `torch.save` writes before it is loaded:

- a zip archive whose end record closes the file, with at most `max_entries` entries;
- entry names `<folder>/data.pkl`, `<folder>/data/<n>` and torch's few small records:
  no absolute paths, no "..", no name twice;
- every entry stored, not compressed (torch.save never compresses), occupying exactly the
  bytes it declares, inside the file and overlapping no other entry;
- all entries together under `max_bytes`, what the largest model the host allows needs
  (`Limits.for_params(Caps.max_params)`);
- a pickle that uses only the instructions and Python objects a gptcore checkpoint needs, and
  whose objects fit in `max_pickle_memory` (an upper bound computed from the instructions).

Only then does gptcore.checkpoint.load_checkpoint load it and check every field.
"""
from __future__ import annotations

import io
import re
import struct
from collections import Counter
from dataclasses import dataclass
from pickle import (APPEND, APPENDS, BINFLOAT, BINGET, BININT, BININT1, BININT2, BINPERSID,
                    BINPUT, BINUNICODE, BUILD, EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, GLOBAL, LONG1,
                    LONG_BINGET, LONG_BINPUT, MARK, NEWFALSE, NEWTRUE, NONE, PROTO, REDUCE,
                    SETITEM, SETITEMS, STOP, TUPLE, TUPLE1, TUPLE2, TUPLE3)

from gptcore.checkpoint import CheckpointError, load_checkpoint

MIB = 1 << 20


class UploadRefused(CheckpointError):
    """The upload was refused before loading; the message says why in plain words."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int  # all entries together, uncompressed
    max_entries: int = 4096  # one per tensor: 8 layers with AdamW make ~400, 48 layers ~2,400
    # by pickle_memory's bound a long lab run's pickle needs ~4 MiB, a BPE tokenizer 0.9 KiB
    # a merge: up to ~35,000 merges fit (the lab trains at most 1,792)
    max_pickle_memory: int = 32 * MIB

    @classmethod
    def for_params(cls, max_params: int) -> "Limits":
        """Weights and AdamW's two moments at 4 bytes a number, and 8 MiB for the pickle, the
        step counters and the random generator's state: 42 MiB for 3 million parameters."""
        return cls(max_bytes=3 * 4 * max_params + 8 * MIB)


def load_upload(raw: bytes, max_params: int) -> dict:
    """An uploaded file's checkpoint, checked whole (see gptcore.checkpoint), or
    CheckpointError (UploadRefused when the archive itself is refused). `max_params` is the
    host's cap, classroom.lab.Caps.max_params."""
    inspect_archive(raw, Limits.for_params(max_params))
    return load_checkpoint(io.BytesIO(raw), max_params=max_params)


# ---------------------------------------------------------------------------- the archive

# Little-endian ZIP records (PKWARE APPNOTE 4.3): signature, then fixed fields.
END = struct.Struct("<4s4H2LH")  # end of central directory, 22 bytes
ZIP64_END = struct.Struct("<4sQ2H2L4Q")  # zip64 end of central directory, 56 bytes
ZIP64_LOCATOR = struct.Struct("<4sLQL")  # 20 bytes, just before the end record
CENTRAL = struct.Struct("<4s6H3L5H2L")  # one central directory header, 46 bytes + name...
LOCAL = struct.Struct("<4s5H3L2H")  # one local header, 30 bytes + name + extra, then data
STORED = 0
# What torch.save writes under its folder: the pickle, one record per tensor storage, and a
# few small records (format and version numbers, byte order, an id).
TORCH_NAMES = re.compile(r"data\.pkl|data/\d+|version|byteorder|\.format_version"
                         r"|\.storage_alignment|\.data/version|\.data/serialization_id")


@dataclass(frozen=True)
class Entry:
    name: str
    start: int  # the local header
    data: int  # the first byte of data
    size: int


def inspect_archive(raw: bytes, limits: Limits) -> list[Entry]:
    """Refuse (UploadRefused) an archive torch.save would not have written; return its entries.

    Reads headers only (a few bytes each): nothing is inflated or unpickled here. The checks
    are stricter than Python's zipfile so that every reader, torch's included, sees the same
    entries: the end record must close the file and the directory must sit right before it.
    """
    if raw[:4] != b"PK\x03\x04":
        raise UploadRefused("This file is not a PyTorch checkpoint archive (a zip file, as "
                            "`torch.save` writes since PyTorch 1.6). Save it again with a recent PyTorch.")
    if len(raw) < LOCAL.size + CENTRAL.size + END.size:
        raise UploadRefused("This checkpoint file is cut short.")
    sig, disk, cd_disk, n_here, n, cd_size, cd_start, comment = END.unpack_from(raw, len(raw) - END.size)
    if sig != b"PK\x05\x06" or comment or disk or cd_disk or n_here != n:
        raise UploadRefused("This checkpoint file is cut short or has data after its end.")
    if n > limits.max_entries:
        raise UploadRefused(f"This archive has {n:,} entries; a checkpoint here has at most "
                            f"{limits.max_entries:,}.")
    cd_end = cd_start + cd_size
    if cd_end == len(raw) - END.size - ZIP64_LOCATOR.size - ZIP64_END.size:
        _check_zip64(raw, n, cd_size, cd_start)  # torch.save always writes both end records
    elif cd_end != len(raw) - END.size:
        raise UploadRefused("This checkpoint file is cut short or its directory is misplaced.")

    entries, pos = [], cd_start
    for _ in range(n):
        if pos + CENTRAL.size > cd_end:
            raise UploadRefused("This checkpoint file's directory is cut short.")
        (sig, _, _, flags, method, _, _, _, csize, usize, name_len, extra_len, comment_len,
         _, _, _, offset) = CENTRAL.unpack_from(raw, pos)
        name = _name(raw[pos + CENTRAL.size: pos + CENTRAL.size + name_len])
        pos += CENTRAL.size + name_len + extra_len + comment_len
        if sig != b"PK\x01\x02" or pos > cd_end:
            raise UploadRefused("This checkpoint file's directory is damaged.")
        if method != STORED or flags & 1:
            raise UploadRefused(f"The archive entry {name!r} is compressed or encrypted, which "
                                "`torch.save` never does: the file was re-packed or altered. "
                                "Upload it as the lab or `python -m gptcore.train` saved it.")
        if csize != usize:
            raise UploadRefused(f"The archive entry {name!r} declares {usize:,} bytes but "
                                f"stores {csize:,}.")
        entries.append(_local_entry(raw, offset, name, usize, cd_start))
    if pos != cd_end:
        raise UploadRefused("This checkpoint file's directory is damaged.")

    _check_names([e.name for e in entries])
    in_order = sorted(entries, key=lambda e: e.start)
    for a, b in zip(in_order, in_order[1:]):
        if b.start < a.data + a.size:
            raise UploadRefused(f"The archive entries {a.name!r} and {b.name!r} overlap.")
    total = sum(e.size for e in entries)
    if total > limits.max_bytes:
        raise UploadRefused(f"This checkpoint holds {total / MIB:,.1f} MiB; the largest model "
                            f"allowed here needs at most {limits.max_bytes / MIB:,.1f} MiB.")
    pkl = next(e for e in entries if e.name.endswith("/data.pkl"))
    pickle_memory(raw, pkl.data, pkl.data + pkl.size, limits.max_pickle_memory)
    return entries


def _check_zip64(raw: bytes, n: int, cd_size: int, cd_start: int) -> None:
    """The zip64 records must repeat the end record's numbers: two readers, one answer."""
    at = cd_start + cd_size
    sig, record_size, _, _, disk, cd_disk, n_here, n64, size64, start64 = ZIP64_END.unpack_from(raw, at)
    loc_sig, _, loc_at, _ = ZIP64_LOCATOR.unpack_from(raw, at + ZIP64_END.size)
    if (sig, loc_sig, loc_at, record_size) != (b"PK\x06\x06", b"PK\x06\x07", at, ZIP64_END.size - 12) \
            or disk or cd_disk \
            or (n_here, n64, size64, start64) != (n, n, cd_size, cd_start):
        raise UploadRefused("This checkpoint file's end records disagree: it was altered.")


def _name(raw_name: bytes) -> str:
    try:
        return raw_name.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadRefused("An archive entry's name is not readable text.") from None


def _local_entry(raw: bytes, offset: int, name: str, size: int, cd_start: int) -> Entry:
    """The entry's local header must agree with the directory, and its data end before it."""
    if offset + LOCAL.size > cd_start:
        raise UploadRefused(f"The archive entry {name!r} points outside the file.")
    sig, _, flags, method, _, _, _, csize, usize, name_len, extra_len = LOCAL.unpack_from(raw, offset)
    data = offset + LOCAL.size + name_len + extra_len
    sizes_here = not flags & 8  # bit 3: the sizes follow the data (torch.save does this)
    if sig != b"PK\x03\x04" or method != STORED or (sizes_here and (csize, usize) != (size, size)) \
            or raw[offset + LOCAL.size: offset + LOCAL.size + name_len] != name.encode("utf-8"):
        raise UploadRefused(f"The archive entry {name!r} does not match its header: the file was altered.")
    if data + size > cd_start:
        raise UploadRefused(f"The archive entry {name!r} runs past the end of the data: the file is cut short.")
    return Entry(name, offset, data, size)


def _check_names(names: list[str]) -> None:
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
            raise UploadRefused(f"The archive entry {name!r} has an absolute path.")
        if ".." in parts:
            raise UploadRefused(f"The archive entry {name!r} climbs out of its folder ('..').")
    twice = [name for name, count in Counter(names).items() if count > 1]
    if twice:
        raise UploadRefused(f"The archive holds {twice[0]!r} twice.")
    folder = names[0].split("/")[0] if names else ""
    for name in names:
        head, _, rest = name.partition("/")
        if head != folder or not re.fullmatch(r"[\w.-]+", head) or not TORCH_NAMES.fullmatch(rest):
            raise UploadRefused(f"The archive entry {name!r} is not part of a PyTorch checkpoint.")
    if f"{folder}/data.pkl" not in names:
        raise UploadRefused("This archive has no data.pkl: it is not a PyTorch checkpoint.")


# ----------------------------------------------------------------------------- the pickle

# Every instruction torch.save's protocol-2 pickler writes for a gptcore checkpoint, with the
# bytes of argument that follow it. LEN1/LEN4: a 1- or 4-byte length, then that many bytes;
# LINES: "module\nname\n". (torch's weights_only unpickler also takes EMPTY_SET, NEWOBJ and
# SHORT_BINSTRING: a checkpoint never needs them, and a set costs 216 bytes per instruction.)
LEN1, LEN4, LINES = -1, -4, -2
ARGUMENT = {
    PROTO: 1, STOP: 0, GLOBAL: LINES, REDUCE: 0, BUILD: 0, BINPERSID: 0,
    MARK: 0, TUPLE: 0, TUPLE1: 0, TUPLE2: 0, TUPLE3: 0, EMPTY_TUPLE: 0, EMPTY_LIST: 0,
    EMPTY_DICT: 0, APPEND: 0, APPENDS: 0, SETITEM: 0, SETITEMS: 0,
    BINPUT: 1, LONG_BINPUT: 4, BINGET: 1, LONG_BINGET: 4,
    BININT: 4, BININT1: 1, BININT2: 2, LONG1: LEN1, BINFLOAT: 8, BINUNICODE: LEN4,
    NONE: 0, NEWTRUE: 0, NEWFALSE: 0,
}
OPCODES = {op[0]: n for op, n in ARGUMENT.items()}
CALLS = {REDUCE[0], BUILD[0], BINPERSID[0]}  # build a tensor or an OrderedDict, load a storage
# The Python objects a gptcore checkpoint is made of: state_dicts, tensors and their storages.
GLOBALS = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2"} | {
    f"torch {dtype}Storage" for dtype in ("Float", "Half", "BFloat16", "Double", "Byte", "Long")}
# The most memory one instruction can add: a new empty dict is 64 bytes, a list 56, a memo
# entry or a dict slot with its int key under 128 (CPython 3.11, 64-bit; tested against
# tracemalloc). A call (a tensor, an OrderedDict) gets 1 KiB; text and big ints add twice
# their length (the bytes read, then the object).
OBJECT_BYTES, CALL_BYTES = 128, 1024


def pickle_memory(raw: bytes, start: int, end: int, budget: int) -> int:
    """An upper bound of the memory unpickling raw[start:end] builds; UploadRefused beyond
    `budget`, at an instruction or a Python object gptcore never writes, or when cut short.

    Walks the instructions without running them, as pickletools.genops does: 30 ms for the
    400 KB pickle of a long lab run.
    """
    pos, total = start, 0
    while pos < end:
        op = raw[pos]
        arg = OPCODES.get(op)
        if arg is None:
            raise UploadRefused(f"The checkpoint's pickle uses an instruction (0x{op:02x}) that "
                                "gptcore checkpoints never contain.")
        pos += 1
        cost = CALL_BYTES if op in CALLS else OBJECT_BYTES
        if arg == LINES:  # two lines; the longest allowed name is 32 characters
            first = raw.find(b"\n", pos, min(end, pos + 100))
            last = raw.find(b"\n", first + 1, min(end, pos + 100)) if first >= 0 else -1
            name = raw[pos:last].replace(b"\n", b" ").decode("utf-8", "replace") if last >= 0 else ""
            if name not in GLOBALS:
                raise UploadRefused(f"The checkpoint's pickle asks for {name[:80]!r}, which "
                                    "gptcore checkpoints never contain.")
            pos = last + 1
        elif arg in (LEN1, LEN4):
            length = int.from_bytes(raw[pos: pos - arg], "little")
            pos += -arg + length
            cost += 2 * length
        else:
            pos += arg
        total += cost
        if total > budget:
            raise UploadRefused(f"The checkpoint's pickle would build more than "
                                f"{budget / MIB:.0f} MiB of Python objects; a gptcore "
                                "checkpoint needs far less.")
        if op == STOP[0]:
            return total
    raise UploadRefused("The checkpoint's pickle is cut short.")
