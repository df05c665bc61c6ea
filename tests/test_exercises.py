"""gptcore.exercises: every checker passes the book's answer and other correct answers, fails
the starter, and names the classic mistakes; errors point at the learner's lines."""
import dataclasses
import json
import math
import time

import pytest
import torch

from gptcore.exercises import (BY_ID, EXERCISES, QUESTIONS, STAGES, CheckResult, check,
                               for_lesson, questions_for_lesson)


def run(exercise_id, source):
    result = check(exercise_id, source)
    assert result.stage in STAGES
    assert result.passed == (result.stage == "passed")
    assert "gptcore/exercises" not in result.feedback and "Traceback" not in result.feedback
    for row in result.table:
        assert set(row) == {"input", "yours", "expected"}
        assert all(isinstance(v, str) and len(v) < 300 for v in row.values())
    return result


# ------------------------------------------------------------------- correct, written otherwise
ALTERNATIVES = {
    "generate.top_k_filter": '''
import torch

def top_k_filter(logits, k):
    out = logits.clone()
    for r in range(logits.shape[0]):
        kth = sorted(logits[r].tolist(), reverse=True)[k - 1]
        for j in range(logits.shape[1]):
            if logits[r, j] < kth:
                out[r, j] = float("-inf")
    return out
''',
    "generate.top_p_filter": '''
import torch

def top_p_filter(logits, p):
    out = logits.clone()
    for r in range(logits.shape[0]):
        probs = torch.softmax(logits[r].double(), dim=0).tolist()
        order = sorted(range(len(probs)), key=lambda j: -probs[j])
        total = 0.0
        for rank, j in enumerate(order):
            if rank > 0 and total >= p:
                out[r, j] = float("-inf")
            total += probs[j]
    return out
''',
    "tokenizers.merge_pair": '''
def merge_pair(ids, pair, new_id):
    out, skip = [], False
    for i, t in enumerate(ids):
        if skip:
            skip = False
        elif tuple(ids[i:i + 2]) == tuple(pair):
            out.append(new_id)
            skip = True
        else:
            out.append(t)
    return tuple(out)
''',
    "data.SlidingWindowDataset": '''
class SlidingWindowDataset:
    def __init__(self, ids, block_size, stride):
        self.ids = [int(t) for t in ids]
        self.block_size, self.stride = block_size, stride
        self.n, start = 0, 0
        while start + block_size + 1 <= len(self.ids):
            self.n += 1
            start += stride

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        s = i * self.stride
        return self.ids[s:s + self.block_size], self.ids[s + 1:s + self.block_size + 1]
''',
    "data.train_val_split": '''
def train_val_split(ids, val_fraction):
    n_train = int(len(ids) * (1 - val_fraction))
    return list(ids[:n_train]), list(ids[n_train:])
''',
    "data.random_batch": '''
import torch

def random_batch(ids, block_size, batch_size, generator=None):
    xs, ys = [], []
    for _ in range(batch_size):
        s = int(torch.randint(0, len(ids) - block_size, (1,), generator=generator))
        xs.append(ids[s:s + block_size])
        ys.append(ids[s + 1:s + block_size + 1])
    return torch.stack(xs), torch.stack(ys)
''',
    "attention.causal_mask": '''
import torch

def causal_mask(T):
    return torch.triu(torch.ones(T, T), diagonal=1).logical_not()
''',
    "attention.scaled_dot_product_attention": '''
import torch

def scaled_dot_product_attention(q, k, v, mask=None, scale=True):
    scores = torch.einsum("...qd,...kd->...qk", q.double(), k.double())
    if scale:
        scores = scores / q.shape[-1] ** 0.5
    if mask is not None:
        scores = scores.masked_fill(mask == 0, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = torch.where(mask.any(dim=-1, keepdim=True), weights, torch.zeros_like(weights))
    return weights @ v.double(), weights
''',
    "attention.split_heads": '''
import torch

def split_heads(x, n_head):
    hs = x.shape[-1] // n_head
    return torch.stack([x[:, :, h * hs:(h + 1) * hs] for h in range(n_head)], dim=1)
''',
    "attention.merge_heads": '''
import torch

def merge_heads(x):
    return torch.cat([x[:, h] for h in range(x.shape[1])], dim=-1)
''',
    "model.layer_norm": '''
import torch

def layer_norm(x, weight, bias, eps=1e-5):
    x = x.double()
    mu = x.sum(-1, keepdim=True) / x.shape[-1]
    var = ((x - mu) ** 2).sum(-1, keepdim=True) / x.shape[-1]
    y = (x - mu) * torch.rsqrt(var + eps) * weight.double()
    if bias is not None:
        y = y + bias.double()
    return y
''',
    "model.gelu": '''
import torch.nn.functional as F

def gelu(x):
    return F.gelu(x, approximate="tanh")
''',
    "model.Block": '''
import math
import torch
import torch.nn as nn
from torch.nn import functional as F


def new_gelu(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class CausalSelfAttention(nn.Module):  # nanoGPT's, with its mask buffer called "bias"
    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.register_buffer("bias", torch.tril(torch.ones(config.block_size, config.block_size))
                             .view(1, 1, config.block_size, config.block_size))

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(self.bias[:, :, :T, :T] == 0, float("-inf"))
        y = F.softmax(att, dim=-1) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x):
        return self.c_proj(new_gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))
''',
    "train.train_step": '''
import torch

def train_step(model, optimizer, x, y, grad_clip=1.0):
    for p in model.parameters():
        p.grad = None
    logits, loss = model(x, y)
    loss.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=grad_clip)
    optimizer.step()
    return float(loss.detach())
''',
    "train.perplexity": '''
import math

def perplexity(mean_loss):
    return math.e ** mean_loss
''',
}

MORE_ALTERNATIVES = [
    ("attention.causal_mask", "import torch\ndef causal_mask(T):\n"
                              "    return torch.tensor([[j <= i for j in range(T)] for i in range(T)])\n"),
    ("model.layer_norm", "import torch.nn.functional as F\ndef layer_norm(x, weight, bias, eps=1e-5):\n"
                         "    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)\n"),
    ("attention.split_heads", "def split_heads(x, n_head):\n    B, T, C = x.shape\n"
                              "    return x.reshape(B, T, n_head, -1).permute(0, 2, 1, 3)\n"),
    ("model.Block", BY_ID["model.Block"].solution.replace(
        "scores = q @ k.transpose(-2, -1) / math.sqrt(hs)  # (B, nh, T, T)\n"
        "        mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()\n"
        "        weights = torch.softmax(scores.masked_fill(~mask, float(\"-inf\")), dim=-1)\n"
        "        y = weights @ v  # (B, nh, T, hs)",
        "y = F.scaled_dot_product_attention(q, k, v, is_causal=True)")),
    ("generate.top_k_filter", "import torch\ndef top_k_filter(logits, k):\n"
                              "    logits = logits.clone()\n"
                              "    v, _ = torch.topk(logits, min(k, logits.size(-1)))\n"
                              "    logits[logits < v[:, [-1]]] = -float('Inf')\n    return logits\n"),
]


# ------------------------------------------------------------------------------- classic mistakes
MISTAKES = [
    # (exercise, what the learner wrote, a word the feedback must contain)
    ("generate.top_k_filter", '''
import torch
def top_k_filter(logits, k):
    values = logits.sort(dim=-1, descending=True).values
    values[..., k:] = float("-inf")
    return values
''', "sorted"),
    ("generate.top_k_filter", '''
import torch
def top_k_filter(logits, k):
    idx = torch.topk(logits, k, dim=-1).indices
    out = torch.full_like(logits, float("-inf"))
    return out.scatter(-1, idx, logits.gather(-1, idx))
''', "tie"),
    ("generate.top_k_filter", '''
import torch
def top_k_filter(logits, k):
    kth = torch.topk(logits, k, dim=-1).values[..., -1, None]
    return logits.masked_fill(logits < kth, 0.0)
''', "exp(0)"),
    ("generate.top_p_filter", '''
import torch
def top_p_filter(logits, p):
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, dim=-1)
    drop_sorted = probs.cumsum(-1) > p
    drop_sorted[..., 0] = False
    return logits.masked_fill(drop_sorted.scatter(-1, order, drop_sorted), float("-inf"))
''', "crosses p"),
    ("generate.top_p_filter", '''
import torch
def top_p_filter(logits, p):
    probs = torch.softmax(logits, dim=-1)
    before = probs.cumsum(-1) - probs
    return logits.masked_fill(before >= p, float("-inf"))
''', "sort"),
    ("generate.top_p_filter", '''
import torch
def top_p_filter(logits, p):
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, dim=-1)
    drop = probs.cumsum(-1) - probs >= p
    drop[..., 0] = False
    return sorted_logits.masked_fill(drop, float("-inf"))
''', "sorted order"),
    ("tokenizers.merge_pair", '''
def merge_pair(ids, pair, new_id):
    out = []
    for i in range(len(ids)):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
        elif i > 0 and (ids[i - 1], ids[i]) == tuple(pair):
            continue
        else:
            out.append(ids[i])
    return out
''', "overlap"),
    ("tokenizers.merge_pair", '''
def merge_pair(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids) - 1:
        if (ids[i], ids[i + 1]) == tuple(pair):
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
''', "last id"),
    ("data.SlidingWindowDataset", '''
class SlidingWindowDataset:
    def __init__(self, ids, block_size, stride):
        self.ids, self.block_size, self.stride = ids, block_size, stride
    def __len__(self):
        return max(0, (len(self.ids) - self.block_size) // self.stride + 1)
    def __getitem__(self, i):
        s = i * self.stride
        return self.ids[s:s + self.block_size], self.ids[s + 1:s + self.block_size + 1]
''', "off by one"),
    ("data.SlidingWindowDataset", '''
class SlidingWindowDataset:
    def __init__(self, ids, block_size, stride):
        self.ids, self.block_size, self.stride = ids, block_size, stride
    def __len__(self):
        return max(0, (len(self.ids) - self.block_size - 1) // self.stride + 1)
    def __getitem__(self, i):
        s = i * self.stride
        return self.ids[s:s + self.block_size], self.ids[s:s + self.block_size]
''', "shifted"),
    ("data.SlidingWindowDataset", '''
class SlidingWindowDataset:
    def __init__(self, ids, block_size, stride):
        self.ids, self.block_size, self.stride = ids, block_size, stride
    def __len__(self):
        return (len(self.ids) - self.block_size - 1) // self.stride + 1
    def __getitem__(self, i):
        s = i * self.stride
        return self.ids[s:s + self.block_size], self.ids[s + 1:s + self.block_size + 1]
''', "0 windows"),
    ("data.train_val_split", '''
import torch
def train_val_split(ids, val_fraction):
    ids = torch.as_tensor(ids)
    ids = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))]
    n_val = round(len(ids) * val_fraction)
    return ids[:len(ids) - n_val], ids[len(ids) - n_val:]
''', "leak"),
    ("data.train_val_split", '''
def train_val_split(ids, val_fraction):
    n_val = round(len(ids) * val_fraction)
    return ids[n_val:], ids[:n_val]
''', "first"),
    ("data.train_val_split", '''
def train_val_split(ids, val_fraction):
    n_val = round(len(ids) * val_fraction)
    return ids[:-n_val], ids[-n_val:]
''', "ids[:-0]"),
    ("data.random_batch", '''
import torch
def random_batch(ids, block_size, batch_size, generator=None):
    starts = torch.randint(len(ids) - block_size - 1, (batch_size,), generator=generator)
    x = torch.stack([ids[s:s + block_size] for s in starts])
    y = torch.stack([ids[s + 1:s + block_size + 1] for s in starts])
    return x, y
''', "randint"),
    ("data.random_batch", '''
import torch
def random_batch(ids, block_size, batch_size, generator=None):
    starts = torch.randint(len(ids) - block_size, (batch_size,))
    x = torch.stack([ids[s:s + block_size] for s in starts])
    y = torch.stack([ids[s + 1:s + block_size + 1] for s in starts])
    return x, y
''', "generator"),
    ("attention.causal_mask", "import torch\ndef causal_mask(T):\n"
                              "    return torch.ones(T, T, dtype=torch.bool).triu()\n", "reversed"),
    ("attention.causal_mask", "import torch\ndef causal_mask(T):\n"
                              "    return torch.ones(T, T).tril()\n", "bool"),
    ("attention.causal_mask", "import torch\ndef causal_mask(T):\n"
                              "    return torch.ones(T, T, dtype=torch.bool).triu(1)\n", "inverted"),
    ("attention.scaled_dot_product_attention", '''
import torch
def scaled_dot_product_attention(q, k, v, mask=None, scale=True):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    if mask is not None:
        weights = weights.nan_to_num(0.0)
    return weights @ v, weights
''', "√d_k"),
    ("attention.scaled_dot_product_attention", '''
import math, torch
def scaled_dot_product_attention(q, k, v, mask=None, scale=True):
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
''', "NaN"),
    ("attention.scaled_dot_product_attention", '''
import math, torch
def scaled_dot_product_attention(q, k, v, mask=None, scale=True):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
    weights = torch.softmax(scores, dim=-2)
    return weights @ v, weights
''', "wrong axis"),
    ("attention.scaled_dot_product_attention", '''
import math, torch
def scaled_dot_product_attention(q, k, v, mask=None, scale=True):
    scores = q @ k.transpose(-2, -1)
    if scale:
        scores = scores / math.sqrt(q.size(-1))
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)
    return weights @ v, weights
''', "inverted"),
    ("attention.split_heads", "def split_heads(x, n_head):\n    B, T, C = x.shape\n"
                              "    return x.view(B, n_head, T, C // n_head)\n", "transpose"),
    ("attention.split_heads", "def split_heads(x, n_head):\n    B, T, C = x.shape\n"
                              "    return x.view(B, T, C // n_head, n_head).permute(0, 3, 1, 2)\n",
     "consecutive"),
    ("attention.split_heads", "def split_heads(x, n_head):\n    B, T, C = x.shape\n"
                              "    return x.view(B, T, n_head, C // n_head)\n", "transpose"),
    ("attention.merge_heads", "def merge_heads(x):\n    B, nh, T, hs = x.shape\n"
                              "    return x.reshape(B, T, nh * hs)\n", "transpose"),
    ("attention.merge_heads", "def merge_heads(x):\n    B, nh, T, hs = x.shape\n"
                              "    return x.transpose(1, 2).view(B, T, nh * hs)\n", "contiguous"),
    ("model.layer_norm", '''
import torch
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    std = x.std(-1, keepdim=True, unbiased=False)
    y = (x - mean) / (std + eps) * weight
    return y + bias if bias is not None else y
''', "outside the square root"),
    ("model.layer_norm", '''
import torch
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True)
    y = (x - mean) / torch.sqrt(var + eps) * weight
    return y + bias if bias is not None else y
''', "unbiased"),
    ("model.layer_norm", '''
import torch
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, unbiased=False)
    y = (x - mean) / torch.sqrt(var + eps)
    return y + bias if bias is not None else y
''', "weight"),
    ("model.gelu", "import torch.nn.functional as F\ndef gelu(x):\n    return F.gelu(x)\n",
     "tanh approximation"),
    ("model.gelu", "import torch\ndef gelu(x):\n    return torch.relu(x)\n", "ReLU"),
    ("model.gelu", "import torch\ndef gelu(x):\n    return x * torch.sigmoid(1.702 * x)\n",
     "sigmoid"),
    ("train.train_step", '''
import torch
def train_step(model, optimizer, x, y, grad_clip=1.0):
    logits, loss = model(x, y)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad()
    return loss
''', "float"),
    ("train.train_step", '''
import torch
def train_step(model, optimizer, x, y, grad_clip=1.0):
    logits, loss = model(x, y)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()
''', "never zeroed"),
    ("train.train_step", '''
def train_step(model, optimizer, x, y, grad_clip=1.0):
    optimizer.zero_grad()
    logits, loss = model(x, y)
    loss.backward()
    optimizer.step()
    return loss.item()
''', "clipping"),
    ("train.train_step", '''
import torch
def train_step(model, optimizer, x, y, grad_clip=1.0):
    logits, loss = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()
''', "grad_clip=0"),
    ("train.perplexity", "def perplexity(mean_loss):\n    return 10 ** mean_loss\n", "nats"),
    ("train.perplexity", "def perplexity(mean_loss):\n    return 2 ** mean_loss\n", "bits"),
    ("train.perplexity", "import torch\ndef perplexity(mean_loss):\n"
                         "    return torch.exp(torch.tensor(mean_loss))\n", "float"),
]


def _block_source(forward=None, mlp=None, attention_mask=True, fused=True):
    """The reference Block solution with one part rewritten, for Block's mistakes."""
    source = BY_ID["model.Block"].solution
    if forward:
        source = source.replace("        x = x + self.attn(self.ln_1(x))  # pre-LN: normalise, attend, "
                                "add back (the residual)\n        x = x + self.mlp(self.ln_2(x))\n",
                                forward)
    if mlp:
        source = source.replace('F.gelu(self.c_fc(x), approximate="tanh")', mlp)
    if not attention_mask:
        source = source.replace('scores.masked_fill(~mask, float("-inf"))', "scores")
    if not fused:
        source = source.replace(
            "self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v",
            "self.q = nn.Linear(config.n_embd, config.n_embd)\n"
            "        self.k = nn.Linear(config.n_embd, config.n_embd)\n"
            "        self.v = nn.Linear(config.n_embd, config.n_embd)")
        source = source.replace("self.c_attn(x).split(C, dim=2)", "self.q(x), self.k(x), self.v(x)")
    assert source != BY_ID["model.Block"].solution
    return source


MISTAKES += [
    ("model.Block", _block_source(forward="        x = self.ln_1(x + self.attn(x))\n"
                                          "        x = self.ln_2(x + self.mlp(x))\n"), "post-LN"),
    ("model.Block", _block_source(forward="        x = self.attn(self.ln_1(x))\n"
                                          "        x = self.mlp(self.ln_2(x))\n"), "residual"),
    ("model.Block", _block_source(forward="        x = x + self.attn(self.ln_1(x))\n"
                                          "        x = self.mlp(self.ln_2(x))\n"), "residual"),
    ("model.Block", _block_source(attention_mask=False), "not causal"),
    ("model.Block", _block_source(mlp="F.relu(self.c_fc(x))"), "ReLU"),
    ("model.Block", _block_source(mlp="F.gelu(self.c_fc(x))"), "tanh"),
    ("model.Block", _block_source(fused=False), "c_attn"),
]


# ---------------------------------------------------------------------------------------- tests
def test_registry_in_course_order():
    assert len(EXERCISES) >= 13
    assert [e.lesson for e in EXERCISES] == sorted(e.lesson for e in EXERCISES)
    assert set(BY_ID) >= set(ALTERNATIVES)
    for n in range(1, 6):
        assert for_lesson(n), n
        assert all(e.lesson == n for e in for_lesson(n))
    for e in EXERCISES:
        assert 2 <= len(e.hints) <= 3 and e.statement and e.title
        assert e.kind in ("function", "class")
        assert "TODO" in e.starter
        compile(e.starter, "<starter>", "exec")
        with pytest.raises(dataclasses.FrozenInstanceError):
            e.id = "x"


def test_the_course_table_of_contents_lists_every_exercise_and_question_in_order():
    from gptcore.course import EXERCISE_IDS, QUESTION_IDS

    for n in range(1, 6):
        assert EXERCISE_IDS[n] == tuple(e.id for e in for_lesson(n)), n
        assert QUESTION_IDS[n] == tuple(q.id for q in QUESTIONS if q.lesson == n), n
    assert set(EXERCISE_IDS) == set(QUESTION_IDS) == {1, 2, 3, 4, 5}


def test_references_resolve_while_train_moves_to_trainer():
    exercise = BY_ID["train.train_step"]
    assert exercise.reference_location() in ("gptcore.trainer.train_step",
                                             "gptcore.train.train_step")
    assert exercise.reference_object().__name__ == "train_step"
    assert all(callable(e.reference_object()) for e in EXERCISES)


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)
def test_the_books_solution_passes(exercise):
    source = exercise.solution
    assert f"{exercise.name}" in source
    result = run(exercise.id, source)
    assert result.passed, (result.feedback, result.table)
    assert result.feedback and result.line is None


@pytest.mark.parametrize("exercise", EXERCISES, ids=lambda e: e.id)
def test_the_starter_fails_with_feedback(exercise):
    result = run(exercise.id, exercise.starter)
    assert not result.passed and result.stage != "passed"
    assert len(result.feedback) > 20


@pytest.mark.parametrize("exercise_id", sorted(ALTERNATIVES))
def test_a_correct_solution_written_otherwise_passes(exercise_id):
    result = run(exercise_id, ALTERNATIVES[exercise_id])
    assert result.passed, (result.feedback, result.table)


@pytest.mark.parametrize("exercise_id, source", MORE_ALTERNATIVES,
                         ids=[f"{e}-{i}" for i, (e, _) in enumerate(MORE_ALTERNATIVES)])
def test_more_correct_solutions_pass(exercise_id, source):
    result = run(exercise_id, source)
    assert result.passed, (result.feedback, result.table)


@pytest.mark.parametrize("exercise_id, source, keyword", MISTAKES,
                         ids=[f"{e}-{k}" for e, _, k in MISTAKES])
def test_classic_mistakes_are_named(exercise_id, source, keyword):
    result = run(exercise_id, source)
    assert not result.passed
    assert keyword.lower() in result.feedback.lower(), (result.stage, result.feedback)
    assert result.stage in ("mistake", "shape", "numbers", "runs")


def test_every_exercise_has_two_named_mistakes():
    counts = {}
    for exercise_id, _, _ in MISTAKES:
        counts[exercise_id] = counts.get(exercise_id, 0) + 1
    assert all(counts.get(e.id, 0) >= 2 for e in EXERCISES), counts


def test_syntax_error_reports_its_line():
    result = run("generate.top_k_filter", "import torch\n\ndef top_k_filter(logits, k)\n"
                                          "    return logits\n")
    assert result.stage == "syntax" and result.line == 3 and not result.passed


def test_exception_in_the_learners_function_points_at_their_line():
    source = ("import torch\n\n\ndef top_k_filter(logits, k):\n"
              "    kth = torch.topk(logits, k).values[..., -1, None]\n"
              "    return logits.masked_fill(logits < kth, undefined_name)\n")
    result = run("generate.top_k_filter", source)
    assert result.stage == "runs" and result.line == 6
    assert "NameError" in result.feedback and "undefined_name" in result.feedback
    assert "line 6" in result.feedback


def test_exception_deep_in_the_learners_code_and_in_torch():
    source = ("import torch\n\ndef helper(x):\n    return x @ x\n\n"
              "def causal_mask(T):\n    return helper(torch.ones(T, T + 1)).bool()\n")
    result = run("attention.causal_mask", source)
    assert result.stage == "runs" and result.line == 4
    assert "RuntimeError" in result.feedback and "matmul" in result.feedback


def test_exception_while_defining_and_exit_are_caught():
    result = run("train.perplexity", "import math\nx = 1 / 0\n")
    assert result.stage == "runs" and result.line == 2 and "ZeroDivisionError" in result.feedback
    result = run("train.perplexity", "import sys\ndef perplexity(loss):\n    sys.exit(3)\n")
    assert result.stage == "runs" and result.line == 3


def test_a_missing_or_wrong_kind_of_name():
    result = run("generate.top_k_filter", "def topk_filter(logits, k):\n    return logits\n")
    assert result.stage == "name" and "`top_k_filter`" in result.feedback
    result = run("data.SlidingWindowDataset",
                 "def SlidingWindowDataset(ids, b, s):\n    return []\n")
    assert result.stage == "name" and "class" in result.feedback
    result = run("model.gelu", "class gelu:\n    pass\n")
    assert result.stage == "name" and "function" in result.feedback


def test_learner_state_changes_do_not_leak_out():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    run("train.perplexity", "import torch\ntorch.set_default_dtype(torch.float64)\n"
                            "torch.set_grad_enabled(False)\ntorch.manual_seed(0)\n"
                            "import math\ndef perplexity(l):\n    return math.exp(l)\n")
    assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    assert torch.equal(torch.rand(1), expected)


def test_check_result_round_trips_through_json():
    result = run("attention.causal_mask", "import torch\ndef causal_mask(T):\n"
                                          "    return torch.ones(T, T, dtype=torch.bool).triu()\n")
    assert result.table
    back = CheckResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back == result
    passed = run("train.perplexity", BY_ID["train.perplexity"].solution)
    assert CheckResult.from_dict(json.loads(json.dumps(passed.to_dict()))) == passed


def test_block_variants_default_to_the_books_block():
    from gptcore.exercises.lesson4 import _config, block_variant
    from gptcore.model import Block

    torch.manual_seed(0)
    block = Block(_config()).eval()
    with torch.no_grad():
        for p in block.parameters():
            p.add_(torch.randn_like(p) * 0.3)
        x = torch.randn(2, 6, 16)
        torch.testing.assert_close(block_variant(block, x), block(x)[0], rtol=1e-5, atol=1e-5)


def test_train_step_check_clips_every_step():
    """The clipping mistake is only visible if the gradient norm exceeds the checker's clip."""
    from gptcore.exercises.lesson5 import TinyLM, _batches

    model = TinyLM()
    for x, y in _batches():
        model.zero_grad()
        model(x, y)[1].backward()
        norm = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).norm()
        assert norm > 0.5


def test_checks_are_quick():
    sources = {e.id: e.solution for e in EXERCISES}
    for e in EXERCISES:
        check(e.id, sources[e.id])  # warm up
    times = []
    for e in EXERCISES:
        start = time.perf_counter()
        check(e.id, sources[e.id])
        times.append(time.perf_counter() - start)
    assert sorted(times)[len(times) // 2] < 0.25 and max(times) < 2.5, times


# ------------------------------------------------------------------------------------ questions
def test_questions_cover_every_lesson():
    assert len(QUESTIONS) >= 5
    assert [q.lesson for q in QUESTIONS] == sorted(q.lesson for q in QUESTIONS)
    for n in range(1, 6):
        assert questions_for_lesson(n)
    for q in QUESTIONS:
        answer = q.answer()
        assert q.prompt and q.explanation()
        if q.options:
            assert isinstance(answer, int) and 0 <= answer < len(q.options)
            assert q.is_correct(answer) and not q.is_correct((answer + 1) % len(q.options))
        else:
            assert q.is_correct(answer) and not q.is_correct(answer * 2 + 1)


def _question(qid):
    return next(q for q in QUESTIONS if q.id == qid)


def test_question_answers_match_an_independent_computation():
    from gptcore.generate import top_k_filter

    # lesson 1: top-k = 1 keeps exactly the argmax, so it is greedy
    logits = torch.randn(10, 30, generator=torch.Generator().manual_seed(1))
    kept = torch.isfinite(top_k_filter(logits, 1))
    assert torch.equal(kept.float().argmax(-1), logits.argmax(-1)) and (kept.sum(-1) == 1).all()
    q = _question("generate.top_k_one")
    assert "greedy" in q.options[q.answer()]

    probs = [0.45, 0.25, 0.15, 0.1, 0.05]
    total, n = 0.0, 0
    for p in probs:
        if n and total >= 0.75:
            break
        total, n = total + p, n + 1
    assert _question("generate.nucleus_size").answer() == n == 3

    # lesson 2
    assert _question("data.window_count").answer() == (1000 - 64 - 1) // 32 + 1
    assert _question("tokenizers.merge_length").answer() == len([256, 256, 97])

    # lesson 3: without scaling, the largest weight grows with d_k
    g = torch.Generator().manual_seed(5)
    largest = []
    for d_k in (4, 256):
        q_, k_ = torch.randn(16, d_k, generator=g), torch.randn(16, d_k, generator=g)
        largest.append(torch.softmax(q_ @ k_.T, dim=-1).max(-1).values.mean().item())
    assert largest[1] > largest[0]
    q = _question("attention.saturation")
    assert "grows" in q.options[q.answer()]
    q = _question("attention.head_shape")
    assert q.options[q.answer()] == str((2, 8, 10, 64 // 8))

    # lesson 4
    C = 768
    assert _question("model.block_params").answer() == 12 * C * C + 13 * C
    ln = torch.nn.LayerNorm(4)
    mean = ln(torch.tensor([[1.0, 2.0, 3.0, 10.0]])).mean().item()
    assert abs(_question("model.layer_norm_mean").answer() - abs(mean)) < 1e-5

    # lesson 5
    assert abs(_question("train.untrained_loss").answer() - math.log(65)) < 0.15
    assert _question("train.untrained_loss").is_correct(math.log(65))
    assert abs(_question("train.perplexity_of").answer() - math.exp(1.5)) < 1e-3
