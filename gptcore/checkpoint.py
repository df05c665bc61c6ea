"""Checkpoints: one dict saved with torch.save, loaded with `weights_only=True`, then checked.

    {"format": "gptcore-checkpoint-1", "model": state_dict, "optimizer": state_dict,
     "step": int, "model_config": GPTConfig.to_dict(), "train_config": TrainConfig fields,
     "tokenizer": Tokenizer.to_dict(), "history": [eval records], "generator": RNG state,
     "train_seconds": float, "tokens_seen": int}

Saving is atomic (a temporary file, then a rename), so a crash never leaves half a file.

Loading trusts nothing in the file. `weights_only=True` only builds tensors and plain
containers (no code runs), but the values can still be wrong: a `model` that is a list, a
tokenizer without its characters, a history entry without `val_loss`, NaN weights, a config
that claims a billion tokens. `validate_checkpoint` checks every field against what the
trainer writes and builds a new dict from the checked values, so a caller gets a checkpoint
it can use whole, or a CheckpointError saying in plain words what is wrong:

    required   format, model_config, model, tokenizer
    optional   step (0), history ([]), train_config ({}), train_seconds (0.0),
               tokens_seen (0), optimizer (None), generator (None)

Keys this version does not know are left out. One malformed history entry refuses the whole
file: gptcore never writes one, so the file was edited or damaged, and a curve with points
silently dropped would mislead the learner.
"""
from __future__ import annotations

import os
import re
from dataclasses import fields
from pathlib import Path

import torch

from gptcore.budget import num_params
from gptcore.model import GPT, AllocateOnly, GPTConfig
from gptcore.tokenizers import WORD_PATTERN, TokenizerError, Tokenizer, tokenizer_from_dict

FORMAT = "gptcore-checkpoint-1"
WEIGHT_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)
HISTORY_NUMBERS = ("elapsed_s", "tokens_per_s", "lr", "eval_s", "wall_s")  # optional per entry
ADAM_TENSORS = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
MAX_LOSS = 100.0  # nats: e^-100 for every right token is not an evaluation (e^loss is shown)
MAX_NUMBER = 1e18  # compared, never converted: float(10**400) would raise OverflowError
# A trained GPT's weights stay within a few units. Within ±1,000 every LayerNorm input of a
# model under the host's caps stays below ~1e17, so its square (the variance) fits in float32
# and the forward pass is finite; one byte flipped in an exponent gives 1e30 and NaN logits.
MAX_WEIGHT = 1e3
_MISSING = object()


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message says why in plain words."""


def save_checkpoint(ckpt: dict, path: str | Path) -> Path:
    """Write atomically: a temporary file beside `path`, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(source, max_params: int | None = None) -> dict:
    """Load a checkpoint (a path or a file object): `weights_only=True`, every field checked.

    Returns the checked dict (see the module docstring) plus "model_obj" (a GPT in eval mode)
    and "tokenizer_obj". Anything wrong raises CheckpointError.
    """
    try:
        ckpt = torch.load(source, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file gets the same plain message
        raise CheckpointError(f"This is not a readable gptcore checkpoint ({e.__class__.__name__}).") from e
    return validate_checkpoint(ckpt, max_params)


def validate_checkpoint(ckpt, max_params: int | None = None) -> dict:
    """Check every field of a loaded checkpoint; return a new dict built from checked values.

    Cheap checks come first, and no model is built until the weights are known to fit it:
    a config claiming 10**9 tokens is refused by arithmetic, not by running out of memory.
    """
    if not isinstance(ckpt, dict) or not (type(ckpt.get("format")) is str and ckpt["format"] == FORMAT):
        raise CheckpointError("This file is not a gptcore checkpoint (saved by the training lab "
                              "or `python -m gptcore.train --out`).")
    config = _model_config(ckpt.get("model_config", _MISSING))
    weights = _weights(ckpt.get("model", _MISSING), config, max_params)
    tokenizer = _tokenizer(ckpt.get("tokenizer", _MISSING), config.vocab_size)
    step = _int(ckpt.get("step", 0), "step")
    history = _history(ckpt.get("history", []))
    train_config = _train_config(ckpt.get("train_config", {}))
    train_seconds = _number(ckpt.get("train_seconds", 0.0), "train_seconds")
    tokens_seen = _int(ckpt.get("tokens_seen", 0), "tokens_seen")
    generator = _generator(ckpt.get("generator"))

    with torch.random.fork_rng(devices=[]):  # the weights are overwritten: leave the RNG alone
        model = GPT(config)
    model.load_state_dict(weights)  # keys and shapes were checked: this cannot fail
    for k, t in model.state_dict().items():  # after the cast to float32, where 1e300 is inf
        if not bool((t.abs() <= MAX_WEIGHT).all()):  # False for NaN too
            raise CheckpointError(f"The checkpoint's weight {k} holds NaN, infinite or absurdly "
                                  f"large values (beyond ±{MAX_WEIGHT:,.0f}): was it saved from a "
                                  "run that diverged?")
    optimizer = _optimizer(ckpt.get("optimizer"), model)
    return {"format": FORMAT, "model": model.state_dict(), "optimizer": optimizer,
            "step": step, "model_config": config.to_dict(), "train_config": train_config,
            "tokenizer": tokenizer.to_dict(), "history": history, "generator": generator,
            "train_seconds": train_seconds, "tokens_seen": tokens_seen,
            "model_obj": model.eval(), "tokenizer_obj": tokenizer}


# ------------------------------------------------------------------------- plain values


def _bad(where: str, problem: str) -> CheckpointError:
    return CheckpointError(f"This checkpoint is damaged or was not saved by gptcore: "
                           f"{where} {problem}.")


def _what(value) -> str:
    """How a wrong value is named in a message: 'missing', 'a list', 'a tensor'..."""
    if value is _MISSING:
        return "missing"
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _show(number) -> str:
    """A number for a message: formatting a 600-digit int as a float overflows."""
    return f"{number:.6g}" if abs(number) <= MAX_NUMBER else "an enormous number"


def _count(n: int) -> str:
    return f"{n:,}" if n <= MAX_NUMBER else "an enormous number of"


def _int(value, where: str, low: int = 0) -> int:
    if type(value) is not int:  # bool is an int to Python, never to a checkpoint
        raise _bad(where, f"should be a whole number, not {_what(value)}")
    if value < low:
        raise _bad(where, f"should be at least {low}, not {_show(value)}")
    return value


def _number(value, where: str, low: float = 0.0) -> float:
    """A finite real number >= low (every number gptcore saves is a loss, a time, a rate...)."""
    if type(value) not in (int, float):
        raise _bad(where, f"should be a number, not {_what(value)}")
    if not low <= value <= MAX_NUMBER:  # False for NaN and infinities too
        raise _bad(where, f"should be a finite number from {low:g} to {MAX_NUMBER:g}, not {_show(value)}")
    return float(value)


def _str(value, where: str) -> str:
    if type(value) is not str:
        raise _bad(where, f"should be text, not {_what(value)}")
    return value


def _list(value, where: str) -> list:
    if type(value) not in (list, tuple):
        raise _bad(where, f"should be a list, not {_what(value)}")
    return list(value)


def _dict(value, where: str) -> dict:
    """A dict with text keys (an OrderedDict, such as a state_dict, counts)."""
    if not isinstance(value, dict):
        raise _bad(where, f"should be a dictionary, not {_what(value)}")
    if not all(type(k) is str for k in value):
        raise _bad(where, "has a key that is not text")
    return value


def _tensor(value, where: str, dtypes=WEIGHT_DTYPES) -> torch.Tensor:
    """A plain, dense CPU tensor: not a view that repeats one number a billion times."""
    if type(value) not in (torch.Tensor, torch.nn.Parameter):
        raise _bad(where, f"should be a tensor, not {_what(value)}")
    if value.layout != torch.strided or value.device.type != "cpu" or not value.is_contiguous():
        raise _bad(where, "is not a plain dense tensor")
    if value.dtype not in dtypes:
        raise _bad(where, f"has dtype {value.dtype}; expected one of "
                          f"{', '.join(str(d) for d in dtypes)}")
    return value


def _finite(t: torch.Tensor, where: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise CheckpointError(f"The checkpoint's {where} holds NaN or infinite values: "
                              "was it saved from a run that diverged?")


def _typed(value, annotation: str, where: str):
    """A value of a dataclass field annotated like "int", "float | None" or "bool"."""
    allowed = {part.strip() for part in annotation.split("|")}
    if value is None and "None" in allowed:
        return None
    if type(value) is bool and "bool" in allowed:
        return value
    if type(value) is int and "int" in allowed:
        return _int(value, where)
    if type(value) in (int, float) and "float" in allowed:
        return _number(value, where)
    if type(value) is str and "str" in allowed:
        return value
    raise _bad(where, f"should be {annotation.replace('|', 'or')}, not {_what(value)}")


# --------------------------------------------------------------------- the model itself


def _model_config(d) -> GPTConfig:
    d = _dict(d, "model_config")
    for f in fields(GPTConfig):  # every default's type is the field's type (int, bool, ...)
        if f.name in d:
            _typed(d[f.name], type(f.default).__name__, f"model_config.{f.name}")
    try:
        config = GPTConfig.from_dict(d)
    except ValueError as e:
        raise CheckpointError(f"The checkpoint's model configuration is invalid: {e}") from e
    if not 1e-12 <= config.layer_norm_eps <= 1.0:  # smaller is 0 in float32: 0/0 on a flat input
        raise CheckpointError("The checkpoint's model configuration is invalid: layer_norm_eps "
                              f"must be in [1e-12, 1], not {config.layer_norm_eps:g}.")
    return config


def _weights(state, config: GPTConfig, max_params: int | None) -> dict[str, torch.Tensor]:
    """The state_dict, checked against the model its config describes, before building it."""
    state = _dict(state, "model")
    tensors = {k: _tensor(v, f"weight {k!r}") for k, v in state.items()}
    n = num_params(config)
    if max_params is not None and n > max_params:
        raise CheckpointError(f"The checkpoint's model has {_count(n)} parameters; "
                              f"the limit here is {max_params:,}.")
    held = sum(t.numel() for t in tensors.values())
    if n > held:  # checked before building even a shapes-only model of that size
        raise CheckpointError(f"The weights do not fit the model described in the checkpoint: "
                              f"it describes {_count(n)} parameters and the file holds {held:,} numbers.")
    with torch.device("meta"), AllocateOnly():  # shapes only, no memory, no draws
        expected = {k: t.shape for k, t in GPT(config).state_dict().items()}
    missing, unexpected = sorted(expected.keys() - tensors.keys()), sorted(tensors.keys() - expected.keys())
    if missing or unexpected:
        names = ", ".join((missing or unexpected)[:3])
        raise CheckpointError(f"The weights do not fit the model described in the checkpoint: "
                              f"{'missing' if missing else 'unexpected'} {names}.")
    for k, shape in expected.items():
        if tensors[k].shape != shape:
            raise CheckpointError(f"The weights do not fit the model described in the checkpoint: "
                                  f"{k} is {tuple(tensors[k].shape)}, the model needs {tuple(shape)}.")
    if config.tie_weights:  # one matrix under two names: loading would keep the second silently
        wte, head = tensors["transformer.wte.weight"], tensors["lm_head.weight"]
        if not bool(((wte == head) | (wte.isnan() & head.isnan())).all()):
            raise _bad("lm_head.weight", "should equal transformer.wte.weight (tie_weights) but differs")
    return tensors


def _optimizer(d, model: GPT) -> dict | None:
    """AdamW's state, checked against the optimizer the trainer would make for this model."""
    if d is None:
        return None
    from gptcore.trainer import TrainConfig, make_optimizer  # the trainer imports this module

    d = _dict(d, "optimizer")
    fresh = make_optimizer(model, TrainConfig())
    expected = fresh.state_dict()["param_groups"]
    params = [p for group in fresh.param_groups for p in group["params"]]  # id i -> params[i]
    groups = _list(d.get("param_groups", _MISSING), "optimizer.param_groups")
    if len(groups) != len(expected):
        raise _bad("optimizer.param_groups", f"has {len(groups)} groups, not {len(expected)}")
    for i, (group, want) in enumerate(zip(groups, expected)):
        group = _dict(group, f"optimizer.param_groups[{i}]")
        ids = group.get("params")
        if type(ids) is not list or not all(type(x) is int for x in ids) or ids != want["params"]:
            raise _bad(f"optimizer.param_groups[{i}].params", "does not list this model's parameters")
        _number(group.get("lr", _MISSING), f"optimizer.param_groups[{i}].lr")
        for key, value in group.items():
            values = value if type(value) is tuple else (value,)  # betas is a pair
            if key != "params" and not all(v is None or type(v) is bool or type(v) in (int, float)
                                           and abs(v) <= MAX_NUMBER for v in values):
                raise _bad(f"optimizer.param_groups[{i}].{key}", f"should be a setting, not {_what(value)}")
    state = d.get("state", _MISSING)
    if not isinstance(state, dict):
        raise _bad("optimizer.state", f"should be a dictionary, not {_what(state)}")
    for pid, entry in state.items():
        if type(pid) is not int or not 0 <= pid < len(params):
            raise _bad("optimizer.state", f"names a parameter that does not exist "
                       f"({_show(pid) if type(pid) is int else _what(pid)})")
        entry = _dict(entry, f"optimizer.state[{pid}]")
        for key, value in entry.items():
            where = f"optimizer.state[{pid}].{key}"
            if key == "step":  # a one-number tensor (or a plain number in older PyTorch)
                if isinstance(value, torch.Tensor):
                    value = _tensor(value, where, WEIGHT_DTYPES + (torch.int64,))
                    value = value.item() if value.numel() == 1 else value
                _number(value, where)
            elif key in ADAM_TENSORS:
                if _tensor(value, where).shape != params[pid].shape:
                    raise _bad(where, f"has shape {tuple(value.shape)}, not {tuple(params[pid].shape)}")
                _finite(value, where)
            else:
                raise _bad(where, "is not part of AdamW's state")
    optimizer = {"state": state, "param_groups": groups}
    try:  # the real test that a run could resume from it
        fresh.load_state_dict(optimizer)
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise _bad("optimizer", f"does not fit this model ({e})") from e
    return optimizer


def _generator(t) -> torch.Tensor | None:
    if t is None:
        return None
    t = _tensor(t, "generator", dtypes=(torch.uint8,))
    if t.dim() != 1 or t.numel() > 1 << 16:
        raise _bad("generator", f"has shape {tuple(t.shape)}; a random generator's state is a short list of bytes")
    try:
        torch.Generator().set_state(t)
    except RuntimeError as e:
        raise _bad("generator", "is not a random generator's state") from e
    return t


# ------------------------------------------------------------------ tokenizer, history, run


def _tokenizer(d, vocab_size: int) -> Tokenizer:
    """Rebuild the tokenizer once its record is known to be whole and to match the model."""
    if d is _MISSING or d is None:
        raise CheckpointError("This checkpoint has no tokenizer, so the app cannot turn text into "
                              "tokens for its model or read what it writes: it is not usable here. "
                              "Save it with its tokenizer (the training lab and `python -m "
                              "gptcore.train` both do).")
    d = _dict(d, "tokenizer")
    kind = _str(d.get("kind", _MISSING), "tokenizer.kind")
    if kind == "char":
        chars = _list(d.get("chars", _MISSING), "tokenizer.chars")
        _same_vocab(len(chars) + 1, vocab_size)  # + <unk>
        chars = [_str(c, "tokenizer.chars[…]") for c in chars]
        if any(len(c) != 1 for c in chars) or len(set(chars)) != len(chars):
            raise _bad("tokenizer.chars", "should be distinct single characters")
        record = {"kind": kind, "chars": chars}
    elif kind == "word":
        words = _list(d.get("words", _MISSING), "tokenizer.words")
        _same_vocab(len(words) + 2, vocab_size)  # + <pad>, <unk>
        words = [_str(w, "tokenizer.words[…]") for w in words]
        if not all(re.fullmatch(WORD_PATTERN, w) and w not in ("<pad>", "<unk>") for w in words) \
                or len(set(words)) != len(words):
            raise _bad("tokenizer.words", "should be distinct words or punctuation marks")
        record = {"kind": kind, "words": words}
    elif kind == "bpe":
        record = _bpe_record(d, vocab_size)
    elif kind == "gpt2":
        record = {"kind": kind}
    else:
        raise _bad("tokenizer.kind", f"should be char, word, bpe or gpt2, not {kind!r}")
    try:
        tokenizer = tokenizer_from_dict(record)
    except TokenizerError as e:
        raise CheckpointError(f"The checkpoint's tokenizer cannot be rebuilt here: {e}") from e
    _same_vocab(tokenizer.vocab_size, vocab_size)
    return tokenizer


def _same_vocab(n_tokens: int, vocab_size: int) -> None:
    """The model reads and writes ids 0..vocab_size-1: the tokenizer must name each one."""
    if n_tokens != vocab_size:
        raise CheckpointError(f"The checkpoint's tokenizer has {n_tokens:,} tokens but its model "
                              f"has {vocab_size:,}: they were not trained together.")


def _bpe_record(d: dict, vocab_size: int) -> dict:
    """Byte ids, merges and special tokens that give every id 0..V-1 exactly once, each merge
    joining two tokens that already exist (what BPETokenizer's constructor relies on)."""
    byte_ids = [_int(i, "tokenizer.byte_ids[…]") for i in _list(d.get("byte_ids", _MISSING), "tokenizer.byte_ids")]
    merges = _list(d.get("merges", _MISSING), "tokenizer.merges")
    specials = _dict(d.get("special_tokens", _MISSING), "tokenizer.special_tokens")
    if len(byte_ids) != 256:
        raise _bad("tokenizer.byte_ids", f"should list 256 ids, not {len(byte_ids)}")
    _same_vocab(256 + len(merges) + len(specials), vocab_size)  # before looking at each merge
    triples = []
    for i, m in enumerate(merges):
        m = _list(m, f"tokenizer.merges[{i}]")
        if len(m) != 3:
            raise _bad(f"tokenizer.merges[{i}]", "should be [left id, right id, new id]")
        triples.append(tuple(_int(x, f"tokenizer.merges[{i}]") for x in m))
    special_ids = [_int(i, f"tokenizer.special_tokens[{t!r}]") for t, i in specials.items()]
    if "" in specials:
        raise _bad("tokenizer.special_tokens", "has an empty token")
    if sorted(byte_ids + [n for _, _, n in triples] + special_ids) != list(range(vocab_size)):
        raise _bad("tokenizer", f"should number its tokens 0 to {vocab_size - 1}, each once")
    if len({(a, b) for a, b, _ in triples}) != len(triples):
        raise _bad("tokenizer.merges", "lists the same pair twice")
    known = set(byte_ids)
    for a, b, n in sorted(triples, key=lambda m: m[2]):
        if a not in known or b not in known:
            raise _bad("tokenizer.merges", f"makes token {n} from a token that does not exist yet")
        known.add(n)
    return {"kind": "bpe", "merges": [list(m) for m in triples], "byte_ids": byte_ids,
            "special_tokens": dict(specials)}


def _history(entries) -> list[dict]:
    """Evaluation records: iter, train_loss and val_loss always; the other numbers and the
    text sample when present; anything else (an attention snapshot) is left out."""
    checked = []
    for i, entry in enumerate(_list(entries, "history")):
        entry = _dict(entry, f"history[{i}]")
        record = {"iter": _int(entry.get("iter", _MISSING), f"history[{i}].iter")}
        for key in ("train_loss", "val_loss"):
            record[key] = _number(entry.get(key, _MISSING), f"history[{i}].{key}")
            if record[key] > MAX_LOSS:
                raise _bad(f"history[{i}].{key}", f"should be a cross-entropy of at most {MAX_LOSS:g} "
                                                  f"nats, not {record[key]:g}")
        for key in HISTORY_NUMBERS:
            if key in entry:
                record[key] = _number(entry[key], f"history[{i}].{key}")
        if "sample" in entry:
            record["sample"] = _str(entry["sample"], f"history[{i}].sample")
        checked.append(record)
    return checked


def _train_config(d) -> dict:
    """The TrainConfig fields present, each of its annotated type, accepted by TrainConfig."""
    from gptcore.trainer import TrainConfig  # the trainer imports this module

    d = _dict(d, "train_config")
    checked = {f.name: _typed(d[f.name], f.type, f"train_config.{f.name}")
               for f in fields(TrainConfig) if f.name in d}
    try:
        TrainConfig(**checked)
    except ValueError as e:
        raise CheckpointError(f"The checkpoint's training settings are invalid: {e}") from e
    return checked
