"""'Use my version': a lesson computes with the function the learner wrote and passed.

Their code runs only in the sandbox (job "call"); tensors travel as JSON lists, and what
comes back is checked (shape, finite where it must be) before a page draws it. When their
function fails here, the page says why and draws the book's version instead.
"""
from __future__ import annotations

import torch

from classroom import sandbox
from classroom.progress import progress


class YourCodeFailed(RuntimeError):
    """The learner's function could not be used here; the message says why, plainly."""


def available(*exercise_ids: str) -> bool:
    """True when the learner passed every one of these exercises (and code can run here)."""
    record = progress()
    return sandbox.enabled() and all(i in record.passed for i in exercise_ids)


def _tensor(value: torch.Tensor) -> dict:
    return {"tensor": value.tolist(), "dtype": str(value.dtype).replace("torch.", "")}


def _back(value, shape: tuple[int, ...], what: str) -> torch.Tensor:
    if not (isinstance(value, dict) and "tensor" in value):
        raise YourCodeFailed(f"Your {what} returned {str(value)[:80]!r}, not a tensor.")
    try:
        out = torch.tensor(value["tensor"], dtype=torch.float64)
    except (TypeError, ValueError) as e:
        raise YourCodeFailed(f"Your {what} returned something that is not a tensor of numbers.") from e
    if tuple(out.shape) != tuple(shape):
        raise YourCodeFailed(f"Your {what} returned shape {tuple(out.shape)}; {tuple(shape)} was "
                             "expected.")
    return out


def call(source: str | None, name: str, calls: list[list], learner: str) -> list:
    """Run the learner's `source` in the sandbox and call `name` on each argument list of
    `calls`; returns the outputs (JSON values)."""
    if source is None:
        raise YourCodeFailed(f"Your code for `{name}` is not saved in this session.")
    try:
        outcome = sandbox.default_sandbox().run("call", {"source": source, "name": name, "calls": calls},
                                        learner=learner)
    except (sandbox.SandboxUnavailable, sandbox.SandboxBusy, ValueError) as e:
        raise YourCodeFailed(str(e)) from e
    if not outcome.get("ok"):
        raise YourCodeFailed(outcome.get("message", "Your code failed in the sandbox."))
    outputs = outcome["result"].get("outputs") if isinstance(outcome.get("result"), dict) else None
    if not isinstance(outputs, list) or len(outputs) != len(calls):
        raise YourCodeFailed("Your code did not return one result per call.")
    return outputs


DECIMALS = 4  # logits travel rounded, in float64: short numbers keep a reply under 1 MB


def filtered_logits(logits: torch.Tensor, top_k: int | None, top_p: float | None,
                    code: dict[str, str], learner: str) -> torch.Tensor:
    """The learner's top_k_filter then top_p_filter on (vocab,) logits (already divided by
    the temperature), as the book's `filter_logits` applies them. The logits are rounded to
    DECIMALS places first (the book's filters, given the same rounded logits, are the
    reference the tests compare with)."""
    out = rounded(logits)
    for exercise_id, name, value in (("generate.top_k_filter", "top_k_filter", top_k),
                                     ("generate.top_p_filter", "top_p_filter", top_p)):
        if value is None:
            continue
        result = call(code.get(exercise_id), name, [[_tensor(out[None]), value]], learner)[0]
        out = _back(result, (1, out.numel()), name)[0]
    if not torch.isfinite(out).any():
        raise YourCodeFailed("Your filters removed every token.")
    return out


def rounded(logits: torch.Tensor) -> torch.Tensor:
    return logits.double().round(decimals=DECIMALS)


def attention_weights(q: torch.Tensor, k: torch.Tensor, code: dict[str, str],
                      learner: str) -> torch.Tensor:
    """Weights (nh, T, T) from the learner's causal_mask and scaled_dot_product_attention."""
    T = q.size(-2)
    mask = call(code.get("attention.causal_mask"), "causal_mask", [[T]], learner)[0]
    if not (isinstance(mask, dict) and mask.get("shape") == [T, T]):
        raise YourCodeFailed(f"Your causal_mask({T}) did not return a ({T}, {T}) tensor.")
    result = call(code.get("attention.scaled_dot_product_attention"), "scaled_dot_product_attention",
                  [[_tensor(q), _tensor(k), _tensor(k), {"tensor": mask["tensor"], "dtype": "bool"}]],
                  learner)[0]
    if not (isinstance(result, list) and len(result) == 2):
        raise YourCodeFailed("Your scaled_dot_product_attention did not return (out, weights).")
    weights = _back(result[1], tuple(q.shape[:-1]) + (T,), "scaled_dot_product_attention weights")
    if not torch.isfinite(weights).all():
        raise YourCodeFailed("Your attention weights contain NaN or infinity.")
    return weights.float()


def top_tokens(logits: torch.Tensor, n: int, temperature: float, top_k: int | None,
               top_p: float | None, code: dict[str, str], learner: str):
    """gptcore.generate.top_tokens, with the learner's filters instead of the book's."""
    from gptcore.generate import apply_temperature, top_tokens as book_top_tokens

    filtered = filtered_logits(apply_temperature(logits.double(), temperature), top_k, top_p,
                               code, learner)
    return book_top_tokens(logits, n, filtered=filtered)
