"""Generation: turn next-token logits into text, one token at a time.

    p_i = exp(z_i / T) / Σ_j exp(z_j / T)        (softmax with temperature T)

The filters are pure functions on logits, applied in this order: temperature, top-k
(keep the k most likely), top-p (keep the smallest set whose probability reaches p; the most
likely token always survives). Temperature 0 means greedy: always the most likely token.

`generate` works with gptcore's GPT (with a KV cache: each step feeds only the new token),
with `transformers`' GPT-2 models (through their own cache), and with any module whose
`forward(idx)` returns `(logits, loss)`, such as a GPT a learner wrote (no cache: each step
feeds the whole window).

Lesson 1 draws with three helpers: `prepare_prompt` (the ids a model reads for a text),
`top_tokens` (the distribution before and after the knobs) and `StepThrough` (the loop of
`generate`, one token per call).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from gptcore.tokenizers import StartToken, start_token


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """z / T: T < 1 sharpens the distribution, T > 1 flattens it. T must be > 0."""
    if temperature <= 0:
        raise ValueError("Temperature must be positive; use temperature=0 in generate for greedy.")
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int | None) -> torch.Tensor:
    """Keep the k largest logits of each row, set the rest to -inf."""
    if k is None or k >= logits.size(-1):
        return logits
    k = max(1, int(k))
    kth = torch.topk(logits, k, dim=-1).values[..., -1, None]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float | None) -> torch.Tensor:
    """Nucleus filter: keep the most likely tokens until their probability reaches p.

    probs [0.5, 0.3, 0.2], p=0.6 -> keep the first two (0.5 < 0.6 ≤ 0.8). p -> 0 keeps one.
    """
    if p is None or p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above
    drop_sorted = before >= p
    drop_sorted[..., 0] = False  # the most likely token always survives
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def filter_logits(logits, temperature=1.0, top_k=None, top_p=None) -> torch.Tensor:
    return top_p_filter(top_k_filter(apply_temperature(logits, temperature), top_k), top_p)


def next_token_distribution(logits, temperature=1.0, top_k=None, top_p=None) -> dict:
    """What the sampler sees for one position: raw probabilities, the filtered and
    renormalised ones, and which tokens survive. `logits` is (vocab,)."""
    raw = torch.softmax(logits.float(), dim=-1)
    if temperature == 0:
        kept = torch.zeros_like(raw, dtype=torch.bool)
        kept[raw.argmax()] = True
        final = kept.float()
    else:
        filtered = filter_logits(logits.float(), temperature, top_k, top_p)
        final = torch.softmax(filtered, dim=-1)
        kept = torch.isfinite(filtered)
    return {"raw": raw, "final": final, "kept": kept}


def sample_next(logits, temperature=1.0, top_k=None, top_p=None, generator=None):
    """(B, vocab) logits -> (B, 1) next ids. Temperature 0 is greedy (argmax)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    probs = torch.softmax(filter_logits(logits.float(), temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


@dataclass(frozen=True)
class TopTokens:
    """One position's distribution as lesson 1 draws it (see `top_tokens`)."""

    rows: list[dict]  # {"id", "raw", "final", "kept", "picked"}, most likely first
    n_kept: int  # how many tokens of the vocabulary survive the filters
    vocab_size: int


def top_tokens(logits, n=15, picked=None, temperature=1.0, top_k=None, top_p=None,
               filtered=None) -> TopTokens:
    """The n most likely tokens of one position, before and after the knobs.

    raw = softmax(z); final = softmax of the filtered logits (0 once filtered out). A sampled
    id outside the top n is appended, so a chart can show what was picked:
    probs [0.5, 0.3, 0.2], top_k=2 -> rows with raw 0.5, 0.3, 0.2 and final 0.625, 0.375, 0.
    `filtered`: logits already filtered elsewhere (a learner's own filters), used as they are.
    """
    if filtered is None:
        d = next_token_distribution(logits, temperature, top_k, top_p)
    else:
        d = {"raw": torch.softmax(logits.float(), dim=-1),
             "final": torch.softmax(filtered.float(), dim=-1), "kept": torch.isfinite(filtered)}
    ids = torch.topk(d["raw"], min(n, d["raw"].numel())).indices.tolist()
    if picked is not None and picked not in ids:
        ids.append(picked)
    rows = [{"id": i, "raw": d["raw"][i].item(), "final": d["final"][i].item(),
             "kept": bool(d["kept"][i]), "picked": i == picked} for i in ids]
    return TopTokens(rows, int(d["kept"].sum()), d["raw"].numel())


@dataclass(frozen=True)
class Prompt:
    """The ids a model reads for a text (see `prepare_prompt`)."""

    ids: list[int]  # at most `context` tokens
    n_text_tokens: int  # the text's own tokens, before any cut
    start: StartToken | None  # the token read instead of an empty text

    @property
    def dropped(self) -> int:
        """Tokens cut from the front because the model reads at most its context."""
        return max(0, self.n_text_tokens - len(self.ids))


def prepare_prompt(tokenizer, text: str, context: int) -> Prompt:
    """The text's tokens, only the last `context` of them (a model reads no more), or the
    tokenizer's start token when the text is empty (a model needs at least one token).

    GPT-2, "" -> ids [50256] (<|endoftext|>); 1,030 tokens, context 1,024 -> the last 1,024.
    """
    ids = tokenizer.encode(text)
    if not ids:
        start = start_token(tokenizer)
        return Prompt([start.id], 0, start)
    return Prompt(ids[-context:], len(ids), None)


def _as_batch(idx) -> torch.Tensor:
    """A list of ids or a (1, T) tensor -> a (1, T) LongTensor."""
    return idx if isinstance(idx, torch.Tensor) else torch.tensor([list(idx)], dtype=torch.long)


@torch.no_grad()
def next_token_logits(model, idx) -> torch.Tensor:
    """Logits (vocab,) for the token after idx (a list of ids or (1, T)), for gptcore and
    transformers models."""
    idx = _as_batch(idx)
    context = context_size(model)
    logits, _ = _step(model, idx[:, -context:] if context else idx, None)
    return logits[0]


def context_size(model) -> int | None:
    """The most tokens the model reads at once (None: no limit is known)."""
    config = getattr(model, "config", None)
    return getattr(config, "block_size", None) or getattr(config, "n_positions", None)


def _is_transformers(model) -> bool:
    return hasattr(getattr(model, "config", None), "n_positions") and \
        hasattr(model, "prepare_inputs_for_generation")


def _step(model, idx, past):
    """One forward pass -> (last-position logits (B, vocab), cache or None)."""
    if hasattr(model, "forward_cached"):
        return model.forward_cached(idx, past)
    if _is_transformers(model):
        out = model(input_ids=idx, cache=past, use_cache=True, logits_to_keep=1)  # transformers 5
        return out.logits[:, -1, :], out.cache
    logits, _ = model(idx)  # any module whose forward(idx) returns (logits, loss)
    return logits[:, -1, :], None


@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
             generator=None, use_cache=True):
    """Extend idx (B, T) by `max_new_tokens` sampled tokens -> (B, T + max_new_tokens).

    With a KV cache each step feeds only the newest token; past the model's context the
    window slides and the cache is rebuilt from the last `context` tokens.
    """
    was_training = model.training
    model.eval()
    context = context_size(model) or idx.size(1) + max_new_tokens
    past, fed = None, 0  # fed: how many tokens of idx the cache already holds
    for _ in range(max_new_tokens):
        if not use_cache or idx.size(1) > context:
            past, fed = None, 0
        window = idx[:, -context:]
        new = window if past is None else idx[:, fed:]
        logits, cache = _step(model, new, past)
        if use_cache and cache is not None:
            past, fed = cache, idx.size(1)
        next_id = sample_next(logits, temperature, top_k, top_p, generator)
        idx = torch.cat([idx, next_id.to(idx.device)], dim=1)
    model.train(was_training)
    return idx


def positions_fed(prompt_len: int, max_new_tokens: int, context: int,
                  use_cache: bool = True) -> int:
    """How many token positions `generate` runs through the model: the work the KV cache saves.

    Without a cache each new token re-reads the whole window, min(T + i, context) positions
    at step i. With one, the first step reads the prompt and each later step one new token,
    until the text outgrows the context: then the window slides and is read whole each step.
    positions_fed(5, 40, 1024) -> 5 + 39 = 44; positions_fed(5, 40, 1024, False) -> 980.
    """
    total, cached = 0, None  # cached: how many tokens the cache holds, None for no cache
    for length in range(prompt_len, prompt_len + max_new_tokens):
        if not use_cache or length > context:
            cached = None
        total += min(length, context) if cached is None else length - cached
        cached = length if use_cache else None
    return total


def generate_ids(model, ids: list[int], max_new_tokens: int, seed: int, temperature=1.0,
                 top_k=None, top_p=None) -> list[int]:
    """The ids `generate` appends to `ids`, drawn with a generator seeded by `seed`:
    the same seed and knobs give the same continuation."""
    g = torch.Generator().manual_seed(int(seed))
    out = generate(model, _as_batch(ids), max_new_tokens, temperature, top_k, top_p, generator=g)
    return out[0, len(ids):].tolist()


class StepThrough:
    """`generate`'s loop, one token per call, keeping the logits the last token was drawn from.

    The generator is seeded once, so the tokens equal those of
    `generate(model, idx, n, ..., generator=torch.Generator().manual_seed(seed), use_cache=False)`.
    """

    def __init__(self, prompt: list[int], seed: int):
        self.prompt, self.seed = list(prompt), int(seed)
        self.picked: list[int] = []
        self.last_logits: torch.Tensor | None = None  # (vocab,) the latest token was drawn from
        self.last_knobs: dict = {}  # and the knobs it was drawn with
        self._generator = torch.Generator().manual_seed(self.seed)

    def step(self, model, temperature=1.0, top_k=None, top_p=None) -> int:
        logits = next_token_logits(model, self.prompt + self.picked)  # (vocab,)
        picked = sample_next(logits[None], temperature, top_k, top_p, self._generator).item()
        self.picked.append(picked)
        self.last_logits = logits
        self.last_knobs = {"temperature": temperature, "top_k": top_k, "top_p": top_p}
        return picked
