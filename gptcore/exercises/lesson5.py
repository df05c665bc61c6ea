"""Lesson 5 exercises: one step of training, and what a loss means.

    train.train_step    forward, backward, clip, update, clear the gradients
    train.perplexity    e^loss: the number of tokens the model hesitates between
"""
from __future__ import annotations

import math
import numbers

import torch
import torch.nn as nn
import torch.nn.functional as F

from gptcore.exercises.framework import Exercise, Fail, call, fmt, generator, row


# ------------------------------------------------------------------------------- train_step
class TinyLM(nn.Module):
    """The smallest model with GPT's interface, `model(x, y) -> (logits, loss)`: an embedding
    and a linear head, so a check takes a millisecond."""

    def __init__(self, vocab_size: int = 7, width: int = 6, seed: int = 0):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, width)
        self.head = nn.Linear(width, vocab_size)
        g = generator(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 1.5)

    def forward(self, idx, targets=None):
        logits = self.head(self.wte(idx))  # (B, T, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        return logits, loss


class PlainSGD:
    """θ ← θ − lr·∇θ: torch.optim.SGD without momentum, written out. Constructing any
    torch.optim optimizer imports torch._dynamo, seconds in a fresh process; a check must not
    wait for that. It has what a training step uses: step(), zero_grad() and param_groups."""

    def __init__(self, params, lr: float):
        self.param_groups = [{"params": list(params), "lr": lr}]

    def __repr__(self) -> str:
        return f"SGD(lr={self.param_groups[0]['lr']})"

    def zero_grad(self, set_to_none: bool = True):
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=-group["lr"])


LR = 0.5


def _batches():
    g = generator(90)
    return [(torch.randint(0, 7, (2, 5), generator=g), torch.randint(0, 7, (2, 5), generator=g))
            for _ in range(2)]


def _params(model) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b) -> bool:
    return all(torch.allclose(x.double(), y.double(), rtol=1e-5, atol=1e-6) for x, y in zip(a, b))


def _replay(batches, grad_clip, *, zero=True, clip="norm"):
    """The weights after these steps, with one habit changed (zeroing, clipping)."""
    model = TinyLM()
    optimizer = PlainSGD(model.parameters(), lr=LR)
    for x, y in batches:
        _, loss = model(x, y)
        loss.backward()
        if clip == "norm" and grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        elif clip == "value" and grad_clip > 0:
            torch.nn.utils.clip_grad_value_(model.parameters(), grad_clip)
        optimizer.step()
        if zero:
            optimizer.zero_grad()
    return _params(model)


def _loss_as_float(loss, text):
    if isinstance(loss, torch.Tensor):
        raise Fail("mistake", "Return the loss as a Python float (`loss.item()`), not a tensor: a "
                              "tensor keeps the whole computation graph alive, and a training "
                              "loop that stores it runs out of memory.",
                   [row(text, f"tensor {fmt(loss)}", "a float")])
    if isinstance(loss, bool) or not isinstance(loss, numbers.Real):
        raise Fail("shape", f"train_step should return the loss as a float; yours returned "
                            f"{fmt(loss)}.")
    return float(loss)


def check_train_step(yours, book):
    batches = _batches()
    clip = 0.1  # well below this model's gradient norms, so clipping always acts
    mine, ref = TinyLM(), TinyLM()
    opt_mine = PlainSGD(mine.parameters(), lr=LR)
    opt_ref = PlainSGD(ref.parameters(), lr=LR)
    for step, (x, y) in enumerate(batches, 1):
        text = f"step {step}: SGD lr={LR}, grad_clip={clip}, batch x {tuple(x.shape)}"
        before = _params(mine)
        loss = call(yours, mine, opt_mine, x, y, clip,
                    what=f"train_step(model, optimizer, x, y, grad_clip={clip}) (step {step})")
        loss = _loss_as_float(loss, text)
        expected = book(ref, opt_ref, x, y, clip)
        if not math.isclose(loss, expected, rel_tol=1e-5, abs_tol=1e-6):
            table = [row(text, loss, expected)]
            with torch.no_grad():
                after = mine(x, y)[1].item()
            if math.isclose(loss, after, rel_tol=1e-5, abs_tol=1e-6):
                raise Fail("mistake", "You returned the loss after the update; return the loss of "
                                      "the forward pass that the step learned from.", table)
            raise Fail("numbers", f"Your step returned a loss of {loss:.4g}; expected "
                                  f"{expected:.4g}, the loss of model(x, y) before the update.",
                       table)
        weights = _params(mine)
        if _same(weights, _params(ref)):
            continue
        table = [row(text + ", first weights", weights[0].reshape(-1)[:4],
                     _params(ref)[0].reshape(-1)[:4])]
        if _same(weights, before):
            raise Fail("mistake", "The weights did not change: call loss.backward() to compute "
                                  "the gradients, then optimizer.step() to apply them.", table)
        so_far = batches[:step]
        if step > 1 and _same(weights, _replay(so_far, clip, zero=False)):
            raise Fail("mistake", "The gradients are never zeroed: PyTorch ADDS new gradients to "
                                  "the old ones, so step 2 also used step 1's batch. Call "
                                  "optimizer.zero_grad() every step.", table)
        if _same(weights, _replay(so_far, clip, clip=None)):
            raise Fail("mistake", "No gradient clipping: call torch.nn.utils.clip_grad_norm_("
                                  "model.parameters(), grad_clip) after backward() and before "
                                  "optimizer.step().", table)
        if _same(weights, _replay(so_far, clip, clip="value")):
            raise Fail("mistake", "You clipped each gradient value; clip the norm of all the "
                                  "gradients together (clip_grad_norm_).", table)
        raise Fail("numbers", f"After {text} your weights differ from the expected ones: "
                              "forward, backward, clip the gradient norm, step, zero the "
                              "gradients.", table)

    # grad_clip=0 turns clipping off
    x, y = batches[0]
    mine, ref = TinyLM(), TinyLM()
    before = _params(mine)
    loss = call(yours, mine, PlainSGD(mine.parameters(), lr=LR), x, y, 0.0,
                what="train_step(model, optimizer, x, y, grad_clip=0)")
    _loss_as_float(loss, "grad_clip=0")
    book(ref, PlainSGD(ref.parameters(), lr=LR), x, y, 0.0)
    if not _same(_params(mine), _params(ref)):
        table = [row("grad_clip=0", _params(mine)[0].reshape(-1)[:4],
                     _params(ref)[0].reshape(-1)[:4])]
        if _same(_params(mine), before):
            raise Fail("mistake", "With grad_clip=0 your step did not move the weights: "
                                  "clip_grad_norm_(…, 0) scales every gradient to zero. 0 means "
                                  "no clipping: only clip when grad_clip > 0.", table)
        raise Fail("numbers", "With grad_clip=0 (no clipping) your weights differ from the "
                              "expected ones.", table)


TRAIN_STEP = Exercise(
    id="train.train_step",
    lesson=5,
    title="One training step",
    name="train_step",
    statement=(
        "Write `train_step(model, optimizer, x, y, grad_clip=1.0)`: one step of gradient "
        "descent on the batch `(x, y)`. `model(x, y)` returns `(logits, loss)`. Compute the "
        "gradients, clip their total norm to `grad_clip` (0 means no clipping), update the "
        "weights, clear the gradients, and return the loss as a Python float."
    ),
    formula=r"g = \nabla_\theta \mathcal{L}(\theta), \quad g \leftarrow g \cdot "
            r"\min\!\left(1, \frac{c}{\lVert g \rVert}\right), \quad \theta \leftarrow "
            r"\mathrm{step}(\theta, g)",
    starter='''import torch


def train_step(model, optimizer, x, y, grad_clip=1.0):
    """One step of gradient descent on (x, y); returns the loss as a float."""
    logits, loss = model(x, y)
    # TODO: compute the gradients of the loss
    # TODO: clip the gradient norm to grad_clip (only when grad_clip > 0)
    # TODO: update the weights, then clear the gradients for the next step
    return loss
''',
    hints=(
        "The order is: forward (given), `loss.backward()`, clip, `optimizer.step()`, "
        "`optimizer.zero_grad()`.",
        "`torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)` rescales all gradients "
        "together when their norm exceeds grad_clip; skip it when grad_clip is 0.",
        "Gradients add up across backward() calls, so clear them every step; finish with "
        "`return loss.item()`.",
    ),
    reference="gptcore.trainer.train_step",
    also_at=("gptcore.train.train_step",),
    checker=check_train_step,
    praise="Correct! That is the whole of training, repeated: gradients from backward, a clip "
           "against spikes, one step, and a clean slate for the next batch.",
)


# ------------------------------------------------------------------------------- perplexity
def check_perplexity(yours, book):
    for loss in (0.0, math.log(65), 1.5, 4.0, 10.0, 0.25):
        text = f"mean_loss = {loss:.4g}"
        out = call(yours, loss)
        if isinstance(out, torch.Tensor):
            raise Fail("mistake", "Return a Python float (math.exp(mean_loss)), not a tensor.",
                       [row(text, f"tensor {fmt(out)}", book(loss))])
        if isinstance(out, bool) or not isinstance(out, numbers.Real):
            raise Fail("shape", f"perplexity should return a number; yours returned {fmt(out)}.")
        expected = book(loss)
        if math.isclose(out, expected, rel_tol=1e-6, abs_tol=1e-9):
            continue
        table = [row(text, float(out), expected)]
        variants = [
            (10 ** loss, "You used 10^loss, but the loss is a natural log (nats): use e^loss "
                         "(math.exp)."),
            (2 ** loss, "You used 2^loss, which is for a loss in bits; cross-entropy in PyTorch "
                        "is in nats: use e^loss (math.exp)."),
            (math.exp(-loss), "Wrong sign: perplexity is e^(+loss), at least 1, and it grows "
                              "with the loss."),
            (loss, "You returned the loss itself; perplexity is e^loss."),
        ]
        if loss > 0:
            variants.append((math.log(loss), "You took the log of the loss; perplexity is its "
                                             "exponential, e^loss."))
        for value, message in variants:
            if math.isclose(out, value, rel_tol=1e-6, abs_tol=1e-9):
                raise Fail("mistake", message, table)
        raise Fail("numbers", f"For {text} the perplexity is e^{loss:.4g} = {expected:.4g}; "
                              f"yours is {float(out):.4g}.", table)


PERPLEXITY = Exercise(
    id="train.perplexity",
    lesson=5,
    title="Perplexity",
    name="perplexity",
    statement=(
        "Write `perplexity(mean_loss)`: turn a mean cross-entropy, measured in nats (natural "
        "log, as PyTorch's `cross_entropy`), into a perplexity, returned as a float. A model "
        "with perplexity 65 is as unsure as a uniform choice among 65 tokens."
    ),
    formula=r"\mathrm{PPL} = e^{\mathcal{L}} \qquad \mathcal{L} = -\frac{1}{N}\sum_{t} "
            r"\ln p(x_{t+1} \mid x_{\le t})",
    starter='''import math


def perplexity(mean_loss):
    """e^loss for a mean cross-entropy in nats, as a float."""
    # TODO: undo the natural log
    return mean_loss
''',
    hints=(
        "The loss is a mean of natural logs (ln), so undo it with the natural exponential.",
        "A loss of ln(65) ≈ 4.17 should give 65.",
        "`return math.exp(mean_loss)`.",
    ),
    reference="gptcore.trainer.perplexity",
    also_at=("gptcore.train.perplexity",),
    checker=check_perplexity,
    praise="Correct! e^loss reads a loss as a number of choices: an untrained model on 65 "
           "characters starts near 65, and every halving means half as much hesitation.",
)

EXERCISES = (TRAIN_STEP, PERPLEXITY)
